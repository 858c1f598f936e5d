/*
 * program.c: the front end on generated model programs. Where model.c
 * mutates bytes (and so mostly finds syntax errors), this reads its input
 * as a stream of choices and writes from them a Lua program that parses:
 * loops, closures, metatables, pcall, string and table functions, and
 * graph calls on tensors whose shapes it tracks, with now and then a
 * mistake (a bad shape, an error raised, a hostile call). The program
 * goes through every pass, as model.c's do, under tight limits (10^6
 * instructions, 1 s of CPU time, 256 MiB), and must come back compiled
 * or refused with one line, never crash, leak or hang.
 *
 * FUZZ_PRINT=1 prints each program to stdout, to read a finding.
 */
#include <stdarg.h>
#include "gradc.h"
#include "fuzz.h"

/* Lua allows 200 locals a function: the tensors are the only locals at
 * the top level that stay; every other statement is a block of its own. */
enum { MAX_TENSORS = 64, MAX_STATEMENTS = 48, MAX_DEPTH = 3 };

typedef struct {
    int rows, cols;
} Dims;

typedef struct {
    const uint8_t *in;
    size_t left;
    Buf out;
    int indent;
    Dims t[MAX_TENSORS]; /* t1 .. tn: the tensors in scope at the top level */
    int n;
    int params, fns, label_classes;
} Gen;

/* The next choice among n, 0 once the input is used up. */
static unsigned pick(Gen *g, unsigned n)
{
    if (!g->left || n < 2)
        return 0;
    g->left--;
    return *g->in++ % n;
}

