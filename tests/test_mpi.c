/*
 * test_mpi.c: the data-parallel trainers, run as a user runs them:
 * `gradc build --mpi`, then `mpirun -np 2` on this machine, over shared
 * memory and over TCP on loopback (standing in for separate machines).
 *
 * The oracle is the plain trainer, one process: P processes of batch B
 * must train as one process of batch P B on the same data order, every
 * step's loss and the parameters after to 1e-12 relative in double and
 * 1e-5 in float (the sums are the same sums, added in another order).
 */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>
#include "test_util.h"

enum { STEPS = 50 };

/* Where this suite builds its trainers and writes its data, once. */
static char *work;

/* mpirun as this machine allows: as root Open MPI wants to be told, and
 * 2 processes may be more than the cores it counts. Under the sanitizers,
 * Open MPI's own allocations (it frees little at MPI_Finalize, some of it
 * in plugins already unloaded) are not looked for: the runtime's are,
 * by the other suites' plain trainers. */
static const char *mpirun(void)
{
    static char cmd[256];
    snprintf(cmd, sizeof cmd, "%s%smpirun --oversubscribe",
             getuid() == 0 ? "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " : "",
             *TEST_SAN ? "ASAN_OPTIONS=detect_leaks=0 " : "");
    return cmd;
}

/* gradc build MODEL -o WORK/NAME [flags]; NAME names the build. */
static void build(const char *name, const char *model, const char *flags)
{
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s build %s -o %s/%s %s", GRADC_BIN, model, work, name, flags);
    int status = run_cmd(cmd, &out);
    ck_assert_msg(status == 0, "%s: exit %d: %.3000s", cmd, status, out);
    free(out);
}

/* Runs a trainer for STEPS steps printing every loss in full, exporting
 * its parameters to WORK/EXPORT; fills loss[1..STEPS] and returns what it
 * printed. */
