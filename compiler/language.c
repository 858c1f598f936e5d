/*
 * language.c: the model language: tensors and the ops a model file calls.
 *
 * Tensors are userdata holding a node id; their metatable gives them the
 * arithmetic operators and methods. Every node records the Lua file:line
 * that made it, and every error a model can cause is raised as a Lua
 * error at that line, so it reaches the user as `file:line: message`.
 * Values are named after the model's locals and modules by naming.c.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "front.h"

/* ---- tensors ---- */

static int push_tensor(lua_State *L, int id)
{
    int *t = lua_newuserdatauv(L, sizeof *t, 0);
    *t = id;
    luaL_setmetatable(L, TENSOR);
    return 1;
}

/* Makes a node at the calling line, or raises `op: why` there. */
static int make(lua_State *L, Node n)
{
    Graph *g = front(L)->g;
    if (front(L)->frozen)
        luaL_error(L, "%s: the model has returned; nothing may add to it now", op_info[n.op].name);
    if (g->n >= MAX_NODES)
        luaL_error(L, "the model makes more than %d ops (a loop that never ends?)", MAX_NODES);
    if (!isfinite(n.value) && n.op != OP_CAUSAL)
        luaL_error(L, "%s: %s is not a finite number: the model's numbers must be",
                   n.op == OP_CONST ? "a constant" : op_info[n.op].name,
                   isnan(n.value) ? "nan"
                   : n.value > 0  ? "inf"
                                  : "-inf");
    charge(L, sizeof n + sizeof(Naming));
    lua_Debug ar;
    const char *file = model_frame(L, &ar);
    n.loc = file ? (SrcLoc){file, ar.currentline} : (SrcLoc){g->source, 0};
    /* Before the node: reading the frame may raise (out of memory). */
    const char *module = file && n.op != OP_CONST ? module_of(L, &ar) : NULL;
    int before = g->n;
    Front *f = front(L);
    f->naming = grow(f->naming, before, sizeof *f->naming);
    int id = ir_node(g, &n);
    if (id < 0)
        luaL_error(L, "%s: %s", op_info[n.op].name, g->error);
    if (g->n > before)
        f->naming[id] = (Naming){.module = module, .owner = -1};
    if (n.name) { /* for named() */
        lua_getfield(L, LUA_REGISTRYINDEX, "gradc.names");
        lua_pushinteger(L, id);
        lua_setfield(L, -2, n.name);
        lua_pop(L, 1);
    }
    return id;
}

/* Doubling, so that a loop of a million params does not copy the array a
 * million times (a sanitizer's realloc always copies). */
void *grow(void *p, int n, size_t size)
{
    return n & (n - 1) ? p : xrealloc(p, (n ? 2 * (size_t)n : 1) * size);
}

/* The node called name (an input, param or buffer), or -1. A Lua table
 * maps names to nodes, so a model of many params is not checked in
 * quadratic time. */
static int named(lua_State *L, const char *name)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "gradc.names");
    int id = lua_getfield(L, -1, name) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : -1;
    lua_pop(L, 2);
    return id;
}

/* A name given twice: where first, when that was a line of the model
 * file itself (a module's line says less than the error's own place). */
static noreturn void name_taken(lua_State *L, const char *what, const char *name, int taken)
{
    SrcLoc at = node_of(L, taken)->loc;
    if (at.file && !strcmp(at.file, front(L)->g->source))
        luaL_error(L, "%s: the name '%s' is taken (at line %d)", what, name, at.line);
    luaL_error(L, "%s: the name '%s' is taken", what, name);
    abort(); /* luaL_error does not return */
}

/* The composites' building blocks: an op of one or two nodes. */
static int op1(lua_State *L, int op, int x)
{
    return make(L, (Node){.op = op, .n_in = 1, .in = {x}});
}

static int op2(lua_State *L, int op, int a, int b)
{
    return make(L, (Node){.op = op, .n_in = 2, .in = {a, b}});
}

/* A tensor argument; a Lua number becomes a scalar constant. */
static int tensor_arg(lua_State *L, int idx, const char *op)
{
    if (is_tensor(L, idx))
        return *(int *)lua_touserdata(L, idx);
    if (lua_type(L, idx) == LUA_TNUMBER)
        return make(L, (Node){.op = OP_CONST, .value = lua_tonumber(L, idx)});
    return luaL_error(L, "%s: argument %d must be a tensor or a number, got %s", op, idx,
                      luaL_typename(L, idx));
}

/* The length of a list argument (a shape, axes, tensors), as its table
 * holds it: read raw, so no __len or __index of the model's can lie about
 * it, and at most max long. */
static int list_len(lua_State *L, int idx, int max, const char *what)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = lua_rawlen(L, idx);
    if (n > (size_t)max)
        luaL_error(L, "%s: a list of %I is more than the %d it takes", what, (lua_Integer)n, max);
    return (int)n;
}

static int unary(lua_State *L, int op)
{
    return push_tensor(L, op1(L, op, tensor_arg(L, 1, op_info[op].name)));
}

static int binary(lua_State *L, int op)
{
    int a = tensor_arg(L, 1, op_info[op].name), b = tensor_arg(L, 2, op_info[op].name);
    return push_tensor(L, op2(L, op, a, b));
}

static int l_add(lua_State *L) { return binary(L, OP_ADD); }
static int l_sub(lua_State *L) { return binary(L, OP_SUB); }
static int l_mul(lua_State *L) { return binary(L, OP_MUL); }
static int l_div(lua_State *L) { return binary(L, OP_DIV); }
static int l_neg(lua_State *L) { return unary(L, OP_NEG); }

static int l_leaky_relu(lua_State *L)
{
    int x = tensor_arg(L, 1, "leaky_relu");
    double alpha = luaL_optnumber(L, 2, 0.01);
    return push_tensor(L,
                       make(L, (Node){.op = OP_LEAKY_RELU, .n_in = 1, .in = {x}, .value = alpha}));
}

/* Composites: ops written with other ops, differentiated through them. */

/* clamp(x, lo, hi) = min(max(x, lo), hi) */
static int l_clamp(lua_State *L)
{
    int x = tensor_arg(L, 1, "clamp"), lo = tensor_arg(L, 2, "clamp"),
        hi = tensor_arg(L, 3, "clamp");
    int m = op2(L, OP_MAXIMUM, x, lo);
    return push_tensor(L, op2(L, OP_MINIMUM, m, hi));
}

/* gelu(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form */
static int l_gelu(lua_State *L)
{
    int x = tensor_arg(L, 1, "gelu"), first = front(L)->g->n;
    int c = make(L, (Node){.op = OP_CONST, .value = 0.7978845608028654});
    int k = make(L, (Node){.op = OP_CONST, .value = 0.044715});
    int half = make(L, (Node){.op = OP_CONST, .value = 0.5});
    int one = make(L, (Node){.op = OP_CONST, .value = 1});
    int x3 = make(L, (Node){.op = OP_POW, .n_in = 1, .in = {x}, .value = 3});
    int inner = op2(L, OP_ADD, x, op2(L, OP_MUL, k, x3));
    int t = op1(L, OP_TANH, op2(L, OP_MUL, c, inner));
    int hx = op2(L, OP_MUL, half, x);
    int sum = op2(L, OP_ADD, one, t);
    role(L, x3, "cube"), role(L, inner, "inner"), role(L, node_of(L, t)->in[0], "arg");
    role(L, hx, "half"), role(L, sum, "gate");
    return push_tensor(L, composite(L, first, op2(L, OP_MUL, hx, sum), "gelu"));
}

