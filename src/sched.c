/* The scheduler's mechanism: dispatch to slots, attempt lifecycles, retries,
 * timeouts, Ctrl-C, commits into the project, the journal. */
#include "sched_int.h"
#include "spares.h"
#include "affinity.h"
#include "fsutil.h"
#include "slice.h"
#include "proc.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

loop *sched_loop(sched *s) { return s->loop; }
const char *sched_run_id(sched *s) { return s->run_id; }

int sched_engine_programs(worker *w, const char **out, int max)
{
    sched *s = w->s;
    int n = 0;
    for (int i = 0; i < s->njobs; i++) {
        const job_spec *sp = s->jobs[i].specs ? s->jobs[i].specs[w->engine] : NULL;
        if (!sp || sp->nsteps < 1)
            continue;
        /* the engine proper: the last step (a preprocessor before it runs
         * for some plans only, and their attempts say when it is missing) */
        const char *prog = sp->steps[sp->nsteps - 1][0];
        int known = !strchr(prog, '/'); /* found on PATH: not looked for */
        for (int m = 0; m < n && !known; m++)
            known = strcmp(out[m], prog) == 0;
        if (!known && n < max)
            out[n++] = prog;
    }
    return n;
}

const char *sched_missing_program(worker *w)
{
    const char *progs[8];
    int n = sched_engine_programs(w, progs, 8);
    for (int i = 0; i < n; i++)
        if (access(progs[i], X_OK) != 0)
            return progs[i];
    return NULL;
}

const worker_ops *worker_ops_find(const char *type)
{
    static const worker_ops *const all[] = { &worker_local_ops, &worker_ssh_ops };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->type, type) == 0)
            return all[i];
    return NULL;
}

/* ---- journal ------------------------------------------------------------- */

static cJSON *jrec(const char *ev, job *j, attempt *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ev", ev);
    if (j) {
        cJSON_AddStringToObject(o, "job", j->key);
        cJSON_AddStringToObject(o, "plan", j->plan);
    }
    if (a) {
        journal_add_number(o, "attempt", a->number);
        cJSON_AddStringToObject(o, "worker", a->w->name);
        cJSON_AddStringToObject(o, "host", a->w->host);
    }
    return o;
}

/* A journal that cannot be written (a full disk) is said once: the run goes
 * on, and the count is given at its end (sched_main). */
static void jwrite(sched *s, cJSON *o)
{
    if (!s->journal) {
        cJSON_Delete(o);
        return;
    }
    if (journal_write(s->journal, o) != 0 && s->journal_lost++ == 0)
        fprintf(stderr, "rasrun: cannot write the journal %s: %s (the run goes on; a resume "
                "would run again the plans that end from now on)\n", journal_path(s->journal),
                strerror(errno));
}

/* ---- names ---------------------------------------------------------------- */

/* "Sample/p01" -> "Sample_p01": keys become file names. A long key (a
 * project's folder in it: "Sample/p01@/a/long/path") keeps its start and
 * gets a hash of the whole for the rest: a file name holds 255 bytes. */
#define SAFE_KEEP 120
static void safe_name(char *out, size_t n, const char *key)
{
    size_t len = strlen(key), keep = len > SAFE_KEEP + 20 ? SAFE_KEEP : len, i = 0;
    for (; i < keep && i + 1 < n; i++)
        out[i] = (key[i] == '/' || key[i] == ' ') ? '_' : key[i];
    out[i] = 0;
    if (keep < len)
        snprintf(out + i, n - i, "-%016llx", fs_hash(key));
}

/* Unique per attempt of a run: two plans of one geometry both stage its
 * outputs (Sample.x01) into the project folder, each under its own name. */
void sched_stage_suffix(attempt *a, char *out, size_t n)
{
    snprintf(out, n, ".rasrun-%s-j%d-a%d", a->w->s->run_id, a->job->index, a->number);
}

/* A long final name is shortened in it (fs_fit_name): the suffix stays,
 * for a resume to find what a killed run left, and so does the room for a
 * copy's temporary name beside it. */
char *sched_stage_path(const char *project_dir, const char *final_name, const char *suffix)
{
    char fit[256], *p = NULL;
    fs_fit_name(fit, sizeof fit, final_name, FS_TEMP_NAME_MAX - 1 - strlen(suffix));
    if (asprintf(&p, "%s/.%s%s", project_dir, fit, suffix) < 0)
        return NULL;
    return p;
}

char *sched_stage_name(attempt *a, const char *final_name)
{
    char suffix[128];
    sched_stage_suffix(a, suffix, sizeof suffix);
    return sched_stage_path(a->job->project_dir, final_name, suffix);
}

void sched_add_output(attempt *a, char *tmp, const char *final_name, int kind)
{
    staged st = { tmp, strdup(final_name) };
    if (kind == OUT_RESULT) {
        free(a->result.tmp);
        free(a->result.final);
        a->result = st;
        return;
    }
    staged **v = kind == OUT_GEOM ? &a->geom : &a->outputs;
    int *n = kind == OUT_GEOM ? &a->ngeom : &a->noutputs;
    staged *g = realloc(*v, sizeof **v * (size_t)(*n + 1));
    if (!g) { /* out of memory: the file is not left behind in the project */
        unlink(st.tmp);
        free(st.tmp);
        free(st.final);
        return;
    }
    *v = g;
    (*v)[(*n)++] = st;
}

static void free_staged(staged *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].tmp);
        free(v[i].final);
    }
}

static void free_attempt(attempt *a)
{
    free_staged(&a->result, 1);
    free_staged(a->outputs, a->noutputs);
    free_staged(a->geom, a->ngeom);
    free(a->outputs);
    free(a->geom);
    free(a->checks_json);
    free(a);
}

/* ---- dispatch --------------------------------------------------------------- */

static int tried_on(job *j, worker *w)
{
    for (int i = 0; i < j->ntried; i++)
        if (j->tried[i] == w->index)
            return 1;
    return 0;
}

/* The lowest tier of a worker still connecting: higher tiers wait for it, so
 * that a slow SSH handshake does not hand tier 0's plans to tier 1. */
static int connecting_tier(sched *s)
{
    int t = 1 << 30;
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i]->state == W_CONNECTING && s->workers[i]->tier < t)
            t = s->workers[i]->tier;
    return t;
}

/* A free slot for the job: workers that have not failed it first (a retry
 * moves elsewhere when it can), then the lowest tier, then the least loaded. */
