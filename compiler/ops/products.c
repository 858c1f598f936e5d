/*
 * ops/products.c: matrix products, as BLAS calls (one, or a batch of them
 * over the leading axes), and the fused product plus addend.
 */
#include <string.h>
#include "ops.h"

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
const char *shape_matmul(Graph *g, Node *n, char *err, size_t len)
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
int grad_matmul(Graph *g, int node, int dy, int k)
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
    if (batch > 1 && (sb.rank > 2 || n->trans_a || batch * m > INT_MAX))
        return false; /* a loop of products, the BLAS counting rows in int */
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
    const char *ix = count_type((long)rows * cols);
    buf_printf(b,
               "    for (%s i = 0; i < %d; i += 16) /* tuned: a plain product is faster */\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            for (%s k = i; k < i + 16 && k < %d; k++)\n"
               "                %s[j * %d + k] = %s[k * %d + j];\n",
               ix, rows, ix, cols, ix, rows, out->scratch, rows, in[p->ta ? 0 : 1].text, cols);
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

/* Whether n is a batch [I, J] of products some of whose matrices are
 * stored with axes 1 and 2 swapped (attention's, one per example and
 * head). */
static bool is_head_batch(const Node *n)
{
    return (n->op == OP_MATMUL || n->op == OP_MATMUL_ADD) &&
           (n->axes[0] || n->axes[1] || n->axes[2]);
}

static bool is_causal_softmax(const Node *n)
{
    return (n->op == OP_SOFTMAX || n->op == OP_SOFTMAX_GRAD) && n->value == 1;
}

/* Whether every reader of node id reads only the columns up to each row
 * of its matrices: causal softmaxes, of it (softmax) or of their
 * gradient's dy (softmax_grad), and nothing outside reads it. */
static bool read_to_diagonal(Graph *g, int id)
{
    if (ir_is_root(g, id))
        return false;
    for (int r = id + 1; r < g->n; r++) {
        const Node *x = ir_at(g, r);
        for (int k = 0; k < x->n_in; k++)
            if (x->in[k] == id && (k != 0 || !is_causal_softmax(x)))
                return false;
    }
    return true;
}

bool head_product(Graph *g, int id, Product *p)
{
    const Node *n = ir_at(g, id);
    if (!is_head_batch(n))
        return false;
    Shape a = product_view(n, 0, ir_at(g, n->in[0])->shape), c = product_view(n, 2, n->shape);
    *p = (Product){.m = c.dim[2],
                   .n = c.dim[3],
                   .k = a.dim[3 - n->trans_a],
                   .ta = n->trans_a,
                   .tb = n->trans_b,
                   .count = c.dim[0] * c.dim[1]};
    if (!n->axes[0] && p->m == p->k && is_causal_softmax(ir_at(g, n->in[0])))
        p->tri |= TRI_A;
    if (!n->axes[2] && p->m == p->n && read_to_diagonal(g, id))
        p->tri |= TRI_C;
    return true;
}

/* Where the matrices of a batch [I, J] lie, as rt_layout: each from the
 * last, along I and along J, and its rows' stride. */
static void head_layout(char *at, size_t len, Shape s, bool swapped)
{
    if (swapped)
        snprintf(at, len, "(rt_layout){%ld, %d, %d}", (long)s.dim[1] * s.dim[2] * s.dim[3],
                 s.dim[3], s.dim[1] * s.dim[3]);
    else
        snprintf(at, len, "(rt_layout){%ld, %ld, %d}", (long)s.dim[1] * s.dim[2] * s.dim[3],
                 (long)s.dim[2] * s.dim[3], s.dim[3]);
}

/* A batch of head products: a loop over each batch axis, the BLAS reading
 * and writing each matrix in place with its row stride; or, tuned, one
 * call of runtime/gemm.c's kernel for the batch, which skips the
 * triangles the causal mask zeroes or no one reads. */
