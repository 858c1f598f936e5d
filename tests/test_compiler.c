/*
 * test_compiler.c: the IR, shape rules, passes and front end, tested
 * through the compiler's own API (linked from build/libgradc.a).
 *
 * Golden tests keep each model and the IR it must give side by side.
 */
#include <check.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gradc.h"

static Shape shape2(int a, int b) { return (Shape){2, {a, b}}; }
static Shape shape1(int a) { return (Shape){1, {a}}; }

static int leaf(Graph *g, int op, const char *name, Shape s)
{
    return ir_must(g,
                   &(Node){.op = op, .name = name, .shape = s, .init = INIT_NORMAL, .init_b = 1});
}

/* ---- shapes ---- */

START_TEST(broadcast_shapes)
{
    Graph *g = ir_new();
    int x = leaf(g, OP_INPUT, "x", shape2(64, 10));
    int b = leaf(g, OP_PARAM, "b", shape1(10));
    int c = leaf(g, OP_PARAM, "c", shape2(64, 1));
    int s = ir_const(g, 2, (Shape){0});
    ck_assert(shape_eq(ir_at(g, ir_binary(g, OP_ADD, x, b))->shape, shape2(64, 10)));
    ck_assert(shape_eq(ir_at(g, ir_binary(g, OP_MUL, c, x))->shape, shape2(64, 10)));
    ck_assert(shape_eq(ir_at(g, ir_binary(g, OP_SUB, s, b))->shape, shape1(10)));
    int bad = leaf(g, OP_PARAM, "bad", shape1(3));
    ck_assert_int_eq(ir_node(g, &(Node){.op = OP_ADD, .n_in = 2, .in = {x, bad}}), -1);
    ck_assert_str_eq(g->error, "shapes do not broadcast: [64,10] and [3]");
    ir_free(g);
}
END_TEST

START_TEST(matmul_shapes)
{
    Graph *g = ir_new();
    int x = leaf(g, OP_INPUT, "x", shape2(64, 1000));
    int w = leaf(g, OP_PARAM, "w", shape2(100, 10));
    int v = leaf(g, OP_PARAM, "v", shape2(10, 1000));
    ck_assert_int_eq(ir_node(g, &(Node){.op = OP_MATMUL, .n_in = 2, .in = {x, w}}), -1);
    ck_assert_str_eq(g->error, "inner dimensions differ: [64,1000] x [100,10]");
    /* x v^T: [64,1000] x [1000,10] */
    ck_assert(shape_eq(ir_at(g, ir_matmul(g, x, false, v, true))->shape, shape2(64, 10)));
    /* x^T x: [1000,64] x [64,1000] */
    ck_assert(shape_eq(ir_at(g, ir_matmul(g, x, true, x, false))->shape, shape2(1000, 1000)));
    ir_free(g);
}
END_TEST

START_TEST(sum_to_undoes_broadcast)
{
    Graph *g = ir_new();
    int dy = leaf(g, OP_INPUT, "dy", (Shape){3, {4, 5, 6}});
    ck_assert(shape_eq(ir_at(g, ir_sum_to(g, dy, shape1(6)))->shape, shape1(6)));
    ck_assert(shape_eq(ir_at(g, ir_sum_to(g, dy, shape2(5, 1)))->shape, shape2(5, 1)));
    ck_assert(shape_eq(ir_at(g, ir_sum_to(g, dy, (Shape){0}))->shape, (Shape){0}));
    ck_assert_int_eq(ir_sum_to(g, dy, (Shape){3, {4, 5, 6}}), dy);
    ir_free(g);
}
END_TEST

START_TEST(int_labels_refuse_arithmetic)
{
    Graph *g = ir_new();
    int y = ir_must(g, &(Node){.op = OP_INPUT, .name = "y", .shape = shape1(8), .dtype = DT_I32});
    int x = leaf(g, OP_INPUT, "x", shape1(8));
    ck_assert_int_eq(ir_node(g, &(Node){.op = OP_ADD, .n_in = 2, .in = {x, y}}), -1);
    ck_assert_ptr_nonnull(strstr(g->error, "int32 tensor 'y' holds labels"));
    ir_free(g);
}
END_TEST

