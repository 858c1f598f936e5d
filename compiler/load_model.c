/*
 * load_model.c: the front end. Runs a Lua model file in the sandbox
 * (sandbox.c), with the model language (language.c), model{}, the
 * optimizers, import and config in reach, and checks the graph it made
 * as a whole. Nothing reaches back to the Lua state once load_model()
 * returns: the graph is frozen then.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "front.h"

static int l_import(lua_State *L);
static void push_env(lua_State *L);
static bool module_exists(lua_State *L, const char *name);

/* ---- model{} and optimizers ---- */

/* sgd{ lr = 0.1 }, adam{ lr = 1e-3, beta2 = 0.99 }, ...: a table naming the
 * kind (the upvalue) and holding only settings that kind takes. */
/* The setting of an optimizer of this kind under lua_next's key (at -2)
 * and value (-1). Checked where sgd{} makes the table and again where
 * model{} reads it: the model may have changed it in between. */
static double *setting(lua_State *L, int kind, Optimizer *o)
{
    const char *name = optim_info[kind].name;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    double *field = optim_takes(kind, k) ? optim_setting(o, k) : NULL;
    if (!field)
        luaL_error(L, "%s: unknown setting '%s' (%s takes lr, weight_decay, clip%s%s)", name, k,
                   name, *optim_info[kind].settings ? " and " : "", optim_info[kind].settings);
    double v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0) || !isfinite(v))
        luaL_error(L, "%s: %s must be a finite number >= 0", name, k);
    *field = v;
    return field;
}

static int l_optimizer(lua_State *L)
{
    int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
    Optimizer o = optim_info[kind].defaults;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        setting(L, kind, &o);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, 1);
    lua_pushinteger(L, kind);
    lua_setfield(L, -2, "optimizer");
    return 1;
}

/* The optimizer table of model{}: its kind's defaults, then its settings. */
static void read_optimizer(lua_State *L, int idx, Optimizer *o)
{
    lua_pushliteral(L, "optimizer");
    lua_rawget(L, idx);
    lua_Integer kind = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    if (kind < 0 || kind >= N_OPTIMS)
        luaL_error(L, "model: optimizer must be sgd{...}, momentum{...}, nesterov{...}, "
                      "adam{...}, adamw{...}, rmsprop{...} or newton_cg{...}");
    lua_pop(L, 1);
    *o = optim_info[kind].defaults;
    o->kind = (int)kind;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "optimizer"))
            setting(L, o->kind, o);
        lua_pop(L, 1);
    }
    if (!(o->lr > 0))
        luaL_error(L, "%s: lr must be positive", optim_info[o->kind].name);
}

static int output_cmp(const void *a, const void *b)
{
    return strcmp(((const Output *)a)->name, ((const Output *)b)->name);
}

static void read_outputs(lua_State *L, Graph *g)
{
    if (lua_getfield(L, 1, "outputs") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "model: outputs must be a table of name = tensor");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || !is_c_identifier(lua_tostring(L, -2)) ||
            !is_tensor(L, -1))
            luaL_error(L, "model: outputs must be a table of name = tensor");
        g->outputs = grow(g->outputs, g->n_outputs, sizeof *g->outputs);
        g->outputs[g->n_outputs++] = (Output){keep(xstrdup(lua_tostring(L, -2))), tensor_id(L, -1)};
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* Table order is not deterministic; the generated code must be. (An
     * empty table leaves outputs NULL, which qsort may not be given.) */
    if (g->n_outputs > 1)
        qsort(g->outputs, g->n_outputs, sizeof *g->outputs, output_cmp);
}

