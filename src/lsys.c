/* rasrun.sys: clocks, terminal, host facts and processes.
 *
 *   sys.now()  sys.monotonic()  sys.sleep(s)  sys.isatty(fd)  sys.term_size(fd)  sys.pid()
 *   sys.hostname()  sys.ncpu()  sys.uid()  sys.setenv(name, value|nil)  sys.tz_offset([t])
 *   sys.random32()  32 bits from the kernel's random source (math.random's seed is
 *                   the time and an address: two processes can draw the same) 
 *   sys.chdir(path) -> true | nil, msg
 *   sys.run(argv, {cwd=, env=, input=, timeout=}) -> {code=, stdout=, stderr=, timed_out=}
 *     (Ctrl-C, SIGTERM or a hangup meanwhile stop the command's tree, then
 *     reach rasrun as they would have)
 *   sys.spawn(argv, {cwd=, env=, stdout=path, stderr=path, group=true}) -> pid | nil, msg
 *   sys.wait(pid [, timeout]) -> code | nil, "timeout"
 *   sys.kill(pid, sig)  sys.kill_tree(pid, sig)  sys.alive(pid)  sys.starttime(pid)
 *   sys.in_folder(dir) -> pids of the processes working in dir or below it
 *   sys.descendants(pid) -> {pid...}
 * env tables map NAME to a string (set) or false (unset). */
#include "host.h"
#include "loop.h"
#include "proc.h"
#include "fsutil.h"
#include "luafield.h"

#include <lauxlib.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int l_now(lua_State *L) { lua_pushnumber(L, loop_wall()); return 1; }
static int l_monotonic(lua_State *L) { lua_pushnumber(L, loop_now()); return 1; }

static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
    return 0;
}

static int l_isatty(lua_State *L) { lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1))); return 1; }

/* sys.term_size([fd]) -> columns, rows of the terminal on fd (default 1), or nil */
static int l_term_size(lua_State *L)
{
    struct winsize ws;
    if (ioctl((int)luaL_optinteger(L, 1, 1), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0)
        return 0;
    lua_pushinteger(L, ws.ws_col);
    lua_pushinteger(L, ws.ws_row);
    return 2;
}
static int l_pid(lua_State *L) { lua_pushinteger(L, getpid()); return 1; }
static int l_random32(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)(fs_random_tag((unsigned long long)getpid()) & 0xffffffffULL));
    return 1;
}
static int l_ncpu(lua_State *L) { lua_pushinteger(L, sysconf(_SC_NPROCESSORS_ONLN)); return 1; }

static int l_uid(lua_State *L) { lua_pushinteger(L, getuid()); return 1; }

static int l_chdir(lua_State *L)
{
    const char *p = luaL_checkstring(L, 1);
    if (chdir(p) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot change to folder %s: %s", p, strerror(e));
        return 2;
    }
    /* Keep PWD truthful for path.abspath and child processes. */
    char buf[4096];
    if (getcwd(buf, sizeof buf))
        setenv("PWD", buf, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_hostname(lua_State *L)
{
    char buf[256] = "";
    gethostname(buf, sizeof buf - 1);
    lua_pushstring(L, buf);
    return 1;
}

static int l_setenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2))
        unsetenv(name);
    else
        setenv(name, luaL_checkstring(L, 2), 1);
    return 0;
}

/* Seconds east of UTC for local time at t (default now). */
static int l_tz_offset(lua_State *L)
{
    time_t t = (time_t)luaL_optnumber(L, 1, (lua_Number)time(NULL));
    struct tm tm;
    localtime_r(&t, &tm);
    lua_pushinteger(L, tm.tm_gmtoff);
    return 1;
}

/* ---- argv / env from Lua tables ------------------------------------------ */

struct strv {
    char **v;
    size_t n;
};

static void strv_free(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int argv_from(lua_State *L, int idx, struct strv *out)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = lua_rawlen(L, idx);
    if (n == 0)
        luaL_argerror(L, idx, "argv must have at least the program");
    out->v = calloc(n + 1, sizeof *out->v);
    out->n = 0;
    for (size_t i = 1; out->v && i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        const char *s = lua_tostring(L, -1);
        if (!s) {
            strv_free(out);
            luaL_argerror(L, idx, "argv entries must be strings");
        }
        out->v[out->n++] = strdup(s);
        lua_pop(L, 1);
    }
    return out->v != NULL;
}

