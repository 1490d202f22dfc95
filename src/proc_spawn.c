/* Starting a program (see proc.h, proc_spawn).
 *
 * What glibc's posix_spawn does, with one step more: a vfork-style clone
 * whose child sets up its descriptors, folder, process group and signals and
 * then execs, while the caller waits. The step more: the child first gives
 * the caller the cores it is to have (proc_spec.caller_cpus), while the
 * caller still waits. The loop pins itself to the core an engine left to
 * start the next one there (affinity.h), and the child inherits the pin;
 * had the loop still been pinned when the child exec'd, it would have been
 * woken on that core, behind the new engine, and waited there up to a whole
 * time slice while the other core, whose engine had ended meanwhile, stood
 * idle.
 *
 * The child shares the caller's memory until it execs (other threads of
 * the process run on), so it allocates nothing and takes no locks: its own
 * code is not instrumented by the sanitizers, and the C library functions
 * it calls are thin wrappers of system calls. It runs on a stack of its own
 * with a guard page below, and does the PATH search itself (execvpe would
 * also run a script without "#!" through /bin/sh, with a copy of the
 * arguments on the stack). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

/* The child's stack, above a guard page: its frames and one path. */
#define CHILD_STACK (32 * 1024)

typedef struct {
    const proc_spec *s;
    char *const *envp;
    pid_t caller;     /* the calling thread */
    const char *path; /* where a program named without a slash is looked for */
    int err;          /* the child's errno when a step failed: it did not exec */
    const char *step; /* which step */
} child_args;

int proc_stack_make(proc_stack *st)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t guard = page > 0 ? (size_t)page : 4096, n = guard + CHILD_STACK;
    n = (n + guard - 1) / guard * guard;
    char *base = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    if (mprotect(base, guard, PROT_NONE) != 0) { /* the guard page below */
        int e = errno;
        munmap(base, n);
        errno = e;
        return -1;
    }
    st->base = base;
    st->size = n;
    return 0;
}

void proc_stack_free(proc_stack *st)
{
    if (st->base)
        munmap(st->base, st->size);
    st->base = NULL;
    st->size = 0;
}

#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

/* Signals whose handlers the program gets at their defaults, ignored or
 * not: the ones rasrun catches or ignores for itself. */
NO_SANITIZE static int set_to_default(int sig)
{
    switch (sig) {
    case SIGINT: case SIGTERM: case SIGCHLD: case SIGPIPE: case SIGHUP:
    case SIGQUIT: case SIGUSR1: case SIGUSR2: case SIGIO:
        return 1;
    default:
        return 0;
    }
}

NO_SANITIZE static int fail_step(child_args *c, const char *step)
{
    c->err = errno;
    c->step = step;
    _exit(127);
}

NO_SANITIZE static int child_main(void *arg)
{
    child_args *c = arg;
    const proc_spec *s = c->s;
    /* the caller's cores back, before anything else (see above) */
    if (s->caller_cpus)
        syscall(SYS_sched_setaffinity, c->caller, sizeof *s->caller_cpus, s->caller_cpus);
    /* No handler of the caller's may run here: caught signals, and the
     * ones asked for, to their defaults; the ignored ones stay ignored. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
            continue; /* (also the C library's own signals, which it refuses) */
        if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && !set_to_default(sig)))
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
    }
    if (s->new_group && setpgid(0, 0) != 0)
        return fail_step(c, "setpgid");
    int fds[3] = { s->in_fd, s->out_fd, s->err_fd };
    for (int i = 0; i < 3; i++) {
        int fd = fds[i];
        if (fd < 0 && (fd = open("/dev/null", (i ? O_WRONLY : O_RDONLY) | O_CLOEXEC)) < 0)
            return fail_step(c, "/dev/null");
        if (fd == i ? fcntl(fd, F_SETFD, 0) != 0 : dup2(fd, i) != i)
            return fail_step(c, "dup2");
        if (fds[i] < 0 && fd != i)
            close(fd);
    }
    /* nothing else rasrun or a recipe has open (Lua's io.open sets no
     * close-on-exec) reaches the program */
    struct rlimit lim;
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0 && getrlimit(RLIMIT_NOFILE, &lim) == 0)
        for (rlim_t fd = 3; fd < lim.rlim_cur && fd < (1 << 20); fd++)
            close((int)fd);
    if (s->cwd && chdir(s->cwd) != 0)
        return fail_step(c, "chdir");
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const char *name = s->argv[0];
    if (strchr(name, '/')) {
        execve(name, s->argv, c->envp);
        return fail_step(c, "exec");
    }
    /* The PATH search, as posix_spawnp does it: the first file that execs;
     * past folders that do not hold it or cannot be searched; a file there
     * that cannot be run is the answer when nothing else runs. */
    size_t nlen = strlen(name);
    int denied = 0;
    for (const char *p = c->path;; p++) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        char file[4096];
        if (dlen + 1 + nlen < sizeof file) {
            if (dlen)
                memcpy(file, p, dlen);
            else
                file[dlen++] = '.'; /* an empty entry: the current folder */
            file[dlen] = '/';
            memcpy(file + dlen + 1, name, nlen + 1);
            execve(file, s->argv, c->envp);
            if (errno == EACCES)
                denied = 1;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG && errno != ESTALE &&
                     errno != ENODEV && errno != ETIMEDOUT)
                return fail_step(c, "exec"); /* (ENOEXEC, a script without "#!": as posix_spawnp) */
        }
        if (!end)
            break;
        p = end;
    }
    errno = denied ? EACCES : ENOENT;
    return fail_step(c, "exec");
}

pid_t proc_spawn(const proc_spec *s, char *err, size_t errlen)
{
    const char *path = getenv("PATH");
    child_args c = { .s = s, .envp = s->envp ? s->envp : environ, .caller = (pid_t)syscall(SYS_gettid),
                     .path = path && *path ? path : "/bin:/usr/bin" };
    /* the caller waits until its child has exec'd or ended: the stack is
     * free again when proc_spawn returns */
    proc_stack own = { NULL, 0 };
    const proc_stack *stack = s->stack;
    if (!stack) {
        if (proc_stack_make(&own) != 0) {
            snprintf(err, errlen, "cannot start %s: %s", s->argv[0], strerror(errno));
            return -1;
        }
        stack = &own;
    }
    int saved_errno = errno; /* the child shares this thread's errno */
    /* no signal handler runs in the child before it has set them aside */
    sigset_t all, mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &mask);
    pid_t pid = clone(child_main, stack->base + stack->size, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
    int clone_err = errno;
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    proc_stack_free(&own);
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: %s", s->argv[0], strerror(clone_err));
        return -1;
    }
    if (!c.err) {
        errno = saved_errno;
        return pid;
    }
    /* it did not exec: reap it, and say why */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (strcmp(c.step, "chdir") == 0)
        snprintf(err, errlen, "cannot start %s: working folder %s: %s", s->argv[0], s->cwd,
                 strerror(c.err));
    else if (strcmp(c.step, "exec") == 0)
        snprintf(err, errlen, "cannot start %s: %s", s->argv[0], strerror(c.err));
    else
        snprintf(err, errlen, "cannot start %s (%s): %s", s->argv[0], c.step, strerror(c.err));
    return -1;
}
