/*
 * plan.c: the schedule, and every stored tensor's place in one arena:
 * static, or allocated at start when it is too large to be (Plan.heap).
 *
 * Needs: a Fusion. Keeps: the graph. The schedule has three parts, each in
 * id order: the outputs and what they read (compute_outputs), the rest of
 * the loss (compute_loss), the rest (the backward pass).
 *
 * Order in the arena: float inputs, parameters then buffers (one block,
 * what a checkpoint saves), the parameters' gradients (a mirror block, so
 * an optimizer is one flat loop), the optimizer's state (mirrors again),
 * then what the caller reads after a step (loss, outputs, the buffers'
 * next values), then the values a step makes. A parameter's gradient is
 * computed straight into its slot in the gradient block unless that node
 * already lives elsewhere (an input, another parameter's gradient), in
 * which case it is copied there. Int32 tensors go to a second arena.
 *
 * The values a step makes share space: each lives from the step of the
 * schedule that writes it to the last step that reads it, and takes the
 * smallest free range it fits in (best fit), at one end of it: both are
 * tried, the smaller arena kept. An op that adds into a sum
 * (accumulated_input) takes the sum's place when the sum dies there.
 * Places are rounded to 64 bytes, for vector loads and the BLAS.
 */
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

enum { ALIGN = 16 }; /* elements: 64 bytes of float */

static long round_up(long n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Adds to need everything its nodes read: one sweep down, ids being
 * topologically ordered. */
static void close_under_inputs(Graph *g, bool *need)
{
    for (int i = g->n - 1; i >= 0; i--)
        if (need[i])
            for (int k = 0; k < ir_at(g, i)->n_in; k++)
                need[ir_at(g, i)->in[k]] = true;
}

unsigned char *schedule_parts(Graph *g)
{
    unsigned char *part = xmalloc(g->n);
    bool *want = xcalloc(g->n, sizeof *want);
    memset(part, 3, g->n);
    for (int i = 0; i < g->n_outputs; i++)
        want[g->outputs[i].node] = true;
    for (int k = 0; k < 3; k++) {
        if (k == 1 && g->loss >= 0)
            want[g->loss] = true;
        if (k == 2 && g->loss >= 0)
            for (int i = 0; i < g->n; i++)
                want[i] = true;
        close_under_inputs(g, want);
        for (int i = 0; i < g->n; i++)
            if (want[i] && part[i] == 3)
                part[i] = k;
    }
    free(want);
    return part;
}

/* Each part in id order, except that the groups sharing a loop (fuse.c)
 * follow the first of them, which is where the loop runs. */
static void make_schedule(Plan *p, Graph *g, const Fusion *f)
{
    p->part = schedule_parts(g);
    p->order = xmalloc(g->n * sizeof *p->order);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < g->n; i++) {
            if (p->part[i] != k || (f->loop[i] >= 0 && f->loop[i] != i))
                continue;
            p->order[p->n_order++] = i;
            if (f->loop[i] == i)
                for (int j = f->next_in_loop[i]; j >= 0; j = f->next_in_loop[j])
                    p->order[p->n_order++] = j;
        }
        p->part_end[k] = p->n_order;
    }
}

/* A fixed place in the arena, for what lives across steps. */
static void place(Plan *p, Graph *g, int id)
{
    if (p->offset[id] >= 0)
        return;
    long *size = ir_at(g, id)->dtype == DT_I32 ? &p->iarena_size : &p->arena_size;
    p->offset[id] = *size;
    *size += shape_size(ir_at(g, id)->shape);
}

/* The free space of one arena: sorted, disjoint [start, end) ranges above
 * the fixed block, and the arena's end. */
typedef struct {
    long *start, *end;
    int n;
    long top;
} Space;

static long take(Space *s, long size, bool high)
{
    size = round_up(size);
    int best = -1;
    for (int i = 0; i < s->n; i++)
        if (s->end[i] - s->start[i] >= size &&
            (best < 0 || s->end[i] - s->start[i] < s->end[best] - s->start[best]))
            best = i;
    if (best >= 0 && high) {
        s->end[best] -= size;
        return s->end[best];
    }
    if (best >= 0) {
        long at = s->start[best];
        s->start[best] += size;
        return at;
    }
    /* None fits: grow the arena, starting in a free range that ends at
     * the top. */
    long at = s->top;
    if (s->n && s->end[s->n - 1] == s->top)
        at = s->start[--s->n];
    s->top = at + size;
    return at;
}

static void give_back(Space *s, long at, long size)
{
    size = round_up(size);
    int i = 0;
    while (i < s->n && s->start[i] < at)
        i++;
    memmove(s->start + i + 1, s->start + i, (s->n - i) * sizeof *s->start);
    memmove(s->end + i + 1, s->end + i, (s->n - i) * sizeof *s->end);
    s->start[i] = at;
    s->end[i] = at + size;
    s->n++;
    /* Merge with the neighbours it touches. */
    if (i + 1 < s->n && s->end[i] == s->start[i + 1]) {
        s->end[i] = s->end[i + 1];
        memmove(s->start + i + 1, s->start + i + 2, (s->n - i - 2) * sizeof *s->start);
        memmove(s->end + i + 1, s->end + i + 2, (s->n - i - 2) * sizeof *s->end);
        s->n--;
    }
    if (i > 0 && s->end[i - 1] == s->start[i]) {
        s->end[i - 1] = s->end[i];
        memmove(s->start + i, s->start + i + 1, (s->n - i - 1) * sizeof *s->start);
        memmove(s->end + i, s->end + i + 1, (s->n - i - 1) * sizeof *s->end);
        s->n--;
    }
}