START_TEST(cse_merges_equal_nodes)
{
    Graph *g = ir_new();
    int x = leaf(g, OP_INPUT, "x", shape1(8));
    ck_assert_int_ne(ir_unary(g, OP_EXP, x), ir_unary(g, OP_EXP, x));
    g->cse = true;
    int a = ir_unary(g, OP_TANH, x);
    ck_assert_int_eq(ir_unary(g, OP_TANH, x), a);
    ck_assert_int_ne(ir_pow(g, x, 2), ir_pow(g, x, 3));
    ir_free(g);
}
END_TEST

/* ---- the front end and passes, through real model files ---- */

static char *tmpdir;

static void setup(void)
{
    tmpdir = strdup("/tmp/gradc-compiler-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    free(tmpdir);
    free_kept();
}

static const char *write_model(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The IR as `gradc print` shows it, after the passes up to `after`. */
static char *ir_text(Graph *g)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ir_print(g, f);
    fclose(f);
    /* Lines name the temporary folder; the golden text says DIR. */
    char *p;
    while ((p = strstr(text, tmpdir))) {
        size_t n = strlen(tmpdir);
        memcpy(p, "DIR", 3);
        memmove(p + 3, p + n, strlen(p + n) + 1);
    }
    return text;
}

/* The passes gradc compile runs, up to dce: what the C is made from. */
static Graph *compiled(const char *path, const char **defines, int n_defines)
{
    LoadOptions o = {.defines = defines, .n_defines = n_defines};
    Graph *g = compile_graph(path, &o, NULL, NULL);
    ck_assert_ptr_nonnull(g);
    return g;
}

static const char golden_model[] = "local x = input(\"x\", {4, 3})\n"
                                   "local w = param(\"w\", {3, 2}, randn())\n"
                                   "local h = tanh(x:matmul(w))\n"
                                   "return model { loss = sum(h * 1 + 0), outputs = { h = h } }\n";

static const char golden_ir[] =
    "model golden (batch 4)\n"
    "forward:\n"
    "  %0   = input \"x\"                           [4,3]        real  DIR/golden.lua:1\n"
    "  %1   = param \"w\"                           [3,2]        real  DIR/golden.lua:2\n"
    "  %2   = matmul %0, %1                       [4,2]        real  DIR/golden.lua:3\n"
    "  %3   = tanh %2                             [4,2]        real  DIR/golden.lua:3\n"
    "  %4   = const 1.0                           []           real  DIR/golden.lua:4\n"
    "  %5   = sum %3 over 1,2                     []           real  DIR/golden.lua:4\n"
    "backward:\n"
    "  %6   = pow %3 2.0                          [4,2]        real  DIR/golden.lua:3\n"
    "  %7   = sub %4, %6                          [4,2]        real  DIR/golden.lua:3\n"
    "  %8   = matmul %0, %7 (A^T B)               [3,2]        real  DIR/golden.lua:3\n"
    "roots:\n"
    "  loss %5\n"
    "  output \"h\" %3\n"
    "  param \"w\" %1  gradient %8\n";

/* The identities (h * 1 + 0, dy * 1, sums of a broadcast 1) all fold away,
 * no gradient is made for the input x, and tanh's 1 - y^2 shares the
 * constant 1 the model wrote. */
START_TEST(golden_ir_after_passes)
{
    Graph *g = compiled(write_model("golden.lua", golden_model), NULL, 0);
    char *text = ir_text(g);
    ck_assert_str_eq(text, golden_ir);
    free(text);
    ir_free(g);
}
END_TEST

static int count_op(Graph *g, int op, bool grad)
{
    int n = 0;
    for (int i = 0; i < g->n; i++)
        n += g->nodes[i].op == op && g->nodes[i].is_grad == grad;
    return n;
}

/* The seed network: the backward pass has the three products the notes
 * write (grad_w2, grad_h, grad_w1) and not a fourth for grad_x; its
 * transposes are BLAS flags, never nodes. */
START_TEST(seed_backward_is_the_notes)
{
    const char *d[] = {"batch=8", "d_in=20", "hidden=6"};
    Graph *g = compiled("models/seed_mlp.lua", d, 3);
    ck_assert_int_eq(g->batch, 8);
    ck_assert_int_eq(count_op(g, OP_MATMUL, false), 2);
    ck_assert_int_eq(count_op(g, OP_MATMUL, true), 3);
    ck_assert_int_eq(count_op(g, OP_TRANSPOSE, false) + count_op(g, OP_TRANSPOSE, true), 0);
    for (int i = 0; i < g->n_params; i++)
        ck_assert(shape_eq(g->nodes[g->params[i].grad].shape, g->nodes[g->params[i].node].shape));
    ir_free(g);
}
END_TEST

/* W:t() in the forward pass and its gradient's transpose both fold. */
START_TEST(transposes_fold_into_flags)
{
    Graph *g = compiled("models/norm_wx.lua", NULL, 0);
    ck_assert_int_eq(count_op(g, OP_TRANSPOSE, false) + count_op(g, OP_TRANSPOSE, true), 0);
    int gr = g->params[0].grad;
    ck_assert_int_eq(g->nodes[gr].op, OP_MATMUL);
    ck_assert(g->nodes[gr].trans_a); /* dW = dq^T x */
    ir_free(g);
}
END_TEST

/* Attention's scale 1/sqrt(d) is the alpha of the products next to it,
 * forward and backward, and its mask part of the softmax: no loop
 * multiplies scores by a constant, none masks them. Its heads are read and
 * written in place in the rows of q, k, v and the output: no permute is
 * left, and each of the six products of heads reads or writes some. */
START_TEST(attention_folds_scale_and_mask)
{
    const char *d[] = {"batch=2", "context=8", "width=16", "layers=1"};
    Graph *g = compiled("models/gpt.lua", d, 4);
    ck_assert_int_eq(count_op(g, OP_CAUSAL, false) + count_op(g, OP_CAUSAL, true), 0);
    int scaled = 0, softmaxes = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_MUL)
            for (int k = 0; k < 2; k++)
                ck_assert(g->nodes[n->in[k]].op != OP_MATMUL ||
                          g->nodes[n->in[1 - k]].op != OP_CONST);
        if (n->op == OP_MATMUL && n->value != 1) {
            ck_assert_double_eq_tol(n->value, 1 / sqrt(16.0 / 4), 1e-15);
            scaled++;
        }
        if (n->op == OP_SOFTMAX || n->op == OP_SOFTMAX_GRAD) {
            ck_assert_double_eq(n->value, 1);
            softmaxes++;
        }
    }
    ck_assert_int_eq(scaled, 3); /* scores; the gradients of q and k */
    ck_assert_int_eq(softmaxes, 2);
    ck_assert_int_eq(count_op(g, OP_PERMUTE, false) + count_op(g, OP_PERMUTE, true), 0);
    int in_place = 0;
    for (int i = 0; i < g->n; i++)
        in_place += g->nodes[i].op == OP_MATMUL &&
                    (g->nodes[i].axes[0] || g->nodes[i].axes[1] || g->nodes[i].axes[2]);
    ck_assert_int_eq(in_place, 6);
    ir_free(g);
}
END_TEST

