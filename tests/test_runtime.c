/*
 * test_runtime.c: the runtime's Check suite, one tcase per runtime file.
 *
 * The trainer and the gradient check run on tiny models written by hand
 * here, each a real rt_model descriptor over a static arena: linear
 * regression (loss = sum((x w - y)^2), batch 4, 3 features) with the right
 * gradient and with a deliberately wrong one, a quadratic with 100
 * parameters (for the seeded picks), |w| at 0 (all kinks), and a float
 * build with an int32 label input (memory access and data binding), and
 * linear regression with momentum, whose optimizer state a checkpoint must
 * carry, with hooks that raise a signal or poison the parameters at a
 * chosen step; a classifier whose output is a copy of its input (so its
 * argmaxes, and the accuracy, are known) and which counts the rows each
 * step trains on; and the digits data's shape, for binding only.
 * .npy files are also written by numpy and read back by numpy, so the
 * format is checked against the reference, not against ourselves.
 */
/* posix_openpt and friends: the progress bar needs a terminal to appear. */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "rt.h"
#include "rt_internal.h"
#include "rt_real.h"

/* ---- linear regression: loss = sum_b ((x w)_b - y_b)^2 ---- */

enum { B = 4, F = 3 };
enum {
    X_OFF = 0,
    Y_OFF = 12,
    W_OFF = 16,
    DW_OFF = 19,
    LOSS_OFF = 22,
    PRED_OFF = 23,
    LR_ARENA = 27
};
static double lr_arena[LR_ARENA];
static int32_t no_iarena[1];

/* dL/dw_j = sum_b 2 r_b x_bj; `two` is 2 for the right gradient. */
static double linreg(double two)
{
    double *a = lr_arena, loss = 0;
    double r[B];
    for (int b = 0; b < B; b++) {
        double p = 0;
        for (int j = 0; j < F; j++)
            p += a[X_OFF + b * F + j] * a[W_OFF + j];
        a[PRED_OFF + b] = p;
        r[b] = p - a[Y_OFF + b];
        loss += r[b] * r[b];
    }
    for (int j = 0; j < F; j++) {
        a[DW_OFF + j] = 0;
        for (int b = 0; b < B; b++)
            a[DW_OFF + j] += two * r[b] * a[X_OFF + b * F + j];
    }
    a[LOSS_OFF] = loss;
    return loss;
}

static double lr_loss_and_grad(void) { return linreg(2.0); }
static double lr_bad_loss_and_grad(void) { return linreg(3.0); }

static double lr_train_step(const rt_hyper *h)
{
    double loss = lr_loss_and_grad();
    for (int j = 0; j < F; j++)
        lr_arena[W_OFF + j] -= h->lr * lr_arena[DW_OFF + j];
    return loss;
}

static void lr_forward(int rows)
{
    (void)rows;
    linreg(2.0);
}

static const rt_tensor lr_inputs[] = {
    {.name = "x", .dtype = RT_F64, .rank = 2, .shape = {B, F}, .size = B * F, .offset = X_OFF},
    {.name = "y", .dtype = RT_F64, .rank = 2, .shape = {B, 1}, .size = B, .offset = Y_OFF},
};
static const rt_tensor lr_params[] = {
    {.name = "w",
     .dtype = RT_F64,
     .rank = 2,
     .shape = {F, 1},
     .size = F,
     .offset = W_OFF,
     .init = RT_INIT_NORMAL,
     .init_a = 0,
     .init_b = 0.5},
};
static const rt_tensor lr_grads[] = {
    {.name = "d_w", .dtype = RT_F64, .rank = 2, .shape = {F, 1}, .size = F, .offset = DW_OFF},
};
static const rt_tensor lr_outputs[] = {
    {.name = "pred", .dtype = RT_F64, .rank = 2, .shape = {B, 1}, .size = B, .offset = PRED_OFF},
};

#define LINREG_MODEL(lg)                                                                           \
    {                                                                                              \
        .name = "linreg", .source = "linreg.lua", .batch = B, .real = RT_F64, .arena = lr_arena,   \
        .iarena = no_iarena, .arena_size = LR_ARENA, .iarena_size = 0, .n_inputs = 2,              \
        .n_params = 1, .n_outputs = 1, .inputs = lr_inputs, .params = lr_params,                   \
        .grads = lr_grads, .outputs = lr_outputs, .params_offset = W_OFF, .grads_offset = DW_OFF,  \
        .n_param_elems = F, .loss_offset = LOSS_OFF, .optimizer = RT_OPT_SGD,                      \
        .hyper = {.lr = 0.01}, .loss = lg, .loss_and_grad = lg, .train_step = lr_train_step,       \
        .forward = lr_forward                                                                      \
    }
static const rt_model linreg_model = LINREG_MODEL(lr_loss_and_grad);
static const rt_model linreg_bad_model = LINREG_MODEL(lr_bad_loss_and_grad);

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

/* ---- a float build with int32 labels: memory layout and binding ---- */

static float f_arena[20];
static int32_t f_iarena[6];

static const rt_tensor f_inputs[] = {
    {.name = "x", .dtype = RT_F32, .rank = 2, .shape = {4, 3}, .size = 12, .offset = 2},
    {.name = "label",
     .dtype = RT_I32,
     .rank = 1,
     .shape = {4},
     .size = 4,
     .offset = 1,
     .classes = 3},
    {.name = "bit", .dtype = RT_I32, .rank = 1, .shape = {1}, .size = 1, .offset = 5},
};
static const rt_tensor f_params[] = {
    {.name = "b",
     .dtype = RT_F32,
     .rank = 1,
     .shape = {2},
     .size = 2,
     .offset = 14,
     .init = RT_INIT_CONST,
     .init_a = 0.25},
    {.name = "u",
     .dtype = RT_F32,
     .rank = 1,
     .shape = {4},
     .size = 4,
     .offset = 16,
     .init = RT_INIT_UNIFORM,
     .init_a = 2,
     .init_b = 3},
};
static const rt_model float_model = {.name = "fmodel",
                                     .batch = 4,
                                     .real = RT_F32,
                                     .arena = f_arena,
                                     .iarena = f_iarena,
                                     .arena_size = 20,
                                     .iarena_size = 6,
                                     .n_inputs = 3,
                                     .n_params = 2,
                                     .inputs = f_inputs,
                                     .params = f_params,
                                     .grads = f_params};

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

/* ---- the digits data's shape (64 pixels, 10 classes): binding only ---- */

static float dg_arena[64 * 64];
static int32_t dg_iarena[64];
static const rt_tensor dg_inputs[] = {
    {.name = "x", .dtype = RT_F32, .rank = 2, .shape = {64, 64}, .size = 64 * 64, .offset = 0},
    {.name = "labels",
     .dtype = RT_I32,
     .rank = 1,
     .shape = {64},
     .size = 64,
     .offset = 0,
     .classes = 10},
};
static const rt_model digits_model = {.name = "digits",
                                      .batch = 64,
                                      .real = RT_F32,
                                      .arena = dg_arena,
                                      .iarena = dg_iarena,
                                      .arena_size = 64 * 64,
                                      .iarena_size = 64,
                                      .n_inputs = 2,
                                      .inputs = dg_inputs};

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_runtime.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

typedef int (*main_fn)(const rt_model *, int, char **);

typedef struct {
    int rc;
    char *out, *err; /* what the call printed; free both */
} Run;

/* Runs fn with stdout and stderr sent to files, then reads them back. */
static Run run_main(main_fn fn, const rt_model *m, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "prog";
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(tmp("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(tmp("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    Run r = {.rc = fn(m, argc, argv)};
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so), close(se), close(fo), close(fe);
    r.out = slurp(tmp("stdout"));
    r.err = slurp(tmp("stderr"));
    return r;
}

static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

/* The value after `key` in the last line that starts with it. */
static double last_value(const char *text, const char *key)
{
    double v = NAN;
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0)
            v = strtod(p + n, NULL);
    return v;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static int python(const char *code)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/python3 -c \"%s\"", tmpdir, code);
    return system(cmd);
}

