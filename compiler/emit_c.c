/*
 * emit_c.c: writes a model's C: NAME.h (the descriptor's declaration),
 * NAME.c (arena, entry points, descriptor), NAME_train.c and
 * NAME_gradcheck.c (one-line mains).
 *
 * Needs: a Fusion and a Plan. Each loop group becomes one loop nest: its
 * iteration space is the root's shape (a sum's input shape); every member
 * and buffer it reads sees that space through an access map (which space
 * axis each of its own axes follows), from which strides follow.
 * Adjacent axes that every operand walks contiguously are merged, so a
 * plain elementwise chain is one flat loop. Everything is written into
 * buffers first: the same graph gives the same bytes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

typedef struct {
    Graph *g;
    const Fusion *f;
    const Plan *p;
    char **name; /* per stored node: its C name */
    /* So that a model of many ops is not named in quadratic time: a hash
     * set of the named nodes' ids (-1: empty), and for each base name the
     * suffix it last took (1: none). base, base_2 ... base_k are taken, so
     * the next node named base tries base_k+1 first. */
    int *names, names_cap;
    struct {
        char *base;
        int suffix;
    } *suffixes;
    bool *used;   /* per node: its name appears in the code */
    int *fold_of; /* per node: the parameter whose folded update it makes, or -1 */
    const Tune *tune;
    Buf *b;
    SrcLoc last_loc; /* the last block comment, not to repeat it */
    int last_grad;   /* its node's is_grad, or -1 for a loop with its backward */
    int max_part;    /* the last part of the schedule the function being
                        written computes */
} Emit;

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
    "grads", "avg", "avg_sq", "scale", "norm2", "part", "o", "wd", "mu", "b1", "b2", "c1", "c2",
    "eps", "alpha", "g", "sqrt", "forward", "loss_and_grad", "train_step", "inputs", "outputs",
    "memset", "memcpy", "fold", "keep", "compute_grads", "clipped_step", "tuned_copy",
    "compute_outputs", "compute_loss", "training", "mask_step", "buffers", "r",
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

static bool name_taken(Emit *e, const char *s)
{
    if (is_header_name(s))
        return true;
    for (const char *const *r = reserved; *r; r++)
        if (!strcmp(*r, s))
            return true;
    /* A slot whose node lost its name (an alias's) no longer matches. */
    for (int i = name_slot(e, s); e->names[i] >= 0; i = (i + 1) & (e->names_cap - 1))
        if (e->name[e->names[i]] && !strcmp(e->name[e->names[i]], s))
            return true;
    return false;
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

/* The name a person would give: the model's own names first, then the
 * Lua variable, then the op. Gradients are d_ plus their variable's name. */
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
        if (gr >= 0 && !e->name[gr] && !e->p->grad_copy[i])
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
    forget_suffixes(e);
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        if (op_info[n->op].kind == ALIAS && e->name[n->in[0]]) {
            e->name[i] = xstrdup(e->name[n->in[0]]);
            continue;
        }
        if (e->name[i] || !e->f->stored[i])
            continue;
        const Node *of = n->grad_of >= 0 ? ir_at(g, n->grad_of) : NULL;
        if (of)
            snprintf(buf, sizeof buf, "d_%s",
                     of->name  ? of->name
                     : of->var ? of->var
                               : op_info[of->op].name);
        else if (n->var)
            snprintf(buf, sizeof buf, "%s", n->var);
        else
            snprintf(buf, sizeof buf, "%s%s", n->is_grad ? "d_" : "", op_info[n->op].name);
        set_name(e, i, buf);
    }
}

/* A node's C name, as the code refers to it: only arrays the code uses
 * are declared (-Wunused would reject the others). */
static const char *use(Emit *e, int id)
{
    const char *name = e->name[id];
    while (op_info[ir_at(e->g, id)->op].kind == ALIAS) /* a reshape's array is its input's */
        id = ir_at(e->g, id)->in[0];
    e->used[id] = true;
    return name;
}

/* ---- loop groups ---- */

/* How a node's elements are reached from the loop indices: along its
 * axis k, index src[k]'s loop variable (or 0 when src[k] is -1) plus
 * off[k] (a slice's start, a pad's margin). */
typedef struct {
    int src[MAX_RANK];
    long off[MAX_RANK];
} Access;

/* Whether n walks its input's space (loop_space), reading each element
 * where the loop stands. */
static bool iterates_input(const Node *n)
{
    return op_info[n->op].kind == REDUCE || op_info[n->op].kind == PLACE;
}

/* How input k of node n sees the space, given how n sees it. */
static Access access_of_input(Graph *g, const Node *n, Access an, int k)
{
    Shape s = n->shape, x = ir_at(g, n->in[k])->shape;
    Access a = {{0}, {0}};
    for (int j = 0; j < x.rank; j++)
        a.src[j] = -1;
    if (iterates_input(n)) {
        for (int j = 0; j < x.rank; j++)
            a.src[j] = x.dim[j] == 1 ? -1 : j;
        return a;
    }
    switch (n->op) {
    case OP_BROADCAST:
        for (int i = 0; i < s.rank; i++)
            if (n->axes[i] >= 0 && x.dim[n->axes[i]] != 1) {
                a.src[n->axes[i]] = an.src[i];
                a.off[n->axes[i]] = an.off[i];
            }
        break;
    case OP_TRANSPOSE:
    case OP_PERMUTE:
        for (int i = 0; i < s.rank; i++) {
            a.src[n->axes[i]] = an.src[i];
            a.off[n->axes[i]] = an.off[i];
        }
        break;
    case OP_SLICE: /* axis k of the input starts axes[k] further in */
        for (int j = 0; j < x.rank; j++) {
            a.src[j] = an.src[j];
            a.off[j] = an.off[j] + n->axes[j];
        }
        break;
    default: /* elementwise: NumPy broadcasting, aligned right */
        for (int j = 0; j < x.rank; j++)
            if (x.dim[j] != 1) {
                a.src[j] = an.src[s.rank - x.rank + j];
                a.off[j] = an.off[s.rank - x.rank + j];
            }
    }
    return a;
}

