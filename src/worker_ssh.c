/* The SSH worker: plans run on a Linux host reached over SSH.
 *
 * One I/O thread per worker owns the host's libssh2 session, which its slots
 * share (one channel per running engine). The main thread hands it attempts
 * (turned into tasks: the thread never sees Lua or the scheduler's state) and gets
 * back "launched" and "done" messages through a queue and an eventfd watched
 * by the scheduler's loop. Tasks hold copies of the attempt's paths; the job
 * spec itself is read in place (it does not change during a run and lives
 * until the worker is closed).
 *
 * On the host, per attempt:
 *   stage in   the plan's files go to a content-addressed cache
 *              (<workdir>/.rasrun-cache/<sha256>) unless already there, so a
 *              file is sent once per host; the slot folder gets symlinks to
 *              the files the engine only reads and copies of the rest
 *   launch     one command prepares the folder and starts the engine steps
 *              under setsid (own session and process group), output to a log
 *              that `tail` streams back; a watchdog kills the group, and
 *              whatever still works in the slot folder, when the channel
 *              closes
 *   cancel     kills the engine's process group, every descendant, and
 *              whatever still works in the slot folder
 *   stage out  outputs come back by SFTP into temporary names in the project
 * A link that stops answering for the keepalive interval plus as much again
 * (libssh2's interval is at least 2 s) is declared lost: its attempts fail
 * (and are retried elsewhere), the thread
 * reconnects in the background, and kills what the lost attempts left
 * running once the host answers again. */
#include "sched.h"
#include "loop.h"
#include "fsutil.h"
#include "hashcache.h"
#include "ssh_conn.h"
#include "ssh_lua.h"
#include "ssh_scripts.h"

#include <lauxlib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netdb.h>
#include <sys/stat.h>

#define CACHE ".rasrun-cache"
/* In a slot folder, once the engine has ended: "EXIT-CODE EPOCH-SECONDS". */
#define ENDED_FILE "rasrun-ended"
/* The step that started last (its index), where there are several. */
#define STEP_FILE "rasrun-step"
/* How often a transfer looks for the host's other engines' ends. */
#define WATCH_EVERY 2.0

enum task_phase { T_QUEUED, T_RUNNING, T_DONE };
enum { M_LAUNCHED, M_EXITED, M_DONE, M_UP, M_DOWN, M_NOTE };

typedef struct out_file {
    char *tmp, *final;
    int kind;
} out_file;

/* One attempt as the thread sees it. */
typedef struct task {
    attempt *a;                 /* only handed back to the main thread */
    const job_spec *sp;         /* read only */
    char *project_dir, *slot_dir, *kept_dir, *log_path, *stage_suffix, *plan;
    double kill_grace;
    /* thread state */
    enum task_phase phase;
    LIBSSH2_CHANNEL *ch;
    int log_fd;
    long pid;
    long long epoch;
    int utc_offset;
    char errbuf[2048];          /* the channel's stderr: markers and script errors */
    size_t errlen;
    int exit_code, failed, cancel, killed;
    int step;                   /* the step that exit code is of; -1 unknown */
    int keep_files;             /* cancelled by its timeout: its files come back all the same */
    double t_exit;              /* wall clock: the engine's command ended */
    char reason[512];
    out_file *outs;
    int nouts;
    unsigned long long bytes_up, bytes_down;
    struct task *next;          /* the thread's list */
} task;

typedef struct msg {
    int kind;
    task *t;
    char reason[512];
    struct msg *next;
} msg;

typedef struct chore {
    char *cmd;
    struct chore *next;
} chore;

typedef struct orphan {
    long pid;
    char *dir;
    struct orphan *next;
} orphan;

typedef struct {
    ssh_target target;
    char *run_dir_remote;       /* <workdir>/<run id> once the home is known */
    char *workdir;              /* as configured (relative: under the login home) */
    char *home;                 /* the remote home (absolute) */
    double keepalive;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    task *incoming;             /* main -> thread */
    chore *chores;              /* main -> thread: commands to run on the host */
    int stop;
    msg *outbox, *outbox_tail;  /* thread -> main */
    int wake_thread;            /* eventfd the thread polls */
    int wake_main;              /* eventfd the scheduler's loop watches */
    int watch;
    /* thread-only */
    ssh_conn *c;
    hashcache *hc;
    strset *blobs;
    int blobs_listed;
    task *tasks;
    orphan *orphans;
    int slots_used;             /* a slot folder was prepared on the host */
    double idle_limit;          /* seconds a dead link takes to show while idle */
    double next_connect;
    double backoff;
    int auth_failed;            /* refused for good: a login, or an engine not on the host */
    const char *programs[8];    /* the engine's programs (in the specs), looked for at the first connect */
    int nprograms, host_checked;
    char down_why[512];         /* why the last connect failed */
    int engine_cap;             /* engines at most at once, once sshd refused a session; 0: none */
    task **made;                /* every task, freed with the worker */
    int nmade;
    task *moving;               /* the task whose files are being sent or fetched */
    double next_tend;           /* tend_others: not before */
    double next_watch;          /* watch_ends: not before */
    ssh_conn *side;             /* tend_others' connection, during a transfer */
    int side_failures;          /* side_exec's failures in a row */
    worker *w;                  /* the worker this is the data of */
    /* the file being moved, for the progress display (guarded by mu) */
    char moving_name[256];
    int moving_up;              /* sent, else fetched */
    unsigned long long moving_base, moving_done, moving_size;
} sshw;

static void wake(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
}

static void drain_fd(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
}

