/*
 * print.c: what gradc print shows besides the graph itself: what every
 * pass did (--stats, each pass's line from the pass table), the arena
 * against its minimum (--memory), and the schedule, loop by loop and call
 * by call (--after fuse or plan).
 */
#include <stdlib.h>
#include "gradc.h"

int print_stats(const char *model, const LoadOptions *o, FILE *out)
{
    PassStats st;
    Compiled c = compile(model, o, NULL, &st);
    if (!c.graph)
        return 1;
    fprintf(out, "%s\n", model);
    for (int i = 0; i < n_passes; i++)
        passes[i].said(&c, &st, out);
    compiled_free(&c);
    return 0;
}

int print_memory(const char *model, const LoadOptions *o, FILE *out)
{
    Compiled compiled = compile(model, o, NULL, NULL);
    if (!compiled.graph)
        return 1;
    const Graph *g = compiled.graph;
    const Fusion *f = &compiled.fusion;
    const Plan *p = &compiled.plan;
    char c[12][32];
    long unshared = 0;
    for (int i = 0; i < g->n; i++)
        if (f->stored[i] && p->offset[i] >= p->fixed_size && g->nodes[i].dtype == DT_REAL &&
            op_info[g->nodes[i].op].kind != ALIAS)
            unshared += shape_size(g->nodes[i].shape);
    long minimum = p->fixed_size + p->peak_live;
    fprintf(out,
            "%s: the arena, in values (4 bytes each as float, 8 as double)\n"
            "  inputs                 %12s\n"
            "  parameters             %12s\n"
            "  buffers                %12s\n"
            "  gradients              %12s\n"
            "  optimizer state        %12s\n"
            "  read after a step      %12s  loss, outputs, running averages\n"
            "  a step's values        %12s  the most alive at once; the backward pass\n"
            "                                      keeps %s of them from the forward pass\n"
            "  minimum                %12s  the sum, places rounded to 64 bytes\n"
            "  arena                  %12s  %.2fx the minimum (%s if no two values\n"
            "                                      shared a place)\n",
            g->source, thousands(c[0], p->params_offset), thousands(c[1], p->n_param_elems),
            thousands(c[2], p->n_buffer_elems), thousands(c[3], p->state_offset - p->grads_offset),
            thousands(c[4], p->n_state),
            thousands(c[5], p->fixed_size - p->state_offset - p->n_state),
            thousands(c[6], p->peak_live), thousands(c[7], p->kept_for_backward),
            thousands(c[8], minimum), thousands(c[9], p->arena_size),
            (double)p->arena_size / minimum, thousands(c[10], p->fixed_size + unshared));
    if (p->iarena_size)
        fprintf(out, "  int32 arena            %12s  int32 inputs and values\n",
                thousands(c[11], p->iarena_size));
    compiled_free(&compiled);
    return 0;
}

int print_schedule(const char *model, const LoadOptions *o, bool places, FILE *out)
{
    Compiled c = compile(model, o, "plan", NULL);
    if (!c.graph)
        return 1;
    Graph *g = c.graph;
    const Fusion f = c.fusion;
    const Plan p = c.plan;
    static const char *const part[3] = {"compute_outputs", "compute_loss", "compute_grads"};
    /* Each group's inlined members, listed once: a chain from the root. */
    int *first = xmalloc(g->n * sizeof *first), *next = xmalloc(g->n * sizeof *next);
    for (int i = 0; i < g->n; i++)
        first[i] = next[i] = -1;
    for (int i = g->n - 1; i >= 0; i--)
        if (f.group[i] != i && !f.stored[i] && g->nodes[i].op != OP_CONST) {
            next[i] = first[f.group[i]];
            first[f.group[i]] = i;
        }
    fprintf(out, "model %s: %d steps\n", g->name, p.n_order);
    for (int s = 0; s < p.n_order; s++) {
        for (int k = 0; k < 3; k++)
            if (s == (k ? p.part_end[k - 1] : 0) && s < p.part_end[k])
                fprintf(out, "%s:\n", part[k]);
        int id = p.order[s];
        const Node *n = ir_at(g, id);
        OpKind kind = op_info[n->op].kind;
        if (f.group[id] != id || (!f.stored[id] && f.loop[id] < 0) || kind == LEAF || kind == ALIAS)
            continue;
        char shape[64], where[32] = "loop";
        shape_str(shape, sizeof shape, n->shape);
        if (kind == GEMM || kind == ROWS)
            snprintf(where, sizeof where, "call");
        else if (f.loop[id] >= 0 && f.loop[id] != id)
            snprintf(where, sizeof where, "in %%%d's loop", f.loop[id]);
        fprintf(out, "  %%%-5d %-14s %-14s %s%s", id, op_info[n->op].name, shape, where,
                f.stored[id] ? "" : ", a temporary");
        if (places && f.stored[id])
            fprintf(out, "   %s %ld", n->dtype == DT_I32 ? "iarena" : "arena", p.offset[id]);
        const char *sep = "  computing inside:";
        for (int i = first[id]; i >= 0; i = next[i]) {
            fprintf(out, "%s %%%d %s", sep, i, op_info[g->nodes[i].op].name);
            sep = ",";
        }
        fprintf(out, "\n");
    }
    free(first);
    free(next);
    compiled_free(&c);
    return 0;
}

void print_buckets(const Compiled *c, const char *indent, FILE *out)
{
    const Plan *p = &c->plan;
    const Graph *g = c->graph;
    for (int b = 0; b < p->n_buckets; b++) {
        const Bucket *k = &p->buckets[b];
        char n[32];
        fprintf(out, "%s%d. %s values (", indent, b, thousands(n, k->count));
        for (int j = 0; j < k->n; j++)
            fprintf(out, "%s%s", j ? " " : "",
                    g->nodes[g->params[p->bucket_params[k->first + j]].node].name);
        if (k->at < p->n_order)
            fprintf(out, ") after %s:%d\n", g->nodes[p->order[k->at]].loc.file,
                    g->nodes[p->order[k->at]].loc.line);
        else
            fprintf(out, ") at the end\n");
    }
}

int print_bucket_list(const char *model, const LoadOptions *o, FILE *out)
{
    Compiled c = compile(model, o, NULL, NULL);
    if (!c.graph)
        return 1;
    fprintf(out, "%d bucket%s of gradients, in the order the backward pass finishes them:\n",
            c.plan.n_buckets, c.plan.n_buckets == 1 ? "" : "s");
    print_buckets(&c, "  ", out);
    compiled_free(&c);
    return 0;
}
