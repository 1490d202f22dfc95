/* The local worker: plans run on this machine, each attempt in its own work
 * folder under workdir, engines in their own process groups, watched through
 * pidfds on the scheduler's loop, started from the loop on the core the last
 * engine left, or on another free one when that engine shared its core
 * (free_core; spawner.h, affinity.h).
 * Engine output goes straight to the attempt's log file (no pipe that a stuck
 * grandchild could hold open).
 * Where pidfd_open is missing (kernels before 5.3, such as RHEL 8's 4.18, or
 * under valgrind), an engine's end is looked for at every tick of the loop
 * instead (SCHED_TICK_MS). */
#include "sched.h"
#include "fsutil.h"
#include "proc.h"
#include "spawner.h"
#include "affinity.h"
#include "helper_thread.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MAX_TREE 256
/* Seconds to wait for a killed engine to end before the worker closes
 * without it (one stuck in uninterruptible sleep ends when its I/O does). */
#define REAP_WAIT 5
/* The missing pidfd_open is said once per process, not per worker or run. */
static int said_polled;

typedef struct local_attempt {
    attempt *a;
    pid_t pid;
    int pidfd, watch;
    int polled;              /* running without a pidfd: waitpid at each tick */
    int step;
    int log_fd;
    int spawn_cpu;           /* the core its engine started on, or -1 */
    /* staging on a thread of its own (stage_start) */
    int staging;             /* the thread runs: the attempt waits for on_staged */
    atomic_int stop_staging;
    pthread_t stager;
    int clear_first;
    char **spares;           /* per input: a replaced file to copy into, or NULL */
    int stage_rc;
    char stage_err[1024];
    double spawned_at;       /* loop_now() then */
    char **envp;
    double kill_at;          /* monotonic: SIGKILL after the grace */
    pid_t tree[MAX_TREE];    /* the process tree, as seen since the cancel began */
    unsigned long long tree_start[MAX_TREE];
    int ntree;
    struct local_attempt *next;
} local_attempt;

typedef struct {
    local_attempt *live;
    local_attempt *written_off; /* ended after the scheduler wrote them off: freed at close */
    spawner *spawn;
    int stage_done[2]; /* staging threads write here the attempts they are done with */
    int stage_done_watch;
    int closing;
    unsigned char *emptied; /* per slot: its folder is there and empty */
    char *mount_project;    /* the project folder last asked about (by_rename) */
    int mount_same;         /* and whether the work folders share its mount */
} local_worker;

static int lw_create(worker *w, lua_State *L, int idx, char *err, size_t n)
{
    (void)L;
    (void)idx;
    (void)err;
    (void)n;
    local_worker *lw = calloc(1, sizeof *lw);
    if (lw && !(lw->emptied = calloc((size_t)(w->slots > 0 ? w->slots : 1), 1))) {
        free(lw);
        lw = NULL;
    }
    if (lw) {
        lw->stage_done[0] = lw->stage_done[1] = -1;
        lw->stage_done_watch = -1;
    }
    w->data = lw;
    return lw ? 0 : -1;
}

static void on_staged(void *ud, int fd, short revents);

static int open_local(worker *w, char *err, size_t n)
{
    local_worker *lw = w->data;
    if (fs_mkdirs(w->workdir, err, n) != 0)
        return -1;
    if (access(w->workdir, W_OK) != 0) {
        snprintf(err, n, "work folder %s is not writable: %s", w->workdir, strerror(errno));
        return -1;
    }
    const char *prog = sched_missing_program(w);
    if (prog) {
        snprintf(err, n, "engine %s cannot be run: %s; is engine.home right?", prog, strerror(errno));
        return -1;
    }
    /* this run's slot folders go to a fresh part of the disk (fs_mkdirs_top) */
    char run_work[4096];
    snprintf(run_work, sizeof run_work, "%s/%s", w->workdir, sched_run_id(w->s));
    if (fs_mkdirs_top(run_work, err, n) != 0)
        return -1;
    free(lw->mount_project); /* asked again in this run */
    lw->mount_project = NULL;
    if (!lw->spawn && !(lw->spawn = spawner_new(sched_loop(w->s), err, n)))
        return -1;
    if (lw->stage_done[0] < 0) {
        if (pipe2(lw->stage_done, O_CLOEXEC | O_NONBLOCK) != 0) {
            snprintf(err, n, "cannot set up staging: %s", strerror(errno));
            return -1;
        }
        lw->stage_done_watch = loop_watch(sched_loop(w->s), lw->stage_done[0], POLLIN, on_staged, w);
    }
    sched_worker_state(w, W_UP, NULL);
    return 0;
}