static int l_pow(lua_State *L)
{
    if (!is_tensor(L, 1) || lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "pow: only a tensor to a constant power is supported (x ^ 2)");
    int x = tensor_arg(L, 1, "pow");
    return push_tensor(
        L, make(L, (Node){.op = OP_POW, .n_in = 1, .in = {x}, .value = lua_tonumber(L, 2)}));
}

static int l_matmul(lua_State *L)
{
    int a = tensor_arg(L, 1, "matmul"), b = tensor_arg(L, 2, "matmul");
    return push_tensor(L, op2(L, OP_MATMUL, a, b));
}

/* One axis argument, counted from 1 like Torch7, negative from the end;
 * returns it from 0. */
static int axis_arg(lua_State *L, lua_Integer axis, int rank, const char *op)
{
    lua_Integer a = axis < 0 ? rank + axis : axis - 1;
    if (a < 0 || a >= rank)
        luaL_error(L, "%s: axis %d is out of range for a rank %d tensor", op, (int)axis, rank);
    return (int)a;
}

/* Which axes a reduction takes: op(x) all, op(x, axis) or op(x, {axes})
 * some, dropped, or kept as 1 with op(x, axes, true). */
typedef struct {
    bool reduced[MAX_RANK];
    bool keep;
    double count; /* elements per output */
} Axes;

static Axes axes_args(lua_State *L, int x, int idx, const char *name)
{
    Shape s = node_of(L, x)->shape;
    Axes a = {.keep = lua_toboolean(L, idx + 1), .count = 1};
    if (lua_istable(L, idx))
        for (int i = 1, n = list_len(L, idx, MAX_RANK, name); i <= n; i++) {
            lua_rawgeti(L, idx, i);
            a.reduced[axis_arg(L, luaL_checkinteger(L, -1), s.rank, name)] = true;
            lua_pop(L, 1);
        }
    else if (!lua_isnoneornil(L, idx))
        a.reduced[axis_arg(L, luaL_checkinteger(L, idx), s.rank, name)] = true;
    else
        for (int i = 0; i < s.rank; i++)
            a.reduced[i] = true;
    for (int i = 0; i < s.rank; i++)
        a.count *= a.reduced[i] ? s.dim[i] : 1;
    return a;
}

static int reduce_node(lua_State *L, int op, int x, Axes a, bool keep)
{
    Node n = {.op = op, .n_in = 1, .in = {x}};
    for (int i = 0; i < node_of(L, x)->shape.rank; i++)
        n.axes[i] = !a.reduced[i] ? AX_KEEP : keep ? AX_ONE : AX_DROP;
    return make(L, n);
}

static int l_sum(lua_State *L)
{
    int x = tensor_arg(L, 1, "sum");
    Axes a = axes_args(L, x, 2, "sum");
    return push_tensor(L, reduce_node(L, OP_SUM, x, a, a.keep));
}

static int scale(lua_State *L, int x, double by)
{
    int c = make(L, (Node){.op = OP_CONST, .value = by});
    return op2(L, OP_MUL, x, c);
}

static int l_mean(lua_State *L)
{
    int x = tensor_arg(L, 1, "mean"), first = front(L)->g->n;
    Axes a = axes_args(L, x, 2, "mean");
    int y = scale(L, reduce_node(L, OP_SUM, x, a, a.keep), 1 / a.count);
    return push_tensor(L, composite(L, first, y, "mean"));
}

/* variance(x, axes, keepdims) = mean((x - mean(x))^2), the biased one */
static int l_variance(lua_State *L)
{
    int x = tensor_arg(L, 1, "variance"), first = front(L)->g->n;
    Axes a = axes_args(L, x, 2, "variance");
    int mu = scale(L, reduce_node(L, OP_SUM, x, a, true), 1 / a.count);
    int d = op2(L, OP_SUB, x, mu);
    int d2 = make(L, (Node){.op = OP_POW, .n_in = 1, .in = {d}, .value = 2});
    int y = scale(L, reduce_node(L, OP_SUM, d2, a, a.keep), 1 / a.count);
    role(L, mu, "mean"), role(L, d, "centered"), role(L, d2, "sq");
    role(L, node_of(L, y)->in[0], "sumsq");
    return push_tensor(L, composite(L, first, y, "variance"));
}

/* max and min of tensors reduce; of plain numbers they are math's. */
static int extreme(lua_State *L, int op, const char *name)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        lua_getglobal(L, "math");
        lua_getfield(L, -1, name);
        lua_replace(L, -2);
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 1);
        return 1;
    }
    int x = tensor_arg(L, 1, name);
    Axes a = axes_args(L, x, 2, name);
    return push_tensor(L, reduce_node(L, op, x, a, a.keep));
}

static int l_max(lua_State *L) { return extreme(L, OP_MAX, "max"); }
static int l_min(lua_State *L) { return extreme(L, OP_MIN, "min"); }

/* x - m, m the max over the axes (kept as 1): the softmax family
 * exponentiates this, which cannot overflow, and does not depend on m. */
static int shifted(lua_State *L, int x, Axes a, int *m)
{
    *m = reduce_node(L, OP_MAX, x, a, true);
    return op2(L, OP_SUB, x, *m);
}

/* The axis argument of the softmax family, the last by default. */
static Axes one_axis(lua_State *L, int x, int idx, const char *name)
{
    Axes a = {.count = 1};
    a.reduced[axis_arg(L, luaL_optinteger(L, idx, -1), node_of(L, x)->shape.rank, name)] = true;
    return a;
}

/* logsumexp(x, axes, keepdims) = m + log(sum(exp(x - m))); its gradient
 * through m cancels, leaving softmax. */
static int l_logsumexp(lua_State *L)
{
    int x = tensor_arg(L, 1, "logsumexp"), m, first = front(L)->g->n;
    Axes a = axes_args(L, x, 2, "logsumexp");
    int e = op1(L, OP_EXP, shifted(L, x, a, &m));
    int lse = op1(L, OP_LOG, reduce_node(L, OP_SUM, e, a, a.keep));
    int mk = a.keep ? m : reduce_node(L, OP_MAX, x, a, false);
    role(L, node_of(L, e)->in[0], "shifted");
    return push_tensor(L, composite(L, first, op2(L, OP_ADD, mk, lse), "logsumexp"));
}

/* softmax(x [, axis]) = exp(x - m) / sum(exp(x - m)); along the last axis,
 * the row op that computes it in one pass. */
static int l_softmax(lua_State *L)
{
    int x = tensor_arg(L, 1, "softmax"), m;
    Axes a = one_axis(L, x, 2, "softmax");
    if (a.reduced[node_of(L, x)->shape.rank - 1])
        return push_tensor(L, op1(L, OP_SOFTMAX, x));
    int first = front(L)->g->n, e = op1(L, OP_EXP, shifted(L, x, a, &m));
    role(L, node_of(L, e)->in[0], "shifted");
    int y = op2(L, OP_DIV, e, reduce_node(L, OP_SUM, e, a, true));
    return push_tensor(L, composite(L, first, y, "softmax"));
}

/* log_softmax(x [, axis]) = (x - m) - log(sum(exp(x - m))) */
static int l_log_softmax(lua_State *L)
{
    int x = tensor_arg(L, 1, "log_softmax"), m, first = front(L)->g->n;
    Axes a = one_axis(L, x, 2, "log_softmax");
    int d = shifted(L, x, a, &m);
    int lse = op1(L, OP_LOG, reduce_node(L, OP_SUM, op1(L, OP_EXP, d), a, true));
    role(L, d, "shifted"), role(L, lse, "lse");
    return push_tensor(L, composite(L, first, op2(L, OP_SUB, d, lse), "log_softmax"));
}

/* dropout(x, p): in training, each element dropped with probability p and
 * the rest scaled by 1 / (1 - p); in evaluation (forward, predict), x */
