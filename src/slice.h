/* A short scheduler slice for the loop thread while a run goes on.
 *
 * When an engine ends, the kernel wakes the loop, often on the core of the
 * other running engine, where it waited its turn behind that engine while
 * the freed core idled: in a `perf sched` trace of a 2000-plan run on 2
 * cores, the loop waited 754 ms for a core, 127 ms of it with the other
 * core idle. Linux's EEVDF scheduler (6.12 and later) lets a thread ask for
 * a shorter slice (sched_setattr, sched_runtime with SCHED_OTHER): its
 * wake-ups then preempt the running engine at once. Its share of the CPU
 * stays the same. Processes it starts get the default slice back (reset on
 * fork). Elsewhere the request is refused or ignored, and nothing changes. */
#ifndef RASRUN_SLICE_H
#define RASRUN_SLICE_H

typedef struct {
    int changed;
    unsigned long long runtime, flags; /* as they were */
} slice_saved;

/* Asks for the short slice for the calling thread, unless it runs under a
 * policy other than SCHED_OTHER or at a raised priority (nice < 0), which
 * its engines inherit. */
void slice_shorten(slice_saved *saved);

/* Gives the calling thread its slice (and reset-on-fork) back. */
void slice_restore(const slice_saved *saved);

#endif
