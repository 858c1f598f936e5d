/*
 * simplify.c: algebraic identities, folding of constant fills, transposes
 * folded into matrix products, attention heads read and written in place
 * by them, common subexpressions, and sums of windows that tile them.
 *
 * Needs: shapes. Keeps: topological order, every root's value. Rebuilds
 * the graph node by node with hash-consing on (ir_node's CSE), rewriting
 * each node whose inputs make it trivial. The gradient rules are written
 * plainly (dy * 1, sums of broadcast constants, x^1) and rely on this pass
 * to make the emitted code what a person would write.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

static bool is_const(const Node *n, double v) { return n->op == OP_CONST && n->value == v; }

/* Whether n swaps its input's last two axes and nothing else: a
 * transpose of each matrix of a batch. */
static bool swaps_last_two(const Node *n)
{
    int r = n->shape.rank;
    if (n->op == OP_TRANSPOSE)
        return true;
    if (n->op != OP_PERMUTE || r < 2 || n->axes[r - 2] != r - 1 || n->axes[r - 1] != r - 2)
        return false;
    for (int i = 0; i < r - 2; i++)
        if (n->axes[i] != i)
            return false;
    return true;
}

/* A product op(a) op(b) scaled by alpha (BLAS's alpha); layout: which of
 * a, b and the result are stored with axes 1 and 2 swapped, or NULL. */
static int product(Graph *h, int a, bool ta, int b, bool tb, double alpha, const int *layout)
{
    Node n = {
        .op = OP_MATMUL, .n_in = 2, .in = {a, b}, .trans_a = ta, .trans_b = tb, .value = alpha};
    if (layout)
        memcpy(n.axes, layout, 3 * sizeof *n.axes);
    return ir_must(h, &n);
}

/* (op(A) op(B))^T = op(B)^T op(A)^T: product m computed transposed, its
 * result stored with axes 1 and 2 swapped when `swapped`. */
static int transposed(Graph *h, const Node *m, int swapped)
{
    return product(h, m->in[1], !m->trans_b, m->in[0], !m->trans_a, m->value,
                   (int[]){m->axes[1], m->axes[0], swapped});
}

/* Permutes of rank 4 between an attention's rows [N, T, H, d] and its
 * heads [N, H, T, d]: axes 1 and 2 swapped, and that with the last two
 * swapped too (the heads transposed, [N, H, d, T]; back, [N, T, H, d] from
 * [N, H, d, T]). */
static const int swap_heads[4] = {0, 2, 1, 3}, heads_t[4] = {0, 2, 3, 1}, rows_t[4] = {0, 3, 1, 2};

/* How a permute of an attention's rows gives a product its heads: 0 as
 * they are, 1 transposed, -1 neither. Products of heads read them in
 * place with the rows' stride (ops/products.c), where the permute would copy them. */
static int heads_of(const Node *x)
{
    if (x->op != OP_PERMUTE || x->shape.rank != 4)
        return -1;
    return !memcmp(x->axes, swap_heads, sizeof swap_heads) ? 0
           : !memcmp(x->axes, heads_t, sizeof heads_t)     ? 1
                                                           : -1;
}

static bool rank4(const Node *n) { return n->shape.rank == 4; }

/* A constant factor: n is x * c, c a constant fill and x of n's shape;
 * gives x and c. */
static bool scaled(Graph *h, const Node *n, int *x, double *c)
{
    if (n->op != OP_MUL)
        return false;
    for (int k = 0; k < 2; k++) {
        const Node *f = ir_at(h, n->in[k]), *v = ir_at(h, n->in[1 - k]);
        if (f->op == OP_CONST && v->op != OP_CONST && shape_eq(v->shape, n->shape)) {
            *x = v->id;
            *c = f->value;
            return true;
        }
    }
    return false;
}

/* Whether the model named n: a param's, an input's, a Lua local's. */
static bool is_named(const Node *n) { return n->name || n->var; }

/* Whether n is a softmax that sees each row's columns up to the row's
 * place (value 1): see emit_softmax in ops/nn.c. */
static bool is_causal_softmax(const Node *n) { return n->op == OP_SOFTMAX && n->value == 1; }

/* A product added to a sum, a + b c, as one product accumulating into the
 * sum: the product has no other reader and the sum's shape. */
static int accumulate(Graph *h, int sum, int product)
{
    const Node *m = ir_at(h, product);
    Node acc = {.op = OP_MATMUL_ADD,
                .n_in = 3,
                .in = {m->in[0], m->in[1], sum},
                .trans_a = m->trans_a,
                .trans_b = m->trans_b,
                .value = m->value};
    memcpy(acc.axes, m->axes, sizeof acc.axes);
    return ir_must(h, &acc);
}