static int l_dropout(lua_State *L)
{
    int x = tensor_arg(L, 1, "dropout");
    double p = luaL_checknumber(L, 2);
    if (!(p >= 0 && p < 1))
        return luaL_error(L, "dropout: p must be in [0, 1), got %f", p); /* Lua's %f is %g */
    int site = ++front(L)->random_sites;
    return push_tensor(
        L, make(L, (Node){.op = OP_DROPOUT, .n_in = 1, .in = {x}, .value = p, .axes = {site}}));
}

/* random_shift(x, k): in training, each image of x [N, ..., H, W] moved by
 * up to k pixels each way, a new draw per image and step; in evaluation, x */
static int l_random_shift(lua_State *L)
{
    int x = tensor_arg(L, 1, "random_shift");
    lua_Integer k = luaL_checkinteger(L, 2);
    Shape s = node_of(L, x)->shape;
    if (k < 1 || (s.rank >= 2 && (k >= s.dim[s.rank - 1] || k >= s.dim[s.rank - 2])))
        return luaL_error(L, "random_shift: k must be at least 1 and less than the image's sides");
    int site = ++front(L)->random_sites;
    return push_tensor(
        L,
        make(L,
             (Node){.op = OP_SHIFT, .n_in = 1, .in = {x}, .value = (double)k, .axes = {site, 1}}));
}

/* layer_norm(x, gamma, beta [, eps]): each row (the last axis) to mean 0
 * and variance 1, then scaled by gamma and shifted by beta */
static int l_layer_norm(lua_State *L)
{
    int x = tensor_arg(L, 1, "layer_norm");
    int gamma = tensor_arg(L, 2, "layer_norm"), beta = tensor_arg(L, 3, "layer_norm");
    double eps = luaL_optnumber(L, 4, 1e-5);
    Shape s = node_of(L, x)->shape;
    if (s.rank < 1)
        return luaL_error(L, "layer_norm: x needs at least one axis, its rows");
    Axes last = {.count = s.dim[s.rank - 1]};
    last.reduced[s.rank - 1] = true;
    int first = front(L)->g->n;
    int mu = scale(L, reduce_node(L, OP_SUM, x, last, true), 1 / last.count);
    int d = op2(L, OP_SUB, x, mu);
    int d2 = make(L, (Node){.op = OP_POW, .n_in = 1, .in = {d}, .value = 2});
    int var = scale(L, reduce_node(L, OP_SUM, d2, last, true), 1 / last.count);
    int e = make(L, (Node){.op = OP_CONST, .value = eps});
    int inv = op1(L, OP_RSQRT, op2(L, OP_ADD, var, e));
    int y = op2(L, OP_MUL, d, inv);
    role(L, mu, "mean"), role(L, d, "centered"), role(L, d2, "sq");
    role(L, node_of(L, var)->in[0], "sumsq"), role(L, var, "var");
    role(L, node_of(L, inv)->in[0], "var_eps"), role(L, inv, "rstd");
    role(L, y, "normed");
    y = op2(L, OP_MUL, y, gamma);
    role(L, y, "scaled");
    y = op2(L, OP_ADD, y, beta);
    named_after_scale(L, y, gamma);
    return push_tensor(L, composite(L, first, y, "layer_norm"));
}

/* A buffer NAME [C] that starts at `value`, saved with the parameters. */
static int buffer(lua_State *L, const char *name, int c, double value)
{
    int taken = named(L, name);
    if (taken >= 0)
        name_taken(L, "batch_norm", name, taken);
    return make(L, (Node){.op = OP_BUFFER,
                          .name = keep(xstrdup(name)),
                          .shape = {1, {c}},
                          .init = INIT_CONST,
                          .init_a = value});
}

static void add_buffer(lua_State *L, int node, int next)
{
    Graph *g = front(L)->g;
    g->buffers = grow(g->buffers, g->n_buffers, sizeof *g->buffers);
    g->buffers[g->n_buffers++] = (Buffer){node, next};
}

/* batch_norm(x, gamma, beta, name [, {momentum =, eps =}]): each channel c
 * (axis 2 of x [N, C, ...]) to mean 0 and variance 1, then scaled by
 * gamma[c] and shifted by beta[c]. Training uses the batch's statistics,
 * over every axis but the channel's, and each training step moves the
 * running averages NAME_mean and NAME_var (buffers: saved, not trained)
 * a fraction `momentum` towards them; evaluation uses the averages. */
static int l_batch_norm(lua_State *L)
{
    int x = tensor_arg(L, 1, "batch_norm");
    int gamma = tensor_arg(L, 2, "batch_norm"), beta = tensor_arg(L, 3, "batch_norm");
    if (lua_type(L, 4) != LUA_TSTRING)
        return luaL_error(L, "batch_norm: argument 4 must be a name for its running averages, "
                             "as in batch_norm(x, gamma, beta, \"bn1\")");
    const char *name = lua_tostring(L, 4);
    if (!is_c_identifier(name) || strlen(name) > 59)
        return luaL_error(L, "batch_norm: name '%s' must be letters, digits and _ (at most 59)",
                          name);
    double momentum = 0.1, eps = 1e-5;
    if (lua_istable(L, 5)) {
        if (lua_getfield(L, 5, "momentum") != LUA_TNIL)
            momentum = luaL_checknumber(L, -1);
        if (lua_getfield(L, 5, "eps") != LUA_TNIL)
            eps = luaL_checknumber(L, -1);
        lua_pop(L, 2);
    }
    if (!(momentum > 0 && momentum <= 1) || !(eps > 0))
        return luaL_error(L, "batch_norm: momentum must be in (0, 1] and eps > 0");
    Shape s = node_of(L, x)->shape;
    if (s.rank < 2)
        return luaL_error(L, "batch_norm: x must be [N, C, ...], got rank %d", s.rank);
    int c = s.dim[1];
    Shape per_channel = {1, {c}};
    if (!shape_eq(node_of(L, gamma)->shape, per_channel) ||
        !shape_eq(node_of(L, beta)->shape, per_channel))
        return luaL_error(L, "batch_norm: gamma and beta must be [%d], one per channel", c);
    Axes all_but_c = {.count = shape_size(s) / c};
    if (all_but_c.count < 2)
        return luaL_error(L, "batch_norm: needs more than one value per channel");
    /* [C] seen as [1, C, 1, ...], to broadcast against x */
    Shape bs = {s.rank, {1, c}};
    for (int i = 0; i < s.rank; i++) {
        all_but_c.reduced[i] = i != 1;
        if (i >= 2)
            bs.dim[i] = 1;
    }
    int first = front(L)->g->n, e = make(L, (Node){.op = OP_CONST, .value = eps});
#define AS_BS(t) make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {t}, .shape = bs})
#define AS_C(t) make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {t}, .shape = per_channel})
    int mu = scale(L, reduce_node(L, OP_SUM, x, all_but_c, true), 1 / all_but_c.count);
    int d = op2(L, OP_SUB, x, mu);
    int d2 = make(L, (Node){.op = OP_POW, .n_in = 1, .in = {d}, .value = 2});
    int var = scale(L, reduce_node(L, OP_SUM, d2, all_but_c, true), 1 / all_but_c.count);
    int train = op2(L, OP_MUL, d, op1(L, OP_RSQRT, op2(L, OP_ADD, var, e)));
    role(L, mu, "batch_mean"), role(L, d, "centered"), role(L, d2, "sq");
    role(L, node_of(L, var)->in[0], "sumsq"), role(L, var, "batch_var");
    role(L, node_of(L, train)->in[1], "rstd"), role(L, train, "train");

    char bname[80];
    snprintf(bname, sizeof bname, "%s_mean", name);
    int run_mean = buffer(L, bname, c, 0);
    snprintf(bname, sizeof bname, "%s_var", name);
    int run_var = buffer(L, bname, c, 1);
    int eval = op2(L, OP_MUL, op2(L, OP_SUB, x, AS_BS(run_mean)),
                   op1(L, OP_RSQRT, op2(L, OP_ADD, AS_BS(run_var), e)));
    role(L, eval, "eval");
    /* The running variance is the unbiased one, as PyTorch keeps it. */
    double n = all_but_c.count;
    int next_mean = op2(L, OP_ADD, scale(L, run_mean, 1 - momentum), scale(L, AS_C(mu), momentum));
    int next_var = op2(L, OP_ADD, scale(L, run_var, 1 - momentum),
                       scale(L, AS_C(var), momentum * n / (n - 1)));
    add_buffer(L, run_mean, next_mean);
    add_buffer(L, run_var, next_var);
    role(L, next_mean, "next_mean"), role(L, next_var, "next_var");
    int y = make(L, (Node){.op = OP_MODE, .n_in = 2, .in = {train, eval}});
    role(L, y, "normed");
    y = op2(L, OP_ADD, op2(L, OP_MUL, y, AS_BS(gamma)), AS_BS(beta));
    role(L, node_of(L, y)->in[0], "scaled");
#undef AS_BS
#undef AS_C
    naming(L, y)->what = joined(L, NULL, name);
    return push_tensor(L, composite(L, first, y, "batch_norm"));
}