/* A v1.0 file with any header text and `data` bytes after it. */
static void write_raw_npy(const char *path, const char *dict, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    size_t len = strlen(dict);
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(len & 0xff),
                             (unsigned char)(len >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, len, f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static void write_f64(const char *path, int rank, const long *shape, const double *v)
{
    char err[512];
    ck_assert_msg(rt_npy_write(path, RT_F64, rank, shape, v, err, sizeof err) == 0, "%s", err);
}

/* ---- rng ---- */

/* gemm.c's kernels against OpenBLAS, float and double, A B and A^T B (N
 * in stripes of 48, 32 and 16, then the last 4 to 12 columns: A B's as
 * dot products, K in vectors and the rest one by one, A^T B's 48 or 16
 * rows at a time, then 8 or 1; from 128 rows on, each stripe of 48
 * copied into panels, K in parts of 256) and A B^T (K in vectors of 16;
 * from 64 rows on, B copied into panels, K in parts of 256; with fewer
 * rows but 64 columns or more, unsplit, C^T = B A^T that way): blocks of
 * rows and columns and the ones left over, operands inside larger matrices
 * (lda, ldb, ldc), alpha and beta; beta 0 reads no C, here NaN, and
 * nothing outside the product is written. Sums may be in another order: a
 * relative tolerance, but on 2 threads A^T B, and A B below 128 rows,
 * exactly as on 1. And rt_sgemm, the BLAS's product shared out among
 * threads (by rows, or by columns, in parts of 16 and the rest), in every
 * transpose, and a small A B with few last columns as C^T = B^T A^T. On
 * 1 thread and on 2. */
START_TEST(test_gemm_kernels_match_blas)
{
    enum { NN, NT, TN };
    static const int shape[][4] = {
        {8, 48, 5, NN},  {13, 80, 7, NN},     {32, 1024, 256, NN}, {3, 16, 1, NN},
        {17, 64, 40, NN}, {5, 7, 32, NT},     {32, 256, 1024, NT}, {9, 13, 16, NT},
        {4, 4, 48, NT},  {64, 48, 32, NT},     {70, 80, 304, NT},  {64, 16, 16, NT},
        {65, 20, 16, NT}, {128, 128, 1024, TN}, {11, 48, 9, TN},   {9, 32, 3, TN},
        {520, 36, 64, TN},  {20, 1000, 80, NN},  {9, 36, 5, NN},     {10, 12, 7, TN},
        {16, 100, 700, NN}, {300, 50, 100, NT},  {9, 50, 3, NN},     {48, 96, 64, NT},
        {16, 300, 32, NT}, {128, 100, 300, NN}, {130, 96, 520, NN}, {136, 148, 260, TN},
        {1000, 100, 64, TN}, {70, 108, 20, TN}, {9, 60, 33, NN},
        /* the small products OpenBLAS's AVX-512 kernels would allocate for */
        {64, 100, 64, NN}, {5, 3, 40, NN}, {30, 17, 100, NN}};
    static const double scale[][2] = {{1, 0}, {-0.25, 1}, {2, 0.5}};
    rt_rng rng;
    rt_rng_seed(&rng, 7);
    const int threads = _i; /* 1, then 2 */
    for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++)
        for (size_t a = 0; a < sizeof scale / sizeof scale[0]; a++) {
            int m = shape[s][0], n = shape[s][1], k = shape[s][2];
            int ta = shape[s][3] == TN, tb = shape[s][3] == NT;
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 16, ldc = n + 32;
            double alpha = scale[a][0], beta = scale[a][1];
            size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb;
            size_t nc = (size_t)m * ldc;
            float *fa = malloc(na * sizeof *fa), *fb = malloc(nb * sizeof *fb);
            float *fc = malloc(nc * sizeof *fc), *fr = malloc(nc * sizeof *fr);
            float *fs = malloc(nc * sizeof *fs);
            double *da = malloc(na * sizeof *da), *db = malloc(nb * sizeof *db);
            double *dc = malloc(nc * sizeof *dc), *dr = malloc(nc * sizeof *dr);
            double *ds = malloc(nc * sizeof *ds);
            rt_set_threads(threads);
            for (size_t i = 0; i < na; i++)
                da[i] = fa[i] = (float)(rt_rng_uniform(&rng) - 0.5);
            for (size_t i = 0; i < nb; i++)
                db[i] = fb[i] = (float)(rt_rng_uniform(&rng) - 0.5);
            for (size_t i = 0; i < nc; i++)
                ds[i] = dc[i] = dr[i] = fs[i] = fc[i] = fr[i] =
                    beta ? (float)rt_rng_uniform(&rng) : NAN;
            enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
            enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
            rt_sgemm(CblasRowMajor, opa, opb, m, n, k, (float)alpha, fa, lda, fb, ldb,
                     (float)beta, fs, ldc);
            rt_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha, da, lda, db, ldb, beta, ds, ldc);
            const int kernel = tb ? k % 16 == 0 : n % 4 == 0; /* the last two: rt_sgemm only */
            float *f1 = malloc(nc * sizeof *f1);
            memcpy(f1, fc, nc * sizeof *f1);
            if (kernel)
                (tb ? rt_sgemm_nt : ta ? rt_sgemm_tn : rt_sgemm_nn)(m, n, k, (float)alpha, fa, lda,
                                                                     fb, ldb, (float)beta, fc, ldc);
            /* A^T B, and A B below 128 rows, come out the same on 2 threads
             * as on 1, bit for bit (A B with more goes to the BLAS there) */
            if (kernel && threads == 2 && !tb && (ta || m < 128)) {
                rt_set_threads(1);
                (ta ? rt_sgemm_tn : rt_sgemm_nn)(m, n, k, (float)alpha, fa, lda, fb, ldb,
                                                 (float)beta, f1, ldc);
                rt_set_threads(threads);
                ck_assert_msg(!memcmp(f1, fc, nc * sizeof *f1),
                              "%dx%dx%d %d: 2 threads differ from 1", m, n, k, shape[s][3]);
            }
            free(f1);
            cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, (float)alpha, fa, lda, fb, ldb,
                        (float)beta, fr, ldc);
            if (kernel)
                (tb ? rt_dgemm_nt : ta ? rt_dgemm_tn : rt_dgemm_nn)(m, n, k, alpha, da, lda, db,
                                                                     ldb, beta, dc, ldc);
            cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha, da, lda, db, ldb, beta, dr,
                        ldc);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < ldc; j++) {
                    size_t at = (size_t)i * ldc + j;
                    if (j >= n) { /* outside the product: untouched */
                        ck_assert(isnan(fc[at]) ? isnan(fr[at]) : fc[at] == fr[at]);
                        ck_assert(isnan(fs[at]) ? isnan(fr[at]) : fs[at] == fr[at]);
                        continue;
                    }
                    ck_assert_msg(fabs(fs[at] - fr[at]) <= 1e-5 * (1 + fabs(fr[at])) &&
                                      fabs(ds[at] - dr[at]) <= 1e-13 * (1 + fabs(dr[at])),
                                  "shared %dx%dx%d %d, %d threads, at %d,%d: %g against %g", m,
                                  n, k, shape[s][3], threads, i, j, fs[at], fr[at]);
                    if (!kernel)
                        continue;
                    ck_assert_msg(fabs(fc[at] - fr[at]) <= 1e-5 * (1 + fabs(fr[at])),
                                  "float %dx%dx%d %d at %d,%d: %g against %g", m, n, k,
                                  shape[s][3], i, j, fc[at], fr[at]);
                    ck_assert_msg(fabs(dc[at] - dr[at]) <= 1e-13 * (1 + fabs(dr[at])),
                                  "double %dx%dx%d %d at %d,%d: %g against %g", m, n, k,
                                  shape[s][3], i, j, dc[at], dr[at]);
                }
            free(fa), free(fb), free(fc), free(fr), free(fs);
            free(da), free(db), free(dc), free(dr), free(ds);
        }
    rt_set_threads(1);
}
END_TEST

/* rt_real.h's row reductions, in 16 lanes and the few left, against
 * plain loops in double, for rows of 1 to 40: the max exactly, the sums
 * within float rounding, and r_exp_sum stores each exp (also in place). */
START_TEST(test_row_reductions)
{
    rt_rng rng;
    rt_rng_seed(&rng, 3);
    float x[40], y[40], e[40];
    for (int n = 1; n <= 40; n++) {
        double mx = -INFINITY, sum = 0, dot = 0, plain = 0, scale = 0;
        for (int j = 0; j < n; j++) {
            x[j] = (float)(4 * rt_rng_uniform(&rng) - 2);
            y[j] = (float)(rt_rng_uniform(&rng) - 0.5);
            mx = fmax(mx, x[j]);
        }
        for (int j = 0; j < n; j++) {
            sum += rt_expf(x[j] - (float)mx);
            dot += (double)x[j] * y[j];
            plain += x[j];
            scale += fabs((double)x[j] * y[j]) + fabs(x[j]);
        }
        ck_assert_msg(r_max_of(x, n) == (float)mx, "max of %d", n);
        ck_assert_msg(fabs(r_exp_sum(e, x, n, (float)mx) - sum) <= 1e-6 * sum, "exp sum of %d", n);
        ck_assert_msg(fabs(r_exp_sum(NULL, x, n, (float)mx) - sum) <= 1e-6 * sum, "of %d", n);
        for (int j = 0; j < n; j++)
            ck_assert(e[j] == rt_expf(x[j] - (float)mx));
        ck_assert_msg(fabs(r_dot(x, y, n) - dot) <= 1e-6 * scale, "dot of %d", n);
        ck_assert_msg(fabs(r_dot(x, NULL, n) - plain) <= 1e-6 * scale, "sum of %d", n);
        memcpy(e, x, sizeof x);
        ck_assert(fabs(r_exp_sum(e, e, n, (float)mx) - sum) <= 1e-6 * sum);
        ck_assert(e[n - 1] == rt_expf(x[n - 1] - (float)mx));
    }
}
END_TEST

