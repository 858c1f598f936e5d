/*
 * ops.c: the shape rule, gradient rule and emitter of every op in ops.def,
 * kept together per op.
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
#include <float.h>
#include <math.h>
#include <string.h>
#include "gradc.h"

static int in_(Graph *g, int node, int k) { return ir_at(g, node)->in[k]; }
static Shape shape_of(Graph *g, int id) { return ir_at(g, id)->shape; }
/* A number as the C writes it, valid in float and in double alike: the
 * front end takes only finite numbers, but folding may make others, and
 * a float literal out of float's range is a warning (an error here). */
static const char *lit(double v, char buf[48])
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
static void parallel_rows(Buf *b, long rows, long cols)
{
    if (parallel(rows, rows * cols))
        buf_printf(b, "    RT_PARALLEL_FOR\n");
}

/* An element of a ROWS operand: an array access, or the literal itself. */
static const char *at(char buf[96], const Operand *o, const char *index)
{
    if (o->is_const)
        return o->text;
    snprintf(buf, 96, "%s[%s]", o->text, index);
    return buf;
}

/* Only labels are int32, and labels feed only the losses that take them. */
static const char *need_real(Graph *g, const Node *n, char *err, size_t len)
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

static const char *shape_leaf(Graph *g, Node *n, char *err, size_t len)
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

static void emit_const(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    char buf[48];
    (void)out, (void)in;
    buf_printf(b, "%s", lit(n->value, buf));
}

/* ---- elementwise, with NumPy broadcasting ---- */

static const char *shape_broadcast(Graph *g, Node *n, char *err, size_t len)
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

static const char *shape_unary(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    n->shape = shape_of(g, n->in[0]);
    n->dtype = DT_REAL;
    return NULL;
}

/* d(a + b) = dy, summed over the axes each side was broadcast along. */
static int grad_add(Graph *g, int node, int dy, int k)
{
    return ir_sum_to(g, dy, shape_of(g, in_(g, node, k)));
}

static void emit_add(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s + %s", in[0].text, in[1].text);
}

/* da = dy, db = -dy */
static int grad_sub(Graph *g, int node, int dy, int k)
{
    int d = k == 0 ? dy : ir_unary(g, OP_NEG, dy);
    return ir_sum_to(g, d, shape_of(g, in_(g, node, k)));
}

static void emit_sub(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s - %s", in[0].text, in[1].text);
}

/* da = dy * b, db = dy * a */
static int grad_mul(Graph *g, int node, int dy, int k)
{
    int other = in_(g, node, 1 - k);
    return ir_sum_to(g, ir_binary(g, OP_MUL, dy, other), shape_of(g, in_(g, node, k)));
}

static void emit_mul(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s * %s", in[0].text, in[1].text);
}

/* da = dy / b, db = -dy * (a / b) / b = -dy * y / b */
static int grad_div(Graph *g, int node, int dy, int k)
{
    int b = in_(g, node, 1), d;
    if (k == 0)
        d = ir_binary(g, OP_DIV, dy, b);
    else
        d = ir_unary(g, OP_NEG, ir_binary(g, OP_DIV, ir_binary(g, OP_MUL, dy, node), b));
    return ir_sum_to(g, d, shape_of(g, in_(g, node, k)));
}

static void emit_div(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s / %s", in[0].text, in[1].text);
}

/* dx = -dy */
static int grad_neg(Graph *g, int node, int dy, int k)
{
    (void)node, (void)k;
    return ir_unary(g, OP_NEG, dy);
}

static void emit_neg(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "-%s", in[0].text);
}

/* dx = dy * p * x^(p-1) */
static int grad_pow(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    double p = n->value;
    int x = n->in[0];
    int scale = ir_const(g, p, (Shape){0});
    int d = ir_binary(g, OP_MUL, dy, scale);
    return p == 1 ? d : ir_binary(g, OP_MUL, d, ir_pow(g, x, p - 1));
}

static void emit_pow(Buf *b, const Node *n, const Operand *out, const Operand *in)
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
static int grad_exp(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, node);
}

static void emit_exp(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_exp(%s)", in[0].text);
}

/* dx = dy / x */
static int grad_log(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_DIV, dy, in_(g, node, 0));
}

static void emit_log(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_log(%s)", in[0].text);
}

/* dx = dy * y * (1 - y) */
static int grad_sigmoid(Graph *g, int node, int dy, int k)
{
    (void)k;
    int one = ir_const(g, 1, (Shape){0});
    int d = ir_binary(g, OP_MUL, dy, node);
    return ir_binary(g, OP_MUL, d, ir_binary(g, OP_SUB, one, node));
}

static void emit_sigmoid(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "REAL_C(1.0) / (REAL_C(1.0) + r_exp(-%s))", in[0].text);
}

/* dx = dy * (1 - y^2) */
static int grad_tanh(Graph *g, int node, int dy, int k)
{
    (void)k;
    int one = ir_const(g, 1, (Shape){0});
    return ir_binary(g, OP_MUL, dy, ir_binary(g, OP_SUB, one, ir_pow(g, node, 2)));
}

static void emit_tanh(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_tanh(%s)", in[0].text);
}

/* dx = dy * step(x), written step(y): y > 0 exactly where x > 0, and
 * reading y leaves x to its one reader, so a bias-add before a relu is
 * computed in the relu's loop and never stored. */
static int grad_relu(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_unary(g, OP_STEP, node));
}

static void emit_relu(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s > REAL_C(0.0) ? %s : REAL_C(0.0)", in[0].text, in[0].text);
}

/* Masks and signs are flat wherever they have a derivative: dx = 0. */
static int grad_zero(Graph *g, int node, int dy, int k)
{
    (void)dy;
    return ir_const(g, 0, shape_of(g, in_(g, node, k)));
}

static void emit_step(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s > REAL_C(0.0) ? REAL_C(1.0) : REAL_C(0.0)", in[0].text);
}

/* dx = dy / (2 y) */
static int grad_sqrt(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_binary(g, OP_DIV, ir_const(g, 0.5, (Shape){0}), node));
}

static void emit_sqrt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_sqrt(%s)", in[0].text);
}

/* y = x^(-1/2): dx = -dy y^3 / 2 */
static int grad_rsqrt(Graph *g, int node, int dy, int k)
{
    (void)k;
    int d = ir_binary(g, OP_MUL, dy, ir_const(g, -0.5, (Shape){0}));
    return ir_binary(g, OP_MUL, d, ir_pow(g, node, 3));
}

static void emit_rsqrt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "REAL_C(1.0) / r_sqrt(%s)", in[0].text);
}

/* dx = dy sign(x) */
static int grad_abs(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_unary(g, OP_SIGN, in_(g, node, 0)));
}

static void emit_abs(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_fabs(%s)", in[0].text);
}

static void emit_sign(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "(real)((%s > REAL_C(0.0)) - (%s < REAL_C(0.0)))", in[0].text, in[0].text);
}

/* softplus(x) = log(1 + e^x): dx = dy sigmoid(x) */
static int grad_softplus(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_binary(g, OP_MUL, dy, ir_unary(g, OP_SIGMOID, in_(g, node, 0)));
}

static void emit_softplus(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *x = in[0].text;
    (void)n, (void)out;
    /* log1p of a small exp never overflows, whatever the sign of x */
    buf_printf(b, "%s > REAL_C(0.0) ? %s + r_log1p(r_exp(-%s)) : r_log1p(r_exp(%s))", x, x, x, x);
}

/* leaky_relu(x) = x for x > 0, else alpha x: dx = dy (alpha + (1 - alpha) step(x)) */
static int grad_leaky_relu(Graph *g, int node, int dy, int k)
{
    (void)k;
    double alpha = ir_at(g, node)->value;
    int slope = ir_binary(g, OP_MUL, ir_unary(g, OP_STEP, in_(g, node, 0)),
                          ir_const(g, 1 - alpha, (Shape){0}));
    return ir_binary(g, OP_MUL, dy, ir_binary(g, OP_ADD, slope, ir_const(g, alpha, (Shape){0})));
}

