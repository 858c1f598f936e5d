/*
 * test_safety.c: real trainers against hostile files, sudden death and
 * valgrind.
 *
 * Hostile files: every tests/hostile/data/NAME with a NAME.expect beside
 * it is a case. After its '#' comment lines, a .expect holds the command
 * (a program in BUILD_DIR and its arguments, '@' standing for the case
 * file) and the one line the program must print to stderr. Each run also
 * gets --steps 5 and a --checkpoint, --log and --export in a scratch
 * folder that already holds that checkpoint, so a refusal that came too
 * late would write something. It must exit 1, print that line and nothing
 * else (stdout too stays empty), and leave the scratch folder and the case
 * folder byte for byte as they were. docs/hostile.md lists the cases.
 *
 * Crashes: a trainer saving every step is killed with SIGKILL at seeded
 * random moments, each run resuming the last one's checkpoint. After each
 * kill the checkpoint must load, hold the last step the run finished or
 * the one before (the save it died in), and the next run must go on from
 * exactly there; at the end, the checkpoint the killed runs add up to
 * must equal, byte for byte, the one of a run that was never killed.
 * GRADC_CRASH_SEED=N replays another sequence of kill times.
 *
 * Valgrind (SAFETY_VALGRIND, which only the plain build defines: valgrind
 * cannot run ASan code): a short training with every file flag, a resume,
 * a prediction, a gradient check and two refused files, each with no
 * invalid access and no definite leak.
 */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "test_util.h"

#define CASES "tests/hostile/data"

/* ---- running programs ---- */

enum { MAX_ARGS = 64 };

typedef struct {
    char *v[MAX_ARGS + 1];
    int n;
} Args;

/* Copies s (argv owns its strings; args_free frees them). */
static void push(Args *a, const char *s)
{
    ck_assert_int_lt(a->n, MAX_ARGS);
    a->v[a->n++] = strdup(s);
    a->v[a->n] = NULL;
}

static void push_prog(Args *a, const char *prog)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", BUILD_DIR, prog);
    push(a, path);
}

static void args_free(Args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

/* Starts a program with stdout and stderr going to files; no shell, so
 * no quoting. */
static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* The exit status, or 128 + the signal that ended it, as a shell says. */
static int wait_for(pid_t pid)
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run(const Args *a, const char *out, const char *err)
{
    return wait_for(spawn(a->v, out, err));
}

/* A whole file, NUL-terminated (an empty string if it is missing). */
static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        rewind(f);
    }
    buf = malloc(n + 1);
    ck_assert_ptr_nonnull(buf);
    if (f) {
        ck_assert_uint_eq(fread(buf, 1, n, f), n);
        fclose(f);
    }
    buf[n] = 0;
    if (len)
        *len = (long)n;
    return buf;
}

/* ---- what a folder holds ---- */

static uint64_t fnv(const char *p, long n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (long i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3u;
    return h;
}

static void snapshot_into(FILE *s, const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    ck_assert_msg(n >= 0, "cannot list %s", dir);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (strcmp(name, ".") && strcmp(name, "..") && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                fprintf(s, "%s/ {\n", name);
                snapshot_into(s, path);
                fprintf(s, "}\n");
            } else {
                long len;
                char *bytes = slurp(path, &len);
                fprintf(s, "%s %ld %016llx\n", name, len, (unsigned long long)fnv(bytes, len));
                free(bytes);
            }
        }
        free(list[i]);
    }
    free(list);
}

/* Every file in a folder, with its size and a hash of its bytes, as text. */
static char *snapshot(const char *dir)
{
    char *text;
    size_t len;
    FILE *s = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(s);
    snapshot_into(s, dir);
    ck_assert_int_eq(fclose(s), 0);
    return text;
}

/* ---- hostile files ---- */

enum { MAX_CASES = 256 };
static char *cases[MAX_CASES]; /* the case files' names, from main */
static int n_cases;

static int is_expect(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 7 && strcmp(e->d_name + n - 7, ".expect") == 0;
}

static void find_cases(void)
{
    struct dirent **list;
    int n = scandir(CASES, &list, is_expect, alphasort);
    if (n < 0) {
        fprintf(stderr, "test_safety: cannot list %s: %s\n", CASES, strerror(errno));
        exit(EXIT_FAILURE);
    }
    for (int i = 0; i < n; i++) {
        if (n_cases < MAX_CASES)
            cases[n_cases++] = strndup(list[i]->d_name, strlen(list[i]->d_name) - 7);
        free(list[i]);
    }
    free(list);
}

/* s with every '@' replaced by file (malloc'd). */
static char *expand(const char *s, const char *file)
{
    size_t n = strlen(s) + 1;
    for (const char *p = s; *p; p++)
        n += *p == '@' ? strlen(file) : 0;
    char *r = malloc(n), *q = r;
    for (; *s; s++) {
        if (*s == '@')
            q = stpcpy(q, file);
        else
            *q++ = *s;
    }
    *q = 0;
    return r;
}

/* The .expect file's command and expected line, '@' expanded. */
static void read_expect(const char *name, const char *file, char **cmd, char **line)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.expect", CASES, name);
    char *text = slurp(path, NULL), *save = NULL;
    *cmd = *line = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#')
            continue;
        if (!*cmd)
            *cmd = expand(l, file);
        else if (!*line)
            *line = expand(l, file);
    }
    free(text);
    ck_assert_msg(*cmd && *line, "%s: needs a command line and an expected line", path);
}

