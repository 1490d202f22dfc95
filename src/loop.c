/* A small poll() loop. Watches are kept in an array; ids are array slots,
 * reused once unwatched. Callbacks may add or remove watches. */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

struct watch {
    int fd;
    short events;
    loop_cb cb;
    void *ud;
    int active;
    int poked; /* its callback is due in the next round */
};

struct loop {
    struct watch *w;
    int n, cap;
    /* Poll arrays, resized only at the start of a round (callbacks may add
     * watches while a round walks them). */
    struct pollfd *pfd;
    int *map; /* pfd index -> watch id */
    int pcap;
    int poked; /* some watch was poked */
};

static double seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

double loop_now(void) { return seconds(CLOCK_MONOTONIC); }

double loop_wall(void) { return seconds(CLOCK_REALTIME); }

loop *loop_new(void)
{
    return calloc(1, sizeof(loop));
}

void loop_free(loop *l)
{
    if (!l)
        return;
    free(l->w);
    free(l->pfd);
    free(l->map);
    free(l);
}

int loop_watch(loop *l, int fd, short events, loop_cb cb, void *ud)
{
    int id = -1;
    for (int i = 0; i < l->n; i++)
        if (!l->w[i].active) {
            id = i;
            break;
        }
    if (id < 0) {
        if (l->n == l->cap) {
            int cap = l->cap ? l->cap * 2 : 16;
            struct watch *w = realloc(l->w, sizeof *w * (size_t)cap);
            if (!w)
                return -1;
            l->w = w;
            l->cap = cap;
        }
        id = l->n++;
    }
    l->w[id] = (struct watch){ fd, events, cb, ud, 1, 0 };
    return id;
}

void loop_poke(loop *l, int id)
{
    if (id >= 0 && id < l->n && l->w[id].active) {
        l->w[id].poked = 1;
        l->poked = 1;
    }
}

void loop_unwatch(loop *l, int id)
{
    if (id >= 0 && id < l->n)
        l->w[id].active = 0;
}

int loop_run_once(loop *l, int timeout_ms)
{
    if (l->pcap < l->n) {
        struct pollfd *p = realloc(l->pfd, sizeof *p * (size_t)l->cap);
        if (p)
            l->pfd = p;
        int *m = realloc(l->map, sizeof *m * (size_t)l->cap);
        if (m)
            l->map = m;
        if (!p || !m)
            return -1;
        l->pcap = l->cap;
    }
    int np = 0;
    for (int i = 0; i < l->n; i++)
        if (l->w[i].active) {
            l->pfd[np] = (struct pollfd){ l->w[i].fd, l->w[i].events, 0 };
            l->map[np++] = i;
        }
    int rc = poll(l->pfd, (nfds_t)np, l->poked ? 0 : timeout_ms);
    if (rc < 0 && errno != EINTR)
        return -1;
    int ran = 0;
    for (int i = 0; i < np && rc > 0; i++) {
        if (!l->pfd[i].revents)
            continue;
        rc--;
        struct watch *w = &l->w[l->map[i]];
        /* A callback earlier in this round may have removed or replaced it. */
        if (!w->active || w->fd != l->pfd[i].fd)
            continue;
        w->cb(w->ud, w->fd, l->pfd[i].revents);
        ran++;
    }
    /* the poked ones (one that these callbacks poke runs in this round or
     * the next) */
    int n = l->poked ? l->n : 0;
    l->poked = 0;
    for (int i = 0; i < n; i++) {
        struct watch *w = &l->w[i];
        if (!w->poked)
            continue;
        w->poked = 0;
        if (w->active) {
            w->cb(w->ud, -1, 0);
            ran++;
        }
    }
    return ran;
}
