/*
 * test_checkpoint.c: checkpoint.c, the format field by field (its checksum
 * written out again here, against the spec), the model signature, and
 * every refusal to load; and the trainer's side of it: resumes that go on
 * bit for bit (shuffled and evaluated too), the seed a checkpoint carries,
 * a NaN that stops the run and keeps the last good checkpoint, SIGINT and
 * SIGTERM saving before they exit, --export, and --init reading what
 * --export (or numpy) wrote. The model is linear regression with
 * momentum, whose optimizer state a checkpoint must carry, with hooks that
 * raise a signal or poison the parameters at a chosen step;
 * runtime_models.h's linear regression and float build, and a model with a
 * buffer, stand for other models.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime_models.h"

/* ---- linear regression with momentum: state a checkpoint must carry ---- */

enum { M_X = 0, M_Y = 12, M_W = 16, M_DW = 19, M_BUF = 22, M_LOSS = 25, M_ARENA = 26 };
static double mom_arena[M_ARENA];
static float mom_farena[M_ARENA]; /* the "float build", for the real-type check */
/* Test hooks: at step interrupt_at, raise interrupt_sig; at step poison_at,
 * make w[0] NaN after the update, and the loss too if poison_loss. */
static long interrupt_at, poison_at;
static int interrupt_sig = SIGINT, poison_loss;

static double mom_loss_and_grad(void)
{
    double *a = mom_arena, loss = 0;
    for (int j = 0; j < F; j++)
        a[M_DW + j] = 0;
    for (int b = 0; b < B; b++) {
        double r = -a[M_Y + b];
        for (int j = 0; j < F; j++)
            r += a[M_X + b * F + j] * a[M_W + j];
        loss += r * r;
        for (int j = 0; j < F; j++)
            a[M_DW + j] += 2 * r * a[M_X + b * F + j];
    }
    a[M_LOSS] = loss;
    return loss;
}

/* b = momentum b + g; w -= lr b */
static double mom_train_step(const rt_hyper *h)
{
    double loss = mom_loss_and_grad();
    for (int j = 0; j < F; j++) {
        mom_arena[M_BUF + j] = h->momentum * mom_arena[M_BUF + j] + mom_arena[M_DW + j];
        mom_arena[M_W + j] -= h->lr * mom_arena[M_BUF + j];
    }
    if (h->step == interrupt_at)
        raise(interrupt_sig);
    if (h->step == poison_at) {
        mom_arena[M_W] = NAN;
        if (poison_loss)
            loss = NAN;
    }
    return loss;
}

static const rt_tensor mom_inputs[] = {
    {.name = "x", .dtype = RT_F64, .rank = 2, .shape = {B, F}, .size = B * F, .offset = M_X},
    {.name = "y", .dtype = RT_F64, .rank = 2, .shape = {B, 1}, .size = B, .offset = M_Y},
};
static const rt_tensor mom_params[] = {
    {.name = "w",
     .dtype = RT_F64,
     .rank = 2,
     .shape = {F, 1},
     .size = F,
     .offset = M_W,
     .init = RT_INIT_NORMAL,
     .init_a = 0,
     .init_b = 0.5},
};
static const rt_tensor mom_grads[] = {
    {.name = "d_w", .dtype = RT_F64, .rank = 2, .shape = {F, 1}, .size = F, .offset = M_DW},
};
static const rt_model mom_model = {.name = "mom",
                                   .source = "mom.lua",
                                   .batch = B,
                                   .real = RT_F64,
                                   .arena = mom_arena,
                                   .iarena = no_iarena,
                                   .arena_size = M_ARENA,
                                   .n_inputs = 2,
                                   .n_params = 1,
                                   .inputs = mom_inputs,
                                   .params = mom_params,
                                   .grads = mom_grads,
                                   .params_offset = M_W,
                                   .grads_offset = M_DW,
                                   .n_param_elems = F,
                                   .state_offset = M_BUF,
                                   .n_state = F,
                                   .loss_offset = M_LOSS,
                                   .optimizer = RT_OPT_MOMENTUM,
                                   .hyper = {.lr = 0.02, .momentum = 0.9},
                                   .loss = mom_loss_and_grad,
                                   .loss_and_grad = mom_loss_and_grad,
                                   .train_step = mom_train_step};

/* ---- checkpoint ---- */

static unsigned char *read_bytes(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*n + 1);
    ck_assert_int_eq(fread(b, 1, (size_t)*n, f), *n);
    fclose(f);
    return b;
}

static uint64_t get_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void put_u64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> 8 * i);
}

/* FNV-1a 64, written out again so the file is checked against the spec. */
static uint64_t fnv1a(const unsigned char *b, long n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (long i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3u;
    return h;
}

/* Recognisable values in every element of both momentum arenas. */
static void fill_mom(double base)
{
    for (int i = 0; i < M_ARENA; i++) {
        mom_arena[i] = base + i * 0.125;
        mom_farena[i] = (float)(base - i * 0.5);
    }
}

static rt_model mom_float(void)
{
    rt_model m = mom_model;
    m.real = RT_F32;
    m.arena = mom_farena;
    return m;
}

static void save_ok(const rt_model *m, const char *path, long step, uint64_t seed)
{
    char err[512];
    ck_assert_msg(rt_checkpoint_save(m, path, step, seed, err, sizeof err) == 0, "%s", err);
}

static int files_in_tmpdir(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "exit $(ls -A '%s' | wc -l)", tmpdir);
    return WEXITSTATUS(system(cmd));
}

