/* The scheduler's run state, shared by sched.c (mechanism) and lsched.c
 * (the Lua side: parsing the run, events, checks, results). */
#ifndef RASRUN_SCHED_INT_H
#define RASRUN_SCHED_INT_H

#include "sched.h"

/* sched.interrupted when the recipe stopped the run (not a signal) */
#define SCHED_STOPPED (-1)

struct sched {
    lua_State *L;
    loop *loop;
    journal *journal;           /* not owned */
    int journal_lost;           /* lines that could not be written (said once) */
    char run_id[64];
    char run_dir[4096];
    worker **workers;
    int nworkers;
    int nengines;               /* length of every job's specs array */
    job *jobs;
    int njobs;
    int ndone;
    int nwaiting;               /* jobs in J_WAITING: none, and finishing a job releases nobody */
    int first_open;             /* no job before it is waiting or ready */
    attempt *live;              /* attempts in flight */
    attempt *finished;          /* reported done, waiting for the loop */
    attempt *unjudged, **unjudged_tail; /* slots given back, checks not run yet (oldest first) */
    int nunjudged;
    double unjudged_since;      /* monotonic: when the oldest of them came */
    attempt *zombies;           /* abandoned: freed after the workers close */
    int interrupted;            /* 0, the signal that stopped the run, or SCHED_STOPPED */
    char stop_reason[512];      /* why the recipe stopped it (rasrun.fail in a check or on_event) */
    int stop_asked;             /* the recipe asked for the stop: taken at the next safe point */
    int forced;                 /* a second signal: no more grace */
    int sigfd;
    int lua_ran;                /* the recipe's Lua ran since the signals were last read */
    double interrupted_at;      /* monotonic */
    double cancel_wait;         /* how long to wait for engines to stop */
    double tick_every;
    double next_tick;
    double down_grace;          /* fail a waiting plan after this long with no worker for it */
    int nstranded;              /* waiting plans whose workers are all down, at the last look */
    int keep_scratch;
    struct spares *spares;      /* replaced files kept for reuse (see sched_take_spare) */
    char **geom_done;           /* geometry keys committed in this run */
    int ngeom_done;
    /* Lua callbacks (registry refs; LUA_NOREF when absent). */
    int check_ref, event_ref, tick_ref;
};

/* Lua side (lsched.c). */
void lsched_event(sched *s, const char *type, job *j, attempt *a, worker *w, const char *reason);
/* Runs the recipe's check on the staged result; returns 1 ok, 0 failed,
 * -1 the check stopped the run (the reason is copied to reason). Stores the
 * report in j->report_ref. */
int lsched_check(sched *s, attempt *a, char *reason, size_t n);
void lsched_history(sched *s, attempt *a, const char *status, const char *reason);
void lsched_tick(sched *s);

/* Mechanism (sched.c). */
int sched_main(sched *s);
/* The recipe stops the run: taken at the next safe point. 0 when the run
 * was stopped already (the first reason stands). */
int sched_stop(sched *s, const char *reason);
void sched_free_job(job *j);

#endif
