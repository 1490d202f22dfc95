/* rasrun.sched: the scheduler from Lua (used by lua/rasrun/pool.lua).
 *
 *   local results, signal = sched.run {
 *     run_id =, run_dir =, journal = <rasrun.journal>,
 *     workers = { {type=, name=, host=, slots=, tier=, engine=, workdir=, kill_grace=, ...}, ... },
 *     jobs = { {key=, plan=, project_dir=, specs = {[engine] = spec}, after = {i...},
 *               retries=, attempts_before=, failed_before=, failed_on = {worker name...},
 *               timeout=, unrunnable = "why"}, ... },  -- in priority order
 *     check = function(job, result_tmp, ctx) return report end,     -- report.ok, report.reason
 *     on_event = function(ev) end, tick = function() end,
 *     tick_every = 0.25, cancel_wait = 20, down_grace = 30, keep_scratch = false,
 *   }
 * spec = { inputs = {...}, links = {...}, text = {...}, steps = {{argv...}, ...}, env = {NAME = value},
 *          result = {from =, to =}, collect = {glob...}, geometry = {key =, files = {...}} }
 * results[i] = { key, plan, status, attempts, worker, host, elapsed, result, reason,
 *                report, history = { {attempt, worker, status, ...}, ... } } */
#include "affinity.h"
#include "host.h"
#include "sched_int.h"
#include "fsutil.h"
#include "luafield.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- reading tables --------------------------------------------------------- */

