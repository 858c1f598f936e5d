/*
 * emit_c.c: writes a model's C: NAME.h (the descriptor's declaration),
 * NAME.c (arena, entry points, descriptor), NAME_train.c and
 * NAME_gradcheck.c (one-line mains).
 *
 * Needs: a Fusion and a Plan. Names every stored value (from the model:
 * its names, the Lua locals, then what naming.c made of the model's
 * names), lays the files out, and asks emit_loops.c for each node's
 * code. Everything is written into buffers first: the same graph gives
 * the same bytes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "emit.h"

/* ---- names ---- */

static const char *const reserved[] = {
    /* C */
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
    "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "main", "real", "arena", "iarena",
    /* what generated functions use as locals */
    "i", "j", "k", "l", "m", "n", "acc", "row", "drow", "srow", "dot", "label", "mx", "cnt", "on",
    "at", "oi", "win", "lr", "loss", "x0", "m0", "m1", "n0", "n1", "rows", "hyper", "params",
    "grads", "avg", "avg_sq", "pre", "scale", "norm2", "part", "o", "wd", "mu", "b1", "b2", "c1",
    "c2", "eps", "alpha", "g", "sqrt", "forward", "loss_and_grad", "train_step", "inputs",
    "outputs", "memset", "memcpy", "fold", "keep", "compute_grads", "update", "tuned_copy",
    "compute_outputs", "compute_loss", "training", "mask_step", "buffers", "r", "grads_done",
    "bucket", "buckets", "product",
    /* the C library's, which a header may declare */
    "exp", "log", "tanh", "pow", "fmax", "fmin", "sqrt", "fabs", "floor", "ceil", "round", "sin",
    "cos", "tan", "erf", "gamma", "lgamma", "tgamma", "j0", "j1", "jn", "y0", "y1", "yn", "abs",
    "div", "labs", "ldiv", "rand", "srand", "exit", "free", "malloc", "calloc", "realloc", "time",
    "clock", "index", "signal", "remove", "rename", "printf", "puts", "select", "read", "write",
    "open", "close", "stdin", "stdout", "stderr", "errno", NULL};

/* Prefixes of names the generated code's headers own, whatever follows;
 * and C reserves every name that starts with _ at file scope. */
static bool has_reserved_prefix(const char *s)
{
    return (s[0] == 't' && isdigit((unsigned char)s[1])) || s[0] == '_' || !strncmp(s, "REAL", 4) ||
           !strncmp(s, "r_", 2) || !strncmp(s, "rt_", 3) || !strncmp(s, "cblas", 5) ||
           !strncmp(s, "Cblas", 5);
}

/* Where s's probe starts in e->names: FNV-1a. */
static int name_slot(const Emit *e, const char *s)
{
    unsigned long h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return (int)(h & (unsigned long)(e->names_cap - 1));
}

/* Whether s is a name the model's own header takes: NAME_model and its
 * kin, or the include guard NAME_H. */
static bool model_header_name(const Graph *g, const char *s)
{
    static const char *const kin[] = {"_model",       "_model_f32",       "_model_f64",
                                      "_infer_model", "_infer_model_f32", "_infer_model_f64",
                                      "_hvp_model",   "_hvp_model_f32",   "_hvp_model_f64",
                                      "_hvp",         "_hvp_f32",         "_hvp_f64",
                                      "_jvp_model",   "_jvp_model_f32",   "_jvp_model_f64",
                                      "_jvp",         "_jvp_f32",         "_jvp_f64"};
    size_t n = strlen(g->name);
    if (!strncmp(s, g->name, n))
        for (size_t i = 0; i < sizeof kin / sizeof *kin; i++)
            if (!strcmp(s + n, kin[i]))
                return true;
    for (size_t i = 0; i < n; i++)
        if (s[i] != toupper((unsigned char)g->name[i]))
            return false;
    return !strcmp(s + n, "_H");
}

/* The node named s, or -1. A slot whose node lost its name (an alias's)
 * no longer matches. */
static int holder(Emit *e, const char *s)
{
    for (int i = name_slot(e, s); e->names[i] >= 0; i = (i + 1) & (e->names_cap - 1))
        if (e->name[e->names[i]] && !strcmp(e->name[e->names[i]], s))
            return e->names[i];
    return -1;
}

static bool name_taken(Emit *e, const char *s)
{
    if (is_header_name(s) || model_header_name(e->g, s))
        return true;
    for (const char *const *r = reserved; *r; r++)
        if (!strcmp(*r, s))
            return true;
    return holder(e, s) >= 0;
}

/* Room for every node's name at most half full: a power of two. */
static void names_init(Emit *e)
{
    for (e->names_cap = 64; e->names_cap < 2 * e->g->n; e->names_cap *= 2)
        ;
    e->names = xmalloc(e->names_cap * sizeof *e->names);
    memset(e->names, -1, e->names_cap * sizeof *e->names);
    e->suffixes = xcalloc(e->names_cap, sizeof *e->suffixes);
}

/* Once a name is freed, base_k may be free again: start over. */
static void forget_suffixes(Emit *e)
{
    for (int i = 0; i < e->names_cap; i++)
        free(e->suffixes[i].base);
    memset(e->suffixes, 0, e->names_cap * sizeof *e->suffixes);
}

static int *suffix_of(Emit *e, const char *base)
{
    int i = name_slot(e, base);
    while (e->suffixes[i].base && strcmp(e->suffixes[i].base, base))
        i = (i + 1) & (e->names_cap - 1);
    if (!e->suffixes[i].base)
        e->suffixes[i].base = xstrdup(base);
    return &e->suffixes[i].suffix;
}

