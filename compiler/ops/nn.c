/*
 * ops/nn.c: the network ops: one_hot, convolution as rows (im2col and its
 * adjoint), max pooling, embeddings, the causal mask, the ops that differ
 * between training and evaluation (dropout, random shifts), the row losses
 * and softmax.
 */
#include <math.h>
#include <string.h>
#include "ops.h"

/* int32 labels [...] to rows of value (C) zeros and a one: [..., C] */
const char *shape_one_hot(Graph *g, Node *n, char *err, size_t len)
{
    Shape x = shape_of(g, n->in[0]);
    if (ir_at(g, n->in[0])->dtype != DT_I32 || x.rank >= MAX_RANK)
        return snprintf(err, len, "needs int32 labels"), err;
    n->shape = x;
    n->shape.dim[n->shape.rank++] = (int)n->value;
    n->dtype = DT_REAL;
    return NULL;
}

void emit_one_hot(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int classes = (int)n->value;
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++)\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            %s[i * %d + j] = (real)(%s[i] == j);\n",
               ix, shape_size(in[0].shape), ix, classes, out->text, classes, in[0].text);
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

/* The type window loops count with: of the images or of their rows,
 * whichever is larger. */
static const char *window_count(Window v)
{
    long images = (long)v.n * v.c * v.h * v.w, rows = (long)v.n * v.oh * v.ow * v.c * v.kh * v.kw;
    return count_type(images > rows ? images : rows);
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
        return snprintf(err, len, "padded %ldx%ld images give more windows than a tensor holds", h,
                        w),
               err;
    return NULL;
}

const char *shape_im2col(Graph *g, Node *n, char *err, size_t len)
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
int grad_im2col(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Node c = {.op = OP_COL2IM, .n_in = 1, .in = {dy}, .shape = shape_of(g, n->in[0])};
    memcpy(c.axes, n->axes, 4 * sizeof *c.axes);
    return ir_must(g, &c);
}

/* col2im: rows [N*OH*OW, C*KH*KW] summed back into images, the proto's shape */
const char *shape_col2im(Graph *g, Node *n, char *err, size_t len)
{
    if (need_real(g, n, err, len) || check_window(n->shape, n->axes, err, len))
        return err;
    Window v = window_of(n->shape, n->axes);
    if (!shape_eq(shape_of(g, n->in[0]), (Shape){2, {v.n * v.oh * v.ow, v.c * v.kh * v.kw}}))
        return snprintf(err, len, "rows do not match the images"), err;
    n->dtype = DT_REAL;
    return NULL;
}

int grad_col2im(Graph *g, int node, int dy, int k)
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
    const char *ix = window_count(v);
    buf_printf(b,
               "    for (%s i = 0; i < %d; i++)\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            for (%s k = 0; k < %d; k++) {\n"
               "                real *row = %s + ((i * %d + j) * %d + k) * %d;\n",
               ix, v.n, ix, v.oh, ix, v.ow, cols, v.oh, v.ow, v.c * v.kh * v.kw);
    if (v.pad)
        buf_printf(
            b,
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
    const char *ix = window_count(v);
    char m1[16], n1[16];
    snprintf(m1, sizeof m1, "%d", v.kh);
    snprintf(n1, sizeof n1, "%d", v.kw);
    buf_printf(b,
               "                for (%s l = 0; l < %d; l++)\n"
               "                    for (%s m = %s; m < %s; m++)\n"
               "                        for (%s n = %s; n < %s; n++)\n"
               "                            %s;\n"
               "            }\n",
               ix, v.c, ix, v.pad ? "m0" : "0", v.pad ? "m1" : m1, ix, v.pad ? "n0" : "0",
               v.pad ? "n1" : n1, statement);
}

void emit_im2col(Buf *b, const Node *n, const Operand *out, const Operand *in)
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

void emit_col2im(Buf *b, const Node *n, const Operand *out, const Operand *in)
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

/* An int32 id times a row's length, in long when the table is that large. */
static const char *wide(const char *count) { return strcmp(count, "long") ? "" : "(long)"; }

/* embedding(table [V, D], ids int32 [...]) = the rows ids pick: [..., D] */
const char *shape_embedding(Graph *g, Node *n, char *err, size_t len)
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
int grad_embedding(Graph *g, int node, int dy, int k)
{
    if (k != 0)
        die("ids have no gradient");
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_EMBEDDING_GRAD,
                              .n_in = 2,
                              .in = {dy, n->in[1]},
                              .shape = shape_of(g, n->in[0])});
}

