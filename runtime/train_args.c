/*
 * train_args.c: a trainer's flags: --help, and the options read into Opts,
 * each checked where it is read (a hyperparameter the compiled optimizer
 * does not read is an error that names the compile flag that gives it).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"

static const char *const optimizer_names[] = {"sgd",   "momentum", "nesterov", "adam",
                                              "adamw", "rmsprop",  "newton_cg"};

/* The hyperparameter flags, and which optimizers read each (a bit per
 * rt_optimizer): a flag the compiled optimizer ignores is an error. */
enum {
    ALL = 0x7f,
    MOMENTUMS = 1 << RT_OPT_MOMENTUM | 1 << RT_OPT_NESTEROV,
    ADAMS = 1 << RT_OPT_ADAM | 1 << RT_OPT_ADAMW,
    RMSPROP = 1 << RT_OPT_RMSPROP,
    NEWTON = 1 << RT_OPT_NEWTON_CG
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
    {"--damping", offsetof(rt_hyper, damping), NEWTON},
    {"--cg-iters", offsetof(rt_hyper, cg_iters), NEWTON},
};

const char *optimizer_name(rt_optimizer k)
{
    return k <= RT_OPT_NEWTON_CG ? optimizer_names[k] : "?";
}

/* The optimizers that read a flag, for the message that it does not apply. */
static void kinds_of(char *out, size_t n, unsigned kinds)
{
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k <= RT_OPT_NEWTON_CG; k++)
        if (kinds & 1u << k)
            len += snprintf(out + len, n - len, "%s%s", len ? "/" : "", optimizer_names[k]);
}

/* Prints the usage line's items, wrapped at 80 columns under the first. */
static void usage_line(const char *prog, const char *const *items, int n)
{
    int col = printf("usage: %s", prog), indent = col + 1;
    for (int i = 0; i < n; i++) {
        int len = (int)strlen(items[i]) + 3;
        if (col + len > 80)
            col = printf("\n%*s", indent - 1, "") - 1;
        col += printf(" [%s]", items[i]);
    }
    printf("\n\n");
}