/* The memory plan, checked from the outside on every model (at its test
 * config, as generated/ has it): two values
 * whose lifetimes meet never share a place, and the arena is at most 1.2x
 * the least the schedule needs, places being rounded to 64 bytes (16
 * floats). A value lives from its group's step to the
 * last step that reads it, or to the end when it is read after the step
 * (loss, outputs, gradients, the buffers' next values). */
static void check_plan(const char *path)
{
    LoadOptions o = {.test_config = true};
    Graph *g = compile_graph(path, &o, NULL, NULL);
    ck_assert_msg(g, "%s does not compile", path);
    Fusion f = fuse(g);
    Plan p = plan(g, &f);
    int *pos = malloc(g->n * sizeof *pos), *last = malloc(g->n * sizeof *last),
        *base = malloc(g->n * sizeof *base), *step = calloc(g->n, sizeof *step),
        *to = malloc(g->n * sizeof *to);
    for (int s = 0; s < p.n_order; s++)
        step[p.order[s]] = s;
    /* The groups sharing a loop run together, over all their steps: each
     * is written from the loop's first step, read until its last. */
    for (int i = 0; i < g->n; i++) {
        int r = f.group[i], lead = f.loop[r] >= 0 ? f.loop[r] : r;
        pos[i] = to[i] = step[lead];
        for (int j = lead; j >= 0; j = f.next_in_loop[j])
            to[i] = step[j] > to[i] ? step[j] : to[i];
    }
    for (int i = 0; i < g->n; i++) {
        base[i] = i;
        while (op_info[g->nodes[base[i]].op].kind == ALIAS)
            base[i] = g->nodes[base[i]].in[0];
        last[i] = to[i];
    }
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int x = base[g->nodes[i].in[k]];
            if (last[x] < to[i])
                last[x] = to[i];
        }
    last[base[g->loss]] = p.n_order;
    for (int i = 0; i < g->n_outputs; i++)
        last[base[g->outputs[i].node]] = p.n_order;
    for (int i = 0; i < g->n_params; i++)
        last[base[g->params[i].grad]] = p.n_order;
    for (int i = 0; i < g->n_buffers; i++)
        last[base[g->buffers[i].next]] = p.n_order;
    int *vals = malloc(g->n * sizeof *vals), n = 0;
    for (int i = 0; i < g->n; i++)
        if (f.stored[i] && base[i] == i && p.offset[i] >= p.fixed_size &&
            g->nodes[i].dtype == DT_REAL)
            vals[n++] = i;
    long peak = 0;
    for (int s = 0; s < p.n_order; s++) {
        long live = 0;
        for (int a = 0; a < n; a++)
            if (pos[vals[a]] <= s && s <= last[vals[a]])
                live += (shape_size(g->nodes[vals[a]].shape) + 15) / 16 * 16;
        peak = live > peak ? live : peak;
    }
    for (int a = 0; a < n; a++) {
        int x = vals[a];
        ck_assert_int_le(p.offset[x] + shape_size(g->nodes[x].shape), p.arena_size);
        for (int b = a + 1; b < n; b++) {
            int y = vals[b];
            bool meet = pos[x] <= last[y] && pos[y] <= last[x];
            bool share = p.offset[x] < p.offset[y] + shape_size(g->nodes[y].shape) &&
                         p.offset[y] < p.offset[x] + shape_size(g->nodes[x].shape);
            /* An op adding into a sum that dies at it may take the sum's
             * place. */
            const Node *later = &g->nodes[pos[x] > pos[y] ? x : y];
            int earlier = pos[x] > pos[y] ? y : x;
            int k = accumulated_input(later);
            bool in_place = k >= 0 && base[later->in[k]] == earlier &&
                            last[earlier] == pos[later->id] &&
                            p.offset[x] == p.offset[y];
            if (meet && share && !in_place)
                ck_abort_msg("%s: %%%d and %%%d are alive together in one place", path, x, y);
        }
    }
    ck_assert_msg(p.arena_size <= 1.2 * (p.fixed_size + peak), "%s: arena %ld, minimum %ld", path,
                  p.arena_size, p.fixed_size + peak);
    free(pos);
    free(step);
    free(to);
    free(last);
    free(base);
    free(vals);
    plan_free(&p);
    fusion_free(&f);
    ir_free(g);
}