static char *train(const char *cmd, const char *data, const char *export, double *loss)
{
    char full[4096], *out;
    snprintf(full, sizeof full, "%s %s --steps %d --print-every 1 --digits 17 --export %s/%s", cmd,
             data, STEPS, work, export);
    int status = run_cmd(full, &out);
    ck_assert_msg(status == 0, "%s: exit %d: %.3000s", full, status, out);
    for (int n = 1; n <= STEPS; n++) {
        char want[32];
        snprintf(want, sizeof want, "step %d loss ", n);
        const char *at = strstr(out, want);
        ck_assert_msg(at, "%s: no line '%s' in: %.3000s", full, want, out);
        loss[n] = strtod(at + strlen(want), NULL);
    }
    return out;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

/* Runs `script` (printf-style) by Python with NumPy as np, os and sys,
 * in the work directory; returns what it printed. */
static char *numpy(const char *script, ...) __attribute__((format(printf, 1, 2)));
static char *numpy(const char *script, ...)
{
    char text[4096], cmd[4400], *out;
    va_list ap;
    va_start(ap, script);
    vsnprintf(text, sizeof text, script, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && /usr/bin/python3 -c \"import numpy as np, os, sys\n%s\"",
             work, text);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s: %.3000s", cmd, out);
    return out;
}

/* The largest difference between the .npy files of two exports (in the
 * work directory), relative (to at least 1e-3) or absolute; the two must
 * hold the same files. */
static double exports_differ(const char *a, const char *b, bool relative)
{
    char *out = numpy("names = sorted(os.listdir('%s'))\n"
                      "assert names == sorted(os.listdir('%s')) and names, names\n"
                      "worst = 0.0\n"
                      "for n in names:\n"
                      "    x, y = np.load(os.path.join('%s', n)), np.load(os.path.join('%s', n))\n"
                      "    assert x.shape == y.shape, n\n"
                      "    d = np.abs(x - y)%s\n"
                      "    worst = max(worst, float(np.max(d)))\n"
                      "print(repr(worst))",
                      a, b, a, b, relative ? " / np.maximum(np.abs(y), 1e-3)" : "");
    double worst = strtod(out, NULL);
    free(out);
    return worst;
}
static double params_differ(const char *a, const char *b) { return exports_differ(a, b, true); }

typedef struct {
    const char *name, *model, *data;
    int batch; /* each process's; the one process has twice it */
    int dbl;
    const char *flags; /* gradc's */
} Case;

#define IRIS "--data x=data/iris.csv --data labels=data/iris.csv"
#define TEXT "--data x=data/tinyshakespeare.txt --data y=data/tinyshakespeare.txt:next"
#define MNIST "--data x=WORK/x.npy --data labels=WORK/labels.npy"
/* The GPT's gradients in many small buckets, summed while the backward
 * pass runs. */
static const Case cases[] = {
    {"iris", "models/iris.lua", IRIS, 30, 1, ""},
    {"iris", "models/iris.lua", IRIS, 30, 0, ""},
    {"mnist_mlp", "bench/mnist_mlp.lua", MNIST, 64, 1, ""},
    {"mnist_mlp", "bench/mnist_mlp.lua", MNIST, 64, 0, ""},
    {"gpt", "models/gpt.lua", TEXT, 4, 1, "-D width=32 -D context=16 --bucket-mb 0.01"},
    /* a sum over rows: the processes' gradients are summed, not averaged */
    {"seed_mlp", "models/seed_mlp.lua", "--data x=WORK/seed_x.npy --data y=WORK/seed_y.npy", 16, 1,
     "-D d_in=100 -D hidden=20"},
};
enum { N_CASES = sizeof cases / sizeof *cases };

/* The case's --data, WORK the suite's folder. */
static void data_of(const Case *c, char *buf, size_t len)
{
    size_t n = 0;
    for (const char *p = c->data; *p && n + 1 < len;)
        if (!strncmp(p, "WORK", 4)) {
            n += (size_t)snprintf(buf + n, len - n, "%s", work);
            p += 4;
        } else
            buf[n++] = *p++;
    buf[n < len ? n : len - 1] = 0;
}

/* Builds the case's two trainers: the MPI one at its batch, the plain one
 * at twice it. */
static void build_case(const Case *c, char *mpi_dir, char *one_dir, size_t len)
{
    char flags[256];
    snprintf(mpi_dir, len, "%s_%s_mpi", c->name, c->dbl ? "f64" : "f32");
    snprintf(one_dir, len, "%s_%s_one", c->name, c->dbl ? "f64" : "f32");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/%s/%s_train_mpi", work, mpi_dir, c->name);
    if (file_exists(probe)) /* the TCP case reuses the shared-memory case's */
        return;
    snprintf(flags, sizeof flags, "--mpi -D batch=%d%s %s", c->batch, c->dbl ? " --double" : "",
             c->flags);
    build(mpi_dir, c->model, flags);
    snprintf(flags, sizeof flags, "-D batch=%d%s %s", 2 * c->batch, c->dbl ? " --double" : "",
             c->flags);
    build(one_dir, c->model, flags);
}

/* P = 2 of batch B against one process of 2B: every loss and every
 * parameter after STEPS steps. over is mpirun's transport option. */
static void check_equivalence(const Case *c, const char *over)
{
    char mpi_dir[128], one_dir[128], data[2048], cmd[2048], export[160];
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    data_of(c, data, sizeof data);
    double many[STEPS + 1], one[STEPS + 1];
    snprintf(cmd, sizeof cmd, "%s -np 2 %s %s/%s/%s_train_mpi", mpirun(), over, work, mpi_dir,
             c->name);
    snprintf(export, sizeof export, "%s_export", mpi_dir);
    char *said = train(cmd, data, export, many);
    char global[80];
    snprintf(global, sizeof global, "a global batch of %d", 2 * c->batch);
    ck_assert_msg(strstr(said, global), "the trainer did not say '%s': %.3000s", global, said);
    free(said);
    snprintf(cmd, sizeof cmd, "%s/%s/%s_train", work, one_dir, c->name);
    snprintf(export, sizeof export, "%s_export", one_dir);
    free(train(cmd, data, export, one));

    const double tol = c->dbl ? 1e-12 : 1e-5;
    double worst = 0;
    int worst_at = 1;
    for (int n = 1; n <= STEPS; n++)
        if (rel(many[n], one[n]) > worst)
            worst = rel(many[n], one[n]), worst_at = n;
    printf("mpi: %s %s%s: 2 processes of %d against 1 of %d: worst loss difference %.3g (step "
           "%d)",
           c->name, c->dbl ? "double" : "float", *over ? " over TCP" : "", c->batch, 2 * c->batch,
           worst, worst_at);
    ck_assert_msg(worst <= tol, "%s: step %d loss %.17g on 2 processes, %.17g on one", c->name,
                  worst_at, many[worst_at], one[worst_at]);
    ck_assert_msg(rel(one[STEPS], one[1]) > 1e-3, "%s: the loss did not move: %.17g to %.17g",
                  c->name, one[1], one[STEPS]);
    char a[160], b[160];
    snprintf(a, sizeof a, "%s_export", mpi_dir);
    snprintf(b, sizeof b, "%s_export", one_dir);
    double params = params_differ(a, b);
    printf(", parameters %.3g\n", params);
    ck_assert_msg(params <= tol, "%s: parameters after %d steps differ by %.3g relative", c->name,
                  STEPS, params);
}

START_TEST(test_same_as_one_process) { check_equivalence(&cases[_i], ""); }
END_TEST

/* The GPT's build sums its gradients in buckets the backward pass starts
 * as it goes, at least 20 of them (0.01 MB each). */
START_TEST(test_buckets_in_the_backward)
{
    const Case *c = &cases[4];
    char mpi_dir[128], one_dir[128], path[1024], *text;
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    snprintf(path, sizeof path, "cat %s/%s/gpt.c", work, mpi_dir);
    ck_assert_int_eq(run_cmd(path, &text), 0);
    const char *body = strstr(text, "static void compute_grads(");
    const char *end = body ? strstr(body, "\n}\n") : NULL;
    ck_assert_msg(body && end, "no compute_grads in %s", path);
    int calls = 0;
    for (const char *at = body; (at = strstr(at, "grads_done(")) && at < end; at++)
        calls++;
    printf("mpi: gpt's backward pass starts %d buckets' sums\n", calls);
    ck_assert_msg(calls >= 20, "%d calls of grads_done in compute_grads", calls);
    free(text);
}
END_TEST

START_TEST(test_same_over_tcp) { check_equivalence(&cases[_i], "--mca btl tcp,self"); }
END_TEST

/* One MPI process is the plain trainer, bit for bit; and two processes
 * are not one process of the same batch (each trains on its own rows). */
START_TEST(test_one_process_is_plain)
{
    const Case *c = &cases[1];
    char mpi_dir[128], one_dir[128], data[2048], cmd[2048];
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    data_of(c, data, sizeof data);
    double mpi1[STEPS + 1], mpi2[STEPS + 1], plain[STEPS + 1];
    snprintf(cmd, sizeof cmd, "%s -np 1 %s/%s/%s_train_mpi", mpirun(), work, mpi_dir, c->name);
    char *a = train(cmd, data, "np1", mpi1);
    snprintf(cmd, sizeof cmd, "%s/%s/%s_train", work, mpi_dir, c->name);
    char *b = train(cmd, data, "plain", plain);
    for (int n = 1; n <= STEPS; n++)
        ck_assert_msg(mpi1[n] == plain[n], "step %d: %.17g under mpirun -np 1, %.17g plain", n,
                      mpi1[n], plain[n]);
    ck_assert_double_eq(params_differ("np1", "plain"), 0);
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "%s -np 2 %s/%s/%s_train_mpi", mpirun(), work, mpi_dir, c->name);
    free(train(cmd, data, "np2", mpi2));
    ck_assert_msg(mpi2[2] != plain[2], "2 processes trained as one of the same batch: %.17g",
                  mpi2[2]);
}
END_TEST

