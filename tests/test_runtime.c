/*
 * test_runtime.c: the trainer (train.c, its flags in train_args.c, its
 * progress bar in progress.c) and the gradient check (gradcheck.c), on
 * tiny models written by hand, each a real rt_model descriptor over a
 * static arena: runtime_models.h's linear regression (with the right
 * gradient and a wrong one) and float build, a quadratic with 100
 * parameters (for the seeded picks), |w| at 0 (all kinks), a float model
 * whose step sees how the CPU treats subnormals, and a classifier whose
 * output is a copy of its input (so its argmaxes, and the accuracy, are
 * known) and which counts the rows each step trains on, and a token model
 * whose logits all but say the next id is the last plus one (so the text
 * --sample prints is known). And util.c's clock. Checkpoints and resuming are test_checkpoint.c's,
 * data binding test_data.c's, the arithmetic test_numerics.c's.
 */
/* posix_openpt and friends: the progress bar needs a terminal to appear. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "runtime_models.h"
#include "rt_real.h"

/* ---- quadratic: loss = sum_i c_i v_i^2 / 2, 100 elements ---- */

enum { Q = 100 };
static double q_arena[2 * Q + 1];

static double quad_loss_and_grad(void)
{
    double loss = 0;
    for (int i = 0; i < Q; i++) {
        double c = 1 + i / 100.0, v = q_arena[i];
        loss += 0.5 * c * v * v;
        q_arena[Q + i] = c * v;
    }
    q_arena[2 * Q] = loss;
    return loss;
}

static const rt_tensor q_params[] = {
    {.name = "v",
     .dtype = RT_F64,
     .rank = 2,
     .shape = {10, 10},
     .size = Q,
     .offset = 0,
     .init = RT_INIT_UNIFORM,
     .init_a = -1,
     .init_b = 1},
};
static const rt_tensor q_grads[] = {
    {.name = "d_v", .dtype = RT_F64, .rank = 2, .shape = {10, 10}, .size = Q, .offset = Q},
};
static const rt_model quad_model = {.name = "quad",
                                    .batch = 1,
                                    .real = RT_F64,
                                    .arena = q_arena,
                                    .iarena = no_iarena,
                                    .arena_size = 2 * Q + 1,
                                    .n_params = 1,
                                    .params = q_params,
                                    .grads = q_grads,
                                    .params_offset = 0,
                                    .grads_offset = Q,
                                    .n_param_elems = Q,
                                    .loss_offset = 2 * Q,
                                    .loss = quad_loss_and_grad,
                                    .loss_and_grad = quad_loss_and_grad};

/* ---- |w| at w = 0: every element sits on a kink ---- */

static double k_arena[7];

static double kink_loss_and_grad(void)
{
    double loss = 0;
    for (int i = 0; i < 3; i++) {
        double w = k_arena[i];
        loss += fabs(w);
        k_arena[3 + i] = (w > 0) - (w < 0);
    }
    k_arena[6] = loss;
    return loss;
}

static const rt_tensor k_params[] = {
    {.name = "w",
     .dtype = RT_F64,
     .rank = 1,
     .shape = {3},
     .size = 3,
     .offset = 0,
     .init = RT_INIT_CONST,
     .init_a = 0},
};
static const rt_tensor k_grads[] = {
    {.name = "d_w", .dtype = RT_F64, .rank = 1, .shape = {3}, .size = 3, .offset = 3},
};
static const rt_model kink_model = {.name = "kink",
                                    .batch = 1,
                                    .real = RT_F64,
                                    .arena = k_arena,
                                    .iarena = no_iarena,
                                    .arena_size = 7,
                                    .n_params = 1,
                                    .params = k_params,
                                    .grads = k_grads,
                                    .params_offset = 0,
                                    .grads_offset = 3,
                                    .n_param_elems = 3,
                                    .loss_offset = 6,
                                    .loss = kink_loss_and_grad,
                                    .loss_and_grad = kink_loss_and_grad};

/* ---- a classifier: out = s, loss = sum_bj s_bj w_j + sum_b label_b ---- */

enum { CB = 4, CC = 3 };
enum { C_S = 0, C_OUT = 12, C_W = 24, C_DW = 27, C_LOSS = 30, C_ARENA = 31 };
static double c_arena[C_ARENA];
static int32_t c_iarena[CB];
/* How many times train_step saw row r, for rows whose s[0] is the id r. */
static long c_trained[64];

/* dL/dw_j = sum_b s_bj */
static double cls_loss_and_grad(void)
{
    double loss = 0;
    for (int j = 0; j < CC; j++)
        c_arena[C_DW + j] = 0;
    for (int b = 0; b < CB; b++) {
        loss += c_iarena[b];
        for (int j = 0; j < CC; j++) {
            loss += c_arena[C_S + b * CC + j] * c_arena[C_W + j];
            c_arena[C_DW + j] += c_arena[C_S + b * CC + j];
        }
    }
    c_arena[C_LOSS] = loss;
    return loss;
}

static double cls_train_step(const rt_hyper *h)
{
    double loss = cls_loss_and_grad();
    for (int b = 0; b < CB; b++) {
        double id = c_arena[C_S + b * CC];
        if (id >= 0 && id < 64 && id == floor(id))
            c_trained[(int)id]++;
    }
    for (int j = 0; j < CC; j++)
        c_arena[C_W + j] -= h->lr * c_arena[C_DW + j];
    return loss;
}

/* The first rows rows of s, the rest zero, as generated code leaves them. */
static void cls_forward(int rows)
{
    for (int i = 0; i < CB * CC; i++)
        c_arena[C_OUT + i] = i < rows * CC ? c_arena[C_S + i] : 0;
}

static const rt_tensor c_inputs[] = {
    {.name = "s", .dtype = RT_F64, .rank = 2, .shape = {CB, CC}, .size = CB * CC, .offset = C_S},
    {.name = "label",
     .dtype = RT_I32,
     .rank = 1,
     .shape = {CB},
     .size = CB,
     .offset = 0,
     .classes = CC},
};
static const rt_tensor c_params[] = {
    {.name = "w",
     .dtype = RT_F64,
     .rank = 1,
     .shape = {CC},
     .size = CC,
     .offset = C_W,
     .init = RT_INIT_CONST,
     .init_a = 1},
};
static const rt_tensor c_grads[] = {
    {.name = "d_w", .dtype = RT_F64, .rank = 1, .shape = {CC}, .size = CC, .offset = C_DW},
};
static const rt_tensor c_outputs[] = {
    {.name = "out",
     .dtype = RT_F64,
     .rank = 2,
     .shape = {CB, CC},
     .size = CB * CC,
     .offset = C_OUT},
};
static const rt_model cls_model = {.name = "cls",
                                   .source = "cls.lua",
                                   .batch = CB,
                                   .real = RT_F64,
                                   .arena = c_arena,
                                   .iarena = c_iarena,
                                   .arena_size = C_ARENA,
                                   .iarena_size = CB,
                                   .n_inputs = 2,
                                   .n_params = 1,
                                   .n_outputs = 1,
                                   .inputs = c_inputs,
                                   .params = c_params,
                                   .grads = c_grads,
                                   .outputs = c_outputs,
                                   .params_offset = C_W,
                                   .grads_offset = C_DW,
                                   .n_param_elems = CC,
                                   .loss_offset = C_LOSS,
                                   .optimizer = RT_OPT_SGD,
                                   .hyper = {.lr = 0.1},
                                   .loss = cls_loss_and_grad,
                                   .loss_and_grad = cls_loss_and_grad,
                                   .train_step = cls_train_step,
                                   .forward = cls_forward};

