/*
 * hvp.c: the Hessian-vector product of a model compiled with --hvp, and
 * its check.
 *
 * The twin (NAME_hvp.c) has its own arena: rt_hvp copies the model's
 * inputs (by name: the twin keeps only those the loss reads) and buffers
 * into it, then runs it at the model's parameters. The check holds H v to
 * central differences of the gradient along v, d(h) = (g(p + h v) - g(p -
 * h v)) / 2h, as gradcheck.c holds the gradient to those of the loss: to
 * (4 d(h/2) - d(h)) / 3, whose error is O(h^4). Where d(h) and d(h/2)
 * disagree by more than the smooth O(h^2) the direction crossed a kink
 * (of a relu: models of many cross one at the first step), and another
 * is drawn, with a step ten times smaller.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

enum { DRAWS = 4 }; /* directions tried before a kink is said to stay */

static size_t width(const rt_model *m) { return m->real == RT_F64 ? 8 : 4; }

static void copy_tensor(const rt_model *to, const rt_tensor *t, const rt_model *from,
                        const rt_tensor *f)
{
    if (t->dtype == RT_I32)
        memcpy(to->iarena + t->offset, from->iarena + f->offset, (size_t)t->size * 4);
    else
        memcpy((char *)to->arena + t->offset * width(to),
               (const char *)from->arena + f->offset * width(from), (size_t)t->size * width(to));
}

int rt_hvp(const rt_model *m, const void *v, void *out)
{
    const rt_model *h = m->hvp;
    if (!h)
        return -1;
    for (int i = 0; i < h->n_inputs; i++)
        for (int k = 0; k < m->n_inputs; k++)
            if (!strcmp(h->inputs[i].name, m->inputs[k].name))
                copy_tensor(h, &h->inputs[i], m, &m->inputs[k]);
    for (int i = 0; i < h->n_buffers; i++)
        copy_tensor(h, &h->buffers[i], m, &m->buffers[i]);
    h->hvp_product((const char *)m->arena + m->params_offset * width(m), v, out);
    return 0;
}

/* The parameter block of a double build (the check runs in double). */
static double *params_of(const rt_model *m) { return (double *)m->arena + m->params_offset; }

/* g = the gradient at p0 + h v. */
static void grads_at(const rt_model *m, const double *p0, const double *v, double h, double *g)
{
    long n = m->n_param_elems;
    double *p = params_of(m);
    for (long i = 0; i < n; i++)
        p[i] = p0[i] + h * v[i];
    m->loss_and_grad();
    memcpy(g, (const double *)m->arena + m->grads_offset, sizeof *g * (size_t)n);
}

static double norm(const double *x, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

/* d = (g(p0 + h v) - g(p0 - h v)) / 2h, g a scratch block. */
static void differences(const rt_model *m, const double *p0, const double *v, double h, double *g,
                        double *d)
{
    long n = m->n_param_elems;
    grads_at(m, p0, v, h, d);
    grads_at(m, p0, v, -h, g);
    for (long i = 0; i < n; i++)
        d[i] = (d[i] - g[i]) / (2 * h);
}

static double norm_diff(const double *a, const double *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

double rt_hvp_check(const rt_model *m, const rt_gradcheck_opts *o, FILE *out)
{
    if (m->real != RT_F64 || !m->hvp) {
        fprintf(stderr,
                "%s: the check of H v needs the double build of a model compiled with "
                "--hvp\n",
                m->name);
        return INFINITY;
    }
    if (!o->keep_params)
        rt_init_params(m, o->seed);
    rt_random_inputs(m, o->seed);
    long n = m->n_param_elems;
    size_t bytes = sizeof(double) * (size_t)n;
    double *p0 = rt_malloc(bytes), *v = rt_malloc(bytes), *hv = rt_malloc(bytes);
    double *d = rt_malloc(bytes), *half = rt_malloc(bytes), *g = rt_malloc(bytes);
    double *g0 = rt_malloc(bytes);
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
        rt_hvp(m, v, hv);
        if (draw)
            h /= 10;
        differences(m, p0, v, h, g, d);
        differences(m, p0, v, h / 2, g, half);
        double dd = 0, hh = 0, gap = 0;
        for (long i = 0; i < n; i++) {
            dd += d[i] * d[i], hh += half[i] * half[i], gap += (d[i] - half[i]) * (d[i] - half[i]);
            d[i] = (4 * half[i] - d[i]) / 3;
        }
        kink = sqrt(gap) > 1e-3 * fmax(sqrt(fmax(dd, hh)), 1e-30);
    }
    grads_at(m, p0, v, 0, g0);
    if (out)
        fprintf(out,
                "H v against central differences of the gradient along v, v drawn from\n"
                "N(0, 1) (%d draw%s, step %.3g), per parameter: relative error =\n"
                "||Hv - Hv_fd|| / max(||Hv||, ||Hv_fd||)%s\n",
                draw, draw == 1 ? "" : "s", h, kink ? "; every draw crossed a kink" : "");
    for (int k = 0; k < m->n_params; k++) {
        const rt_tensor *t = &m->params[k];
        long at = t->offset - m->params_offset;
        const double *fd = d + at;
        double a = norm(hv + at, t->size), b = norm(fd, t->size);
        /* A part of H v that is zero in truth is the differences' rounding,
         * about 1e-11 of the gradient: zero both ways below 1e-7 of it. */
        double resolution = 1e-7 * norm(g0 + at, t->size);
        bool zero = fmax(a, b) <= resolution;
        double err = zero ? 0.0 : norm_diff(hv + at, fd, t->size) / fmax(fmax(a, b), 1e-300);
        worst = (isnan(err) || err > worst) ? err : worst;
        if (out) {
            char s[160];
            long shape[RT_MAX_RANK];
            rt_tensor_shape(t, shape);
            rt_format_shape(s, sizeof s, t->rank, shape, 0);
            fprintf(out, "%s %s  relative error %.3g%s\n", t->name, s, err,
                    zero ? "  (zero both ways)" : "");
        }
    }
    if (kink)
        worst = INFINITY;
    memcpy(params_of(m), p0, bytes);
    m->loss_and_grad();
    if (out)
        fprintf(out, "max relative error %.9g\n", worst);
    free(p0), free(v), free(hv), free(d), free(half), free(g), free(g0);
    return worst;
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
    size_t w = width(m);
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