static worker *pick_worker(sched *s, job *j)
{
    worker *best = NULL;
    double best_key[4] = { 0 };
    int wait_above = connecting_tier(s);
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = s->workers[i];
        if (w->state != W_UP || w->running >= w->slots || !j->specs[w->engine] ||
            w->tier > wait_above)
            continue;
        double key[4] = { tried_on(j, w), w->tier, (double)w->running / w->slots, w->running };
        int better = !best;
        for (int k = 0; !better && k < 4; k++) {
            if (key[k] != best_key[k]) {
                better = key[k] < best_key[k];
                break;
            }
        }
        if (better) {
            best = w;
            memcpy(best_key, key, sizeof key);
        }
    }
    return best;
}

static int any_free_slot(sched *s)
{
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i]->state == W_UP && s->workers[i]->running < s->workers[i]->slots)
            return 1;
    return 0;
}

void sched_slot_dir(char *out, size_t n, worker *w, int slot)
{
    char wname[256];
    safe_name(wname, sizeof wname, w->name);
    snprintf(out, n, "%s/%s/%s.%d", w->workdir, w->s->run_id, wname, slot + 1);
}

/* Where a failed attempt's work folder is kept (keep_scratch). */
void sched_kept_dir(char *out, size_t n, attempt *a)
{
    char safe[512];
    safe_name(safe, sizeof safe, a->job->key);
    snprintf(out, n, "%s/%s/%s-a%d", a->w->workdir, a->w->s->run_id, safe, a->number);
}

static void take_signals(sched *s);

static void start_attempt(sched *s, job *j, worker *w)
{
    attempt *a = calloc(1, sizeof *a);
    if (!a)
        return;
    a->job = j;
    a->w = w;
    a->spec = j->specs[w->engine];
    j->attempts++;
    a->number = job_attempts_made(j);
    a->exit_code = -1;
    a->step = -1;
    clock_gettime(CLOCK_REALTIME, &a->t_files);
    a->t_start = (double)a->t_files.tv_sec + (double)a->t_files.tv_nsec / 1e9;
    a->phase = A_STAGE_IN;
    char safe[512];
    safe_name(safe, sizeof safe, j->key);
    a->slot = 0;
    while (a->slot < w->slots - 1 && w->slot_busy[a->slot])
        a->slot++;
    w->slot_busy[a->slot] = 1;
    sched_slot_dir(a->workdir, sizeof a->workdir, w, a->slot);
    snprintf(a->log, sizeof a->log, "%s/logs/%s-a%d.log", s->run_dir, safe, a->number);
    if (!j->first_start)
        j->first_start = a->t_start;
    j->state = J_RUNNING;
    w->running++;
    a->next = s->live;
    s->live = a;
    cJSON *o = jrec("attempt", j, a);
    cJSON_AddStringToObject(o, "workdir", a->workdir);
    cJSON_AddStringToObject(o, "log", a->log);
    jwrite(s, o);
    lsched_event(s, "start", j, a, NULL, NULL);
    take_signals(s); /* its handler stopped the run: it starts no engine */
    if (s->interrupted) {
        a->interrupted = 1;
        sched_attempt_done(a);
        return;
    }
    w->ops->start(w, a);
}

/* The inputs of the next jobs in line are asked of the disk before they
 * start, while engines run: copying them, or an engine reading them, then
 * need not wait for the disk while a core stands idle. Where the page cache
 * holds a job's first input, it is taken to hold the rest. Only the start
 * of each file: the next job may start hours later, when a whole
 * geometry's worth read now would have left the cache again, and the
 * kernel's read-ahead carries a long read on from there. */
#define PREFETCH_AHEAD 2
#define PREFETCH_BYTES (8LL << 20)

static void prefetch_next(sched *s)
{
    int looked = 0;
    for (int i = s->first_open; i < s->njobs && looked < PREFETCH_AHEAD; i++) {
        job *j = &s->jobs[i];
        if (j->state != J_READY)
            continue;
        looked++;
        if (j->prefetched)
            continue;
        j->prefetched = 1;
        const job_spec *sp = NULL;
        for (int e = 0; !sp && j->specs && e < s->nengines; e++)
            sp = j->specs[e];
        for (int k = 0; sp && k < sp->ninputs; k++) {
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", j->project_dir, sp->inputs[k]);
            if (fs_prefetch(p, PREFETCH_BYTES) == 0 && k == 0)
                break;
        }
    }
}

static void on_signal(void *ud, int fd, short revents);
static void interrupt_run(sched *s, int why);

/* What stopped the run, for its cancelled attempts' reasons. */
static const char *interrupt_text(const sched *s)
{
    return s->interrupted == SCHED_STOPPED ? s->stop_reason : strsignal(s->interrupted);
}

/* A stop the recipe's Lua asked for (rasrun.fail in a check or on_event,
 * or a SIGINT it sent itself) is taken before anything else starts: the
 * loop would read a signal only on its next turn, after the next engines
 * had started. Not where it was asked: the attempts are not to be
 * cancelled from inside the check of one of them. */
static void take_signals(sched *s)
{
    if (!s->lua_ran)
        return;
    s->lua_ran = 0;
    if (s->stop_asked) {
        s->stop_asked = 0;
        if (!s->interrupted) /* (a signal came first: it stands, with its grace) */
            interrupt_run(s, SCHED_STOPPED);
    }
    if (s->sigfd >= 0)
        on_signal(s, s->sigfd, POLLIN);
}

static void dispatch(sched *s)
{
    take_signals(s);
    if (s->interrupted)
        return;
    /* Jobs before the cursor are all running or done: skip them. */
    while (s->first_open < s->njobs && (s->jobs[s->first_open].state == J_DONE ||
                                        s->jobs[s->first_open].state == J_RUNNING))
        s->first_open++;
    for (int i = s->first_open; i < s->njobs && any_free_slot(s); i++) {
        job *j = &s->jobs[i];
        if (j->state != J_READY)
            continue;
        worker *w = pick_worker(s, j);
        if (w)
            start_attempt(s, j, w);
        if (s->interrupted) /* its start event's handler stopped the run */
            return;
    }
    prefetch_next(s);
}

/* ---- job outcomes ------------------------------------------------------------ */

static const char *status_name(enum job_status st)
{
    return st == S_OK ? "ok" : st == S_FAILED ? "failed" : st == S_CANCELLED ? "cancelled" : "none";
}

/* The job ends, with its last attempt a (NULL: none ended it): its time
 * ends when that attempt did, not when it was judged (the next plan's
 * staging may come between). */