/* ---- a token model: after id k, the logits put all but e^-40 of the
 * probability on k + 1 (mod KV), so a sample counts up from its prompt ---- */

enum { KB = 2, KT = 4, KV = 300 };
enum { K_LOGITS = 0, K_W = KB * KT * KV, K_DW = K_W + 1, K_LOSS = K_W + 2, K_ARENA = K_W + 3 };
static double k_count_arena[K_ARENA];
static int32_t k_count_iarena[2 * KB * KT];

static double count_loss_and_grad(void)
{
    double w = k_count_arena[K_W];
    k_count_arena[K_DW] = 2 * w;
    return k_count_arena[K_LOSS] = w * w;
}

static double count_train_step(const rt_hyper *h)
{
    double loss = count_loss_and_grad();
    k_count_arena[K_W] -= h->lr * k_count_arena[K_DW];
    return loss;
}

static void count_forward(int rows)
{
    for (int i = 0; i < KB * KT; i++) {
        int next = (k_count_iarena[i] + 1) % KV;
        for (int v = 0; v < KV; v++)
            k_count_arena[K_LOGITS + i * KV + v] = i < rows * KT && v == next ? 40 : 0;
    }
}

static const rt_tensor count_inputs[] = {
    {.name = "x", .dtype = RT_I32, .rank = 2, .shape = {KB, KT}, .size = KB * KT, .classes = KV},
    {.name = "y",
     .dtype = RT_I32,
     .rank = 2,
     .shape = {KB, KT},
     .size = KB * KT,
     .offset = KB * KT,
     .classes = KV},
};
static const rt_tensor count_params[] = {
    {.name = "w",
     .dtype = RT_F64,
     .rank = 1,
     .shape = {1},
     .size = 1,
     .offset = K_W,
     .init = RT_INIT_CONST,
     .init_a = 1},
};
static const rt_tensor count_grads[] = {
    {.name = "d_w", .dtype = RT_F64, .rank = 1, .shape = {1}, .size = 1, .offset = K_DW},
};
static const rt_tensor count_outputs[] = {
    {.name = "logits",
     .dtype = RT_F64,
     .rank = 3,
     .shape = {KB, KT, KV},
     .size = KB * KT * KV,
     .offset = K_LOGITS},
};
static const rt_model count_model = {.name = "count",
                                     .source = "count.lua",
                                     .batch = KB,
                                     .real = RT_F64,
                                     .arena = k_count_arena,
                                     .iarena = k_count_iarena,
                                     .arena_size = K_ARENA,
                                     .iarena_size = 2 * KB * KT,
                                     .n_inputs = 2,
                                     .n_params = 1,
                                     .n_outputs = 1,
                                     .inputs = count_inputs,
                                     .params = count_params,
                                     .grads = count_grads,
                                     .outputs = count_outputs,
                                     .params_offset = K_W,
                                     .grads_offset = K_DW,
                                     .n_param_elems = 1,
                                     .loss_offset = K_LOSS,
                                     .optimizer = RT_OPT_SGD,
                                     .hyper = {.lr = 0.1},
                                     .loss = count_loss_and_grad,
                                     .loss_and_grad = count_loss_and_grad,
                                     .train_step = count_train_step,
                                     .forward = count_forward};

/* ---- train ---- */

START_TEST(test_train_random_data)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &linreg_model, (const char *[]){"--steps", "50", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    double first = last_value(r.out, "step 1 loss ");
    double at50 = last_value(r.out, "step 50 loss ");
    double final = last_value(r.out, "final loss ");
    ck_assert(isfinite(first) && isfinite(at50) && isfinite(final));
    ck_assert_double_lt(final, 0.5 * first);
    ck_assert_double_le(final, at50);
    /* Steps 1, 10, 20, 30, 40, 50, then the final line: nothing else. */
    ck_assert_int_eq(count_lines(r.out), 7);
    ck_assert_ptr_nonnull(strstr(r.out, "step 10 loss "));
    /* Steps 2..50 timed apart from the first, which faults the arena in. */
    const char *first_ms = strstr(r.out, " ms/step, the first ");
    ck_assert_ptr_nonnull(first_ms);
    ck_assert_double_gt(strtod(first_ms + strlen(" ms/step, the first "), NULL), 0);
    ck_assert_ptr_nonnull(strstr(r.out, "final loss "));
    ck_assert_ptr_nonnull(strstr(strstr(r.out, "final loss "), "  "));
    run_free(&r);
    /* Same flags, same bytes of loss lines. */
    Run r2 = run_main(rt_train_main, &linreg_model, (const char *[]){"--steps", "50", NULL});
    ck_assert_double_eq(last_value(r2.out, "step 50 loss "), at50);
    run_free(&r2);
    remove_tmpdir();
}
END_TEST

/* --minutes alone trains until the time is up, past the default 100
 * steps; with --steps, whichever comes first ends the run. */