/* mse(a, b) = mean((a - b)^2), a scalar */
static int l_mse(lua_State *L)
{
    int a = tensor_arg(L, 1, "mse"), b = tensor_arg(L, 2, "mse"), first = front(L)->g->n;
    int d = op2(L, OP_SUB, a, b);
    int d2 = make(L, (Node){.op = OP_POW, .n_in = 1, .in = {d}, .value = 2});
    Axes all = axes_args(L, d2, lua_gettop(L) + 1, "mse");
    role(L, d, "diff"), role(L, d2, "sq");
    int y = scale(L, reduce_node(L, OP_SUM, d2, all, false), 1 / all.count);
    return push_tensor(L, composite(L, first, y, "mse"));
}

/* bce_with_logits(x, y) = softplus(x) - x y per element, the binary
 * cross-entropy of sigmoid(x) against targets y in [0, 1], without
 * computing the sigmoid (which loses range) */
static int l_bce_with_logits(lua_State *L)
{
    int x = tensor_arg(L, 1, "bce_with_logits"), y = tensor_arg(L, 2, "bce_with_logits");
    int first = front(L)->g->n, sp = op1(L, OP_SOFTPLUS, x);
    int xy = op2(L, OP_MUL, x, y);
    return push_tensor(L, composite(L, first, op2(L, OP_SUB, sp, xy), "bce"));
}

/* params("m"): the params named m, or m and then _ or a digit (mlp's
 * layers m1, m2, ...), in the order they were made, as a list: a module's
 * parameters, for l2() or anything else. */
static int l_params(lua_State *L)
{
    const char *prefix = luaL_checkstring(L, 1);
    size_t n = strlen(prefix);
    Graph *g = front(L)->g;
    lua_newtable(L);
    for (int i = 0, k = 0; i < g->n_params; i++) {
        const char *name = ir_at(g, g->params[i].node)->name;
        if (!strncmp(name, prefix, n) &&
            (name[n] == 0 || name[n] == '_' || isdigit((unsigned char)name[n]))) {
            push_tensor(L, g->params[i].node);
            lua_rawseti(L, -2, ++k);
        }
    }
    return 1;
}

/* l2({w1, w2, ...}) = the sum of every element's square, to add to a loss */
static int l_l2(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int total = -1;
    for (int i = 1, n = list_len(L, 1, MAX_NODES, "l2"); i <= n; i++) {
        lua_rawgeti(L, 1, i);
        int w = tensor_arg(L, lua_gettop(L), "l2");
        lua_pop(L, 1);
        int w2 = make(L, (Node){.op = OP_POW, .n_in = 1, .in = {w}, .value = 2});
        Axes all = {.count = (double)shape_size(node_of(L, w2)->shape)};
        for (int k = 0; k < MAX_RANK; k++)
            all.reduced[k] = true;
        int s = reduce_node(L, OP_SUM, w2, all, false);
        total = total < 0 ? s : op2(L, OP_ADD, total, s);
    }
    if (total < 0)
        return luaL_error(L, "l2: needs a table of tensors");
    return push_tensor(L, total);
}

/* ---- gradients as values ---- */

enum { GRAD_GROWTH = 16 }; /* the most nodes one op's gradient rules make */

/* The variable i of grad's second argument: a real tensor. */
static int grad_variable(lua_State *L, int i, bool one)
{
    if (!one)
        lua_rawgeti(L, 2, i + 1);
    if (!is_tensor(L, -1))
        luaL_error(L, "grad: variable %d must be a tensor, got %s", i + 1, luaL_typename(L, -1));
    int x = *(int *)lua_touserdata(L, -1);
    if (!one)
        lua_pop(L, 1);
    if (node_of(L, x)->dtype != DT_REAL)
        luaL_error(L, "grad: variable %d is int32 (labels or ids), which has no gradient", i + 1);
    return x;
}

/* grad(y, {x, ...}): the gradients of the scalar y with respect to each
 * x, as a list (grad(y, x): the one tensor). They are values like any
 * other, so a loss may hold them (a gradient penalty, an SGD step inside
 * the model), and the training pass differentiates them again. */
