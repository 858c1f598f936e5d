/*
 * naming.c: what the generated C calls each value, from the model: the
 * Lua local it was assigned to (name_locals), in a module after the
 * module too (module_of); a value a module returns after the module
 * (name_returns); the rest once the model has returned (name_values),
 * from the composite it belongs to and its role there, or its readers.
 * Also where a node comes from: the model's file and line.
 */
#include <ctype.h>
#include <string.h>
#include "front.h"

/* ---- where a node comes from ---- */

static const char *file_named(Graph *g, const char *name)
{
    for (int i = 0; i < g->n_files; i++)
        if (!strcmp(g->file_names[i], name))
            return g->file_names[i];
    return NULL;
}

/* The innermost frame running a line of the model's files: *ar, and its
 * file (the graph's copy of the name), or NULL. */
const char *model_frame(lua_State *L, lua_Debug *ar)
{
    for (int level = 1; lua_getstack(L, level, ar); level++) {
        lua_getinfo(L, "Sl", ar);
        if (ar->currentline > 0 && ar->source[0] == '@') {
            const char *file = file_named(front(L)->g, ar->source + 1);
            if (file)
                return file;
        }
    }
    return NULL;
}

SrcLoc where(lua_State *L)
{
    lua_Debug ar;
    const char *file = model_frame(L, &ar);
    return file ? (SrcLoc){file, ar.currentline} : (SrcLoc){front(L)->g->source, 0};
}

/* ---- what names a value ----
 * What name_values() names a value from, besides its Lua local: the module
 * whose function made it and the one that returned it (module_of: a
 * function with a parameter or an upvalue `name`, as dense(x, n, "fc") is
 * the module fc), and for a part of a composite (layer_norm's mean), the
 * composite's value and the part's role. */

/* The part of a param's name before its last _ into prefix if it is the
 * first, else prefix cut to what it shares with that (whole words, up to
 * a _): rnn for rnn_w and rnn_u, lstm for lstm_w and lstm_forget_b. */
static void common_prefix(char *prefix, const char *param, bool first)
{
    const char *end = strrchr(param, '_');
    size_t n = end ? (size_t)(end - param) : 0;
    if (first) {
        snprintf(prefix, MAX_VAR + 1, "%.*s", (int)(n < MAX_VAR ? n : 0), param);
        return;
    }
    size_t k = 0;
    while (prefix[k] && k < n && prefix[k] == param[k])
        k++;
    if (prefix[k] || (k < n && param[k] != '_')) /* back to a whole word of both */
        while (k > 0 && !(prefix[k] == '_' && param[k] == '_'))
            k--;
    prefix[k] = 0;
}

/* The module frame ar runs in: the string in its parameter `name`, else in
 * its upvalue `name`, if it is an identifier of at most MAX_VAR; else what
 * the names of the params it holds as upvalues begin with (a cell's step
 * function, which reads its params but not its name: rnn_w, rnn_u are
 * rnn's); or NULL. Only the first few parameters and upvalues are read,
 * so a value made costs the same however many locals there are. Kept: the
 * same name is one copy while it lasts. */
const char *module_of(lua_State *L, lua_Debug *ar)
{
    enum { PARAMS = 16, UPVALUES = 64 };
    Front *f = front(L);
    char found[MAX_VAR + 1] = "", params[MAX_VAR + 1] = "";
    bool is_param = false;
    int n_params = 0;
    lua_getinfo(L, "uf", ar);
    for (int i = 1; i <= ar->nparams && i <= PARAMS; i++) {
        f->local_reads++;
        const char *var = lua_getlocal(L, ar, i);
        if (!var)
            break;
        size_t len;
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!strcmp(var, "name")) {
            snprintf(found, sizeof found, "%s", v && len <= MAX_VAR ? v : "");
            is_param = true;
        }
        lua_pop(L, 1);
    }
    for (int i = 1; !is_param && !found[0] && i <= ar->nups && i <= UPVALUES; i++) {
        f->local_reads++;
        const char *var = lua_getupvalue(L, -1, i);
        if (!var)
            break;
        size_t len;
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        int *t = (is_tensor(L, -1) ? lua_touserdata(L, -1) : NULL);
        if (!strcmp(var, "name") && v && len <= MAX_VAR)
            snprintf(found, sizeof found, "%s", v);
        else if (t && ir_at(f->g, *t)->op == OP_PARAM)
            common_prefix(params, ir_at(f->g, *t)->name, n_params++ == 0);
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* the function */
    if (!is_param && !found[0])
        memcpy(found, params, sizeof found);
    if (!found[0] || !is_c_identifier(found))
        return NULL;
    if (!f->module || strcmp(f->module, found)) {
        charge(L, strlen(found) + 1);
        f->module = keep(xstrdup(found));
    }
    return f->module;
}

