/*
 * compile.c: the whole pipeline, in the order gradc.h lists the passes,
 * from a model file to its six files in memory; gradc's commands and the
 * front end's fuzzer both run it.
 */
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

Graph *compile_graph(const char *model, const LoadOptions *o, const char *after, PassStats *st)
{
    PassStats unused;
    if (!st)
        st = &unused;
    *st = (PassStats){0};
    Graph *g = load_model(model, o);
    if (!g || (after && !strcmp(after, "load")))
        return g;
    st->loaded = g->n;
    st->local_reads = g->front_local_reads;
    Graph *b = batch_products(g, &st->batched);
    ir_free(g);
    g = b;
    ir_check(g);
    if (after && !strcmp(after, "batch"))
        return g;
    grad(g);
    ir_check(g);
    st->with_grad = g->n;
    if (after && !strcmp(after, "grad"))
        return g;
    Graph *s = simplify(g, &st->simplify);
    st->simplified = s->n;
    ir_free(g);
    ir_check(s);
    for (int i = 0; i < s->n_params; i++) {
        const Node *pn = ir_at(s, s->params[i].node), *gr = ir_at(s, s->params[i].grad);
        if (gr->op == OP_CONST && gr->value == 0) {
            fprintf(stderr,
                    "%s:%d: param '%s' gets no gradient: the loss does not reach it, or only "
                    "through ops without one (comparisons, argmax, step, sign, one_hot)\n",
                    pn->loc.file, pn->loc.line, pn->name);
            ir_free(s);
            return NULL;
        }
    }
    if (after && !strcmp(after, "simplify"))
        return s;
    Graph *d = dce(s);
    ir_free(s);
    ir_check(d);
    st->live = d->n;
    if (after && !strcmp(after, "dce"))
        return d;
    Graph *r = remat(d, &st->recomputed);
    ir_free(d);
    ir_check(r);
    return r;
}

/* Whether the arena is more than a generated program can hold; if so, says
 * so at the line of the largest tensor. */
static bool too_big(Graph *g, const Plan *p)
{
    if (p->arena_size + p->iarena_size <= MAX_ARENA)
        return false;
    int big = 0;
    for (int i = 0; i < g->n; i++)
        if (p->offset[i] >= 0 && shape_size(g->nodes[i].shape) > shape_size(g->nodes[big].shape))
            big = i;
    char s[64];
    shape_str(s, sizeof s, g->nodes[big].shape);
    fprintf(stderr,
            "%s:%d: the model's tensors take %ld values, more than the %ld a generated program "
            "can hold (the largest, %s, is made here)\n",
            g->nodes[big].loc.file, g->nodes[big].loc.line, p->arena_size + p->iarena_size,
            MAX_ARENA, s);
    return true;
}

int compile_files(const char *model, const LoadOptions *o, OutFile out[6])
{
    Tune tune = {0};
    if (o->tune && tune_read(o->tune, &tune))
        return 1;
    Graph *g = compile_graph(model, o, NULL, NULL);
    if (!g) {
        tune_free(&tune);
        return 1;
    }
    Fusion f = fuse(g);
    Plan p = plan(g, &f);
    if (too_big(g, &p)) {
        plan_free(&p);
        fusion_free(&f);
        ir_free(g);
        tune_free(&tune);
        return 1;
    }
    emit_c(g, &f, &p, &tune, out);
    plan_free(&p);
    fusion_free(&f);
    /* The inference-only twin: the outputs' forward graph alone. */
    Graph *inf = dce_inference(g);
    ir_check(inf);
    f = fuse(inf);
    p = plan(inf, &f);
    emit_c_inference(inf, &f, &p, &tune, out + 4);
    plan_free(&p);
    fusion_free(&f);
    ir_free(inf);
    ir_free(g);
    tune_free(&tune);
    return 0;
}

void free_files(OutFile *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].path);
        buf_free(&files[i].text);
    }
}

/* Counts with thousands separators, as people read sizes. */
static const char *count(char out[32], long n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ld", n), o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    return out;
}

static void print_memory(Graph *g, const Plan *p, const Fusion *f, FILE *out)
{
    char c[12][32];
    long unshared = 0;
    for (int i = 0; i < g->n; i++)
        if (f->stored[i] && p->offset[i] >= p->fixed_size && ir_at(g, i)->dtype == DT_REAL &&
            op_info[ir_at(g, i)->op].kind != ALIAS)
            unshared += shape_size(ir_at(g, i)->shape);
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
            g->source, count(c[0], p->params_offset), count(c[1], p->n_param_elems),
            count(c[2], p->n_buffer_elems), count(c[3], p->state_offset - p->grads_offset),
            count(c[4], p->n_state), count(c[5], p->fixed_size - p->state_offset - p->n_state),
            count(c[6], p->peak_live), count(c[7], p->kept_for_backward), count(c[8], minimum),
            count(c[9], p->arena_size), (double)p->arena_size / minimum,
            count(c[10], p->fixed_size + unshared));
    if (p->iarena_size)
        fprintf(out, "  int32 arena            %12s  int32 inputs and values\n",
                count(c[11], p->iarena_size));
}

