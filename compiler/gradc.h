/*
 * gradc.h: the compiler's one internal header, a section per .c file.
 *
 * The pipeline, as compile.c's table of passes runs it:
 *   load_model  Lua model file -> forward graph
 *   batch       products of one matrix by every slice of a tensor -> one
 *   grad        reverse mode: appends the backward graph
 *   simplify    constant folding, identities, common subexpressions
 *   dce         drops what no root needs
 *   remat       cheap forward values computed again in the backward, not kept
 *   fuse        groups nodes into loops
 *   plan        places every stored tensor in the arena
 * and then emit_c writes NAME.h, NAME.c and the mains.
 * A graph is an arena of nodes whose ids are topologically ordered by
 * construction; passes refer to nodes by id, never by pointer across a
 * call that may add nodes.
 */
#ifndef GRADC_H
#define GRADC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdnoreturn.h>

#define GRADC_VERSION "0.1.0"

enum { MAX_RANK = 6, MAX_IN = 64 }; /* MAX_IN: concat joins up to 64 tensors */

/* Long sums in the generated C (a reduction along a last axis, the clip
 * norm) take this many partial sums in turn, then add them up: one
 * running sum waits on each add, and C lets no compiler split it; in this
 * fixed order they vectorize, alike for every instruction set. */
enum { PARTIAL_SUMS = 16 };

/* ---- util.c: memory, text buffers, internal errors ---- */

noreturn void die_at(const char *file, int line, const char *fmt, ...);
#define die(...) die_at(__FILE__, __LINE__, __VA_ARGS__)

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Keeps p until free_kept(): for strings every graph shares. */
char *keep(char *p);
void free_kept(void);

/* A growing text buffer: generated files are built here, written once. */
typedef struct Buf {
    char *data;
    size_t len, cap;
} Buf;

void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(Buf *b);
/* Writes text that came from outside (a model's path, its source lines,
 * its names) so that in the C it is only data: the inside of a string
 * literal, of a comment (at most max bytes), or a name checked to be an
 * identifier. Every such text the emitters write goes through here. */
typedef enum { C_STRING, C_COMMENT, C_IDENT } CText;
void buf_c_text(Buf *b, const char *s, size_t max, CText as);
bool is_c_identifier(const char *s);
/* Whether the headers the generated C includes take the name s (a macro,
 * a declaration, or a header's own name): scripts/c_names.sh lists them. */
bool is_header_name(const char *s);
/* The folder of the running gradc binary. */
const char *gradc_dir(void);
/* The shortest decimal that reads back as v, always with a '.' or 'e'. */
void fmt_real(char out[40], double v);
/* n with thousands separators, as people read sizes: 1,234,567. */
const char *thousands(char out[32], long n);

/* ---- ir.c: the graph ---- */

typedef enum { DT_REAL, DT_I32 } DType;

typedef struct {
    int rank;
    int dim[MAX_RANK];
} Shape;

typedef struct {
    const char *file; /* as given on the command line; owned by the graph */
    int line;
} SrcLoc;

typedef enum { INIT_NONE, INIT_NORMAL, INIT_UNIFORM, INIT_CONST } InitKind;

/* How a loss adds up over the batch's rows: a mean of them (the default),
 * a sum, neither; LOSS_NO_ROWS: it reads no row (a penalty on weights). */
typedef enum { LOSS_MEAN, LOSS_SUM, LOSS_OTHER, LOSS_NO_ROWS } LossRows;

/* SUM's per-input-axis mode. */
enum { AX_KEEP, AX_DROP, AX_ONE };

typedef struct Node {
    int op, id;
    int n_in;
    int in[MAX_IN];
    Shape shape;
    DType dtype;
    double value;          /* CONST: the fill value; POW: the exponent;
                              MATMUL(_ADD): the scale (BLAS alpha, 1 unless
                              simplify folds a factor in); SOFTMAX(_GRAD):
                              1 when causal (simplify.c) */
    int axes[MAX_RANK];    /* SUM, MAX, MIN: AX_* per input axis; BROADCAST:
                              input axis per output axis, or -1; TRANSPOSE,
                              PERMUTE: the input axis of each output axis;
                              SLICE: where each axis starts; PAD: the margin
                              before each axis; MATMUL(_ADD) of rank 4: 1
                              where A, B, the result (0, 1, 2) is stored
                              with its axes 1 and 2 swapped (simplify.c) */
    bool trans_a, trans_b; /* MATMUL: transposes folded into BLAS flags */
    const char *name;      /* INPUT, PARAM */
    InitKind init;         /* PARAM */
    double init_a, init_b;
    int classes;     /* int32 INPUT used as labels: values in [0, classes) */
    bool is_grad;    /* made by the grad pass */
    int grad_of;     /* gradient nodes: the forward node it is the gradient of, or -1 */
    const char *var; /* the Lua local that held it, for C names */
    /* where no local held it, the name the model implies (naming.c's
     * name_values), for C names */
    const char *hint;
    SrcLoc loc;
} Node;

