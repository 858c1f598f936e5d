/*
 * dce.c: dead code elimination.
 *
 * Needs: roots. Keeps: topological order; every input and parameter (the
 * descriptor lists them even when the loss ignores one). Marks what the
 * loss, the outputs and the gradients read, and rebuilds the graph with
 * only those nodes.
 */
#include <stdlib.h>
#include "gradc.h"

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