static void freev(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- messages ------------------------------------------------------------------ */

static void post(worker *w, int kind, task *t, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void post(worker *w, int kind, task *t, const char *fmt, ...)
{
    sshw *x = w->data;
    msg *m = calloc(1, sizeof *m);
    if (!m)
        return;
    m->kind = kind;
    m->t = t;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->reason, sizeof m->reason, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_lock(&x->mu);
    if (x->outbox_tail)
        x->outbox_tail->next = m;
    else
        x->outbox = m;
    x->outbox_tail = m;
    pthread_mutex_unlock(&x->mu);
    wake(x->wake_main);
}

/* When the attempt's engine ended, by the main thread's account: an end
 * the host's stamp dates (watch_ends) can come before the launch was seen
 * here (its marker read late, during a transfer), and an attempt takes no
 * less than no time. */
static double exit_time(const task *t)
{
    return t->a->t_launch > 0 && t->t_exit > 0 && t->t_exit < t->a->t_launch ? t->a->t_launch : t->t_exit;
}

/* Main thread: applies what the thread reported. */
static void on_messages(void *ud, int fd, short revents)
{
    (void)revents;
    worker *w = ud;
    sshw *x = w->data;
    drain_fd(fd);
    pthread_mutex_lock(&x->mu);
    msg *m = x->outbox;
    x->outbox = x->outbox_tail = NULL;
    pthread_mutex_unlock(&x->mu);
    while (m) {
        msg *next = m->next;
        task *t = m->t;
        if (m->kind == M_UP) {
            sched_worker_state(w, W_UP, NULL);
        } else if (m->kind == M_DOWN) {
            w->down_for_good = x->auth_failed; /* set before the message was posted */
            sched_worker_state(w, W_DOWN, m->reason);
        } else if (m->kind == M_NOTE) {
            fprintf(stderr, "rasrun: %s\n", m->reason);
        } else if (m->kind == M_LAUNCHED && t->a) {
            t->a->launch_epoch = (double)t->epoch;
            t->a->utc_offset = t->utc_offset;
            sched_attempt_launched(t->a, 0, t->pid, (unsigned long long)t->epoch,
                                   (unsigned long long)t->epoch);
        } else if (m->kind == M_EXITED && t->a) {
            /* its files are coming back: that is not lost to its timeout */
            t->a->t_exit = exit_time(t);
            if (t->a->phase == A_RUNNING && !t->a->cancelling)
                t->a->phase = A_STAGE_OUT;
        } else if (m->kind == M_DONE && t->a) {
            attempt *a = t->a;
            a->exit_code = t->exit_code;
            a->step = t->step;
            a->failed = t->failed;
            snprintf(a->reason, sizeof a->reason, "%s", t->reason);
            for (int i = 0; i < t->nouts; i++) {
                sched_add_output(a, t->outs[i].tmp, t->outs[i].final, t->outs[i].kind);
                t->outs[i].tmp = NULL;
            }
            a->t_exit = exit_time(t);
            a->bytes_up = t->bytes_up;
            a->bytes_down = t->bytes_down;
            sched_attempt_done(a);
        }
        free(m);
        m = next;
    }
}

/* ---- remote scripts ------------------------------------------------------------ */

/* A path under the work folder (relative work folders are under the login home). */
static char *remote_path(sshw *x, const char *rel)
{
    char *p = NULL;
    if (x->workdir[0] == '/') {
        if (asprintf(&p, "%s/%s", x->workdir, rel) < 0)
            return NULL;
    } else if (asprintf(&p, "%s/%s/%s", x->home, x->workdir, rel) < 0) {
        return NULL;
    }
    return p;
}

/* The launch command: prepare the slot folder from the cache, write the
 * steps, start them in their own session, stream the log, report the exit.
 * Markers go to stderr: "rasrun-pid PID EPOCH TZ", "rasrun-exit CODE [STEP]"
 * (STEP: the step that ran last, where there are steps before the engine). */
static char *launch_script(sshw *x, task *t, char hexes[][65])
{
    struct sbuf b = { 0 };
    sb_add(&b, "exec 3<&0\nD=");
    sb_word(&b, t->slot_dir);
    sb_add(&b, "\nC=");
    char *cache = remote_path(x, CACHE);
    sb_word(&b, cache ? cache : CACHE);
    free(cache);
    sb_add(&b, "\nrm -rf \"$D\" && mkdir -p \"$D\" && cd \"$D\" || "
               "{ echo \"rasrun-fail cannot prepare $D\" >&2; exit 201; }\n");
    const job_spec *sp = t->sp;
    if (sp->ntext > 0)
        sb_add(&b, "R=$(printf '\\r')\n");
    for (int i = 0; i < sp->ninputs; i++) {
        int link = spec_lists(sp->links, sp->nlinks, sp->inputs[i]);
        int text = spec_lists(sp->text, sp->ntext, sp->inputs[i]);
        const char *slash = strrchr(sp->inputs[i], '/');
        if (slash) { /* a file in a subfolder of the project goes into the same one */
            char *dir = strndup(sp->inputs[i], (size_t)(slash - sp->inputs[i]));
            sb_add(&b, "mkdir -p -- ");
            sb_word(&b, dir ? dir : ".");
            sb_add(&b, " && ");
            free(dir);
        }
        /* a text input with a CR in it (Windows HEC-RAS writes CR LF): a
         * copy without them, with the file's time */
        if (text) {
            sb_add(&b, "if grep -q \"$R\" \"$C/%s\"; then e=$( { tr -d '\\r' <\"$C/%s\" >", hexes[i], hexes[i]);
            sb_word(&b, sp->inputs[i]);
            sb_add(&b, " && touch -r \"$C/%s\" -- ", hexes[i]);
            sb_word(&b, sp->inputs[i]);
            sb_add(&b, "; } 2>&1) || { e=\"a copy without CRs of \"");
            sb_word(&b, sp->inputs[i]);
            sb_add(&b, "\": $e\"; false; }; else ");
        }
        sb_add(&b, link ? "e=$(ln -s -- \"$C/%s\" " : "e=$(cp -p -- \"$C/%s\" ", hexes[i]);
        sb_word(&b, sp->inputs[i]);
        if (!link) { /* a copy the engine may write: a read-only input's too */
            sb_add(&b, " 2>&1 && chmod u+w -- ");
            sb_word(&b, sp->inputs[i]);
        }
        /* with the command's own words: a full disk says so */
        sb_add(&b, " 2>&1)%s || { echo \"rasrun-fail cannot place an input in $D: $(echo \"$e\" | head -n 1)\" >&2; "
                   "exit 202; }\n", text ? "; fi" : "");
    }
    /* an engine that is not where the worker says: named, not exit code 127 */
    for (int s = 0; s < sp->nsteps; s++) {
        sb_add(&b, "[ -x ");
        sb_word(&b, sp->steps[s][0]);
        sb_add(&b, " ] || { echo \"rasrun-fail cannot start \"");
        sb_word(&b, sp->steps[s][0]);
        sb_add(&b, "\": no such executable file on this host\" >&2; exit 203; }\n");
    }
    /* The steps script, each of its lines one quoted word of a printf: a
     * here-document would end early at a line of a file name that reads as
     * its end marker, and run the rest in this shell. */
    sb_add(&b, "printf '%%s\\n'");
    struct sbuf line = { 0 };
    for (int i = 0; i < sp->nenv; i++) {
        const char *eq = strchr(sp->env[i], '=');
        if (!eq)
            continue;
        line.n = 0;
        sb_add(&line, "export %.*s=", (int)(eq - sp->env[i]), sp->env[i]);
        sb_word(&line, eq + 1);
        sb_add(&b, " ");
        sb_word(&b, line.p);
    }
    line.n = 0;
    sb_add(&line, "export RASRUN_WORKER=");
    sb_word(&line, x->target.name);
    sb_add(&line, " RASRUN_PLAN=");
    sb_word(&line, t->plan);
    sb_add(&b, " ");
    sb_word(&b, line.p);
    for (int s = 0; s < sp->nsteps; s++) {
        /* with steps before the engine, each says it starts: the one that
         * ran last is the one whose exit code the script ends with */
        if (sp->nsteps > 1) {
            line.n = 0;
            sb_add(&line, "echo %d > " STEP_FILE, s);
            sb_add(&b, " ");
            sb_word(&b, line.p);
        }
        line.n = 0;
        sb_add(&line, "%s", s + 1 == sp->nsteps ? "exec" : "");
        for (char **a = sp->steps[s]; *a; a++) {
            sb_add(&line, " ");
            sb_word(&line, *a);
        }
        sb_add(&line, "%s", s + 1 == sp->nsteps ? "" : " || exit $?");
        sb_add(&b, " ");
        sb_word(&b, line.p);
    }
    free(line.p);
    sb_add(&b, " > rasrun-steps.sh\n"
               ": > rasrun-engine.log\n"
               "setsid sh rasrun-steps.sh </dev/null >>rasrun-engine.log 2>&1 3<&- &\n"
               "pid=$!\n"
               "echo \"rasrun-pid $pid $(date +%%s) $(date +%%z)\" >&2\n"
               "here=$(pwd -P)\n"
               "mine() { [ \"$(readlink /proc/$pid/cwd 2>/dev/null)\" = \"$here\" ]; }\n"
               SWEEP_FN
               "( while read -r _ <&3; do :; done; cd /; mine && kill -TERM -- -$pid 2>/dev/null; sleep 5; "
               "mine && kill -KILL -- -$pid 2>/dev/null; sweep KILL \"$here\" ) >/dev/null 2>&1 &\n"
               "wd=$!\n"
               "tail -c +1 -s 0.2 -f --pid=$pid rasrun-engine.log 2>/dev/null\n"
               "wait $pid; rc=$?\n"
               "echo \"$rc $(date +%%s.%%N)\" > " ENDED_FILE "\n"
               /* helpers it left in its group do not outlive it (as on a local worker) */
               "kill -KILL -- -$pid 2>/dev/null\n"
               "kill $wd 2>/dev/null\n"
               "echo \"rasrun-exit $rc $(cat " STEP_FILE " 2>/dev/null)\" >&2\n"
               "exit 0\n");
    return b.p;
}

/* ---- the thread: connection --------------------------------------------------- */

static void lose_connection(worker *w, const char *why);
static void drop_connection(worker *w, const char *why, int tell);

static int conn_ok(sshw *x) { return x->c != NULL; }

/* libssh2 sends keepalives at most every 2 s (it treats 1 as 2). */
static double keepalive_interval(sshw *x)
{
    double k = x->keepalive > 0 ? x->keepalive : 15;
    return k < 2 ? 2 : (double)(long)(k + 0.5);
}

/* A link silent this long is lost: one interval for the keepalive to go out,
 * as much again (at least 2 s) for the answer to come back. */
static double silence_limit(sshw *x)
{
    return 2 * keepalive_interval(x);
}

/* Makes a path under the login home absolute (the home is known once connected). */
static void absolutize(sshw *x, char **path)
{
    if ((*path)[0] == '/' || !x->home)
        return;
    char *abs = NULL;
    if (asprintf(&abs, "%s/%s", x->home, *path) >= 0) {
        free(*path);
        *path = abs;
    }
}

/* Runs a command on the host (takes cmd; output discarded). A session that
 * fails on the way is lost. Leaves the session blocking. */
static int host_run(worker *w, char *cmd, double timeout)
{
    sshw *x = w->data;
    char err[1024], *out = NULL, *eo = NULL;
    int code = 0;
    libssh2_session_set_blocking(x->c->s, 1);
    int rc = cmd ? ssh_exec(x->c, cmd, NULL, &out, &eo, &code, timeout, err, sizeof err) : 0;
    free(cmd);
    free(out);
    free(eo);
    if (rc != 0 && ssh_broken(x->c))
        lose_connection(w, err);
    return rc;
}

static void kill_orphans(worker *w)
{
    sshw *x = w->data;
    while (x->orphans && conn_ok(x)) {
        orphan *o = x->orphans;
        if (host_run(w, ssh_kill_script(o->pid, o->dir, w->kill_grace), 30 + w->kill_grace) != 0)
            return;
        x->orphans = o->next;
        free(o->dir);
        free(o);
    }
}

/* The connection of its own that a transfer's tending uses (below), to
 * the address the worker's is connected to (a name can resolve to several
 * machines); opened at need, closed when the transfer ends. NULL when the
 * host takes none. */
static ssh_conn *side_conn(sshw *x)
{
    if (!x->side) {
        char err[1024], addr[NI_MAXHOST];
        int refused = 0;
        ssh_target to = x->target;
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        if (getpeername(x->c->sock, (struct sockaddr *)&peer, &len) == 0 &&
            getnameinfo((struct sockaddr *)&peer, len, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) == 0)
            to.addr = addr;
        x->side = ssh_connect(&to, &refused, err, sizeof err);
    }
    return x->side;
}

static void side_close(sshw *x)
{
    ssh_close(x->side);
    x->side = NULL;
}

/* A command on the side connection, its output in *out (caller frees);
 * 0, or -1 when it could not be run: the side connection is closed then,
 * and the transfer's tending waits (see below) before it tries again. */
static int side_exec(sshw *x, const char *cmd, double timeout, char **out)
{
    char err[1024], *eo = NULL;
    int code = 0;
    ssh_conn *c = cmd ? side_conn(x) : NULL;
    *out = NULL;
    int rc = c && ssh_exec(c, cmd, NULL, out, &eo, &code, timeout, err, sizeof err) == 0 ? 0 : -1;
    free(eo);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        side_close(x);
        /* 30 s, then twice as long after each failure in a row (up to
         * 10 min): a host that drops a second connection costs a connect
         * timeout at each try */
        double wait = 30;
        for (int i = 0; i < x->side_failures && wait < 600; i++)
            wait *= 2;
        x->side_failures++;
        x->next_tend = loop_now() + (wait < 600 ? wait : 600);
    } else {
        x->side_failures = 0;
    }
    return rc;
}

/* The connection's stop hook (ssh_conn.h): a transfer ends early when its
 * attempt is cancelled (Ctrl-C, a plan's timeout: not the files a timed-out
 * attempt brings back) or the worker closes; 2 when no attempt on the host
 * needs the connection any more (Ctrl-C: their engines' watchdogs stop them
 * when it is cut, and the run's end connects again to clean up). Runs on
 * the worker's thread, the only one that changes the task list. */
static void tend_others(sshw *x);

static int transfer_unwanted(void *ud)
{
    sshw *x = ud;
    pthread_mutex_lock(&x->mu);
    int unwanted = x->stop || (x->moving && x->moving->cancel && !x->moving->keep_files);
    int needed = 0;
    for (task *t = x->tasks; t && unwanted && !needed; t = t->next)
        needed = !t->cancel || t->keep_files;
    pthread_mutex_unlock(&x->mu);
    if (!unwanted)
        tend_others(x); /* (a transfer that stops leaves the kills to the loop) */
    return unwanted ? (needed ? 1 : 2) : 0;
}

static unsigned long long wire_bytes(const sshw *x, int up)
{
    return x->c ? (up ? x->c->wire_sent : x->c->wire_received) : 0;
}

/* The connection's hook after each send or receive (on the thread): how
 * far the file on the move has got, on the wire (the display's figure). */
static void bytes_moved(void *ud)
{
    sshw *x = ud;
    if (!x->moving_name[0]) /* read and written on this thread only */
        return;
    pthread_mutex_lock(&x->mu);
    unsigned long long done = wire_bytes(x, x->moving_up) - x->moving_base;
    x->moving_done = done < x->moving_size ? done : x->moving_size;
    pthread_mutex_unlock(&x->mu);
}

/* The thread names the file it starts to send (up) or fetch; NULL: none. */
static void moving_file(sshw *x, task *t, const char *name, int up, unsigned long long size)
{
    if (t && !x->moving) /* a transfer starts: one shorter than this costs no side connection */
        x->next_watch = loop_now() + WATCH_EVERY;
    pthread_mutex_lock(&x->mu);
    x->moving = t;
    snprintf(x->moving_name, sizeof x->moving_name, "%s", name ? name : "");
    x->moving_up = up;
    x->moving_base = wire_bytes(x, up);
    x->moving_done = 0;
    x->moving_size = size;
    pthread_mutex_unlock(&x->mu);
    if (!t)
        side_close(x); /* the transfer is over */
}

/* The text after marker on its line of out, or NULL (n: its length). */
static const char *marked(const char *out, const char *marker, int *n)
{
    const char *p = out ? strstr(out, marker) : NULL;
    if (!p)
        return NULL;
    p += strlen(marker);
    *n = (int)strcspn(p, "\n");
    return p;
}

/* At the first connect: the login home (relative work folders are under
 * it), and whether the host can work at all. A work folder that cannot be
 * made or written there, or an engine program that is not there (a wrong
 * engine.home), would fail every plan sent to it: the worker is down for
 * good instead (refused set), saying which. The answers are marked: a login
 * script may print lines of its own first (a .bashrc's greeting). 0 also
 * when the questions could not be asked (the connection is tried again). */
static int host_ready(worker *w, ssh_conn *c, int *refused, char *err, size_t n)
{
    sshw *x = w->data;
    struct sbuf b = { 0 };
    sb_add(&b, "printf 'rasrun-home %%s\\n' \"$PWD\"\nW=");
    sb_word(&b, x->workdir);
    sb_add(&b, "\ne=$(mkdir -p -- \"$W/.rasrun-cache\" 2>&1) && [ -w \"$W/.rasrun-cache\" ] || "
               "{ printf 'rasrun-workdir %%s\\n' \"${e:-not writable}\"; exit 2; }\n");
    if (x->nprograms) {
        sb_add(&b, "for p in");
        for (int i = 0; i < x->nprograms; i++) {
            sb_add(&b, " ");
            sb_word(&b, x->programs[i]);
        }
        sb_add(&b, "; do [ -x \"$p\" ] || { printf 'rasrun-missing %%s\\n' \"$p\"; exit 1; }; done\n");
    }
    char *out = NULL;
    int code = -1, len = 0;
    int asked = b.p && ssh_exec(c, b.p, NULL, &out, NULL, &code, c->io_timeout, err, n) == 0;
    free(b.p);
    const char *home = asked ? marked(out, "rasrun-home ", &len) : NULL;
    if (home && !x->home)
        x->home = strndup(home, (size_t)len);
    const char *why;
    if (asked && code == 2 && (why = marked(out, "rasrun-workdir ", &len))) {
        snprintf(err, n, "work folder %s on %s cannot be made or written: %.*s", x->workdir, w->host, len, why);
        *refused = 1;
    } else if (asked && code == 1 && (why = marked(out, "rasrun-missing ", &len))) {
        snprintf(err, n, "engine %.*s cannot be run on %s: no such executable file; is engine.home right?",
                 len, why, w->host);
        *refused = 1;
    } else if (asked && (code != 0 || !x->home)) {
        snprintf(err, n, "%s: looking at the host failed (exit code %d)", w->host, code);
    }
    free(out);
    x->host_checked = asked && code == 0 && x->home;
    return x->host_checked;
}

static void try_connect(worker *w)
{
    sshw *x = w->data;
    double now = loop_now();
    if (x->auth_failed || now < x->next_connect)
        return;
    char err[1024] = "";
    int refused = 0;
    ssh_conn *c = ssh_connect(&x->target, &refused, err, sizeof err);
    if (c && !x->host_checked && !host_ready(w, c, &refused, err, sizeof err)) {
        ssh_close(c);
        c = NULL;
    }
    if (!c) {
        x->backoff = x->backoff ? (x->backoff * 2 > 10 ? 10 : x->backoff * 2) : 1;
        x->next_connect = now + x->backoff;
        x->auth_failed = refused; /* a refusal is final: retrying cannot help */
        snprintf(x->down_why, sizeof x->down_why, "%s", err);
        post(w, M_DOWN, NULL, "%s", err);
        return;
    }
    c->stop = transfer_unwanted;
    c->moved = bytes_moved;
    c->stop_ud = x;
    x->idle_limit = ssh_probe_idle(c, (unsigned)keepalive_interval(x));
    x->c = c;
    x->backoff = 0;
    x->blobs_listed = 0;
    kill_orphans(w);
    if (conn_ok(x))
        post(w, M_UP, NULL, NULL);
}

/* ---- the thread: attempts ------------------------------------------------------- */

static void finish_task(worker *w, task *t)
{
    if (t->ch) {
        libssh2_channel_free(t->ch);
        t->ch = NULL;
    }
    if (t->log_fd >= 0) {
        close(t->log_fd);
        t->log_fd = -1;
    }
    t->phase = T_DONE;
    sshw *x = w->data;
    task **pp = &x->tasks;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    post(w, M_DONE, t, NULL);
}

static void fail_task(worker *w, task *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_task(worker *w, task *t, const char *fmt, ...)
{
    /* callers may pass t->reason itself: format apart, then copy */
    char why[sizeof t->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    memcpy(t->reason, why, sizeof why);
    t->failed = 1;
    finish_task(w, t);
}

/* Partial uploads older than this were left by a lost connection or a
 * killed controller (a live upload's file is younger: its writes touch it). */
#define STALE_PART 3600

struct cache_listing {
    strset *blobs;
    char **stale;   /* partial uploads to remove */
    size_t nstale;
    double before;  /* epoch seconds: a part older than this is stale */
};

static void list_blob(void *ud, const char *name, unsigned long long size, double mtime)
{
    (void)size;
    struct cache_listing *l = ud;
    if (strlen(name) == 64) {
        strset_add(l->blobs, name);
    } else if (strstr(name, ".rasrun-part-") && mtime < l->before) {
        char **g = realloc(l->stale, sizeof *g * (l->nstale + 1));
        if (g && (g[l->nstale] = strdup(name)))
            l->nstale++;
        if (g)
            l->stale = g;
    }
}

/* Every input in the host's cache: hashed here, sent only when missing. */
static int ensure_blobs(worker *w, task *t, char hexes[][65], char *err, size_t n)
{
    sshw *x = w->data;
    char *cache = remote_path(x, CACHE);
    int rc = 0;
    if (!x->blobs_listed) {
        struct cache_listing l = { x->blobs, NULL, 0, (double)time(NULL) - STALE_PART };
        if (ssh_mkdirs(x->c, cache, err, n) != 0 || ssh_list(x->c, cache, list_blob, &l, err, n) != 0)
            rc = -1;
        x->blobs_listed = rc == 0;
        for (size_t i = 0; i < l.nstale; i++) {
            char path[8192], rerr[512];
            snprintf(path, sizeof path, "%s/%s", cache, l.stale[i]);
            ssh_remove(x->c, path, rerr, sizeof rerr); /* best effort */
            free(l.stale[i]);
        }
        free(l.stale);
    }
    for (int i = 0; rc == 0 && i < t->sp->ninputs; i++) {
        char local[8192], named[8192];
        snprintf(named, sizeof named, "%s/%s", t->project_dir, t->sp->inputs[i]);
        if (access(named, F_OK) == 0 || fs_any_case(named, local, sizeof local) != 0) /* (as in worker_local.c) */
            snprintf(local, sizeof local, "%s", named);
        if (hashcache_file(x->hc, local, hexes[i], NULL, err, n) != 0) {
            rc = -2;
            break;
        }
        if (strset_has(x->blobs, hexes[i]))
            continue;
        char remote[4400];
        snprintf(remote, sizeof remote, "%s/%s", cache, hexes[i]);
        struct stat st;
        moving_file(x, t, t->sp->inputs[i], 1, stat(local, &st) == 0 ? (unsigned long long)st.st_size : 0);
        unsigned long long before = x->c->file_sent;
        if (ssh_put_new(x->c, local, remote, err, n) != 0) {
            rc = -1;
            break;
        }
        t->bytes_up += x->c->file_sent - before;
        /* the cache names a file by its content: one that changed since it
         * was hashed (written while it was sent) is not left under that name */
        char again[65] = "";
        int unread = hashcache_file(x->hc, local, again, NULL, err, n) != 0;
        if (unread || strcmp(again, hexes[i]) != 0) {
            char rerr[512];
            ssh_remove(x->c, remote, rerr, sizeof rerr);
            if (!unread)
                snprintf(err, n, "%s changed while it was being sent to %s", local, w->host);
            rc = -2;
            break;
        }
        strset_add(x->blobs, hexes[i]);
    }
    free(cache);
    return rc;
}

static int count_running(sshw *x)
{
    int n = 0;
    for (task *t = x->tasks; t; t = t->next)
        n += t->phase == T_RUNNING;
    return n;
}

static void start_task(worker *w, task *t)
{
    sshw *x = w->data;
    char err[1024];
    absolutize(x, &t->slot_dir);
    absolutize(x, &t->kept_dir);
    char (*hexes)[65] = calloc((size_t)t->sp->ninputs + 1, 65);
    int rc = hexes ? ensure_blobs(w, t, hexes, err, sizeof err) : -2;
    moving_file(x, NULL, NULL, 0, 0);
    if (rc == -2) {
        free(hexes);
        fail_task(w, t, "staging in: %s", hexes ? err : "out of memory");
        return;
    }
    if (rc != 0) {
        free(hexes);
        if (!ssh_broken(x->c)) { /* the host refused a request: this attempt fails */
            fail_task(w, t, "staging in to %s: %s", w->host, err);
            return;
        }
        fail_task(w, t, "lost the connection to %s while staging in: %s", w->host, err);
        lose_connection(w, err);
        return;
    }
    char *script = launch_script(x, t, hexes);
    x->slots_used = 1;
    free(hexes);
    t->log_fd = open(t->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    LIBSSH2_CHANNEL *ch = script ? libssh2_channel_open_session(x->c->s) : NULL;
    int running = script && !ch ? count_running(x) : 0;
    if (script && !ch && !ssh_broken(x->c) && running > 0) {
        /* sshd refused one more session (MaxSessions, 10 by default, counts
         * each engine's, the file transfers' and the kill commands'): this
         * one waits for an engine to end, and one session stays free */
        free(script);
        if (t->log_fd >= 0)
            close(t->log_fd);
        t->log_fd = -1;
        int was = x->engine_cap;
        x->engine_cap = running > 1 ? running - 1 : 1;
        if (!was)
            post(w, M_NOTE, NULL, "%s refused a session with %d engines running (its sshd's "
                 "MaxSessions): at most %d at once there; raise MaxSessions or give the "
                 "worker fewer slots", x->c->label, running, x->engine_cap);
        return;
    }
    if (!ch || libssh2_channel_exec(ch, script) != 0) {
        snprintf(err, sizeof err, "%s", ssh_error(x->c));
        if (ch)
            libssh2_channel_free(ch);
        free(script);
        fail_task(w, t, "%s: cannot start the engine: %s", x->c->label, err);
        if (ssh_broken(x->c))
            lose_connection(w, err);
        return;
    }
    free(script);
    t->ch = ch;
    t->phase = T_RUNNING;
    x->c->last_rx = loop_now();
}

static void parse_marker(worker *w, task *t, char *line)
{
    long pid;
    long long epoch;
    int tz;
    int code;
    if (sscanf(line, "rasrun-pid %ld %lld %d", &pid, &epoch, &tz) == 3) {
        t->pid = pid;
        t->epoch = epoch;
        /* +HHMM -> seconds */
        int sign = tz < 0 ? -1 : 1;
        tz *= sign;
        t->utc_offset = sign * ((tz / 100) * 3600 + (tz % 100) * 60);
        post(w, M_LAUNCHED, t, NULL);
    } else if (sscanf(line, "rasrun-exit %d", &code) == 1) {
        t->exit_code = code;
        int step;
        if (sscanf(line, "rasrun-exit %*d %d", &step) == 1)
            t->step = step;
    } else if (strncmp(line, "rasrun-fail ", 12) == 0) {
        snprintf(t->reason, sizeof t->reason, "%s: %s", w->name, line + 12);
    }
}

struct outlist {
    task *t;
    char **names;
    unsigned long long *sizes;
    int n, cap;
};

static void add_candidate(void *ud, const char *name, unsigned long long size, double mtime)
{
    struct outlist *ol = ud;
    task *t = ol->t;
    const char *final;
    int kind = spec_output_kind(t->sp, name, &final);
    /* an input the engine left as it was does not come back (SFTP gives
     * whole seconds); nor does a result file that is one (the Linux
     * engine's .tmp.hdf): the attempt then has no result */
    if (kind < 0 || spec_unchanged_input(t->sp, t->project_dir, name, size, (long long)mtime, -1))
        return;
    if (ol->n == ol->cap) {
        int cap = ol->cap ? ol->cap * 2 : 8;
        char **g = realloc(ol->names, sizeof *g * (size_t)cap);
        if (g)
            ol->names = g;
        unsigned long long *z = g ? realloc(ol->sizes, sizeof *z * (size_t)cap) : NULL;
        if (!z)
            return;
        ol->sizes = z;
        ol->cap = cap;
    }
    ol->sizes[ol->n] = size;
    ol->names[ol->n++] = strdup(name);
}

/* One read of an engine's output, into its log: the bytes read, 0, or
 * libssh2's error (LIBSSH2_ERROR_EAGAIN: nothing now). A log that cannot be
 * written (a full disk) loses the rest of the output, not the engine: the
 * channel is still read. */
static ssize_t read_output(task *t, char *buf, size_t n)
{
    ssize_t r = libssh2_channel_read(t->ch, buf, n);
    if (r > 0 && t->log_fd >= 0 && write(t->log_fd, buf, (size_t)r) != r) {
        close(t->log_fd);
        t->log_fd = -1;
    }
    return r;
}

/* One read of an engine's stderr, where the launch script's markers come. */
static ssize_t read_markers(worker *w, task *t)
{
    ssize_t r = libssh2_channel_read_stderr(t->ch, t->errbuf + t->errlen, sizeof t->errbuf - 1 - t->errlen);
    if (r <= 0)
        return r;
    t->errlen += (size_t)r;
    t->errbuf[t->errlen] = 0;
    char *nl;
    while ((nl = strchr(t->errbuf, '\n'))) {
        *nl = 0;
        parse_marker(w, t, t->errbuf);
        size_t rest = t->errlen - (size_t)(nl + 1 - t->errbuf);
        memmove(t->errbuf, nl + 1, rest + 1);
        t->errlen = rest;
    }
    if (t->errlen >= sizeof t->errbuf - 1)
        t->errlen = 0; /* a line longer than the buffer: drop it */
    return r;
}

/* Reads what an engine's channel has (non-blocking session): its output
 * into the log, its markers; 0, or -1 when the channel failed. */
static int drain_channel(worker *w, task *t)
{
    char buf[16384];
    ssize_t r;
    while ((r = read_output(t, buf, sizeof buf)) > 0)
        ;
    int broken = r < 0 && r != LIBSSH2_ERROR_EAGAIN;
    while ((r = read_markers(w, t)) > 0)
        ;
    broken |= r < 0 && r != LIBSSH2_ERROR_EAGAIN;
    return broken ? -1 : 0;
}

/* How long a transfer waits for the host's other new engines to be seen
 * launched (their launch scripts place their inputs first). */
#define LAUNCH_WAIT 10.0

/* Before a transfer that can take minutes: the engines this host started
 * just before are seen launched first, for the scheduler times an attempt
 * from its launch, and a kill during the transfer (tend_others) needs the
 * engine's pid. Their launch markers would otherwise be read only after the
 * transfer, and a hung engine's timeout start then. */
static void await_launches(worker *w, task *moving)
{
    sshw *x = w->data;
    double until = loop_now() + LAUNCH_WAIT;
    libssh2_session_set_blocking(x->c->s, 0);
    for (;;) {
        pthread_mutex_lock(&x->mu);
        int unwanted = x->stop || moving->cancel;
        pthread_mutex_unlock(&x->mu);
        if (unwanted) /* Ctrl-C, the worker closing, a cancel: not worth the wait */
            break;
        int waiting = 0;
        for (task *t = x->tasks; t; t = t->next) {
            if (t == moving || t->phase != T_RUNNING || t->pid > 0)
                continue;
            if (drain_channel(w, t) != 0)
                goto out; /* a failed channel: the loop's next round sees to it */
            waiting |= t->pid <= 0 && !libssh2_channel_eof(t->ch);
        }
        if (!waiting || loop_now() >= until)
            break;
        struct pollfd p = { x->c->sock, POLLIN, 0 };
        poll(&p, 1, 50);
    }
out:
    libssh2_session_set_blocking(x->c->s, 1);
}

static void stage_out(worker *w, task *t)
{
    sshw *x = w->data;
    char err[1024];
    await_launches(w, t);
    struct outlist ol = { t, NULL, NULL, 0, 0 };
    if (ssh_list(x->c, t->slot_dir, add_candidate, &ol, err, sizeof err) != 0) {
        freev(ol.names, ol.n);
        free(ol.sizes);
        fail_task(w, t, "staging out: %s", err);
        if (ssh_broken(x->c))
            lose_connection(w, err);
        return;
    }
    int broken = 0;
    for (int i = 0; i < ol.n && !broken; i++) {
        const char *name = ol.names[i], *final;
        int kind = spec_output_kind(t->sp, name, &final);
        char remote[8192], *tmp = sched_stage_path(t->project_dir, final, t->stage_suffix);
        snprintf(remote, sizeof remote, "%s/%s", t->slot_dir, name);
        if (!tmp)
            continue;
        unsigned long long before = x->c->file_received;
        moving_file(x, t, name, 0, ol.sizes[i]);
        if (ssh_get(x->c, remote, tmp, err, sizeof err) != 0) {
            free(tmp);
            snprintf(t->reason, sizeof t->reason, "staging out: %s", err);
            t->failed = 1;
            broken = ssh_broken(x->c); /* a dead link: not one timeout per file */
            continue;
        }
        t->bytes_down += x->c->file_received - before;
        out_file *g = realloc(t->outs, sizeof *g * (size_t)(t->nouts + 1));
        if (!g) {
            unlink(tmp);
            free(tmp);
            continue;
        }
        t->outs = g;
        t->outs[t->nouts++] = (out_file){ tmp, strdup(final), kind };
    }
    moving_file(x, NULL, NULL, 0, 0);
    freev(ol.names, ol.n);
    free(ol.sizes);
    finish_task(w, t);
    if (broken) /* stopped: cut on purpose (ssh_conn.h, stop) */
        drop_connection(w, err, !x->c->stopped);
}

/* The engine's command has ended (its channel's end came): when, and, for
 * one that ended by itself, the scheduler is told that its files are
 * coming back (their time is not its timeout's). Once. */
static void engine_ended(worker *w, task *t)
{
    if (t->t_exit > 0)
        return;
    t->t_exit = loop_wall();
    sshw *x = w->data;
    pthread_mutex_lock(&x->mu);
    int cancel = t->cancel;
    pthread_mutex_unlock(&x->mu);
    if (!cancel && t->exit_code >= 0)
        post(w, M_EXITED, t, NULL);
}

static void service(worker *w, task *t)
{
    if (drain_channel(w, t) != 0) {
        lose_connection(w, "the engine's channel failed");
        return;
    }
    if (!libssh2_channel_eof(t->ch))
        return;
    engine_ended(w, t);
    sshw *x = w->data;
    libssh2_session_set_blocking(x->c->s, 1);
    libssh2_channel_close(t->ch);
    libssh2_channel_wait_closed(t->ch);
    pthread_mutex_lock(&x->mu);
    int cancel = t->cancel, keep_files = t->keep_files;
    pthread_mutex_unlock(&x->mu);
    if (cancel && !keep_files) {
        finish_task(w, t);
    } else if (cancel) {
        /* a timed-out attempt's files come back as a failed one's do, to be
         * kept with the run: the engine's partial output of a hang is what
         * tells why (the scheduler names the timeout) */
        stage_out(w, t);
    } else if (t->exit_code < 0) {
        if (t->reason[0])
            fail_task(w, t, "%s", t->reason);
        else
            fail_task(w, t, "the engine's command on %s ended without an exit status", w->host);
    } else {
        if (t->exit_code != 0)
            snprintf(t->reason, sizeof t->reason, "the engine exited with code %d", t->exit_code);
        stage_out(w, t);
    }
    if (x->c)
        libssh2_session_set_blocking(x->c->s, 0);
}

static void cancel_task(worker *w, task *t)
{
    sshw *x = w->data;
    if (t->phase == T_QUEUED) {
        t->killed = 1;
        fail_task(w, t, "cancelled before it started");
        return;
    }
    if (t->phase != T_RUNNING || t->pid <= 0)
        return; /* launched, pid not known yet: tried again next round */
    t->killed = 1;
    /* a healthy host answers at once: waiting longer than a keepalive
     * interval only delays a Ctrl-C over a link that is gone */
    libssh2_session_set_timeout(x->c->s, (long)(keepalive_interval(x) * 1000));
    int rc = host_run(w, ssh_kill_script(t->pid, t->slot_dir, t->kill_grace), 30 + t->kill_grace);
    if (conn_ok(x))
        libssh2_session_set_timeout(x->c->s, (long)(x->c->io_timeout * 1000));
    if (rc != 0 && conn_ok(x) && t->ch) {
        /* no session free for the kill (sshd's MaxSessions taken by the
         * engines and a transfer): the engine's own channel is told its
         * input ended instead, and its watchdog on the host stops it (TERM,
         * KILL 5 s later); waiting for a session could wait for ever */
        libssh2_session_set_blocking(x->c->s, 1);
        if (libssh2_channel_send_eof(t->ch) == 0)
            rc = 0;
    }
    if (rc != 0 && conn_ok(x))
        t->killed = 0; /* refused (no session free yet): tried again next round */
    if (rc == 0 && conn_ok(x))
        libssh2_session_set_blocking(x->c->s, 0);
}

/* Which of the host's other engines ended during the transfer, from the
 * stamps their launch scripts leave (ENDED_FILE): the scheduler hears of
 * each end as if its channel had said so, so that its timeout stops
 * counting then, not when the transfer is over. The end's time is taken
 * from the host's clock as an age (no clock skew). */
static void watch_ends(sshw *x)
{
    int n = 0, max = 0;
    for (task *t = x->tasks; t; t = t->next)
        max++;
    task **watched = malloc(sizeof *watched * (size_t)(max ? max : 1));
    if (!watched)
        return;
    struct sbuf b = { 0 };
    sb_add(&b, "printf 'rasrun-now %%s\\n' \"$(date +%%s.%%N)\"\n");
    for (task *t = x->tasks; t; t = t->next) {
        pthread_mutex_lock(&x->mu);
        int cancel = t->cancel;
        pthread_mutex_unlock(&x->mu);
        if (t == x->moving || t->phase != T_RUNNING || cancel || t->pid <= 0 || t->t_exit > 0)
            continue;
        char stamp[4300];
        snprintf(stamp, sizeof stamp, "%s/" ENDED_FILE, t->slot_dir);
        sb_add(&b, "[ -f ");
        sb_word(&b, stamp);
        sb_add(&b, " ] && printf 'rasrun-ended %d %%s\\n' \"$(cat ", n);
        sb_word(&b, stamp);
        sb_add(&b, ")\"\n");
        watched[n++] = t;
    }
    char *out = NULL;
    int ran = n > 0 && side_exec(x, b.p, 30, &out) == 0;
    free(b.p);
    if (!ran) {
        free(watched);
        return;
    }
    /* (found anywhere in the output: a login script may print first) */
    double local = loop_wall(), ended;
    int len, i, rc;
    const char *now = marked(out, "rasrun-now ", &len);
    double remote = now ? strtod(now, NULL) : 0;
    for (const char *p = out; remote > 0 && (p = strstr(p, "rasrun-ended ")); p++) {
        if (sscanf(p, "rasrun-ended %d %d %lf", &i, &rc, &ended) != 3 || i < 0 || i >= n)
            continue;
        task *t = watched[i];
        double age = remote - ended;
        t->exit_code = rc;
        t->t_exit = local - (age > 0 ? age : 0);
        post(x->w, M_EXITED, t, NULL);
    }
    free(out);
    free(watched);
}

/* Between two requests of a transfer (one plan's files, which can take
 * minutes over a slow link), on the thread, over the side connection (the
 * transfer's session can send nothing else between two of its requests:
 * libssh2 may hold one of them half sent, and anything sent before it
 * would wait for ever): the host's other engines whose attempts were
 * cancelled meanwhile (a timeout, a Ctrl-C) are stopped now, and those that
 * ended are seen to (every WATCH_EVERY seconds), not when the transfer
 * ends. Their output and their files wait for the transfer. */
static void tend_others(sshw *x)
{
    double now = loop_now();
    if (now < x->next_tend)
        return;
    x->next_tend = now + 0.2;
    for (task *t = x->tasks; t; t = t->next) {
        pthread_mutex_lock(&x->mu);
        int cancel = t->cancel;
        pthread_mutex_unlock(&x->mu);
        if (t == x->moving || t->phase != T_RUNNING || !cancel || t->killed || t->pid <= 0)
            continue;
        char *out, *cmd = ssh_kill_script(t->pid, t->slot_dir, t->kill_grace);
        int rc = side_exec(x, cmd, 30 + t->kill_grace, &out);
        free(cmd);
        free(out);
        if (rc != 0)
            return;
        t->killed = 1;
    }
    if (now >= x->next_watch) {
        x->next_watch = now + WATCH_EVERY;
        watch_ends(x);
    }
}

/* The session is gone: fail what ran on it (the scheduler retries elsewhere),
 * remember what may still run there, and reconnect. tell: the host is down
 * (worker_down) until then, and the next try waits a second; not when
 * rasrun cut the session itself (Ctrl-C) or the host closed an idle one
 * (opened again at once). */
static void drop_connection(worker *w, const char *why, int tell)
{
    sshw *x = w->data;
    if (!x->c)
        return;
    char reason[600];
    size_t ll = strlen(x->c->label);
    if (strncmp(why, x->c->label, ll) == 0 && strncmp(why + ll, ": ", 2) == 0)
        why += ll + 2; /* the error names the host already */
    snprintf(reason, sizeof reason, "lost %s: %s", x->c->label, why);
    /* the peer is taken for gone: freeing each channel would otherwise wait
     * io_timeout for it, one channel after another */
    ssh_cut(x->c);
    while (x->tasks) {
        task *t = x->tasks;
        if (t->pid > 0) {
            orphan *o = calloc(1, sizeof *o);
            if (o) {
                o->pid = t->pid;
                o->dir = strdup(t->slot_dir);
                o->next = x->orphans;
                x->orphans = o;
            }
        }
        if (t->ch) {
            libssh2_channel_free(t->ch);
            t->ch = NULL;
        }
        fail_task(w, t, "%s", reason);
    }
    ssh_close(x->c);
    x->c = NULL;
    x->next_connect = loop_now() + (tell ? 1 : 0);
    if (tell)
        post(w, M_DOWN, NULL, "%s", reason);
}

static void lose_connection(worker *w, const char *why)
{
    drop_connection(w, why, 1);
}

/* The idle connection is gone: the kernel gave up on it (ETIMEDOUT: its
 * keepalive probes went unanswered), or the host closed it (an sshd
 * restarted, or one whose ClientAliveInterval the idle session, which
 * reads nothing, does not answer): opened again at once, no worker_down. */
static void lose_idle_link(worker *w)
{
    sshw *x = w->data;
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(x->c->sock, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        e = errno;
    char why[256];
    if (e == ETIMEDOUT)
        snprintf(why, sizeof why, "no answer while idle (TCP keepalives for %.0f s)", x->idle_limit);
    else if (e)
        snprintf(why, sizeof why, "connection failed while idle: %s", strerror(e));
    else
        snprintf(why, sizeof why, "the host closed the connection while idle");
    drop_connection(w, why, e != 0);
}

static void take_incoming(worker *w)
{
    sshw *x = w->data;
    pthread_mutex_lock(&x->mu);
    task *in = x->incoming;
    x->incoming = NULL;
    pthread_mutex_unlock(&x->mu);
    /* keep the order they came in */
    task *rev = NULL;
    while (in) {
        task *n = in->next;
        in->next = rev;
        rev = in;
        in = n;
    }
    while (rev) {
        task *t = rev;
        rev = t->next;
        t->next = NULL;
        task **tail = &x->tasks;
        while (*tail)
            tail = &(*tail)->next;
        *tail = t;
    }
}

/* Work the thread was asked to do besides attempts (keep a failed
 * attempt's folder): shell commands run once connected. */
static void run_chores(worker *w)
{
    sshw *x = w->data;
    pthread_mutex_lock(&x->mu);
    chore *c = x->chores;
    x->chores = NULL;
    pthread_mutex_unlock(&x->mu);
    while (c) {
        chore *next = c->next;
        if (conn_ok(x))
            host_run(w, c->cmd, 60);
        else
            free(c->cmd);
        free(c);
        c = next;
    }
}

static void *thread_main(void *arg)
{
    worker *w = arg;
    sshw *x = w->data;
    double next_keepalive = 0;
    for (;;) {
        pthread_mutex_lock(&x->mu);
        int stop = x->stop;
        pthread_mutex_unlock(&x->mu);
        take_incoming(w);
        if (stop && !x->tasks)
            break;
        if (!conn_ok(x))
            try_connect(w);
        if (!conn_ok(x)) {
            /* Attempts given to a host that is down fail at once. */
            for (task *t = x->tasks, *n; t; t = n) {
                n = t->next;
                fail_task(w, t, "%s is not reachable: %s", w->host,
                          x->down_why[0] ? x->down_why : "connection lost");
            }
            if (stop)
                break;
        }
        /* chores first: a kept folder is moved aside before the next
         * attempt in its slot empties that slot */
        run_chores(w);
        /* Kills and starts first, then the running engines: an engine that
         * has ended may have minutes of files to bring back, and the
         * attempts that came meanwhile start (and their timeouts run) before
         * that transfer, not after it. */
        for (task *t = x->tasks, *n; t && conn_ok(x); t = n) {
            n = t->next;
            if (t->cancel && !t->killed)
                cancel_task(w, t);
            else if (t->phase == T_QUEUED && (!x->engine_cap || count_running(x) < x->engine_cap)) {
                libssh2_session_set_blocking(x->c->s, 1);
                start_task(w, t);
            }
        }
        for (task *t = x->tasks, *n; t && conn_ok(x); t = n) {
            n = t->next;
            if (t->phase == T_RUNNING) {
                libssh2_session_set_blocking(x->c->s, 0);
                service(w, t);
            }
        }
        int running = conn_ok(x) && count_running(x) > 0;
        if (running) {
            /* Keepalive replies are read by the channel reads; a link that
             * stops answering is lost after twice the keepalive interval. */
            double now = loop_now();
            if (now >= next_keepalive) {
                libssh2_session_set_blocking(x->c->s, 0);
                ssh_keepalive(x->c, (unsigned)keepalive_interval(x));
                next_keepalive = now + 0.5;
            }
            if (now - x->c->last_rx > silence_limit(x)) {
                char why[128];
                snprintf(why, sizeof why, "no answer for %.0f s (keepalive %g s)", now - x->c->last_rx,
                         keepalive_interval(x));
                lose_connection(w, why);
                running = 0;
            }
        }
        /* An idle link is watched by the kernel's TCP keepalives
         * (ssh_probe_idle): a host that stops answering them errors the
         * socket; one that closes the connection (sshd restarted, or its
         * ClientAliveInterval given up on us) shuts its side. Left unseen,
         * either would hold up the next start, and the run's end. */
        int idle = conn_ok(x) && !running;
        struct pollfd p[2] = { { x->wake_thread, POLLIN, 0 },
                               { conn_ok(x) ? x->c->sock : -1, running ? POLLIN : POLLRDHUP, 0 } };
        poll(p, 2, 100);
        if (p[0].revents)
            drain_fd(x->wake_thread);
        if (idle && (p[1].revents & (POLLERR | POLLHUP | POLLRDHUP)))
            lose_idle_link(w);
    }
    /* Leaving: remove this run's folders and stop what the lost attempts
     * left; a link lost and back meanwhile is tried once more for that. */
    if (!conn_ok(x) && (x->orphans || x->slots_used)) {
        x->next_connect = 0;
        try_connect(w);
    }
    run_chores(w); /* folders still to keep */
    if (conn_ok(x) && x->run_dir_remote) {
        /* this worker's slots, then the run's folder if nothing else is in it:
         * other workers of the run on this host, and kept attempts, share it */
        struct sbuf b = { 0 };
        sb_add(&b, "rm -rf");
        for (int i = 0; i < w->slots; i++) {
            char slot[4096], path[8192];
            sched_slot_dir(slot, sizeof slot, w, i);
            snprintf(path, sizeof path, "%s%s", x->run_dir_remote, strrchr(slot, '/'));
            sb_add(&b, " ");
            sb_word(&b, path);
        }
        sb_add(&b, "; rmdir ");
        sb_word(&b, x->run_dir_remote);
        sb_add(&b, " 2>/dev/null; true");
        host_run(w, b.p, 60);
    }
    side_close(x);
    if (x->c) {
        ssh_close(x->c);
        x->c = NULL;
    }
    return NULL;
}

/* ---- the worker interface (main thread) ------------------------------------------ */

static int sw_create(worker *w, lua_State *L, int idx, char *err, size_t n)
{
    sshw *x = calloc(1, sizeof *x);
    if (!x)
        return snprintf(err, n, "out of memory"), -1;
    w->data = x;
    x->w = w;
    x->wake_thread = x->wake_main = x->watch = -1;
    pthread_mutex_init(&x->mu, NULL);
    if (ssh_target_from_lua(L, idx, &x->target, err, n) != 0)
        return -1;
    lua_getfield(L, idx, "keepalive");
    x->keepalive = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 15;
    lua_pop(L, 1);
    x->workdir = strdup(w->workdir);
    x->wake_thread = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->wake_main = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->hc = hashcache_new();
    x->blobs = strset_new();
    return 0;
}

static int sw_open(worker *w, char *err, size_t n)
{
    sshw *x = w->data;
    /* Slot folders (from w->workdir) live on the host, relative ones under
     * the login home. */
    if (asprintf(&x->run_dir_remote, "%s/%s", x->workdir, sched_run_id(w->s)) < 0)
        return snprintf(err, n, "out of memory"), -1;
    x->nprograms = sched_engine_programs(w, x->programs, 8);
    x->watch = loop_watch(sched_loop(w->s), x->wake_main, POLLIN, on_messages, w);
    if (pthread_create(&x->thread, NULL, thread_main, w) != 0)
        return snprintf(err, n, "ssh %s: cannot start its thread", w->name), -1;
    x->started = 1;
    return 0; /* up or down is reported by the thread */
}

static void sw_start(worker *w, attempt *a)
{
    sshw *x = w->data;
    task *t = calloc(1, sizeof *t);
    if (!t) {
        sched_attempt_not_begun(a, "out of memory");
        return;
    }
    t->a = a;
    a->wdata = t;
    t->project_dir = strdup(a->job->project_dir);
    /* Relative to the login home unless the work folder is absolute: the
     * thread makes it absolute once it knows the home. */
    t->slot_dir = strdup(a->workdir);
    t->log_path = strdup(a->log);
    char suffix[128];
    sched_stage_suffix(a, suffix, sizeof suffix);
    t->stage_suffix = strdup(suffix);
    char kept[4200];
    sched_kept_dir(kept, sizeof kept, a);
    t->kept_dir = strdup(kept);
    t->plan = strdup(a->job->plan);
    t->sp = a->spec;
    t->kill_grace = w->kill_grace;
    t->log_fd = -1;
    t->exit_code = -1;
    t->step = -1;
    task **g = realloc(x->made, sizeof *g * (size_t)(x->nmade + 1));
    if (g) {
        x->made = g;
        x->made[x->nmade++] = t;
    }
    pthread_mutex_lock(&x->mu);
    t->next = x->incoming;
    x->incoming = t;
    pthread_mutex_unlock(&x->mu);
    wake(x->wake_thread);
}

static void sw_cancel(worker *w, attempt *a)
{
    sshw *x = w->data;
    task *t = a->wdata;
    if (!t)
        return;
    pthread_mutex_lock(&x->mu);
    t->cancel = 1;
    t->keep_files = a->timed_out && !a->interrupted && !a->hurry;
    pthread_mutex_unlock(&x->mu);
    wake(x->wake_thread);
}

static int sw_transfer(worker *w, attempt *a, char *name, size_t n, unsigned long long *done,
                       unsigned long long *size)
{
    sshw *x = w->data;
    task *t = a->wdata;
    pthread_mutex_lock(&x->mu);
    int moving = t && x->moving == t && x->moving_name[0];
    if (moving) {
        snprintf(name, n, "%s", x->moving_name);
        *done = x->moving_done;
        *size = x->moving_size;
    }
    pthread_mutex_unlock(&x->mu);
    return moving;
}

static void free_task(task *t)
{
    free(t->project_dir);
    free(t->slot_dir);
    free(t->kept_dir);
    free(t->log_path);
    free(t->stage_suffix);
    free(t->plan);
    for (int i = 0; i < t->nouts; i++) {
        if (t->outs[i].tmp)
            unlink(t->outs[i].tmp);
        free(t->outs[i].tmp);
        free(t->outs[i].final);
    }
    free(t->outs);
    free(t);
}

/* The next attempt in the slot empties its folder; a failed attempt's
 * folder that the run keeps is moved aside on the host. */
static void sw_release(worker *w, attempt *a, int remove_workdir)
{
    sshw *x = w->data;
    task *t = a->wdata;
    if (t && !remove_workdir) {
        struct sbuf b = { 0 };
        sb_add(&b, "cd && mv ");
        sb_word(&b, t->slot_dir);
        sb_add(&b, " ");
        sb_word(&b, t->kept_dir);
        chore *c = calloc(1, sizeof *c);
        if (c && b.p) {
            c->cmd = b.p;
            pthread_mutex_lock(&x->mu);
            c->next = x->chores;
            x->chores = c;
            pthread_mutex_unlock(&x->mu);
            wake(x->wake_thread);
        } else {
            free(c);
            free(b.p);
        }
    }
    if (t)
        t->a = NULL; /* freed with the worker: the thread is done with it */
    a->wdata = NULL;
}

static void sw_close(worker *w)
{
    sshw *x = w->data;
    if (!x || !x->started)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = 1;
    pthread_mutex_unlock(&x->mu);
    wake(x->wake_thread);
    pthread_join(x->thread, NULL);
    x->started = 0;
    if (x->watch >= 0)
        loop_unwatch(sched_loop(w->s), x->watch);
    /* Reports that arrived after the run ended are dropped. */
    while (x->outbox) {
        msg *m = x->outbox;
        x->outbox = m->next;
        free(m);
    }
    x->outbox_tail = NULL;
}

static void sw_destroy(worker *w)
{
    sshw *x = w->data;
    if (!x)
        return;
    for (int i = 0; i < x->nmade; i++)
        free_task(x->made[i]);
    free(x->made);
    while (x->orphans) {
        orphan *o = x->orphans;
        x->orphans = o->next;
        free(o->dir);
        free(o);
    }
    while (x->chores) {
        chore *c = x->chores;
        x->chores = c->next;
        free(c->cmd);
        free(c);
    }
    ssh_target_free(&x->target);
    free(x->workdir);
    free(x->home);
    free(x->run_dir_remote);
    hashcache_free(x->hc);
    strset_free(x->blobs);
    if (x->wake_thread >= 0)
        close(x->wake_thread);
    if (x->wake_main >= 0)
        close(x->wake_main);
    pthread_mutex_destroy(&x->mu);
    free(x);
    w->data = NULL;
}

const worker_ops worker_ssh_ops = {
    .type = "ssh",
    .create = sw_create,
    .open = sw_open,
    .start = sw_start,
    .cancel = sw_cancel,
    .release = sw_release,
    .tick = NULL,
    .transfer = sw_transfer,
    .close = sw_close,
    .destroy = sw_destroy,
};