static void set_name(Emit *e, int id, const char *want)
{
    char base[160], buf[200];
    /* t7 is a loop temporary, r_exp a macro: such names get a prefix. */
    snprintf(base, sizeof base, "%s%s", has_reserved_prefix(want) ? "v_" : "", want);
    int *last = suffix_of(e, base), n = *last + 1;
    for (;; n++) {
        if (n == 1)
            snprintf(buf, sizeof buf, "%s", base);
        else
            snprintf(buf, sizeof buf, "%s_%d", base, n);
        if (!name_taken(e, buf))
            break;
    }
    *last = n;
    if (!is_c_identifier(buf)) /* the front end checks every name it takes */
        die("'%s' would name a C array, but is not an identifier", buf);
    e->name[id] = xstrdup(buf);
    int i = name_slot(e, buf);
    while (e->names[i] >= 0)
        i = (i + 1) & (e->names_cap - 1);
    e->names[i] = id;
}

/* What the model calls a value (node_word), or an alias's input's; or
 * NULL. */
static const char *model_word(Graph *g, int id)
{
    for (const Node *n = ir_at(g, id);; n = ir_at(g, n->in[0])) {
        if (node_word(n))
            return node_word(n);
        if (op_info[n->op].kind != ALIAS)
            return NULL;
    }
}

/* What naming reads: per node, whether the model named it (so far), its
 * one reader (-1: none, -2: several), and where the gradients it alone
 * feeds lead: up its single readers, past unnamed gradients, to the first
 * other node (or a negative reader). */
typedef struct {
    bool *given;
    int *reader, *leads_to;
} NameFacts;

/* The name node id wants, before a suffix: what the model calls it; a
 * gradient d_ and its value's (h_2's is d_h_2); a part of a gradient the
 * name of the gradient it makes, and its op (d_h_matmul). A value whose
 * word names something the model named (an attention's local q, its
 * weight NAME_q) adds its op. */
static void wanted(Emit *e, const NameFacts *nm, int id, char *buf, size_t len)
{
    const Node *n = ir_at(e->g, id);
    const char *word = model_word(e->g, id), *op = op_info[n->op].name;
    if (n->grad_of >= 0 && n->grad_of < id) {
        /* A reshape's gradient is its input's, unless a local named it. */
        int of = n->grad_of;
        while (op_info[ir_at(e->g, of)->op].kind == ALIAS && !ir_at(e->g, of)->var)
            of = ir_at(e->g, of)->in[0];
        char name[150];
        if (e->name[of]) /* named before it: its gradient takes the same suffix */
            snprintf(name, sizeof name, "%s", e->name[of]);
        else
            wanted(e, nm, of, name, sizeof name);
        snprintf(buf, len, "d_%s", name);
        return;
    }
    if (!word && n->is_grad) {
        /* Up the gradients it alone feeds, to one with a name. */
        int r = nm->reader[id] >= 0 ? nm->leads_to[nm->reader[id]] : nm->reader[id];
        if (r >= 0 && ir_at(e->g, r)->is_grad) {
            char name[130];
            wanted(e, nm, r, name, sizeof name);
            snprintf(buf, len, "%s_%s", name, op);
        } else
            snprintf(buf, len, "d_%s", op);
        return;
    }
    if (!word) {
        snprintf(buf, len, "%s", op);
        return;
    }
    int h = holder(e, word);
    if (h >= 0 && h != id && nm->given[h] && strcmp(word, op))
        snprintf(buf, len, "%s_%s", word, op);
    else
        snprintf(buf, len, "%s", word);
}

/* The name a person would give: the model's own names first, then what
 * the model calls each value (its Lua local, or what naming.c made of
 * the model's names), then the op. Gradients are d_ plus their value's
 * name. A number suffix only where two values want one name. */
static void name_nodes(Emit *e)
{
    Graph *g = e->g;
    char buf[160];
    names_init(e);
    for (int i = 0; i < g->n; i++)
        if (ir_at(g, i)->name)
            set_name(e, i, ir_at(g, i)->name);
    for (int i = 0; i < g->n_params; i++) {
        int gr = g->params[i].grad;
        snprintf(buf, sizeof buf, "d_%s", ir_at(g, g->params[i].node)->name);
        /* A gradient copied into place from another array (a reshape's)
         * names that array, if nothing else does. */
        if (gr >= 0 && e->p->grad_copy[i]) {
            while (op_info[ir_at(g, gr)->op].kind == ALIAS)
                gr = ir_at(g, gr)->in[0];
            if (!ir_at(g, gr)->is_grad || !e->f->stored[gr])
                gr = -1;
        }
        if (gr >= 0 && !e->name[gr])
            set_name(e, gr, buf);
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (!e->name[g->outputs[i].node])
            set_name(e, g->outputs[i].node, g->outputs[i].name);
    if (g->loss >= 0 && !e->name[g->loss])
        set_name(e, g->loss, "loss_value");
    /* A reshape is its input's array under another shape: the same name. */
    for (int i = 0; i < g->n; i++)
        if (op_info[ir_at(g, i)->op].kind == ALIAS) {
            free(e->name[i]);
            e->name[i] = NULL;
        }
    NameFacts nm = {xmalloc(g->n * sizeof *nm.given), xmalloc(g->n * sizeof *nm.reader),
                    xmalloc(g->n * sizeof *nm.leads_to)};
    for (int i = 0; i < g->n; i++) {
        nm.given[i] = e->name[i] != NULL;
        nm.reader[i] = -1;
    }
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < ir_at(g, i)->n_in; k++) {
            int x = ir_at(g, i)->in[k];
            nm.reader[x] = nm.reader[x] == -1 ? i : -2;
        }
    /* Readers come after what they read: from the end, each walk is one
     * step onto a walk already taken, so naming stays linear. */
    for (int i = g->n - 1; i >= 0; i--) {
        int r = nm.reader[i];
        bool passes = ir_at(g, i)->is_grad && ir_at(g, i)->grad_of < 0;
        nm.leads_to[i] = !passes ? i : r >= 0 ? nm.leads_to[r] : r;
    }
    forget_suffixes(e);
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        if (op_info[n->op].kind == ALIAS && e->name[n->in[0]]) {
            e->name[i] = xstrdup(e->name[n->in[0]]);
            continue;
        }
        if (e->name[i] || !e->f->stored[i])
            continue;
        wanted(e, &nm, i, buf, sizeof buf);
        set_name(e, i, buf);
    }
    free(nm.given);
    free(nm.reader);
    free(nm.leads_to);
}

