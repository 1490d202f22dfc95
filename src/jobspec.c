/* Questions workers ask of a job spec (see sched.h): which work-folder files
 * are outputs, which inputs the engine left as they were. */
#include "sched.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int spec_lists(char **list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

/* Output names are matched whatever their case: an engine on Windows may
 * spell a file otherwise than the project does (EX1.C01 against EX1.c01),
 * and there it is the same file. */
int spec_matches_any(char **pats, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (fnmatch(pats[i], name, FNM_CASEFOLD) == 0)
            return 1;
    return 0;
}

/* The project's spelling of name: an input's, or a file's already there,
 * whatever the case; else name itself. */
static void project_spelling(const job_spec *sp, const char *project_dir, const char *name,
                             char *out, size_t n)
{
    snprintf(out, n, "%s", name);
    for (int i = 0; i < sp->ninputs; i++)
        if (strcasecmp(sp->inputs[i], name) == 0) {
            snprintf(out, n, "%s", sp->inputs[i]);
            return;
        }
    char p[8192];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", project_dir, name);
    if (lstat(p, &st) == 0 || errno != ENOENT)
        return;
    DIR *d = opendir(project_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcasecmp(e->d_name, name) == 0) {
            snprintf(out, n, "%s", e->d_name);
            break;
        }
    closedir(d);
}

int spec_output_kind(const job_spec *sp, const char *project_dir, const char *name, char *final,
                     size_t n)
{
    int kind = -1;
    if (strcasecmp(name, sp->result_from) == 0) {
        snprintf(final, n, "%s", sp->result_to);
        return OUT_RESULT;
    }
    if (spec_matches_any(sp->collect, sp->ncollect, name))
        kind = OUT_COLLECT;
    else if (spec_matches_any(sp->geom_files, sp->ngeom, name))
        kind = OUT_GEOM;
    if (kind >= 0)
        project_spelling(sp, project_dir, name, final, n);
    return kind;
}

int spec_unchanged_input(const job_spec *sp, const char *project_dir, const char *name,
                         unsigned long long size, long long mtime_sec, long mtime_nsec)
{
    if (!spec_lists(sp->inputs, sp->ninputs, name))
        return 0;
    char src[8192];
    struct stat st;
    snprintf(src, sizeof src, "%s/%s", project_dir, name);
    return stat(src, &st) == 0 && (unsigned long long)st.st_size == size &&
           (long long)st.st_mtim.tv_sec == mtime_sec &&
           (mtime_nsec < 0 || st.st_mtim.tv_nsec == mtime_nsec);
}
