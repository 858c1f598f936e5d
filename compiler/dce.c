/*
 * dce.c: dead code elimination.
 *
 * Needs: roots. Keeps: topological order; every parameter and buffer (a
 * checkpoint's layout is their block, whatever reads it). For training,
 * the roots are the loss, the outputs, the gradients and the buffers'
 * next values, and every input is kept (the descriptor lists them even
 * when the loss ignores one). For inference, the roots are the outputs
 * alone: no loss, no gradient, no buffer update, only the inputs the
 * outputs read, and of each training_or() only its evaluation side. The
 * HVP twin's roots are its outputs too, but of the training loss: both
 * sides kept.
 */
#include <stdlib.h>
#include "gradc.h"

static Graph *sweep(Graph *g, bool *live, bool inference)
{
    for (int i = g->n - 1; i >= 0; i--) {
        const Node *n = ir_at(g, i);
        if (live[i] && inference && n->op == OP_MODE)
            live[n->in[1]] = true;
        else if (live[i])
            for (int k = 0; k < n->n_in; k++)
                live[n->in[k]] = true;
    }
    Graph *h = ir_empty_like(g);
    int *map = xmalloc(g->n * sizeof *map);
    for (int i = 0; i < g->n; i++)
        if (!live[i])
            map[i] = -1;
        else if (inference && g->nodes[i].op == OP_MODE)
            map[i] = map[g->nodes[i].in[1]];
        else
            map[i] = ir_copy(h, &g->nodes[i], map);
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
    for (int i = 0; i < g->n_buffers; i++)
        live[g->buffers[i].node] = live[g->buffers[i].next] = true;
    for (int i = 0; i < g->n_inputs; i++)
        live[g->inputs[i]] = true;
    return sweep(g, live, false);
}

/* The outputs' graph, every parameter and buffer kept. */
static Graph *outputs_alone(Graph *g, bool inference)
{
    bool *live = xcalloc(g->n, sizeof *live);
    for (int i = 0; i < g->n_outputs; i++)
        live[g->outputs[i].node] = true;
    for (int i = 0; i < g->n_params; i++)
        live[g->params[i].node] = true;
    for (int i = 0; i < g->n_buffers; i++)
        live[g->buffers[i].node] = true;
    int loss = g->loss;
    g->loss = -1;
    Graph *h = sweep(g, live, inference);
    g->loss = loss;
    for (int i = 0; i < h->n_params; i++)
        h->params[i].grad = -1;
    for (int i = 0; i < h->n_buffers; i++)
        h->buffers[i].next = -1;
    return h;
}

Graph *dce_inference(Graph *g) { return outputs_alone(g, true); }

Graph *dce_outputs(Graph *g) { return outputs_alone(g, false); }
