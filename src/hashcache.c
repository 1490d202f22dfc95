/* File hashes and string sets (see hashcache.h). */
#include "hashcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <sys/stat.h>

/* ---- string sets: open addressing, grown at half load ------------------------- */

struct strset {
    char **slot;
    size_t cap, n;
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

strset *strset_new(void)
{
    strset *s = calloc(1, sizeof *s);
    if (s) {
        s->cap = 64;
        s->slot = calloc(s->cap, sizeof *s->slot);
    }
    return s;
}

void strset_free(strset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    free(s);
}

static size_t find(const strset *s, const char *key)
{
    size_t i = hash_str(key) & (s->cap - 1);
    while (s->slot[i] && strcmp(s->slot[i], key) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

int strset_has(const strset *s, const char *key) { return s->slot[find(s, key)] != NULL; }

void strset_add(strset *s, const char *key)
{
    if (strset_has(s, key))
        return;
    if ((s->n + 1) * 2 > s->cap) {
        strset grown = { calloc(s->cap * 2, sizeof(char *)), s->cap * 2, 0 };
        if (!grown.slot)
            return;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i])
                grown.slot[find(&grown, s->slot[i])] = s->slot[i];
        free(s->slot);
        s->slot = grown.slot;
        s->cap = grown.cap;
    }
    s->slot[find(s, key)] = strdup(key);
    s->n++;
}

/* ---- file hashes ---------------------------------------------------------------- */

struct entry {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char hex[65];
};

struct hashcache {
    struct entry *e;
    size_t n, cap;
};

hashcache *hashcache_new(void) { return calloc(1, sizeof(hashcache)); }

void hashcache_free(hashcache *hc)
{
    if (hc)
        free(hc->e);
    free(hc);
}

static int sha256_fd(int fd, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    static const size_t BUF = 1 << 20;
    unsigned char *buf = malloc(BUF);
    ssize_t r = -1;
    while (buf && (r = read(fd, buf, BUF)) > 0)
        EVP_DigestUpdate(ctx, buf, (size_t)r);
    free(buf);
    unsigned char md[32];
    unsigned len = 0;
    int ok = r == 0 && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    for (int i = 0; ok && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return ok ? 0 : -1;
}

int hashcache_file(hashcache *hc, const char *path, char hex[65], unsigned long long *size,
                   char *err, size_t n)
{
    /* not waiting for a writer: a FIFO is refused, not read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, n, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, n, "cannot send %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (size)
        *size = (unsigned long long)st.st_size;
    for (size_t i = 0; i < hc->n; i++) {
        struct entry *e = &hc->e[i];
        if (e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
            e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec) {
            memcpy(hex, e->hex, 65);
            close(fd);
            return 0;
        }
    }
    int rc = sha256_fd(fd, hex);
    close(fd);
    if (rc != 0) {
        snprintf(err, n, "cannot hash %s", path);
        return -1;
    }
    if (hc->n == hc->cap) {
        size_t cap = hc->cap ? hc->cap * 2 : 64;
        struct entry *g = realloc(hc->e, cap * sizeof *g);
        if (!g)
            return 0;
        hc->e = g;
        hc->cap = cap;
    }
    struct entry *e = &hc->e[hc->n++];
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    memcpy(e->hex, hex, 65);
    return 0;
}