static void finish_job(sched *s, job *j, attempt *a, enum job_status st, const char *reason)
{
    if (j->state == J_WAITING)
        s->nwaiting--;
    j->state = J_DONE;
    j->status = st;
    j->end = a && a->t_end > 0 ? a->t_end : loop_wall();
    if (reason && reason != j->reason)
        fs_text_copy(j->reason, sizeof j->reason, reason);
    s->ndone++;
    cJSON *o = jrec("done", j, NULL);
    cJSON_AddStringToObject(o, "status", status_name(st));
    journal_add_number(o, "attempts", job_attempts_made(j));
    if (j->first_start > 0) /* as run.json has it (a resume reads it back) */
        journal_add_number(o, "elapsed", j->end - j->first_start);
    if (j->result_path)
        cJSON_AddStringToObject(o, "result", j->result_path);
    if (j->reason[0])
        cJSON_AddStringToObject(o, "reason", j->reason);
    jwrite(s, o);
    lsched_event(s, "done", j, a, NULL, j->reason[0] ? j->reason : NULL);
}

static int depends_on(job *j, int other)
{
    for (int i = 0; i < j->nafter; i++)
        if (j->after[i] == other)
            return 1;
    return 0;
}

/* Jobs waiting on j become ready, or fail with it. */
static void release_dependents(sched *s, job *j)
{
    for (int i = 0; i < s->njobs && s->nwaiting > 0; i++) {
        job *d = &s->jobs[i];
        if (d->state != J_WAITING || !depends_on(d, j->index))
            continue;
        if (j->status != S_OK) {
            char why[512];
            snprintf(why, sizeof why, "not run: it waits for %s, which %s", j->key,
                     j->status == S_CANCELLED ? "was cancelled" : "failed");
            finish_job(s, d, NULL, j->status == S_CANCELLED ? S_CANCELLED : S_FAILED, why);
            release_dependents(s, d);
            continue;
        }
        int ready = 1;
        for (int k = 0; k < d->nafter && ready; k++)
            ready = s->jobs[d->after[k]].state == J_DONE && s->jobs[d->after[k]].status == S_OK;
        if (ready) {
            d->state = J_READY;
            s->nwaiting--;
        }
    }
}

/* ---- commit ------------------------------------------------------------------ */

/* Geometry outputs are committed once per file per run: "<geometry key>/<name>".
 * Per file, not per geometry: in a mixed pool the first plan of a geometry
 * may make only some of them (RasGeomPreprocess the .xGG, Ras.exe also the
 * .cGG and .gGG.hdf). */
static int geom_committed(sched *s, const char *key, const char *name)
{
    size_t kl = strlen(key);
    for (int i = 0; i < s->ngeom_done; i++)
        if (strncmp(s->geom_done[i], key, kl) == 0 && s->geom_done[i][kl] == '/' &&
            strcasecmp(s->geom_done[i] + kl + 1, name) == 0)
            return 1;
    return 0;
}

/* Side outputs take the spelling the project has for them: an engine that
 * wrote Sample.c01 where the project has Sample.C01 (Windows does not mind
 * the case) replaces that file instead of leaving a second one beside it.
 * The folder is read only when a name is not there as it is (a new output,
 * or one spelt otherwise). Of two outputs that differ in case alone, the
 * one the engine made (not an input's copy) goes into the project. */
static void spell_as_project(const attempt *a, staged *v, int *count)
{
    const char *dir = a->job->project_dir;
    int *engine_made = calloc((size_t)*count + 1, sizeof *engine_made);
    if (!engine_made)
        return;
    DIR *d = NULL;
    for (int i = 0; i < *count; i++) {
        /* the final name is the work folder's until here */
        engine_made[i] = !spec_lists(a->spec->inputs, a->spec->ninputs, v[i].final);
        char p[8192];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, v[i].final);
        if (lstat(p, &st) == 0 || errno != ENOENT || (!d && !(d = opendir(dir))))
            continue;
        rewinddir(d);
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcasecmp(e->d_name, v[i].final) == 0) {
                char *name = strdup(e->d_name);
                if (name) {
                    free(v[i].final);
                    v[i].final = name;
                }
                break;
            }
    }
    if (d)
        closedir(d);
    for (int i = 0; i < *count; i++)
        for (int k = i + 1; k < *count; k++)
            if (strcasecmp(v[i].final, v[k].final) == 0) {
                int drop = engine_made[i] && !engine_made[k] ? k : i;
                unlink(v[drop].tmp);
                free(v[drop].tmp);
                free(v[drop].final);
                v[drop] = v[*count - 1];
                engine_made[drop] = engine_made[*count - 1];
                --*count;
                k = i; /* v[i] or v[k] changed: look again after i */
            }
    free(engine_made);
}

/* The old file a commit replaced, now under the staged name: kept as a spare
 * for the next staging, or removed. */
static void retire(sched *s, const staged *st, enum fs_placed how)
{
    if (how != FS_PUT_SWAPPED)
        return;
    spares_adopt(s->spares, st->tmp);
}

char *sched_take_spare(sched *s)
{
    return spares_take(s->spares);
}

/* A folder where a staged file is to go fails the commit before anything in
 * the project is replaced (the side outputs would otherwise be in place
 * beside the old result). */
static int blocked(const staged *v, int count, const char *dir, char *err, size_t n)
{
    for (int i = 0; i < count; i++) {
        char dst[8192];
        struct stat st;
        snprintf(dst, sizeof dst, "%s/%s", dir, v[i].final);
        if (lstat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(err, n, "cannot move %s into place as %s: %s", v[i].tmp, dst, strerror(EISDIR));
            return 1;
        }
    }
    return 0;
}

/* The files a commit is about to put in place, journaled first: each
 * staged name, where it goes and the new file's inode; the result last.
 * A controller killed half-way through leaves the old files under the
 * staged names of those it swapped in, and a resume (pool.lua,
 * undo_commits) tells them from the new ones by their inodes, and puts
 * them back. */
static void journal_commit(sched *s, attempt *a, const staged **list, int total)
{
    cJSON *o = jrec("commit", a->job, a), *files = cJSON_AddArrayToObject(o, "files");
    for (int i = 0; files && i < total; i++) {
        char dst[8192];
        struct stat st;
        snprintf(dst, sizeof dst, "%s/%s", a->job->project_dir, list[i]->final);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "staged", list[i]->tmp);
        cJSON_AddStringToObject(f, "path", dst);
        char ino[32]; /* as a string: exact at any size (as Lua's integer prints it) */
        if (stat(list[i]->tmp, &st) == 0 && snprintf(ino, sizeof ino, "%lld", (long long)st.st_ino) > 0)
            cJSON_AddStringToObject(f, "ino", ino);
        cJSON_AddItemToArray(files, f);
    }
    jwrite(s, o);
}