/* The pid of the process of rank `rank` running exe, from /proc (mpirun
 * tells each its rank in OMPI_COMM_WORLD_RANK), or 0. */
static pid_t find_rank(const char *exe, int rank)
{
    char want[32], path[64], buf[65536];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; !found && d && (e = readdir(d));) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        if (strcmp(buf, exe)) /* argv[0], up to its NUL */
            continue;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
        f = fopen(path, "r");
        n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
            if (!strcmp(buf + i, want))
                found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
    char cmd[1100], *text;
    snprintf(cmd, sizeof cmd, "cat %s", path);
    run_cmd(cmd, &text);
    return text;
}

/* SIGKILL to one process of two: the other ends within 30 s with one
 * line naming the last checkpoint (mpirun -q, so that Open MPI's own
 * banner is not printed), and resuming from it on two processes ends
 * where a run that never stopped does, bit for bit; the checkpoint was at
 * most one interval (20 steps) behind the last step printed. */
/* mpirun's transports: shared memory, and TCP on loopback. */
static const char *const over[] = {"", "--mca btl tcp,self"};

START_TEST(test_kill_and_resume)
{
    const Case *c = &cases[2];
    char mpi_dir[128], one_dir[128], data[2048], exe[1024], cmd[8192], ckpt[1024], out[1024];
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    data_of(c, data, sizeof data);
    snprintf(exe, sizeof exe, "%s/%s/%s_train_mpi", work, mpi_dir, c->name);
    snprintf(ckpt, sizeof ckpt, "%s/kill%d.ckpt", work, _i);
    snprintf(out, sizeof out, "%s/kill%d.out", work, _i);
    snprintf(cmd, sizeof cmd,
             "%s -q -np 2 %s %s %s --steps 1000000 --print-every 1 --save-every 20 --checkpoint "
             "%s >%s 2>&1",
             mpirun(), over[_i], exe, data, ckpt, out);
    pid_t job = fork();
    ck_assert_int_ge(job, 0);
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* Past the first checkpoints, then rank 1 dies. */
    double t0 = now_s();
    while (!file_exists(ckpt) && now_s() - t0 < 120)
        sleep_s(0.05);
    sleep_s(0.5);
    pid_t victim = find_rank(exe, 1);
    ck_assert_msg(victim > 0, "no process of rank 1 running %s", exe);
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    double killed = now_s();
    int status = 0;
    while (waitpid(job, &status, WNOHANG) == 0 && now_s() - killed < 60)
        sleep_s(0.02);
    double took = now_s() - killed;
    if (took >= 60)
        kill(job, SIGKILL), waitpid(job, &status, 0);
    char *said = read_file(out);
    printf("mpi: rank 1 killed%s: the run ended %.2f s later, exit %d\n", _i ? " (over TCP)" : "",
           took, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ck_assert_msg(took < 30, "the run went on %.0f s after a process died: %.2000s", took, said);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "exit %d", status);
    const char *line = strstr(said, "stopped by mpirun");
    ck_assert_msg(line && !strstr(line + 1, "stopped by mpirun"), "not one line: %.3000s", said);
    const char *at = strstr(line, "(step ");
    ck_assert_msg(at, "no checkpoint named: %.200s", line);
    long saved = atol(at + 6), last = 0;
    for (const char *p = said; (p = strstr(p, "step ")); p++)
        if (p == said || p[-1] == '\n')
            last = atol(p + 5);
    printf("mpi: last step printed %ld, resumed from the checkpoint of step %ld\n", last, saved);
    ck_assert_msg(saved >= 20 && saved >= last - 20, "checkpoint at step %ld, last step %ld", saved,
                  last);
    free(said);

    /* Resumed on two processes, then a run that never stopped. */
    char *a, *b;
    snprintf(cmd, sizeof cmd,
             "%s -np 2 %s %s %s --resume %s --steps %ld --digits 17 --export %s/resumed%d",
             mpirun(), over[_i], exe, data, ckpt, saved + 10, work, _i);
    ck_assert_int_eq(run_cmd(cmd, &a), 0);
    snprintf(cmd, sizeof cmd, "%s -np 2 %s %s %s --steps %ld --digits 17 --export %s/straight%d",
             mpirun(), over[_i], exe, data, saved + 10, work, _i);
    ck_assert_int_eq(run_cmd(cmd, &b), 0);
    const char *fa = strstr(a, "final loss "), *fb = strstr(b, "final loss ");
    ck_assert_msg(fa && fb, "%.2000s\n%.2000s", a, b);
    ck_assert_msg(strtod(fa + 11, NULL) == strtod(fb + 11, NULL),
                  "resumed: %.40s, never stopped: %.40s", fa, fb);
    char ra[32], rb[32];
    snprintf(ra, sizeof ra, "resumed%d", _i);
    snprintf(rb, sizeof rb, "straight%d", _i);
    ck_assert_double_eq(params_differ(ra, rb), 0);
    free(a);
    free(b);
}
END_TEST