/* A padded window added to a sum, a + pad(x), as x added into the sum's
 * window. */
static int add_window(Graph *h, int sum, int pad)
{
    Node n = {.op = OP_PAD_ADD,
              .n_in = 2,
              .in = {sum, ir_at(h, pad)->in[0]},
              .shape = ir_at(h, sum)->shape};
    memcpy(n.axes, ir_at(h, pad)->axes, sizeof n.axes);
    return ir_must(h, &n);
}

/* The node a rewrite gives, or -1 to keep the node as it is. single_use[k]:
 * input k has no other reader. */
static int rewrite(Graph *h, const Node *n, const bool *single_use)
{
    const Node *a = n->n_in > 0 ? ir_at(h, n->in[0]) : NULL;
    const Node *b = n->n_in > 1 ? ir_at(h, n->in[1]) : NULL;
    Shape s = n->shape;
    bool ca = a && a->op == OP_CONST, cb = b && b->op == OP_CONST;
    switch (n->op) {
    case OP_ADD:
        if (ca && cb)
            return ir_const(h, a->value + b->value, s);
        if (is_const(b, 0) && shape_eq(a->shape, s))
            return a->id;
        if (is_const(a, 0) && shape_eq(b->shape, s))
            return b->id;
        if (shape_eq(a->shape, s) && shape_eq(b->shape, s) && a->dtype == DT_REAL) {
            if (b->op == OP_MATMUL && single_use[1])
                return accumulate(h, a->id, b->id);
            if (a->op == OP_MATMUL && single_use[0])
                return accumulate(h, b->id, a->id);
            if (b->op == OP_PAD && single_use[1])
                return add_window(h, a->id, b->id);
            if (a->op == OP_PAD && single_use[0])
                return add_window(h, b->id, a->id);
        }
        break;
    case OP_SUB:
        if (ca && cb)
            return ir_const(h, a->value - b->value, s);
        if (is_const(b, 0) && shape_eq(a->shape, s))
            return a->id;
        if (is_const(a, 0) && shape_eq(b->shape, s))
            return ir_unary(h, OP_NEG, b->id);
        break;
    case OP_MUL:
        if (ca && cb)
            return ir_const(h, a->value * b->value, s);
        if (is_const(a, 0) || is_const(b, 0))
            return ir_const(h, 0, s);
        if (is_const(b, 1) && shape_eq(a->shape, s))
            return a->id;
        if (is_const(a, 1) && shape_eq(b->shape, s))
            return b->id;
        /* A product times a constant: the product's alpha. */
        for (int k = 0; k < 2; k++) {
            const Node *m = k ? b : a, *c = k ? a : b;
            if (m->op == OP_MATMUL && single_use[k] && c->op == OP_CONST && shape_eq(m->shape, s))
                return product(h, m->in[0], m->trans_a, m->in[1], m->trans_b, m->value * c->value,
                               m->axes);
        }
        break;
    case OP_DIV:
        if (ca && cb)
            return ir_const(h, a->value / b->value, s);
        if (is_const(b, 1) && shape_eq(a->shape, s))
            return a->id;
        break;
    case OP_NEG:
        if (ca)
            return ir_const(h, -a->value, s);
        if (a->op == OP_NEG)
            return a->in[0];
        break;
    case OP_POW:
        if (n->value == 1)
            return a->id;
        break;
    case OP_SUM:
        if (ca)
            return ir_const(h, a->value * (shape_size(a->shape) / shape_size(s)), s);
        break;
    case OP_BROADCAST:
        if (ca)
            return ir_const(h, a->value, s);
        break;
    case OP_TRANSPOSE:
        if (ca)
            return ir_const(h, a->value, s);
        if (a->op == OP_TRANSPOSE)
            return a->in[0];
        /* (op(A) op(B))^T = op(B)^T op(A)^T: a product whose only reader
         * is a transpose is computed transposed. */
        if (a->op == OP_MATMUL && single_use[0] && !a->axes[2])
            return transposed(h, a, 0);
        break;
    case OP_RESHAPE:
        if (shape_eq(a->shape, s))
            return a->id;
        if (a->op == OP_RESHAPE || ca)
            return ca ? ir_const(h, a->value, s) : ir_reshape(h, a->in[0], s);
        break;
    case OP_PERMUTE: {
        bool identity = true;
        for (int i = 0; i < s.rank; i++)
            identity &= n->axes[i] == i;
        if (identity)
            return a->id;
        if (ca)
            return ir_const(h, a->value, s);
        if (a->op == OP_PERMUTE) { /* output axis i is a's axis axes[i], its input's a->axes[...] */
            int perm[MAX_RANK];
            for (int i = 0; i < s.rank; i++)
                perm[i] = a->axes[n->axes[i]];
            return ir_permute(h, a->in[0], perm);
        }
        /* Each matrix of a product transposed: the product computed so. */
        if (a->op == OP_MATMUL && single_use[0] && !a->axes[2] && swaps_last_two(n))
            return transposed(h, a, 0);
        /* A product's heads put back into rows: the product writes them
         * there, transposed first if need be. */
        if (a->op == OP_MATMUL && single_use[0] && rank4(a) && !a->axes[2] &&
            rank4(ir_at(h, a->in[0])) && rank4(ir_at(h, a->in[1]))) {
            if (!memcmp(n->axes, swap_heads, sizeof swap_heads))
                return product(h, a->in[0], a->trans_a, a->in[1], a->trans_b, a->value,
                               (int[]){a->axes[0], a->axes[1], 1});
            if (!memcmp(n->axes, rows_t, sizeof rows_t))
                return transposed(h, a, 1);
        }
        if (s.rank == 2) /* a transpose, which products fold into BLAS flags */
            return ir_unary(h, OP_TRANSPOSE, a->id);
        break;
    }
    case OP_SLICE:
        if (ca)
            return ir_const(h, a->value, s);
        if (shape_eq(a->shape, s))
            return a->id;
        break;
    case OP_PAD:
        if (is_const(a, 0))
            return ir_const(h, 0, s);
        if (shape_eq(a->shape, s))
            return a->id;
        break;
    case OP_MATMUL: {
        if (is_const(a, 0) || is_const(b, 0))
            return ir_const(h, 0, s);
        int layout[3] = {n->axes[0], n->axes[1], n->axes[2]}, in[2] = {a->id, b->id};
        bool trans[2] = {n->trans_a, n->trans_b}, changed = false;
        double alpha = n->value;
        for (int k = 0; k < 2; k++) {
            const Node *x = ir_at(h, in[k]);
            int t = rank4(a) && rank4(b) && rank4(n) && !layout[k] ? heads_of(x) : -1;
            if (t >= 0) { /* heads permuted out of rows: read in place */
                layout[k] = 1;
                in[k] = x->in[0];
                trans[k] ^= t;
                changed = true;
            } else if (swaps_last_two(x) && !layout[k]) { /* a transpose: a BLAS flag */
                in[k] = x->in[0];
                trans[k] = !trans[k];
                changed = true;
            }
            int y;
            double c;
            if (scaled(h, ir_at(h, in[k]), &y, &c)) { /* a factor of an operand: alpha */
                in[k] = y;
                alpha *= c;
                changed = true;
            }
        }
        if (changed)
            return product(h, in[0], trans[0], in[1], trans[1], alpha, layout);
        break;
    }
    case OP_SOFTMAX:
        /* Softmax of causally masked scores reads each row's columns up to
         * the row's own, and writes 0 beyond. */
        if (a->op == OP_CAUSAL && isinf(a->value) && a->value < 0 && !n->value)
            return ir_must(h, &(Node){.op = OP_SOFTMAX, .n_in = 1, .in = {a->in[0]}, .value = 1});
        break;
    case OP_SOFTMAX_GRAD:
        /* Zero where a causal softmax is: the same columns. */
        if (is_causal_softmax(b) && !n->value)
            return ir_must(
                h, &(Node){.op = OP_SOFTMAX_GRAD, .n_in = 2, .in = {a->id, b->id}, .value = 1});
        break;
    case OP_CAUSAL:
        /* The mask over what is already 0 there (its gradient's). */
        if (n->value == 0 && a->op == OP_SOFTMAX_GRAD && a->value == 1)
            return a->id;
        break;
    }
    return -1;
}