static int l_grad(lua_State *L)
{
    Front *f = front(L);
    Graph *g = f->g;
    if (f->frozen)
        luaL_error(L, "grad: the model has returned; nothing may add to it now");
    int y = tensor_arg(L, 1, "grad");
    char s[64];
    shape_str(s, sizeof s, node_of(L, y)->shape);
    if (shape_size(node_of(L, y)->shape) != 1 || node_of(L, y)->dtype != DT_REAL)
        luaL_error(L, "grad: y must be a real scalar (a loss), not %s", s);
    bool one = is_tensor(L, 2);
    int n = one ? 1 : list_len(L, 2, MAX_NODES, "grad");
    if (n < 1)
        luaL_error(L, "grad: needs a tensor, or a table of tensors, to differentiate by");
    lua_settop(L, 2);
    int *wrt = lua_newuserdatauv(L, 2 * (size_t)n * sizeof *wrt, 0);
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, 2);
        wrt[i] = grad_variable(L, i, one);
        lua_pop(L, 1);
    }
    /* What the rules may make, counted before it is made. */
    long most = (long)GRAD_GROWTH * (y + 1) + n;
    if (g->n + most > MAX_NODES)
        luaL_error(L,
                   "grad: the model has %d ops, and its gradient may make %I more: more than "
                   "the %d a model may make",
                   g->n, (lua_Integer)most, MAX_NODES);
    size_t per_node = sizeof(Node) + sizeof(Naming);
    charge(L, (size_t)most * per_node);
    int before = g->n;
    SrcLoc loc = g->loc;
    g->loc = where(L);
    grad_of_values(g, y, n, wrt, wrt + n, true);
    g->loc = loc;
    if (g->n - before > most)
        die("grad made %d nodes, more than the %ld it may", g->n - before, most);
    f->memory -= (size_t)(most - (g->n - before)) * per_node;
    for (int i = before; i < g->n; i++) {
        f->naming = grow(f->naming, i, sizeof *f->naming);
        f->naming[i] = (Naming){.owner = -1};
    }
    /* Said once, naming every variable y does not reach. */
    char unreached[128] = "";
    for (int i = 0, len = 0; i < n; i++)
        if (wrt[n + i] < 0) {
            if (len < (int)sizeof unreached - 16)
                len += snprintf(unreached + len, sizeof unreached - len, "%s%d", len ? ", " : "",
                                i + 1);
            wrt[n + i] = make(L, (Node){.op = OP_CONST, .shape = node_of(L, wrt[i])->shape});
        }
    if (unreached[0]) {
        SrcLoc at = where(L);
        put_printable(stderr, at.file, strlen(at.file));
        fprintf(stderr, ":%d: warning: grad: y does not depend on variable %s: a zero gradient\n",
                at.line, unreached);
    }
    if (one)
        return push_tensor(L, wrt[n]);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_tensor(L, wrt[n + i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_argmax(lua_State *L)
{
    int x = tensor_arg(L, 1, "argmax");
    Shape s = node_of(L, x)->shape;
    if (!lua_isnoneornil(L, 2) &&
        axis_arg(L, luaL_checkinteger(L, 2), s.rank, "argmax") != s.rank - 1)
        return luaL_error(L, "argmax: along the last axis only (transpose first)");
    return push_tensor(L, op1(L, OP_ARGMAX, x));
}

/* ---- shapes ---- */

static Shape shape_arg(lua_State *L, int idx, const char *what);
static void label_classes(lua_State *L, int y, int classes, const char *op);

/* reshape(x, {dims}), one dimension of which may be -1: what is left. */
static int reshape_to(lua_State *L, int x, int idx, const char *op)
{
    Shape from = node_of(L, x)->shape, to = {0};
    int rank = list_len(L, idx, MAX_RANK, op), infer = -1;
    long known = 1;
    for (int i = 0; i < rank; i++) {
        lua_rawgeti(L, idx, i + 1);
        lua_Integer d = luaL_checkinteger(L, -1);
        lua_pop(L, 1);
        if (d == -1 && infer < 0)
            infer = i;
        else if (d < 1 || d > 2147483647)
            luaL_error(L, "%s: dimension %d must be a positive integer (or one -1), got %d", op,
                       i + 1, (int)d);
        else /* saturating, as shape_size does: six dimensions overflow a long */
            known = known > LONG_MAX / d ? LONG_MAX : known * d;
        to.dim[to.rank++] = (int)(d > 0 ? d : 1);
    }
    if (infer >= 0) {
        if (known == 0 || shape_size(from) % known)
            /* %I: Lua's own formats have no %ld */
            luaL_error(L, "%s: %I elements do not divide into rows of %I", op,
                       (lua_Integer)shape_size(from), (lua_Integer)known);
        to.dim[infer] = (int)(shape_size(from) / known);
    }
    return make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {x}, .shape = to});
}

static int l_reshape(lua_State *L)
{
    int x = tensor_arg(L, 1, "reshape");
    return push_tensor(L, reshape_to(L, x, 2, "reshape"));
}

/* flatten(x): [N, everything else] */
static int l_flatten(lua_State *L)
{
    int x = tensor_arg(L, 1, "flatten");
    Shape s = node_of(L, x)->shape;
    Shape to = {2, {s.rank ? s.dim[0] : 1, (int)(shape_size(s) / (s.rank ? s.dim[0] : 1))}};
    return push_tensor(L, make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {x}, .shape = to}));
}

/* expand_dims(x, axis): a new axis of size 1 at axis (1 .. rank + 1) */
static int l_expand_dims(lua_State *L)
{
    int x = tensor_arg(L, 1, "expand_dims");
    Shape s = node_of(L, x)->shape, to = {0};
    int at = axis_arg(L, luaL_checkinteger(L, 2), s.rank + 1, "expand_dims");
    if (s.rank + 1 > MAX_RANK)
        return luaL_error(L, "expand_dims: rank %d is the most", MAX_RANK);
    for (int i = 0; i <= s.rank; i++)
        to.dim[to.rank++] = i == at ? 1 : s.dim[i - (i > at)];
    return push_tensor(L, make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {x}, .shape = to}));
}

/* squeeze(x, axis): drops an axis of size 1 */
static int l_squeeze(lua_State *L)
{
    int x = tensor_arg(L, 1, "squeeze");
    Shape s = node_of(L, x)->shape, to = {0};
    int at = axis_arg(L, luaL_checkinteger(L, 2), s.rank, "squeeze");
    if (s.dim[at] != 1)
        return luaL_error(L, "squeeze: axis %d has size %d, not 1", at + 1, s.dim[at]);
    for (int i = 0; i < s.rank; i++)
        if (i != at)
            to.dim[to.rank++] = s.dim[i];
    return push_tensor(L, make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {x}, .shape = to}));
}

/* permute(x, {axes}): output axis i is input axis axes[i] (from 1) */
static int l_permute(lua_State *L)
{
    int x = tensor_arg(L, 1, "permute");
    Shape s = node_of(L, x)->shape;
    Node n = {.op = OP_PERMUTE, .n_in = 1, .in = {x}};
    int n_axes = list_len(L, 2, MAX_RANK, "permute");
    if (n_axes != s.rank)
        return luaL_error(L, "permute: %d axes for a rank %d tensor", n_axes, s.rank);
    for (int i = 0; i < s.rank; i++) {
        lua_rawgeti(L, 2, i + 1);
        n.axes[i] = axis_arg(L, luaL_checkinteger(L, -1), s.rank, "permute");
        lua_pop(L, 1);
    }
    return push_tensor(L, make(L, n));
}

/* transpose(x) swaps a matrix's axes; transpose(x, a, b) any two */
static int l_transpose(lua_State *L)
{
    int x = tensor_arg(L, 1, "transpose");
    Shape s = node_of(L, x)->shape;
    if (lua_isnoneornil(L, 2))
        return push_tensor(L, op1(L, OP_TRANSPOSE, x));
    int a = axis_arg(L, luaL_checkinteger(L, 2), s.rank, "transpose");
    int b = axis_arg(L, luaL_checkinteger(L, 3), s.rank, "transpose");
    Node n = {.op = OP_PERMUTE, .n_in = 1, .in = {x}};
    for (int i = 0; i < s.rank; i++)
        n.axes[i] = i == a ? b : i == b ? a : i;
    return push_tensor(L, make(L, n));
}

/* slice(x, axis, first, last): elements first..last (from 1, inclusive;
 * negative from the end) along axis */
static int l_slice(lua_State *L)
{
    int x = tensor_arg(L, 1, "slice");
    Shape s = node_of(L, x)->shape;
    int a = axis_arg(L, luaL_checkinteger(L, 2), s.rank, "slice");
    lua_Integer first = luaL_checkinteger(L, 3), last = luaL_optinteger(L, 4, first);
    first = first < 0 ? s.dim[a] + first + 1 : first;
    last = last < 0 ? s.dim[a] + last + 1 : last;
    if (first < 1 || last > s.dim[a] || first > last)
        return luaL_error(L, "slice: %d..%d is not within 1..%d of axis %d", (int)first, (int)last,
                          s.dim[a], a + 1);
    Node n = {.op = OP_SLICE, .n_in = 1, .in = {x}, .shape = s};
    n.axes[a] = (int)first - 1;
    n.shape.dim[a] = (int)(last - first + 1);
    return push_tensor(L, make(L, n));
}

/* pad(x, axis, before, after): zeros around x along axis */
static int l_pad(lua_State *L)
{
    int x = tensor_arg(L, 1, "pad");
    Shape s = node_of(L, x)->shape;
    int a = axis_arg(L, luaL_checkinteger(L, 2), s.rank, "pad");
    lua_Integer before = luaL_checkinteger(L, 3), after = luaL_optinteger(L, 4, 0);
    /* Each margin bounded alone first: their sum could overflow. */
    if (before < 0 || after < 0 || before > 2147483647 || after > 2147483647 ||
        before + after + s.dim[a] > 2147483647)
        return luaL_error(L, "pad: margins must be numbers >= 0");
    Node n = {.op = OP_PAD, .n_in = 1, .in = {x}, .shape = s};
    n.axes[a] = (int)before;
    n.shape.dim[a] += (int)(before + after);
    return push_tensor(L, make(L, n));
}

