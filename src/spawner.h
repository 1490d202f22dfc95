/* Starting engines from the loop.
 *
 * proc_spawn blocks its caller until the child has exec'd (vfork
 * semantics): the loop thread is held for that time (on another core than
 * the child's, when it had pinned itself to start the engine there: see
 * proc_spawn.c). Starting engines on helper threads instead was measured
 * slower (make bench, 2 slots on 2 cores): a woken helper landed on the
 * core of a running engine while the loop's core went idle, and the
 * kernel left it so for milliseconds; the idle time was larger than all of
 * the scheduler's own work per plan.
 *
 * The callback still runs later, from the loop (loop_run_once or
 * spawner_drain), never inside spawner_start: callers need not be
 * re-entrant. */
#ifndef RASRUN_SPAWNER_H
#define RASRUN_SPAWNER_H

#include "loop.h"
#include "proc.h"

typedef struct spawner spawner;

typedef struct {
    pid_t pid;                    /* -1 when the spawn failed (err says why) */
    int pidfd;                    /* the child's pidfd, owned by the callback */
    /* the child's proc_starttime is within these (proc_ticks_now around the spawn) */
    unsigned long long start_lo, start_hi;
    int cpu; /* the core it started on (the loop's, pinned there), or -1 */
    char err[1024];
} spawn_result;

typedef void (*spawn_cb)(void *ud, const spawn_result *r);

spawner *spawner_new(loop *l, char *err, size_t errlen);

/* Starts ps now (ps is not kept after the call). cb runs later, on
 * the loop thread, from loop_run_once or spawner_drain. */
void spawner_start(spawner *sp, const proc_spec *ps, spawn_cb cb, void *ud);

/* Runs the callback of every start not yet reported. */
void spawner_drain(spawner *sp);

/* Drains, then frees. */
void spawner_free(spawner *sp);

#endif
