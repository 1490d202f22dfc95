/* The scheduler: plans (jobs) run as attempts on worker slots.
 *
 * Every attempt is a small state machine driven on the main thread:
 *   STAGE_IN -> RUNNING (one engine step after another) -> STAGE_OUT
 *   -> (worker reports done) -> CHECK (Lua) -> COMMIT or DISCARD -> CLEANUP
 * A worker backend implements the worker_ops interface and reports back
 * through sched_attempt_launched() and sched_attempt_done(). */
#ifndef RASRUN_SCHED_H
#define RASRUN_SCHED_H

#include <lua.h>
#include <stddef.h>
#include <sys/types.h>

#include "journal.h"
#include "loop.h"

/* The scheduler's loop wakes at least this often (ms): timeouts, progress,
 * and workers' ticks. */
#define SCHED_TICK_MS 100

typedef struct sched sched;
typedef struct worker worker;
typedef struct attempt attempt;
typedef struct job job;

/* What a worker of one engine kind must do to run one plan. All file names
 * are relative to the project folder (inputs) or the attempt's work folder. */
typedef struct {
    char **inputs;          /* files copied into the work folder */
    int ninputs;
    char **links;           /* inputs the engine only reads: a worker may hard-link them */
    int nlinks;
    char **text;            /* inputs the engine reads as text without CR (the Linux
                             * engine's .bNN): staged with every CR taken out when
                             * they have one (Windows HEC-RAS writes CR LF) */
    int ntext;
    char ***steps;          /* argv arrays, run one after another */
    int nsteps;
    char **env;             /* "NAME=value" added to the engine's environment */
    int nenv;
    char *result_from;      /* the result file in the work folder */
    char *result_to;        /* its name in the project */
    char **collect;         /* glob patterns of further outputs (logs, restart files) */
    int ncollect;
    char *geom_key;         /* outputs shared by the plans of one geometry */
    char **geom_files;
    int ngeom;
} job_spec;

enum job_state { J_WAITING, J_READY, J_RUNNING, J_DONE };
enum job_status { S_NONE, S_OK, S_FAILED, S_CANCELLED };

enum { OUT_RESULT, OUT_COLLECT, OUT_GEOM };

/* One staged-out file: the temporary copy beside its final name. */
typedef struct {
    char *tmp;
    char *final;
} staged;

struct job {
    int index;              /* position in the run's job list (its priority) */
    char *key;              /* unique label, e.g. "Sample/p01" */
    char *plan;             /* "01" */
    char *project_dir;
    job_spec **specs;       /* one per engine (worker->engine index); NULL: cannot run there */
    int *after;             /* jobs that must end ok first */
    int nafter;
    int retries;
    int attempts_before;    /* attempts an interrupted run made (resume): numbers go on from there */
    int failed_before;      /* those of them that failed: they count against retries */
    double timeout;         /* seconds per attempt; 0: none */
    int lua_ref;            /* the job's Lua table (registry ref) */
    int unrunnable;         /* no worker can run it; reason says why */
    int prefetched;         /* its inputs were asked of the disk (prefetch_next) */
    double stranded_since;  /* monotonic: since when every worker that can run it is down; 0: not */

    enum job_state state;
    enum job_status status;
    int attempts;
    double first_start, end;  /* wall clock */
    char reason[512];
    int *tried;             /* workers that ran a failed attempt of this job */
    int ntried;
    int history_ref;        /* Lua table of attempt records (registry ref) */
    int report_ref;         /* the last check report (registry ref) */
    char *result_path;      /* committed result */
};

/* The attempts a job has had, an interrupted run's (resume) included. */
static inline int job_attempts_made(const job *j)
{
    return j->attempts_before + j->attempts;
}

enum attempt_phase { A_STAGE_IN, A_RUNNING, A_STAGE_OUT, A_DONE };