static int l_model(lua_State *L)
{
    Front *f = front(L);
    Graph *g = f->g;
    luaL_checktype(L, 1, LUA_TTABLE);
    if (f->have_model)
        return luaL_error(L, "model: called twice; a model file describes one model");
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        if (strcmp(k, "loss") && strcmp(k, "outputs") && strcmp(k, "optimizer"))
            return luaL_error(L, "model: unknown field '%s' (model takes loss, outputs, optimizer)",
                              k);
    }
    lua_getfield(L, 1, "loss");
    if (!is_tensor(L, -1))
        return luaL_error(L, "model: loss is missing: model{ loss = sum(...), ... }");
    g->loss = tensor_id(L, -1);
    Shape ls = node_of(L, g->loss)->shape;
    if (ls.rank != 0) {
        char s[64];
        shape_str(s, sizeof s, ls);
        return luaL_error(
            L, "model: the loss must be a scalar, got %s: reduce it with sum() or mean()", s);
    }
    read_outputs(L, g);
    if (lua_getfield(L, 1, "optimizer") == LUA_TTABLE)
        read_optimizer(L, lua_gettop(L), &g->opt);
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "model: optimizer must be sgd{...}, adam{...}, ...");
    f->have_model = true;
    f->model_loc = where(L);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    f->model_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int l_undefined(lua_State *L)
{
    const char *name = luaL_tolstring(L, 2, NULL);
    if (module_exists(L, name))
        return luaL_error(
            L, "'%s' is not defined: it is a module; load it with local %s = import(\"%s\")", name,
            name, name);
    return luaL_error(L, "'%s' is not defined: not an op of gradc, nor a global set by the model",
                      name);
}

/* A fresh environment for a chunk: the model language and a safe subset
 * of Lua's standard library. */
static void push_env(lua_State *L)
{
    static const luaL_Reg model_files[] = {
        {"model", l_model},
        {"import", l_import},
        {NULL, NULL},
    };
    sandbox_library(L);
    open_model_language(L);
    luaL_setfuncs(L, model_files, 0);
    for (int k = 0; k < N_OPTIMS; k++) {
        lua_pushinteger(L, k);
        lua_pushcclosure(L, l_optimizer, 1);
        lua_setfield(L, -2, optim_info[k].name);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "gradc.config");
    lua_setfield(L, -2, "config");
    lua_newtable(L);
    lua_pushcfunction(L, l_undefined);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* Loads a Lua file as a text chunk in its own sandbox environment and
 * leaves the function on the stack. */
static void load_chunk(lua_State *L, const char *path, const char *text, size_t len)
{
    load_text(L, path, text, len);
    push_env(L);
    lua_setupvalue(L, -2, 1);
}

/* Where module `name` is: next to the model, then the modules installed
 * with gradc, or (run from a build tree: build/gradc, build/san/gradc)
 * the tree's own. Only looked at, not read: a model that asks for many
 * undefined names costs a few stats each, no memory. */
static bool module_path(lua_State *L, const char *name, char path[4096])
{
    const char *formats[] = {"%s/lib/%s.lua", "%s/../share/gradc/lib/%s.lua",
                             "%s/../models/lib/%s.lua", "%s/../../models/lib/%s.lua"};
    const char *dirs[] = {front(L)->dir, gradc_dir(), gradc_dir(), gradc_dir()};
    if (!is_c_identifier(name) || strlen(name) > MAX_VAR)
        return false;
    for (int i = 0; i < 4; i++) {
        snprintf(path, 4096, formats[i], dirs[i], name);
        if (is_file(path))
            return true;
    }
    return false;
}

static bool module_exists(lua_State *L, const char *name)
{
    char path[4096];
    return module_path(L, name, path);
}

static int l_import(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!is_c_identifier(name))
        return luaL_error(L, "import: '%s' is not a module name (letters, digits, _; no paths)",
                          name);
    lua_getfield(L, LUA_REGISTRYINDEX, "gradc.imports");
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    char path[4096];
    if (module_path(L, name, path)) {
        size_t len;
        char *text = read_file(L, path, &len);
        load_chunk(L, path, text, len);
        lua_call(L, 0, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name);
        return 1;
    }
    return luaL_error(L, "import: no module '%s' in %s/lib or gradc's own modules", name,
                      front(L)->dir);
}

/* config.KEY: the -D values, through a table that notes each key the
 * model reads, so that a -D no one reads (a misspelt key) is said. */
static int l_config_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    lua_pushboolean(L, 1);
    lua_rawset(L, lua_upvalueindex(2)); /* read[key] = true */
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