/* ---- optim.c: the optimizers ---- */

enum {
    OPT_SGD,
    OPT_MOMENTUM,
    OPT_NESTEROV,
    OPT_ADAM,
    OPT_ADAMW,
    OPT_RMSPROP,
    OPT_NEWTON_CG,
    N_OPTIMS
};

typedef struct {
    int kind;
    double lr, momentum, beta1, beta2, alpha, eps, weight_decay, clip;
    double damping, cg_iters; /* newton_cg */
} Optimizer;

typedef struct {
    const char *name;      /* in the model language and for --optimizer */
    const char *enum_name; /* the runtime's rt_optimizer */
    int state_slots;       /* copies of the parameters its state takes */
    const char *settings;  /* besides lr, weight_decay and clip */
    Optimizer defaults;
} OptimInfo;

extern const OptimInfo optim_info[N_OPTIMS];
int optim_find(const char *name);
double *optim_setting(Optimizer *o, const char *name);
bool optim_takes(int kind, const char *name);
/* update(hyper): the optimizer's step from the gradients in place, then
 * `after`, the statements that end a step (the buffers' updates); model
 * names the descriptor newton_cg hands the runtime. */
void optim_emit_update(Buf *b, const Optimizer *o, const char *model, long params, long grads,
                       long state, long n, const char *after);
void optim_emit_hyper(Buf *b, const Optimizer *o);

typedef struct {
    const char *name;
    int node;
} Output;
typedef struct {
    int node, grad;
} Param;
/* A tensor kept across steps but not trained (batch norm's running
 * averages): each training step replaces it with `next`. */
typedef struct {
    int node, next;
} Buffer;

typedef struct Graph {
    Node *nodes;
    int n, cap;
    bool cse;  /* hash-cons new nodes (the simplify pass sets it) */
    int *hash; /* open addressing over node ids, -1 = empty */
    int hash_cap;
    SrcLoc loc;       /* given to the nodes being made */
    bool making_grad; /* nodes being made are gradients */
    char error[256];  /* why ir_node returned -1 */

    /* Roots: what the generated code must compute. */
    const char *name;   /* the model's C name */
    const char *source; /* the model file */
    int batch;
    int loss;
    Output *outputs;
    int n_outputs;
    Param *params;
    int n_params;
    Buffer *buffers; /* saved with the parameters, after them */
    int n_buffers;
    int *inputs;
    int n_inputs;
    Optimizer opt;      /* the kind, and the defaults of its settings */
    LossRows loss_rows; /* how the loss adds up over the rows (load_model.c) */
    char **files;       /* source text of every Lua file read, for comments */
    char **file_names;
    int n_files;
    long front_local_reads; /* how often load_model read a Lua local to name a value */
} Graph;

Graph *ir_new(void);
void ir_free(Graph *g);
static inline Node *ir_at(Graph *g, int id) { return &g->nodes[id]; }
/* What the model calls a node: its name, its Lua local, or the name the
 * model implies; or NULL. */
static inline const char *node_word(const Node *n)
{
    return n->name ? n->name : n->var ? n->var : n->hint;
}
/* Makes a node from `proto` (op, inputs and attributes) after checking and
 * inferring its shape; returns its id, or -1 with g->error set when the
 * inputs do not fit the op (a user error). */
