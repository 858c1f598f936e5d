/*
 * gradcheck.c: the gradient check, by docs/design.md's one definition.
 *
 * Central differences in double with step h = 1e-5 * max(1, |p|), on 64
 * seeded elements per parameter (all with --all), whose norm-wise error
 * estimates the whole tensor's (relative_error). Each perturbation is
 * undone by storing the saved value back, so the parameters end bit-for-bit
 * as they started. An element whose one-sided differences disagree by more
 * than 1e-3 relative (to them, or to the parameter's root-mean-square slope
 * when that is larger) sits on a kink: it is skipped and counted, never
 * folded silently into the error.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

enum { PICKS = 64 };

typedef struct {
    double gg, ff, dd; /* ||g||^2, ||g_fd||^2, ||g - g_fd||^2 */
    double nn;         /* ||resolution||^2: the smallest slopes the differences tell from 0 */
    long checked, kinks;
} Tally;

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int already_picked(const long *idx, long n, long v)
{
    for (long j = 0; j < n; j++)
        if (idx[j] == v)
            return 1;
    return 0;
}

/* Which elements of parameter k to check; *n gets their count. Rejection
 * sampling terminates because size > PICKS whenever it is used. */
static long *pick(const rt_tensor *t, int k, const rt_gradcheck_opts *o, long *n)
{
    if (o->all || t->size <= PICKS) {
        long *idx = rt_malloc(sizeof *idx * (size_t)t->size);
        for (long i = 0; i < t->size; i++)
            idx[i] = i;
        *n = t->size;
        return idx;
    }
    long *idx = rt_malloc(sizeof *idx * PICKS);
    rt_rng r;
    rt_rng_stream(&r, o->seed, RT_STREAM_CHECK, (uint64_t)k);
    for (*n = 0; *n < PICKS;) {
        long v = rt_rng_below(&r, t->size);
        if (!already_picked(idx, *n, v))
            idx[(*n)++] = v;
    }
    qsort(idx, PICKS, sizeof *idx, cmp_long);
    return idx;
}

/* Loss with element i of t set to v; the caller restores it. */
static double loss_at(const rt_model *m, const rt_tensor *t, long i, double v)
{
    rt_set(m, t, i, v);
    return m->loss_and_grad();
}

/* One element: adds to the tally, or counts a kink. The divisors are the
 * steps actually taken, (p + h) - p, not h, which differ by rounding. */
static void check_element(const rt_model *m, const rt_tensor *t, long i, double g, double L0,
                          double scale, Tally *tl)
{
    double p = rt_get(m, t, i);
    double h = 1e-5 * fmax(1.0, fabs(p));
    double pp = p + h, pm = p - h;
    double Lp = loss_at(m, t, i, pp);
    double Lm = loss_at(m, t, i, pm);
    rt_set(m, t, i, p);
    double dp = (Lp - L0) / (pp - p), dm = (L0 - Lm) / (p - pm);
    /* Relative to the slopes, or to the parameter's typical slope when
     * they are smaller: a smooth function near its minimum has tiny slopes
     * whose sides differ by h f'' (no kink), while a kink's jump is a
     * sizable part of the typical slope. The last term allows for rounding
     * in the loss (1e-12 of it, magnified by the step). */
    double noise = 1e-12 * fmax(1.0, fabs(L0)) / h;
    if (fabs(dp - dm) > 1e-3 * fmax(fmax(fabs(dp), fabs(dm)), scale) + noise) {
        tl->kinks++;
        return;
    }
    double fd = (Lp - Lm) / (pp - pm);
    tl->nn += noise * noise;
    tl->gg += g * g;
    tl->ff += fd * fd;
    tl->dd += (g - fd) * (g - fd);
    tl->checked++;
}

/* A gradient that is zero in truth (a bias before a batch norm) is rounding
 * noise both ways, whose ratio means nothing: when both sides are below
 * the resolution of the differences, they agree that it is zero. */
static bool is_zero(const Tally *tl) { return tl->checked > 0 && fmax(tl->gg, tl->ff) <= tl->nn; }