START_TEST(hostile_file)
{
    const char *name = cases[_i];
    char file[512], *cmd, *want;
    snprintf(file, sizeof file, "%s/%s", CASES, name);
    read_expect(name, file, &cmd, &want);

    char *tmp = make_tmpdir(), dir[600], keep[700], p[700], out[600], err[600];
    snprintf(dir, sizeof dir, "%s/run", tmp);
    snprintf(keep, sizeof keep, "%s/keep.ckpt", dir);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(err, sizeof err, "%s/err", tmp);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_text(keep, "a checkpoint from an earlier run, which a refused file must not touch\n");

    Args a = {0};
    char *save = NULL;
    for (char *w = strtok_r(cmd, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (a.n == 0)
            push_prog(&a, w);
        else
            push(&a, w);
    }
    push(&a, "--steps");
    push(&a, "5");
    push(&a, "--checkpoint");
    push(&a, keep);
    push(&a, "--log");
    snprintf(p, sizeof p, "%s/log.csv", dir);
    push(&a, p);
    push(&a, "--export");
    snprintf(p, sizeof p, "%s/export", dir);
    push(&a, p);

    char *dir_before = snapshot(dir), *cases_before = snapshot(CASES);
    int status = run(&a, out, err);
    char *said = slurp(err, NULL), *printed = slurp(out, NULL);
    ck_assert_msg(status == 1, "%s: exit %d, said: %s", name, status, said);
    size_t n = strlen(want);
    ck_assert_msg(strncmp(said, want, n) == 0 && said[n] == '\n' && said[n + 1] == 0,
                  "%s: expected the one line\n%s\ngot\n%s", name, want, said);
    ck_assert_msg(printed[0] == 0, "%s: printed on stdout: %s", name, printed);
    char *dir_after = snapshot(dir), *cases_after = snapshot(CASES);
    ck_assert_msg(strcmp(dir_before, dir_after) == 0, "%s: the run folder changed:\n%s\nto\n%s",
                  name, dir_before, dir_after);
    ck_assert_msg(strcmp(cases_before, cases_after) == 0, "%s: %s changed", name, CASES);

    free(dir_before), free(dir_after), free(cases_before), free(cases_after);
    free(said), free(printed), free(cmd), free(want);
    args_free(&a);
    remove_dir(tmp);
}
END_TEST

/* ---- crashes ---- */

enum { KILLS = 16 };

/* The first and last step of a --log file's complete rows; 0 and 0 for none. */
static void logged_steps(const char *path, long *first, long *last)
{
    char *text = slurp(path, NULL);
    *first = *last = 0;
    for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        long n;
        if (sscanf(p, "%ld,", &n) == 1) {
            if (!*first)
                *first = n;
            *last = n;
        }
    }
    free(text);
}

/* iris_train on the shipped iris data, seed 7, with more arguments. */
static void iris_args(Args *a, const char *more[])
{
    push_prog(a, "iris_train");
    push(a, "--data");
    push(a, "x=data/iris.csv");
    push(a, "--data");
    push(a, "labels=data/iris.csv");
    push(a, "--seed");
    push(a, "7");
    for (int i = 0; more[i]; i++)
        push(a, more[i]);
}

/* The step of checkpoint ck, as the trainer says it when resuming from it
 * (which proves it loads); fails the test if it does not load. */
static long resume_step(const char *ck, const char *out, const char *err, const char *why)
{
    Args a = {0};
    iris_args(&a, (const char *[]){"--resume", ck, "--steps", "1", NULL});
    int status = run(&a, out, err);
    char *said = slurp(err, NULL);
    ck_assert_msg(status == 0, "%s: %s does not load (exit %d): %s", why, ck, status, said);
    const char *at = strstr(said, " at step ");
    long step = -1;
    ck_assert_msg(strstr(said, "resumed from") && at && sscanf(at, " at step %ld", &step) == 1,
                  "%s: %s", why, said);
    free(said);
    args_free(&a);
    return step;
}

START_TEST(killed_mid_save)
{
    const char *env = getenv("GRADC_CRASH_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 1, r = seed * 0x9e3779b97f4a7c15u + 1;
    char *tmp = make_tmpdir(), ck[600], log[600], out[600], err[600], why[200];
    snprintf(ck, sizeof ck, "%s/c.ckpt", tmp);
    snprintf(log, sizeof log, "%s/log.csv", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(err, sizeof err, "%s/err", tmp);
    long saved = 0; /* the checkpoint's step; 0 while there is none */
    for (int k = 0; k < KILLS; k++) {
        snprintf(why, sizeof why, "GRADC_CRASH_SEED=%llu, kill %d", (unsigned long long)seed, k);
        Args a = {0};
        iris_args(&a, (const char *[]){"--steps", "1000000", "--save-every", "1", "--checkpoint",
                                       ck, "--print-every", "1", "--log", log, NULL});
        if (saved) {
            push(&a, "--resume");
            push(&a, ck);
        }
        /* xorshift64: 20 to 300 ms, through start-up, steps and saves */
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        long ms = 20 + (long)(r % 281);
        unlink(log); /* a run killed before it opens its log leaves none */
        pid_t pid = spawn(a.v, out, err);
        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000}, NULL);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int status = wait_for(pid);
        char *said = slurp(err, NULL);
        ck_assert_msg(status == 128 + SIGKILL, "%s: the run ended on its own (%d): %s", why, status,
                      said);
        free(said);
        args_free(&a);

        long first, last;
        logged_steps(log, &first, &last);
        if (!file_exists(ck)) { /* killed before its first save */
            ck_assert_msg(saved == 0 && last <= 1, "%s: step %ld done, no checkpoint", why, last);
            continue;
        }
        long step = resume_step(ck, out, err, why);
        if (last) {
            /* It went on from the checkpoint, and lost at most the step
             * whose save it died in. */
            ck_assert_msg(first == saved + 1, "%s: resumed at step %ld, checkpoint at %ld", why,
                          first, saved);
            ck_assert_msg(step == last || step == last - 1,
                          "%s: last step done %ld, checkpoint at step %ld", why, last, step);
        } else
            ck_assert_msg(step == saved, "%s: no step done, checkpoint %ld -> %ld", why, saved,
                          step);
        saved = step;
    }
    ck_assert_msg(saved > 0, "no checkpoint in %d runs: is the trainer that slow?", KILLS);

    /* A few more steps from there equal a run that never stopped. */
    char steps[32], ref[600];
    snprintf(steps, sizeof steps, "%ld", saved + 3);
    snprintf(ref, sizeof ref, "%s/ref.ckpt", tmp);
    Args a = {0}, b = {0};
    iris_args(&a, (const char *[]){"--resume", ck, "--steps", steps, "--checkpoint", ck, NULL});
    ck_assert_int_eq(run(&a, out, err), 0);
    iris_args(&b, (const char *[]){"--steps", steps, "--checkpoint", ref, NULL});
    ck_assert_int_eq(run(&b, out, err), 0);
    long n1, n2;
    char *got = slurp(ck, &n1), *want = slurp(ref, &n2);
    ck_assert_msg(n1 == n2 && n1 > 0 && memcmp(got, want, (size_t)n1) == 0,
                  "GRADC_CRASH_SEED=%llu: the killed runs' checkpoint differs from one run's",
                  (unsigned long long)seed);
    free(got), free(want);
    args_free(&a), args_free(&b);

    /* Nothing else is left behind but a kill's stray temporary files. */
    struct dirent **list;
    int n = scandir(tmp, &list, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        const char *f = list[i]->d_name;
        ck_assert_msg(!strcmp(f, ".") || !strcmp(f, "..") || !strcmp(f, "c.ckpt") ||
                          !strcmp(f, "ref.ckpt") || !strcmp(f, "log.csv") || !strcmp(f, "out") ||
                          !strcmp(f, "err") || !strncmp(f, "c.ckpt.tmp.", 11),
                      "left behind: %s", f);
        free(list[i]);
    }
    free(list);
    remove_dir(tmp);
}
END_TEST

