/* ustar writer as a pull stream (see tarstream.h). */
#include "tarstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define BLOCK 512

/* Between files (T_NEXT), inside one (T_DATA), ending (T_TRAILER), done. */
enum { T_NEXT, T_DATA, T_TRAILER, T_END };

struct tar_stream {
    const char *root;
    char *const *rel;
    int n, i;
    int state;
    int fd;
    unsigned long long size, done; /* of the current file */
    unsigned char block[2 * BLOCK]; /* a header, padding, or the trailer */
    size_t block_len, block_off;    /* what of it is still to be emitted */
    unsigned long long content;
    char err[1024];
};

/* Where a ustar header splits path into prefix and name: 0 when the name
 * field holds it whole, -1 when no split fits. */
static long split_point(const char *path)
{
    size_t len = strlen(path);
    if (len == 0)
        return -1;
    if (len <= 100)
        return 0;
    for (size_t k = len - 1; k > 0; k--)
        if (path[k] == '/' && k <= 155 && len - k - 1 <= 100 && len - k - 1 > 0)
            return (long)k;
    return -1;
}

int tar_fits(const char *path) { return split_point(path) >= 0; }

static void octal(char *field, size_t width, unsigned long long v)
{
    /* width-1 digits, zero-padded, then NUL */
    snprintf(field, width, "%0*llo", (int)(width - 1), v);
}

static int make_header(tar_stream *t, const char *name, const struct stat *st)
{
    unsigned char *h = t->block;
    memset(h, 0, BLOCK);
    long k = split_point(name);
    if (k < 0)
        return -1;
    size_t len = strlen(name);
    if (k == 0) {
        memcpy(h, name, len);
    } else {
        memcpy(h + 345, name, (size_t)k);                    /* prefix */
        memcpy(h, name + k + 1, len - (size_t)k - 1);         /* name */
    }
    octal((char *)h + 100, 8, (unsigned long long)(st->st_mode & 0777));
    octal((char *)h + 108, 8, 0);  /* uid */
    octal((char *)h + 116, 8, 0);  /* gid */
    octal((char *)h + 124, 12, (unsigned long long)st->st_size);
    octal((char *)h + 136, 12, (unsigned long long)(st->st_mtime < 0 ? 0 : st->st_mtime));
    h[156] = '0';                  /* regular file */
    memcpy(h + 257, "ustar", 6);   /* magic, NUL-terminated */
    memcpy(h + 263, "00", 2);      /* version */
    memset(h + 148, ' ', 8);       /* the checksum counts its own field as spaces */
    unsigned sum = 0;
    for (int b = 0; b < BLOCK; b++)
        sum += h[b];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

tar_stream *tar_new(const char *root, char *const *rel, int n)
{
    tar_stream *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->root = root;
    t->rel = rel;
    t->n = n;
    t->fd = -1;
    t->state = T_NEXT;
    return t;
}

static ssize_t fail(tar_stream *t, const char *what)
{
    snprintf(t->err, sizeof t->err, "%s/%s: %s", t->root, t->rel[t->i], what);
    t->state = T_END;
    return -1;
}

/* Opens file i and queues its header; past the last file, the trailer (two
 * zero blocks). */
static int next_file(tar_stream *t)
{
    t->block_off = 0;
    if (t->i >= t->n) {
        memset(t->block, 0, sizeof t->block);
        t->block_len = 2 * BLOCK;
        t->state = T_TRAILER;
        return 0;
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", t->root, t->rel[t->i]);
    t->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (t->fd < 0 || fstat(t->fd, &st) != 0)
        return (int)fail(t, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return (int)fail(t, "not a regular file");
    if (make_header(t, t->rel[t->i], &st) != 0)
        return (int)fail(t, "name too long for a tar header");
    t->size = (unsigned long long)st.st_size;
    t->done = 0;
    t->block_len = BLOCK;
    t->state = T_DATA;
    return 0;
}

ssize_t tar_read(tar_stream *t, char *buf, size_t n)
{
    size_t out = 0;
    while (out < n && t->state != T_END) {
        if (t->block_off < t->block_len) {
            size_t k = t->block_len - t->block_off;
            if (k > n - out)
                k = n - out;
            memcpy(buf + out, t->block + t->block_off, k);
            t->block_off += k;
            out += k;
            continue;
        }
        if (t->state == T_NEXT) {
            if (next_file(t) != 0)
                return -1;
        } else if (t->state == T_TRAILER) {
            t->state = T_END;
        } else if (t->done < t->size) {
            size_t want = n - out;
            if (want > t->size - t->done)
                want = (size_t)(t->size - t->done);
            ssize_t r = read(t->fd, buf + out, want);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return fail(t, r < 0 ? strerror(errno) : "the file shrank while it was sent");
            t->done += (unsigned long long)r;
            t->content += (unsigned long long)r;
            out += (size_t)r;
        } else { /* the file is out: pad it to a whole block, then the next */
            close(t->fd);
            t->fd = -1;
            size_t rem = (size_t)(t->size % BLOCK);
            memset(t->block, 0, BLOCK);
            t->block_len = rem ? BLOCK - rem : 0;
            t->block_off = 0;
            t->i++;
            t->state = T_NEXT;
        }
    }
    return (ssize_t)out;
}

const char *tar_error(const tar_stream *t) { return t->err; }

unsigned long long tar_content_bytes(const tar_stream *t) { return t->content; }

void tar_free(tar_stream *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    free(t);
}