START_TEST(plan_shares_only_dead_places)
{
    glob_t models;
    ck_assert_int_eq(glob("models/*.lua", 0, NULL, &models), 0);
    ck_assert_int_ge(models.gl_pathc, 8);
    for (size_t i = 0; i < models.gl_pathc; i++)
        check_plan(models.gl_pathv[i]);
    check_plan("tests/batch_norm_model.lua");
    globfree(&models);
}
END_TEST

/* The loss and its gradient share one loop, or need none: the seed's
 * gradient 2 (y_pred - y) is the alpha of the two products that read
 * y_pred - y, which the loop summing its squares stores; iris's
 * cross_entropy and its gradient, one pass over the rows. */
START_TEST(loss_and_gradient_share_a_loop)
{
    Graph *g = compiled("models/seed_mlp.lua", NULL, 0);
    Fusion f = fuse(g);
    int sum = -1, sub = -1, products = 0;
    for (int i = 0; i < g->n; i++) {
        if (g->nodes[i].op == OP_SUM && !g->nodes[i].is_grad)
            sum = i;
        if (g->nodes[i].op == OP_SUB && !g->nodes[i].is_grad)
            sub = i;
    }
    ck_assert_int_ge(sum, 0);
    ck_assert_int_ge(sub, 0);
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].is_grad && g->nodes[i].in[k] == sub) {
                ck_assert_int_eq(g->nodes[i].op, OP_MATMUL);
                ck_assert_double_eq(g->nodes[i].value, 2);
                products++;
            }
    ck_assert_int_eq(products, 2);
    ck_assert(f.stored[sub] && f.stored[sum]);
    ck_assert_int_ge(f.loop[sum], 0);
    ck_assert_int_eq(f.loop[sub], f.loop[sum]);
    fusion_free(&f);
    ir_free(g);

    g = compiled("models/iris.lua", NULL, 0);
    f = fuse(g);
    int xent = -1, xent_grad = -1;
    for (int i = 0; i < g->n; i++) {
        xent = g->nodes[i].op == OP_XENT ? i : xent;
        xent_grad = g->nodes[i].op == OP_XENT_GRAD ? i : xent_grad;
    }
    ck_assert_int_ge(xent_grad, 0);
    ck_assert_int_eq(f.loop[xent], xent);
    ck_assert_int_eq(f.next_in_loop[xent], xent_grad);
    ck_assert_int_eq(f.loop[xent_grad], xent);
    fusion_free(&f);
    ir_free(g);
}
END_TEST

