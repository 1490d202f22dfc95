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

/* Kills the process group led by pid and every descendant that left it
 * (TERM, then KILL after grace seconds), only while the leader still works
 * in dir: a reused pid is never hit. Prints "stopped" when it found the
 * engine. Caller frees. */
char *ssh_kill_script(long pid, const char *dir, double grace);

#endif