/* Nothing opens a local worker again: one that cannot open (its work folder
 * cannot be made) is down for good, and its plans fail at once instead of
 * waiting down_grace for it. */
static int lw_open(worker *w, char *err, size_t n)
{
    if (open_local(w, err, n) == 0)
        return 0;
    w->down_for_good = 1;
    return -1;
}

static void unlink_live(local_worker *lw, local_attempt *la)
{
    local_attempt **pp = &lw->live;
    while (*pp && *pp != la)
        pp = &(*pp)->next;
    if (*pp)
        *pp = la->next;
}

/* The attempt ends: report to the scheduler (state is freed in release). */
static void finish(worker *w, local_attempt *la)
{
    if (la->log_fd >= 0) {
        close(la->log_fd);
        la->log_fd = -1;
    }
    local_worker *lw = w->data;
    unlink_live(lw, la);
    if (la->a->abandoned) { /* the scheduler no longer asks for a release */
        la->next = lw->written_off;
        lw->written_off = la;
        return;
    }
    sched_attempt_done(la->a);
}

static int fail(worker *w, local_attempt *la, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(worker *w, local_attempt *la, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(la->a->reason, sizeof la->a->reason, fmt, ap);
    va_end(ap);
    la->a->failed = 1;
    finish(w, la);
    return -1;
}

/* src, a file in the project not found under the name the project's
 * files give it, becomes its name on disk in another case, if there is
 * one: 1 then. */
static int other_case(char *src, size_t n)
{
    char named[8192];
    snprintf(named, sizeof named, "%s", src);
    return fs_any_case(named, src, n) == 0;
}

/* Inputs are copied (mtime kept), or hard-linked when the engine only reads
 * them: no data copied, no inode made (ext4 slows down under create/delete
 * churn). A link that cannot be made (another file system) becomes a copy.
 * Copies go into a file that a commit replaced when there is one (spares,
 * per input; used up). Calls nothing of the scheduler's: it may run on a
 * thread of its own (stage_start). */
static int stage_files(const attempt *a, int clear_first, char **spares, char *err, size_t n)
{
    char why[1024];
    /* the folder is emptied when a slot is given back: only its first use
     * in the run, or after a failed attempt's folder was kept, finds it
     * missing or not empty */
    if (clear_first &&
        (fs_clear(a->workdir, why, sizeof why) != 0 || fs_mkdirs_spread(a->workdir, why, sizeof why) != 0)) {
        snprintf(err, n, "%s: %s", a->w->name, why);
        return -1;
    }
    for (int i = 0; i < a->spec->ninputs; i++) {
        const char *name = a->spec->inputs[i];
        char src[8192], dst[8192];
        snprintf(src, sizeof src, "%s/%s", a->job->project_dir, name);
        snprintf(dst, sizeof dst, "%s/%s", a->workdir, name);
        /* a file the project's files name in another case than it has on
         * disk (a restart file an earlier plan wrote) is staged under
         * their name; a file to copy is looked for there when the copy
         * finds none (a copy looks at its source anyway) */
        int link = spec_lists(a->spec->links, a->spec->nlinks, name);
        int text = spec_lists(a->spec->text, a->spec->ntext, name);
        struct stat st;
        int there = (link || text) && stat(src, &st) == 0;
        if ((link || text) && !there && errno == ENOENT && other_case(src, sizeof src))
            there = stat(src, &st) == 0;
        /* a text input with a CR in it (Windows HEC-RAS writes CR LF) is
         * copied without them, never linked: the project keeps its own */
        int no_cr = text && there && S_ISREG(st.st_mode) ? fs_has_cr(src) : 0;
        if (no_cr < 0) {
            snprintf(err, n, "staging in: cannot read %s: %s", src, strerror(errno));
            return -1;
        }
        /* a file in a subfolder of the project (a DSS file in hydrology/)
         * goes into the same subfolder */
        char *slash = strrchr(dst, '/');
        if (strchr(name, '/')) {
            *slash = 0;
            int made = fs_mkdirs(dst, why, sizeof why);
            *slash = '/';
            if (made != 0) {
                snprintf(err, n, "staging in: %s", why);
                return -1;
            }
        }
        /* a link to what a symbolic link in the project points to: a link
         * to the symbolic link itself would point elsewhere from here; only
         * to a regular file (a FIFO or a device goes to the copy, which
         * refuses it, naming it) */
        if (there && link && !no_cr && S_ISREG(st.st_mode) &&
            linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == 0)
            continue;
        const int how = FS_COPY_MTIME | FS_COPY_WRITABLE | FS_COPY_IN_PLACE | (no_cr ? FS_COPY_NO_CR : 0);
        int rc = fs_copy_reusing(src, dst, how, spares[i], why, sizeof why);
        int missing = rc != 0 && errno == ENOENT;
        free(spares[i]);
        spares[i] = NULL;
        if (missing && !link && other_case(src, sizeof src))
            rc = fs_copy_reusing(src, dst, how, NULL, why, sizeof why);
        if (rc != 0) {
            snprintf(err, n, "staging in: %s", errno == ECANCELED ? "stopped" : why);
            return -1;
        }
    }
    return 0;
}

/* Inputs to copy (not linked) of more bytes than this are copied on a
 * thread of their own: the loop goes on meanwhile (other engines' ends,
 * timeouts, Ctrl-C). A few-GB .pNN.tmp.hdf takes seconds to copy from a
 * cold disk; small ones are copied at once (a thread costs more). */
#define STAGE_THREAD_BYTES (16LL << 20)

/* Moves a file into the project under its staging name: a rename on the
 * same file system (mtime kept, nothing copied), else a copy with the mtime. */
static int move_out(const char *src, const char *dst, char *err, size_t n)
{
    if (rename(src, dst) == 0)
        return 0;
    if (errno != EXDEV) {
        snprintf(err, n, "cannot move %s to %s: %s", src, dst, strerror(errno));
        return -1;
    }
    return fs_copy(src, dst, 1, err, n);
}

/* Brings the outputs into the project folder under temporary names (mtime
 * kept: the freshness check reads it). */
static void stage_out(worker *w, local_attempt *la)
{
    attempt *a = la->a;
    job_spec *sp = a->spec;
    DIR *d = opendir(a->workdir);
    if (!d) {
        snprintf(a->reason, sizeof a->reason, "%s: cannot list %s: %s", w->name, a->workdir,
                 strerror(errno));
        a->failed = 1;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name, *final;
        int kind = spec_output_kind(sp, name, &final);
        if (kind < 0)
            continue;
        char src[8192], err[1024];
        snprintf(src, sizeof src, "%s/%s", a->workdir, name);
        /* an input the engine left as it was (a hard link, or a copy with the
         * project's size and mtime) does not come back; nor does a result
         * file that is one (the Linux engine's .tmp.hdf): the attempt then
         * has no result, whatever the checks would say */
        struct stat st;
        if (stat(src, &st) != 0)
            continue;
        /* (a linked input still shared with the project's name is the
         * project's file: no need to look at that) */
        if ((st.st_nlink > 1 && spec_lists(sp->links, sp->nlinks, name)) ||
            spec_unchanged_input(sp, a->job->project_dir, name, (unsigned long long)st.st_size,
                                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec))
            continue;
        char *tmp = sched_stage_name(a, final);
        if (!tmp)
            continue;
        if (move_out(src, tmp, err, sizeof err) != 0) {
            int why = errno;
            char kept[8192];
            int k = sched_keep_output(a, src, final, kept, sizeof kept) == 0;
            if (!a->failed) /* the first file that failed says why */
                snprintf(a->reason, sizeof a->reason, "staging out: cannot bring %s back into %s: %s%s%s",
                         final, a->job->project_dir, strerror(why),
                         k ? "; the engine's outputs are kept in " : "", k ? kept : "");
            a->failed = 1;
            free(tmp);
            continue;
        }
        sched_add_output(a, tmp, final, kind);
    }
    closedir(d);
}

static void on_exit_fd(void *ud, int fd, short revents);
static void lw_cancel(worker *w, attempt *a);

/* The engine of the current step is running (or could not start). */
static void on_spawned(void *ud, const spawn_result *r)
{
    local_attempt *la = ud;
    attempt *a = la->a;
    worker *w = a->w;
    local_worker *lw = w->data;
    if (r->pid < 0)
        return (void)fail(w, la, "%s: %s", w->name, r->err);
    la->pid = r->pid;
    la->pidfd = r->pidfd;
    la->spawn_cpu = r->cpu;
    la->spawned_at = loop_now();
    la->polled = la->pidfd < 0;
    if (la->polled && !said_polled) {
        said_polled = 1;
        fprintf(stderr, "rasrun: %s: %s: engine ends are looked for every %.1f s instead\n",
                w->name, r->err, SCHED_TICK_MS / 1000.0);
    }
    if (lw->closing)
        return; /* lw_close stops it */
    if (!la->polled)
        la->watch = loop_watch(sched_loop(w->s), la->pidfd, POLLIN, on_exit_fd, la);
    sched_attempt_launched(a, la->step, la->pid, r->start_lo, r->start_hi);
    if (a->cancelling)
        lw_cancel(w, a); /* asked while it was starting */
}

static void launch_step(worker *w, local_attempt *la)
{
    attempt *a = la->a;
    local_worker *lw = w->data;
    proc_spec ps = { a->spec->steps[la->step], la->envp, a->workdir, -1, la->log_fd, la->log_fd, 1 };
    if (la->step == 0) {
        a->launch_epoch = loop_wall();
        time_t now = (time_t)a->launch_epoch;
        struct tm tm;
        localtime_r(&now, &tm);
        a->utc_offset = (int)tm.tm_gmtoff;
    }
    spawner_start(lw->spawn, &ps, on_spawned, la);
}

/* An engine of this attempt is running (started, not yet seen to end). */
static int running(const local_attempt *la)
{
    return la->pidfd >= 0 || la->polled;
}

/* Adds the engine's descendants not remembered yet. What was remembered
 * stays: a descendant whose parent has died since (a helper left behind by
 * a child that ended on SIGTERM) is no longer found under the engine, but is
 * still the attempt's to kill. */
static void remember_tree(local_attempt *la)
{
    pid_t kids[MAX_TREE];
    int n = proc_descendants(la->pid, kids, MAX_TREE);
    for (int i = 0; i < n && la->ntree < MAX_TREE; i++) {
        unsigned long long start = proc_starttime(kids[i]);
        int known = 0;
        for (int k = 0; k < la->ntree && !known; k++)
            known = la->tree[k] == kids[i] && la->tree_start[k] == start;
        if (!known) {
            la->tree[la->ntree] = kids[i];
            la->tree_start[la->ntree++] = start;
        }
    }
}

/* SIGKILL to everything the attempt started that still exists (checked by
 * start time, so a reused pid is never hit). */
static void kill_remembered(local_attempt *la)
{
    kill(-la->pid, SIGKILL);
    for (int i = 0; i < la->ntree; i++)
        if (proc_starttime(la->tree[i]) == la->tree_start[i]) {
            kill(la->tree[i], SIGKILL);
            kill(-la->tree[i], SIGKILL);
        }
}

/* A process that left the engine's tree (a daemon: a double fork, setsid)
 * but works in the attempt's folder is the attempt's all the same. Looking
 * costs a pass over /proc: done when an attempt was stopped, and for every
 * slot when the run ends, not after every plan. */
#define MAX_IN_FOLDER 256

static void kill_in_folder(const char *dir)
{
    pid_t pids[MAX_IN_FOLDER];
    int n = proc_in_folder(dir, pids, MAX_IN_FOLDER);
    for (int i = 0; i < n; i++)
        if (pids[i] != getpid())
            kill(pids[i], SIGKILL);
}

/* How many running engines free_core asks where they run: each is a read
 * of /proc. With more, the ended engine's core is taken as it is. */
#define CORE_LOOKS 8

/* Reading /proc/PID/stat of an engine that is still starting can wait for
 * it: its loader maps libraries, and the read waited behind that, about 1 ms
 * at a time in a `perf sched` trace (in 72 of 2000 plans), while the core
 * the ended engine left stood idle. An engine younger than this is taken to
 * be on the core it was started on; so is one that ended that young: the
 * kernel seldom moves one so soon (26 of 1900 in the dispatch benchmark),
 * and the read costs as much as the rest of a plan's reaping. */
#define STARTING_SECONDS 0.05

static int engine_core(const local_attempt *la)
{
    if (la->spawn_cpu >= 0 && loop_now() - la->spawned_at < STARTING_SECONDS)
        return la->spawn_cpu;
    return proc_last_cpu(la->pid);
}

/* The core an ended engine left free: the one it last ran on, unless
 * another engine of the worker runs there too (the kernel had put them on
 * one core); then a core none of them is on, or -1 when every core has one.
 * Moving to the ended engine's core regardless would start the next engine
 * there too, and the two would keep sharing it while another core idles. */
static int free_core(local_worker *lw, local_attempt *ended)
{
    int cpu = engine_core(ended); /* a zombie's: read before reaping */
    if (cpu < 0)
        return -1;
    cpu_set_t busy;
    CPU_ZERO(&busy);
    int looked = 0;
    for (local_attempt *o = lw->live; o; o = o->next) {
        if (o == ended || o->pid <= 0 || !running(o))
            continue;
        if (++looked > CORE_LOOKS)
            return cpu;
        int c = engine_core(o);
        if (c >= 0 && c < CPU_SETSIZE)
            CPU_SET(c, &busy);
    }
    if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &busy))
        return cpu;
    cpu_set_t mine;
    if (affinity_unpinned(&mine) != 0)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &mine) && !CPU_ISSET(c, &busy))
            return c;
    return -1;
}