static void emit_head_products(Buf *b, const Node *n, const Operand *out, const Operand *in,
                               const char *alpha, const char *beta)
{
    Shape s[3] = {product_view(n, 0, in[0].shape), product_view(n, 1, in[1].shape),
                  product_view(n, 2, n->shape)};
    const char *buf[3] = {in[0].text, in[1].text, out->text};
    const char *ta = n->trans_a ? "CblasTrans" : "CblasNoTrans";
    const char *tb = n->trans_b ? "CblasTrans" : "CblasNoTrans";
    if (out->kernel) {
        char layout[3][64];
        for (int k = 0; k < 3; k++)
            head_layout(layout[k], sizeof layout[k], s[k], n->axes[k]);
        const char *tri[] = {"0", "RT_TRI_A", "RT_TRI_C", "RT_TRI_A | RT_TRI_C"};
        buf_printf(b,
                   "    r_heads(%d, %d, %s, %s, %d, %d, %d, %s,\n"
                   "            %s, %s,\n"
                   "            %s, %s,\n"
                   "            %s, %s, %s, %s);\n",
                   s[2].dim[0], s[2].dim[1], ta, tb, s[2].dim[2], s[2].dim[3],
                   s[0].dim[3 - n->trans_a], alpha, buf[0], layout[0], buf[1], layout[1], beta,
                   buf[2], layout[2], tri[out->tri & 3]);
        return;
    }
    char at[3][160];
    int ld[3];
    for (int k = 0; k < 3; k++)
        head_matrix(at[k], sizeof at[k], &ld[k], buf[k], s[k], n->axes[k]);
    const char *ix = op_count(n, in);
    buf_printf(b, "    RT_SHARED_PRODUCTS(2, %ld)\n",
               (long)s[2].dim[0] * s[2].dim[1] * s[2].dim[2] * s[2].dim[3] *
                   s[0].dim[3 - n->trans_a]);
    buf_printf(b,
               "    for (%s i = 0; i < %d; i++)\n"
               "        for (%s j = 0; j < %d; j++)\n"
               "            r_gemm(CblasRowMajor, %s, %s, %d, %d, %d,\n"
               "                   %s, %s, %d, %s, %d, %s,\n"
               "                   %s, %d);\n",
               ix, s[2].dim[0], ix, s[2].dim[1], ta, tb, s[2].dim[2], s[2].dim[3],
               s[0].dim[3 - n->trans_a], alpha, at[0], ld[0], at[1], ld[1], beta, at[2], ld[2]);
}

void emit_matmul(Buf *b, const Node *n, const Operand *out, const Operand *in)
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
    if (is_head_batch(n)) {
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
    if (out->kernel && batch * m <= INT_MAX) { /* tuned: runtime/gemm.c is faster */
        const char *form = n->trans_b ? "nt" : n->trans_a ? "tn" : "nn";
        buf_printf(b, "    r_gemm_%s(%ld, %d, %d, %s, %s, %d, %s, %d, %s, %s, %d);\n", form,
                   batch * m, nn, k, alpha, in[0].text, sa.dim[ra - 1], in[1].text, sb.dim[rb - 1],
                   beta, out->text, nn);
        return;
    }
    if (batch == 1 || (rb == 2 && !n->trans_a && batch * m <= INT_MAX)) {
        /* One product: a batch sharing B is one tall matrix of rows. */
        buf_printf(b,
                   "    r_gemm(CblasRowMajor, %s, %s, %ld, %d, %d,\n"
                   "           %s, %s, %d, %s, %d, %s, %s, %d);\n",
                   ta, tb, batch * m, nn, k, alpha, in[0].text, sa.dim[ra - 1], in[1].text,
                   sb.dim[rb - 1], beta, out->text, nn);
        return;
    }
    const char *ix = op_count(n, in);
    long step_a = ra > 2 ? (long)sa.dim[ra - 2] * sa.dim[ra - 1] : 0;
    long step_b = rb > 2 ? (long)sb.dim[rb - 2] * sb.dim[rb - 1] : 0;
    buf_printf(b, "    RT_SHARED_PRODUCTS(1, %ld)\n", batch * m * nn * k);
    buf_printf(b,
               "    for (%s i = 0; i < %ld; i++)\n"
               "        r_gemm(CblasRowMajor, %s, %s, %d, %d, %d,\n"
               "               %s, %s + i * %ld, %d, %s + i * %ld, %d, %s,\n"
               "               %s + i * %ld, %d);\n",
               ix, batch, ta, tb, m, nn, k, alpha, in[0].text, step_a, sa.dim[ra - 1], in[1].text,
               step_b, sb.dim[rb - 1], beta, out->text, (long)m * nn, nn);
}

/* matmul_add(a, b, c) = a b + c: made by simplify where a product is added
 * to a sum of others (a weight's gradient over the steps of a sequence),
 * so the product accumulates into the sum (BLAS beta = 1), in its place
 * when the plan lets it. Made after differentiation: no gradient rule. */
const char *shape_matmul_add(Graph *g, Node *n, char *err, size_t len)
{
    if (shape_matmul(g, n, err, len))
        return err;
    if (!shape_eq(shape_of(g, n->in[2]), n->shape)) {
        snprintf(err, len, "the addend must have the product's shape");
        return err;
    }
    return NULL;
}

void emit_matmul_add(Buf *b, const Node *n, const Operand *out, const Operand *in)
{
    if (!in[2].in_place)
        buf_printf(b, "    memcpy(%s, %s, %ld * sizeof *%s);\n", out->text, in[2].text,
                   shape_size(n->shape), out->text);
    Operand acc = *out;
    acc.beta = "REAL_C(1.0)";
    emit_matmul(b, n, &acc, in);
}
