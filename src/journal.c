/* The run journal writer. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct journal {
    int fd;
    int dirty;
    char *path;
};

journal *journal_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open journal %s: %s", path, strerror(errno));
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
    return j;
}

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int journal_write(journal *j, cJSON *obj)
{
    if (!cJSON_GetObjectItemCaseSensitive(obj, "t"))
        cJSON_AddNumberToObject(obj, "t", wall_now());
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!s) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(s);
    s[len] = '\n'; /* overwrite the NUL: the line goes out in one write */
    ssize_t w = write(j->fd, s, len + 1);
    int saved = errno;
    cJSON_free(s);
    if (w != (ssize_t)(len + 1)) {
        errno = w < 0 ? saved : EIO;
        return -1;
    }
    j->dirty = 1;
    return 0;
}

int journal_sync(journal *j)
{
    if (!j || !j->dirty)
        return 0;
    j->dirty = 0;
    return fsync(j->fd);
}

void journal_close(journal *j)
{
    if (!j)
        return;
    journal_sync(j);
    close(j->fd);
    free(j->path);
    free(j);
}

const char *journal_path(const journal *j) { return j->path; }