struct attempt {
    job *job;
    worker *w;
    job_spec *spec;
    int number;             /* 1, 2, ... for the job */
    int slot;               /* the worker slot it runs in, 0-based */
    enum attempt_phase phase;
    char workdir[4096];     /* on the worker: one folder per slot and run, emptied
                               before each attempt (no create/delete churn) */
    char log[4096];         /* local log file */
    double t_start, t_launch, t_exit, t_end;   /* wall clock; t_exit: the engine ended */
    struct timespec t_files;  /* t_start as a file time (the result is dated so: commit) */
    double deadline;        /* monotonic; 0 none */
    int cancelling;         /* cancel requested (timeout, Ctrl-C, lost host) */
    int abandoned;          /* written off while its backend still holds it */
    int released;           /* slot and backend state already given back */
    int timed_out;
    int interrupted;
    int hurry;              /* timed out, then Ctrl-C: its files need not come back */
    char *checks_json;      /* its checks' details as the journal keeps them */
    int checked;            /* its result's checks ran and reported (lsched_check) */
    int copying;            /* a worker's thread writes its outputs' fields: not written off */

    /* Filled by the worker before sched_attempt_done(). */
    int exit_code;          /* of the last step run; -1 unknown */
    int step;               /* that step; -1 where the worker does not say */
    int failed;             /* the worker could not complete (staging, lost host) */
    char reason[512];
    double launch_epoch;    /* engine start on the worker's clock */
    unsigned long long bytes_up, bytes_down; /* file bytes sent to / fetched from the worker */
    int utc_offset;         /* the worker's UTC offset, seconds */
    staged result;          /* tmp NULL: no result file came back */
    staged *outputs;        /* collected outputs */
    int noutputs;
    staged *geom;           /* geometry outputs */
    int ngeom;

    void *wdata;            /* the backend's own state */
    attempt *next;          /* in the scheduler's list of live attempts */
};

enum worker_state { W_DOWN, W_CONNECTING, W_UP };

typedef struct worker_ops {
    const char *type;
    /* Reads the backend's settings from the Lua table at idx. */
    int (*create)(worker *w, lua_State *L, int idx, char *err, size_t errlen);
    /* Starts connecting; the backend calls sched_worker_state() when it is up
     * or down. Local workers are up at once. */
    int (*open)(worker *w, char *err, size_t errlen);
    /* Stages in, runs the steps, stages out; ends with sched_attempt_done(). */
    void (*start)(worker *w, attempt *a);
    /* Stops the attempt's engine, its whole process tree; the attempt still
     * ends with sched_attempt_done(). */
    void (*cancel)(worker *w, attempt *a);
    /* Releases the backend's state for a finished attempt and, when
     * remove_workdir is set, removes its work folder. Must not keep a. */
    void (*release)(worker *w, attempt *a, int remove_workdir);
    /* Periodic housekeeping (keepalive, reconnect), about every
     * SCHED_TICK_MS. */
    void (*tick)(worker *w, double now);
    /* Optional: when a file of the attempt is being sent or fetched, fills
     * its name (into name, n bytes), the bytes moved and its size, and
     * returns 1 (for the progress display); else 0. */
    int (*transfer)(worker *w, attempt *a, char *name, size_t n, unsigned long long *done,
                    unsigned long long *size);
    /* Ends every activity; called once at the end of the run. */
    void (*close)(worker *w);
    void (*destroy)(worker *w);
} worker_ops;

struct worker {
    const worker_ops *ops;
    sched *s;
    int index;
    char *name;
    char *host;             /* where the engines run, for journals and reports */
    int slots;
    int tier;
    int engine;             /* index into job->specs */
    enum worker_state state;
    char down_reason[512];
    int down_for_good;      /* down for a reason waiting cannot mend (a refused login) */
    int running;            /* attempts in flight */
    unsigned char *slot_busy; /* per slot */
    char *workdir;          /* scratch root on the worker */
    double kill_grace;      /* seconds between TERM and KILL */
    void *data;             /* the backend's own state */
};

/* ---- calls from worker backends ------------------------------------------ */