/* Renames the staged files into the project: side outputs first, the result
 * last, so that a result in place always has its logs beside it; when one
 * cannot go into place, those already in place are taken back, and the
 * project is left as it was. Geometry outputs come back once per geometry
 * per run: two plans of one geometry never both write them. */
static int commit(sched *s, attempt *a, char *err, size_t n)
{
    const char *dir = a->job->project_dir;
    const char *gk = a->spec->geom_key;
    spell_as_project(a, a->outputs, &a->noutputs);
    spell_as_project(a, a->geom, &a->ngeom);
    if (blocked(&a->result, 1, dir, err, n) || blocked(a->outputs, a->noutputs, dir, err, n))
        return -1;
    int ng = 0; /* the geometry outputs not committed yet in this run */
    for (int i = 0; gk && i < a->ngeom; i++)
        if (!geom_committed(s, gk, a->geom[i].final)) {
            if (blocked(&a->geom[i], 1, dir, err, n))
                return -1;
            ng++;
        }
    int total = a->noutputs + ng + 1;
    const staged **list = malloc(sizeof *list * (size_t)total);
    enum fs_placed *how = malloc(sizeof *how * (size_t)total);
    if (!list || !how) {
        free(list);
        free(how);
        snprintf(err, n, "out of memory");
        return -1;
    }
    int k = 0;
    for (int i = 0; i < a->noutputs; i++)
        list[k++] = &a->outputs[i];
    for (int i = 0; gk && i < a->ngeom; i++)
        if (!geom_committed(s, gk, a->geom[i].final))
            list[k++] = &a->geom[i];
    list[k++] = &a->result;
    char dst[8192];
    /* Dated before they are in place: a controller killed during the
     * commit leaves no result newer than its attempt's start. The result
     * takes that start (see changed_inputs_note); side outputs from another
     * host carry its clock, which may be ahead of this one's: they take
     * this clock's time (the commit's), so that a restart file brought back
     * is never newer than the result of a plan that starts after it. */
    struct timespec start[2] = { { .tv_nsec = UTIME_OMIT }, a->t_files };
    utimensat(AT_FDCWD, a->result.tmp, start, 0);
    if (strcmp(a->w->ops->type, "local") != 0)
        for (int i = 0; i < total - 1; i++)
            utimensat(AT_FDCWD, list[i]->tmp, NULL, 0);
    journal_commit(s, a, list, total);
    int done = 0;
    for (; done < total; done++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, list[done]->final);
        if (fs_swap_in(list[done]->tmp, dst, &how[done]) != 0)
            break;
    }
    if (done < total) {
        snprintf(err, n, "cannot move %s into place as %s: %s", list[done]->tmp, dst, strerror(errno));
        while (done-- > 0) {
            snprintf(dst, sizeof dst, "%s/%s", dir, list[done]->final);
            fs_swap_back(list[done]->tmp, dst, how[done]);
        }
        free(list);
        free(how);
        return -1;
    }
    for (int i = 0; i < total; i++)
        retire(s, list[i], how[i]);
    /* the geometry outputs an earlier plan of the run brought back: not again */
    for (int i = 0; i < a->ngeom; i++)
        if (!gk || geom_committed(s, gk, a->geom[i].final))
            unlink(a->geom[i].tmp);
    for (int i = 0; i < ng; i++) {
        char **g = realloc(s->geom_done, sizeof *g * (size_t)(s->ngeom_done + 1));
        if (!g)
            break;
        s->geom_done = g;
        if (asprintf(&g[s->ngeom_done], "%s/%s", gk, list[a->noutputs + i]->final) >= 0)
            s->ngeom_done++;
    }
    free(list);
    free(how);
    free(a->job->result_path);
    if (asprintf(&a->job->result_path, "%s/%s", dir, a->result.final) < 0)
        a->job->result_path = NULL;
    return 0;
}

/* Files a plan's run brings back into the project (geometry outputs,
 * collected outputs): not inputs that changed under it when it does. */
static int written_back(const job_spec *sp, const char *name)
{
    return spec_matches_any(sp->geom_files, sp->ngeom, name) ||
           spec_matches_any(sp->collect, sp->ncollect, name);
}

/* An input that changed in the project while the attempt ran (the geometry
 * edited, a restart file another plan brought back): the result was made
 * from the file as it was. Its name, or NULL. */
static const char *input_changed(const attempt *a, time_t *future)
{
    const job_spec *sp = a->spec;
    *future = 0;
    for (int i = 0; i < sp->ninputs; i++) {
        char p[8192];
        struct stat st;
        if (written_back(sp, sp->inputs[i]))
            continue;
        snprintf(p, sizeof p, "%s/%s", a->job->project_dir, sp->inputs[i]);
        if (stat(p, &st) == 0 && (st.st_mtim.tv_sec > a->t_files.tv_sec ||
                                  (st.st_mtim.tv_sec == a->t_files.tv_sec &&
                                   st.st_mtim.tv_nsec > a->t_files.tv_nsec))) {
            /* dated after now: a wrong clock (the host that wrote it), not
             * a change during the run */
            if (st.st_mtim.tv_sec > time(NULL) + 2)
                *future = st.st_mtim.tv_sec;
            return sp->inputs[i];
        }
    }
    return NULL;
}

/* A result is as new as the inputs it was made from: commit() dates it at
 * its attempt's start, so that a source changed while the plan ran (the
 * geometry edited, a restart file another plan brought back) is newer than
 * it, and the next run finds it out of date. A file written before the
 * start is never newer; one written within a clock tick after it may not be
 * (file times can lag the clock by a tick). note: what the plan's report
 * says when an input the engine read changed, or "". */
