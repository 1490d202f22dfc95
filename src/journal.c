/* The run journal writer. Lines are written at once (a killed controller
 * loses nothing it wrote); fsync runs on a helper thread so that the
 * scheduler's loop never waits for the disk. journal_close syncs last. */
#include "journal.h"
#include "jsonutil.h"
#include "helper_thread.h"
#include "loop.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

/* Group commit: at most one background fsync per this many seconds. */
#define SYNC_EVERY 0.1

struct journal {
    int fd;
    int dirty;      /* written since the last fsync request */
    double last_sync; /* monotonic */
    char *path;
    helper_thread flusher;
    int pending;    /* an fsync is wanted (guarded by flusher.mu) */
    int sync_err;   /* errno of the helper's last failed fsync (guarded by flusher.mu) */
    int told;       /* a failed fsync was reported */
    int cut;        /* the file ends in a line cut short: the next one starts a new line */
};

/* Once per journal: the disk may not hold what was written. */
static void tell_sync_failed(journal *j, int e)
{
    if (j->told)
        return;
    j->told = 1;
    fprintf(stderr, "rasrun: cannot sync the journal %s to disk: %s (an operating system crash "
            "could lose its last lines)\n", j->path, strerror(e));
}

static void *flush_loop(void *arg)
{
    journal *j = arg;
    helper_thread *h = &j->flusher;
    pthread_mutex_lock(&h->mu);
    while (helper_next(h, &j->pending, 1)) {
        j->pending = 0;
        pthread_mutex_unlock(&h->mu);
        int failed = fdatasync(j->fd) != 0 ? errno : 0;
        pthread_mutex_lock(&h->mu);
        if (failed)
            j->sync_err = failed;
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* The controller writing a journal holds a lock on it for the whole run: a
 * second one (a resume of a run that is still going) is refused before it
 * touches the run's engines. A line that a killed controller cut short is
 * ended, so that the next line is read on its own. */
journal *journal_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open journal %s: %s", path, strerror(errno));
        return NULL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen, "%s is in use: another rasrun is running this run (resume it "
                     "once that one has ended)", path);
        else
            snprintf(err, errlen, "cannot lock journal %s: %s", path, strerror(e));
        return NULL;
    }
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 &&
        last != '\n' && write(fd, "\n", 1) != 1) {
        snprintf(err, errlen, "cannot write journal %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    journal *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->fd = fd;
    helper_init(&j->flusher);
    return j;
}

/* cJSON prints a double with sprintf("%1.15g"), reads it back with sscanf,
 * and prints it again with 17 digits when that did not give it back (a time
 * to the nanosecond): three formatting calls per number of every event. One
 * does here. Whole numbers in full, others to the microsecond; 0 for NaN
 * and infinities (null). */
static int number_text(char *buf, size_t n, double v)
{
    if (!isfinite(v))
        return 0;
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(buf, n, "%lld", (long long)v);
    else
        snprintf(buf, n, "%.6f", v);
    json_decimal_point(buf);
    return 1;
}

void journal_add_number(cJSON *obj, const char *key, double v)
{
    char buf[64];
    if (number_text(buf, sizeof buf, v))
        cJSON_AddRawToObject(obj, key, buf);
    else
        cJSON_AddNullToObject(obj, key);
}

/* Writes line (len bytes, its last one the new line) in one write. */
static int write_line(journal *j, const char *line, size_t len)
{
    ssize_t w = -1;
    if (j->cut && write(j->fd, "\n", 1) == 1)
        j->cut = 0;
    if (!j->cut)
        w = write(j->fd, line, len);
    int saved = errno;
    if (w != (ssize_t)len) {
        /* A part of the line went out (the disk filled up): it is taken
         * back, or else ended by the next line's write, so that the next
         * line is not glued to it and lost with it. */
        if (w > 0) {
            off_t end = lseek(j->fd, 0, SEEK_END);
            j->cut = end < w || ftruncate(j->fd, end - w) != 0;
        }
        errno = w < 0 ? saved : EIO;
        return -1;
    }
    j->dirty = 1;
    return 0;
}

int journal_write(journal *j, cJSON *obj)
{
    if (!cJSON_GetObjectItemCaseSensitive(obj, "t"))
        journal_add_number(obj, "t", loop_wall());
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!s) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(s);
    s[len] = '\n'; /* overwrite the NUL: the line goes out in one write */
    int rc = write_line(j, s, len + 1);
    int saved = errno;
    cJSON_free(s);
    errno = saved;
    return rc;
}

int journal_write_text(journal *j, const char *obj, size_t len, int add_t)
{
    char t[80] = "";
    if (add_t && len >= 2 && obj[len - 1] == '}') {
        char num[64];
        if (number_text(num, sizeof num, loop_wall()))
            snprintf(t, sizeof t, "%s\"t\":%s", len > 2 ? "," : "", num);
    }
    size_t tl = strlen(t), n = len - (tl ? 1 : 0);
    char *line = malloc(n + tl + 3);
    if (!line) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(line, obj, n);
    memcpy(line + n, t, tl);
    n += tl;
    if (tl)
        line[n++] = '}';
    line[n++] = '\n';
    int rc = write_line(j, line, n);
    int saved = errno;
    free(line);
    errno = saved;
    return rc;
}

int journal_sync(journal *j)
{
    if (!j || !j->dirty)
        return 0;
    j->dirty = 0;
    if (fsync(j->fd) == 0)
        return 0;
    int e = errno;
    tell_sync_failed(j, e);
    errno = e;
    return -1;
}

void journal_sync_async(journal *j)
{
    if (!j || !j->dirty)
        return;
    double now = loop_now();
    if (now - j->last_sync < SYNC_EVERY)
        return; /* still dirty: a later call syncs it */
    j->last_sync = now;
    j->dirty = 0;
    pthread_mutex_lock(&j->flusher.mu);
    int threaded = helper_ensure(&j->flusher, flush_loop, j);
    j->pending = 1;
    helper_signal(&j->flusher);
    int failed = j->sync_err;
    pthread_mutex_unlock(&j->flusher.mu);
    if (failed)
        tell_sync_failed(j, failed);
    if (!threaded && fsync(j->fd) != 0) /* no thread: do it here */
        tell_sync_failed(j, errno);
}

void journal_close(journal *j)
{
    if (!j)
        return;
    helper_finish(&j->flusher);
    j->dirty = 1;
    journal_sync(j);
    close(j->fd);
    free(j->path);
    free(j);
}

const char *journal_path(const journal *j) { return j->path; }