/* A run saved on `from` processes, resumed on `to`: it goes on from the
 * row where it stopped, with the new global batch. In file order, with
 * plain SGD (no state), the oracle is the plain trainer of that global
 * batch started from the exported parameters on the rows from there:
 * every loss and the parameters after agree to 1e-12. Both start at row
 * 1280: 20 steps of 64 rows, or 10 of 128. */
static void check_resume_across(int from, int to, const char *via)
{
    const Case *c = &cases[2];
    char mpi_dir[128], one_dir[128], cmd[8192], ckpt[1024], tag[32];
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    snprintf(tag, sizeof tag, "np%d_to_%d%s", from, to, *via ? "_tcp" : "");
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", work, tag);
    const char *exe = "mnist_mlp_train_mpi";
    char data[2048], rest[2048];
    snprintf(data, sizeof data, "--data x=%s/x.npy --data labels=%s/labels.npy --no-shuffle", work,
             work);
    snprintf(rest, sizeof rest,
             "--data x=%s/x_from1280.npy --data labels=%s/labels_from1280.npy --no-shuffle", work,
             work);
    long saved = 1280 / (64 * from), more = 20;
    snprintf(cmd, sizeof cmd,
             "%s -np %d %s %s/%s/%s %s --steps %ld --checkpoint %s --export %s/%s_start", mpirun(),
             from, via, work, mpi_dir, exe, data, saved, ckpt, work, tag);
    char *out;
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s: %.2000s", cmd, out);
    free(out);
    double resumed[STEPS + 1], oracle[STEPS + 1];
    char run[2048], export[160], init[1100];
    snprintf(run, sizeof run, "%s -np %d %s %s/%s/%s --resume %s", mpirun(), to, via, work, mpi_dir,
             exe, ckpt);
    snprintf(export, sizeof export, "%s_resumed", tag);
    /* train() runs STEPS steps: here the resumed run's steps saved+1 .. */
    char full[16384];
    snprintf(full, sizeof full, "%s %s --steps %ld --print-every 1 --digits 17 --export %s/%s", run,
             data, saved + more, work, export);
    ck_assert_msg(run_cmd(full, &out) == 0, "%s: %.2000s", full, out);
    char said[200];
    snprintf(said, sizeof said,
             "steps took %d rows each; these take %d: the run goes on from row 1280 of epoch 1",
             64 * from, 64 * to);
    ck_assert_msg(strstr(out, said), "no '%s' in: %.3000s", said, out);
    for (long n = 1; n <= more; n++) {
        char want[32];
        snprintf(want, sizeof want, "step %ld loss ", saved + n);
        const char *at = strstr(out, want);
        ck_assert_msg(at, "no '%s' in %.2000s", want, out);
        resumed[n] = strtod(at + strlen(want), NULL);
    }
    free(out);
    /* The oracle: the plain trainer whose batch is `to` processes' */
    const char *plain = to == 2 ? one_dir : mpi_dir;
    snprintf(init, sizeof init, "%s/%s/mnist_mlp_train --init %s/%s_start", work, plain, work, tag);
    snprintf(export, sizeof export, "%s_oracle", tag);
    snprintf(full, sizeof full, "%s %s --steps %ld --print-every 1 --digits 17 --export %s/%s",
             init, rest, more, work, export);
    ck_assert_msg(run_cmd(full, &out) == 0, "%s: %.2000s", full, out);
    for (long n = 1; n <= more; n++) {
        char want[32];
        snprintf(want, sizeof want, "step %ld loss ", n);
        const char *at = strstr(out, want);
        ck_assert_msg(at, "no '%s' in %.2000s", want, out);
        oracle[n] = strtod(at + strlen(want), NULL);
    }
    free(out);
    double worst = 0;
    for (long n = 1; n <= more; n++)
        worst = fmax(worst, rel(resumed[n], oracle[n]));
    char a[160], b[160];
    snprintf(a, sizeof a, "%s_resumed", tag);
    snprintf(b, sizeof b, "%s_oracle", tag);
    double params = params_differ(a, b);
    printf("mpi: saved on %d process%s at step %ld, resumed on %d%s: %ld steps, worst loss "
           "difference %.3g, parameters %.3g\n",
           from, from == 1 ? "" : "es", saved, to, *via ? " over TCP" : "", more, worst, params);
    ck_assert_msg(worst <= 1e-12 && params <= 1e-12, "resumed %d -> %d: losses %.3g, params %.3g",
                  from, to, worst, params);
}