void emit_embedding(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int d = in[0].shape.dim[1];
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++)\n"
               "        memcpy(%s + i * %d, %s + %s%s[i] * %d, %d * sizeof *%s);\n",
               ix, shape_size(in[1].shape), out->text, d, in[0].text, wide(ix), in[1].text, d, d,
               out->text);
}

/* embedding_grad(dy [..., D], ids) = the table's gradient, the proto's [V, D] */
const char *shape_embedding_grad(Graph *g, Node *n, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    n->dtype = DT_REAL;
    return NULL;
}

/* Adding dy's rows into the table is linear in dy; its adjoint reads the
 * rows back: du's rows the ids pick. */
int grad_embedding_grad(Graph *g, int node, int du, int k)
{
    if (k != 0)
        die("ids have no gradient");
    return ir_must(g, &(Node){.op = OP_EMBEDDING, .n_in = 2, .in = {du, in_(g, node, 1)}});
}

void emit_embedding_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int d = n->shape.dim[1];
    buf_printf(b,
               "    memset(%s, 0, %ld * sizeof *%s);\n"
               "    for (%s i = 0; i < %ld; i++)\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            %s[%s%s[i] * %d + j] += %s[i * %d + j];\n",
               out->text, shape_size(n->shape), out->text, ix, shape_size(in[1].shape), ix, d,
               out->text, wide(ix), in[1].text, d, in[0].text, d);
}

/* causal_mask(x [..., T, T]) keeps x where column <= row and puts the
 * value (-inf for attention scores) above the diagonal. */
int grad_causal(Graph *g, int node, int dy, int k)
{
    (void)k, (void)node;
    return ir_must(g, &(Node){.op = OP_CAUSAL, .n_in = 1, .in = {dy}, .value = 0});
}

void emit_causal(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int t = n->shape.dim[n->shape.rank - 1];
    char fill[48];
    if (isinf(n->value))
        snprintf(fill, sizeof fill, "%sINFINITY", n->value < 0 ? "-" : "");
    else
        lit(n->value, fill);
    buf_printf(
        b,
        "    for (%s i = 0; i < %ld; i++)\n"
        "        for (%s j = 0; j < %d; j++)\n"
        "            for (%s k = 0; k < %d; k++)\n"
        "                %s[(i * %d + j) * %d + k] = k <= j ? %s[(i * %d + j) * %d + k] : %s;\n",
        ix, shape_size(n->shape) / ((long)t * t), ix, t, ix, t, out->text, t, t, in[0].text, t, t,
        fill);
}

/* ---- training and evaluation differ ---- */

/* training_or(a, b): a in training, b in evaluation. Gradients are only
 * taken in training, so all of dy goes to a. */
int grad_mode(Graph *g, int node, int dy, int k)
{
    if (k == 1)
        return grad_zero(g, node, dy, k);
    return ir_sum_to(g, dy, shape_of(g, in_(g, node, 0)));
}

void emit_mode(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    (void)n, (void)out;
    buf_printf(b, "training ? %s : %s", in[0].text, in[1].text);
}

/* dropout(x) at site axes[0] with probability value: in training, each
 * element is dropped or scaled by 1 / (1 - p); in evaluation, x. The mask
 * is a hash of the step, the site and the element (rt_dropped), so:
 * dx = dropout(dy) at the same site, with the same mask. */
int grad_dropout(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    return ir_must(
        g,
        &(Node){.op = OP_DROPOUT, .n_in = 1, .in = {dy}, .value = n->value, .axes = {n->axes[0]}});
}

void emit_dropout(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    char keep[48], p[40], buf[96];
    lit(1 / (1 - n->value), keep);
    fmt_real(p, n->value);
    const char *x = at(buf, &in[0], "i"); /* a literal for a folded gradient */
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++)\n"
               "        %s[i] = !training ? %s\n"
               "              : rt_dropped(mask_step, %d, (uint64_t)i, %s) ? REAL_C(0.0)\n"
               "              : %s * %s;\n",
               ix, shape_size(n->shape), out->text, x, n->axes[0], p, x, keep);
}

/* random_shift(x) at site axes[0], offsets up to value: in training, each
 * image of x [N, ..., H, W] moves by a whole number of pixels in [-k, k]
 * down and right, drawn per image n, with zeros filling in; in evaluation,
 * x. axes[1] is -1 for the gradient, which moves dy back by the same
 * draws. */