/* The input an op adds into (matmul_add's sum, pad_add's), which may hand
 * its place to the op when it dies there; or -1. */
int accumulated_input(const Node *n)
{
    return n->op == OP_MATMUL_ADD ? 2 : n->op == OP_PAD_ADD ? 0 : -1;
}

/* The node whose array id is: a reshape is its input's. */
static int storage(Graph *g, int id)
{
    while (op_info[ir_at(g, id)->op].kind == ALIAS)
        id = ir_at(g, id)->in[0];
    return id;
}

/* Best fit, step by step: what died before this step gives its place
 * back, then what this step writes takes one, at the low end of the free
 * range it fits best or, when `high`, at its high end. */
static void place_values(Plan *p, Graph *g, const Fusion *f, const int *last, const int *loop_end,
                         int end, bool high)
{
    Space space[2] = {{0}, {0}};
    for (int a = 0; a < 2; a++) {
        space[a].start = xmalloc((g->n + 1) * sizeof(long));
        space[a].end = xmalloc((g->n + 1) * sizeof(long));
        space[a].top = round_up(a ? p->iarena_size : p->arena_size);
    }
    p->fixed_size = space[0].top;
    int **dying = xcalloc(end + 1, sizeof *dying), *n_dying = xcalloc(end + 1, sizeof *n_dying);
    bool *handed_on = xcalloc(g->n, sizeof *handed_on); /* its place went to its reader */
    long live = 0;
    for (int s = 0; s < p->n_order; s++) {
        for (int k = 0; k < n_dying[s]; k++) {
            int x = dying[s][k];
            if (handed_on[x])
                continue;
            bool i32 = ir_at(g, x)->dtype == DT_I32;
            give_back(&space[i32], p->offset[x], shape_size(ir_at(g, x)->shape));
            if (!i32)
                live -= round_up(shape_size(ir_at(g, x)->shape));
        }
        int id = p->order[s];
        const Node *n = ir_at(g, id);
        if (!f->stored[id] || p->offset[id] >= 0 || op_info[n->op].kind == ALIAS)
            continue;
        bool i32 = n->dtype == DT_I32;
        long size = shape_size(n->shape);
        /* An op adding into a sum that dies here takes the sum's place,
         * unless it reads the sum as another input too. */
        int k = accumulated_input(n), acc = k >= 0 ? storage(g, n->in[k]) : -1;
        bool other_read = false;
        for (int j = 0; j < n->n_in; j++)
            other_read |= j != k && storage(g, n->in[j]) == acc;
        if (acc >= 0 && last[acc] == s && p->offset[acc] >= p->fixed_size && !handed_on[acc] &&
            !other_read) {
            p->offset[id] = p->offset[acc];
            handed_on[acc] = true;
        } else {
            p->offset[id] = take(&space[i32], size, high);
            if (!i32) {
                live += round_up(size);
                if (live > p->peak_live)
                    p->peak_live = live;
            }
        }
        /* A value nothing reads is still written: it dies after its loop. */
        int dies = last[id] < s ? loop_end[id] + 1 : last[id] + 1;
        if (dies > end)
            continue;
        dying[dies] = xrealloc(dying[dies], (n_dying[dies] + 1) * sizeof **dying);
        dying[dies][n_dying[dies]++] = id;
    }
    for (int s = 0; s <= end; s++)
        free(dying[s]);
    free(dying);
    free(n_dying);
    for (int a = 0; a < 2; a++) {
        free(space[a].start);
        free(space[a].end);
    }
    free(handed_on);
    p->arena_size = space[0].top;
    p->iarena_size = space[1].top;
}

