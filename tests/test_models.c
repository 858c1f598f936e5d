/*
 * test_models.c: the models suite. Every model in the table below is
 * linked twice, as float (NAME_model_f32) and as double (NAME_model_f64),
 * and each property loops over the table, so adding a model is one row:
 *
 *   gradcheck     rt_gradcheck of the double build is <= 1e-6 (docs/design.md),
 *                 with at least one element of every parameter checked.
 *   train_step    in double, train_step(lr) leaves p - lr * grad(p) to
 *                 1e-12 and returns the loss loss_and_grad gave at p.
 *   float_double  10 float steps and 10 double steps from the same seed
 *                 agree on every loss to 1e-4 relative (docs/design.md).
 *   forward       in double, forward(batch) is finite, and forward(rows)
 *                 gives the same first rows: rows do not mix.
 *   no_allocation float steps on 1 and on 2 threads allocate nothing (not
 *                 under ASan, which has its own malloc).
 *
 * And end-to-end tests against independent references: 200 steps of
 * seed_mlp in double against the lecture notes' NumPy loop in float64
 * (tests/notes_seed_mlp.py, run by /usr/bin/python3), every loss to 1e-9;
 * gpt2's loss and logits against llm.c's forward pass written out in NumPy
 * (tests/gpt2_reference.py), reading the parameters under llm.c's names
 * and layout, to 1e-9, and its init and optimizer against GPT-2's; and
 * gpt2 as a user gets it from an llm.c checkpoint (scripts/llmc_to_npy.py,
 * gradc build, --init, --export-grads) against llm.c's forward in PyTorch
 * float64 reading the checkpoint itself (tests/gpt2_torch.py): the loss
 * and every gradient to 1e-10, the float trainer's loss to 1e-5.
 * And losses that hold gradients (grad(): double backpropagation of an
 * MLP, a gradient penalty through a CNN, a MAML step through attention),
 * whose trainers' gradients are second derivatives, against the same
 * losses in PyTorch float64 with create_graph=True
 * (tests/second_order_torch.py): the loss and every gradient to 1e-10.
 * And batch norm's two modes and running averages, on
 * tests/batch_norm_model.lua, against the formulas written out here; and
 * causal attention weights (tests/attention_model.lua), which the compiler
 * rewrites (the scale into the product, the mask into the softmax), against
 * the formula.
 *
 * "Relative" means |a - b| <= tol * max(1, |b|), b the reference.
 * Measured margins go to stderr, one line each, so a drift towards a
 * tolerance shows before it fails.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rt.h"
#include "optim_reference.h"
#include "char_lstm.h"
#include "char_rnn.h"
#include "digits.h"
#include "digits_cnn.h"
#include "double_backprop.h"
#include "gpt.h"
#include "gpt2.h"
#include "iris.h"
#include "mlp3.h"
#include "newton_digits.h"
#include "norm_wx.h"
#include "seed_mlp.h"
#include "svm.h"
#include "batch_norm_model.h"
#include "attention_model.h"

typedef struct {
    const char *name;
    const rt_model *f32, *f64;
    const rt_model *infer; /* the inference-only twin, in double */
    bool small_check;      /* gradient-checked at a small size, by the cli suite:
                              at full size it takes minutes */
} Model;

static const Model models[] = {
    {"char_lstm", &char_lstm_model_f32, &char_lstm_model_f64, &char_lstm_infer_model_f64, true},
    {"char_rnn", &char_rnn_model_f32, &char_rnn_model_f64, &char_rnn_infer_model_f64, true},
    {"digits", &digits_model_f32, &digits_model_f64, &digits_infer_model_f64, false},
    {"digits_cnn", &digits_cnn_model_f32, &digits_cnn_model_f64, &digits_cnn_infer_model_f64,
     false},
    /* a loss holding a gradient: its backward pass is a second derivative */
    {"double_backprop", &double_backprop_model_f32, &double_backprop_model_f64,
     &double_backprop_infer_model_f64, false},
    {"gpt", &gpt_model_f32, &gpt_model_f64, &gpt_infer_model_f64, true},
    /* generated/gpt2 is its test config (models/gpt2.lua), small already */
    {"gpt2", &gpt2_model_f32, &gpt2_model_f64, &gpt2_infer_model_f64, false},
    {"iris", &iris_model_f32, &iris_model_f64, &iris_infer_model_f64, false},
    {"mlp3", &mlp3_model_f32, &mlp3_model_f64, &mlp3_infer_model_f64, false},
    /* newton_cg: its step solves with the Hessian (check_newton_step) */
    {"newton_digits", &newton_digits_model_f32, &newton_digits_model_f64,
     &newton_digits_infer_model_f64, false},
    {"norm_wx", &norm_wx_model_f32, &norm_wx_model_f64, &norm_wx_infer_model_f64, false},
    {"seed_mlp", &seed_mlp_model_f32, &seed_mlp_model_f64, &seed_mlp_infer_model_f64, false},
    {"svm", &svm_model_f32, &svm_model_f64, &svm_infer_model_f64, false},
};
enum { N_MODELS = sizeof models / sizeof models[0] };

enum { SEED = 1 };

/* Row i of the table, after checking that its descriptors are the builds
 * they claim to be. */
static const Model *model_row(int i)
{
    const Model *r = &models[i];
    ck_assert_msg(strcmp(r->f32->name, r->name) == 0 && strcmp(r->f64->name, r->name) == 0,
                  "%s: descriptors name %s (f32) and %s (f64)", r->name, r->f32->name,
                  r->f64->name);
    ck_assert_msg(r->f32->real == RT_F32 && r->f64->real == RT_F64,
                  "%s: real types %d (f32 build) and %d (f64 build)", r->name, (int)r->f32->real,
                  (int)r->f64->real);
    return r;
}

static int close_rel(double a, double b, double tol)
{
    return fabs(a - b) <= tol * fmax(1.0, fabs(b));
}

static double rel_diff(double a, double b) { return fabs(a - b) / fmax(1.0, fabs(b)); }

static double *arena64(const rt_model *m)
{
    ck_assert_int_eq(m->real, RT_F64);
    return (double *)m->arena;
}

static double *dup_doubles(const double *p, long n)
{
    double *q = malloc(sizeof *q * (size_t)n);
    ck_assert_ptr_nonnull(q);
    memcpy(q, p, sizeof *q * (size_t)n);
    return q;
}

/* ---- gradcheck ---- */

/* rt_gradcheck by docs/design.md's definition, <= 1e-6. A parameter whose
 * every checked element sat on a kink would count as error 0, so the
 * per-parameter lines are read back and each must have checked at least
 * one element. */