/* Going through config reads every key. */
static int l_config_pairs(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, lua_upvalueindex(1))) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, lua_upvalueindex(2));
    }
    lua_getglobal(L, "next");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushnil(L);
    return 3;
}

/* "KEY=VALUE" into the table at index t: numbers stay numbers, true and
 * false are booleans, the rest strings. */
static void put_define(lua_State *L, int t, const char *d)
{
    const char *eq = strchr(d, '=');
    lua_pushlstring(L, d, eq - d);
    if (!strcmp(eq + 1, "true") || !strcmp(eq + 1, "false"))
        lua_pushboolean(L, eq[1] == 't');
    else if (!lua_stringtonumber(L, eq + 1))
        lua_pushstring(L, eq + 1);
    lua_settable(L, t);
}

/* config: the test config line's values (the table at index test), then
 * the command line's, which win. */
static void set_config(lua_State *L, const LoadOptions *o, int test)
{
    lua_newtable(L); /* the values */
    int values = lua_gettop(L);
    for (lua_Integer i = 1; lua_rawgeti(L, test, i) == LUA_TSTRING; i++) {
        put_define(L, values, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    for (int i = 0; i < o->n_defines; i++)
        put_define(L, values, o->defines[i]);
    lua_newtable(L); /* the keys read */
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "gradc.config_read");
    lua_newtable(L); /* config itself: empty, read through its metatable */
    lua_newtable(L);
    lua_pushvalue(L, -4);
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, l_config_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -4);
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, l_config_pairs, 2);
    lua_setfield(L, -2, "__pairs");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "gradc.config");
    lua_pop(L, 2);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* After the model's run: marks the -D keys it read in o->defines_read, or
 * (with none given) refuses a key it never read, naming those it did. */
static void check_config_read(lua_State *L, const LoadOptions *o)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "gradc.config_read");
    int read_keys = lua_gettop(L);
    for (int i = 0; i < o->n_defines; i++) {
        const char *d = o->defines[i];
        int key_len = (int)(strchr(d, '=') - d);
        lua_pushlstring(L, d, key_len);
        bool read = lua_rawget(L, read_keys) != LUA_TNIL;
        lua_pop(L, 1);
        if (o->defines_read)
            o->defines_read[i] |= read;
        else if (!read) {
            const char *names[64];
            int n = 0;
            lua_pushnil(L);
            while (lua_next(L, read_keys)) {
                lua_pop(L, 1);
                if (lua_type(L, -1) == LUA_TSTRING && n < 64)
                    names[n++] = lua_tostring(L, -1); /* the key stays in the table */
            }
            qsort(names, n, sizeof *names, by_name);
            char keys[512] = "";
            for (int k = 0; k < n; k++)
                snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", k ? ", " : "",
                         names[k]);
            char msg[1024];
            snprintf(msg, sizeof msg,
                     "%s:1: -D %.*s: the model never reads config.%.*s (it reads %s)",
                     front(L)->g->source, key_len, d, key_len, d, keys[0] ? keys : "no config key");
            luaL_error(L, "%s", msg);
        }
    }
    lua_pop(L, 1);
}

static void bad_test_config(lua_State *L, const char *path, int line, const char *what,
                            const char *text, size_t len)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s:%d: test config: %s '%.*s'", path, line, what,
             (int)(len > 40 ? 40 : len), text);
    luaL_error(L, "%s", msg);
}

/* --test-config: the model file's line `-- test config: -D KEY=VALUE ...`,
 * the small size of a big model that make test, generated/ and the
 * gradient checks compile (docs/cli.md). Its "KEY=VALUE"s go into the
 * table on top of the stack, in order, as Lua strings, so the sandbox's
 * memory limit holds; returns the line, or 0 if the file has none. */
