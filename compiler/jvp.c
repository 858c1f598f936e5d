/*
 * jvp.c: the Jacobian-vector product twin of a model, IR to IR.
 *
 * Needs: a forward graph with outputs (after batch). Makes: a graph with
 * no loss whose outputs are J v, J the Jacobian of each real output in
 * the parameters and v a direction: forward mode, the derivative of every
 * output along v. It is found by transposing the reverse walk rather than
 * by a second set of rules: with u an adjoint of the outputs, w(u) = J^T u
 * is linear in u, so J v = d(w(u) . v)/du, at any u. Each op's gradient
 * rule is linear in the gradient it is given, so the second walk never
 * reads u, and once simplify and dce have swept w away what is left is
 * the forward pass and, beside it, the tangents of its values along v
 * (the pipeline holds the twin to that: reads_only_its_params). The
 * parameters are the model's, then v_NAME for each as in the HVP twin;
 * the outputs jv_NAME, one per real output, in the outputs' order.
 */
#include <stdio.h>
#include <stdlib.h>
#include "gradc.h"

/* sum(a * b) added to the scalar sum (-1: none yet). */
static int add_dot(Graph *g, int sum, int a, int b)
{
    int term = ir_sum_to(g, ir_binary(g, OP_MUL, a, b), (Shape){0});
    return sum < 0 ? term : ir_binary(g, OP_ADD, sum, term);
}

Graph *jvp_twin(Graph *g)
{
    int n = g->n_params, n_out = 0;
    int *wrt = xmalloc(n * sizeof *wrt), *w = xmalloc(n * sizeof *w);
    int *u = xmalloc((g->n_outputs + 1) * sizeof *u);
    Output *outputs = xmalloc((g->n_outputs + 1) * sizeof *outputs);
    for (int i = 0; i < n; i++)
        wrt[i] = g->params[i].node;

    /* s = sum over the real outputs of u . output; w = ds/dp = J^T u. */
    int s = -1;
    for (int k = 0; k < g->n_outputs; k++) {
        const Node *y = ir_at(g, g->outputs[k].node);
        if (y->dtype != DT_REAL)
            continue;
        char name[160];
        snprintf(name, sizeof name, "u_%s", g->outputs[k].name);
        g->loc = y->loc;
        outputs[n_out] = g->outputs[k];
        u[n_out] = ir_must(g, &(Node){.op = OP_PARAM,
                                      .name = keep(xstrdup(name)),
                                      .shape = y->shape,
                                      .init = INIT_CONST});
        s = add_dot(g, s, outputs[n_out].node, u[n_out]);
        n_out++;
    }
    backward_of(g, s, n, wrt, w);

    /* t = w . v; J v = dt/du. */
    int t = dot_with_directions(g, w);
    int *jv = xmalloc((n_out + 1) * sizeof *jv);
    backward_of(g, t, n_out, u, jv);
    g->outputs = xrealloc(g->outputs, (n_out + 1) * sizeof *g->outputs);
    g->n_outputs = n_out;
    for (int k = 0; k < n_out; k++) {
        char name[160];
        snprintf(name, sizeof name, "jv_%s", outputs[k].name);
        g->loc = ir_at(g, outputs[k].node)->loc;
        /* An output no parameter reaches has a zero derivative. */
        int d = jv[k] >= 0 ? jv[k] : ir_const(g, 0, ir_at(g, outputs[k].node)->shape);
        g->outputs[k] = (Output){keep(xstrdup(name)), d};
    }
    g->loss = -1;
    for (int i = 0; i < g->n_buffers; i++)
        g->buffers[i].next = -1; /* nothing is trained */
    free(wrt), free(w), free(u), free(outputs), free(jv);
    return g;
}

bool reads_only_its_params(Graph *g)
{
    int params = 0;
    for (int i = 0; i < g->n; i++)
        params += ir_at(g, i)->op == OP_PARAM;
    return params == g->n_params;
}
