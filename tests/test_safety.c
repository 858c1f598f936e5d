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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
    tcase_add_test(t, path_is_data);
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
#endif
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    for (int i = 0; i < n_cases; i++)
        free(cases[i]);
    return failed || n_cases == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