START_TEST(test_resume_across_process_counts)
{
    check_resume_across(1, 2, over[_i]);
    check_resume_across(2, 1, over[_i]);
}
END_TEST

/* --threads is each process's: asking two processes for as many threads
 * as the machine has cores is said; one thread each, the default, is
 * not. */
START_TEST(test_threads_oversubscribed)
{
    const Case *c = &cases[0];
    char mpi_dir[128], one_dir[128], cmd[4096], *said;
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(cmd, sizeof cmd, "%s -q -np 2 %s/%s/iris_train_mpi %s --steps 2 --threads %ld",
             mpirun(), work, mpi_dir, IRIS, cores < 2 ? 2 : cores);
    ck_assert_msg(run_cmd(cmd, &said) == 0, "%s", said);
    ck_assert_msg(strstr(said, "warning: ") && strstr(said, "threads"), "no warning in: %.2000s",
                  said);
    free(said);
    snprintf(cmd, sizeof cmd, "%s -q -np 2 %s/%s/iris_train_mpi %s --steps 2", mpirun(), work,
             mpi_dir, IRIS);
    ck_assert_msg(run_cmd(cmd, &said) == 0, "%s", said);
    ck_assert_msg(!strstr(said, "warning"), "1 thread a process, yet: %.2000s", said);
    free(said);
}
END_TEST

/* Dropout draws anew on each process: two processes of the same rows
 * (8 rows, twice over) do not make one process's gradients of them, as
 * they would under the same draws; at p = 0 they do. */