/* The float build's exp and tanh (rt_real.h) against libm's double ones:
 * within 2 ulp (2^-22 relative) over their range, and right at the ends;
 * its fmax and fmin take NaN as libm's do. */
START_TEST(test_fast_exp_tanh)
{
    const double ulp2 = 0x1p-22;
    for (double x = -86.0; x <= 88.7; x += 0.000731) {
        float f = (float)x;
        double want = exp((double)f);
        ck_assert_msg(fabs(rt_expf(f) - want) <= ulp2 * want, "exp(%.9g) = %.9g, libm %.9g", f,
                      rt_expf(f), want);
    }
    for (double x = -12.0; x <= 12.0; x += 0.0000913) {
        float f = (float)x;
        double want = tanh((double)f);
        ck_assert_msg(fabs(rt_tanhf(f) - want) <= ulp2 * fabs(want), "tanh(%.9g) = %.9g, libm %.9g",
                      f, rt_tanhf(f), want);
    }
    for (float f = 1e-30f; f < 1; f *= 1.013f) /* near 0, where 1 - e^-2x loses digits */
        ck_assert_msg(fabs(rt_tanhf(-f) + tanh((double)f)) <= ulp2 * tanh((double)f),
                      "tanh(%.9g) = %.9g", -f, rt_tanhf(-f));
    ck_assert(rt_expf(INFINITY) == INFINITY && rt_expf(89.0f) == INFINITY);
    ck_assert(rt_expf(-INFINITY) == 0 && rt_expf(-100.0f) == 0 && rt_expf(0) == 1);
    ck_assert(isnan(rt_expf(NAN)) && isnan(rt_tanhf(NAN)));
    ck_assert(rt_tanhf(INFINITY) == 1 && rt_tanhf(-30.0f) == -1);
    ck_assert(rt_tanhf(0.0f) == 0 && signbit(rt_tanhf(-0.0f)));
    ck_assert(rt_fmaxf(NAN, 1) == 1 && rt_fmaxf(1, NAN) == 1 && rt_fmaxf(-2, 3) == 3);
    ck_assert(rt_fminf(NAN, 1) == 1 && rt_fminf(1, NAN) == 1 && rt_fminf(-2, 3) == -2);
    /* A running max or min from an infinity skips NaNs as fmax and fmin do. */
    const real xs[] = {NAN, -3, 5, NAN, 2, -INFINITY};
    real mx = -INFINITY, mn = INFINITY;
    for (int i = 0; i < 6; i++) {
        mx = r_max(mx, xs[i]);
        mn = r_min(mn, xs[i]);
    }
    ck_assert(mx == 5 && mn == -INFINITY && r_max(-INFINITY, NAN) == -INFINITY);
}
END_TEST

START_TEST(test_rng_golden)
{
    /* Pinned values (from an independent Python model of the algorithm):
     * the same seed must give these numbers on every machine. */
    uint64_t x = 0;
    ck_assert_uint_eq(rt_splitmix64(&x), 0xe220a8397b1dcdafu);
    rt_rng r;
    rt_rng_seed(&r, 42);
    ck_assert_uint_eq(rt_rng_next(&r), 0x15780b2e0c2ec716u);
    ck_assert_uint_eq(rt_rng_next(&r), 0x6104d9866d113a7eu);
    ck_assert_uint_eq(rt_rng_next(&r), 0xae17533239e499a1u);
    rt_rng_seed(&r, 42);
    ck_assert_double_eq(rt_rng_uniform(&r), 0.08386297105988216);
}
END_TEST

START_TEST(test_rng_determinism)
{
    rt_rng a, b, c;
    rt_rng_seed(&a, 7);
    rt_rng_seed(&b, 7);
    rt_rng_seed(&c, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        double x = rt_rng_normal(&a);
        ck_assert_double_eq(x, rt_rng_normal(&b));
        differ += x != rt_rng_normal(&c);
    }
    ck_assert_int_gt(differ, 990);
}
END_TEST

START_TEST(test_rng_normal_moments)
{
    rt_rng r;
    rt_rng_seed(&r, 1);
    double s = 0, ss = 0;
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        double x = rt_rng_normal(&r);
        ck_assert(isfinite(x));
        s += x;
        ss += x * x;
    }
    double mean = s / N, sd = sqrt(ss / N - mean * mean);
    ck_assert_double_eq_tol(mean, 0.0, 0.02);
    ck_assert_double_eq_tol(sd, 1.0, 0.02);
}
END_TEST

START_TEST(test_rng_uniform_range)
{
    rt_rng r;
    rt_rng_seed(&r, 3);
    double lo = 1, hi = 0, s = 0;
    for (int i = 0; i < 100000; i++) {
        double u = rt_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
        s += u;
    }
    ck_assert_double_lt(lo, 1e-3);
    ck_assert_double_gt(hi, 1 - 1e-3);
    ck_assert_double_eq_tol(s / 100000, 0.5, 0.01);
    for (int i = 0; i < 1000; i++) {
        long v = rt_rng_below(&r, 7);
        ck_assert(v >= 0 && v < 7);
    }
}
END_TEST

START_TEST(test_rng_streams_differ)
{
    rt_rng a, b, c;
    rt_rng_stream(&a, 1, RT_STREAM_PARAM, 0);
    rt_rng_stream(&b, 1, RT_STREAM_PARAM, 1);
    rt_rng_stream(&c, 1, RT_STREAM_INPUT, 0);
    uint64_t x = rt_rng_next(&a);
    ck_assert_uint_ne(x, rt_rng_next(&b));
    ck_assert_uint_ne(x, rt_rng_next(&c));
}
END_TEST

/* ---- tensor ---- */

START_TEST(test_get_set_float_build)
{
    memset(f_arena, 0, sizeof f_arena);
    const rt_tensor *x = &f_inputs[0], *label = &f_inputs[1];
    rt_set(&float_model, x, 5, 1.5);
    ck_assert_float_eq(f_arena[2 + 5], 1.5f);
    ck_assert_double_eq(rt_get(&float_model, x, 5), 1.5);
    /* Stored as float: 0.1 comes back as the nearest float, not 0.1. */
    rt_set(&float_model, x, 0, 0.1);
    ck_assert_double_eq(rt_get(&float_model, x, 0), (double)0.1f);
    rt_set(&float_model, label, 3, 2);
    ck_assert_int_eq(f_iarena[1 + 3], 2);
    ck_assert_double_eq(rt_get(&float_model, label, 3), 2.0);
    ck_assert_float_eq(f_arena[1 + 3], 0.0f); /* not written to the wrong arena */
}
END_TEST

START_TEST(test_get_set_double_build)
{
    rt_set(&linreg_model, &lr_params[0], 2, 0.1);
    ck_assert_double_eq(lr_arena[W_OFF + 2], 0.1);
    ck_assert_double_eq(rt_get(&linreg_model, &lr_params[0], 2), 0.1);
}
END_TEST

START_TEST(test_init_params)
{
    rt_init_params(&float_model, 5);
    ck_assert_float_eq(f_arena[14], 0.25f);
    ck_assert_float_eq(f_arena[15], 0.25f);
    float u[4];
    for (int i = 0; i < 4; i++) {
        u[i] = f_arena[16 + i];
        ck_assert(u[i] >= 2.0f && u[i] <= 3.0f);
    }
    ck_assert_float_ne(u[0], u[1]);
    rt_init_params(&float_model, 5);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(f_arena[16 + i], u[i]);
    rt_init_params(&float_model, 6);
    ck_assert_float_ne(f_arena[16], u[0]);
}
END_TEST

START_TEST(test_init_param_streams_independent)
{
    /* Parameter 1 of float_model must not move if parameter 0 goes away. */
    rt_init_params(&float_model, 9);
    float u[4];
    memcpy(u, f_arena + 16, sizeof u);
    rt_model one = float_model;
    rt_tensor only = f_params[1];
    one.params = &only;
    one.n_params = 1;
    memset(f_arena, 0, sizeof f_arena);
    rt_init_params(&one, 9);
    ck_assert_float_ne(u[0], f_arena[16]); /* now it is parameter 0's stream */
    one.params = f_params;
    one.n_params = 2;
    rt_init_params(&one, 9);
    ck_assert_mem_eq(u, f_arena + 16, sizeof u);
}
END_TEST