Plan plan(Graph *g, const Fusion *f)
{
    Plan p = {0};
    p.offset = xmalloc(g->n * sizeof *p.offset);
    p.grad_copy = xcalloc(g->n_params, sizeof *p.grad_copy);
    for (int i = 0; i < g->n; i++)
        p.offset[i] = -1;
    make_schedule(&p, g, f);

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

    /* Lifetimes over the schedule: written at its group's step, read at
     * the steps of its readers' groups; what is read after a step, to the
     * end. The groups sharing a loop take consecutive steps and run at
     * once: what the loop reads, it reads at its last step (loop_end). */
    int *pos = xmalloc(g->n * sizeof *pos), *last = xmalloc(g->n * sizeof *last);
    int *loop_end = xmalloc(g->n * sizeof *loop_end);
    for (int s = 0; s < p.n_order; s++) {
        int id = p.order[s];
        pos[id] = loop_end[id] = s;
        if (f->loop[id] >= 0 && f->loop[id] != id)
            loop_end[f->loop[id]] = s;
    }
    for (int s = 0; s < p.n_order; s++) {
        int id = p.order[s];
        if (f->loop[id] >= 0)
            loop_end[id] = loop_end[f->loop[id]];
    }
    bool *read_by_grads = xcalloc(g->n, sizeof *read_by_grads);
    for (int i = 0; i < g->n; i++)
        last[i] = -1;
    for (int s = 0; s < p.n_order; s++) {
        const Node *n = ir_at(g, p.order[s]);
        int at = loop_end[f->group[n->id]];
        for (int k = 0; k < n->n_in; k++) {
            int x = storage(g, n->in[k]);
            if (last[x] < at)
                last[x] = at;
            read_by_grads[x] |= p.part[n->id] == 2;
        }
    }
    int end = p.n_order;
    if (training) {
        last[storage(g, g->loss)] = end;
        for (int i = 0; i < g->n_params; i++)
            last[storage(g, g->params[i].grad)] = end;
        for (int i = 0; i < g->n_buffers; i++)
            last[storage(g, g->buffers[i].next)] = end;
    }
    for (int i = 0; i < g->n_outputs; i++)
        last[storage(g, g->outputs[i].node)] = end;
    /* A product accumulating into a parameter's gradient accumulates in
     * the gradient's slot all along: the sums before it, read by it alone,
     * take the slot too. */
    int *readers = xcalloc(g->n, sizeof *readers);
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < ir_at(g, i)->n_in; k++)
            readers[ir_at(g, i)->in[k]]++;
    for (int i = 0; i < g->n_params && training; i++)
        for (int gr = g->params[i].grad; accumulated_input(ir_at(g, gr)) >= 0 && !p.grad_copy[i];) {
            int x = ir_at(g, gr)->in[accumulated_input(ir_at(g, gr))];
            if (p.offset[x] >= 0 || readers[x] != 1 || !f->stored[x] ||
                op_info[ir_at(g, x)->op].kind == ALIAS)
                break;
            p.offset[x] = p.offset[gr];
            gr = x;
        }
    /* Those live across steps: fixed places, after the optimizer's state. */
    for (int s = 0; s < p.n_order; s++)
        if (last[p.order[s]] == end && f->stored[p.order[s]])
            place(&p, g, p.order[s]);

    /* Which end of a free range a value takes changes how the ranges left
     * fit the values after it: both are tried, the smaller arena kept (the
     * GPT's 1.08x the minimum one way, 1.02x the other; iris 1.00x and
     * 1.12x). */
    long *fixed = xmalloc(g->n * sizeof *fixed), *low = xmalloc(g->n * sizeof *low);
    memcpy(fixed, p.offset, g->n * sizeof *fixed);
    long arena = p.arena_size, iarena = p.iarena_size;
    place_values(&p, g, f, last, loop_end, end, false);
    long low_size = p.arena_size, low_isize = p.iarena_size;
    memcpy(low, p.offset, g->n * sizeof *low);
    memcpy(p.offset, fixed, g->n * sizeof *fixed);
    p.arena_size = arena, p.iarena_size = iarena;
    place_values(&p, g, f, last, loop_end, end, true);
    if (p.arena_size + p.iarena_size >= low_size + low_isize) {
        memcpy(p.offset, low, g->n * sizeof *low);
        p.arena_size = low_size, p.iarena_size = low_isize;
    }
    free(fixed);
    free(low);
    for (int i = 0; i < g->n; i++) /* reshapes: their input's place */
        if (op_info[ir_at(g, i)->op].kind == ALIAS && p.offset[i] < 0)
            p.offset[i] = p.offset[storage(g, i)];
    p.loss_offset = training ? p.offset[g->loss] : -1;

    /* Plain SGD may fold a parameter's update into the product that makes
     * its gradient when that product is the last reader of the parameter
     * and nothing reads the gradient but the optimizer. */
    p.fold = xcalloc(g->n_params, sizeof *p.fold);
    for (int i = 0; i < g->n_params && training && g->opt.kind == OPT_SGD; i++) {
        int w = g->params[i].node, gr = g->params[i].grad;
        p.fold[i] = ir_at(g, gr)->op == OP_MATMUL && !p.grad_copy[i] && last[w] < pos[gr] &&
                    readers[gr] == 0;
    }

    /* What the backward pass reads of the forward values (a shared loop
     * may read them before the loss part of the schedule ends). */
    for (int i = 0; i < g->n; i++)
        if (f->stored[i] && p.part[i] < 2 && read_by_grads[i] && last[i] < end &&
            p.offset[i] >= p.fixed_size)
            p.kept_for_backward += shape_size(ir_at(g, i)->shape);

    free(read_by_grads);
    free(readers);
    free(pos);
    free(loop_end);
    free(last);
    p.heap = p.arena_size > (MAX_STATIC_ARENA - p.iarena_size * 4) / 8;
    return p;
}

void plan_free(Plan *p)
{
    free(p->offset);
    free(p->grad_copy);
    free(p->fold);
    free(p->order);
    free(p->part);
    free(p->buckets);
    free(p->bucket_params);
}
