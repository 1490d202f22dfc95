/* Spawns on helper threads; results return through a pipe (see spawner.h). */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

/* How long spawner_drain waits for helpers that have not reported. */
#define DRAIN_LIMIT_MS 30000

struct spawner {
    loop *l;
    int rfd, wfd, watch;
    int pending;
};

typedef struct {
    spawner *sp;
    proc_spec ps;
    spawn_cb cb;
    void *ud;
    spawn_result r;
} request;

static void do_spawn(request *q)
{
    spawn_result *r = &q->r;
    r->pidfd = -1;
    r->pid = proc_spawn(&q->ps, r->err, sizeof r->err);
    if (r->pid < 0)
        return;
    r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    if (r->pidfd < 0)
        snprintf(r->err, sizeof r->err, "pidfd_open: %s", strerror(errno));
    r->starttime = proc_starttime(r->pid);
}

/* One pointer per completion: a pipe write of that size is atomic. */
static void post(request *q)
{
    ssize_t w;
    do
        w = write(q->sp->wfd, &q, sizeof q);
    while (w < 0 && errno == EINTR);
}

static void *helper(void *arg)
{
    request *q = arg;
    do_spawn(q);
    post(q);
    return NULL;
}

static void deliver(request *q)
{
    q->sp->pending--;
    q->cb(q->ud, &q->r);
    free(q);
}

/* Reads the completions that are there; returns how many. */
static int collect(spawner *sp)
{
    request *batch[64];
    ssize_t n;
    int got = 0;
    while ((n = read(sp->rfd, batch, sizeof batch)) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof batch[0]; i++, got++)
            deliver(batch[i]);
    }
    return got;
}

static void on_ready(void *ud, int fd, short revents)
{
    (void)fd;
    (void)revents;
    collect(ud);
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
    /* Helpers block on a full pipe rather than lose a completion. */
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) & ~O_NONBLOCK);
    sp->l = l;
    sp->rfd = fds[0];
    sp->wfd = fds[1];
    sp->watch = loop_watch(l, sp->rfd, POLLIN, on_ready, sp);
    return sp;
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
    q->sp = sp;
    q->ps = *ps;
    q->cb = cb;
    q->ud = ud;
    sp->pending++;
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    int rc = pthread_create(&t, &at, helper, q);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        /* No thread to be had: spawn here, and report the same way. */
        do_spawn(q);
        post(q);
    }
}

void spawner_drain(spawner *sp)
{
    for (int waited = 0; sp && sp->pending > 0 && waited < DRAIN_LIMIT_MS; waited += 100) {
        struct pollfd p = { sp->rfd, POLLIN, 0 };
        if (poll(&p, 1, 100) > 0)
            collect(sp);
    }
    if (sp && sp->pending > 0)
        fprintf(stderr, "rasrun: %d engine start(s) did not report back in %d s\n", sp->pending,
                DRAIN_LIMIT_MS / 1000);
}

void spawner_free(spawner *sp)
{
    if (!sp)
        return;
    spawner_drain(sp);
    loop_unwatch(sp->l, sp->watch);
    if (sp->pending > 0)
        return; /* a helper still holds sp: leave it, and its pipe, be */
    close(sp->rfd);
    close(sp->wfd);
    free(sp);
}