/* ---- valgrind ---- */

#ifdef SAFETY_VALGRIND
/* prog and its arguments under valgrind: the exit status it expects, no
 * invalid access, no definite leak. */
static void valgrind(int want, const char *prog, const char *more[])
{
    char *tmp = make_tmpdir(), out[600], err[600];
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(err, sizeof err, "%s/err", tmp);
    Args a = {0};
    push(&a, "/usr/bin/env");
    push(&a, "valgrind");
    push(&a, "-q");
    push(&a, "--error-exitcode=99");
    push(&a, "--leak-check=full");
    push(&a, "--errors-for-leak-kinds=definite");
    push(&a, "--show-leak-kinds=definite");
    push_prog(&a, prog);
    for (int i = 0; more[i]; i++)
        push(&a, more[i]);
    int status = run(&a, out, err);
    char *said = slurp(err, NULL);
    ck_assert_msg(status == want && !strstr(said, "=="), "%s: exit %d (want %d): %s", prog, status,
                  want, said);
    free(said);
    args_free(&a);
    remove_dir(tmp);
}

START_TEST(under_valgrind)
{
    /* Valgrind cannot run AVX-512: OpenBLAS's Haswell kernels are AVX2, and
     * a CPU without AVX2 gets the SSE3 ones. Set either way, the variable
     * also keeps the programs from running themselves again (blas.c),
     * which valgrind would not follow. */
    __builtin_cpu_init();
    setenv("OPENBLAS_CORETYPE", __builtin_cpu_supports("avx2") ? "Haswell" : "Prescott", 1);
    char *tmp = make_tmpdir(), ck[600], log[600], exp[600], pred[600];
    snprintf(ck, sizeof ck, "%s/v.ckpt", tmp);
    snprintf(log, sizeof log, "%s/log.csv", tmp);
    snprintf(exp, sizeof exp, "%s/export", tmp);
    snprintf(pred, sizeof pred, "%s/classes.csv", tmp);
    valgrind(0, "iris_train",
             (const char *[]){"--data", "x=data/iris.csv", "--data", "labels=data/iris.csv",
                              "--steps", "30", "--val-split", "0.2", "--checkpoint", ck,
                              "--save-every", "10", "--log", log, "--export", exp, NULL});
    valgrind(0, "iris_train",
             (const char *[]){"--data", "x=data/iris.csv", "--data", "labels=data/iris.csv",
                              "--steps", "40", "--resume", ck, "--checkpoint", ck, NULL});
    valgrind(0, "iris_predict",
             (const char *[]){"--checkpoint", ck, "--data", "x=data/iris.csv", "--argmax", "--out",
                              pred, NULL});
    valgrind(0, "iris_gradcheck", (const char *[]){NULL});
    /* Refusals free what they had read. */
    valgrind(1, "iris_train",
             (const char *[]){"--data", "x=data/iris.csv", "--data",
                              "labels=" CASES "/csv_label_out_of_range.csv", NULL});
    valgrind(1, "iris_train", (const char *[]){"--resume", CASES "/ckpt_nan_params.ckpt", NULL});
    remove_dir(tmp);
}
END_TEST
#endif

/* ---- model files ---- */

/* Runs gradc (no shell: any path is one argument) with these arguments;
 * its exit status, and what it said on stderr in *err. */
static int gradc(const char *const more[], char **err, const char *scratch)
{
    Args a = {0};
    char out[512], errf[512];
    push(&a, GRADC_BIN);
    for (const char *const *m = more; *m; m++)
        push(&a, *m);
    snprintf(out, sizeof out, "%s/gradc.out", scratch);
    snprintf(errf, sizeof errf, "%s/gradc.err", scratch);
    int status = run(&a, out, errf);
    args_free(&a);
    *err = slurp(errf, NULL);
    remove(out);
    remove(errf);
    return status;
}

/* A hostile model file, the line it must get, and flags for gradc compile
 * (lower limits, so that the endless cases end sooner). Each is written
 * to bad.lua beside lib/broken.lua, a module of 64 KiB that raises an
 * error. A NULL message: the model is valid and must compile. Every case
 * is in docs/hostile.md. */
typedef struct {
    const char *what, *model, *message, *flags;
} HostileModel;

#define VALID_TAIL                                                                                 \
    "local x = input(\"x\", {2, 2})\nlocal w = param(\"w\", {2, 2}, randn())\n"                    \
    "return model { loss = sum(x:matmul(w)) }\n"
#define WITH_OPTIMIZER(o)                                                                          \
    "local x = input(\"x\", {2, 2})\nlocal w = param(\"w\", {2, 2}, randn())\n" o                  \
    "return model { loss = sum(x:matmul(w)), optimizer = o }\n"