static int read_test_config(lua_State *L, const char *path, const char *text, size_t len)
{
    static const char tag[] = "-- test config:";
    const size_t tag_len = sizeof tag - 1;
    int found = 0, n = 0;
    size_t at = 0;
    for (int line = 1; at < len; line++) {
        const char *s = text + at, *nl = memchr(s, '\n', len - at);
        size_t line_len = nl ? (size_t)(nl - s) : len - at;
        at += line_len + 1;
        if (line_len < tag_len || memcmp(s, tag, tag_len))
            continue;
        if (found) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s:%d: test config: a second line (the first is line %d)",
                     path, line, found);
            luaL_error(L, "%s", msg);
        }
        found = line;
        const char *p = s + tag_len, *end = s + line_len;
        bool after_d = false; /* the word after a lone -D is its KEY=VALUE */
        for (;;) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
            const char *w = p;
            while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
                p++;
            size_t w_len = (size_t)(p - w);
            if (!w_len)
                break;
            if (!after_d && w_len == 2 && !memcmp(w, "-D", 2)) {
                after_d = true;
                continue;
            }
            const char *d = w;
            size_t d_len = w_len;
            if (!after_d && w_len > 2 && !memcmp(w, "-D", 2))
                d += 2, d_len -= 2;
            else if (!after_d)
                bad_test_config(L, path, line, "expected -D KEY=VALUE, not", w, w_len);
            after_d = false;
            const char *eq = memchr(d, '=', d_len);
            if (!eq || eq == d || memchr(d, 0, d_len))
                bad_test_config(L, path, line, "expected -D KEY=VALUE, not", w, w_len);
            lua_pushlstring(L, d, d_len);
            lua_rawseti(L, -2, ++n);
        }
        if (after_d)
            bad_test_config(L, path, line, "expected KEY=VALUE after", "-D", 2);
    }
    return found;
}

/* A key of the test config line that the model never reads is as
 * misspelt as a -D one, whatever the command line gives. */
static void check_test_config_read(lua_State *L, const char *path, int line, int test)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "gradc.config_read");
    for (lua_Integer i = 1; lua_rawgeti(L, test, i) == LUA_TSTRING; i++) {
        const char *d = lua_tostring(L, -1);
        size_t key_len = (size_t)(strchr(d, '=') - d);
        lua_pushlstring(L, d, key_len);
        bool read = lua_rawget(L, -3) != LUA_TNIL;
        lua_pop(L, 2);
        if (!read)
            bad_test_config(L, path, line, "the model never reads the config key", d, key_len);
    }
    lua_pop(L, 2);
}

/* The whole model file, run in protected mode: pcall'd so that every Lua
 * error becomes one message. */
static int run_model(lua_State *L)
{
    const char *path = lua_touserdata(L, 1);
    const LoadOptions *o = lua_touserdata(L, 2);
    Front *f = front(L);
    size_t len;
    char *text = read_file(L, path, &len);
    make_tensor_metatable(L);
    lua_newtable(L);
    int test = lua_gettop(L);
    int test_line = o->test_config ? read_test_config(L, path, text, len) : 0;
    set_config(L, o, test);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "gradc.imports");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "gradc.names");
    load_chunk(L, path, text, len);
    lua_call(L, 0, 1);
    if (!f->have_model) {
        int lines = 1;
        for (size_t i = 0; i + 1 < len; i++)
            lines += text[i] == '\n';
        return luaL_error(L, "%s:%d: the model file must end with `return model{ loss = ... }`",
                          path, lines);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, f->model_ref);
    if (!lua_rawequal(L, -1, -2))
        return luaL_error(L, "%s:%d: the model file must return the model{} it builds", path,
                          f->model_loc.line);
    check_config_read(L, o);
    check_test_config_read(L, path, test_line, test);
    name_values(L);
    return 0;
}

/* How the loss adds up over the batch's rows, which an MPI trainer must
 * know to make P processes' batches one batch: kind of node id, given
 * which nodes read an input. A full sum of something that reads the rows,
 * times the constant c right around it, is a mean over them if c is 1 /
 * the batch or 1 / its elements (mean() is such a sum and factor; a
 * factor further out, as in 0.9 * mean(...), only weighs the mean), else
 * a sum; terms of the weights alone (penalties) go with a mean, not with
 * a sum, which each process would count once more. */