START_TEST(test_gradcheck)
{
    const Model *r = model_row(_i);
    if (r->small_check)
        return; /* test_cli.c checks it compiled small (-D), in one `gradc check` */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    rt_gradcheck_opts o = {.all = 0, .seed = SEED};
    double err = rt_gradcheck(r->f64, &o, out);
    ck_assert_int_eq(fclose(out), 0);
    fprintf(stderr, "models: %s: gradient check max relative error %.3g (tolerance 1e-6)\n",
            r->name, err);
    ck_assert_msg(err <= 1e-6, "%s: gradient check max relative error %.9g > 1e-6:\n%s", r->name,
                  err, text);

    /* Two lines define the figure; the parameters' lines follow. */
    const char *line = strstr(text, "||g - g_fd||");
    ck_assert_msg(line, "%s: the gradient check does not say what it measures:\n%s", r->name, text);
    line = strchr(line, '\n') + 1;
    for (int k = 0; k < r->f64->n_params; k++) {
        const char *name = r->f64->params[k].name;
        size_t n = strlen(name);
        ck_assert_msg(line && strncmp(line, name, n) == 0 && line[n] == ' ',
                      "%s: gradient check line %d is not parameter %s:\n%s", r->name, k + 1, name,
                      text);
        const char *c = strstr(line, " checked ");
        long checked = -1;
        ck_assert_msg(c && sscanf(c, " checked %ld", &checked) == 1,
                      "%s: no 'checked N' in the gradient check line of %s:\n%s", r->name, name,
                      text);
        ck_assert_msg(checked > 0, "%s: the gradient check checked no element of %s:\n%s", r->name,
                      name, text);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    free(text);
}
END_TEST

/* ---- train_step ---- */

/* The parameters after a step from p by factor times the gradients g
 * (of squared norm norm2), against reference_step. */
static void expect_step(const Model *r, const rt_hyper *hyper, const double *p, const double *g,
                        double factor, double norm2, const char *what)
{
    const rt_model *m = r->f64;
    const double *a = arena64(m);
    double scale = 1, norm = factor * sqrt(norm2);
    /* The step clips the gradient's global norm first, when asked. */
    if (hyper->clip > 0 && norm > hyper->clip)
        scale = hyper->clip / norm;
    long nonzero = 0;
    for (int k = 0; k < m->n_params; k++) {
        const rt_tensor *t = &m->params[k];
        long base = t->offset - m->params_offset;
        for (long i = 0; i < t->size; i++) {
            double want = p[base + i], s1 = 0, s2 = 0;
            reference_step(m->optimizer, hyper, scale, &want, factor * g[base + i], &s1, &s2);
            double got = a[t->offset + i];
            nonzero += g[base + i] != 0;
            if (!close_rel(got, want, 1e-12))
                ck_abort_msg("%s: %s[%ld] after %s (lr %g, weight decay %g, clip %g) is "
                             "%.17g, by hand %.17g (p %.17g, g %.17g)",
                             r->name, t->name, i, what, hyper->lr, hyper->weight_decay, hyper->clip,
                             got, want, p[base + i], factor * g[base + i]);
        }
    }
    ck_assert_msg(nonzero > 0, "%s: every gradient element is 0 at seed %d", r->name, SEED);
}

/* In double: train_step(lr) gives what the model's optimizer does by hand
 * (p - lr * grad(p) for SGD) elementwise to 1e-12, from zero optimizer
 * state, and its loss is loss_and_grad's at p, exactly (the same
 * computation). The lr differs from the model's default, so a step that
 * ignores it fails. Each model steps three ways: at its own settings,
 * with weight decay, and clipped to half its gradient's norm (plain SGD
 * folds updates into products only when nothing clips). */
static void check_step(const Model *r, double weight_decay, double clip_part)
{
    const rt_model *m = r->f64;
    double *a = arena64(m);
    rt_hyper hyper = m->hyper;
    hyper.lr = 0.0375; /* no model's default */
    hyper.step = 1;
    if (weight_decay > 0)
        hyper.weight_decay = weight_decay;
    ck_assert_msg(hyper.lr != m->hyper.lr, "%s: default lr is the test's lr %g", r->name, hyper.lr);

    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    /* train_step draws dropout masks for its step; its loss is
     * loss_and_grad's under those masks, so take them first, with a step
     * that moves nothing (lr 0), then start the optimizer from rest. */
    rt_hyper still = hyper;
    still.lr = 0;
    still.weight_decay = 0;
    m->train_step(&still);
    rt_init_params(m, SEED);
    memset(a + m->state_offset, 0, m->n_state * sizeof *a);
    double loss = m->loss_and_grad();
    double *p = dup_doubles(a + m->params_offset, m->n_param_elems);
    double *g = dup_doubles(a + m->grads_offset, m->n_param_elems);
    double norm = 0;
    for (long i = 0; i < m->n_param_elems; i++)
        norm += g[i] * g[i];
    if (clip_part > 0)
        hyper.clip = clip_part * sqrt(norm);
    double step_loss = m->train_step(&hyper);
    ck_assert_msg(step_loss == loss,
                  "%s: train_step returned loss %.17g, loss_and_grad at the same point %.17g",
                  r->name, step_loss, loss);

    expect_step(r, &hyper, p, g, 1, norm, "train_step");

    /* update() steps from whatever gradients are in place: twice them here,
     * under the same draws. */
    rt_init_params(m, SEED);
    memset(a + m->state_offset, 0, m->n_state * sizeof *a);
    if (m->draws)
        *m->draws = (uint64_t)hyper.step;
    m->loss_and_grad();
    for (long i = 0; i < m->n_param_elems; i++)
        a[m->grads_offset + i] = 2 * g[i];
    m->update(&hyper);
    expect_step(r, &hyper, p, g, 2, norm, "update of twice the gradients");

    /* ... and, told grad_scale 0.5, as from the gradients themselves: an
     * MPI trainer's sum of two processes' gradients. */
    rt_init_params(m, SEED);
    memset(a + m->state_offset, 0, m->n_state * sizeof *a);
    for (long i = 0; i < m->n_param_elems; i++)
        a[m->grads_offset + i] = 2 * g[i];
    rt_hyper halved = hyper;
    halved.grad_scale = 0.5;
    m->update(&halved);
    expect_step(r, &hyper, p, g, 1, norm, "update of twice the gradients at grad_scale 0.5");
    free(p);
    free(g);
}

/* Newton's step, solved whole against the model's: H by central
 * differences of the gradient, a column per parameter element, then
 * (H + (weight_decay + damping) I) s = -(g + weight_decay p) by Gaussian
 * elimination, p + lr s. The step's conjugate gradients are given
 * iterations enough to solve it too, so the two agree to what the
 * differences resolve (1e-6 of the step, norm-wise). */
static void check_newton_step(const Model *r, double weight_decay)
{
    const rt_model *m = r->f64;
    double *a = arena64(m);
    long n = m->n_param_elems;
    rt_hyper hyper = m->hyper;
    hyper.lr = 0.75;
    hyper.weight_decay = weight_decay;
    hyper.damping = 1e-3; /* H is singular where every b moves alike */
    hyper.cg_iters = 4 * (double)n;
    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    double *p = a + m->params_offset;
    for (long i = 0; i < n; i++) /* away from the zeros it starts at */
        p[i] = 0.3 * sin(1.0 + i);
    double *p0 = dup_doubles(p, n);
    m->loss_and_grad();
    double *g = dup_doubles(a + m->grads_offset, n);
    double *A = malloc(sizeof *A * (size_t)(n * (n + 1)));
    ck_assert_ptr_nonnull(A);
    const double h = 1e-5;
    for (long j = 0; j < n; j++) { /* column j, into row j: H is symmetric */
        p[j] = p0[j] + h;
        m->loss_and_grad();
        for (long i = 0; i < n; i++)
            A[j * (n + 1) + i] = a[m->grads_offset + i];
        p[j] = p0[j] - h;
        m->loss_and_grad();
        for (long i = 0; i < n; i++)
            A[j * (n + 1) + i] = (A[j * (n + 1) + i] - a[m->grads_offset + i]) / (2 * h);
        p[j] = p0[j];
        A[j * (n + 1) + j] += weight_decay + hyper.damping;
        A[j * (n + 1) + n] = -(g[j] + weight_decay * p0[j]);
    }
    for (long k = 0; k < n; k++) { /* elimination with partial pivoting */
        long best = k;
        for (long i = k + 1; i < n; i++)
            best = fabs(A[i * (n + 1) + k]) > fabs(A[best * (n + 1) + k]) ? i : best;
        for (long c = 0; c <= n; c++) {
            double t = A[k * (n + 1) + c];
            A[k * (n + 1) + c] = A[best * (n + 1) + c];
            A[best * (n + 1) + c] = t;
        }
        for (long i = k + 1; i < n; i++) {
            double f = A[i * (n + 1) + k] / A[k * (n + 1) + k];
            for (long c = k; c <= n; c++)
                A[i * (n + 1) + c] -= f * A[k * (n + 1) + c];
        }
    }
    double *s = malloc(sizeof *s * (size_t)n), diff = 0, size = 0;
    for (long k = n - 1; k >= 0; k--) {
        double t = A[k * (n + 1) + n];
        for (long c = k + 1; c < n; c++)
            t -= A[k * (n + 1) + c] * s[c];
        s[k] = t / A[k * (n + 1) + k];
    }
    memset(a + m->state_offset, 0, m->n_state * sizeof *a);
    m->loss_and_grad();
    m->update(&hyper);
    for (long i = 0; i < n; i++) {
        double want = p0[i] + hyper.lr * s[i];
        diff += (p[i] - want) * (p[i] - want);
        size += hyper.lr * s[i] * hyper.lr * s[i];
    }
    ck_assert_msg(size > 0 && sqrt(diff) <= 1e-6 * sqrt(size),
                  "%s: Newton's step (weight decay %g) differs from the dense solve by %.3g of "
                  "its size",
                  r->name, weight_decay, sqrt(diff / size));
    free(A), free(s), free(p0), free(g);
}

START_TEST(test_train_step_formula)
{
    if (model_row(_i)->f64->optimizer == RT_OPT_NEWTON_CG) {
        check_newton_step(model_row(_i), 0);
        check_newton_step(model_row(_i), 0.01);
        return;
    }
    check_step(model_row(_i), 0, 0);
    check_step(model_row(_i), 0.01, 0);
    check_step(model_row(_i), 0, 0.5);
}
END_TEST

/* ---- float against double ---- */

/* Both builds from the same seed (drawn in double, so the float build starts
 * at the double values rounded), then 10 steps each at the model's default
 * hyperparameters: every loss agrees to 1e-4 relative. */
START_TEST(test_float_double)
{
    const Model *r = model_row(_i);
    const rt_model *mf = r->f32, *md = r->f64;
    enum { STEPS = 10 };
    ck_assert_msg(mf->hyper.lr == md->hyper.lr, "%s: default lr %g (f32) and %g (f64)", r->name,
                  mf->hyper.lr, md->hyper.lr);
    ck_assert_msg(mf->n_param_elems == md->n_param_elems,
                  "%s: %ld parameter elements (f32) and %ld (f64)", r->name, mf->n_param_elems,
                  md->n_param_elems);

    rt_init_params(mf, SEED);
    rt_random_inputs(mf, SEED);
    rt_init_params(md, SEED);
    rt_random_inputs(md, SEED);
    for (int k = 0; k < md->n_params; k++)
        for (long i = 0; i < md->params[k].size; i++) {
            double vf = rt_get(mf, &mf->params[k], i), vd = rt_get(md, &md->params[k], i);
            if (vf != (double)(float)vd)
                ck_abort_msg("%s: initial %s[%ld] is %.9g (f32), %.17g (f64)", r->name,
                             md->params[k].name, i, vf, vd);
        }

    /* Zero optimizer state, and steps counted from 1 as the trainer counts
     * them (Adam's bias correction divides by 1 - beta^step). */
    memset((float *)mf->arena + mf->state_offset, 0, mf->n_state * sizeof(float));
    memset((double *)md->arena + md->state_offset, 0, md->n_state * sizeof(double));
    double lf[STEPS], ld[STEPS];
    rt_hyper hf = mf->hyper, hd = md->hyper;
    for (int s = 0; s < STEPS; s++) {
        hf.step = hd.step = s + 1;
        lf[s] = mf->train_step(&hf);
        ld[s] = md->train_step(&hd);
    }
    double worst = 0;
    int worst_step = 0;
    for (int s = 0; s < STEPS; s++)
        if (!(rel_diff(lf[s], ld[s]) <= worst)) {
            worst = rel_diff(lf[s], ld[s]);
            worst_step = s;
        }
    fprintf(stderr,
            "models: %s: float vs double loss, worst relative difference %.3g "
            "(step %d of %d; tolerance 1e-4)\n",
            r->name, worst, worst_step + 1, STEPS);
    for (int s = 0; s < STEPS; s++)
        ck_assert_msg(close_rel(lf[s], ld[s], 1e-4),
                      "%s: step %d loss %.9g (float) vs %.17g (double), relative "
                      "difference %.3g > 1e-4",
                      r->name, s + 1, lf[s], ld[s], rel_diff(lf[s], ld[s]));
}
END_TEST

/* ---- a step allocates nothing ---- */

#ifndef __SANITIZE_ADDRESS__ /* ASan brings its own malloc */
/* Every malloc, calloc and realloc of this process, OpenBLAS's and
 * OpenMP's included: the executable's definitions come first in the
 * dynamic linker's search, before the C library's. */
static atomic_long allocations;
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *malloc(size_t size)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_malloc(size);
}
void *calloc(size_t n, size_t size)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_realloc(p, size);
}