static void changed_inputs_note(attempt *a, char *note, size_t n)
{
    time_t future;
    const char *changed = input_changed(a, &future);
    note[0] = 0;
    char when[32];
    struct tm tm;
    if (changed && future && localtime_r(&future, &tm) &&
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(note, n, "%s is dated in the future (%s; a wrong clock where it was written?): "
                 "the result looks out of date until the plan runs again after that time", changed, when);
    else if (changed)
        snprintf(note, n, "%s changed while the plan ran: its result was made from the file as it was",
                 changed);
}

/* A failed attempt's staged files are kept for inspection in the run folder
 * (attempts/<plan>-aN/), or removed (keep = 0: a cancelled attempt); the
 * project keeps its previous result either way. */
static void keep_dir(sched *s, attempt *a, char *dir, size_t n)
{
    char safe[512];
    safe_name(safe, sizeof safe, a->job->key);
    snprintf(dir, n, "%s/attempts/%s-a%d", s->run_dir, safe, a->number);
}

int sched_keep_output(attempt *a, const char *src, const char *final_name, char *dir, size_t n)
{
    char err[512], dst[8192 + 512];
    keep_dir(a->w->s, a, dir, n);
    if (fs_mkdirs(dir, err, sizeof err) != 0)
        return -1;
    snprintf(dst, sizeof dst, "%s/%s", dir, final_name);
    if (rename(src, dst) == 0)
        return 0;
    return errno == EXDEV && fs_copy(src, dst, 1, err, sizeof err) == 0 ? 0 : -1;
}

static void drop_staged(sched *s, attempt *a, int keep)
{
    char dir[8192], err[512];
    keep_dir(s, a, dir, sizeof dir);
    int made = 0;
    staged *lists[3] = { &a->result, a->outputs, a->geom };
    int counts[3] = { a->result.tmp ? 1 : 0, a->noutputs, a->ngeom };
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < counts[k]; i++) {
            staged *st = &lists[k][i];
            if (keep && !made)
                made = fs_mkdirs(dir, err, sizeof err) == 0;
            char dst[8192 + 512];
            snprintf(dst, sizeof dst, "%s/%s", dir, st->final);
            if (made && rename(st->tmp, dst) == 0)
                continue;
            /* a run folder on another file system gets a copy */
            if (made && errno == EXDEV && fs_copy(st->tmp, dst, 1, err, sizeof err) != 0)
                fprintf(stderr, "rasrun: cannot keep a failed attempt's file: %s\n", err);
            unlink(st->tmp);
        }
}

/* ---- finishing attempts ------------------------------------------------------- */

void sched_attempt_launched(attempt *a, int step, long pid, unsigned long long start_lo,
                            unsigned long long start_hi)
{
    sched *s = a->w->s;
    if (step == 0) {
        a->phase = A_RUNNING;
        a->t_launch = loop_wall();
        if (a->job->timeout > 0)
            a->deadline = loop_now() + a->job->timeout;
    }
    cJSON *o = jrec("launched", a->job, a);
    if (step > 0)
        journal_add_number(o, "step", step);
    journal_add_number(o, "pid", (double)pid);
    if (start_lo > 0) { /* 0: the clock could not be read; a resume will not trust the pid */
        journal_add_number(o, "starttime", (double)start_lo);
        if (start_hi != start_lo)
            journal_add_number(o, "starttime_max", (double)start_hi);
    }
    cJSON_AddStringToObject(o, "workdir", a->workdir);
    jwrite(s, o);
    if (step == 0)
        lsched_event(s, "launched", a->job, a, NULL, NULL);
}

void sched_attempt_done(attempt *a)
{
    sched *s = a->w->s;
    if (a->phase == A_DONE)
        return; /* written off already (abandoned); the backend reports late */
    attempt **pp = &s->live;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp)
        *pp = a->next;
    a->phase = A_DONE;
    a->t_end = loop_wall();
    a->next = s->finished;
    s->finished = a;
}

void sched_attempt_not_begun(attempt *a, const char *reason)
{
    a->failed = 1;
    snprintf(a->reason, sizeof a->reason, "%s", reason);
    sched_attempt_done(a);
}

/* " (its log ends: ...)": the last line the engine wrote, which is where an
 * engine that fails says why (a missing file, a licence); "" when none. */
