/* Helper threads (see helper_thread.h). */
#include "helper_thread.h"
#include "affinity.h"

#include <signal.h>

void helper_init(helper_thread *h)
{
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->started = h->stop = 0;
}

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    /* every core of the process, also when the loop is pinned for a moment */
    pthread_attr_t attr;
    cpu_set_t set;
    int use = pthread_attr_init(&attr) == 0;
    if (use && affinity_unpinned(&set) == 0)
        pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    /* no signals: they are the loop's to read */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, use ? &attr : NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (use)
        pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

int helper_ensure(helper_thread *h, void *(*fn)(void *), void *arg)
{
    if (!h->started)
        h->started = thread_start(&h->t, fn, arg) == 0;
    return h->started;
}

int helper_next(helper_thread *h, const int *work, int finish_work)
{
    while (!*work && !h->stop)
        pthread_cond_wait(&h->cv, &h->mu);
    return !h->stop || (finish_work && *work);
}

void helper_signal(helper_thread *h)
{
    pthread_cond_signal(&h->cv);
}

void helper_finish(helper_thread *h)
{
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stop = 1;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->t, NULL);
        h->started = 0;
    }
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}
