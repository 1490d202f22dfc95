/* rasrun.fs: the file-system calls plain Lua lacks.
 *
 *   fs.stat(p) -> {type=, size=, mtime=, mode=, ino=, nlink=} | nil, msg
 *   fs.exists(p)  fs.isdir(p)  fs.isfile(p)  fs.mtime(p) -> seconds | nil
 *   fs.list(dir) -> sorted names | nil, msg
 *   fs.mkdirs(p)  fs.rmtree(p)  fs.remove(p)  fs.rename(a, b)   -> true | nil, msg
 *   fs.mkdirs_top(p): fs.mkdirs, marked for fresh disk space (fs_mkdirs_top)
 *   fs.mkdirs_spread(p): fs.mkdirs, the last folder placed as a new name's (fs_mkdirs_spread)
 *   fs.copy(src, dst [, keep_mtime])  fs.write(p, data)  (both atomic)
 *   fs.read(p [, max]) -> data | nil, msg
 *   fs.touch(p [, mtime])  fs.realpath(p)  fs.tempdir(prefix [, in])  fs.free_bytes(p)
 *   fs.glob(pattern) -> sorted paths   fs.readlink(p) -> target | nil, msg
 *   fs.fnmatch(pattern, name) -> does name match the glob, whatever the case */
#include "fsutil.h"
#include "host.h"

#include <lauxlib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/statvfs.h>

static int fail_errno(lua_State *L, const char *what, const char *path)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s%s%s: %s", what, *what ? " " : "", path, strerror(e));
    return 2;
}

static int result(lua_State *L, int rc, const char *err)
{
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static double ts(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

static int l_stat(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(p, &st) != 0)
        return fail_errno(L, "", p);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : "other");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, ts(st.st_mtim));
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st.st_ino);
    lua_setfield(L, -2, "ino");
    lua_pushinteger(L, (lua_Integer)st.st_nlink);
    lua_setfield(L, -2, "nlink");
    return 1;
}

static int is_type(lua_State *L, mode_t want)
{
    struct stat st;
    const char *p = luaL_checkstring(L, 1);
    lua_pushboolean(L, stat(p, &st) == 0 && (want == 0 || (st.st_mode & S_IFMT) == want));
    return 1;
}

static int l_exists(lua_State *L) { return is_type(L, 0); }
static int l_isdir(lua_State *L) { return is_type(L, S_IFDIR); }
static int l_isfile(lua_State *L) { return is_type(L, S_IFREG); }

static int l_mtime(lua_State *L)
{
    double t = fs_mtime(luaL_checkstring(L, 1));
    if (t < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, t);
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int l_list(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    DIR *d = opendir(p);
    if (!d)
        return fail_errno(L, "cannot list", p);
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            char **g = realloc(names, (cap *= 2) * sizeof *names);
            if (!g)
                break;
            names = g;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    if (!names)
        return luaL_error(L, "out of memory listing %s", p);
    qsort(names, n, sizeof *names, cmp_str);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        free(names[i]);
    }
    free(names);
    return 1;
}