/* A staging thread, in or out, is done: on_staged takes the attempt on. */
static void staging_done(local_attempt *la)
{
    local_worker *lw = la->a->w->data;
    ssize_t wr; /* a pointer is less than PIPE_BUF: written whole */
    do
        wr = write(lw->stage_done[1], &la, sizeof la);
    while (wr < 0 && errno == EINTR);
}

static void *unstage_main(void *arg)
{
    local_attempt *la = arg;
    fs_copy_stop_flag(&la->stop_staging);
    stage_out(la->a->w, la);
    staging_done(la);
    return NULL;
}

/* Can a file move from folder a to folder b by rename? Not across file
 * systems, nor across two mounts of one (a bind mount, a container's
 * volume), where rename fails with EXDEV all the same. */
static int same_mount(const char *a, const char *b)
{
    struct statx x, y;
    if (statx(AT_FDCWD, a, 0, STATX_MNT_ID, &x) != 0 || statx(AT_FDCWD, b, 0, STATX_MNT_ID, &y) != 0)
        return 1; /* not known: by rename, as before (a copy where it fails) */
    if (x.stx_dev_major != y.stx_dev_major || x.stx_dev_minor != y.stx_dev_minor)
        return 0;
    return !(x.stx_mask & y.stx_mask & STATX_MNT_ID) || x.stx_mnt_id == y.stx_mnt_id;
}