/* ---- the files ---- */

static void emit_header(Emit *e, Buf *b)
{
    const char *nm = e->g->name;
    char guard[200];
    size_t i = 0;
    for (; nm[i] && i < sizeof guard - 3; i++)
        guard[i] = toupper((unsigned char)nm[i]);
    snprintf(guard + i, sizeof guard - i, "_H");
    const char *konst = e->p->heap ? "" : "const "; /* open_arena() sets a heap arena's */
    buf_printf(b, "/* %s.h: generated by gradc from ", nm);
    buf_c_text(b, e->g->source, SIZE_MAX, C_COMMENT);
    buf_printf(b,
               "; do not edit. */\n"
               "#ifndef %s\n#define %s\n\n#include \"rt_model.h\"\n\n"
               "/* The model (%s.c) and its inference-only twin (%s_infer.c), each\n"
               " * built as float (_f32) or as double (_f64). */\n"
               "extern %srt_model %s_model_f32, %s_model_f64;\n"
               "extern %srt_model %s_infer_model_f32, %s_infer_model_f64;\n\n"
               "#ifdef REAL_DOUBLE\n#define %s_model %s_model_f64\n#define %s_infer_model "
               "%s_infer_model_f64\n"
               "#else\n#define %s_model %s_model_f32\n#define %s_infer_model %s_infer_model_f32\n"
               "#endif\n",
               guard, guard, nm, nm, konst, nm, nm, konst, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm);
    static const char *const what[N_PRODUCTS] = {
        "Hessian-vector product twin (%s_hvp.c): out = H v, H the\n"
        " * Hessian of the loss in the parameters, at `params` and the inputs\n"
        " * set in %s_hvp_model; params, v and out are laid out as\n"
        " * %s_model's parameter block. */\n",
        "Jacobian-vector product twin (%s_jvp.c): out = J v, J the\n"
        " * Jacobian of the real outputs in the parameters (in training mode,\n"
        " * as gradients are), at `params` and the inputs set in %s_jvp_model;\n"
        " * params and v are laid out as %s_model's parameter block, out as\n"
        " * its real outputs one after another, in their order. */\n"};
    for (int k = 0; k < N_PRODUCTS; k++) {
        if (!(e->products & (1u << k)))
            continue;
        const char *kind = product_kinds[k];
        buf_printf(b, "\n/* The ");
        buf_printf(b, what[k], nm, nm, nm);
        buf_printf(b,
                   "extern %srt_model %s_%s_model_f32, %s_%s_model_f64;\n"
                   "void %s_%s_f32(const float *params, const float *v, float *out);\n"
                   "void %s_%s_f64(const double *params, const double *v, double *out);\n\n"
                   "#ifdef REAL_DOUBLE\n#define %s_%s_model %s_%s_model_f64\n"
                   "#define %s_%s %s_%s_f64\n"
                   "#else\n#define %s_%s_model %s_%s_model_f32\n#define %s_%s %s_%s_f32\n"
                   "#endif\n",
                   konst, nm, kind, nm, kind, nm, kind, nm, kind, nm, kind, nm, kind, nm, kind, nm,
                   kind, nm, kind, nm, kind, nm, kind, nm, kind);
    }
    buf_printf(b, "\n#endif\n");
}

static void emit_main(Emit *e, Buf *b, const char *what, const char *fn)
{
    buf_printf(b, "/* %s_%s.c: generated by gradc from ", e->g->name, what);
    buf_c_text(b, e->g->source, SIZE_MAX, C_COMMENT);
    buf_printf(
        b,
        "; do not edit. */\n"
        "#include \"rt.h\"\n#include \"%s.h\"\n\n"
        "int main(int argc, char **argv)\n{\n"
        "    rt_use_best_blas(argv); /* may start this program again, with faster kernels */\n"
        "    return %s(&%s_%s, argc, argv);\n}\n",
        e->g->name, fn, e->g->name, e->g->loss >= 0 ? "model" : "infer_model");
}

/* A tensor's name: a constant pointer into a static arena, or one
 * open_arena() points into the allocated one. */
/* The twin's kind of product (hvp, jvp), or -1 (the model, infer). */
static int product_kind(const Emit *e)
{
    for (int k = 0; e->twin && k < N_PRODUCTS; k++)
        if (!strcmp(e->twin, product_kinds[k]))
            return k;
    return -1;
}

static void declare(Emit *e, int id, const char *what)
{
    const Node *n = ir_at(e->g, id);
    if (!e->used[id] || op_info[n->op].kind == ALIAS)
        return;
    char s[64];
    shape_str(s, sizeof s, n->shape);
    /* A product twin reads the parameters and v where its caller has them. */
    if (product_kind(e) >= 0 && n->op == OP_PARAM) {
        buf_printf(e->b, "static const real *%s; /* %s%s, set by %s_%s() */\n", e->name[id], what,
                   s, e->g->name, e->twin);
        return;
    }
    const char *arena = n->dtype == DT_I32 ? "iarena" : "arena";
    const char *type = n->dtype == DT_I32 ? "int32_t" : "real";
    if (e->p->heap) {
        buf_printf(e->b, "static %s *%s; /* %s%s */\n", type, e->name[id], what, s);
        buf_printf(&e->places, "    %s = %s + %ld;\n", e->name[id], arena, e->p->offset[id]);
    } else
        buf_printf(e->b, "static %s *const %s = %s + %ld; /* %s%s */\n", type, e->name[id], arena,
                   e->p->offset[id], what, s);
}

/* A heap arena's constructor (Plan.heap). */
static void emit_open_arena(Emit *e, const char *descriptor)
{
    const char *nm = e->g->name;
    buf_printf(e->b,
               "\n/* Before main, as a static arena would be: the arenas, and each\n"
               " * tensor's place in them. */\n"
               "__attribute__((constructor)) static void open_arena(void)\n{\n"
               "    arena = rt_arena_alloc(\"%s\", %ld, sizeof *arena);\n",
               nm, e->arena_size);
    if (e->p->iarena_size)
        buf_printf(e->b, "    iarena = rt_arena_alloc(\"%s\", %ld, sizeof *iarena);\n", nm,
                   e->p->iarena_size);
    buf_printf(e->b, "%s    REAL_SUFFIX(%s).arena = arena;\n", e->places.data ? e->places.data : "",
               descriptor);
    if (e->p->iarena_size)
        buf_printf(e->b, "    REAL_SUFFIX(%s).iarena = iarena;\n", descriptor);
    buf_printf(e->b, "}\n");
}

