/* File-system helpers: folders, trees, atomic copies and writes. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>

static int say(char *err, size_t errlen, const char *what, const char *path)
{
    int e = errno; /* kept for the caller */
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
    errno = e;
    return -1;
}

int fs_mkdirs(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0; /* the common case: one call */
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return say(err, errlen, "cannot create folder", path);
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return say(err, errlen, "cannot create folder", buf);
        *p = c;
        if (!c)
            break;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return say(err, errlen, "cannot create folder", path);
    }
    return 0;
}

int fs_mkdirs_top(const char *path, char *err, size_t errlen)
{
    if (fs_mkdirs(path, err, errlen) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int flags = 0;
    if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        (void)ioctl(fd, FS_IOC_SETFLAGS, &flags); /* a hint: fine without */
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

static int rename_new(const char *from, const char *to);

int fs_mkdirs_spread(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    char parent[PATH_MAX], tmp[PATH_MAX + 64];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path || snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path) >=
                                       (int)sizeof parent)
        return fs_mkdirs(path, err, errlen);
    if (fs_mkdirs(parent, err, errlen) != 0)
        return -1;
    if (snprintf(tmp, sizeof tmp, "%s/.%.180s.%016llx.new", parent, slash + 1, fs_random_tag(0)) >=
            (int)sizeof tmp ||
        mkdir(tmp, 0777) != 0)
        return fs_mkdirs(path, err, errlen); /* as any folder, then */
    if (rename_new(tmp, path) != 0) {
        rmdir(tmp); /* made meanwhile by someone else, or not to be renamed */
        return fs_mkdirs(path, err, errlen);
    }
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(p) : unlink(p);
    return (rc != 0 && errno != ENOENT) ? -1 : 0;
}

int fs_rmtree(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : say(err, errlen, "cannot remove", path);
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : say(err, errlen, "cannot remove", path);
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return say(err, errlen, "cannot remove", path);
    return 0;
}

int fs_clear(const char *path, char *err, size_t errlen)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : say(err, errlen, "cannot list", path);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        /* the listing tells files from folders: no lstat for each file */
        if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) {
            if (unlink(sub) != 0 && errno != ENOENT)
                rc = say(err, errlen, "cannot remove", sub);
        } else {
            rc = fs_rmtree(sub, err, errlen);
        }
    }
    closedir(d);
    return rc;
}

unsigned long long fs_random_tag(unsigned long long salt)
{
    unsigned long long r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned long long)getpid() << 20 ^ salt;
    return r;
}

unsigned long long fs_hash(const char *s)
{
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void fs_utf8_whole(char *s)
{
    size_t len = strlen(s), start = len, need = 0;
    while (start > 0 && len - start < 4 && ((unsigned char)s[start - 1] & 0xC0) == 0x80)
        start--; /* back over continuation bytes to the lead byte */
    if (start == 0)
        return;
    unsigned char lead = (unsigned char)s[start - 1];
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (lead >= 0xC0 && len - (start - 1) < need)
        s[start - 1] = 0;
}

/* The longest start of s, at most at bytes, that ends between two UTF-8
 * characters (s is at least at bytes long). */
static size_t char_start(const char *s, size_t at)
{
    while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80)
        at--; /* not inside a UTF-8 character */
    return at;
}

