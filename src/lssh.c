/* rasrun.ssh_c: SSH connections from Lua (probes, tests, benchmarks).
 * lua/rasrun/ssh.lua resolves settings (~/.ssh/config) before calling here.
 *
 *   local c, err = ssh_c.connect{ name=, hostname=, port=, user=, identities={...}, agent=,
 *                                 password_env=, passphrase_env=, known_hosts=, host_key=,
 *                                 connect_timeout=, io_timeout= }
 *   c:exec(cmd [, input [, timeout]]) -> code, stdout, stderr | nil, msg
 *   c:put(local, remote)  c:get(remote, local)  -> true | nil, msg
 *   c:stat(remote) -> {size=, mtime=} | false (absent) | nil, msg
 *   c:stage_tree(local_dir, remote_dir) -> {files=, uploaded=, bytes=} | nil, msg
 *       (small files in one tar stream to the host's tar, big ones by SFTP)
 *       (files whose hash and place match the last staging's manifest are not sent)
 *   c:stats() -> {wire_sent=, wire_received=, file_sent=, file_received=}
 *   c:close()      (also __gc, __close)
 *   ssh_c.kill_script(pid, dir [, grace]) -> the command that stops an engine */
#include "host.h"
#include "hashcache.h"
#include "tarstream.h"
#include "ssh_conn.h"
#include "ssh_lua.h"
#include "luafield.h"
#include "ssh_scripts.h"

#include <lauxlib.h>
#include <errno.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_MT "rasrun.ssh.conn"

typedef struct {
    ssh_conn *c;
    hashcache *hc;
} uconn;

/* ---- settings ------------------------------------------------------------------- */

int ssh_target_from_lua(lua_State *L, int idx, ssh_target *t, char *err, size_t n)
{
    memset(t, 0, sizeof *t);
    t->name = lf_str(L, idx, "name", NULL);
    t->host = lf_str(L, idx, "hostname", NULL);
    if (!t->host)
        t->host = lf_str(L, idx, "host", NULL);
    t->port = (int)lf_num(L, idx, "port", 22);
    t->user = lf_str(L, idx, "user", NULL);
    if (!t->user)
        t->user = strdup(getenv("USER") ? getenv("USER") : "root");
    lua_getfield(L, idx, "identities");
    int ni = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    t->identities = calloc((size_t)ni + 1, sizeof(char *));
    for (int i = 0; t->identities && i < ni; i++) {
        lua_rawgeti(L, -1, i + 1);
        const char *s = lua_tostring(L, -1);
        if (s)
            t->identities[t->nidentities++] = strdup(s);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "agent");
    t->agent = lua_toboolean(L, -1);
    lua_pop(L, 1);
    t->password_env = lf_str(L, idx, "password_env", NULL);
    t->passphrase_env = lf_str(L, idx, "passphrase_env", NULL);
    t->known_hosts = lf_str(L, idx, "known_hosts", NULL);
    t->macs = lf_str(L, idx, "macs", NULL);
    t->ciphers = lf_str(L, idx, "ciphers", NULL);
    char *policy = lf_str(L, idx, "host_key", NULL);
    t->accept_new = policy && strcmp(policy, "accept-new") == 0;
    free(policy);
    t->connect_timeout = lf_num(L, idx, "connect_timeout", 10);
    t->io_timeout = lf_num(L, idx, "io_timeout", 60);
    if (!t->name)
        t->name = strdup(t->host ? t->host : "?");
    if (!t->host || !t->known_hosts) {
        snprintf(err, n, "ssh %s: needs a host and a known_hosts file", t->name);
        return -1;
    }
    return 0;
}

void ssh_target_free(ssh_target *t)
{
    free((char *)t->name);
    free((char *)t->host);
    free((char *)t->user);
    for (int i = 0; i < t->nidentities; i++)
        free(t->identities[i]);
    free(t->identities);
    free((char *)t->password_env);
    free((char *)t->passphrase_env);
    free((char *)t->known_hosts);
    free((char *)t->macs);
    free((char *)t->ciphers);
    memset(t, 0, sizeof *t);
}

/* ---- connections ----------------------------------------------------------------- */

static uconn *check_conn(lua_State *L)
{
    uconn *u = luaL_checkudata(L, 1, CONN_MT);
    if (!u->c)
        luaL_argerror(L, 1, "SSH connection is closed");
    return u;
}

