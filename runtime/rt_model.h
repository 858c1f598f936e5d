/*
 * rt_model.h: the descriptor every generated model exports, and the only
 * thing the runtime knows about a model.
 *
 * A model's memory is two static arenas inside its generated .c file: one of
 * `real` (float or double, fixed when NAME.c is compiled) and one of int32.
 * Every tensor is named by its offset into the arena of its dtype, so the
 * descriptor is a constant table and the runtime never allocates model
 * memory. Parameters are contiguous, and the gradients mirror them in a
 * second contiguous block, so an optimizer is one flat loop. Buffers
 * (batch norm's running averages: kept, not trained) follow the
 * parameters, and the two are what a checkpoint saves.
 *
 * An arena too large to be static (more than 2 GiB of static data does not
 * link with the default code model) is allocated before main instead,
 * once, by rt_arena_alloc; such a model's descriptor is not const, its
 * arena pointers being set then.
 */
#ifndef RT_MODEL_H
#define RT_MODEL_H

#include <stddef.h>
#include <stdint.h>

enum { RT_MAX_RANK = 6 };

typedef enum { RT_F32, RT_F64, RT_I32 } rt_dtype;

typedef enum {
    RT_INIT_NONE,    /* inputs */
    RT_INIT_NORMAL,  /* init_a = mean, init_b = standard deviation */
    RT_INIT_UNIFORM, /* init_a = low, init_b = high */
    RT_INIT_CONST    /* init_a = value */
} rt_init_kind;

typedef struct {
    const char *name;
    rt_dtype dtype; /* RT_I32 lives in iarena; anything else in arena */
    int rank;
    int shape[RT_MAX_RANK]; /* shape[0] of an input is the batch */
    long size;              /* product of shape */
    long offset;            /* in elements, into arena or iarena */
    rt_init_kind init;      /* parameters only */
    double init_a, init_b;
    int classes; /* int32 inputs used as labels: values lie in [0, classes) */
} rt_tensor;

typedef enum {
    RT_OPT_SGD,       /* p -= lr g */
    RT_OPT_MOMENTUM,  /* b = momentum b + g; p -= lr b */
    RT_OPT_NESTEROV,  /* b = momentum b + g; p -= lr (g + momentum b) */
    RT_OPT_ADAM,      /* Kingma & Ba, with bias correction */
    RT_OPT_ADAMW,     /* Adam with weight decay decoupled from the gradient */
    RT_OPT_RMSPROP,   /* s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps) */
    RT_OPT_NEWTON_CG, /* (H + (weight_decay + damping) I) s = -g by at most cg_iters
                         conjugate gradients (H v from the model's hvp twin); p += lr s */
} rt_optimizer;

/* Hyperparameters are runtime values; the optimizer kind is compiled in.
 * Every kind reads lr, weight_decay (added to the gradient as L2, except
 * for AdamW, which decays the weights directly) and clip; the rest only
 * where the kind's comment above uses them. */
typedef struct {
    double lr;
    double momentum;     /* momentum, nesterov */
    double beta1, beta2; /* adam, adamw */
    double alpha;        /* rmsprop */
    double eps;          /* adam, adamw, rmsprop */
    double damping;      /* newton_cg */
    double cg_iters;     /* newton_cg: a whole number, at least 1 */
    double weight_decay;
    double clip; /* > 0: gradients scaled to a global L2 norm of at most clip */
    /* > 0: the gradients in place are taken times this (0 is 1): an MPI
     * trainer's 1 / P, its gradients being the sum over P processes */
    double grad_scale;
    long step; /* 1 for the first step: Adam's bias correction */
} rt_hyper;

/* A range of the gradient block, in values: an MPI trainer sums it over
 * its processes as one. */
typedef struct {
    long offset, count;
} rt_bucket;

/* How the loss adds up over the batch's rows: what an MPI trainer must
 * know to make its processes' batches one. */
typedef enum {
    RT_LOSS_MEAN,  /* a mean over them (and terms of the weights alone) */
    RT_LOSS_SUM,   /* a sum over them */
    RT_LOSS_OTHER, /* neither: P batches are not one of P times the rows */
} rt_loss_rows;

typedef struct rt_model {
    const char *name;
    const char *source; /* the model file, as given to gradc */
    int batch;
    rt_dtype real; /* RT_F32 or RT_F64: which build of NAME.c this is */
    void *arena;   /* float * or double *, per `real` */
    int32_t *iarena;
    long arena_size, iarena_size;

    int n_inputs, n_params, n_buffers, n_outputs;
    const rt_tensor *inputs;
    const rt_tensor *params;
    const rt_tensor *buffers;
    const rt_tensor *grads; /* grads[i] is the gradient of params[i] */
    const rt_tensor *outputs;
    long params_offset, grads_offset, n_param_elems; /* the two flat blocks */
    long n_buffer_elems;                             /* right after the parameters */
    long state_offset, n_state;                      /* the optimizer's state (n_state elements,
                                                        a multiple of n_param_elems), after grads */
    long loss_offset;                                /* the scalar loss, in arena */

    rt_optimizer optimizer;
    rt_hyper hyper; /* defaults from the model file */
    rt_loss_rows loss_rows;

    /* Evaluation mode: the loss of the whole batch, with no gradients. */
    double (*loss)(void);
    /* Training mode: the loss, and every parameter's gradient into grads. */
    double (*loss_and_grad)(void);
    /* The optimizer's step from the gradients in grads, and the buffers'
     * updates: train_step is loss_and_grad then this, so a trainer can
     * change the gradients in between (sum them over processes). */
    void (*update)(const rt_hyper *hyper);
    /* One optimizer step, and the buffers' updates; returns the loss
     * computed before the update. */
    double (*train_step)(const rt_hyper *hyper);
    /* A model that draws (dropout): what the draws are made from, which
     * train_step sets to hyper->step; NULL otherwise. */
    uint64_t *draws;
    /* The gradients in buckets, in the order the backward pass finishes
     * them; loss_and_grad calls *grads_done (if set) with each bucket's
     * index as it does. */
    int n_buckets;
    const rt_bucket *buckets;
    void (**grads_done)(int bucket);
    /* Evaluation mode, outputs only, for the first `rows` (<= batch) rows of
     * the inputs; rows past that are zeroed first. */
    void (*forward)(int rows);
    /* gradc --hvp: the Hessian-vector product twin (NAME_hvp.c), else NULL.
     * Its parameters are the model's, then v_NAME for each (the
     * direction), its outputs hv_NAME (H v); rt_hvp() runs it. */
    const struct rt_model *hvp;
    /* gradc --jvp: the Jacobian-vector product twin (NAME_jvp.c), else
     * NULL: parameters as hvp's, outputs jv_NAME (J v, the derivative
     * along v of the model's real output NAME); rt_jvp() runs it. */
    const struct rt_model *jvp;
    /* In a twin: out = H v or J v at params and the inputs in its arena,
     * params and v laid out as the model's parameter block, out as the
     * twin's outputs one after another (n_product reals). */
    long n_product;
    void (*product)(const void *params, const void *v, void *out);
} rt_model;

/* n elements of width bytes, zeroed, on a cache line; never freed. A
 * machine without that much memory is said in one line naming the model,
 * and the program exits 1. */
void *rt_arena_alloc(const char *model, long n, size_t width);

#endif
