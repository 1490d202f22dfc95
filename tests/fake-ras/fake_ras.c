/* fake-ras: a stand-in for the HEC-RAS engines, for tests, benchmarks and
 * rehearsing recipes where HEC-RAS is not installed. It behaves by the name
 * it is called under (see README.md in this folder):
 *
 *   Ras.exe -c "X.prj" "X.pNN"             Windows-style: result X.pNN.hdf beside the .prj
 *   RasUnsteady X.pNN.tmp.hdf xGG          Linux: results written into X.pNN.tmp.hdf
 *   RasGeomPreprocess X.pNN.tmp.hdf xGG    Linux: writes X.xGG
 *   fake-ras prepare X.prj X.pNN           the Linux inputs Windows would make
 *
 * The plan chooses what happens: `Fake RAS Mode=` (ok, crash, hang, unstable,
 * volume, silent, noresult, geomfail; MODE@WORKER applies only on the worker
 * named in RASRUN_WORKER) and `Fake RAS Seconds=` (simulated run time).
 * FAKE_RAS_MODE and FAKE_RAS_SECONDS override both for every plan;
 * FAKE_RAS_TIME_SHIFT (seconds) shifts the clock written into results;
 * FAKE_RAS_SHOW_CPU=1 prints the core the engine started on. */
#include "h5out.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define NCELLS 64
#define AREA "Sample 2D"

struct plan {
    char dir[PATH_MAX];     /* project folder */
    char name[256];         /* project stem: X in X.prj */
    char id[8];             /* p01 */
    char title[256], short_id[128], geom[16], flow[16], sim[128], version[64];
    char mode[64];
    double seconds;
    int write_detailed;
    int write_ic; /* Write IC File= 1: a restart file at the simulation's end */
};

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake-ras: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(code);
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = 0;
}

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src);
}

/* Reads the plan text file's keys that matter here. */
static void read_plan_text(struct plan *p, const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        die(2, "cannot read plan %s: %s", file, strerror(errno));
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
        while (*v == ' ')
            v++;
        if (!strcmp(k, "Plan Title")) copy(p->title, sizeof p->title, v);
        else if (!strcmp(k, "Short Identifier")) copy(p->short_id, sizeof p->short_id, v);
        else if (!strcmp(k, "Geom File")) copy(p->geom, sizeof p->geom, v);
        else if (!strcmp(k, "Flow File")) copy(p->flow, sizeof p->flow, v);
        else if (!strcmp(k, "Simulation Date")) copy(p->sim, sizeof p->sim, v);
        else if (!strcmp(k, "Program Version")) copy(p->version, sizeof p->version, v);
        else if (!strcmp(k, "Fake RAS Mode")) copy(p->mode, sizeof p->mode, v);
        else if (!strcmp(k, "Fake RAS Seconds")) p->seconds = atof(v);
        else if (!strcmp(k, "Write Detailed")) p->write_detailed = atoi(v) == 1;
        else if (!strcmp(k, "Write IC File")) p->write_ic = atoi(v) == 1;
    }
    fclose(f);
}

/* A DSS file as the flow file names it (".\\hydrology\\in.dss", relative to
 * the project folder) -> "hydrology/in.dss" in place. */
static void unix_relative(char *s)
{
    for (char *c = s; *c; c++)
        if (*c == '\\')
            *c = '/';
    while (s[0] == '.' && s[1] == '/')
        memmove(s, s + 2, strlen(s + 2) + 1);
}

/* Is rel (with '/') a file under dir, in any case of its parts, as for
 * Windows HEC-RAS? */
static int exists_any_case(const char *dir, const char *rel)
{
    char cur[PATH_MAX], part[256];
    copy(cur, sizeof cur, dir);
    while (*rel) {
        size_t n = strcspn(rel, "/");
        snprintf(part, sizeof part, "%.*s", (int)n, rel);
        rel += n + (rel[n] == '/');
        if (!part[0] || !strcmp(part, "."))
            continue;
        DIR *d = opendir(cur);
        struct dirent *e;
        int found = 0;
        while (d && (e = readdir(d)) && !found)
            if (!strcasecmp(e->d_name, part)) {
                size_t len = strlen(cur);
                snprintf(cur + len, sizeof cur - len, "/%s", e->d_name);
                found = 1;
            }
        if (d)
            closedir(d);
        if (!found)
            return 0;
    }
    return access(cur, R_OK) == 0;
}

