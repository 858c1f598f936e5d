/*
 * train.c: rt_train_main, the whole of every NAME_train program.
 *
 * Parse flags, initialize parameters from the seed (or load them and the
 * optimizer state from --resume), bind --data files (or draw one random
 * batch to reuse), then call the model's train_step once per step. Only the
 * `step <n> loss <v>` and `final loss` lines go to stdout, so a script can
 * parse them; everything else goes to stderr. The timing covers train_step
 * alone: binding, printing and saving are not the model's cost.
 *
 * A resumed run prints the same lines, bit for bit, as one that never
 * stopped: everything a step reads is the checkpoint (parameters, optimizer
 * state), a function of the step (the minibatch, the rate, Adam's bias
 * correction) or of the seed the checkpoint carries (random inputs). So a
 * run stops only between steps: Ctrl-C sets a flag the loop reads after a
 * step, and a checkpoint never holds a parameter that is not finite.
 */
#include <cblas.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

typedef struct {
    long steps, print_every, threads, save_every;
    uint64_t seed;
    int seed_given;
    const char *checkpoint, *resume, *export_dir;
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
           "       [--print-every K] [--threads N] [--checkpoint F [--save-every K]]\n"
           "       [--resume F] [--export DIR]\n\n",
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
           "  --checkpoint F     save parameters and optimizer state to F at the end\n"
           "  --save-every K     and every K steps as well\n"
           "  --resume F         continue from checkpoint F (its step and seed) to --steps\n"
           "  --export DIR       after training, write each parameter to DIR/NAME.npy\n"
           "Ctrl-C saves a checkpoint (to --checkpoint F, else %s.ckpt) after the current step.\n"
           "optimizer %s (fixed when compiled: gradc compile --optimizer K changes it):\n",
           m->name, optimizer_name(m->optimizer));
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
    if ((r = rt_args_value(a, "--seed", &v)) != 0) {
        o->seed_given = 1;
        return r < 0 ? -1 : rt_parse_u64(a, "--seed", v, &o->seed) ? -1 : 1;
    }
    if ((r = rt_args_value(a, "--save-every", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--save-every", v, &o->save_every) ? -1 : 1;
    static const struct {
        const char *flag;
        size_t offset;
    } path_flags[] = {{"--checkpoint", offsetof(Opts, checkpoint)},
                      {"--resume", offsetof(Opts, resume)},
                      {"--export", offsetof(Opts, export_dir)}};
    for (size_t k = 0; k < sizeof path_flags / sizeof *path_flags; k++) {
        if ((r = rt_args_value(a, path_flags[k].flag, &v)) == 0)
            continue;
        if (r > 0 && *v == '\0') {
            rt_args_error(a, "%s: expected a path, got ''", path_flags[k].flag);
            r = -1;
        }
        if (r > 0)
            *(const char **)((char *)o + path_flags[k].offset) = v;
        return r;
    }
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
    if (!o->help && o->save_every && !o->checkpoint) {
        rt_args_error(a, "--save-every needs --checkpoint FILE to say where to save");
        return 2;
    }
    return 0;
}

/* Loads every --data file; 0, or 1 after a message. */
static int bind_all(const rt_model *m, const char *prog, const Opts *o, uint64_t seed, rt_data *d)
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
                (unsigned long long)seed);
    return 0;
}

