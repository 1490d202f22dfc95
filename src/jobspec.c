/* Questions workers ask of a job spec (see sched.h): which work-folder files
 * are outputs, which inputs the engine left as they were. */
#include "sched.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int spec_lists(char **list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

static int matches_any(char **pats, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (fnmatch(pats[i], name, 0) == 0)
            return 1;
    return 0;
}

int spec_output_kind(const job_spec *sp, const char *name, const char **final)
{
    *final = name;
    if (strcmp(name, sp->result_from) == 0) {
        *final = sp->result_to;
        return OUT_RESULT;
    }
    if (matches_any(sp->collect, sp->ncollect, name))
        return OUT_COLLECT;
    if (matches_any(sp->geom_files, sp->ngeom, name))
        return OUT_GEOM;
    return -1;
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