int ir_node(Graph *g, const Node *proto);
/* Constructors for passes: an input that does not fit is a compiler bug. */
int ir_must(Graph *g, const Node *proto);
int ir_unary(Graph *g, int op, int x);
int ir_binary(Graph *g, int op, int a, int b);
int ir_const(Graph *g, double v, Shape s);
int ir_pow(Graph *g, int x, double p);
int ir_matmul(Graph *g, int a, bool ta, int b, bool tb);
int ir_sum_to(Graph *g, int x, Shape s); /* undoes broadcasting */
int ir_broadcast_to(Graph *g, int x, Shape s, const int *axis_of);
int ir_permute(Graph *g, int x, const int *perm);         /* output axis i is input axis perm[i] */
int ir_slice(Graph *g, int x, const int *start, Shape s); /* the window of shape s at start */
int ir_pad(Graph *g, int x, const int *before, Shape s);  /* x at before in zeros of shape s */
int ir_reshape(Graph *g, int x, Shape s);
/* Copies a node into another graph with new inputs; the rebuild step of
 * every pass that rewrites. */
int ir_copy(Graph *to, const Node *n, const int *new_in);
/* A new graph with the same roots, file table and settings, and no nodes. */
Graph *ir_empty_like(const Graph *g);
/* A copy of g, node for node. */
Graph *ir_clone(const Graph *g);
/* Whether the value is read from outside: the loss, an output, a
 * gradient, a buffer's next value. */
bool ir_is_root(const Graph *g, int id);
/* Maps every root through old id -> new id. */
void ir_remap_roots(Graph *g, const Graph *old, const int *map);
void ir_check(Graph *g);
void ir_print(Graph *g, FILE *out);
long shape_size(Shape s);
bool shape_eq(Shape a, Shape b);
void shape_str(char *out, size_t n, Shape s);
const char *ir_source_line(const Graph *g, SrcLoc loc);

/* ---- ops.def and ops/: the op table ---- */

typedef enum { LEAF, ELEM, VIEW, REDUCE, PLACE, ALIAS, GEMM, ROWS } OpKind;
/* How a model calls an op by name (ops.def's lua column). */
typedef enum { LUA_NONE, LUA_FUNCTION, LUA_METHOD } LuaBinding;

enum {
#define OP(e, ...) OP_##e,
#include "ops.def"
#undef OP
    N_OPS
};

/* How a node's elements are reached from a loop nest's indices: along
 * its axis k, index src[k]'s loop variable (or 0 when src[k] is -1) plus
 * off[k] (a slice's start, a pad's margin). */
typedef struct {
    int src[MAX_RANK];
    long off[MAX_RANK];
} Access;

/* What an emitter is handed for its output and each input: for ELEM and
 * VIEW, an expression for one element; for GEMM and ROWS, a buffer name
 * or, for a constant input, a literal. */
/* One BLAS call's product: C [m, n] = op(A) op(B), k the inner size; or
 * a batch of `count` of them, attention's per head (count 0 for one), and
 * the triangles of each it may leave out (TRI_*). */
typedef struct {
    int m, n, k;
    bool ta, tb;
    int count, tri;
} Product;
/* A batch of attention's products knows half of each from the causal
 * mask: TRI_A, op(A) is a causal softmax's (or its gradient's), zero on
 * the far side of its diagonal; TRI_C, only the columns up to each row of
 * the result are read (by causal softmaxes). runtime/gemm.c's heads
 * kernel skips them; its panel for op(B) = B^T holds HEAD_PANEL values
 * (rt_real.h's RT_HEAD_PANEL). */
enum { TRI_A = 1, TRI_C = 2, HEAD_PANEL = 8192 };

typedef struct {
    const char *text;
    bool is_const;
    Shape shape;
    const char *alpha, *beta; /* a GEMM's output: out = alpha A B + beta out
                                 (NULL: 1 and 0) */
    bool in_place;            /* an input in the output's place (plan.c) */
    const char *row_loss;     /* cross_entropy_grad's output: also write each
                                 row's cross_entropy here (fuse.c) */
    const char *scratch;      /* a product's output: copy the transposed operand
                                 here first, then multiply plainly (--tune) */
    bool kernel;              /* a product's output: by runtime/gemm.c (--tune) */
    int tri;                  /* a batch of head products' output: TRI_* */
} Operand;

/* The rules a row names. shape: fills n->shape and n->dtype; returns NULL
 * or what is wrong. grad: the gradient reaching input k of `node`, from
 * the output's `dy`. emit: writes the op's C. reads: how input x of n is
 * read (in, given all -1 and 0) when n is read through out. */