static const HostileModel hostile_models[] = {
    /* Finalizers and close handlers */
    {"a finalizer", "setmetatable({}, {__gc = function() while true do end end})\n",
     "bad.lua:1: setmetatable: a __gc finalizer is not allowed in a model file", NULL},
    {"a finalizer added after setmetatable (Lua never runs it)",
     "local mt = {}\nlocal t = setmetatable({}, mt)\n"
     "mt.__gc = function() error(\"late\") end\n" VALID_TAIL,
     NULL, NULL},
    {"a close handler that loops",
     "do local c <close> = setmetatable({}, {__close = function() while true do end end}) end\n",
     "bad.lua:1: the model ran for more than 1000000 Lua instructions",
     "--max-instructions 1000000"},
    {"a close handler that raises",
     "do local c <close> = setmetatable({}, {__close = function() error(\"closing\") end}) end\n",
     "bad.lua:1: closing", NULL},
    /* CPU time, in Lua and inside the library's C functions */
    {"long calls in a loop",
     "local s = string.rep(\"x\", 1 << 24)\nwhile true do local u = s:upper() end\n",
     "bad.lua:2: the model ran for more than 1 s of CPU time", "--max-seconds 1"},
    {"a pattern that backtracks (find)",
     "local s = string.rep(\"a\", 5000)\nlocal at = s:find(\".-.-.-.-b\")\n",
     "bad.lua:2: the model ran for more than 1 s of CPU time, inside one call", "--max-seconds 1"},
    {"a pattern that backtracks (gsub)",
     "local s = string.rep(\"a\", 5000)\nlocal t = s:gsub(\"a*a*a*a*b\", \"\")\n",
     "bad.lua:2: the model ran for more than 1 s of CPU time, inside one call", "--max-seconds 1"},
    {"a pattern that backtracks (match)",
     "local s = string.rep(\"a\", 5000)\nlocal t = s:match(\"(.-)(.-)(.-)(.-)b\")\n",
     "bad.lua:2: the model ran for more than 1 s of CPU time, inside one call", "--max-seconds 1"},
    {"pcall recursing both ways", "local function f() pcall(f) pcall(f) end\nf()\n",
     "bad.lua:1: the model ran for more than 1 s of CPU time", "--max-seconds 1"},
    {"a huge table.concat",
     "local s, t = string.rep(\"x\", 1 << 20), {}\nfor i = 1, 1000 do t[i] = s end\n"
     "local all = table.concat(t)\n",
     "bad.lua:3: the model used more than 64 MiB of memory", "--max-memory 64"},
    {"a huge string.rep with a separator", "local s = string.rep(\"x\", 1 << 23, \"yy\")\n",
     "bad.lua:1: the model used more than 16 MiB of memory", "--max-memory 16"},
    /* Memory outside Lua's allocator */
    {"import of a failing module, again and again",
     "for i = 1, 100000 do pcall(import, \"broken\") end\n",
     "bad.lua:1: the model used more than 32 MiB of memory", "--max-memory 32"},
    {"a long local name on a million nodes", NULL, /* made in the test: the name is 1 MB */
     "bad.lua:3: the model used more than 64 MiB of memory", "--max-memory 64"},
    {"undefined names, again and again",
     "for i = 1, 1e9 do pcall(function() return nothing_here end) end\n",
     "bad.lua:1: the model ran for more than 1000000 Lua instructions",
     "--max-instructions 1000000"},
    /* The return table's fields, read where they are used */
    {"an optimizer setting added after sgd{}",
     WITH_OPTIMIZER("local o = sgd{lr = 0.1}\no.bogus = 1\n"),
     "bad.lua:5: sgd: unknown setting 'bogus'", NULL},
    {"an optimizer setting of the empty name", WITH_OPTIMIZER("local o = sgd{}\no[\"\"] = 1\n"),
     "bad.lua:5: sgd: unknown setting ''", NULL},
    {"an optimizer's kind made huge", WITH_OPTIMIZER("local o = adam{}\no.optimizer = 1e8\n"),
     "bad.lua:5: model: optimizer must be sgd{...}", NULL},
    {"an optimizer's kind made negative", WITH_OPTIMIZER("local o = adam{}\no.optimizer = -1\n"),
     "bad.lua:5: model: optimizer must be sgd{...}", NULL},
    {"an optimizer that is a number", WITH_OPTIMIZER("local o = 1e8\n"),
     "bad.lua:4: model: optimizer must be sgd{...}", NULL},
    {"a learning rate made NaN", WITH_OPTIMIZER("local o = adam{}\no.lr = 0/0\n"),
     "bad.lua:5: adam: lr must be a finite number >= 0", NULL},
    {"an infinite learning rate", WITH_OPTIMIZER("local o = adam{lr = math.huge}\n"),
     "bad.lua:3: adam: lr must be a finite number >= 0", NULL},
    {"an initializer's kind changed",
     "local i = randn(1)\ni.init = \"bogus\"\nlocal w = param(\"w\", {2, 2}, i)\n",
     "bad.lua:3: param: 'w' needs an initializer", NULL},
    {"an initializer's number made a string",
     "local i = uniform(0, 1)\ni.a = \"x\"\nlocal w = param(\"w\", {2, 2}, i)\n",
     "bad.lua:3: param: the initializer of 'w' needs a finite number as its a", NULL},
    {"a NaN initializer", "local w = param(\"w\", {2, 2}, randn(0/0))\n",
     "bad.lua:1: param: the initializer of 'w' needs a finite number as its b", NULL},
    /* Numbers the C cannot hold */
    {"a NaN constant", "local x = input(\"x\", {2, 2})\nlocal y = x + 0/0\n",
     "bad.lua:2: a constant: nan is not a finite number", NULL},
    {"an infinite constant", "local x = input(\"x\", {2, 2})\nlocal y = x * math.huge\n",
     "bad.lua:2: a constant: inf is not a finite number", NULL},
    {"an infinite exponent", "local x = input(\"x\", {2, 2})\nlocal y = x ^ -math.huge\n",
     "bad.lua:2: pow: -inf is not a finite number", NULL},
    /* Memory that Lua's collector recovers is no limit */
    {"garbage the collector recovers",
     "for i = 1, 200 do local s = string.rep(\"x\", 1 << 20) end\n"
     "assert(not pcall(error, \"caught\"))\n" VALID_TAIL,
     NULL, "--max-memory 16"},
    /* Every error names file:line, and nothing a terminal acts on */
    {"error({})", "local x = 1\nerror({})\n",
     "bad.lua:2: the model raised an error that is a table, not a message", NULL},
    {"error(42)", "error(42)\n", "bad.lua:1: the model raised an error that is a number", NULL},
    {"error with no position", "local x = 1\nerror(\"no place\", 0)\n", "bad.lua:2: no place",
     NULL},
    {"control bytes in a message", "error(\"\\27[2J\\27]0;owned\\7\")\n",
     "bad.lua:1: \\x1b[2J\\x1b]0;owned\\x07", NULL},
    {"a precompiled chunk", "\033Lua\x54\x00\x19\x93\r\n\x1a\n",
     "bad.lua:1: a precompiled Lua chunk: a model file is Lua source text", NULL},
    {"nesting too deep to parse", NULL, /* made in the test */ "bad.lua:1: ", NULL},
    {"C stack overflow while running",
     "local t = setmetatable({}, {__index = function(t, k) return t[k] end})\nlocal v = t.x\n",
     "bad.lua:1: ", NULL},
    {"a shape whose __len lies",
     "local x = input(\"x\", setmetatable({}, {__len = function() return 1e18 end}))\n",
     "bad.lua:1: input: 'x' needs a batch dimension first", NULL},
    {"a shape whose __index lies",
     "local s = setmetatable({2}, {__index = function() return 2^40 end})\n"
     "local x = input(\"x\", s)\nlocal y = x:reshape(setmetatable({}, {__len = function() return 3 "
     "end}))\n",
     "bad.lua:3: reshape: ", NULL},
    {"a fractional dimension", "local x = input(\"x\", {2, 2.5})\n",
     "bad.lua:1: input: dimension 2 must be a positive integer, got 2.5", NULL},
    {"a list too long", "local x = input(\"x\", {1, 1, 1, 1, 1, 1, 1})\n",
     "bad.lua:1: input: a list of 7 is more than the 6 it takes", NULL},
    {"C1 controls in a message", "error(\"\\xc2\\x9b31m \\x9b2J \\xc3\\xa9\")\n",
     "bad.lua:1: \\xc2\\x9b31m \\x9b2J \xc3\xa9", NULL},
    /* Files that are not files: a FIFO would wait for a writer forever */
    {"a FIFO where a module would be", "local y = fifo\n", "bad.lua:1: 'fifo' is not defined",
     NULL},
    {"importing a FIFO", "local f = import(\"fifo\")\n", "bad.lua:1: import: no module 'fifo'",
     NULL},
    /* Found by an attack on the sandbox */
    {"layer_norm of a scalar",
     "local x = input(\"x\", {4, 3})\nlocal g = param(\"g\", {2}, ones())\n"
     "local y = layer_norm(sum(x), g, g)\n",
     "bad.lua:3: layer_norm: x needs at least one axis", NULL},
    {"a hundred thousand constants (the back end stays linear)", NULL, NULL, NULL},
};