static void emit_leaky_relu(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    char a[48];
    (void)out;
    buf_printf(b, "%s > REAL_C(0.0) ? %s : %s * %s", in[0].text, in[0].text, lit(n->value, a),
               in[0].text);
}

/* The larger (smaller) input gets dy; a tie goes to the first. */
static int grad_maximum(Graph *g, int node, int dy, int k)
{
    int a = in_(g, node, 0), b = in_(g, node, 1);
    int mask = k == 0 ? ir_binary(g, OP_GE, a, b) : ir_binary(g, OP_LT, a, b);
    return ir_sum_to(g, ir_binary(g, OP_MUL, dy, mask), shape_of(g, in_(g, node, k)));
}

static int grad_minimum(Graph *g, int node, int dy, int k)
{
    int a = in_(g, node, 0), b = in_(g, node, 1);
    int mask = k == 0 ? ir_binary(g, OP_LE, a, b) : ir_binary(g, OP_GT, a, b);
    return ir_sum_to(g, ir_binary(g, OP_MUL, dy, mask), shape_of(g, in_(g, node, k)));
}

static void emit_maximum(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_fmax(%s, %s)", in[0].text, in[1].text);
}

static void emit_minimum(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "r_fmin(%s, %s)", in[0].text, in[1].text);
}

/* Comparisons give masks of 0 and 1. */
static void emit_compare(Buf *b, const Operand *in, const char *op)
{
    buf_printf(b, "(real)(%s %s %s)", in[0].text, op, in[1].text);
}

static void emit_gt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, ">");
}

static void emit_ge(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, ">=");
}

static void emit_lt(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "<");
}

static void emit_le(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "<=");
}

static void emit_eq(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "==");
}

static void emit_ne(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    emit_compare(b, in, "!=");
}

/* where(m, a, b) = a where m != 0, else b: da = where(m, dy, 0), db = where(m, 0, dy) */
static int grad_where(Graph *g, int node, int dy, int k)
{
    if (k == 0)
        return grad_zero(g, node, dy, k);
    int zero = ir_const(g, 0, (Shape){0}), m = in_(g, node, 0);
    Node w = {.op = OP_WHERE, .n_in = 3, .in = {m, k == 1 ? dy : zero, k == 1 ? zero : dy}};
    return ir_sum_to(g, ir_must(g, &w), shape_of(g, in_(g, node, k)));
}

static void emit_where(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s != REAL_C(0.0) ? %s : %s", in[0].text, in[1].text, in[2].text);
}

/* ---- reduction ---- */

static const char *shape_sum(Graph *g, Node *n, char *err, size_t len)
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
static int grad_sum(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Shape x = shape_of(g, n->in[0]);
    int axis_of[MAX_RANK], next = 0;
    for (int i = 0; i < x.rank; i++)
        axis_of[i] = n->axes[i] == AX_DROP ? -1 : next++;
    return ir_broadcast_to(g, dy, x, axis_of);
}

static void emit_sum(Buf *b, const Node *n, const Operand *acc, const Operand *in)
{
    (void)n;
    if (!in)
        buf_printf(b, "REAL_C(0.0)");
    else
        buf_printf(b, "%s += %s", acc->text, in[0].text);
}

static void emit_max(Buf *b, const Node *n, const Operand *acc, const Operand *in)
{
    (void)n;
    if (!in)
        buf_printf(b, "-INFINITY");
    else
        buf_printf(b, "%s = r_max(%s, %s)", acc->text, acc->text, in[0].text);
}

static void emit_min(Buf *b, const Node *n, const Operand *acc, const Operand *in)
{
    (void)n;
    if (!in)
        buf_printf(b, "INFINITY");
    else
        buf_printf(b, "%s = r_min(%s, %s)", acc->text, acc->text, in[0].text);
}

/* dx = dy where x is the extreme it reduced to, 0 elsewhere (ties all get dy) */
static int grad_max_min(Graph *g, int node, int dy, int k)
{
    int x = in_(g, node, 0);
    int at = ir_binary(g, OP_EQ, x, grad_sum(g, node, node, k));
    return ir_binary(g, OP_MUL, grad_sum(g, node, dy, k), at);
}

/* The index of each row's largest value (the first, on a tie), along the
 * last axis; a real, so it can be compared with other values. */
static const char *shape_argmax(Graph *g, Node *n, char *err, size_t len)
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

static void emit_argmax(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int cols = in[0].shape.dim[in[0].shape.rank - 1];
    long rows = shape_size(in[0].shape) / cols;
    (void)n;
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++) {\n"
               "        const real *row = %s + i * %d;\n"
               "        int label = 0;\n"
               "        for (int j = 1; j < %d; j++)\n"
               "            if (row[j] > row[label])\n"
               "                label = j;\n"
               "        %s[i] = (real)label;\n"
               "    }\n",
               rows, in[0].text, cols, cols, out->text);
}

/* ---- views ---- */

/* Output axis i reads input axis axes[i], or repeats when that is -1 or
 * the input axis has size 1. Input axes appear in order, each once. */
static const char *shape_broadcast_to(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    int next = 0;
    (void)err, (void)len;
    for (int i = 0; i < n->shape.rank; i++) {
        int a = n->axes[i];
        if (a < 0)
            continue;
        if (a != next++ || (x.dim[a] != 1 && x.dim[a] != n->shape.dim[i]))
            die("broadcast: axis %d of the output cannot come from axis %d", i, a);
    }
    if (next != x.rank)
        die("broadcast: %d of %d input axes placed", next, x.rank);
    n->dtype = DT_REAL;
    return NULL;
}

/* dx = dy summed over the repeated axes */
static int grad_broadcast_to(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Shape x = shape_of(g, n->in[0]);
    Node s = {.op = OP_SUM, .n_in = 1, .in = {dy}};
    for (int i = 0; i < n->shape.rank; i++) {
        int a = n->axes[i];
        s.axes[i] = a < 0 ? AX_DROP : x.dim[a] == n->shape.dim[i] ? AX_KEEP : AX_ONE;
    }
    return ir_must(g, &s);
}

static const char *shape_transpose(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape x = shape_of(g, n->in[0]);
    if (x.rank != 2) {
        snprintf(err, len, "needs a matrix, got rank %d", x.rank);
        return err;
    }
    n->axes[0] = 1, n->axes[1] = 0;
    n->shape = (Shape){2, {x.dim[1], x.dim[0]}};
    n->dtype = DT_REAL;
    return NULL;
}

/* dx = dy^T */
static int grad_transpose(Graph *g, int node, int dy, int k)
{
    (void)node, (void)k;
    return ir_unary(g, OP_TRANSPOSE, dy);
}

static void emit_view(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s", in[0].text);
}

/* A permutation: output axis i is input axis axes[i]. */
static const char *shape_permute(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape x = shape_of(g, n->in[0]);
    bool seen[MAX_RANK] = {false};
    n->shape.rank = x.rank;
    for (int i = 0; i < x.rank; i++) {
        int a = n->axes[i];
        if (a < 0 || a >= x.rank || seen[a]) {
            snprintf(err, len, "not a permutation of the %d axes", x.rank);
            return err;
        }
        seen[a] = true;
        n->shape.dim[i] = x.dim[a];
    }
    n->dtype = DT_REAL;
    return NULL;
}

/* dx = dy permuted back */
static int grad_permute(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    int inverse[MAX_RANK];
    for (int i = 0; i < n->shape.rank; i++)
        inverse[n->axes[i]] = i;
    return ir_permute(g, dy, inverse);
}

