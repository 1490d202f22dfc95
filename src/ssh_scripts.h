/* Shell commands rasrun runs on SSH hosts, and the growable buffer that
 * builds them. */
#ifndef RASRUN_SSH_SCRIPTS_H
#define RASRUN_SSH_SCRIPTS_H

#include <stddef.h>

struct sbuf {
    char *p;
    size_t n, cap;
};
void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends one word, single-quoted for a POSIX shell. */
void sb_word(struct sbuf *b, const char *w);

/* Shell text, as a printf format (sb_add): `sweep SIG DIR` kills every
 * process whose working folder is DIR or below it: helpers an engine
 * started that left its process group (setsid) but still work in its
 * folder. One find over /proc (DIR's glob characters escaped), no process
 * per pid. The caller's own shell must not be in DIR. */
#define SWEEP_FN "sweep() { G=$(printf '%%s' \"$2\" | sed 's/[][*?\\\\]/\\\\&/g'); " \
                 "for c in $(find /proc/[0-9]*/cwd -maxdepth 0 \\( -lname \"$G\" -o -lname \"$G/*\" \\) " \
                 "2>/dev/null); do c=${c#/proc/}; kill -$1 \"${c%%/cwd}\" 2>/dev/null; done; }\n"

/* Kills the process group led by pid and every descendant that left it
 * (TERM, then KILL after grace seconds), only while the leader still works
 * in dir: a reused pid is never hit. Prints "stopped" when it found the
 * engine. Then sweeps dir (helpers that left the group). Caller frees. */
char *ssh_kill_script(long pid, const char *dir, double grace);

#endif