/* On 1 thread and on 2, three float training steps after two that warm
 * up (the threads start, OpenBLAS takes its buffers) allocate nothing:
 * everything lives in the arena. OpenBLAS 0.3.21's own threads allocate
 * in every product they share, so products are shared out by gemm.c. */
START_TEST(test_step_allocates_nothing)
{
    const Model *r = model_row(_i);
    const rt_model *m = r->f32;
    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    memset((float *)m->arena + m->state_offset, 0, m->n_state * sizeof(float));
    rt_hyper hyper = m->hyper;
    for (int threads = 1; threads <= 2; threads++) {
        rt_set_threads(threads);
        for (int s = 0; s < 2; s++) {
            hyper.step++;
            m->train_step(&hyper);
        }
        long before = atomic_load(&allocations);
        for (int s = 0; s < 3; s++) {
            hyper.step++;
            m->train_step(&hyper);
        }
        long made = atomic_load(&allocations) - before;
        ck_assert_msg(made == 0, "%s: 3 training steps on %d thread(s) allocated %ld times",
                      r->name, threads, made);
    }
    rt_set_threads(1);
}
END_TEST
#endif

/* ---- the same double results on any thread count ---- */

/* Where the values from 1 thread (`on1`, the block from `from`) and those
 * of another run (`on2`, as `how`) first differ, as "tensor[i]", or NULL. */
static const char *first_difference(const rt_model *m, const rt_tensor *t, int n, long from,
                                    const double *on1, const double *on2, const char *how, char *at,
                                    size_t len)
{
    for (int k = 0; k < n; k++)
        for (long i = 0; i < t[k].size; i++)
            if (on1[t[k].offset - from + i] != on2[t[k].offset - from + i]) {
                snprintf(at, len, "%s[%ld] %.17g on 1 thread, %.17g on %s", m->params[k].name, i,
                         on1[t[k].offset - from + i], on2[t[k].offset - from + i], how);
                return at;
            }
    return NULL;
}

/* In double, the parameters after two training steps on 2 threads are
 * those on 1, bit for bit, and so are the loss and every gradient there,
 * whatever is shared among the threads: every product and large loop, or
 * what the calibration finds pays. gemm.c shares a product out only in
 * ways that compute each element as one thread does, and picks its
 * kernels by the shape alone; a loop's sums stay on one thread. */
START_TEST(test_threads_same_double)
{
    const rt_model *m = model_row(_i)->f64;
    const char *name = model_row(_i)->name;
    static const char *const how[] = {"1 thread", "2 threads sharing everything",
                                      "2 threads sharing what pays"};
    double *arena = arena64(m), loss[3], *grads[3], *params[3];
    for (int t = 0; t < 3; t++) {
        rt_set_threads(t ? 2 : 1);
        rt_split_force(t == 1 ? 1 : -1);
        if (t == 2)
            rt_calibrate_split(true, true, NULL, name);
        rt_init_params(m, SEED);
        rt_random_inputs(m, SEED);
        memset(arena + m->state_offset, 0, m->n_state * sizeof(double));
        rt_hyper h = m->hyper;
        for (h.step = 1; h.step <= 2; h.step++)
            m->train_step(&h);
        params[t] = dup_doubles(arena + m->params_offset, m->n_param_elems);
        loss[t] = m->loss_and_grad(); /* under the last step's dropout masks */
        grads[t] = dup_doubles(arena + m->grads_offset, m->n_param_elems);
    }
    rt_split_force(-1);
    rt_set_threads(1);
    for (int t = 1; t < 3; t++) {
        ck_assert_msg(loss[0] == loss[t], "%s: loss %.17g on 1 thread, %.17g on %s", name, loss[0],
                      loss[t], how[t]);
        char at[256];
        const char *d = first_difference(m, m->grads, m->n_params, m->grads_offset, grads[0],
                                         grads[t], how[t], at, sizeof at);
        ck_assert_msg(!d, "%s: the gradient of %s", name, d);
        d = first_difference(m, m->params, m->n_params, m->params_offset, params[0], params[t],
                             how[t], at, sizeof at);
        ck_assert_msg(!d, "%s: after two steps, %s", name, d);
    }
    for (int t = 0; t < 3; t++)
        free(grads[t]), free(params[t]);
}
END_TEST

/* ---- forward ---- */