/* What the plan's flow file needs from the working folder and is not there:
 * the restart file it starts from (Use Restart= -1, Restart Filename=, only
 * its name counts) or a DSS file a boundary reads (DSS File= then Use
 * DSS=True; a Windows drive path is not checked). "" when nothing. */
static void missing_flow_input(const struct plan *p, char *out, size_t n)
{
    char file[PATH_MAX * 2], line[4096], dss[1024] = "", name[1024] = "";
    snprintf(file, sizeof file, "%s/%s.%s", p->dir, p->name, p->flow);
    out[0] = 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    int use = 0;
    while (fgets(line, sizeof line, f)) {
        chomp(line);
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(line, "Use Restart"))
            use = atoi(v) != 0;
        else if (!strcmp(line, "Restart Filename"))
            copy(name, sizeof name, v);
        else if (!strcmp(line, "DSS File"))
            copy(dss, sizeof dss, v);
        else if (!strcmp(line, "Use DSS") && !strcasecmp(v, "True") && dss[0] && dss[1] != ':' && !out[0]) {
            unix_relative(dss);
            if (!exists_any_case(p->dir, dss))
                snprintf(out, n, "DSS file %s", dss);
        }
    }
    fclose(f);
    const char *base = name;
    for (const char *c = name; *c; c++)
        if (*c == '\\' || *c == '/')
            base = c + 1;
    if (!out[0] && use && *base && !exists_any_case(p->dir, base))
        snprintf(out, n, "restart file %s", base);
}

/* "X.pNN" path -> dir, name, id. */
static void split_plan_path(struct plan *p, const char *plan_path)
{
    char buf[PATH_MAX];
    copy(buf, sizeof buf, plan_path);
    copy(p->dir, sizeof p->dir, dirname(buf));
    copy(buf, sizeof buf, plan_path);
    char *base = basename(buf);
    /* the last ".pNN" part ("Muncie.v2.p01.tmp.hdf": the name keeps its dots) */
    char *dot = NULL;
    for (char *d = strchr(base, '.'); d; d = strchr(d + 1, '.'))
        if ((d[1] == 'p' || d[1] == 'P') && isdigit((unsigned char)d[2]) && isdigit((unsigned char)d[3]) &&
            (d[4] == 0 || d[4] == '.'))
            dot = d;
    if (!dot || dot == base)
        die(2, "%s: not a plan file name (X.pNN)", plan_path);
    *dot = 0;
    copy(p->name, sizeof p->name, base);
    snprintf(p->id, sizeof p->id, "p%.2s", dot + 2);
}

static int plan_number(const struct plan *p) { return atoi(p->id + 1); }

/* MODE or MODE@WORKER (the latter only when RASRUN_WORKER names that worker). */
static const char *effective_mode(const struct plan *p)
{
    static char mode[64];
    const char *env = getenv("FAKE_RAS_MODE");
    copy(mode, sizeof mode, env && *env ? env : p->mode[0] ? p->mode : "ok");
    char *at = strchr(mode, '@');
    if (at) {
        const char *w = getenv("RASRUN_WORKER");
        *at = 0;
        if (!w || strcmp(w, at + 1) != 0)
            return "ok";
    }
    return mode;
}

static double run_seconds(const struct plan *p)
{
    const char *env = getenv("FAKE_RAS_SECONDS");
    if (env && *env)
        return atof(env);
    return p->seconds > 0 ? p->seconds : 1.0;
}

static int is_507(const struct plan *p) { return p->version[0] == '5'; }

static const char *file_version(const struct plan *p)
{
    return is_507(p) ? "HEC-RAS 5.0.7 March 2019" : "HEC-RAS 6.6 September 2024";
}

/* The engine's clock: FAKE_RAS_TIME_SHIFT seconds are added, to make results
 * that look as if an earlier run wrote them. */
static time_t engine_now(void)
{
    const char *shift = getenv("FAKE_RAS_TIME_SHIFT");
    return time(NULL) + (shift ? atol(shift) : 0);
}