int print_stats(const char *model, const LoadOptions *o, bool memory, FILE *out)
{
    PassStats st;
    Graph *g = compile_graph(model, o, NULL, &st);
    if (!g)
        return 1;
    Fusion f = fuse(g);
    Plan p = plan(g, &f);
    if (!memory) {
        const SimplifyStats *s = &st.simplify;
        int loops = 0, calls = 0, products = 0, inlined = 0, shared = 0, temps = 0;
        for (int i = 0; i < g->n; i++) {
            OpKind k = op_info[ir_at(g, i)->op].kind;
            shared += f.loop[i] >= 0 && f.loop[i] != i;
            temps += f.loop[i] >= 0 && !f.stored[i];
            if (f.group[i] != i)
                inlined++;
            else if (f.loop[i] >= 0 && f.loop[i] != i)
                continue;
            else if (f.loop[i] == i && f.next_in_loop[i] >= 0)
                loops++;
            else if (k == GEMM || k == ROWS) {
                calls++;
                products += ir_at(g, i)->op == OP_MATMUL || ir_at(g, i)->op == OP_MATMUL_ADD;
            } else if (f.stored[i] && k != LEAF && k != ALIAS)
                loops++;
        }
        fprintf(out,
                "%s\n"
                "  load      %d nodes: the forward graph (its values named after the Lua\n"
                "            locals that hold them: %ld locals read)\n"
                "  batch     products of one matrix by every slice of a tensor made one: %d\n"
                "  grad      %+d nodes: the backward graph\n"
                "  simplify  %d -> %d nodes: constants folded %d, identities %d, common\n"
                "            subexpressions merged %d, transposes folded into products %d,\n"
                "            heads of attention products read or written in place %d,\n"
                "            constant factors into their alpha %d, windows stored, not\n"
                "            added, into a sum they tile %d\n"
                "  dce       %d -> %d nodes: computing nothing needed %d\n"
                "  remat     forward values computed again where the backward reads\n"
                "            them, instead of kept: %d\n"
                "  fuse      loops %d, library calls %d (matrix products %d), nodes computed\n"
                "            inside the loop of the node that reads them %d; loops joined\n"
                "            by another's (the same elements) %d, values kept only as\n"
                "            temporaries there %d\n",
                model, st.loaded, st.local_reads, st.batched, st.with_grad - st.loaded,
                st.with_grad, st.simplified, s->folded, s->identities, s->merged, s->transposes,
                s->heads, s->scales, s->tiles, st.simplified, st.live, st.simplified - st.live,
                st.recomputed, loops, calls, products, inlined, shared, temps);
        char c[32];
        fprintf(out, "  plan      steps %d; arena %s values, %.2fx the minimum (print --memory)\n",
                p.n_order, count(c, p.arena_size),
                (double)p.arena_size / (p.fixed_size + p.peak_live));
    } else
        print_memory(g, &p, &f, out);
    plan_free(&p);
    fusion_free(&f);
    ir_free(g);
    return 0;
}

/* gradc print --after fuse or plan: the schedule, a line per loop or call,
 * with the nodes each loop computes inside it, and after plan where each
 * value lives in the arena. */
int print_schedule(const char *model, const LoadOptions *o, bool places, FILE *out)
{
    Graph *g = compile_graph(model, o, NULL, NULL);
    if (!g)
        return 1;
    Fusion f = fuse(g);
    Plan p = plan(g, &f);
    static const char *const part[3] = {"compute_outputs", "compute_loss", "compute_grads"};
    /* Each group's inlined members, listed once: a chain from the root. */
    int *first = xmalloc(g->n * sizeof *first), *next = xmalloc(g->n * sizeof *next);
    for (int i = 0; i < g->n; i++)
        first[i] = next[i] = -1;
    for (int i = g->n - 1; i >= 0; i--)
        if (f.group[i] != i && !f.stored[i] && ir_at(g, i)->op != OP_CONST) {
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
        if (f.group[id] != id || (!f.stored[id] && f.loop[id] < 0) || kind == LEAF ||
            kind == ALIAS)
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
            fprintf(out, "%s %%%d %s", sep, i, op_info[ir_at(g, i)->op].name);
            sep = ",";
        }
        fprintf(out, "\n");
    }
    free(first);
    free(next);
    plan_free(&p);
    fusion_free(&f);
    ir_free(g);
    return 0;
}
