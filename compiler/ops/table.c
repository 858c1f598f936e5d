/*
 * ops/table.c: the op table, expanded from ops.def's rows; the helpers the
 * families share; and the rules of the leaves and of ops without a rule
 * of some kind.
 */
#include <float.h>
#include <math.h>
#include <string.h>
#include "ops.h"

#define NONE LUA_NONE, NULL
#define FUNCTION LUA_FUNCTION, NULL
#define METHOD LUA_METHOD, NULL
#define MATH(f) LUA_METHOD, f
const OpInfo op_info[N_OPS] = {
#define OP(e, name, arity, kind, lua, reads, shape, grad, emit)                                    \
    {name, arity, kind, lua, reads, shape, grad, emit},
#include "../ops.def"
#undef OP
};
#undef NONE
#undef FUNCTION
#undef METHOD
#undef MATH

/* A number as the C writes it, valid in float and in double alike: the
 * front end takes only finite numbers, but folding may make others, and
 * a float literal out of float's range is a warning (an error here). */
const char *lit(double v, char buf[48])
{
    char num[40];
    fmt_real(num, v);
    if (isnan(v))
        snprintf(buf, 48, "((real)NAN)");
    else if (isinf(v))
        snprintf(buf, 48, "(%s(real)INFINITY)", v < 0 ? "-" : "");
    else if (v != 0 && (fabs(v) > FLT_MAX || fabs(v) < FLT_MIN))
        snprintf(buf, 48, "((real)%s)", num);
    else
        snprintf(buf, 48, "REAL_C(%s)", num);
    return buf;
}

/* The pragma that splits a row kernel's loop over its rows across
 * threads, when it is large: rows are written apart. */
void parallel_rows(Buf *b, long rows, long cols)
{
    if (parallel(rows, rows * cols))
        buf_printf(b, "    RT_PARALLEL_FOR(%ld)\n", rows * cols);
}

/* An element of a ROWS operand: an array access, or the literal itself. */
const char *at(char buf[96], const Operand *o, const char *index)
{
    if (o->is_const)
        return o->text;
    snprintf(buf, 96, "%s[%s]", o->text, index);
    return buf;
}

/* Only labels are int32, and labels feed only the losses that take them. */
const char *need_real(Graph *g, const Node *n, char *err, size_t len)
{
    for (int k = 0; k < n->n_in; k++) {
        const Node *x = ir_at(g, n->in[k]);
        if (x->dtype == DT_I32) {
            snprintf(err, len, "int32 tensor%s%s%s holds labels and cannot be used in arithmetic",
                     x->name ? " '" : "", x->name ? x->name : "", x->name ? "'" : "");
            return err;
        }
    }
    return NULL;
}

/* ---- leaves: input, param, const ---- */

const char *shape_leaf(Graph *g, Node *n, char *err, size_t len)
{
    (void)g;
    for (int i = 0; i < n->shape.rank; i++)
        if (n->shape.dim[i] < 1) {
            snprintf(err, len, "dimension %d is %d; dimensions must be at least 1", i + 1,
                     n->shape.dim[i]);
            return err;
        }
    if (n->op != OP_INPUT)
        n->dtype = DT_REAL;
    return NULL;
}

void emit_const(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    char buf[48];
    (void)out, (void)in;
    buf_printf(b, "%s", lit(n->value, buf));
}

/* A leaf has no inputs, and simplify's ops (matmul_add, pad_add) come
 * after every gradient has been made. */
int no_grad(Graph *g, int node, int dy, int k)
{
    (void)dy, (void)k;
    die("%s has no gradient rule", op_info[ir_at(g, node)->op].name);
}

void no_code(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)b, (void)out, (void)in;
    die("%s writes no code", op_info[n->op].name);
}

/* Ops that are not members of loop groups: their emitters read whole
 * inputs. read_whole's may take a constant as its literal (at()). */
void read_whole(const Node *n, Shape x, const Access *out, Access *in)
{
    (void)x, (void)out, (void)in;
    die("%s is not read in a loop group", op_info[n->op].name);
}

void read_arrays(const Node *n, Shape x, const Access *out, Access *in)
{
    read_whole(n, x, out, in);
}

const char *op_count(const Node *n, const Operand *in)
{
    long most = shape_size(n->shape);
    for (int k = 0; k < n->n_in; k++)
        most = shape_size(in[k].shape) > most ? shape_size(in[k].shape) : most;
    return count_type(most);
}