/* A window of the input: axis k from axes[k], as long as the output's. */
static const char *shape_slice(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape x = shape_of(g, n->in[0]);
    if (n->shape.rank != x.rank)
        return snprintf(err, len, "a window must have the tensor's rank %d", x.rank), err;
    for (int k = 0; k < x.rank; k++)
        if (n->axes[k] < 0 || n->shape.dim[k] < 1 || n->axes[k] + n->shape.dim[k] > x.dim[k])
            return snprintf(err, len, "axis %d: elements %d to %d of %d are not a window", k + 1,
                            n->axes[k] + 1, n->axes[k] + n->shape.dim[k], x.dim[k]),
                   err;
    n->dtype = DT_REAL;
    return NULL;
}

/* dx = dy in the window, 0 around it */
static int grad_slice(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_pad(g, dy, ir_at(g, node)->axes, shape_of(g, in_(g, node, 0)));
}

/* The input in a window of a larger output of zeros, axes[k] in. */
static const char *shape_pad(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape x = shape_of(g, n->in[0]);
    if (n->shape.rank != x.rank)
        return snprintf(err, len, "padding must keep the tensor's rank %d", x.rank), err;
    for (int k = 0; k < x.rank; k++)
        if (n->axes[k] < 0 || n->axes[k] + x.dim[k] > n->shape.dim[k])
            return snprintf(err, len, "axis %d: %d elements at %d do not fit in %d", k + 1,
                            x.dim[k], n->axes[k], n->shape.dim[k]),
                   err;
    n->dtype = DT_REAL;
    return NULL;
}

/* dx = dy's window */
static int grad_pad(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_slice(g, dy, ir_at(g, node)->axes, shape_of(g, in_(g, node, 0)));
}

/* pad_add(s, x) = s + pad(x): made by simplify where a padded window is
 * added to a sum (the gradients of the slices of one tensor), so the window
 * is added into the sum, in its place when the plan lets it, and no padded
 * copy is made; stored, with value 1, where the window holds no sum yet
 * (simplify's tile_windows). Made after differentiation: no gradient rule. */
static const char *shape_pad_add(Graph *g, Node *n, char *err, size_t len)
{
    Node pad = *n;
    pad.n_in = 1;
    pad.in[0] = n->in[1];
    if (shape_pad(g, &pad, err, len))
        return err;
    if (!shape_eq(shape_of(g, n->in[0]), n->shape))
        return snprintf(err, len, "the sum must have the output's shape"), err;
    n->dtype = DT_REAL;
    return NULL;
}

static void emit_pad_add(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Shape s = n->shape, x = in[1].shape;
    if (!in[0].in_place)
        buf_printf(b, "    memcpy(%s, %s, %ld * sizeof *%s);\n", out->text, in[0].text,
                   shape_size(s), out->text);
    /* Loops over the window; the innermost axes that span the whole
     * output are one run of contiguous elements. */
    int inner = s.rank;
    long run = 1;
    while (inner > 0 && x.dim[inner - 1] == s.dim[inner - 1]) {
        run *= s.dim[inner - 1];
        inner--;
    }
    if (inner > 0) {
        run *= x.dim[inner - 1];
        inner--;
    }
    long start = 0, stride[MAX_RANK], step = 1;
    for (int d = s.rank - 1; d >= 0; d--) {
        stride[d] = step;
        start += n->axes[d] * step;
        step *= s.dim[d];
    }
    /* Indices as sums of terms, each followed by " + ". */
    static const char var[] = "ijklmn";
    char to[256] = "", from[256] = "";
    size_t lt = start ? snprintf(to, sizeof to, "%ld + ", start) : 0, lf = 0;
    long xstride = run;
    for (int d = inner - 1; d >= 0; d--) {
        lt += snprintf(to + lt, sizeof to - lt, "%c * %ld + ", var[d], stride[d]);
        lf += snprintf(from + lf, sizeof from - lf, "%c * %ld + ", var[d], xstride);
        xstride *= x.dim[d];
    }
    for (int d = 0; d < inner; d++)
        buf_printf(b, "%*sfor (int %c = 0; %c < %d; %c++)\n", 4 * (d + 1), "", var[d], var[d],
                   x.dim[d], var[d]);
    buf_printf(b,
               "%*sfor (int r = 0; r < %ld; r++)\n"
               "%*s%s[%sr] %s %s[%sr];\n",
               4 * (inner + 1), "", run, 4 * (inner + 2), "", out->text, to,
               n->value == 1 ? "=" : "+=", in[1].text, from);
}

/* The same elements, in the same order, in another shape. */
static const char *shape_reshape(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    if (shape_size(n->shape) != shape_size(x)) {
        char a[64], b[64];
        shape_str(a, sizeof a, x);
        shape_str(b, sizeof b, n->shape);
        snprintf(err, len, "%s has %ld elements, %s has %ld", a, shape_size(x), b,
                 shape_size(n->shape));
        return err;
    }
    n->dtype = ir_at(g, n->in[0])->dtype;
    return NULL;
}

/* dx = dy in x's shape */
static int grad_reshape(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_reshape(g, dy, shape_of(g, in_(g, node, 0)));
}

/* int32 labels [...] to rows of value (C) zeros and a one: [..., C] */
static const char *shape_one_hot(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    if (ir_at(g, n->in[0])->dtype != DT_I32 || x.rank >= MAX_RANK)
        return snprintf(err, len, "needs int32 labels"), err;
    n->shape = x;
    n->shape.dim[n->shape.rank++] = (int)n->value;
    n->dtype = DT_REAL;
    return NULL;
}

static void emit_one_hot(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int classes = (int)n->value;
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++)\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            %s[i * %d + j] = (real)(%s[i] == j);\n",
               shape_size(in[0].shape), classes, out->text, classes, in[0].text);
}

/* ---- joining ---- */

/* concat(a, b, ...) along axes[0]: the inputs agree on every other axis */
static const char *shape_concat(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    int a = n->axes[0];
    Shape s = shape_of(g, n->in[0]);
    if (a < 0 || a >= s.rank)
        return snprintf(err, len, "axis %d of a rank %d tensor", a + 1, s.rank), err;
    for (int k = 1; k < n->n_in; k++) {
        Shape p = shape_of(g, n->in[k]);
        bool fits = p.rank == s.rank;
        for (int i = 0; i < s.rank && fits; i++)
            fits = i == a || p.dim[i] == s.dim[i];
        if (!fits) {
            char sa[64], sp[64];
            shape_str(sa, sizeof sa, shape_of(g, n->in[0]));
            shape_str(sp, sizeof sp, p);
            return snprintf(err, len, "%s and %s differ besides axis %d", sa, sp, a + 1), err;
        }
        s.dim[a] += p.dim[a];
    }
    n->shape = s;
    n->dtype = DT_REAL;
    return NULL;
}

/* d(input k) = dy's window where input k went */
static int grad_concat(Graph *g, int node, int dy, int k)
{
    const Node *n = ir_at(g, node);
    int start[MAX_RANK] = {0};
    for (int i = 0; i < k; i++)
        start[n->axes[0]] += shape_of(g, n->in[i]).dim[n->axes[0]];
    return ir_slice(g, dy, start, shape_of(g, n->in[k]));
}

/* Seen as [outer, axis, inner], each input is a run of rows per outer
 * index: one memcpy each. */
static void emit_concat(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int a = n->axes[0], total = n->shape.dim[a], at = 0;
    long outer = 1, inner = 1;
    for (int i = 0; i < a; i++)
        outer *= n->shape.dim[i];
    for (int i = a + 1; i < n->shape.rank; i++)
        inner *= n->shape.dim[i];
    for (int k = 0; k < n->n_in; k++) {
        int part = in[k].shape.dim[a];
        buf_printf(b,
                   "    for (int i = 0; i < %ld; i++)\n"
                   "        memcpy(%s + (i * %d + %d) * %ld, %s + i * %ld, %ld * sizeof *%s);\n",
                   outer, out->text, total, at, inner, in[k].text, part * inner, part * inner,
                   out->text);
        at += part;
    }
}

/* ---- convolution as rows of receptive fields ---- */

/* im2col: x [N, C, H, W] to one row per output position [N*OH*OW, C*KH*KW],
 * the window of x under the kernel there (zeros where the padding reaches
 * outside). axes = {KH, KW, stride, padding}. */