const char *shape_shift(Graph *g, Node *n, char *err, size_t len)
{
    if (shape_of(g, n->in[0]).rank < 3) {
        snprintf(err, len, "needs images [N, ..., H, W], got rank %d", shape_of(g, n->in[0]).rank);
        return err;
    }
    return shape_unary(g, n, err, len);
}

int grad_shift(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_SHIFT,
                              .n_in = 1,
                              .in = {dy},
                              .value = n->value,
                              .axes = {n->axes[0], -n->axes[1]}});
}

void emit_shift(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    Shape s = n->shape;
    int h = s.dim[s.rank - 2], w = s.dim[s.rank - 1], k = (int)n->value;
    long per = shape_size(s) / s.dim[0] / ((long)h * w); /* channels */
    const char *sign = n->axes[1] < 0 ? "-" : "";
    char src[96], from[32];
    snprintf(from, sizeof from, "at - dy * %d - dx", w);
    buf_printf(
        b,
        "    for (%s n = 0; n < %d; n++) {\n"
        "        const int dy = training ? %srt_offset(mask_step, %d, 2 * (uint64_t)n, %d) : 0;\n"
        "        const int dx = training ? %srt_offset(mask_step, %d, 2 * (uint64_t)n + 1, %d) : "
        "0;\n"
        "        for (%s c = 0; c < %ld; c++)\n"
        "            for (%s i = 0; i < %d; i++)\n"
        "                for (%s j = 0; j < %d; j++) {\n"
        "                    const long at = ((long)n * %ld + c) * %d + i * %d + j;\n"
        "                    const int si = i - dy, sj = j - dx;\n"
        "                    %s[at] = si >= 0 && si < %d && sj >= 0 && sj < %d\n"
        "                                 ? %s : REAL_C(0.0);\n"
        "                }\n"
        "    }\n",
        ix, s.dim[0], sign, n->axes[0], k, sign, n->axes[0], k, ix, per, ix, h, ix, w, per, h * w,
        w, out->text, h, w, at(src, &in[0], from));
}

/* ---- row losses: scores [N, C] and int32 labels [N] give [N] ---- */

const char *shape_row_loss(Graph *g, Node *n, char *err, size_t len)
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
const char *shape_row_loss_grad(Graph *g, Node *n, char *err, size_t len)
{
    (void)err, (void)len;
    n->shape = shape_of(g, n->in[1]);
    n->dtype = DT_REAL;
    return NULL;
}

/* loss_i = sum over j != y_i of max(0, s_j - s_yi + 1), the notes' SVM loss */
int grad_hinge(Graph *g, int node, int dy, int k)
{
    if (k != 0)
        die("labels have no gradient");
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_HINGE_GRAD, .n_in = 3, .in = {dy, n->in[0], n->in[1]}});
}

/* A row loss's gradient op is dy_i times a matrix of z alone, m = op(1,
 * z, labels): through dy, each row's sum of du m. */
static int through_row_weight(Graph *g, int node, int du)
{
    const Node *n = ir_at(g, node);
    Shape rows = shape_of(g, n->in[0]), col = shape_of(g, n->in[1]);
    col.dim[1] = 1;
    int m = ir_must(
        g, &(Node){.op = n->op, .n_in = 3, .in = {ir_const(g, 1, rows), n->in[1], n->in[2]}});
    return ir_reshape(g, ir_sum_to(g, ir_binary(g, OP_MUL, du, m), col), rows);
}

/* The hinge's m is a count of margins: constant in the scores between kinks. */
int grad_hinge_grad(Graph *g, int node, int du, int k)
{
    return k == 0 ? through_row_weight(g, node, du) : grad_zero(g, node, du, k);
}

void emit_hinge(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int rows = in[0].shape.dim[0], cols = in[0].shape.dim[1];
    (void)n;
    buf_printf(b,
               "    for (%s i = 0; i < %d; i++) {\n"
               "        const real *row = %s + i * %d;\n"
               "        const int32_t label = %s[i];\n"
               "        real acc = REAL_C(0.0);\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            if (j != label)\n"
               "                acc += r_fmax(REAL_C(0.0), row[j] - row[label] + REAL_C(1.0));\n"
               "        %s[i] = acc;\n"
               "    }\n",
               ix, rows, in[0].text, cols, in[1].text, ix, cols, out->text);
}