/* Overrides from opts.env: NAME=value for strings, NAME for false. */
static char **env_from(lua_State *L, int opts)
{
    if (lua_isnoneornil(L, opts) || lua_getfield(L, opts, "env") != LUA_TTABLE) {
        if (!lua_isnoneornil(L, opts))
            lua_pop(L, 1);
        return NULL;
    }
    struct strv ov = { calloc(64, sizeof(char *)), 0 };
    size_t cap = 64;
    lua_pushnil(L);
    while (ov.v && lua_next(L, -2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && ov.n == cap) {
            char **more = realloc(ov.v, sizeof *more * cap * 2);
            if (!more) {
                lua_pop(L, 2);
                break;
            }
            ov.v = more;
            memset(ov.v + cap, 0, sizeof *more * cap);
            cap *= 2;
        }
        if (k) {
            if (lua_toboolean(L, -1)) {
                const char *v = luaL_tolstring(L, -1, NULL);
                lua_pushfstring(L, "%s=%s", k, v);
                lua_remove(L, -2);
            } else {
                lua_pushstring(L, k);
            }
            ov.v[ov.n++] = strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    char **envp = ov.v ? proc_envp(ov.v, ov.n) : NULL;
    strv_free(&ov);
    return envp;
}

static const char *opt_str(lua_State *L, int opts, const char *key)
{
    if (lua_isnoneornil(L, opts))
        return NULL;
    lua_getfield(L, opts, key);
    const char *s = lua_tostring(L, -1); /* kept alive by the opts table */
    lua_pop(L, 1);
    return s;
}

/* ---- run: spawn, feed, capture, wait ------------------------------------- */

struct dynbuf {
    char *p;
    size_t n, cap;
};

/* Appends what the pipe has; closes it (fd = -1) at end of file. */
static void drain(struct pollfd *pf, struct dynbuf *b)
{
    if (b->cap - b->n < 8192) {
        size_t cap = b->cap ? b->cap * 2 : 16384;
        char *g = realloc(b->p, cap);
        if (!g) {
            close(pf->fd);
            pf->fd = -1;
            return;
        }
        b->p = g;
        b->cap = cap;
    }
    ssize_t n = read(pf->fd, b->p + b->n, b->cap - b->n);
    if (n > 0) {
        b->n += (size_t)n;
    } else if (n == 0 || errno != EINTR) {
        close(pf->fd);
        pf->fd = -1;
    }
}

struct child_io {
    pid_t pid;
    struct pollfd p[5]; /* stdout, stderr, stdin, pidfd, signals */
    const char *input;
    size_t inlen, fed;
    struct dynbuf out, err;
};

static void feed(struct child_io *c)
{
    struct pollfd *in = &c->p[2];
    if (in->fd < 0)
        return;
    if (in->revents && c->fed < c->inlen) {
        ssize_t w = write(in->fd, c->input + c->fed, c->inlen - c->fed);
        if (w > 0)
            c->fed += (size_t)w;
        else if (errno != EAGAIN && errno != EINTR)
            c->fed = c->inlen;
    }
    if (c->fed >= c->inlen) {
        close(in->fd);
        in->fd = -1;
    }
}

/* After a timeout's kill, how long pipes a descendant that escaped the tree
 * (setsid, then its parent died) still holds open are waited for. */
#define ESCAPED_GRACE 1.0

/* Pumps the pipes until the child has exited and closed them, or the deadline
 * passes (then the whole tree is killed). The child's exit is watched through
 * a pidfd, so nothing sleeps in fixed slices. Ctrl-C, SIGTERM or a hangup
 * meanwhile kill the child's tree (its own process group, which the
 * terminal's signal does not reach) before rasrun takes the signal:
 * *signalled says which. Returns the wait status. */
static int pump(struct child_io *c, const sigset_t *stop, double timeout, int *timed_out, int *signalled)
{
    double deadline = loop_now() + timeout, give_up = 0;
    int status = 0, reaped = 0, killed = 0;
    struct pollfd *pidfd = &c->p[3], *sigs = &c->p[4];
    pidfd->fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    pidfd->events = POLLIN;
    sigs->fd = signalfd(-1, stop, SFD_NONBLOCK | SFD_CLOEXEC);
    sigs->events = POLLIN;
    while (c->p[0].fd >= 0 || c->p[1].fd >= 0 || !reaped) {
        if (!reaped && waitpid(c->pid, &status, WNOHANG) == c->pid) {
            reaped = 1;
            if (pidfd->fd >= 0)
                close(pidfd->fd);
            pidfd->fd = -1;
            continue;
        }
        double now = loop_now(), left = deadline - now;
        if (!killed && (left <= 0 || *signalled)) {
            killed = 1;
            *timed_out = !*signalled;
            proc_kill_tree(c->pid, SIGKILL);
            give_up = now + ESCAPED_GRACE;
        }
        if (reaped && give_up && now >= give_up)
            break; /* what holds the pipes is not the child's any more */
        /* Without a pidfd (old kernels) fall back to short sleeps. */
        int ms = give_up ? 50 : (int)(left * 1000) + 1;
        if (pidfd->fd < 0 && !reaped && ms > 10)
            ms = 10;
        if (poll(c->p, 5, ms) <= 0)
            continue;
        struct signalfd_siginfo si;
        if (sigs->revents && read(sigs->fd, &si, sizeof si) == (ssize_t)sizeof si && !*signalled)
            *signalled = (int)si.ssi_signo;
        if (c->p[0].fd >= 0 && c->p[0].revents)
            drain(&c->p[0], &c->out);
        if (c->p[1].fd >= 0 && c->p[1].revents)
            drain(&c->p[1], &c->err);
        feed(c);
    }
    feed(c);
    for (int i = 0; i < 3; i++) /* the pipes; the pidfd and signalfd below */
        if (c->p[i].fd >= 0)
            close(c->p[i].fd);
    if (pidfd->fd >= 0)
        close(pidfd->fd);
    if (sigs->fd >= 0)
        close(sigs->fd);
    return status;
}

static int l_run(lua_State *L)
{
    struct strv argv;
    argv_from(L, 1, &argv);
    int opts = lua_isnoneornil(L, 2) ? 0 : 2;
    if (opts)
        luaL_checktype(L, 2, LUA_TTABLE);
    struct child_io c = { 0 };
    if (opts && lua_getfield(L, 2, "input") == LUA_TSTRING)
        c.input = lua_tolstring(L, -1, &c.inlen); /* kept alive by opts */
    if (opts)
        lua_pop(L, 1);
    double timeout = opts ? lf_num(L, opts, "timeout", 600) : 600;
    char **envp = env_from(L, opts);

    int out[2], errp[2], in[2] = { -1, -1 };
    if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || (c.input && pipe2(in, O_CLOEXEC)))
        return luaL_error(L, "pipe: %s", strerror(errno));
    proc_spec s = { argv.v, envp, opt_str(L, opts, "cwd"), in[0], out[1], errp[1], 1 };
    char err[512];
    c.pid = proc_spawn(&s, err, sizeof err);
    close(out[1]);
    close(errp[1]);
    if (in[0] >= 0)
        close(in[0]);
    proc_envp_free(envp);
    strv_free(&argv);
    c.p[0] = (struct pollfd){ out[0], POLLIN, 0 };
    c.p[1] = (struct pollfd){ errp[0], POLLIN, 0 };
    c.p[2] = (struct pollfd){ in[1], POLLOUT, 0 };
    c.p[3] = (struct pollfd){ -1, 0, 0 };
    if (c.pid < 0) {
        for (int i = 0; i < 3; i++)
            if (c.p[i].fd >= 0)
                close(c.p[i].fd);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (in[1] >= 0)
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    /* the stop signals are read through pump's signalfd meanwhile */
    sigset_t stop, was;
    proc_stop_set(&stop);
    sigprocmask(SIG_BLOCK, &stop, &was);
    int timed_out = 0, signalled = 0;
    int status = pump(&c, &stop, timeout, &timed_out, &signalled);
    sigprocmask(SIG_SETMASK, &was, NULL);
    if (signalled) {
        /* taken as if it had come now: the default ends rasrun; a handler
         * (the REPL's), or a run that reads them (the scheduler), has it */
        free(c.out.p);
        free(c.err.p);
        raise(signalled);
        return luaL_error(L, "interrupted (%s): the command's processes were stopped", strsignal(signalled));
    }
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, c.out.p ? c.out.p : "", c.out.n);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, c.err.p ? c.err.p : "", c.err.n);
    lua_setfield(L, -2, "stderr");
    free(c.out.p);
    free(c.err.p);
    lua_pushinteger(L, proc_exit_code(status));
    lua_setfield(L, -2, "code");
    lua_pushboolean(L, timed_out);
    lua_setfield(L, -2, "timed_out");
    return 1;
}