START_TEST(test_checkpoint_round_trip)
{
    make_tmpdir();
    char err[512];
    const char *path = tmp("m.ckpt");
    fill_mom(1);
    mom_arena[M_W] = -0.0;
    mom_arena[M_W + 1] = 5e-324;
    mom_arena[M_BUF + 2] = 1.0 / 3;
    double saved[M_ARENA];
    memcpy(saved, mom_arena, sizeof saved);
    save_ok(&mom_model, path, 17, 0xdeadbeefcafef00du);
    fill_mom(100); /* scramble params, state and everything else */
    long step = 0;
    uint64_t seed = 0;
    ck_assert_msg(rt_checkpoint_load(&mom_model, path, &step, &seed, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_int_eq(step, 17);
    ck_assert_uint_eq(seed, 0xdeadbeefcafef00du);
    ck_assert_mem_eq(mom_arena + M_W, saved + M_W, 3 * sizeof(double));
    ck_assert_mem_eq(mom_arena + M_BUF, saved + M_BUF, 3 * sizeof(double));
    /* Only the params block and the state come back. */
    ck_assert_double_eq(mom_arena[M_X], 100);
    ck_assert_double_eq(mom_arena[M_DW], 100 + M_DW * 0.125);

    /* The format, field by field (this host is little-endian). */
    long n;
    unsigned char *b = read_bytes(path, &n);
    ck_assert_int_eq(n, 16 + 132 + 6 * 8 + 8);
    ck_assert_mem_eq(b, "GRADCKPT", 8);
    ck_assert_mem_eq(b + 8, "\2\0\0\0", 4);
    ck_assert_mem_eq(b + 12, "\204\0\0\0", 4); /* 132 */
    ck_assert_uint_eq(get_u64(b + 16), rt_model_signature(&mom_model));
    ck_assert_mem_eq(b + 24, "\10\0\0\0", 4);
    ck_assert_uint_eq(get_u64(b + 28), 17);
    ck_assert_uint_eq(get_u64(b + 36), 0xdeadbeefcafef00du);
    ck_assert_uint_eq(get_u64(b + 44), 3);
    ck_assert_uint_eq(get_u64(b + 52), 3);
    ck_assert_str_eq((char *)b + 60, "mom");
    /* rt_checkpoint_save does not know the place in the data: epoch -1 */
    ck_assert_uint_eq(get_u64(b + 124), (uint64_t)-1);
    ck_assert_uint_eq(get_u64(b + 132), 0);
    ck_assert_uint_eq(get_u64(b + 140), 0);
    ck_assert_mem_eq(b + 148, saved + M_W, 3 * sizeof(double));
    ck_assert_mem_eq(b + 172, saved + M_BUF, 3 * sizeof(double));
    ck_assert_uint_eq(get_u64(b + n - 8), fnv1a(b, n - 8));

    /* Version 1, as gradc wrote it before the place in the data: the same
     * without those three fields, and still read. */
    unsigned char *v1 = malloc((size_t)n);
    memcpy(v1, b, 124);
    memcpy(v1 + 124, b + 148, (size_t)(n - 148 - 8));
    v1[8] = 1, v1[12] = 108;
    long n1 = n - 24;
    put_u64(v1 + n1 - 8, fnv1a(v1, n1 - 8));
    write_bytes(tmp("v1.ckpt"), v1, n1);
    fill_mom(-9);
    rt_progress at;
    ck_assert_msg(rt_checkpoint_load_progress(&mom_model, tmp("v1.ckpt"), &at, err, sizeof err) ==
                      0,
                  "%s", err);
    ck_assert_int_eq(at.step, 17);
    ck_assert_uint_eq(at.seed, 0xdeadbeefcafef00du);
    ck_assert_int_eq(at.epoch, -1);
    ck_assert_mem_eq(mom_arena + M_W, saved + M_W, 3 * sizeof(double));
    free(v1);

    /* The place in the data, saved and read back. */
    const rt_progress place = {.step = 40, .seed = 3, .epoch = 2, .row = 2560, .batch = 128};
    ck_assert_int_eq(
        rt_checkpoint_save_progress(&mom_model, tmp("at.ckpt"), &place, err, sizeof err), 0);
    ck_assert_int_eq(rt_checkpoint_load_progress(&mom_model, tmp("at.ckpt"), &at, err, sizeof err),
                     0);
    ck_assert_int_eq(at.step, 40);
    ck_assert_int_eq(at.epoch, 2);
    ck_assert_int_eq(at.row, 2560);
    ck_assert_int_eq(at.batch, 128);
    unlink(tmp("v1.ckpt"));
    unlink(tmp("at.ckpt"));
    free(b);

    /* The float build stores floats. */
    rt_model fm = mom_float();
    float fsaved[M_ARENA];
    memcpy(fsaved, mom_farena, sizeof fsaved);
    save_ok(&fm, tmp("f.ckpt"), 3, 4);
    fill_mom(-50);
    ck_assert_int_eq(rt_checkpoint_load(&fm, tmp("f.ckpt"), &step, &seed, err, sizeof err), 0);
    ck_assert_mem_eq(mom_farena + M_W, fsaved + M_W, 3 * sizeof(float));
    ck_assert_mem_eq(mom_farena + M_BUF, fsaved + M_BUF, 3 * sizeof(float));
    b = read_bytes(tmp("f.ckpt"), &n);
    ck_assert_int_eq(n, 16 + 132 + 6 * 4 + 8);
    ck_assert_mem_eq(b + 24, "\4\0\0\0", 4);
    free(b);
    /* Saving again replaces the file and leaves no temporary behind. */
    save_ok(&mom_model, path, 18, 1);
    ck_assert_int_eq(files_in_tmpdir(), 2);
    remove_tmpdir();
}
END_TEST

START_TEST(test_checkpoint_signature)
{
    /* Pinned, from a Python model of the serialization checkpoint.c
     * describes: the same model has this signature on every machine. */
    uint64_t base = rt_model_signature(&mom_model);
    ck_assert_uint_eq(base, 0xcb72d417b1b7a7bbu);
    /* Everything that decides whether a checkpoint fits changes it... */
    for (int k = 0; k < 11; k++) {
        rt_model m = mom_model;
        rt_tensor p = mom_params[0];
        m.params = &p;
        switch (k) {
        case 0:
            m.name = "mum";
            break;
        case 1:
            m.batch = 8;
            break;
        case 2:
            m.real = RT_F32;
            break;
        case 3:
            m.optimizer = RT_OPT_NESTEROV;
            break;
        case 4:
            m.n_param_elems = 4;
            break;
        case 5:
            m.n_state = 0;
            break;
        case 6:
            p.name = "v";
            break;
        case 7:
            p.shape[0] = 1, p.shape[1] = 3;
            break;
        case 8:
            p.rank = 1;
            break;
        case 9:
            p.offset += 1;
            break;
        case 10:
            m.n_params = 0;
            break;
        }
        ck_assert_msg(rt_model_signature(&m) != base, "change %d kept the signature", k);
    }
    /* ...and what does not, does not: hyperparameters, the arena, inputs
     * growing in front of the params block. */
    rt_model m = mom_model;
    rt_tensor p = mom_params[0];
    m.params = &p;
    m.hyper.lr = 5;
    m.arena = mom_farena;
    m.source = "elsewhere.lua";
    m.params_offset += 100;
    p.offset += 100;
    ck_assert_uint_eq(rt_model_signature(&m), base);
}
END_TEST

/* Loading path into m fails with `want` in a one-line message that starts
 * with the path, and leaves both arenas and the outputs as they were. */
static void check_refused(const rt_model *m, const char *path, const char *want)
{
    char err[512] = "";
    double before[M_ARENA];
    float fbefore[M_ARENA];
    fill_mom(-7);
    memcpy(before, mom_arena, sizeof before);
    memcpy(fbefore, mom_farena, sizeof fbefore);
    long step = -5;
    uint64_t seed = 99;
    ck_assert_int_eq(rt_checkpoint_load(m, path, &step, &seed, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && strstr(err, want), "want '%s', got '%s'",
                  want, err);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_mem_eq(mom_arena, before, sizeof before);
    ck_assert_mem_eq(mom_farena, fbefore, sizeof fbefore);
    ck_assert_int_eq(step, -5);
    ck_assert_uint_eq(seed, 99);
}

START_TEST(test_checkpoint_refusals)
{
    make_tmpdir();
    char good[300], bad[300]; /* tmp() reuses its buffers */
    snprintf(good, sizeof good, "%s", tmp("good.ckpt"));
    snprintf(bad, sizeof bad, "%s", tmp("bad.ckpt"));
    fill_mom(3);
    save_ok(&mom_model, good, 9, 1);
    long n;
    unsigned char *b = read_bytes(good, &n);

    /* Cut short, anywhere: in the data, the header, the magic. */
    const long lengths[] = {n - 1, n - 8, n - 30, 124, 100, 20, 12, 5, 0};
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        write_bytes(bad, b, lengths[k]);
        check_refused(&mom_model, bad, "truncated");
    }
    /* One flipped bit, in the data, the header or the checksum itself. */
    static const long flips[] = {130, 30, 60, 16, 179};
    for (size_t k = 0; k < sizeof flips / sizeof *flips; k++) {
        b[flips[k]] ^= 0x10;
        write_bytes(bad, b, n);
        check_refused(&mom_model, bad, "corrupt: checksum mismatch");
        b[flips[k]] ^= 0x10;
    }
    /* Not ours; a newer format; bytes after the end. */
    b[0] = 'X';
    write_bytes(bad, b, n);
    check_refused(&mom_model, bad, "not a gradc checkpoint");
    b[0] = 'G';
    b[8] = 3;
    write_bytes(bad, b, n);
    check_refused(&mom_model, bad, "written by a newer gradc (version 3)");
    b[8] = 2;
    unsigned char *longer = calloc((size_t)n + 8, 1);
    memcpy(longer, b, (size_t)n);
    write_bytes(bad, longer, n + 8);
    check_refused(&mom_model, bad, "corrupt: 212 bytes where a checkpoint of mom has 204");
    free(longer);
    write_bytes(bad, b, n); /* the untouched bytes load: the cases above were the cause */
    long step;
    uint64_t seed;
    char err[512];
    ck_assert_int_eq(rt_checkpoint_load(&mom_model, bad, &step, &seed, err, sizeof err), 0);
    free(b);
    write_f64(tmp("x.npy"), 1, (long[]){30}, (double[30]){0});
    check_refused(&mom_model, tmp("x.npy"), "not a gradc checkpoint");
    check_refused(&mom_model, tmp("missing.ckpt"), "cannot open");
    check_refused(&mom_model, tmpdir, "not a regular file");

    /* Other models: another name (another size, and the same size)... */
    save_ok(&linreg_model, tmp("linreg.ckpt"), 1, 1);
    check_refused(&mom_model, tmp("linreg.ckpt"),
                  "is a checkpoint of model 'linreg', not of 'mom'");
    rt_model mum = mom_model;
    mum.name = "mum";
    save_ok(&mum, tmp("mum.ckpt"), 1, 1);
    check_refused(&mom_model, tmp("mum.ckpt"), "is a checkpoint of model 'mum', not of 'mom'");
    /* ...this model with other shapes (the same size, and another)... */
    rt_model reshaped = mom_model;
    rt_tensor p = mom_params[0];
    p.shape[0] = 1, p.shape[1] = 3;
    reshaped.params = &p;
    save_ok(&reshaped, tmp("reshaped.ckpt"), 1, 1);
    check_refused(&mom_model, tmp("reshaped.ckpt"),
                  "is a checkpoint of another shape of model 'mom' (recompiled?)");
    rt_model sgd = mom_model;
    sgd.optimizer = RT_OPT_SGD;
    sgd.n_state = 0;
    save_ok(&sgd, tmp("sgd.ckpt"), 1, 1);
    check_refused(&mom_model, tmp("sgd.ckpt"), "of another shape of model 'mom' (recompiled?)");
    /* ...and the other build of this model, both ways. */
    rt_model fm = mom_float();
    save_ok(&fm, tmp("f32.ckpt"), 1, 1);
    check_refused(&mom_model, tmp("f32.ckpt"),
                  "holds float32 values; this program is the float64 build");
    check_refused(&fm, good, "holds float64 values; this program is the float32 build");
    remove_tmpdir();
}
END_TEST

START_TEST(test_checkpoint_save_errors)
{
    make_tmpdir();
    char err[512];
    const char *path = tmp("no/such/m.ckpt");
    ck_assert_int_eq(rt_checkpoint_save(&mom_model, path, 1, 1, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && strstr(err, "cannot save"), "%s", err);
    /* A directory in the way of the rename: the temp file is removed. */
    ck_assert_int_eq(mkdir(tmp("dir.ckpt"), 0700), 0);
    ck_assert_int_eq(mkdir(tmp("dir.ckpt/x"), 0700), 0);
    ck_assert_int_eq(rt_checkpoint_save(&mom_model, tmp("dir.ckpt"), 1, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "dir.ckpt: cannot save a checkpoint"));
    ck_assert_int_eq(files_in_tmpdir(), 1);
    remove_tmpdir();
}
END_TEST

/* ---- the trainer's checkpoints ---- */

/* Twelve rows of x and y = x w* + noise: three minibatches of mom's 4. */
static void mom_data(char *dx, char *dy, size_t n)
{
    double x[12 * F], y[12];
    rt_rng r;
    rt_rng_seed(&r, 5);
    for (int b = 0; b < 12; b++) {
        y[b] = 0.1 * rt_rng_normal(&r);
        for (int j = 0; j < F; j++) {
            x[b * F + j] = rt_rng_normal(&r);
            y[b] += x[b * F + j] * (j - 1.5);
        }
    }
    write_f64(tmp("mx.npy"), 2, (long[]){12, F}, x);
    write_f64(tmp("my.npy"), 2, (long[]){12, 1}, y);
    snprintf(dx, n, "x=%s", tmp("mx.npy"));
    snprintf(dy, n, "y=%s", tmp("my.npy"));
}

START_TEST(test_train_exact_resume)
{
    make_tmpdir();
    char dx[300], dy[300], full[300], half[300], resumed[300];
    mom_data(dx, dy, sizeof dx);
    snprintf(full, sizeof full, "%s", tmp("full.ckpt"));
    snprintf(half, sizeof half, "%s", tmp("half.ckpt"));
    snprintf(resumed, sizeof resumed, "%s", tmp("resumed.ckpt"));
    Run a = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--data", dx, "--data", dy, "--steps", "20", "--print-every",
                                      "1", "--checkpoint", full, NULL});
    ck_assert_msg(a.rc == 0, "%s", a.err);
    Run b = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--data", dx, "--data", dy, "--steps", "10", "--print-every",
                                      "1", "--checkpoint", half, NULL});
    ck_assert_msg(b.rc == 0, "%s", b.err);
    Run c = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--data", dx, "--data", dy, "--steps", "20", "--print-every",
                                      "1", "--resume", half, "--checkpoint", resumed, NULL});
    ck_assert_msg(c.rc == 0, "%s", c.err);
    ck_assert_ptr_nonnull(strstr(c.err, "mom_train: resumed from "));
    ck_assert_ptr_nonnull(strstr(c.err, "half.ckpt at step 10\n"));
    /* Steps 11..20, bit for bit, and nothing before them. */
    char *want = step_lines(a.out, 11), *got = step_lines(c.out, 1);
    ck_assert_int_eq(count_lines(got), 10);
    ck_assert_str_eq(got, want);
    ck_assert_double_eq(last_value(c.out, "final loss "), last_value(a.out, "final loss "));
    /* The same end state: byte-identical checkpoints. */
    long n1, n2;
    unsigned char *f1 = read_bytes(full, &n1), *f2 = read_bytes(resumed, &n2);
    ck_assert_int_eq(n1, n2);
    ck_assert_mem_eq(f1, f2, (size_t)n1);
    free(f1), free(f2), free(got);

    /* The test can fail: resuming without the optimizer state goes elsewhere. */
    long step;
    uint64_t seed;
    char err[512];
    ck_assert_int_eq(rt_checkpoint_load(&mom_model, half, &step, &seed, err, sizeof err), 0);
    memset(mom_arena + M_BUF, 0, F * sizeof(double));
    save_ok(&mom_model, tmp("nostate.ckpt"), step, seed);
    Run d = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--data", dx, "--data", dy, "--steps", "20", "--print-every",
                                      "1", "--resume", tmp("nostate.ckpt"), NULL});
    ck_assert_int_eq(d.rc, 0);
    got = step_lines(d.out, 1);
    ck_assert_int_eq(count_lines(got), 10);
    ck_assert_str_ne(got, want);
    free(got), free(want);
    run_free(&a), run_free(&b), run_free(&c), run_free(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_resume_seed)
{
    make_tmpdir();
    char ck[300];
    snprintf(ck, sizeof ck, "%s", tmp("s.ckpt"));
    /* Random inputs come from the seed: the checkpoint's wins. */
    Run a = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--seed", "7", "--steps", "20", "--print-every", "1", NULL});
    ck_assert_int_eq(a.rc, 0);
    Run b = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--seed", "7", "--steps", "10", "--checkpoint", ck, NULL});
    ck_assert_int_eq(b.rc, 0);
    Run c = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--seed", "3", "--steps", "20", "--print-every", "1",
                                      "--resume", ck, NULL});
    ck_assert_msg(c.rc == 0, "%s", c.err);
    ck_assert_ptr_nonnull(strstr(c.err, "mom_train: using the checkpoint's seed 7, not --seed 3"));
    char *want = step_lines(a.out, 11), *got = step_lines(c.out, 1);
    ck_assert_str_eq(got, want);
    free(got), free(want);
    /* Already there: nothing trained, nothing printed, success. */
    Run d =
        run_main(rt_train_main, &mom_model, (const char *[]){"--steps", "8", "--resume", ck, NULL});
    ck_assert_int_eq(d.rc, 0);
    ck_assert_str_eq(d.out, "");
    ck_assert_ptr_nonnull(
        strstr(d.err, "s.ckpt is at step 10, and --steps is 8: nothing to train"));
    ck_assert_ptr_null(strstr(d.err, "using the checkpoint's seed"));
    run_free(&a), run_free(&b), run_free(&c), run_free(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_nan_stop)
{
    make_tmpdir();
    char ck[300], want[600];
    snprintf(ck, sizeof ck, "%s", tmp("n.ckpt"));
    Run r = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--steps", "5", "--checkpoint", ck, NULL});
    ck_assert_int_eq(r.rc, 0);
    run_free(&r);
    long n0;
    unsigned char *before = read_bytes(ck, &n0);

    /* The loss turns NaN at step 8 of a resumed run: the checkpoint it
     * would have saved at the end is never written. */
    poison_at = 8;
    poison_loss = 1;
    r = run_main(rt_train_main, &mom_model,
                 (const char *[]){"--steps", "20", "--resume", ck, "--checkpoint", ck, NULL});
    ck_assert_int_eq(r.rc, 1);
    snprintf(want, sizeof want,
             "mom_train: loss is nan at step 8; last good checkpoint: %s (step 5)\n", ck);
    ck_assert_str_eq(r.err + strlen(r.err) - strlen(want), want);
    ck_assert_ptr_null(strstr(r.out, "final loss"));
    run_free(&r);
    long n1;
    unsigned char *after = read_bytes(ck, &n1);
    ck_assert_int_eq(n0, n1);
    ck_assert_mem_eq(before, after, (size_t)n0);
    free(after);

    /* The update of step 6 leaves a NaN parameter (its loss is still
     * finite) just when --save-every would save: it refuses, and stops. */
    poison_at = 6;
    poison_loss = 0;
    r = run_main(rt_train_main, &mom_model,
                 (const char *[]){"--steps", "20", "--save-every", "3", "--checkpoint", ck, NULL});
    ck_assert_int_eq(r.rc, 1);
    snprintf(want, sizeof want,
             "mom_train: a parameter is nan after step 6; last good checkpoint: %s (step 3)\n", ck);
    ck_assert_str_eq(r.err + strlen(r.err) - strlen(want), want);
    run_free(&r);
    long step;
    uint64_t seed;
    char err[512];
    ck_assert_int_eq(rt_checkpoint_load(&mom_model, ck, &step, &seed, err, sizeof err), 0);
    ck_assert_int_eq(step, 3);
    for (int j = 0; j < F; j++)
        ck_assert(isfinite(mom_arena[M_W + j]));

    /* No checkpoint at all. */
    poison_at = 2;
    poison_loss = 1;
    r = run_main(rt_train_main, &mom_model, (const char *[]){"--steps", "20", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(
        strstr(r.err, "mom_train: loss is nan at step 2; no checkpoint was saved\n"));
    run_free(&r);
    poison_at = 0;
    free(before);
    remove_tmpdir();
}
END_TEST

/* rt_train_main on mom_model in a child whose step 5 raises sig, with
 * tmpdir as its working directory; returns its exit status. */
static int interrupted_child(int sig, const char *const *args)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[32] = {"prog"};
        int argc = 1;
        while (args[argc - 1])
            argv[argc] = (char *)args[argc - 1], argc++;
        int fo = open(tmp("child.out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(tmp("child.err"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0 || chdir(tmpdir) != 0)
            _exit(99);
        interrupt_at = 5;
        interrupt_sig = sig;
        int rc = rt_train_main(&mom_model, argc, argv);
        fflush(stdout);
        _exit(rc);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

START_TEST(test_train_interrupt)
{
    make_tmpdir();
    struct sigaction before, after;
    ck_assert_int_eq(sigaction(SIGINT, NULL, &before), 0);
    Run ref = run_main(rt_train_main, &mom_model,
                       (const char *[]){"--steps", "20", "--print-every", "1", NULL});
    ck_assert_int_eq(ref.rc, 0);
    /* The trainer gives the caller its handlers back. */
    ck_assert_int_eq(sigaction(SIGINT, NULL, &after), 0);
    ck_assert_ptr_eq((void *)after.sa_handler, (void *)before.sa_handler);

    char ck[300], want[700];
    snprintf(ck, sizeof ck, "%s", tmp("i.ckpt"));
    ck_assert_int_eq(interrupted_child(SIGINT, (const char *[]){"--steps", "20", "--print-every",
                                                                "1", "--checkpoint", ck, NULL}),
                     130);
    char *err = slurp(tmp("child.err")), *out = slurp(tmp("child.out"));
    snprintf(want, sizeof want,
             "mom_train: interrupted at step 5; saved %s; resume with --resume %s\n", ck, ck);
    ck_assert_str_eq(err + strlen(err) - strlen(want), want);
    char *lines = step_lines(ref.out, 1);
    lines[strstr(lines, "step 6 ") - lines] = '\0';
    ck_assert_str_eq(out, lines); /* steps 1..5, no final line */
    free(err), free(out), free(lines);
    long step;
    uint64_t seed;
    char e[512];
    ck_assert_msg(rt_checkpoint_load(&mom_model, ck, &step, &seed, e, sizeof e) == 0, "%s", e);
    ck_assert_int_eq(step, 5);
    /* Resumed, it prints what the run that was never stopped printed. */
    Run r = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--steps", "20", "--print-every", "1", "--resume", ck, NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    char *got = step_lines(r.out, 1), *rest = step_lines(ref.out, 6);
    ck_assert_int_eq(count_lines(got), 15);
    ck_assert_str_eq(got, rest);
    free(got), free(rest);
    run_free(&r);

    /* SIGTERM, no --checkpoint: NAME.ckpt in the working directory. */
    ck_assert_int_eq(interrupted_child(SIGTERM, (const char *[]){"--steps", "20", NULL}), 130);
    err = slurp(tmp("child.err"));
    ck_assert_ptr_nonnull(strstr(
        err, "mom_train: interrupted at step 5; saved mom.ckpt; resume with --resume mom.ckpt\n"));
    free(err);
    ck_assert_int_eq(rt_checkpoint_load(&mom_model, tmp("mom.ckpt"), &step, &seed, e, sizeof e), 0);
    ck_assert_int_eq(step, 5);
    run_free(&ref);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_export)
{
    make_tmpdir();
    char dir[300], err[512], code[2048];
    snprintf(dir, sizeof dir, "%s", tmp("exp/deep"));
    Run r = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--steps", "5", "--export", dir, NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    run_free(&r);
    /* The trained values, in their shape and the build's type. */
    rt_array a;
    ck_assert_msg(rt_npy_read(tmp("exp/deep/w.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, RT_F64);
    ck_assert_int_eq(a.rank, 2);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert_int_eq(a.shape[1], 1);
    ck_assert_mem_eq(a.data, mom_arena + M_W, 3 * sizeof(double));
    ck_assert_double_ne(mom_arena[M_W], 0);
    rt_array_free(&a);
    snprintf(code, sizeof code,
             "import numpy as np\n"
             "a = np.load('exp/deep/w.npy')\n"
             "assert a.shape == (3, 1) and a.dtype == np.float64, (a.shape, a.dtype)\n"
             "assert (a[:, 0] == [%.17g, %.17g, %.17g]).all(), a\n",
             mom_arena[M_W], mom_arena[M_W + 1], mom_arena[M_W + 2]);
    ck_assert_int_eq(python(code), 0);

    /* A float build writes float32; the directory is made if missing. */
    rt_init_params(&float_model, 3);
    ck_assert_msg(rt_export_params(&float_model, tmp("fexp"), err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(rt_npy_read(tmp("fexp/u.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_F32);
    ck_assert_int_eq(a.rank, 1);
    ck_assert_int_eq(a.shape[0], 4);
    ck_assert_mem_eq(a.data, f_arena + 16, 4 * sizeof(float));
    rt_array_free(&a);
    snprintf(code, sizeof code,
             "import numpy as np\n"
             "b, u = np.load('fexp/b.npy'), np.load('fexp/u.npy')\n"
             "assert b.shape == (2,) and b.dtype == np.float32 and (b == 0.25).all(), b\n"
             "assert u.shape == (4,) and u.dtype == np.float32, u\n"
             "assert (u == np.array([%.9g, %.9g, %.9g, %.9g], dtype=np.float32)).all(), u\n",
             f_arena[16], f_arena[17], f_arena[18], f_arena[19]);
    ck_assert_int_eq(python(code), 0);

    /* A file in the way: one line naming it. */
    write_bytes(tmp("afile"), "x", 1);
    r = run_main(rt_train_main, &mom_model,
                 (const char *[]){"--steps", "2", "--export", tmp("afile"), NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "afile"));
    ck_assert_int_eq(count_lines(r.err), 2); /* the random-data note, and this */
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_checkpoint_flags)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &mom_model, (const char *[]){"--save-every", "3", NULL});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "mom_train: --save-every needs --checkpoint FILE"));
    run_free(&r);
    r = run_main(rt_train_main, &mom_model, (const char *[]){"--checkpoint=", NULL});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--checkpoint: expected a path"));
    run_free(&r);
    r = run_main(rt_train_main, &mom_model, (const char *[]){"--resume", tmp("none.ckpt"), NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "mom_train: "));
    ck_assert_ptr_nonnull(strstr(r.err, "none.ckpt: cannot open"));
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    save_ok(&linreg_model, tmp("l.ckpt"), 4, 1);
    r = run_main(rt_train_main, &mom_model, (const char *[]){"--resume", tmp("l.ckpt"), NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "l.ckpt: is a checkpoint of model 'linreg', not of 'mom'"));
    run_free(&r);
    r = run_main(rt_train_main, &mom_model,
                 (const char *[]){"--steps", "3", "--checkpoint", tmp("no/dir/c.ckpt"), NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "no/dir/c.ckpt: cannot save a checkpoint"));
    run_free(&r);
    r = run_main(rt_train_main, &mom_model, (const char *[]){"--help", NULL});
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "--checkpoint F"));
    ck_assert_ptr_nonnull(strstr(r.out, "--save-every K"));
    ck_assert_ptr_nonnull(strstr(r.out, "--resume F"));
    ck_assert_ptr_nonnull(strstr(r.out, "--export DIR"));
    ck_assert_ptr_nonnull(strstr(r.out, "mom.ckpt"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

/* Shuffled minibatches and evaluations resume bit for bit too. */
START_TEST(test_train_exact_resume_shuffled)
{
    make_tmpdir();
    char dx[300], dy[300], half[300];
    mom_data(dx, dy, sizeof dx);
    snprintf(half, sizeof half, "%s", tmp("half.ckpt"));
    /* 12 rows, 0.33: 4 held out (one full batch), 8 shuffled (2 an epoch). */
    const char *full[] = {"--data", dx,  "--data",        dy,  "--val-split", "0.33",
                          "--seed", "5", "--print-every", "1", "--steps",     "20",
                          NULL};
    Run a = run_main(rt_train_main, &mom_model, full);
    ck_assert_msg(a.rc == 0, "%s", a.err);
    Run b = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--data", dx, "--data", dy, "--val-split", "0.33", "--seed",
                                      "5", "--steps", "10", "--checkpoint", half, NULL});
    ck_assert_msg(b.rc == 0, "%s", b.err);
    Run c =
        run_main(rt_train_main, &mom_model,
                 (const char *[]){"--data", dx, "--data", dy, "--val-split", "0.33",
                                  "--print-every", "1", "--steps", "20", "--resume", half, NULL});
    ck_assert_msg(c.rc == 0, "%s", c.err);
    char *want = result_lines(a.out, 11), *got = result_lines(c.out, 1);
    ck_assert_int_eq(count_lines(got), 15); /* steps 11..20, evals at 12..20 */
    ck_assert_str_eq(got, want);
    free(got), free(want);
    /* The test can fail: file order trains on other batches. */
    Run d =
        run_main(rt_train_main, &mom_model,
                 (const char *[]){"--data", dx, "--data", dy, "--val-split", "0.33", "--seed", "5",
                                  "--print-every", "1", "--steps", "20", "--no-shuffle", NULL});
    ck_assert_int_eq(d.rc, 0);
    want = step_lines(a.out, 1), got = step_lines(d.out, 1);
    ck_assert_int_eq(count_lines(got), 20);
    ck_assert_str_ne(got, want);
    free(got), free(want);
    /* Same seed, same numbers; another seed shuffles (and starts) elsewhere. */
    Run e = run_main(rt_train_main, &mom_model, full);
    want = result_lines(a.out, 1), got = result_lines(e.out, 1);
    ck_assert_int_eq(count_lines(got), 30);
    ck_assert_str_eq(got, want);
    free(got), free(want);
    run_free(&a), run_free(&b), run_free(&c), run_free(&d), run_free(&e);
    remove_tmpdir();
}
END_TEST

/* ---- --init DIR: parameters from .npy files ---- */

/* A model with a buffer after its parameter, as batch norm's running
 * averages follow the weights: w [2], then avg [3] that starts at 1. */
static double buf_arena[5];
static const rt_tensor buf_params[] = {
    {.name = "w",
     .dtype = RT_F64,
     .rank = 1,
     .shape = {2},
     .size = 2,
     .offset = 0,
     .init = RT_INIT_CONST,
     .init_a = 0.5},
};
static const rt_tensor buf_buffers[] = {
    {.name = "avg",
     .dtype = RT_F64,
     .rank = 1,
     .shape = {3},
     .size = 3,
     .offset = 2,
     .init = RT_INIT_CONST,
     .init_a = 1},
};
static const rt_model buf_model = {.name = "bufm",
                                   .real = RT_F64,
                                   .arena = buf_arena,
                                   .iarena = no_iarena,
                                   .arena_size = 5,
                                   .n_params = 1,
                                   .n_buffers = 1,
                                   .params = buf_params,
                                   .buffers = buf_buffers,
                                   .grads = buf_params,
                                   .n_param_elems = 2,
                                   .n_buffer_elems = 3};

/* rt_import_params(m, dir) fails with a line that starts with `start` and
 * holds `want`, and leaves the model's arena as it was. */
static void import_refused(const rt_model *m, const char *dir, const char *start, const char *want)
{
    char err[512] = "";
    size_t bytes = (size_t)m->arena_size * (m->real == RT_F64 ? 8 : 4);
    char *before = malloc(bytes);
    memcpy(before, m->arena, bytes);
    ck_assert_int_eq(rt_import_params(m, dir, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, start, strlen(start)) == 0 && strstr(err, want),
                  "want '%s...%s', got '%s'", start, want, err);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_mem_eq(m->arena, before, bytes);
    free(before);
}

static void copy_file(const char *from, const char *to)
{
    long n;
    unsigned char *b = read_bytes(from, &n);
    write_bytes(to, b, n);
    free(b);
}

/* Exported by one run, --init another: the same parameters bit for bit
 * (exported again after a step at rate 0), and the second run's first
 * loss is the first run's final loss, on the same random batch. */
START_TEST(test_train_init_round_trip)
{
    make_tmpdir();
    char e1[300], e2[300], e3[300];
    snprintf(e1, sizeof e1, "%s", tmp("e1"));
    snprintf(e2, sizeof e2, "%s", tmp("e2"));
    snprintf(e3, sizeof e3, "%s", tmp("e3"));
    Run a = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--steps", "5", "--seed", "3", "--export", e1, NULL});
    ck_assert_msg(a.rc == 0, "%s", a.err);
    Run b = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--steps", "1", "--seed", "3", "--lr", "0", "--init", e1,
                                      "--export", e2, NULL});
    ck_assert_msg(b.rc == 0, "%s", b.err);
    ck_assert_msg(strstr(b.err, "mom_train: parameters from "), "%s", b.err);
    long n1, n2;
    unsigned char *f1 = read_bytes(tmp("e1/w.npy"), &n1), *f2 = read_bytes(tmp("e2/w.npy"), &n2);
    ck_assert_int_eq(n1, n2);
    ck_assert_mem_eq(f1, f2, (size_t)n1);
    free(f2);
    double final = last_value(a.out, "final loss "), first = last_value(b.out, "step 1 loss ");
    ck_assert(isfinite(final));
    ck_assert_double_eq(first, final);
    /* The test can fail: from the seed, the same run starts elsewhere. */
    Run c = run_main(
        rt_train_main, &mom_model,
        (const char *[]){"--steps", "1", "--seed", "3", "--lr", "0", "--export", e3, NULL});
    ck_assert_msg(c.rc == 0, "%s", c.err);
    ck_assert_double_ne(last_value(c.out, "step 1 loss "), final);
    f2 = read_bytes(tmp("e3/w.npy"), &n2);
    ck_assert_int_eq(n1, n2);
    ck_assert(memcmp(f1, f2, (size_t)n1) != 0);
    free(f1), free(f2);
    run_free(&a), run_free(&b), run_free(&c);
    remove_tmpdir();
}
END_TEST

/* The trainer refuses a bad directory in one line that names the file and
 * what is wrong, exit 1, before it trains or prints a step. */
static void train_init_refused(const char *dir, const char *file, const char *want)
{
    char start[400];
    snprintf(start, sizeof start, "mom_train: --init: %s%s", dir, file);
    Run r = run_main(rt_train_main, &mom_model, (const char *[]){"--init", dir, NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_msg(strncmp(r.err, start, strlen(start)) == 0 && strstr(r.err, want),
                  "want '%s...%s', got '%s'", start, want, r.err);
    ck_assert_int_eq(count_lines(r.err), 1);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}

START_TEST(test_train_init_refusals)
{
    make_tmpdir();
    char d[300];
    snprintf(d, sizeof d, "%s", tmp("d"));
    ck_assert_int_eq(mkdir(d, 0777), 0);
    train_init_refused(d, "/w.npy", ": missing: parameter w [3,1] of model mom has no file");
    train_init_refused(tmp("none"), "", ": cannot open: No such file or directory");
    write_bytes(tmp("plain"), "x", 1);
    train_init_refused(tmp("plain"), "", ": not a directory");
    /* Each case is d/w.npy made wrong another way, by numpy. */
    static const struct {
        const char *make, *file, *want;
    } cases[] = {
        {"np.save('d/w.npy', np.zeros((1, 3)))", "/w.npy",
         ": shape [1,3], but parameter w of model mom is [3,1]"},
        {"np.save('d/w.npy', np.zeros(3))", "/w.npy",
         ": shape [3], but parameter w of model mom is [3,1]"},
        {"np.save('d/w.npy', np.zeros((3, 1), dtype=np.int32))", "/w.npy",
         ": dtype int32; parameter w needs float32 or float64"},
        {"np.save('d/w.npy', np.zeros((3, 1), dtype=np.int64))", "/w.npy",
         ": dtype int64; parameter w needs float32 or float64"},
        {"np.save('d/w.npy', np.zeros((3, 1), dtype=np.float16))", "/w.npy",
         ": unsupported dtype '<f2'"},
        {"np.save('d/w.npy', np.array([[1.0], [np.nan], [2.0]]))", "/w.npy",
         ": element 1 is nan; a parameter must be finite"},
        {"np.save('d/w.npy', np.zeros((3, 1))); f = open('d/w.npy', 'r+b'); f.truncate(140)",
         "/w.npy", ": truncated: header says [3,1] float64 (24 bytes), file has 12 bytes"},
        {"np.save('d/w.npy', np.zeros((3, 1))); np.save('d/v.npy', np.zeros((3, 1)))", "/v.npy",
         ": names no parameter or buffer of model mom"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char code[600];
        snprintf(code, sizeof code,
                 "import numpy as np, os, shutil\n"
                 "shutil.rmtree('d'); os.mkdir('d')\n%s\n",
                 cases[k].make);
        ck_assert_int_eq(python(code), 0);
        train_init_refused(d, cases[k].file, cases[k].want);
    }
    /* A checkpoint holds its own parameters: one or the other. */
    Run r = run_main(rt_train_main, &mom_model,
                     (const char *[]){"--init", d, "--resume", tmp("c.ckpt"), NULL});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "mom_train: --init and --resume both give the starting "
                                        "parameters (a checkpoint holds its own); give one"));
    ck_assert_int_eq(count_lines(r.err), 1);
    run_free(&r);
    r = run_main(rt_train_main, &mom_model, (const char *[]){"--help", NULL});
    ck_assert_ptr_nonnull(strstr(r.out, "[--init DIR]"));
    ck_assert_ptr_nonnull(strstr(r.out, "\n  --init DIR         start from DIR/NAME.npy"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

/* What numpy wrote is what the model holds: exactly, in double; rounded
 * to nearest in float, as numpy rounds; and the trainer's first loss is
 * numpy's loss of those weights on that data. */
START_TEST(test_init_from_numpy)
{
    make_tmpdir();
    ck_assert_int_eq(
        python("import numpy as np, os\n"
               "r = np.random.default_rng(5)\n"
               "x, y, w = r.standard_normal((4, 3)), r.standard_normal((4, 1)), "
               "r.standard_normal((3, 1))\n"
               "np.save('x.npy', x); np.save('y.npy', y)\n"
               "os.mkdir('w64'); np.save('w64/w.npy', w)\n"
               "os.mkdir('w32'); np.save('w32/w.npy', w.astype(np.float32))\n"
               "w32 = w.astype(np.float32).astype(np.float64)\n"
               "f = open('values.txt', 'w')\n"
               "for v in list(w[:, 0]) + list(w32[:, 0]): f.write(repr(float(v)) + ' ')\n"
               "for v in (w, w32): f.write(repr(float(((x @ v - y) ** 2).sum())) + ' ')\n"),
        0);
    double v[8];
    FILE *f = fopen(tmp("values.txt"), "r");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(fscanf(f, "%lf", &v[i]), 1);
    fclose(f);
    char err[512];
    rt_model fm = mom_float();
    for (int i = 0; i < 3; i++)
        ck_assert_double_ne(v[i], v[3 + i]); /* float32 does round them */
    fill_mom(9);
    ck_assert_msg(rt_import_params(&mom_model, tmp("w64"), err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_import_params(&fm, tmp("w64"), err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(mom_arena[M_W + i], v[i]);
        ck_assert_double_eq((double)mom_farena[M_W + i], v[3 + i]);
    }
    ck_assert_double_eq(mom_arena[M_X], 9); /* nothing outside the parameters */
    fill_mom(9);
    ck_assert_msg(rt_import_params(&mom_model, tmp("w32"), err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_import_params(&fm, tmp("w32"), err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(mom_arena[M_W + i], v[3 + i]);
        ck_assert_double_eq((double)mom_farena[M_W + i], v[3 + i]);
    }
    const char *dirs[] = {"w64", "w32"};
    for (int k = 0; k < 2; k++) {
        char dx[300], dy[300], dw[300];
        snprintf(dx, sizeof dx, "x=%s", tmp("x.npy"));
        snprintf(dy, sizeof dy, "y=%s", tmp("y.npy"));
        snprintf(dw, sizeof dw, "%s", tmp(dirs[k]));
        Run r = run_main(
            rt_train_main, &mom_model,
            (const char *[]){"--data", dx, "--data", dy, "--init", dw, "--steps", "1", NULL});
        ck_assert_msg(r.rc == 0, "%s", r.err);
        double loss = last_value(r.out, "step 1 loss ");
        ck_assert_msg(fabs(loss - v[6 + k]) <= 1e-8 * v[6 + k], "%s: loss %.17g, numpy's %.17g",
                      dirs[k], loss, v[6 + k]);
        run_free(&r);
    }
    remove_tmpdir();
}
END_TEST

/* Buffers keep their initial values unless the directory has their file;
 * a refused directory changes nothing, though its first files were good. */
START_TEST(test_init_buffers_and_refusals)
{
    make_tmpdir();
    char err[512], d[300], b[300];
    snprintf(d, sizeof d, "%s", tmp("d"));
    snprintf(b, sizeof b, "%s", tmp("b"));
    ck_assert_int_eq(
        python("import numpy as np, os\n"
               "os.mkdir('d'); np.save('d/w.npy', np.array([3.0, -4.0]))\n"
               "os.mkdir('b'); np.save('b/w.npy', np.array([5.0, 6.0]))\n"
               "np.save('b/avg.npy', np.array([0.25, 0.5, 0.75], dtype=np.float32))\n"),
        0);
    rt_init_params(&buf_model, 1);
    ck_assert_msg(rt_import_params(&buf_model, d, err, sizeof err) == 0, "%s", err);
    const double kept[] = {3, -4, 1, 1, 1}, read[] = {5, 6, 0.25, 0.5, 0.75};
    ck_assert_mem_eq(buf_arena, kept, sizeof kept);
    ck_assert_msg(rt_import_params(&buf_model, b, err, sizeof err) == 0, "%s", err);
    ck_assert_mem_eq(buf_arena, read, sizeof read);
    /* Exported, the buffer is there too, and comes back. */
    ck_assert_msg(rt_export_params(&buf_model, tmp("x"), err, sizeof err) == 0, "%s", err);
    rt_init_params(&buf_model, 1);
    ck_assert_msg(rt_import_params(&buf_model, tmp("x"), err, sizeof err) == 0, "%s", err);
    ck_assert_mem_eq(buf_arena, read, sizeof read);

    /* A buffer's file is checked as a parameter's is. */
    ck_assert_int_eq(python("import numpy as np\nnp.save('b/avg.npy', np.zeros(2))\n"), 0);
    import_refused(&buf_model, b, b, "/avg.npy: shape [2], but buffer avg of model bufm is [3]");
    /* Only a buffer's file: the parameter's is missing. */
    ck_assert_int_eq(python("import numpy as np, os\nos.remove('b/w.npy')\n"
                            "np.save('b/avg.npy', np.zeros(3))\n"),
                     0);
    import_refused(&buf_model, b, b, "/w.npy: missing: parameter w [2] of model bufm");
    /* Files that are no .npy are no concern of --init. */
    write_bytes(tmp("d/notes.txt"), "x", 1);
    write_bytes(tmp("d/w.npy.tmp.1.0"), "x", 1);
    ck_assert_msg(rt_import_params(&buf_model, d, err, sizeof err) == 0, "%s", err);
    /* The float build: the first file good, the second bad, nothing read. */
    rt_model fm = mom_float();
    rt_tensor two[2] = {mom_params[0], mom_params[0]};
    two[1].name = "v";
    two[1].offset = M_W + 3;
    fm.params = two;
    fm.n_params = 2;
    fm.n_param_elems = 6;
    ck_assert_int_eq(python("import numpy as np, os\nos.mkdir('f')\n"
                            "np.save('f/w.npy', np.full((3, 1), 2.0))\n"
                            "np.save('f/v.npy', np.array([[1.0], [1e39], [0.0]]))\n"),
                     0);
    fill_mom(-3);
    char f[300];
    snprintf(f, sizeof f, "%s", tmp("f"));
    import_refused(&fm, f, f,
                   "/v.npy: element 1 is 1e+39, beyond float32's range (this is the float build "
                   "of mom)");
    ck_assert_int_eq(python("import numpy as np\nnp.save('f/v.npy', np.array([[1.0], [1e38], "
                            "[0.0]]))\n"),
                     0);
    ck_assert_msg(rt_import_params(&fm, f, err, sizeof err) == 0, "%s", err);
    ck_assert(mom_farena[M_W] == 2.0f && mom_farena[M_W + 4] == 1e38f);
    copy_file(tmp("f/w.npy"), tmp("f/w2.npy"));
    import_refused(&fm, f, f, "/w2.npy: names no parameter or buffer of model mom");
    remove_tmpdir();
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_checkpoint_round_trip);
    tcase_add_test(tc, test_checkpoint_signature);
    tcase_add_test(tc, test_checkpoint_refusals);
    tcase_add_test(tc, test_checkpoint_save_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("resume");
    tcase_add_test(tc, test_train_exact_resume);
    tcase_add_test(tc, test_train_resume_seed);
    tcase_add_test(tc, test_train_nan_stop);
    tcase_add_test(tc, test_train_interrupt);
    tcase_add_test(tc, test_train_export);
    tcase_add_test(tc, test_train_checkpoint_flags);
    tcase_add_test(tc, test_train_exact_resume_shuffled);
    suite_add_tcase(s, tc);
    tc = tcase_create("init");
    tcase_add_test(tc, test_train_init_round_trip);
    tcase_add_test(tc, test_train_init_refusals);
    tcase_add_test(tc, test_init_from_numpy);
    tcase_add_test(tc, test_init_buffers_and_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(checkpoint_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
