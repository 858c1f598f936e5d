/*
 * products.c: the Hessian- and Jacobian-vector products of a model
 * compiled with --hvp or --jvp, their check, and newton_cg's step.
 *
 * Each twin (NAME_hvp.c, NAME_jvp.c) has its own arena: a product copies
 * the model's inputs (by name: the twin keeps only those it reads) and
 * buffers into it, then runs it at the model's parameters. The check
 * holds a product to central differences along v of the function it is
 * the derivative of: of the gradient for H v, of the real outputs for
 * J v: d(h) = (f(p + h v) - f(p - h v)) / 2h, taken to (4 d(h/2) - d(h))
 * / 3, whose error is O(h^4), as gradcheck.c holds the gradient to those
 * of the loss. Where d(h) and d(h/2) disagree by more than the smooth
 * O(h^2) the direction crossed a kink (of a relu: models of many cross
 * one at the first step), and another is drawn, with a step ten times
 * smaller.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

enum { DRAWS = 4 }; /* directions tried before a kink is said to stay */

static void copy_tensor(const rt_model *to, const rt_tensor *t, const rt_model *from,
                        const rt_tensor *f)
{
    if (t->dtype == RT_I32)
        memcpy(to->iarena + t->offset, from->iarena + f->offset, (size_t)t->size * 4);
    else
        memcpy((char *)to->arena + t->offset * rt_dtype_width(to->real),
               (const char *)from->arena + f->offset * rt_dtype_width(from->real),
               (size_t)t->size * rt_dtype_width(to->real));
}

static int run_twin(const rt_model *m, const rt_model *twin, const void *v, void *out)
{
    if (!twin)
        return -1;
    for (int i = 0; i < twin->n_inputs; i++)
        for (int k = 0; k < m->n_inputs; k++)
            if (!strcmp(twin->inputs[i].name, m->inputs[k].name))
                copy_tensor(twin, &twin->inputs[i], m, &m->inputs[k]);
    for (int i = 0; i < twin->n_buffers; i++)
        copy_tensor(twin, &twin->buffers[i], m, &m->buffers[i]);
    twin->product((const char *)m->arena + m->params_offset * rt_dtype_width(m->real), v, out);
    return 0;
}

int rt_hvp(const rt_model *m, const void *v, void *out) { return run_twin(m, m->hvp, v, out); }

int rt_jvp(const rt_model *m, const void *v, void *out) { return run_twin(m, m->jvp, v, out); }

/* The parameter block of a double build (the check runs in double). */
static double *params_of(const rt_model *m) { return (double *)m->arena + m->params_offset; }

/* The function a product is the derivative of, at the parameters in the
 * arena, into f (the twin's n_product values): the gradient for H v; for
 * J v the real outputs of the training pass, in the twin's order. */
static void gradient(const rt_model *m, double *f)
{
    m->loss_and_grad();
    memcpy(f, (const double *)m->arena + m->grads_offset, sizeof *f * (size_t)m->n_param_elems);
}

static void outputs(const rt_model *m, double *f)
{
    m->loss_and_grad();
    const rt_model *twin = m->jvp;
    long at = 0;
    for (int i = 0; i < twin->n_outputs; i++) {
        const rt_tensor *jv = &twin->outputs[i];
        for (int k = 0; k < m->n_outputs; k++)
            if (!strcmp(jv->name + 3, m->outputs[k].name))
                memcpy(f + at, (const double *)m->arena + m->outputs[k].offset,
                       sizeof *f * (size_t)jv->size);
        at += jv->size;
    }
}

typedef struct {
    const char *what, *of, *flag; /* "H v", "the gradient", "--hvp" */
    const rt_model *twin;
    void (*value)(const rt_model *m, double *f);
} Product;

/* f at p0 + h v. */
static void value_at(const rt_model *m, const Product *pr, const double *p0, const double *v,
                     double h, double *f)
{
    long n = m->n_param_elems;
    double *p = params_of(m);
    for (long i = 0; i < n; i++)
        p[i] = p0[i] + h * v[i];
    pr->value(m, f);
}

