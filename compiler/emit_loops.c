/*
 * emit_loops.c: a model's code node by node, for emit_c.c: each loop
 * group as one loop nest, each library call as one call.
 *
 * A loop group's iteration space is its root's shape (a sum's input
 * shape); every member and buffer it reads sees that space through an
 * access map (which space axis each of its own axes follows), from which
 * strides follow. Adjacent axes that every operand walks contiguously
 * are merged, so a plain elementwise chain is one flat loop.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "emit.h"

/* ---- loop groups ---- */

/* How input k of node n sees the space, given how n sees it: the op's
 * read rule (ops.def). */
static Access access_of_input(Graph *g, const Node *n, Access an, int k)
{
    Access a = {{0}, {0}};
    for (int j = 0; j < MAX_RANK; j++)
        a.src[j] = -1;
    op_info[n->op].reads(n, ir_at(g, n->in[k])->shape, &an, &a);
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
    bool temp[MAX_READS];       /* also a temporary: a later root reads it, or
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
        buf_printf(b, "RT_PARALLEL_FOR(%ld)\n", size);
    }
}

/* The type a space's loops count with: long when an index its operands
 * are read at can pass what an int holds. */
static const char *count_of(const Space *sp)
{
    long most = 0;
    for (int d = 0; d < sp->rank; d++)
        most = sp->size[d] > most ? sp->size[d] : most;
    for (int o = 0; o < sp->n_ops; o++) {
        long reach = sp->base[o];
        for (int d = 0; d < sp->rank; d++)
            reach += sp->stride[o][d] * (sp->size[d] - 1);
        most = reach + 1 > most ? reach + 1 : most;
    }
    return count_type(most);
}

static void open_loops(Buf *b, const Space *sp, int from, int to, int depth)
{
    for (int d = from; d < to; d++) {
        indent(b, depth + d - from);
        buf_printf(b, "for (%s %c = 0; %c < %ld; %c++)%s\n", count_of(sp), loop_var[d], loop_var[d],
                   sp->size[d], loop_var[d], d == to - 1 ? " {" : "");
    }
}

static void close_loops(Buf *b, int from, int to, int depth)
{
    if (to > from) {
        indent(b, depth + to - from - 1);
        buf_printf(b, "}\n");
    }
}

/* The type a reduction accumulates in: a sum down to one value (a loss,
 * an l2 term) in double, since one running float sum of a million squares
 * put a float loss 6e-5 off; the rest in the model's real. */
static const char *total_type(const Node *r, bool whole)
{
    return whole && r->op == OP_SUM ? "double" : "real";
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
            buf_printf(e->b, "for (%s i = 0; i < %ld; i++)\n        %s[i] = %s;\n",
                       count_type(size), size, out, init);
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
        const char *type = total_type(r, keep == 0);
        if (split)
            buf_printf(e->b, "%s part[%d] = {%s};\n", type, PARTIAL_SUMS, init);
        else
            buf_printf(e->b, "%s acc = %s;\n", type, init);
        int inner = split ? last : sp.rank; /* the reduced loops written plainly */
        open_loops(e->b, &sp, keep, inner, depth + keep);
        char part[16];
        if (split) {
            char v = loop_var[last];
            snprintf(part, sizeof part, "part[%c - o]", v);
            one.acc[0] = part;
            indent(e->b, depth + last);
            buf_printf(e->b, "for (%s o = 0; o < %ld; o += %d)\n", count_of(&sp), sp.size[last],
                       PARTIAL_SUMS);
            indent(e->b, depth + last + 1);
            buf_printf(e->b, "for (%s %c = o; %c < o + %d; %c++) {\n", count_of(&sp), v, v,
                       PARTIAL_SUMS, v);
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
            buf_printf(e->b, "%s acc = part[0];\n", type);
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
            buf_printf(e->b, "        %s %s = %s;\n", total_type(ir_at(g, roots->id[k]), true),
                       roots->acc[k], init.data);
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
TuneUse product_use(Emit *e, int id, Product *p)
{
    const Node *n = ir_at(e->g, id);
    bool product = head_product(e->g, id, p) || ((n->op == OP_MATMUL || n->op == OP_MATMUL_ADD) &&
                                                 matmul_product(n, ir_at(e->g, n->in[0])->shape,
                                                                ir_at(e->g, n->in[1])->shape, p));
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
    Product tuned = {0};
    TuneUse way = product_use(e, root, &tuned);
    out.scratch = way == USE_COPY ? "tuned_copy" : NULL;
    out.kernel = way == USE_KERNEL;
    out.tri = tuned.tri;
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
    Operand update = {.text = use(e, e->g->params[w].node),
                      .shape = n->shape,
                      .alpha = "-lr",
                      .beta = "keep",
                      .kernel = out.kernel};
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
    buf_printf(e->b, "\n    /* %s",
               !n->is_grad                          ? ""
               : e->twin && !strcmp(e->twin, "jvp") ? "along v, of "
                                                    : "backward of ");
    buf_c_text(e->b, n->loc.file, SIZE_MAX, C_COMMENT);
    buf_printf(e->b, ":%d%s: ", n->loc.line, with_backward ? " and its backward" : "");
    buf_c_text(e->b, src ? src : "", (size_t)len, C_COMMENT);
    buf_printf(e->b, " */\n");
}

void emit_node(Emit *e, int id)
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
