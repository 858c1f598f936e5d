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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

typedef struct {
    long steps, print_every, threads;
    uint64_t seed;
    rt_hyper hyper; /* the model's defaults, then the flags */
    rt_schedule schedule;
    int help;
    int n_data;
    const char **data; /* the NAME=FILE arguments, in order */
} Opts;

static const char *const optimizer_names[] = {"sgd",  "momentum", "nesterov",
                                              "adam", "adamw",    "rmsprop"};

/* The hyperparameter flags, and which optimizers read each (a bit per
 * rt_optimizer): a flag the compiled optimizer ignores is an error. */
enum {
    ALL = 0x3f,
    MOMENTUMS = 1 << RT_OPT_MOMENTUM | 1 << RT_OPT_NESTEROV,
    ADAMS = 1 << RT_OPT_ADAM | 1 << RT_OPT_ADAMW,
    RMSPROP = 1 << RT_OPT_RMSPROP
};
static const struct {
    const char *flag;
    size_t offset;
    unsigned kinds;
} hyper_flags[] = {
    {"--lr", offsetof(rt_hyper, lr), ALL},
    {"--momentum", offsetof(rt_hyper, momentum), MOMENTUMS},
    {"--beta1", offsetof(rt_hyper, beta1), ADAMS},
    {"--beta2", offsetof(rt_hyper, beta2), ADAMS},
    {"--alpha", offsetof(rt_hyper, alpha), RMSPROP},
    {"--eps", offsetof(rt_hyper, eps), ADAMS | RMSPROP},
    {"--weight-decay", offsetof(rt_hyper, weight_decay), ALL},
    {"--clip", offsetof(rt_hyper, clip), ALL},
};

static const char *optimizer_name(rt_optimizer k)
{
    return k <= RT_OPT_RMSPROP ? optimizer_names[k] : "?";
}

/* The optimizers that read a flag, for the message that it does not apply. */
static void kinds_of(char *out, size_t n, unsigned kinds)
{
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k <= RT_OPT_RMSPROP; k++)
        if (kinds & 1u << k)
            len += snprintf(out + len, n - len, "%s%s", len ? "/" : "", optimizer_names[k]);
}

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
    printf("  --steps N          optimizer steps (default 100)\n"
           "  --seed S           seed for parameters and random inputs (default 1)\n"
           "  --data NAME=F      an .npy file for input NAME, [rows, ...] rows >= batch\n"
           "  --print-every K    print the loss every K steps (default 10)\n"
           "  --threads N        BLAS threads (default 1)\n"
           "optimizer %s (fixed when compiled: gradc compile --optimizer K changes it):\n",
           optimizer_name(m->optimizer));
    for (size_t k = 0; k < sizeof hyper_flags / sizeof *hyper_flags; k++)
        if (hyper_flags[k].kinds & 1u << m->optimizer)
            printf("  %-18s (default %g)\n", hyper_flags[k].flag,
                   *(const double *)((const char *)&m->hyper + hyper_flags[k].offset));
    printf("  --schedule S       constant, step or cosine (default constant)\n"
           "  --step-every K     step: multiply the rate by --gamma every K steps\n"
           "  --gamma G          step: the factor (default 0.1)\n"
           "  --min-lr X         cosine: the rate it ends at (default 0)\n"
           "  --warmup N         ramp the rate up linearly over the first N steps\n");
}

/* One flag at a->i: 1 if it was recognized, 0 if not, -1 on a bad value. */
static int parse_flag(const rt_model *m, rt_args *a, Opts *o)
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
    for (size_t k = 0; k < sizeof hyper_flags / sizeof *hyper_flags; k++) {
        const char *flag = hyper_flags[k].flag;
        if ((r = rt_args_value(a, flag, &v)) == 0)
            continue;
        if (r < 0)
            return -1;
        if (!(hyper_flags[k].kinds & 1u << m->optimizer)) {
            char kinds[80];
            kinds_of(kinds, sizeof kinds, hyper_flags[k].kinds);
            rt_args_error(a,
                          "%s is a setting of %s, and this model was compiled with %s "
                          "(gradc compile --optimizer K chooses another)",
                          flag, kinds, optimizer_name(m->optimizer));
            return -1;
        }
        return rt_parse_double(a, flag, v, (double *)((char *)&o->hyper + hyper_flags[k].offset))
                   ? -1
                   : 1;
    }
    if ((r = rt_args_value(a, "--optimizer", &v)) != 0) {
        if (r < 0)
            return -1;
        if (strcmp(v, optimizer_name(m->optimizer))) {
            rt_args_error(a,
                          "--optimizer %s: this model was compiled with %s; the optimizer is "
                          "fixed when compiling: gradc compile MODEL.lua --optimizer %s",
                          v, optimizer_name(m->optimizer), v);
            return -1;
        }
        return 1;
    }
    if ((r = rt_args_value(a, "--schedule", &v)) != 0) {
        if (r < 0)
            return -1;
        if (rt_schedule_parse(&o->schedule, v)) {
            rt_args_error(a, "--schedule: expected constant, step or cosine, got '%s'", v);
            return -1;
        }
        return 1;
    }
    if ((r = rt_args_value(a, "--step-every", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--step-every", v, &o->schedule.every) ? -1 : 1;
    if ((r = rt_args_value(a, "--warmup", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--warmup", v, &o->schedule.warmup) ? -1 : 1;
    if ((r = rt_args_value(a, "--gamma", &v)) != 0)
        return r < 0 ? -1 : rt_parse_double(a, "--gamma", v, &o->schedule.gamma) ? -1 : 1;
    if ((r = rt_args_value(a, "--min-lr", &v)) != 0)
        return r < 0 ? -1 : rt_parse_double(a, "--min-lr", v, &o->schedule.min_lr) ? -1 : 1;
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
static int parse(const rt_model *m, rt_args *a, Opts *o)
{
    while (a->i < a->argc && !o->help) {
        int r = parse_flag(m, a, o);
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
    rt_hyper h = o->hyper;
    double ms = 0;
    for (long n = 1; n <= o->steps; n++) {
        if (d->n)
            rt_data_load(d, m, n);
        h.step = n;
        h.lr = rt_lr_at(&o->schedule, o->hyper.lr, n, o->steps);
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
    Opts o = {.steps = 100,
              .print_every = 10,
              .threads = 1,
              .seed = 1,
              .hyper = m->hyper,
              .schedule = {.gamma = 0.1}};
    o.data = rt_malloc(sizeof *o.data * (size_t)(argc > 0 ? argc : 1));
    rt_args a = {prog, argc, argv, 1};
    rt_data d;
    rt_data_init(&d);
    int rc = parse(m, &a, &o);
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