typedef const char *ShapeRule(Graph *g, Node *n, char *err, size_t errlen);
typedef int GradRule(Graph *g, int node, int dy, int k);
typedef void EmitRule(Buf *b, const Node *n, const Operand *out, const Operand *in);
typedef void ReadRule(const Node *n, Shape x, const Access *out, Access *in);

typedef struct {
    const char *name;
    int arity;
    OpKind kind;
    LuaBinding lua;
    double (*number)(double); /* MATH(f): f, for a plain number */
    ReadRule *reads;
    ShapeRule *shape;
    GradRule *grad;
    EmitRule *emit;
} OpInfo;

extern const OpInfo op_info[N_OPS];
/* The reads of an op whose emitter takes its inputs as arrays only. */
ReadRule read_arrays;
/* Whether a loop of `outer` iterations over `size` elements in all is
 * split across threads (RT_PARALLEL_FOR): below 256k elements, waking the
 * sleeping threads costs more than they save (at 2 threads the LSTM and
 * the CNN stepped 6% and 10% faster once none of their loops was split,
 * as some were from 32k). Only loops whose iterations write apart: a sum
 * stays on one thread, so no result depends on how many threads there are. */
static inline bool parallel(long outer, long size) { return outer >= 4 && size >= 1 << 18; }
/* The product a matmul node is written as, if it is one BLAS call (not a
 * loop of them over a batch); sa and sb are its inputs' shapes. */
bool matmul_product(const Node *n, Shape sa, Shape sb, Product *p);
/* The product of each matrix of node id, a batch of attention's products
 * (matrices read in place, emit_head_products), with its triangles. */
bool head_product(Graph *g, int id, Product *p);

/* ---- load_model.c: Lua -> forward graph ---- */

typedef struct {
    const char **defines; /* "KEY=VALUE" from -D */
    int n_defines;
    /* NULL: a -D key the model never reads is an error. Else the keys it
     * read are marked here (gradc check: some model must read each). */
    bool *defines_read;
    /* --test-config: the -D of the file's `-- test config:` line first */
    bool test_config;
    const char *optimizer; /* --optimizer: replaces the model's, with its defaults */
    long max_instructions; /* the sandbox's limits; 0: the defaults below */
    long max_memory_mb;
    long max_seconds;
    const char *tune; /* --tune FILE: how to write some products (tune.c) */
    bool heap_arena;  /* --heap-arena: allocated at start however small (Plan.heap) */
    double bucket_mb; /* --bucket-mb: an MPI trainer's buckets of gradients (0: 4) */
    unsigned products; /* PRODUCT_HVP (--hvp), PRODUCT_JVP (--jvp): the twins to write too */
} LoadOptions;

/* The product twins a model may have besides its own, each a file
 * NAME_KIND.c with KIND(params, v, out): H v (hvp.c) and J v (jvp.c). */
enum { PRODUCT_HVP = 1, PRODUCT_JVP = 2, N_PRODUCTS = 2 };
extern const char *const product_kinds[N_PRODUCTS]; /* "hvp", "jvp" */

enum {
    DEFAULT_MAX_INSTRUCTIONS = 100000000, /* Lua instructions a model file may run */
    DEFAULT_MAX_MEMORY_MB = 1024,         /* memory it may hold, Lua's and the graph's */
    DEFAULT_MAX_SECONDS = 10,             /* CPU time its front end may take */
    DEFAULT_BUCKET_MB = 4,                /* an MPI trainer's buckets of gradients, in float */
    MAX_NODES = 1000000,                  /* ops a model may make */
};
/* The most elements a tensor may have, and a model's arena: far past any
 * machine's memory (2^40 floats are 4 TiB), yet a million nodes of it
 * sum, and its doubles count their bytes, without overflowing a long. */
#define MAX_TENSOR (1L << 40)
#define MAX_ARENA (1L << 52)
/* The most bytes of static arena (as double, with the int32 one) a model's
 * C declares: static data past 2 GiB in all does not link with the default
 * code model, so larger arenas are allocated when the program starts. */
#define MAX_STATIC_ARENA (1L << 30)
/* The C type a generated loop counts with: int, unless a tensor it walks
 * has more elements than an int counts. */
static inline const char *count_type(long elements) { return elements > INT_MAX ? "long" : "int"; }

/* Returns NULL after printing one line `file:line: what` to stderr. */
Graph *load_model(const char *path, const LoadOptions *o);
/* A model's C name: its file name without folder and .lua. */
const char *model_name(const char *path);