/* Array of strings at t[k] (or at index t itself when k is NULL). */
static char **strv(lua_State *L, int t, const char *k, int *n)
{
    if (k)
        lua_getfield(L, t, k);
    else
        lua_pushvalue(L, t);
    *n = 0;
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    int len = (int)lua_rawlen(L, -1);
    char **v = calloc((size_t)len + 1, sizeof *v);
    for (int i = 1; v && i <= len; i++) {
        lua_rawgeti(L, -1, i);
        const char *s = lua_tostring(L, -1);
        if (s)
            v[(*n)++] = strdup(s);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

static void strv_free(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void spec_free(job_spec *sp)
{
    if (!sp)
        return;
    strv_free(sp->inputs, sp->ninputs);
    strv_free(sp->links, sp->nlinks);
    strv_free(sp->text, sp->ntext);
    for (int i = 0; i < sp->nsteps; i++) {
        char **a = sp->steps[i];
        for (int k = 0; a && a[k]; k++)
            free(a[k]);
        free(a);
    }
    free(sp->steps);
    strv_free(sp->env, sp->nenv);
    free(sp->result_from);
    free(sp->result_to);
    strv_free(sp->collect, sp->ncollect);
    free(sp->geom_key);
    strv_free(sp->geom_files, sp->ngeom);
    free(sp);
}

static job_spec *read_spec(lua_State *L, int t)
{
    job_spec *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->inputs = strv(L, t, "inputs", &sp->ninputs);
    sp->links = strv(L, t, "links", &sp->nlinks);
    sp->text = strv(L, t, "text", &sp->ntext);
    lua_getfield(L, t, "steps");
    int steps = lua_gettop(L);
    sp->nsteps = lua_istable(L, steps) ? (int)lua_rawlen(L, steps) : 0;
    sp->steps = calloc((size_t)sp->nsteps + 1, sizeof *sp->steps);
    for (int i = 0; sp->steps && i < sp->nsteps; i++) {
        lua_rawgeti(L, steps, i + 1);
        int n;
        sp->steps[i] = strv(L, lua_gettop(L), NULL, &n);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "env");
    if (lua_istable(L, -1)) {
        int env = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, env)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
                char **g = realloc(sp->env, sizeof *g * (size_t)(sp->nenv + 1));
                if (g) {
                    sp->env = g;
                    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
                    g[sp->nenv++] = strdup(lua_tostring(L, -1));
                    lua_pop(L, 1);
                }
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "result");
    if (lua_istable(L, -1)) {
        sp->result_from = lf_str(L, lua_gettop(L), "from", NULL);
        sp->result_to = lf_str(L, lua_gettop(L), "to", NULL);
    }
    lua_pop(L, 1);
    sp->collect = strv(L, t, "collect", &sp->ncollect);
    lua_getfield(L, t, "geometry");
    if (lua_istable(L, -1)) {
        sp->geom_key = lf_str(L, lua_gettop(L), "key", NULL);
        sp->geom_files = strv(L, lua_gettop(L), "files", &sp->ngeom);
    }
    lua_pop(L, 1);
    if (!sp->result_from || !sp->result_to || sp->nsteps == 0) {
        spec_free(sp);
        return NULL;
    }
    return sp;
}

static int read_worker(sched *s, lua_State *L, int t, int index, char *err, size_t n)
{
    char *type = lf_str(L, t, "type", "local");
    const worker_ops *ops = worker_ops_find(type);
    if (!ops) {
        snprintf(err, n, "unknown worker type '%s'", type);
        free(type);
        return -1;
    }
    free(type);
    worker *w = calloc(1, sizeof *w);
    s->workers[index] = w;
    w->ops = ops;
    w->s = s;
    w->index = index;
    w->name = lf_str(L, t, "name", "worker");
    w->host = lf_str(L, t, "host", "localhost");
    w->slots = (int)lf_num(L, t, "slots", 1);
    if (w->slots < 1)
        w->slots = 1;
    w->tier = (int)lf_num(L, t, "tier", 0);
    w->engine = (int)lf_num(L, t, "engine", 1) - 1;
    w->workdir = lf_str(L, t, "workdir", "/tmp/rasrun");
    w->kill_grace = lf_num(L, t, "kill_grace", 5);
    w->slot_busy = calloc((size_t)w->slots, 1);
    w->state = W_DOWN;
    return ops->create(w, L, t, err, n);
}

static int read_job(sched *s, lua_State *L, int t, int index, int nengines)
{
    job *j = &s->jobs[index];
    j->index = index;
    j->key = lf_str(L, t, "key", "?");
    j->plan = lf_str(L, t, "plan", "?");
    j->project_dir = lf_str(L, t, "project_dir", ".");
    j->retries = (int)lf_num(L, t, "retries", 0);
    j->attempts_before = (int)lf_num(L, t, "attempts_before", 0);
    j->failed_before = (int)lf_num(L, t, "failed_before", 0);
    /* the workers that failed it there: its retries go elsewhere first */
    lua_getfield(L, t, "failed_on");
    int nf = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    j->tried = calloc((size_t)nf + 1, sizeof *j->tried);
    for (int i = 0; i < nf && j->tried; i++) {
        lua_rawgeti(L, -1, i + 1);
        const char *name = lua_tostring(L, -1);
        for (int w = 0; name && w < s->nworkers; w++)
            if (strcmp(s->workers[w]->name, name) == 0)
                j->tried[j->ntried++] = w;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    j->timeout = lf_num(L, t, "timeout", 0);
    j->specs = calloc((size_t)nengines + 1, sizeof *j->specs);
    lua_getfield(L, t, "specs");
    for (int e = 0; e < nengines && lua_istable(L, -1); e++) {
        lua_rawgeti(L, -1, e + 1);
        if (lua_istable(L, -1))
            j->specs[e] = read_spec(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "after");
    int na = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    j->after = calloc((size_t)na + 1, sizeof *j->after);
    for (int i = 0; i < na; i++) {
        lua_rawgeti(L, -1, i + 1);
        int d = (int)lua_tointeger(L, -1) - 1;
        lua_pop(L, 1);
        if (d >= 0 && d < s->njobs && d != index)
            j->after[j->nafter++] = d;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, t);
    j->lua_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    j->history_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    j->report_ref = LUA_NOREF;
    j->state = J_WAITING;
    char *why = lf_str(L, t, "unrunnable", NULL);
    if (why) {
        j->unrunnable = 1;
        fs_text_copy(j->reason, sizeof j->reason, why);
        free(why);
    }
    return 0;
}

static int ref_fn(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    if (lua_isfunction(L, -1))
        return luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return LUA_NOREF;
}

/* ---- callbacks ----------------------------------------------------------------- */

/* An error value as text: a string, a table's message (an error object
 * of a library), else its type. No __tostring is called: it could raise in turn. */
static void error_text(lua_State *L, int idx, char *out, size_t n)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
        snprintf(out, n, "%s", lua_tostring(L, idx));
        return;
    }
    if (lua_istable(L, idx)) {
        lua_pushliteral(L, "message");
        lua_rawget(L, idx);
        int got = lua_type(L, -1) == LUA_TSTRING;
        if (got)
            snprintf(out, n, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        if (got)
            return;
    }
    snprintf(out, n, "a %s value", luaL_typename(L, idx));
}

/* The recipe's code (its checks, on_event, the progress display) runs with
 * every core the process has: the loop may be pinned to one core since it
 * reaped an engine (affinity.h), and a program the recipe starts there would
 * keep that one core for its life. The pin comes back after it, for the
 * engine the loop starts next. */
static int pcall_unpinned(lua_State *L, int nargs, int nres)
{
    int cpu = affinity_pinned_cpu();
    affinity_release(0);
    int rc = lua_pcall(L, nargs, nres, 0);
    if (cpu >= 0)
        affinity_move_to(cpu);
    return rc;
}

/* what (printf format): who raised, formatted only when one did (events
 * are called for every plan). */
static int call_lua(lua_State *L, int nargs, int nres, const char *what, ...)
    __attribute__((format(printf, 4, 5)));
static int call_lua(lua_State *L, int nargs, int nres, const char *what, ...)
{
    if (pcall_unpinned(L, nargs, nres) == LUA_OK)
        return 0;
    char msg[1024], who[600];
    error_text(L, -1, msg, sizeof msg);
    va_list ap;
    va_start(ap, what);
    vsnprintf(who, sizeof who, what, ap);
    va_end(ap);
    fprintf(stderr, "rasrun: %s raised an error: %s\n", who, msg);
    lua_pop(L, 1);
    return -1;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* Counts, codes and byte totals are integers in Lua (1, not 1.0). */
static void set_int(lua_State *L, const char *k, long long v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static const char *status_str(enum job_status st)
{
    return st == S_OK ? "ok" : st == S_FAILED ? "failed" : st == S_CANCELLED ? "cancelled" : NULL;
}

void lsched_event(sched *s, const char *type, job *j, attempt *a, worker *w, const char *reason)
{
    if (s->event_ref == LUA_NOREF)
        return;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->event_ref);
    lua_createtable(L, 0, 12);
    set_str(L, "type", type);
    set_num(L, "t", loop_wall());
    set_str(L, "reason", reason);
    if (j) {
        set_str(L, "job", j->key);
        set_str(L, "plan", j->plan);
        set_int(L, "attempts", job_attempts_made(j));
        set_str(L, "status", status_str(j->status));
        if (j->first_start)
            set_num(L, "elapsed", (j->end ? j->end : loop_wall()) - j->first_start);
        set_str(L, "result", j->result_path);
    }
    if (a) {
        set_int(L, "attempt", a->number);
        set_str(L, "worker", a->w->name);
        set_str(L, "host", a->w->host);
        set_str(L, "log", a->log);
        set_num(L, "started", a->t_start);
        set_int(L, "exit_code", a->exit_code);
    }
    if (!a && w) {
        set_str(L, "worker", w->name);
        set_str(L, "host", w->host);
    }
    call_lua(L, 1, 0, "on_event (a %s event%s%s%s%s)", type, j ? " of " : "", j ? j->key : "",
             !j && w ? " of worker " : "", !j && w ? w->name : "");
    s->lua_ran = 1; /* it may have stopped the run (a SIGINT to itself) */
}

/* Pushes t[k] without metamethods; returns its type. */
static int raw_field(lua_State *L, int t, const char *k)
{
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

int lsched_check(sched *s, attempt *a, char *reason, size_t n)
{
    if (s->check_ref == LUA_NOREF)
        return 1;
    lua_State *L = s->L;
    job *j = a->job;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->check_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->lua_ref);
    lua_pushstring(L, a->result.tmp);
    lua_createtable(L, 0, 4);
    set_num(L, "since", a->launch_epoch);
    lua_pushinteger(L, a->utc_offset);
    lua_setfield(L, -2, "utc_offset");
    set_str(L, "worker", a->w->name);
    char final[8192];
    snprintf(final, sizeof final, "%s/%s", j->project_dir, a->result.final);
    set_str(L, "name", final);
    s->lua_ran = 1;
    if (pcall_unpinned(L, 3, 1) != LUA_OK) {
        char msg[1024];
        error_text(L, -1, msg, sizeof msg);
        if (snprintf(reason, n, "the check raised an error: %s", msg) >= (int)n)
            fs_utf8_whole(reason);
        lua_pop(L, 1);
        return 0; /* no report: the plan shows none (lsched_history) */
    }
    a->checked = 1;
    int ok = 0;
    if (lua_istable(L, -1)) {
        /* raw: a report table's metamethods run no code out here, where an
         * error would leave the run unwound */
        int rep = lua_gettop(L);
        raw_field(L, rep, "ok");
        ok = lua_toboolean(L, -1);
        lua_pop(L, 1);
        raw_field(L, rep, "stopped");
        if (lua_toboolean(L, -1))
            ok = -1; /* the check stopped the run */
        lua_pop(L, 1);
        int t = raw_field(L, rep, "reason");
        const char *r = t == LUA_TSTRING || t == LUA_TNUMBER ? lua_tostring(L, -1) : NULL;
        fs_text_copy(reason, n, r ? r : ok ? "" : "the check failed");
        lua_pop(L, 1);
        free(a->checks_json); /* encoded by pool.lua */
        a->checks_json = raw_field(L, rep, "checks_json") == LUA_TSTRING ? strdup(lua_tostring(L, -1)) : NULL;
        lua_pop(L, 1);
        lua_pushliteral(L, "checks_json");
        lua_pushnil(L);
        lua_rawset(L, rep);
    } else {
        ok = lua_toboolean(L, -1);
        snprintf(reason, n, "%s", ok ? "" : "the check returned false");
    }
    if (j->report_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, j->report_ref);
    j->report_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return ok;
}

void lsched_history(sched *s, attempt *a, const char *status, const char *reason)
{
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->job->history_ref);
    lua_createtable(L, 0, 12);
    set_int(L, "attempt", a->number);
    set_str(L, "worker", a->w->name);
    set_str(L, "host", a->w->host);
    set_str(L, "status", status);
    set_str(L, "reason", reason);
    set_num(L, "started", a->t_start);
    if (a->t_launch)
        set_num(L, "launched", a->t_launch);
    set_num(L, "ended", a->t_end);
    set_int(L, "exit_code", a->exit_code);
    set_str(L, "log", a->log);
    set_str(L, "workdir", a->workdir);
    set_int(L, "bytes_up", (long long)a->bytes_up);
    set_int(L, "bytes_down", (long long)a->bytes_down);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    /* the plan's checks are its last attempt's: none when that one ended
     * before its result was checked (not an earlier attempt's) */
    if (!a->checked && a->job->report_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, a->job->report_ref);
        a->job->report_ref = LUA_NOREF;
    }
}

/* The progress display's tick gets the files being sent or fetched, by
 * plan key: { file =, done =, size = } (bytes). */
void lsched_tick(sched *s)
{
    if (s->tick_ref == LUA_NOREF)
        return;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->tick_ref);
    lua_newtable(L);
    for (attempt *a = s->live; a; a = a->next) {
        char name[256];
        unsigned long long done = 0, size = 0;
        if (a->w->ops->transfer && a->w->ops->transfer(a->w, a, name, sizeof name, &done, &size)) {
            lua_createtable(L, 0, 3);
            set_str(L, "file", name);
            set_int(L, "done", (long long)done);
            set_int(L, "size", (long long)size);
            lua_setfield(L, -2, a->job->key);
        }
    }
    call_lua(L, 1, 0, "the progress display");
}

/* ---- run -------------------------------------------------------------------------- */

static void push_results(sched *s)
{
    lua_State *L = s->L;
    lua_createtable(L, s->njobs, 0);
    for (int i = 0; i < s->njobs; i++) {
        job *j = &s->jobs[i];
        lua_createtable(L, 0, 12);
        set_str(L, "key", j->key);
        set_str(L, "plan", j->plan);
        set_str(L, "status", status_str(j->status) ? status_str(j->status) : "cancelled");
        set_int(L, "attempts", job_attempts_made(j));
        set_num(L, "elapsed", j->first_start ? j->end - j->first_start : 0);
        if (j->first_start)
            set_num(L, "started", j->first_start);
        set_num(L, "ended", j->end);
        set_str(L, "result", j->result_path);
        set_str(L, "reason", j->reason[0] ? j->reason : NULL);
        lua_rawgeti(L, LUA_REGISTRYINDEX, j->history_ref);
        int hist = lua_gettop(L);
        int nh = (int)lua_rawlen(L, hist);
        if (nh > 0) {
            lua_rawgeti(L, hist, nh);
            lua_getfield(L, -1, "worker");
            lua_setfield(L, -4, "worker");
            lua_getfield(L, -1, "host");
            lua_setfield(L, -4, "host");
            lua_pop(L, 1);
        }
        lua_setfield(L, -2, "history");
        if (j->report_ref != LUA_NOREF) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, j->report_ref);
            lua_setfield(L, -2, "report");
        }
        lua_rawseti(L, -2, i + 1);
    }
}

