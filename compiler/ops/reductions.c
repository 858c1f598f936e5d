/*
 * ops/reductions.c: sum, max and min over axes (the accumulations that end
 * loop groups), and argmax along the last axis.
 */
#include "ops.h"

/* The loop walks the input's own space: a reduction's, or a pad's, whose
 * output is written at the input's place. */
void read_walk(const Node *n, Shape x, const Access *out, Access *in)
{
    (void)n, (void)out;
    for (int j = 0; j < x.rank; j++)
        in->src[j] = x.dim[j] == 1 ? -1 : j;
}

/* ---- reduction ---- */

const char *shape_sum(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape x = shape_of(g, n->in[0]), s = {0};
    for (int i = 0; i < x.rank; i++) {
        if (n->axes[i] == AX_KEEP)
            s.dim[s.rank++] = x.dim[i];
        else if (n->axes[i] == AX_ONE)
            s.dim[s.rank++] = 1;
    }
    n->shape = s;
    n->dtype = DT_REAL;
    return NULL;
}

/* dx = dy broadcast back along the summed axes */
int grad_sum(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Shape x = shape_of(g, n->in[0]);
    int axis_of[MAX_RANK], next = 0;
    for (int i = 0; i < x.rank; i++)
        axis_of[i] = n->axes[i] == AX_DROP ? -1 : next++;
    return ir_broadcast_to(g, dy, x, axis_of);
}

void emit_sum(Buf *b, const Node *n, const Operand *acc, const Operand *in)
{
    (void)n;
    if (!in)
        buf_printf(b, "REAL_C(0.0)");
    else
        buf_printf(b, "%s += %s", acc->text, in[0].text);
}

void emit_max(Buf *b, const Node *n, const Operand *acc, const Operand *in)
{
    (void)n;
    if (!in)
        buf_printf(b, "-INFINITY");
    else
        buf_printf(b, "%s = r_max(%s, %s)", acc->text, acc->text, in[0].text);
}

void emit_min(Buf *b, const Node *n, const Operand *acc, const Operand *in)
{
    (void)n;
    if (!in)
        buf_printf(b, "INFINITY");
    else
        buf_printf(b, "%s = r_min(%s, %s)", acc->text, acc->text, in[0].text);
}

/* dx = dy where x is the extreme it reduced to, 0 elsewhere (ties all get dy) */
int grad_max_min(Graph *g, int node, int dy, int k)
{
    int x = in_(g, node, 0);
    int at = ir_binary(g, OP_EQ, x, grad_sum(g, node, node, k));
    return ir_binary(g, OP_MUL, grad_sum(g, node, dy, k), at);
}

/* The index of each row's largest value (the first, on a tie), along the
 * last axis; a real, so it can be compared with other values. */
const char *shape_argmax(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    if (need_real(g, n, err, len))
        return err;
    if (x.rank < 1) {
        snprintf(err, len, "needs at least one axis");
        return err;
    }
    n->shape = x;
    n->shape.rank--;
    n->dtype = DT_REAL;
    return NULL;
}

void emit_argmax(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int cols = in[0].shape.dim[in[0].shape.rank - 1];
    long rows = shape_size(in[0].shape) / cols;
    const char *ix = op_count(n, in);
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++) {\n"
               "        const real *row = %s + i * %d;\n"
               "        int label = 0;\n"
               "        for (int j = 1; j < %d; j++)\n"
               "            if (row[j] > row[label])\n"
               "                label = j;\n"
               "        %s[i] = (real)label;\n"
               "    }\n",
               ix, rows, in[0].text, cols, cols, out->text);
}