/* The norm-wise error over the checked elements; sampled, the norm-wise
 * error over every element that it estimates. The picks are uniform, so
 * size / picks times a sum over them is an unbiased estimate of the sum
 * over all; the analytic gradient's own norm is known exactly, so it is
 * taken whole. Taking the norms over the picks alone instead inflates
 * the figure whenever the picks miss the large slopes (a layer whose
 * gradient sits in a few rows): a ratio of small sums. */
static double relative_error(const Tally *tl, double picked, double size, double gg_all)
{
    if (tl->checked == 0 || is_zero(tl))
        return 0.0;
    double up = size / picked;
    double den = fmax(fmax(sqrt(picked < size ? gg_all : tl->gg), sqrt(tl->ff * up)), 1e-30);
    return sqrt(tl->dd * up) / den;
}

static double check_param(const rt_model *m, int k, const rt_gradcheck_opts *o, const double *grads,
                          double L0, FILE *out)
{
    const rt_tensor *t = &m->params[k];
    const double *g = grads + (m->grads[k].offset - m->grads_offset);
    Tally tl = {0};
    long n;
    long *idx = pick(t, k, o, &n);
    double scale = 0, gg_all = 0; /* the root mean square of the checked slopes */
    for (long j = 0; j < n; j++)
        scale += g[idx[j]] * g[idx[j]];
    scale = sqrt(scale / (n ? n : 1));
    for (long i = 0; i < t->size; i++)
        gg_all += g[i] * g[i];
    for (long j = 0; j < n; j++)
        check_element(m, t, idx[j], g[idx[j]], L0, scale, &tl);
    free(idx);
    double err = relative_error(&tl, (double)n, (double)t->size, gg_all);
    if (out) {
        char s[160];
        long shape[RT_MAX_RANK];
        rt_tensor_shape(t, shape);
        rt_format_shape(s, sizeof s, t->rank, shape, 0);
        fprintf(out, "%s %s  checked %ld  kinks %ld  relative error %.3g%s\n", t->name, s,
                tl.checked, tl.kinks, err, is_zero(&tl) ? "  (zero both ways)" : "");
    }
    return err;
}

double rt_gradcheck(const rt_model *m, const rt_gradcheck_opts *o, FILE *out)
{
    if (m->real != RT_F64) {
        fprintf(stderr,
                "%s: the gradient check needs the double build "
                "(compile %s.c with -DREAL_DOUBLE)\n",
                m->name, m->name);
        return INFINITY;
    }
    if (!o->keep_params)
        rt_init_params(m, o->seed);
    rt_random_inputs(m, o->seed);
    double L0 = m->loss_and_grad();
    size_t bytes = sizeof(double) * (size_t)m->n_param_elems;
    double *grads = rt_malloc(bytes);
    memcpy(grads, (const double *)m->arena + m->grads_offset, bytes);
    double worst = 0.0;
    if (out)
        fprintf(out, "per parameter, norm-wise over the tensor (estimated from the checked\n"
                     "elements when not all are): relative error =\n"
                     "||g - g_fd|| / max(||g||, ||g_fd||), g_fd the central differences\n");
    for (int k = 0; k < m->n_params; k++) {
        double e = check_param(m, k, o, grads, L0, out);
        worst = (isnan(e) || e > worst) ? e : worst;
    }
    free(grads);
    /* Parameters are back; one more call puts loss and grads back too. */
    m->loss_and_grad();
    if (out)
        fprintf(out, "max relative error %.9g\n", worst);
    return worst;
}

static void usage(const rt_model *m, const char *prog)
{
    printf("usage: %s [--all] [--hvp | --jvp] [--seed S] [--init DIR] [--tol X]\n"
           "       [--threads N]\n\n"
           "Checks every parameter gradient of model %s (%s) against central\n"
           "differences, on %d seeded elements per parameter. A parameter's relative\n"
           "error is norm-wise: ||g - g_fd|| / max(||g||, ||g_fd||) over the tensor, as\n"
           "estimated from those elements (their sums of squares times size / picks).\n\n"
           "  --all        check every element\n"
           "  --hvp        check the Hessian-vector product instead (a model compiled\n"
           "               with --hvp): H v against central differences of the\n"
           "               gradient along random directions v, norm-wise per parameter\n"
           "  --jvp        check the Jacobian-vector product instead (a model compiled\n"
           "               with --jvp): J v against central differences of the\n"
           "               outputs along random directions v, norm-wise per output\n"
           "  --seed S     seed for parameters, inputs and picks (default 1)\n"
           "  --init DIR   check at the parameters in DIR/NAME.npy (as a trainer's\n"
           "               --export writes them), not the seed's; inputs stay random\n"
           "  --tol X      largest relative error that passes (default 1e-6)\n"
           "  --threads N  threads for products and large loops (default 1; 0 or auto:\n"
           "               one per core the program may run on)\n",
           prog, m->name, m->source ? m->source : "?", PICKS);
}