/* The model file of a case the table cannot hold as a literal. */
static char *case_model(const HostileModel *c)
{
    if (c->model)
        return strdup(c->model);
    size_t big = 1 << 20;
    char *m = malloc(2 * big + 256), *out = m;
    if (strstr(c->what, "constants")) {
        out += sprintf(out, "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 2}, "
                            "randn(0.1))\nlocal y = x:matmul(w)\nfor i = 1, 100000 do y = y + i "
                            "end\nreturn model { loss = sum(y) }\n");
    } else if (strstr(c->what, "local name")) {
        out += sprintf(out, "local x = input(\"x\", {2})\nlocal ");
        memset(out, 'n', big), out += big;
        out += sprintf(out, " = x\nfor i = 1, 2000000 do ");
        memset(out, 'n', big), out += big;
        sprintf(out, " = x + i end\n");
    } else { /* deep nesting */
        out += sprintf(out, "local x = ");
        memset(out, '(', 100000), out += 100000;
        out += sprintf(out, "1");
        memset(out, ')', 100000), out += 100000;
        sprintf(out, "\n");
    }
    return m;
}

START_TEST(hostile_model)
{
    const HostileModel *c = &hostile_models[_i];
    char *dir = make_tmpdir(), path[600], cmd[2048], *said;
    snprintf(path, sizeof path, "%s/lib", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/lib/broken.lua", dir);
    char *module = malloc(70000);
    memset(module, '-', 65536);
    strcpy(module + 65536, "\nerror(\"broken\")\n");
    write_text(path, module);
    free(module);
    snprintf(path, sizeof path, "%s/lib/fifo.lua", dir);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    char *model = case_model(c);
    snprintf(path, sizeof path, "%s/bad.lua", dir);
    write_text(path, model);
    free(model);
    /* A hang (exit 124) fails the case as surely as a wrong line. */
    snprintf(cmd, sizeof cmd, "cd '%s' && timeout 120 %s/%s compile bad.lua -o out %s", dir,
             getenv("PWD"), GRADC_BIN, c->flags ? c->flags : "");
    int status = run_cmd(cmd, &said);
    snprintf(path, sizeof path, "%s/out", dir);
    if (!c->message) {
        ck_assert_msg(status == 0, "%s: exit %d, said: %.2000s", c->what, status, said);
        ck_assert_msg(file_exists(path), "%s: wrote no %s", c->what, path);
    } else
        assert_refused(c->what, status, said, c->message, path);
    free(said);
    remove_dir(dir);
}
END_TEST

/* A model that prints without end is cut at 64 KiB (and each print at
 * 4 KiB), then stopped by the time limit: its output stays small. */
START_TEST(prints_are_capped)
{
    char *dir = make_tmpdir(), path[600], cmd[2048], *said;
    snprintf(path, sizeof path, "%s/bad.lua", dir);
    write_text(path, "while true do print(string.rep(\"y\", 100000), \"\\27[2J\") end\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && %s/%s compile bad.lua -o out --max-seconds 1", dir,
             getenv("PWD"), GRADC_BIN);
    ck_assert_int_eq(run_cmd(cmd, &said), 1);
    size_t len = strlen(said);
    ck_assert_msg(len > 65536 && len < 70000, "printed %zu bytes", len);
    ck_assert_msg(!strchr(said, '\033'), "an escape byte reached the terminal");
    ck_assert_msg(strstr(said, "... (a model prints at most 4096 bytes a call, 65536 in all)\n"),
                  "no word of the cut");
    const char *last = said + len - 1;
    while (last > said && last[-1] != '\n')
        last--;
    const char *stop = "bad.lua:1: the model ran for more than 1 s of CPU time";
    ck_assert_msg(!strncmp(last, stop, strlen(stop)), "the last line is %s", last);
    free(said);
    remove_dir(dir);
}
END_TEST

/* How often the front end read a Lua local to name values, for a model
 * of `locals` tensor locals and a loop of `loop` turns, each making a
 * value or not: gradc print --stats says. */
static long locals_read(int locals, int loop, bool makes, const char *dir)
{
    char path[600], cmd[1200], *said;
    size_t cap = 512 + (size_t)locals * 48;
    char *model = malloc(cap), *out = model;
    out +=
        sprintf(out, "local x = input(\"x\", {2, 2})\nlocal w = param(\"w\", {2, 2}, randn())\n");
    for (int i = 2; i < locals; i++)
        out += sprintf(out, "local a%d = x * %d\n", i, i);
    sprintf(out,
            "for i = 1, %d do local y = %s end\nlocal h = x:matmul(w)\n"
            "return model { loss = sum(h) }\n",
            loop, makes ? "x + i" : "i * 2");
    snprintf(path, sizeof path, "%s/locals.lua", dir);
    write_text(path, model);
    free(model);
    snprintf(cmd, sizeof cmd, "%s print --stats %s", GRADC_BIN, path);
    ck_assert_int_eq(run_cmd(cmd, &said), 0);
    const char *at = strstr(said, "locals that hold them: ");
    ck_assert_msg(at, "no count of locals read: %s", said);
    long n = atol(at + strlen("locals that hold them: "));
    free(said);
    return n;
}

/* The per-line hook that names values after their locals costs nothing
 * on lines that make no value, however many locals there are (it read
 * every local on every line: with 190 locals, `while true do end` ran
 * 100 times slower), and a few reads per value made, as many with 190
 * locals as with 2; and values are named as before: `local h = ...` is
 * the C's h. */
START_TEST(naming_cost_is_linear)
{
    char *dir = make_tmpdir();
    ck_assert_int_eq(locals_read(190, 200000, false, dir), locals_read(190, 100000, false, dir));
    ck_assert_int_eq(locals_read(2, 200000, false, dir), locals_read(2, 100000, false, dir));
    for (int locals = 2; locals <= 190; locals += 188) {
        long per_value =
            (locals_read(locals, 2000, true, dir) - locals_read(locals, 1000, true, dir)) / 1000;
        ck_assert_msg(per_value <= 30, "%d locals: %ld reads per value made", locals, per_value);
    }
    char cmd[1200], path[700], *c;
    snprintf(cmd, sizeof cmd, "%s compile %s/locals.lua -o %s", GRADC_BIN, dir, dir);
    ck_assert_int_eq(run_cmd(cmd, NULL), 0);
    snprintf(path, sizeof path, "%s/locals.c", dir);
    c = slurp(path, NULL);
    ck_assert_msg(strstr(c, "static real *const h = arena"), "h is not named h");
    free(c);
    remove_dir(dir);
}
END_TEST

/* A model whose folder is named to close the string literal it is quoted
 * in and add a constructor that runs a command, and whose lines and
 * module hold comment delimiters, a trigraph and control bytes, compiles
 * to C that builds with -Werror and only names them: the trainer runs
 * no command and prints the path as it was given. */
START_TEST(path_is_data)
{
    char *tmp = make_tmpdir(), dir[1024], path[1200], out[1200], cmd[16384], *said;
    snprintf(dir, sizeof dir,
             "%s/x\"};__attribute__((constructor)) void f(void){system(\"touch pwned\");}", tmp);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    strcat(dir, "/*");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/lib", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/lib/layer.lua", dir);
    write_text(path, "return function(x, w) return x:matmul(w) --[[ */ system(\"x\"); /* ]] end\n");
    snprintf(path, sizeof path, "%s/m.lua", dir);
    write_text(path, "local layer = import(\"layer\")\n"
                     "local x = input(\"x\", {4, 3}) -- */ #include </etc/passwd> /*\n"
                     "local w = param(\"w\", {3, 2}, randn()) -- ?\?/ \"\\\001\033[2J\n"
                     "local h = layer(x, w) --[[ ends in a backslash \\ ]]\n"
                     "return model { loss = sum(h * h) }\n");
    snprintf(out, sizeof out, "%s/out", tmp);
    ck_assert_msg(gradc((const char *[]){"compile", path, "-o", out, NULL}, &said, tmp) == 0,
                  "gradc compile: %s", said);
    free(said);
    snprintf(cmd, sizeof cmd,
             "%s -Iruntime -I%s %s/m.c %s/m_train.c %s %s -o %s/m_train && cd %s && "
             "out/m_train --help",
             TEST_CC, out, out, out, RT_LIB, TEST_LIBS, out, tmp);
    char *printed;
    int status = run_cmd(cmd, &printed);
    ck_assert_msg(status == 0, "the C does not build or run: %.3000s", printed);
    ck_assert_msg(strstr(printed, path), "the trainer does not name %s: %s", path, printed);
    snprintf(path, sizeof path, "%s/pwned", tmp);
    ck_assert_msg(!file_exists(path), "the generated C ran a command");
    free(printed);
    remove_dir(tmp);
}
END_TEST

