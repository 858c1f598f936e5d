/*
 * compile.c: the whole pipeline, in the order gradc.h lists the passes,
 * from a model file to its six files in memory; gradc's commands and the
 * front end's fuzzer both run it.
 */
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

Graph *compile_graph(const char *model, const LoadOptions *o, const char *after)
{
    Graph *g = load_model(model, o);
    if (!g || (after && !strcmp(after, "load")))
        return g;
    grad(g);
    ir_check(g);
    if (after && !strcmp(after, "grad"))
        return g;
    Graph *s = simplify(g);
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
    return d;
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
    Graph *g = compile_graph(model, o, NULL);
    if (!g)
        return 1;
    Fusion f = fuse(g);
    Plan p = plan(g, &f);
    if (too_big(g, &p)) {
        plan_free(&p);
        fusion_free(&f);
        ir_free(g);
        return 1;
    }
    emit_c(g, &f, &p, out);
    plan_free(&p);
    fusion_free(&f);
    /* The inference-only twin: the outputs' forward graph alone. */
    Graph *inf = dce_inference(g);
    ir_check(inf);
    f = fuse(inf);
    p = plan(inf, &f);
    emit_c_inference(inf, &f, &p, out + 4);
    plan_free(&p);
    fusion_free(&f);
    ir_free(inf);
    ir_free(g);
    return 0;
}

void free_files(OutFile *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].path);
        buf_free(&files[i].text);
    }
}
