/* Moving the loop thread to a given core for a while.
 *
 * When an engine ends, its core is free, and the loop has work to do before
 * the next engine can start there: reaping, staging out and in, the spawn.
 * The kernel wakes the loop wherever it pleases, on a busy machine often on
 * the core of a running engine, where the two then take turns while the free
 * core idles; and a new process starts on a core of the kernel's choosing,
 * often behind the running engine, while the spawn holds the loop until it
 * has exec'd. Measured (make bench, 2 slots on 2 cores): new engines waited
 * behind a running one after a fifth of the spawns, and cores idled 1.5-2.3
 * ms per plan against xargs' 0.2-0.3.
 *
 * So the loop moves to the core the engine left, does that work there, and
 * spawns there (the child inherits the pin). The child gives the loop the
 * other cores before it execs (spawner.c, proc_spawn.c), so that the loop,
 * woken by the exec, runs beside the new engine rather than behind it; once
 * the spawn has returned, both get back every core the process had. Only
 * the calling thread is pinned. Which core that is,
 * the worker decides: the local worker takes another one when a running
 * engine shares the one the ended engine left (worker_local.c, free_core). */
#ifndef RASRUN_AFFINITY_H
#define RASRUN_AFFINITY_H

#include <sched.h>
#include <sys/types.h>

/* Pins the calling thread to cpu, when the process may use it and the
 * thread is not pinned already. Returns 1 when pinned. */
int affinity_move_to(int cpu);

/* Gives the calling thread its cores back, and child (if > 0), which was
 * started while pinned, the same cores. */
void affinity_release(pid_t child);

/* The core the calling thread is pinned to, or -1. */
int affinity_pinned_cpu(void);

/* The calling thread's cores as they are when it is not pinned: for
 * threads started while it is (they would inherit the one core). Returns 0,
 * or -1 when they cannot be read. */
int affinity_unpinned(cpu_set_t *set);

#endif
