/*
 * train.c: rt_train_main, the whole of every NAME_train program.
 *
 * Parse flags, initialize parameters from the seed, bind --data files (or
 * draw one random batch to reuse), then call the model's train_step once
 * per step. Only the `step <n> loss <v>` and `final loss` lines go to
 * stdout, so a script can parse them; everything else goes to stderr. The
 * timing covers train_step alone: binding and printing are not the model's
 * cost.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

typedef struct {
    long steps, print_every, threads;
    uint64_t seed;
    double lr;
    int has_lr, help;
    int n_data;
    const char **data; /* the NAME=FILE arguments, in order */
} Opts;

static const char *optimizer_name(rt_optimizer k) { return k == RT_OPT_SGD ? "sgd" : "?"; }

static void usage(const rt_model *m, const char *prog)
{
    long n = 0;
    for (int k = 0; k < m->n_params; k++)
        n += m->params[k].size;
    printf("usage: %s [--steps N] [--seed S] [--lr X] [--data NAME=FILE.npy]...\n"
           "       [--print-every K] [--threads N]\n\n",
           prog);
    printf("Trains model %s (%s), batch %d, with %s.\n", m->name, m->source ? m->source : "?",
           m->batch, optimizer_name(m->optimizer));
    printf("inputs (bind all of them with --data, or none for random data):\n");
    for (int k = 0; k < m->n_inputs; k++) {
        const rt_tensor *t = &m->inputs[k];
        char s[160];
        long shape[RT_MAX_RANK];
        rt_tensor_shape(t, shape);
        rt_format_shape(s, sizeof s, t->rank, shape, 0);
        printf("  %s %s %s", t->name, s, rt_dtype_name(rt_storage_dtype(m, t)));
        if (t->dtype == RT_I32 && t->classes > 0)
            printf(", labels in [0, %d)", t->classes);
        printf("\n");
    }
    printf("parameters: %d tensors, %ld values\n\n", m->n_params, n);
    printf("  --steps N        optimizer steps (default 100)\n"
           "  --seed S         seed for parameters and random inputs (default 1)\n"
           "  --lr X           learning rate (default %g)\n"
           "  --data NAME=F    an .npy file for input NAME, [rows, ...] rows >= batch\n"
           "  --print-every K  print the loss every K steps (default 10)\n"
           "  --threads N      BLAS threads (default 1)\n",
           m->hyper.lr);
}

/* One flag at a->i: 1 if it was recognized, 0 if not, -1 on a bad value. */
static int parse_flag(rt_args *a, Opts *o)
{
    const char *v;
    int r;
    if (rt_args_is(a, "--help") || rt_args_is(a, "-h")) {
        o->help = 1;
        a->i++;
        return 1;
    }
    if ((r = rt_args_value(a, "--steps", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--steps", v, &o->steps) ? -1 : 1;
    if ((r = rt_args_value(a, "--print-every", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--print-every", v, &o->print_every) ? -1 : 1;
    if ((r = rt_args_value(a, "--threads", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--threads", v, &o->threads) ? -1 : 1;
    if ((r = rt_args_value(a, "--seed", &v)) != 0)
        return r < 0 ? -1 : rt_parse_u64(a, "--seed", v, &o->seed) ? -1 : 1;
    if ((r = rt_args_value(a, "--lr", &v)) != 0) {
        o->has_lr = 1;
        return r < 0 ? -1 : rt_parse_double(a, "--lr", v, &o->lr) ? -1 : 1;
    }
    if ((r = rt_args_value(a, "--data", &v)) != 0) {
        if (r < 0)
            return -1;
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || eq[1] == '\0') {
            rt_args_error(a, "--data: expected NAME=FILE.npy, got '%s'", v);
            return -1;
        }
        o->data[o->n_data++] = v;
        return 1;
    }
    return 0;
}

/* 0, or 2 after a message. --help anywhere wins over later flags. */
static int parse(rt_args *a, Opts *o)
{
    while (a->i < a->argc && !o->help) {
        int r = parse_flag(a, o);
        if (r < 0)
            return 2;
        if (r == 0) {
            rt_args_error(a, "unknown flag '%s'", a->argv[a->i]);
            return 2;
        }
    }
    return 0;
}

/* Loads every --data file; 0, or 1 after a message. */
static int bind_all(const rt_model *m, const char *prog, const Opts *o, rt_data *d)
{
    char err[1024];
    for (int k = 0; k < o->n_data; k++) {
        const char *eq = strchr(o->data[k], '=');
        size_t n = (size_t)(eq - o->data[k]);
        char *name = rt_malloc(n + 1); /* callers may pass string literals */
        memcpy(name, o->data[k], n);
        name[n] = '\0';
        int rc = rt_data_bind(d, m, name, eq + 1, err, sizeof err);
        free(name);
        if (rc) {
            fprintf(stderr, "%s: %s\n", prog, err);
            return 1;
        }
    }
    if (rt_data_finish(d, m, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    if (d->n)
        fprintf(stderr, "%s: %ld rows: %ld minibatches of %d, %ld rows dropped\n", prog, d->rows,
                d->nbatches, m->batch, d->rows - d->nbatches * m->batch);
    else
        fprintf(stderr, "%s: no --data: training on one random batch (seed %llu)\n", prog,
                (unsigned long long)o->seed);
    return 0;
}

static const char *nonfinite_name(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

static int run(const rt_model *m, const char *prog, const Opts *o, const rt_data *d)
{
    rt_hyper h = m->hyper;
    double ms = 0;
    if (o->has_lr)
        h.lr = o->lr;
    for (long n = 1; n <= o->steps; n++) {
        if (d->n)
            rt_data_load(d, m, n);
        double t0 = rt_now_ms();
        double loss = m->train_step(&h);
        ms += rt_now_ms() - t0;
        if (!isfinite(loss)) {
            fprintf(stderr, "%s: loss is %s at step %ld\n", prog, nonfinite_name(loss), n);
            return 1;
        }
        if (n == 1 || n == o->steps || n % o->print_every == 0)
            printf("step %ld loss %.9g\n", n, loss);
    }
    double final = m->loss_and_grad();
    if (!isfinite(final)) {
        fprintf(stderr, "%s: loss is %s after step %ld\n", prog, nonfinite_name(final), o->steps);
        return 1;
    }
    printf("final loss %.9g  %.4g ms/step\n", final, ms / (double)o->steps);
    fflush(stdout);
    return 0;
}

int rt_train_main(const rt_model *m, int argc, char **argv)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s_train", m->name);
    Opts o = {.steps = 100, .print_every = 10, .threads = 1, .seed = 1};
    o.data = rt_malloc(sizeof *o.data * (size_t)(argc > 0 ? argc : 1));
    rt_args a = {prog, argc, argv, 1};
    rt_data d;
    rt_data_init(&d);
    int rc = parse(&a, &o);
    if (rc == 0 && o.help)
        usage(m, prog);
    if (rc == 0 && !o.help) {
        openblas_set_num_threads((int)o.threads);
        rt_init_params(m, o.seed);
        rc = bind_all(m, prog, &o, &d);
        if (rc == 0 && d.n == 0)
            rt_random_inputs(m, o.seed);
        if (rc == 0)
            rc = run(m, prog, &o, &d);
    }
    rt_data_free(&d);
    free(o.data);
    fflush(stdout);
    return rc;
}
