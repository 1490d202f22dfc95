/* Shell commands for SSH hosts (see ssh_scripts.h). */
#include "ssh_scripts.h"
#include "ssh_conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap + (size_t)k) * 2 + 256;
        char *g = realloc(b->p, cap);
        if (!g)
            return;
        b->p = g;
        b->cap = cap;
    }
}

void sb_word(struct sbuf *b, const char *w)
{
    char q[8192];
    ssh_quote(q, sizeof q, w);
    sb_add(b, "%s", q);
}

char *ssh_kill_script(long pid, const char *dir, double grace)
{
    struct sbuf b = { 0 };
    sb_add(&b, "P=%ld\nD=", pid);
    sb_word(&b, dir);
    /* /proc/P/cwd is the fully resolved path: compare it with D resolved */
    sb_add(&b, "\nR=$(cd \"$D\" 2>/dev/null && pwd -P) || exit 0\n"
               "cd /\n" SWEEP_FN
               "if [ \"$(readlink /proc/$P/cwd 2>/dev/null)\" = \"$R\" ]; then\n"
               "tree() { for c in $(ps -o pid= --ppid \"$1\" 2>/dev/null); do tree \"$c\"; done; "
               "echo \"$1\"; }\n"
               "all=$(tree $P)\n"
               "kill -TERM -- -$P 2>/dev/null; for p in $all; do kill -TERM $p 2>/dev/null; done\n"
               /* the grace, or less when everything ended at SIGTERM */
               "alive() { kill -0 -- -$P 2>/dev/null && return 0; "
               "for p in $all; do kill -0 $p 2>/dev/null && return 0; done; return 1; }\n"
               "n=0; while [ $n -lt %d ] && alive; do sleep 0.1; n=$((n+1)); done\n"
               "kill -KILL -- -$P 2>/dev/null; for p in $all; do kill -KILL $p 2>/dev/null; done\n"
               "echo stopped\n"
               "fi\n"
               "sweep KILL \"$R\"\n"
               "exit 0\n", grace > 0 ? (int)(grace * 10 + 0.5) : 0);
    return b.p;
}
