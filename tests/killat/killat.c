/* LD_PRELOAD=build/killat.so KILLAT_SUFFIX=.p01.hdf COMMAND: the process
 * kills itself (SIGKILL) right after it swaps a file whose new name ends in
 * the suffix into place (renameat2 with RENAME_EXCHANGE): a controller
 * killed in the middle of moving an attempt's files into the project
 * (src/sched.c, commit), where no signal sent from outside can aim. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned int);

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
    renameat2_fn real = (renameat2_fn)dlsym(RTLD_NEXT, "renameat2");
    int rc = real ? real(olddirfd, oldpath, newdirfd, newpath, flags) : -1;
    const char *suffix = getenv("KILLAT_SUFFIX");
    size_t n = strlen(newpath), k = suffix ? strlen(suffix) : 0;
    if (rc == 0 && (flags & RENAME_EXCHANGE) && k > 0 && n >= k && strcmp(newpath + n - k, suffix) == 0)
        raise(SIGKILL);
    return rc;
}
