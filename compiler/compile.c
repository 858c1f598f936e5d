/*
 * compile.c: the recipe. The passes are one table, run top to bottom:
 * each row names a pass, the function that runs it on the compilation so
 * far, what it needs and what it leaves, and its line of `gradc print
 * --stats`. Running the pipeline, stopping after a pass (--after), the
 * stats and the check of the graph between passes all come from it.
 * gradc's commands and the front end's fuzzers run it.
 */
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

/* ---- the passes, each on the compilation so far; false after a user error ---- */

static bool run_load(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    c->graph = load_model(model, o);
    if (!c->graph)
        return false;
    st->loaded = c->graph->n;
    st->local_reads = c->graph->front_local_reads;
    return true;
}

static bool run_batch(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)o;
    Graph *b = batch_products(c->graph, &st->batched);
    ir_free(c->graph);
    c->graph = b;
    return true;
}

static bool run_grad(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)o;
    grad(c->graph);
    st->with_grad = c->graph->n;
    return true;
}

/* A parameter whose gradient folds to zero is a mistake in the model:
 * said once the folding is done. */
static bool run_simplify(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)o;
    Graph *s = simplify(c->graph, &st->simplify);
    ir_free(c->graph);
    c->graph = s;
    st->simplified = s->n;
    return every_param_has_gradient(s);
}

static bool run_dce(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)o;
    Graph *d = dce(c->graph);
    ir_free(c->graph);
    c->graph = d;
    st->live = d->n;
    return true;
}

static bool run_remat(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)o;
    Graph *r = remat(c->graph, &st->recomputed);
    ir_free(c->graph);
    c->graph = r;
    return true;
}

static bool run_fuse(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)o, (void)st;
    c->fusion = fuse(c->graph);
    c->fused = true;
    return true;
}

/* A model whose arena is more than a generated program can count is said
 * at the line of its largest tensor. */
static bool run_plan(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)st;
    Graph *g = c->graph;
    c->plan = plan(g, &c->fusion);
    c->plan.heap |= o && o->heap_arena;
    c->planned = true;
    const Plan *p = &c->plan;
    if (p->arena_size + p->iarena_size <= MAX_ARENA)
        return true;
    int big = 0;
    for (int i = 0; i < g->n; i++)
        if (p->offset[i] >= 0 && shape_size(g->nodes[i].shape) > shape_size(g->nodes[big].shape))
            big = i;
    char s[64];
    shape_str(s, sizeof s, g->nodes[big].shape);
    fprintf(stderr,
            "%s:%d: the model's tensors take %ld values, more than the %ld a generated program "
            "counts (the largest, %s, is made here)\n",
            g->nodes[big].loc.file, g->nodes[big].loc.line, p->arena_size + p->iarena_size,
            MAX_ARENA, s);
    return false;
}

static bool run_bucket(Compiled *c, const char *model, const LoadOptions *o, PassStats *st)
{
    (void)model, (void)st;
    double mb = o && o->bucket_mb > 0 ? o->bucket_mb : DEFAULT_BUCKET_MB;
    /* in float's values: a double build's buckets hold as many, twice the bytes */
    plan_buckets(c->graph, &c->plan, (long)(mb * (1 << 20) / 4));
    return true;
}

/* ---- what each said it did, for gradc print --stats ---- */

static void said_load(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)c;
    fprintf(out,
            "  load      %d nodes: the forward graph (its values named after the Lua\n"
            "            locals that hold them: %ld locals read)\n",
            st->loaded, st->local_reads);
}

static void said_batch(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)c;
    fprintf(out, "  batch     products of one matrix by every slice of a tensor made one: %d\n",
            st->batched);
}

static void said_grad(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)c;
    fprintf(out, "  grad      %+d nodes: the backward graph\n", st->with_grad - st->loaded);
}

static void said_simplify(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)c;
    const SimplifyStats *s = &st->simplify;
    fprintf(out,
            "  simplify  %d -> %d nodes: constants folded %d, identities %d, common\n"
            "            subexpressions merged %d, transposes folded into products %d,\n"
            "            heads of attention products read or written in place %d,\n"
            "            constant factors into their alpha %d, windows stored, not\n"
            "            added, into a sum they tile %d\n",
            st->with_grad, st->simplified, s->folded, s->identities, s->merged, s->transposes,
            s->heads, s->scales, s->tiles);
}