START_TEST(test_init_normal_moments)
{
    static double arena[20000];
    rt_tensor p = {.name = "p",
                   .dtype = RT_F64,
                   .rank = 1,
                   .shape = {20000},
                   .size = 20000,
                   .init = RT_INIT_NORMAL,
                   .init_a = 3,
                   .init_b = 0.5};
    rt_model m = {.name = "n", .real = RT_F64, .arena = arena, .n_params = 1, .params = &p};
    rt_init_params(&m, 1);
    double s = 0, ss = 0;
    for (int i = 0; i < 20000; i++)
        s += arena[i], ss += arena[i] * arena[i];
    double mean = s / 20000, sd = sqrt(ss / 20000 - mean * mean);
    ck_assert_double_eq_tol(mean, 3.0, 0.02);
    ck_assert_double_eq_tol(sd, 0.5, 0.02);
}
END_TEST

START_TEST(test_random_inputs)
{
    static double arena[3000];
    static int32_t iarena[3000];
    rt_tensor in[] = {
        {.name = "x", .dtype = RT_F64, .rank = 1, .shape = {1000}, .size = 1000},
        {.name = "c", .dtype = RT_I32, .rank = 1, .shape = {1000}, .size = 1000, .classes = 5},
        {.name = "b", .dtype = RT_I32, .rank = 1, .shape = {1000}, .size = 1000, .offset = 1000},
        {.name = "x2", .dtype = RT_F64, .rank = 1, .shape = {1000}, .size = 1000, .offset = 1000},
    };
    rt_model m = {
        .name = "r", .real = RT_F64, .arena = arena, .iarena = iarena, .n_inputs = 4, .inputs = in};
    rt_random_inputs(&m, 1);
    int seen[5] = {0}, bits[2] = {0};
    for (int i = 0; i < 1000; i++) {
        ck_assert(iarena[i] >= 0 && iarena[i] < 5);
        seen[iarena[i]]++;
        ck_assert(iarena[1000 + i] == 0 || iarena[1000 + i] == 1);
        bits[iarena[1000 + i]]++;
    }
    for (int c = 0; c < 5; c++)
        ck_assert_int_gt(seen[c], 100);
    ck_assert_int_gt(bits[0], 400);
    ck_assert_int_gt(bits[1], 400);
    ck_assert_double_ne(arena[0], arena[1000]); /* each input its own stream */
    double s = 0;
    for (int i = 0; i < 1000; i++)
        s += arena[i];
    ck_assert_double_eq_tol(s / 1000, 0.0, 0.15);
}
END_TEST

/* ---- npy ---- */