void train_usage(const rt_model *m, const char *prog)
{
    const char *items[40];
    int n_items = 0;
    static const char *const before[] = {"--steps N | --epochs N",
                                         "--minutes M",
                                         "--seed S",
                                         "--init DIR",
                                         "--threads N [--no-calibrate] [-v]",
                                         "--data NAME=FILE...",
                                         "--label-column K",
                                         "--skip-rows N",
                                         "--no-shuffle",
                                         "--val-split F [--val-shuffle] | --val NAME=FILE...",
                                         "--eval-every K",
                                         "--print-every K [--digits D]",
                                         "--log F.csv",
                                         "--checkpoint F [--save-every K]",
                                         "--resume F",
                                         "--export DIR",
                                         "--export-grads DIR",
                                         "--export-hvp DIR --export-jvp DIR --direction DIR"};
    static const char *const after[] = {
        "--schedule S",  "--step-every K", "--gamma G",
        "--min-lr X",    "--warmup N",     "--sample N [--temperature X] [--prompt TEXT]",
        "--tokenizer F", "--help"};
    char hyper[8][32];
    for (size_t k = 0; k < sizeof before / sizeof *before; k++)
        items[n_items++] = before[k];
    for (size_t k = 0, h = 0; k < sizeof hyper_flags / sizeof *hyper_flags; k++)
        if (hyper_flags[k].kinds & 1u << m->optimizer) {
            snprintf(hyper[h], sizeof hyper[h], "%s X", hyper_flags[k].flag);
            items[n_items++] = hyper[h++];
        }
    for (size_t k = 0; k < sizeof after / sizeof *after; k++)
        items[n_items++] = after[k];
    usage_line(prog, items, n_items);

    long n = 0;
    for (int k = 0; k < m->n_params; k++)
        n += m->params[k].size;
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
    printf("parameters: %d tensors, %ld values\n", m->n_params, n);
    printf("\ntraining:\n"
           "  --steps N          optimizer steps (default 100; 0: only the final loss)\n"
           "  --epochs N         or N passes over the --data rows: N x minibatches steps\n"
           "  --minutes M        stop after the step that passes M minutes, then evaluate\n"
           "                     (alone, without --steps or --epochs: train until then)\n"
           "  --seed S           seed for parameters, shuffling and random inputs\n"
           "                     (default 1)\n"
           "  --init DIR         start from DIR/NAME.npy, a file per parameter (as\n"
           "                     --export writes them), not from the seed's values\n"
           "  --threads N        use up to N threads for products and large loops\n"
           "                     (default 1; 0 or auto: one per core the program may\n"
           "                     run on); a product or loop is shared among them only\n"
           "                     from the size at which that was measured to pay here,\n"
           "                     in a few ms at start, and only if the first steps,\n"
           "                     alternately whole and shared, were faster shared\n"
           "  --no-calibrate     skip both: share by sizes that pay when the CPUs are\n"
           "                     near each other\n"
           "  -v, --verbose      say what the measurement found, and how much of the\n"
           "                     first step was shared\n"
           "\ndata:\n"
           "  --data NAME=F      a file for input NAME (.npy, .csv[.gz], IDX), rows >= batch\n"
           "  --label-column K   a CSV's label column, from 1; negative counts from the end,\n"
           "                     none for a file of features only\n"
           "                     (default -1, the last)\n"
           "  --skip-rows N      pass over a CSV's first N lines unread (a title, notes);\n"
           "                     a header line after them is told by its words as always\n"
           "  --no-shuffle       minibatches in file order (default: shuffled each epoch)\n"
           "Each epoch draws a fresh order of the training rows from the seed and the\n"
           "epoch, and cuts it into floor(rows / batch) minibatches; the rows left over\n"
           "at the end of that order (rows mod batch, different ones each epoch)\n"
           "sit the epoch out.\n"
           "\nevaluation:\n"
           "  --val-split F      hold out the last ceil(F x rows) rows of the --data\n"
           "                     files (0 < F < 1) to evaluate on, and train on the others\n"
           "  --val-shuffle      hold out rows drawn at random by the seed, not the last\n"
           "                     (for a file sorted by class)\n"
           "  --val NAME=F       or take the held-out rows from separate files, one per\n"
           "                     input like --data (any rows)\n"
           "  --eval-every K     evaluate every K steps (default: after every epoch)\n"
           "An evaluation prints `eval step N loss L accuracy A`, both over every\n"
           "held-out row: the loss as the model defines it, penalties such as l2\n"
           "included, each minibatch weighed by its rows (the last, partial one too);\n"
           "for a classifier, the fraction of rows whose highest output is the label.\n"
           "\noutput:\n"
           "  --print-every K    print the loss every K steps (default 10)\n"
           "  --digits D         print losses to D significant digits (default 9; 17\n"
           "                     tells two doubles apart)\n"
           "  --log F.csv        a CSV row per evaluation, or per printed step without\n"
           "                     held-out rows: step,epoch,lr,train_loss,val_loss,\n"
           "                     val_accuracy,seconds\n"
           "  --checkpoint F     save parameters and optimizer state to F at the end\n"
           "  --save-every K     and every K steps as well\n"
           "  --resume F         continue from checkpoint F (its step and seed) to --steps\n"
           "                     (or --epochs)\n"
           "  --export DIR       after training, write each parameter to DIR/NAME.npy\n"
           "  --export-grads DIR and the gradient of the final loss (of the last\n"
           "                     batch at the final weights; with --steps 0, the first\n"
           "                     batch's at the starting ones) to DIR/d_NAME.npy\n"
           "  --export-hvp DIR   and H v there, the Hessian of that loss times the\n"
           "  --direction DIR    v in DIR/NAME.npy, to DIR/NAME.npy (gradc build --hvp)\n"
           "  --export-jvp DIR   and J v there, the derivative of each real output along\n"
           "                     v, to DIR/jv_OUTPUT.npy (gradc build --jvp)\n"
           "Ctrl-C saves a checkpoint (to --checkpoint F, else %s.ckpt) after the\n"
           "current step.\n"
           "\noptimizer %s (compiled in; gradc compile --optimizer K picks another):\n",
           m->name, optimizer_name(m->optimizer));
    for (size_t k = 0; k < sizeof hyper_flags / sizeof *hyper_flags; k++)
        if (hyper_flags[k].kinds & 1u << m->optimizer)
            printf("  %-18s (default %g)\n", hyper_flags[k].flag,
                   *(const double *)((const char *)&m->hyper + hyper_flags[k].offset));
    printf("\nlearning rate schedule:\n"
           "  --schedule S       constant, step or cosine (default constant)\n"
           "  --step-every K     step: multiply the rate by --gamma every K steps\n"
           "  --gamma G          step: the factor (default 0.1)\n"
           "  --min-lr X         cosine: the rate it ends at (default 0)\n"
           "  --warmup N         ramp the rate up linearly over the first N steps\n"
           "\ncharacter and token models:\n"
           "  --sample N         after training, print N characters (tokens) it writes\n"
           "  --temperature X    the sampling temperature (default 0.8)\n"
           "  --prompt TEXT      what the sample starts from (default a newline)\n"
           "  --tokenizer F      llm.c's tokenizer file: print a sample's tokens as text\n"
           "With token data (.bin) the sample is token ids, and --prompt takes ids\n"
           "separated by spaces (default: the data's first token).\n");
}

