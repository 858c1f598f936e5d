/*
 * remat.c: recomputes in the backward pass the cheap forward values it
 * would otherwise keep.
 *
 * Needs: a graph after dce, in topological order. Keeps: topological
 * order and every root. A forward value that is one add, subtract,
 * multiply or negation of constants and of values the backward pass reads
 * anyway is computed again inside each backward loop that reads it,
 * instead of being written by the forward pass and read back: a pass over
 * memory costs more than an add. GELU's x/2 and 1 + tanh(...) are the
 * example: of the five arrays its forward pass kept for the backward,
 * three remain. Each backward reader gets a copy of its own, which fuse
 * inlines into its loop, and the forward value, left with its one forward
 * reader, is inlined there. The arithmetic is the same, so are the results.
 */
#include <stdlib.h>
#include "gradc.h"

/* Whether reader n computes x inside its loop once a copy of x is its
 * own: n is a loop over as many elements as x has (fuse inlines only
 * then) and reads x once. */
static bool inlines(Graph *g, const Node *n, int x)
{
    int reads = 0;
    for (int i = 0; i < n->n_in; i++)
        reads += n->in[i] == x;
    return is_loop_kind(op_info[n->op].kind) && reads == 1 &&
           shape_size(loop_space(g, n)) == shape_size(ir_at(g, x)->shape);
}

/* Whether x is worth computing again in each backward loop that reads it:
 * cheap, from what the backward reads anyway, inlined by every reader, and
 * read once in the forward pass (so that no buffer keeps it there either). */
static bool recomputable(Graph *g, const unsigned char *part, const bool *read_back,
                         const int *forward_readers, const bool *inlined, int x)
{
    const Node *n = ir_at(g, x);
    if (part[x] == 2 || !read_back[x] || ir_is_root(g, x) || forward_readers[x] != 1 ||
        !inlined[x] ||
        (n->op != OP_ADD && n->op != OP_SUB && n->op != OP_MUL && n->op != OP_NEG))
        return false;
    for (int k = 0; k < n->n_in; k++) {
        const Node *y = ir_at(g, n->in[k]);
        if (y->op != OP_CONST && y->op != OP_PARAM && y->op != OP_INPUT && !read_back[y->id])
            return false;
    }
    return true;
}

Graph *remat(Graph *g, int *recomputed)
{
    unsigned char *part = schedule_parts(g);
    bool *read_back = xcalloc(g->n, sizeof *read_back);   /* a backward node reads it */
    bool *inlined = xmalloc(g->n * sizeof *inlined); /* every reader would inline it */
    int *forward_readers = xcalloc(g->n, sizeof *forward_readers);
    for (int i = 0; i < g->n; i++)
        inlined[i] = true;
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        for (int k = 0; k < n->n_in; k++) {
            read_back[n->in[k]] |= part[i] == 2;
            forward_readers[n->in[k]] += part[i] < 2;
            inlined[n->in[k]] &= inlines(g, n, n->in[k]);
        }
    }
    bool *again = xcalloc(g->n, sizeof *again);
    for (int x = 0; x < g->n; x++)
        again[x] = recomputable(g, part, read_back, forward_readers, inlined, x);

    Graph *h = ir_empty_like(g);
    int *map = xmalloc(g->n * sizeof *map);
    *recomputed = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        int kept[MAX_IN];
        for (int k = 0; k < n->n_in; k++)
            kept[k] = map[n->in[k]];
        for (int k = 0; k < n->n_in; k++) {
            int x = n->in[k];
            if (part[i] == 2 && again[x] && map[x] == kept[k]) { /* once per reader */
                Node copy = *ir_at(g, x);
                copy.is_grad = true; /* computed by the backward pass now */
                map[x] = ir_copy(h, &copy, map);
                (*recomputed)++;
            }
        }
        int id = ir_copy(h, n, map);
        for (int k = 0; k < n->n_in; k++)
            map[n->in[k]] = kept[k];
        map[i] = id;
    }
    ir_remap_roots(h, g, map);
    free(map);
    free(again);
    free(forward_readers);
    free(inlined);
    free(read_back);
    free(part);
    return h;
}
