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
 *
 * Then groups that walk the same space share one loop (share_loops): a
 * group joins the loop of a value it reads at the same index, or of a
 * loop that reads what it reads, when everything else it reads is
 * computed before that loop. The loss and its gradient become one loop,
 * and so do the parts of an activation the backward pass keeps; a value
 * all of whose readers are in its loop is never stored, only a temporary.
 * The outputs' forward pass shares loops only within itself, since it
 * also runs alone, for evaluation.
 */
#include <stdlib.h>
#include "gradc.h"

bool is_loop_kind(OpKind k) { return k == ELEM || k == VIEW || k == REDUCE || k == PLACE; }

Shape loop_space(Graph *g, const Node *n)
{
    OpKind k = op_info[n->op].kind;
    return k == REDUCE || k == PLACE ? ir_at(g, n->in[0])->shape : n->shape;
}

/* The most inputs a group's members may have between them: each is a read
 * of at most one buffer, and emit_c writes a loop of at most 64 buffers
 * (the output and 63 read), 256 reads and 256 members. A long chain of
 * elementwise ops becomes several loops instead. */
enum { MAX_GROUP_INPUTS = 63 };

/* The space a group walks if it may share its loop: an elementwise root's
 * shape, or the input of a sum (max, min) down to one value; else rank -1.
 * Every member must be elementwise over that same space, so that each
 * value the group reads is read at the loop's own index. */
static Shape shared_space(Graph *g, const Fusion *f, int root, const bool *mixed)
{
    const Node *r = ir_at(g, root);
    Shape none = {.rank = -1};
    if (f->group[root] != root || mixed[root])
        return none;
    if (op_info[r->op].kind == REDUCE && shape_size(r->shape) == 1)
        return ir_at(g, r->in[0])->shape;
    return op_info[r->op].kind == ELEM ? r->shape : none;
}

/* Where the schedule puts a node: by part, then by id. */
static long sched_key(const Graph *g, const unsigned char *part, int id)
{
    return (long)part[id] * g->n + id;
}

/* Whether a group may join loop `lead`: every buffer it reads is an input
 * or parameter, is computed before the loop, or is an elementwise value of
 * the loop (read at the same index, since the space is the same). */
static bool may_join(Graph *g, const Fusion *f, const unsigned char *part, int root, int from,
                     int lead)
{
    for (int i = from; i <= root; i++) {
        if (f->group[i] != root)
            continue;
        const Node *n = ir_at(g, i);
        for (int k = 0; k < n->n_in; k++) {
            int x = n->in[k];
            const Node *xn = ir_at(g, x);
            if (f->group[x] == root || xn->op == OP_INPUT || xn->op == OP_PARAM ||
                xn->op == OP_BUFFER || (xn->op == OP_CONST && !f->stored[x]))
                continue;
            bool in_loop = f->loop[x] == lead && f->group[x] == x && op_info[xn->op].kind == ELEM;
            if (!in_loop && sched_key(g, part, x) >= sched_key(g, part, lead))
                return false;
        }
    }
    return true;
}

/* inputs: per group root, its members' inputs, which bound a loop's
 * buffers, reads and members as in fuse(). */