/* same_mount of the attempt's work folder and project, asked once for a
 * project folder while plans of it follow one another (the run's work
 * folders are all in one folder, on one mount). */
static int by_rename(local_worker *lw, const attempt *a)
{
    const char *p = a->job->project_dir;
    if (!lw->mount_project || strcmp(lw->mount_project, p) != 0) {
        free(lw->mount_project);
        lw->mount_project = strdup(p); /* (none: asked again next time) */
        lw->mount_same = same_mount(a->workdir, p);
    }
    return lw->mount_same;
}

/* Outputs come back by rename where the work folder and the project share a
 * mount; else they are copied, on a thread of their own: a result of
 * gigabytes takes seconds to copy, and meanwhile other engines end, time
 * out or are stopped by a Ctrl-C, which the loop must see. 1: on a thread
 * (on_staged finishes the attempt). */
static int unstage_on_thread(local_attempt *la)
{
    if (by_rename(la->a->w->data, la->a) ||
        thread_start(&la->stager, unstage_main, la) != 0)
        return 0;
    la->staging = 1;
    la->a->copying = 1; /* not written off meanwhile (sched.c, abandon_stuck) */
    return 1;
}

/* Has the engine ended? Looked at without reaping it (its /proc entry is
 * still to be read); an engine reaped elsewhere counts as ended. */