static void log_ending(const attempt *a, char *out, size_t n)
{
    out[0] = 0;
    int fd = a->log[0] ? open(a->log, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    char buf[2048];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t got = size > 0 ? pread(fd, buf, sizeof buf - 1, from) : 0;
    close(fd);
    if (got <= 0)
        return;
    buf[got] = 0;
    char *end = buf + got;
    while (end > buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;
    char *line = end;
    while (line > buf && line[-1] != '\n' && line[-1] != '\r')
        line--;
    if (!*line)
        return;
    char said[201];
    fs_text_copy(said, sizeof said, line);
    snprintf(out, n, " (its log ends: %s%s)", said, strlen(line) > 200 ? "..." : "");
}

/* A step's program without its folder. */
static const char *step_program(const attempt *a, int step)
{
    const char *prog = a->spec->steps[step][0];
    for (const char *c = prog; *c; c++)
        if (*c == '/' || *c == '\\')
            prog = c + 1;
    return prog;
}

/* Who exited with the attempt's exit code: the engine, or a step before it
 * (RasGeomPreprocess), named by its program; where the worker could not say
 * which step it was, either. */
static void who_exited(const attempt *a, char *who, size_t n)
{
    int last = a->spec->nsteps - 1;
    if (a->step < 0 && last > 0)
        snprintf(who, n, "the engine or the step before it (%s)", step_program(a, last - 1));
    else if (a->step < 0 || a->step >= last)
        snprintf(who, n, "the engine");
    else
        snprintf(who, n, "%s (step %d of %d, before the engine)", step_program(a, a->step), a->step + 1,
                 a->spec->nsteps);
}

/* After why, what an attempt written off was told (it did not stop, its
 * host cannot be reached: its engine may still run there). */
static void add_written_off(const attempt *a, char *why, size_t n)
{
    size_t len = strlen(why);
    if (a->abandoned && a->reason[0] && len + 1 < n)
        snprintf(why + len, n - len, "; %s", a->reason);
}

/* Decides an attempt's outcome: ok only when the engine finished, a result
 * came back, and the recipe's checks pass on it. */
static int judge(sched *s, attempt *a, char *why, size_t n)
{
    if (a->interrupted) {
        snprintf(why, n, "cancelled (%s)", interrupt_text(s));
        add_written_off(a, why, n);
        return 0;
    }
    if (a->timed_out) {
        snprintf(why, n, "timed out after %.10g s; the engine's process tree was killed",
                 a->job->timeout);
        add_written_off(a, why, n);
        return 0;
    }
    if (a->failed) {
        snprintf(why, n, "%s", a->reason[0] ? a->reason : "the worker failed");
        return 0;
    }
    char said[300], who[300];
    who_exited(a, who, sizeof who);
    if (!a->result.tmp) {
        log_ending(a, said, sizeof said);
        if (a->exit_code > 0)
            snprintf(why, n, "%s exited with code %d and left no result file (%s)%s",
                     who, a->exit_code, a->spec->result_from, said);
        else
            snprintf(why, n, "no result file: the engine exited with code %d but did not write %s",
                     a->exit_code, a->spec->result_from);
        return 0;
    }
    char check[512] = "";
    int ok = lsched_check(s, a, check, sizeof check);
    if (ok < 0) { /* its check stopped the run: cancelled, as the others */
        a->interrupted = 1;
        snprintf(why, n, "cancelled (%s)", check);
        return 0;
    }
    if (a->exit_code != 0) {
        log_ending(a, said, sizeof said);
        snprintf(why, n, "%s exited with code %d%s%s%s", who, a->exit_code, said,
                 check[0] ? "; " : "", check);
        return 0;
    }
    if (!ok) {
        snprintf(why, n, "%s", check);
        return 0;
    }
    return 1;
}

/* Gives the slot back: its folder emptied (the outputs were staged out
 * already) and the backend's state freed. */
static void release_slot(sched *s, attempt *a, int remove_workdir)
{
    worker *w = a->w;
    if (a->released)
        return;
    a->released = 1;
    w->running--;
    if (!a->abandoned)
        w->ops->release(w, a, remove_workdir);
    w->slot_busy[a->slot] = 0;
    (void)s;
}

static void process_finished(sched *s, attempt *a)
{
    job *j = a->job;
    worker *w = a->w;
    char why[1024] = "", note[1024] = "";
    int ok = judge(s, a, why, sizeof why);
    if (ok && commit(s, a, why, sizeof why) != 0)
        ok = 0;
    if (ok)
        changed_inputs_note(a, note, sizeof note);
    if (!ok)
        drop_staged(s, a, !a->interrupted);
    if (!ok && !a->interrupted && s->keep_scratch) {
        /* keep_scratch: where its work folder goes (on its worker's host) */
        char kept[4096];
        sched_kept_dir(kept, sizeof kept, a);
        int remote = a->w->host && strcmp(a->w->ops->type, "local") != 0;
        size_t len = strlen(why);
        if (snprintf(why + len, sizeof why - len, "%s(work folder kept in %s%s%s)", len ? " " : "", kept,
                     remote ? " on " : "", remote ? a->w->host : "") >= (int)(sizeof why - len))
            fs_utf8_whole(why);
    }
    cJSON *o = jrec("attempt_end", j, a);
    cJSON_AddBoolToObject(o, "ok", ok);
    journal_add_number(o, "exit", a->exit_code);
    journal_add_number(o, "elapsed", a->t_end - a->t_start);
    if (a->t_exit > 0 && a->t_launch > 0)
        journal_add_number(o, "engine_seconds", a->t_exit - a->t_launch);
    if (a->bytes_up || a->bytes_down) {
        journal_add_number(o, "bytes_up", (double)a->bytes_up);
        journal_add_number(o, "bytes_down", (double)a->bytes_down);
    }
    if (!ok)
        cJSON_AddStringToObject(o, "reason", why);
    if (a->checks_json) /* a resume's reports show them */
        cJSON_AddRawToObject(o, "checks", a->checks_json);
    jwrite(s, o);
    lsched_history(s, a, ok ? "ok" : a->interrupted ? "cancelled" : "failed", ok ? NULL : why);
    /* keep_scratch keeps a failed attempt's folder; a cancelled one's goes */
    release_slot(s, a, ok || a->interrupted || !s->keep_scratch);
    if (ok) {
        j->reason[0] = 0;
        finish_job(s, j, a, S_OK, note[0] ? note : NULL);
        release_dependents(s, j);
    } else if (a->interrupted) {
        finish_job(s, j, a, S_CANCELLED, why);
        release_dependents(s, j);
    } else {
        fs_text_copy(j->reason, sizeof j->reason, why);
        int *t = realloc(j->tried, sizeof *t * (size_t)(j->ntried + 1));
        if (t) {
            j->tried = t;
            t[j->ntried++] = w->index;
        }
        lsched_event(s, "attempt_failed", j, a, NULL, why);
        take_signals(s); /* a handler that stopped the run: no retry is announced */
        /* every attempt of this run so far failed (one that did not ended
         * the job), and so did failed_before of an interrupted run's */
        if (j->attempts + j->failed_before <= j->retries) {
            /* a retry is due: after a Ctrl-C it waits, and the end of the
             * run cancels it with this reason (a resume runs it) */
            j->state = J_READY;
            if (j->index < s->first_open)
                s->first_open = j->index;
            if (!s->interrupted)
                lsched_event(s, "retry", j, a, NULL, why);
        } else {
            finish_job(s, j, a, S_FAILED, why);
            release_dependents(s, j);
        }
    }
    if (a->abandoned) {
        a->next = s->zombies;
        s->zombies = a;
    } else {
        free_attempt(a);
    }
}

/* Finished attempts give their slots back first, and the next engines start,
 * before the checks of the finished ones run (their outputs are already
 * staged out; a check can take a while). With keep_scratch a failed
 * attempt's folder is kept, so the slot waits for the verdict.
 *
 * Checks then run in batches of up to JUDGE_BATCH, at most JUDGE_WAIT s after
 * the first of them finished, and at once when nothing else is running: a
 * result file's checks cost several times more when each runs alone between
 * engine starts (the processor's caches hold the engines' data by then) than
 * when they run one after another. Batches of up to 32 ran the dispatch
 * benchmark 4% faster than batches of up to 8 (interleaved 1000-plan runs:
 * 6 of 8 pairs, and 6 of 6 with a 0.2 s wait); 128 gained nothing more, nor
 * did the longer wait. An engine that ends during a batch is still replaced
 * at once (drain_finished). */
#define JUDGE_BATCH 32
#define JUDGE_WAIT 0.05

static int judge_now(sched *s)
{
    return s->nunjudged >= JUDGE_BATCH || !s->live || s->interrupted || s->keep_scratch ||
           loop_now() - s->unjudged_since >= JUDGE_WAIT;
}

/* Takes what finished: slots given back, next engines started, checks queued. */
static void take_finished(sched *s)
{
    attempt *list = NULL;
    while (s->finished) { /* reverse: oldest first */
        attempt *a = s->finished;
        s->finished = a->next;
        a->next = list;
        list = a;
    }
    if (!list)
        return;
    if (!s->keep_scratch) {
        for (attempt *a = list; a; a = a->next)
            release_slot(s, a, 1);
        dispatch(s);
    }
    if (!s->unjudged) {
        s->unjudged_tail = &s->unjudged;
        s->unjudged_since = loop_now();
    }
    while (list) {
        attempt *a = list;
        list = a->next;
        a->next = NULL;
        *s->unjudged_tail = a;
        s->unjudged_tail = &a->next;
        s->nunjudged++;
    }
}

/* Between two checks of a batch, engines that ended meanwhile are replaced
 * at once: their cores would otherwise wait for the whole batch. A batch
 * that takes longer than JUDGE_WAIT (slow recipe checks) leaves the rest for
 * the loop's next turn, so that timeouts and workers' ticks are not held up. */
static void drain_finished(sched *s)
{
    take_finished(s);
    if (!s->unjudged || !judge_now(s))
        return;
    double until = loop_now() + JUDGE_WAIT;
    int n = s->nunjudged;
    while (n-- > 0 && s->unjudged) {
        attempt *a = s->unjudged;
        s->unjudged = a->next;
        s->nunjudged--;
        process_finished(s, a);
        if (n > 0 && loop_now() >= until)
            return; /* the rest at once on the next turn (unjudged_since is old) */
        if (n > 0 && loop_run_once(s->loop, 0) > 0 && s->finished)
            take_finished(s);
    }
    if (s->unjudged)
        s->unjudged_since = loop_now(); /* the ones that came during the batch */
}

/* ---- timeouts, signals, workers --------------------------------------------- */

static void cancel_attempt(attempt *a, int timed_out)
{
    if (a->phase == A_DONE)
        return;
    if (timed_out)
        a->timed_out = 1;
    else
        a->interrupted = 1;
    a->cancelling = 1;
    a->w->ops->cancel(a->w, a);
}

static void check_timeouts(sched *s)
{
    double now = loop_now();
    for (attempt *a = s->live, *next; a; a = next) {
        next = a->next;
        /* from the engine's start to its end: a result being copied back
         * (A_STAGE_OUT) is not lost to the timeout */
        if (a->deadline > 0 && now > a->deadline && !a->cancelling && a->phase != A_STAGE_OUT)
            cancel_attempt(a, 1);
    }
}

/* Stops the run: every attempt is cancelled (a second signal: at once). */
static void interrupt_run(sched *s, int why)
{
    if (!s->interrupted || (s->interrupted == SCHED_STOPPED && why != SCHED_STOPPED)) {
        /* a signal during the recipe's stop: the run ends as the signal says */
        if (!s->interrupted)
            s->interrupted_at = loop_now();
        s->interrupted = why;
        lsched_event(s, "interrupted", NULL, NULL, NULL, interrupt_text(s));
    } else {
        s->forced = 1;
        for (int i = 0; i < s->nworkers; i++)
            s->workers[i]->kill_grace = 0;
    }
    for (attempt *a = s->live, *next; a; a = next) {
        next = a->next;
        if (!a->cancelling || s->forced) {
            cancel_attempt(a, 0);
        } else if (a->timed_out && !a->hurry && a->phase != A_DONE) {
            /* still bringing its files back: not after a Ctrl-C (it
             * stays timed out, not cancelled: a resume keeps it failed) */
            a->hurry = 1;
            a->w->ops->cancel(a->w, a);
        }
    }
}

static void on_signal(void *ud, int fd, short revents)
{
    (void)revents;
    sched *s = ud;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        interrupt_run(s, (int)si.ssi_signo);
}

int sched_stop(sched *s, const char *reason)
{
    if (s->stop_asked || s->interrupted)
        return 0; /* the first word stands */
    s->stop_asked = 1;
    fs_text_copy(s->stop_reason, sizeof s->stop_reason, reason && *reason ? reason : "no reason given");
    return 1;
}

void sched_worker_state(worker *w, enum worker_state st, const char *reason)
{
    sched *s = w->s;
    if (w->state == st)
        return;
    w->state = st;
    if (st != W_DOWN)
        w->down_for_good = 0;
    if (st == W_DOWN)
        snprintf(w->down_reason, sizeof w->down_reason, "%s", reason ? reason : "down");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ev", st == W_UP ? "worker_up" : st == W_DOWN ? "worker_down"
                                                               : "worker_connecting");
    cJSON_AddStringToObject(o, "worker", w->name);
    cJSON_AddStringToObject(o, "host", w->host);
    if (reason)
        cJSON_AddStringToObject(o, "reason", reason);
    jwrite(s, o);
    if (st != W_CONNECTING)
        lsched_event(s, st == W_UP ? "worker_up" : "worker_down", NULL, NULL, w, reason);
}

/* A waiting plan fails when every worker that can run it (has an engine
 * for it) has been down for down_grace seconds: with all workers down, or
 * with only the plan's engine kind down while the others run theirs; at
 * once when they are all down for good (a refused login: no wait mends it). */
static void check_workers(sched *s)
{
    int down = 0;
    for (int i = 0; i < s->nworkers; i++)
        down |= s->workers[i]->state == W_DOWN;
    if (!down && !s->nstranded)
        return;
    double now = loop_now();
    s->nstranded = 0;
    for (int i = 0; i < s->njobs; i++) {
        job *j = &s->jobs[i];
        if (j->state != J_READY && j->state != J_WAITING)
            continue;
        int usable = 0, for_good = 1;
        for (int k = 0; k < s->nworkers && !usable; k++) {
            worker *w = s->workers[k];
            usable = j->specs[w->engine] && w->state != W_DOWN;
            if (j->specs[w->engine] && !w->down_for_good)
                for_good = 0;
        }
        if (usable) {
            j->stranded_since = 0;
            continue;
        }
        s->nstranded++;
        if (!j->stranded_since)
            j->stranded_since = now;
        if (now - j->stranded_since < s->down_grace && !for_good)
            continue;
        char why[1024];
        int n = snprintf(why, sizeof why, "no worker available:");
        const char *sep = "";
        for (int k = 0; k < s->nworkers && n < (int)sizeof why; k++) {
            worker *w = s->workers[k];
            if (!j->specs[w->engine])
                continue;
            n += snprintf(why + n, sizeof why - (size_t)n, "%s %s (%s)", sep, w->name, w->down_reason);
            sep = ";";
        }
        finish_job(s, j, NULL, S_FAILED, why);
        release_dependents(s, j);
    }
}

static int open_signals(sched *s, sigset_t *old)
{
    sigset_t set;
    proc_stop_set(&set); /* unread, they would end rasrun and leave the engines running */
    sigprocmask(SIG_BLOCK, &set, old);
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, old, NULL); /* Ctrl-C still stops the process */
        errno = e;
        return -1;
    }
    loop_watch(s->loop, s->sigfd, POLLIN, on_signal, s);
    return 0;
}