/* a_b, kept; b alone without a or if a_b would be longer than MAX_NAME. */
const char *joined(lua_State *L, const char *a, const char *b)
{
    char buf[2 * MAX_NAME + 2]; /* room for both, to please the compiler */
    if (a && strlen(a) + 1 + strlen(b) <= MAX_NAME)
        snprintf(buf, sizeof buf, "%s_%s", a, b);
    else
        snprintf(buf, sizeof buf, "%s", b);
    charge(L, strlen(buf) + 1);
    return keep(xstrdup(buf));
}

Naming *naming(lua_State *L, int id) { return &front(L)->naming[id]; }

/* A part's role in the composite it is part of: its name is the
 * composite value's, then _role. */
void role(lua_State *L, int id, const char *r)
{
    if (!naming(L, id)->role)
        naming(L, id)->role = r;
}

/* A norm's value, without a local, takes its scale's name less _g (and
 * the like): layer_norm(x, ln1_g, ln1_b) is ln1. */
void named_after_scale(lua_State *L, int y, int gamma)
{
    static const char *const ends[] = {"_g", "_gamma", "_scale", "_weight", "_w"};
    const char *g = node_of(L, gamma)->name;
    size_t n = g ? strlen(g) : 0;
    for (int i = 0; i < 5 && g; i++) {
        size_t e = strlen(ends[i]);
        if (n > e && n - e <= MAX_NAME && !strcmp(g + n - e, ends[i])) {
            char buf[MAX_NAME + 1];
            snprintf(buf, sizeof buf, "%.*s", (int)(n - e), g);
            naming(L, y)->what = joined(L, NULL, buf);
            return;
        }
    }
}

/* The nodes a composite made from first on, before its value y, are
 * parts of y; y without a local is named what (in its module). */
int composite(lua_State *L, int first, int y, const char *what)
{
    for (int i = first; i < y; i++)
        if (naming(L, i)->owner < 0)
            naming(L, i)->owner = y;
    if (!naming(L, y)->what)
        naming(L, y)->what = joined(L, naming(L, y)->module, what);
    return y;
}

/* A value a module returns, and no local holds, is named after the module
 * (dense(x, n, "fc") is fc): the innermost module that returns it. Only a
 * function's first few values are looked at. */
void name_returns(lua_State *L, lua_Debug *ar)
{
    enum { FIRST = 4 };
    Front *f = front(L);
    if (f->frozen || !f->g->n || !lua_getinfo(L, "Sr", ar) || ar->what[0] == 'C')
        return;
    bool looked = false;
    const char *module = NULL;
    for (int k = 0; k < ar->ntransfer && k < FIRST; k++) {
        if (!lua_getlocal(L, ar, ar->ftransfer + k))
            break;
        int *t = (is_tensor(L, -1) ? lua_touserdata(L, -1) : NULL);
        lua_pop(L, 1);
        const Node *n = t ? ir_at(f->g, *t) : NULL;
        if (!n || n->name || n->var || n->op == OP_CONST || f->naming[*t].returned)
            continue;
        if (!looked)
            module = module_of(L, ar);
        looked = true;
        if (!module)
            return;
        f->naming[*t].returned = module;
    }
}

/* A view's input that nothing else reads (the matmul of q =
 * x:matmul(w):reshape(...)) is the value the view shows. */
static bool is_view(int op) { return op == OP_RESHAPE || op == OP_PERMUTE || op == OP_TRANSPOSE; }

/* What the model calls node i, for the names of its parts: NULL if nothing. */
static const char *called(Graph *g, int i, const char *loss)
{
    const Node *n = ir_at(g, i);
    if (n->name || n->var)
        return n->name ? n->name : n->var;
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k].node == i)
            return g->outputs[k].name;
    return i == g->loss ? loss : n->hint;
}

/* Once the model has returned, each value no local holds takes, in this
 * order: the name of the view that shows it, if a local holds that; the
 * module's that returned it; its composite's value's and its role
 * (ln1_mean); a composite's own (layer_norm takes its gamma's: ln1_g's is
 * ln1), in its module; in a module, the module's and its op's; or if one
 * value with a local reads it (or views of it), the local's and its op's
 * (h_matmul). From the last node down, so a view, or a composite's value,
 * is named before what takes its name. */
