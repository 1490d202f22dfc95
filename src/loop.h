/* The event loop: poll() over watched descriptors, on the main thread. */
#ifndef RASRUN_LOOP_H
#define RASRUN_LOOP_H

typedef struct loop loop;
typedef void (*loop_cb)(void *ud, int fd, short revents);

loop *loop_new(void);
void loop_free(loop *l);

/* Watches fd for events (POLLIN...); returns a watch id >= 0, or -1. A
 * watch of fd -1 watches nothing: its callback runs when poked. */
int loop_watch(loop *l, int fd, short events, loop_cb cb, void *ud);
void loop_unwatch(loop *l, int id);

/* The callback of watch id runs in the next loop_run_once (with fd -1 and
 * no events), which then waits for no events: a call made later, from the
 * loop, by code on the loop's thread that must not re-enter its caller. */
void loop_poke(loop *l, int id);

/* Waits up to timeout_ms for events (not at all when a watch was poked)
 * and runs their callbacks, then the poked ones'. Returns the number of
 * callbacks run, or -1 on a poll error other than EINTR. */
int loop_run_once(loop *l, int timeout_ms);

/* Monotonic seconds. */
double loop_now(void);

/* Wall-clock seconds since the epoch (times that are journaled and shown). */
double loop_wall(void);

#endif