static int failure(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int l_connect(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    ssh_target t;
    char err[2048];
    if (ssh_target_from_lua(L, 1, &t, err, sizeof err) != 0) {
        ssh_target_free(&t);
        return failure(L, err);
    }
    uconn *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->c = NULL;
    u->hc = NULL;
    luaL_setmetatable(L, CONN_MT);
    u->c = ssh_connect(&t, NULL, err, sizeof err);
    ssh_target_free(&t);
    if (!u->c)
        return failure(L, err);
    u->hc = hashcache_new();
    return 1;
}

static int c_close(lua_State *L)
{
    uconn *u = luaL_checkudata(L, 1, CONN_MT);
    ssh_close(u->c);
    u->c = NULL;
    hashcache_free(u->hc);
    u->hc = NULL;
    return 0;
}

static int c_exec(lua_State *L)
{
    uconn *u = check_conn(L);
    const char *cmd = luaL_checkstring(L, 2);
    const char *input = luaL_optstring(L, 3, NULL);
    double timeout = luaL_optnumber(L, 4, 60);
    char *out = NULL, *eo = NULL, err[1024];
    int code = -1;
    if (ssh_exec(u->c, cmd, input, &out, &eo, &code, timeout, err, sizeof err) != 0) {
        free(out);
        free(eo);
        return failure(L, err);
    }
    lua_pushinteger(L, code);
    lua_pushstring(L, out);
    lua_pushstring(L, eo);
    free(out);
    free(eo);
    return 3;
}

static int ok_or(lua_State *L, int rc, const char *err)
{
    if (rc != 0)
        return failure(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int c_put(lua_State *L)
{
    uconn *u = check_conn(L);
    char err[1024];
    return ok_or(L, ssh_put(u->c, luaL_checkstring(L, 2), luaL_checkstring(L, 3), err, sizeof err), err);
}

static int c_get(lua_State *L)
{
    uconn *u = check_conn(L);
    char err[1024];
    return ok_or(L, ssh_get(u->c, luaL_checkstring(L, 2), luaL_checkstring(L, 3), err, sizeof err), err);
}

static int c_stat(lua_State *L)
{
    uconn *u = check_conn(L);
    unsigned long long size = 0;
    double mtime = 0;
    char err[1024];
    int rc = ssh_stat(u->c, luaL_checkstring(L, 2), &size, &mtime, err, sizeof err);
    if (rc < 0)
        return failure(L, err);
    if (rc == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, mtime);
    lua_setfield(L, -2, "mtime");
    return 1;
}

static int c_stats(lua_State *L)
{
    uconn *u = check_conn(L);
    lua_createtable(L, 0, 6);
    const char *mac = libssh2_session_methods(u->c->s, LIBSSH2_METHOD_MAC_CS);
    const char *cipher = libssh2_session_methods(u->c->s, LIBSSH2_METHOD_CRYPT_CS);
    lua_pushstring(L, mac ? mac : "?");
    lua_setfield(L, -2, "mac");
    lua_pushstring(L, cipher ? cipher : "?");
    lua_setfield(L, -2, "cipher");
    lua_pushinteger(L, (lua_Integer)u->c->wire_sent);
    lua_setfield(L, -2, "wire_sent");
    lua_pushinteger(L, (lua_Integer)u->c->wire_received);
    lua_setfield(L, -2, "wire_received");
    lua_pushinteger(L, (lua_Integer)u->c->file_sent);
    lua_setfield(L, -2, "file_sent");
    lua_pushinteger(L, (lua_Integer)u->c->file_received);
    lua_setfield(L, -2, "file_received");
    return 1;
}

/* ---- stage_tree: a folder through the host's content-addressed cache ---------- */

struct walk {
    char **rel;
    int n, cap;
};

/* Collects the regular files under root/sub as paths relative to root. */
static int walk(struct walk *w, const char *root, const char *sub)
{
    char dir[8192];
    snprintf(dir, sizeof dir, "%s%s%s", root, *sub ? "/" : "", sub);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char rel[8192], full[16384];
        snprintf(rel, sizeof rel, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, rel);
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            rc = walk(w, root, rel);
        } else if (S_ISREG(st.st_mode)) {
            if (w->n == w->cap) {
                int cap = w->cap ? w->cap * 2 : 256;
                char **g = realloc(w->rel, sizeof *g * (size_t)cap);
                if (!g) {
                    rc = -1;
                    break;
                }
                w->rel = g;
                w->cap = cap;
            }
            w->rel[w->n++] = strdup(rel);
        }
    }
    closedir(d);
    return rc;
}

/* The manifest of a staged folder: "<sha256> <relative path>" lines. */
static strset *read_manifest(ssh_conn *c, const char *remote_dir)
{
    strset *m = strset_new();
    char remote[4200], local[] = "/tmp/rasrun-manifest-XXXXXX", err[512];
    snprintf(remote, sizeof remote, "%s/.rasrun-manifest", remote_dir);
    int fd = mkstemp(local);
    if (fd < 0)
        return m;
    close(fd);
    if (ssh_get(c, remote, local, err, sizeof err) == 0) {
        FILE *f = fopen(local, "re");
        char line[4200];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            strset_add(m, line);
        }
        if (f)
            fclose(f);
    }
    unlink(local);
    return m;
}