void fs_text_copy(char *dst, size_t n, const char *src)
{
    if (n == 0)
        return;
    size_t len = strlen(src);
    if (len >= n)
        len = char_start(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = 0;
}

void fs_fit_name(char *out, size_t n, const char *name, size_t max)
{
    size_t len = strlen(name);
    if (len <= max || max < 18) {
        snprintf(out, n, "%s", name);
        return;
    }
    size_t keep = char_start(name, max - 17); /* "~" and 16 hex digits */
    snprintf(out, n, "%.*s~%016llx", (int)keep, name, fs_hash(name));
}

/* rename(2) that never replaces: one call where the file system can do it
 * (renameat2 RENAME_NOREPLACE), else a look first. */
static int rename_new(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (access(to, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(from, to);
}

/* The existing file old renamed to name (never over a file there) and
 * opened for writing, its mode set to mode exactly; or -1, with *renamed
 * saying whether the rename was made (name is then removed again; else
 * old is still there, and errno is the rename's). */
static int open_reused(const char *old, const char *name, mode_t mode, int *renamed)
{
    *renamed = rename_new(old, name) == 0;
    if (!*renamed)
        return -1;
    /* not O_TRUNC: a spare is empty already, and ext4 writes a file
     * truncated to 0 out at its close (auto_da_alloc), in the caller's
     * time; fs_copy_reusing cuts any tail */
    int fd = open(name, O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && fchmod(fd, mode) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    unlink(name);
    return -1;
}

/* Creates a uniquely named temporary file beside dst (".NAME.<random>.part",
 * so that it never matches the final name's pattern) with the given mode
 * (the umask applies, as for any new file). reuse, when not NULL, is an
 * existing file renamed to that name and truncated instead (no inode is
 * allocated; its mode is set to mode exactly); it is gone afterwards. */
static int temp_open(char *out, size_t n, const char *dst, mode_t mode, const char *reuse)
{
    const char *slash = strrchr(dst, '/');
    int dirlen = slash ? (int)(slash - dst + 1) : 0;
    char base[256]; /* a long name's temporary one fits all the same */
    fs_fit_name(base, sizeof base, slash ? slash + 1 : dst, FS_TEMP_NAME_MAX);
    for (int tries = 0; tries < 16; tries++) {
        unsigned long long r = fs_random_tag((unsigned long long)tries);
        if (snprintf(out, n, "%.*s.%s.%016llx.part", dirlen, dst, base, r) >= (int)n) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (reuse) {
            const char *old = reuse;
            reuse = NULL;
            int renamed, fd = open_reused(old, out, mode, &renamed);
            if (fd >= 0)
                return fd;
            if (renamed)
                continue;
            unlink(old); /* on another file system: a new file it is */
        }
        int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* temp_open's way for FS_COPY_IN_PLACE: dst itself, made new (reuse renamed
 * to it where it can be, else removed), or -1 with errno (EEXIST: dst is
 * there already; reuse is then still there, for temp_open). */
static int in_place_open(const char *dst, mode_t mode, const char **reuse)
{
    if (*reuse) {
        int renamed, fd = open_reused(*reuse, dst, mode, &renamed);
        if (fd >= 0 || renamed) {
            *reuse = NULL;
            if (fd >= 0)
                return fd;
            /* not to be written: a new file it is */
        } else if (errno == EEXIST) {
            return -1;
        } else {
            unlink(*reuse); /* on another file system: a new file it is */
            *reuse = NULL;
        }
    }
    return open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
}

/* File systems (by device) that cannot share extents: FICLONE is not
 * asked again for their files (a failed call for every copy). */
static dev_t no_clone[8];
static int nno_clone;
static pthread_mutex_t no_clone_mu = PTHREAD_MUTEX_INITIALIZER; /* staging threads copy too */

static int clone_file(int in, int out, dev_t dev)
{
    pthread_mutex_lock(&no_clone_mu);
    int known = 0;
    for (int i = 0; i < nno_clone && !known; i++)
        known = no_clone[i] == dev;
    pthread_mutex_unlock(&no_clone_mu);
    if (known)
        return -1;
    if (ioctl(out, FICLONE, in) == 0)
        return 0;
    int e = errno;
    pthread_mutex_lock(&no_clone_mu);
    if ((e == EOPNOTSUPP || e == ENOTTY || e == EINVAL) &&
        nno_clone < (int)(sizeof no_clone / sizeof no_clone[0]))
        no_clone[nno_clone++] = dev;
    pthread_mutex_unlock(&no_clone_mu);
    errno = e;
    return -1;
}

/* Set by a thread whose copies may be called off (fs_copy_stop_flag). */
static _Thread_local const atomic_int *stop_flag;

void fs_copy_stop_flag(const atomic_int *flag)
{
    stop_flag = flag;
}

static int stopped(void)
{
    if (stop_flag && atomic_load_explicit(stop_flag, memory_order_relaxed)) {
        errno = ECANCELED;
        return 1;
    }
    return 0;
}

/* A copy that may be called off goes in slices of this many bytes. */
#define COPY_SLICE (64LL << 20)

/* Writes all n bytes of buf; 0, or -1 with errno. */
static int write_all(int out, const char *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(out, buf + off, n - off);
        if (w < 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

static int copy_data(int in, int out, dev_t dev, off_t size)
{
    if (stopped()) /* an empty file too */
        return -1;
    if (clone_file(in, out, dev) == 0)
        return 0;
    off_t left = size;
    while (left > 0) {
        if (stopped())
            return -1;
        size_t want = stop_flag && left > COPY_SLICE ? (size_t)COPY_SLICE : (size_t)left;
        ssize_t n = copy_file_range(in, NULL, out, NULL, want, 0);
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
            break; /* fall back to read/write below */
        if (n < 0)
            return -1;
        if (n == 0)
            break; /* the source changed size: the rest by read/write, to its end */
        left -= n;
    }
    if (left == 0)
        return 0;
    if (lseek(in, size - left, SEEK_SET) < 0 || lseek(out, size - left, SEEK_SET) < 0)
        return -1;
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (stopped() || write_all(out, buf, (size_t)n) != 0)
            return -1;
    }
    return n < 0 ? -1 : 0;
}

/* Copies in to out leaving out every CR; *written: the bytes written. */
static int copy_without_cr(int in, int out, off_t *written)
{
    char buf[1 << 16];
    ssize_t n;
    *written = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (stopped())
            return -1;
        size_t kept = 0;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != '\r')
                buf[kept++] = buf[i];
        if (write_all(out, buf, kept) != 0)
            return -1;
        *written += (off_t)kept;
    }
    return n < 0 ? -1 : 0;
}

int fs_has_cr(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    char buf[1 << 16];
    ssize_t n;
    int found = 0;
    while (!found && (n = read(fd, buf, sizeof buf)) > 0)
        found = memchr(buf, '\r', (size_t)n) != NULL;
    int e = errno;
    close(fd);
    if (!found && n < 0) {
        errno = e;
        return -1;
    }
    return found;
}

int fs_copy(const char *src, const char *dst, int keep_mtime, char *err, size_t errlen)
{
    return fs_copy_reusing(src, dst, keep_mtime ? FS_COPY_MTIME : 0, NULL, err, errlen);
}

int fs_copy_reusing(const char *src, const char *dst, int flags, const char *reuse, char *err,
                    size_t errlen)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    int statted = in >= 0 && fstat(in, &st) == 0;
    if (!statted || !S_ISREG(st.st_mode)) {
        if (statted) /* a folder, a FIFO, a device: not a file to copy */
            errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        int e = errno;
        if (in >= 0)
            close(in);
        if (reuse)
            unlink(reuse); /* gone either way (fsutil.h) */
        errno = e;
        return say(err, errlen, in < 0 ? "cannot read" : "cannot copy", src);
    }
    char tmp[PATH_MAX + 64];
    mode_t mode = (st.st_mode & 0777) | ((flags & FS_COPY_WRITABLE) ? S_IWUSR : 0);
    int out = -1, reused = reuse != NULL, in_place = 0;
    if (flags & FS_COPY_IN_PLACE) {
        out = in_place_open(dst, mode, &reuse);
        in_place = out >= 0;
        if (out < 0 && errno != EEXIST) {
            int e = errno;
            close(in);
            if (reuse)
                unlink(reuse);
            errno = e;
            return say(err, errlen, "cannot write", dst);
        }
    }
    if (!in_place)
        out = temp_open(tmp, sizeof tmp, dst, mode, reuse);
    if (out < 0) {
        close(in);
        return say(err, errlen, "cannot write", tmp);
    }
    off_t size = st.st_size;
    int rc = (flags & FS_COPY_NO_CR) ? copy_without_cr(in, out, &size) : copy_data(in, out, st.st_dev, size);
    struct stat now;
    if (rc == 0 && reused && fstat(out, &now) == 0 && now.st_size > size)
        rc = ftruncate(out, size);
    int saved = errno;
    if (rc == 0 && (flags & FS_COPY_MTIME)) {
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        futimens(out, ts);
    }
    close(in);
    if (close(out) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && !in_place && rename(tmp, dst) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(in_place ? dst : tmp);
        errno = saved;
        snprintf(err, errlen, "cannot copy %s to %s: %s", src, dst, strerror(saved));
        return -1;
    }
    return 0;
}

int fs_swap_in(const char *src, const char *dst, enum fs_placed *how)
{
    /* the exchange first: a result is mostly put over an earlier one */
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_EXCHANGE) == 0) {
        *how = FS_PUT_SWAPPED;
        return 0;
    }
    int e = errno;
    struct stat st;
    if (e == ENOENT || lstat(dst, &st) != 0) { /* no dst (or no src: the rename says so) */
        *how = FS_PUT_NEW;
        return rename(src, dst);
    }
    if (e != EINVAL && e != ENOSYS) {
        errno = e;
        return -1;
    }
    *how = FS_PUT_REPLACED;
    return rename(src, dst);
}

void fs_swap_back(const char *src, const char *dst, enum fs_placed how)
{
    if (how == FS_PUT_SWAPPED)
        renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_EXCHANGE);
    else if (how == FS_PUT_NEW)
        rename(dst, src);
}

