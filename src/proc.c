/* Process primitives over /proc (the start of a program: proc_spawn.c). */
#include "proc.h"
#include "loop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

extern char **environ;

const int proc_stop_signals[PROC_NSTOP] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

void proc_stop_set(sigset_t *set)
{
    sigemptyset(set);
    for (int i = 0; i < PROC_NSTOP; i++)
        sigaddset(set, proc_stop_signals[i]);
}

/* The fields of /proc/PID/stat from field 3 (state) on, into buf. comm may
 * hold spaces and parentheses, so they start after the last ')'. */
static const char *stat_fields(pid_t pid, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    if (got <= 0)
        return NULL;
    buf[got] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Reads "state ppid pgrp ... starttime" of a process. */
static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp, unsigned long long *start)
{
    char buf[1024];
    const char *p = stat_fields(pid, buf, sizeof buf);
    if (!p)
        return 0;
    char st;
    int pp, pg;
    unsigned long long t = 0;
    /* fields 3 state, 4 ppid, 5 pgrp, ... 22 starttime */
    if (sscanf(p, "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &st, &pp, &pg, &t) != 4)
        return 0;
    if (state) *state = st;
    if (ppid) *ppid = pp;
    if (pgrp) *pgrp = pg;
    if (start) *start = t;
    return 1;
}

int proc_last_cpu(pid_t pid)
{
    char buf[1024];
    const char *p = stat_fields(pid, buf, sizeof buf);
    for (int field = 3; p && field < 39; field++) /* 39: processor */
        if ((p = strchr(p, ' ')))
            p++;
    return p && *p >= '0' && *p <= '9' ? atoi(p) : -1;
}

unsigned long long proc_starttime(pid_t pid)
{
    unsigned long long t = 0;
    char st;
    if (!read_stat(pid, &st, NULL, NULL, &t))
        return 0;
    return t;
}

unsigned long long proc_ticks_now(void)
{
    static long per_sec;
    if (!per_sec)
        per_sec = sysconf(_SC_CLK_TCK);
    struct timespec t;
    if (per_sec <= 0 || clock_gettime(CLOCK_BOOTTIME, &t) != 0)
        return 0;
    /* as the kernel rounds a start time: down to whole ticks */
    return (unsigned long long)t.tv_sec * (unsigned long long)per_sec +
           (unsigned long long)t.tv_nsec / (1000000000ULL / (unsigned long long)per_sec);
}

int proc_alive(pid_t pid)
{
    char st;
    return read_stat(pid, &st, NULL, NULL, NULL) && st != 'Z' && st != 'X';
}

struct pnode {
    pid_t pid, ppid;
};

/* The next process in an opendir("/proc"), or 0 after the last. */
static pid_t next_pid(DIR *d)
{
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (!*end && pid > 0)
            return (pid_t)pid;
    }
    return 0;
}

static int snapshot(struct pnode **out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0, cap = 256;
    struct pnode *v = malloc(sizeof *v * (size_t)cap);
    pid_t pid;
    while (v && (pid = next_pid(d)) > 0) {
        pid_t pp;
        if (!read_stat(pid, NULL, &pp, NULL, NULL))
            continue;
        if (n == cap) {
            cap *= 2;
            struct pnode *g = realloc(v, sizeof *v * (size_t)cap);
            if (!g)
                break;
            v = g;
        }
        v[n].pid = pid;
        v[n].ppid = pp;
        n++;
    }
    closedir(d);
    *out = v;
    return v ? n : 0;
}

/* dir as /proc/PID/cwd shows a folder: symbolic links resolved (a work
 * folder under a linked path, or under a $TMPDIR that is one). A folder
 * already removed is resolved through its parent. */
static void resolve_folder(const char *dir, char *out, size_t n)
{
    char buf[PATH_MAX];
    if (realpath(dir, buf)) {
        snprintf(out, n, "%s", buf);
        return;
    }
    const char *slash = strrchr(dir, '/');
    char parent[PATH_MAX];
    if (slash && slash > dir && (size_t)(slash - dir) < sizeof parent) {
        memcpy(parent, dir, (size_t)(slash - dir));
        parent[slash - dir] = 0;
        if (realpath(parent, buf)) {
            snprintf(out, n, "%s%s", strcmp(buf, "/") ? buf : "", slash);
            return;
        }
    }
    snprintf(out, n, "%s", dir);
}

int proc_in_folder(const char *given, pid_t *out, int max)
{
    char dir[PATH_MAX + 256];
    resolve_folder(given, dir, sizeof dir);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int found = 0;
    pid_t pid;
    while (found < max && (pid = next_pid(d)) > 0) {
        char link[64], cwd[4096];
        snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
        ssize_t n = readlink(link, cwd, sizeof cwd - 1);
        if (n <= 0)
            continue;
        cwd[n] = 0;
        /* a folder removed while the process worked in it reads "DIR (deleted)" */
        static const char gone[] = " (deleted)";
        if ((size_t)n > sizeof gone - 1 && strcmp(cwd + n - (sizeof gone - 1), gone) == 0)
            cwd[n - (sizeof gone - 1)] = 0;
        if (strncmp(cwd, dir, len) == 0 && (cwd[len] == 0 || cwd[len] == '/'))
            out[found++] = pid;
    }
    closedir(d);
    return found;
}

int proc_descendants(pid_t root, pid_t *out, int max)
{
    struct pnode *all = NULL;
    int n = snapshot(&all), found = 0;
    /* Breadth-first over the parent links: out[] doubles as the queue. */
    pid_t frontier = root;
    int head = 0;
    for (;;) {
        for (int i = 0; i < n && found < max; i++)
            if (all[i].ppid == frontier && all[i].pid != root)
                out[found++] = all[i].pid;
        if (head >= found)
            break;
        frontier = out[head++];
    }
    free(all);
    return found;
}

int proc_kill_tree(pid_t pid, int sig)
{
    pid_t kids[1024];
    int n = proc_descendants(pid, kids, 1024), hit = 0;
    if (kill(-pid, sig) == 0)
        hit++;
    else if (kill(pid, sig) == 0)
        hit++;
    for (int i = 0; i < n; i++)
        if (kill(kids[i], sig) == 0)
            hit++;
    return hit;
}

int proc_exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

static size_t name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

char **proc_envp(char *const *overrides, size_t n)
{
    size_t base = 0;
    while (environ[base])
        base++;
    char **out = calloc(base + n + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < base; i++) {
        size_t len = name_len(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < n && !replaced; j++)
            replaced = name_len(overrides[j]) == len && strncmp(overrides[j], environ[i], len) == 0;
        if (!replaced)
            out[k++] = strdup(environ[i]);
    }
    for (size_t j = 0; j < n; j++)
        if (strchr(overrides[j], '='))
            out[k++] = strdup(overrides[j]);
    out[k] = NULL;
    return out;
}

void proc_envp_free(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++)
        free(*p);
    free(envp);
}

int proc_wait(pid_t pid, double timeout, int *status)
{
    double deadline = loop_now() + timeout;
    for (;;) {
        pid_t r = waitpid(pid, status, timeout < 0 ? 0 : WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (timeout >= 0 && loop_now() > deadline)
            return 0;
        if (r == 0)
            poll(NULL, 0, 10);
    }
}