static void emit_arena(Emit *e)
{
    Graph *g = e->g;
    const Plan *p = e->p;
    long copy = 0;
    Product tuned;
    for (int i = 0; i < g->n; i++)
        if (e->f->stored[i] && product_use(e, i, &tuned) == USE_COPY) {
            long size = (long)tuned.k * (tuned.ta ? tuned.m : tuned.n);
            copy = size > copy ? size : copy;
        }
    /* tuned_copy past the plan's arena: every operand of a product then
     * lies in the one arena (make bench replays them from a copy of it). */
    e->arena_size = p->arena_size + copy;
    /* Places are 64 bytes apart (plan.c): so is each from a cache line's
     * start, and no vector load of a row straddles two lines. */
    if (p->heap) {
        char n[32];
        buf_printf(e->b,
                   "/* %s values, allocated when the program starts (open_arena, at\n"
                   " * the end): static data past 2 GiB does not link with the default\n"
                   " * code model. */\n"
                   "static real *arena;\n",
                   thousands(n, e->arena_size));
        if (p->iarena_size)
            buf_printf(e->b, "static int32_t *iarena;\n");
    } else {
        buf_printf(e->b, "static _Alignas(64) real arena[%ld];\n", e->arena_size);
        if (p->iarena_size)
            buf_printf(e->b, "static int32_t iarena[%ld];\n", p->iarena_size);
    }
    if (copy) {
        const char *what = "/* Where a product --tune writes plainly copies its transposed "
                           "operand. */\n";
        if (p->heap) {
            buf_printf(e->b, "%sstatic real *tuned_copy;\n", what);
            buf_printf(&e->places, "    tuned_copy = arena + %ld;\n", p->arena_size);
        } else
            buf_printf(e->b, "%sstatic real *const tuned_copy = arena + %ld;\n", what,
                       p->arena_size);
    }
    buf_printf(e->b, "\n");
    for (int i = 0; i < g->n_inputs; i++)
        declare(e, g->inputs[i], "input ");
    for (int i = 0; i < g->n_params; i++)
        declare(e, g->params[i].node, "param ");
    for (int i = 0; i < g->n_buffers; i++)
        declare(e, g->buffers[i].node, "buffer ");
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].grad >= 0 && !p->grad_copy[i])
            declare(e, g->params[i].grad, "gradient ");
    /* The gradients declared above, flagged once: not a scan of every
     * param for every node, which a model of many params made quadratic. */
    bool *grad_slot = xcalloc(g->n, sizeof *grad_slot);
    for (int k = 0; k < g->n_params; k++)
        if (g->params[k].grad >= 0 && !p->grad_copy[k])
            grad_slot[g->params[k].grad] = true;
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        if (e->f->stored[i] && n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_BUFFER &&
            !grad_slot[i])
            declare(e, i, "");
    }
    free(grad_slot);
}

static bool has_op(const Graph *g, int op)
{
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == op)
            return true;
    return false;
}

/* Whether the model draws random numbers in training (dropout, shifts). */
static bool has_draws(const Graph *g) { return has_op(g, OP_DROPOUT) || has_op(g, OP_SHIFT); }

/* A model with dropout, shifts or batch norm behaves differently in
 * training and evaluation. */
static bool has_modes(const Graph *g) { return has_draws(g) || has_op(g, OP_MODE); }

/* Emits parts from..to of the schedule (plan.c): 0 compute_outputs, 1
 * the rest of the loss, 2 the backward pass. A loop part 1 shares with
 * the backward pass computes only its part-1 values when `to` is 1. */
/* Bucket b's gradients by name: "d_b and d_W are final", or the first
 * and the last of more than two. */
static void bucket_names(Emit *e, int b)
{
    const Bucket *k = &e->p->buckets[b];
    const Graph *g = e->g;
    const char *first = g->nodes[g->params[e->p->bucket_params[k->first]].node].name;
    const char *last = g->nodes[g->params[e->p->bucket_params[k->first + k->n - 1]].node].name;
    buf_printf(e->b, " d_");
    buf_c_text(e->b, first, SIZE_MAX, C_COMMENT);
    if (k->n > 1) {
        buf_printf(e->b, k->n == 2 ? " and d_" : " to d_");
        buf_c_text(e->b, last, SIZE_MAX, C_COMMENT);
    }
    if (k->n > 2)
        buf_printf(e->b, ", %d gradients,", k->n);
    buf_printf(e->b, k->n > 1 ? " are final" : " is final");
}

/* After step s of the schedule (n_order: the end of the backward pass),
 * the buckets it finished, for an MPI trainer to start summing. */
static void emit_grads_done(Emit *e, int s)
{
    for (int b = 0; b < e->p->n_buckets; b++) {
        if (e->p->buckets[b].at != s)
            continue;
        buf_printf(e->b, "    if (grads_done) /*");
        bucket_names(e, b);
        buf_printf(e->b, " */\n        grads_done(%d);\n", b);
    }
}

static void emit_parts(Emit *e, int from, int to)
{
    e->last_loc = (SrcLoc){0};
    e->max_part = to;
    for (int s = from ? e->p->part_end[from - 1] : 0; s < e->p->part_end[to]; s++) {
        if (e->p->part[e->p->order[s]] <= to)
            emit_node(e, e->p->order[s]);
        if (to == 2)
            emit_grads_done(e, s);
    }
}

