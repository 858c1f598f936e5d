/*
 * plan.c: places every stored tensor in one static arena.
 *
 * Needs: a Fusion. Keeps: the graph. Order in the arena: float inputs,
 * parameters then buffers (one block, what a checkpoint saves), the
 * parameters' gradients (a mirror block, so an optimizer is one flat
 * loop), the optimizer's state (mirrors again), then everything else in
 * schedule order.
 * Int32 inputs go to a second, int32 arena. A parameter's gradient is
 * computed straight into its slot in the gradient block unless that node
 * already lives elsewhere (an input, another parameter's gradient), in
 * which case it is copied there. No buffer is reused yet: every stored
 * node has its own place.
 */
#include <stdlib.h>
#include "gradc.h"

static void place(Plan *p, Graph *g, int id)
{
    if (p->offset[id] >= 0)
        return;
    if (op_info[ir_at(g, id)->op].kind == ALIAS) { /* a reshape: its input's array */
        p->offset[id] = p->offset[ir_at(g, id)->in[0]];
        return;
    }
    if (ir_at(g, id)->dtype == DT_I32) {
        p->offset[id] = p->iarena_size;
        p->iarena_size += shape_size(ir_at(g, id)->shape);
    } else {
        p->offset[id] = p->arena_size;
        p->arena_size += shape_size(ir_at(g, id)->shape);
    }
}

Plan plan(Graph *g, const Fusion *f)
{
    Plan p = {0};
    p.offset = xmalloc(g->n * sizeof *p.offset);
    p.grad_copy = xcalloc(g->n_params, sizeof *p.grad_copy);
    for (int i = 0; i < g->n; i++)
        p.offset[i] = -1;
    for (int i = 0; i < g->n_inputs; i++)
        place(&p, g, g->inputs[i]);
    p.params_offset = p.arena_size;
    for (int i = 0; i < g->n_params; i++)
        place(&p, g, g->params[i].node);
    p.n_param_elems = p.arena_size - p.params_offset;
    for (int i = 0; i < g->n_buffers; i++)
        place(&p, g, g->buffers[i].node);
    p.n_buffer_elems = p.arena_size - p.params_offset - p.n_param_elems;
    bool training = g->loss >= 0; /* an inference graph has no gradients */
    p.grads_offset = p.arena_size;
    p.arena_size += training ? p.n_param_elems : 0;
    p.state_offset = p.arena_size;
    p.n_state = training ? optim_info[g->opt.kind].state_slots * p.n_param_elems : 0;
    p.arena_size += p.n_state;
    for (int i = 0; i < g->n_params && training; i++) {
        int gr = g->params[i].grad, op = ir_at(g, gr)->op;
        if (p.offset[gr] >= 0 || op == OP_INPUT || op == OP_PARAM || op_info[op].kind == ALIAS)
            p.grad_copy[i] = true;
        else
            p.offset[gr] = p.grads_offset + p.offset[g->params[i].node] - p.params_offset;
    }
    for (int i = 0; i < g->n; i++)
        if (f->stored[i])
            place(&p, g, i);
    p.loss_offset = training ? p.offset[g->loss] : -1;
    return p;
}

void plan_free(Plan *p)
{
    free(p->offset);
    free(p->grad_copy);
}