/* ---- batch.c ---- */
/* Counts the products it merged into *batched. */
Graph *batch_products(Graph *g, int *batched);
/* ---- grad.c ---- */
void grad(Graph *g);
/* The gradients of the scalar y with respect to the n values wrt, into
 * out: forward values, made as the model's own (the language's grad());
 * -1 for a value y does not depend on. With at_call, every node made
 * carries g->loc, not the line of the value it is the gradient of. */
void grad_of_values(Graph *g, int y, int n, const int *wrt, int *out, bool at_call);
/* The same as a backward pass makes them (its nodes is_grad, named for
 * the values they are the gradients of); y -1, a sum of nothing, has none. */
void backward_of(Graph *g, int y, int n, const int *wrt, int *out);
/* Whether every parameter's gradient is more than the zero simplify
 * folds an unreached one to; if not, says so at the parameter's line. */
bool every_param_has_gradient(Graph *g);
/* ---- simplify.c ---- */
/* What simplify did, for gradc print --stats. */
typedef struct {
    int folded;     /* constants computed at compile time */
    int identities; /* x*1, x+0, x^1, neg neg, transpose of transpose, ... */
    int merged;     /* common subexpressions: a node equal to an earlier one */
    int transposes; /* transposes folded into a product's BLAS flags */
    int heads;      /* permutes of attention heads a product reads or writes in place */
    int scales;     /* constant factors folded into a product's alpha */
    int tiles;      /* windows added into a sum they tile, stored instead */
} SimplifyStats;
Graph *simplify(Graph *g, SimplifyStats *st);
/* ---- dce.c ---- */
Graph *dce(Graph *g);
/* The forward graph of the outputs alone: no loss (g->loss is -1), no
 * gradients, only the inputs the outputs read; every parameter kept. */
Graph *dce_inference(Graph *g);
/* The same for a graph with no loss, keeping what training mode computes
 * (the HVP twin's, of the training loss). */
Graph *dce_outputs(Graph *g);

/* ---- hvp.c ---- */
/* The Hessian-vector product twin of a forward graph (taken, and
 * returned): no loss; the model's params, then a direction v_NAME for
 * each; outputs hv_NAME, H v in each parameter. */
Graph *hvp_twin(Graph *g);
/* Adds a direction v_NAME for each of g's parameters, as parameters after
 * them, and returns the scalar sum over them of values[i] . v_i (-1 for
 * none: every values[i] is -1, a value nothing reaches). */
int dot_with_directions(Graph *g, const int *values);

/* ---- jvp.c ---- */
/* The Jacobian-vector product twin of a forward graph (taken, and
 * returned): no loss; the model's params, then a direction v_NAME for
 * each; outputs jv_NAME, the derivative of each real output NAME along v.
 * Its walks leave adjoints u_NAME as parameter nodes that are not the
 * graph's parameters, which simplify and dce must sweep away. */
Graph *jvp_twin(Graph *g);
/* Whether every OP_PARAM node of g is one of its parameters. */
bool reads_only_its_params(Graph *g);

/* ---- remat.c ---- */
/* Counts the copies it made into *recomputed. */
Graph *remat(Graph *g, int *recomputed);

/* ---- derive.c: gradc derive ---- */
/* Prints the gradient of every local and param (with param, only the
 * lines its gradient reads and its own), as text or LaTeX; 0, or 1 after
 * saying why. */
int derive(const char *model, const LoadOptions *o, const char *param, bool latex, FILE *out);

/* ---- graph.c: Graphviz DOT ---- */
void ir_dot(Graph *g, bool backward, FILE *out);

/* ---- fuse.c: loop groups ---- */
typedef struct {
    int *group;        /* per node: the root of the loop group it is emitted in */
    bool *stored;      /* per node: has a buffer (else inlined, a literal, or a
                          temporary of a shared loop) */
    int *loop;         /* per group root that may share a loop: the first root
                          of the loop it is emitted in (itself when it runs its
                          own), or -1 */
    int *next_in_loop; /* per root in a shared loop: the next root in it, or -1 */
} Fusion;
Fusion fuse(Graph *g);
/* Whether an op of kind k is computed in a loop (a group's member or root). */
bool is_loop_kind(OpKind k);
/* The elements a loop rooted at n walks: its input's when it reduces or
 * places its input into a larger output, else its own. */