/* Files smaller than this go in one tar stream when there are at least
 * TAR_MIN_FILES of them: one channel instead of SFTP round trips per file.
 * Bigger ones go by SFTP, whose pipelined writes are faster for bulk. */
#define TAR_MAX_FILE (1024 * 1024)
#define TAR_MIN_FILES 8

struct tar_feed {
    tar_stream *t;
    ssh_conn *c;
    char *err;
    size_t errlen;
};

static ssize_t feed_tar(void *ud, char *buf, size_t n)
{
    struct tar_feed *f = ud;
    unsigned long long before = tar_content_bytes(f->t);
    ssize_t r = tar_read(f->t, buf, n);
    if (r < 0)
        snprintf(f->err, f->errlen, "cannot send %s", tar_error(f->t));
    f->c->file_sent += tar_content_bytes(f->t) - before;
    return r;
}

/* Sends the files as one tar stream extracted by the host's tar. Returns 0,
 * 1 when the host has no tar (the caller sends them another way), or -1. */
static int put_by_tar(ssh_conn *c, const char *local_dir, const char *remote_dir, char **rel, int n,
                      unsigned long long bytes, char *err, size_t errlen)
{
    char qdir[8400], cmd[17000];
    ssh_quote(qdir, sizeof qdir, remote_dir);
    snprintf(cmd, sizeof cmd, "command -v tar >/dev/null 2>&1 || exit 127; exec tar -xf - -C %s", qdir);
    tar_stream *t = tar_new(local_dir, rel, n);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct tar_feed f = { t, c, err, errlen };
    char *errout = NULL;
    int code = -1;
    /* bounded, yet generous: 100 kB/s is slower than any link that runs plans */
    double limit = 120 + (double)bytes / 1e5;
    int rc = ssh_exec_stream(c, cmd, feed_tar, &f, NULL, &errout, &code, limit, err, errlen);
    tar_free(t);
    if (rc == 0 && code == 127)
        rc = 1;
    else if (rc == 0 && code != 0) {
        errout[strcspn(errout, "\n")] = 0;
        snprintf(err, errlen, "%s: tar could not write into %s: %s", c->label, remote_dir,
                 *errout ? errout : "exit status not 0");
        rc = -1;
    }
    free(errout);
    return rc;
}

/* Sends one file by SFTP, making its folder first (once). */
static int put_by_sftp(ssh_conn *c, strset *dirs, const char *local_dir, const char *remote_dir,
                       const char *rel, char *err, size_t n)
{
    char local[8192], remote[8400];
    const char *slash = strrchr(rel, '/');
    if (slash) {
        snprintf(remote, sizeof remote, "%s/%.*s", remote_dir, (int)(slash - rel), rel);
        if (!strset_has(dirs, remote)) {
            if (ssh_mkdirs(c, remote, err, n) != 0)
                return -1;
            strset_add(dirs, remote);
        }
    }
    snprintf(local, sizeof local, "%s/%s", local_dir, rel);
    snprintf(remote, sizeof remote, "%s/%s", remote_dir, rel);
    return ssh_put(c, local, remote, err, n);
}

/* Brings remote_dir up to date with local_dir: a file whose content (hash)
 * and place match the manifest of the last staging is not sent again; the
 * others are sent, small ones together in one tar stream. The manifest is
 * written last, so an interrupted staging is redone, not trusted. */