static int open_out(lua_State *L, int opts, const char *key)
{
    const char *path = opt_str(L, opts, key);
    if (!path)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        luaL_error(L, "cannot open %s: %s", path, strerror(errno));
    return fd;
}

static int l_spawn(lua_State *L)
{
    struct strv argv;
    argv_from(L, 1, &argv);
    int opts = lua_isnoneornil(L, 2) ? 0 : 2;
    char **envp = env_from(L, opts);
    int o = open_out(L, opts, "stdout"), e = open_out(L, opts, "stderr");
    int group = 1;
    if (opts && lua_getfield(L, 2, "group") == LUA_TBOOLEAN)
        group = lua_toboolean(L, -1);
    if (opts)
        lua_pop(L, 1);
    proc_spec s = { argv.v, envp, opt_str(L, opts, "cwd"), -1, o, e >= 0 ? e : o, group };
    char err[512];
    pid_t pid = proc_spawn(&s, err, sizeof err);
    if (o >= 0)
        close(o);
    if (e >= 0)
        close(e);
    proc_envp_free(envp);
    strv_free(&argv);
    if (pid < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, pid);
    return 1;
}

static int l_wait(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int status = 0, got = proc_wait(pid, luaL_optnumber(L, 2, -1), &status);
    if (got > 0) {
        lua_pushinteger(L, proc_exit_code(status));
        return 1;
    }
    lua_pushnil(L);
    if (got < 0)
        lua_pushfstring(L, "wait %d: %s", (int)pid, strerror(errno));
    else
        lua_pushliteral(L, "timeout");
    return 2;
}