START_TEST(test_train_minutes)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &linreg_model,
                     (const char *[]){"--minutes", "0.005", "--print-every", "1000000000", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    const char *at = strstr(r.err, "--minutes 0.005 reached at step ");
    ck_assert_msg(at, "%s", r.err);
    long steps = atol(at + strlen("--minutes 0.005 reached at step "));
    ck_assert_int_gt(steps, 100);
    ck_assert_ptr_nonnull(strstr(r.out, "final loss "));
    run_free(&r);
    r = run_main(rt_train_main, &linreg_model,
                 (const char *[]){"--minutes", "1", "--steps", "30", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "step 30 loss "));
    ck_assert_ptr_null(strstr(r.err, "reached"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

/* ---- a float model whose step looks at how the CPU treats subnormals ---- */

static float ftz_arena[4]; /* w, d_w, loss */
static int ftz_seen;       /* the last step's: 1 if a subnormal result was flushed to 0 */

static double ftz_loss(void)
{
    ftz_arena[1] = 2 * ftz_arena[0];
    return ftz_arena[2] = ftz_arena[0] * ftz_arena[0];
}

static double ftz_step(const rt_hyper *h)
{
    volatile float tiny = 1e-30f, small = 1e-10f;
    ftz_seen = tiny * small == 0.0f; /* 1e-40 is subnormal */
    double loss = ftz_loss();
    ftz_arena[0] -= (float)h->lr * ftz_arena[1];
    return loss;
}

static const rt_tensor ftz_params[] = {
    {.name = "w",
     .dtype = RT_F32,
     .rank = 1,
     .shape = {1},
     .size = 1,
     .offset = 0,
     .init = RT_INIT_NORMAL,
     .init_a = 0,
     .init_b = 1},
};
static const rt_tensor ftz_grads[] = {
    {.name = "d_w", .dtype = RT_F32, .rank = 1, .shape = {1}, .size = 1, .offset = 1},
};
static const rt_model ftz_model = {.name = "ftz",
                                   .batch = 1,
                                   .real = RT_F32,
                                   .arena = ftz_arena,
                                   .iarena = no_iarena,
                                   .arena_size = 4,
                                   .n_params = 1,
                                   .params = ftz_params,
                                   .grads = ftz_grads,
                                   .params_offset = 0,
                                   .grads_offset = 1,
                                   .n_param_elems = 1,
                                   .loss_offset = 2,
                                   .optimizer = RT_OPT_SGD,
                                   .hyper = {.lr = 0.1},
                                   .loss = ftz_loss,
                                   .loss_and_grad = ftz_loss,
                                   .train_step = ftz_step,
                                   .forward = NULL};

/* Float training flushes subnormals to zero (rt_flush_subnormals); the
 * process around it did not, before. */
START_TEST(test_train_float_flushes_subnormals)
{
    volatile float tiny = 1e-30f, small = 1e-10f;
    ck_assert(tiny * small != 0.0f);
    make_tmpdir();
    Run r = run_main(rt_train_main, &ftz_model, (const char *[]){"--steps", "3", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_int_eq(ftz_seen, 1);
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_print_every_and_lr)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &linreg_model,
                     (const char *[]){"--steps=7", "--print-every", "3", "--seed", "4", "--lr", "0",
                                      "--threads", "2", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_int_eq(count_lines(r.out), 5);
    ck_assert_ptr_nonnull(strstr(r.out, "step 1 loss "));
    ck_assert_ptr_nonnull(strstr(r.out, "step 3 loss "));
    ck_assert_ptr_nonnull(strstr(r.out, "step 6 loss "));
    ck_assert_ptr_nonnull(strstr(r.out, "step 7 loss "));
    /* lr 0: nothing moves, so every loss is the first one. */
    ck_assert_double_eq(last_value(r.out, "step 7 loss "), last_value(r.out, "step 1 loss "));
    ck_assert_double_eq(last_value(r.out, "final loss "), last_value(r.out, "step 1 loss "));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_bad_flags)
{
    make_tmpdir();
    static const struct {
        const char *args[4];
        const char *want;
    } cases[] = {
        {{"--steps", "abc"}, "linreg_train: --steps: expected a positive integer, got 'abc'"},
        {{"--steps", "1e3"}, "--steps: expected a positive integer, got '1e3'"},
        {{"--steps", "-3"}, "got '-3'"},
        {{"--steps"}, "--steps: missing value"},
        {{"--seed", "x1"}, "--seed: expected a non-negative integer"},
        {{"--lr", "fast"}, "--lr: expected a non-negative number, got 'fast'"},
        {{"--lr", "nan"}, "--lr"},
        {{"--threads", "1.5"}, "--threads"},
        {{"--bogus"}, "unknown flag '--bogus'"},
        {{"--data", "x.npy"},
         "--data: expected NAME=FILE (.npy, .csv, IDX, .txt or .bin), got 'x.npy'"},
        {{"--stepsx", "3"}, "unknown flag '--stepsx'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Run r = run_main(rt_train_main, &linreg_model, cases[k].args);
        ck_assert_int_eq(r.rc, 2);
        ck_assert_msg(strstr(r.err, cases[k].want) && strstr(r.err, "--help"), "case %zu: got '%s'",
                      k, r.err);
        ck_assert_str_eq(r.out, "");
        run_free(&r);
    }
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_help)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &linreg_model, (const char *[]){"--help", "--bogus", NULL});
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage: linreg_train"));
    ck_assert_ptr_nonnull(strstr(r.out, "batch 4"));
    ck_assert_ptr_nonnull(strstr(r.out, "x [4,3] float64"));
    ck_assert_ptr_nonnull(strstr(r.out, "y [4,1] float64"));
    ck_assert_ptr_nonnull(strstr(r.out, "default 0.01"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_diverges)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &linreg_model,
                     (const char *[]){"--lr", "1e30", "--steps", "100", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_msg(strstr(r.err, "linreg_train: loss is inf at step ") ||
                      strstr(r.err, "linreg_train: loss is nan at step "),
                  "%s", r.err);
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_with_data)
{
    make_tmpdir();
    /* y = x w* exactly, 12 rows = 3 minibatches: training must fit it. */
    double x[12 * 3], y[12], w[3] = {0.5, -1, 2};
    rt_rng r;
    rt_rng_seed(&r, 11);
    for (int b = 0; b < 12; b++) {
        y[b] = 0;
        for (int j = 0; j < 3; j++) {
            x[b * 3 + j] = rt_rng_normal(&r);
            y[b] += x[b * 3 + j] * w[j];
        }
    }
    write_f64(tmp("x.npy"), 2, (long[]){12, 3}, x);
    write_f64(tmp("y.npy"), 2, (long[]){12, 1}, y);
    char dx[300], dy[300];
    snprintf(dx, sizeof dx, "x=%s", tmp("x.npy"));
    snprintf(dy, sizeof dy, "y=%s", tmp("y.npy"));
    Run t = run_main(
        rt_train_main, &linreg_model,
        (const char *[]){"--data", dx, "--data", dy, "--steps", "300", "--lr", "0.02", NULL});
    ck_assert_msg(t.rc == 0, "%s", t.err);
    ck_assert_double_lt(last_value(t.out, "final loss "), 1e-6);
    ck_assert_double_gt(last_value(t.out, "step 1 loss "), 1.0);
    for (int j = 0; j < 3; j++)
        ck_assert_double_eq_tol(lr_arena[W_OFF + j], w[j], 1e-3);
    run_free(&t);

    /* A wrong shape: non-zero, and the message names the file. */
    write_f64(tmp("bad.npy"), 2, (long[]){6, 6}, x);
    char db[300];
    snprintf(db, sizeof db, "x=%s", tmp("bad.npy"));
    t = run_main(rt_train_main, &linreg_model, (const char *[]){"--data", db, "--data", dy, NULL});
    ck_assert_int_ne(t.rc, 0);
    ck_assert_ptr_nonnull(strstr(t.err, tmp("bad.npy")));
    ck_assert_ptr_nonnull(strstr(t.err, "bad.npy: expected [*,3] float64, got [6,6] float64"));
    ck_assert_str_eq(t.out, "");
    run_free(&t);

    /* Only one input bound. */
    t = run_main(rt_train_main, &linreg_model, (const char *[]){"--data", dx, NULL});
    ck_assert_int_eq(t.rc, 1);
    ck_assert_ptr_nonnull(strstr(t.err, "input 'y' has no file"));
    run_free(&t);
    remove_tmpdir();
}
END_TEST

/* The classifier's files: s and label as .npy under stem, and the two
 * NAME=FILE arguments naming them. */
static void cls_files(const char *stem, int rows, const double *s, const double *label, char *ds,
                      char *dl, size_t n)
{
    char ps[64], pl[64];
    snprintf(ps, sizeof ps, "%s_s.npy", stem);
    snprintf(pl, sizeof pl, "%s_l.npy", stem);
    write_f64(tmp(ps), 2, (long[]){rows, CC}, s);
    write_f64(tmp(pl), 1, (long[]){rows}, label);
    snprintf(ds, n, "s=%s", tmp(ps));
    snprintf(dl, n, "label=%s", tmp(pl));
}

/* rows rows whose s is (r, 0, 0), naming themselves, labels all 0. */
static void cls_numbered(const char *stem, int rows, char *ds, char *dl, size_t n)
{
    double s[64 * CC] = {0}, label[64] = {0};
    for (int r = 0; r < rows; r++)
        s[r * CC] = r;
    cls_files(stem, rows, s, label, ds, dl, n);
}

/* Seven held-out rows with known argmaxes, three of them ties the first
 * maximum wins: rows 0, 1, 3 and 4 are right (a last-wins rule would get
 * 0, 1, 2, 3 and 6). With w = 1 a row's loss is its label plus its
 * scores: rows 0-3 add 4 + 15 = 19, rows 4-6 add 4 + 2 = 6. The loss sums
 * over a batch of 4, so over every row it is 4 x (19 + 6) / 7 = 100 / 7. */
static const double val7_s[7 * CC] = {1, 0, 0, 0, 2,  1,  3,  3, 0, 0, 0,
                                      5, 2, 2, 2, -1, -3, -2, 0, 1, 1};
static const double val7_label[7] = {0, 1, 1, 2, 0, 2, 2};

START_TEST(test_train_held_out)
{
    make_tmpdir();
    char ds[300], dl[300];
    /* 11 rows, 0.2: ceil(2.2) = 3 held out (8, 9, 10), 8 trained on. */
    cls_numbered("d", 11, ds, dl, sizeof ds);
    memset(c_trained, 0, sizeof c_trained);
    Run r = run_main(
        rt_train_main, &cls_model,
        (const char *[]){"--data", ds, "--data", dl, "--val-split", "0.2", "--epochs", "20", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(c_trained[i], 20); /* 8 rows, 2 full batches: all, every epoch */
    for (int i = 8; i < 11; i++)
        ck_assert_int_eq(c_trained[i], 0);
    ck_assert_ptr_nonnull(strstr(r.err, "cls_train: 8 training rows: 2 minibatches of 4 an epoch, "
                                        "shuffled each epoch, 0 rows left out\n"));
    ck_assert_ptr_nonnull(strstr(r.err, "cls_train: 3 held-out rows"));
    /* Fewer rows than the batch, scored all the same. Every label is 0, and
     * so is every argmax (the id in column 0 is the largest score). */
    const char *at = strstr(r.out, "\neval step 2 loss ");
    ck_assert_msg(at && !strncmp(strchr(at + 1, '\n') - 11, " accuracy 1", 11), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, " ms\neval step 40 loss "));
    char *evals = result_lines(r.out, 1);
    int n = 0;
    for (const char *p = evals; (p = strstr(p, "eval step ")) != NULL; p++)
        n++;
    ck_assert_int_eq(n, 20); /* after every epoch of 2 steps */
    ck_assert_ptr_null(strstr(r.out, "eval step 3 "));
    free(evals);
    run_free(&r);

    /* --val-shuffle: 3 rows drawn by the seed, the same ones each run. */
    long held[2][3];
    for (int k = 0; k < 2; k++) {
        memset(c_trained, 0, sizeof c_trained);
        r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--val-split", "0.2",
                                      "--val-shuffle", "--epochs", "20", NULL});
        ck_assert_msg(r.rc == 0, "%s", r.err);
        ck_assert_ptr_nonnull(strstr(r.err, "3 held-out rows (drawn from the --data files"));
        int n_held = 0;
        for (int i = 0; i < 11; i++) {
            ck_assert(c_trained[i] == 0 || c_trained[i] == 20);
            if (c_trained[i] == 0 && n_held < 3)
                held[k][n_held] = i;
            n_held += c_trained[i] == 0;
        }
        ck_assert_int_eq(n_held, 3);
        run_free(&r);
    }
    ck_assert_mem_eq(held[0], held[1], sizeof held[0]);
    ck_assert_msg(held[0][0] != 8, "held out %ld %ld %ld: the last rows", held[0][0], held[0][1],
                  held[0][2]);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_accuracy)
{
    make_tmpdir();
    char ds[300], dl[300], vs[300], vl[300], ws[300], wl[300];
    cls_numbered("d", 8, ds, dl, sizeof ds);
    cls_files("v", 7, val7_s, val7_label, vs, vl, sizeof vs);
    /* lr 0 keeps w = 1, so the loss is known; 3 epochs of 2 steps. */
    Run r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--val", vs, "--val", vl, "--lr",
                                      "0", "--epochs", "3", "--no-shuffle", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    char *lines = result_lines(r.out, 1);
    ck_assert_str_eq(lines, "step 1 loss 6\n"
                            "eval step 2 loss 14.2857143 accuracy 0.571428571\n"
                            "eval step 4 loss 14.2857143 accuracy 0.571428571\n"
                            "step 6 loss 22\n"
                            "eval step 6 loss 14.2857143 accuracy 0.571428571\n");
    ck_assert_ptr_nonnull(strstr(r.out, " ms\neval step 6 "));
    ck_assert_ptr_nonnull(
        strstr(r.err, "7 held-out rows (--val): loss and accuracy over every row\n"));
    free(lines);
    run_free(&r);

    /* Three rows (4-6 above), fewer than the batch: 4 x 6 / 3; 1 of 3. */
    cls_files("w", 3, val7_s + 4 * CC, val7_label + 4, ws, wl, sizeof ws);
    r = run_main(rt_train_main, &cls_model,
                 (const char *[]){"--data", ds, "--data", dl, "--val", ws, "--val", wl, "--lr", "0",
                                  "--epochs", "3", "--eval-every", "4", "--no-shuffle", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    lines = result_lines(r.out, 2);
    ck_assert_str_eq(lines, "eval step 4 loss 8 accuracy 0.333333333\n"
                            "step 6 loss 22\n"
                            "eval step 6 loss 8 accuracy 0.333333333\n");
    free(lines);
    run_free(&r);

    /* Evaluating changes no step: the same losses with and without it. */
    const char *plain[] = {"--data", ds, "--data", dl, "--epochs", "5", "--print-every", "1", NULL};
    const char *evald[] = {"--data", ds, "--data",        dl,  "--epochs", "5", "--val", vs,
                           "--val",  vl, "--print-every", "1", NULL};
    Run a = run_main(rt_train_main, &cls_model, plain);
    Run b = run_main(rt_train_main, &cls_model, evald);
    ck_assert_int_eq(a.rc, 0);
    ck_assert_int_eq(b.rc, 0);
    char *sa = step_lines(a.out, 1), *sb = step_lines(b.out, 1);
    ck_assert_int_eq(count_lines(sa), 10);
    ck_assert_str_eq(sa, sb);
    ck_assert_ptr_nonnull(strstr(b.out, "eval step 2 loss "));
    free(sa), free(sb);
    run_free(&a), run_free(&b);

    /* Not a classifier: a loss, no accuracy; also of fewer rows than a batch. */
    double x[10 * 3], y[10];
    for (int i = 0; i < 30; i++)
        x[i] = i % 7 - 3;
    for (int i = 0; i < 10; i++)
        y[i] = i;
    write_f64(tmp("x.npy"), 2, (long[]){10, 3}, x);
    write_f64(tmp("y.npy"), 2, (long[]){10, 1}, y);
    char dx[300], dy[300];
    snprintf(dx, sizeof dx, "x=%s", tmp("x.npy"));
    snprintf(dy, sizeof dy, "y=%s", tmp("y.npy"));
    r = run_main(
        rt_train_main, &linreg_model,
        (const char *[]){"--data", dx, "--data", dy, "--val-split", "0.4", "--steps", "3", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "\neval step 1 loss "));
    ck_assert_ptr_null(strstr(r.out, "accuracy"));
    double v = last_value(r.out, "eval step 3 loss ");
    ck_assert(isfinite(v) && v > 0);
    run_free(&r);
    r = run_main(rt_train_main, &linreg_model,
                 (const char *[]){"--data", dx, "--data", dy, "--val-split", "0.2", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    v = last_value(r.out, "eval step 100 loss ");
    ck_assert(isfinite(v) && v > 0);
    ck_assert_ptr_null(strstr(r.out, "accuracy"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

/* The fields of line k (0 = the header) of a CSV, split at commas. */
static int csv_fields(const char *text, int k, char fields[][64], int max)
{
    const char *p = text;
    for (int i = 0; i < k && p; i++)
        p = strchr(p, '\n'), p = p ? p + 1 : NULL;
    ck_assert_ptr_nonnull(p);
    int n = 0;
    while (n < max) {
        size_t len = strcspn(p, ",\n");
        ck_assert_uint_lt(len, 64);
        memcpy(fields[n], p, len);
        fields[n++][len] = '\0';
        if (p[len] != ',')
            break;
        p += len + 1;
    }
    return n;
}

START_TEST(test_train_log)
{
    make_tmpdir();
    char ds[300], dl[300], vs[300], vl[300], log[300], f[8][64];
    cls_numbered("d", 8, ds, dl, sizeof ds);
    cls_files("v", 7, val7_s, val7_label, vs, vl, sizeof vs);
    snprintf(log, sizeof log, "%s", tmp("run.csv"));
    write_bytes(log, "old rows\nold rows\nold rows\nold rows\nold rows\n", 45);
    /* File order and lr 0: the two batches lose 0+1+2+3 = 6 and 22, 14 on average. */
    Run r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--val", vs, "--val", vl, "--lr",
                                      "0", "--epochs", "2", "--no-shuffle", "--log", log, NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    char *text = slurp(log);
    ck_assert_int_eq(count_lines(text), 3);
    ck_assert_int_eq(csv_fields(text, 0, f, 8), 7);
    ck_assert_str_eq(f[0], "step");
    ck_assert_ptr_nonnull(strstr(text, "step,epoch,lr,train_loss,val_loss,val_accuracy,seconds\n"));
    static const char *const want[2][6] = {{"2", "1", "0", "14", "14.2857143", "0.571428571"},
                                           {"4", "2", "0", "14", "14.2857143", "0.571428571"}};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(csv_fields(text, k + 1, f, 8), 7);
        for (int i = 0; i < 6; i++)
            ck_assert_str_eq(f[i], want[k][i]);
        char *end;
        double secs = strtod(f[6], &end);
        ck_assert(*end == '\0' && secs >= 0 && secs < 60);
    }
    free(text);
    run_free(&r);

    /* No validation: a row per printed step, with the mean loss of the
     * steps since the last row (every step's loss from a second run). */
    r = run_main(rt_train_main, &linreg_model,
                 (const char *[]){"--steps", "7", "--print-every", "3", "--log", log, NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    Run each = run_main(rt_train_main, &linreg_model,
                        (const char *[]){"--steps", "7", "--print-every", "1", NULL});
    text = slurp(log);
    ck_assert_int_eq(count_lines(text), 5);
    static const long rows[4] = {1, 3, 6, 7};
    char key[32];
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(csv_fields(text, k + 1, f, 8), 7);
        ck_assert_int_eq(strtol(f[0], NULL, 10), rows[k]);
        ck_assert_str_eq(f[1], ""); /* random data: no epochs */
        ck_assert_str_eq(f[2], "0.01");
        ck_assert_str_eq(f[4], "");
        ck_assert_str_eq(f[5], "");
        double sum = 0;
        for (long n = k ? rows[k - 1] + 1 : 1; n <= rows[k]; n++) {
            snprintf(key, sizeof key, "step %ld loss ", n);
            sum += last_value(each.out, key);
        }
        double mean = sum / (double)(rows[k] - (k ? rows[k - 1] : 0));
        ck_assert_double_eq_tol(strtod(f[3], NULL), mean, 1e-8 * mean);
    }
    free(text);
    run_free(&r), run_free(&each);

    r = run_main(rt_train_main, &linreg_model,
                 (const char *[]){"--steps", "2", "--log", tmp("no/dir/l.csv"), NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "linreg_train: --log "));
    ck_assert_ptr_nonnull(strstr(r.err, "no/dir/l.csv: cannot create it"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_epochs)
{
    make_tmpdir();
    char ds[300], dl[300], ck[300];
    cls_numbered("d", 10, ds, dl, sizeof ds); /* 2 minibatches an epoch */
    snprintf(ck, sizeof ck, "%s", tmp("e.ckpt"));
    Run r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--epochs", "3", "--print-every",
                                      "1", "--checkpoint", ck, NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    char *lines = step_lines(r.out, 1);
    ck_assert_int_eq(count_lines(lines), 6);
    ck_assert_ptr_nonnull(strstr(lines, "step 6 loss "));
    free(lines);
    run_free(&r);
    r = run_main(
        rt_train_main, &cls_model,
        (const char *[]){"--data", ds, "--data", dl, "--epochs", "3", "--resume", ck, NULL});
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(
        strstr(r.err, "e.ckpt is at step 6, and --epochs 3 is 6 steps: nothing to train"));
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    r = run_main(rt_train_main, &cls_model,
                 (const char *[]){"--data", ds, "--data", dl, "--epochs", "4", "--print-every", "1",
                                  "--resume", ck, NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    lines = step_lines(r.out, 1);
    ck_assert_int_eq(count_lines(lines), 2);
    ck_assert(strncmp(lines, "step 7 loss ", 12) == 0);
    ck_assert_ptr_nonnull(strstr(lines, "\nstep 8 loss "));
    free(lines);
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_data_flags)
{
    make_tmpdir();
    char ds[300], dl[300], vs[300], vl[300];
    cls_numbered("d", 8, ds, dl, sizeof ds);
    cls_numbered("v", 4, vs, vl, sizeof vs);
    const struct {
        const char *args[12];
        const char *want;
    } cases[] = {
        {{"--data", ds, "--data", dl, "--val", vs, "--val", vl, "--val-split", "0.2"},
         "--val and --val-split both give held-out rows; give one"},
        {{"--val-split", "0.2"}, "--val-split needs --data to split"},
        {{"--val", vs}, "--val needs --data to train on"},
        {{"--data", ds, "--data", dl, "--val-split", "1"},
         "--val-split: expected a fraction between 0 and 1, got '1'"},
        {{"--val-split", "0"}, "--val-split: expected a fraction between 0 and 1, got '0'"},
        {{"--val-split", "-0.5"}, "--val-split: expected a non-negative number"},
        {{"--data", ds, "--data", dl, "--eval-every", "3"},
         "--eval-every needs held-out rows: --val-split F or --val NAME=FILE"},
        {{"--label-column", "0"}, "--label-column: expected a column number from 1"},
        {{"--label-column", "last"}, "got 'last'"},
        {{"--data", ds, "--data", dl, "--epochs", "2", "--steps", "3"},
         "--epochs and --steps both set how long to train; give one"},
        {{"--steps", "3", "--epochs", "2"}, "--epochs and --steps both"},
        {{"--epochs", "2"}, "--epochs needs --data: an epoch is one pass over the data files"},
        {{"--val", "nope"},
         "--val: expected NAME=FILE (.npy, .csv, IDX, .txt or .bin), got 'nope'"},
        {{"--eval-every", "0"}, "--eval-every: expected a positive integer, got '0'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Run r = run_main(rt_train_main, &cls_model, cases[k].args);
        ck_assert_int_eq(r.rc, 2);
        ck_assert_msg(strstr(r.err, cases[k].want) && strstr(r.err, "--help"), "case %zu: got '%s'",
                      k, r.err);
        ck_assert_int_eq(count_lines(r.err), 1);
        ck_assert_str_eq(r.out, "");
        run_free(&r);
    }
    /* --val binds like --data, and says so. */
    Run r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--val", vs, NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(
        strstr(r.err, "cls_train: --val: input 'label' has no file; bind every input\n"));
    run_free(&r);
    r = run_main(
        rt_train_main, &cls_model,
        (const char *[]){"--data", ds, "--data", dl, "--val", vs, "--val", "z=a.npy", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "--val: the model has no input 'z' (inputs: s, label)"));
    run_free(&r);
    r = run_main(rt_train_main, &cls_model, (const char *[]){"--help", NULL});
    ck_assert_int_eq(r.rc, 0);
    static const char *const documented[] = {
        "--epochs N",       "--val-split F",     "--val NAME=F",
        "--eval-every K",   "--log F.csv",       "--no-shuffle",
        "--label-column K", "sit the epoch out", "floor(rows / batch)"};
    for (size_t k = 0; k < sizeof documented / sizeof *documented; k++)
        ck_assert_msg(strstr(r.out, documented[k]), "--help lacks '%s'", documented[k]);
    run_free(&r);
    remove_tmpdir();
}
END_TEST

START_TEST(test_train_label_column)
{
    make_tmpdir();
    /* The label first, and a last column that is no label (0.5). */
    FILE *f = fopen(tmp("t.csv"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("label,id,b,c\n", f);
    for (int r = 0; r < 9; r++)
        fprintf(f, "%d,%d,0,0.5\n", r % 3, r);
    ck_assert_int_eq(fclose(f), 0);
    char ds[300], dl[300], vs[300], vl[300];
    snprintf(ds, sizeof ds, "s=%s", tmp("t.csv"));
    snprintf(dl, sizeof dl, "label=%s", tmp("t.csv"));
    snprintf(vs, sizeof vs, "s=%s", tmp("t.csv"));
    snprintf(vl, sizeof vl, "label=%s", tmp("t.csv"));
    Run r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--steps", "2", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "t.csv"));
    run_free(&r);
    for (int k = 0; k < 2; k++) {
        memset(c_trained, 0, sizeof c_trained);
        r = run_main(rt_train_main, &cls_model,
                     (const char *[]){"--data", ds, "--data", dl, "--val", vs, "--val", vl,
                                      "--label-column", k ? "-4" : "1", "--steps", "4", "--lr", "0",
                                      NULL});
        ck_assert_msg(r.rc == 0, "%s", r.err);
        long n = 0;
        for (int i = 0; i < 9; i++)
            n += c_trained[i];
        ck_assert_int_eq(n, 16); /* the ids came from column 2 */
        /* Scores (id, 0, 0.5) with labels id mod 3: the argmax is class 2
         * for id 0 and class 0 for the rest, right for ids 3 and 6 only.
         * With w = 1, row r loses r mod 3 + r + 0.5, the 9 rows 49.5: a
         * batch of 4 such rows 22. */
        ck_assert_ptr_nonnull(strstr(r.out, "eval step 4 loss 22 accuracy 0.222222222\n"));
        run_free(&r);
    }
    remove_tmpdir();
}
END_TEST

/* stderr of rt_train_main on cls_model in a child whose stderr is a
 * terminal (a pseudo-terminal read here); malloc'd. */
static char *terminal_stderr(int quiet, const char *const *args)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_int_ge(master, 0);
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    ck_assert_int_ge(slave, 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[32] = {"prog"};
        int argc = 1;
        while (args[argc - 1])
            argv[argc] = (char *)args[argc - 1], argc++;
        int fo = open(tmp("tty.out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || dup2(fo, 1) < 0 || dup2(slave, 2) < 0)
            _exit(99);
        close(master);
        if (quiet)
            setenv("GRADC_NO_PROGRESS", "1", 1);
        else
            unsetenv("GRADC_NO_PROGRESS");
        int rc = rt_train_main(&cls_model, argc, argv);
        fflush(stdout);
        _exit(rc);
    }
    close(slave);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    /* Once the child has exited, reading the master fails (EIO): the end. */
    while (len < cap - 1 && (n = read(master, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(master);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return buf;
}

START_TEST(test_train_progress)
{
    make_tmpdir();
    char ds[300], dl[300];
    cls_numbered("d", 10, ds, dl, sizeof ds);
    const char *args[] = {"--data", ds, "--data", dl, "--val-split", "0.2", "--epochs", "3", NULL};
    /* Not a terminal: the usual lines, no bar. */
    Run r = run_main(rt_train_main, &cls_model, args);
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_ptr_null(strchr(r.err, '\r'));
    ck_assert_ptr_null(strchr(r.err, '\033'));
    ck_assert_ptr_null(strstr(r.err, "steps/s"));
    ck_assert_ptr_null(strstr(r.out, "steps/s"));
    run_free(&r);
    /* A terminal: the finished bar, on a line of its own. */
    char *err = terminal_stderr(0, args);
    ck_assert_msg(strstr(err, "\r[####################] 100%  6/6 steps  "), "%s", err);
    ck_assert_ptr_nonnull(strstr(err, " steps/s  ETA 0:00  loss "));
    ck_assert_ptr_nonnull(strstr(err, "\033[K"));
    ck_assert_int_eq(err[strlen(err) - 1], '\n');
    char *out = slurp(tmp("tty.out"));
    ck_assert_ptr_nonnull(strstr(out, "final loss "));
    ck_assert_ptr_null(strstr(out, "steps/s"));
    free(out);
    free(err);
    /* GRADC_NO_PROGRESS turns it off. */
    err = terminal_stderr(1, args);
    ck_assert_ptr_null(strstr(err, "steps/s"));
    ck_assert_ptr_null(strchr(err, '\033'));
    ck_assert_ptr_nonnull(strstr(err, "cls_train: 8 training rows"));
    free(err);
    remove_tmpdir();
}
END_TEST

/* ---- gradcheck ---- */

/* ---- --sample ---- */

/* n uint16 tokens in llm.c's token file layout, little-endian. */
static void write_token_file(const char *path, const uint16_t *tokens, int n)
{
    unsigned char b[1024 + 2 * 64] = {0};
    const uint32_t head[3] = {20240520, 1, (uint32_t)n};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (unsigned char)(head[i] >> (8 * k));
    for (int i = 0; i < n; i++) {
        b[1024 + 2 * i] = (unsigned char)(tokens[i] & 0xff);
        b[1024 + 2 * i + 1] = (unsigned char)(tokens[i] >> 8);
    }
    write_bytes(path, b, 1024 + 2 * n);
}

/* llm.c's tokenizer layout (version 2): token k is "t<k>." for k < vocab. */
static void write_tokenizer(const char *path, int vocab)
{
    static unsigned char b[1024 + 8 * KV];
    memset(b, 0, 1024);
    const uint32_t head[4] = {20240328, 2, (uint32_t)vocab, (uint32_t)vocab - 1};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (unsigned char)(head[i] >> (8 * k));
    long at = 1024;
    for (int k = 0; k < vocab; k++) {
        int len = snprintf((char *)b + at + 1, 8, "t%d.", k);
        b[at] = (unsigned char)len;
        at += 1 + len;
    }
    write_bytes(path, b, at);
}

/* What follows "sample (temperature 0.8):\n" in out, or NULL. */
static const char *sample_of(const char *out)
{
    const char *p = strstr(out, "sample (temperature 0.8):\n");
    return p ? p + strlen("sample (temperature 0.8):\n") : NULL;
}

START_TEST(test_train_sample_tokens)
{
    make_tmpdir();
    /* 13 tokens: 3 rows of 4, starting with 297 as llm.c's files start
     * with their end-of-text token. */
    uint16_t tokens[13] = {297, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    write_token_file(tmp("t.bin"), tokens, 13);
    char dx[300], dy[300];
    snprintf(dx, sizeof dx, "x=%s", tmp("t.bin"));
    snprintf(dy, sizeof dy, "y=%s:next", tmp("t.bin"));
    /* Ids, from the data's first token, across the vocabulary's end. */
    Run t = run_main(
        rt_train_main, &count_model,
        (const char *[]){"--data", dx, "--data", dy, "--steps", "2", "--sample", "5", NULL});
    ck_assert_msg(t.rc == 0, "%s", t.err);
    ck_assert_ptr_nonnull(sample_of(t.out));
    ck_assert_str_eq(sample_of(t.out), "297 298 299 0 1 2\n");
    run_free(&t);
    /* A prompt of ids, longer than the context T = 4. */
    t = run_main(rt_train_main, &count_model,
                 (const char *[]){"--data", dx, "--data", dy, "--steps", "2", "--sample", "3",
                                  "--prompt", "40 7, 8 9  10", NULL});
    ck_assert_msg(t.rc == 0, "%s", t.err);
    ck_assert_str_eq(sample_of(t.out), "40 7 8 9 10 11 12 13\n");
    run_free(&t);
    /* Through a tokenizer of fewer tokens than the model's 300. */
    write_tokenizer(tmp("tok.bin"), 299);
    t = run_main(rt_train_main, &count_model,
                 (const char *[]){"--data", dx, "--data", dy, "--steps", "2", "--sample", "3",
                                  "--tokenizer", tmp("tok.bin"), NULL});
    ck_assert_msg(t.rc == 0, "%s", t.err);
    ck_assert_str_eq(sample_of(t.out), "t297.t298.<299>t0.\n");
    run_free(&t);
    /* A text's sample is still its bytes, and its prompt text. */
    write_bytes(tmp("t.txt"), "abcdefghijklm", 13);
    char tx[300], ty[300];
    snprintf(tx, sizeof tx, "x=%s", tmp("t.txt"));
    snprintf(ty, sizeof ty, "y=%s:next", tmp("t.txt"));
    t = run_main(rt_train_main, &count_model,
                 (const char *[]){"--data", tx, "--data", ty, "--steps", "2", "--sample", "4",
                                  "--prompt", "a", NULL});
    ck_assert_msg(t.rc == 0, "%s", t.err);
    ck_assert_str_eq(sample_of(t.out), "abcde\n");
    run_free(&t);
    remove_tmpdir();
}
END_TEST

/* A bad prompt or tokenizer is refused before the first step, so nothing
 * is trained, printed or saved. */
START_TEST(test_train_sample_refused)
{
    make_tmpdir();
    uint16_t tokens[13] = {297, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    write_token_file(tmp("t.bin"), tokens, 13);
    write_bytes(tmp("bad_tok.bin"), "not a tokenizer", 15);
    char dx[300], dy[300], ckpt[300];
    snprintf(dx, sizeof dx, "x=%s", tmp("t.bin"));
    snprintf(dy, sizeof dy, "y=%s:next", tmp("t.bin"));
    snprintf(ckpt, sizeof ckpt, "%s", tmp("c.ckpt"));
    static const struct {
        const char *flag, *value;
        int rc;
        const char *says;
    } bad[] = {
        {"--prompt", "5 x", 2,
         "count_train: --prompt: 'x' is not a token id in [0, 300): with token data (.bin) the "
         "prompt "
         "is token ids, separated by spaces\n"},
        {"--prompt", "300", 2, "count_train: --prompt: '300' is not a token id in [0, 300)"},
        {"--prompt", "-1", 2, "count_train: --prompt: '-1' is not a token id in [0, 300)"},
        {"--tokenizer", "bad_tok.bin", 1, "count_train: --tokenizer: "},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        const char *value = strcmp(bad[k].flag, "--tokenizer") ? bad[k].value : tmp(bad[k].value);
        Run t = run_main(rt_train_main, &count_model,
                         (const char *[]){"--data", dx, "--data", dy, "--steps", "2", "--sample",
                                          "3", "--checkpoint", ckpt, bad[k].flag, value, NULL});
        ck_assert_msg(t.rc == bad[k].rc, "%s %s: exit %d, said %s", bad[k].flag, bad[k].value, t.rc,
                      t.err);
        ck_assert_msg(strncmp(t.err, bad[k].says, strlen(bad[k].says)) == 0 &&
                          count_lines(t.err) == 1,
                      "%s %s: said %s", bad[k].flag, bad[k].value, t.err);
        ck_assert_str_eq(t.out, "");
        ck_assert_int_ne(access(ckpt, F_OK), 0);
        run_free(&t);
    }
    Run t = run_main(rt_train_main, &count_model,
                     (const char *[]){"--data", dx, "--data", dy, "--steps", "2", "--sample", "3",
                                      "--tokenizer", tmp("bad_tok.bin"), NULL});
    char want[600];
    snprintf(
        want, sizeof want,
        "count_train: --tokenizer: %s: 15 bytes, shorter than the 1024-byte header of an llm.c "
        "tokenizer\n",
        tmp("bad_tok.bin"));
    ck_assert_int_eq(t.rc, 1);
    ck_assert_str_eq(t.err, want);
    run_free(&t);
    t = run_main(rt_train_main, &count_model,
                 (const char *[]){"--tokenizer", tmp("bad_tok.bin"), NULL});
    ck_assert_int_eq(t.rc, 2);
    ck_assert_str_eq(
        t.err,
        "count_train: --tokenizer needs --sample N: it prints the sample's tokens (try --help)\n");
    run_free(&t);
    remove_tmpdir();
}
END_TEST

START_TEST(test_gradcheck_correct)
{
    rt_gradcheck_opts o = {.all = 0, .seed = 1};
    FILE *out = tmpfile();
    double e = rt_gradcheck(&linreg_model, &o, out);
    ck_assert_double_le(e, 1e-7);
    ck_assert(e >= 0 && isfinite(e));
    char buf[1024];
    rewind(out);
    size_t n = fread(buf, 1, sizeof buf - 1, out);
    buf[n] = '\0';
    fclose(out);
    ck_assert_ptr_nonnull(strstr(buf, "w [3,1]  checked 3  kinks 0  relative error "));
    ck_assert_ptr_nonnull(strstr(buf, "norm-wise over the tensor"));
    ck_assert_double_eq_tol(last_value(buf, "max relative error "), e, 1e-8 * e);
    /* The parameters are left as initialized, bit for bit. */
    double w[3];
    memcpy(w, lr_arena + W_OFF, sizeof w);
    rt_init_params(&linreg_model, 1);
    ck_assert_mem_eq(w, lr_arena + W_OFF, sizeof w);
}
END_TEST

START_TEST(test_gradcheck_broken)
{
    rt_gradcheck_opts o = {.all = 0, .seed = 1};
    double e = rt_gradcheck(&linreg_bad_model, &o, NULL);
    ck_assert_double_gt(e, 1e-2);
    ck_assert_double_eq_tol(e, 1.0 / 3, 1e-4); /* ||1.5g - g|| / ||1.5g|| */
}
END_TEST

START_TEST(test_gradcheck_picks)
{
    rt_gradcheck_opts o = {.all = 0, .seed = 1};
    char buf[1024];
    FILE *out = tmpfile();
    ck_assert_double_le(rt_gradcheck(&quad_model, &o, out), 1e-7);
    rewind(out);
    buf[fread(buf, 1, sizeof buf - 1, out)] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "v [10,10]  checked 64  kinks 0"));
    fclose(out);
    o.all = 1;
    out = tmpfile();
    rt_gradcheck(&quad_model, &o, out);
    rewind(out);
    buf[fread(buf, 1, sizeof buf - 1, out)] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "v [10,10]  checked 100  kinks 0"));
    fclose(out);
}
END_TEST

START_TEST(test_gradcheck_kinks)
{
    rt_gradcheck_opts o = {.all = 0, .seed = 1};
    char buf[1024];
    FILE *out = tmpfile();
    ck_assert_double_eq(rt_gradcheck(&kink_model, &o, out), 0.0);
    rewind(out);
    buf[fread(buf, 1, sizeof buf - 1, out)] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "w [3]  checked 0  kinks 3  relative error 0\n"));
    fclose(out);
}
END_TEST

START_TEST(test_gradcheck_main)
{
    make_tmpdir();
    Run r = run_main(rt_gradcheck_main, &linreg_model, (const char *[]){"--all", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "max relative error "));
    run_free(&r);
    r = run_main(rt_gradcheck_main, &linreg_bad_model, (const char *[]){"--seed", "3", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "linreg_gradcheck: FAILED: max relative error 0.333"));
    ck_assert_ptr_nonnull(strstr(r.err, "> tol 1e-06"));
    run_free(&r);
    r = run_main(rt_gradcheck_main, &linreg_bad_model, (const char *[]){"--tol", "0.5", NULL});
    ck_assert_int_eq(r.rc, 0);
    run_free(&r);
    r = run_main(rt_gradcheck_main, &linreg_model, (const char *[]){"--tol", "x", NULL});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "linreg_gradcheck: --tol: expected"));
    run_free(&r);
    r = run_main(rt_gradcheck_main, &float_model, (const char *[]){NULL});
    ck_assert_int_ne(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "double build"));
    run_free(&r);
    r = run_main(rt_gradcheck_main, &linreg_model, (const char *[]){"-h", NULL});
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage: linreg_gradcheck"));
    run_free(&r);
    remove_tmpdir();
}
END_TEST

/* On more than one thread, -v says what the trainer measured, or that it
 * did not (--no-calibrate), and how much of its first step it shared; on
 * one, there is nothing to share and nothing is said. */
START_TEST(test_train_threads_verbose)
{
    make_tmpdir();
    Run r = run_main(rt_train_main, &linreg_model,
                     (const char *[]){"--steps", "2", "--threads", "2", "-v", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_msg(strstr(r.err, "linreg_train: 2 threads, woken and joined in ") &&
                      strstr(r.err, " us; shared from (measured in ") &&
                      strstr(r.err, "linreg_train: step 1 shared ") &&
                      strstr(r.err, " among the threads\n"),
                  "%s", r.err);
    run_free(&r);
    r = run_main(rt_train_main, &linreg_model,
                 (const char *[]){"--steps", "2", "--threads", "2", "--no-calibrate", "-v", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_msg(strstr(r.err, "shared from (--no-calibrate): OpenBLAS products 1048576 "
                                "multiply-adds, gradc's kernels 1048576 multiply-adds, batches "
                                "of products 1048576 multiply-adds, loops 262144 elements\n"),
                  "%s", r.err);
    run_free(&r);
    r = run_main(rt_train_main, &linreg_model,
                 (const char *[]){"--steps", "2", "--threads", "1", "--verbose", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    ck_assert_msg(!strstr(r.err, "shared"), "%s", r.err);
    run_free(&r);
    rt_set_threads(1);
    remove_tmpdir();
}
END_TEST

/* What rt_split shares: nothing on one thread, nor what would not be
 * computed as on one (work -1); by the thresholds otherwise, unless forced;
 * and the calibration leaves the choice to the sizes again. */
START_TEST(test_split_decides)
{
    rt_set_threads(1);
    rt_split_force(1);
    ck_assert(!rt_split(RT_SPLIT_BLAS, 1L << 30));
    rt_set_threads(2);
    ck_assert(rt_split(RT_SPLIT_LOOPS, 1));
    ck_assert(!rt_split(RT_SPLIT_BLAS, -1));
    rt_split_force(0);
    ck_assert(!rt_split(RT_SPLIT_KERNEL, 1L << 40));
    rt_split_force(-1);
    rt_calibrate_split(false, false, NULL, "test");
    ck_assert(rt_split(RT_SPLIT_BLAS, 1L << 20));
    ck_assert(!rt_split(RT_SPLIT_BLAS, (1L << 20) - 1));
    ck_assert(rt_split(RT_SPLIT_LOOPS, 1L << 18));
    ck_assert(!rt_split(RT_SPLIT_LOOPS, (1L << 18) - 1));
    rt_calibrate_split(true, true, NULL, "test");
    for (int kind = 0; kind < RT_SPLIT_KINDS; kind++)
        ck_assert_msg(!rt_split(kind, 0), "kind %d: still forced after calibrating", kind);
    rt_set_threads(1);
}
END_TEST

/* One trial of sharing on steps 2.. as a trainer runs it, each step's
 * time given: whole steps of `whole` ms, shared ones of `shared`; what
 * it said, in said. Returns the step it ended at. A step shares when a
 * product of LONG_MAX multiply-adds is shared: whatever the calibration
 * measured (on a busy machine, that sharing never pays), only a step
 * computed whole shares nothing that large. */
static long trial(double first_ms, double whole, double shared, char *said, size_t len)
{
    rt_set_threads(2);
    rt_calibrate_split(true, false, NULL, "test");
    rt_split_reset();
    rt_split_force(1);
    ck_assert(rt_split(RT_SPLIT_BLAS, 5)); /* step 1 shared something */
    rt_split_force(-1);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert(!rt_split_trial(1, first_ms));
    long k = 2;
    for (; k < 1000 && rt_split_trial(k, first_ms); k++)
        rt_split_trial_done(k, rt_split(RT_SPLIT_BLAS, LONG_MAX) ? shared : whole, f, "test");
    rewind(f);
    said[0] = 0;
    ck_assert(fgets(said, (int)len, f) || k == 2);
    fclose(f);
    return k;
}

/* The trial keeps the faster way: whole steps when sharing was slower
 * (then nothing is shared), sharing when it was faster; each way 2 steps
 * and 20 ms at least; none after a first step of a second. */
START_TEST(test_split_trial)
{
    char said[256];
    ck_assert_int_eq(trial(1, 11, 30, said, sizeof said), 6);
    ck_assert_str_eq(said, "test: steps 2-5 took 11 ms a step whole, 30 shared: sharing nothing "
                           "from here\n");
    ck_assert(!rt_split(RT_SPLIT_BLAS, LONG_MAX));
    ck_assert(!rt_split_trial(6, 1));
    ck_assert_int_eq(trial(1, 0.5, 0.25, said, sizeof said), 162);
    ck_assert_str_eq(said, "test: steps 2-161 took 0.5 ms a step whole, 0.25 shared: sharing as "
                           "measured\n");
    ck_assert_int_eq(trial(1000, 11, 30, said, sizeof said), 2);
    rt_split_force(-1);
    rt_set_threads(1);
}
END_TEST

START_TEST(test_now_ms)
{
    double a = rt_now_ms();
    nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
    double b = rt_now_ms();
    ck_assert_double_ge(b - a, 19.0);
    ck_assert_double_lt(b - a, 2000.0);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("train");
    tcase_add_test(tc, test_train_random_data);
    tcase_add_test(tc, test_train_minutes);
    tcase_add_test(tc, test_train_print_every_and_lr);
    tcase_add_test(tc, test_train_float_flushes_subnormals);
    tcase_add_test(tc, test_train_bad_flags);
    tcase_add_test(tc, test_train_help);
    tcase_add_test(tc, test_train_diverges);
    tcase_add_test(tc, test_train_with_data);
    tcase_add_test(tc, test_train_held_out);
    tcase_add_test(tc, test_train_accuracy);
    tcase_add_test(tc, test_train_log);
    tcase_add_test(tc, test_train_epochs);
    tcase_add_test(tc, test_train_data_flags);
    tcase_add_test(tc, test_train_label_column);
    tcase_add_test(tc, test_train_progress);
    tcase_add_test(tc, test_train_sample_tokens);
    tcase_add_test(tc, test_train_sample_refused);
    tcase_add_test(tc, test_train_threads_verbose);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_test(tc, test_gradcheck_correct);
    tcase_add_test(tc, test_gradcheck_broken);
    tcase_add_test(tc, test_gradcheck_picks);
    tcase_add_test(tc, test_gradcheck_kinks);
    tcase_add_test(tc, test_gradcheck_main);
    suite_add_tcase(s, tc);
    tc = tcase_create("util");
    tcase_add_test(tc, test_now_ms);
    tcase_add_test(tc, test_split_decides);
    tcase_add_test(tc, test_split_trial);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
