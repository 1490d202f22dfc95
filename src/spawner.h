/* Starting engines off the loop thread.
 *
 * posix_spawn blocks its caller until the child has exec'd (vfork
 * semantics). On a busy machine that takes milliseconds, during which a
 * scheduler calling it directly could not reap, stage or check any other
 * plan. A spawner runs each posix_spawn on a short-lived helper thread and
 * hands the outcome back to the loop thread through a pipe, so callbacks
 * always run on the loop thread. */
#ifndef RASRUN_SPAWNER_H
#define RASRUN_SPAWNER_H

#include "loop.h"
#include "proc.h"

typedef struct spawner spawner;

typedef struct {
    pid_t pid;                    /* -1 when the spawn failed (err says why) */
    int pidfd;                    /* the child's pidfd, owned by the callback */
    unsigned long long starttime; /* proc_starttime of the child */
    char err[1024];
} spawn_result;

typedef void (*spawn_cb)(void *ud, const spawn_result *r);

spawner *spawner_new(loop *l, char *err, size_t errlen);

/* Starts ps (argv, envp and cwd must stay valid until cb runs). cb runs on
 * the loop thread, from loop_run_once or spawner_drain. */
void spawner_start(spawner *sp, const proc_spec *ps, spawn_cb cb, void *ud);

/* Waits (bounded) for every spawn in flight and runs its callback. */
void spawner_drain(spawner *sp);

/* Drains, then frees. */
void spawner_free(spawner *sp);

#endif