static int has_ended(const local_attempt *la)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)la->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == la->pid;
}

/* Takes the engine's exit if it ended (its pidfd became readable, or a
 * tick looks for it) and moves the attempt on. */
static void reap_if_ended(local_attempt *la)
{
    attempt *a = la->a;
    worker *w = a->w;
    int status = 0;
    if (la->polled && !has_ended(la))
        return; /* a tick's look: the cores are asked about only at an end */
    int cpu = free_core(w->data, la);
    pid_t got = waitpid(la->pid, &status, WNOHANG);
    int lost = got < 0 && errno == ECHILD; /* reaped elsewhere (a recipe's sys.wait) */
    if (got != la->pid && !lost)
        return;
    affinity_move_to(cpu); /* the work until the next engine starts happens there */
    if (la->watch >= 0)
        loop_unwatch(sched_loop(w->s), la->watch);
    la->watch = -1;
    if (la->pidfd >= 0)
        close(la->pidfd);
    la->pidfd = -1;
    la->polled = 0;
    /* Helpers the engine left in its group (or, after a cancel, anywhere in
     * its tree) do not outlive it. */
    kill_remembered(la);
    a->exit_code = lost ? -1 : proc_exit_code(status);
    a->t_exit = loop_wall();
    if (lost) {
        snprintf(a->reason, sizeof a->reason, "%s (pid %d): its exit status was taken by another wait",
                 a->spec->steps[la->step][0], (int)la->pid);
        a->failed = 1;
        finish(w, la);
        return;
    }
    /* a timed-out attempt's files are staged out all the same: a failed
     * attempt's files are kept (the engine's partial output of a hang is
     * what tells why); a cancelled one's are not */
    if (a->cancelling && !a->timed_out) {
        finish(w, la);
        return;
    }
    if (a->exit_code == 0 && la->step + 1 < a->spec->nsteps && !a->cancelling) {
        la->step++;
        launch_step(w, la);
        return;
    }
    a->step = la->step;
    a->phase = A_STAGE_OUT;
    if (unstage_on_thread(la))
        return;
    stage_out(w, la);
    finish(w, la);
}