Shape loop_space(Graph *g, const Node *n);
void fusion_free(Fusion *f);

/* ---- plan.c: the schedule and the static arena ---- */
typedef struct {
    long offset, count; /* its range of the gradient block, in values */
    int at;             /* final after step `at` of the schedule (n_order: the end) */
    int first, n;       /* its parameters, in Plan.bucket_params */
} Bucket;
typedef struct {
    int *order; /* the schedule: node ids in the order the code computes them */
    int n_order;
    int part_end[3];     /* where compute_outputs, compute_loss and the backward end in it */
    unsigned char *part; /* per node: the part that computes it (3: none) */
    long *offset;        /* per node: its place in the arena (or iarena), or -1 */
    bool *grad_copy;     /* per param: its gradient is copied into place */
    bool *fold;          /* per param: plain SGD may update it in its gradient's
                            product (the gradient's GEMM is the last reader of
                            the parameter) */
    long arena_size, iarena_size;
    long params_offset, grads_offset, n_param_elems, loss_offset;
    long n_buffer_elems;        /* the buffers, right after the parameters */
    long state_offset, n_state; /* the optimizer's, after the gradients */
    long fixed_size;            /* all of the above: what lives across steps */
    long peak_live;             /* the most a step's values take at once */
    long kept_for_backward;     /* of those, the forward values the backward reads */
    bool heap;                  /* the arenas are allocated when the program starts, not static */
    /* bucket.c's: the gradients in buckets, in the order they are final */
    int n_buckets;
    Bucket *buckets;
    int *bucket_params; /* bucket b's parameters are [first, first + n) of these */
} Plan;
Plan plan(Graph *g, const Fusion *f);
/* Per node, the part of the schedule that computes it: 0 the outputs and
 * what they read, 1 the rest of the loss, 2 the rest; 3 none. */
unsigned char *schedule_parts(Graph *g);
/* The input an op adds into, which may share the op's place; or -1. */
int accumulated_input(const Node *n);
void plan_free(Plan *p);

/* ---- bucket.c: the gradients an MPI trainer sums together ---- */
/* Buckets of at most cap values, into p. */
void plan_buckets(const Graph *g, Plan *p, long cap);

/* ---- tune.c: gradc tune, and --tune FILE ---- */
/* How a product is written: the BLAS call, the transposed operand copied
 * first, or runtime/gemm.c's kernel. */
typedef enum { USE_BLAS, USE_COPY, USE_KERNEL } TuneUse;
typedef struct {
    Product *product; /* every product the file names, and how to write it */
    TuneUse *use;
    int n;
} Tune;
/* Reads a tune file; 1 after printing `FILE:LINE: what`. */
int tune_read(const char *path, Tune *t);
TuneUse tune_use(const Tune *t, const Product *p);
void tune_free(Tune *t);
/* Whether runtime/gemm.c can compute a product: A B or A^T B with N a
 * multiple of 4, or A B^T with K in whole vectors of 16; a batch of
 * attention's, N a multiple of 4 and op(B) = B^T within the panel. */
static inline bool kernel_fits(const Product *p)
{
    if (p->count)
        return p->n % 4 == 0 && !(p->ta && p->tb) && (!p->tb || (long)p->k * p->n <= HEAD_PANEL);
    return p->tb ? !p->ta && p->k % 16 == 0 : p->n % 4 == 0;
}
/* gradc tune: times each of the compiled model's products every way that
 * applies and writes the file `out`. */
int tune_model(Graph *g, const char *out, bool verbose);

/* ---- build.c: the C compiler, for gradc build, check and tune ---- */
/* Builds the runtime's timing program and runs it on the products
 * (M,N,K,NT or TN), its output to the file `out`; 0 if all went well. */
int run_tune_program(const char *const *products, int n, const char *out, bool verbose);
/* Whether the runtime is beside gradc, made first if gradc is in a build
 * tree without it; if not, says why. */
bool runtime_found(void);
/* Removes dir and all it holds: a scratch folder, or one a failed build made. */
void remove_tree(const char *dir);
/* Builds DIR/NAME_train, NAME_predict and NAME_gradcheck (or only the last). */
/* The trainer and predict program in float (or in double), and the
 * gradient check (always double); or the gradient check only. */