/* Builds a compiled model's trainer (float) and gradient check (double)
 * with -Wall -Wextra -Werror; NULL, or what the compiler said. */
static char *build_model(const char *dir, const char *name)
{
    char cmd[8192], *said;
    snprintf(cmd, sizeof cmd,
             "cd %s && %s -I%s/runtime -I. %s.c %s_train.c %s/%s %s -o %s_train && "
             "%s -DREAL_DOUBLE -I%s/runtime -I. %s.c %s_gradcheck.c %s/%s %s -o %s_gradcheck",
             dir, TEST_CC, getenv("PWD"), name, name, getenv("PWD"), RT_LIB, TEST_LIBS, name,
             TEST_CC, getenv("PWD"), name, name, getenv("PWD"), RT_LIB, TEST_LIBS, name);
    if (run_cmd(cmd, &said) == 0) {
        free(said);
        return NULL;
    }
    return said;
}

/* Every identifier in text, once each, appended to names. */
static int add_identifiers(const char *text, char ***names, int n)
{
    for (const char *c = text; *c;) {
        if (*c == '"' || *c == '\'') { /* a literal: no names inside */
            char q = *c++;
            while (*c && *c != q && *c != '\n')
                c += c[0] == '\\' && c[1] ? 2 : 1;
            c += *c == q;
        } else if (isalpha((unsigned char)*c) || *c == '_') {
            const char *start = c;
            while (isalnum((unsigned char)*c) || *c == '_')
                c++;
            if (c - start <= 64) {
                *names = realloc(*names, (n + 1) * sizeof **names);
                (*names)[n++] = strndup(start, c - start);
            }
        } else if (isdigit((unsigned char)*c)) { /* a number: 1e5f is no name */
            while (isalnum((unsigned char)*c) || *c == '_' || *c == '.')
                c++;
        } else
            c++;
    }
    return n;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool lua_keyword(const char *s)
{
    static const char *const kw[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                     "false", "for",   "function", "goto",  "if",     "in",
                                     "local", "nil",   "not",      "or",    "repeat", "return",
                                     "then",  "true",  "until",    "while", NULL};
    for (const char *const *k = kw; *k; k++)
        if (!strcmp(*k, s))
            return true;
    return false;
}

/* Names a model may choose that C, its headers or the generated code
 * already use: every identifier that the headers the generated C
 * includes declare or define (cc -E and -dM), that the generated code of
 * every model in generated/ says, and C's keywords up to C23. As param,
 * local and output names, each must be renamed in the C (or refused), and
 * the C must compile with -Werror. In parts of 800 names, a model each. */
START_TEST(clashing_names_build)
{
    char *tmp = make_tmpdir(), path[600], cmd[4096], *text;
    snprintf(path, sizeof path, "%s/probe.c", tmp);
    write_text(path, "#include <string.h>\n#include \"rt_real.h\"\n");
    char **names = NULL;
    int n = add_identifiers("auto break case char const continue default do double else enum "
                            "extern float for goto if inline int long register restrict return "
                            "short signed sizeof static struct switch typedef union unsigned void "
                            "volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic "
                            "_Imaginary _Noreturn _Static_assert _Thread_local alignas alignof "
                            "bool constexpr false nullptr static_assert thread_local true typeof "
                            "typeof_unqual _BitInt _Decimal32 __LINE__ __FILE__ __func__ NULL "
                            "names_model names_model_f32 names_model_f64 names_infer_model "
                            "names_infer_model_f32 names_infer_model_f64 NAMES_H",
                            &names, 0);
    const char *sources[] = {"-E", "-E -dM"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s -Iruntime %s %s", TEST_CC, sources[k], path);
        ck_assert_int_eq(run_cmd(cmd, &text), 0);
        n = add_identifiers(text, &names, n);
        free(text);
    }
    ck_assert_int_eq(run_cmd("cat generated/*/*.c", &text), 0);
    n = add_identifiers(text, &names, n);
    free(text);
    qsort(names, n, sizeof *names, by_name);
    int unique = 0;
    for (int i = 0; i < n; i++)
        if (unique == 0 || strcmp(names[i], names[unique - 1]))
            names[unique++] = names[i];
        else
            free(names[i]);
    ck_assert_int_gt(unique, 2000); /* the headers were read */
    enum { PART = 800 };
    for (int first = 0; first < unique; first += PART) {
        int last = first + PART < unique ? first + PART : unique;
        size_t cap = 256 + (size_t)(last - first) * 300;
        char *model = malloc(cap), *out = model;
        /* The model's own locals may not be shadowed by the names tried. */
        out += sprintf(out, "local Q_sum, Q_param, Q_zeros = sum, param, zeros\n"
                            "local Q_x = input(\"Q_x\", {2, 3})\n"
                            "local Q_loss = Q_sum(Q_x)\n");
        for (int i = first; i < last; i++)
            out += sprintf(out,
                           "do local %s = Q_x:matmul(Q_param(\"%s\", {3, 2}, Q_zeros())) "
                           "Q_loss = Q_loss + Q_sum(%s) end\n",
                           lua_keyword(names[i]) ? "v" : names[i], names[i],
                           lua_keyword(names[i]) ? "v" : names[i]);
        out += sprintf(out, "return model { loss = Q_loss, outputs = {");
        for (int i = first; i < last && i < first + 40; i++)
            out += sprintf(out, " [\"%s\"] = Q_x + %d,", names[i], i);
        sprintf(out, " } }\n");
        snprintf(path, sizeof path, "%s/names.lua", tmp);
        write_text(path, model);
        free(model);
        snprintf(cmd, sizeof cmd, "%s compile %s -o %s", GRADC_BIN, path, tmp);
        char *said;
        ck_assert_msg(run_cmd(cmd, &said) == 0, "names %s..%s: %s", names[first], names[last - 1],
                      said);
        free(said);
        /* Only compiled, so without the sanitizers: they change no
         * warning, and make the compile of a part several times slower. */
        snprintf(cmd, sizeof cmd, "cd %s && %s -O0 -I%s/runtime -c names.c", tmp, PLAIN_CC,
                 getenv("PWD"));
        ck_assert_msg(run_cmd(cmd, &said) == 0, "names %s..%s: the C does not build: %.3000s",
                      names[first], names[last - 1], said);
        free(said);
    }
    for (int i = 0; i < unique; i++)
        free(names[i]);
    free(names);
    remove_dir(tmp);
}
END_TEST

/* Odd but valid models: file names that are C's or the runtime's own
 * words, and numbers at the ends of float's range and past them. Each
 * compiles, and its C builds with -Werror. */
START_TEST(odd_models_build)
{
    static const char *const files[] = {"int",   "rt",          "real",  "main",  "NULL",
                                        "arena", "training",    "float", "model", "x__LINE__",
                                        "r_exp", "cblas_sgemm", "t0",    "REAL",  "RT",
                                        "RT_MODEL", "CBLAS", "STRING", NULL};
    static const char numbers[] =
        "local x = input(\"x\", {2, 3})\n"
        "local w = param(\"w\", {3, 2}, uniform(-1e30, 1e30))\n"
        "local h = x:matmul(w) * 1e300 + 1e-300 - 5e-324 + 3.4028234663852886e38\n"
        "local k = h * -0.0 + 1e38 * 10 - 2^-149 + h / 1e-45\n"
        "return model { loss = sum(k) + sum(x:matmul(w) * 1e20 * 1e20) }\n";
    char *tmp = make_tmpdir(), path[600], cmd[1200], *said;
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s.lua", tmp, files[i]);
        write_text(path, numbers);
        snprintf(cmd, sizeof cmd, "%s compile %s -o %s", GRADC_BIN, path, tmp);
        int status = run_cmd(cmd, &said);
        /* Refused, with one line, or built. */
        if (status == 1) {
            ck_assert_msg(strncmp(said, path, strlen(path)) == 0 && strchr(said, '\n')[1] == 0,
                          "%s: not one line naming the file: %s", files[i], said);
            free(said);
            continue;
        }
        ck_assert_msg(status == 0, "%s: exit %d: %s", files[i], status, said);
        free(said);
        said = build_model(tmp, files[i]);
        ck_assert_msg(!said, "%s: the C does not build: %.3000s", files[i], said);
    }
    remove_dir(tmp);
}
END_TEST