static int sig_arg(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER)
        return (int)lua_tointeger(L, idx);
    const char *s = luaL_optstring(L, idx, "TERM");
    static const struct { const char *n; int s; } names[] = {
        { "TERM", SIGTERM }, { "KILL", SIGKILL }, { "INT", SIGINT }, { "HUP", SIGHUP },
        { "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "USR1", SIGUSR1 }, { "QUIT", SIGQUIT },
        { "IO", SIGIO },
    };
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].n) == 0)
            return names[i].s;
    return luaL_argerror(L, idx, "unknown signal name");
}

/* A process id: 0 and negative numbers mean groups or every process to
 * kill(2), never what a recipe meant. */
static pid_t pid_arg(lua_State *L, int idx)
{
    lua_Integer pid = luaL_checkinteger(L, idx);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, idx, "a process id must be a number above 0");
    return (pid_t)pid;
}

static int l_kill(lua_State *L)
{
    lua_pushboolean(L, kill(pid_arg(L, 1), sig_arg(L, 2)) == 0);
    return 1;
}

static int l_kill_tree(lua_State *L)
{
    lua_pushinteger(L, proc_kill_tree(pid_arg(L, 1), sig_arg(L, 2)));
    return 1;
}

static int l_alive(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    lua_pushboolean(L, pid > 0 && pid <= INT_MAX && proc_alive((pid_t)pid));
    return 1;
}

static int l_starttime(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)proc_starttime((pid_t)luaL_checkinteger(L, 1)));
    return 1;
}

static int push_pids(lua_State *L, const pid_t *pids, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, pids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_descendants(lua_State *L)
{
    pid_t kids[1024];
    return push_pids(L, kids, proc_descendants((pid_t)luaL_checkinteger(L, 1), kids, 1024));
}

static int l_in_folder(lua_State *L)
{
    pid_t pids[1024];
    return push_pids(L, pids, proc_in_folder(luaL_checkstring(L, 1), pids, 1024));
}

static const luaL_Reg funcs[] = {
    { "now", l_now },           { "monotonic", l_monotonic }, { "sleep", l_sleep },
    { "isatty", l_isatty },     { "term_size", l_term_size }, { "pid", l_pid },
    { "hostname", l_hostname },
    { "ncpu", l_ncpu },         { "setenv", l_setenv },       { "tz_offset", l_tz_offset },
    { "run", l_run },           { "spawn", l_spawn },         { "wait", l_wait },
    { "kill", l_kill },         { "kill_tree", l_kill_tree }, { "alive", l_alive },
    { "starttime", l_starttime }, { "descendants", l_descendants },
    { "in_folder", l_in_folder },
    { "uid", l_uid },           { "chdir", l_chdir },         { "random32", l_random32 },
    { NULL, NULL },
};

int luaopen_rasrun_sys(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