static void said_dce(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)c;
    fprintf(out, "  dce       %d -> %d nodes: computing nothing needed %d\n", st->simplified,
            st->live, st->simplified - st->live);
}

static void said_remat(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)c;
    fprintf(out,
            "  remat     forward values computed again where the backward reads\n"
            "            them, instead of kept: %d\n",
            st->recomputed);
}

static void said_fuse(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)st;
    const Graph *g = c->graph;
    const Fusion *f = &c->fusion;
    int loops = 0, calls = 0, products = 0, inlined = 0, shared = 0, temps = 0;
    for (int i = 0; i < g->n; i++) {
        OpKind k = op_info[g->nodes[i].op].kind;
        shared += f->loop[i] >= 0 && f->loop[i] != i;
        temps += f->loop[i] >= 0 && !f->stored[i];
        if (f->group[i] != i)
            inlined++;
        else if (f->loop[i] >= 0 && f->loop[i] != i)
            continue;
        else if (f->loop[i] == i && f->next_in_loop[i] >= 0)
            loops++;
        else if (k == GEMM || k == ROWS) {
            calls++;
            products += g->nodes[i].op == OP_MATMUL || g->nodes[i].op == OP_MATMUL_ADD;
        } else if (f->stored[i] && k != LEAF && k != ALIAS)
            loops++;
    }
    fprintf(out,
            "  fuse      loops %d, library calls %d (matrix products %d), nodes computed\n"
            "            inside the loop of the node that reads them %d; loops joined\n"
            "            by another's (the same elements) %d, values kept only as\n"
            "            temporaries there %d\n",
            loops, calls, products, inlined, shared, temps);
}

static void said_bucket(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)st;
    fprintf(out,
            "  bucket    gradients an MPI trainer sums while the backward runs, in the\n"
            "            order they are final: %d buckets%s\n",
            c->plan.n_buckets, c->plan.n_buckets ? ":" : "");
    print_buckets(c, "            ", out);
}

static void said_plan(const Compiled *c, const PassStats *st, FILE *out)
{
    (void)st;
    const Plan *p = &c->plan;
    char n[32];
    fprintf(out, "  plan      steps %d; arena %s values, %.2fx the minimum (print --memory)\n",
            p->n_order, thousands(n, p->arena_size),
            (double)p->arena_size / (p->fixed_size + p->peak_live));
}

/* The pipeline: passes that make a graph, then the two that schedule it.
 * After each graph pass the graph is checked (ir_check). */
const Pass passes[] = {
    {"load", run_load, said_load, "a model file", "its forward graph"},
    {"batch", run_batch, said_batch, "a forward graph", "products of a matrix by slices, one"},
    {"grad", run_grad, said_grad, "a forward graph", "the backward graph appended"},
    {"simplify", run_simplify, said_simplify, "a training graph", "folded, merged, CSE'd"},
    {"dce", run_dce, said_dce, "roots", "only what a root needs"},
    {"remat", run_remat, said_remat, "a training graph", "cheap values computed again"},
    {"fuse", run_fuse, said_fuse, "a graph", "its loops and library calls"},
    {"plan", run_plan, said_plan, "loops", "every value's place in the arena"},
    {"bucket", run_bucket, said_bucket, "a plan", "gradients grouped as they are final"},
};
const int n_passes = sizeof passes / sizeof *passes;

const Pass *find_pass(const char *name)
{
    for (int i = 0; i < n_passes; i++)
        if (!strcmp(passes[i].name, name))
            return &passes[i];
    return NULL;
}

const char *pass_names(void)
{
    static char names[256];
    if (!names[0])
        for (int i = 0; i < n_passes; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                     i == 0              ? ""
                     : i == n_passes - 1 ? " and "
                                         : ", ",
                     passes[i].name);
    return names;
}

/* Runs the passes from `from` on, up to `after` (NULL: all). */
static Compiled run(Compiled c, const Pass *from, const char *model, const LoadOptions *o,
                    const char *after, PassStats *st)
{
    for (const Pass *p = from; p < passes + n_passes; p++) {
        if (!p->run(&c, model, o, st)) {
            compiled_free(&c);
            return (Compiled){0};
        }
        if (!c.fused)
            ir_check(c.graph);
        if (after && !strcmp(after, p->name))
            break;
    }
    return c;
}

Compiled compile(const char *model, const LoadOptions *o, const char *after, PassStats *st)
{
    PassStats unused;
    if (!st)
        st = &unused;
    *st = (PassStats){0};
    return run((Compiled){0}, passes, model, o, after, st);
}