typedef struct {
    int n, c, h, w, kh, kw, stride, pad, oh, ow;
} Window;

static Window window_of(Shape x, const int *axes)
{
    Window v = {x.dim[0], x.dim[1], x.dim[2], x.dim[3], axes[0], axes[1], axes[2], axes[3], 0, 0};
    v.oh = (v.h + 2 * v.pad - v.kh) / v.stride + 1;
    v.ow = (v.w + 2 * v.pad - v.kw) / v.stride + 1;
    return v;
}

static const char *check_window(Shape x, const int *axes, char *err, size_t len)
{
    if (x.rank != 4)
        return snprintf(err, len, "needs images [N,C,H,W], got rank %d", x.rank), err;
    if (axes[0] < 1 || axes[1] < 1 || axes[2] < 1 || axes[3] < 0)
        return snprintf(err, len, "kernel, stride and padding must be positive"), err;
    /* In long and double: window_of and the generated loops count in int,
     * which a large padding or a large batch of windows would overflow. */
    long h = x.dim[2] + 2L * axes[3], w = x.dim[3] + 2L * axes[3];
    if (h < axes[0] || w < axes[1])
        return snprintf(err, len, "a %dx%d kernel does not fit in %dx%d images", axes[0], axes[1],
                        x.dim[2], x.dim[3]),
               err;
    double rows = (double)x.dim[0] * ((h - axes[0]) / axes[2] + 1) * ((w - axes[1]) / axes[2] + 1);
    if (h > 2147483647 || w > 2147483647 || rows > 2147483647 ||
        (double)x.dim[1] * axes[0] * axes[1] > 2147483647)
        return snprintf(err, len, "padded %ldx%ld images give more windows than a tensor holds",
                        h, w),
               err;
    return NULL;
}

static const char *shape_im2col(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    if (need_real(g, n, err, len) || check_window(x, n->axes, err, len))
        return err;
    Window v = window_of(x, n->axes);
    n->shape = (Shape){2, {v.n * v.oh * v.ow, v.c * v.kh * v.kw}};
    n->dtype = DT_REAL;
    return NULL;
}

/* The adjoint: every row's values added back where they came from. */
static int grad_im2col(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Node c = {.op = OP_COL2IM, .n_in = 1, .in = {dy}, .shape = shape_of(g, n->in[0])};
    memcpy(c.axes, n->axes, 4 * sizeof *c.axes);
    return ir_must(g, &c);
}

/* col2im: rows [N*OH*OW, C*KH*KW] summed back into images, the proto's shape */
static const char *shape_col2im(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len) || check_window(n->shape, n->axes, err, len))
        return err;
    Window v = window_of(n->shape, n->axes);
    if (!shape_eq(shape_of(g, n->in[0]), (Shape){2, {v.n * v.oh * v.ow, v.c * v.kh * v.kw}}))
        return snprintf(err, len, "rows do not match the images"), err;
    n->dtype = DT_REAL;
    return NULL;
}

static int grad_col2im(Graph *g, int node, int dy, int k)
{
    (void)k;
    Node c = {.op = OP_IM2COL, .n_in = 1, .in = {dy}};
    memcpy(c.axes, ir_at(g, node)->axes, 4 * sizeof *c.axes);
    return ir_must(g, &c);
}

/* The loops both share: images i, output rows j and columns k, channels l,
 * and the kernel's rows m and columns n; y0 + m, x0 + n is the pixel under
 * (m, n). With padding, m and n run over the part of the kernel inside the
 * image only (m0..m1, n0..n1, which change with the window's place, not
 * with the data), so that no element is tested: a test per element made
 * the loops branch on every other one. */
static void window_loops(Buf *b, Window v, const char *cols)
{
    buf_printf(b,
               "    for (int i = 0; i < %d; i++)\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            for (int k = 0; k < %d; k++) {\n"
               "                real *row = %s + ((i * %d + j) * %d + k) * %d;\n",
               v.n, v.oh, v.ow, cols, v.oh, v.ow, v.c * v.kh * v.kw);
    if (v.pad)
        buf_printf(b,
                   "                const int y0 = j * %d - %d, x0 = k * %d - %d;\n"
                   "                const int m0 = y0 < 0 ? -y0 : 0, m1 = y0 + %d > %d ? %d - y0 : %d;\n"
                   "                const int n0 = x0 < 0 ? -x0 : 0, n1 = x0 + %d > %d ? %d - x0 : %d;\n",
                   v.stride, v.pad, v.stride, v.pad, v.kh, v.h, v.h, v.kh, v.kw, v.w, v.w, v.kw);
    else
        buf_printf(b, "                const int y0 = j * %d, x0 = k * %d;\n", v.stride, v.stride);
}

/* The loops over the channels and the kernel's rows and columns inside the
 * image, around one element's statement. */
static void kernel_loops(Buf *b, Window v, const char *statement)
{
    char m1[16], n1[16];
    snprintf(m1, sizeof m1, "%d", v.kh);
    snprintf(n1, sizeof n1, "%d", v.kw);
    buf_printf(b,
               "                for (int l = 0; l < %d; l++)\n"
               "                    for (int m = %s; m < %s; m++)\n"
               "                        for (int n = %s; n < %s; n++)\n"
               "                            %s;\n"
               "            }\n",
               v.c, v.pad ? "m0" : "0", v.pad ? "m1" : m1, v.pad ? "n0" : "0", v.pad ? "n1" : n1,
               statement);
}

static void emit_im2col(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Window v = window_of(in[0].shape, n->axes);
    window_loops(b, v, out->text);
    if (v.pad) /* a window reaching into the padding: zeros there */
        buf_printf(b,
                   "                if (m0 > 0 || n0 > 0 || m1 < %d || n1 < %d)\n"
                   "                    memset(row, 0, %d * sizeof *row);\n",
                   v.kh, v.kw, v.c * v.kh * v.kw);
    char statement[200];
    snprintf(statement, sizeof statement,
             "row[(l * %d + m) * %d + n] = %s[((i * %d + l) * %d + y0 + m) * %d + x0 + n]", v.kh,
             v.kw, in[0].text, v.c, v.h, v.w);
    kernel_loops(b, v, statement);
}

static void emit_col2im(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Window v = window_of(n->shape, n->axes);
    buf_printf(b, "    memset(%s, 0, %ld * sizeof *%s);\n", out->text, shape_size(n->shape),
               out->text);
    window_loops(b, v, in[0].text);
    char statement[200];
    snprintf(statement, sizeof statement,
             "%s[((i * %d + l) * %d + y0 + m) * %d + x0 + n] += row[(l * %d + m) * %d + n]",
             out->text, v.c, v.h, v.w, v.kh, v.kw);
    kernel_loops(b, v, statement);
}

/* ---- sequences ---- */

/* embedding(table [V, D], ids int32 [...]) = the rows ids pick: [..., D] */
static const char *shape_embedding(Graph *g, Node *n, char *err, size_t len)
{
    Shape t = shape_of(g, n->in[0]), ids = shape_of(g, n->in[1]);
    if (ir_at(g, n->in[0])->dtype != DT_REAL || t.rank != 2)
        return snprintf(err, len, "the table must be a float matrix [V,D]"), err;
    if (ir_at(g, n->in[1])->dtype != DT_I32 || ids.rank >= MAX_RANK)
        return snprintf(err, len, "the ids must be int32"), err;
    n->shape = ids;
    n->shape.dim[n->shape.rank++] = t.dim[1];
    n->dtype = DT_REAL;
    return NULL;
}

/* dtable = dy's rows added into the rows the ids picked */
static int grad_embedding(Graph *g, int node, int dy, int k)
{
    if (k != 0)
        die("ids have no gradient");
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_EMBEDDING_GRAD,
                              .n_in = 2,
                              .in = {dy, n->in[1]},
                              .shape = shape_of(g, n->in[0])});
}