static void close_signals(sched *s, const sigset_t *old)
{
    struct signalfd_siginfo si;
    /* one that came as the last plan finished (or while a stop of the
     * recipe's ended the run) still ends it as interrupted (reports
     * written, exit 130/143), not lost */
    if (s->sigfd >= 0 && (!s->interrupted || s->interrupted == SCHED_STOPPED) &&
        read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        s->interrupted = (int)si.ssi_signo;
    if (s->sigfd >= 0)
        close(s->sigfd);
    s->sigfd = -1;
    /* Signals that arrived after the last read stay pending and would fire on
     * unblock; the run already handled one, so drop them. */
    sigset_t pend;
    sigpending(&pend);
    int pending = 0;
    for (int i = 0; i < PROC_NSTOP; i++)
        pending |= sigismember(&pend, proc_stop_signals[i]) == 1;
    if (pending) {
        struct sigaction ign = { .sa_handler = SIG_IGN }, was[PROC_NSTOP];
        for (int i = 0; i < PROC_NSTOP; i++)
            sigaction(proc_stop_signals[i], &ign, &was[i]);
        sigprocmask(SIG_SETMASK, old, NULL);
        for (int i = 0; i < PROC_NSTOP; i++)
            sigaction(proc_stop_signals[i], &was[i], NULL);
    } else {
        sigprocmask(SIG_SETMASK, old, NULL);
    }
}

/* ---- the run ------------------------------------------------------------------ */

static void open_workers(sched *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = s->workers[i];
        char err[512] = "";
        w->state = W_CONNECTING;
        if (w->ops->open(w, err, sizeof err) != 0)
            sched_worker_state(w, W_DOWN, err);
    }
}