/* Whether two windows (starts a and b, shapes sa and sb) overlap. */
static bool overlap(const int *a, Shape sa, const int *b, Shape sb)
{
    for (int d = 0; d < sa.rank; d++)
        if (a[d] + sa.dim[d] <= b[d] || b[d] + sb.dim[d] <= a[d])
            return false;
    return true;
}

/* A tensor cut into slices has for gradient pad(d1) + d2 + ... + dk, each
 * added into its window: when the windows are disjoint and cover the whole,
 * the pad need not zero what the others cover and each of those stores
 * instead of adding (value 1 on both). An LSTM's gate gradients are its
 * step's z's, and the steps' z's the input product's: a memset of the
 * whole and a read of it per window saved. Each sum along the chain has
 * the next for its one reader, so no one sees the unfilled ones. */
static int tile_windows(Graph *h)
{
    int *readers = xcalloc(h->n, sizeof *readers), tiled = 0;
    for (int i = 0; i < h->n; i++)
        for (int k = 0; k < h->nodes[i].n_in; k++)
            readers[h->nodes[i].in[k]]++;
    int *link = xmalloc(h->n * sizeof *link);
    for (int top = h->n - 1; top >= 0; top--) {
        if (h->nodes[top].op != OP_PAD_ADD || h->nodes[top].value == 1)
            continue;
        int n = 0, id = top;
        while (h->nodes[id].op == OP_PAD_ADD) {
            link[n++] = id;
            id = h->nodes[id].in[0];
            if (readers[id] != 1 || ir_is_root(h, id))
                break;
        }
        if (h->nodes[id].op != OP_PAD || readers[id] != 1 || ir_is_root(h, id))
            continue;
        link[n++] = id;
        long covered = 0;
        bool disjoint = true;
        for (int a = 0; a < n && disjoint; a++) {
            const Node *x = ir_at(h, link[a]);
            Shape sx = ir_at(h, x->in[x->n_in - 1])->shape;
            covered += shape_size(sx);
            for (int b = 0; b < a && disjoint; b++) {
                const Node *y = ir_at(h, link[b]);
                disjoint = !overlap(x->axes, sx, y->axes, ir_at(h, y->in[y->n_in - 1])->shape);
            }
        }
        if (!disjoint || covered != shape_size(h->nodes[top].shape))
            continue;
        for (int a = 0; a < n; a++)
            h->nodes[link[a]].value = 1;
        tiled += n - 1;
    }
    free(link);
    free(readers);
    return tiled;
}