static int stage_tree(uconn *u, const char *local_dir, const char *remote_dir, int *uploaded,
                      unsigned long long *bytes, int *files, char *err, size_t n)
{
    struct walk w = { NULL, 0, 0 };
    int rc = walk(&w, local_dir, "");
    if (rc != 0) {
        snprintf(err, n, "cannot walk %s: %s", local_dir, strerror(errno));
        return -1;
    }
    *files = w.n;
    strset *manifest = read_manifest(u->c, remote_dir), *dirs = strset_new();
    rc = ssh_mkdirs(u->c, remote_dir, err, n);
    struct { char *p; size_t len, cap; } man = { NULL, 0, 0 };
    char **small = calloc((size_t)w.n + 1, sizeof *small), **big = calloc((size_t)w.n + 1, sizeof *big);
    int nsmall = 0, nbig = 0;
    unsigned long long small_bytes = 0, before = u->c->file_sent;
    if (!small || !big) {
        rc = -1;
        snprintf(err, n, "out of memory");
    }
    for (int i = 0; rc == 0 && i < w.n; i++) {
        char local[8192], hex[65], line[4300];
        unsigned long long size = 0;
        snprintf(local, sizeof local, "%s/%s", local_dir, w.rel[i]);
        if ((rc = hashcache_file(u->hc, local, hex, &size, err, n)) != 0)
            break;
        snprintf(line, sizeof line, "%s %s", hex, w.rel[i]);
        size_t ll = strlen(line);
        if (man.len + ll + 2 > man.cap) {
            size_t cap = (man.cap + ll + 2) * 2;
            char *g = realloc(man.p, cap);
            if (!g) {
                rc = -1;
                snprintf(err, n, "out of memory");
                break;
            }
            man.p = g;
            man.cap = cap;
        }
        memcpy(man.p + man.len, line, ll);
        man.len += ll;
        man.p[man.len++] = '\n';
        if (strset_has(manifest, line))
            continue; /* same content at the same place: nothing to send */
        if (size < TAR_MAX_FILE && tar_fits(w.rel[i])) {
            small[nsmall++] = w.rel[i];
            small_bytes += size;
        } else {
            big[nbig++] = w.rel[i];
        }
    }
    if (rc == 0 && nsmall >= TAR_MIN_FILES) {
        rc = put_by_tar(u->c, local_dir, remote_dir, small, nsmall, small_bytes, err, n);
        if (rc == 0) {
            *uploaded += nsmall;
            nsmall = 0;
        } else if (rc == 1) {
            rc = 0; /* no tar on the host: by SFTP below */
        }
    }
    for (int i = 0; rc == 0 && i < nsmall + nbig; i++) {
        const char *rel = i < nsmall ? small[i] : big[i - nsmall];
        if ((rc = put_by_sftp(u->c, dirs, local_dir, remote_dir, rel, err, n)) == 0)
            (*uploaded)++;
    }
    *bytes = u->c->file_sent - before;
    if (rc == 0) {
        char local[] = "/tmp/rasrun-manifest-XXXXXX", remote[4200];
        int fd = mkstemp(local);
        if (fd >= 0 && write(fd, man.p ? man.p : "", man.len) == (ssize_t)man.len && close(fd) == 0) {
            snprintf(remote, sizeof remote, "%s/.rasrun-manifest", remote_dir);
            rc = ssh_put(u->c, local, remote, err, n);
        }
        unlink(local);
    }
    free(man.p);
    free(small);
    free(big);
    for (int i = 0; i < w.n; i++)
        free(w.rel[i]);
    free(w.rel);
    strset_free(manifest);
    strset_free(dirs);
    return rc;
}

static int c_stage_tree(lua_State *L)
{
    uconn *u = check_conn(L);
    const char *local_dir = luaL_checkstring(L, 2), *remote_dir = luaL_checkstring(L, 3);
    int uploaded = 0, files = 0;
    unsigned long long bytes = 0;
    char err[1024];
    if (ssh_sftp(u->c, err, sizeof err) != 0 ||
        stage_tree(u, local_dir, remote_dir, &uploaded, &bytes, &files, err, sizeof err) != 0)
        return failure(L, err);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, files);
    lua_setfield(L, -2, "files");
    lua_pushinteger(L, uploaded);
    lua_setfield(L, -2, "uploaded");
    lua_pushinteger(L, (lua_Integer)bytes);
    lua_setfield(L, -2, "bytes");
    return 1;
}

static int l_kill_script(lua_State *L)
{
    char *s = ssh_kill_script((long)luaL_checkinteger(L, 1), luaL_checkstring(L, 2),
                              luaL_optnumber(L, 3, 5));
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static const luaL_Reg methods[] = {
    { "exec", c_exec }, { "put", c_put }, { "get", c_get }, { "stat", c_stat },
    { "stats", c_stats }, { "stage_tree", c_stage_tree }, { "close", c_close }, { NULL, NULL },
};

int luaopen_rasrun_ssh(lua_State *L)
{
    if (luaL_newmetatable(L, CONN_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, c_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, c_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = { { "connect", l_connect }, { "kill_script", l_kill_script },
                                      { NULL, NULL } };
    luaL_newlib(L, funcs);
    return 1;
}