loop *sched_loop(sched *s);
const char *sched_run_id(sched *s);
/* The engine programs the worker runs (the last step of each job's spec
 * for it: RasUnsteady, Ras.exe; those given by path), each once, at most
 * max: their number. They live as long as the specs. A worker without its
 * engine is down, instead of failing every plan sent to it. */
int sched_engine_programs(worker *w, const char **out, int max);
/* The first of those that is not here or cannot be run (errno says why),
 * or NULL. */
const char *sched_missing_program(worker *w);

/* Step `step` of the attempt's engine started (pid/pgid on the worker, for
 * the journal); its start time is within [start_lo, start_hi] (equal when
 * known exactly). Step 0 is the attempt's launch; a later step (RasUnsteady
 * after RasGeomPreprocess) is journaled so that a resume finds its pid. */
void sched_attempt_launched(attempt *a, int step, long pid, unsigned long long start_lo,
                            unsigned long long start_hi);
/* The attempt has finished (ok or not); the scheduler takes over. */
void sched_attempt_done(attempt *a);
/* The attempt could not even begin on the worker (no memory for its
 * state): it fails, with reason. */
void sched_attempt_not_begun(attempt *a, const char *reason);
/* The worker went up or down (reason names the host and the cause). */
void sched_worker_state(worker *w, enum worker_state st, const char *reason);

/* The work folder of a worker slot in this run, and where a failed
 * attempt's folder is kept when the run keeps scratch folders. */
void sched_slot_dir(char *out, size_t n, worker *w, int slot);
void sched_kept_dir(char *out, size_t n, attempt *a);

/* A temporary file name in the project folder for a staged-out file:
 * "<project>/.<final name><suffix>", the suffix naming the run and attempt. */
char *sched_stage_name(attempt *a, const char *final_name);
/* The same from its parts (any thread): project_dir/.<final_name><suffix>. */
char *sched_stage_path(const char *project_dir, const char *final_name, const char *suffix);
void sched_stage_suffix(attempt *a, char *out, size_t n);
/* An output that cannot be brought into the project (a read-only folder, a
 * full disk) is kept where a failed attempt's staged files go: moved (or
 * copied) from src into the run folder's attempts/<plan>-aN/ (dir says
 * which). 0, or -1 when it cannot be kept either. */
int sched_keep_output(attempt *a, const char *src, const char *final_name, char *dir, size_t n);
/* Records a staged-out file on the attempt (takes ownership of tmp). */
void sched_add_output(attempt *a, char *tmp, const char *final_name, int kind);

/* A file that a commit replaced, kept (under the run folder) so that the
 * next copy can be written into it: ext4 without a journal scans every
 * recently freed inode on each create, and a run that replaces results
 * would otherwise free one and allocate one per plan. NULL when none; the
 * caller frees the path (see fs_copy_reusing, which uses it up). */
char *sched_take_spare(sched *s);

/* Questions about a job spec (src/jobspec.c). Specs do not change during a
 * run and live until the workers are closed: worker threads may read them. */
int spec_lists(char **list, int n, const char *name);
/* What a work-folder file is to the job, whatever the case of its name:
 * OUT_RESULT (*final: its name in the project), OUT_COLLECT or OUT_GEOM
 * (*final: the same name; the commit spells it as the project does), or -1. */
int spec_output_kind(const job_spec *sp, const char *name, const char **final);
/* Does name match one of the glob patterns, whatever its case? */
int spec_matches_any(char **pats, int n, const char *name);
/* Did the engine leave this input as it was: same size and modification time
 * as the project's copy (mtime_nsec < 0: whole seconds only)? */
int spec_unchanged_input(const job_spec *sp, const char *project_dir, const char *name,
                         unsigned long long size, long long mtime_sec, long mtime_nsec);

/* Backends by type name. */
const worker_ops *worker_ops_find(const char *type);
extern const worker_ops worker_local_ops;
extern const worker_ops worker_ssh_ops;

#endif