static void emit_forward(Emit *e)
{
    Graph *g = e->g;
    buf_printf(
        e->b, "\n/* The forward pass of the outputs, in the mode forward() or\n"
              " * loss_and_grad() set. */\nRT_VECTOR_CLONES\nstatic void compute_outputs(void)\n{");
    emit_parts(e, 0, 0);
    bool product = product_kind(e) >= 0;
    buf_printf(e->b,
               "}\n\n/* %s: the outputs for the first `rows` rows of the inputs. */\n"
               "static void forward(int rows)\n{\n",
               product ? "Of the training loss" : "Evaluation");
    if (has_modes(g))
        buf_printf(e->b, "    training = %d;\n", product);
    for (int i = 0; i < g->n_inputs; i++) {
        const Node *x = ir_at(g, g->inputs[i]);
        long row = shape_size(x->shape) / x->shape.dim[0];
        buf_printf(
            e->b, "    memset(%s + (long)rows * %ld, 0, (size_t)(%d - rows) * %ld * sizeof *%s);\n",
            use(e, x->id), row, g->batch, row, e->name[x->id]);
    }
    buf_printf(e->b, "    compute_outputs();\n}\n");
}

static void emit_loss_and_grad(Emit *e)
{
    Graph *g = e->g;
    buf_printf(e->b, "\n/* Evaluation: the rest of the loss, after compute_outputs(). */\n"
                     "RT_VECTOR_CLONES\nstatic void compute_loss(void)\n{");
    emit_parts(e, 1, 1);
    buf_printf(e->b, "}\n\n/* Evaluation: the loss of the whole batch, with no gradients. */\n"
                     "static double loss(void)\n{\n");
    if (has_modes(g))
        buf_printf(e->b, "    training = 0;\n");
    buf_printf(e->b, "    compute_outputs();\n    compute_loss();\n    return %s[0];\n}\n",
               use(e, g->loss));
    bool folds = false;
    for (int i = 0; i < g->n_params; i++)
        folds |= e->p->fold[i];
    if (folds)
        buf_printf(e->b,
                   "\n/* Training: the rest of the loss and the gradients, after\n"
                   " * compute_outputs(). With fold (plain SGD, nothing clipped), the\n"
                   " * products that would make the gradients of the weights\n"
                   " * train_step() names update those weights instead,\n"
                   " * w = keep w - lr dw, and those gradients are not stored. */\n"
                   "RT_VECTOR_CLONES\nstatic void compute_grads(int fold, real lr, real keep)\n{");
    else
        buf_printf(e->b, "\n/* Training: the rest of the loss and the gradients, after\n"
                         " * compute_outputs(). */\n"
                         "RT_VECTOR_CLONES\nstatic void compute_grads(void)\n{");
    emit_parts(e, 1, 2);
    bool first = true;
    for (int i = 0; i < g->n_params; i++) {
        if (!e->p->grad_copy[i])
            continue;
        const Node *pn = ir_at(g, g->params[i].node);
        if (first)
            buf_printf(e->b, "\n    /* gradients that are other tensors */\n");
        first = false;
        buf_printf(e->b, "    memcpy(arena + %ld, %s, %ld * sizeof *arena); /* d_%s */\n",
                   e->p->grads_offset + e->p->offset[pn->id] - e->p->params_offset,
                   use(e, g->params[i].grad), shape_size(pn->shape), pn->name);
    }
    emit_grads_done(e, e->p->n_order);
    buf_printf(e->b, "}\n\n/* Training: the loss, and every parameter's gradient. */\n"
                     "static double loss_and_grad(void)\n{\n");
    if (has_modes(g))
        buf_printf(e->b, "    training = 1;\n");
    buf_printf(e->b,
               "    compute_outputs();\n    compute_grads(%s);\n"
               "    return %s[0];\n}\n",
               folds ? "0, 0, 0" : "", use(e, g->loss));
}

/* The end of a training step: each buffer takes its next value. */
static void buffer_updates(Emit *e, Buf *b)
{
    for (int i = 0; i < e->g->n_buffers; i++) {
        const Node *n = ir_at(e->g, e->g->buffers[i].node);
        buf_printf(b, "    memcpy(%s, %s, %ld * sizeof *arena); /* running average */\n",
                   use(e, n->id), use(e, e->g->buffers[i].next), shape_size(n->shape));
    }
}

/* A step as the gradients, then update() from them. */
static void step_by_update(Emit *e, const char *indent)
{
    buf_printf(e->b, "%sconst double loss = loss_and_grad();\n%supdate(hyper);\n%sreturn loss;\n",
               indent, indent, indent);
}

/* Plain SGD with some updates folded into products (plan.c): unclipped,
 * compute_grads() updates those weights and the rest step after it;
 * clipped, every gradient is needed first, and update() is the usual
 * step. */
static void emit_folded_step(Emit *e)
{
    Graph *g = e->g;
    const Plan *p = e->p;
    /* The comment names the folded weights, wrapped as a person would. */
    Buf text = {0};
    buf_printf(&text, "One step of SGD. Unclipped, the products that make the gradients of");
    int n = 0, total = 0;
    for (int i = 0; i < g->n_params; i++)
        total += p->fold[i];
    for (int i = 0; i < g->n_params; i++)
        if (p->fold[i])
            buf_printf(&text, " %s%s", ir_at(g, g->params[i].node)->name,
                       ++n == total     ? ""
                       : n == total - 1 ? " and"
                                        : ",");
    buf_printf(&text, " update %s in place; the other parameters step after.",
               total == 1 ? "it" : "them");
    buf_printf(e->b, "\n/*");
    int col = 2;
    for (char *word = strtok(text.data, " "); word; word = strtok(NULL, " ")) {
        if (col + 1 + (int)strlen(word) > 76) {
            buf_printf(e->b, "\n *");
            col = 2;
        }
        buf_printf(e->b, " %s", word);
        col += 1 + strlen(word);
    }
    buf_free(&text);
    buf_printf(e->b, " */\n"
                     "static double train_step(const rt_hyper *hyper)\n{\n");
    if (has_draws(g))
        buf_printf(e->b, "    mask_step = (uint64_t)hyper->step; /* new random draws */\n");
    buf_printf(e->b,
               "    if (hyper->clip > 0 || (hyper->grad_scale > 0 && hyper->grad_scale != 1)) {\n");
    step_by_update(e, "        ");
    buf_printf(e->b, "    }\n");
    if (has_modes(g))
        buf_printf(e->b, "    training = 1;\n");
    buf_printf(e->b, "    const real lr = (real)hyper->lr, wd = (real)hyper->weight_decay;\n"
                     "    compute_outputs();\n"
                     "    compute_grads(1, lr, 1 - lr * wd);\n");
    if (n < g->n_params)
        buf_printf(e->b,
                   "    real *const params = arena + %ld;\n"
                   "    const real *const grads = arena + %ld;\n",
                   p->params_offset, p->grads_offset);
    for (int i = 0; i < g->n_params; i++) {
        if (p->fold[i])
            continue;
        const Node *w = ir_at(g, g->params[i].node);
        long from = p->offset[w->id] - p->params_offset, to = from + shape_size(w->shape);
        while (i + 1 < g->n_params && !p->fold[i + 1])
            to += shape_size(ir_at(g, g->params[++i].node)->shape);
        buf_printf(e->b,
                   "    for (%s i = %ld; i < %ld; i++) /* %s%s */\n"
                   "        params[i] -= lr * (grads[i] + wd * params[i]);\n",
                   count_type(to), from, to, w->name,
                   to - from > shape_size(w->shape) ? " and on" : "");
    }
    buffer_updates(e, e->b);
    buf_printf(e->b, "    return %s[0];\n}\n", use(e, g->loss));
}

