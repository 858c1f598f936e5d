/*
 * ops/elementwise.c: ops of one scalar expression per element, inputs
 * broadcast NumPy-style: arithmetic, the unary functions, comparisons,
 * where.
 */
#include <math.h>
#include "ops.h"

/* NumPy broadcasting: input axes aligned with the output's from the right,
 * a size-1 axis repeating. */
void read_each(const Node *n, Shape x, const Access *out, Access *in)
{
    for (int j = 0; j < x.rank; j++)
        if (x.dim[j] != 1) {
            in->src[j] = out->src[n->shape.rank - x.rank + j];
            in->off[j] = out->off[n->shape.rank - x.rank + j];
        }
}

/* ---- elementwise, with NumPy broadcasting ---- */

const char *shape_broadcast(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape s = {0};
    for (int k = 0; k < n->n_in; k++) {
        Shape x = shape_of(g, n->in[k]);
        Shape t = x.rank > s.rank ? x : s; /* the longer, aligned right */
        int ls = t.rank - s.rank, lx = t.rank - x.rank;
        for (int i = 0; i < t.rank; i++) {
            int a = i >= ls ? s.dim[i - ls] : 1, c = i >= lx ? x.dim[i - lx] : 1;
            if (a != c && a != 1 && c != 1) {
                char sa[64], sb[64];
                shape_str(sa, sizeof sa, shape_of(g, n->in[0]));
                shape_str(sb, sizeof sb, x);
                snprintf(err, len, "shapes do not broadcast: %s and %s", sa, sb);
                return err;
            }
            t.dim[i] = a == 1 ? c : a;
        }
        s = t;
    }
    n->shape = s;
    n->dtype = DT_REAL;
    return NULL;
}

const char *shape_unary(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    n->shape = shape_of(g, n->in[0]);
    n->dtype = DT_REAL;
    return NULL;
}

/* d(a + b) = dy, summed over the axes each side was broadcast along. */
int grad_add(Graph *g, int node, int dy, int k)
{
    return ir_sum_to(g, dy, shape_of(g, in_(g, node, k)));
}

void emit_add(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s + %s", in[0].text, in[1].text);
}

/* da = dy, db = -dy */
int grad_sub(Graph *g, int node, int dy, int k)
{
    int d = k == 0 ? dy : ir_unary(g, OP_NEG, dy);
    return ir_sum_to(g, d, shape_of(g, in_(g, node, k)));
}

void emit_sub(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s - %s", in[0].text, in[1].text);
}

/* da = dy * b, db = dy * a */
int grad_mul(Graph *g, int node, int dy, int k)
{
    int other = in_(g, node, 1 - k);
    return ir_sum_to(g, ir_binary(g, OP_MUL, dy, other), shape_of(g, in_(g, node, k)));
}

void emit_mul(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s * %s", in[0].text, in[1].text);
}

/* da = dy / b, db = -dy * (a / b) / b = -dy * y / b */
int grad_div(Graph *g, int node, int dy, int k)
{
    int b = in_(g, node, 1), d;
    if (k == 0)
        d = ir_binary(g, OP_DIV, dy, b);
    else
        d = ir_unary(g, OP_NEG, ir_binary(g, OP_DIV, ir_binary(g, OP_MUL, dy, node), b));
    return ir_sum_to(g, d, shape_of(g, in_(g, node, k)));
}

void emit_div(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s / %s", in[0].text, in[1].text);
}

/* dx = -dy */
int grad_neg(Graph *g, int node, int dy, int k)
{
    (void)node, (void)k;
    return ir_unary(g, OP_NEG, dy);
}

void emit_neg(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "-%s", in[0].text);
}

/* dx = dy * p * x^(p-1) */
int grad_pow(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    double p = n->value;
    int x = n->in[0];
    int scale = ir_const(g, p, (Shape){0});
    int d = ir_binary(g, OP_MUL, dy, scale);
    return p == 1 ? d : ir_binary(g, OP_MUL, d, ir_pow(g, x, p - 1));
}