static void emit_embedding(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int d = in[0].shape.dim[1];
    (void)n;
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++)\n"
               "        memcpy(%s + i * %d, %s + %s[i] * %d, %d * sizeof *%s);\n",
               shape_size(in[1].shape), out->text, d, in[0].text, in[1].text, d, d, out->text);
}

/* embedding_grad(dy [..., D], ids) = the table's gradient, the proto's [V, D] */
static const char *shape_embedding_grad(Graph *g, Node *n, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    n->dtype = DT_REAL;
    return NULL;
}

static void emit_embedding_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int d = n->shape.dim[1];
    buf_printf(b,
               "    memset(%s, 0, %ld * sizeof *%s);\n"
               "    for (int i = 0; i < %ld; i++)\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            %s[%s[i] * %d + j] += %s[i * %d + j];\n",
               out->text, shape_size(n->shape), out->text, shape_size(in[1].shape), d, out->text,
               in[1].text, d, in[0].text, d);
}

/* causal_mask(x [..., T, T]) keeps x where column <= row and puts the
 * value (-inf for attention scores) above the diagonal. */
static int grad_causal(Graph *g, int node, int dy, int k)
{
    (void)k, (void)node;
    return ir_must(g, &(Node){.op = OP_CAUSAL, .n_in = 1, .in = {dy}, .value = 0});
}

static void emit_causal(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int t = n->shape.dim[n->shape.rank - 1];
    char fill[48];
    if (isinf(n->value))
        snprintf(fill, sizeof fill, "%sINFINITY", n->value < 0 ? "-" : "");
    else
        lit(n->value, fill);
    buf_printf(
        b,
        "    for (int i = 0; i < %ld; i++)\n"
        "        for (int j = 0; j < %d; j++)\n"
        "            for (int k = 0; k < %d; k++)\n"
        "                %s[(i * %d + j) * %d + k] = k <= j ? %s[(i * %d + j) * %d + k] : %s;\n",
        shape_size(n->shape) / ((long)t * t), t, t, out->text, t, t, in[0].text, t, t, fill);
}

/* ---- training and evaluation differ ---- */

/* training_or(a, b): a in training, b in evaluation. Gradients are only
 * taken in training, so all of dy goes to a. */
static int grad_mode(Graph *g, int node, int dy, int k)
{
    if (k == 1)
        return grad_zero(g, node, dy, k);
    return ir_sum_to(g, dy, shape_of(g, in_(g, node, 0)));
}

static void emit_mode(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "training ? %s : %s", in[0].text, in[1].text);
}

/* dropout(x) at site axes[0] with probability value: in training, each
 * element is dropped or scaled by 1 / (1 - p); in evaluation, x. The mask
 * is a hash of the step, the site and the element (rt_dropped), so:
 * dx = dropout(dy) at the same site, with the same mask. */
static int grad_dropout(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    return ir_must(
        g,
        &(Node){.op = OP_DROPOUT, .n_in = 1, .in = {dy}, .value = n->value, .axes = {n->axes[0]}});
}

static void emit_dropout(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    char keep[48], p[40], buf[96];
    lit(1 / (1 - n->value), keep);
    fmt_real(p, n->value);
    const char *x = at(buf, &in[0], "i"); /* a literal for a folded gradient */
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++)\n"
               "        %s[i] = !training ? %s\n"
               "              : rt_dropped(mask_step, %d, (uint64_t)i, %s) ? REAL_C(0.0)\n"
               "              : %s * %s;\n",
               shape_size(n->shape), out->text, x, n->axes[0], p, x, keep);
}

/* random_shift(x) at site axes[0], offsets up to value: in training, each
 * image of x [N, ..., H, W] moves by a whole number of pixels in [-k, k]
 * down and right, drawn per image n, with zeros filling in; in evaluation,
 * x. axes[1] is -1 for the gradient, which moves dy back by the same
 * draws. */
static const char *shape_shift(Graph *g, Node *n, char *err, size_t len)
{
    if (shape_of(g, n->in[0]).rank < 3) {
        snprintf(err, len, "needs images [N, ..., H, W], got rank %d", shape_of(g, n->in[0]).rank);
        return err;
    }
    return shape_unary(g, n, err, len);
}

static int grad_shift(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_SHIFT,
                              .n_in = 1,
                              .in = {dy},
                              .value = n->value,
                              .axes = {n->axes[0], -n->axes[1]}});
}

static void emit_shift(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Shape s = n->shape;
    int h = s.dim[s.rank - 2], w = s.dim[s.rank - 1], k = (int)n->value;
    long per = shape_size(s) / s.dim[0] / ((long)h * w); /* channels */
    const char *sign = n->axes[1] < 0 ? "-" : "";
    char src[96], from[32];
    snprintf(from, sizeof from, "at - dy * %d - dx", w);
    buf_printf(
        b,
        "    for (int n = 0; n < %d; n++) {\n"
        "        const int dy = training ? %srt_offset(mask_step, %d, 2 * (uint64_t)n, %d) : 0;\n"
        "        const int dx = training ? %srt_offset(mask_step, %d, 2 * (uint64_t)n + 1, %d) : "
        "0;\n"
        "        for (int c = 0; c < %ld; c++)\n"
        "            for (int i = 0; i < %d; i++)\n"
        "                for (int j = 0; j < %d; j++) {\n"
        "                    const long at = ((long)n * %ld + c) * %d + i * %d + j;\n"
        "                    const int si = i - dy, sj = j - dx;\n"
        "                    %s[at] = si >= 0 && si < %d && sj >= 0 && sj < %d\n"
        "                                 ? %s : REAL_C(0.0);\n"
        "                }\n"
        "    }\n",
        s.dim[0], sign, n->axes[0], k, sign, n->axes[0], k, per, h, w, per, h * w, w, out->text, h,
        w, at(src, &in[0], from));
}

/* ---- matrix product ---- */

/* An operand or result of a product as the product sees it: stored with
 * axes 1 and 2 swapped when the node says so (axes[k], simplify.c), as an
 * attention's heads [N, H, T, d] are read and written in place in rows
 * [N, T, H, d]. */
static Shape product_view(const Node *n, int k, Shape stored)
{
    if (n->axes[k]) {
        int d = stored.dim[1];
        stored.dim[1] = stored.dim[2];
        stored.dim[2] = d;
    }
    return stored;
}

/* C = op(A) op(B), op a transpose when the flag says so, over the last two
 * axes. Leading (batch) axes must agree, or one side has none and is
 * shared by every matrix of the other. */
static const char *shape_matmul(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len))
        return err;
    Shape a = product_view(n, 0, shape_of(g, n->in[0]));
    Shape b = product_view(n, 1, shape_of(g, n->in[1]));
    if (a.rank < 2 || b.rank < 2) {
        snprintf(err, len, "needs matrices (or batches of them), got rank %d and rank %d", a.rank,
                 b.rank);
        return err;
    }
    int ra = a.rank, rb = b.rank;
    int m = a.dim[ra - 2 + n->trans_a], ka = a.dim[ra - 1 - n->trans_a];
    int kb = b.dim[rb - 2 + n->trans_b], nn = b.dim[rb - 1 - n->trans_b];
    char sa[64], sb[64];
    shape_str(sa, sizeof sa, a);
    shape_str(sb, sizeof sb, b);
    if (ra > 2 && rb > 2 &&
        (ra != rb || !shape_eq((Shape){ra - 2, {0}}, (Shape){rb - 2, {0}}) ||
         memcmp(a.dim, b.dim, (ra - 2) * sizeof *a.dim))) {
        snprintf(err, len, "batch axes differ: %s x %s", sa, sb);
        return err;
    }
    if (ka != kb) {
        if (ra == 2 && rb == 2) {
            shape_str(sa, sizeof sa, (Shape){2, {m, ka}});
            shape_str(sb, sizeof sb, (Shape){2, {kb, nn}});
        }
        snprintf(err, len, "inner dimensions differ: %s x %s", sa, sb);
        return err;
    }
    if (n->value == 0) /* made without a scale */
        n->value = 1;
    Shape lead = ra > 2 ? a : b;
    n->shape = lead;
    n->shape.dim[lead.rank - 2] = m;
    n->shape.dim[lead.rank - 1] = nn;
    n->shape = product_view(n, 2, n->shape);
    n->dtype = DT_REAL;
    return NULL;
}