static void emit_train_step(Emit *e)
{
    const Graph *g = e->g;
    const Plan *p = e->p;
    bool folds = false;
    for (int i = 0; i < g->n_params; i++)
        folds |= p->fold[i];
    Buf after = {0};
    buffer_updates(e, &after);
    optim_emit_update(e->b, &g->opt, g->name, p->params_offset, p->grads_offset, p->state_offset,
                      p->n_param_elems, after.data ? after.data : "");
    buf_free(&after);
    if (folds) {
        emit_folded_step(e);
        return;
    }
    buf_printf(e->b, "\n/* Training: one step, returning the loss before it. */\n"
                     "static double train_step(const rt_hyper *hyper)\n{\n");
    if (has_draws(g))
        buf_printf(e->b, "    mask_step = (uint64_t)hyper->step; /* new random draws */\n");
    step_by_update(e, "    ");
    buf_printf(e->b, "}\n");
}

/* A descriptor row; with_init adds a parameter's initializer. */
static void tensor_entry(Emit *e, int id, const char *name, long offset, bool with_init)
{
    const Node *n = ir_at(e->g, id);
    char num[2][40];
    buf_printf(e->b, "    {.name = \"");
    buf_c_text(e->b, name, SIZE_MAX, C_STRING);
    buf_printf(e->b, "\", .dtype = %s, .rank = %d, .shape = {",
               n->dtype == DT_I32 ? "RT_I32" : "RT_REAL", n->shape.rank);
    for (int i = 0; i < n->shape.rank; i++)
        buf_printf(e->b, "%s%d", i ? ", " : "", n->shape.dim[i]);
    buf_printf(e->b, "}, .size = %ld, .offset = %ld", shape_size(n->shape), offset);
    if (with_init) {
        static const char *const kinds[] = {"RT_INIT_NONE", "RT_INIT_NORMAL", "RT_INIT_UNIFORM",
                                            "RT_INIT_CONST"};
        fmt_real(num[0], n->init_a);
        fmt_real(num[1], n->init_b);
        buf_printf(e->b, ",\n     .init = %s, .init_a = %s, .init_b = %s", kinds[n->init], num[0],
                   num[1]);
    }
    if (n->classes)
        buf_printf(e->b, ", .classes = %d", n->classes);
    buf_printf(e->b, "},\n");
}

/* What the descriptor is called after the model's name. */
static const char *descriptor_name(const Emit *e)
{
    static const char *const name[N_PRODUCTS] = {"hvp_model", "jvp_model"};
    int k = product_kind(e);
    return !e->twin ? "model" : k >= 0 ? name[k] : "infer_model";
}

/* The twin's entry point, NAME_hvp or NAME_jvp, and the descriptor's
 * untyped one: out is its outputs one after another. */
static void emit_product(Emit *e)
{
    Graph *g = e->g;
    const Plan *p = e->p;
    const char *kind = e->twin;
    int n = g->n_params / 2;
    buf_printf(e->b, "\n/* %s at the parameters r_params and the inputs in the arena; %s. */\n",
               product_kind(e) == 0 ? "H v" : "J v",
               product_kind(e) == 0
                   ? "r_params,\n * r_v and r_out laid out as the parameter block"
                   : "r_params\n * and r_v laid out as the parameter block, r_out as the real "
                     "outputs\n * one after another");
    /* r_: the model's own names may be params, v or out. */
    buf_printf(e->b,
               "void REAL_SUFFIX(%s_%s)(const real *r_params, const real *r_v, real *r_out)\n{\n",
               g->name, kind);
    long v_offset = p->offset[g->params[n].node];
    bool read[2] = {false, false};
    for (int i = 0; i < 2 * n; i++) {
        int id = g->params[i].node;
        if (e->used[id])
            buf_printf(e->b, "    %s = r_%s + %ld;\n", e->name[id], i < n ? "params" : "v",
                       p->offset[id] - (i < n ? p->params_offset : v_offset));
        read[i >= n] |= e->used[id];
    }
    /* H v of a quadratic does not depend on the parameters. */
    for (int k = 0; k < 2; k++)
        if (!read[k])
            buf_printf(e->b, "    (void)r_%s;\n", k ? "v" : "params");
    buf_printf(e->b, "    forward(%d);\n", g->batch);
    long at = 0;
    for (int i = 0; i < g->n_outputs; i++) {
        const Node *y = ir_at(g, g->outputs[i].node);
        long k = shape_size(y->shape);
        char num[40];
        fmt_real(num, y->value);
        if (y->op == OP_CONST)
            buf_printf(e->b,
                       "    for (%s i = 0; i < %ld; i++) /* %s */\n"
                       "        r_out[%ld + i] = REAL_C(%s);\n",
                       count_type(k), k, g->outputs[i].name, at, num);
        else
            buf_printf(e->b, "    memcpy(r_out + %ld, %s, %ld * sizeof *arena);\n", at,
                       use(e, y->id), k);
        at += k;
    }
    buf_printf(e->b,
               "}\n\nstatic void product(const void *params, const void *v, void *out)\n{\n"
               "    REAL_SUFFIX(%s_%s)(params, v, out);\n}\n",
               g->name, kind);
}