Graph *simplify(Graph *g, SimplifyStats *st)
{
    *st = (SimplifyStats){0};
    Graph *h = ir_empty_like(g);
    int *map = xmalloc(g->n * sizeof *map);
    int *uses = xcalloc(g->n, sizeof *uses);
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            uses[g->nodes[i].in[k]]++;
    h->cse = true;
    int cap = 0, *readers = NULL;
    for (int i = 0; i < g->n; i++) {
        Node n = g->nodes[i];
        for (int k = 0; k < n.n_in; k++)
            n.in[k] = map[n.in[k]];
        h->loc = n.loc;
        h->making_grad = n.is_grad;
        int before = h->n;
        bool single[MAX_IN];
        for (int k = 0; k < n.n_in; k++)
            single[k] = readers[n.in[k]] == 1;
        int r = rewrite(h, &n, single);
        if (r < 0) {
            r = ir_copy(h, &g->nodes[i], map);
            st->merged += r < before;
        } else if (ir_at(h, r)->op == OP_MATMUL &&
                   (n.op == OP_PERMUTE
                        ? ir_at(h, r)->axes[2]
                        : n.op == OP_MATMUL && memcmp(ir_at(h, r)->axes, n.axes, sizeof n.axes)))
            st->heads++;
        else if (ir_at(h, r)->op == OP_MATMUL &&
                 (n.op == OP_MUL || (n.op == OP_MATMUL && ir_at(h, r)->value != n.value)))
            st->scales++;
        else if (n.op == OP_MATMUL ||
                 ((n.op == OP_TRANSPOSE || n.op == OP_PERMUTE) && ir_at(h, r)->op == OP_MATMUL))
            st->transposes++;
        else if (ir_at(h, r)->op == OP_CONST)
            st->folded++;
        else
            st->identities++;
        map[i] = r;
        /* Readers of the new node: of every old node that became it (x^1
         * becomes x, which others read too). */
        if (h->n > cap) {
            readers = xrealloc(readers, h->cap * sizeof *readers);
            memset(readers + cap, 0, (h->cap - cap) * sizeof *readers);
            cap = h->cap;
        }
        readers[r] += uses[i];
        /* What a person called the value stays with it through rewrites. */
        Node *to = ir_at(h, map[i]);
        if (!to->var && !to->name)
            to->var = g->nodes[i].var;
        if (!to->hint && !to->name)
            to->hint = g->nodes[i].hint;
        /* Of two values it is the gradient of, the one a local named
         * (scores, not the causal mask of scores that simplify drops). */
        if (g->nodes[i].grad_of >= 0 && g->nodes[i].grad_of < i) {
            int of = map[g->nodes[i].grad_of];
            if (to->grad_of < 0 || (!is_named(ir_at(h, to->grad_of)) && is_named(ir_at(h, of))))
                to->grad_of = of;
        }
    }
    h->making_grad = false;
    ir_remap_roots(h, g, map);
    st->tiles = tile_windows(h);
    free(map);
    free(uses);
    free(readers);
    return h;
}