static void free_sched(sched *s)
{
    lua_State *L = s->L;
    for (int i = 0; i < s->njobs; i++) {
        job *j = &s->jobs[i];
        for (int e = 0; j->specs && e < s->nengines; e++)
            spec_free(j->specs[e]);
        free(j->specs);
        luaL_unref(L, LUA_REGISTRYINDEX, j->lua_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, j->history_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, j->report_ref);
        sched_free_job(j);
    }
    free(s->jobs);
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = s->workers[i];
        if (!w)
            continue;
        if (w->ops && w->ops->destroy)
            w->ops->destroy(w);
        free(w->name);
        free(w->host);
        free(w->workdir);
        free(w->slot_busy);
        free(w);
    }
    free(s->workers);
    for (int i = 0; i < s->ngeom_done; i++)
        free(s->geom_done[i]);
    free(s->geom_done);
    luaL_unref(L, LUA_REGISTRYINDEX, s->check_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->event_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->tick_ref);
    loop_free(s->loop);
}

/* The run going on (its checks and handlers can stop it). */
static sched *running;

static int l_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    /* what can raise a Lua error is looked at before anything is allocated */
    lua_getfield(L, 1, "workers");
    luaL_argcheck(L, lua_istable(L, -1), 1, "workers must be a list");
    lua_getfield(L, 1, "jobs");
    luaL_argcheck(L, lua_istable(L, -1), 1, "jobs must be a list");
    lua_getfield(L, 1, "journal");
    journal *jn = lua_isnil(L, -1) ? NULL : journal_check(L, -1);
    lua_pop(L, 3);
    sched s = { 0 };
    s.L = L;
    s.journal = jn;
    s.loop = loop_new();
    s.check_ref = s.event_ref = s.tick_ref = LUA_NOREF;
    char *v = lf_str(L, 1, "run_id", "run");
    snprintf(s.run_id, sizeof s.run_id, "%s", v);
    free(v);
    v = lf_str(L, 1, "run_dir", ".");
    snprintf(s.run_dir, sizeof s.run_dir, "%s", v);
    free(v);
    s.tick_every = lf_num(L, 1, "tick_every", 0.25);
    s.cancel_wait = lf_num(L, 1, "cancel_wait", 20);
    s.down_grace = lf_num(L, 1, "down_grace", 30);
    lua_getfield(L, 1, "keep_scratch");
    s.keep_scratch = lua_toboolean(L, -1);
    lua_pop(L, 1);

    lua_getfield(L, 1, "workers");
    int wt = lua_gettop(L);
    s.nworkers = (int)lua_rawlen(L, wt);
    s.workers = calloc((size_t)s.nworkers + 1, sizeof *s.workers);
    char err[512] = "";
    int bad = s.nworkers == 0 ? -1 : 0;
    if (bad)
        snprintf(err, sizeof err, "the pool has no workers");
    for (int i = 0; i < s.nworkers && !bad; i++) {
        lua_rawgeti(L, wt, i + 1);
        bad = read_worker(&s, L, lua_gettop(L), i, err, sizeof err);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    int nengines = 0;
    for (int i = 0; i < s.nworkers && s.workers[i]; i++)
        if (s.workers[i]->engine + 1 > nengines)
            nengines = s.workers[i]->engine + 1;
    s.nengines = nengines;
    lua_getfield(L, 1, "jobs");
    int jt = lua_gettop(L);
    s.njobs = (int)lua_rawlen(L, jt);
    s.jobs = calloc((size_t)s.njobs + 1, sizeof *s.jobs);
    for (int i = 0; i < s.njobs; i++) {
        lua_rawgeti(L, jt, i + 1);
        read_job(&s, L, lua_gettop(L), i, nengines);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (bad) {
        free_sched(&s);
        return luaL_error(L, "sched.run: %s", err);
    }
    s.check_ref = ref_fn(L, 1, "check");
    s.event_ref = ref_fn(L, 1, "on_event");
    s.tick_ref = ref_fn(L, 1, "tick");

    sched *outer = running;
    running = &s;
    int sig = sched_main(&s);
    running = outer;
    push_results(&s);
    if (sig > 0)
        lua_pushinteger(L, sig);
    else
        lua_pushnil(L); /* none, or the recipe stopped it (it knows) */
    free_sched(&s);
    return 2;
}

/* sched.stop(reason): from a check or an event handler, the run stops as
 * after a Ctrl-C: every attempt is cancelled with reason. false when it was
 * stopped already (a signal, an earlier stop). */
static int l_stop(lua_State *L)
{
    const char *reason = luaL_checkstring(L, 1);
    if (!running)
        return luaL_error(L, "sched.stop: no run is going on");
    lua_pushboolean(L, sched_stop(running, reason));
    return 1;
}

int luaopen_rasrun_sched(lua_State *L)
{
    static const luaL_Reg funcs[] = { { "run", l_run }, { "stop", l_stop }, { NULL, NULL } };
    luaL_newlib(L, funcs);
    return 1;
}
