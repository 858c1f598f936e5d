/*
 * ops/shapes.c: ops that move elements without arithmetic: the views
 * (broadcast_to, transpose, permute, slice), pad, reshape and concat.
 */
#include <string.h>
#include "ops.h"

void read_broadcast(const Node *n, Shape x, const Access *out, Access *in)
{
    for (int i = 0; i < n->shape.rank; i++)
        if (n->axes[i] >= 0 && x.dim[n->axes[i]] != 1) {
            in->src[n->axes[i]] = out->src[i];
            in->off[n->axes[i]] = out->off[i];
        }
}

void read_permuted(const Node *n, Shape x, const Access *out, Access *in)
{
    (void)x;
    for (int i = 0; i < n->shape.rank; i++) {
        in->src[n->axes[i]] = out->src[i];
        in->off[n->axes[i]] = out->off[i];
    }
}

/* Axis k of the input starts axes[k] further in. */
void read_window(const Node *n, Shape x, const Access *out, Access *in)
{
    for (int j = 0; j < x.rank; j++) {
        in->src[j] = out->src[j];
        in->off[j] = out->off[j] + n->axes[j];
    }
}

/* ---- views ---- */

/* Output axis i reads input axis axes[i], or repeats when that is -1 or
 * the input axis has size 1. Input axes appear in order, each once. */
const char *shape_broadcast_to(Graph *g, Node *n, char *err, size_t len)
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
int grad_broadcast_to(Graph *g, int node, int dy, int k)
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

const char *shape_transpose(Graph *g, Node *n, char *err, size_t len)
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
int grad_transpose(Graph *g, int node, int dy, int k)
{
    (void)node, (void)k;
    return ir_unary(g, OP_TRANSPOSE, dy);
}

void emit_view(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "%s", in[0].text);
}

/* A permutation: output axis i is input axis axes[i]. */
const char *shape_permute(Graph *g, Node *n, char *err, size_t len)
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
int grad_permute(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    int inverse[MAX_RANK];
    for (int i = 0; i < n->shape.rank; i++)
        inverse[n->axes[i]] = i;
    return ir_permute(g, dy, inverse);
}

/* A window of the input: axis k from axes[k], as long as the output's. */
const char *shape_slice(Graph *g, Node *n, char *err, size_t len)
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
int grad_slice(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_pad(g, dy, ir_at(g, node)->axes, shape_of(g, in_(g, node, 0)));
}

/* The input in a window of a larger output of zeros, axes[k] in. */
const char *shape_pad(Graph *g, Node *n, char *err, size_t len)
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
int grad_pad(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_slice(g, dy, ir_at(g, node)->axes, shape_of(g, in_(g, node, 0)));
}

/* pad_add(s, x) = s + pad(x): made by simplify where a padded window is
 * added to a sum (the gradients of the slices of one tensor), so the window
 * is added into the sum, in its place when the plan lets it, and no padded
 * copy is made; stored, with value 1, where the window holds no sum yet
 * (simplify's tile_windows). Made after differentiation: no gradient rule. */
const char *shape_pad_add(Graph *g, Node *n, char *err, size_t len)
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

void emit_pad_add(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    Shape s = n->shape, x = in[1].shape;
    const char *ix = op_count(n, in);
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
        buf_printf(b, "%*sfor (%s %c = 0; %c < %d; %c++)\n", 4 * (d + 1), "", ix, var[d], var[d],
                   x.dim[d], var[d]);
    buf_printf(b,
               "%*sfor (%s r = 0; r < %ld; r++)\n"
               "%*s%s[%sr] %s %s[%sr];\n",
               4 * (inner + 1), "", ix, run, 4 * (inner + 2), "", out->text, to,
               n->value == 1 ? "=" : "+=", in[1].text, from);
}

/* The same elements, in the same order, in another shape. */
const char *shape_reshape(Graph *g, Node *n, char *err, size_t len)
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
int grad_reshape(Graph *g, int node, int dy, int k)
{
    (void)k;
    return ir_reshape(g, dy, shape_of(g, in_(g, node, 0)));
}

/* ---- joining ---- */

/* concat(a, b, ...) along axes[0]: the inputs agree on every other axis */
const char *shape_concat(Graph *g, Node *n, char *err, size_t len)
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
int grad_concat(Graph *g, int node, int dy, int k)
{
    const Node *n = ir_at(g, node);
    int start[MAX_RANK] = {0};
    for (int i = 0; i < k; i++)
        start[n->axes[0]] += shape_of(g, n->in[i]).dim[n->axes[0]];
    return ir_slice(g, dy, start, shape_of(g, n->in[k]));
}

/* Seen as [outer, axis, inner], each input is a run of rows per outer
 * index: one memcpy each. */
void emit_concat(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    int a = n->axes[0], total = n->shape.dim[a], at = 0;
    const char *ix = op_count(n, in);
    long outer = 1, inner = 1;
    for (int i = 0; i < a; i++)
        outer *= n->shape.dim[i];
    for (int i = a + 1; i < n->shape.rank; i++)
        inner *= n->shape.dim[i];
    for (int k = 0; k < n->n_in; k++) {
        int part = in[k].shape.dim[a];
        buf_printf(b,
                   "    for (%s i = 0; i < %ld; i++)\n"
                   "        memcpy(%s + (i * %d + %d) * %ld, %s + i * %ld, %ld * sizeof *%s);\n",
                   ix, outer, out->text, total, at, inner, in[k].text, part * inner, part * inner,
                   out->text);
        at += part;
    }
}