/* Rows of a batch of matrices [..., M, K] as one matrix [rows, K]. */
static int rows_of(Graph *g, int x)
{
    Shape s = shape_of(g, x);
    return ir_reshape(g, x,
                      (Shape){2, {(int)(shape_size(s) / s.dim[s.rank - 1]), s.dim[s.rank - 1]}});
}

/* With op(A) = A:   dA = dC op(B)^T        else dA = op(B) dC^T
 * With op(B) = B:   dB = op(A)^T dC        else dB = dC^T op(A)
 * summed over the batch for a side the batch shared. When B is one matrix
 * shared by a batch of untransposed A, its gradient is one product over all
 * the rows: A's rows^T dC's rows. */
static int grad_matmul(Graph *g, int node, int dy, int k)
{
    const Node *n = ir_at(g, node);
    int a = n->in[0], b = n->in[1];
    bool ta = n->trans_a, tb = n->trans_b;
    Shape sa = shape_of(g, a), sb = shape_of(g, b);
    if (k == 1 && sb.rank == 2 && sa.rank > 2 && !ta)
        return tb ? ir_matmul(g, rows_of(g, dy), true, rows_of(g, a), false)
                  : ir_matmul(g, rows_of(g, a), true, rows_of(g, dy), false);
    int d;
    if (k == 0)
        d = ta ? ir_matmul(g, b, tb, dy, true) : ir_matmul(g, dy, false, b, !tb);
    else
        d = tb ? ir_matmul(g, dy, true, a, ta) : ir_matmul(g, a, !ta, dy, false);
    return ir_sum_to(g, d, k == 0 ? sa : sb);
}

bool matmul_product(const Node *n, Shape sa, Shape sb, Product *p)
{
    Shape sc = n->shape;
    int m = sc.dim[sc.rank - 2];
    long batch = shape_size(sc) / ((long)m * sc.dim[sc.rank - 1]);
    if (batch > 1 && (sb.rank > 2 || n->trans_a))
        return false;
    *p = (Product){.m = batch * m,
                   .n = sc.dim[sc.rank - 1],
                   .k = sa.dim[sa.rank - 1 - n->trans_a],
                   .ta = n->trans_a,
                   .tb = n->trans_b};
    return true;
}

/* The operand a tuned product transposes into out->scratch first (ta: A
 * stored [k, m]; else B stored [n, k]), so that the product is plain.
 * Sixteen rows at a time, their columns in turn: the stores run in order
 * and the rows stay in cache. Row by row, each store went a row of the
 * copy further, and at a stride of a power of two every one of them fell
 * in the same cache set: 7 times slower (runtime/tune.c times this loop). */
static void emit_tuned_copy(Buf *b, const Product *p, const Operand *out, const Operand *in)
{
    int rows = p->ta ? p->k : p->n, cols = p->ta ? p->m : p->k;
    buf_printf(b,
               "    for (int i = 0; i < %d; i += 16) /* tuned: a plain product is faster */\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            for (int k = i; k < i + 16 && k < %d; k++)\n"
               "                %s[j * %d + k] = %s[k * %d + j];\n",
               rows, cols, rows, out->scratch, rows, in[p->ta ? 0 : 1].text, cols);
}

/* Where matrix (i, j) of a batch [I, J, rows, cols] starts in its buffer
 * and how far apart its rows are: stored as it is, or with axes 1 and 2
 * swapped ([I, rows, J, cols]: the rows of the heads interleave). */
static void head_matrix(char *at, size_t len, int *ld, const char *buf, Shape s, bool swapped)
{
    if (swapped) { /* s is the view: [I, J, rows, cols] */
        snprintf(at, len, "%s + i * %ld + j * %d", buf, (long)s.dim[1] * s.dim[2] * s.dim[3],
                 s.dim[3]);
        *ld = s.dim[1] * s.dim[3];
    } else {
        snprintf(at, len, "%s + i * %ld + j * %ld", buf, (long)s.dim[1] * s.dim[2] * s.dim[3],
                 (long)s.dim[2] * s.dim[3]);
        *ld = s.dim[3];
    }
}

/* A batch [I, J] of products some of whose matrices are stored with axes
 * 1 and 2 swapped: a loop over each batch axis, the BLAS reading and
 * writing each matrix in place with its row stride. */
static void emit_head_products(Buf *b, const Node *n, const Operand *out, const Operand *in,
                               const char *alpha, const char *beta)
{
    Shape s[3] = {product_view(n, 0, in[0].shape), product_view(n, 1, in[1].shape),
                  product_view(n, 2, n->shape)};
    const char *buf[3] = {in[0].text, in[1].text, out->text};
    char at[3][160];
    int ld[3];
    for (int k = 0; k < 3; k++)
        head_matrix(at[k], sizeof at[k], &ld[k], buf[k], s[k], n->axes[k]);
    buf_printf(b,
               "    for (int i = 0; i < %d; i++)\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            r_gemm(CblasRowMajor, %s, %s, %d, %d, %d,\n"
               "                   %s, %s, %d, %s, %d, %s,\n"
               "                   %s, %d);\n",
               s[2].dim[0], s[2].dim[1], n->trans_a ? "CblasTrans" : "CblasNoTrans",
               n->trans_b ? "CblasTrans" : "CblasNoTrans", s[2].dim[2], s[2].dim[3],
               s[0].dim[3 - n->trans_a], alpha, at[0], ld[0], at[1], ld[1], beta, at[2], ld[2]);
}

static void emit_matmul(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Shape sa = in[0].shape, sb = in[1].shape, sc = n->shape;
    int ra = sa.rank, rb = sb.rank, rc = sc.rank;
    int m = sc.dim[rc - 2], nn = sc.dim[rc - 1], k = sa.dim[ra - 1 - n->trans_a];
    long batch = shape_size(sc) / ((long)m * nn);
    const char *ta = n->trans_a ? "CblasTrans" : "CblasNoTrans";
    const char *tb = n->trans_b ? "CblasTrans" : "CblasNoTrans";
    /* alpha: the node's scale (simplify folds a constant factor into it),
     * times the caller's (-lr when a plain SGD update is folded in) */
    char alpha[96], scale[48];
    lit(n->value, scale);
    if (!out->alpha)
        snprintf(alpha, sizeof alpha, "%s", scale);
    else if (n->value == 1)
        snprintf(alpha, sizeof alpha, "%s", out->alpha);
    else
        snprintf(alpha, sizeof alpha, "%s * %s", out->alpha, scale);
    const char *beta = out->beta ? out->beta : "REAL_C(0.0)";
    if (n->axes[0] || n->axes[1] || n->axes[2]) {
        emit_head_products(b, n, out, in, alpha, beta);
        return;
    }
    Product p;
    if (out->scratch && matmul_product(n, sa, sb, &p)) {
        emit_tuned_copy(b, &p, out, in);
        buf_printf(b,
                   "    r_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, %d, %d, %d,\n"
                   "           %s, %s, %d, %s, %d, %s, %s, %d);\n",
                   p.m, p.n, p.k, alpha, p.ta ? out->scratch : in[0].text,
                   p.ta ? p.k : sa.dim[ra - 1], p.tb ? out->scratch : in[1].text,
                   p.tb ? p.n : sb.dim[rb - 1], beta, out->text, nn);
        return;
    }
    if (out->kernel) { /* tuned: runtime/gemm.c is faster */
        const char *form = n->trans_b ? "nt" : n->trans_a ? "tn" : "nn";
        buf_printf(b, "    r_gemm_%s(%ld, %d, %d, %s, %s, %d, %s, %d, %s, %s, %d);\n", form,
                   batch * m, nn, k, alpha, in[0].text, sa.dim[ra - 1], in[1].text, sb.dim[rb - 1],
                   beta, out->text, nn);
        return;
    }
    if (batch == 1 || (rb == 2 && !n->trans_a)) {
        /* One product: a batch sharing B is one tall matrix of rows. */
        buf_printf(b,
                   "    r_gemm(CblasRowMajor, %s, %s, %ld, %d, %d,\n"
                   "           %s, %s, %d, %s, %d, %s, %s, %d);\n",
                   ta, tb, batch * m, nn, k, alpha, in[0].text, sa.dim[ra - 1], in[1].text,
                   sb.dim[rb - 1], beta, out->text, nn);
        return;
    }
    long step_a = ra > 2 ? (long)sa.dim[ra - 2] * sa.dim[ra - 1] : 0;
    long step_b = rb > 2 ? (long)sb.dim[rb - 2] * sb.dim[rb - 1] : 0;
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++)\n"
               "        r_gemm(CblasRowMajor, %s, %s, %d, %d, %d,\n"
               "               %s, %s + i * %ld, %d, %s + i * %ld, %d, %s,\n"
               "               %s + i * %ld, %d);\n",
               batch, ta, tb, m, nn, k, alpha, in[0].text, step_a, sa.dim[ra - 1], in[1].text,
               step_b, sb.dim[rb - 1], beta, out->text, (long)m * nn, nn);
}