/* --data or --val NAME=FILE: 1 and the argument kept in list, or -1. */
static int parse_binding(const rt_args *a, const char *flag, const char *v, const char **list,
                         int *n)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || eq[1] == '\0') {
        rt_args_error(a, "%s: expected NAME=FILE (.npy, .csv, IDX, .txt or .bin), got '%s'", flag,
                      v);
        return -1;
    }
    list[(*n)++] = v;
    return 1;
}

/* The flags about data and evaluation, as parse_flag's tail. */
static int parse_data_flag(rt_args *a, Opts *o)
{
    const char *v;
    int r;
    if (rt_args_is(a, "--no-shuffle")) {
        o->no_shuffle = 1;
        a->i++;
        return 1;
    }
    if (rt_args_is(a, "--val-shuffle")) {
        o->val_shuffle = 1;
        a->i++;
        return 1;
    }
    if ((r = rt_args_value(a, "--data", &v)) != 0)
        return r < 0 ? -1 : parse_binding(a, "--data", v, o->data, &o->n_data);
    if ((r = rt_args_value(a, "--val", &v)) != 0)
        return r < 0 ? -1 : parse_binding(a, "--val", v, o->val, &o->n_val);
    if ((r = rt_args_value(a, "--epochs", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--epochs", v, &o->epochs) ? -1 : 1;
    if ((r = rt_args_value(a, "--eval-every", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--eval-every", v, &o->eval_every) ? -1 : 1;
    if ((r = rt_args_value(a, "--label-column", &v)) != 0)
        return r < 0 ? -1 : rt_parse_label_column(a, v, &o->csv.label_column) ? -1 : 1;
    if ((r = rt_args_value(a, "--skip-rows", &v)) != 0)
        return r < 0 ? -1 : rt_parse_count(a, "--skip-rows", v, &o->csv.skip_rows) ? -1 : 1;
    if ((r = rt_args_value(a, "--val-split", &v)) != 0) {
        if (r < 0 || rt_parse_double(a, "--val-split", v, &o->val_split))
            return -1;
        if (o->val_split <= 0 || o->val_split >= 1) {
            rt_args_error(a, "--val-split: expected a fraction between 0 and 1, got '%s'", v);
            return -1;
        }
        return 1;
    }
    return 0;
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
    if ((r = rt_args_value(a, "--steps", &v)) != 0) {
        o->steps_given = 1;
        if (r > 0 && *v && strspn(v, "0") == strlen(v)) { /* the starting weights' loss */
            o->steps = 0;
            return 1;
        }
        return r < 0 ? -1 : rt_parse_posint(a, "--steps", v, &o->steps) ? -1 : 1;
    }
    if ((r = rt_args_value(a, "--print-every", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--print-every", v, &o->print_every) ? -1 : 1;
    if ((r = rt_args_value(a, "--digits", &v)) != 0) {
        if (r < 0 || rt_parse_posint(a, "--digits", v, &o->digits))
            return -1;
        if (o->digits > 17) {
            rt_args_error(a, "--digits %s: at most 17 (a double has no more)", v);
            return -1;
        }
        return 1;
    }
    if ((r = rt_args_value(a, "--threads", &v)) != 0)
        return r < 0 ? -1 : rt_parse_threads(a, v, &o->threads) ? -1 : 1;
    if (rt_args_is(a, "--no-calibrate") || rt_args_is(a, "-v") || rt_args_is(a, "--verbose")) {
        *(rt_args_is(a, "--no-calibrate") ? &o->no_calibrate : &o->verbose) = 1;
        a->i++;
        return 1;
    }
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
                      {"--init", offsetof(Opts, init_dir)},
                      {"--export", offsetof(Opts, export_dir)},
                      {"--export-grads", offsetof(Opts, export_grads)},
                      {"--export-hvp", offsetof(Opts, export_hvp)},
                      {"--export-jvp", offsetof(Opts, export_jvp)},
                      {"--direction", offsetof(Opts, direction)},
                      {"--log", offsetof(Opts, log)},
                      {"--tokenizer", offsetof(Opts, tokenizer)}};
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
    if ((r = rt_args_value(a, "--minutes", &v)) != 0)
        return r < 0 ? -1 : rt_parse_double(a, "--minutes", v, &o->minutes) ? -1 : 1;
    if ((r = rt_args_value(a, "--sample", &v)) != 0)
        return r < 0 ? -1 : rt_parse_posint(a, "--sample", v, &o->sample) ? -1 : 1;
    if ((r = rt_args_value(a, "--temperature", &v)) != 0)
        return r < 0 ? -1 : rt_parse_double(a, "--temperature", v, &o->temperature) ? -1 : 1;
    if ((r = rt_args_value(a, "--prompt", &v)) != 0) {
        if (r > 0)
            o->prompt = v;
        return r < 0 ? -1 : 1;
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
    return parse_data_flag(a, o);
}

/* Flags that cannot go together, or need another: why, or NULL. */
static const char *conflict(const Opts *o)
{
    int held_out = o->n_val || o->val_split > 0;
    if (o->init_dir && o->resume)
        return "--init and --resume both give the starting parameters (a checkpoint holds "
               "its own); give one";
    if (o->save_every && !o->checkpoint)
        return "--save-every needs --checkpoint FILE to say where to save";
    if (o->epochs && o->steps_given)
        return "--epochs and --steps both set how long to train; give one";
    if (o->epochs && !o->n_data)
        return "--epochs needs --data: an epoch is one pass over the data files";
    if (o->n_val && o->val_split > 0)
        return "--val and --val-split both give held-out rows; give one";
    if (held_out && !o->n_data)
        return o->n_val ? "--val needs --data to train on" : "--val-split needs --data to split";
    if (o->val_shuffle && o->val_split <= 0)
        return "--val-shuffle needs --val-split F: it says which rows the split holds out";
    if (o->eval_every && !held_out)
        return "--eval-every needs held-out rows: --val-split F or --val NAME=FILE";
    if (o->tokenizer && !o->sample)
        return "--tokenizer needs --sample N: it prints the sample's tokens";
    if (o->direction && !o->export_hvp && !o->export_jvp)
        return "--direction goes with --export-hvp DIR or --export-jvp DIR: it is the v of H v "
               "and J v";
    if ((o->export_hvp || o->export_jvp) && !o->direction)
        return o->export_hvp ? "--export-hvp needs --direction DIR: the v of H v, one file per "
                               "parameter"
                             : "--export-jvp needs --direction DIR: the v of J v, one file per "
                               "parameter";
    return NULL;
}

/* 0, or 2 after a message. --help anywhere wins over later flags. */
int train_parse(const rt_model *m, rt_args *a, Opts *o)
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
    const char *why = o->help ? NULL : conflict(o);
    if (why) {
        rt_args_error(a, "%s", why);
        return 2;
    }
    return 0;
}