void name_values(lua_State *L)
{
    Front *f = front(L);
    Graph *g = f->g;
    /* Lua's memory: counted against the limit, and freed if a charge fails. */
    int *readers = lua_newuserdatauv(L, g->n * sizeof *readers, 0);
    int *reader = lua_newuserdatauv(L, g->n * sizeof *reader, 0);
    bool *local = lua_newuserdatauv(L, g->n * sizeof *local, 0); /* named after a local */
    memset(readers, 0, g->n * sizeof *readers);
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < ir_at(g, i)->n_in; k++) {
            readers[ir_at(g, i)->in[k]]++;
            reader[ir_at(g, i)->in[k]] = i;
        }
    for (int i = g->n - 1; i >= 0; i--) {
        Node *n = ir_at(g, i);
        const Naming *nm = &f->naming[i];
        local[i] = n->var != NULL;
        if (n->name || n->var || n->op == OP_CONST)
            continue;
        if (readers[i] == 1 && is_view(ir_at(g, reader[i])->op) && local[reader[i]]) {
            n->hint = called(g, reader[i], NULL);
            local[i] = true;
        } else if (nm->returned)
            n->hint = nm->returned;
        else if (nm->owner >= 0 && called(g, nm->owner, "loss"))
            n->hint =
                joined(L, called(g, nm->owner, "loss"), nm->role ? nm->role : op_info[n->op].name);
        else if (nm->what)
            n->hint = nm->what;
        else if (nm->module)
            n->hint = joined(L, nm->module, op_info[n->op].name);
        else {
            int r = readers[i] == 1 ? reader[i] : -1; /* through views that read it alone */
            while (r >= 0 && !ir_at(g, r)->var && is_view(ir_at(g, r)->op))
                r = readers[r] == 1 ? reader[r] : -1;
            if (r >= 0 && ir_at(g, r)->var)
                n->hint = joined(L, ir_at(g, r)->var, op_info[n->op].name);
        }
    }
    lua_pop(L, 3);
}

/* Whether the running function has an i-th local: past its locals,
 * lua_getlocal names the frame's other slots "(temporary)". */
static bool has_local(lua_State *L, lua_Debug *ar, int i)
{
    front(L)->local_reads++;
    const char *var = lua_getlocal(L, ar, i);
    if (!var)
        return false;
    lua_pop(L, 1);
    return strcmp(var, "(temporary)") && strcmp(var, "(C temporary)");
}

/* A value takes the name of the local it is assigned to, which exists
 * from the line after the one that made the value. So the locals are read
 * only when the last line made values, and then from the newest down:
 * those that hold the new values, and a few more (several statements on
 * one line). A loop that makes nothing costs nothing here, however many
 * locals there are. In a module (module_of) the local h names NAME_h. */
void name_locals(lua_State *L, lua_Debug *ar)
{
    enum { ALSO = 8 };
    Front *f = front(L);
    int first_new = f->named_up_to;
    if (f->g->n == first_new)
        return;
    f->named_up_to = f->g->n;
    int top = 0, past = 1; /* the locals are 1..top: found by doubling, then halving */
    while (has_local(L, ar, past))
        top = past, past *= 2;
    while (past - top > 1) {
        int mid = top + (past - top) / 2;
        *(has_local(L, ar, mid) ? &top : &past) = mid;
    }
    /* A function's parameters hold what its caller passed: the caller's
     * names for it, not the function's, so they name only what a line of
     * the function made (x = x + f(x)). */
    lua_getinfo(L, "Su", ar);
    const char *file = ar->source[0] == '@' ? file_named(f->g, ar->source + 1) : NULL;
    const char *module = NULL;
    bool looked = false;
    for (int i = top; i > 0; i--) {
        f->local_reads++;
        const char *var = lua_getlocal(L, ar, i);
        int *t = strlen(var) <= MAX_VAR && is_c_identifier(var)
                     ? (is_tensor(L, -1) ? lua_touserdata(L, -1) : NULL)
                     : NULL;
        Node *n = t ? ir_at(f->g, *t) : NULL;
        if (n && i <= ar->nparams &&
            !(file && n->loc.file == file && n->loc.line >= ar->linedefined &&
              n->loc.line <= ar->lastlinedefined))
            n = NULL;
        if (n && !n->name && !n->var && n->op != OP_CONST) {
            if (!looked)
                module = module_of(L, ar);
            looked = true;
            n->var = joined(L, module, var);
        }
        lua_pop(L, 1);
        if (!(n && n->id >= first_new) && top - i >= ALSO)
            break;
    }
}