/* concat({a, b, ...}, axis): joined along axis (the first by default) */
static int l_concat(lua_State *L)
{
    int n = list_len(L, 1, MAX_IN, "concat");
    if (n < 1)
        return luaL_error(L, "concat: needs a table of 1 to %d tensors", MAX_IN);
    Node c = {.op = OP_CONCAT, .n_in = n};
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        c.in[i] = tensor_arg(L, lua_gettop(L), "concat");
        lua_pop(L, 1);
    }
    c.axes[0] = axis_arg(L, luaL_optinteger(L, 2, 1), node_of(L, c.in[0])->shape.rank, "concat");
    return push_tensor(L, make(L, c));
}

/* stack({a, b, ...}, axis): along a new axis */
static int l_stack(lua_State *L)
{
    int n = list_len(L, 1, MAX_IN, "stack");
    lua_Integer axis = luaL_optinteger(L, 2, 1);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushcfunction(L, l_expand_dims);
        lua_rawgeti(L, 1, i + 1);
        lua_pushinteger(L, axis);
        lua_call(L, 2, 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, 1);
    lua_settop(L, 1);
    lua_pushinteger(L, axis);
    return l_concat(L);
}

/* broadcast_to(x, {dims}): NumPy's rules */
static int l_broadcast_to(lua_State *L)
{
    int x = tensor_arg(L, 1, "broadcast_to");
    Shape s = node_of(L, x)->shape, to = shape_arg(L, 2, "broadcast_to");
    int lead = to.rank - s.rank, axis_of[MAX_RANK];
    if (lead < 0)
        return luaL_error(L, "broadcast_to: cannot lower the rank");
    for (int i = 0; i < to.rank; i++) {
        int j = i - lead;
        if (j >= 0 && s.dim[j] != 1 && s.dim[j] != to.dim[i])
            return luaL_error(L, "broadcast_to: axis %d has size %d, not 1 or %d", j + 1, s.dim[j],
                              to.dim[i]);
        axis_of[i] = j;
    }
    Node n = {.op = OP_BROADCAST, .n_in = 1, .in = {x}, .shape = to};
    memcpy(n.axes, axis_of, sizeof axis_of);
    return push_tensor(L, make(L, n));
}

/* one_hot(labels, classes): int32 labels to rows of 0s and a 1 */
static int l_one_hot(lua_State *L)
{
    int y = tensor_arg(L, 1, "one_hot");
    lua_Integer c = luaL_checkinteger(L, 2);
    if (c < 1 || c > 1 << 20)
        return luaL_error(L, "one_hot: %d classes?", (int)c);
    int id = make(L, (Node){.op = OP_ONE_HOT, .n_in = 1, .in = {y}, .value = (double)c});
    label_classes(L, y, (int)c, "one_hot");
    return push_tensor(L, id);
}

/* ---- convolution, pooling, sequences ---- */

static void label_classes(lua_State *L, int y, int classes, const char *op);

static int im2col(lua_State *L, int x, int k, int stride, int pad)
{
    return make(L, (Node){.op = OP_IM2COL, .n_in = 1, .in = {x}, .axes = {k, k, stride, pad}});
}

static int int_field(lua_State *L, int idx, const char *key, int dflt)
{
    if (!lua_istable(L, idx))
        return dflt;
    lua_getfield(L, idx, key);
    int v = lua_isnil(L, -1) ? dflt : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

/* conv2d(x [N,C,H,W], w [F,C,K,K] [, b [F]] [, {stride=, padding=}]):
 * the rows of receptive fields times the filters, one GEMM, then laid out
 * as images [N, F, OH, OW]. */
static int l_conv2d(lua_State *L)
{
    int x = tensor_arg(L, 1, "conv2d"), w = tensor_arg(L, 2, "conv2d");
    int b = is_tensor(L, 3) ? tensor_arg(L, 3, "conv2d") : -1;
    int opts = b >= 0 ? 4 : 3;
    int stride = int_field(L, opts, "stride", 1), pad = int_field(L, opts, "padding", 0);
    Shape xs = node_of(L, x)->shape, ws = node_of(L, w)->shape;
    if (xs.rank == 4 && ws.rank == 4 && ws.dim[1] != xs.dim[1])
        return luaL_error(L, "conv2d: the images have %d channels, the filters [F,C,K,K] expect %d",
                          xs.dim[1], ws.dim[1]);
    if (xs.rank != 4 || ws.rank != 4 || ws.dim[2] != ws.dim[3]) {
        char a[64], c[64];
        shape_str(a, sizeof a, xs);
        shape_str(c, sizeof c, ws);
        return luaL_error(L, "conv2d: images [N,C,H,W] and square filters [F,C,K,K], got %s and %s",
                          a, c);
    }
    int f = ws.dim[0], k = ws.dim[2], first = front(L)->g->n;
    int cols = im2col(L, x, k, stride, pad);
    role(L, cols, "cols");
    Shape rs = node_of(L, cols)->shape;
    int oh = (xs.dim[2] + 2 * pad - k) / stride + 1, ow = (xs.dim[3] + 2 * pad - k) / stride + 1;
    int wm = make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {w}, .shape = {2, {f, rs.dim[1]}}});
    int y = make(L, (Node){.op = OP_MATMUL, .n_in = 2, .in = {cols, wm}, .trans_b = true});
    y = make(L,
             (Node){.op = OP_RESHAPE, .n_in = 1, .in = {y}, .shape = {4, {xs.dim[0], oh, ow, f}}});
    y = make(L, (Node){.op = OP_PERMUTE, .n_in = 1, .in = {y}, .axes = {0, 3, 1, 2}});
    if (b >= 0) {
        int bb = make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {b}, .shape = {3, {f, 1, 1}}});
        y = op2(L, OP_ADD, y, bb);
    }
    return push_tensor(L, composite(L, first, y, "conv2d"));
}

/* Pools: max_pool2d window by window; avg_pool2d as each channel's k x k
 * windows as rows, summed along the row. */
static int pool(lua_State *L, int op, const char *name)
{
    int x = tensor_arg(L, 1, name);
    int k = (int)luaL_checkinteger(L, 2), stride = (int)luaL_optinteger(L, 3, k);
    Shape s = node_of(L, x)->shape;
    if (s.rank != 4)
        return luaL_error(L, "%s: needs images [N,C,H,W]", name);
    if (op == OP_MAX) { /* read in place, window by window */
        /* Of a relu, the relu of the pool: the same values (relu keeps
         * order, so it commutes with max) and the same gradient (the
         * maxima are the same elements), with the relu and its gradient on
         * a quarter of the elements (2x2 windows); the CNN's step, 0.97 of
         * its time. */
        const Node *in = node_of(L, x);
        bool relu = in->op == OP_RELU;
        int y = make(L, (Node){.op = OP_MAX_POOL,
                               .n_in = 1,
                               .in = {relu ? in->in[0] : x},
                               .axes = {k, k, stride, 0}});
        return push_tensor(L, relu ? make(L, (Node){.op = OP_RELU, .n_in = 1, .in = {y}}) : y);
    }
    int first = front(L)->g->n;
    int one = make(L, (Node){.op = OP_RESHAPE,
                             .n_in = 1,
                             .in = {x},
                             .shape = {4, {s.dim[0] * s.dim[1], 1, s.dim[2], s.dim[3]}}});
    int cols = im2col(L, one, k, stride, 0);
    Axes last = {.count = (double)k * k};
    last.reduced[1] = true;
    int r = reduce_node(L, op, cols, last, false);
    if (op == OP_SUM)
        r = scale(L, r, 1.0 / (k * k));
    int oh = (s.dim[2] - k) / stride + 1, ow = (s.dim[3] - k) / stride + 1;
    role(L, cols, "cols");
    int y = make(
        L,
        (Node){.op = OP_RESHAPE, .n_in = 1, .in = {r}, .shape = {4, {s.dim[0], s.dim[1], oh, ow}}});
    return push_tensor(L, composite(L, first, y, name));
}