/* The LSTM's input products, x_t W for every step t, are one product of
 * all the steps' rows; the recurrent ones, h_t U, stay one per step. */
START_TEST(batch_merges_step_products)
{
    const char *d[] = {"batch=2", "steps=5", "hidden=3"};
    Graph *g = compiled("models/char_lstm.lua", d, 3);
    int w = -1, u = -1, by_w = 0, by_u = 0;
    for (int i = 0; i < g->n_params; i++) {
        if (!strcmp(g->nodes[g->params[i].node].name, "lstm_w"))
            w = g->params[i].node;
        if (!strcmp(g->nodes[g->params[i].node].name, "lstm_u"))
            u = g->params[i].node;
    }
    for (int i = 0; i < g->n; i++)
        if ((g->nodes[i].op == OP_MATMUL || g->nodes[i].op == OP_MATMUL_ADD) &&
            !g->nodes[i].is_grad) {
            by_w += g->nodes[i].in[1] == w;
            by_u += g->nodes[i].in[1] == u;
        }
    ck_assert_int_eq(by_w, 1);
    ck_assert_int_eq(by_u, 4); /* no h before the first step */
    ir_free(g);
}
END_TEST

/* GELU's x/2 and 1 + tanh(...) are recomputed where the backward reads
 * them: of the forward values, the backward reads only the product's
 * output (x), the tanh and the GELU itself. */
START_TEST(remat_keeps_only_what_backward_needs)
{
    const char *path = write_model("gelu.lua", "local x = input(\"x\", {4, 8})\n"
                                               "local w = param(\"w\", {8, 16}, randn())\n"
                                               "local h = gelu(x:matmul(w))\n"
                                               "return model { loss = sum(h * h) }\n");
    LoadOptions o = {0};
    PassStats st;
    Graph *g = compile_graph(path, &o, NULL, &st);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(st.recomputed, 2);
    int kept = 0, product_kept = 0, tanh_kept = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        bool read_back = false;
        for (int j = 0; j < g->n; j++)
            for (int k = 0; k < g->nodes[j].n_in; k++)
                read_back |= g->nodes[j].is_grad && g->nodes[j].in[k] == i;
        if (n->is_grad || !read_back || op_info[n->op].kind == LEAF)
            continue;
        kept++;
        product_kept += n->op == OP_MATMUL;
        tanh_kept += n->op == OP_TANH;
    }
    ck_assert_int_eq(kept, 3);
    ck_assert_int_eq(product_kept, 1);
    ck_assert_int_eq(tanh_kept, 1);
    ir_free(g);

    /* A value its readers broadcast (one per row, read by each element)
     * would be stored again, not inlined: it is kept. */
    path = write_model("rows.lua", "local x = input(\"x\", {4, 8})\n"
                                   "local w = param(\"w\", {8, 16}, randn())\n"
                                   "local h = tanh(x:matmul(w))\n"
                                   "local q = rsqrt(sum(h * h, 2, true) + 1) * 0.5\n"
                                   "return model { loss = sum((q * h) * (q * h)) }\n");
    g = compile_graph(path, &o, NULL, &st);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(st.recomputed, 0);
    ir_free(g);
}
END_TEST

/* A loop that reads a transposed view walks the axis its read is in
 * order along innermost (its stores strided); a loop that reads nothing
 * across (a broadcast) keeps its order, its stores in order. */
