/*
 * rt.h: the gradc runtime, linked into every generated program.
 *
 * It never knows a particular model: everything goes through the rt_model
 * descriptor (rt_model.h). Errors a user can cause (bad flags, bad data)
 * print one line to stderr naming the file or flag and return non-zero;
 * they never abort. Results go to stdout as plain lines, progress to stderr.
 */
#ifndef RT_H
#define RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "rt_model.h"

/* The generic programs: NAME_train.c, NAME_gradcheck.c and NAME_predict.c
 * are one call. */
int rt_train_main(const rt_model *m, int argc, char **argv);
int rt_gradcheck_main(const rt_model *m, int argc, char **argv);
int rt_predict_main(const rt_model *m, int argc, char **argv);
/* The trainer as one of MPI's processes (mpi.c, libgradc_mpi.a): `gradc
 * build --mpi` compiles NAME_train.c with RT_MPI, so that its main, run
 * under mpirun, trains data-parallel (docs/distributed.md). */
int rt_train_main_mpi(const rt_model *m, int argc, char **argv);
#ifdef RT_MPI
#define rt_train_main rt_train_main_mpi
#endif
/* Called first by those mains: on a CPU whose best kernels OpenBLAS did not
 * pick, runs the program again with OPENBLAS_CORETYPE set (blas.c). */
void rt_use_best_blas(char **argv);
/* --threads N: OpenMP's threads, which share out the big products (each
 * part an OpenBLAS call on one thread, gemm.c) and the big elementwise
 * loops. 0 means every core the process may run on (its CPU affinity, as
 * taskset sets it); returns the count set. */
int rt_set_threads(int n);
/* On more than one thread: measures the least work worth sharing among
 * them, for each kind of product and for loops (split.c), in a few
 * milliseconds, in double or float (`dbl`) unless not to `calibrate`;
 * says on `say` (unless NULL) what it found, after "prog: ". */
void rt_calibrate_split(bool calibrate, bool dbl, FILE *say, const char *prog);
/* 1: share every product and large loop among the threads; 0: none; -1:
 * what was measured to pay (the default). */
void rt_split_force(int how);
/* What a few ms of calibration cannot see (another process on the CPU a
 * thread needs, stalls) the trainer's own steps show: with calibration,
 * the steps from the second alternate computing whole and sharing as
 * measured, at least 2 and 20 ms each way, and the faster way is kept
 * (results do not depend on it). rt_split_trial says whether step k (from
 * 1) is one, and sets how it shares; rt_split_trial_done takes its time in
 * ms. Not after a first step of a second or more, nor when that step
 * shared nothing. */
bool rt_split_trial(long k, double first_ms);
void rt_split_trial_done(long k, double ms, FILE *say, const char *prog);
/* Says on stderr how much of step `step` was shared: what was counted
 * since rt_split_reset. */
void rt_split_reset(void);
void rt_split_report(const char *prog, long step);
/* Float training treats numbers too small for a normal float as 0, as
 * PyTorch's set_flush_denormal does: the seed MLP's saturated sigmoids
 * feed its products subnormal gradients, which made a step 1.7 times
 * slower by step 3000. The double gradient check keeps them. */
void rt_flush_subnormals(void);
/* The main of the timing program `gradc tune` builds (tune.c). */
int rt_tune_main(int argc, char **argv);

/* Random numbers: xoshiro256** seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} rt_rng;
void rt_rng_seed(rt_rng *r, uint64_t seed);
uint64_t rt_rng_next(rt_rng *r);
double rt_rng_uniform(rt_rng *r); /* [0, 1) */
double rt_rng_normal(rt_rng *r);  /* mean 0, standard deviation 1 */

/* Model memory, whatever the model's real type. */
double rt_get(const rt_model *m, const rt_tensor *t, long i);
void rt_set(const rt_model *m, const rt_tensor *t, long i, double v);
/* Parameters and buffers from their initializers; parameter k draws from
 * its own stream derived from (seed, k), so adding one moves no other. */
void rt_init_params(const rt_model *m, uint64_t seed);
/* The parameters and the buffers after them: what a checkpoint saves. */
static inline long rt_saved_elems(const rt_model *m)
{
    return m->n_param_elems + m->n_buffer_elems;
}
/* Inputs drawn like the notes: randn for float, uniform in [0, classes)
 * for int32 (in [0, 2) when classes is 0). */
void rt_random_inputs(const rt_model *m, uint64_t seed);

/* .npy files (format 1.0-3.0, C order, little-endian). */
typedef struct {
    rt_dtype dtype; /* after loading: RT_F32, RT_F64 or RT_I32 */
    int rank;
    long shape[RT_MAX_RANK];
    long size;
    void *data; /* malloc'd; free with rt_array_free */
} rt_array;
/* Returns 0, or -1 with one line of explanation in err (naming the path). */
int rt_npy_read(const char *path, rt_array *out, char *err, size_t errlen);
int rt_npy_write(const char *path, rt_dtype dtype, int rank, const long *shape, const void *data,
                 char *err, size_t errlen);
void rt_array_free(rt_array *a);