static LossRows rows_kind(Graph *g, int id, const bool *reads, double c)
{
    const Node *n = ir_at(g, id);
    if (!reads[id])
        return LOSS_NO_ROWS;
    const int a = n->in[0], b = n->n_in > 1 ? n->in[1] : -1;
    const Node *na = ir_at(g, a), *nb = b >= 0 ? ir_at(g, b) : NULL;
    switch (n->op) {
    case OP_SUM: {
        if (n->shape.rank != 0)
            return LOSS_OTHER;
        double per_row = c * g->batch, per_value = c * (double)shape_size(na->shape);
        return fabs(per_row - 1) < 1e-12 || fabs(per_value - 1) < 1e-12 ? LOSS_MEAN : LOSS_SUM;
    }
    case OP_NEG:
        return rows_kind(g, a, reads, c);
    case OP_MUL:
    case OP_DIV:
        if (nb && nb->op == OP_CONST && nb->shape.rank == 0)
            return rows_kind(g, a, reads, n->op == OP_MUL ? nb->value : 1 / nb->value);
        if (n->op == OP_MUL && na->op == OP_CONST && na->shape.rank == 0)
            return rows_kind(g, b, reads, na->value);
        /* a mean weighed by something of the weights alone stays a mean */
        if (n->op == OP_MUL && !reads[a])
            return rows_kind(g, b, reads, c) == LOSS_MEAN ? LOSS_MEAN : LOSS_OTHER;
        if (!reads[b])
            return rows_kind(g, a, reads, c) == LOSS_MEAN ? LOSS_MEAN : LOSS_OTHER;
        return LOSS_OTHER;
    case OP_ADD:
    case OP_SUB: {
        LossRows x = rows_kind(g, a, reads, c), y = rows_kind(g, b, reads, c);
        if (x == LOSS_NO_ROWS || y == LOSS_NO_ROWS)
            return x == LOSS_MEAN || y == LOSS_MEAN ? LOSS_MEAN : LOSS_OTHER;
        return x == y ? x : LOSS_OTHER;
    }
    default:
        return LOSS_OTHER;
    }
}

static LossRows loss_rows(Graph *g)
{
    bool *reads = xcalloc(g->n, sizeof *reads);
    for (int i = 0; i < g->n; i++) {
        reads[i] = g->nodes[i].op == OP_INPUT;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            reads[i] |= reads[g->nodes[i].in[k]];
    }
    LossRows kind = rows_kind(g, g->loss, reads, 1);
    free(reads);
    return kind;
}

/* Checks that need the whole model: one batch size; a loss that depends
 * on a parameter. */
static const char *check_model(Graph *g, char *err, size_t len)
{
    if (g->n_inputs == 0)
        return snprintf(err, len, "%s:1: the model has no input()", g->source), err;
    const Node *first = ir_at(g, g->inputs[0]);
    g->batch = first->shape.dim[0];
    for (int i = 1; i < g->n_inputs; i++) {
        const Node *x = ir_at(g, g->inputs[i]);
        if (x->shape.dim[0] != g->batch)
            return snprintf(err, len,
                            "%s:%d: input '%s' has batch %d but '%s' has %d: the first "
                            "dimension of every input is the batch",
                            x->loc.file, x->loc.line, x->name, x->shape.dim[0], first->name,
                            g->batch),
                   err;
    }
    bool *reach = xcalloc(g->n, sizeof *reach);
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        reach[i] = n->op == OP_PARAM;
        for (int k = 0; k < n->n_in; k++)
            reach[i] |= reach[n->in[k]];
    }
    bool ok = reach[g->loss];
    free(reach);
    if (!ok)
        return snprintf(err, len,
                        "%s:%d: the loss does not depend on any param(): nothing to train",
                        ir_at(g, g->loss)->loc.file, ir_at(g, g->loss)->loc.line),
               err;
    /* An input nothing reads is a mistake, and the trainer would still
     * want data for it. */
    bool *read = xcalloc(g->n, sizeof *read);
    read[g->loss] = true;
    for (int i = 0; i < g->n_outputs; i++)
        read[g->outputs[i].node] = true;
    for (int i = g->n - 1; i >= 0; i--)
        for (int k = 0; k < g->nodes[i].n_in && read[i]; k++)
            read[g->nodes[i].in[k]] = true;
    const Node *unread = NULL;
    for (int i = 0; i < g->n_inputs && !unread; i++)
        unread = read[g->inputs[i]] ? NULL : ir_at(g, g->inputs[i]);
    free(read);
    if (unread)
        return snprintf(err, len,
                        "%s:%d: input '%s' is read by neither the loss nor an output: use it "
                        "or remove it",
                        unread->loc.file, unread->loc.line, unread->name),
               err;
    return NULL;
}