START_TEST(loops_read_in_order)
{
    const char *path =
        write_model("order.lua", "local x = input(\"x\", {8, 16})\n"
                                 "local w = param(\"w\", {8, 4}, randn())\n"
                                 "local t = relu(transpose(x))\n"
                                 "local b = broadcast_to(sum(t, 2, true), {16, 8})\n"
                                 "return model { loss = sum((b * t):matmul(w)) + sum(b:matmul(w)),\n"
                                 "               outputs = { t = t } }\n");
    LoadOptions o = {0};
    OutFile out[N_OUT_FILES];
    ck_assert_int_eq(compile_files(path, &o, out), 0);
    const char *c = out[1].text.data;
    ck_assert_msg(strstr(c, "const real t2 = x[i * 16 + j];\n            t[i + j * 8] = "),
                  "relu(transpose(x)) does not read x in order");
    ck_assert_msg(strstr(c, "b[i * 8 + j] = b_sum[i];"), "the broadcast does not store in order");
    free_files(out, N_OUT_FILES);
}
END_TEST

/* A sum along rows of 32 (a multiple of 16) takes 16 partial sums in
 * turn, a fixed order that vectorizes; one along rows of 20 runs one sum. */
START_TEST(row_sums_in_parts)
{
    const char *path =
        write_model("parts.lua", "local x = input(\"x\", {4, 32})\n"
                                 "local y = input(\"y\", {4, 20})\n"
                                 "local w = param(\"w\", {4}, randn())\n"
                                 "return model { loss = sum((sum(x * x, 2) + sum(y * y, 2)) * w) }\n");
    LoadOptions o = {0};
    OutFile out[N_OUT_FILES];
    ck_assert_int_eq(compile_files(path, &o, out), 0);
    const char *c = out[1].text.data;
    ck_assert_msg(strstr(c, "for (int o = 0; o < 32; o += 16)\n"
                            "            for (int j = o; j < o + 16; j++) {\n"),
                  "%s", c);
    ck_assert_msg(strstr(c, "part[j - o] += t"), "%s", c);
    ck_assert_msg(strstr(c, "for (int j = 0; j < 20; j++) {\n"), "%s", c);
    free_files(out, N_OUT_FILES);
}
END_TEST

/* The gradient of a tensor cut into slices: where the slices cover it,
 * each window is stored into the sum, which nothing zeroes first; where
 * they leave a gap, the sum is zeroed and each window added. */
START_TEST(windows_that_tile_are_stored)
{
    static const char *const second[] = {"slice(2, 3, 5)", "slice(2, 4, 5)"};
    for (int gap = 0; gap < 2; gap++) {
        char text[512];
        snprintf(text, sizeof text,
                 "local x = input(\"x\", {4, 5})\n"
                 "local w = param(\"w\", {4, 5}, randn())\n"
                 "return model { loss = sum(w:slice(2, 1, 2) * x:slice(2, 1, 2)) + sum(w:%s * x:%s) }\n",
                 second[gap], second[gap]);
        const char *path = write_model("cut.lua", text);
        Graph *g = compiled(path, NULL, 0);
        const Node *dw = &g->nodes[g->params[0].grad];
        ck_assert_int_eq(dw->op, OP_PAD_ADD);
        ck_assert_int_eq(dw->value, !gap);
        ck_assert_int_eq(g->nodes[dw->in[0]].op, OP_PAD);
        ck_assert_int_eq(g->nodes[dw->in[0]].value, !gap);
        ir_free(g);
        LoadOptions o = {0};
        OutFile out[N_OUT_FILES];
        ck_assert_int_eq(compile_files(path, &o, out), 0);
        const char *c = out[1].text.data;
        ck_assert_msg(!strstr(c, "memset(d_w_pad") == !gap, "%s", c);
        ck_assert_msg(strstr(c, gap ? "] += d_" : "] = d_"), "%s", c);
        free_files(out, N_OUT_FILES);
    }
}
END_TEST

START_TEST(dce_drops_unused)
{
    const char *path = write_model("dead.lua", "local x = input(\"x\", {2, 2})\n"
                                               "local w = param(\"w\", {2, 2}, randn())\n"
                                               "local unused = exp(x):matmul(w)\n"
                                               "return model { loss = sum(x * w) }\n");
    Graph *g = compiled(path, NULL, 0);
    ck_assert_int_eq(count_op(g, OP_EXP, false), 0);
    ck_assert_int_eq(count_op(g, OP_MATMUL, false), 0);
    ir_free(g);
}
END_TEST