/* Gradient check by docs/design.md's definition. Prints one line per parameter
 * and the closing `max relative error <v>` to out (unless NULL); returns
 * that maximum. The model must be the double build. */
typedef struct {
    int all; /* every element, not 64 seeded ones */
    uint64_t seed;
    int keep_params; /* check at the parameters the caller set, not the seed's */
} rt_gradcheck_opts;
double rt_gradcheck(const rt_model *m, const rt_gradcheck_opts *o, FILE *out);

/* Learning-rate schedules (schedule.c). */
typedef enum { RT_SCHEDULE_CONSTANT, RT_SCHEDULE_STEP, RT_SCHEDULE_COSINE } rt_schedule_kind;
typedef struct {
    rt_schedule_kind kind;
    long every;    /* step: how many steps between decays */
    double gamma;  /* step: the factor each time */
    double min_lr; /* cosine: where it ends */
    long warmup;   /* > 0: linear warm-up over that many steps */
} rt_schedule;
/* 0, or -1 if name is not constant, step or cosine. */
int rt_schedule_parse(rt_schedule *s, const char *name);
/* The rate for step (1-based) of total, from the base rate. */
double rt_lr_at(const rt_schedule *s, double base, long step, long total);

/* Checkpoints (checkpoint.c): the params block and the optimizer state, with
 * the step reached and the seed, checksummed and tied to the model by its
 * signature. Both return 0, or -1 with one line in err starting with the
 * path. Saving is atomic; a refused load leaves the model untouched. */
uint64_t rt_model_signature(const rt_model *m);
int rt_checkpoint_save(const rt_model *m, const char *path, long step, uint64_t seed, char *err,
                       size_t errlen);
int rt_checkpoint_load(const rt_model *m, const char *path, long *step, uint64_t *seed, char *err,
                       size_t errlen);
/* The same with the run's place in its data: the next minibatch is rows
 * row... of epoch epoch's order (epoch -1: not known, a checkpoint of
 * format version 1), each step taking batch rows (of every process). */
typedef struct {
    long step;
    uint64_t seed;
    long epoch, row, batch;
} rt_progress;
int rt_checkpoint_save_progress(const rt_model *m, const char *path, const rt_progress *at,
                                char *err, size_t errlen);
int rt_checkpoint_load_progress(const rt_model *m, const char *path, rt_progress *at, char *err,
                                size_t errlen);
/* Only the parameters, for an inference model (NAME_infer.c) from a
 * checkpoint its training model wrote. */
int rt_checkpoint_load_params(const rt_model *m, const char *path, char *err, size_t errlen);
/* Every parameter as dir/NAME.npy in its shape and the model's real type;
 * dir is made if missing. */
int rt_export_params(const rt_model *m, const char *dir, char *err, size_t errlen);
/* Every parameter's gradient, as loss_and_grad() left it, as dir/d_NAME.npy. */
int rt_export_grads(const rt_model *m, const char *dir, char *err, size_t errlen);
/* The reverse, a trainer's --init: every parameter from dir/NAME.npy, and
 * each buffer whose file is there (the others keep their values). Every
 * file is checked first (each parameter's present, no .npy that names
 * nothing, the shape, float32 or float64, finite values), so a refused
 * directory leaves the model as it was. */
int rt_import_params(const rt_model *m, const char *dir, char *err, size_t errlen);
/* The same for a block laid out as the parameter block (n_param_elems
 * values, as a direction for rt_hvp), one file per parameter, and out. */
int rt_import_values(const rt_model *m, const char *dir, void *block, char *err, size_t errlen);
int rt_export_values(const rt_model *m, const char *dir, const void *block, char *err,
                     size_t errlen);

/* The Hessian-vector product (products.c), of a model compiled with --hvp:
 * out = H v at the model's parameters and the inputs in its arena, H the
 * Hessian of its training loss in the parameters; v and out laid out as
 * the parameter block. -1 if the model has no HVP twin. */
int rt_hvp(const rt_model *m, const void *v, void *out);
/* The Jacobian-vector product (products.c), of a model compiled with
 * --jvp: out = J v, the derivative along v of each real output of the
 * training pass at the model's parameters and the inputs in its arena; v
 * laid out as the parameter block, out as m->jvp's outputs one after
 * another (m->jvp->n_product values). -1 if the model has no JVP twin. */
int rt_jvp(const rt_model *m, const void *v, void *out);
/* Check H v against central differences of the gradient along random
 * directions, and J v against those of the outputs, as rt_gradcheck does
 * the gradient; the worst relative error, a line per part to out. */
double rt_hvp_check(const rt_model *m, const rt_gradcheck_opts *o, FILE *out);
double rt_jvp_check(const rt_model *m, const rt_gradcheck_opts *o, FILE *out);
/* out (the twin's outputs one after another, as rt_hvp or rt_jvp wrote
 * them) as DIR/OUTPUT.npy, one file per output of the twin. */
int rt_export_product(const rt_model *twin, const char *dir, const void *out, char *err,
                      size_t errlen);

double rt_now_ms(void);

#endif
