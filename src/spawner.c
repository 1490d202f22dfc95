/* Starts engines and hands the outcome to the loop (see spawner.h). */
#include "spawner.h"

#include <sched.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
    int rfd, wfd, watch;
    request *head, *tail; /* started, callback not run yet */
    int cpu;              /* where the next engine should start, or -1 */
};

/* The kernel starts a new process on a core of its choosing: on a busy
 * machine often the core of a running engine, where it waits behind that
 * engine while the caller waits for its exec and the caller's own core
 * idles. Pinned to the wanted core for the spawn, the caller makes the
 * child there (it inherits the pin); both get the caller's cores back
 * right after. */
static int pin_to(int cpu, cpu_set_t *saved)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof *saved, saved) != 0 ||
        !CPU_ISSET(cpu, saved))
        return 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0;
}

static void do_spawn(const proc_spec *ps, spawn_result *r, int cpu)
{
    r->pidfd = -1;
    cpu_set_t saved;
    int pinned = pin_to(cpu, &saved);
    r->pid = proc_spawn(ps, r->err, sizeof r->err);
    if (pinned) {
        sched_setaffinity(0, sizeof saved, &saved);
        if (r->pid > 0)
            sched_setaffinity(r->pid, sizeof saved, &saved);
    }
    if (r->pid < 0)
        return;
    r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    if (r->pidfd < 0)
        snprintf(r->err, sizeof r->err, "pidfd_open: %s", strerror(errno));
    r->starttime = proc_starttime(r->pid);
}

/* Runs the callbacks of every start made so far, oldest first. */
static void deliver_all(spawner *sp)
{
    char buf[64];
    while (read(sp->rfd, buf, sizeof buf) > 0)
        ;
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
    int fds[2];
    if (!sp || pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot set up process spawning: %s", strerror(errno));
        free(sp);
        return NULL;
    }
    sp->l = l;
    sp->rfd = fds[0];
    sp->wfd = fds[1];
    sp->watch = loop_watch(l, sp->rfd, POLLIN, on_ready, sp);
    sp->cpu = -1;
    return sp;
}

void spawner_prefer_cpu(spawner *sp, int cpu)
{
    sp->cpu = cpu;
}

void spawner_start(spawner *sp, const proc_spec *ps, spawn_cb cb, void *ud)
{
    request *q = calloc(1, sizeof *q);
    if (!q) {
        spawn_result r = { .pid = -1, .pidfd = -1 };
        snprintf(r.err, sizeof r.err, "out of memory");
        cb(ud, &r);
        return;
    }
    q->cb = cb;
    q->ud = ud;
    do_spawn(ps, &q->r, sp->cpu);
    sp->cpu = -1;
    if (sp->tail)
        sp->tail->next = q;
    else {
        sp->head = q;
        ssize_t w; /* wake the loop; a full pipe has a wake-up in it already */
        do
            w = write(sp->wfd, "", 1);
        while (w < 0 && errno == EINTR);
    }
    sp->tail = q;
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
    close(sp->rfd);
    close(sp->wfd);
    free(sp);
}
