/*
 * dce.c: dead code elimination.
 *
 * Needs: roots. Keeps: topological order; every parameter (a checkpoint's
 * layout is the parameter block, whatever reads it). For training, the
 * roots are the loss, the outputs and the gradients, and every input is
 * kept (the descriptor lists them even when the loss ignores one). For
 * inference, the roots are the outputs alone: no loss, no gradient, and
 * only the inputs the outputs read.
 */
#include <stdlib.h>
#include "gradc.h"

static Graph *sweep(Graph *g, bool *live)
{
    for (int i = g->n - 1; i >= 0; i--)
        if (live[i])
            for (int k = 0; k < g->nodes[i].n_in; k++)
                live[g->nodes[i].in[k]] = true;
    Graph *h = ir_empty_like(g);
    int *map = xmalloc(g->n * sizeof *map);
    for (int i = 0; i < g->n; i++)
        map[i] = live[i] ? ir_copy(h, &g->nodes[i], map) : -1;
    ir_remap_roots(h, g, map);
    free(map);
    free(live);
    return h;
}

Graph *dce(Graph *g)
{
    bool *live = xcalloc(g->n, sizeof *live);
    live[g->loss] = true;
    for (int i = 0; i < g->n_outputs; i++)
        live[g->outputs[i].node] = true;
    for (int i = 0; i < g->n_params; i++) {
        live[g->params[i].node] = true;
        if (g->params[i].grad >= 0)
            live[g->params[i].grad] = true;
    }
    for (int i = 0; i < g->n_inputs; i++)
        live[g->inputs[i]] = true;
    return sweep(g, live);
}

Graph *dce_inference(Graph *g)
{
    bool *live = xcalloc(g->n, sizeof *live);
    for (int i = 0; i < g->n_outputs; i++)
        live[g->outputs[i].node] = true;
    for (int i = 0; i < g->n_params; i++)
        live[g->params[i].node] = true;
    int loss = g->loss;
    g->loss = -1;
    Graph *h = sweep(g, live);
    g->loss = loss;
    for (int i = 0; i < h->n_params; i++)
        h->params[i].grad = -1;
    return h;
}