/* matmul_add(a, b, c) = a b + c: made by simplify where a product is added
 * to a sum of others (a weight's gradient over the steps of a sequence),
 * so the product accumulates into the sum (BLAS beta = 1), in its place
 * when the plan lets it. Made after differentiation: no gradient rule. */
static const char *shape_matmul_add(Graph *g, Node *n, char *err, size_t len)
{
    if (shape_matmul(g, n, err, len))
        return err;
    if (!shape_eq(shape_of(g, n->in[2]), n->shape)) {
        snprintf(err, len, "the addend must have the product's shape");
        return err;
    }
    return NULL;
}

static void emit_matmul_add(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    if (!in[2].in_place)
        buf_printf(b, "    memcpy(%s, %s, %ld * sizeof *%s);\n", out->text, in[2].text,
                   shape_size(n->shape), out->text);
    Operand acc = *out;
    acc.beta = "REAL_C(1.0)";
    emit_matmul(b, n, &acc, in);
}

/* ---- row losses: scores [N, C] and int32 labels [N] give [N] ---- */

static const char *shape_row_loss(Graph *g, Node *n, char *err, size_t len)
{
    Shape s = shape_of(g, n->in[0]), y = shape_of(g, n->in[1]);
    char ss[64], sy[64];
    shape_str(ss, sizeof ss, s);
    shape_str(sy, sizeof sy, y);
    if (ir_at(g, n->in[0])->dtype != DT_REAL || s.rank != 2)
        snprintf(err, len, "scores must be a float matrix [N,C], got %s", ss);
    else if (ir_at(g, n->in[1])->dtype != DT_I32 || y.rank != 1 || y.dim[0] != s.dim[0])
        snprintf(err, len, "labels must be int32 [%d] to go with scores %s, got %s %s", s.dim[0],
                 ss, ir_at(g, n->in[1])->dtype == DT_I32 ? "int32" : "float", sy);
    else {
        n->shape = y;
        n->dtype = DT_REAL;
        return NULL;
    }
    return err;
}

/* The gradient ops take (dy [N], scores [N,C], labels [N]) and give [N,C]. */
static const char *shape_row_loss_grad(Graph *g, Node *n, char *err, size_t len)
{
    (void)err, (void)len;
    n->shape = shape_of(g, n->in[1]);
    n->dtype = DT_REAL;
    return NULL;
}

/* loss_i = sum over j != y_i of max(0, s_j - s_yi + 1), the notes' SVM loss */
static int grad_hinge(Graph *g, int node, int dy, int k)
{
    if (k != 0)
        die("labels have no gradient");
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_HINGE_GRAD, .n_in = 3, .in = {dy, n->in[0], n->in[1]}});
}

static void emit_hinge(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int rows = in[0].shape.dim[0], cols = in[0].shape.dim[1];
    (void)n;
    buf_printf(b,
               "    for (int i = 0; i < %d; i++) {\n"
               "        const real *row = %s + i * %d;\n"
               "        const int32_t label = %s[i];\n"
               "        real acc = REAL_C(0.0);\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            if (j != label)\n"
               "                acc += r_fmax(REAL_C(0.0), row[j] - row[label] + REAL_C(1.0));\n"
               "        %s[i] = acc;\n"
               "    }\n",
               rows, in[0].text, cols, in[1].text, cols, out->text);
}

/* ds_j = dy [s_j - s_y + 1 > 0] for j != y; ds_y = -dy (how many were > 0) */
static void emit_hinge_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int rows = in[1].shape.dim[0], cols = in[1].shape.dim[1];
    char buf[96];
    const char *dy = at(buf, &in[0], "i");
    (void)n;
    buf_printf(b,
               "    for (int i = 0; i < %d; i++) {\n"
               "        const real *row = %s + i * %d;\n"
               "        real *drow = %s + i * %d;\n"
               "        const int32_t label = %s[i];\n"
               "        int cnt = 0;\n"
               "        for (int j = 0; j < %d; j++) {\n"
               "            const int on = j != label && row[j] - row[label] + REAL_C(1.0) > "
               "REAL_C(0.0);\n"
               "            drow[j] = on ? %s : REAL_C(0.0);\n"
               "            cnt += on;\n"
               "        }\n"
               "        drow[label] = -(real)cnt * %s;\n"
               "    }\n",
               rows, in[1].text, cols, out->text, cols, in[2].text, cols, dy, dy);
}

/* loss_i = log sum_j exp(z_j) - z_yi, computed from max_j z_j for range */
static int grad_xent(Graph *g, int node, int dy, int k)
{
    if (k != 0)
        die("labels have no gradient");
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_XENT_GRAD, .n_in = 3, .in = {dy, n->in[0], n->in[1]}});
}

/* Per row i of z: row, its max mx, and acc = sum_j exp(row[j] - mx); with
 * keep, each exp is also kept in keep's row (drow), for the gradient. */
static void emit_logsumexp(Buf *b, const char *z, int cols, const char *keep)
{
    buf_printf(b,
               "        const real *row = %s + i * %d;\n"
               "        const real mx = r_max_of(row, %d);\n",
               z, cols, cols);
    if (keep)
        buf_printf(b,
                   "        real *drow = %s + i * %d;\n"
                   "        const real acc = r_exp_sum(drow, row, %d, mx);\n",
                   keep, cols, cols);
    else
        buf_printf(b, "        const real acc = r_exp_sum(NULL, row, %d, mx);\n", cols);
}

static void emit_xent(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int rows = in[0].shape.dim[0], cols = in[0].shape.dim[1];
    (void)n;
    parallel_rows(b, rows, cols);
    buf_printf(b, "    for (int i = 0; i < %d; i++) {\n", rows);
    emit_logsumexp(b, in[0].text, cols, NULL);
    buf_printf(b, "        %s[i] = mx + r_log(acc) - row[%s[i]];\n    }\n", out->text, in[1].text);
}

/* dz_j = dy (softmax(z)_j - [j == y]) */
static void emit_xent_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int rows = in[1].shape.dim[0], cols = in[1].shape.dim[1];
    char buf[96];
    const char *dy = at(buf, &in[0], "i");
    (void)n;
    parallel_rows(b, rows, cols);
    buf_printf(b, "    for (int i = 0; i < %d; i++) {\n", rows);
    emit_logsumexp(b, in[1].text, cols, out->text);
    if (out->row_loss) /* the loss in the same pass (fuse.c) */
        buf_printf(b, "        %s[i] = mx + r_log(acc) - row[%s[i]];\n", out->row_loss, in[2].text);
    buf_printf(b,
               "        for (int j = 0; j < %d; j++)\n"
               "            drow[j] = %s * (drow[j] / acc - (j == %s[i]));\n"
               "    }\n",
               cols, dy, in[2].text);
}