static void hec_time(char *out, size_t n, time_t t)
{
    static const char *mon[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                 "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(out, n, "%02d%s%04d %02d:%02d:%02d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void sleep_s(double s)
{
    struct timespec t = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* Takes the simulated time, reporting progress on stdout like the engine. */
static void simulate(const struct plan *p, double seconds)
{
    printf("Performing Unsteady Flow Simulation  %s\n", file_version(p));
    fflush(stdout);
    int steps = seconds >= 0.4 ? 4 : 1;
    for (int i = 1; i <= steps; i++) {
        sleep_s(seconds / steps);
        if (steps > 1) {
            printf("  Unsteady computations: %d%%\n", i * 100 / steps);
            fflush(stdout);
        }
    }
}

static void hang(void)
{
    printf("Performing Unsteady Flow Simulation (this one never ends)\n");
    fflush(stdout);
    signal(SIGTERM, SIG_IGN);
    /* A helper that left the process group, as stuck engine helpers do. */
    if (fork() == 0) {
        setsid();
        for (;;)
            pause();
    }
    for (;;)
        pause();
}

/* ---- result content ------------------------------------------------------ */

static void messages_text(char *out, size_t n, const struct plan *p, const char *mode, time_t t0,
                          int secs)
{
    char started[64];
    hec_time(started, sizeof started, t0);
    const char *nl = "\r\n";
    int k = snprintf(out, n, "Plan: '%s' (%s.%s)%sSimulation started at: %s%s"
                     "Writing Plan GIS Data...%sCompleted Writing Plan GIS Data%s"
                     "Writing Geometry...%s",
                     p->title, p->name, p->id, nl, started, nl, nl, nl, nl);
    if (!strcmp(mode, "geomfail")) {
        snprintf(out + k, n - (size_t)k, "Geometry Writer Failed%sError with program: "
                 "RasGeomPreprocess.exe  Exit Code = 1%s", nl, nl);
        return;
    }
    k += snprintf(out + k, n - (size_t)k, "Completed Writing Geometry%sWriting Event Conditions ...%s"
                  "Completed Writing Event Condition Data%s%sPerforming Unsteady Flow Simulation  %s%s%s",
                  nl, nl, nl, nl, file_version(p), nl, nl);
    if (!strcmp(mode, "silent")) {
        snprintf(out + k, n - (size_t)k, "ERROR: Unsteady flow computations did not converge;"
                 " computations aborted%s", nl);
        return;
    }
    if (!strcmp(mode, "crash")) {
        snprintf(out + k, n - (size_t)k, "Error with program: RasUnsteady.exe  Exit Code = "
                 "-1073741819%s", nl);
        return;
    }
    if (!strcmp(mode, "unstable"))
        k += snprintf(out + k, n - (size_t)k, "Unsteady Went Unstable at 02JAN1900 13:20:00%s", nl);
    snprintf(out + k, n - (size_t)k, "Finished Unsteady Flow Simulation%s%sComputations Summary%s%s"
             "Computation Task\tTime(hh:mm:ss)%sUnsteady Flow Computations\t%8d%s"
             "Complete Process\t%8d%s", nl, nl, nl, nl, nl, secs, nl, secs, nl);
}

static void hec_window_part(char *out, size_t n, const char *date, const char *hhmm)
{
    /* "02JAN1900", "2400" -> "02JAN1900 24:00:00" */
    snprintf(out, n, "%s %.2s:%.2s:00", date, hhmm, strlen(hhmm) >= 4 ? hhmm + 2 : "00");
}

static void write_plan_info(hid_t f, const struct plan *p)
{
    hid_t g = h5_group(f, "/Plan Data/Plan Information");
    char buf[512], a[64] = "02JAN1900 00:00:00", b[64] = "03JAN1900 00:00:00";
    h5_attr_str(g, "Plan Name", p->title);
    h5_attr_str(g, "Plan Title", p->title);
    h5_attr_str(g, "Plan ShortID", p->short_id);
    snprintf(buf, sizeof buf, "%s.%s", p->name, p->id);
    h5_attr_str(g, "Plan Filename", buf);
    snprintf(buf, sizeof buf, "%s.%s", p->name, p->geom);
    h5_attr_str(g, "Geometry Filename", buf);
    snprintf(buf, sizeof buf, "%s.%s", p->name, p->flow);
    h5_attr_str(g, "Flow Filename", buf);
    char d1[16], t1[8], d2[16], t2[8];
    if (sscanf(p->sim, "%15[^,],%7[^,],%15[^,],%7s", d1, t1, d2, t2) == 4) {
        hec_window_part(a, sizeof a, d1, t1);
        hec_window_part(b, sizeof b, d2, t2);
    }
    h5_attr_str(g, "Simulation Start Time", a);
    h5_attr_str(g, "Simulation End Time", b);
    snprintf(buf, sizeof buf, "%s to %s", a, b);
    h5_attr_str(g, "Time Window", buf);
    H5Gclose(g);
}

static void write_root(hid_t f, const struct plan *p)
{
    hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
    h5_attr_str(root, "File Type", "HEC-RAS Results");
    h5_attr_str(root, "File Version", file_version(p));
    h5_attr_str(root, "Units System", "US Customary");
    H5Gclose(root);
}

static void write_volume(hid_t summary, const struct plan *p, double pct)
{
    double start = 1250.0 + plan_number(p), err = start * pct / 100.0;
    if (is_507(p)) {
        h5_attr_str(summary, "Vol Accounting", "Volume Accounting in Acre Feet");
        h5_attr_f32(summary, "Vol Accounting Error Percentage", (float)pct);
        h5_attr_f32(summary, "Vol Accounting Error", (float)err);
        h5_attr_f32(summary, "Vol Accounting Cell Start", (float)start);
        h5_attr_f32(summary, "Vol Accounting Cell End", (float)(start + 12.5));
        return;
    }
    hid_t va = h5_group(summary, "Volume Accounting");
    h5_attr_str(va, "Vol Accounting in", "Acre Feet");
    h5_attr_f64(va, "Error Percent", pct);
    h5_attr_f64(va, "Error", err);
    h5_attr_f64(va, "Volume Starting", start);
    h5_attr_f64(va, "Volume Ending", start + 12.5);
    hid_t v1 = h5_group(va, "Volume Accounting 1D");
    h5_attr_f64(v1, "Error Percent", pct / 2);
    H5Gclose(v1);
    hid_t v2 = h5_group(va, "Volume Accounting 2D/" AREA);
    h5_attr_f64(v2, "Error Percent", pct);
    H5Gclose(v2);
    H5Gclose(va);
}

static void write_maxima(hid_t f, const struct plan *p)
{
    float data[2 * NCELLS];
    for (int i = 0; i < NCELLS; i++) {
        data[i] = (float)(600.0 + plan_number(p) * 0.5 + 2.0 * sin(i * 0.3));
        data[NCELLS + i] = (float)(0.5 + i * 0.01);
    }
    h5_dataset_f32(f, "/Results/Unsteady/Output/Output Blocks/Base Output/Summary Output/"
                      "2D Flow Areas/" AREA "/Maximum Water Surface", 2, NCELLS, data);
}

/* Writes what the mode produces into an open result file. */
static void write_results(hid_t f, const struct plan *p, const char *mode, time_t t0, time_t t1)
{
    static char msgs[8192];
    messages_text(msgs, sizeof msgs, p, mode, t0, (int)(t1 - t0));
    if (H5Lexists(f, "/Results", H5P_DEFAULT) > 0)
        H5Ldelete(f, "/Results", H5P_DEFAULT);
    h5_dataset_text(f, "/Results/Summary/Compute Messages (text)", msgs);
    if (!strcmp(mode, "silent") || !strcmp(mode, "geomfail") || !strcmp(mode, "crash"))
        return; /* a failed run leaves only Results/Summary */
    write_root(f, p);
    write_plan_info(f, p);
    hid_t s = h5_group(f, "/Results/Unsteady/Summary");
    char a[64], b[64], w[160], total[16];
    hec_time(a, sizeof a, t0);
    hec_time(b, sizeof b, t1);
    snprintf(w, sizeof w, "%s to %s", a, b);
    snprintf(total, sizeof total, "00:00:%02d", (int)(t1 - t0) % 60);
    int unstable = !strcmp(mode, "unstable");
    h5_attr_str(s, "Solution", unstable ? "Unsteady Went Unstable" : "Unsteady Finished Successfully");
    h5_attr_str(s, "Computation Time Total", total);
    h5_attr_str(s, "Run Time Window", w);
    h5_attr_f32(s, "Maximum WSEL Error", unstable ? 12.7f : 0.004f);
    h5_attr_f32(s, "Time Solution Went Unstable", unstable ? 13.333f : NAN);
    h5_attr_str(s, "Time Stamp Solution Went Unstable", unstable ? "02JAN1900 13:20:00" : "Not Applicable");
    write_volume(s, p, !strcmp(mode, "volume") ? 5.3 : 0.0012 + plan_number(p) * 0.0001);
    H5Gclose(s);
    write_maxima(f, p);
}

static void write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die(2, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void side_path(char *out, size_t n, const struct plan *p, const char *ext)
{
    snprintf(out, n, "%s/%s.%s", p->dir, p->name, ext);
}

/* ---- engines -------------------------------------------------------------- */

static int finish_failure(const char *mode, int windows)
{
    if (!strcmp(mode, "crash")) {
        fprintf(stderr, "forrtl: severe (174): SIGSEGV, segmentation fault occurred\n");
        return windows ? 3 : 174;
    }
    if (!strcmp(mode, "geomfail"))
        return 1;
    return 0;
}

static int ras_exe(int argc, char **argv)
{
    const char *prj = NULL, *plan_file = NULL;
    for (int i = 1; i + 2 < argc; i++)
        if (!strcmp(argv[i], "-c")) {
            prj = argv[i + 1];
            plan_file = argv[i + 2];
            break;
        }
    if (!prj || !plan_file)
        die(2, "usage: Ras.exe -c \"<project.prj>\" \"<project.pNN>\"");
    if (access(prj, R_OK) != 0)
        die(2, "cannot read project %s: %s", prj, strerror(errno));
    struct plan p = { 0 };
    split_plan_path(&p, plan_file);
    read_plan_text(&p, plan_file);
    const char *mode = effective_mode(&p);
    time_t t0 = engine_now();
    printf("Plan: '%s' (%s.%s)\nSimulation started at: %s", p.title, p.name, p.id, ctime(&t0));
    fflush(stdout);
    char need[1100], path[PATH_MAX * 2], tmp[PATH_MAX * 2];
    missing_flow_input(&p, need, sizeof need);
    if (need[0]) {
        printf("ERROR: %s not found\n", need);
        return 1;
    }
    if (!strcmp(mode, "hang"))
        hang();
    /* Geometry preprocessor outputs, shared by the plans of a geometry. */
    char gnum[8];
    snprintf(gnum, sizeof gnum, "c%.2s", p.geom + 1);
    side_path(path, sizeof path, &p, gnum);
    write_text_file(path, "fake preprocessed geometry\n");
    simulate(&p, strcmp(mode, "geomfail") ? run_seconds(&p) : 0);
    if (!strcmp(mode, "noresult"))
        return 0;
    snprintf(tmp, sizeof tmp, "%s/%s.%s.tmp.hdf", p.dir, p.name, p.id);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        die(2, "cannot create %s", tmp);
    write_results(f, &p, mode, t0, engine_now());
    H5Fclose(f);
    snprintf(path, sizeof path, "%s/%s.%s.hdf", p.dir, p.name, p.id);
    if (rename(tmp, path) != 0)
        die(2, "cannot rename %s: %s", tmp, strerror(errno));
    if (p.write_detailed) {
        static char msgs[8192];
        messages_text(msgs, sizeof msgs, &p, mode, t0, (int)(engine_now() - t0));
        snprintf(path, sizeof path, "%s/%s.%s.computeMsgs.txt", p.dir, p.name, p.id);
        write_text_file(path, msgs);
    }
    char bco[16];
    snprintf(bco, sizeof bco, "bco%.2s", p.id + 1);
    side_path(path, sizeof path, &p, bco);
    write_text_file(path, "fake unsteady log\n");
    /* the end of "Simulation Date=02JAN1900,0000,03JAN1900,0000" names it */
    char day[32], hhmm[16];
    if (p.write_ic && !strcmp(mode, "ok") &&
        sscanf(p.sim, "%*[^,],%*[^,],%31[^,],%15s", day, hhmm) == 2) {
        snprintf(path, sizeof path, "%s/%s.%s.%s %s.rst", p.dir, p.name, p.id, day, hhmm);
        write_text_file(path, "fake restart file\n");
    }
    printf("Finished Unsteady Flow Simulation\n");
    return finish_failure(mode, 1);
}

/* Reads the plan facts `prepare` stored in the tmp HDF. */
static void read_plan_hdf(struct plan *p, hid_t f)
{
    const char *pi = "/Plan Data/Plan Information";
    char buf[256];
    h5_read_attr_str(f, pi, "Plan Title", p->title, sizeof p->title);
    h5_read_attr_str(f, pi, "Plan ShortID", p->short_id, sizeof p->short_id);
    if (h5_read_attr_str(f, pi, "Geometry Filename", buf, sizeof buf) && strrchr(buf, '.'))
        copy(p->geom, sizeof p->geom, strrchr(buf, '.') + 1);
    if (h5_read_attr_str(f, pi, "Flow Filename", buf, sizeof buf) && strrchr(buf, '.'))
        copy(p->flow, sizeof p->flow, strrchr(buf, '.') + 1);
    h5_read_attr_str(f, "/Fake RAS", "Mode", p->mode, sizeof p->mode);
    h5_read_attr_str(f, "/Fake RAS", "Simulation Date", p->sim, sizeof p->sim);
    h5_read_attr_str(f, "/Fake RAS", "Program Version", p->version, sizeof p->version);
    if (h5_read_attr_str(f, "/Fake RAS", "Seconds", buf, sizeof buf))
        p->seconds = atof(buf);
}

/* Linux engines take "X.pNN.tmp.hdf xGG" relative to the working folder. */
static void linux_args(struct plan *p, int argc, char **argv, const char *prog)
{
    if (argc != 3)
        die(2, "usage: %s <project>.pNN.tmp.hdf xGG", prog);
    const char *tmp = argv[1];
    size_t n = strlen(tmp);
    if (n < 12 || strcasecmp(tmp + n - 8, ".tmp.hdf") != 0)
        die(2, "%s: expected <project>.pNN.tmp.hdf, got %s", prog, tmp);
    char plan_path[PATH_MAX];
    snprintf(plan_path, sizeof plan_path, "%.*s", (int)(n - 8), tmp);
    split_plan_path(p, plan_path);
    if (access(tmp, R_OK | W_OK) != 0)
        die(2, "%s: cannot open %s: %s", prog, tmp, strerror(errno));
}

/* The Linux engine reads its text inputs with LF line ends only. */
static int has_cr(const char *path)
{
    FILE *fp = fopen(path, "rb");
    int c, found = 0;
    while (fp && !found && (c = getc(fp)) != EOF)
        found = c == '\r';
    if (fp)
        fclose(fp);
    return found;
}

static int ras_unsteady(int argc, char **argv)
{
    struct plan p = { 0 };
    linux_args(&p, argc, argv, "RasUnsteady");
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        die(2, "RasUnsteady: %s is not a readable HDF5 file", argv[1]);
    read_plan_hdf(&p, f);
    char need[PATH_MAX * 2], ext[16];
    snprintf(ext, sizeof ext, "b%.2s", p.id + 1);
    side_path(need, sizeof need, &p, ext);
    if (access(need, R_OK) != 0) {
        H5Fclose(f);
        die(2, "RasUnsteady: boundary file %s not found", need);
    }
    if (has_cr(need)) {
        H5Fclose(f);
        die(2, "RasUnsteady: boundary file %s has Windows line ends (CR LF): the Linux engine "
               "reads it only without CR", need);
    }
    side_path(need, sizeof need, &p, argv[2]);
    if (access(need, R_OK) != 0) {
        H5Fclose(f);
        die(2, "RasUnsteady: preprocessed geometry %s not found (run RasGeomPreprocess)", need);
    }
    const char *mode = effective_mode(&p);
    time_t t0 = engine_now();
    printf("RasUnsteady: plan '%s' (%s.%s)\n", p.title, p.name, p.id);
    fflush(stdout);
    if (!strcmp(mode, "hang")) {
        H5Fclose(f);
        hang();
    }
    simulate(&p, strcmp(mode, "geomfail") ? run_seconds(&p) : 0);
    if (!strcmp(mode, "crash")) {
        H5Fclose(f);
        return finish_failure(mode, 0);
    }
    if (strcmp(mode, "noresult") != 0)
        write_results(f, &p, mode, t0, engine_now());
    H5Fclose(f);
    printf("Finished Unsteady Flow Simulation\n");
    return finish_failure(mode, 0);
}

static int ras_geom_preprocess(int argc, char **argv)
{
    struct plan p = { 0 };
    linux_args(&p, argc, argv, "RasGeomPreprocess");
    char out[PATH_MAX * 2];
    side_path(out, sizeof out, &p, argv[2]);
    sleep_s(0.05);
    write_text_file(out, "fake preprocessed geometry\n");
    printf("RasGeomPreprocess: wrote %s\n", out);
    return 0;
}

/* What Windows HEC-RAS leaves for a Linux run: X.pNN.tmp.hdf, X.bNN, X.xGG. */
static int prepare(int argc, char **argv)
{
    if (argc != 3)
        die(2, "usage: fake-ras prepare X.prj X.pNN");
    struct plan p = { 0 };
    split_plan_path(&p, argv[2]);
    read_plan_text(&p, argv[2]);
    char path[PATH_MAX * 2], ext[32];
    snprintf(path, sizeof path, "%s/%s.%s.tmp.hdf", p.dir, p.name, p.id);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        die(2, "cannot create %s", path);
    write_root(f, &p);
    write_plan_info(f, &p);
    hid_t g = h5_group(f, "/Fake RAS");
    h5_attr_str(g, "Mode", p.mode[0] ? p.mode : "ok");
    h5_attr_str(g, "Simulation Date", p.sim);
    h5_attr_str(g, "Program Version", p.version);
    char secs[32];
    snprintf(secs, sizeof secs, "%g", p.seconds);
    h5_attr_str(g, "Seconds", secs);
    H5Gclose(g);
    H5Fclose(f);
    snprintf(ext, sizeof ext, "b%.2s", p.id + 1);
    side_path(path, sizeof path, &p, ext);
    write_text_file(path, "fake boundary conditions\n");
    snprintf(ext, sizeof ext, "x%.2s", p.geom + 1);
    side_path(path, sizeof path, &p, ext);
    write_text_file(path, "fake preprocessed geometry\n");
    return 0;
}

static const char *HELP =
    "fake-ras: simulated HEC-RAS engines (see tests/fake-ras/README.md)\n"
    "  Ras.exe -c X.prj X.pNN | RasUnsteady X.pNN.tmp.hdf xGG |\n"
    "  RasGeomPreprocess X.pNN.tmp.hdf xGG | fake-ras prepare X.prj X.pNN\n"
    "Plan keys: Fake RAS Mode=ok|crash|hang|unstable|volume|silent|noresult|geomfail[@WORKER]\n"
    "           Fake RAS Seconds=N   (FAKE_RAS_SECONDS overrides)\n";

int main(int argc, char **argv)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *show_cpu = getenv("FAKE_RAS_SHOW_CPU");
    if (show_cpu && !strcmp(show_cpu, "1")) {
        printf("started on cpu %d\n", sched_getcpu());
        fflush(stdout);
    }
    char self[PATH_MAX];
    copy(self, sizeof self, argv[0]);
    const char *name = basename(self);
    if (!strcasecmp(name, "Ras.exe") || !strcasecmp(name, "Ras"))
        return ras_exe(argc, argv);
    if (!strcmp(name, "RasUnsteady") || !strcmp(name, "RasUnsteady64"))
        return ras_unsteady(argc, argv);
    if (!strcmp(name, "RasGeomPreprocess"))
        return ras_geom_preprocess(argc, argv);
    if (!strcmp(name, "RasSteady"))
        die(2, "RasSteady: steady flow is not simulated; use Ras.exe for steady plans");
    if (argc >= 2 && !strcmp(argv[1], "prepare"))
        return prepare(argc - 1, argv + 1);
    fputs(HELP, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
}