/* The space and its loops, after merging axes. */
enum { MAX_OPERANDS = 64, MAX_READS = 256 };

typedef struct {
    int rank;
    long size[MAX_RANK];
    int n_ops;              /* operands: [0] is the output */
    int node[MAX_OPERANDS]; /* the buffer each reads */
    long stride[MAX_OPERANDS][MAX_RANK];
    long base[MAX_OPERANDS];            /* where its walk starts */
    int n_reads, operand_of[MAX_READS]; /* each read, in order, and its operand */
    bool replay;                        /* the reads come again in the same order:
                                           keep what was found (and merged) before */
} Space;

/* The operand for a read of node `id` through access a: one operand per
 * buffer and way of walking it, however often the body reads it. */
static int add_operand(Space *sp, int id, Shape s, Access a, int orig_rank)
{
    if (sp->n_reads == MAX_READS)
        die("a loop group reads more than %d times", MAX_READS);
    if (sp->replay)
        return sp->operand_of[sp->n_reads++];
    long row[MAX_RANK] = {0}, st = 1, base = 0;
    for (int j = s.rank - 1; j >= 0; j--) {
        if (a.src[j] >= 0)
            row[a.src[j]] += st;
        base += a.off[j] * st;
        st *= s.dim[j];
    }
    int o = 0;
    while (o < sp->n_ops && !(sp->node[o] == id && sp->base[o] == base &&
                              !memcmp(sp->stride[o], row, orig_rank * sizeof *row)))
        o++;
    if (o == sp->n_ops) {
        if (o == MAX_OPERANDS)
            die("a loop group reads more than %d buffers", MAX_OPERANDS - 1);
        sp->n_ops++;
        sp->node[o] = id;
        sp->base[o] = base;
        memcpy(sp->stride[o], row, sizeof row);
    }
    return sp->operand_of[sp->n_reads++] = o;
}

/* Drops size-1 axes and merges neighbours every operand walks as one. */
static void merge_axes(Space *sp)
{
    int r = 0;
    for (int d = 0; d < sp->rank; d++) {
        if (sp->size[d] == 1)
            continue;
        bool merge = r > 0;
        for (int o = 0; o < sp->n_ops && merge; o++)
            merge = sp->stride[o][r - 1] == sp->stride[o][d] * sp->size[d];
        if (merge) {
            sp->size[r - 1] *= sp->size[d];
            for (int o = 0; o < sp->n_ops; o++)
                sp->stride[o][r - 1] = sp->stride[o][d];
            continue;
        }
        sp->size[r] = sp->size[d];
        for (int o = 0; o < sp->n_ops; o++)
            sp->stride[o][r] = sp->stride[o][d];
        r++;
    }
    sp->rank = r;
}

/* Whether no buffer the loop reads is walked across along axis d, and
 * (if some must be) at least one is walked in order. */
static bool reads_in_order(const Space *sp, int d, bool walked)
{
    for (int o = 1; o < sp->n_ops; o++) {
        if (sp->stride[o][d] > 1)
            return false;
        walked |= sp->stride[o][d] == 1;
    }
    return walked;
}

/* A loop that reads a buffer across its innermost axis (a transposed
 * view) stays scalar, and gcc writes its selects (a ReLU, a mask) as
 * branches, which mispredict on every other element: 10 times slower than
 * the loop walked the other way. When another axis reads every buffer in
 * order, it goes innermost: the loads vectorize and only the stores are
 * strided. For loops without sums only, whose order changes no result. */
static void read_in_order_inside(Space *sp)
{
    int last = sp->rank - 1;
    if (last < 1 || reads_in_order(sp, last, true))
        return;
    for (int d = last - 1; d >= 0; d--)
        if (reads_in_order(sp, d, false)) {
            long size = sp->size[d];
            memmove(sp->size + d, sp->size + d + 1, (last - d) * sizeof *sp->size);
            sp->size[last] = size;
            for (int o = 0; o < sp->n_ops; o++) {
                long st = sp->stride[o][d];
                memmove(sp->stride[o] + d, sp->stride[o] + d + 1, (last - d) * sizeof st);
                sp->stride[o][last] = st;
            }
            return;
        }
}

static const char loop_var[] = "ijklmn";

static void index_expr(char *out, size_t n, const Space *sp, int o)
{
    size_t len = 0;
    out[0] = 0;
    for (int d = 0; d < sp->rank; d++) {
        long st = sp->stride[o][d];
        if (st == 0)
            continue;
        len += snprintf(out + len, n - len, "%s%c", len ? " + " : "", loop_var[d]);
        if (st != 1)
            len += snprintf(out + len, n - len, " * %ld", st);
    }
    if (sp->base[o] || !len)
        snprintf(out + len, n - len, "%s%ld", len ? " + " : "", sp->base[o]);
}

