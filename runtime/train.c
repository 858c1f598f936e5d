/*
 * train.c: rt_train_main, the whole of every NAME_train program.
 *
 * Parse flags, initialize parameters from the seed or from --init's .npy
 * files (or load them and the optimizer state from --resume), bind --data
 * files (or draw one random batch to reuse) and the held-out rows, then
 * call the model's train_step once per step, evaluating every --eval-every
 * steps. Only the `step <n> loss <v>`, `eval step <n> ...` and `final
 * loss` lines go to stdout, so a script can parse them; everything else
 * goes to stderr, with a progress bar when stderr is a terminal. The
 * timing covers train_step alone: binding, evaluating, printing and saving
 * are not the model's cost.
 *
 * A resumed run prints the same lines, bit for bit, as one that never
 * stopped: everything a step reads is the checkpoint (parameters, optimizer
 * state), a function of the step (the rate, Adam's bias correction), of
 * the seed the checkpoint carries (random inputs) or of both (the shuffled
 * minibatch; bind.c). An evaluation reads the parameters and writes no
 * state a step reads. So a run stops only between steps: Ctrl-C sets a
 * flag the loop reads after a step, and a checkpoint never holds a
 * parameter that is not finite.
 */
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "train.h"

static const char *nonfinite_name(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

/* A score on the held-out rows; a loss unless there are none. */
typedef struct {
    int has_loss, has_accuracy;
    double loss, accuracy;
} Score;

/* --sample's model, prompt and printing. */
typedef struct {
    const rt_tensor *ids, *logits; /* NULL: not a character or token model */
    int tokens;                    /* ids reads an llm.c token file: print ids, not bytes */
    rt_tokenizer tokenizer;        /* --tokenizer's table, or vocab 0 */
    int32_t *prompt;
    long n_prompt;
} Sample;

/* One run: where it started, and the last checkpoint known to be good. */
typedef struct {
    const rt_model *m;
    const char *prog;
    const Opts *o;
    const rt_comm *comm; /* the processes training together */
    int lead;            /* process 0, which alone prints, logs and saves */
    uint64_t seed;       /* --seed, or the resumed checkpoint's */
    long start;          /* steps done before this run: 0, or the checkpoint's */
    long epoch, row;     /* the next minibatch: rows row... of epoch's order */
    long saved_batch;    /* the rows a step of the resumed run took (0: not known) */
    long steps;          /* where it ends: --steps, or --epochs times the minibatches */
    const char *good;    /* the last checkpoint saved or resumed from, or NULL */
    long good_step;
    long saved_at;      /* the step this run last saved at, or -1 */
    char fallback[300]; /* NAME.ckpt, where Ctrl-C saves without --checkpoint */
    rt_data *d, *val;   /* val->n is 0 without held-out rows */
    long eval_every;    /* 0: never */
    /* A classifier's output [batch, C] and its labels in [0, C), or NULL. */
    const rt_tensor *scores, *labels;
    FILE *log;
    double waited;   /* ms the last step waited for the gradients' sums */
    double loss_sum; /* the training losses since the last log row */
    long loss_n;
    double t0; /* ms, when the run began */
    Progress bar;
    int graded;   /* the final loss_and_grad() ran: its gradients are in place */
    double final; /* and its loss */
    Sample sample;
    void *direction; /* --direction's v, read before training */
} Trainer;

/* The rows one step takes: every process's batch. */
static long global_batch(const Trainer *t) { return (long)t->m->batch * t->comm->size; }

/* A message of the run's own on stderr, process 0's alone: the others
 * would say the same. Errors are every process's. */
static void note(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(Trainer *t, const char *fmt, ...)
{
    va_list ap;
    if (!t->lead)
        return;
    bar_clear(&t->bar);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* rc, or 1 where it is 0 but another process failed: a run goes on only
 * where every process can, and process 0 says so for the others. */
static int agreed(Trainer *t, int rc)
{
    if (t->comm->size == 1)
        return rc;
    double failed = rc != 0;
    t->comm->sum(&failed, 1);
    if (failed > 0 && rc == 0)
        note(t, "%s: %g of the %d processes failed (said above); stopping\n", t->prog, failed,
             t->comm->size);
    return rc ? rc : failed > 0;
}

/* A classifier has an output [batch, C] and an int32 input of one label
 * per row with classes == C: accuracy is then defined. */
static void find_classifier(Trainer *t)
{
    const rt_model *m = t->m;
    for (int i = 0; i < m->n_outputs; i++) {
        const rt_tensor *o = &m->outputs[i];
        if (o->rank != 2 || o->shape[0] != m->batch || o->shape[1] < 1)
            continue;
        for (int k = 0; k < m->n_inputs; k++) {
            const rt_tensor *in = &m->inputs[k];
            if (in->dtype == RT_I32 && in->classes == o->shape[1] && in->size == m->batch) {
                t->scores = o;
                t->labels = in;
                return;
            }
        }
    }
}

/* The last rows of a file sorted by class are one class: validating on
 * them would mislead, so it is said. */
static void warn_one_class(Trainer *t)
{
    const rt_data *v = t->val;
    if (!t->labels || t->o->val_shuffle || t->o->val_split <= 0)
        return;
    for (int k = 0; k < v->n; k++) {
        const rt_array *a = &v->b[k].arr;
        const int32_t *y = a->data;
        if (v->b[k].input != t->labels || a->size < 2)
            continue;
        long i = 1;
        while (i < a->size && y[i] == y[0])
            i++;
        if (i == a->size)
            note(t,
                 "%s: warning: the %ld rows --val-split holds out (the last) are all of "
                 "class %d: is the file sorted? --val-shuffle draws them at random\n",
                 t->prog, v->rows, (int)y[0]);
    }
}

/* Loads --data (and --val) NAME=FILE arguments into d; 0, or -1 with err. */
static int bind_list(const rt_model *m, rt_data *d, int n, const char **args, char *err,
                     size_t errlen)
{
    for (int k = 0; k < n; k++) {
        const char *eq = strchr(args[k], '=');
        size_t len = (size_t)(eq - args[k]);
        char *name = rt_malloc(len + 1); /* callers may pass string literals */
        memcpy(name, args[k], len);
        name[len] = '\0';
        int rc = rt_data_bind(d, m, name, eq + 1, err, errlen);
        free(name);
        if (rc)
            return -1;
    }
    return rt_data_finish(d, m, err, errlen);
}

/* What the run will train and evaluate on, said on stderr. */
static void describe_data(Trainer *t)
{
    const rt_data *d = t->d, *v = t->val;
    int batch = t->m->batch;
    if (!d->n) {
        note(t, "%s: no --data: training on one random batch (seed %llu)\n", t->prog,
             (unsigned long long)t->seed);
        return;
    }
    long global = (long)batch * d->ranks;
    note(t, "%s: %ld training rows: %ld minibatches of %ld an epoch, %s, %ld rows left out\n",
         t->prog, d->rows, d->nbatches, global,
         d->shuffle ? "shuffled each epoch" : "in file order", d->rows - d->nbatches * global);
    if (v->n)
        note(t, "%s: %ld held-out rows (%s): loss%s over every row\n", t->prog, v->rows,
             t->o->n_val         ? "--val"
             : t->o->val_shuffle ? "drawn from the --data files by the seed"
                                 : "the last of the --data files",
             t->scores ? " and accuracy" : "");
}

/* Loads the training and held-out rows; 0, or 1 after a message. */
static int bind_all(Trainer *t)
{
    const rt_model *m = t->m;
    const Opts *o = t->o;
    rt_data *d = t->d, *v = t->val;
    char err[1024];
    d->csv = v->csv = o->csv;
    d->rank = t->comm->rank;
    d->ranks = t->comm->size;
    v->flag = "--val";
    v->min_rows = 1; /* the partial batch is evaluated too */
    if (bind_list(m, d, o->n_data, o->data, err, sizeof err) ||
        bind_list(m, v, o->n_val, o->val, err, sizeof err) ||
        (o->val_split > 0 &&
         rt_data_split(d, v, m, o->val_split, o->val_shuffle, t->seed, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", t->prog, err);
        return 1;
    }
    if (d->n && d->nbatches == 0) { /* fewer rows than the processes' batches together */
        fprintf(stderr,
                "%s: --data: %ld rows, fewer than the %ld a step takes (%d processes of %d)\n",
                t->prog, d->rows, global_batch(t), t->comm->size, t->m->batch);
        return 1;
    }
    d->shuffle = !o->no_shuffle;
    d->seed = t->seed;
    if (v->n)
        find_classifier(t);
    warn_one_class(t);
    t->eval_every = o->eval_every ? o->eval_every : v->n ? d->nbatches : 0;
    return 0;
}

/* Rows 0..n-1 whose highest output (the first, on a tie) is at the label. */
static long count_right(const rt_model *m, const rt_tensor *scores, const rt_tensor *labels, long n)
{
    long c = scores->shape[1], right = 0;
    for (long r = 0; r < n; r++) {
        long best = 0;
        for (long k = 1; k < c; k++)
            if (rt_get(m, scores, r * c + k) > rt_get(m, scores, r * c + best))
                best = k;
        right += best == (long)rt_get(m, labels, r);
    }
    return right;
}

/* The loss a batch of the r rows from first would score: a batch of
 * them, padded with copies of row first (a), less a batch of a alone.
 * In evaluation mode a row's loss does not depend on the other rows of
 * its batch (dropout is off, batch norm takes its running averages), so
 * the two differ by what the r rows add over r copies of a; scaled by
 * batch / r it is what a batch of rows like them adds, and the terms of
 * no row (an l2 penalty) stay in once, as in a full batch. */
static double partial_batch_loss(const rt_model *m, const rt_data *v, long first, long r)
{
    rt_data_load_padded(v, m, first, r);
    double padded = m->loss();
    rt_data_load_padded(v, m, first, 1);
    double alone = m->loss();
    return alone + (double)m->batch / (double)r * (padded - alone);
}

/* The loss and the accuracy over every held-out row, in file order,
 * in evaluation mode; the loss is each batch's weighed by its rows. They
 * overwrite the inputs: harmless, since the next step loads its
 * minibatch first. */
static Score score(const Trainer *t)
{
    const rt_model *m = t->m;
    const rt_data *v = t->val;
    Score s = {.has_loss = v->rows > 0, .has_accuracy = t->scores != NULL};
    /* Batch j is process j mod P's; the sums are then everyone's. */
    const int P = t->comm->size, r = t->comm->rank;
    double sum[2] = {0, 0}; /* the loss times the rows, the rows right */
    for (long j = r; j < v->nbatches; j += P) {
        rt_data_load_rows(v, m, j * m->batch, m->batch);
        sum[0] += m->loss() * m->batch;
    }
    long rest = v->rows - v->nbatches * m->batch;
    if (rest > 0 && v->nbatches % P == r)
        sum[0] += partial_batch_loss(m, v, v->nbatches * m->batch, rest) * (double)rest;
    for (long first = r * (long)m->batch; s.has_accuracy && first < v->rows;
         first += (long)P * m->batch) {
        long n = v->rows - first < m->batch ? v->rows - first : m->batch;
        rt_data_load_rows(v, m, first, n);
        m->forward((int)n);
        sum[1] += (double)count_right(m, t->scores, t->labels, n);
    }
    if (P > 1)
        t->comm->sum(sum, 2);
    s.loss = s.has_loss ? sum[0] / (double)v->rows : NAN;
    s.accuracy = sum[1] / (double)v->rows;
    return s;
}

/* A result line on stdout, the bar cleared first; flushed while the bar is
 * on, so the two streams never interleave on a shared terminal. */
static void say(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Trainer *t, const char *fmt, ...)
{
    va_list ap;
    bar_clear(&t->bar);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (t->bar.on)
        fflush(stdout);
}

static int open_log(Trainer *t)
{
    t->log = fopen(t->o->log, "w");
    if (!t->log) {
        fprintf(stderr, "%s: --log %s: cannot create it: %s\n", t->prog, t->o->log,
                strerror(errno));
        return 1;
    }
    fputs("step,epoch,lr,train_loss,val_loss,val_accuracy,seconds\n", t->log);
    fflush(t->log);
    return 0;
}

/* One row of --log; s is NULL without held-out rows. Flushed, so a run
 * that dies keeps its rows and a plot can follow a run still going. */
static void log_row(Trainer *t, long n, const Score *s)
{
    FILE *f = t->log;
    if (!f)
        return;
    fprintf(f, "%ld,", n);
    if (t->d->n)
        fprintf(f, "%.9g", (double)n / (double)t->d->nbatches);
    fprintf(f, ",%.9g,", rt_lr_at(&t->o->schedule, t->o->hyper.lr, n, t->steps));
    if (t->loss_n)
        fprintf(f, "%.9g", t->loss_sum / (double)t->loss_n);
    fputc(',', f);
    if (s && s->has_loss)
        fprintf(f, "%.9g", s->loss);
    fputc(',', f);
    if (s && s->has_accuracy)
        fprintf(f, "%.9g", s->accuracy);
    fprintf(f, ",%.3f\n", (rt_now_ms() - t->t0) / 1000);
    t->loss_sum = 0;
    t->loss_n = 0;
    if (fflush(f) != 0 || ferror(f)) {
        bar_clear(&t->bar);
        fprintf(stderr, "%s: --log %s: cannot write: %s; training goes on without it\n", t->prog,
                t->o->log, strerror(errno));
        fclose(f);
        t->log = NULL;
    }
}

static void evaluate(Trainer *t, long n)
{
    Score s = score(t);
    char loss[64] = "", acc[64] = "";
    if (s.has_loss)
        snprintf(loss, sizeof loss, " loss %.*g", (int)t->o->digits, s.loss);
    if (s.has_accuracy)
        snprintf(acc, sizeof acc, " accuracy %.9g", s.accuracy);
    say(t, "eval step %ld%s%s\n", n, loss, acc);
    log_row(t, n, &s);
}

/* The handler only records the signal; the loop acts between steps.
 * SA_RESETHAND makes a second Ctrl-C kill at once, for a step that never
 * ends; the last checkpoint stays whole, since saving renames. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

/* On many processes mpirun ends a job, when one of its processes ended or
 * it was itself interrupted, by SIGTERM to each of the others and SIGKILL
 * a few seconds later: a process waiting on a dead one would never reach
 * the end of its step, so it ends at once, process 0 saying where to
 * resume (said_at_term[said], kept up to date by save: it writes the
 * other one, then flips said, so the handler never reads half a line). */
static char said_at_term[2][600];
static volatile sig_atomic_t said;

static void on_term_together(int sig)
{
    (void)sig;
    const char *line = said_at_term[said];
    ssize_t wrote = write(STDERR_FILENO, line, strlen(line));
    (void)wrote; /* nothing more to do if it fails */
    _exit(143);
}

/* What process 0 says if mpirun ends the run now. */
static void set_said_at_term(const Trainer *t)
{
    char *line = said_at_term[!said];
    if (!t->lead)
        line[0] = 0;
    else if (t->good)
        snprintf(line, sizeof said_at_term[0],
                 "%s: stopped by mpirun (a process ended, or it was interrupted); resume from "
                 "%s (step %ld)\n",
                 t->prog, t->good, t->good_step);
    else
        snprintf(line, sizeof said_at_term[0],
                 "%s: stopped by mpirun (a process ended, or it was interrupted); no checkpoint "
                 "was saved\n",
                 t->prog);
    said = !said;
}

typedef struct {
    struct sigaction intr, term;
} Handlers;

static void catch_stops(const Trainer *t, Handlers *old)
{
    struct sigaction sa, term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    term = sa;
    if (t->comm->size > 1) {
        set_said_at_term(t);
        term.sa_handler = on_term_together;
    }
    stop_signal = 0;
    if (sigaction(SIGINT, &sa, &old->intr) != 0 || sigaction(SIGTERM, &term, &old->term) != 0)
        rt_die("sigaction failed");
}

/* A caller that runs the trainer twice (the tests) gets its handlers back. */
static void restore_stops(const Handlers *old)
{
    if (sigaction(SIGINT, &old->intr, NULL) != 0 || sigaction(SIGTERM, &old->term, NULL) != 0)
        rt_die("sigaction failed");
}

/* The first parameter (or buffer) value that is not finite, or 0 if all are. */
static double first_nonfinite_param(const rt_model *m)
{
    for (long i = 0; i < rt_saved_elems(m); i++) {
        double v = m->real == RT_F64 ? ((const double *)m->arena)[m->params_offset + i]
                                     : ((const float *)m->arena)[m->params_offset + i];
        if (!isfinite(v))
            return v;
    }
    return 0;
}

/* "PROG: WHAT; last good checkpoint: F (step k)", the end of a run that
 * diverged, naming where to go back to. */
static void diverged(Trainer *t, const char *what)
{
    bar_clear(&t->bar);
    if (t->good)
        note(t, "%s: %s; last good checkpoint: %s (step %ld)\n", t->prog, what, t->good,
             t->good_step);
    else
        note(t, "%s: %s; no checkpoint was saved\n", t->prog, what);
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
    const rt_progress at = {
        .step = step, .seed = t->seed, .epoch = t->epoch, .row = t->row, .batch = global_batch(t)};
    if (t->lead && rt_checkpoint_save_progress(t->m, path, &at, err, sizeof err)) {
        bar_clear(&t->bar);
        fprintf(stderr, "%s: %s\n", t->prog, err);
        return 1;
    }
    t->good = path;
    t->good_step = step;
    t->saved_at = step;
    if (t->comm->size > 1)
        set_said_at_term(t);
    return 0;
}

/* Ctrl-C or SIGTERM after step n: save, say how to go on, exit 130 as a
 * shell does for an interrupted command. */
static int interrupted(Trainer *t, long n)
{
    const char *path = t->o->checkpoint ? t->o->checkpoint : t->fallback;
    bar_clear(&t->bar);
    if (t->saved_at != n && save(t, path, n)) {
        note(t, "%s: interrupted at step %ld; no checkpoint saved\n", t->prog, n);
        return 130;
    }
    note(t, "%s: interrupted at step %ld; saved %s; resume with --resume %s\n", t->prog, n, path,
         path);
    return 130;
}

/* The stdout line of a step, and without held-out rows the log row. */
static void report_step(Trainer *t, long n, double loss)
{
    t->loss_sum += loss;
    t->loss_n++;
    if (n == 1 || n == t->steps || n % t->o->print_every == 0) {
        say(t, "step %ld loss %.*g\n", n, (int)t->o->digits, loss);
        if (!t->val->n)
            log_row(t, n, NULL);
    }
}

/* ---- sampling from a character or token model ---- */

/* A character model: an int32 input [batch, T] of byte ids, and an output
 * [batch, T, V] of the next byte's logits at each position. A token model
 * is the same over token ids. */
static int find_char_model(const rt_model *m, const rt_tensor **ids, const rt_tensor **logits)
{
    *ids = *logits = NULL;
    for (int k = 0; k < m->n_inputs && !*ids; k++)
        if (m->inputs[k].dtype == RT_I32 && m->inputs[k].rank == 2 && m->inputs[k].classes > 0)
            *ids = &m->inputs[k];
    for (int k = 0; *ids && k < m->n_outputs && !*logits; k++) {
        const rt_tensor *o = &m->outputs[k];
        if (o->rank == 3 && o->shape[1] == (*ids)->shape[1] && o->shape[2] == (*ids)->classes)
            *logits = o;
    }
    return *logits != NULL;
}

/* The binding of input t, or NULL (random data). */
static const rt_binding *binding_of(const rt_data *d, const rt_tensor *t)
{
    for (int k = 0; k < d->n; k++)
        if (d->b[k].input == t)
            return &d->b[k];
    return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* --prompt as token ids, into t->sample.prompt: 0, or -1 after naming the
 * first that is not an id in [0, V). */
static int parse_prompt_ids(Trainer *t, long V)
{
    Sample *s = &t->sample;
    for (const char *p = t->o->prompt; *p;) {
        if (*p == ' ' || *p == ',') {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= V || (*end && *end != ' ' && *end != ',')) {
            fprintf(stderr,
                    "%s: --prompt: '%.*s' is not a token id in [0, %ld): with token data "
                    "(.bin) the prompt is token ids, separated by spaces\n",
                    t->prog, (int)strcspn(p, " ,"), p, V);
            return -1;
        }
        s->prompt[s->n_prompt++] = (int32_t)v;
        p = end;
    }
    return 0;
}

/* What --sample needs, made before the first step so that a bad
 * --tokenizer or --prompt costs no training: 0, 1 (a bad file) or 2 (a bad
 * flag). A model that cannot sample is told so after training, as ever. */
static int prepare_sample(Trainer *t)
{
    Sample *s = &t->sample;
    const Opts *o = t->o;
    char err[1024];
    if (o->tokenizer && rt_tokenizer_read(o->tokenizer, &s->tokenizer, err, sizeof err)) {
        fprintf(stderr, "%s: --tokenizer: %s\n", t->prog, err);
        return 1;
    }
    if (!find_char_model(t->m, &s->ids, &s->logits))
        return 0;
    long V = s->logits->shape[2];
    const rt_binding *b = binding_of(t->d, s->ids);
    s->tokens = b && (ends_with(b->path, ".bin") || ends_with(b->path, ".bin:next"));
    /* A byte or an id per character at most. */
    s->prompt = rt_malloc(((o->prompt ? strlen(o->prompt) : 0) + 1) * sizeof *s->prompt);
    if (s->tokens && o->prompt && parse_prompt_ids(t, V))
        return 2;
    for (const char *c = o->prompt ? o->prompt : "\n"; !s->tokens && *c; c++)
        if ((unsigned char)*c < V)
            s->prompt[s->n_prompt++] = (unsigned char)*c;
    /* llm.c's files start every document with its end-of-text token. */
    if (s->n_prompt == 0)
        s->prompt[s->n_prompt++] = s->tokens ? ((const int32_t *)b->arr.data)[0] : '\n';
    return 0;
}

/* One token of the sample: its bytes through --tokenizer, its id after a
 * space for token data without one, else the byte it is. */
static void print_token(const Sample *s, int32_t id, int first)
{
    size_t len;
    const unsigned char *bytes = rt_tokenizer_token(&s->tokenizer, id, &len);
    if (s->tokenizer.vocab && bytes)
        fwrite(bytes, 1, len, stdout);
    else if (s->tokenizer.vocab) /* a model with more ids than the tokenizer has */
        printf("<%d>", (int)id);
    else if (s->tokens)
        printf("%s%d", first ? "" : " ", (int)id);
    else
        putchar((int)id);
}

/* Prints --sample N tokens, each drawn from the model's next-token
 * distribution (sharpened or flattened by --temperature) given the last T
 * tokens of the prompt and what came so far. */
static void sample_text(Trainer *t)
{
    const rt_model *m = t->m;
    const Sample *s = &t->sample;
    if (!s->logits) {
        fprintf(stderr,
                "%s: --sample: not a character model (an int32 input [batch, T] and an "
                "output [batch, T, V] of logits)\n",
                t->prog);
        return;
    }
    const rt_tensor *ids = s->ids, *logits = s->logits;
    long T = ids->shape[1], V = logits->shape[2], n = s->n_prompt;
    double temp = t->o->temperature > 0 ? t->o->temperature : 0.8;
    int32_t *text = rt_malloc((size_t)(n + t->o->sample) * sizeof *text);
    memcpy(text, s->prompt, (size_t)n * sizeof *text);
    rt_rng rng;
    rt_rng_stream(&rng, t->seed, RT_STREAM_SAMPLE, 0);
    double *p = rt_malloc((size_t)V * sizeof *p);
    printf("sample (temperature %g):\n", temp);
    for (long k = 0; k < n; k++)
        print_token(s, text[k], k == 0);
    for (long k = 0; k < t->o->sample; k++) {
        long len = n < T ? n : T;
        for (long i = 0; i < T; i++)
            m->iarena[ids->offset + i] = i < len ? text[n - len + i] : 0;
        m->forward(1);
        double mx = -INFINITY, total = 0;
        for (long v = 0; v < V; v++)
            mx = fmax(mx, rt_get(m, logits, (len - 1) * V + v));
        for (long v = 0; v < V; v++)
            total += p[v] = exp((rt_get(m, logits, (len - 1) * V + v) - mx) / temp);
        double u = rt_rng_uniform(&rng) * total;
        long c = 0;
        while (c < V - 1 && (u -= p[c]) > 0)
            c++;
        text[n++] = (int32_t)c;
        print_token(s, (int32_t)c, 0);
    }
    printf("\n");
    free(p);
    free(text);
}

/* What the processes' losses and gradients summed are divided by to be
 * one process's over their rows together: P for a loss that is a mean
 * over rows, 1 for a sum over them. */
static double parts(const Trainer *t) { return t->m->loss_rows == RT_LOSS_SUM ? 1 : t->comm->size; }

/* The gradients summed over the processes, then divided by parts() (for
 * --export-grads; a step's update does it as it reads them, by
 * hyper.grad_scale): one process's over the global batch. */
static void average_grads(Trainer *t)
{
    const rt_model *m = t->m;
    const int dbl = m->real == RT_F64;
    void *g = (char *)m->arena + (size_t)m->grads_offset * (dbl ? 8 : 4);
    t->waited = t->comm->finish_grads(m);
    if (parts(t) == 1)
        return;
    if (dbl) {
        double *d = g, by = 1.0 / parts(t);
        for (long i = 0; i < m->n_param_elems; i++)
            d[i] *= by;
    } else {
        float *f = g, by = (float)(1.0 / parts(t));
        for (long i = 0; i < m->n_param_elems; i++)
            f[i] *= by;
    }
}

/* One step. On many processes each takes the gradients of its rows, all
 * sum them and make the same update from the sum over parts(); each draws
 * its own dropout. The sums start as the backward pass finishes each bucket of
 * gradients (mpi.c). The loss returned is this process's. */
static double step(Trainer *t, rt_hyper *h)
{
    const rt_model *m = t->m;
    if (t->comm->size == 1)
        return m->train_step(h);
    if (m->draws)
        *m->draws = (uint64_t)h->step ^ (uint64_t)t->comm->rank << 40;
    t->comm->start_grads(m);
    double loss = m->loss_and_grad();
    t->waited = t->comm->finish_grads(m);
    h->grad_scale = 1.0 / parts(t);
    m->update(h);
    return loss;
}

/* The minibatch at the run's place in the data, which then moves on: an
 * epoch ends where fewer rows than a step takes are left of its order. */
static void next_batch(Trainer *t)
{
    long G = global_batch(t);
    rt_data_load_at(t->d, t->m, t->epoch, t->row);
    t->row += G;
    if (t->d->rows - t->row < G)
        t->epoch++, t->row = 0;
}

/* Where a run starts in its data: at the start, or where the resumed run
 * stood, or (a checkpoint that did not say) where its steps reached at
 * this run's batch. Then the steps --epochs asks for, from there. */
static void place_in_data(Trainer *t)
{
    const rt_data *d = t->d;
    long G = global_batch(t);
    if (!d->n)
        return;
    if (t->epoch < 0 || !t->o->resume)
        rt_data_place(d, t->m, t->start, &t->epoch, &t->row);
    else if (t->saved_batch != G)
        note(t,
             "%s: %s's steps took %ld rows each; these take %ld: the run goes on from row %ld "
             "of epoch %ld\n",
             t->prog, t->o->resume, t->saved_batch, G, t->row, t->epoch + 1);
    if (t->d->rows - t->row < G) /* the rest of that epoch is less than a step now */
        t->epoch++, t->row = 0;
}

/* --epochs N: the steps until epoch N ends, from the run's place. */
static long steps_to_epoch(const Trainer *t, long epochs)
{
    long G = global_batch(t), left = epochs - t->epoch;
    if (left <= 0)
        return t->start;
    return t->start + (t->d->rows - t->row) / G + (left - 1) * t->d->nbatches;
}

static int run(Trainer *t)
{
    const rt_model *m = t->m;
    const Opts *o = t->o;
    rt_hyper h = o->hyper;
    char what[160];
    double ms = 0, first_ms = 0, trial_ms = 0, waited_ms = 0;
    long trials = 0;
    t->t0 = rt_now_ms();
    bar_start(&t->bar, t->start, t->steps, o->minutes);
    for (long n = t->start + 1; n <= t->steps; n++) {
        if (t->d->n)
            next_batch(t);
        h.step = n;
        h.lr = rt_lr_at(&o->schedule, o->hyper.lr, n, t->steps);
        if (n == t->start + 1)
            rt_split_reset();
        const bool trial = rt_split_trial(n - t->start, first_ms);
        double t0 = rt_now_ms();
        double loss = step(t, &h);
        const double took = rt_now_ms() - t0;
        if (n == t->start + 1) {
            first_ms = took;
            if (o->verbose)
                rt_split_report(t->prog, n);
        } else if (trial) {
            trial_ms += took, trials++;
            rt_split_trial_done(n - t->start, took, o->verbose ? stderr : NULL, t->prog);
        } else
            ms += took, waited_ms += t->waited;
        /* Every process stops where any is asked to or out of time. */
        int stop = stop_signal != 0,
            late = o->minutes > 0 && rt_now_ms() - t->t0 > o->minutes * 60000 && n < t->steps;
        if (t->comm->size > 1) {
            double v[3] = {loss, stop, late};
            t->comm->sum(v, 3);
            loss = v[0] / parts(t), stop = v[1] > 0, late = v[2] > 0;
        }
        if (!isfinite(loss)) {
            snprintf(what, sizeof what, "loss is %s at step %ld", nonfinite_name(loss), n);
            diverged(t, what);
            return 1;
        }
        report_step(t, n, loss);
        /* The last step's evaluation and save wait for the final loss,
         * which is the last training batch's. */
        if (t->eval_every && n % t->eval_every == 0 && n != t->steps)
            evaluate(t, n);
        if (o->save_every && n % o->save_every == 0 && n != t->steps &&
            agreed(t, save(t, o->checkpoint, n)))
            return 1;
        if (stop)
            return interrupted(t, n);
        bar_tick(&t->bar, n, loss);
        if (late) {
            note(t, "%s: --minutes %g reached at step %ld\n", t->prog, o->minutes, n);
            t->steps = n; /* the run ends here, as if it had been asked to */
        }
    }
    bar_end(&t->bar, t->steps);
    if (t->steps == 0 && t->d->n) /* --steps 0: the first batch */
        rt_data_load_at(t->d, m, t->epoch, t->row);
    if (t->comm->size > 1) {
        if (m->draws)
            *m->draws = (uint64_t)t->steps ^ (uint64_t)t->comm->rank << 40;
        t->comm->start_grads(m);
    }
    double final = m->loss_and_grad();
    if (t->comm->size > 1) {
        average_grads(t);
        t->comm->sum(&final, 1);
        final /= parts(t);
    }
    t->graded = 1;
    t->final = final;
    if (!isfinite(final)) {
        snprintf(what, sizeof what, "loss is %s after step %ld", nonfinite_name(final), t->steps);
        diverged(t, what);
        return 1;
    }
    /* The first step touches every page of the arena and of OpenBLAS's
     * buffers for the first time, a fault each, and the trial steps try
     * a way that may not be kept; the steps after them are what a long run
     * costs, so they are timed apart. */
    long later = t->steps - t->start - 1 - trials;
    const int digits = (int)o->digits;
    if (t->steps == 0)
        printf("final loss %.*g at the starting weights (no steps)\n", digits, final);
    else if (later > 0 && trials)
        printf("final loss %.*g  %.4g ms/step, the first %.4g ms, the %ld choosing how to share "
               "%.4g ms\n",
               digits, final, ms / (double)later, first_ms, trials, trial_ms / (double)trials);
    else if (later > 0)
        printf("final loss %.*g  %.4g ms/step, the first %.4g ms\n", digits, final,
               ms / (double)later, first_ms);
    else
        printf("final loss %.*g  %.4g ms/step\n", digits, final,
               (first_ms + trial_ms) / (double)(1 + trials));
    if (t->comm->size > 1 && later > 0)
        note(t, "%s: %d processes: %.4g ms of a step's %.4g waiting for the gradients' sums\n",
             t->prog, t->comm->size, waited_ms / (double)later, ms / (double)later);
    if (t->val->n)
        evaluate(t, t->steps);
    if (o->sample && t->lead)
        sample_text(t);
    fflush(stdout);
    return o->checkpoint ? save(t, o->checkpoint, t->steps) : 0;
}

/* Parameters from the seed (or --init) and the optimizer at rest, or both
 * from --resume; 0, or 1 after a message. */
static int begin(Trainer *t)
{
    const rt_model *m = t->m;
    const Opts *o = t->o;
    size_t width = rt_dtype_width(m->real);
    rt_init_params(m, o->seed);
    /* Zeroed here, not left to the arena's static initializer, so a second
     * run in one process (the tests) starts from rest too. */
    memset((char *)m->arena + m->state_offset * width, 0, (size_t)(m->n_state * width));
    char err[1024];
    if (o->init_dir && t->lead) {
        /* Over the seed's values: a buffer without a file keeps its own. */
        if (rt_import_params(m, o->init_dir, err, sizeof err)) {
            fprintf(stderr, "%s: --init: %s\n", t->prog, err);
            return 1;
        }
        note(t, "%s: parameters from %s\n", t->prog, o->init_dir);
    }
    if (!o->resume || !t->lead)
        return 0;
    rt_progress at;
    if (rt_checkpoint_load_progress(m, o->resume, &at, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", t->prog, err);
        return 1;
    }
    uint64_t seed = at.seed;
    t->start = at.step;
    t->epoch = at.epoch, t->row = at.row, t->saved_batch = at.batch;
    if (o->seed_given && seed != o->seed)
        note(t, "%s: using the checkpoint's seed %llu, not --seed %llu\n", t->prog,
             (unsigned long long)seed, (unsigned long long)o->seed);
    t->seed = seed;
    t->good = o->resume;
    t->good_step = t->start;
    note(t, "%s: resumed from %s at step %ld\n", t->prog, o->resume, t->start);
    return 0;
}

/* Process 0 read --init and --resume: every process starts from its
 * parameters, buffers, optimizer state, step and seed. */
static void share_start(Trainer *t)
{
    const rt_model *m = t->m;
    const rt_comm *c = t->comm;
    size_t width = rt_dtype_width(m->real);
    c->share((char *)m->arena + m->params_offset * width, rt_saved_elems(m) * (long)width);
    c->share((char *)m->arena + m->state_offset * width, m->n_state * (long)width);
    c->share(&t->start, sizeof t->start);
    c->share(&t->seed, sizeof t->seed);
    c->share(&t->epoch, sizeof t->epoch);
    c->share(&t->row, sizeof t->row);
    c->share(&t->saved_batch, sizeof t->saved_batch);
}

/* Whether every process reads the same rows: a file that differs on
 * another machine would train on other data without a word. */
static int same_data(Trainer *t)
{
    if (t->comm->same(rt_data_hash(t->d) * 31 + rt_data_hash(t->val)))
        return 0;
    note(t,
         "%s: the --data and --val files differ between the processes: every process must "
         "read the same files\n",
         t->prog);
    return 1;
}

/* Binds the data and trains from t->start; 0, 1, 2 (a bad --prompt) or
 * 130. The data come first: --epochs counts its minibatches. */
static int train(Trainer *t)
{
    const Opts *o = t->o;
    int rc = bind_all(t);
    if (rc == 0 && o->sample)
        rc = prepare_sample(t);
    rc = agreed(t, rc);
    if (rc == 0 && t->comm->size > 1)
        rc = same_data(t);
    if (rc)
        return rc;
    describe_data(t);
    place_in_data(t);
    t->steps = o->epochs ? steps_to_epoch(t, o->epochs) : o->steps;
    /* --minutes alone: the clock, not the default --steps, ends the run. */
    if (o->minutes > 0 && !o->epochs && !o->steps_given)
        t->steps = LONG_MAX;
    if (t->start >= t->steps && t->steps > 0) {
        if (o->epochs)
            note(t,
                 "%s: %s is at step %ld, and --epochs %ld is %ld steps: nothing to train (a "
                 "larger --epochs trains on)\n",
                 t->prog, o->resume, t->start, o->epochs, t->steps);
        else
            note(t,
                 "%s: %s is at step %ld, and --steps is %ld: nothing to train (a larger "
                 "--steps trains on)\n",
                 t->prog, o->resume, t->start, t->steps);
        return 0;
    }
    if (t->d->n == 0) /* each process a batch of its own */
        rt_random_inputs(t->m, t->seed + (uint64_t)t->comm->rank);
    if (agreed(t, o->log && t->lead ? open_log(t) : 0))
        return 1;
    Handlers old;
    catch_stops(t, &old);
    rc = run(t);
    restore_stops(&old);
    if (t->log)
        fclose(t->log);
    t->log = NULL;
    return rc;
}

static int export_params(Trainer *t)
{
    char err[1024];
    if (!t->lead)
        return 0;
    if (rt_export_params(t->m, t->o->export_dir, err, sizeof err)) {
        fprintf(stderr, "%s: --export: %s\n", t->prog, err);
        return 1;
    }
    note(t, "%s: wrote %d parameters to %s/\n", t->prog, t->m->n_params, t->o->export_dir);
    return 0;
}

/* The gradients loss_and_grad() left of the final loss; printed in full,
 * so that a reference can be held to it. */
static int export_grads(Trainer *t)
{
    char err[1024];
    if (!t->graded) {
        fprintf(stderr, "%s: --export-grads: nothing was trained, so there is no final loss\n",
                t->prog);
        return 1;
    }
    if (!t->lead)
        return 0;
    if (rt_export_grads(t->m, t->o->export_grads, err, sizeof err)) {
        fprintf(stderr, "%s: --export-grads: %s\n", t->prog, err);
        return 1;
    }
    note(t, "%s: wrote the gradients of %d parameters to %s/ (the loss %.17g)\n", t->prog,
         t->m->n_params, t->o->export_grads, t->final);
    return 0;
}

/* --direction DIR, read before the run so that a bad file stops it
 * before it starts. */
static int read_direction(Trainer *t)
{
    const rt_model *m = t->m;
    char err[1024];
    const char *flag = t->o->export_hvp ? "--export-hvp" : "--export-jvp";
    if ((t->o->export_hvp && !m->hvp) || (t->o->export_jvp && !m->jvp)) {
        flag = t->o->export_hvp && !m->hvp ? "hvp" : "jvp";
        fprintf(stderr, "%s: --export-%s: %s was compiled without --%s (gradc build --%s)\n",
                t->prog, flag, m->name, flag, flag);
        return 1;
    }
    if (t->comm->size > 1) {
        note(t, "%s: %s runs on one process: the product is of one batch\n", t->prog, flag);
        return 1;
    }
    t->direction = rt_malloc((size_t)m->n_param_elems * rt_dtype_width(m->real));
    if (rt_import_values(m, t->o->direction, t->direction, err, sizeof err)) {
        fprintf(stderr, "%s: --direction: %s\n", t->prog, err);
        return 1;
    }
    return 0;
}

/* H v or J v at the final loss (its batch and weights), v from
 * --direction, to dir. */
static int export_product(Trainer *t, const rt_model *twin, const char *flag, const char *dir)
{
    const rt_model *m = t->m;
    char err[1024];
    if (!t->graded) {
        fprintf(stderr, "%s: %s: nothing was trained, so there is no final loss\n", t->prog, flag);
        return 1;
    }
    void *out = rt_malloc((size_t)twin->n_product * rt_dtype_width(m->real));
    bool hvp = twin == m->hvp;
    if (hvp)
        rt_hvp(m, t->direction, out);
    else
        rt_jvp(m, t->direction, out);
    int rc = hvp ? rt_export_values(m, dir, out, err, sizeof err)
                 : rt_export_product(twin, dir, out, err, sizeof err);
    free(out);
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", t->prog, flag, err);
        return 1;
    }
    const char *what = hvp ? "parameter" : "output", *s = twin->n_outputs == 1 ? "" : "s";
    note(t, "%s: wrote %s of %d %s%s to %s/ (the loss %.17g)\n", t->prog, hvp ? "H v" : "J v",
         twin->n_outputs, what, s, dir, t->final);
    return 0;
}

/* --threads on one of several processes: 0 (auto) is the cores this one
 * may run on, or its share of the machine's when mpirun bound none of
 * them; more threads than that is said, as they would wait on each
 * other. */
static void share_cores(Trainer *t, long asked)
{
    int mine = rt_set_threads(0), local = t->comm->local;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int fair = mine < online ? mine : mine / local > 1 ? mine / local : 1;
    int n = rt_set_threads(asked ? (int)asked : fair);
    if (!asked)
        note(t, "%s: --threads auto: %d for each of the %d processes on this machine\n", t->prog, n,
             local);
    else if (n > fair && mine < online)
        note(t,
             "%s: warning: --threads %d, but mpirun bound each process to %d core%s "
             "(mpirun --bind-to none lets it use more)\n",
             t->prog, n, mine, mine == 1 ? "" : "s");
    else if (n > fair)
        note(t,
             "%s: warning: %d processes of %d threads on this machine's %d cores: they will "
             "wait on each other\n",
             t->prog, local, n, mine);
}

/* What the trainer is, said at the start of a run on many processes. */
static void describe_processes(Trainer *t)
{
    note(t, "%s: %d processes, each a batch of %d rows: a global batch of %ld\n", t->prog,
         t->comm->size, t->m->batch, (long)t->m->batch * t->comm->size);
}

/* Every process runs the same model: the same tensors at the same places,
 * and the same optimizer. */
static uint64_t model_hash(const rt_model *m)
{
    uint64_t h = 1469598103934665603u;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211u)
    MIX(m->batch), MIX(m->real), MIX(m->arena_size), MIX(m->iarena_size), MIX(m->optimizer);
    MIX(m->loss_rows);
    for (const char *c = m->name; *c; c++)
        MIX(*c);
    for (int i = 0; i < m->n_params; i++) {
        MIX(m->params[i].offset), MIX(m->params[i].size);
        for (const char *c = m->params[i].name; *c; c++)
            MIX(*c);
    }
    for (int i = 0; i < m->n_inputs; i++)
        MIX(m->inputs[i].offset), MIX(m->inputs[i].size);
#undef MIX
    return h;
}

int rt_train_main(const rt_model *m, int argc, char **argv)
{
    static const rt_comm one = {.rank = 0, .size = 1, .local = 1};
    return rt_train_run(m, argc, argv, &one);
}

int rt_train_run(const rt_model *m, int argc, char **argv, const rt_comm *comm)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s_train%s", m->name, comm->sum ? "_mpi" : "");
    if (comm->rank > 0 && !freopen("/dev/null", "w", stdout)) /* process 0 prints the results */
        rt_die("cannot open /dev/null");
    Opts o = {.steps = 100,
              .print_every = 10,
              .digits = 9,
              .threads = 1,
              .seed = 1,
              .csv = RT_CSV_LAYOUT_DEFAULT,
              .hyper = m->hyper,
              .schedule = {.gamma = 0.1}};
    o.data = rt_malloc(sizeof *o.data * (size_t)(argc > 0 ? argc : 1));
    o.val = rt_malloc(sizeof *o.val * (size_t)(argc > 0 ? argc : 1));
    rt_args a = {prog, argc, argv, 1};
    rt_data d, val;
    rt_data_init(&d);
    rt_data_init(&val);
    int rc = train_parse(m, &a, &o);
    if (rc == 0 && o.help)
        train_usage(m, prog);
    if (rc == 0 && !o.help) {
        Trainer t = {.m = m,
                     .prog = prog,
                     .o = &o,
                     .comm = comm,
                     .lead = comm->rank == 0,
                     .seed = o.seed,
                     .saved_at = -1,
                     .d = &d,
                     .val = &val};
        snprintf(t.fallback, sizeof t.fallback, "%s.ckpt", m->name);
        if (m->real == RT_F32)
            rt_flush_subnormals();
        if (comm->size == 1) {
            int threads = rt_set_threads((int)o.threads);
            if (o.threads == 0)
                fprintf(stderr, "%s: --threads auto: %d, the cores it may run on\n", prog, threads);
        } else
            share_cores(&t, o.threads);
        rt_calibrate_split(!o.no_calibrate, m->real == RT_F64, o.verbose && t.lead ? stderr : NULL,
                           prog);
        if (o.direction && read_direction(&t)) {
            rc = 1;
        } else if (comm->size > 1 && !comm->same(model_hash(m))) {
            note(&t,
                 "%s: the processes run different models: build every one from the same "
                 "model file\n",
                 prog);
            rc = 1;
        } else if (comm->size > 1 && m->optimizer == RT_OPT_NEWTON_CG) {
            note(&t,
                 "%s: newton_cg runs on one process: each would solve with the Hessian of "
                 "its own rows, and the copies of the model would part\n",
                 prog);
            rc = 1;
        } else if (comm->size > 1 && m->loss_rows == RT_LOSS_OTHER) {
            note(&t,
                 "%s: the loss of %s is neither a mean nor a sum over the batch's rows: %d "
                 "processes cannot train it as one batch of all their rows\n",
                 prog, m->source, comm->size);
            rc = 1;
        } else if (comm->size > 1) {
            describe_processes(&t);
            rc = agreed(&t, begin(&t));
            if (rc == 0)
                share_start(&t);
        } else
            rc = begin(&t);
        if (rc == 0)
            rc = train(&t);
        if (rc == 0 && o.export_dir)
            rc = export_params(&t);
        if (rc == 0 && o.export_grads)
            rc = export_grads(&t);
        if (rc == 0 && o.export_hvp)
            rc = export_product(&t, m->hvp, "--export-hvp", o.export_hvp);
        if (rc == 0 && o.export_jvp)
            rc = export_product(&t, m->jvp, "--export-jvp", o.export_jvp);
        free(t.direction);
        rt_tokenizer_free(&t.sample.tokenizer);
        free(t.sample.prompt);
    }
    rt_data_free(&d);
    rt_data_free(&val);
    free(o.data);
    free(o.val);
    fflush(stdout);
    return rc;
}
