/* Process primitives: spawn into a new process group, find and kill a whole
 * process tree, identify a process across pid reuse. */
#ifndef RASRUN_PROC_H
#define RASRUN_PROC_H

#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

/* A stack for the child of proc_spawn (see proc_spawn.c), for a caller that
 * starts many programs one after another (the spawner): made once, used by
 * each start. One start at a time uses it. */
typedef struct {
    char *base;
    size_t size;
} proc_stack;

/* 0, or -1 with errno. */
int proc_stack_make(proc_stack *st);
void proc_stack_free(proc_stack *st);

typedef struct {
    char *const *argv;   /* argv[0] with a slash is a path; without, looked up on PATH */
    char *const *envp;   /* NULL: inherit */
    const char *cwd;     /* NULL: inherit */
    int in_fd, out_fd, err_fd; /* -1: /dev/null */
    int new_group;       /* child leads a new process group (pgid = pid) */
    const cpu_set_t *caller_cpus; /* non-NULL: the calling thread's cores from the moment
                                   * the child exists (the child keeps the caller's);
                                   * see proc_spawn.c */
    const proc_stack *stack;      /* the child's (NULL: one is made for this start) */
} proc_spec;

/* Starts the program with default signal dispositions and an empty signal
 * mask. Returns the pid, or -1 with a message naming the program. */
pid_t proc_spawn(const proc_spec *s, char *err, size_t errlen);

/* Sends sig to the process group of pid and to every descendant of pid that
 * left the group (setsid, setpgid). Returns how many processes were signalled. */
int proc_kill_tree(pid_t pid, int sig);

/* Up to max descendants of root (children, grandchildren, ...), from /proc. */
int proc_descendants(pid_t root, pid_t *out, int max);

/* The kernel's start time of pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), or 0 when there is no such process. Together with the pid
 * it names a process unambiguously across pid reuse. */
unsigned long long proc_starttime(pid_t pid);

/* The boot clock now, in proc_starttime's units. A process started between
 * two readings has a start time within them: the readings around a spawn
 * name the child without reading /proc (that costs 40 us per engine). */
unsigned long long proc_ticks_now(void);

/* The CPU the process last ran on (field 39 of /proc/PID/stat; a zombie
 * keeps it until reaped), or -1. */
int proc_last_cpu(pid_t pid);

/* Up to max processes whose working folder is dir or inside it (from
 * /proc/PID/cwd; those of other users are not seen without privileges). */
int proc_in_folder(const char *dir, pid_t *out, int max);

/* Does the process exist (and is it not a zombie)? */
int proc_alive(pid_t pid);

/* The signals that stop rasrun cleanly: Ctrl-C, a kill, a hangup (the
 * terminal closed, the SSH session rasrun was started from dropped) and
 * Ctrl-\ (whose default, a core dump, would leave the engines running). The
 * scheduler and sys.run read them while engines or commands run, whose
 * process groups of their own those signals would not reach. */
#define PROC_NSTOP 4
extern const int proc_stop_signals[PROC_NSTOP];
void proc_stop_set(sigset_t *set);

/* Turns a wait status into an exit code: the code itself, or 128+signal. */
int proc_exit_code(int wstatus);


/* The current environment with overrides applied: each override is "NAME=value"
 * (set) or "NAME" (unset). NULL-terminated; free with proc_envp_free. */
char **proc_envp(char *const *overrides, size_t n);
void proc_envp_free(char **envp);

/* Waits for the child pid to end, at most timeout seconds (< 0: for as long
 * as it takes). 1 with *status set when it was reaped, 0 when it is still
 * running (a process in uninterruptible sleep does not die at SIGKILL until
 * its I/O is done), -1 with errno. */
int proc_wait(pid_t pid, double timeout, int *status);

#endif