static void line(Gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(Gen *g, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    buf_printf(&g->out, "%*s%s\n", 2 * g->indent, "", text);
}

static const int sizes[] = {1, 2, 3, 4, 5, 8};

static int size(Gen *g) { return sizes[pick(g, sizeof sizes / sizeof *sizes)]; }

static int any_tensor(Gen *g) { return 1 + (int)pick(g, (unsigned)g->n); }

/* A tensor of the same shape as t (found, or made from it). */
static int same_shape(Gen *g, int t)
{
    int start = (int)pick(g, (unsigned)g->n);
    for (int k = 0; k < g->n; k++) {
        int u = 1 + (start + k) % g->n;
        if (g->t[u - 1].rows == g->t[t - 1].rows && g->t[u - 1].cols == g->t[t - 1].cols)
            return u;
    }
    return t;
}

/* A new parameter, [rows, cols] or (rows 0) [cols], as an expression. */
static const char *param(Gen *g, int rows, int cols, char e[96])
{
    static const char *const init[] = {"randn(0.1)", "zeros()", "ones()", "uniform(-0.5, 0.5)"};
    const char *how = init[pick(g, 4)];
    if (rows)
        snprintf(e, 96, "param(\"p%d\", {%d, %d}, %s)", ++g->params, rows, cols, how);
    else
        snprintf(e, 96, "param(\"p%d\", {%d}, %s)", ++g->params, cols, how);
    return e;
}

/* local tN = an expression of tensors in scope, with its shape. */
static void tensor_statement(Gen *g)
{
    if (g->n >= MAX_TENSORS)
        return;
    int a = any_tensor(g), b = same_shape(g, a);
    Dims d = g->t[a - 1];
    char p[96], q[96], e[512];
    static const char *const unary[] = {"relu", "tanh",    "sigmoid",     "abs",  "softplus",
                                        "gelu", "softmax", "log_softmax", "sign", "exp"};
    static const char *const binary[] = {"+", "-", "*", "maximum", "minimum"};
    switch (pick(g, 14)) {
    case 0:
    case 1:
        snprintf(e, sizeof e, "%s(t%d)", unary[pick(g, 10)], a);
        break;
    case 2: {
        const char *op = binary[pick(g, 5)];
        if (op[1])
            snprintf(e, sizeof e, "%s(t%d, t%d)", op, a, b);
        else
            snprintf(e, sizeof e, "t%d %s t%d", a, op, b);
        break;
    }
    case 3:
        snprintf(e, sizeof e, "t%d * %d.5 + %d", a, (int)pick(g, 4), (int)pick(g, 9) - 4);
        break;
    case 4: { /* a layer */
        int k = size(g);
        param(g, d.cols, k, p);
        snprintf(e, sizeof e, "t%d:matmul(%s)", a, p);
        d.cols = k;
        break;
    }
    case 5:
        param(g, 0, d.cols, p);
        snprintf(e, sizeof e, "t%d + %s", a, p);
        break;
    case 6: { /* a reduction that keeps its axis */
        int axis = 1 + (int)pick(g, 2);
        snprintf(e, sizeof e, "%s(t%d, %d, true)", pick(g, 2) ? "sum" : "mean", a, axis);
        *(axis == 1 ? &d.rows : &d.cols) = 1;
        break;
    }
    case 7:
        snprintf(e, sizeof e, "t%d:t()", a);
        d = (Dims){d.cols, d.rows};
        break;
    case 8:
        snprintf(e, sizeof e, "reshape(t%d, {%d, %d})", a, d.cols, d.rows);
        d = (Dims){d.cols, d.rows};
        break;
    case 9:
        param(g, 0, d.cols, p);
        param(g, 0, d.cols, q);
        snprintf(e, sizeof e, "layer_norm(t%d, %s, %s)", a, p, q);
        break;
    case 10:
        snprintf(e, sizeof e, "concat({t%d, t%d}, 2)", a, b);
        d.cols *= 2;
        break;
    case 11: {
        int first = 1 + (int)pick(g, (unsigned)d.cols);
        snprintf(e, sizeof e, "slice(t%d, 2, %d, %d)", a, first, d.cols);
        d.cols = d.cols - first + 1;
        break;
    }
    case 12:
        snprintf(e, sizeof e, "where(gt(t%d, t%d), t%d, t%d ^ 2)", a, b, a, b);
        break;
    default:
        snprintf(e, sizeof e, "dropout(t%d, 0.%d)", a, (int)pick(g, 10));
    }
    g->t[g->n++] = d;
    line(g, "local t%d = %s", g->n, e);
}

static void block(Gen *g, int depth);

/* Lua that is not the graph: the sandbox's library, in the ways models
 * (and attackers) use it. */
static void lua_statement(Gen *g, int depth)
{
    int k = 1 + (int)pick(g, 5), a = any_tensor(g), what = (int)pick(g, 16);
    if (what == 8) { /* a closure over a tensor, called in a loop: a chain of ops */
        if (g->n >= MAX_TENSORS)
            return;
        line(g, "local function f%d(v, i) return tanh(v) * (1 / i) + t%d * 0 end", ++g->fns, a);
        line(g, "local t%d = t%d", g->n + 1, a);
        line(g, "for i = 1, %d do t%d = f%d(t%d, i) end", k, g->n + 1, g->fns, g->n + 1);
        g->t[g->n] = g->t[a - 1];
        g->n++;
        return;
    }
    line(g, "do");
    g->indent++;
    switch (what) {
    case 0:
        line(g, "local s = string.rep(\"ab\", %d, \",\")", k * 7);
        line(g, "local u = s:upper():gsub(\"A\", \"x\"):sub(%d, %d)", k, 3 * k);
        break;
    case 1:
        line(g, "local at, to = string.find(\"w%d_b%d\", \"(%%d+)\")", k, 2 * k);
        line(g, "local f = string.format(\"%%s-%%d-%%5.2f\", \"n\", %d, %d / 3)", k, k);
        break;
    case 2:
        line(g, "local list = {}");
        line(g, "for i = 1, %d do list[#list + 1] = (i * %d) %% 7 end", 3 * k, k + 2);
        line(g, "table.sort(list, function(x, y) return x > y end)");
        line(g, "local joined = table.concat(list, \" \")");
        break;
    case 3:
        line(g, "local ok, why = pcall(function() error(%s) end)",
             (const char *[]){"\"in pcall\"", "{}", "42", "nil"}[pick(g, 4)]);
        break;
    case 4:
        line(g, "local ok = pcall(param, \"%s\", {2}, zeros())",
             (const char *[]){"bad name", "t1", "x", "", "p1"}[pick(g, 5)]);
        break;
    case 5:
        line(g, "local mt = {__index = function(t, key) return #tostring(key) end,");
        line(g, "  __call = function(self, v) return v end, __len = function() return %d end}", k);
        line(g, "local obj = setmetatable({}, mt)");
        line(g, "local n = obj.abc + #obj + obj(%d)", k);
        break;
    case 6:
        if (depth < MAX_DEPTH) {
            line(g, "for i = 1, %d do", k);
            g->indent++;
            block(g, depth + 1);
            g->indent--;
            line(g, "end");
        }
        break;
    case 7:
        if (depth < MAX_DEPTH) {
            line(g, "local count = 0");
            line(g, "while count < %d do", k);
            g->indent++;
            line(g, "count = count + 1");
            block(g, depth + 1);
            g->indent--;
            line(g, "end");
        }
        break;
    case 9:
        line(g, "local shape = t%d.shape", a);
        line(g, "local elems = shape[1] * shape[2] + #shape");
        break;
    case 10:
        line(g, "local text = tostring(t%d) .. type(t%d) .. select(\"#\", 1, 2)", a, a);
        break;
    case 11:
        line(g, "local v = math.floor(math.random() * %d) + math.max(%d, 2) + (config.k or 0)", k,
             k);
        break;
    case 12:
        line(g, "local words = {}");
        line(g, "for w in (\"a bb ccc %d\"):gmatch(\"%%S+\") do words[#words + 1] = w:len() end",
             k);
        line(g, "local unpacked = select(2, table.unpack(words))");
        break;
    case 13: /* mistakes */
        switch (pick(g, 6)) {
        case 0:
            line(g, "local bad = t%d:matmul(t%d)", a, a);
            break;
        case 1:
            line(g, "error(\"stop at %d\")", k);
            break;
        case 2:
            line(g, "local bad = input(\"t%d\", {0, 2})", k);
            break;
        case 3:
            line(g, "local bad = reshape(t%d, {7, 11})", a);
            break;
        case 4:
            line(g, "setmetatable({}, {__gc = function() end})");
            break;
        default:
            line(g, "local bad = undefined_op(t%d)", a);
        }
        break;
    case 14:
        line(g, "local co = rawget(_ENV, \"coroutine\") or rawlen({1, 2}) + (rawequal(1, 1) "
                "and 1 or 0)");
        break;
    default:
        line(g, "local r = tonumber(\"0x%x\") + (next({}) or 0) + #{ipairs({})}", k);
    }
    g->indent--;
    line(g, "end");
}

static void block(Gen *g, int depth)
{
    for (int s = 0, n = 1 + (int)pick(g, 3); s < n; s++)
        lua_statement(g, depth);
}

static void program(Gen *g)
{
    int batch = size(g), width = size(g);
    line(g, "local x = input(\"x\", {%d, %d})", batch, width);
    g->t[g->n++] = (Dims){batch, width};
    line(g, "local t1 = x");
    for (int s = 0, n = (int)pick(g, MAX_STATEMENTS); s < n && g->left; s++)
        if (pick(g, 3))
            tensor_statement(g);
        else
            lua_statement(g, 0);
    char w[96];
    param(g, width, 2, w);
    buf_printf(&g->out, "local loss = sum(x:matmul(%s))", w);
    for (int t = 2; t <= g->n; t++)
        if (pick(g, 4)) /* most: a param the loss does not reach is refused */
            buf_printf(&g->out, " + mean(t%d)", t);
    buf_printf(&g->out, "\n");
    static const char *const optimizers[] = {"", ", optimizer = sgd{lr = 0.1}",
                                             ", optimizer = adam{lr = 1e-3, clip = 1}",
                                             ", optimizer = momentum{}"};
    line(g, "return model { loss = loss, outputs = { y = t%d }%s }", g->n, optimizers[pick(g, 4)]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Gen g = {.in = data, .left = size};
    program(&g);
    if (getenv("FUZZ_PRINT"))
        printf("%s\n", g.out.data);
    const char *path = fuzz_file((const uint8_t *)g.out.data, g.out.len, "fuzz_program.lua");
    LoadOptions o = {.max_instructions = 1000000, .max_seconds = 1, .max_memory_mb = 256};
    OutFile files[N_OUT_FILES];
    if (compile_files(path, &o, files) == 0)
        free_files(files, N_OUT_FILES);
    free_kept();
    buf_free(&g.out);
    return 0;
}
