/*
 * runtime_models.h: what the runtime's suites (test_numerics.c, test_data.c,
 * test_runtime.c and test_checkpoint.c) share: the hand-written models more
 * than one of them drives, and the helpers that run a main in this process
 * and read back what it printed.
 *
 * Each model is a real rt_model descriptor over a static arena: linear
 * regression (loss = sum((x w - y)^2), batch 4, 3 features) with the right
 * gradient and with a deliberately wrong one, and a float build with an
 * int32 label input (memory access and data binding). Each suite is one
 * translation unit and uses only some of this: the helpers are static
 * inline, and a static const left unused in a header draws no warning.
 */
#ifndef RUNTIME_MODELS_H
#define RUNTIME_MODELS_H

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rt.h"

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

/* ---- helpers ---- */

static char tmpdir[64];

static inline void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gradc-rt-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static inline void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static inline const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static inline char *slurp(const char *path)
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
static inline Run run_main(main_fn fn, const rt_model *m, const char *const *args)
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

static inline void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

/* The value after `key` in the last line that starts with it. */
static inline double last_value(const char *text, const char *key)
{
    double v = NAN;
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0)
            v = strtod(p + n, NULL);
    return v;
}

static inline int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static inline int python(const char *code)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/python3 -c \"%s\"", tmpdir, code);
    return system(cmd);
}

static inline void write_f64(const char *path, int rank, const long *shape, const double *v)
{
    char err[512];
    ck_assert_msg(rt_npy_write(path, RT_F64, rank, shape, v, err, sizeof err) == 0, "%s", err);
}

static inline void write_bytes(const char *path, const void *b, long n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(b, 1, (size_t)n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The `step <n> ...` lines of out with n >= from, as one string (malloc'd). */
static inline char *step_lines(const char *out, long from)
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

/* The step and eval lines of out from step `from` on, in order (malloc'd). */
static inline char *result_lines(const char *out, long from)
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

#endif
