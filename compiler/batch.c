/*
 * batch.c: products of one matrix by every slice of one tensor become one
 * product.
 *
 * An unrolled recurrent network multiplies each step's input by the same
 * weight: x_t W for t = 1..T, x_t the slice t of X along one axis. Those
 * are the rows of one product, X W, with X seen as a matrix of rows; as one
 * product the BLAS packs W once and runs at full speed, and the backward
 * pass gets one product for dW and one for dX instead of T of each. Each
 * x_t W becomes the slice t of X W, a view its readers read in place.
 *
 * Needs: the forward graph (before grad). Keeps: topological order, every
 * root's value. Only a set of slices that covers the axis is batched, so
 * the product computes nothing that was not computed before.
 */
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

/* A product x_t W with x_t a slice of X, seen through at most one
 * reshape: which X, along which axis, at which index. */
typedef struct {
    int x, axis, index, weight;
    bool trans_b;
} Member;

/* Whether product m multiplies one slice of a tensor (its rows intact:
 * the slice keeps the last axis whole) by a matrix. */
static bool as_member(Graph *g, const Node *m, Member *out)
{
    if (m->op != OP_MATMUL || m->trans_a || m->shape.rank != 2 ||
        ir_at(g, m->in[1])->shape.rank != 2)
        return false;
    const Node *a = ir_at(g, m->in[0]);
    if (a->op == OP_RESHAPE)
        a = ir_at(g, a->in[0]);
    if (a->op != OP_SLICE)
        return false;
    const Node *x = ir_at(g, a->in[0]);
    int r = x->shape.rank, axis = -1;
    for (int d = 0; d < r; d++)
        if (a->shape.dim[d] != x->shape.dim[d]) {
            if (axis >= 0 || a->shape.dim[d] != 1 || d == r - 1)
                return false;
            axis = d;
        }
    if (axis < 0)
        return false;
    *out = (Member){x->id, axis, a->axes[axis], m->in[1], m->trans_b};
    return true;
}

static bool same_batch(const Member *a, const Member *b)
{
    return a->x == b->x && a->axis == b->axis && a->weight == b->weight &&
           a->trans_b == b->trans_b;
}

Graph *batch_products(Graph *g, int *batched)
{
    Member *member = xmalloc(g->n * sizeof *member);
    bool *is_member = xcalloc(g->n, sizeof *is_member);
    int *leader = xmalloc(g->n * sizeof *leader); /* the batch's first product, or -1 */
    for (int i = 0; i < g->n; i++) {
        leader[i] = -1;
        is_member[i] = as_member(g, ir_at(g, i), &member[i]);
    }
    /* Batches: products that share X, axis and weight, with every index
     * of the axis among them. Quadratic in the products, which are few. */
    *batched = 0;
    for (int i = 0; i < g->n; i++) {
        if (!is_member[i] || leader[i] >= 0)
            continue;
        int n_axis = ir_at(g, member[i].x)->shape.dim[member[i].axis];
        bool *seen = xcalloc(n_axis, sizeof *seen);
        int covered = 0;
        for (int j = i; j < g->n; j++)
            if (is_member[j] && leader[j] < 0 && same_batch(&member[i], &member[j]) &&
                !seen[member[j].index]) {
                seen[member[j].index] = true;
                covered++;
            }
        free(seen);
        if (covered < n_axis || n_axis < 2)
            continue;
        for (int j = i; j < g->n; j++)
            if (is_member[j] && leader[j] < 0 && same_batch(&member[i], &member[j])) {
                leader[j] = i;
                ++*batched;
            }
    }

    Graph *h = ir_empty_like(g);
    int *map = xmalloc(g->n * sizeof *map), *product = xmalloc(g->n * sizeof *product);
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        h->loc = n->loc;
        if (leader[i] < 0) {
            map[i] = ir_copy(h, n, map);
            continue;
        }
        const Member *mb = &member[i];
        Shape xs = ir_at(g, mb->x)->shape;
        if (leader[i] == i) { /* X as rows, times W, back in X's shape */
            int k = xs.dim[xs.rank - 1];
            int rows = (int)(shape_size(xs) / k);
            int flat = ir_reshape(h, map[mb->x], (Shape){2, {rows, k}});
            int p = ir_matmul(h, flat, false, map[mb->weight], mb->trans_b);
            Shape ps = xs;
            ps.dim[xs.rank - 1] = ir_at(h, p)->shape.dim[1];
            product[i] = ir_reshape(h, p, ps);
        }
        int all = product[leader[i]];
        Shape ss = ir_at(h, all)->shape;
        ss.dim[mb->axis] = 1;
        int start[MAX_RANK] = {0};
        start[mb->axis] = mb->index;
        map[i] = ir_reshape(h, ir_slice(h, all, start, ss), n->shape);
        ir_at(h, map[i])->var = n->var;
        ir_at(h, map[i])->hint = n->hint;
    }
    ir_remap_roots(h, g, map);
    free(member);
    free(is_member);
    free(leader);
    free(map);
    free(product);
    return h;
}