/* Every input, as doubles (which hold float, double and int32 exactly). */
static double **save_inputs(const rt_model *m)
{
    double **v = calloc((size_t)m->n_inputs + 1, sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int k = 0; k < m->n_inputs; k++) {
        const rt_tensor *t = &m->inputs[k];
        v[k] = malloc(sizeof **v * (size_t)t->size);
        ck_assert_ptr_nonnull(v[k]);
        for (long i = 0; i < t->size; i++)
            v[k][i] = rt_get(m, t, i);
    }
    return v;
}

static void restore_inputs(const rt_model *m, double *const *v)
{
    for (int k = 0; k < m->n_inputs; k++)
        for (long i = 0; i < m->inputs[k].size; i++)
            rt_set(m, &m->inputs[k], i, v[k][i]);
}

static void free_inputs(const rt_model *m, double **v)
{
    for (int k = 0; k < m->n_inputs; k++)
        free(v[k]);
    free(v);
}

/* In double: forward(batch) gives finite outputs, and forward(rows) for
 * rows = batch/2 gives the same first rows (to 1e-12) from the same inputs. */
START_TEST(test_forward_rows)
{
    const Model *r = model_row(_i);
    const rt_model *m = r->f64;
    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    double **in = save_inputs(m);

    m->forward(m->batch);
    double **full = calloc((size_t)m->n_outputs + 1, sizeof *full);
    ck_assert_ptr_nonnull(full);
    for (int k = 0; k < m->n_outputs; k++) {
        const rt_tensor *t = &m->outputs[k];
        ck_assert_msg(t->rank >= 1 && t->shape[0] == m->batch,
                      "%s: output %s has rank %d and first dimension %d, not the batch %d", r->name,
                      t->name, t->rank, t->rank >= 1 ? t->shape[0] : 0, m->batch);
        full[k] = malloc(sizeof **full * (size_t)t->size);
        ck_assert_ptr_nonnull(full[k]);
        for (long i = 0; i < t->size; i++) {
            full[k][i] = rt_get(m, t, i);
            if (!isfinite(full[k][i]))
                ck_abort_msg("%s: forward(%d): output %s[%ld] is %g", r->name, m->batch, t->name, i,
                             full[k][i]);
        }
    }

    restore_inputs(m, in);
    int rows = m->batch / 2 > 0 ? m->batch / 2 : 1;
    m->forward(rows);
    for (int k = 0; k < m->n_outputs; k++) {
        const rt_tensor *t = &m->outputs[k];
        long per_row = t->size / t->shape[0];
        for (long i = 0; i < rows * per_row; i++) {
            double got = rt_get(m, t, i);
            if (!close_rel(got, full[k][i], 1e-12))
                ck_abort_msg("%s: output %s[%ld] (row %ld) is %.17g after forward(%d), "
                             "%.17g after forward(%d)",
                             r->name, t->name, i, i / per_row, got, rows, full[k][i], m->batch);
        }
        free(full[k]);
    }
    free(full);
    restore_inputs(m, in);
    free_inputs(m, in);
}
END_TEST

/* ---- the lecture notes' NumPy loop ---- */

enum { NOTES_STEPS = 200 };
#define NOTES_SCRIPT "notes_seed_mlp.py"
#define PYTHON "/usr/bin/python3"

static const rt_tensor *find_tensor(const rt_tensor *ts, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (strcmp(ts[k].name, name) == 0)
            return &ts[k];
    return NULL;
}

/* A script sits next to this file: found through __FILE__ (relative to
 * where the suite was compiled, the repository root), else under tests/
 * of the working directory. */
static int find_script(const char *name, char *path, size_t len)
{
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 0;
    snprintf(path, len, "%.*s%s%s", dir, __FILE__, slash ? "/" : "", name);
    if (access(path, R_OK) == 0)
        return 0;
    snprintf(path, len, "tests/%s", name);
    return access(path, R_OK);
}

/* Runs cmd through the shell; its exit status (-1 unless it exited) and,
 * in out, the start of what it printed on stdout. */
static int run(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(out, len, "popen: %s", strerror(errno));
        return -1;
    }
    size_t n = 0;
    int c;
    while ((c = fgetc(p)) != EOF)
        if (n + 1 < len)
            out[n++] = (char)c;
    out[n] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void path_in(char *buf, size_t len, const char *dir, const char *file)
{
    snprintf(buf, len, "%s/%s", dir, file);
}

/* seed_mlp in double, seed 1, against tests/notes_seed_mlp.py from the same
 * x, y, w1, w2: the loss before each of 200 steps at lr 1e-4 agrees to 1e-9
 * relative. The temporary folder is removed before anything is asserted. */
START_TEST(test_notes_seed_mlp)
{
    const rt_model *m = &seed_mlp_model_f64;
    double *a = arena64(m);
    char script[600], fail[4096] = "", err[512];
    ck_assert_msg(find_script(NOTES_SCRIPT, script, sizeof script) == 0,
                  "cannot find " NOTES_SCRIPT " (looked next to " __FILE__ " and in tests/ of "
                  "the working directory); run build/test_models from the repository root");
    ck_assert_msg(access(PYTHON, X_OK) == 0,
                  PYTHON " is missing (the notes' reference "
                         "needs python3 with numpy, Debian python3-numpy)");

    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    const char *names[] = {"x", "y", "w1", "w2"};
    const rt_tensor *ts[4];
    for (int k = 0; k < 4; k++) {
        ts[k] = k < 2 ? find_tensor(m->inputs, m->n_inputs, names[k])
                      : find_tensor(m->params, m->n_params, names[k]);
        ck_assert_msg(ts[k] != NULL, "seed_mlp has no %s %s", k < 2 ? "input" : "parameter",
                      names[k]);
        ck_assert_int_eq(ts[k]->dtype, RT_F64);
    }

    char dir[] = "/tmp/gradc-notes-XXXXXX", path[600], cmd[800];
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    for (int k = 0; k < 4 && !fail[0]; k++) {
        long shape[RT_MAX_RANK];
        for (int d = 0; d < ts[k]->rank; d++)
            shape[d] = ts[k]->shape[d];
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[k]);
        if (rt_npy_write(path, RT_F64, ts[k]->rank, shape, a + ts[k]->offset, err, sizeof err) != 0)
            snprintf(fail, sizeof fail, "writing %s: %s", names[k], err);
    }

    rt_array ref = {0};
    if (!fail[0]) {
        char out[1500];
        snprintf(cmd, sizeof cmd, PYTHON " '%s' '%s' 2>&1", script, dir);
        int rc = run(cmd, out, sizeof out);
        path_in(path, sizeof path, dir, "losses.npy");
        if (rc != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d:\n%s", cmd, rc, out);
        else if (rt_npy_read(path, &ref, err, sizeof err) != 0)
            snprintf(fail, sizeof fail, "reading the notes' losses: %s", err);
    }

    const char *files[] = {"x.npy", "y.npy", "w1.npy", "w2.npy", "losses.npy"};
    for (int k = 0; k < 5; k++) {
        path_in(path, sizeof path, dir, files[k]);
        unlink(path);
    }
    ck_assert_msg(rmdir(dir) == 0, "cannot remove %s: %s", dir, strerror(errno));
    ck_assert_msg(!fail[0], "%s", fail);
    ck_assert_msg(ref.dtype == RT_F64 && ref.rank == 1 && ref.size == NOTES_STEPS,
                  "the notes' losses.npy has dtype %d, rank %d, %ld values; want float64 [%d]",
                  (int)ref.dtype, ref.rank, ref.size, NOTES_STEPS);

    const rt_hyper hyper = {.lr = 1e-4};
    const double *want = ref.data;
    double got[NOTES_STEPS], worst = 0;
    int worst_step = 0;
    for (int s = 0; s < NOTES_STEPS; s++) {
        got[s] = m->train_step(&hyper);
        if (!(rel_diff(got[s], want[s]) <= worst)) {
            worst = rel_diff(got[s], want[s]);
            worst_step = s;
        }
    }
    fprintf(stderr,
            "models: seed_mlp: against the notes' NumPy loop, worst relative loss "
            "difference %.3g (step %d of %d; tolerance 1e-9); loss %.9g -> %.9g\n",
            worst, worst_step + 1, NOTES_STEPS, want[0], want[NOTES_STEPS - 1]);
    for (int s = 0; s < NOTES_STEPS; s++)
        ck_assert_msg(close_rel(got[s], want[s], 1e-9),
                      "seed_mlp: step %d loss %.17g (C, double) vs %.17g (the notes' NumPy), "
                      "relative difference %.3g > 1e-9",
                      s + 1, got[s], want[s], rel_diff(got[s], want[s]));
    rt_array_free(&ref);
}
END_TEST

