/*
 * fuse.c: decides which nodes become loops of their own and which are
 * computed inside a consumer's loop.
 *
 * Needs: shapes, roots. Keeps: the graph as it is; returns a Fusion. A
 * loop group is a stored node (its root) and the elementwise nodes that
 * only it reads, inlined into its loop body as scalar temporaries. A node
 * joins its consumer's group when it is elementwise or a view, has no other
 * reader, is no root, and has as many elements as the group's iteration
 * space (so inlining never computes a value twice). A sum's group iterates
 * over its input, so a chain of elementwise ops and the reduction that
 * ends it become one loop. Constants are literals, stored only where a
 * BLAS call needs an array.
 */
#include <stdlib.h>
#include "gradc.h"

static bool is_loop_kind(OpKind k) { return k == ELEM || k == VIEW || k == REDUCE || k == PLACE; }

/* The most inputs a group's members may have between them: each is a read
 * of at most one buffer, and emit_c writes a loop of at most 64 buffers
 * (the output and 63 read), 256 reads and 256 members. A long chain of
 * elementwise ops becomes several loops instead. */
enum { MAX_GROUP_INPUTS = 63 };

Fusion fuse(Graph *g)
{
    Fusion f;
    f.group = xmalloc(g->n * sizeof *f.group);
    f.stored = xcalloc(g->n, sizeof *f.stored);
    int *uses = xcalloc(g->n, sizeof *uses);
    bool *root = xcalloc(g->n, sizeof *root);
    int *inputs = xcalloc(g->n, sizeof *inputs); /* per group root: its members' inputs */
    if (g->loss >= 0)
        root[g->loss] = true;
    for (int i = 0; i < g->n_outputs; i++)
        root[g->outputs[i].node] = true;
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].grad >= 0)
            root[g->params[i].grad] = true;
    for (int i = 0; i < g->n_buffers; i++)
        if (g->buffers[i].next >= 0)
            root[g->buffers[i].next] = true;
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        f.group[i] = -1;
        for (int k = 0; k < n->n_in; k++) {
            uses[n->in[k]]++;
            /* A product needs arrays; an alias is its input's array. */
            if (op_info[n->op].kind == GEMM || op_info[n->op].kind == ALIAS)
                root[n->in[k]] = true;
        }
    }
    for (int i = g->n - 1; i >= 0; i--) {
        const Node *n = ir_at(g, i);
        if (f.group[i] < 0) {
            f.group[i] = i;
            f.stored[i] = n->op != OP_CONST || root[i];
            inputs[i] = n->n_in;
        }
        if (!is_loop_kind(op_info[n->op].kind))
            continue;
        int r = f.group[i];
        const Node *rn = ir_at(g, r);
        long space = shape_size(op_info[rn->op].kind == REDUCE || op_info[rn->op].kind == PLACE
                                    ? ir_at(g, rn->in[0])->shape
                                    : rn->shape);
        for (int k = 0; k < n->n_in; k++) {
            const Node *x = ir_at(g, n->in[k]);
            OpKind kind = op_info[x->op].kind;
            if ((kind == ELEM || kind == VIEW) && !root[x->id] && uses[x->id] == 1 &&
                shape_size(x->shape) == space && inputs[r] + x->n_in <= MAX_GROUP_INPUTS) {
                f.group[x->id] = r;
                inputs[r] += x->n_in;
            }
        }
    }
    free(uses);
    free(root);
    free(inputs);
    return f;
}

void fusion_free(Fusion *f)
{
    free(f->group);
    free(f->stored);
}