/* ---- max pooling, window by window ---- */

/* max_pool2d(x [N,C,H,W]) with axes = {K, K, stride, 0}: each output the
 * max of its K x K window, read in place (no rows of windows). */
static const char *shape_max_pool(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    if (need_real(g, n, err, len) || check_window(x, n->axes, err, len))
        return err;
    Window v = window_of(x, n->axes);
    n->shape = (Shape){4, {v.n, v.c, v.oh, v.ow}};
    n->dtype = DT_REAL;
    return NULL;
}

/* dx: each window's dy to the elements equal to its max (as the max
 * reduction's rule gives it), summed where windows overlap; a product
 * with the mask, not a branch, which ties at zero after a ReLU would make
 * unpredictable. */
static int grad_max_pool(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Node p = {.op = OP_MAX_POOL_GRAD, .n_in = 3, .in = {dy, n->in[0], node}};
    memcpy(p.axes, n->axes, 4 * sizeof *p.axes);
    return ir_must(g, &p);
}

/* A gradient-only op shaped as its second input, what it differentiates
 * (max_pool2d_grad, softmax_grad): made by grad rules, never by users. */
static const char *shape_as_second(Graph *g, Node *n, char *err, size_t len)
{
    (void)err, (void)len;
    n->shape = shape_of(g, n->in[1]);
    n->dtype = DT_REAL;
    return NULL;
}

/* The loops over every output (plane i, row j, column k) and its window
 * (m, n): the output is out[oi], the window starts at x[win]. */
static void pool_loops(Buf *b, Window v)
{
    buf_printf(b,
               "    for (int i = 0; i < %d; i++)\n"
               "        for (int j = 0; j < %d; j++)\n"
               "            for (int k = 0; k < %d; k++) {\n"
               "                const long oi = ((long)i * %d + j) * %d + k;\n"
               "                const long win = ((long)i * %d + j * %d) * %d + k * %d;\n",
               v.n * v.c, v.oh, v.ow, v.oh, v.ow, v.h, v.stride, v.w, v.stride);
}

static void emit_max_pool(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Window v = window_of(in[0].shape, n->axes);
    char idx[48], buf[96];
    snprintf(idx, sizeof idx, "win + m * %d + n", v.w);
    pool_loops(b, v);
    buf_printf(b,
               "                real mx = -INFINITY;\n"
               "                for (int m = 0; m < %d; m++)\n"
               "                    for (int n = 0; n < %d; n++)\n"
               "                        mx = r_max(mx, %s);\n"
               "                %s[oi] = mx;\n"
               "            }\n",
               v.kh, v.kw, at(buf, &in[0], idx), out->text);
}

/* Windows that tile x (stride the window's size, nothing left over at the
 * edges) each write their own elements: nothing to zero first or to sum. */
static void emit_max_pool_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Window v = window_of(n->shape, n->axes);
    bool tiles = v.pad == 0 && v.kh == v.stride && v.kw == v.stride && v.oh * v.stride == v.h &&
                 v.ow * v.stride == v.w;
    char buf[96];
    if (!tiles)
        buf_printf(b, "    memset(%s, 0, %ld * sizeof *%s);\n", out->text, shape_size(n->shape),
                   out->text);
    pool_loops(b, v);
    buf_printf(b,
               "                for (int m = 0; m < %d; m++)\n"
               "                    for (int n = 0; n < %d; n++)\n"
               "                        %s[win + m * %d + n] %s\n"
               "                            (real)(%s[win + m * %d + n] == %s[oi]) * %s;\n"
               "            }\n",
               v.kh, v.kw, out->text, v.w, tiles ? "=" : "+=", in[1].text, v.w, in[2].text,
               at(buf, &in[0], "oi"));
}

/* ---- softmax over the last axis, one row at a time ---- */

/* The rows of a tensor whose last axis has `cols` elements. */
static long last_axis_rows(Shape s, int *cols)
{
    *cols = s.rank ? s.dim[s.rank - 1] : 1;
    return shape_size(s) / *cols;
}

/* dx = y (dy - sum_j dy_j y_j), per row: softmax_grad(dy, y). */
static int grad_softmax(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_must(g, &(Node){.op = OP_SOFTMAX_GRAD, .n_in = 2, .in = {dy, node}});
}

/* The columns row i of a softmax reads: all, or for a causal one (value
 * 1, made by simplify from softmax(causal_mask(x)) and its gradient) the
 * columns up to its own place in its [T, T] matrix, the rest being 0. */
static void seen_columns(Buf *b, const Node *n, int cols, char *on, size_t len)
{
    if (!n->value) {
        snprintf(on, len, "%d", cols);
        return;
    }
    snprintf(on, len, "on");
    buf_printf(b, "        const int on = i %% %d + 1; /* causal: the rest are 0 */\n", cols);
}

static void zero_unseen(Buf *b, const Node *n, int cols, const char *row)
{
    if (n->value)
        buf_printf(b,
                   "        for (int j = on; j < %d; j++)\n"
                   "            %s[j] = REAL_C(0.0);\n",
                   cols, row);
}

/* Per row: its max, each exp(x - max) and their sum, then the quotients;
 * the same arithmetic as exp(x - m) / sum(exp(x - m)), in one pass over
 * rows that stay in cache. A constant x is first written into the row. */
static void emit_softmax(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int cols;
    long rows = last_axis_rows(n->shape, &cols);
    char on[16];
    parallel_rows(b, rows, cols);
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++) {\n"
               "        real *srow = %s + (long)i * %d;\n",
               rows, out->text, cols);
    seen_columns(b, n, cols, on, sizeof on);
    if (in[0].is_const)
        buf_printf(b,
                   "        for (int j = 0; j < %s; j++)\n"
                   "            srow[j] = %s;\n"
                   "        const real *row = srow;\n",
                   on, in[0].text);
    else
        buf_printf(b, "        const real *row = %s + (long)i * %d;\n", in[0].text, cols);
    buf_printf(b,
               "        const real mx = r_max_of(row, %s);\n"
               "        const real acc = r_exp_sum(srow, row, %s, mx);\n"
               "        for (int j = 0; j < %s; j++)\n"
               "            srow[j] = srow[j] / acc;\n",
               on, on, on);
    zero_unseen(b, n, cols, "srow");
    buf_printf(b, "    }\n");
}

static void emit_softmax_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int cols;
    long rows = last_axis_rows(n->shape, &cols);
    char idx[48], buf[96], dy[96], on[16];
    snprintf(idx, sizeof idx, "(long)i * %d + j", cols);
    snprintf(dy, sizeof dy, "%s", at(buf, &in[0], idx));
    parallel_rows(b, rows, cols);
    buf_printf(b,
               "    for (int i = 0; i < %ld; i++) {\n"
               "        const real *srow = %s + (long)i * %d;\n"
               "        real *drow = %s + (long)i * %d;\n",
               rows, in[1].text, cols, out->text, cols);
    seen_columns(b, n, cols, on, sizeof on);
    if (in[0].is_const)
        buf_printf(b, "        const real dot = %s * r_dot(srow, NULL, %s);\n", dy, on);
    else
        buf_printf(b, "        const real dot = r_dot(%s + (long)i * %d, srow, %s);\n",
                   in[0].text, cols, on);
    buf_printf(b,
               "        for (int j = 0; j < %s; j++)\n"
               "            drow[j] = srow[j] * (%s - dot);\n",
               on, dy);
    zero_unseen(b, n, cols, "drow");
    buf_printf(b, "    }\n");
}

const OpInfo op_info[N_OPS] = {
#define OP(e, name, arity, kind, shape, grad, emit) {name, arity, kind, shape, grad, emit},
#include "ops.def"
#undef OP
};
