/*
 * build.c: runs the C compiler on a compiled model (gradc build), builds
 * and runs gradient checks for a list of models (gradc check), and builds
 * and runs the timing program of gradc tune.
 *
 * The runtime is found relative to the gradc binary, whether it runs from
 * the build tree or from where `make install` put it; a build tree's gradc
 * makes it there first if it is missing (`make build/gradc` alone is a
 * working install).
 * Commands run through fork and exec with argument vectors, never a
 * shell, so no path is ever parsed as shell text.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gradc.h"

#ifndef GRADC_RT_CFLAGS
#define GRADC_RT_CFLAGS ""
#endif
#ifndef GRADC_RT_LIBS
#define GRADC_RT_LIBS "-lopenblas -lz"
#endif

typedef struct {
    char include[PATH_MAX]; /* rt.h and friends */
    char lib[PATH_MAX];     /* libgradc_rt.a */
    char mpi[PATH_MAX];     /* libgradc_mpi.a beside it, for gradc build --mpi */
} Runtime;

static bool exists(const char *path) { return access(path, R_OK) == 0; }

/* The runtime beside gradc: in a build tree (build/gradc, build/libgradc_rt.a,
 * runtime/ holding the headers; or build/san/...), or installed (PREFIX/bin/gradc,
 * PREFIX/lib/libgradc_rt.a, PREFIX/include/gradc/). */
static bool runtime_beside(Runtime *rt)
{
    static const char *const layouts[][2] = {
        {"%.4000s/libgradc_rt.a", "%.4000s/../runtime"},
        {"%.4000s/libgradc_rt.a", "%.4000s/../../runtime"},
        {"%.4000s/../lib/libgradc_rt.a", "%.4000s/../include/gradc"},
    };
    for (int i = 0; i < 3; i++) {
        char probe[PATH_MAX + 8];
        snprintf(rt->lib, sizeof rt->lib, layouts[i][0], gradc_dir());
        snprintf(rt->include, sizeof rt->include, layouts[i][1], gradc_dir());
        snprintf(probe, sizeof probe, "%.4000s/rt.h", rt->include);
        if (exists(rt->lib) && exists(probe)) {
            snprintf(rt->mpi, sizeof rt->mpi, "%.*s/libgradc_mpi.a",
                     (int)(strrchr(rt->lib, '/') - rt->lib), rt->lib);
            return true;
        }
    }
    return false;
}

/* Splits flags like "-I/x -lfoo" onto argv. */
static int add_words(const char **argv, int argc, char *words)
{
    for (char *w = strtok(words, " \t"); w; w = strtok(NULL, " \t"))
        argv[argc++] = w;
    return argc;
}

/* Runs argv[0] with stdout to `out` (a file, or NULL to keep it); returns
 * the exit status, or -1 if it could not run or did not exit. */