START_TEST(test_dropout_per_process)
{
    char model[1100], cmd[8192], *out;
    snprintf(model, sizeof model, "%s/drop.lua", work);
    write_text(model, "local x = input(\"x\", {8, 6})\n"
                      "local labels = input(\"labels\", {8}, \"int32\")\n"
                      "local w = param(\"w\", {6, 3}, randn())\n"
                      "local h = dropout(x, config.p or 0.5)\n"
                      "return model { loss = mean(cross_entropy(h:matmul(w), labels)) }\n");
    build("drop", model, "--mpi --double");
    build("keep", model, "--mpi --double -D p=0");
    free(numpy("r = np.random.default_rng(3)\n"
               "x, y = r.standard_normal((8, 6)), (np.arange(8) %% 3).astype(np.int32)\n"
               "np.save('dx.npy', x); np.save('dy.npy', y)\n"
               "np.save('dx2.npy', np.concatenate([x, x])); "
               "np.save('dy2.npy', np.concatenate([y, y]))"));
    double differ[2];
    const char *builds[] = {"drop", "keep"};
    for (int k = 0; k < 2; k++) {
        char two[32], one[32];
        snprintf(two, sizeof two, "g2_%s", builds[k]);
        snprintf(one, sizeof one, "g1_%s", builds[k]);
        snprintf(cmd, sizeof cmd,
                 "cd %s && %s -q -np 2 %s/drop_train_mpi --data x=dx2.npy --data labels=dy2.npy "
                 "--no-shuffle --steps 0 --export-grads %s && %s/drop_train --data x=dx.npy "
                 "--data labels=dy.npy --no-shuffle --steps 0 --export-grads %s",
                 work, mpirun(), builds[k], two, builds[k], one);
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s: %.3000s", cmd, out);
        free(out);
        differ[k] = exports_differ(two, one, false);
    }
    printf("mpi: 2 processes of the same rows against one: gradients differ by %.3g with "
           "dropout, %.3g without\n",
           differ[0], differ[1]);
    ck_assert_msg(differ[0] > 1e-6, "the two processes drew the same dropout");
    ck_assert_msg(differ[1] <= 1e-12, "at p = 0 they differ by %.3g", differ[1]);
}
END_TEST

/* Batch norm normalizes each process's rows by their own statistics: the
 * gradients of 2 processes (a sum loss, so summed) are the sum of two
 * single processes' on each half, to 1e-12, and not those of one process
 * of both halves, whose statistics are the whole batch's. */
START_TEST(test_batch_norm_per_process)
{
    char model[1100], cmd[8192], *out;
    snprintf(model, sizeof model, "%s/bn.lua", work);
    write_text(model, "local N = config.batch or 4\n"
                      "local x = input(\"x\", {N, 3, 2, 2})\n"
                      "local R = input(\"R\", {N, 3, 2, 2})\n"
                      "local g = param(\"g\", {3}, uniform(0.5, 1.5))\n"
                      "local b = param(\"b\", {3}, uniform(-0.5, 0.5))\n"
                      "local y = batch_norm(x, g, b, \"bn\", { eps = 0.01 })\n"
                      "return model { loss = sum(y * R), optimizer = sgd { lr = 0.1 } }\n");
    build("bn4", model, "--mpi --double");
    build("bn8", model, "--double -D batch=8");
    free(numpy(
        "r = np.random.default_rng(7)\n"
        "x, R = r.standard_normal((8, 3, 2, 2)), r.standard_normal((8, 3, 2, 2))\n"
        "for n, a in (('x', x), ('R', R)):\n"
        "    np.save(n + '.npy', a); np.save(n + '_a.npy', a[:4]); np.save(n + '_b.npy', a[4:])"));
    const char *runs[][3] = {{"-q -np 2", "bn4/bn_train_mpi", ""},
                             {"", "bn4/bn_train", "_a"},
                             {"", "bn4/bn_train", "_b"},
                             {"", "bn8/bn_train", ""}};
    const char *names[] = {"g2", "ga", "gb", "g8"};
    for (int k = 0; k < 4; k++) {
        snprintf(cmd, sizeof cmd,
                 "cd %s && %s %s %s/%s --data x=x%s.npy --data R=R%s.npy --no-shuffle --steps 0 "
                 "--export-grads %s",
                 work, *runs[k][0] ? mpirun() : "", runs[k][0], work, runs[k][1], runs[k][2],
                 runs[k][2], names[k]);
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s: %.2000s", cmd, out);
        free(out);
    }
    out = numpy("def g(d): return {n: np.load(os.path.join(d, n)) for n in sorted(os.listdir(d))}\n"
                "g2, ga, gb, g8 = g('g2'), g('ga'), g('gb'), g('g8')\n"
                "assert g2 and g2.keys() == ga.keys() == g8.keys()\n"
                "rel = lambda u, v: max(float(np.max(np.abs(u[n] - v[n]) / "
                "np.maximum(np.abs(v[n]), 1e-3))) for n in u)\n"
                "s = {n: ga[n] + gb[n] for n in ga}\n"
                "print(repr(rel(g2, s)), repr(rel(g8, s)))");
    double halves = 0, whole = 0;
    ck_assert_int_eq(sscanf(out, "%lf %lf", &halves, &whole), 2);
    printf("mpi: batch norm on 2 processes: gradients against the sum of each half's %.3g, "
           "against one process of both halves %.3g\n",
           halves, whole);
    ck_assert_msg(halves <= 1e-12, "2 processes' gradients differ from the halves' sum by %.3g",
                  halves);
    ck_assert_msg(whole > 1e-6, "per-process statistics gave the whole batch's gradients");
    free(out);
}
END_TEST

/* How each loss adds up over the rows, as the compiler reads it and the
 * descriptor says (nothing for a mean, the default). */