static int l_max_pool2d(lua_State *L) { return pool(L, OP_MAX, "max_pool2d"); }
static int l_avg_pool2d(lua_State *L) { return pool(L, OP_SUM, "avg_pool2d"); }

/* global_avg_pool(x [N,C,H,W]) = the mean of each channel: [N, C] */
static int l_global_avg_pool(lua_State *L)
{
    int x = tensor_arg(L, 1, "global_avg_pool");
    Shape s = node_of(L, x)->shape;
    if (s.rank != 4)
        return luaL_error(L, "global_avg_pool: needs images [N,C,H,W]");
    Axes hw = {.count = (double)s.dim[2] * s.dim[3]};
    hw.reduced[2] = hw.reduced[3] = true;
    int first = front(L)->g->n;
    int y = scale(L, reduce_node(L, OP_SUM, x, hw, false), 1 / hw.count);
    return push_tensor(L, composite(L, first, y, "global_avg_pool"));
}

/* embedding(table [V, D], ids int32 [...]) = the rows the ids pick */
static int l_embedding(lua_State *L)
{
    int t = tensor_arg(L, 1, "embedding"), ids = tensor_arg(L, 2, "embedding");
    int id = op2(L, OP_EMBEDDING, t, ids);
    label_classes(L, ids, node_of(L, t)->shape.dim[0], "embedding");
    return push_tensor(L, id);
}

/* causal_mask(scores [..., T, T]): -inf above the diagonal, so a position
 * attends to itself and the past only */
static int l_causal_mask(lua_State *L)
{
    int x = tensor_arg(L, 1, "causal_mask");
    Shape s = node_of(L, x)->shape;
    if (s.rank < 2 || s.dim[s.rank - 1] != s.dim[s.rank - 2])
        return luaL_error(L, "causal_mask: needs square scores [..., T, T]");
    return push_tensor(L,
                       make(L, (Node){.op = OP_CAUSAL, .n_in = 1, .in = {x}, .value = -INFINITY}));
}

/* Labels learn their range from what reads them, so the runtime can check
 * data; through reshapes, back to the input. */
static void label_classes(lua_State *L, int y, int classes, const char *op)
{
    Node *labels = ir_at(front(L)->g, y);
    while (labels->op == OP_RESHAPE)
        labels = ir_at(front(L)->g, labels->in[0]);
    if (labels->op != OP_INPUT)
        return;
    if (labels->classes && labels->classes != classes)
        luaL_error(L, "%s: labels '%s' already index %d classes, here %d", op, labels->name,
                   labels->classes, classes);
    labels->classes = classes;
}

/* Per-row losses of scores [..., C] against int32 labels [...]: the rows
 * are flattened for the kernel and the losses take the labels' shape. */
static int row_loss(lua_State *L, int op)
{
    int s = tensor_arg(L, 1, op_info[op].name), y = tensor_arg(L, 2, op_info[op].name);
    Shape ss = node_of(L, s)->shape, ys = node_of(L, y)->shape;
    if (ss.rank > 2 && ys.rank == ss.rank - 1) {
        int c = ss.dim[ss.rank - 1];
        Shape rows = {2, {(int)(shape_size(ss) / c), c}}, flat = {1, {rows.dim[0]}};
        int s2 = make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {s}, .shape = rows});
        int y2 = make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {y}, .shape = flat});
        int l = make(L, (Node){.op = op, .n_in = 2, .in = {s2, y2}});
        label_classes(L, y, c, op_info[op].name);
        return push_tensor(L, make(L, (Node){.op = OP_RESHAPE, .n_in = 1, .in = {l}, .shape = ys}));
    }
    int id = make(L, (Node){.op = op, .n_in = 2, .in = {s, y}});
    label_classes(L, y, ss.dim[ss.rank - 1], op_info[op].name);
    return push_tensor(L, id);
}

static int l_hinge(lua_State *L) { return row_loss(L, OP_HINGE); }
static int l_xent(lua_State *L) { return row_loss(L, OP_XENT); }

static int l_tostring(lua_State *L)
{
    const Node *n = node_of(L, *(int *)luaL_checkudata(L, 1, TENSOR));
    char s[64];
    shape_str(s, sizeof s, n->shape);
    lua_pushfstring(L, "tensor %s%s%s %s (%s:%d)", op_info[n->op].name, n->name ? " " : "",
                    n->name ? n->name : "", s, n->loc.file, n->loc.line);
    return 1;
}

/* ---- inputs and parameters ---- */

static const char *name_arg(lua_State *L, const char *what)
{
    const char *name = luaL_checkstring(L, 1);
    if (!is_c_identifier(name) || strlen(name) > 64)
        luaL_error(L, "%s: name '%s' must be letters, digits and _ (at most 64)", what, name);
    int taken = named(L, name);
    if (taken >= 0)
        name_taken(L, what, name, taken);
    return keep(xstrdup(name));
}

static Shape shape_arg(lua_State *L, int idx, const char *what)
{
    Shape s = {0};
    int rank = list_len(L, idx, MAX_RANK, what);
    for (int i = 0; i < rank; i++) {
        lua_rawgeti(L, idx, i + 1);
        int ok;
        lua_Integer d = lua_tointegerx(L, -1, &ok);
        if (!ok || d < 1 || d > 2147483647)
            luaL_error(L, "%s: dimension %d must be a positive integer, got %s", what, i + 1,
                       luaL_tolstring(L, -1, NULL));
        s.dim[s.rank++] = (int)d;
        lua_pop(L, 1);
    }
    return s;
}

static int l_input(lua_State *L)
{
    const char *name = name_arg(L, "input");
    Shape s = shape_arg(L, 2, "input");
    const char *type = luaL_optstring(L, 3, "float");
    DType dt = !strcmp(type, "int32") ? DT_I32 : DT_REAL;
    if (dt == DT_REAL && strcmp(type, "float"))
        return luaL_error(L, "input: type must be \"float\" or \"int32\", got \"%s\"", type);
    if (s.rank < 1)
        return luaL_error(L, "input: '%s' needs a batch dimension first", name);
    int id = make(L, (Node){.op = OP_INPUT, .name = name, .shape = s, .dtype = dt});
    Graph *g = front(L)->g;
    g->inputs = grow(g->inputs, g->n_inputs, sizeof *g->inputs);
    g->inputs[g->n_inputs++] = id;
    return push_tensor(L, id);
}

/* Initializers are tagged tables: randn(std), uniform(lo, hi), zeros(), ones(). */
static int push_init(lua_State *L, const char *kind, double a, double b)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "init");
    lua_pushnumber(L, a);
    lua_setfield(L, -2, "a");
    lua_pushnumber(L, b);
    lua_setfield(L, -2, "b");
    return 1;
}

static int l_randn(lua_State *L) { return push_init(L, "normal", 0, luaL_optnumber(L, 1, 1)); }
static int l_uniform(lua_State *L)
{
    return push_init(L, "uniform", luaL_checknumber(L, 1), luaL_checknumber(L, 2));
}
static int l_zeros(lua_State *L) { return push_init(L, "const", 0, 0); }
static int l_ones(lua_State *L) { return push_init(L, "const", 1, 0); }

/* A number of an initializer's table, which the model may have changed
 * since randn() made it: read raw, and checked here. */