static const char *nonfinite_name(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

/* One run: where it started, and the last checkpoint known to be good. */
typedef struct {
    const rt_model *m;
    const char *prog;
    const Opts *o;
    uint64_t seed;    /* --seed, or the resumed checkpoint's */
    long start;       /* steps done before this run: 0, or the checkpoint's */
    const char *good; /* the last checkpoint saved or resumed from, or NULL */
    long good_step;
    long saved_at;      /* the step this run last saved at, or -1 */
    char fallback[300]; /* NAME.ckpt, where Ctrl-C saves without --checkpoint */
} Trainer;

/* The handler only records the signal; the loop acts between steps.
 * SA_RESETHAND makes a second Ctrl-C kill at once, for a step that never
 * ends; the last checkpoint stays whole, since saving renames. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

typedef struct {
    struct sigaction intr, term;
} Handlers;

static void catch_stops(Handlers *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    if (sigaction(SIGINT, &sa, &old->intr) != 0 || sigaction(SIGTERM, &sa, &old->term) != 0)
        rt_die("sigaction failed");
}

/* A caller that runs the trainer twice (the tests) gets its handlers back. */
static void restore_stops(const Handlers *old)
{
    if (sigaction(SIGINT, &old->intr, NULL) != 0 || sigaction(SIGTERM, &old->term, NULL) != 0)
        rt_die("sigaction failed");
}

/* The first parameter value that is not finite, or 0 if all are. */
static double first_nonfinite_param(const rt_model *m)
{
    for (long i = 0; i < m->n_param_elems; i++) {
        double v = m->real == RT_F64 ? ((const double *)m->arena)[m->params_offset + i]
                                     : ((const float *)m->arena)[m->params_offset + i];
        if (!isfinite(v))
            return v;
    }
    return 0;
}

/* "PROG: WHAT; last good checkpoint: F (step k)", the end of a run that
 * diverged, naming where to go back to. */
static void diverged(const Trainer *t, const char *what)
{
    if (t->good)
        fprintf(stderr, "%s: %s; last good checkpoint: %s (step %ld)\n", t->prog, what, t->good,
                t->good_step);
    else
        fprintf(stderr, "%s: %s; no checkpoint was saved\n", t->prog, what);
}

/* 0, or 1 after a message. Parameters that are no longer finite are never
 * saved: they would overwrite the last good checkpoint with a dead one. */
static int save(Trainer *t, const char *path, long step)
{
    char err[1024];
    double bad = first_nonfinite_param(t->m);
    if (bad != 0) {
        snprintf(err, sizeof err, "a parameter is %s after step %ld", nonfinite_name(bad), step);
        diverged(t, err);
        return 1;
    }
    if (rt_checkpoint_save(t->m, path, step, t->seed, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", t->prog, err);
        return 1;
    }
    t->good = path;
    t->good_step = step;
    t->saved_at = step;
    return 0;
}

/* Ctrl-C or SIGTERM after step n: save, say how to go on, exit 130 as a
 * shell does for an interrupted command. */
static int interrupted(Trainer *t, long n)
{
    const char *path = t->o->checkpoint ? t->o->checkpoint : t->fallback;
    if (t->saved_at != n && save(t, path, n)) {
        fprintf(stderr, "%s: interrupted at step %ld; no checkpoint saved\n", t->prog, n);
        return 130;
    }
    fprintf(stderr, "%s: interrupted at step %ld; saved %s; resume with --resume %s\n", t->prog, n,
            path, path);
    return 130;
}

static int run(Trainer *t, const rt_data *d)
{
    const rt_model *m = t->m;
    const Opts *o = t->o;
    rt_hyper h = o->hyper;
    char what[160];
    double ms = 0;
    for (long n = t->start + 1; n <= o->steps; n++) {
        if (d->n)
            rt_data_load(d, m, n);
        h.step = n;
        h.lr = rt_lr_at(&o->schedule, o->hyper.lr, n, o->steps);
        double t0 = rt_now_ms();
        double loss = m->train_step(&h);
        ms += rt_now_ms() - t0;
        if (!isfinite(loss)) {
            snprintf(what, sizeof what, "loss is %s at step %ld", nonfinite_name(loss), n);
            diverged(t, what);
            return 1;
        }
        if (n == 1 || n == o->steps || n % o->print_every == 0)
            printf("step %ld loss %.9g\n", n, loss);
        /* The last step's save waits for the final loss below. */
        if (o->save_every && n % o->save_every == 0 && n != o->steps && save(t, o->checkpoint, n))
            return 1;
        if (stop_signal)
            return interrupted(t, n);
    }
    double final = m->loss_and_grad();
    if (!isfinite(final)) {
        snprintf(what, sizeof what, "loss is %s after step %ld", nonfinite_name(final), o->steps);
        diverged(t, what);
        return 1;
    }
    printf("final loss %.9g  %.4g ms/step\n", final, ms / (double)(o->steps - t->start));
    fflush(stdout);
    return o->checkpoint ? save(t, o->checkpoint, o->steps) : 0;
}

/* Parameters from the seed and the optimizer at rest, or both from
 * --resume; 0, or 1 after a message. */
static int begin(Trainer *t)
{
    const rt_model *m = t->m;
    const Opts *o = t->o;
    int width = m->real == RT_F64 ? 8 : 4;
    rt_init_params(m, o->seed);
    /* Zeroed here, not left to the arena's static initializer, so a second
     * run in one process (the tests) starts from rest too. */
    memset((char *)m->arena + m->state_offset * width, 0, (size_t)(m->n_state * width));
    if (!o->resume)
        return 0;
    char err[1024];
    uint64_t seed;
    if (rt_checkpoint_load(m, o->resume, &t->start, &seed, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", t->prog, err);
        return 1;
    }
    if (o->seed_given && seed != o->seed)
        fprintf(stderr, "%s: using the checkpoint's seed %llu, not --seed %llu\n", t->prog,
                (unsigned long long)seed, (unsigned long long)o->seed);
    t->seed = seed;
    t->good = o->resume;
    t->good_step = t->start;
    fprintf(stderr, "%s: resumed from %s at step %ld\n", t->prog, o->resume, t->start);
    return 0;
}

/* Binds the data and trains from t->start; 0, 1 or 130. */
static int train(Trainer *t, rt_data *d)
{
    if (t->start >= t->o->steps) {
        fprintf(stderr,
                "%s: %s is at step %ld, and --steps is %ld: nothing to train (a larger "
                "--steps trains on)\n",
                t->prog, t->o->resume, t->start, t->o->steps);
        return 0;
    }
    int rc = bind_all(t->m, t->prog, t->o, t->seed, d);
    if (rc)
        return rc;
    if (d->n == 0)
        rt_random_inputs(t->m, t->seed);
    Handlers old;
    catch_stops(&old);
    rc = run(t, d);
    restore_stops(&old);
    return rc;
}

static int export_params(const Trainer *t)
{
    char err[1024];
    if (rt_export_params(t->m, t->o->export_dir, err, sizeof err)) {
        fprintf(stderr, "%s: --export: %s\n", t->prog, err);
        return 1;
    }
    fprintf(stderr, "%s: wrote %d parameters to %s/\n", t->prog, t->m->n_params, t->o->export_dir);
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
        Trainer t = {.m = m, .prog = prog, .o = &o, .seed = o.seed, .saved_at = -1};
        snprintf(t.fallback, sizeof t.fallback, "%s.ckpt", m->name);
        openblas_set_num_threads((int)o.threads);
        rc = begin(&t);
        if (rc == 0)
            rc = train(&t, &d);
        if (rc == 0 && o.export_dir)
            rc = export_params(&t);
    }
    rt_data_free(&d);
    free(o.data);
    fflush(stdout);
    return rc;
}