static void on_exit_fd(void *ud, int fd, short revents)
{
    (void)fd;
    (void)revents;
    reap_if_ended(ud);
}

/* The inputs are in place: the log is opened and the engine started. */
static void inputs_in_place(worker *w, local_attempt *la)
{
    attempt *a = la->a;
    la->log_fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (la->log_fd < 0) {
        fail(w, la, "cannot open the log %s: %s", a->log, strerror(errno));
        return;
    }
    char *extra[64];
    int ne = 0;
    for (int i = 0; i < a->spec->nenv && ne < 60; i++)
        extra[ne++] = a->spec->env[i];
    char wname[512], plan[128];
    snprintf(wname, sizeof wname, "RASRUN_WORKER=%s", w->name);
    snprintf(plan, sizeof plan, "RASRUN_PLAN=%s", a->job->plan);
    extra[ne++] = wname;
    extra[ne++] = plan;
    la->envp = proc_envp(extra, (size_t)ne);
    launch_step(w, la);
}

static void *stage_main(void *arg)
{
    local_attempt *la = arg;
    fs_copy_stop_flag(&la->stop_staging);
    la->stage_rc = stage_files(la->a, la->clear_first, la->spares, la->stage_err, sizeof la->stage_err);
    staging_done(la);
    return NULL;
}

/* Stages the attempt's inputs: at once when there is little to copy, else
 * on a thread of its own (on_staged takes it on from there). */