typedef enum { FLOAT_PROGRAMS, DOUBLE_PROGRAMS, GRADCHECK_ONLY } Programs;
/* With mpi, also NAME_train_mpi, the trainer on MPI's processes. */
/* The trainer and the gradient check link the product twins too
 * (NAME_hvp.c, NAME_jvp.c): PRODUCT_HVP and PRODUCT_JVP. */
int build_programs(const char *dir, const char *name, Programs which, bool mpi, unsigned products,
                   bool verbose);
/* Compiles each model with compile_to(model, dir, &products) (the twins
 * it wrote), builds and runs its gradient check, prints one table; 0 if
 * every parameter passed. */
int check_models(const char **models, int n_models,
                 int (*compile_to)(const char *, const char *, unsigned *), double tol,
                 const char *junit, bool verbose);

/* ---- emit_c.c ---- */
typedef struct {
    char *path;
    Buf text;
} OutFile;
/* The four files of a model, built in memory: NAME.h, NAME.c,
 * NAME_train.c, NAME_gradcheck.c. */
/* NAME.h declares the product twins (PRODUCT_HVP, PRODUCT_JVP) and the
 * descriptor points at them. */
void emit_c(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, unsigned products,
            OutFile out[4]);
/* The inference-only model of dce_inference(): NAME_infer.c and the
 * NAME_predict.c main. */
void emit_c_inference(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, OutFile out[2]);
/* A product twin, of hvp_twin() or jvp_twin(): NAME_KIND.c, with
 * NAME_KIND(params, v, out), KIND product_kinds[kind]. */
void emit_c_product(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, int kind,
                    OutFile *out);

/* ---- compile.c: the pipeline ---- */
/* What each pass did, for gradc print --stats. */
typedef struct {
    int loaded, with_grad, simplified, live; /* nodes after load, grad, simplify, dce */
    int batched;                             /* products batch merged */
    int recomputed;                          /* forward values remat copied */
    SimplifyStats simplify;
    long local_reads; /* Lua locals load read to name values */
} PassStats;
/* A model as far as the passes have taken it. */
typedef struct {
    Graph *graph;
    Fusion fusion; /* once fused */
    Plan plan;     /* once planned */
    bool fused, planned;
} Compiled;
/* A row of the pipeline: the pass, run on what came before it (false
 * after printing a user error), and its line of print --stats. */
typedef struct {
    const char *name;
    bool (*run)(Compiled *c, const char *model, const LoadOptions *o, PassStats *st);
    void (*said)(const Compiled *c, const PassStats *st, FILE *out);
    const char *needs, *keeps;
} Pass;
extern const Pass passes[];
extern const int n_passes;
const Pass *find_pass(const char *name);
/* "load, batch, ... and plan", for messages. */
const char *pass_names(void);
/* The passes up to `after` (NULL: all of them), counting into st unless
 * it is NULL; graph NULL after printing a user error. */
Compiled compile(const char *model, const LoadOptions *o, const char *after, PassStats *st);
/* fuse and plan alone, on a graph of one's own (it is the result's). */
Compiled schedule(Graph *g);
void compiled_free(Compiled *c);
/* compile() up to a graph pass (NULL: remat), its graph alone. */
Graph *compile_graph(const char *model, const LoadOptions *o, const char *after, PassStats *st);
/* All of it: the model's files in memory (emit_c's four, then
 * emit_c_inference's two, then one per product twin, NAME_hvp.c and
 * NAME_jvp.c, each with no path unless it is written); 0, or 1 after
 * printing a user error. */
enum { N_OUT_FILES = 6 + N_PRODUCTS };
int compile_files(const char *model, const LoadOptions *o, OutFile out[N_OUT_FILES]);
void free_files(OutFile *files, int n);

/* ---- print.c: gradc print's reports ---- */
/* --stats: what every pass did. */
int print_stats(const char *model, const LoadOptions *o, FILE *out);
/* --memory: the arena's parts, and its size against the least it needs. */
int print_memory(const char *model, const LoadOptions *o, FILE *out);
/* --after fuse (or plan): the loops and calls in the order the code runs
 * them (and where each value lives). */
int print_schedule(const char *model, const LoadOptions *o, bool places, FILE *out);
/* --after bucket: the buckets of gradients, each line after indent. */
int print_bucket_list(const char *model, const LoadOptions *o, FILE *out);
void print_buckets(const Compiled *c, const char *indent, FILE *out);

#endif