static void share_loops(Graph *g, Fusion *f, const bool *must_store, int *inputs)
{
    unsigned char *part = schedule_parts(g);
    bool *mixed = xcalloc(g->n, sizeof *mixed); /* a member that is not plain elementwise */
    int *first = xmalloc(g->n * sizeof *first); /* per group root: its lowest member */
    for (int i = 0; i < g->n; i++) {
        f->loop[i] = -1;
        f->next_in_loop[i] = -1;
        first[i] = i;
    }
    for (int i = 0; i < g->n; i++) {
        int r = f->group[i];
        if (r == i)
            continue;
        if (first[r] > i)
            first[r] = i;
        Shape s = shared_space(g, f, r, mixed);
        mixed[r] |= op_info[ir_at(g, i)->op].kind != ELEM || !shape_eq(ir_at(g, i)->shape, s);
    }
    int *last_in = xmalloc(g->n * sizeof *last_in); /* per leader: the loop's last root */
    int *read_in = xmalloc(g->n * sizeof *read_in);  /* per node: the last loop that reads it */
    for (int i = 0; i < g->n; i++)
        read_in[i] = -1;
    for (int p = 0; p <= 2; p++)
        for (int b = 0; b < g->n; b++) {
            if (part[b] != p)
                continue;
            Shape s = shared_space(g, f, b, mixed);
            if (s.rank < 0 || shape_size(s) < 2)
                continue;
            f->loop[b] = b;
            last_in[b] = b;
            /* Worth joining: the loop of a value it reads, or a loop that
             * reads what it reads. */
            for (int i = first[b]; i <= b; i++)
                for (int k = 0; k < ir_at(g, i)->n_in && f->group[i] == b; k++) {
                    int x = ir_at(g, i)->in[k];
                    int cand[2] = {op_info[ir_at(g, x)->op].kind == ELEM && f->group[x] == x
                                       ? f->loop[x]
                                       : -1,
                                   read_in[x]};
                    for (int c = 0; c < 2 && f->loop[b] == b; c++) {
                        int lead = cand[c];
                        /* compute_outputs() runs alone, for evaluation: a
                         * loop of the outputs' part takes only its own. */
                        if (lead < 0 || lead == b || (part[lead] == 0) != (p == 0) ||
                            !shape_eq(shared_space(g, f, lead, mixed), s) ||
                            inputs[lead] + inputs[b] > MAX_GROUP_INPUTS ||
                            !may_join(g, f, part, b, first[b], lead))
                            continue;
                        inputs[lead] += inputs[b]; /* now the loop's */
                        f->loop[b] = lead;
                        f->next_in_loop[last_in[lead]] = b;
                        last_in[lead] = b;
                    }
                }
            for (int i = first[b]; i <= b; i++)
                for (int k = 0; k < ir_at(g, i)->n_in && f->group[i] == b; k++)
                    read_in[ir_at(g, i)->in[k]] = f->loop[b];
        }
    /* A row loss and its gradient (cross_entropy and cross_entropy_grad of
     * the same logits and labels) share one pass over the rows, when the
     * gradient's scale is known before the loss. */
    for (int i = 0; i < g->n; i++)
        read_in[i] = -1;
    for (int b = 0; b < g->n; b++) {
        const Node *n = ir_at(g, b);
        if (n->op == OP_XENT && part[b] == 1 && f->group[b] == b)
            read_in[n->in[0]] = b;
        if (n->op != OP_XENT_GRAD || part[b] != 2 || f->group[b] != b)
            continue;
        int a = read_in[n->in[1]], dy = n->in[0];
        if (a < 0 || ir_at(g, a)->in[1] != n->in[2] || f->loop[a] >= 0)
            continue;
        if ((ir_at(g, dy)->op != OP_CONST || f->stored[dy]) &&
            sched_key(g, part, dy) >= sched_key(g, part, a))
            continue;
        f->loop[a] = f->loop[b] = a;
        f->next_in_loop[a] = b;
    }
    free(read_in);
    /* A value read only inside its own shared loop needs no buffer. */
    int *outside = xcalloc(g->n, sizeof *outside);
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < ir_at(g, i)->n_in; k++) {
            int x = ir_at(g, i)->in[k], lead = f->loop[x];
            if (lead < 0 || f->loop[f->group[i]] != lead)
                outside[x]++;
        }
    for (int x = 0; x < g->n; x++)
        if (f->loop[x] >= 0 && !must_store[x] && !outside[x] &&
            op_info[ir_at(g, x)->op].kind == ELEM &&
            (f->next_in_loop[x] >= 0 || f->loop[x] != x))
            f->stored[x] = false;
    free(outside);
    free(last_in);
    free(first);
    free(mixed);
    free(part);
}

Fusion fuse(Graph *g)
{
    Fusion f;
    f.group = xmalloc(g->n * sizeof *f.group);
    f.loop = xmalloc(g->n * sizeof *f.loop);
    f.next_in_loop = xmalloc(g->n * sizeof *f.next_in_loop);
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
            /* Products, aliases (a reshape is its input's array) and some
             * row kernels read their inputs as arrays (ops.def): a constant
             * there, a gradient folded to one, is filled in first. */
            if (op_info[n->op].reads == read_arrays)
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
        long space = shape_size(loop_space(g, rn));
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
    share_loops(g, &f, root, inputs);
    free(uses);
    free(root);
    free(inputs);
    return f;
}

void fusion_free(Fusion *f)
{
    free(f->group);
    free(f->stored);
    free(f->loop);
    free(f->next_in_loop);
}