/* ds_j = dy [s_j - s_y + 1 > 0] for j != y; ds_y = -dy (how many were > 0) */
void emit_hinge_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int rows = in[1].shape.dim[0], cols = in[1].shape.dim[1];
    char buf[96];
    const char *dy = at(buf, &in[0], "i");
    (void)n;
    buf_printf(b,
               "    for (%s i = 0; i < %d; i++) {\n"
               "        const real *row = %s + i * %d;\n"
               "        real *drow = %s + i * %d;\n"
               "        const int32_t label = %s[i];\n"
               "        int cnt = 0;\n"
               "        for (%s j = 0; j < %d; j++) {\n"
               "            const int on = j != label && row[j] - row[label] + REAL_C(1.0) > "
               "REAL_C(0.0);\n"
               "            drow[j] = on ? %s : REAL_C(0.0);\n"
               "            cnt += on;\n"
               "        }\n"
               "        drow[label] = -(real)cnt * %s;\n"
               "    }\n",
               ix, rows, in[1].text, cols, out->text, cols, in[2].text, ix, cols, dy, dy);
}

/* loss_i = log sum_j exp(z_j) - z_yi, computed from max_j z_j for range */
int grad_xent(Graph *g, int node, int dy, int k)
{
    if (k != 0)
        die("labels have no gradient");
    const Node *n = ir_at(g, node);
    return ir_must(g, &(Node){.op = OP_XENT_GRAD, .n_in = 3, .in = {dy, n->in[0], n->in[1]}});
}

/* cross_entropy_grad = dy_i (softmax(z)_ij - [j == y_i]); through z, the
 * softmax's own gradient of du dy_i. */
int grad_xent_grad(Graph *g, int node, int du, int k)
{
    if (k == 0)
        return through_row_weight(g, node, du);
    if (k != 1)
        die("labels have no gradient");
    const Node *n = ir_at(g, node);
    Shape col = shape_of(g, n->in[1]);
    col.dim[1] = 1;
    int p = ir_unary(g, OP_SOFTMAX, n->in[1]);
    int scaled = ir_binary(g, OP_MUL, du, ir_reshape(g, n->in[0], col));
    return ir_must(g, &(Node){.op = OP_SOFTMAX_GRAD, .n_in = 2, .in = {scaled, p}});
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

void emit_xent(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int rows = in[0].shape.dim[0], cols = in[0].shape.dim[1];
    (void)n;
    parallel_rows(b, rows, cols);
    buf_printf(b, "    for (%s i = 0; i < %d; i++) {\n", ix, rows);
    emit_logsumexp(b, in[0].text, cols, NULL);
    buf_printf(b, "        %s[i] = mx + r_log(acc) - row[%s[i]];\n    }\n", out->text, in[1].text);
}

/* dz_j = dy (softmax(z)_j - [j == y]) */
void emit_xent_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int rows = in[1].shape.dim[0], cols = in[1].shape.dim[1];
    char buf[96];
    const char *dy = at(buf, &in[0], "i");
    (void)n;
    parallel_rows(b, rows, cols);
    buf_printf(b, "    for (%s i = 0; i < %d; i++) {\n", ix, rows);
    emit_logsumexp(b, in[1].text, cols, out->text);
    if (out->row_loss) /* the loss in the same pass (fuse.c) */
        buf_printf(b, "        %s[i] = mx + r_log(acc) - row[%s[i]];\n", out->row_loss, in[2].text);
    buf_printf(b,
               "        for (%s j = 0; j < %d; j++)\n"
               "            drow[j] = %s * (drow[j] / acc - (j == %s[i]));\n"
               "    }\n",
               ix, cols, dy, in[2].text);
}

/* ---- max pooling, window by window ---- */

/* max_pool2d(x [N,C,H,W]) with axes = {K, K, stride, 0}: each output the
 * max of its K x K window, read in place (no rows of windows). */
const char *shape_max_pool(Graph *g, Node *n, char *err, size_t len)
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
int grad_max_pool(Graph *g, int node, int dy, int k)
{
    (void)k;
    const Node *n = ir_at(g, node);
    Node p = {.op = OP_MAX_POOL_GRAD, .n_in = 3, .in = {dy, n->in[0], node}};
    memcpy(p.axes, n->axes, 4 * sizeof *p.axes);
    return ir_must(g, &p);
}