static int l_mkdirs_spread(lua_State *L)
{
    char err[1024];
    return result(L, fs_mkdirs_spread(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int l_mkdirs_top(lua_State *L)
{
    char err[1024];
    return result(L, fs_mkdirs_top(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int l_mkdirs(lua_State *L)
{
    char err[512];
    return result(L, fs_mkdirs(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int l_rmtree(lua_State *L)
{
    char err[512];
    return result(L, fs_rmtree(luaL_checkstring(L, 1), err, sizeof err), err);
}

static int l_remove(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    if (unlink(p) != 0 && errno != ENOENT)
        return fail_errno(L, "cannot remove", p);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rename(lua_State *L)
{
    const char *a = luaL_checkstring(L, 1), *b = luaL_checkstring(L, 2);
    if (rename(a, b) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot rename %s to %s: %s", a, b, strerror(e));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_copy(lua_State *L)
{
    char err[1024];
    return result(L, fs_copy(luaL_checkstring(L, 1), luaL_checkstring(L, 2), lua_toboolean(L, 3),
                             err, sizeof err), err);
}

/* fs.write(path, data [, {sync = false}]): atomic; sync = false skips the
 * fsync, for files whose loss in a crash costs nothing. */
static int l_write(lua_State *L)
{
    size_t len;
    const char *p = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    int sync = 1;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "sync");
        sync = lua_isnil(L, -1) || lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    char err[512];
    return result(L, fs_write_atomic(p, data, len, sync, err, sizeof err), err);
}

static int l_read(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, LUA_MAXINTEGER);
    luaL_argcheck(L, max >= 0, 2, "the most bytes to read must be 0 or more");
    /* not blocking in open: a named pipe would wait for a writer forever */
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return fail_errno(L, "cannot read", p);
    struct stat st;
    if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read %s: not a file (a %s)", p, S_ISFIFO(st.st_mode) ? "named pipe" : "socket");
        return 2;
    }
    fcntl(fd, F_SETFL, 0);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer total = 0;
    for (;;) {
        size_t want = LUAL_BUFFERSIZE;
        if ((lua_Integer)want > max - total)
            want = (size_t)(max - total);
        if (want == 0)
            break;
        char *dst = luaL_prepbuffsize(&b, want);
        ssize_t n = read(fd, dst, want);
        if (n < 0) {
            close(fd);
            return fail_errno(L, "cannot read", p);
        }
        if (n == 0)
            break;
        luaL_addsize(&b, (size_t)n);
        total += n;
    }
    close(fd);
    luaL_pushresult(&b);
    return 1;
}

static int l_touch(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return fail_errno(L, "cannot touch", p);
    close(fd);
    struct timespec t[2];
    if (lua_isnoneornil(L, 2)) {
        t[0].tv_nsec = t[1].tv_nsec = UTIME_NOW;
        t[0].tv_sec = t[1].tv_sec = 0;
    } else {
        double m = luaL_checknumber(L, 2);
        t[0].tv_sec = t[1].tv_sec = (time_t)m;
        t[0].tv_nsec = t[1].tv_nsec = (long)((m - (double)(time_t)m) * 1e9);
    }
    if (utimensat(AT_FDCWD, p, t, 0) != 0)
        return fail_errno(L, "cannot touch", p);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_realpath(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    if (!realpath(p, buf))
        return fail_errno(L, "", p);
    lua_pushstring(L, buf);
    return 1;
}

static int l_readlink(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n < 0)
        return fail_errno(L, "", p);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int l_tempdir(lua_State *L)
{
    const char *prefix = luaL_optstring(L, 1, "rasrun");
    const char *base = luaL_optstring(L, 2, getenv("TMPDIR"));
    if (!base || !*base)
        base = "/tmp";
    lua_pushfstring(L, "%s/%s-XXXXXX", base, prefix);
    char *tmpl = strdup(lua_tostring(L, -1));
    if (!tmpl)
        return luaL_error(L, "out of memory");
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return fail_errno(L, "cannot create temporary folder in", base);
    }
    lua_pushstring(L, tmpl);
    free(tmpl);
    return 1;
}

static int l_free_bytes(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    struct statvfs sv;
    if (statvfs(p, &sv) != 0)
        return fail_errno(L, "", p);
    lua_pushinteger(L, (lua_Integer)sv.f_bavail * (lua_Integer)sv.f_frsize);
    return 1;
}

/* fs.prefetch(paths): asks the kernel to start reading the files (each
 * one's whole contents) into the page cache and returns at once; the reads
 * then go on together instead of one after another when the files are read.
 * When the first file that opens is in the cache already, the others are
 * taken to be too, and nothing is asked (asking costs about as much as
 * reading a cached file). Files that cannot be opened are passed over.
 * Returns how many files were asked for. */
static int l_prefetch(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1), asked = 0;
    int first = 1, warm = 0;
    for (lua_Integer i = 1; i <= n && !warm; i++) {
        lua_rawgeti(L, 1, i);
        const char *p = lua_tostring(L, -1);
        int r = p ? fs_prefetch(p, 0) : -1;
        lua_pop(L, 1);
        if (r < 0)
            continue;
        warm = first && r == 0;
        first = 0;
        asked += r;
    }
    lua_pushinteger(L, asked);
    return 1;
}

static int l_glob(lua_State *L)
{
    const char *pat = luaL_checkstring(L, 1);
    glob_t g;
    int rc = glob(pat, 0, NULL, &g);
    lua_newtable(L);
    if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; i++) {
            lua_pushstring(L, g.gl_pathv[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    globfree(&g);
    return 1;
}

/* fs.fnmatch(pattern, name): does name match the glob pattern, whatever
 * the case (as output names are matched: src/jobspec.c)? */
static int l_fnmatch(lua_State *L)
{
    lua_pushboolean(L, fnmatch(luaL_checkstring(L, 1), luaL_checkstring(L, 2), FNM_CASEFOLD) == 0);
    return 1;
}

static const luaL_Reg funcs[] = {
    { "stat", l_stat },         { "exists", l_exists },   { "isdir", l_isdir },
    { "isfile", l_isfile },     { "mtime", l_mtime },     { "list", l_list },
    { "mkdirs", l_mkdirs },     { "rmtree", l_rmtree },   { "remove", l_remove },
    { "mkdirs_top", l_mkdirs_top },  { "mkdirs_spread", l_mkdirs_spread },
    { "rename", l_rename },     { "copy", l_copy },       { "write", l_write },
    { "read", l_read },         { "touch", l_touch },     { "realpath", l_realpath },
    { "tempdir", l_tempdir },   { "free_bytes", l_free_bytes }, { "glob", l_glob },
    { "readlink", l_readlink }, { "prefetch", l_prefetch }, { "fnmatch", l_fnmatch },
    { NULL, NULL },
};

int luaopen_rasrun_fs(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
