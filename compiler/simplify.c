/*
 * simplify.c: algebraic identities, folding of constant fills, transposes
 * folded into matrix products, and common subexpressions.
 *
 * Needs: shapes. Keeps: topological order, every root's value. Rebuilds
 * the graph node by node with hash-consing on (ir_node's CSE), rewriting
 * each node whose inputs make it trivial. The gradient rules are written
 * plainly (dy * 1, sums of broadcast constants, x^1) and rely on this pass
 * to make the emitted code what a person would write.
 */
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

/* A product added to a sum, a + b c, as one product accumulating into the
 * sum: the product has no other reader and the sum's shape. */
static int accumulate(Graph *h, int sum, int product)
{
    const Node *m = ir_at(h, product);
    Node acc = {.op = OP_MATMUL_ADD,
                .n_in = 3,
                .in = {m->in[0], m->in[1], sum},
                .trans_a = m->trans_a,
                .trans_b = m->trans_b};
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
        if (a->op == OP_MATMUL && single_use[0])
            return ir_matmul(h, a->in[1], !a->trans_b, a->in[0], !a->trans_a);
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
    case OP_MATMUL:
        if (is_const(a, 0) || is_const(b, 0))
            return ir_const(h, 0, s);
        /* A transpose feeding a product becomes a BLAS flag. */
        if (swaps_last_two(a) || swaps_last_two(b)) {
            bool fa = swaps_last_two(a), fb = swaps_last_two(b);
            return ir_matmul(h, fa ? a->in[0] : a->id, n->trans_a != fa, fb ? b->in[0] : b->id,
                             n->trans_b != fb);
        }
        break;
    }
    return -1;
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
    for (int i = 0; i < g->n; i++) {
        Node n = g->nodes[i];
        for (int k = 0; k < n.n_in; k++)
            n.in[k] = map[n.in[k]];
        h->loc = n.loc;
        h->making_grad = n.is_grad;
        int before = h->n;
        bool single[MAX_IN];
        for (int k = 0; k < n.n_in; k++)
            single[k] = uses[g->nodes[i].in[k]] == 1;
        int r = rewrite(h, &n, single);
        if (r < 0) {
            r = ir_copy(h, &g->nodes[i], map);
            st->merged += r < before;
        } else if (n.op == OP_MATMUL || (n.op == OP_TRANSPOSE && ir_at(h, r)->op == OP_MATMUL))
            st->transposes++;
        else if (ir_at(h, r)->op == OP_CONST)
            st->folded++;
        else
            st->identities++;
        map[i] = r;
        /* What a person called the value stays with it through rewrites. */
        Node *to = ir_at(h, map[i]);
        if (!to->var && !to->name)
            to->var = g->nodes[i].var;
        if (to->grad_of < 0 && g->nodes[i].grad_of >= 0 && g->nodes[i].grad_of < i)
            to->grad_of = map[g->nodes[i].grad_of];
    }
    h->making_grad = false;
    ir_remap_roots(h, g, map);
    free(map);
    free(uses);
    return h;
}