/* Small valid models whose gradients fold to constants that reach row
 * kernels, a placed window or a parameter's gradient (an attack on the
 * sandbox found each made C that did not build): each builds, -Werror. */
START_TEST(folded_gradients_build)
{
    static const char *const models[] = {
        "local ids = input(\"ids\", {4}, \"int32\")\nlocal emb = param(\"emb\", {7, 3}, "
        "randn(0.1))\nreturn model { loss = sum(embedding(emb, ids)) }\n",
        "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 2}, randn(0.1))\n"
        "return model { loss = sum(dropout(x:matmul(w), 0.5)) }\n",
        "local img = input(\"img\", {4, 2, 6, 6})\nlocal k = param(\"k\", {1}, ones())\n"
        "return model { loss = sum(avg_pool2d(img * k, 2)) }\n",
        "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 3}, randn(0.1))\n"
        "local m = x:matmul(w)\nreturn model { loss = sum(causal_mask(m:matmul(m:t()))) }\n",
        "local x = input(\"x\", {4, 3})\nlocal b = param(\"b\", {3}, zeros())\n"
        "return model { loss = sum(x) * 0 + sum(b) + sum(b:slice(1, 1, 2)) }\n",
        NULL};
    char *tmp = make_tmpdir(), path[600], cmd[1200], *said;
    for (int i = 0; models[i]; i++) {
        snprintf(path, sizeof path, "%s/folded.lua", tmp);
        write_text(path, models[i]);
        snprintf(cmd, sizeof cmd, "%s compile %s -o %s", GRADC_BIN, path, tmp);
        ck_assert_msg(run_cmd(cmd, &said) == 0, "model %d: %s", i, said);
        free(said);
        said = build_model(tmp, "folded");
        ck_assert_msg(!said, "model %d: the C does not build: %.3000s", i, said);
    }
    remove_dir(tmp);
}
END_TEST