/* The reals a product twin writes: its outputs, one after another. */
static long product_size(Graph *g)
{
    long size = 0;
    for (int i = 0; i < g->n_outputs; i++)
        size += shape_size(ir_at(g, g->outputs[i].node)->shape);
    return size;
}

static void emit_descriptor(Emit *e)
{
    Graph *g = e->g;
    const Plan *p = e->p;
    if (g->n_inputs) {
        buf_printf(e->b, "\nstatic const rt_tensor inputs[] = {\n");
        for (int i = 0; i < g->n_inputs; i++)
            tensor_entry(e, g->inputs[i], ir_at(g, g->inputs[i])->name, p->offset[g->inputs[i]],
                         false);
        buf_printf(e->b, "};\n");
    }
    buf_printf(e->b, "\nstatic const rt_tensor params[] = {\n");
    for (int i = 0; i < g->n_params; i++)
        tensor_entry(e, g->params[i].node, ir_at(g, g->params[i].node)->name,
                     p->offset[g->params[i].node], true);
    buf_printf(e->b, "};\n");
    if (g->n_buffers) {
        buf_printf(e->b, "\nstatic const rt_tensor buffers[] = {\n");
        for (int i = 0; i < g->n_buffers; i++)
            tensor_entry(e, g->buffers[i].node, ir_at(g, g->buffers[i].node)->name,
                         p->offset[g->buffers[i].node], true);
        buf_printf(e->b, "};\n");
    }
    bool training = g->loss >= 0;
    if (training) {
        buf_printf(e->b, "\nstatic const rt_tensor grads[] = {\n");
        for (int i = 0; i < g->n_params; i++) {
            char name[160];
            int pn = g->params[i].node;
            snprintf(name, sizeof name, "d_%s", ir_at(g, pn)->name);
            tensor_entry(e, pn, name, p->grads_offset + p->offset[pn] - p->params_offset, false);
        }
        buf_printf(e->b, "};\n");
    }
    if (training && p->n_buckets) {
        buf_printf(e->b, "\n/* The gradients in the order they are final, grouped. */\n"
                         "static const rt_bucket buckets[] = {\n");
        for (int b = 0; b < p->n_buckets; b++) {
            buf_printf(e->b, "    {.offset = %ld, .count = %ld}, /*", p->buckets[b].offset,
                       p->buckets[b].count);
            bucket_names(e, b);
            buf_printf(e->b, " */\n");
        }
        buf_printf(e->b, "};\n");
    }
    if (g->n_outputs) {
        buf_printf(e->b, "\nstatic const rt_tensor outputs[] = {\n");
        for (int i = 0; i < g->n_outputs; i++)
            tensor_entry(e, g->outputs[i].node, g->outputs[i].name, p->offset[g->outputs[i].node],
                         false);
        buf_printf(e->b, "};\n");
    }
    buf_printf(e->b, "\n%srt_model REAL_SUFFIX(%s_%s) = {\n    .name = \"%s\",\n    .source = \"",
               p->heap ? "" : "const ", g->name, descriptor_name(e), g->name);
    buf_c_text(e->b, g->source, SIZE_MAX, C_STRING);
    buf_printf(e->b,
               "\",\n    .batch = %d,\n    .real = RT_REAL,\n"
               "%s    .iarena = %s,\n    .arena_size = %ld,\n    .iarena_size = %ld,\n"
               "    .n_inputs = %d,\n    .n_params = %d,\n    .n_outputs = %d,\n"
               "    .inputs = %s,\n    .params = params,\n    .grads = %s,\n    .outputs = %s,\n"
               "    .params_offset = %ld,\n    .grads_offset = %ld,\n    .n_param_elems = %ld,\n"
               "    .state_offset = %ld,\n    .n_state = %ld,\n    .loss_offset = %ld,\n",
               g->batch, p->heap ? "" : "    .arena = arena,\n",
               p->iarena_size && !p->heap ? "iarena" : "NULL", e->arena_size, p->iarena_size,
               g->n_inputs, g->n_params, g->n_outputs, g->n_inputs ? "inputs" : "NULL",
               training ? "grads" : "NULL", g->n_outputs ? "outputs" : "NULL", p->params_offset,
               p->grads_offset, p->n_param_elems, p->state_offset, p->n_state, p->loss_offset);
    if (g->n_buffers)
        buf_printf(e->b,
                   "    .n_buffers = %d,\n    .buffers = buffers,\n    .n_buffer_elems = %ld,\n",
                   g->n_buffers, p->n_buffer_elems);
    optim_emit_hyper(e->b, &g->opt);
    if (training && g->loss_rows != LOSS_MEAN)
        buf_printf(e->b, "    .loss_rows = %s,\n",
                   g->loss_rows == LOSS_SUM ? "RT_LOSS_SUM" : "RT_LOSS_OTHER");
    if (training)
        buf_printf(e->b, "    .loss = loss,\n    .loss_and_grad = loss_and_grad,\n"
                         "    .update = update,\n    .train_step = train_step,\n");
    if (training && has_draws(g))
        buf_printf(e->b, "    .draws = &mask_step,\n");
    if (training && p->n_buckets)
        buf_printf(
            e->b, "    .n_buckets = %d,\n    .buckets = buckets,\n    .grads_done = &grads_done,\n",
            p->n_buckets);
    for (int k = 0; k < N_PRODUCTS; k++)
        if (e->products & (1u << k))
            buf_printf(e->b, "    .%s = &REAL_SUFFIX(%s_%s_model),\n", product_kinds[k], g->name,
                       product_kinds[k]);
    if (product_kind(e) >= 0)
        buf_printf(e->b, "    .n_product = %ld,\n    .product = product,\n", product_size(g));
    buf_printf(e->b, "    .forward = forward,\n};\n");
}