const char *model_name(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".lua"))
        n -= 4;
    char *name = keep(xmalloc(n + 1));
    memcpy(name, base, n);
    name[n] = 0;
    return name;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    char *d = xmalloc(slash - path + 1);
    memcpy(d, path, slash - path);
    d[slash - path] = 0;
    return d;
}

Graph *load_model(const char *path, const LoadOptions *o)
{
    for (int i = 0; i < o->n_defines; i++)
        if (!strchr(o->defines[i], '=')) {
            fputs("gradc: -D ", stderr);
            put_printable(stderr, o->defines[i], strlen(o->defines[i]));
            fputs(": expected KEY=VALUE\n", stderr);
            return NULL;
        }
    Graph *g = ir_new();
    g->source = keep(xstrdup(path));
    g->name = model_name(path);
    /* Its files are NAME.h and NAME.c, its descriptor NAME_model: a name
     * the C's headers take (string.h, rt.h, NULL) or reserve could not be. */
    char guard[80];
    snprintf(guard, sizeof guard, "%.60s_H", g->name);
    for (char *c = guard; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    if (!is_c_identifier(g->name) || g->name[0] == '_' || !strncasecmp(g->name, "rt", 2) ||
        is_header_name(g->name) || is_header_name(guard)) {
        char err[1024];
        snprintf(err, sizeof err,
                 "%s:1: the model's name '%s' (its file name) must be a C identifier that "
                 "starts with neither _ nor rt, and is not a name C's headers take (nor is "
                 "NAME_H)",
                 path, g->name);
        put_printable(stderr, err, strlen(err));
        fputs("\n", stderr);
        ir_free(g);
        return NULL;
    }
    Front f = {
        .g = g,
        .dir = keep(dir_of(path)),
        .model_ref = LUA_NOREF,
        .on_line = name_locals,
        .on_return = name_returns,
        .max_instructions = o->max_instructions ? o->max_instructions : DEFAULT_MAX_INSTRUCTIONS,
        .max_memory = (size_t)(o->max_memory_mb ? o->max_memory_mb : DEFAULT_MAX_MEMORY_MB) << 20,
        .max_seconds = o->max_seconds ? o->max_seconds : DEFAULT_MAX_SECONDS};
    lua_State *L = sandbox_open(&f);
    if (!L)
        die("cannot make a Lua state");
    char err[1024];
    const char *msg =
        sandbox_run(&f, run_model, (void *)path, (void *)o, err, sizeof err) ? err : NULL;
    g->front_local_reads = f.local_reads;
    lua_close(L);
    free(f.naming);
    /* The file table is shared by every graph made from this one. */
    keep((char *)g->files);
    keep((char *)g->file_names);
    if (!msg)
        msg = check_model(g, err, sizeof err);
    if (!msg)
        g->loss_rows = loss_rows(g);
    if (!msg && o->optimizer) {
        int kind = optim_find(o->optimizer);
        g->opt = optim_info[kind].defaults;
        g->opt.kind = kind;
    }
    if (msg) {
        /* One line, with nothing in it a terminal would act on. */
        for (char *c = err; *c; c++)
            if (*c == '\n')
                *c = ' ';
        put_printable(stderr, err, strlen(err));
        fputs("\n", stderr);
        ir_free(g);
        return NULL;
    }
    return g;
}
