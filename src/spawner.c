/* Starts engines and hands the outcome to the loop (see spawner.h). */
#include "spawner.h"
#include "affinity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

typedef struct request {
    spawn_cb cb;
    void *ud;
    spawn_result r;
    struct request *next;
} request;

struct spawner {
    loop *l;
    int watch;            /* poked when a start is made */
    proc_stack stack;     /* the children's, one start after another */
    request *head, *tail; /* started, callback not run yet */
};

static void do_spawn(spawner *sp, const proc_spec *ps, spawn_result *r)
{
    r->pidfd = -1;
    /* A loop pinned to the core it starts the engine on is given the other
     * cores as soon as the child exists (proc_spawn.c): woken when the
     * engine has exec'd, it then runs beside the new engine, not behind it,
     * and on the core of an engine that started earlier, the one likely to
     * end first, it is at hand when that one ends. */
    proc_spec spec = *ps;
    spec.stack = &sp->stack;
    cpu_set_t cores;
    int here = affinity_pinned_cpu();
    if (here >= 0 && affinity_unpinned(&cores) == 0) {
        if (CPU_COUNT(&cores) > 1)
            CPU_CLR(here, &cores);
        spec.caller_cpus = &cores;
    }
    r->start_lo = proc_ticks_now();
    r->pid = proc_spawn(&spec, r->err, sizeof r->err);
    r->start_hi = proc_ticks_now();
    r->cpu = affinity_pinned_cpu();
    /* a loop moved to a free core spawned there: now both get every core */
    affinity_release(r->pid);
    if (r->pid < 0)
        return;
    r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    if (r->pidfd < 0)
        snprintf(r->err, sizeof r->err, "pidfd_open: %s", strerror(errno));
}

/* Runs the callbacks of every start made so far, oldest first. */
static void deliver_all(spawner *sp)
{
    request *q = sp->head;
    sp->head = sp->tail = NULL;
    while (q) {
        request *next = q->next;
        q->cb(q->ud, &q->r);
        free(q);
        q = next;
    }
}

static void on_ready(void *ud, int fd, short revents)
{
    (void)fd;
    (void)revents;
    deliver_all(ud);
}

spawner *spawner_new(loop *l, char *err, size_t errlen)
{
    spawner *sp = calloc(1, sizeof *sp);
    if (!sp || proc_stack_make(&sp->stack) != 0) {
        snprintf(err, errlen, "cannot set up process spawning: %s", strerror(sp ? errno : ENOMEM));
        free(sp);
        return NULL;
    }
    if ((sp->watch = loop_watch(l, -1, 0, on_ready, sp)) < 0) {
        snprintf(err, errlen, "cannot set up process spawning: out of memory");
        proc_stack_free(&sp->stack);
        free(sp);
        return NULL;
    }
    sp->l = l;
    return sp;
}

void spawner_start(spawner *sp, const proc_spec *ps, spawn_cb cb, void *ud)
{
    request *q = calloc(1, sizeof *q);
    if (!q) {
        spawn_result r = { .pid = -1, .pidfd = -1, .cpu = -1 };
        snprintf(r.err, sizeof r.err, "out of memory");
        cb(ud, &r);
        return;
    }
    q->cb = cb;
    q->ud = ud;
    do_spawn(sp, ps, &q->r);
    if (sp->tail)
        sp->tail->next = q;
    else
        sp->head = q;
    sp->tail = q;
    loop_poke(sp->l, sp->watch);
}

void spawner_drain(spawner *sp)
{
    if (sp)
        deliver_all(sp);
}

void spawner_free(spawner *sp)
{
    if (!sp)
        return;
    spawner_drain(sp);
    loop_unwatch(sp->l, sp->watch);
    proc_stack_free(&sp->stack);
    free(sp);
}