static void stage_start(worker *w, local_attempt *la)
{
    attempt *a = la->a;
    local_worker *lw = w->data;
    la->clear_first = !lw->emptied[a->slot];
    lw->emptied[a->slot] = 0;
    la->spares = calloc((size_t)a->spec->ninputs + 1, sizeof *la->spares);
    if (!la->spares) {
        fail(w, la, "out of memory");
        return;
    }
    /* the inputs to copy: a spare each, and their bytes */
    unsigned long long to_copy = 0;
    for (int i = 0; i < a->spec->ninputs; i++) {
        const char *name = a->spec->inputs[i];
        char src[8192];
        struct stat st;
        /* (a text input is read, to see whether it has a CR, and may be
         * copied: counted, though linked when it has none) */
        int link = spec_lists(a->spec->links, a->spec->nlinks, name);
        if (link && !spec_lists(a->spec->text, a->spec->ntext, name))
            continue;
        if (!link)
            la->spares[i] = sched_take_spare(w->s);
        snprintf(src, sizeof src, "%s/%s", a->job->project_dir, name);
        if (stat(src, &st) == 0)
            to_copy += (unsigned long long)st.st_size;
    }
    if (to_copy > STAGE_THREAD_BYTES && thread_start(&la->stager, stage_main, la) == 0) {
        la->staging = 1;
        return;
    }
    char err[1024];
    if (stage_files(a, la->clear_first, la->spares, err, sizeof err) != 0)
        fail(w, la, "%s", err);
    else
        inputs_in_place(w, la);
}

/* A staging thread is done: the attempt goes on, unless it was cancelled
 * meanwhile; one that staged out ends. */
static void on_staged(void *ud, int fd, short revents)
{
    (void)revents;
    worker *w = ud;
    local_attempt *la;
    while (read(fd, &la, sizeof la) == (ssize_t)sizeof la) {
        pthread_join(la->stager, NULL);
        la->staging = 0;
        if (la->a->phase == A_STAGE_OUT) { /* its outputs are back (or a Ctrl-C stopped them) */
            la->a->copying = 0;
            finish(w, la);
        } else if (la->a->cancelling) /* Ctrl-C meanwhile: it never starts */
            finish(w, la);
        else if (la->stage_rc != 0)
            fail(w, la, "%s", la->stage_err);
        else
            inputs_in_place(w, la);
    }
}

static void lw_start(worker *w, attempt *a)
{
    local_worker *lw = w->data;
    local_attempt *la = calloc(1, sizeof *la);
    if (!la) {
        sched_attempt_not_begun(a, "out of memory");
        return;
    }
    la->a = a;
    la->pidfd = la->watch = la->log_fd = -1;
    a->wdata = la;
    la->next = lw->live;
    lw->live = la;
    stage_start(w, la);
}

static void lw_cancel(worker *w, attempt *a)
{
    local_attempt *la = a->wdata;
    if (la && la->staging)
        atomic_store(&la->stop_staging, 1); /* on_staged ends it */
    if (!la || !running(la))
        return; /* starting (on_spawned stops it) or between steps: nothing to stop yet */
    if (!la->kill_at) {
        remember_tree(la);
        proc_kill_tree(la->pid, SIGTERM);
    }
    /* asked again (a second Ctrl-C, or one after a timeout): never later */
    double at = loop_now() + w->kill_grace;
    if (!la->kill_at || at < la->kill_at)
        la->kill_at = at;
    if (w->kill_grace <= 0)
        kill_remembered(la);
}

static void lw_tick(worker *w, double now)
{
    local_worker *lw = w->data;
    for (local_attempt *la = lw->live, *next; la; la = next) {
        next = la->next; /* an ended one may be taken off the list */
        if (la->polled)
            reap_if_ended(la);
        if (la->kill_at && now >= la->kill_at && running(la)) {
            remember_tree(la);
            proc_kill_tree(la->pid, SIGKILL);
            kill_remembered(la);
            la->kill_at = now + 1; /* repeat until the exit is seen */
        }
    }
}

static void free_local(local_attempt *la)
{
    for (int i = 0; la->spares && i < la->a->spec->ninputs; i++)
        if (la->spares[i]) { /* not used (staging failed before it): ours to remove */
            unlink(la->spares[i]);
            free(la->spares[i]);
        }
    free(la->spares);
    proc_envp_free(la->envp);
    if (la->log_fd >= 0)
        close(la->log_fd);
    free(la);
}