/* A group's members in topological order, with how each sees the space. */
typedef struct {
    int n;
    int id[256];
    Access acc[256];
} Members;

static int member_index(const Members *m, int id)
{
    for (int i = 0; i < m->n; i++)
        if (m->id[i] == id)
            return i;
    return -1;
}

static void collect(Emit *e, int root, int id, Access a, Members *m)
{
    if (m->n == 256)
        die("a loop group has more than 256 members");
    m->id[m->n] = id;
    m->acc[m->n++] = a;
    const Node *n = ir_at(e->g, id);
    if (op_info[n->op].kind == LEAF)
        return;
    for (int k = 0; k < n->n_in; k++) {
        int x = n->in[k];
        if (e->f->group[x] == root && x != root && !e->f->stored[x] &&
            ir_at(e->g, x)->op != OP_CONST)
            collect(e, root, x, access_of_input(e->g, n, a, k), m);
    }
}

static int by_id(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Text for input k of member n: a literal, a temporary, or an access. */
static void operand_text(Emit *e, Space *sp, const Members *m, const Node *n, Access an, int k,
                         char *out, size_t len, bool count_only)
{
    int x = n->in[k];
    const Node *xn = ir_at(e->g, x);
    if (xn->op == OP_CONST && !e->f->stored[x]) {
        Buf b = {0};
        op_info[OP_CONST].emit(&b, xn, NULL, NULL);
        snprintf(out, len, "%s", b.data);
        buf_free(&b);
    } else if (member_index(m, x) >= 0) { /* a member, or a root read by a later one */
        snprintf(out, len, "t%d", x);
    } else {
        int o = add_operand(sp, x, xn->shape, access_of_input(e->g, n, an, k), sp->rank);
        if (count_only)
            return;
        char idx[128];
        index_expr(idx, sizeof idx, sp, o);
        snprintf(out, len, "%s[%s]", use(e, x), idx);
    }
}

static void indent(Buf *b, int depth) { buf_printf(b, "%*s", 4 * depth, ""); }

/* The roots a loop computes: one, or the groups sharing it (fuse.c). */
typedef struct {
    int n;
    int id[MAX_READS];
    const char *acc[MAX_READS]; /* a reduction's accumulator */
    bool temp[MAX_READS];    /* also a temporary: a later root reads it, or
                                it has no buffer */
} Roots;

static int root_index(const Roots *r, int id)
{
    for (int k = 0; k < r->n; k++)
        if (r->id[k] == id)
            return k;
    return -1;
}

/* Writes the body of a loop: temporaries, then each root's statement. The
 * first pass (count_only) only registers operands, so axes can be merged
 * before any index is written; the second pass writes with merged strides. */
static void group_body(Emit *e, Space *sp, Members *m, const Roots *roots, Buf *b, int depth,
                       bool count_only)
{
    int order[256];
    for (int i = 0; i < m->n; i++)
        order[i] = m->id[i];
    qsort(order, m->n, sizeof *order, by_id);
    for (int i = 0; i < m->n; i++) {
        int id = order[i], r = root_index(roots, id);
        const Node *n = ir_at(e->g, id);
        if (r >= 0 && op_info[n->op].kind == REDUCE) {
            char a[256];
            operand_text(e, sp, m, n, m->acc[member_index(m, id)], 0, a, sizeof a, count_only);
            if (!count_only) {
                indent(b, depth);
                op_info[n->op].emit(b, n, &(Operand){.text = roots->acc[r]}, &(Operand){.text = a});
                buf_printf(b, ";\n");
            }
            continue;
        }
        Operand in[MAX_IN];
        char text[MAX_IN][256];
        for (int k = 0; k < n->n_in; k++) {
            operand_text(e, sp, m, n, m->acc[member_index(m, id)], k, text[k], sizeof text[k],
                         count_only);
            in[k] = (Operand){.text = text[k], .shape = ir_at(e->g, n->in[k])->shape};
        }
        if (count_only)
            continue;
        indent(b, depth);
        char idx[128];
        index_expr(idx, sizeof idx, sp, 0);
        if (r >= 0 && !roots->temp[r])
            buf_printf(b, "%s[%s] = ", use(e, id), idx);
        else
            buf_printf(b, "const real t%d = ", id);
        op_info[n->op].emit(b, n, NULL, in);
        buf_printf(b, ";\n");
        if (r >= 0 && roots->temp[r] && e->f->stored[id]) {
            indent(b, depth);
            buf_printf(b, "%s[%s] = t%d;\n", use(e, id), idx, id);
        }
    }
}

/* An elementwise loop's outer loop, or a reduction's over what it keeps
 * (each sum on one thread, in order), split across threads when large. */
static void open_parallel(Buf *b, const Space *sp, int depth)
{
    long size = 1;
    for (int d = 0; d < sp->rank; d++)
        size *= sp->size[d];
    if (sp->rank > 0 && parallel(sp->size[0], size)) {
        indent(b, depth);
        buf_printf(b, "RT_PARALLEL_FOR\n");
    }
}

static void open_loops(Buf *b, const Space *sp, int from, int to, int depth)
{
    for (int d = from; d < to; d++) {
        indent(b, depth + d - from);
        buf_printf(b, "for (int %c = 0; %c < %ld; %c++)%s\n", loop_var[d], loop_var[d], sp->size[d],
                   loop_var[d], d == to - 1 ? " {" : "");
    }
}

static void close_loops(Buf *b, int from, int to, int depth)
{
    if (to > from) {
        indent(b, depth + to - from - 1);
        buf_printf(b, "}\n");
    }
}

static void emit_group(Emit *e, int root)
{
    Graph *g = e->g;
    const Node *r = ir_at(g, root);
    bool reduce = op_info[r->op].kind == REDUCE;
    Shape space = loop_space(g, r);
    Space sp = {.rank = space.rank};
    for (int d = 0; d < space.rank; d++)
        sp.size[d] = space.dim[d];
    Access ra = {{0}, {0}};
    if (reduce) {
        int next = 0;
        for (int j = 0; j < space.rank; j++)
            if (r->axes[j] != AX_DROP)
                ra.src[next++] = r->axes[j] == AX_KEEP && space.dim[j] != 1 ? j : -1;
    } else
        for (int d = 0; d < space.rank; d++) {
            ra.src[d] = r->shape.dim[d] == 1 ? -1 : d;
            ra.off[d] = r->op == OP_PAD ? r->axes[d] : 0; /* a pad writes inside its margins */
        }
    Members m = {0};
    Access root_acc = {{0}, {0}};
    for (int d = 0; d < space.rank; d++)
        root_acc.src[d] = d;
    collect(e, root, root, root_acc, &m);
    add_operand(&sp, -1, r->shape, ra, space.rank); /* the output: -1 matches no read */

    /* Register operands, merge, then write for real with merged strides. */
    Buf scratch = {0};
    Roots one = {.n = 1, .id = {root}, .acc = {"acc"}};
    group_body(e, &sp, &m, &one, &scratch, 0, true);
    merge_axes(&sp);
    sp.n_reads = 1;
    sp.replay = true;
    Buf body = {0};

    int keep = sp.rank; /* loops outside the reduction */
    bool accumulate = false;
    if (reduce) {
        while (keep > 0 && sp.stride[0][keep - 1] == 0)
            keep--;
        bool suffix = true;
        for (int d = 0; d < keep; d++)
            suffix &= sp.stride[0][d] != 0;
        accumulate = !suffix;
    }
    char idx[128], init[64];
    index_expr(idx, sizeof idx, &sp, 0);
    if (reduce) {
        Buf b = {0};
        op_info[r->op].emit(&b, r, NULL, NULL); /* the reduction's starting value */
        snprintf(init, sizeof init, "%s", b.data);
        buf_free(&b);
    }
    if (accumulate) {
        /* A reduction over leading axes (a bias gradient): every output
         * starts at the initial value. */
        const char *out = use(e, root);
        long size = shape_size(r->shape);
        indent(e->b, 1);
        if (!strcmp(init, "REAL_C(0.0)"))
            buf_printf(e->b, "memset(%s, 0, %ld * sizeof *%s);\n", out, size, out);
        else
            buf_printf(e->b, "for (int i = 0; i < %ld; i++)\n        %s[i] = %s;\n", size, out,
                       init);
    }
    if (accumulate && keep == sp.rank) {
        /* The innermost loop walks the outputs: each element goes straight
         * into its own, and the loop vectorizes across them. */
        char acc[200];
        snprintf(acc, sizeof acc, "%s[%s]", use(e, root), idx);
        open_loops(e->b, &sp, 0, sp.rank, 1);
        one.acc[0] = acc;
        group_body(e, &sp, &m, &one, &body, 1 + sp.rank, false);
        buf_printf(e->b, "%s", body.data);
        close_loops(e->b, 0, sp.rank, 1);
    } else if (reduce) {
        /* A reduction over trailing axes: a local accumulator per output,
         * in a block of its own when there is no outer loop to hold it,
         * added into the output when leading axes are reduced as well; a
         * sum along a last axis that PARTIAL_SUMS divides, in those parts. */
        int depth = 1 + (keep == 0), last = sp.rank - 1;
        bool split = r->op == OP_SUM && keep <= last && sp.size[last] % PARTIAL_SUMS == 0 &&
                     sp.size[last] >= 2 * PARTIAL_SUMS;
        if (keep == 0)
            buf_printf(e->b, "    {\n");
        else if (!accumulate) /* outer iterations share outputs */
            open_parallel(e->b, &sp, depth);
        open_loops(e->b, &sp, 0, keep, depth);
        indent(e->b, depth + keep);
        if (split)
            buf_printf(e->b, "real part[%d] = {%s};\n", PARTIAL_SUMS, init);
        else
            buf_printf(e->b, "real acc = %s;\n", init);
        int inner = split ? last : sp.rank; /* the reduced loops written plainly */
        open_loops(e->b, &sp, keep, inner, depth + keep);
        char part[16];
        if (split) {
            char v = loop_var[last];
            snprintf(part, sizeof part, "part[%c - o]", v);
            one.acc[0] = part;
            indent(e->b, depth + last);
            buf_printf(e->b, "for (int o = 0; o < %ld; o += %d)\n", sp.size[last], PARTIAL_SUMS);
            indent(e->b, depth + last + 1);
            buf_printf(e->b, "for (int %c = o; %c < o + %d; %c++) {\n", v, v, PARTIAL_SUMS, v);
        }
        group_body(e, &sp, &m, &one, &body, depth + sp.rank + split, false);
        buf_printf(e->b, "%s", body.data);
        if (split) {
            indent(e->b, depth + last + 1);
            buf_printf(e->b, "}\n");
        }
        close_loops(e->b, keep, inner, depth + keep);
        if (split) {
            indent(e->b, depth + keep);
            buf_printf(e->b, "real acc = part[0];\n");
            indent(e->b, depth + keep);
            buf_printf(e->b, "for (int o = 1; o < %d; o++)\n", PARTIAL_SUMS);
            indent(e->b, depth + keep + 1);
            buf_printf(e->b, "acc += part[o];\n");
        }
        indent(e->b, depth + keep);
        char out[200];
        snprintf(out, sizeof out, "%s[%s]", use(e, root), idx);
        if (accumulate)
            op_info[r->op].emit(e->b, r, &(Operand){.text = out}, &(Operand){.text = "acc"});
        else
            buf_printf(e->b, "%s = acc", out);
        buf_printf(e->b, ";\n");
        close_loops(e->b, 0, keep, depth);
        if (keep == 0)
            buf_printf(e->b, "    }\n");
    } else {
        if (r->op == OP_PAD && r->value != 1) { /* 1: windows written after it cover the rest */
            indent(e->b, 1);
            buf_printf(e->b, "memset(%s, 0, %ld * sizeof *%s);\n", use(e, root),
                       shape_size(r->shape), e->name[root]);
        }
        read_in_order_inside(&sp);
        open_parallel(e->b, &sp, 1);
        open_loops(e->b, &sp, 0, sp.rank, 1);
        group_body(e, &sp, &m, &one, &body, 1 + sp.rank, false);
        buf_printf(e->b, "%s", body.data);
        close_loops(e->b, 0, sp.rank, 1);
    }
    buf_free(&scratch);
    buf_free(&body);
}

/* A loop shared by several groups (fuse.c): one space, walked once; each
 * root writes its element, or adds it into its own accumulator (a sum
 * down to one value), and a root a later one reads is a temporary too. */
static void emit_shared_loop(Emit *e, const Roots *roots)
{
    Graph *g = e->g;
    const Node *r0 = ir_at(g, roots->id[0]);
    Shape space = loop_space(g, r0);
    Space sp = {.rank = space.rank};
    Access all = {{0}, {0}}, out = {{0}, {0}};
    for (int d = 0; d < space.rank; d++) {
        sp.size[d] = space.dim[d];
        all.src[d] = d;
        out.src[d] = space.dim[d] == 1 ? -1 : d;
    }
    Members m = {0};
    for (int k = 0; k < roots->n; k++)
        collect(e, roots->id[k], roots->id[k], all, &m);
    add_operand(&sp, -1, space, out, space.rank); /* the elementwise roots' writes */
    Buf scratch = {0}, body = {0};
    group_body(e, &sp, &m, roots, &scratch, 0, true);
    merge_axes(&sp);
    sp.n_reads = 1;
    sp.replay = true;
    bool block = false;
    for (int k = 0; k < roots->n; k++)
        if (roots->acc[k]) {
            if (!block)
                buf_printf(e->b, "    {\n");
            block = true;
            Buf init = {0};
            op_info[ir_at(g, roots->id[k])->op].emit(&init, ir_at(g, roots->id[k]), NULL, NULL);
            buf_printf(e->b, "        real %s = %s;\n", roots->acc[k], init.data);
            buf_free(&init);
        }
    if (!block) {
        read_in_order_inside(&sp);
        open_parallel(e->b, &sp, 1);
    }
    open_loops(e->b, &sp, 0, sp.rank, 1 + block);
    group_body(e, &sp, &m, roots, &body, 1 + block + sp.rank, false);
    buf_printf(e->b, "%s", body.data);
    close_loops(e->b, 0, sp.rank, 1 + block);
    for (int k = 0; k < roots->n; k++)
        if (roots->acc[k])
            buf_printf(e->b, "        %s[0] = %s;\n", use(e, roots->id[k]), roots->acc[k]);
    if (block)
        buf_printf(e->b, "    }\n");
    buf_free(&scratch);
    buf_free(&body);
}

/* The roots of the loop `lead` runs that the part being written computes;
 * a temporary no root there reads is left out. */
static void shared_roots(Emit *e, int lead, Roots *roots, char names[][16])
{
    Graph *g = e->g;
    int n_acc = 0;
    roots->n = 0;
    for (int id = lead; id >= 0; id = e->f->next_in_loop[id])
        if (e->p->part[id] <= e->max_part) {
            if (roots->n == MAX_READS)
                die("a loop is shared by more than %d groups", MAX_READS);
            roots->id[roots->n++] = id;
        }
    /* From the last root back: a temporary no kept root reads is dropped. */
    bool read[MAX_READS] = {false};
    Members *m = xmalloc(sizeof *m);
    for (int k = roots->n - 1; k >= 0; k--) {
        int id = roots->id[k];
        roots->temp[k] = read[k] || !e->f->stored[id];
        roots->acc[k] = NULL;
        if (!read[k] && !e->f->stored[id]) {
            memmove(roots->id + k, roots->id + k + 1, (roots->n - k - 1) * sizeof *roots->id);
            memmove(roots->temp + k, roots->temp + k + 1, (roots->n - k - 1) * sizeof *roots->temp);
            roots->n--;
            continue;
        }
        m->n = 0;
        collect(e, id, id, (Access){{0}, {0}}, m);
        for (int i = 0; i < m->n; i++)
            for (int x = 0; x < ir_at(g, m->id[i])->n_in; x++) {
                int j = root_index(roots, ir_at(g, m->id[i])->in[x]);
                if (j >= 0 && j < k)
                    read[j] = true;
            }
    }
    free(m);
    for (int k = 0; k < roots->n; k++)
        if (op_info[ir_at(g, roots->id[k])->op].kind == REDUCE)
            n_acc++;
    for (int k = 0, a = 0; k < roots->n; k++)
        if (op_info[ir_at(g, roots->id[k])->op].kind == REDUCE) {
            snprintf(names[a], 16, n_acc == 1 ? "acc" : "acc%d", a + 1);
            roots->acc[k] = names[a++];
        }
}

/* How the tune file says to write node id, a product (the product in
 * *p); USE_BLAS for any other node. */
static TuneUse product_use(Emit *e, int id, Product *p)
{
    const Node *n = ir_at(e->g, id);
    bool product = (n->op == OP_MATMUL || n->op == OP_MATMUL_ADD) &&
                   matmul_product(n, ir_at(e->g, n->in[0])->shape, ir_at(e->g, n->in[1])->shape, p);
    return product ? tune_use(e->tune, p) : USE_BLAS;
}

/* A library call or row kernel; row_loss >= 0: the cross_entropy whose
 * rows the cross_entropy_grad `root` also writes. */
static void emit_call(Emit *e, int root, int row_loss)
{
    const Node *n = ir_at(e->g, root);
    Operand out = {.text = use(e, root),
                   .shape = n->shape,
                   .row_loss = row_loss >= 0 ? use(e, row_loss) : NULL},
            in[MAX_IN];
    Product tuned;
    TuneUse way = product_use(e, root, &tuned);
    out.scratch = way == USE_COPY ? "tuned_copy" : NULL;
    out.kernel = way == USE_KERNEL;
    char lits[MAX_IN][48];
    for (int k = 0; k < n->n_in; k++) {
        const Node *x = ir_at(e->g, n->in[k]);
        if (x->op == OP_CONST && !e->f->stored[x->id]) {
            Buf b = {0};
            op_info[OP_CONST].emit(&b, x, NULL, NULL);
            snprintf(lits[k], sizeof lits[k], "%s", b.data);
            buf_free(&b);
            in[k] = (Operand){.text = lits[k], .is_const = true, .shape = x->shape};
        } else
            in[k] = (Operand){.text = use(e, x->id),
                              .shape = x->shape,
                              .in_place = e->p->offset[x->id] == e->p->offset[root]};
    }
    int w = e->fold_of[root];
    if (w < 0) {
        op_info[n->op].emit(e->b, n, &out, in);
        return;
    }
    /* Both products, one level in: the update into the weight, or the
     * gradient into its buffer. */
    Buf both[2] = {{0}, {0}};
    Operand update = {.text = use(e, e->g->params[w].node), .shape = n->shape, .alpha = "-lr",
                      .beta = "keep", .kernel = out.kernel};
    op_info[n->op].emit(&both[0], n, &update, in);
    op_info[n->op].emit(&both[1], n, &out, in);
    for (int k = 0; k < 2; k++) {
        buf_printf(e->b, "%s",
                   k ? "    else\n" : "    if (fold) /* plain SGD: w = keep w - lr dw */\n");
        for (char *line = both[k].data; *line;) {
            char *end = strchr(line, '\n');
            buf_printf(e->b, "    %.*s\n", (int)(end - line), line);
            line = end + 1;
        }
        buf_free(&both[k]);
    }
}

/* A comment naming the model line, as a person would annotate a block. */
static void comment(Emit *e, const Node *n, bool with_backward)
{
    if (n->loc.file == e->last_loc.file && n->loc.line == e->last_loc.line &&
        n->is_grad == e->last_grad && !with_backward)
        return;
    e->last_loc = n->loc;
    e->last_grad = with_backward ? -1 : n->is_grad;
    const char *src = ir_source_line(e->g, n->loc);
    int len = 0;
    if (src) {
        while (*src == ' ' || *src == '\t')
            src++;
        while (src[len] && src[len] != '\n' && len < 70)
            len++;
        while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\r'))
            len--;
    }
    buf_printf(e->b, "\n    /* %s", n->is_grad ? "backward of " : "");
    buf_c_text(e->b, n->loc.file, SIZE_MAX, C_COMMENT);
    buf_printf(e->b, ":%d%s: ", n->loc.line, with_backward ? " and its backward" : "");
    buf_c_text(e->b, src ? src : "", (size_t)len, C_COMMENT);
    buf_printf(e->b, " */\n");
}

static void emit_node(Emit *e, int id)
{
    const Node *n = ir_at(e->g, id);
    int lead = e->f->loop[id];
    if (lead >= 0 && (lead != id || e->f->next_in_loop[id] >= 0)) {
        if (lead != id)
            return; /* in the loop of an earlier group */
        int next = e->f->next_in_loop[id];
        if (op_info[n->op].kind == ROWS) { /* a row loss, and its gradient in training */
            bool both = e->p->part[next] <= e->max_part;
            comment(e, n, both);
            emit_call(e, both ? next : id, both ? id : -1);
            return;
        }
        Roots roots;
        char names[MAX_READS][16];
        shared_roots(e, id, &roots, names);
        bool with_backward = false;
        for (int k = 0; k < roots.n; k++)
            with_backward |= ir_at(e->g, roots.id[k])->is_grad != n->is_grad;
        if (roots.n)
            comment(e, n, with_backward);
        if (roots.n == 1 && !roots.temp[0])
            emit_group(e, roots.id[0]);
        else if (roots.n)
            emit_shared_loop(e, &roots);
        return;
    }
    if (!e->f->stored[id] || e->f->group[id] != id || n->op == OP_INPUT || n->op == OP_PARAM ||
        n->op == OP_BUFFER || op_info[n->op].kind == ALIAS)
        return;
    comment(e, n, false);
    switch (op_info[n->op].kind) {
    case GEMM:
    case ROWS:
        emit_call(e, id, -1);
        break;
    default:
        emit_group(e, id);
    }
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
    buf_printf(b, "/* %s.h: generated by gradc from ", nm);
    buf_c_text(b, e->g->source, SIZE_MAX, C_COMMENT);
    buf_printf(b,
               "; do not edit. */\n"
               "#ifndef %s\n#define %s\n\n#include \"rt_model.h\"\n\n"
               "/* The model (%s.c) and its inference-only twin (%s_infer.c), each\n"
               " * built as float (_f32) or as double (_f64). */\n"
               "extern const rt_model %s_model_f32, %s_model_f64;\n"
               "extern const rt_model %s_infer_model_f32, %s_infer_model_f64;\n\n"
               "#ifdef REAL_DOUBLE\n#define %s_model %s_model_f64\n#define %s_infer_model "
               "%s_infer_model_f64\n"
               "#else\n#define %s_model %s_model_f32\n#define %s_infer_model %s_infer_model_f32\n"
               "#endif\n\n#endif\n",
               guard, guard, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm, nm);
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

static void declare(Emit *e, int id, const char *what)
{
    const Node *n = ir_at(e->g, id);
    if (!e->used[id] || op_info[n->op].kind == ALIAS)
        return;
    char s[64];
    shape_str(s, sizeof s, n->shape);
    buf_printf(e->b, "static %s *const %s = %s + %ld; /* %s%s */\n",
               n->dtype == DT_I32 ? "int32_t" : "real", e->name[id],
               n->dtype == DT_I32 ? "iarena" : "arena", e->p->offset[id], what, s);
}

static void emit_arena(Emit *e)
{
    Graph *g = e->g;
    const Plan *p = e->p;
    /* Places are 64 bytes apart (plan.c): so is each from a cache line's
     * start, and no vector load of a row straddles two lines. */
    buf_printf(e->b, "static _Alignas(64) real arena[%ld];\n", p->arena_size);
    if (p->iarena_size)
        buf_printf(e->b, "static int32_t iarena[%ld];\n", p->iarena_size);
    long copy = 0;
    Product tuned;
    for (int i = 0; i < g->n; i++)
        if (e->f->stored[i] && product_use(e, i, &tuned) == USE_COPY) {
            long size = (long)tuned.k * (tuned.ta ? tuned.m : tuned.n);
            copy = size > copy ? size : copy;
        }
    if (copy)
        buf_printf(e->b, "/* Where a product --tune writes plainly copies its transposed operand. */\n"
                         "static real tuned_copy[%ld];\n", copy);
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
static void emit_parts(Emit *e, int from, int to)
{
    e->last_loc = (SrcLoc){0};
    e->max_part = to;
    for (int s = from ? e->p->part_end[from - 1] : 0; s < e->p->part_end[to]; s++)
        if (e->p->part[e->p->order[s]] <= to)
            emit_node(e, e->p->order[s]);
}

static void emit_forward(Emit *e)
{
    Graph *g = e->g;
    buf_printf(e->b, "\n/* The forward pass of the outputs, in the mode forward() or\n"
                     " * loss_and_grad() set. */\nRT_VECTOR_CLONES\nstatic void compute_outputs(void)\n{");
    emit_parts(e, 0, 0);
    buf_printf(e->b, "}\n\n/* Evaluation: the outputs for the first `rows` rows of the inputs. */\n"
                     "static void forward(int rows)\n{\n");
    if (has_modes(g))
        buf_printf(e->b, "    training = 0;\n");
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
        buf_printf(e->b, "\n/* Training: the rest of the loss and the gradients, after\n"
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
    buf_printf(e->b, "}\n\n/* Training: the loss, and every parameter's gradient. */\n"
                     "static double loss_and_grad(void)\n{\n");
    if (has_modes(g))
        buf_printf(e->b, "    training = 1;\n");
    buf_printf(e->b, "    compute_outputs();\n    compute_grads(%s);\n"
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

/* Plain SGD with some updates folded into products (plan.c): unclipped,
 * compute_grads() updates those weights and the rest step after it;
 * clipped, every gradient is needed first, and clipped_step() is the
 * usual step. */
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
                       ++n == total ? "" : n == total - 1 ? " and" : ",");
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
                     "static double train_step(const rt_hyper *hyper)\n{\n"
                     "    if (hyper->clip > 0)\n        return clipped_step(hyper);\n");
    if (has_draws(g))
        buf_printf(e->b, "    mask_step = (uint64_t)hyper->step; /* new random draws */\n");
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
                   "    for (int i = %ld; i < %ld; i++) /* %s%s */\n"
                   "        params[i] -= lr * (grads[i] + wd * params[i]);\n",
                   from, to, w->name, to - from > shape_size(w->shape) ? " and on" : "");
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
    optim_emit_step(e->b, folds ? "clipped_step" : "train_step", &g->opt, p->params_offset,
                    p->grads_offset, p->state_offset, p->n_param_elems, has_draws(g),
                    after.data ? after.data : "");
    buf_free(&after);
    if (folds)
        emit_folded_step(e);
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
    if (g->n_outputs) {
        buf_printf(e->b, "\nstatic const rt_tensor outputs[] = {\n");
        for (int i = 0; i < g->n_outputs; i++)
            tensor_entry(e, g->outputs[i].node, g->outputs[i].name, p->offset[g->outputs[i].node],
                         false);
        buf_printf(e->b, "};\n");
    }
    buf_printf(e->b,
               "\nconst rt_model REAL_SUFFIX(%s_%s) = {\n    .name = \"%s\",\n    .source = \"",
               g->name, training ? "model" : "infer_model", g->name);
    buf_c_text(e->b, g->source, SIZE_MAX, C_STRING);
    buf_printf(
        e->b,
        "\",\n    .batch = %d,\n    .real = RT_REAL,\n"
        "    .arena = arena,\n    .iarena = %s,\n    .arena_size = %ld,\n    .iarena_size = %ld,\n"
        "    .n_inputs = %d,\n    .n_params = %d,\n    .n_outputs = %d,\n"
        "    .inputs = %s,\n    .params = params,\n    .grads = %s,\n    .outputs = %s,\n"
        "    .params_offset = %ld,\n    .grads_offset = %ld,\n    .n_param_elems = %ld,\n"
        "    .state_offset = %ld,\n    .n_state = %ld,\n    .loss_offset = %ld,\n",
        g->batch, p->iarena_size ? "iarena" : "NULL", p->arena_size, p->iarena_size, g->n_inputs,
        g->n_params, g->n_outputs, g->n_inputs ? "inputs" : "NULL", training ? "grads" : "NULL",
        g->n_outputs ? "outputs" : "NULL", p->params_offset, p->grads_offset, p->n_param_elems,
        p->state_offset, p->n_state, p->loss_offset);
    if (g->n_buffers)
        buf_printf(e->b,
                   "    .n_buffers = %d,\n    .buffers = buffers,\n    .n_buffer_elems = %ld,\n",
                   g->n_buffers, p->n_buffer_elems);
    optim_emit_hyper(e->b, &g->opt);
    if (training)
        buf_printf(e->b, "    .loss = loss,\n    .loss_and_grad = loss_and_grad,\n"
                         "    .train_step = train_step,\n");
    buf_printf(e->b, "    .forward = forward,\n};\n");
}

static void emit_model(Emit *e)
{
    Graph *g = e->g;
    bool training = g->loss >= 0;
    buf_printf(e->b, "/*\n * %s%s.c: generated by gradc %s from ", g->name,
               training ? "" : "_infer", GRADC_VERSION);
    buf_c_text(e->b, g->source, SIZE_MAX, C_COMMENT);
    buf_printf(e->b,
               "; do not edit.\n *\n"
               "%s"
               " * Builds as float, or as double with -DREAL_DOUBLE. Every tensor lives in\n"
               " * one static arena; comments give shapes and the model line each block\n"
               " * comes from.\n */\n"
               "#include <string.h>\n#include \"rt_real.h\"\n#include \"%s.h\"\n\n",
               training ? ""
                        : " * Inference only: the outputs from the inputs, with no gradients\n"
                          " * and no optimizer; its parameter block is laid out as the\n"
                          " * training model's, so it reads the trainer's checkpoints.\n *\n",
               g->name);
    /* The functions first, into their own buffer, so that the arena's
     * declarations can name exactly the arrays they use. */
    Buf *file = e->b, code = {0};
    e->b = &code;
    emit_forward(e);
    if (training) {
        emit_loss_and_grad(e);
        emit_train_step(e);
    }
    e->b = file;
    emit_arena(e);
    if (has_modes(g))
        buf_printf(e->b, "\n/* Dropout, shifts and batch norm differ in training. */\n"
                         "static int training;\n");
    if (has_draws(g))
        buf_printf(e->b, "static uint64_t mask_step; /* random draws are made for the step */\n");
    buf_printf(e->b, "%s", code.data);
    buf_free(&code);
    emit_descriptor(e);
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
}

void emit_c(Graph *g, const Fusion *f, const Plan *p, const Tune *tune, OutFile out[4])
{
    static const char *const suffix[4] = {".h", ".c", "_train.c", "_gradcheck.c"};
    Emit e = {.g = g,
              .f = f,
              .p = p,
              .tune = tune,
              .name = xcalloc(g->n, sizeof(char *)),
              .used = xcalloc(g->n, sizeof(bool)),
              .fold_of = fold_targets(g, p)};
    name_nodes(&e);
    name_files(g, out, suffix, 4);
    emit_header(&e, &out[0].text);
    e.b = &out[1].text;
    emit_model(&e);
    emit_main(&e, &out[2].text, "train", "rt_train_main");
    emit_main(&e, &out[3].text, "gradcheck", "rt_gradcheck_main");
    free_names(&e);
}

void emit_c_inference(Graph *g, const Fusion *f, const Plan *p, const Tune *tune,
                      OutFile out[2])
{
    static const char *const suffix[2] = {"_infer.c", "_predict.c"};
    Emit e = {.g = g,
              .f = f,
              .p = p,
              .tune = tune,
              .name = xcalloc(g->n, sizeof(char *)),
              .used = xcalloc(g->n, sizeof(bool)),
              .fold_of = fold_targets(g, p)};
    name_nodes(&e);
    name_files(g, out, suffix, 2);
    e.b = &out[0].text;
    emit_model(&e);
    emit_main(&e, &out[1].text, "predict", "rt_predict_main");
    free_names(&e);
}