START_TEST(config_and_import)
{
    char lib[600];
    snprintf(lib, sizeof lib, "%s/lib", tmpdir);
    ck_assert_int_eq(mkdir(lib, 0777), 0);
    write_model("lib/twice.lua", "return function(x) return x + x end\n");
    const char *path = write_model("uses.lua", "local twice = import(\"twice\")\n"
                                               "local x = input(\"x\", {config.n, 3})\n"
                                               "local w = param(\"w\", {3}, ones())\n"
                                               "return model { loss = sum(twice(x * w)) }\n");
    const char *d[] = {"n=5"};
    Graph *g = compiled(path, d, 1);
    ck_assert_int_eq(g->batch, 5);
    /* The add came from the module, and says so. */
    int adds = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_ADD && !g->nodes[i].is_grad) {
            ck_assert_ptr_nonnull(strstr(g->nodes[i].loc.file, "lib/twice.lua"));
            adds++;
        }
    ck_assert_int_eq(adds, 1);
    ir_free(g);
}
END_TEST

/* --test-config takes the -D of the file's `-- test config:` line (both
 * spellings), the command line's after them, which win; without the flag
 * the line is a comment. (test_cli.c has the lines it refuses.) */
START_TEST(test_config_line)
{
    const char *path =
        write_model("sized.lua", "-- test config: -D n=3 -Dm=4\n"
                                 "local x = input(\"x\", {config.n or 5, config.m or 6})\n"
                                 "local w = param(\"w\", {x.shape[2]}, ones())\n"
                                 "return model { loss = sum(x * w) }\n");
    LoadOptions o = {.test_config = true};
    Graph *g = load_model(path, &o);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->batch, 3);
    ck_assert_int_eq(ir_at(g, g->params[0].node)->shape.dim[0], 4);
    ir_free(g);
    const char *d[] = {"n=7"};
    o = (LoadOptions){.test_config = true, .defines = d, .n_defines = 1};
    g = load_model(path, &o);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->batch, 7);
    ck_assert_int_eq(ir_at(g, g->params[0].node)->shape.dim[0], 4);
    ir_free(g);
    o = (LoadOptions){0};
    g = load_model(path, &o);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->batch, 5);
    ck_assert_int_eq(ir_at(g, g->params[0].node)->shape.dim[0], 6);
    ir_free(g);
}
END_TEST

START_TEST(lua_locals_name_nodes)
{
    const char *path = write_model("named.lua", "local x = input(\"x\", {2, 3})\n"
                                                "local w = param(\"w\", {3, 3}, randn())\n"
                                                "local hidden = sigmoid(x:matmul(w))\n"
                                                "return model { loss = sum(hidden) }\n");
    LoadOptions o = {0};
    Graph *g = load_model(path, &o);
    ck_assert_ptr_nonnull(g);
    bool found = false;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_SIGMOID) {
            ck_assert_str_eq(g->nodes[i].var, "hidden");
            found = true;
        }
    ck_assert(found);
    ir_free(g);
}
END_TEST

/* The C's names come from the model: a module's values carry its name
 * (a local, and what it returns), a composite's parts the composite's
 * value's (layer_norm takes its gamma's name), the matmul a view shows the
 * view's local, a gradient d_ and its value's, and a number only where a
 * name is reused (the local h of the loop). */
