/*
 * test_ops.c: every op's gradient rule, checked against central
 * differences on a tiny model compiled and run.
 *
 * Each case below is one Lua model body that defines `loss`. The test
 * writes it to a fresh folder with `return model{...}` appended, runs
 * `gradc compile`, builds the double gradient check (with the suite's own
 * compiler flags, so -Werror and the sanitizers apply to the generated C
 * too), and runs it with --tol 1e-7: docs/design.md's single-op threshold. The
 * check must exit 0 and print `max relative error X` with X <= 1e-7.
 *
 * Single-op cases follow docs/design.md: O(1) parameters and loss
 * sum(out * R), R an input of out's shape. The check draws inputs from
 * N(0,1) with its seed and holds them fixed, so R is a fixed random
 * weighting and every element of out's gradient is distinct. Only
 * parameters are checked, so an op's operands are parameters wherever
 * their gradient matters (and inputs where it is zero: gradc refuses a
 * parameter that would get no gradient). Every tensor has at most 64 elements, so the
 * check covers every element, not a sample. Bases of log, fractional and
 * negative powers, and divisors are drawn from uniform(0.5, 2).
 *
 * Every case runs second order (second_order()): its loss plus a random
 * weighting of its own gradient, so the check holds the gradient rules of
 * the gradient's ops to differences of the analytic gradient, kinks
 * skipped as at first order. That loss holds the case's own, whose
 * gradient the op's first-order rule still makes: a wrong rule fails the
 * same cases run this way as run as written (shown by mutating the rules
 * of tanh, matmul and softmax), so each case is compiled and checked once.
 * Its loss is also its one output, and J v of it (gradc's --jvp: forward
 * mode by transposing the walk, through every rule of the second-order
 * loss) is held to central differences of the loss along v.
 *
 * The last tests walk the op table (ops.def, by X-macro) and fail for an
 * op with no case, or with no gradient rule, so adding an op means adding
 * a row here too.
 */
#include <math.h>
#include <stdbool.h>
#include "test_util.h"

typedef struct {
    const char *op;   /* the op under test, as named in ops.def; or "chain" */
    const char *what; /* which variant, for messages */
    const char *body; /* Lua that defines `loss` */
} Case;

