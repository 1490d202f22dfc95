/* A helper thread started when first needed, that sleeps on a condition
 * until it has work, and is stopped and joined at the end: the journal's
 * fsyncs and the emptying of spares run on one each, away from the loop.
 * The owner's fields that describe the work are guarded by mu; the thread
 * waits on cv with mu held and leaves its loop when stop is set. */
#ifndef RASRUN_HELPER_THREAD_H
#define RASRUN_HELPER_THREAD_H

#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t t;
    int started; /* the thread was started */
    int stop;    /* asked to end */
} helper_thread;

/* Starts fn(arg) on a thread of its own, with every core the process may
 * use and every signal blocked. Returns 0, or -1. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

void helper_init(helper_thread *h);

/* With mu held: starts fn(arg) unless it was started; 1 when it runs. */
int helper_ensure(helper_thread *h, void *(*fn)(void *), void *arg);

/* In the thread, with mu held: sleeps until *work is non-zero or stop is
 * set. Returns 1 when there is work to do: with finish_work, work asked for
 * before the stop is still done. */
int helper_next(helper_thread *h, const int *work, int finish_work);

/* Wakes the thread (with mu held). */
void helper_signal(helper_thread *h);

/* Sets stop, wakes the thread and waits for it to end; frees mu and cv. */
void helper_finish(helper_thread *h);

#endif