/* The slot folder is emptied for its next attempt, or, to keep a failed
 * attempt's files, renamed aside (the next attempt makes a new one). */
static void lw_release(worker *w, attempt *a, int remove_workdir)
{
    local_attempt *la = a->wdata;
    local_worker *lw = w->data;
    char err[1024];
    if (a->cancelling || a->timed_out || a->interrupted)
        kill_in_folder(a->workdir);
    if (remove_workdir) {
        if (fs_clear(a->workdir, err, sizeof err) != 0)
            fprintf(stderr, "rasrun: %s: %s\n", w->name, err);
        else
            lw->emptied[a->slot] = 1;
    } else {
        char kept[4096];
        sched_kept_dir(kept, sizeof kept, a);
        if (rename(a->workdir, kept) != 0)
            fprintf(stderr, "rasrun: %s: cannot keep %s as %s: %s\n", w->name, a->workdir, kept,
                    strerror(errno));
    }
    if (la) {
        unlink_live(w->data, la);
        free_local(la);
    }
    a->wdata = NULL;
}

/* Slot folders, and the run's folder when nothing was kept in it; what
 * still works in them is stopped first. */
static void remove_slot_dirs(worker *w)
{
    char dir[4096], err[1024];
    for (int k = 0; k < w->slots; k++) {
        sched_slot_dir(dir, sizeof dir, w, k);
        kill_in_folder(dir);
        struct stat st;
        if (lstat(dir, &st) != 0)
            continue; /* never made (a worker that did not come up) */
        if (fs_rmtree(dir, err, sizeof err) != 0)
            fprintf(stderr, "rasrun: %s: %s\n", w->name, err);
    }
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        rmdir(dir);
    }
}

static void lw_close(worker *w)
{
    local_worker *lw = w->data;
    if (lw) {
        lw->closing = 1;
        spawner_drain(lw->spawn);
        for (local_attempt *la = lw->live; la; la = la->next)
            if (la->staging) { /* written off while staging: stopped within a slice */
                atomic_store(&la->stop_staging, 1);
                pthread_join(la->stager, NULL);
                la->staging = 0;
            }
        /* what those threads said goes unread: their attempts are freed below */
        char buf[256];
        while (lw->stage_done[0] >= 0 && read(lw->stage_done[0], buf, sizeof buf) > 0)
            ;
    }
    /* Anything still running was written off: make sure it is gone. */
    while (lw && lw->live) {
        local_attempt *la = lw->live;
        lw->live = la->next;
        if (running(la)) {
            remember_tree(la);
            proc_kill_tree(la->pid, SIGKILL);
            kill_remembered(la);
            if (proc_wait(la->pid, REAP_WAIT, NULL) == 0)
                fprintf(stderr, "rasrun: %s: engine pid %d did not end within %d s of SIGKILL "
                        "(waiting for a disk or a network file system?); left to the system\n",
                        w->name, (int)la->pid, REAP_WAIT);
            if (la->watch >= 0)
                loop_unwatch(sched_loop(w->s), la->watch);
            if (la->pidfd >= 0)
                close(la->pidfd);
        }
        la->a->wdata = NULL;
        free_local(la);
    }
    while (lw && lw->written_off) {
        local_attempt *la = lw->written_off;
        lw->written_off = la->next;
        la->a->wdata = NULL;
        free_local(la);
    }
    remove_slot_dirs(w);
}

static void lw_destroy(worker *w)
{
    local_worker *lw = w->data;
    if (lw) {
        spawner_free(lw->spawn);
        free(lw->emptied);
        free(lw->mount_project);
        if (lw->stage_done_watch >= 0)
            loop_unwatch(sched_loop(w->s), lw->stage_done_watch);
        if (lw->stage_done[0] >= 0) {
            close(lw->stage_done[0]);
            close(lw->stage_done[1]);
        }
    }
    free(w->data);
    w->data = NULL;
}

const worker_ops worker_local_ops = {
    .type = "local",
    .create = lw_create,
    .open = lw_open,
    .start = lw_start,
    .cancel = lw_cancel,
    .release = lw_release,
    .tick = lw_tick,
    .close = lw_close,
    .destroy = lw_destroy,
};
