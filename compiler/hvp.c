/*
 * hvp.c: the Hessian-vector product twin of a model, IR to IR.
 *
 * Needs: a forward graph with a scalar loss (after batch). Makes: a graph
 * with no loss whose outputs are H v, H the Hessian of the loss in the
 * parameters and v a direction, by reverse over reverse (Pearlmutter
 * 1994): with g = dL/dp, H v = d(g . v)/dp. Its parameters are the
 * model's, then v_NAME for each, the direction, of the same shape; its
 * outputs hv_NAME, in the same order. Laid out by the plan as parameters
 * are, the model's block comes first and v's is another like it, so the
 * runtime copies each in one piece. The two walks are grad.c's, so every
 * op's gradient rule and its own rule's rule are the ones the ops suite
 * checks; simplify, dce, fuse and plan then treat the twin as any graph.
 */
#include <stdio.h>
#include <stdlib.h>
#include "gradc.h"

int dot_with_directions(Graph *g, const int *values)
{
    int n = g->n_params, dot = -1;
    g->params = xrealloc(g->params, 2 * n * sizeof *g->params);
    for (int i = 0; i < n; i++) {
        const Node *p = ir_at(g, g->params[i].node);
        char name[80];
        snprintf(name, sizeof name, "v_%s", p->name);
        g->loc = p->loc;
        int v = ir_must(g, &(Node){.op = OP_PARAM,
                                   .name = keep(xstrdup(name)),
                                   .shape = p->shape,
                                   .init = INIT_CONST});
        g->params[n + i] = (Param){v, -1};
        if (values[i] < 0)
            continue;
        int term = ir_sum_to(g, ir_binary(g, OP_MUL, values[i], v), (Shape){0});
        dot = dot < 0 ? term : ir_binary(g, OP_ADD, dot, term);
    }
    g->n_params = 2 * n;
    return dot;
}

Graph *hvp_twin(Graph *g)
{
    int n = g->n_params;
    int *wrt = xmalloc(n * sizeof *wrt), *first = xmalloc(n * sizeof *first);
    int *second = xmalloc(n * sizeof *second);
    for (int i = 0; i < n; i++)
        wrt[i] = g->params[i].node;
    backward_of(g, g->loss, n, wrt, first);

    int dot = dot_with_directions(g, first);
    /* Its gradient, the product: zero for a parameter it does not reach
     * (the loss is linear in it, or does not read it). */
    backward_of(g, dot, n, wrt, second);
    g->outputs = xrealloc(g->outputs, n * sizeof *g->outputs);
    g->n_outputs = n;
    for (int i = 0; i < n; i++) {
        const Node *p = ir_at(g, wrt[i]);
        char name[80];
        snprintf(name, sizeof name, "hv_%s", p->name);
        g->loc = p->loc;
        int hv = second[i] >= 0 ? second[i] : ir_const(g, 0, p->shape);
        g->outputs[i] = (Output){keep(xstrdup(name)), hv};
    }
    g->loss = -1;
    for (int i = 0; i < g->n_buffers; i++)
        g->buffers[i].next = -1; /* nothing is trained */
    free(wrt);
    free(first);
    free(second);
    return g;
}