START_TEST(names_come_from_the_model)
{
    const char *path = write_model(
        "names.lua", "local function dense(x, n, name)\n"
                     "  local w = param(name .. \"_w\", {x.shape[2], n}, randn())\n"
                     "  local y = x:matmul(w)\n"
                     "  return relu(y)\n"
                     "end\n"
                     "local x = input(\"x\", {2, 3})\n"
                     "local g = param(\"ln1_g\", {4}, ones())\n"
                     "local b = param(\"ln1_b\", {4}, zeros())\n"
                     "local q = x:matmul(param(\"q\", {3, 4}, randn())):reshape({2, 2, 2})\n"
                     "local h = x\n"
                     "for i = 1, 2 do h = tanh(h:matmul(param(\"w\" .. i, {3, 3}, randn()))) end\n"
                     "local n = layer_norm(dense(h, 4, \"fc\"), g, b)\n"
                     "return model { loss = sum(n * n) + sum(q * q) }\n");
    LoadOptions o = {0};
    OutFile out[N_OUT_FILES];
    ck_assert_int_eq(compile_files(path, &o, out), 0);
    const char *c = out[1].text.data;
    static const char *const names[] = {
        "*const fc_y =",   "*const fc =",       "*const d_fc_y =", "*const n_centered =",
        "*const n_rstd =", "*const q_matmul =", "*const h =",      "*const h_2 =",
        "*const d_h =",    "*const d_h_2 ="};
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        ck_assert_msg(strstr(c, names[i]), "no %s in the C", names[i]);
    ck_assert_msg(!strstr(c, "q_matmul_2") && !strstr(c, "n_mean_2"), "a number, no name reused");
    free_files(out, N_OUT_FILES);
    path = write_model("norm.lua", "local x = input(\"x\", {2, 3})\n"
                                   "local g = param(\"ln1_g\", {3}, ones())\n"
                                   "local b = param(\"ln1_b\", {3}, zeros())\n"
                                   "return model { loss = sum(layer_norm(x, g, b)^2) }\n");
    ck_assert_int_eq(compile_files(path, &o, out), 0);
    c = out[1].text.data;
    ck_assert_msg(strstr(c, "*const ln1_mean =") && strstr(c, "*const ln1_rstd ="),
                  "layer_norm's parts are not named after ln1_g");
    free_files(out, N_OUT_FILES);
}
END_TEST

START_TEST(labels_learn_their_range)
{
    Graph *g = compiled("models/mlp3.lua", NULL, 0);
    int labels = g->inputs[1];
    ck_assert_int_eq(g->nodes[labels].dtype, DT_I32);
    ck_assert_int_eq(g->nodes[labels].classes, 10);
    ir_free(g);
}
END_TEST

/* Errors are tested through the command line in test_cli.c; here, that
 * the front end refuses without leaving a graph, with its one line on
 * stderr (caught, so a passing run prints no error). */
START_TEST(sandbox_has_no_os)
{
    const char *path = write_model("escape.lua", "os.execute('true')\n");
    LoadOptions o = {0};
    FILE *err = tmpfile();
    ck_assert_ptr_nonnull(err);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(err), 2);
    Graph *g = load_model(path, &o);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_ptr_null(g);
    char line[512] = "";
    rewind(err);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, err));
    fclose(err);
    ck_assert_msg(strstr(line, "escape.lua:1: 'os' is not defined"), "%s", line);
}
END_TEST

static Suite *compiler_suite(void)
{
    Suite *s = suite_create("compiler");
    TCase *shapes = tcase_create("shapes");
    tcase_add_test(shapes, broadcast_shapes);
    tcase_add_test(shapes, matmul_shapes);
    tcase_add_test(shapes, sum_to_undoes_broadcast);
    tcase_add_test(shapes, int_labels_refuse_arithmetic);
    tcase_add_test(shapes, cse_merges_equal_nodes);
    suite_add_tcase(s, shapes);
    TCase *passes = tcase_create("passes");
    tcase_add_checked_fixture(passes, setup, teardown);
    tcase_add_test(passes, golden_ir_after_passes);
    tcase_add_test(passes, seed_backward_is_the_notes);
    tcase_add_test(passes, transposes_fold_into_flags);
    tcase_add_test(passes, attention_folds_scale_and_mask);
    tcase_add_test(passes, row_sums_in_parts);
    tcase_add_test(passes, windows_that_tile_are_stored);
    tcase_add_test(passes, dce_drops_unused);
    tcase_add_test(passes, remat_keeps_only_what_backward_needs);
    tcase_add_test(passes, loops_read_in_order);
    tcase_add_test(passes, batch_merges_step_products);
    tcase_add_test(passes, plan_shares_only_dead_places);
    tcase_add_test(passes, loss_and_gradient_share_a_loop);
    tcase_add_test(passes, config_and_import);
    tcase_add_test(passes, test_config_line);
    tcase_add_test(passes, lua_locals_name_nodes);
    tcase_add_test(passes, names_come_from_the_model);
    tcase_add_test(passes, labels_learn_their_range);
    tcase_add_test(passes, sandbox_has_no_os);
    suite_add_tcase(s, passes);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(compiler_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
