/* Spares (see spares.h): moved aside after a replace, emptied on a helper
 * thread, handed out emptied. */
#include "spares.h"
#include "fsutil.h"
#include "helper_thread.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* At most this many are kept emptied and ready; the helper removes the
 * others, up to MAX_QUEUED waiting for it: freeing a file's blocks can wait
 * for the disk, and the loop thread, which would remove them otherwise,
 * waited about 1 ms per file on a file system mounted with discard, while
 * a core stood idle. */
#define MAX_SPARES 16
#define MAX_QUEUED 256

struct spares {
    char *dir;
    int seq, disabled, made_dir;
    helper_thread helper;      /* its mu guards the lists */
    char *pending[MAX_QUEUED]; /* to empty, or to remove when enough are ready */
    char *ready[MAX_SPARES];   /* emptied */
    int npending, nready;
};

/* Empties a replaced file unless some process still has it open: a reader
 * of the result it was (RAS Mapper, a script, smbd serving it) keeps what it
 * reads. The kernel grants a write lease only on a file that no one else has
 * open; where leases are not to be had, the file is not reused. */
static int empty_if_unused(const char *p)
{
    int fd = open(p, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    struct stat st;
    int ok = fcntl(fd, F_SETLEASE, F_WRLCK) == 0;
    if (ok) {
        /* a name made meanwhile shares the file: let it go */
        ok = fstat(fd, &st) == 0 && st.st_nlink == 1 && ftruncate(fd, 0) == 0;
        fcntl(fd, F_SETLEASE, F_UNLCK);
    }
    close(fd);
    return ok;
}

static void *empty_loop(void *arg)
{
    spares *sp = arg;
    helper_thread *h = &sp->helper;
    pthread_mutex_lock(&h->mu);
    /* at the stop, what is left is removed with the folder */
    while (helper_next(h, &sp->npending, 0)) {
        char *p = sp->pending[--sp->npending];
        int keep = sp->nready < MAX_SPARES;
        pthread_mutex_unlock(&h->mu);
        int ok = keep && empty_if_unused(p);
        if (!ok)
            unlink(p); /* not needed, or an open reader keeps the file */
        pthread_mutex_lock(&h->mu);
        if (ok)
            sp->ready[sp->nready++] = p;
        else
            free(p);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

spares *spares_new(const char *dir)
{
    /* Someone opening a spare while the helper holds its lease (a copy or a
     * backup of the project folder, which holds the run folder) makes the
     * kernel send the lease holder SIGIO, whose default action ends the
     * process: it is ignored, process-wide (engines get the default back,
     * proc_spawn). The lease is let go within moments anyway. */
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigemptyset(&ign.sa_mask);
    sigaction(SIGIO, &ign, NULL);
    spares *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->dir = strdup(dir))) {
        free(sp);
        return NULL;
    }
    char err[256];
    fs_rmtree(dir, err, sizeof err);
    helper_init(&sp->helper);
    return sp;
}

/* The helper is woken for this many small replaced files at once (each
 * wake-up is a system call here and a switch on another core, where an
 * engine runs: per plan, that counted when plans take milliseconds), or at
 * once while fewer than LOW_READY are ready, or when there are as many ready
 * as are kept (the rest are only to be removed), or for a file of BIG bytes
 * or more: its disk space comes back at once, as it would without spares. */
#define WAKE_BATCH 8
#define LOW_READY 4
#define BIG (1LL << 20)

/* With mu held. */
static void wake_if_due(spares *sp, int big)
{
    if (sp->npending > 0 &&
        (big || sp->npending >= WAKE_BATCH || sp->nready < LOW_READY || sp->nready >= MAX_SPARES))
        helper_signal(&sp->helper);
}

/* A place in the spares folder for old, or NULL; *size: old's. */
static char *spare_name(spares *sp, const char *old, long long *size)
{
    struct stat st;
    if (!sp || sp->disabled)
        return NULL;
    pthread_mutex_lock(&sp->helper.mu);
    int full = sp->npending >= MAX_QUEUED;
    pthread_mutex_unlock(&sp->helper.mu);
    if (full || lstat(old, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
        return NULL;
    *size = (long long)st.st_size;
    if (!sp->made_dir) {
        if (mkdir(sp->dir, 0700) != 0 && errno != EEXIST) {
            sp->disabled = 1;
            return NULL;
        }
        sp->made_dir = 1;
    }
    char *p = NULL;
    if (asprintf(&p, "%s/%d", sp->dir, ++sp->seq) < 0)
        return NULL;
    return p;
}

void spares_adopt(spares *sp, const char *old)
{
    long long size = 0;
    char *p = spare_name(sp, old, &size);
    if (!p || rename(old, p) != 0) {
        if (p && errno == EXDEV)
            sp->disabled = 1; /* the spares folder is on another file system */
        free(p);
        unlink(old);
        return;
    }
    pthread_mutex_lock(&sp->helper.mu);
    int helper = helper_ensure(&sp->helper, empty_loop, sp);
    if (helper && sp->npending < MAX_QUEUED) {
        sp->pending[sp->npending++] = p;
        p = NULL;
        wake_if_due(sp, size >= BIG);
    }
    pthread_mutex_unlock(&sp->helper.mu);
    if (p) { /* not kept: the queue is full, or there is no helper thread */
        if (!helper)
            sp->disabled = 1; /* unlinking here could wait for the disk: no more spares */
        unlink(p);
        free(p);
    }
}

char *spares_take(spares *sp)
{
    if (!sp)
        return NULL;
    pthread_mutex_lock(&sp->helper.mu);
    char *p = sp->nready ? sp->ready[--sp->nready] : NULL;
    wake_if_due(sp, 0);
    pthread_mutex_unlock(&sp->helper.mu);
    return p;
}

void spares_free(spares *sp)
{
    if (!sp)
        return;
    helper_finish(&sp->helper);
    while (sp->npending)
        free(sp->pending[--sp->npending]);
    while (sp->nready)
        free(sp->ready[--sp->nready]);
    char err[256];
    fs_rmtree(sp->dir, err, sizeof err);
    free(sp->dir);
    free(sp);
}