static double norm(const double *x, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

/* d = (f(p0 + h v) - f(p0 - h v)) / 2h, f a scratch block. */
static void differences(const rt_model *m, const Product *pr, const double *p0, const double *v,
                        double h, double *f, double *d)
{
    long n = pr->twin->n_product;
    value_at(m, pr, p0, v, h, d);
    value_at(m, pr, p0, v, -h, f);
    for (long i = 0; i < n; i++)
        d[i] = (d[i] - f[i]) / (2 * h);
}

static double norm_diff(const double *a, const double *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

static double check_product(const rt_model *m, const Product *pr, const rt_gradcheck_opts *o,
                            FILE *out)
{
    if (m->real != RT_F64 || !pr->twin) {
        fprintf(stderr, "%s: the check of %s needs the double build of a model compiled with %s\n",
                m->name, pr->what, pr->flag);
        return INFINITY;
    }
    if (!o->keep_params)
        rt_init_params(m, o->seed);
    rt_random_inputs(m, o->seed);
    long n = m->n_param_elems, n_out = pr->twin->n_product;
    size_t bytes = sizeof(double) * (size_t)n, out_bytes = sizeof(double) * (size_t)n_out;
    double *p0 = rt_malloc(bytes), *v = rt_malloc(bytes), *product = rt_malloc(out_bytes);
    double *d = rt_malloc(out_bytes), *half = rt_malloc(out_bytes), *f = rt_malloc(out_bytes);
    double *f0 = rt_malloc(out_bytes);
    memcpy(p0, params_of(m), bytes);
    double h = 1e-4 * fmax(1.0, norm(p0, n) / sqrt((double)(n ? n : 1))), worst = 0.0;
    int draw = 0;
    bool kink = true;
    for (; draw < DRAWS && kink; draw++) {
        rt_rng r;
        rt_rng_stream(&r, o->seed, RT_STREAM_CHECK, 1000 + (uint64_t)draw);
        for (long i = 0; i < n; i++)
            v[i] = rt_rng_normal(&r);
        memcpy(params_of(m), p0, bytes);
        run_twin(m, pr->twin, v, product);
        if (draw)
            h /= 10;
        differences(m, pr, p0, v, h, f, d);
        differences(m, pr, p0, v, h / 2, f, half);
        double dd = 0, hh = 0, gap = 0;
        for (long i = 0; i < n_out; i++) {
            dd += d[i] * d[i], hh += half[i] * half[i], gap += (d[i] - half[i]) * (d[i] - half[i]);
            d[i] = (4 * half[i] - d[i]) / 3;
        }
        kink = sqrt(gap) > 1e-6 * fmax(sqrt(fmax(dd, hh)), 1e-30);
    }
    value_at(m, pr, p0, v, 0, f0);
    if (out)
        fprintf(out,
                "%s against central differences of %s along v, v drawn from\n"
                "N(0, 1) (%d draw%s, step %.3g), per %s: relative error =\n"
                "||%s - %s_fd|| / max(||%s||, ||%s_fd||)%s\n",
                pr->what, pr->of, draw, draw == 1 ? "" : "s", h,
                pr->twin == m->hvp ? "parameter" : "output", pr->what, pr->what, pr->what, pr->what,
                kink ? "; every draw crossed a kink" : "");
    long at = 0;
    for (int k = 0; k < pr->twin->n_outputs; k++) {
        const rt_tensor *t = &pr->twin->outputs[k];
        const double *fd = d + at;
        double a = norm(product + at, t->size), b = norm(fd, t->size);
        /* A part that is zero in truth is the differences' rounding, about
         * 1e-11 of the function's values: zero both ways below 1e-7 of it. */
        double resolution = 1e-7 * norm(f0 + at, t->size);
        bool zero = fmax(a, b) <= resolution;
        double err = zero ? 0.0 : norm_diff(product + at, fd, t->size) / fmax(fmax(a, b), 1e-300);
        worst = (isnan(err) || err > worst) ? err : worst;
        if (out) {
            char s[160];
            long shape[RT_MAX_RANK];
            rt_tensor_shape(t, shape);
            rt_format_shape(s, sizeof s, t->rank, shape, 0);
            /* H v is named for its parameter, J v for its output. */
            fprintf(out, "%s %s  relative error %.3g%s\n", t->name + 3, s, err,
                    zero ? "  (zero both ways)" : "");
        }
        at += t->size;
    }
    if (kink)
        worst = INFINITY;
    memcpy(params_of(m), p0, bytes);
    m->loss_and_grad();
    if (out)
        fprintf(out, "max relative error %.9g\n", worst);
    free(p0), free(v), free(product), free(d), free(half), free(f), free(f0);
    return worst;
}

double rt_hvp_check(const rt_model *m, const rt_gradcheck_opts *o, FILE *out)
{
    return check_product(m, &(Product){"H v", "the gradient", "--hvp", m->hvp, gradient}, o, out);
}

double rt_jvp_check(const rt_model *m, const rt_gradcheck_opts *o, FILE *out)
{
    return check_product(m, &(Product){"J v", "the outputs", "--jvp", m->jvp, outputs}, o, out);
}

/* Element i of a block of m's reals, as a double, and back. */
static double get(const rt_model *m, const void *b, long i)
{
    return m->real == RT_F64 ? ((const double *)b)[i] : ((const float *)b)[i];
}

static void put(const rt_model *m, void *b, long i, double v)
{
    if (m->real == RT_F64)
        ((double *)b)[i] = v;
    else
        ((float *)b)[i] = (float)v;
}

static double dot(const rt_model *m, const void *a, const void *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += get(m, a, i) * get(m, b, i);
    return s;
}

/* Conjugate gradients on (H + (weight_decay + damping) I) s = b, b the
 * negated (clipped) gradient plus its L2 term, from s = 0, for at most
 * cg_iters products or until the residual is 1e-10 of b. A direction of
 * negative curvature ends it: the step so far (or, at the first, b
 * itself: steepest descent) is a descent direction. The model's state
 * holds the four vectors. */
void rt_newton_cg_step(const rt_model *m, const rt_hyper *hyper)
{
    long n = m->n_param_elems;
    size_t w = rt_dtype_width(m->real);
    char *params = (char *)m->arena + m->params_offset * w;
    const char *grads = (const char *)m->arena + m->grads_offset * w;
    char *s = (char *)m->arena + m->state_offset * w, *r = s + n * w, *d = r + n * w;
    char *hd = d + n * w;
    double pre = hyper->grad_scale > 0 ? hyper->grad_scale : 1.0, scale = pre;
    if (hyper->clip > 0) {
        double norm2 = dot(m, grads, grads, n);
        if (pre * sqrt(norm2) > hyper->clip)
            scale = hyper->clip / sqrt(norm2);
    }
    double wd = hyper->weight_decay, shift = wd + hyper->damping;
    for (long i = 0; i < n; i++) {
        double b = -(scale * get(m, grads, i) + wd * get(m, params, i));
        put(m, s, i, 0);
        put(m, r, i, b);
        put(m, d, i, b);
    }
    double rr = dot(m, r, r, n), bb = rr;
    long iters = hyper->cg_iters >= 1 ? (long)hyper->cg_iters : 1;
    for (long k = 0; k < iters && rr > 1e-20 * bb; k++) {
        rt_hvp(m, d, hd);
        for (long i = 0; i < n; i++)
            put(m, hd, i, get(m, hd, i) + shift * get(m, d, i));
        double curvature = dot(m, d, hd, n);
        if (!(curvature > 0)) {
            if (k == 0)
                memcpy(s, r, n * w);
            break;
        }
        double alpha = rr / curvature;
        for (long i = 0; i < n; i++) {
            put(m, s, i, get(m, s, i) + alpha * get(m, d, i));
            put(m, r, i, get(m, r, i) - alpha * get(m, hd, i));
        }
        double next = dot(m, r, r, n);
        for (long i = 0; i < n; i++)
            put(m, d, i, get(m, r, i) + next / rr * get(m, d, i));
        rr = next;
    }
    for (long i = 0; i < n; i++)
        put(m, params, i, get(m, params, i) + hyper->lr * get(m, s, i));
}