/* max_pool2d_grad is linear in dy, and its mask constant in x between
 * ties: its adjoint picks each window's du at its max (max_pool2d_pick),
 * and pick's adjoint is max_pool2d_grad again. */
static int pool_adjoint(Graph *g, int node, int du, int k, int op)
{
    if (k != 0)
        return grad_zero(g, node, du, k);
    const Node *n = ir_at(g, node);
    Node p = {.op = op, .n_in = 3, .in = {du, n->in[1], n->in[2]}};
    memcpy(p.axes, n->axes, 4 * sizeof *p.axes);
    return ir_must(g, &p);
}

int grad_max_pool_grad(Graph *g, int node, int du, int k)
{
    return pool_adjoint(g, node, du, k, OP_MAX_POOL_PICK);
}

/* max_pool2d_pick(u, x, y): per window, the sum of u where x equals the
 * window's max y. */
int grad_max_pool_pick(Graph *g, int node, int dv, int k)
{
    return pool_adjoint(g, node, dv, k, OP_MAX_POOL_GRAD);
}

const char *shape_as_third(Graph *g, Node *n, char *err, size_t len)
{
    (void)err, (void)len;
    n->shape = shape_of(g, n->in[2]);
    n->dtype = DT_REAL;
    return NULL;
}

/* A gradient-only op shaped as its second input, what it differentiates
 * (max_pool2d_grad, softmax_grad): made by grad rules, never by users. */
const char *shape_as_second(Graph *g, Node *n, char *err, size_t len)
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
    const char *ix = window_count(v);
    buf_printf(b,
               "    for (%s i = 0; i < %d; i++)\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            for (%s k = 0; k < %d; k++) {\n"
               "                const long oi = ((long)i * %d + j) * %d + k;\n"
               "                const long win = ((long)i * %d + j * %d) * %d + k * %d;\n",
               ix, v.n * v.c, ix, v.oh, ix, v.ow, v.oh, v.ow, v.h, v.stride, v.w, v.stride);
}

void emit_max_pool(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    Window v = window_of(in[0].shape, n->axes);
    char idx[48], buf[96];
    snprintf(idx, sizeof idx, "win + m * %d + n", v.w);
    pool_loops(b, v);
    buf_printf(b,
               "                real mx = -INFINITY;\n"
               "                for (%s m = 0; m < %d; m++)\n"
               "                    for (%s n = 0; n < %d; n++)\n"
               "                        mx = r_max(mx, %s);\n"
               "                %s[oi] = mx;\n"
               "            }\n",
               ix, v.kh, ix, v.kw, at(buf, &in[0], idx), out->text);
}

/* Windows that tile x (stride the window's size, nothing left over at the
 * edges) each write their own elements: nothing to zero first or to sum. */
void emit_max_pool_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    Window v = window_of(n->shape, n->axes);
    bool tiles = v.pad == 0 && v.kh == v.stride && v.kw == v.stride && v.oh * v.stride == v.h &&
                 v.ow * v.stride == v.w;
    char buf[96];
    if (!tiles)
        buf_printf(b, "    memset(%s, 0, %ld * sizeof *%s);\n", out->text, shape_size(n->shape),
                   out->text);
    pool_loops(b, v);
    buf_printf(b,
               "                for (%s m = 0; m < %d; m++)\n"
               "                    for (%s n = 0; n < %d; n++)\n"
               "                        %s[win + m * %d + n] %s\n"
               "                            (real)(%s[win + m * %d + n] == %s[oi]) * %s;\n"
               "            }\n",
               ix, v.kh, ix, v.kw, out->text, v.w, tiles ? "=" : "+=", in[1].text, v.w, in[2].text,
               at(buf, &in[0], "oi"));
}

void emit_max_pool_pick(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    Window v = window_of(in[1].shape, n->axes);
    char idx[48], buf[96];
    snprintf(idx, sizeof idx, "win + m * %d + n", v.w);
    pool_loops(b, v);
    buf_printf(b,
               "                real acc = REAL_C(0.0);\n"
               "                for (%s m = 0; m < %d; m++)\n"
               "                    for (%s n = 0; n < %d; n++)\n"
               "                        acc += (real)(%s[win + m * %d + n] == %s[oi]) * %s;\n"
               "                %s[oi] = acc;\n"
               "            }\n",
               ix, v.kh, ix, v.kw, in[1].text, v.w, in[2].text, at(buf, &in[0], idx), out->text);
}