/* ---- gpt2 against llm.c ---- */

#define GPT2_SCRIPT "gpt2_reference.py"
enum { GPT2_HEADS = 4 }; /* models/gpt2.lua's test config: the parameters do not show it */

/* tensor t of model m (double) to DIR/NAME.npy; 0, or -1 with err set */
static int write_tensor(const rt_model *m, const rt_tensor *t, const char *dir, char *err,
                        size_t len)
{
    char path[700];
    long shape[RT_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        shape[d] = t->shape[d];
    snprintf(path, sizeof path, "%s/%s.npy", dir, t->name);
    const void *data = t->dtype == RT_I32 ? (const void *)(m->iarena + t->offset)
                                          : (const void *)(arena64(m) + t->offset);
    return rt_npy_write(path, t->dtype, t->rank, shape, data, err, len);
}

/* GPT-2's init: every matrix and both embeddings N(0, 0.02), the residual
 * projections N(0, 0.02 / sqrt(2 layers)), biases 0 and layer norms' weights
 * 1; and llm.c's train_gpt2.c optimizer: AdamW, lr 1e-4, betas 0.9 and
 * 0.999, eps 1e-8, no weight decay, no clipping. */
START_TEST(test_gpt2_init_and_optimizer)
{
    const rt_model *m = &gpt2_model_f64;
    int layers = 0;
    for (int k = 0; k < m->n_params; k++)
        layers += strstr(m->params[k].name, "_ln1_w") != NULL;
    ck_assert_int_ge(layers, 2);
    ck_assert_int_eq(m->n_params, 4 + 12 * layers);
    for (int k = 0; k < m->n_params; k++) {
        const rt_tensor *t = &m->params[k];
        size_t n = strlen(t->name);
        bool bias = n > 2 && !strcmp(t->name + n - 2, "_b");
        bool ln_w = strstr(t->name, "ln") && !bias;
        double std = strstr(t->name, "proj_w") ? 0.02 / sqrt(2.0 * layers) : 0.02;
        if (bias || ln_w) {
            ck_assert_msg(t->init == RT_INIT_CONST && t->init_a == (ln_w ? 1 : 0),
                          "%s: init %d (%g), want the constant %d", t->name, (int)t->init,
                          t->init_a, ln_w ? 1 : 0);
        } else {
            ck_assert_msg(t->init == RT_INIT_NORMAL && t->init_a == 0 &&
                              fabs(t->init_b - std) <= 1e-15,
                          "%s: init %d (%g, %g), want N(0, %g)", t->name, (int)t->init, t->init_a,
                          t->init_b, std);
        }
    }
    ck_assert_int_eq(m->optimizer, RT_OPT_ADAMW);
    ck_assert_double_eq(m->hyper.lr, 1e-4);
    ck_assert_double_eq(m->hyper.beta1, 0.9);
    ck_assert_double_eq(m->hyper.beta2, 0.999);
    ck_assert_double_eq(m->hyper.eps, 1e-8);
    ck_assert_double_eq(m->hyper.weight_decay, 0);
    ck_assert_double_eq(m->hyper.clip, 0);
}
END_TEST

/* gpt2 in double, seed 1, against tests/gpt2_reference.py: llm.c's
 * forward pass, function by function, in NumPy, from the same parameters
 * and inputs, each parameter one .npy under the name the checkpoint
 * converter writes. The loss and every logit (the padded columns too)
 * agree to 1e-9 relative. The folder is removed before anything is
 * asserted. */
START_TEST(test_gpt2_reference)
{
    const rt_model *m = &gpt2_model_f64;
    char script[600], fail[4096] = "", err[512], path[700], cmd[1400];
    ck_assert_msg(find_script(GPT2_SCRIPT, script, sizeof script) == 0,
                  "cannot find " GPT2_SCRIPT " (looked next to " __FILE__ " and in tests/ of "
                  "the working directory); run build/test_models from the repository root");
    ck_assert_msg(access(PYTHON, X_OK) == 0,
                  PYTHON " is missing (the reference needs python3 with numpy, Debian "
                         "python3-numpy)");
    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    const rt_tensor *y = find_tensor(m->inputs, m->n_inputs, "y");
    const rt_tensor *logits = find_tensor(m->outputs, m->n_outputs, "logits");
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(logits);
    ck_assert_int_eq(logits->rank, 3);
    ck_assert_int_gt(logits->shape[2], y->classes); /* the padded columns are there */

    char dir[] = "/tmp/gradc-gpt2-XXXXXX";
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    for (int k = 0; k < m->n_inputs && !fail[0]; k++)
        if (write_tensor(m, &m->inputs[k], dir, err, sizeof err))
            snprintf(fail, sizeof fail, "writing %s: %s", m->inputs[k].name, err);
    for (int k = 0; k < m->n_params && !fail[0]; k++)
        if (write_tensor(m, &m->params[k], dir, err, sizeof err))
            snprintf(fail, sizeof fail, "writing %s: %s", m->params[k].name, err);

    rt_array ref_loss = {0}, ref_logits = {0};
    if (!fail[0]) {
        char out[1500];
        snprintf(cmd, sizeof cmd, PYTHON " '%s' '%s' %d %d 2>&1", script, dir, y->classes,
                 GPT2_HEADS);
        int rc = run(cmd, out, sizeof out);
        if (rc != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d:\n%s", cmd, rc, out);
        path_in(path, sizeof path, dir, "loss.npy");
        if (!fail[0] && rt_npy_read(path, &ref_loss, err, sizeof err) != 0)
            snprintf(fail, sizeof fail, "reading the reference's loss: %s", err);
        path_in(path, sizeof path, dir, "logits.npy");
        if (!fail[0] && rt_npy_read(path, &ref_logits, err, sizeof err) != 0)
            snprintf(fail, sizeof fail, "reading the reference's logits: %s", err);
    }
    for (int k = 0; k < m->n_inputs + m->n_params; k++) {
        const rt_tensor *t = k < m->n_inputs ? &m->inputs[k] : &m->params[k - m->n_inputs];
        snprintf(path, sizeof path, "%s/%s.npy", dir, t->name);
        unlink(path);
    }
    path_in(path, sizeof path, dir, "loss.npy");
    unlink(path);
    path_in(path, sizeof path, dir, "logits.npy");
    unlink(path);
    ck_assert_msg(rmdir(dir) == 0, "cannot remove %s: %s", dir, strerror(errno));
    ck_assert_msg(!fail[0], "%s", fail);
    ck_assert_msg(ref_loss.dtype == RT_F64 && ref_loss.size == 1, "loss.npy: dtype %d, %ld values",
                  (int)ref_loss.dtype, ref_loss.size);
    ck_assert_msg(ref_logits.dtype == RT_F64 && ref_logits.size == logits->size,
                  "logits.npy: dtype %d, %ld values; want float64, %ld", (int)ref_logits.dtype,
                  ref_logits.size, logits->size);

    double loss = m->loss(), want = *(const double *)ref_loss.data;
    m->forward(m->batch);
    const double *got = arena64(m) + logits->offset, *ref = ref_logits.data;
    double worst = 0;
    long worst_at = 0;
    for (long e = 0; e < logits->size; e++)
        if (!(rel_diff(got[e], ref[e]) <= worst)) {
            worst = rel_diff(got[e], ref[e]);
            worst_at = e;
        }
    fprintf(stderr,
            "models: gpt2: against llm.c's forward in NumPy, loss %.12g vs %.12g (relative "
            "difference %.3g), worst logit relative difference %.3g (tolerance 1e-9)\n",
            loss, want, rel_diff(loss, want), worst);
    ck_assert_msg(close_rel(loss, want, 1e-9), "gpt2: loss %.17g (C, double) vs %.17g (NumPy)",
                  loss, want);
    ck_assert_msg(worst <= 1e-9, "gpt2: logit %ld is %.17g (C, double) vs %.17g (llm.c's, NumPy)",
                  worst_at, got[worst_at], ref[worst_at]);
    rt_array_free(&ref_loss);
    rt_array_free(&ref_logits);
}
END_TEST

/* ---- gpt2 against PyTorch, from an llm.c checkpoint ---- */

#define TORCH_SCRIPT "gpt2_torch.py"
/* Small enough to build and run in seconds, with what GPT-2 small has:
 * layers, several heads, a vocabulary llm.c pads (500 to 512 columns, the
 * padded ones outside the loss) and wpe rows past the context. */
enum { PT_L = 2, PT_C = 64, PT_NH = 4, PT_T = 16, PT_MAXT = 32, PT_V = 500, PT_B = 4 };

/* Copies into buf what follows `after` in out, up to `end` (not included);
 * 0, or -1 if out does not have it. */
static int text_after(const char *out, const char *after, char end, char *buf, size_t len)
{
    const char *at = strstr(out, after);
    if (!at)
        return -1;
    at += strlen(after);
    size_t n = strcspn(at, (char[]){end, '\n', 0});
    if (at[n] != end || n == 0 || n >= len)
        return -1;
    memcpy(buf, at, n);
    buf[n] = 0;
    return 0;
}

/* A PyTorch reference's line `N gradients: worst relative E`. */
static void reference_figures(const char *out, int *compared, double *worst)
{
    const char *at = strstr(out, " gradients: worst relative ");
    while (at && at > out && at[-1] != '\n')
        at--;
    ck_assert_msg(at && sscanf(at, "%d gradients: worst relative %lf", compared, worst) == 2,
                  "the reference printed no figures:\n%s", out);
}

/* The whole path a user takes from llm.c, against a reference that shares
 * none of it: tests/gpt2_torch.py writes an llm.c checkpoint of random
 * weights (biases and layer norms too) and random tokens;
 * scripts/llmc_to_npy.py converts it and says the -D flags; gradc builds
 * models/gpt2.lua with them, in double and in float; each trainer, from
 * --init and --steps 0, gives the loss of the first batch and (double)
 * every gradient; and the script, reading the checkpoint itself and
 * differentiating llm.c's forward in PyTorch float64, holds the double
 * loss and every gradient to 1e-10 and the float loss to 1e-5. The folder
 * is removed before anything is asserted. */
START_TEST(test_gpt2_torch)
{
    char script[600], model[600], conv[600], flags[400] = "", loss[2][64] = {"", ""};
    char fail[16384] = "", out[8192] = "", cmd[4096];
    ck_assert_msg(find_script(TORCH_SCRIPT, script, sizeof script) == 0 &&
                      find_script("../models/gpt2.lua", model, sizeof model) == 0 &&
                      find_script("../scripts/llmc_to_npy.py", conv, sizeof conv) == 0,
                  "cannot find " TORCH_SCRIPT ", models/gpt2.lua or scripts/llmc_to_npy.py "
                  "(looked beside " __FILE__ " and in tests/ of the working directory)");
    ck_assert_msg(access(PYTHON, X_OK) == 0,
                  PYTHON " is missing (the reference needs python3 with numpy and torch, "
                         "Debian python3-numpy and python3-torch)");
    char dir[] = "/tmp/gradc-gpt2-torch-XXXXXX";
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));

    snprintf(cmd, sizeof cmd, PYTHON " '%s' make '%s' %d %d %d %d %d %d %d 2>&1", script, dir, PT_L,
             PT_C, PT_NH, PT_T, PT_MAXT, PT_V, PT_B);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0)
        snprintf(fail, sizeof fail, "`%s` exited with %d:\n%s", cmd, rc, out);
    if (!fail[0]) {
        snprintf(cmd, sizeof cmd, PYTHON " '%s' '%s/gpt2.bin' '%s/w' 2>&1", conv, dir, dir);
        rc = run(cmd, out, sizeof out);
        if (rc != 0 ||
            text_after(out, "compile models/gpt2.lua with: ", '\n', flags, sizeof flags) != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d, and no -D flags:\n%s", cmd, rc, out);
    }
    /* The two builds side by side: each is three programs' cc, the most
     * of this test's time. */
    if (!fail[0]) {
        snprintf(cmd, sizeof cmd,
                 "{ " GRADC_BIN " build '%s' %s -D context=%d -D batch=%d --double -o '%s/f64' "
                 ">'%s/f64.log' 2>&1 & " GRADC_BIN " build '%s' %s -D context=%d -D batch=%d "
                 "-o '%s/f32' >'%s/f32.log' 2>&1; a=$?; wait $! && [ $a = 0 ]; } || "
                 "{ cat '%s/f64.log' '%s/f32.log'; exit 1; }",
                 model, flags, PT_T, PT_B, dir, dir, model, flags, PT_T, PT_B, dir, dir, dir, dir);
        rc = run(cmd, out, sizeof out);
        if (rc != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d:\n%s", cmd, rc, out);
    }
    static const char *const builds[2] = {"f64", "f32"};
    for (int k = 0; k < 2 && !fail[0]; k++) {
        snprintf(cmd, sizeof cmd,
                 "'%s/%s/gpt2_train' --init '%s/w' --data x='%s/x.npy' --data y='%s/y.npy' "
                 "--steps 0 --no-shuffle --export-grads '%s/g%s' 2>&1",
                 dir, builds[k], dir, dir, dir, dir, builds[k]);
        rc = run(cmd, out, sizeof out);
        if (rc != 0 || text_after(out, "(the loss ", ')', loss[k], sizeof loss[k]) != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d, and no loss:\n%s", cmd, rc, out);
    }
    if (!fail[0]) {
        snprintf(cmd, sizeof cmd,
                 PYTHON " '%s' check '%s/gpt2.bin' '%s/x.npy' '%s/y.npy' '%s/gf64' %s %s 2>&1",
                 script, dir, dir, dir, dir, loss[0], loss[1]);
        rc = run(cmd, out, sizeof out);
        if (rc != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d:\n%s", cmd, rc, out);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_msg(system(cmd) == 0, "cannot remove %s", dir);
    ck_assert_msg(!fail[0], "%s", fail);

    /* The script's verdict is its exit status; its figures are checked
     * here too, so that a reference that compared nothing cannot pass. */
    int compared = 0;
    double worst = NAN;
    reference_figures(out, &compared, &worst);
    ck_assert_msg(compared == 4 + 12 * PT_L, "compared %d gradients, want %d:\n%s", compared,
                  4 + 12 * PT_L, out);
    ck_assert_msg(worst <= 1e-10, "worst relative gradient error %g:\n%s", worst, out);
    for (char *line = out; *line;) {
        char *end = strchr(line, '\n');
        fprintf(stderr, "models: gpt2 against PyTorch from an llm.c file: %.*s\n",
                end ? (int)(end - line) : (int)strlen(line), line);
        line = end ? end + 1 : line + strlen(line);
    }
}
END_TEST

/* ---- second derivatives against PyTorch ---- */

/* Losses that hold gradients (grad() in the model), a model file and its
 * flags: an MLP, a CNN and an attention block. */
static const struct {
    const char *name, *file, *flags;
} second_order[] = {
    {"double_backprop", "../models/double_backprop.lua", "--test-config"},
    {"second_order_cnn", "second_order_cnn.lua", ""},
    {"second_order_attention", "second_order_attention.lua", ""},
};

/* The start of the line of out that holds s, or NULL. */
static const char *line_with(const char *out, const char *s)
{
    const char *at = strstr(out, s);
    while (at && at > out && at[-1] != '\n')
        at--;
    return at;
}

/* tests/second_order_torch.py writes random weights, a direction v and
 * inputs; the model's double trainer (built with --hvp and --jvp), from
 * --init and --steps 0, gives the loss, every gradient (a second
 * derivative, through the loss's own gradient), H v (a third) and J v of
 * the outputs; the script, the same model written in PyTorch float64 with
 * create_graph=True, torch.autograd.functional.hvp and jvp, holds the
 * gradients to 1e-10 and H v and J v to 1e-12. */
START_TEST(test_second_order_torch)
{
    const char *name = second_order[_i].name;
    char script[600], model[600], data[1024] = "", loss[64] = "";
    char fail[16384] = "", out[8192] = "", cmd[4096];
    ck_assert_msg(find_script("second_order_torch.py", script, sizeof script) == 0 &&
                      find_script(second_order[_i].file, model, sizeof model) == 0,
                  "cannot find tests/second_order_torch.py or %s", second_order[_i].file);
    ck_assert_msg(access(PYTHON, X_OK) == 0, PYTHON " is missing (the reference needs python3 "
                                                    "with numpy and torch)");
    char dir[] = "/tmp/gradc-second-order-XXXXXX";
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(cmd, sizeof cmd, PYTHON " '%s' make %s '%s' 2>&1", script, name, dir);
    int rc = run(cmd, out, sizeof out);
    if (rc != 0 || text_after(out, "train with: ", '\n', data, sizeof data) != 0)
        snprintf(fail, sizeof fail, "`%s` exited with %d, and no --data flags:\n%s", cmd, rc, out);
    if (!fail[0]) {
        snprintf(cmd, sizeof cmd,
                 GRADC_BIN " build '%s' %s --double --hvp --jvp -o '%s/b' >/dev/null 2>&1 && "
                           "'%s/b/%s_train' --init '%s/w' %s --steps 0 --no-shuffle --export-grads "
                           "'%s/g' --direction '%s/v' --export-hvp '%s/hv' --export-jvp '%s/jv' "
                           "2>&1",
                 model, second_order[_i].flags, dir, dir, name, dir, data, dir, dir, dir, dir);
        rc = run(cmd, out, sizeof out);
        if (rc != 0 || text_after(out, "(the loss ", ')', loss, sizeof loss) != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d, and no loss:\n%s", cmd, rc, out);
    }
    if (!fail[0]) {
        snprintf(cmd, sizeof cmd, PYTHON " '%s' check %s '%s' %s 2>&1", script, name, dir, loss);
        rc = run(cmd, out, sizeof out);
        if (rc != 0)
            snprintf(fail, sizeof fail, "`%s` exited with %d:\n%s", cmd, rc, out);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_msg(system(cmd) == 0, "cannot remove %s", dir);
    ck_assert_msg(!fail[0], "%s", fail);
    /* Its figures too, so that a reference that compared nothing fails. */
    int compared = 0;
    double worst = NAN;
    reference_figures(out, &compared, &worst);
    ck_assert_msg(compared >= 4 && worst <= 1e-10, "%s:\n%s", name, out);
    int products = 0, jv_products = 0;
    double hv_worst = NAN, jv_worst = NAN;
    const char *hv = line_with(out, " products H v: worst relative ");
    const char *jv = line_with(out, " products J v: worst relative ");
    ck_assert_msg(
        hv && sscanf(hv, "%d products H v: worst relative %lf", &products, &hv_worst) == 2 && jv &&
            sscanf(jv, "%d products J v: worst relative %lf", &jv_products, &jv_worst) == 2,
        "the reference printed no products:\n%s", out);
    ck_assert_msg(products == compared && hv_worst <= 1e-12 && jv_products >= 1 &&
                      jv_worst <= 1e-12,
                  "%s:\n%s", name, out);
    fprintf(stderr,
            "models: %s against PyTorch's second derivatives: %d gradients, worst %.3g; H v "
            "(third derivatives), worst %.3g; J v, worst %.3g\n",
            name, compared, worst, hv_worst, jv_worst);
}
END_TEST

/* models/newton_digits.lua at full size (every digit one batch), trained
 * in double by newton_cg, against Newton's method in NumPy float64 with
 * the Hessian written out whole (tests/newton_reference.py): the loss
 * falls at every step (to rounding), is within 1e-9 of the minimum by step
 * 7, and at it, to 1e-12, after step 8. */
START_TEST(test_newton_converges)
{
    char script[600], model[600], cmd[4096], out[8192], ref[8192];
    ck_assert_msg(find_script("newton_reference.py", script, sizeof script) == 0 &&
                      find_script("../models/newton_digits.lua", model, sizeof model) == 0,
                  "cannot find tests/newton_reference.py or models/newton_digits.lua");
    char dir[] = "/tmp/gradc-newton-XXXXXX";
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(cmd, sizeof cmd,
             GRADC_BIN " build '%s' --double -o '%s' >/dev/null 2>&1 && '%s/newton_digits_train' "
                       "--data x=data/digits.csv.gz --data labels=data/digits.csv.gz --steps 8 "
                       "--print-every 1 --no-shuffle --digits 17 2>&1",
             model, dir, dir);
    int rc = run(cmd, out, sizeof out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_msg(system(cmd) == 0, "cannot remove %s", dir);
    ck_assert_msg(rc == 0, "the trainer exited with %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, PYTHON " '%s' data/digits.csv.gz 2>&1", script);
    rc = run(cmd, ref, sizeof ref);
    double minimum = NAN, loss[9];
    const char *at = strstr(ref, "minimum ");
    ck_assert_msg(rc == 0 && at && sscanf(at, "minimum %lf", &minimum) == 1, "%s", ref);
    for (int k = 1; k <= 8; k++) {
        char want[32];
        snprintf(want, sizeof want, "step %d loss ", k);
        at = strstr(out, want);
        ck_assert_msg(at && sscanf(at + strlen(want), "%lf", &loss[k]) == 1, "no step %d:\n%s", k,
                      out);
        ck_assert_msg(k == 1 || loss[k] <= loss[k - 1] * (1 + 1e-14),
                      "step %d raised the loss:\n%s", k, out);
    }
    at = strstr(out, "final loss ");
    ck_assert_msg(at && sscanf(at, "final loss %lf", &loss[0]) == 1, "%s", out);
    ck_assert_msg(rel_diff(loss[7], minimum) <= 1e-9 && rel_diff(loss[0], minimum) <= 1e-12,
                  "newton_cg: step 7 %.17g, after step 8 %.17g; NumPy's minimum %.17g\n%s", loss[7],
                  loss[0], minimum, out);
    fprintf(stderr, "models: newton_digits by newton_cg, step 1..8:");
    for (int k = 1; k <= 8; k++)
        fprintf(stderr, " %.10g", loss[k]);
    fprintf(stderr, "; then %.17g, NumPy's minimum %.17g\n", loss[0], minimum);
}
END_TEST

/* The inference twin computes the training model's outputs exactly, from
 * the same parameter block and inputs, and has no training parts. */
START_TEST(test_inference_twin)
{
    const Model *r = model_row(_i);
    const rt_model *m = r->f64, *inf = r->infer;
    ck_assert_ptr_null(inf->loss_and_grad);
    ck_assert_ptr_null(inf->train_step);
    ck_assert_int_eq(inf->n_state, 0);
    ck_assert_int_eq(inf->n_param_elems, m->n_param_elems);
    ck_assert_int_eq(inf->n_outputs, m->n_outputs);
    ck_assert_int_le(inf->arena_size, m->arena_size - m->n_param_elems);
    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    m->forward(m->batch);
    const double *src = m->arena, *isrc;
    double *dst = inf->arena;
    memcpy(dst + inf->params_offset, src + m->params_offset, rt_saved_elems(m) * sizeof *dst);
    for (int k = 0; k < inf->n_inputs; k++) {
        const rt_tensor *t = &inf->inputs[k], *u = NULL;
        for (int j = 0; j < m->n_inputs; j++)
            u = !strcmp(m->inputs[j].name, t->name) ? &m->inputs[j] : u;
        ck_assert_ptr_nonnull(u);
        for (long e = 0; e < t->size; e++)
            rt_set(inf, t, e, rt_get(m, u, e));
    }
    inf->forward(inf->batch);
    isrc = inf->arena;
    for (int k = 0; k < m->n_outputs; k++) {
        const rt_tensor *o = &m->outputs[k], *io = &inf->outputs[k];
        ck_assert_str_eq(o->name, io->name);
        for (long e = 0; e < o->size; e++)
            ck_assert_msg(src[o->offset + e] == isrc[io->offset + e],
                          "%s: output %s[%ld] is %.17g training, %.17g inference", r->name, o->name,
                          e, src[o->offset + e], isrc[io->offset + e]);
    }
}
END_TEST

/* ---- batch norm ---- */

enum { BN_N = 4, BN_C = 3, BN_HW = 4 };

/* x[n][c][hw] of the batch norm model's input x [4, 3, 2, 2] */
static double bn_x(const rt_model *m, int n, int c, int hw)
{
    return rt_get(m, &m->inputs[0], (n * BN_C + c) * BN_HW + hw);
}

static const rt_tensor *tensor_named(const rt_tensor *ts, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (!strcmp(ts[k].name, name))
            return &ts[k];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

/* Each channel's batch mean and biased variance of x. */
static void bn_stats(const rt_model *m, double *mean, double *var)
{
    for (int c = 0; c < BN_C; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < BN_N; n++)
            for (int i = 0; i < BN_HW; i++)
                s += bn_x(m, n, c, i);
        mean[c] = s / (BN_N * BN_HW);
        for (int n = 0; n < BN_N; n++)
            for (int i = 0; i < BN_HW; i++)
                ss += (bn_x(m, n, c, i) - mean[c]) * (bn_x(m, n, c, i) - mean[c]);
        var[c] = ss / (BN_N * BN_HW);
    }
}

/* y = g (x - mean) / sqrt(var + eps) + b, element by element, to 1e-12. */
static void bn_expect_y(const rt_model *m, const double *mean, const double *var, const char *mode)
{
    const rt_tensor *g = tensor_named(m->params, m->n_params, "g");
    const rt_tensor *b = tensor_named(m->params, m->n_params, "b");
    for (int n = 0; n < BN_N; n++)
        for (int c = 0; c < BN_C; c++)
            for (int i = 0; i < BN_HW; i++) {
                double want = rt_get(m, g, c) * (bn_x(m, n, c, i) - mean[c]) / sqrt(var[c] + 0.01) +
                              rt_get(m, b, c);
                double got = rt_get(m, &m->outputs[0], (n * BN_C + c) * BN_HW + i);
                ck_assert_msg(close_rel(got, want, 1e-12), "%s: y[%d,%d,%d] is %.17g, want %.17g",
                              mode, n, c, i, got, want);
            }
}

/* Training normalizes by the batch's statistics and leaves the running
 * averages alone until train_step, which moves them by momentum 0.25 (the
 * variance unbiased, n / (n - 1)); evaluation (forward, loss) and the
 * inference twin, loading the trainer's checkpoint, use the averages. */
START_TEST(test_batch_norm)
{
    const rt_model *m = &batch_norm_model_model_f64, *inf = &batch_norm_model_infer_model_f64;
    ck_assert_int_eq(m->n_buffers, 2);
    ck_assert_int_eq(m->n_buffer_elems, 2 * BN_C);
    const rt_tensor *rmean = tensor_named(m->buffers, m->n_buffers, "bn_mean");
    const rt_tensor *rvar = tensor_named(m->buffers, m->n_buffers, "bn_var");
    rt_init_params(m, SEED);
    double run_mean[BN_C], run_var[BN_C], mean[BN_C], var[BN_C];
    for (int c = 0; c < BN_C; c++) {
        run_mean[c] = rt_get(m, rmean, c);
        run_var[c] = rt_get(m, rvar, c);
        ck_assert(run_mean[c] == 0 && run_var[c] == 1);
    }
    rt_hyper still = m->hyper;
    still.lr = 0;
    for (int step = 1; step <= 3; step++) {
        rt_random_inputs(m, SEED + step);
        bn_stats(m, mean, var);
        double kept_mean[BN_C], kept_var[BN_C];
        for (int c = 0; c < BN_C; c++) {
            kept_mean[c] = rt_get(m, rmean, c);
            kept_var[c] = rt_get(m, rvar, c);
        }
        m->loss_and_grad();
        bn_expect_y(m, mean, var, "training");
        for (int c = 0; c < BN_C; c++)
            ck_assert(rt_get(m, rmean, c) == kept_mean[c] && rt_get(m, rvar, c) == kept_var[c]);
        still.step = step;
        m->train_step(&still);
        double n = BN_N * BN_HW;
        for (int c = 0; c < BN_C; c++) {
            run_mean[c] = 0.75 * run_mean[c] + 0.25 * mean[c];
            run_var[c] = 0.75 * run_var[c] + 0.25 * var[c] * n / (n - 1);
            ck_assert_msg(close_rel(rt_get(m, rmean, c), run_mean[c], 1e-12) &&
                              close_rel(rt_get(m, rvar, c), run_var[c], 1e-12),
                          "step %d: channel %d averages %.17g %.17g, want %.17g %.17g", step, c,
                          rt_get(m, rmean, c), rt_get(m, rvar, c), run_mean[c], run_var[c]);
        }
    }
    m->forward(m->batch);
    bn_expect_y(m, run_mean, run_var, "evaluation");
    double want = 0;
    for (long e = 0; e < m->outputs[0].size; e++)
        want += rt_get(m, &m->outputs[0], e) * rt_get(m, &m->inputs[1], e);
    ck_assert_msg(close_rel(m->loss(), want, 1e-12), "loss() is not evaluation's");

    char path[] = "/tmp/gradc_bn_XXXXXX", err[256];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(rt_checkpoint_save(m, path, 3, SEED, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_checkpoint_load_params(inf, path, err, sizeof err) == 0, "%s", err);
    unlink(path);
    for (long e = 0; e < inf->inputs[0].size; e++)
        rt_set(inf, &inf->inputs[0], e, rt_get(m, &m->inputs[0], e));
    inf->forward(inf->batch);
    for (long e = 0; e < m->outputs[0].size; e++)
        ck_assert(rt_get(inf, &inf->outputs[0], e) == rt_get(m, &m->outputs[0], e));
}
END_TEST

/* p = softmax(causal_mask(a k * 0.25)) row by row: row t of each [5, 5]
 * matrix is exp(s_j - max) / sum over j <= t, and 0 beyond t. */
START_TEST(test_causal_attention)
{
    const rt_model *m = &attention_model_model_f64;
    enum { N = 2, T = 5, D = 4 };
    rt_init_params(m, SEED);
    rt_random_inputs(m, SEED);
    m->forward(m->batch);
    const rt_tensor *a = &m->inputs[0], *k = &m->params[0], *p = &m->outputs[0];
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++) {
            double s[T], mx = -INFINITY, total = 0;
            for (int j = 0; j <= t; j++) {
                s[j] = 0;
                for (int d = 0; d < D; d++)
                    s[j] += rt_get(m, a, (n * T + t) * D + d) * rt_get(m, k, d * T + j);
                s[j] *= 0.25;
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j <= t; j++)
                total += exp(s[j] - mx);
            for (int j = 0; j < T; j++) {
                double want = j <= t ? exp(s[j] - mx) / total : 0;
                double got = rt_get(m, p, (n * T + t) * T + j);
                ck_assert_msg(close_rel(got, want, 1e-12), "p[%d,%d,%d] is %.17g, want %.17g", n, t,
                              j, got, want);
            }
        }
}
END_TEST

static Suite *models_suite(void)
{
    Suite *s = suite_create("models");
    struct {
        const char *name;
        const TTest *test;
    } props[] = {
        {"gradcheck", test_gradcheck},
        {"train_step", test_train_step_formula},
        {"float_double", test_float_double},
        {"forward", test_forward_rows},
        {"inference", test_inference_twin},
        {"threads", test_threads_same_double},
#ifndef __SANITIZE_ADDRESS__
        {"no_allocation", test_step_allocates_nothing},
#endif
    };
    for (size_t k = 0; k < sizeof props / sizeof props[0]; k++) {
        TCase *tc = tcase_create(props[k].name);
        tcase_add_loop_test(tc, props[k].test, 0, N_MODELS);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
    }
#ifdef __SANITIZE_ADDRESS__
    printf("skipped %d: no_allocation for each model (ASan brings its own malloc)\n", N_MODELS);
#endif
    TCase *tc = tcase_create("batch_norm");
    tcase_add_test(tc, test_batch_norm);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
    tcase_add_test(tc, test_causal_attention);
    suite_add_tcase(s, tc);
    tc = tcase_create("notes");
    tcase_add_test(tc, test_notes_seed_mlp);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("gpt2");
    tcase_add_test(tc, test_gpt2_init_and_optimizer);
    tcase_add_test(tc, test_gpt2_reference);
    tcase_add_test(tc, test_gpt2_torch);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("newton");
    tcase_add_test(tc, test_newton_converges);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("second_order");
    tcase_add_loop_test(tc, test_second_order_torch, 0,
                        sizeof second_order / sizeof second_order[0]);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(models_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
