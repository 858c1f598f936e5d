/*
 * emit.h: what emit_c.c (names, and the files' layout) and emit_loops.c
 * (loop groups and calls, node by node) share while writing a model's C.
 */
#ifndef EMIT_H
#define EMIT_H

#include "gradc.h"

typedef struct {
    Graph *g;
    const Fusion *f;
    const Plan *p;
    const char *twin;  /* NULL for the model, else "infer", "hvp" or "jvp" */
    unsigned products; /* the model's product twins: PRODUCT_HVP, PRODUCT_JVP */
    char **name; /* per stored node: its C name */
    /* So that a model of many ops is not named in quadratic time: a hash
     * set of the named nodes' ids (-1: empty), and for each base name the
     * suffix it last took (1: none). base, base_2 ... base_k are taken, so
     * the next node named base tries base_k+1 first. */
    int *names, names_cap;
    struct {
        char *base;
        int suffix;
    } * suffixes;
    bool *used;   /* per node: its name appears in the code */
    int *fold_of; /* per node: the parameter whose folded update it makes, or -1 */
    const Tune *tune;
    Buf *b;
    SrcLoc last_loc; /* the last block comment, not to repeat it */
    int last_grad;   /* its node's is_grad, or -1 for a loop with its backward */
    int max_part;    /* the last part of the schedule the function being
                        written computes */
    Buf places;      /* a heap arena's: each tensor's pointer set into it */
    long arena_size; /* the plan's arena, and after it tuned_copy (emit_arena) */
} Emit;

/* A node's C name, as the code refers to it: only arrays the code uses
 * are declared (-Wunused would reject the others). */
static inline const char *use(Emit *e, int id)
{
    const char *name = e->name[id];
    while (op_info[ir_at(e->g, id)->op].kind == ALIAS) /* a reshape's array is its input's */
        id = ir_at(e->g, id)->in[0];
    e->used[id] = true;
    return name;
}

/* ---- emit_loops.c ---- */
/* Writes node id's code into e->b: its loop group (with the nodes fused
 * into it), or its library call; nothing for a node inside another's. */
void emit_node(Emit *e, int id);
/* How the tune file says to write node id, a product (the product in
 * *p); USE_BLAS for any other node. */
TuneUse product_use(Emit *e, int id, Product *p);

#endif