typedef struct {
    rt_gradcheck_opts check;
    const char *init; /* --init DIR, or NULL */
    double tol;
    long threads;
    int help, hvp, jvp;
} Opts;

/* 0, or 2 after a message. */
static int parse(rt_args *a, Opts *o)
{
    while (a->i < a->argc && !o->help) {
        const char *v;
        int r = 0;
        if (rt_args_is(a, "--help") || rt_args_is(a, "-h")) {
            o->help = 1;
            a->i++;
        } else if (rt_args_is(a, "--all")) {
            o->check.all = 1;
            a->i++;
        } else if (rt_args_is(a, "--hvp")) {
            o->hvp = 1;
            a->i++;
        } else if (rt_args_is(a, "--jvp")) {
            o->jvp = 1;
            a->i++;
        } else if ((r = rt_args_value(a, "--seed", &v)) != 0) {
            if (r < 0 || rt_parse_u64(a, "--seed", v, &o->check.seed))
                return 2;
        } else if ((r = rt_args_value(a, "--init", &v)) != 0) {
            if (r < 0)
                return 2;
            o->init = v;
        } else if ((r = rt_args_value(a, "--tol", &v)) != 0) {
            if (r < 0 || rt_parse_double(a, "--tol", v, &o->tol))
                return 2;
        } else if ((r = rt_args_value(a, "--threads", &v)) != 0) {
            if (r < 0 || rt_parse_threads(a, v, &o->threads))
                return 2;
        } else {
            rt_args_error(a, "unknown flag '%s'", a->argv[a->i]);
            return 2;
        }
    }
    return 0;
}

int rt_gradcheck_main(const rt_model *m, int argc, char **argv)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s_gradcheck", m->name);
    Opts o = {.check = {.all = 0, .seed = 1}, .tol = 1e-6, .threads = 1};
    rt_args a = {prog, argc, argv, 1};
    int rc = parse(&a, &o);
    if (rc)
        return rc;
    if (o.help) {
        usage(m, prog);
        return 0;
    }
    if (m->real != RT_F64) {
        fprintf(stderr,
                "%s: this is the float build of %s; the gradient check needs "
                "the double build (compile %s.c with -DREAL_DOUBLE)\n",
                prog, m->name, m->name);
        return 1;
    }
    if (o.hvp && o.jvp) {
        rt_args_error(&a, "--hvp and --jvp: one check at a time");
        return 2;
    }
    if ((o.hvp && !m->hvp) || (o.jvp && !m->jvp)) {
        const char *flag = o.hvp ? "--hvp" : "--jvp";
        fprintf(stderr, "%s: %s: %s was compiled without %s, so it has no %s to check\n", prog,
                flag, m->name, flag, o.hvp ? "H v" : "J v");
        return 1;
    }
    rt_set_threads((int)o.threads);
    if (o.init) {
        char err[1024];
        /* The seed's buffers stay where DIR has no file for them. */
        rt_init_params(m, o.check.seed);
        if (rt_import_params(m, o.init, err, sizeof err)) {
            fprintf(stderr, "%s: --init: %s\n", prog, err);
            return 1;
        }
        o.check.keep_params = 1;
    }
    double worst = o.hvp   ? rt_hvp_check(m, &o.check, stdout)
                   : o.jvp ? rt_jvp_check(m, &o.check, stdout)
                           : rt_gradcheck(m, &o.check, stdout);
    fflush(stdout);
    if (!(worst <= o.tol)) {
        fprintf(stderr, "%s: FAILED: max relative error %.9g > tol %g\n", prog, worst, o.tol);
        return 1;
    }
    return 0;
}