static const Case cases[] = {
    /* ---- add, sub, mul, div: same shapes, a [C] bias, a Lua number ---- */
    {"add", "same shape [4,3] + [4,3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((a + b) * R)\n"},
    {"add", "row broadcast [4,3] + [3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {3}, randn())\n"
     "local loss = sum((a + b) * R)\n"},
    {"add", "number + x and x + number",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((2.5 + a) * R) + sum((b + 0.5) * R)\n"},
    {"sub", "same shape [4,3] - [4,3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((a - b) * R)\n"},
    {"sub", "row broadcast [4,3] - [3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {3}, randn())\n"
     "local loss = sum((a - b) * R)\n"},
    {"sub", "number - x and x - number",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((1.5 - a) * R) + sum((b - 0.5) * R)\n"},
    {"mul", "same shape [4,3] * [4,3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((a * b) * R)\n"},
    {"mul", "row broadcast [3] * [4,3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((a * b) * R)\n"},
    {"mul", "column broadcast [4,3] * [4,1]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 1}, randn())\n"
     "local loss = sum((a * b) * R)\n"},
    {"mul", "number * x and x * number",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((3 * a) * R) + sum((b * 0.5) * R)\n"},
    {"div", "same shape [4,3] / [4,3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, uniform(0.5, 2))\n"
     "local loss = sum((a / b) * R)\n"},
    {"div", "row broadcast [4,3] / [3]",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {3}, uniform(0.5, 2))\n"
     "local loss = sum((a / b) * R)\n"},
    {"div", "number / x and x / number",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, uniform(0.5, 2))\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum((2 / a) * R) + sum((b / 4) * R)\n"},

    /* ---- unary ---- */
    {"neg", "-x",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(-w * R)\n"},
    {"pow", "x^2",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(w ^ 2 * R)\n"},
    {"pow", "x^3",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(w ^ 3 * R)\n"},
    {"pow", "x^0.5, x in [0.5, 2]",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, uniform(0.5, 2))\n"
     "local loss = sum(w ^ 0.5 * R)\n"},
    {"pow", "x^-1, x in [0.5, 2]",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, uniform(0.5, 2))\n"
     "local loss = sum(w ^ -1 * R)\n"},
    {"exp", "exp(x)",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(exp(w) * R)\n"},
    {"log", "log(x), x in [0.5, 2]",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, uniform(0.5, 2))\n"
     "local loss = sum(log(w) * R)\n"},
    {"sigmoid", "sigmoid(x)",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(sigmoid(w) * R)\n"},
    {"tanh", "tanh(x)",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(tanh(w) * R)\n"},
    /* relu's gradient is dy * step(x): this case covers step too. */
    {"relu", "relu(x), kinks skipped",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(relu(w) * R)\n"},

    /* ---- reductions; their gradient is a broadcast, covered here ---- */
    {"sum", "sum of everything",
     "local R = input(\"R\", {1})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(sum(w) * R)\n"},
    {"sum", "sum over axis 1",
     "local R = input(\"R\", {3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(sum(w, 1) * R)\n"},
    {"sum", "sum over axis 2",
     "local R = input(\"R\", {4})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(sum(w, 2) * R)\n"},
    {"sum", "sum over the middle axis of [2,3,4]",
     "local R = input(\"R\", {2, 4})\n"
     "local w = param(\"w\", {2, 3, 4}, randn())\n"
     "local loss = sum(sum(w, 2) * R)\n"},
    {"sum", "mean over axis 2 and of everything",
     "local R = input(\"R\", {4})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(mean(w, 2) * R) + mean(w) ^ 2\n"},

    /* ---- transpose and matmul ---- */
    {"transpose", "materialized: x:t() * R",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {3, 4}, randn())\n"
     "local loss = sum(w:t() * R)\n"},
    {"matmul", "a b, [4,3] x [3,5]",
     "local R = input(\"R\", {4, 5})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {3, 5}, randn())\n"
     "local loss = sum(a:matmul(b) * R)\n"},
    {"matmul", "a b^T, the transpose folded into BLAS",
     "local R = input(\"R\", {4, 5})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {5, 3}, randn())\n"
     "local loss = sum(a:matmul(b:t()) * R)\n"},
    {"matmul", "a^T b, the transpose folded into BLAS",
     "local R = input(\"R\", {4, 5})\n"
     "local a = param(\"a\", {3, 4}, randn())\n"
     "local b = param(\"b\", {3, 5}, randn())\n"
     "local loss = sum(matmul(transpose(a), b) * R)\n"},

    {"matmul_add", "a weight used twice: its gradient's second product accumulates (beta 1)",
     "local R = input(\"R\", {4, 5})\n"
     "local S = input(\"S\", {4, 5})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local w = param(\"w\", {3, 5}, randn())\n"
     "local loss = sum(a:matmul(w) * R) + sum(b:matmul(w) * S)\n"},

    {"pad_add", "two slices of one weight that cover it: the second window stored beside the first",
     "local R = input(\"R\", {4, 2, 3})\n"
     "local S = input(\"S\", {4, 3, 3})\n"
     "local w = param(\"w\", {4, 5, 3}, randn())\n"
     "local loss = sum(w:slice(2, 1, 2) * R) + sum(w:slice(2, 3, 5) * S)\n"},
    {"pad_add", "two slices that leave a gap: the sum is zeroed first, the windows added",
     "local R = input(\"R\", {4, 2, 3})\n"
     "local S = input(\"S\", {4, 2, 3})\n"
     "local w = param(\"w\", {4, 5, 3}, randn())\n"
     "local loss = sum(w:slice(2, 1, 2) * R) + sum(w:slice(2, 4, 5) * S)\n"},

    /* ---- row losses; their _grad ops are covered here ---- */
    {"hinge_loss", "per-row hinge, kinks skipped",
     "local R = input(\"R\", {4})\n"
     "local labels = input(\"labels\", {4}, \"int32\")\n"
     "local s = param(\"s\", {4, 5}, randn())\n"
     "local loss = sum(hinge_loss(s, labels) * R)\n"},
    {"cross_entropy", "per-row softmax cross-entropy",
     "local R = input(\"R\", {4})\n"
     "local labels = input(\"labels\", {4}, \"int32\")\n"
     "local z = param(\"z\", {4, 5}, randn())\n"
     "local loss = sum(cross_entropy(z, labels) * R)\n"},
    {"cross_entropy", "rows of 37 classes: two vectors of 16 and 5 left (rt_real.h's row sums)",
     "local R = input(\"R\", {3})\n"
     "local labels = input(\"labels\", {3}, \"int32\")\n"
     "local z = param(\"z\", {3, 37}, randn())\n"
     "local loss = sum(cross_entropy(z, labels) * R)\n"},

    /* ---- more elementwise ops; comparisons and masks have zero gradients ---- */
    {"sqrt", "sqrt on (0.5, 2)",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, uniform(0.5, 2))\n"
     "local loss = sum(sqrt(a) * R)\n"},
    {"rsqrt", "rsqrt on (0.5, 2)",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, uniform(0.5, 2))\n"
     "local loss = sum(rsqrt(a) * R)\n"},
    {"abs", "abs, kinks skipped",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(abs(a) * R)\n"},
    {"sign", "sign(a) * a, a flat mask times a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(sign(a) * a * R)\n"},
    {"softplus", "softplus",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(softplus(a * 3) * R)\n"},
    {"silu", "silu(x) and x:silu()",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(silu(a * 3) * R) + sum(a:silu() * R)\n"},
    {"log1p", "log1p(x), x in [-0.5, 2], and of a number",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, uniform(-0.5, 2))\n"
     "local loss = sum(log1p(w) * R) * log1p(1e-3) * 1000\n"},
    {"leaky_relu", "leaky_relu with alpha 0.1",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(leaky_relu(a, 0.1) * R)\n"},
    {"maximum", "maximum of two params and of a number",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {3}, randn())\n"
     "local loss = sum(maximum(a, b) * R) + sum(maximum(a, 0.2) * R)\n"},
    {"minimum", "minimum of two params",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {4, 3}, randn())\n"
     "local loss = sum(minimum(a, b) * R)\n"},
    {"gt", "gt as a mask on a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = input(\"b\", {4, 3})\n"
     "local loss = sum(gt(a, b) * a * R)\n"},
    {"ge", "ge as a mask on a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = input(\"b\", {4, 3})\n"
     "local loss = sum(ge(a, b) * a * R)\n"},
    {"lt", "lt as a mask on a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = input(\"b\", {4, 3})\n"
     "local loss = sum(lt(a, b) * a * R)\n"},
    {"le", "le as a mask on a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = input(\"b\", {4, 3})\n"
     "local loss = sum(le(a, b) * a * R)\n"},
    {"eq", "eq as a mask on a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = input(\"b\", {4, 3})\n"
     "local loss = sum(eq(a, b) * a * R)\n"},
    {"ne", "ne as a mask on a",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = input(\"b\", {4, 3})\n"
     "local loss = sum(ne(a, b) * a * R)\n"},
    {"where", "where(mask, a, b) with a broadcast b",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local b = param(\"b\", {3}, randn())\n"
     "local m = input(\"m\", {4, 3})\n"
     "local loss = sum(where(gt(m, 0), a, b) * R)\n"},
    {"chain", "gelu, the tanh form",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(gelu(a) * R)\n"},
    {"chain", "clamp(a, -0.5, 0.5)",
     "local R = input(\"R\", {4, 3})\n"
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local loss = sum(clamp(a, -0.5, 0.5) * R)\n"},
    /* ---- reductions over any axes, with keepdims ---- */
    {"max", "max over axis 2, over {1, 3} kept, and over all",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 4})\n"
     "local loss = sum(max(a, 2) * R) + sum(max(a, {1, 3}, true)^2) + max(a)\n"},
    {"min", "min over axis -1 and over all",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3})\n"
     "local loss = sum(min(a, -1) * R) + min(a)\n"},
    {"argmax", "argmax along the last axis, as a mask",
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local R = input(\"R\", {4})\n"
     "local loss = sum(eq(argmax(a), 1) * sum(a, 2) * R)\n"},
    {"sum", "sum over {1, 3} with keepdims",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 4})\n"
     "local loss = sum(sum(a * R, {1, 3}, true)^2)\n"},
    {"chain", "mean over axis 3 with keepdims",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 1})\n"
     "local loss = sum(mean(a, 3, true) * R)\n"},
    {"chain", "logsumexp over the last axis",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3})\n"
     "local loss = sum(logsumexp(a, -1) * R)\n"},
    {"chain", "variance over {1, 3}",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {3})\n"
     "local loss = sum(variance(a, {1, 3}) * R)\n"},
    /* ---- batched products ---- */
    {"matmul", "a batch times a shared matrix, and its transpose",
     "local x = param(\"x\", {2, 3, 4}, randn())\n"
     "local w = param(\"w\", {4, 5}, randn())\n"
     "local v = param(\"v\", {5, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 5})\n"
     "local loss = sum(x:matmul(w) * R) + sum(matmul(x, v:t()) * R)\n"},
    {"matmul", "batch by batch, one side transposed per matrix",
     "local q = param(\"q\", {2, 4, 3}, randn())\n"
     "local y = param(\"y\", {2, 4, 5}, randn())\n"
     "local R = input(\"R\", {2, 3, 5})\n"
     "local loss = sum(matmul(transpose(q, 2, 3), y) * R)\n"},
    {"matmul", "a shared matrix times a batch",
     "local a = param(\"a\", {3, 4}, randn())\n"
     "local y = param(\"y\", {2, 4, 5}, randn())\n"
     "local R = input(\"R\", {2, 3, 5})\n"
     "local loss = sum(matmul(a, y) * R)\n"},
    /* ---- shapes ---- */
    {"permute", "permute {3, 1, 2}",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {4, 2, 3})\n"
     "local loss = sum(a:permute({3, 1, 2}) * R)\n"},
    {"transpose", "transpose of two axes of a rank-3 tensor",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 4, 3})\n"
     "local loss = sum(transpose(a, 2, 3) * R)\n"},
    {"slice", "slice of the last axis, from the end",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 2})\n"
     "local loss = sum(a:slice(3, -2, -1) * R)\n"},
    {"pad", "pad before and after an axis",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 6, 4})\n"
     "local loss = sum(pad(a, 2, 1, 2) * R)\n"},
    {"reshape", "reshape with -1, and flatten",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 12})\n"
     "local S = input(\"S\", {2, 4, 3})\n"
     "local loss = sum(a:flatten() * R) + sum(a:reshape({2, 4, -1}) * S)\n"},
    {"one_hot", "one_hot labels weighting a",
     "local a = param(\"a\", {4, 3}, randn())\n"
     "local y = input(\"y\", {4}, \"int32\")\n"
     "local loss = sum(one_hot(y, 3) * a * a)\n"},
    {"concat", "concat along an axis",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local b = param(\"b\", {2, 2, 4}, randn())\n"
     "local R = input(\"R\", {2, 5, 4})\n"
     "local loss = sum(concat({a, b}, 2) * R)\n"},
    {"chain", "stack on a new axis",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 2, 3, 4})\n"
     "local loss = sum(stack({a, a * a}, 2) * R)\n"},
    {"chain", "expand_dims, squeeze and broadcast_to",
     "local a = param(\"a\", {2, 3}, randn())\n"
     "local R = input(\"R\", {2, 4, 3})\n"
     "local e = expand_dims(a, 2)\n"
     "local loss = sum(broadcast_to(e, {2, 4, 3}) * R) + sum(squeeze(e, 2) ^ 2)\n"},
    /* ---- softmax and losses (composites of the ops above) ---- */
    {"softmax", "softmax along the last axis, one row at a time",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 4})\n"
     "local loss = sum(softmax(a) * R)\n"},
    {"softmax", "rows of 37, a constant gradient (sum), a softmax of a constant row",
     "local a = param(\"a\", {3, 37}, randn())\n"
     "local R = input(\"R\", {3, 37})\n"
     "local loss = sum(softmax(a) * R) + sum(softmax(a)) + sum(softmax(R * 0 + 2) * a)\n"},
    {"chain", "softmax along a middle axis, from its parts",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 4})\n"
     "local loss = sum(softmax(a, 2) * R)\n"},
    {"chain", "log_softmax along axis 2",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local R = input(\"R\", {2, 3, 4})\n"
     "local loss = sum(log_softmax(a, 2) * R)\n"},
    {"chain", "mse and bce_with_logits against inputs",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local t = input(\"t\", {2, 3, 4})\n"
     "local loss = mse(a, t) + mean(bce_with_logits(a, sigmoid(t)))\n"},
    {"cross_entropy", "cross_entropy of [2,3,4] logits, [2,3] labels",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local y = input(\"y\", {2, 3}, \"int32\")\n"
     "local R = input(\"R\", {2, 3})\n"
     "local loss = sum(cross_entropy(a, y) * R)\n"},
    {"chain", "l2 of two parameters",
     "local a = param(\"a\", {2, 3, 4}, randn())\n"
     "local b = param(\"b\", {5}, randn())\n"
     "local R = input(\"R\", {2, 3, 4})\n"
     "local loss = l2({a * R, b})\n"},
    /* ---- convolution and sequences; col2im and embedding_grad are their gradients ---- */
    {"im2col",
     "conv2d with bias, stride 2 and padding 1 (filters and input both checked; "
     "named as the window loops' locals are)",
     "local x = param(\"x0\", {2, 2, 5, 5}, randn())\n"
     "local w = param(\"n1\", {3, 2, 3, 3}, randn(0.5))\n"
     "local b = param(\"b\", {3}, randn())\n"
     "local R = input(\"R\", {2, 3, 3, 3})\n"
     "local loss = sum(conv2d(x, w, b, {stride = 2, padding = 1}) * R)\n"},
    {"max_pool2d", "max_pool2d with overlapping windows (stride 1), window by window",
     "local x = param(\"x\", {2, 2, 4, 5}, randn())\n"
     "local R = input(\"R\", {2, 2, 3, 4})\n"
     "local loss = sum(max_pool2d(x, 2, 1) * R)\n"},
    {"max_pool2d", "max_pool2d of a relu, overlapping windows: pooled first, then the relu",
     "local x = param(\"x\", {2, 2, 4, 5}, randn())\n"
     "local R = input(\"R\", {2, 2, 3, 4})\n"
     "local loss = sum(max_pool2d(relu(x), 2, 1) * R)\n"},
    /* max_pool2d_pick is the gradient of max_pool2d_grad through its dy:
     * a loss holding max_pool2d's gradient makes it. */
    {"max_pool2d_pick", "the gradient of max_pool2d's gradient, windows that tile",
     "local x = input(\"x\", {2, 2, 4, 4})\n"
     "local R = input(\"R\", {2, 2, 4, 4})\n"
     "local u = param(\"u\", {2, 2, 2, 2}, randn())\n"
     "local dx = grad(sum(max_pool2d(x, 2) * u), x)\n"
     "local loss = sum(dx * R)\n"},
    {"max_pool2d_pick", "the gradient of max_pool2d's gradient, overlapping windows",
     "local x = input(\"x\", {2, 2, 4, 5})\n"
     "local R = input(\"R\", {2, 2, 4, 5})\n"
     "local u = param(\"u\", {2, 2, 3, 4}, randn())\n"
     "local dx = grad(sum(max_pool2d(x, 2, 1) * u), x)\n"
     "local loss = sum(dx * R)\n"},
    {"chain", "max_pool2d and avg_pool2d",
     "local x = param(\"x\", {2, 2, 4, 4}, randn())\n"
     "local R = input(\"R\", {2, 2, 2, 2})\n"
     "local S = input(\"S\", {2, 2, 3, 3})\n"
     "local loss = sum(max_pool2d(x, 2) * R) + sum(avg_pool2d(x, 2, 1) * S)\n"},
    {"chain", "global_avg_pool",
     "local x = param(\"x\", {2, 3, 4, 4}, randn())\n"
     "local R = input(\"R\", {2, 3})\n"
     "local loss = sum(global_avg_pool(x) * R)\n"},
    {"embedding", "embedding rows picked by int32 ids",
     "local E = param(\"E\", {5, 3}, randn())\n"
     "local ids = input(\"ids\", {2, 4}, \"int32\")\n"
     "local R = input(\"R\", {2, 4, 3})\n"
     "local loss = sum(embedding(E, ids) * R)\n"},
    {"causal_mask", "softmax of causally masked scores",
     "local q = param(\"q\", {2, 4, 4}, randn())\n"
     "local R = input(\"R\", {2, 4, 4})\n"
     "local loss = sum(softmax(causal_mask(q)) * R)\n"},
    {"causal_mask", "a causal softmax of 37 x 37 scores: rows of 1 to 37",
     "local q = param(\"q\", {2, 37, 37}, randn())\n"
     "local R = input(\"R\", {2, 37, 37})\n"
     "local loss = sum(softmax(causal_mask(q)) * R)\n"},
    {"causal_mask", "the mask alone (a softmax takes it in): exp of masked scores",
     "local q = param(\"q\", {2, 4, 4}, randn())\n"
     "local R = input(\"R\", {2, 4, 4})\n"
     "local loss = sum(exp(causal_mask(q)) * R)\n"},
    /* ---- normalization and the modules of models/lib ---- */
    {"chain", "layer_norm over the last axis",
     "local x = param(\"x\", {2, 3, 4}, randn())\n"
     "local g = param(\"g\", {4}, randn())\n"
     "local b = param(\"b\", {4}, randn())\n"
     "local R = input(\"R\", {2, 3, 4})\n"
     "local loss = sum(layer_norm(x, g, b) * R)\n"},
    {"training_or", "batch_norm of rows [N,C]: the batch's statistics",
     "local x = param(\"x\", {5, 4}, randn())\n"
     "local g = param(\"g\", {4}, randn())\n"
     "local b = param(\"b\", {4}, randn())\n"
     "local R = input(\"R\", {5, 4})\n"
     "local loss = sum(batch_norm(x, g, b, \"bn\") * R)\n"},
    {"training_or", "batch_norm of images [N,C,H,W] after a bias, whose gradient is 0",
     "local x = param(\"x\", {3, 2, 3, 3}, randn())\n"
     "local c = param(\"c\", {2, 1, 1}, randn())\n"
     "local g = param(\"g\", {2}, randn())\n"
     "local b = param(\"b\", {2}, randn())\n"
     "local R = input(\"R\", {3, 2, 3, 3})\n"
     "local loss = sum(batch_norm(x + c, g, b, \"bn\", {momentum = 0.5}) * R)\n"},
    {"chain", "a conv without a bias, then the bn module",
     "local conv, bn = import(\"conv\"), import(\"bn\")\n"
     "local img = input(\"img\", {3, 1, 4, 4})\n"
     "local h = bn(conv(img, 2, 3, \"c\", {padding = 1, bias = false}), \"n\")\n"
     "local R = input(\"R\", {3, 2, 4, 4})\n"
     "local loss = sum(h * R)\n"},
    {"chain", "rnn_cell and lstm_cell unrolled over 3 steps",
     "local rnn, lstm = import(\"rnn_cell\")(4, 5, \"r\"), import(\"lstm_cell\")(4, 5, \"l\")\n"
     "local seq = input(\"seq\", {2, 3, 4})\n"
     "local h = param(\"h0\", {2, 5}, randn(0.5))\n"
     "local hl, cl = h, h\n"
     "for t = 1, 3 do\n"
     "  local x = seq:slice(2, t):reshape({2, 4})\n"
     "  h = rnn(x, h)\n"
     "  hl, cl = lstm(x, hl, cl)\n"
     "end\n"
     "local loss = sum(h * hl)\n"},
    {"chain", "a transformer block: causal attention and a GELU MLP",
     "local block = import(\"transformer_block\")(8, 2, \"tb\")\n"
     "local x = input(\"x\", {2, 3, 8})\n"
     "local e = param(\"e\", {8, 8}, randn(0.5))\n"
     "local z = block(x:matmul(e))\n"
     "local loss = sum(z * x)\n"},
    {"chain", "conv and mlp modules, and parameters named as C's own",
     "local conv, mlp = import(\"conv\"), import(\"mlp\")\n"
     "local img = input(\"img\", {2, 1, 5, 5})\n"
     "local c = max_pool2d(relu(conv(img, 2, 3, \"r_exp\", {padding = 1})), 2)\n"
     "local t5 = param(\"t5\", {3}, randn())\n"
     "local loss = sum(mlp(flatten(c), {4, 3}, \"cblas\") * t5)\n"},
    {"random_shift", "random_shift of [2,2,4,4] images by up to 2: the check's draws stay",
     "local a = param(\"a\", {2, 2, 4, 4}, randn())\n"
     "local R = input(\"R\", {2, 2, 4, 4})\n"
     "local loss = sum(random_shift(tanh(a), 2) * R)\n"},
    {"dropout", "dropout with p 0.3: the check's mask stays the same",
     "local a = param(\"a\", {4, 6}, randn())\n"
     "local R = input(\"R\", {4, 6})\n"
     "local loss = sum(dropout(tanh(a), 0.3) * R)\n"},
    /* ---- short chains ---- */
    {"chain", "sigmoid(x W + b)",
     "local x = input(\"x\", {4, 3})\n"
     "local R = input(\"R\", {4, 5})\n"
     "local W = param(\"W\", {3, 5}, randn())\n"
     "local b = param(\"b\", {5}, randn())\n"
     "local loss = sum(sigmoid(x:matmul(W) + b) * R)\n"},
    {"chain", "tanh, then sum over axis 2",
     "local R = input(\"R\", {4})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum(sum(tanh(w), 2) * R)\n"},
    {"chain", "a parameter used twice: w * w + w",
     "local R = input(\"R\", {4, 3})\n"
     "local w = param(\"w\", {4, 3}, randn())\n"
     "local loss = sum((w * w + w) * R)\n"},
    {"chain", "mean cross-entropy of x W + b",
     "local x = input(\"x\", {4, 3})\n"
     "local labels = input(\"labels\", {4}, \"int32\")\n"
     "local W = param(\"W\", {3, 5}, randn())\n"
     "local b = param(\"b\", {5}, randn())\n"
     "local loss = mean(cross_entropy(x:matmul(W) + b, labels))\n"},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static const double TOL = 1e-7;

/* The ops a case covers through another op's gradient, not directly. */
static const struct {
    const char *op, *through;
} covered_by[] = {
    {"step", "relu"},     /* relu's gradient is dy * step(x) */
    {"col2im", "im2col"}, /* im2col's gradient, and the other way round */
    {"broadcast", "sum"}, /* sum's gradient broadcasts dy back */
};

/* The op table's names, from the X-macro rows. */
static const char *const op_names[] = {
#define OP(e, name, ...) name,
#include "ops.def"
#undef OP
};
enum { N_OP_NAMES = sizeof op_names / sizeof op_names[0] };

/* And the gradient rule each row names. */
static const char *const op_rules[] = {
#define OP(e, name, arity, kind, lua, reads, shape, grad, emit) #grad,
#include "ops.def"
#undef OP
};

/* A case's body made second order. R, which weights the op's output, is
 * multiplied by a parameter R_2nd, so that the gradient reaching the op's
 * backward ops depends on what is checked; then the loss adds, for every
 * parameter p, sum(grad(loss, p) * S_p) with S_p a random parameter (not
 * an input: inputs share the batch). Checking that loss checks the
 * gradient rules of the ops the op's own gradient is made of, against
 * differences of its analytic gradient. */
static char *second_order(const char *body)
{
    char *text;
    size_t size;
    FILE *out = open_memstream(&text, &size);
    const char *from = "input(\"R\", {", *p = body, *r;
    bool weighted = false;
    while ((r = strstr(p, from))) {
        const char *close = strstr(r, "})") + 2;
        int dims = (int)(close - r - strlen(from) - 2);
        fprintf(out, "%.*s%.*s * param(\"R_2nd\", {%.*s}, randn())", (int)(r - p), p,
                (int)(close - r), r, dims, r + strlen(from));
        p = close;
        weighted = true;
    }
    fprintf(out, "%s\nlocal wrt_2nd = {", p);
    for (p = body; (p = strstr(p, "local ")); p += 6) {
        char name[64];
        int len = 0;
        if (sscanf(p, "local %63[A-Za-z0-9_] = param(%n", name, &len) == 1 && len > 0)
            fprintf(out, "%s, ", name);
    }
    fprintf(out,
            "%s}\n"
            "local grads_2nd = grad(loss, wrt_2nd)\n"
            "for i = 1, #wrt_2nd do\n"
            "    loss = loss + sum(grads_2nd[i] * param(\"S_2nd\" .. i, wrt_2nd[i].shape, "
            "randn()))\n"
            "end\n",
            weighted ? "R" : "");
    fclose(out);
    return text;
}

static char *model_text(const Case *c)
{
    char *body = second_order(c->body);
    const char *tail =
        "return model { loss = loss, outputs = { value = loss }, optimizer = sgd { lr = 0.1 } }\n";
    char *text = malloc(strlen(body) + strlen(tail) + 1);
    strcpy(text, body);
    strcat(text, tail);
    free(body);
    return text;
}

/* Runs cmd; on failure returns a message naming the case and the step,
 * with what cmd printed, else NULL and what it printed in *out. */
static char *step(const Case *c, const char *what, const char *cmd, char **out)
{
    char *printed;
    int rc = run_cmd(cmd, &printed);
    if (rc == 0) {
        *out = printed;
        return NULL;
    }
    size_t len = strlen(printed) + strlen(cmd) + 512;
    char *msg = malloc(len);
    snprintf(msg, len, "op %s (%s): %s failed (exit %d)\n$ %s\n%s", c->op, c->what, what, rc, cmd,
             printed);
    free(printed);
    return msg;
}

/* NULL if the case passes, else why not (with the program's output). */
static char *run_case(const Case *c, const char *dir)
{
    char path[512], cmd[2048], *out = NULL, *msg;
    snprintf(path, sizeof path, "%s/opcase.lua", dir);
    char *text = model_text(c);
    write_text(path, text);
    free(text);

    snprintf(cmd, sizeof cmd, "%s compile %s --jvp -o %s", GRADC_BIN, path, dir);
    if ((msg = step(c, "gradc compile", cmd, &out)))
        return msg;
    free(out);
    snprintf(path, sizeof path, "%s/opcase_gradcheck.c", dir);
    if (!file_exists(path)) {
        msg = malloc(strlen(path) + 256);
        sprintf(msg, "op %s (%s): gradc compile wrote no %s", c->op, c->what, path);
        return msg;
    }
    snprintf(cmd, sizeof cmd,
             "%s -DREAL_DOUBLE -Iruntime -I%s %s/opcase_gradcheck.c %s/opcase.c %s/opcase_jvp.c "
             "%s %s -o %s/opcase_gradcheck",
             TEST_CC, dir, dir, dir, dir, RT_LIB, TEST_LIBS, dir);
    if ((msg = step(c, "cc", cmd, &out)))
        return msg;
    free(out);
    static const char *const checks[] = {"", " --jvp"};
    for (int k = 0; k < 2 && !msg; k++) {
        snprintf(cmd, sizeof cmd, "%s/opcase_gradcheck --tol %g%s", dir, TOL, checks[k]);
        if ((msg = step(c, k ? "the check of J v" : "the gradient check", cmd, &out)))
            return msg;
        const char *line = strstr(out, "max relative error ");
        double err = NAN;
        if (line)
            sscanf(line, "max relative error %lf", &err);
        if (!(err <= TOL)) {
            size_t len = strlen(out) + 256;
            msg = malloc(len);
            snprintf(msg, len, "op %s (%s)%s: max relative error %g, want <= %g\n%s", c->op,
                     c->what, checks[k], err, TOL, out);
        }
        free(out);
    }
    return msg;
}

START_TEST(test_op_gradient)
{
    const Case *c = &cases[_i];
    char *dir = make_tmpdir();
    char *msg = run_case(c, dir);
    /* Remove the folder before failing: a failed assertion ends the test. */
    remove_dir(dir);
    if (msg) {
        char *text = model_text(c);
        ck_assert_msg(0, "%s\nmodel:\n%s", msg, text);
    }
}
END_TEST

static int has_case(const char *op)
{
    for (int i = 0; i < N_CASES; i++)
        if (!strcmp(cases[i].op, op))
            return 1;
    return 0;
}

static int is_op(const char *name)
{
    for (int i = 0; i < N_OP_NAMES; i++)
        if (!strcmp(op_names[i], name))
            return 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Every op has a case, directly or through the op whose gradient uses it,
 * and so a second-order case too. Exempt: the leaves input, param, buffer
 * and const (nothing to differentiate), and the gradient-only ops
 * (hinge_loss_grad, cross_entropy_grad, softmax_grad, max_pool2d_grad,
 * embedding_grad), which the cases of the ops they belong to run as their
 * backward pass, and their second-order cases differentiate. */
START_TEST(test_every_op_has_a_case)
{
    for (int i = 0; i < N_OP_NAMES; i++) {
        const char *op = op_names[i];
        if (!strcmp(op, "input") || !strcmp(op, "param") || !strcmp(op, "buffer") ||
            !strcmp(op, "const") || ends_with(op, "_grad"))
            continue;
        const char *through = op;
        for (size_t k = 0; k < sizeof covered_by / sizeof covered_by[0]; k++)
            if (!strcmp(covered_by[k].op, op))
                through = covered_by[k].through;
        ck_assert_msg(has_case(through), "op %s has no gradient case in tests/test_ops.c%s%s", op,
                      through != op ? ", nor has " : "", through != op ? through : "");
    }
    /* And every case names a real op, so a renamed op is noticed. */
    for (int i = 0; i < N_CASES; i++)
        ck_assert_msg(!strcmp(cases[i].op, "chain") || is_op(cases[i].op),
                      "case '%s' names op %s, which is not in ops.def", cases[i].what, cases[i].op);
}
END_TEST

/* Every op that a gradient can hold has a gradient rule, so any gradient
 * can be differentiated again: only the leaves and the ops simplify makes
 * after the grad pass (matmul_add, pad_add) have none. */
START_TEST(test_every_op_has_a_gradient_rule)
{
    for (int i = 0; i < N_OP_NAMES; i++) {
        const char *op = op_names[i];
        bool leaf = !strcmp(op, "input") || !strcmp(op, "param") || !strcmp(op, "buffer") ||
                    !strcmp(op, "const");
        bool after_grad = !strcmp(op, "matmul_add") || !strcmp(op, "pad_add");
        ck_assert_msg(strcmp(op_rules[i], "no_grad") || leaf || after_grad,
                      "op %s has no gradient rule (no_grad in ops.def)", op);
    }
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("gradients");
    tcase_add_loop_test(tc, test_op_gradient, 0, N_CASES);
    /* A cc run per case; sanitized builds are slower. */
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("coverage");
    tcase_add_test(tc, test_every_op_has_a_case);
    tcase_add_test(tc, test_every_op_has_a_gradient_rule);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