void emit_pow(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    char buf[48];
    const char *x = in[0].text;
    (void)out;
    if (n->value == 1)
        buf_printf(b, "%s", x);
    else if (n->value == 2)
        buf_printf(b, "%s * %s", x, x);
    else if (n->value == 3)
        buf_printf(b, "%s * %s * %s", x, x, x);
    else if (n->value == -1)
        buf_printf(b, "REAL_C(1.0) / %s", x);
    else
        buf_printf(b, "r_pow(%s, %s)", x, lit(n->value, buf));
}

/* dx = dy * y */
int grad_exp(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, node);
}

void emit_exp(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_exp(%s)", in[0].text);
}

/* dx = dy / x */
int grad_log(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_DIV, dy, in_(g, node, 0));
}

void emit_log(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_log(%s)", in[0].text);
}

/* dx = dy * y * (1 - y) */
int grad_sigmoid(Graph *g, int node, int dy, int k)
{
    (void)k;
    int one = ir_const(g, 1, (Shape){0});
    int d = ir_binary(g, OP_MUL, dy, node);
    return ir_binary(g, OP_MUL, d, ir_binary(g, OP_SUB, one, node));
}

void emit_sigmoid(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "REAL_C(1.0) / (REAL_C(1.0) + r_exp(-%s))", in[0].text);
}

/* dx = dy * (1 - y^2) */
int grad_tanh(Graph *g, int node, int dy, int k)
{
    (void)k;
    int one = ir_const(g, 1, (Shape){0});
    return ir_binary(g, OP_MUL, dy, ir_binary(g, OP_SUB, one, ir_pow(g, node, 2)));
}

void emit_tanh(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_tanh(%s)", in[0].text);
}

/* dx = dy * step(x), written step(y): y > 0 exactly where x > 0, and
 * reading y leaves x to its one reader, so a bias-add before a relu is
 * computed in the relu's loop and never stored. */
int grad_relu(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_unary(g, OP_STEP, node));
}

void emit_relu(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s > REAL_C(0.0) ? %s : REAL_C(0.0)", in[0].text, in[0].text);
}

/* Masks and signs are flat wherever they have a derivative: dx = 0. */
int grad_zero(Graph *g, int node, int dy, int k)
{
    (void)dy;
    return ir_const(g, 0, shape_of(g, in_(g, node, k)));
}

void emit_step(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s > REAL_C(0.0) ? REAL_C(1.0) : REAL_C(0.0)", in[0].text);
}

/* dx = dy / (2 y) */
int grad_sqrt(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_binary(g, OP_DIV, ir_const(g, 0.5, (Shape){0}), node));
}

void emit_sqrt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_sqrt(%s)", in[0].text);
}

/* y = x^(-1/2): dx = -dy y^3 / 2 */
int grad_rsqrt(Graph *g, int node, int dy, int k)
{
    (void)k;
    int d = ir_binary(g, OP_MUL, dy, ir_const(g, -0.5, (Shape){0}));
    return ir_binary(g, OP_MUL, d, ir_pow(g, node, 3));
}

void emit_rsqrt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "REAL_C(1.0) / r_sqrt(%s)", in[0].text);
}

/* dx = dy sign(x) */
int grad_abs(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_unary(g, OP_SIGN, in_(g, node, 0)));
}

void emit_abs(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_fabs(%s)", in[0].text);
}

void emit_sign(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "(real)((%s > REAL_C(0.0)) - (%s < REAL_C(0.0)))", in[0].text, in[0].text);
}

/* softplus(x) = log(1 + e^x): dx = dy sigmoid(x) */
int grad_softplus(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_unary(g, OP_SIGMOID, in_(g, node, 0)));
}

void emit_softplus(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *x = in[0].text;
    (void)n, (void)out;
    /* log1p of a small exp never overflows, whatever the sign of x */
    buf_printf(b, "%s > REAL_C(0.0) ? %s + r_log1p(r_exp(-%s)) : r_log1p(r_exp(%s))", x, x, x, x);
}