int fs_write_atomic(const char *path, const void *data, size_t len, int sync, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 64];
    int fd = temp_open(tmp, sizeof tmp, path, 0666, NULL);
    if (fd < 0)
        return say(err, errlen, "cannot write", tmp);
    if (write_all(fd, data, len) != 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        return say(err, errlen, "cannot write", path);
    }
    int failed = sync && fsync(fd) != 0 ? errno : 0; /* the first error counts */
    if (close(fd) != 0 && !failed)
        failed = errno;
    if (!failed && rename(tmp, path) != 0)
        failed = errno;
    if (failed) {
        unlink(tmp);
        errno = failed;
        return say(err, errlen, "cannot write", path);
    }
    if (sync) { /* the rename itself: the folder's entry */
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1,
                 slash ? path : ".");
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

/* Is the start of the open file fd in the page cache? A read that must not
 * wait tells (RWF_NOWAIT); where it cannot be asked, the answer is no. */
static int cached(int fd)
{
    char c;
    struct iovec v = { &c, 1 };
    return preadv2(fd, &v, 1, 0, RWF_NOWAIT) >= 0;
}

int fs_prefetch(const char *path, long long bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    int asked = !cached(fd) && posix_fadvise(fd, 0, (off_t)bytes, POSIX_FADV_WILLNEED) == 0;
    close(fd);
    return asked;
}

double fs_mtime(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
}

int fs_any_case(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[8192];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int found = -1;
    for (struct dirent *e; found != 0 && (e = readdir(d));)
        if (strcasecmp(e->d_name, base) == 0) {
            snprintf(out, n, "%s/%s", dir, e->d_name);
            found = 0;
        }
    closedir(d);
    return found;
}