static int run(const char *const *argv, const char *out, bool verbose)
{
    if (verbose) {
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fprintf(stderr, "\n");
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (out && !freopen(out, "w", stdout))
            _exit(127);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "gradc: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool runtime_has(Runtime *rt, const char *lib)
{
    return runtime_beside(rt) && (strcmp(lib, "libgradc_mpi.a") || exists(rt->mpi));
}

/* In a build tree (TREE/B/gradc beside TREE/Makefile and TREE/runtime/),
 * runs `make -C TREE B/LIB` (libgradc_rt.a, or libgradc_mpi.a), as the
 * first gradc build after `make build/gradc` needs. Builds started at once
 * take turns on a lock on B, so that no two makes compile the same objects
 * together. -1 when gradc is in no build tree, else 0 when the library is
 * there and 1 when make failed. */
static int make_runtime(Runtime *rt, const char *lib)
{
    const char *dir = gradc_dir(), *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return -1;
    char tree[PATH_MAX], makefile[PATH_MAX + 16], header[PATH_MAX + 16], build[PATH_MAX + 8],
        target[PATH_MAX + 16];
    snprintf(tree, sizeof tree, "%.*s", (int)(slash - dir), dir);
    snprintf(makefile, sizeof makefile, "%s/Makefile", tree);
    snprintf(header, sizeof header, "%s/runtime/rt.h", tree);
    if (!exists(makefile) || !exists(header))
        return -1;
    snprintf(build, sizeof build, "BUILD=%s", slash + 1);
    snprintf(target, sizeof target, "%s/%s", slash + 1, lib);
    int lock = open(dir, O_RDONLY);
    if (lock < 0 || flock(lock, LOCK_EX)) {
        fprintf(stderr, "gradc: cannot lock %s to build the runtime: %s\n", dir, strerror(errno));
        if (lock >= 0)
            close(lock);
        return 1;
    }
    if (runtime_has(rt, lib)) { /* made by the build that held the lock */
        close(lock);
        return 0;
    }
    fprintf(stderr, "gradc: building the gradc runtime%s first: make -C %s %s\n",
            strcmp(lib, "libgradc_mpi.a") ? "" : "'s MPI part", tree, target);
    const char *argv[] = {"make", "--no-print-directory", "-C", tree, build, target, NULL};
    int status = run(argv, NULL, false);
    close(lock);
    return status ? 1 : 0;
}

/* The runtime beside gradc, made first in a build tree that lacks it;
 * false after saying what is missing. */
static bool find_runtime(Runtime *rt)
{
    if (runtime_beside(rt))
        return true;
    int made = make_runtime(rt, "libgradc_rt.a");
    if (made == 0 && runtime_beside(rt))
        return true;
    if (made > 0)
        fprintf(stderr, "gradc: could not build the gradc runtime (make said why above)\n");
    else
        fprintf(stderr,
                "gradc: cannot find the gradc runtime beside %s: run `make build/libgradc_rt.a` "
                "in the gradc tree, or `make install`\n",
                gradc_dir());
    return false;
}

/* The MPI part of the runtime and Open MPI's compiler, or false after
 * saying what is missing. */
static bool find_mpi(Runtime *rt)
{
    if (!exists(rt->mpi) && make_runtime(rt, "libgradc_mpi.a") < 0) {
        fprintf(stderr,
                "gradc: --mpi: cannot find %s: run `make build/libgradc_mpi.a` in the "
                "gradc tree, or `make install`\n",
                rt->mpi);
        return false;
    }
    if (!exists(rt->mpi)) {
        fprintf(stderr,
                "gradc: could not build the gradc runtime's MPI part (make said why above)\n");
        return false;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p; p += strcspn(p, ":") + (p[strcspn(p, ":")] == ':')) {
        char probe[PATH_MAX];
        snprintf(probe, sizeof probe, "%.*s/mpicc", (int)strcspn(p, ":"), p);
        if (access(probe, X_OK) == 0)
            return true;
    }
    fprintf(stderr, "gradc: --mpi needs Open MPI's mpicc: sudo apt-get install openmpi-bin "
                    "libopenmpi-dev\n");
    return false;
}

/* cc [-DREAL_DOUBLE] SOURCES... runtime -o EXE, with -IDIR when dir is set;
 * with mpi, Open MPI's mpicc and the runtime's MPI part. */
static int cc_sources(const Runtime *rt, const char *const *sources, const char *dir,
                      const char *exe, bool dbl, bool mpi, bool verbose)
{
    char inc_rt[PATH_MAX + 2], inc_dir[PATH_MAX + 2], cflags[] = GRADC_RT_CFLAGS,
                                                      libs[] = GRADC_RT_LIBS;
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (mpi) /* mpicc runs cc with Open MPI's flags (OMPI_CC names another) */
        cc = "mpicc";
    snprintf(inc_rt, sizeof inc_rt, "-I%s", rt->include);
    snprintf(inc_dir, sizeof inc_dir, "-I%s", dir ? dir : ".");
    const char *argv[64];
    int argc = 0;
    argv[argc++] = cc;
    argv[argc++] = "-std=c11";
    argv[argc++] = "-O2";
    /* Neither changes a result; without them loops of exp and tanh stay
     * scalar (rt_real.h). */
    argv[argc++] = "-fno-math-errno";
    argv[argc++] = "-fno-trapping-math";
    argv[argc++] = "-fopenmp"; /* --threads for the large loops (rt_real.h) */
    if (dbl)
        argv[argc++] = "-DREAL_DOUBLE";
    if (mpi)
        argv[argc++] = "-DRT_MPI";
    else /* -O2 alone leaves most of a model's loops scalar */
        argv[argc++] = "-fvect-cost-model=dynamic";
    argv[argc++] = inc_rt;
    if (dir)
        argv[argc++] = inc_dir;
    argc = add_words(argv, argc, cflags);
    while (*sources)
        argv[argc++] = *sources++;
    if (mpi)
        argv[argc++] = rt->mpi;
    argv[argc++] = rt->lib;
    argc = add_words(argv, argc, libs);
    argv[argc++] = "-lm";
    argv[argc++] = "-o";
    argv[argc++] = exe;
    argv[argc] = NULL;
    int status = run(argv, NULL, verbose);
    if (status)
        fprintf(stderr, "gradc: %s failed building %s (run with -v to see the command)\n", cc, exe);
    return status ? 1 : 0;
}

/* DIR/NAME_WHAT from DIR/NAME_WHAT.c and the model, DIR/NAME.c or, for
 * predict, DIR/NAME_infer.c (and its product twins, DIR/NAME_hvp.c and
 * DIR/NAME_jvp.c); with mpi, DIR/NAME_WHAT_mpi. */
static int cc_program(const Runtime *rt, const char *dir, const char *name, const char *what,
                      const char *model, bool dbl, bool mpi, unsigned products, bool verbose)
{
    char main_c[PATH_MAX], model_c[PATH_MAX], twin_c[N_PRODUCTS][PATH_MAX], exe[PATH_MAX];
    snprintf(main_c, sizeof main_c, "%s/%s_%s.c", dir, name, what);
    snprintf(model_c, sizeof model_c, "%s/%s%s.c", dir, name, model);
    snprintf(exe, sizeof exe, "%s/%s_%s%s", dir, name, what, mpi ? "_mpi" : "");
    const char *sources[3 + N_PRODUCTS] = {main_c, model_c};
    int n = 2;
    for (int k = 0; k < N_PRODUCTS; k++)
        if (products & (1u << k)) {
            snprintf(twin_c[k], sizeof twin_c[k], "%s/%s_%s.c", dir, name, product_kinds[k]);
            sources[n++] = twin_c[k];
        }
    return cc_sources(rt, sources, dir, exe, dbl, mpi, verbose);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

/* Without a shell or rm: it runs where PATH finds nothing, too. */
void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool runtime_found(void)
{
    Runtime rt;
    return find_runtime(&rt);
}

int build_programs(const char *dir, const char *name, Programs which, bool mpi, unsigned products,
                   bool verbose)
{
    Runtime rt;
    if (!find_runtime(&rt) || (mpi && !find_mpi(&rt)))
        return 1;
    bool dbl = which == DOUBLE_PROGRAMS;
    if (which != GRADCHECK_ONLY &&
        (cc_program(&rt, dir, name, "train", "", dbl, false, products, verbose) ||
         (mpi && cc_program(&rt, dir, name, "train", "", dbl, true, products, verbose)) ||
         cc_program(&rt, dir, name, "predict", "_infer", dbl, false, 0, verbose)))
        return 1;
    return cc_program(&rt, dir, name, "gradcheck", "", true, false, products, verbose);
}

/* ---- gradc tune ---- */

int run_tune_program(const char *const *products, int n, const char *out, bool verbose)
{
    Runtime rt;
    if (!find_runtime(&rt))
        return 1;
    char dir[] = "/tmp/gradc-tune-XXXXXX", main_c[64], exe[64];
    if (!mkdtemp(dir))
        die("cannot make a temporary folder: %s", strerror(errno));
    snprintf(main_c, sizeof main_c, "%s/tune.c", dir);
    snprintf(exe, sizeof exe, "%s/tune", dir);
    FILE *f = fopen(main_c, "w");
    if (!f)
        die("cannot write %s: %s", main_c, strerror(errno));
    fprintf(f, "#include \"rt.h\"\nint main(int argc, char **argv) { return rt_tune_main(argc, "
               "argv); }\n");
    fclose(f);
    const char *sources[] = {main_c, NULL};
    int status = cc_sources(&rt, sources, NULL, exe, false, false, verbose);
    if (status == 0) {
        const char **targv = xmalloc((n + 2) * sizeof *targv);
        targv[0] = exe;
        memcpy(targv + 1, products, n * sizeof *products);
        targv[n + 1] = NULL;
        status = run(targv, out, verbose);
        free(targv);
    }
    if (status)
        fprintf(stderr, "gradc: the timing program failed\n");
    remove_tree(dir);
    return status ? 1 : 0;
}

/* ---- gradc check ---- */

typedef struct {
    char model[64], param[64];
    double error;
    int checked, kinks;
    bool pass;
} CheckRow;

/* Reads the gradient check's lines: `NAME [shape]  checked N  kinks K
 * relative error E`, one per parameter. */
static int read_rows(const char *path, const char *model, double tol, CheckRow *rows, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        CheckRow r = {0};
        char shape[128];
        if (sscanf(line, "%63s %127s checked %d kinks %d relative error %lf", r.param, shape,
                   &r.checked, &r.kinks, &r.error) == 5) {
            snprintf(r.model, sizeof r.model, "%s", model);
            r.pass = r.error <= tol;
            rows[n++] = r;
        }
    }
    fclose(f);
    return n;
}

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++)
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
}