static void check_round_trip(rt_dtype dt, int rank, const long *shape, const void *data,
                             size_t width)
{
    char err[512];
    rt_array a;
    const char *path = tmp("rt.npy");
    ck_assert_msg(rt_npy_write(path, dt, rank, shape, data, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_npy_read(path, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, dt);
    ck_assert_int_eq(a.rank, rank);
    long size = 1;
    for (int i = 0; i < rank; i++) {
        ck_assert_int_eq(a.shape[i], shape[i]);
        size *= shape[i];
    }
    ck_assert_int_eq(a.size, size);
    ck_assert_mem_eq(a.data, data, (size_t)size * width);
    rt_array_free(&a);
    /* The data starts on a 64-byte boundary. */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fclose(f);
    ck_assert_int_eq((bytes - size * (long)width) % 64, 0);
}

START_TEST(test_npy_round_trip)
{
    make_tmpdir();
    float f[24];
    double d[5] = {0.1, -1e300, 5e-324, 1.0 / 3, -0.0};
    int32_t i[6] = {0, -1, 2147483647, -2147483647 - 1, 7, 42};
    for (int k = 0; k < 24; k++)
        f[k] = (float)k / 7.0f - 1.0f;
    check_round_trip(RT_F32, 3, (long[]){2, 3, 4}, f, 4);
    check_round_trip(RT_F64, 1, (long[]){5}, d, 8);
    check_round_trip(RT_I32, 2, (long[]){3, 2}, i, 4);
    check_round_trip(RT_F64, 0, (long[]){0}, d, 8);
    check_round_trip(RT_F32, 2, (long[]){0, 5}, f, 4);
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_write_leaves_no_temp)
{
    make_tmpdir();
    char err[512];
    double d[2] = {1, 2};
    ck_assert_int_eq(rt_npy_write(tmp("a.npy"), RT_F64, 1, (long[]){2}, d, err, sizeof err), 0);
    ck_assert_int_eq(rt_npy_write(tmp("a.npy"), RT_F64, 1, (long[]){2}, d, err, sizeof err), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test \"$(ls '%s')\" = a.npy", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    /* A directory that does not exist: an error naming the path. */
    ck_assert_int_eq(rt_npy_write(tmp("no/such/b.npy"), RT_F64, 1, (long[]){2}, d, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "no/such/b.npy"));
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_read_numpy_files)
{
    make_tmpdir();
    ck_assert_msg(python("import numpy as np\n"
                         "np.save('f4.npy', (np.arange(12, dtype=np.float32) / 8).reshape(3, 4))\n"
                         "np.save('f8.npy', np.array([[0.1, -2.5]]))\n"
                         "np.save('i4.npy', np.array([5, -6, 7], dtype=np.int32))\n"
                         "np.save('i8.npy', np.array([[1], [-2], [2**31 - 1]], dtype=np.int64))\n"
                         "np.save('u1.npy', np.array([0, 255, 9], dtype=np.uint8))\n"
                         "np.save('scalar.npy', np.float64(2.5))\n"
                         "np.save('big.npy', np.array([2**40], dtype=np.int64))\n"
                         "np.save('fortran.npy', np.asfortranarray(np.arange(6.).reshape(2, 3)))\n"
                         "np.save('be.npy', np.arange(3, dtype='>f4'))\n"
                         "np.save('f2.npy', np.arange(3, dtype=np.float16))\n"
                         "f = open('v2.npy', 'wb')\n"
                         "np.lib.format.write_array(f, np.arange(6, dtype=np.int32).reshape(1, 2, "
                         "3), version=(2, 0))\n"
                         "f.close()\n"
                         "f = open('v3.npy', 'wb')\n"
                         "np.lib.format.write_array(f, np.arange(4.), version=(3, 0))\n"
                         "f.close()\n") == 0,
                  "python3 with numpy is required for this test");
    char err[512];
    rt_array a;
    ck_assert_msg(rt_npy_read(tmp("f4.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, RT_F32);
    ck_assert_int_eq(a.rank, 2);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert_int_eq(a.shape[1], 4);
    ck_assert_float_eq(((float *)a.data)[11], 11.0f / 8);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("f8.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_F64);
    ck_assert_double_eq(((double *)a.data)[0], 0.1);
    ck_assert_double_eq(((double *)a.data)[1], -2.5);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("i4.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(((int32_t *)a.data)[1], -6);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("i8.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert_int_eq(a.shape[1], 1);
    ck_assert_int_eq(((int32_t *)a.data)[1], -2);
    ck_assert_int_eq(((int32_t *)a.data)[2], 2147483647);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("u1.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(((int32_t *)a.data)[1], 255);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("scalar.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.rank, 0);
    ck_assert_int_eq(a.size, 1);
    ck_assert_double_eq(((double *)a.data)[0], 2.5);
    rt_array_free(&a);
    ck_assert_msg(rt_npy_read(tmp("v2.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.rank, 3);
    ck_assert_int_eq(((int32_t *)a.data)[5], 5);
    rt_array_free(&a);
    ck_assert_msg(rt_npy_read(tmp("v3.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_double_eq(((double *)a.data)[3], 3.0);
    rt_array_free(&a);

    const char *refused[][2] = {
        {"big.npy", "does not fit in int32"},
        {"fortran.npy", "fortran_order"},
        {"be.npy", "big-endian"},
        {"f2.npy", "unsupported dtype '<f2'"},
    };
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(rt_npy_read(tmp(refused[k][0]), &a, err, sizeof err), -1);
        ck_assert_ptr_null(a.data);
        ck_assert_msg(strstr(err, tmp(refused[k][0])) && strstr(err, refused[k][1]), "%s: got '%s'",
                      refused[k][0], err);
    }
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_numpy_reads_ours)
{
    make_tmpdir();
    char err[512];
    float f[6] = {0.5f, -1, 2, 3, 4.25f, 1e-7f};
    int32_t i[3] = {1, -2, 3};
    double d[1] = {1.0 / 3};
    ck_assert_int_eq(rt_npy_write(tmp("f.npy"), RT_F32, 2, (long[]){2, 3}, f, err, sizeof err), 0);
    ck_assert_int_eq(rt_npy_write(tmp("i.npy"), RT_I32, 1, (long[]){3}, i, err, sizeof err), 0);
    ck_assert_int_eq(rt_npy_write(tmp("d.npy"), RT_F64, 0, NULL, d, err, sizeof err), 0);
    ck_assert_int_eq(
        python("import numpy as np\n"
               "f = np.load('f.npy'); i = np.load('i.npy'); d = np.load('d.npy')\n"
               "assert f.dtype == np.float32 and f.shape == (2, 3), f\n"
               "assert (f == np.array([[0.5, -1, 2], [3, 4.25, 1e-7]], dtype=np.float32)).all()\n"
               "assert i.dtype == np.int32 and list(i) == [1, -2, 3]\n"
               "assert d.shape == () and d == 1 / 3\n"),
        0);
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_truncated)
{
    make_tmpdir();
    char err[512];
    rt_array a;
    double d[12] = {0};
    write_f64(tmp("t.npy"), 2, (long[]){3, 4}, d);
    ck_assert_int_eq(truncate(tmp("t.npy"), 128 + 40), 0);
    ck_assert_int_eq(rt_npy_read(tmp("t.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, tmp("t.npy")));
    ck_assert_str_eq(strstr(err, "truncated"), "truncated: header says [3,4] float64 "
                                               "(96 bytes), file has 40 bytes of data");
    /* Cut inside the header, and inside the magic string. */
    ck_assert_int_eq(truncate(tmp("t.npy"), 50), 0);
    ck_assert_int_eq(rt_npy_read(tmp("t.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    ck_assert_int_eq(truncate(tmp("t.npy"), 3), 0);
    ck_assert_int_eq(rt_npy_read(tmp("t.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, tmp("t.npy")));
    ck_assert_int_eq(rt_npy_read(tmp("missing.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "missing.npy: cannot open"));
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_bad_headers)
{
    make_tmpdir();
    char err[512];
    rt_array a;
    double d[4] = {1, 2, 3, 4};
    static const struct {
        const char *dict, *want;
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", "fortran_order"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }",
         "is too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         "too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", "truncated"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }", "rank"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-2, 2), }", "shape"},
        {"{'descr': '<f8', 'fortran_order': False, }", "no 'shape'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4,", "shape"},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (4,), }", "big-endian"},
        {"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4,), }", "structured"},
        {"{'descr': '<f8 ", "unterminated"},
        {"", "not a dict"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_raw_npy(tmp("h.npy"), cases[k].dict, d, sizeof d);
        ck_assert_int_eq(rt_npy_read(tmp("h.npy"), &a, err, sizeof err), -1);
        ck_assert_msg(strstr(err, tmp("h.npy")) && strstr(err, cases[k].want), "case %zu: got '%s'",
                      k, err);
    }
    /* Spacing, key order, double quotes and unknown keys are all fine. */
    write_raw_npy(tmp("h.npy"),
                  "{ \"shape\":(2,2) ,'extra': {'x': (1, '}')},"
                  "'fortran_order':False,'descr':'<f8'}\n",
                  d, sizeof d);
    ck_assert_msg(rt_npy_read(tmp("h.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.size, 4);
    ck_assert_double_eq(((double *)a.data)[3], 4.0);
    rt_array_free(&a);
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_fuzzed_headers)
{
    /* Every byte of a valid file's header replaced by a few values: each
     * read must succeed or fail cleanly (the sanitizers watch the rest). */
    make_tmpdir();
    char err[512];
    double d[6] = {1, 2, 3, 4, 5, 6};
    write_f64(tmp("ok.npy"), 2, (long[]){2, 3}, d);
    FILE *f = fopen(tmp("ok.npy"), "rb");
    unsigned char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const unsigned char vals[] = {0, '(', ')', '\'', ',', '9', 0xff, ' '};
    for (size_t i = 0; i < 128; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            unsigned char c[256];
            memcpy(c, buf, n);
            c[i] = vals[v];
            FILE *g = fopen(tmp("fz.npy"), "wb");
            fwrite(c, 1, n, g);
            fclose(g);
            rt_array a;
            err[0] = '\0';
            if (rt_npy_read(tmp("fz.npy"), &a, err, sizeof err) == 0)
                rt_array_free(&a);
            else
                ck_assert_ptr_nonnull(strstr(err, "fz.npy"));
        }
    remove_tmpdir();
}
END_TEST

/* ---- bind ---- */

/* A CSV feeds a float input its feature columns and an int32 input its
 * label column; an IDX file of [M, 3, 1] feeds an input of rows of 3. */
START_TEST(test_bind_csv_and_idx)
{
    make_tmpdir();
    char err[512];
    FILE *f = fopen(tmp("t.csv"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("a,b,c,label\n", f);
    for (int r = 0; r < 5; r++)
        fprintf(f, "%d.5,%d,%d,%d\n", r, 10 + r, 20 + r, r % 3);
    ck_assert_int_eq(fclose(f), 0);
    rt_array x, y;
    ck_assert_msg(
        rt_input_load(&float_model, &f_inputs[0], tmp("t.csv"), -1, 4, &x, err, sizeof err) == 0,
        "%s", err);
    ck_assert_int_eq(x.shape[0], 5);
    ck_assert_int_eq(x.shape[1], 3);
    ck_assert_float_eq(((float *)x.data)[3], 1.5f);
    ck_assert_float_eq(((float *)x.data)[14], 24.0f);
    ck_assert_msg(
        rt_input_load(&float_model, &f_inputs[1], tmp("t.csv"), -1, 4, &y, err, sizeof err) == 0,
        "%s", err);
    ck_assert_int_eq(((int32_t *)y.data)[4], 1);
    rt_array_free(&x);
    rt_array_free(&y);
    /* label column 1: now the features are the last three columns */
    ck_assert_int_eq(
        rt_input_load(&float_model, &f_inputs[1], tmp("t.csv"), 1, 4, &y, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "column 1 is 0.5, not an integer label"));
    /* too few rows for the batch, and a format gradc does not read */
    ck_assert_int_eq(
        rt_input_load(&float_model, &f_inputs[0], tmp("t.csv"), -1, 6, &x, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "with at least 6 rows"));
    ck_assert_int_eq(
        rt_input_load(&float_model, &f_inputs[0], tmp("t.json"), -1, 4, &x, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "t.json: not a data file gradc reads"));
    unsigned char idx[4 + 12 + 15] = {0, 0, 0x08, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 1};
    for (int i = 0; i < 15; i++)
        idx[16 + i] = (unsigned char)i;
    f = fopen(tmp("x-ubyte"), "wb");
    ck_assert_uint_eq(fwrite(idx, 1, sizeof idx, f), sizeof idx);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(
        rt_input_load(&float_model, &f_inputs[0], tmp("x-ubyte"), -1, 4, &x, err, sizeof err) == 0,
        "%s", err);
    ck_assert_int_eq(x.rank, 2);
    ck_assert_int_eq(x.shape[1], 3);
    ck_assert_float_eq(((float *)x.data)[14], 14.0f);
    rt_array_free(&x);
    remove_tmpdir();
}
END_TEST

/* A text is rows of T bytes for an int32 input [batch, T]; `:next` gives
 * the same rows a byte later, the targets of a character model. */
START_TEST(test_bind_text)
{
    static int32_t iarena[6];
    static const rt_tensor in[] = {
        {.name = "chars", .dtype = RT_I32, .rank = 2, .shape = {2, 3}, .size = 6, .classes = 128},
        {.name = "x", .dtype = RT_F64, .rank = 2, .shape = {2, 3}, .size = 6},
    };
    const rt_model m = {
        .name = "chars", .batch = 2, .real = RT_F64, .iarena = iarena, .n_inputs = 2, .inputs = in};
    make_tmpdir();
    char err[512];
    FILE *f = fopen(tmp("t.txt"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("abcdefghij", f);
    ck_assert_int_eq(fclose(f), 0);
    char next[600];
    snprintf(next, sizeof next, "%s:next", tmp("t.txt"));
    rt_array x, y;
    ck_assert_msg(rt_input_load(&m, &in[0], tmp("t.txt"), -1, 2, &x, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(rt_input_load(&m, &in[0], next, -1, 2, &y, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(x.shape[0], 3); /* (10 - 1) / 3 */
    ck_assert_int_eq(y.shape[0], 3);
    ck_assert_int_eq(x.shape[1], 3);
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(((int32_t *)x.data)[i], 'a' + i);
        ck_assert_int_eq(((int32_t *)y.data)[i], 'b' + i);
    }
    rt_array_free(&x);
    rt_array_free(&y);
    ck_assert_int_eq(rt_input_load(&m, &in[1], tmp("t.txt"), -1, 2, &x, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "a text feeds int32 inputs"));
    f = fopen(tmp("u.txt"), "w");
    fputs("ab\xe9"
          "defg",
          f); /* a byte past the 128 classes */
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rt_input_load(&m, &in[0], tmp("u.txt"), -1, 2, &x, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "byte 2 is 233, outside [0, 128)"));
    ck_assert_ptr_nonnull(strstr(err, "text takes 256 classes"));
    remove_tmpdir();
}
END_TEST

START_TEST(test_bind_conversions)
{
    make_tmpdir();
    char err[512];
    rt_data d;
    double x[6 * 3], lab[6] = {0, 1, 2, 2, 1, 0}, bit[12] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    for (int i = 0; i < 18; i++)
        x[i] = i * 0.25; /* exact in float */
    write_f64(tmp("x.npy"), 2, (long[]){6, 3}, x);
    write_f64(tmp("lab.npy"), 1, (long[]){6}, lab);
    write_f64(tmp("bit.npy"), 2, (long[]){6, 2}, bit); /* two values a row, for one */
    rt_data_init(&d);
    ck_assert_msg(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(rt_data_bind(&d, &float_model, "label", tmp("lab.npy"), err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(rt_data_finish(&d, &float_model, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'bit'"));
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "twice"));
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "z", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_str_eq(err, "--data: the model has no input 'z' (inputs: x, label, bit)");
    ck_assert_msg(rt_data_bind(&d, &float_model, "bit", tmp("bit.npy"), err, sizeof err) == -1,
                  "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "expected [*] int32, got [6,2] float64"));
    /* A column of labels is rows of one value: it fits an input [*]. */
    double bit1[6] = {1, 0, 1, 0, 1, 0};
    write_f64(tmp("bit.npy"), 2, (long[]){6, 1}, bit1);
    ck_assert_msg(rt_data_bind(&d, &float_model, "bit", tmp("bit.npy"), err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(rt_data_finish(&d, &float_model, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.rows, 6);
    ck_assert_int_eq(d.nbatches, 1);
    rt_data_load(&d, &float_model, 2); /* one batch: step 2 wraps to rows 0-3 */
    ck_assert_float_eq(f_arena[2 + 11], 11 * 0.25f);
    ck_assert_int_eq(f_iarena[1 + 2], 2);
    ck_assert_int_eq(f_iarena[5], 1);
    rt_data_free(&d);

    static const struct {
        double v;
        int idx;
        const char *want;
    } bad[] = {
        {0.1, 4, "lab.npy: element 4 (0.10000000000000001) does not convert exactly to int32"},
        {2.5, 1, "lab.npy: element 1 (2.5) does not convert exactly to int32"},
        {3, 5, "lab.npy: element 5 is 3, outside [0, 3)"},
        {-1, 0, "lab.npy: element 0 is -1, outside [0, 3)"},
        {NAN, 2, "lab.npy: element 2 (nan) does not convert"},
        {3e9, 2, "lab.npy: element 2 (3000000000) does not convert"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        double l[6] = {0, 1, 2, 2, 1, 0};
        l[bad[k].idx] = bad[k].v;
        write_f64(tmp("lab.npy"), 1, (long[]){6}, l);
        rt_data_init(&d);
        ck_assert_int_eq(rt_data_bind(&d, &float_model, "label", tmp("lab.npy"), err, sizeof err),
                         -1);
        ck_assert_msg(strstr(err, bad[k].want) != NULL, "case %zu: got '%s'", k, err);
        rt_data_free(&d);
    }
    x[7] = 0.1; /* not a float */
    write_f64(tmp("x.npy"), 2, (long[]){6, 3}, x);
    rt_data_init(&d);
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "x.npy: element 7 (0.10000000000000001) does not "
                                      "convert exactly to float32"));
    x[7] = 1e300; /* out of float range: refused, not undefined */
    write_f64(tmp("x.npy"), 2, (long[]){6, 3}, x);
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "element 7"));
    x[7] = 0.25;
    write_f64(tmp("x.npy"), 2, (long[]){3, 3}, x);
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "x.npy: expected [*,3] float32 with at least 4 rows"));
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(test_bind_batches_cycle)
{
    make_tmpdir();
    char err[512];
    rt_data d;
    double x[10 * 3], y[10], y9[9];
    for (int i = 0; i < 30; i++)
        x[i] = i;
    for (int i = 0; i < 10; i++)
        y[i] = 100 + i;
    write_f64(tmp("x.npy"), 2, (long[]){10, 3}, x);
    write_f64(tmp("y.npy"), 2, (long[]){10, 1}, y);
    write_f64(tmp("y9.npy"), 2, (long[]){9, 1}, y9);
    rt_data_init(&d);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "x", tmp("x.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "y", tmp("y9.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_finish(&d, &linreg_model, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "y9.npy: has 9 rows but"));
    rt_data_free(&d);
    rt_data_init(&d);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "y", tmp("y.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "x", tmp("x.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_finish(&d, &linreg_model, err, sizeof err), 0);
    ck_assert_int_eq(d.nbatches, 2); /* rows 8 and 9 are dropped */
    static const int first_row[] = {0, 4, 0, 4, 0};
    for (int s = 1; s <= 5; s++) {
        rt_data_load(&d, &linreg_model, s);
        ck_assert_double_eq(lr_arena[X_OFF], first_row[s - 1] * 3);
        ck_assert_double_eq(lr_arena[X_OFF + 11], first_row[s - 1] * 3 + 11);
        ck_assert_double_eq(lr_arena[Y_OFF + 3], 100 + first_row[s - 1] + 3);
    }
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

/* rows rows for linreg: x row r is (3r, 3r+1, 3r+2) and y row r is 100 + r,
 * so a loaded row names itself; bound into d (initialized here). */
static void bind_numbered(rt_data *d, int rows)
{
    char err[512];
    double *x = malloc(sizeof *x * (size_t)rows * 3), *y = malloc(sizeof *y * (size_t)rows);
    for (int i = 0; i < rows * 3; i++)
        x[i] = i;
    for (int r = 0; r < rows; r++)
        y[r] = 100 + r;
    write_f64(tmp("x.npy"), 2, (long[]){rows, 3}, x);
    write_f64(tmp("y.npy"), 2, (long[]){rows, 1}, y);
    free(x), free(y);
    rt_data_init(d);
    ck_assert_int_eq(rt_data_bind(d, &linreg_model, "x", tmp("x.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_bind(d, &linreg_model, "y", tmp("y.npy"), err, sizeof err), 0);
    ck_assert_msg(rt_data_finish(d, &linreg_model, err, sizeof err) == 0, "%s", err);
}

/* The row in lr_arena's batch row b, after checking that x and y agree. */
static long loaded_row(int b)
{
    long r = (long)lr_arena[X_OFF + b * 3] / 3;
    ck_assert_double_eq(lr_arena[X_OFF + b * 3 + 2], 3 * r + 2);
    ck_assert_double_eq(lr_arena[Y_OFF + b], 100 + r);
    return r;
}

START_TEST(test_bind_shuffle)
{
    make_tmpdir();
    rt_data d, d2;
    bind_numbered(&d, 10); /* two minibatches of 4 an epoch, 2 rows sit out */
    d.shuffle = 1;
    d.seed = 7;
    int used[10] = {0};
    long epoch0[8];
    for (long e = 0; e < 5; e++) {
        long rows[8];
        int seen[10] = {0};
        for (int j = 0; j < 2; j++) {
            rt_data_load(&d, &linreg_model, 2 * e + j + 1);
            for (int b = 0; b < 4; b++) {
                long r = loaded_row(b);
                ck_assert(r >= 0 && r < 10);
                rows[4 * j + b] = r;
                seen[r]++;
                used[r]++;
            }
        }
        for (int r = 0; r < 10; r++)
            ck_assert_int_le(seen[r], 1); /* each training row at most once an epoch */
        /* The epoch's order is a permutation, and the batches are its head. */
        const long *order = rt_data_order(&d, e);
        int count[10] = {0};
        for (int i = 0; i < 10; i++)
            count[order[i]]++;
        for (int r = 0; r < 10; r++)
            ck_assert_int_eq(count[r], 1);
        ck_assert_mem_eq(rows, order, sizeof rows);
        if (e == 0)
            memcpy(epoch0, rows, sizeof rows);
        else if (e == 1)
            ck_assert(memcmp(epoch0, rows, sizeof rows) != 0);
    }
    for (int r = 0; r < 10; r++)
        ck_assert_int_gt(used[r], 0); /* over the epochs, every row */
    /* The order of epoch 3 hangs on (seed, 3) only: a fresh binding that
     * starts there (a resumed run) gets the same; another seed does not. */
    long o3[10];
    memcpy(o3, rt_data_order(&d, 3), sizeof o3);
    bind_numbered(&d2, 10);
    d2.shuffle = 1;
    d2.seed = 7;
    ck_assert_mem_eq(rt_data_order(&d2, 3), o3, sizeof o3);
    rt_data_load(&d2, &linreg_model, 8); /* epoch 3, second minibatch */
    for (int b = 0; b < 4; b++)
        ck_assert_int_eq(loaded_row(b), o3[4 + b]);
    rt_data_free(&d2);
    bind_numbered(&d2, 10);
    d2.shuffle = 1;
    d2.seed = 8;
    ck_assert(memcmp(rt_data_order(&d2, 3), o3, sizeof o3) != 0);
    rt_data_free(&d2);
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(test_bind_val_split)
{
    make_tmpdir();
    char err[512];
    rt_data d, val;
    bind_numbered(&d, 10);
    rt_data_init(&val);
    ck_assert_msg(rt_data_split(&d, &val, &linreg_model, 0.2, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.rows, 8);
    ck_assert_int_eq(d.nbatches, 2);
    ck_assert_int_eq(d.b[0].arr.shape[0], 8);
    ck_assert_int_eq(val.rows, 2);
    ck_assert_int_eq(val.nbatches, 0);
    ck_assert_int_eq(val.n, 2);
    /* The held-out rows are the file's last, 8 and 9, in file order. */
    memset(lr_arena, 0, sizeof lr_arena);
    rt_data_load_rows(&val, &linreg_model, 0, 2);
    ck_assert_int_eq(loaded_row(0), 8);
    ck_assert_int_eq(loaded_row(1), 9);
    ck_assert_double_eq(lr_arena[X_OFF + 6], 0); /* rows past n untouched */
    /* Shuffled for 50 epochs, training never sees them. */
    d.shuffle = 1;
    d.seed = 3;
    int used[10] = {0};
    for (long s = 1; s <= 100; s++) {
        rt_data_load(&d, &linreg_model, s);
        for (int b = 0; b < 4; b++)
            used[loaded_row(b)]++;
    }
    for (int r = 0; r < 8; r++)
        ck_assert_int_eq(used[r], 50);
    ck_assert_int_eq(used[8] + used[9], 0);
    rt_data_free(&d), rt_data_free(&val);

    /* 0.07 * 100 is 7.000000000000001 in double: still 7 rows. */
    bind_numbered(&d, 100);
    ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.07, err, sizeof err), 0);
    ck_assert_int_eq(val.rows, 7);
    ck_assert_int_eq(d.rows, 93);
    rt_data_free(&d), rt_data_free(&val);
    /* ceil: 0.25 of 10 holds out 3; 0.7 leaves fewer than a batch. */
    bind_numbered(&d, 10);
    ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.25, err, sizeof err), 0);
    ck_assert_int_eq(val.rows, 3);
    rt_data_free(&d), rt_data_free(&val);
    bind_numbered(&d, 10);
    ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.7, err, sizeof err), -1);
    ck_assert_str_eq(err, "--val-split 0.7: holding out 7 of 10 rows leaves 3 to train on, fewer "
                          "than the batch 4; use a smaller fraction");
    rt_data_free(&d), rt_data_free(&val);
    remove_tmpdir();
}
END_TEST

/* The digits file: 0.2 holds out its last 360 rows, 1438-1797. */
START_TEST(test_bind_val_split_digits)
{
    char err[512];
    rt_data d, val;
    rt_data_init(&d);
    rt_data_init(&val);
    ck_assert_msg(rt_data_bind(&d, &digits_model, "x", "data/digits.csv.gz", err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(
        rt_data_bind(&d, &digits_model, "labels", "data/digits.csv.gz", err, sizeof err) == 0, "%s",
        err);
    ck_assert_msg(rt_data_finish(&d, &digits_model, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.rows, 1797);
    float x1438[64], x1797[64];
    memcpy(x1438, (float *)d.b[0].arr.data + 1437 * 64, sizeof x1438);
    memcpy(x1797, (float *)d.b[0].arr.data + 1796 * 64, sizeof x1797);
    int32_t l1438 = ((int32_t *)d.b[1].arr.data)[1437], l1797 = ((int32_t *)d.b[1].arr.data)[1796];
    ck_assert_int_eq(rt_data_split(&d, &val, &digits_model, 0.2, err, sizeof err), 0);
    ck_assert_int_eq(d.rows, 1437);
    ck_assert_int_eq(d.nbatches, 22);
    ck_assert_int_eq(val.rows, 360);
    ck_assert_int_eq(val.nbatches, 5);
    ck_assert_mem_eq(val.b[0].arr.data, x1438, sizeof x1438);
    ck_assert_mem_eq((float *)val.b[0].arr.data + 359 * 64, x1797, sizeof x1797);
    ck_assert_int_eq(((int32_t *)val.b[1].arr.data)[0], l1438);
    ck_assert_int_eq(((int32_t *)val.b[1].arr.data)[359], l1797);
    rt_data_free(&d), rt_data_free(&val);
}
END_TEST

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
    {.name = "w", .dtype = RT_F32, .rank = 1, .shape = {1}, .size = 1, .offset = 0,
     .init = RT_INIT_NORMAL, .init_a = 0, .init_b = 1},
};
static const rt_tensor ftz_grads[] = {
    {.name = "d_w", .dtype = RT_F32, .rank = 1, .shape = {1}, .size = 1, .offset = 1},
};
static const rt_model ftz_model = {.name = "ftz", .batch = 1, .real = RT_F32, .arena = ftz_arena,
                                   .iarena = no_iarena, .arena_size = 4, .n_params = 1,
                                   .params = ftz_params, .grads = ftz_grads, .params_offset = 0,
                                   .grads_offset = 1, .n_param_elems = 1, .loss_offset = 2,
                                   .optimizer = RT_OPT_SGD, .hyper = {.lr = 0.1},
                                   .loss = ftz_loss, .loss_and_grad = ftz_loss,
                                   .train_step = ftz_step, .forward = NULL};

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
        {{"--steps", "0"}, "--steps: expected a positive integer, got '0'"},
        {{"--steps", "-3"}, "got '-3'"},
        {{"--steps"}, "--steps: missing value"},
        {{"--seed", "x1"}, "--seed: expected a non-negative integer"},
        {{"--lr", "fast"}, "--lr: expected a non-negative number, got 'fast'"},
        {{"--lr", "nan"}, "--lr"},
        {{"--threads", "1.5"}, "--threads"},
        {{"--bogus"}, "unknown flag '--bogus'"},
        {{"--data", "x.npy"}, "--data: expected NAME=FILE (.npy, .csv, IDX or .txt), got 'x.npy'"},
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

static void write_bytes(const char *path, const void *b, long n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(b, 1, (size_t)n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static uint64_t get_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
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
    ck_assert_int_eq(n, 16 + 108 + 6 * 8 + 8);
    ck_assert_mem_eq(b, "GRADCKPT", 8);
    ck_assert_mem_eq(b + 8, "\1\0\0\0", 4);
    ck_assert_mem_eq(b + 12, "\154\0\0\0", 4); /* 108 */
    ck_assert_uint_eq(get_u64(b + 16), rt_model_signature(&mom_model));
    ck_assert_mem_eq(b + 24, "\10\0\0\0", 4);
    ck_assert_uint_eq(get_u64(b + 28), 17);
    ck_assert_uint_eq(get_u64(b + 36), 0xdeadbeefcafef00du);
    ck_assert_uint_eq(get_u64(b + 44), 3);
    ck_assert_uint_eq(get_u64(b + 52), 3);
    ck_assert_str_eq((char *)b + 60, "mom");
    ck_assert_mem_eq(b + 124, saved + M_W, 3 * sizeof(double));
    ck_assert_mem_eq(b + 148, saved + M_BUF, 3 * sizeof(double));
    ck_assert_uint_eq(get_u64(b + n - 8), fnv1a(b, n - 8));
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
    ck_assert_int_eq(n, 16 + 108 + 6 * 4 + 8);
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
    b[8] = 2;
    write_bytes(bad, b, n);
    check_refused(&mom_model, bad, "written by a newer gradc (version 2)");
    b[8] = 1;
    unsigned char *longer = calloc((size_t)n + 8, 1);
    memcpy(longer, b, (size_t)n);
    write_bytes(bad, longer, n + 8);
    check_refused(&mom_model, bad, "corrupt: 188 bytes where a checkpoint of mom has 180");
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

/* The `step <n> ...` lines of out with n >= from, as one string (malloc'd). */
static char *step_lines(const char *out, long from)
{
    char *r = calloc(strlen(out) + 1, 1);
    for (const char *p = out; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p + 1) : strlen(p);
        long n;
        if (sscanf(p, "step %ld ", &n) == 1 && n >= from)
            strncat(r, p, len);
        p += len;
    }
    return r;
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

/* Seven validation rows with known argmaxes, three of them ties the first
 * maximum wins: rows 0, 1, 3 and 4 are right (a last-wins rule would get
 * 0, 1, 2, 3 and 6). With w = 1 the loss of rows 0-3 is 15 + 4 = 19. */
static const double val7_s[7 * CC] = {1, 0, 0, 0, 2,  1,  3,  3, 0, 0, 0,
                                      5, 2, 2, 2, -1, -3, -2, 0, 1, 1};
static const double val7_label[7] = {0, 1, 1, 2, 0, 2, 2};

/* The step and eval lines of out from step `from` on, in order (malloc'd). */
static char *result_lines(const char *out, long from)
{
    char *r = calloc(strlen(out) + 1, 1);
    for (const char *p = out; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p + 1) : strlen(p);
        long n;
        if ((sscanf(p, "step %ld ", &n) == 1 || sscanf(p, "eval step %ld ", &n) == 1) && n >= from)
            strncat(r, p, len);
        p += len;
    }
    return r;
}

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
    ck_assert_ptr_nonnull(strstr(r.err, "cls_train: 3 validation rows"));
    /* Fewer rows than the batch: accuracy only. Every label is 0, and so is
     * every argmax (the id in column 0 is the largest score): all right. */
    ck_assert_ptr_nonnull(strstr(r.out, "\neval step 2 accuracy 1\n"));
    ck_assert_ptr_nonnull(strstr(r.out, " ms\neval step 40 accuracy 1\n"));
    char *evals = result_lines(r.out, 1);
    int n = 0;
    for (const char *p = evals; (p = strstr(p, "eval step ")) != NULL; p++)
        n++;
    ck_assert_int_eq(n, 20); /* after every epoch of 2 steps */
    ck_assert_ptr_null(strstr(r.out, "eval step 3 "));
    free(evals);
    run_free(&r);
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
                            "eval step 2 loss 19 accuracy 0.571428571\n"
                            "eval step 4 loss 19 accuracy 0.571428571\n"
                            "step 6 loss 22\n"
                            "eval step 6 loss 19 accuracy 0.571428571\n");
    ck_assert_ptr_nonnull(strstr(r.out, " ms\neval step 6 "));
    ck_assert_ptr_nonnull(strstr(r.err, "7 validation rows (--val): loss over 1 full "
                                        "minibatches, accuracy over every row\n"));
    free(lines);
    run_free(&r);

    /* Three rows (4-6 above), fewer than the batch: no loss; 1 of 3. */
    cls_files("w", 3, val7_s + 4 * CC, val7_label + 4, ws, wl, sizeof ws);
    r = run_main(rt_train_main, &cls_model,
                 (const char *[]){"--data", ds, "--data", dl, "--val", ws, "--val", wl, "--lr", "0",
                                  "--epochs", "3", "--eval-every", "4", "--no-shuffle", NULL});
    ck_assert_msg(r.rc == 0, "%s", r.err);
    lines = result_lines(r.out, 2);
    ck_assert_str_eq(lines, "eval step 4 accuracy 0.333333333\n"
                            "step 6 loss 22\n"
                            "eval step 6 accuracy 0.333333333\n");
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

    /* Not a classifier: a loss, no accuracy; and too few rows to score. */
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
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "linreg_train: --val-split: 2 validation rows, fewer than "
                                        "the batch 4, and model linreg is no classifier"));
    ck_assert_str_eq(r.out, "");
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
    static const char *const want[2][6] = {{"2", "1", "0", "14", "19", "0.571428571"},
                                           {"4", "2", "0", "14", "19", "0.571428571"}};
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
         "--val and --val-split both give validation data; give one"},
        {{"--val-split", "0.2"}, "--val-split needs --data to split"},
        {{"--val", vs}, "--val needs --data to train on"},
        {{"--data", ds, "--data", dl, "--val-split", "1"},
         "--val-split: expected a fraction between 0 and 1, got '1'"},
        {{"--val-split", "0"}, "--val-split: expected a fraction between 0 and 1, got '0'"},
        {{"--val-split", "-0.5"}, "--val-split: expected a non-negative number"},
        {{"--data", ds, "--data", dl, "--eval-every", "3"},
         "--eval-every needs validation data: --val-split F or --val NAME=FILE"},
        {{"--label-column", "0"}, "--label-column: expected a column number from 1"},
        {{"--label-column", "last"}, "got 'last'"},
        {{"--data", ds, "--data", dl, "--epochs", "2", "--steps", "3"},
         "--epochs and --steps both set how long to train; give one"},
        {{"--steps", "3", "--epochs", "2"}, "--epochs and --steps both"},
        {{"--epochs", "2"}, "--epochs needs --data: an epoch is one pass over the data files"},
        {{"--val", "nope"}, "--val: expected NAME=FILE (.npy, .csv, IDX or .txt), got 'nope'"},
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
         * With w = 1, rows 0-3 lose 8 + 3 and rows 4-7 24 + 4: 19.5. */
        ck_assert_ptr_nonnull(strstr(r.out, "eval step 4 loss 19.5 accuracy 0.222222222\n"));
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

/* ---- gradcheck ---- */

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
    TCase *tc = tcase_create("gemm");
    tcase_add_loop_test(tc, test_gemm_kernels_match_blas, 1, 3);
    tcase_set_timeout(tc, 60); /* a minute under ASan */
    suite_add_tcase(s, tc);
    tc = tcase_create("rng");
    tcase_add_test(tc, test_fast_exp_tanh);
    tcase_add_test(tc, test_row_reductions);
    tcase_add_test(tc, test_rng_golden);
    tcase_add_test(tc, test_rng_determinism);
    tcase_add_test(tc, test_rng_normal_moments);
    tcase_add_test(tc, test_rng_uniform_range);
    tcase_add_test(tc, test_rng_streams_differ);
    suite_add_tcase(s, tc);
    tc = tcase_create("tensor");
    tcase_add_test(tc, test_get_set_float_build);
    tcase_add_test(tc, test_get_set_double_build);
    tcase_add_test(tc, test_init_params);
    tcase_add_test(tc, test_init_param_streams_independent);
    tcase_add_test(tc, test_init_normal_moments);
    tcase_add_test(tc, test_random_inputs);
    suite_add_tcase(s, tc);
    tc = tcase_create("npy");
    tcase_add_test(tc, test_npy_round_trip);
    tcase_add_test(tc, test_npy_write_leaves_no_temp);
    tcase_add_test(tc, test_npy_read_numpy_files);
    tcase_add_test(tc, test_npy_numpy_reads_ours);
    tcase_add_test(tc, test_npy_truncated);
    tcase_add_test(tc, test_npy_bad_headers);
    tcase_add_test(tc, test_npy_fuzzed_headers);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("bind");
    tcase_add_test(tc, test_bind_conversions);
    tcase_add_test(tc, test_bind_csv_and_idx);
    tcase_add_test(tc, test_bind_text);
    tcase_add_test(tc, test_bind_batches_cycle);
    tcase_add_test(tc, test_bind_shuffle);
    tcase_add_test(tc, test_bind_val_split);
    tcase_add_test(tc, test_bind_val_split_digits);
    suite_add_tcase(s, tc);
    tc = tcase_create("train");
    tcase_add_test(tc, test_train_random_data);
    tcase_add_test(tc, test_train_minutes);
    tcase_add_test(tc, test_train_print_every_and_lr);
    tcase_add_test(tc, test_train_float_flushes_subnormals);
    tcase_add_test(tc, test_train_bad_flags);
    tcase_add_test(tc, test_train_help);
    tcase_add_test(tc, test_train_diverges);
    tcase_add_test(tc, test_train_with_data);
    tcase_add_test(tc, test_train_exact_resume);
    tcase_add_test(tc, test_train_resume_seed);
    tcase_add_test(tc, test_train_nan_stop);
    tcase_add_test(tc, test_train_interrupt);
    tcase_add_test(tc, test_train_export);
    tcase_add_test(tc, test_train_checkpoint_flags);
    tcase_add_test(tc, test_train_held_out);
    tcase_add_test(tc, test_train_accuracy);
    tcase_add_test(tc, test_train_log);
    tcase_add_test(tc, test_train_epochs);
    tcase_add_test(tc, test_train_data_flags);
    tcase_add_test(tc, test_train_label_column);
    tcase_add_test(tc, test_train_progress);
    tcase_add_test(tc, test_train_exact_resume_shuffled);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_checkpoint_round_trip);
    tcase_add_test(tc, test_checkpoint_signature);
    tcase_add_test(tc, test_checkpoint_refusals);
    tcase_add_test(tc, test_checkpoint_save_errors);
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
