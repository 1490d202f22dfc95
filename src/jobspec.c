/* Questions workers ask of a job spec (see sched.h): which work-folder files
 * are outputs, which inputs the engine left as they were. */
#include "sched.h"

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

int spec_output_kind(const job_spec *sp, const char *name, const char **final)
{
    *final = name;
    if (strcasecmp(name, sp->result_from) == 0) {
        *final = sp->result_to;
        return OUT_RESULT;
    }
    if (spec_matches_any(sp->collect, sp->ncollect, name))
        return OUT_COLLECT;
    if (spec_matches_any(sp->geom_files, sp->ngeom, name))
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
    /* a work folder that keeps whole seconds (ext4 with small inodes, a
     * FAT or SMB mount) has no fraction to compare */
    return stat(src, &st) == 0 && (unsigned long long)st.st_size == size &&
           (long long)st.st_mtim.tv_sec == mtime_sec &&
           (mtime_nsec <= 0 || st.st_mtim.tv_nsec == mtime_nsec);
}