/* Files that are not regular files are refused at once (a FIFO would
 * wait, /dev/zero never end); and a stop inside one call of Lua's library
 * names a path with control bytes escaped, on one line. */
START_TEST(odd_files_and_paths)
{
    char *tmp = make_tmpdir(), path[1000], cmd[2048], *said;
    snprintf(path, sizeof path, "%s/zero.lua", tmp);
    ck_assert_int_eq(symlink("/dev/zero", path), 0);
    snprintf(cmd, sizeof cmd, "timeout 60 %s compile %s -o %s/out", GRADC_BIN, path, tmp);
    ck_assert_int_eq(run_cmd(cmd, &said), 1);
    ck_assert_msg(strstr(said, "zero.lua:1: not a regular file\n"), "%s", said);
    free(said);
    snprintf(path, sizeof path, "%s/fifo.lua", tmp);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    snprintf(cmd, sizeof cmd, "timeout 60 %s compile %s -o %s/out", GRADC_BIN, path, tmp);
    ck_assert_int_eq(run_cmd(cmd, &said), 1);
    ck_assert_msg(strstr(said, "fifo.lua:1: not a regular file\n"), "%s", said);
    free(said);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/odd\033[31mRED\nsecond", tmp);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/m.lua", dir);
    write_text(path, "local at = (\"a\"):rep(5000):find(\".-.-.-.-b\")\n");
    Args a = {0};
    push(&a, GRADC_BIN);
    push(&a, "compile");
    push(&a, path);
    push(&a, "-o");
    snprintf(path, sizeof path, "%s/out", tmp);
    push(&a, path);
    push(&a, "--max-seconds");
    push(&a, "1");
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/stdout", tmp);
    snprintf(err, sizeof err, "%s/stderr", tmp);
    ck_assert_int_eq(run(&a, out, err), 1);
    args_free(&a);
    said = slurp(err, NULL);
    ck_assert_msg(strstr(said, "odd\\x1b[31mRED\\x0asecond/m.lua:1: the model ran for more than 1 s"),
                  "%s", said);
    ck_assert_msg(strchr(said, '\n') == said + strlen(said) - 1, "not one line: %s", said);
    free(said);
    remove_dir(tmp);
}
END_TEST

int main(void)
{
    find_cases();
    Suite *s = suite_create("safety");
    TCase *t = tcase_create("hostile");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, hostile_file, 0, n_cases);
    suite_add_tcase(s, t);
    t = tcase_create("model files");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, hostile_model, 0, sizeof hostile_models / sizeof *hostile_models);
    tcase_add_test(t, prints_are_capped);
    tcase_add_test(t, naming_cost_is_linear);
    tcase_add_test(t, path_is_data);
    tcase_add_test(t, odd_models_build);
    tcase_add_test(t, folded_gradients_build);
    tcase_add_test(t, odd_files_and_paths);
    suite_add_tcase(s, t);
    /* A model of 800 names and its C built for every 800 identifiers the
     * headers and generated/ hold: more with each model, minutes under the
     * sanitizers. */
    t = tcase_create("clashing names");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, clashing_names_build);
    suite_add_tcase(s, t);
    t = tcase_create("crashes");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, killed_mid_save);
    suite_add_tcase(s, t);
#ifdef SAFETY_VALGRIND
    t = tcase_create("valgrind");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, under_valgrind);
    suite_add_tcase(s, t);
#else
    printf("skipped 1: under_valgrind (valgrind cannot run sanitized code)\n");
#endif
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    for (int i = 0; i < n_cases; i++)
        free(cases[i]);
    return failed || n_cases == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