START_TEST(test_loss_rows)
{
    static const struct {
        const char *loss, *kind;
    } losses[] = {
        {"mean(cross_entropy(z, labels))", NULL},
        {"0.6 * mean(cross_entropy(z, labels)) + 0.4 * mean(-z)", NULL},
        {"sum(cross_entropy(z, labels)) / 8", NULL},
        {"mean(cross_entropy(z, labels)) + 0.01 * sum(w * w)", NULL},
        {"sum(w) * mean(z)", NULL},
        {"sum((z - 1) ^ 2)", "RT_LOSS_SUM"},
        {"0.5 * sum(cross_entropy(z, labels))", "RT_LOSS_SUM"},
        {"sum(z) + sum(w * w)", "RT_LOSS_OTHER"},
        {"mean(z) ^ 2", "RT_LOSS_OTHER"},
        {"mean(z) * sum(z)", "RT_LOSS_OTHER"},
    };
    for (size_t k = 0; k < sizeof losses / sizeof *losses; k++) {
        char model[1100], text[1024], cmd[4096], *out;
        snprintf(model, sizeof model, "%s/rows%zu.lua", work, k);
        snprintf(text, sizeof text,
                 "local x = input(\"x\", {8, 3})\n"
                 "%s"
                 "local w = param(\"w\", {3, 2}, randn())\n"
                 "local z = x:matmul(w)\n"
                 "return model { loss = %s }\n",
                 strstr(losses[k].loss, "labels")
                     ? "local labels = input(\"labels\", {8}, \"int32\")\n"
                     : "",
                 losses[k].loss);
        write_text(model, text);
        snprintf(cmd, sizeof cmd,
                 "%s compile %s -o %s/rows && grep -h 'loss_rows =' %s/rows/rows%zu.c", GRADC_BIN,
                 model, work, work, k);
        run_cmd(cmd, &out);
        if (losses[k].kind)
            ck_assert_msg(strstr(out, losses[k].kind), "%s: want %s, got: %s", losses[k].loss,
                          losses[k].kind, out);
        else
            ck_assert_msg(!strstr(out, "RT_LOSS_"), "%s: a mean, got: %s", losses[k].loss, out);
        free(out);
    }
}
END_TEST

/* Bad setups, one line each: processes built from different models,
 * processes reading different data, and --mpi without Open MPI's mpicc. */
START_TEST(test_bad_setups)
{
    const Case *c = &cases[0], *other = &cases[2];
    char mpi_dir[128], one_dir[128], o_mpi[128], o_one[128], cmd[4096], *said;
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    build_case(other, o_mpi, o_one, sizeof o_mpi);
    /* iris and iris at another batch: the same name, another model */
    build("iris_b20", "models/iris.lua", "--mpi --double -D batch=20");
    snprintf(cmd, sizeof cmd,
             "%s -q -np 1 %s/%s/iris_train_mpi %s : -np 1 %s/iris_b20/iris_train_mpi %s", mpirun(),
             work, mpi_dir, IRIS, work, IRIS);
    int status = run_cmd(cmd, &said);
    ck_assert_msg(status != 0 && strstr(said, "the processes run different models") &&
                      !strstr(strstr(said, "different models") + 1, "different models"),
                  "exit %d: %.3000s", status, said);
    free(said);

    /* The same rows in another order: a file of the same shape that differs. */
    char shuffled[1024];
    snprintf(shuffled, sizeof shuffled, "%s/iris_reversed.csv", work);
    snprintf(cmd, sizeof cmd, "{ head -1 data/iris.csv; tail -n +2 data/iris.csv | tac; } > %s",
             shuffled);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s -q -np 1 %s/%s/iris_train_mpi %s : -np 1 %s/%s/iris_train_mpi --data x=%s "
             "--data labels=%s",
             mpirun(), work, mpi_dir, IRIS, work, mpi_dir, shuffled, shuffled);
    status = run_cmd(cmd, &said);
    ck_assert_msg(status != 0 && strstr(said, "files differ between the processes"),
                  "exit %d: %.3000s", status, said);
    free(said);

    /* A loss that is neither a mean nor a sum over the rows: a sum, and a
     * penalty each process would count again. */
    char model[1100];
    snprintf(model, sizeof model, "%s/penalty.lua", work);
    write_text(model, "local x = input(\"x\", {8, 3})\n"
                      "local w = param(\"w\", {3, 2}, randn())\n"
                      "return model { loss = sum(tanh(x:matmul(w))^2) + sum(w * w) }\n");
    build("penalty", model, "--mpi");
    snprintf(cmd, sizeof cmd, "%s -q -np 2 %s/penalty/penalty_train_mpi", mpirun(), work);
    status = run_cmd(cmd, &said);
    ck_assert_msg(status != 0 && strstr(said, "is neither a mean nor a sum over the batch's rows"),
                  "exit %d: %.3000s", status, said);
    free(said);

    snprintf(cmd, sizeof cmd, "PATH=/nonexistent %s build models/iris.lua --mpi -o %s/nompi",
             GRADC_BIN, work);
    status = run_cmd(cmd, &said);
    ck_assert_msg(status == 1 && strstr(said, "--mpi needs Open MPI's mpicc"), "exit %d: %s",
                  status, said);
    char left[1100];
    snprintf(left, sizeof left, "%s/nompi", work);
    ck_assert_msg(!file_exists(left), "a failed build left %s", left);
    free(said);
}
END_TEST

