/*
 * ops/ops.h: what the op families (elementwise.c, reductions.c, shapes.c,
 * products.c, nn.c) and the table (table.c) share. Private to ops/.
 *
 * A gradient rule returns IR for the gradient reaching input k, built with
 * the same constructors as the front end, so backward graphs are ordinary
 * graphs: simplified, fused, printed, and differentiable again. It must
 * return a node with input k's shape; grad() checks.
 *
 * An ELEM or VIEW emitter writes one expression from its operands'
 * element expressions (each a name, a literal or an array access, so no
 * parentheses are needed around them). GEMM and ROWS emitters write whole
 * statements at function level.
 */
#ifndef OPS_H
#define OPS_H

#include "../gradc.h"

/* Every rule a row of ops.def names. */
#define OP(e, name, arity, kind, lua, reads, shape, grad, emit)                                    \
    ReadRule reads;                                                                                \
    ShapeRule shape;                                                                               \
    GradRule grad;                                                                                 \
    EmitRule emit;
#include "../ops.def"
#undef OP

static inline int in_(Graph *g, int node, int k) { return ir_at(g, node)->in[k]; }
static inline Shape shape_of(Graph *g, int id) { return ir_at(g, id)->shape; }

/* table.c */
const char *lit(double v, char buf[48]);
void parallel_rows(Buf *b, long rows, long cols);
const char *at(char buf[96], const Operand *o, const char *index);
const char *need_real(Graph *g, const Node *n, char *err, size_t len);
/* The type n's loops count with (count_type): of its largest tensor. */
const char *op_count(const Node *n, const Operand *in);

#endif