static void emit_model(Emit *e)
{
    Graph *g = e->g;
    bool training = g->loss >= 0;
    buf_printf(e->b, "/*\n * %s%s%s.c: generated by gradc %s from ", g->name, e->twin ? "_" : "",
               e->twin ? e->twin : "", GRADC_VERSION);
    buf_c_text(e->b, g->source, SIZE_MAX, C_COMMENT);
    buf_printf(e->b,
               "; do not edit.\n *\n"
               "%s"
               " * Builds as float, or as double with -DREAL_DOUBLE. Every tensor lives in\n"
               " * one %s; comments give shapes and the model line each block\n"
               " * comes from.\n */\n"
               "#include <string.h>\n#include \"rt_real.h\"\n#include \"%s.h\"\n\n",
               !e->twin ? ""
               : product_kind(e) == 0
                   ? " * The Hessian-vector product: H v, H the Hessian of the training\n"
                     " * loss in the parameters (reverse over reverse: the gradient of\n"
                     " * the gradient's product with v). It reads the parameters and the\n"
                     " * direction v where its caller has them, each laid out as the\n"
                     " * training model's parameter block; hv_NAME is H v in NAME.\n *\n"
               : product_kind(e) == 1
                   ? " * The Jacobian-vector product: J v, the derivative along v of each\n"
                     " * real output (forward mode, found by transposing the backward\n"
                     " * pass). It reads the parameters and the direction v where its\n"
                     " * caller has them, each laid out as the training model's parameter\n"
                     " * block; jv_NAME is J v of output NAME.\n *\n"
                   : " * Inference only: the outputs from the inputs, with no gradients\n"
                     " * and no optimizer; its parameter block is laid out as the\n"
                     " * training model's, so it reads the trainer's checkpoints.\n *\n",
               e->p->heap ? "arena, allocated when the program starts" : "static arena", g->name);
    /* The functions first, into their own buffer, so that the arena's
     * declarations can name exactly the arrays they use. */
    Buf *file = e->b, code = {0};
    e->b = &code;
    emit_forward(e);
    if (training) {
        emit_loss_and_grad(e);
        emit_train_step(e);
    }
    if (product_kind(e) >= 0)
        emit_product(e);
    e->b = file;
    emit_arena(e);
    if (has_modes(g))
        buf_printf(e->b, "\n/* Dropout, shifts and batch norm differ in training. */\n"
                         "static int training;\n");
    if (has_draws(g))
        buf_printf(e->b, "static uint64_t mask_step; /* random draws are made for the step */\n");
    if (training)
        buf_printf(e->b, "/* Set by an MPI trainer: starts summing a bucket of gradients over\n"
                         " * its processes while the backward pass goes on. */\n"
                         "static void (*grads_done)(int bucket);\n");
    buf_printf(e->b, "%s", code.data);
    buf_free(&code);
    emit_descriptor(e);
    if (e->p->heap) {
        char descriptor[200];
        snprintf(descriptor, sizeof descriptor, "%s_%s", g->name, descriptor_name(e));
        emit_open_arena(e, descriptor);
    }
}

static void name_files(const Graph *g, OutFile *out, const char *const *suffix, int n)
{
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", g->name, suffix[i]);
        out[i].path = xstrdup(path);
        out[i].text = (Buf){0};
    }
}

/* Per node, the parameter whose update it folds in (plan.c), or -1. */
static int *fold_targets(const Graph *g, const Plan *p)
{
    int *fold_of = xmalloc(g->n * sizeof *fold_of);
    for (int i = 0; i < g->n; i++)
        fold_of[i] = -1;
    for (int i = 0; i < g->n_params && p->fold; i++)
        if (p->fold[i])
            fold_of[g->params[i].grad] = i;
    return fold_of;
}

static void free_names(Emit *e)
{
    for (int i = 0; i < e->g->n; i++)
        free(e->name[i]);
    free(e->name);
    free(e->names);
    forget_suffixes(e);
    free(e->suffixes);
    free(e->used);
    free(e->fold_of);
    buf_free(&e->places);
}

/* The emitter of graph g (a twin's, unless twin is NULL), its nodes named. */
static Emit emitter(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, const char *twin)
{
    Emit e = {.g = g,
              .twin = twin,
              .f = f,
              .p = p,
              .tune = tune,
              .name = xcalloc(g->n, sizeof(char *)),
              .used = xcalloc(g->n, sizeof(bool)),
              .fold_of = fold_targets(g, p)};
    name_nodes(&e);
    return e;
}

void emit_c(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, unsigned products,
            OutFile out[4])
{
    static const char *const suffix[4] = {".h", ".c", "_train.c", "_gradcheck.c"};
    Emit e = emitter(g, f, p, tune, NULL);
    e.products = products;
    name_files(g, out, suffix, 4);
    emit_header(&e, &out[0].text);
    e.b = &out[1].text;
    emit_model(&e);
    emit_main(&e, &out[2].text, "train", "rt_train_main");
    emit_main(&e, &out[3].text, "gradcheck", "rt_gradcheck_main");
    free_names(&e);
}

void emit_c_inference(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, OutFile out[2])
{
    static const char *const suffix[2] = {"_infer.c", "_predict.c"};
    Emit e = emitter(g, f, p, tune, "infer");
    name_files(g, out, suffix, 2);
    e.b = &out[0].text;
    emit_model(&e);
    emit_main(&e, &out[1].text, "predict", "rt_predict_main");
    free_names(&e);
}

void emit_c_product(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, int kind,
                    OutFile *out)
{
    char suffix[16];
    snprintf(suffix, sizeof suffix, "_%s.c", product_kinds[kind]);
    Emit e = emitter(g, f, p, tune, product_kinds[kind]);
    name_files(g, out, (const char *const[]){suffix}, 1);
    e.b = &out[0].text;
    emit_model(&e);
    free_names(&e);
}