static double number_field(lua_State *L, int idx, const char *key, const char *param)
{
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    double v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !isfinite(v))
        luaL_error(L, "param: the initializer of '%s' needs a finite number as its %s", param, key);
    lua_pop(L, 1);
    return v;
}

static int l_param(lua_State *L)
{
    const char *name = name_arg(L, "param");
    Shape s = shape_arg(L, 2, "param");
    Node n = {.op = OP_PARAM, .name = name, .shape = s};
    const char *kind = NULL;
    if (lua_type(L, 3) == LUA_TTABLE) {
        lua_pushliteral(L, "init");
        kind = lua_rawget(L, 3) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    }
    n.init = !kind                      ? INIT_NONE
             : !strcmp(kind, "normal")  ? INIT_NORMAL
             : !strcmp(kind, "uniform") ? INIT_UNIFORM
             : !strcmp(kind, "const")   ? INIT_CONST
                                        : INIT_NONE;
    if (n.init == INIT_NONE)
        return luaL_error(L,
                          "param: '%s' needs an initializer: randn(std), uniform(lo, hi), "
                          "zeros() or ones()",
                          name);
    n.init_a = number_field(L, 3, "a", name);
    n.init_b = number_field(L, 3, "b", name);
    if ((n.init == INIT_NORMAL && n.init_b < 0) || (n.init == INIT_UNIFORM && n.init_a > n.init_b))
        return luaL_error(L, "param: '%s': randn needs a std >= 0, uniform lo <= hi", name);
    int id = make(L, n);
    Graph *g = front(L)->g;
    g->params = grow(g->params, g->n_params, sizeof *g->params);
    g->params[g->n_params++] = (Param){id, -1};
    return push_tensor(L, id);
}

/* The bindings written by hand: the ops that take options, and the
 * composites. The plain ops are bound from their ops.def rows. */
static const struct {
    const char *name;
    lua_CFunction fn;
    LuaBinding as;
} bindings[] = {
    {"input", l_input, LUA_FUNCTION},
    {"param", l_param, LUA_FUNCTION},
    {"randn", l_randn, LUA_FUNCTION},
    {"uniform", l_uniform, LUA_FUNCTION},
    {"zeros", l_zeros, LUA_FUNCTION},
    {"ones", l_ones, LUA_FUNCTION},
    {"matmul", l_matmul, LUA_METHOD},
    {"transpose", l_transpose, LUA_METHOD},
    {"sum", l_sum, LUA_METHOD},
    {"mean", l_mean, LUA_METHOD},
    {"pow", l_pow, LUA_METHOD},
    {"hinge_loss", l_hinge, LUA_FUNCTION},
    {"cross_entropy", l_xent, LUA_FUNCTION},
    {"leaky_relu", l_leaky_relu, LUA_METHOD},
    {"gelu", l_gelu, LUA_METHOD},
    {"clamp", l_clamp, LUA_METHOD},
    {"max", l_max, LUA_METHOD},
    {"min", l_min, LUA_METHOD},
    {"argmax", l_argmax, LUA_METHOD},
    {"logsumexp", l_logsumexp, LUA_METHOD},
    {"variance", l_variance, LUA_METHOD},
    {"reshape", l_reshape, LUA_METHOD},
    {"flatten", l_flatten, LUA_METHOD},
    {"permute", l_permute, LUA_METHOD},
    {"slice", l_slice, LUA_METHOD},
    {"pad", l_pad, LUA_METHOD},
    {"concat", l_concat, LUA_FUNCTION},
    {"stack", l_stack, LUA_FUNCTION},
    {"expand_dims", l_expand_dims, LUA_METHOD},
    {"squeeze", l_squeeze, LUA_METHOD},
    {"broadcast_to", l_broadcast_to, LUA_METHOD},
    {"one_hot", l_one_hot, LUA_FUNCTION},
    {"softmax", l_softmax, LUA_METHOD},
    {"log_softmax", l_log_softmax, LUA_METHOD},
    {"mse", l_mse, LUA_FUNCTION},
    {"bce_with_logits", l_bce_with_logits, LUA_FUNCTION},
    {"l2", l_l2, LUA_FUNCTION},
    {"params", l_params, LUA_FUNCTION},
    {"grad", l_grad, LUA_FUNCTION},
    {"conv2d", l_conv2d, LUA_FUNCTION},
    {"max_pool2d", l_max_pool2d, LUA_FUNCTION},
    {"avg_pool2d", l_avg_pool2d, LUA_FUNCTION},
    {"global_avg_pool", l_global_avg_pool, LUA_FUNCTION},
    {"embedding", l_embedding, LUA_FUNCTION},
    {"causal_mask", l_causal_mask, LUA_FUNCTION},
    {"layer_norm", l_layer_norm, LUA_FUNCTION},
    {"batch_norm", l_batch_norm, LUA_FUNCTION},
    {"random_shift", l_random_shift, LUA_FUNCTION},
    {"dropout", l_dropout, LUA_FUNCTION},
};

/* An op bound from its row: arity tensors or numbers. A MATH op given a
 * plain number gives its math function of it, so it can stand in for
 * math's. */
static int l_op(lua_State *L)
{
    const OpInfo *info = &op_info[lua_tointeger(L, lua_upvalueindex(1))];
    if (info->number && lua_type(L, 1) == LUA_TNUMBER) {
        lua_pushnumber(L, info->number(lua_tonumber(L, 1)));
        return 1;
    }
    Node n = {.op = (int)(info - op_info), .n_in = info->arity};
    for (int k = 0; k < info->arity; k++)
        n.in[k] = tensor_arg(L, k + 1, info->name);
    return push_tensor(L, make(L, n));
}

/* Sets the model language's functions (as = LUA_FUNCTION) or its tensor
 * methods (LUA_METHOD) into the table on top of the stack. */
static void set_bindings(lua_State *L, LuaBinding as)
{
    for (size_t i = 0; i < sizeof bindings / sizeof *bindings; i++)
        if (bindings[i].as >= as) {
            lua_pushcfunction(L, bindings[i].fn);
            lua_setfield(L, -2, bindings[i].name);
        }
    for (int op = 0; op < N_OPS; op++)
        if (op_info[op].lua >= as) {
            lua_pushinteger(L, op);
            lua_pushcclosure(L, l_op, 1);
            lua_setfield(L, -2, op_info[op].name);
        }
}

void open_model_language(lua_State *L) { set_bindings(L, LUA_FUNCTION); }

/* A tensor's fields: its shape, and the methods (an upvalue: a table the
 * model cannot reach). */
static int l_index(lua_State *L)
{
    const Node *n = node_of(L, *(int *)luaL_checkudata(L, 1, TENSOR));
    const char *key = luaL_checkstring(L, 2);
    if (!strcmp(key, "shape")) {
        lua_createtable(L, n->shape.rank, 0);
        for (int i = 0; i < n->shape.rank; i++) {
            lua_pushinteger(L, n->shape.dim[i]);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    }
    if (lua_getfield(L, lua_upvalueindex(1), key) == LUA_TFUNCTION)
        return 1;
    return luaL_error(L, "tensors have no field or method '%s'", key);
}

void make_tensor_metatable(lua_State *L)
{
    static const luaL_Reg meta[] = {
        {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul},           {"__div", l_div},
        {"__unm", l_neg}, {"__pow", l_pow}, {"__tostring", l_tostring}, {NULL, NULL},
    };
    luaL_newmetatable(L, TENSOR);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    set_bindings(L, LUA_METHOD);
    lua_getfield(L, -1, "transpose"); /* x:t(), and x:view() as in Torch */
    lua_setfield(L, -2, "t");
    lua_getfield(L, -1, "reshape");
    lua_setfield(L, -2, "view");
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