static int write_junit(const char *path, const CheckRow *rows, int n, double tol)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gradc: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < n; i++)
        failures += !rows[i].pass;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites>\n<testsuite name=\"gradc check\" tests=\"%d\" failures=\"%d\">\n",
            n, failures);
    for (int i = 0; i < n; i++) {
        fprintf(f, "  <testcase classname=\"");
        xml_escape(f, rows[i].model);
        fprintf(f, "\" name=\"");
        xml_escape(f, rows[i].param);
        fprintf(f, "\">");
        if (!rows[i].pass)
            fprintf(f, "<failure message=\"relative error %.3g &gt; %.3g\"/>", rows[i].error, tol);
        fprintf(f, "</testcase>\n");
    }
    fprintf(f, "</testsuite>\n</testsuites>\n");
    return fclose(f) ? 1 : 0;
}

int check_models(const char **models, int n_models,
                 int (*compile_to)(const char *, const char *, unsigned *), double tol,
                 const char *junit, bool verbose)
{
    CheckRow rows[512];
    int n = 0, status = 0;
    for (int m = 0; m < n_models; m++) {
        char dir[] = "/tmp/gradc-check-XXXXXX", exe[PATH_MAX], out[PATH_MAX];
        if (!mkdtemp(dir))
            die("cannot make a temporary folder: %s", strerror(errno));
        const char *base = strrchr(models[m], '/') ? strrchr(models[m], '/') + 1 : models[m];
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(strcspn(base, ".")), base);
        snprintf(exe, sizeof exe, "%s/%s_gradcheck", dir, name);
        snprintf(out, sizeof out, "%s/out.txt", dir);
        int got = 0;
        unsigned products;
        if (compile_to(models[m], dir, &products) == 0 &&
            build_programs(dir, name, GRADCHECK_ONLY, false, products, verbose) == 0) {
            char tol_s[40];
            snprintf(tol_s, sizeof tol_s, "%.17g", tol);
            const char *argv[] = {exe, "--tol", tol_s, NULL};
            run(argv, out, verbose);
            got = read_rows(out, name, tol, rows + n, 512 - n);
        }
        if (got == 0) {
            rows[n] = (CheckRow){.error = 1.0 / 0.0};
            snprintf(rows[n].model, sizeof rows[n].model, "%s", name);
            snprintf(rows[n].param, sizeof rows[n].param, "(did not run)");
            got = 1;
        }
        n += got;
        remove_tree(dir);
    }
    printf("%-20s %-20s %9s %6s %20s  %s\n", "model", "parameter", "checked", "kinks",
           "max relative error", "result");
    for (int i = 0; i < n; i++) {
        printf("%-20s %-20s %9d %6d %20.3g  %s\n", rows[i].model, rows[i].param, rows[i].checked,
               rows[i].kinks, rows[i].error, rows[i].pass ? "pass" : "FAIL");
        status |= !rows[i].pass;
    }
    if (junit && write_junit(junit, rows, n, tol))
        status = 1;
    return status;
}