/* silu(x) = x sigmoid(x): with s = sigmoid(x), dx = dy (s + y (1 - s)) */
int grad_silu(Graph *g, int node, int dy, int k)
{
    (void)k;
    int s = ir_unary(g, OP_SIGMOID, in_(g, node, 0)), one = ir_const(g, 1, (Shape){0});
    int slope = ir_binary(g, OP_ADD, s, ir_binary(g, OP_MUL, node, ir_binary(g, OP_SUB, one, s)));
    return ir_binary(g, OP_MUL, dy, slope);
}

void emit_silu(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s / (REAL_C(1.0) + r_exp(-%s))", in[0].text, in[0].text);
}

/* log1p(x) = log(1 + x), exact near 0: dx = dy / (1 + x) */
int grad_log1p(Graph *g, int node, int dy, int k)
{
    (void)k;
    int one = ir_const(g, 1, (Shape){0});
    return ir_binary(g, OP_DIV, dy, ir_binary(g, OP_ADD, one, in_(g, node, 0)));
}

void emit_log1p(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_log1p(%s)", in[0].text);
}

/* leaky_relu(x) = x for x > 0, else alpha x: dx = dy (alpha + (1 - alpha) step(x)) */
int grad_leaky_relu(Graph *g, int node, int dy, int k)
{
    (void)k;
    double alpha = ir_at(g, node)->value;
    int slope = ir_binary(g, OP_MUL, ir_unary(g, OP_STEP, in_(g, node, 0)),
                          ir_const(g, 1 - alpha, (Shape){0}));
    return ir_binary(g, OP_MUL, dy, ir_binary(g, OP_ADD, slope, ir_const(g, alpha, (Shape){0})));
}

void emit_leaky_relu(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    char a[48];
    (void)out;
    buf_printf(b, "%s > REAL_C(0.0) ? %s : %s * %s", in[0].text, in[0].text, lit(n->value, a),
               in[0].text);
}

/* The larger (smaller) input gets dy; a tie goes to the first. */
int grad_maximum(Graph *g, int node, int dy, int k)
{
    int a = in_(g, node, 0), b = in_(g, node, 1);
    int mask = k == 0 ? ir_binary(g, OP_GE, a, b) : ir_binary(g, OP_LT, a, b);
    return ir_sum_to(g, ir_binary(g, OP_MUL, dy, mask), shape_of(g, in_(g, node, k)));
}

int grad_minimum(Graph *g, int node, int dy, int k)
{
    int a = in_(g, node, 0), b = in_(g, node, 1);
    int mask = k == 0 ? ir_binary(g, OP_LE, a, b) : ir_binary(g, OP_GT, a, b);
    return ir_sum_to(g, ir_binary(g, OP_MUL, dy, mask), shape_of(g, in_(g, node, k)));
}

void emit_maximum(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_fmax(%s, %s)", in[0].text, in[1].text);
}

void emit_minimum(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_fmin(%s, %s)", in[0].text, in[1].text);
}

/* Comparisons give masks of 0 and 1. */
static void emit_compare(Buf *b, const Operand *in, const char *op)
{
    buf_printf(b, "(real)(%s %s %s)", in[0].text, op, in[1].text);
}

void emit_gt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, ">");
}

void emit_ge(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, ">=");
}

void emit_lt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "<");
}

void emit_le(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "<=");
}

void emit_eq(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "==");
}

void emit_ne(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "!=");
}

/* where(m, a, b) = a where m != 0, else b: da = where(m, dy, 0), db = where(m, 0, dy) */
int grad_where(Graph *g, int node, int dy, int k)
{
    if (k == 0)
        return grad_zero(g, node, dy, k);
    int zero = ir_const(g, 0, (Shape){0}), m = in_(g, node, 0);
    Node w = {.op = OP_WHERE, .n_in = 3, .in = {m, k == 1 ? dy : zero, k == 1 ? zero : dy}};
    return ir_sum_to(g, ir_must(g, &w), shape_of(g, in_(g, node, k)));
}

void emit_where(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s != REAL_C(0.0) ? %s : %s", in[0].text, in[1].text, in[2].text);
}