static int wait_ms(sched *s)
{
    double now = loop_now(), next = now + SCHED_TICK_MS / 1000.0;
    for (attempt *a = s->live; a; a = a->next)
        if (a->deadline > 0 && !a->cancelling && a->phase != A_STAGE_OUT && a->deadline < next)
            next = a->deadline; /* passed for one being cancelled: no spinning */
    if (s->finished)
        return 0;
    if (s->unjudged && s->unjudged_since + JUDGE_WAIT < next)
        next = s->unjudged_since + JUDGE_WAIT;
    int ms = (int)((next - now) * 1000) + 1;
    return ms < 0 ? 0 : ms;
}

/* Cancelled attempts get cancel_wait seconds to stop; then they are written
 * off (their engines were sent SIGKILL; a worker that cannot reach its host
 * says so in its reason). */
static void abandon_stuck(sched *s)
{
    if (!s->interrupted || loop_now() - s->interrupted_at < s->cancel_wait)
        return;
    for (attempt *a = s->live, *next; a; a = next) {
        next = a->next;
        if (a->copying)
            continue; /* its copy stops within a slice, and it ends then */
        if (!a->reason[0])
            snprintf(a->reason, sizeof a->reason,
                     "did not stop within %.0f s of the cancel: its engine may still be running on %s",
                     s->cancel_wait, a->w->host ? a->w->host : a->w->name);
        a->failed = 1;
        a->abandoned = 1;
        sched_attempt_done(a);
    }
}

int sched_main(sched *s)
{
    sigset_t old;
    s->sigfd = -1;
    if (open_signals(s, &old) != 0)
        fprintf(stderr, "rasrun: signalfd: %s (Ctrl-C will stop rasrun without cleaning up)\n",
                strerror(errno));
    char spare_dir[4200];
    snprintf(spare_dir, sizeof spare_dir, "%s/.spares", s->run_dir);
    s->spares = spares_new(spare_dir); /* removes what a killed run left there */
    slice_saved slice;
    slice_shorten(&slice);
    open_workers(s);
    s->nwaiting = 0;
    for (int i = 0; i < s->njobs; i++)
        s->nwaiting += s->jobs[i].state == J_WAITING;
    for (int i = 0; i < s->njobs; i++)
        if (s->jobs[i].unrunnable) {
            finish_job(s, &s->jobs[i], NULL, S_FAILED, s->jobs[i].reason);
            release_dependents(s, &s->jobs[i]);
        }
    for (int i = 0; i < s->njobs; i++)
        if (s->jobs[i].state == J_WAITING && s->jobs[i].nafter == 0) {
            s->jobs[i].state = J_READY;
            s->nwaiting--;
        }
    while (s->ndone < s->njobs || s->live || s->finished || s->unjudged) {
        if (s->interrupted && !s->live && !s->finished && !s->unjudged)
            break;
        dispatch(s);
        check_timeouts(s);
        if (loop_run_once(s->loop, wait_ms(s)) < 0) {
            fprintf(stderr, "rasrun: poll: %s\n", strerror(errno));
            break;
        }
        double now = loop_now();
        for (int i = 0; i < s->nworkers; i++)
            if (s->workers[i]->ops->tick)
                s->workers[i]->ops->tick(s->workers[i], now);
        drain_finished(s);
        affinity_release(0); /* moved to a freed core that got no new engine */
        check_workers(s);
        abandon_stuck(s);
        journal_sync_async(s->journal);
        if (now >= s->next_tick) {
            s->next_tick = now + s->tick_every;
            lsched_tick(s);
        }
    }
    /* Plans never started in an interrupted run are cancelled; one that
     * waited for a retry keeps the reason its last attempt failed. */
    for (int i = 0; i < s->njobs; i++) {
        job *j = &s->jobs[i];
        if (j->state == J_DONE)
            continue;
        char why[sizeof j->reason];
        int made = job_attempts_made(j);
        if (j->attempts > 0)
            snprintf(why, sizeof why, "%s while it waited for attempt %d (attempt %d: %.900s)",
                     s->interrupted ? "cancelled" : "not run", made + 1, made, j->reason);
        else
            snprintf(why, sizeof why, "%s", s->interrupted ? "cancelled before it started" : "not run");
        finish_job(s, j, NULL, S_CANCELLED, why);
    }
    for (int i = 0; i < s->nworkers; i++)
        s->workers[i]->ops->close(s->workers[i]);
    spares_free(s->spares);
    s->spares = NULL;
    /* Workers are closed: nothing refers to written-off attempts any more. */
    while (s->zombies) {
        attempt *a = s->zombies;
        s->zombies = a->next;
        free_attempt(a);
    }
    if (s->journal)
        journal_sync(s->journal);
    if (s->journal_lost > 1)
        fprintf(stderr, "rasrun: %d journal lines in all could not be written to %s\n",
                s->journal_lost, journal_path(s->journal));
    slice_restore(&slice);
    close_signals(s, &old);
    return s->interrupted;
}

void sched_free_job(job *j)
{
    free(j->key);
    free(j->plan);
    free(j->project_dir);
    free(j->after);
    free(j->tried);
    free(j->result_path);
}