static void setup(void)
{
    work = make_tmpdir();
    /* MNIST-sized rows: pixels k/256, exact in float; labels 0..9. */
    free(numpy("r = np.random.default_rng(5)\n"
               "x = (r.integers(0, 256, (4096, 784)) / 256).astype(np.float32)\n"
               "y = r.integers(0, 10, 4096).astype(np.int32)\n"
               "np.save('x.npy', x)\n"
               "np.save('labels.npy', y)\n"
               "np.save('x_from1280.npy', x[1280:])\n"
               "np.save('labels_from1280.npy', y[1280:])\n"
               "np.save('seed_x.npy', r.standard_normal((512, 100)))\n"
               "np.save('seed_y.npy', r.standard_normal((512, 10)))"));
}

static void teardown(void) { remove_dir(work); }

/* The value after `key` in the line of out that starts with `line`. */
static double value_in(const char *out, const char *line, const char *key)
{
    const char *at = strstr(out, line);
    ck_assert_msg(at, "no line '%s' in: %.3000s", line, out);
    const char *v = strstr(at, key);
    ck_assert_msg(v && v < strchr(at, '\n'), "no %s in line '%s'", key, line);
    return strtod(v + strlen(key), NULL);
}

/* Evaluation shared out among the processes, batch by batch: the same
 * loss and accuracy over the held-out rows as one process's, the last
 * partial batch included (1229 rows: 19 batches of 64 and 13 on 2
 * processes, 9 of 128 and 77 on one). */
START_TEST(test_evaluation_shared)
{
    const Case *c = &cases[2];
    char mpi_dir[128], one_dir[128], data[2048], cmd[4096];
    build_case(c, mpi_dir, one_dir, sizeof mpi_dir);
    data_of(c, data, sizeof data);
    double many[STEPS + 1], one[STEPS + 1];
    snprintf(cmd, sizeof cmd, "%s -np 2 %s/%s/%s_train_mpi --val-split 0.3 --eval-every 25",
             mpirun(), work, mpi_dir, c->name);
    char *a = train(cmd, data, "eval_mpi", many);
    snprintf(cmd, sizeof cmd, "%s/%s/%s_train --val-split 0.3 --eval-every 25", work, one_dir,
             c->name);
    char *b = train(cmd, data, "eval_one", one);
    ck_assert_msg(strstr(a, "1229 held-out rows"), "%.3000s", a);
    for (int n = 25; n <= STEPS; n += 25) {
        char line[32];
        snprintf(line, sizeof line, "eval step %d ", n);
        double la = value_in(a, line, "loss "), lb = value_in(b, line, "loss ");
        double aa = value_in(a, line, "accuracy "), ab = value_in(b, line, "accuracy ");
        printf("mpi: eval step %d: loss %.17g on 2 processes, %.17g on one; accuracy %g, %g\n", n,
               la, lb, aa, ab);
        ck_assert_msg(rel(la, lb) <= 1e-12, "eval step %d loss %.17g on 2, %.17g on 1", n, la, lb);
        ck_assert_msg(aa == ab, "eval step %d accuracy %g on 2, %g on 1", n, aa, ab);
    }
    free(a);
    free(b);
}
END_TEST

static Suite *mpi_suite(void)
{
    Suite *s = suite_create("mpi");
    TCase *tc = tcase_create("mpi");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_same_as_one_process, 0, N_CASES);
    tcase_add_loop_test(tc, test_same_over_tcp, 0, 1);
    tcase_add_test(tc, test_one_process_is_plain);
    tcase_add_test(tc, test_buckets_in_the_backward);
    tcase_add_test(tc, test_evaluation_shared);
    tcase_add_loop_test(tc, test_kill_and_resume, 0, 2);
    tcase_add_loop_test(tc, test_resume_across_process_counts, 0, 2);
    tcase_add_test(tc, test_threads_oversubscribed);
    tcase_add_test(tc, test_dropout_per_process);
    tcase_add_test(tc, test_bad_setups);
    tcase_add_test(tc, test_loss_rows);
    tcase_add_test(tc, test_batch_norm_per_process);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(mpi_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
