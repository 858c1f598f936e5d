/*
 * train.h: what the trainer's files share: train.c (the run), train_args.c
 * (its flags) and progress.c (the progress bar). Private to the runtime.
 */
#ifndef TRAIN_H
#define TRAIN_H

#include "rt_internal.h"

typedef struct {
    long steps, epochs, print_every, threads, save_every, eval_every;
    long digits; /* of the losses printed */
    uint64_t seed;
    int seed_given, steps_given, no_shuffle;
    const char *checkpoint, *resume, *init_dir, *export_dir, *export_grads, *log;
    const char *direction;  /* v, of a model compiled with --hvp or --jvp */
    const char *export_hvp; /* where H v goes */
    const char *export_jvp; /* where J v goes */
    double val_split; /* 0: none */
    int val_shuffle;  /* --val-split holds out rows drawn by the seed */
    double minutes;   /* > 0: stop after the step that passes this much time */
    long sample;      /* > 0: characters to sample after training */
    double temperature;
    const char *prompt;
    /* llm.c's tokenizer file, to print a sample's tokens as text */
    const char *tokenizer;
    rt_csv_layout csv;
    rt_hyper hyper; /* the model's defaults, then the flags */
    rt_schedule schedule;
    int help;
    int verbose;      /* -v: how the threads share the work */
    int no_calibrate; /* share by the thresholds of near vCPUs, unmeasured */
    int n_data, n_val;
    const char **data, **val; /* the NAME=FILE arguments, in order */
} Opts;

/* The processes one run trains on: one for NAME_train, MPI's for
 * NAME_train_mpi (mpi.c). Each call is collective: every process makes
 * it, in the same order. */
typedef struct {
    int rank, size;
    int local; /* the processes on this machine, this one among them */
    /* v[0..n) summed over the processes, in place, on every one */
    void (*sum)(double *v, int n);
    /* The gradients of m summed over the processes, in place, the same
     * bits on every one: start before loss_and_grad (which then starts
     * each bucket's sum as the backward pass finishes it), finish after
     * (the rest, then the wait; returns the ms it waited). */
    void (*start_grads)(const rt_model *m);
    double (*finish_grads)(const rt_model *m);
    /* process 0's bytes to every process */
    void (*share)(void *v, long bytes);
    /* whether v is the same on every process */
    int (*same)(uint64_t v);
} rt_comm;

/* NAME_train's main on the processes comm. */
int rt_train_run(const rt_model *m, int argc, char **argv, const rt_comm *comm);

/* Reads the flags into o (the model's defaults first); 0, or 2 after
 * saying what is wrong (--help is not wrong). */
int train_parse(const rt_model *m, rt_args *a, Opts *o);
const char *optimizer_name(rt_optimizer k);
/* --help: the model's inputs, parameters, optimizer and every flag. */
void train_usage(const rt_model *m, const char *prog);

/* The progress bar: stderr, a terminal only, redrawn in place with '\r' at
 * most every 100 ms. It owns the line while shown, so anything else
 * printed to the terminal clears it first (bar_clear). */
typedef struct {
    int on, shown;
    long first, total;     /* this run trains steps first+1 .. total (LONG_MAX: no end) */
    double limit_ms;       /* > 0: --minutes, which may end it sooner */
    double t0, drawn;      /* ms */
    double loss_sum, loss; /* loss: the mean over the steps since the last redraw */
    long loss_n;
} Progress;

void bar_start(Progress *p, long first, long total, double minutes);
void bar_draw(Progress *p, long n);
void bar_tick(Progress *p, long n, double loss);
void bar_clear(Progress *p);
void bar_end(Progress *p, long n);

#endif