Compiled schedule(Graph *g)
{
    PassStats unused = {0};
    ir_check(g);
    return run((Compiled){.graph = g}, find_pass("fuse"), NULL, NULL, NULL, &unused);
}

void compiled_free(Compiled *c)
{
    if (c->planned)
        plan_free(&c->plan);
    if (c->fused)
        fusion_free(&c->fusion);
    ir_free(c->graph);
    *c = (Compiled){0};
}

Graph *compile_graph(const char *model, const LoadOptions *o, const char *after, PassStats *st)
{
    Compiled c = compile(model, o, after ? after : "remat", st);
    Graph *g = c.graph;
    c.graph = NULL;
    compiled_free(&c);
    return g;
}

const char *const product_kinds[N_PRODUCTS] = {"hvp", "jvp"};

/* A product twin, from a copy of the forward graph: simplified, swept
 * (training mode kept, as the gradients are taken in it) and scheduled
 * as the inference twin is. */
static Compiled product_compiled(const Graph *forward, int kind)
{
    static Graph *(*const twin_of[N_PRODUCTS])(Graph *) = {hvp_twin, jvp_twin};
    SimplifyStats unused;
    Graph *twin = twin_of[kind](ir_clone(forward));
    Graph *s = simplify(twin, &unused);
    ir_free(twin);
    Graph *d = dce_outputs(s);
    ir_free(s);
    if (!reads_only_its_params(d))
        die("the %s twin still reads an adjoint: a gradient rule is not linear in its gradient",
            product_kinds[kind]);
    return schedule(d);
}

/* J v is of the outputs: a model needs a real one. */
static bool has_real_output(const char *model, const Graph *g)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (g->nodes[g->outputs[i].node].dtype == DT_REAL)
            return true;
    fprintf(stderr, "%s: --jvp: the model has no real outputs to take J v of (outputs = {...})\n",
            model);
    return false;
}

int compile_files(const char *model, const LoadOptions *o, OutFile out[N_OUT_FILES])
{
    Tune tune = {0};
    if (o->tune && tune_read(o->tune, &tune))
        return 1;
    PassStats st = {0};
    Compiled c = run((Compiled){0}, passes, model, o, "batch", &st), twin[N_PRODUCTS] = {{0}};
    unsigned products = o->products;
    /* newton_cg steps by H v: its model has the twin without --hvp. */
    if (c.graph && c.graph->opt.kind == OPT_NEWTON_CG)
        products |= PRODUCT_HVP;
    if (c.graph && (products & PRODUCT_JVP) && !has_real_output(model, c.graph))
        compiled_free(&c);
    for (int k = 0; k < N_PRODUCTS && c.graph; k++)
        if (products & (1u << k))
            twin[k] = product_compiled(c.graph, k);
    if (c.graph)
        c = run(c, find_pass("grad"), model, o, NULL, &st);
    /* The header declares every descriptor alike: a twin too large for a
     * static arena takes the model's to the heap with it. */
    for (int k = 0; k < N_PRODUCTS && c.graph; k++)
        if (twin[k].graph && twin[k].plan.heap)
            c.plan.heap = true;
    if (!c.graph) {
        for (int k = 0; k < N_PRODUCTS; k++)
            compiled_free(&twin[k]);
        tune_free(&tune);
        return 1;
    }
    emit_c(c.graph, &c.fusion, &c.plan, &tune, products, out);
    /* The inference-only twin: the outputs' forward graph alone. */
    Compiled inf = schedule(dce_inference(c.graph));
    if (!inf.graph)
        die("the inference twin does not fit where its model did");
    inf.plan.heap = c.plan.heap;
    emit_c_inference(inf.graph, &inf.fusion, &inf.plan, &tune, out + 4);
    for (int k = 0; k < N_PRODUCTS; k++) {
        out[6 + k] = (OutFile){0};
        if (twin[k].graph) {
            twin[k].plan.heap = c.plan.heap;
            emit_c_product(twin[k].graph, &twin[k].fusion, &twin[k].plan, &tune, k, out + 6 + k);
        }
        compiled_free(&twin[k]);
    }
    compiled_free(&inf);
    compiled_free(&c);
    tune_free(&tune);
    return 0;
}

void free_files(OutFile *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].path);
        buf_free(&files[i].text);
    }
}
