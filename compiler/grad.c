/*
 * grad.c: reverse-mode differentiation, IR to IR.
 *
 * Needs: a forward graph with a scalar loss. Keeps: topological order; the
 * forward nodes untouched. Walks the nodes from the loss down, asking each
 * op's gradient rule for the gradient reaching each input and summing the
 * contributions with add nodes. Only inputs on a path to a parameter get
 * a gradient, so nothing is made for data or labels. Each parameter's
 * gradient is checked to have the parameter's shape, as the notes insist.
 *
 * The same walk serves the model language's grad(y, {x, ...}): gradients
 * as values of the forward graph, which the pass then differentiates
 * again like any other value (a loss holding a gradient: second order).
 */
#include <stdlib.h>
#include "gradc.h"

/* needs[i]: one of the variables (wanted[i]) reaches node i, so its
 * gradient is wanted. Labels and ids (int32) carry no gradient. */
static bool *find_needs(Graph *g, const bool *wanted)
{
    bool *needs = xcalloc(g->n, sizeof *needs);
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        needs[i] = wanted[i];
        for (int k = 0; k < n->n_in; k++)
            needs[i] |= needs[n->in[k]] && ir_at(g, n->in[k])->dtype == DT_REAL;
    }
    return needs;
}

/* Reverse mode from the scalar y: adj[i], the gradient of y reaching
 * node i (-1 for none), for every node on a path from a wanted one to y.
 * The nodes it makes are named for their variables through grad_of, and
 * carry the line of the node each rule ran for, or with at_call g->loc
 * (the line of the model's grad() call). */
static int *backprop(Graph *g, int y, const bool *wanted, bool at_call)
{
    int n_before = g->n;
    bool *needs = find_needs(g, wanted);
    int *adj = xmalloc(n_before * sizeof *adj);
    for (int i = 0; i < n_before; i++)
        adj[i] = -1;
    SrcLoc loc = g->loc;
    if (!at_call)
        g->loc = ir_at(g, y)->loc;
    adj[y] = ir_const(g, 1, ir_at(g, y)->shape);
    for (int i = y; i >= 0; i--) {
        if (adj[i] < 0)
            continue;
        Node n = *ir_at(g, i); /* a copy: the rules below add nodes */
        if (!at_call)
            g->loc = n.loc;
        for (int k = 0; k < n.n_in; k++) {
            int x = n.in[k];
            if (!needs[x])
                continue;
            int d = op_info[n.op].grad(g, i, adj[i], k);
            if (!shape_eq(ir_at(g, d)->shape, ir_at(g, x)->shape))
                die("the gradient %s gives its input %d has the wrong shape", op_info[n.op].name, k);
            adj[x] = adj[x] < 0 ? d : ir_binary(g, OP_ADD, adj[x], d);
        }
    }
    g->loc = loc;
    /* Name each gradient for its variable: d_h is the gradient of h. Where
     * one node is the gradient of several (y = a + b passes dy on), the
     * one nearest y names it. */
    for (int i = n_before - 1; i >= 0; i--)
        if (adj[i] >= n_before && ir_at(g, adj[i])->grad_of < 0)
            ir_at(g, adj[i])->grad_of = i;
    free(needs);
    return adj;
}

void grad(Graph *g)
{
    bool *wanted = xcalloc(g->n, sizeof *wanted);
    for (int p = 0; p < g->n_params; p++)
        wanted[g->params[p].node] = true;
    g->making_grad = true;
    int *adj = backprop(g, g->loss, wanted, false);
    for (int p = 0; p < g->n_params; p++) {
        Param *param = &g->params[p];
        g->loc = ir_at(g, param->node)->loc;
        /* A parameter the loss does not reach has a zero gradient. */
        param->grad = adj[param->node] >= 0 ? adj[param->node]
                                            : ir_const(g, 0, ir_at(g, param->node)->shape);
        if (!shape_eq(ir_at(g, param->grad)->shape, ir_at(g, param->node)->shape))
            die("the gradient of %s does not have its shape", ir_at(g, param->node)->name);
    }
    g->making_grad = false;
    free(adj);
    free(wanted);
}

void grad_of_values(Graph *g, int y, int n, const int *wrt, int *out, bool at_call)
{
    bool *wanted = xcalloc(g->n, sizeof *wanted);
    for (int i = 0; i < n; i++)
        wanted[wrt[i]] = true;
    int *adj = backprop(g, y, wanted, at_call);
    for (int i = 0; i < n; i++)
        out[i] = adj[wrt[i]];
    free(adj);
    free(wanted);
}

void backward_of(Graph *g, int y, int n, const int *wrt, int *out)
{
    for (int i = 0; i < n; i++)
        out[i] = -1;
    if (y < 0)
        return;
    g->making_grad = true;
    grad_of_values(g, y, n, wrt, out, false);
    g->making_grad = false;
}

bool every_param_has_gradient(Graph *g)
{
    for (int i = 0; i < g->n_params; i++) {
        const Node *pn = ir_at(g, g->params[i].node), *gr = ir_at(g, g->params[i].grad);
        if (gr->op == OP_CONST && gr->value == 0) {
            fprintf(stderr,
                    "%s:%d: param '%s' gets no gradient: the loss does not reach it, or only "
                    "through ops without one (comparisons, argmax, step, sign, one_hot)\n",
                    pn->loc.file, pn->loc.line, pn->name);
            return false;
        }
    }
    return true;
}