/* ---- softmax over the last axis, one row at a time ---- */

/* The rows of a tensor whose last axis has `cols` elements. */
static long last_axis_rows(Shape s, int *cols)
{
    *cols = s.rank ? s.dim[s.rank - 1] : 1;
    return shape_size(s) / *cols;
}

/* dx = y (dy - sum_j dy_j y_j), per row: softmax_grad(dy, y). */
int grad_softmax(Graph *g, int node, int dy, int k)
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
    const char *ix = count_type(shape_size(n->shape));
    if (n->value)
        buf_printf(b,
                   "        for (%s j = on; j < %d; j++)\n"
                   "            %s[j] = REAL_C(0.0);\n",
                   ix, cols, row);
}

/* Per row: its max, each exp(x - max) and their sum, then the quotients;
 * the same arithmetic as exp(x - m) / sum(exp(x - m)), in one pass over
 * rows that stay in cache. A constant x is first written into the row. */
void emit_softmax(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int cols;
    long rows = last_axis_rows(n->shape, &cols);
    char on[16];
    parallel_rows(b, rows, cols);
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++) {\n"
               "        real *srow = %s + (long)i * %d;\n",
               ix, rows, out->text, cols);
    seen_columns(b, n, cols, on, sizeof on);
    if (in[0].is_const)
        buf_printf(b,
                   "        for (%s j = 0; j < %s; j++)\n"
                   "            srow[j] = %s;\n"
                   "        const real *row = srow;\n",
                   ix, on, in[0].text);
    else
        buf_printf(b, "        const real *row = %s + (long)i * %d;\n", in[0].text, cols);
    buf_printf(b,
               "        const real mx = r_max_of(row, %s);\n"
               "        const real acc = r_exp_sum(srow, row, %s, mx);\n"
               "        for (%s j = 0; j < %s; j++)\n"
               "            srow[j] = srow[j] / acc;\n",
               on, on, ix, on);
    zero_unseen(b, n, cols, "srow");
    buf_printf(b, "    }\n");
}

/* softmax_grad(dy, y) = (diag(y) - y y^T) dy per row: symmetric in dy,
 * so its own adjoint; through y, du (dy - sum dy y) - dy sum du y. */
int grad_softmax_grad(Graph *g, int node, int du, int k)
{
    const Node *n = ir_at(g, node);
    int dy = n->in[0], y = n->in[1];
    if (k == 0)
        return ir_must(g,
                       &(Node){.op = OP_SOFTMAX_GRAD, .n_in = 2, .in = {du, y}, .value = n->value});
    Shape rows = shape_of(g, y);
    rows.dim[rows.rank - 1] = 1;
    int dot = ir_sum_to(g, ir_binary(g, OP_MUL, dy, y), rows);
    int udot = ir_sum_to(g, ir_binary(g, OP_MUL, du, y), rows);
    return ir_binary(g, OP_SUB, ir_binary(g, OP_MUL, du, ir_binary(g, OP_SUB, dy, dot)),
                     ir_binary(g, OP_MUL, dy, udot));
}

void emit_softmax_grad(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    const char *ix = op_count(n, in);
    int cols;
    long rows = last_axis_rows(n->shape, &cols);
    char idx[48], buf[96], dy[96], on[16];
    snprintf(idx, sizeof idx, "(long)i * %d + j", cols);
    snprintf(dy, sizeof dy, "%s", at(buf, &in[0], idx));
    parallel_rows(b, rows, cols);
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++) {\n"
               "        const real *srow = %s + (long)i * %d;\n"
               "        real *drow = %s + (long)i * %d;\n",
               ix, rows, in[1].text, cols, out->text, cols);
    seen_columns(b, n, cols, on, sizeof on);
    if (in[0].is_const)
        buf_printf(b, "        const real dot = %s * r_dot(srow, NULL, %s);\n", dy, on);
    else
        buf_printf(b, "        const real dot = r_dot(%s + (long)i * %d, srow, %s);\n", in[0].text,
                   cols, on);
    buf_printf(b,
               "        for (%s j = 0; j < %s; j++)\n"
               "            drow[j] = srow[j] * (%s - dot);\n",
               ix, on, dy);
    zero_unseen(b, n, cols, "drow");
    buf_printf(b, "    }\n");
}
