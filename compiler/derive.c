/*
 * derive.c: gradc derive, the derivatives as math. The gradient of every
 * value a Lua local holds (and of every param and input), made as the
 * model language's grad() makes it and kept as a root, is simplified like
 * any other graph; each is then printed as one line, an expression over
 * the model's values and the other gradients, nearest the loss first:
 * dL/dq = 2 q, dL/dW = 2 q^T x. What no local names is written out where
 * it is read, unless several read it and it is more than one op of named
 * values: then it is named once (the model's implied name for a forward
 * value, `where t1 = ...` for a part of gradients), so no line grows past
 * the size of the graph. With latex, the same lines as LaTeX.
 */
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

/* One line to print: the gradient (a root after simplify) of a value
 * called name, made at loc; or (where) a part of gradients that several
 * read, named t1, t2, ... so that it is written once. */
typedef struct {
    const char *name;
    SrcLoc loc;
    int node;
    bool where;
} Line;

typedef struct {
    const Graph *g;
    const Line *lines;
    int n_lines, self; /* the line being written: its own node is not a reference */
    const char *loss;
    bool latex;
    int *line_of;        /* per node, the line it is the value of, or -1 */
    const char **alias;  /* per node, the name the model implies for a shared one */
} Derive;

/* How tightly an expression binds: a sum, a product, or an atom. */
enum { SUM, PRODUCT, ATOM };

static void expr(const Derive *d, int id, int need, Buf *b);

/* A number as a person writes it: 2, 0.5, 1e-05. */
static const char *number(char buf[40], double v)
{
    snprintf(buf, 40, "%.15g", v);
    return buf;
}

/* A name of the model's; LaTeX takes its _ as \_. */
static void put_name(const Derive *d, const char *name, Buf *b)
{
    for (const char *c = name; *c; c++)
        buf_printf(b, d->latex && *c == '_' ? "\\_" : "%c", *c);
}

static void gradient_name(const Derive *d, const char *of, Buf *b)
{
    buf_printf(b, d->latex ? "\\frac{\\partial " : "d");
    put_name(d, d->loss, b);
    buf_printf(b, d->latex ? "}{\\partial " : "/d");
    put_name(d, of, b);
    if (d->latex)
        buf_printf(b, "}");
}

/* A value's name in the formula, or NULL to write it out: the model's
 * own, or for a part of the forward pass that several read (layer_norm's
 * centered rows) the name the model implies. */
static const char *value_name(const Derive *d, const Node *n)
{
    if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_BUFFER)
        return n->name;
    return n->var || !d ? n->var : d->alias[n->id];
}

static void operand(const Derive *d, int id, bool trans, Buf *b)
{
    expr(d, id, ATOM, b);
    if (trans)
        buf_printf(b, d->latex ? "^\\top" : "^T");
}

/* The expression of node id into b, in parentheses if it binds less
 * tightly than need. */
static void expr(const Derive *d, int id, int need, Buf *b)
{
    const Node *n = ir_at((Graph *)d->g, id);
    int line = d->line_of[id];
    if (line >= 0 && line != d->self) {
        if (d->lines[line].where)
            put_name(d, d->lines[line].name, b);
        else
            gradient_name(d, d->lines[line].name, b);
        return;
    }
    const char *name = value_name(d, n);
    if (name && id != d->g->loss) {
        put_name(d, name, b);
        return;
    }
    char num[40];
    int binds = ATOM;
    switch (n->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MATMUL_ADD:
        binds = SUM;
        break;
    case OP_MUL:
    case OP_DIV:
    case OP_MATMUL:
    case OP_NEG:
        binds = PRODUCT;
        break;
    default:
        break;
    }
    if (n->op == OP_CONST && n->value < 0)
        binds = PRODUCT;
    bool paren = binds < need;
    if (paren)
        buf_printf(b, d->latex ? "\\left(" : "(");
    const char *times = d->latex ? " \\odot " : " * ";
    switch (n->op) {
    case OP_CONST:
        buf_printf(b, "%s", number(num, n->value));
        break;
    case OP_ADD:
    case OP_SUB:
        expr(d, n->in[0], SUM, b);
        buf_printf(b, n->op == OP_ADD ? " + " : " - ");
        expr(d, n->in[1], PRODUCT, b);
        break;
    case OP_MUL: {
        /* A scalar factor first, as a person writes it: 2 q. */
        int a = n->in[0], c = n->in[1];
        bool scalar_c = ir_at((Graph *)d->g, c)->op == OP_CONST;
        if (scalar_c)
            a = n->in[1], c = n->in[0];
        expr(d, a, PRODUCT, b);
        buf_printf(b, ir_at((Graph *)d->g, a)->op == OP_CONST ? " " : "%s", times);
        expr(d, c, ATOM, b);
        break;
    }
    case OP_DIV:
        expr(d, n->in[0], PRODUCT, b);
        buf_printf(b, " / ");
        expr(d, n->in[1], ATOM, b);
        break;
    case OP_NEG:
        buf_printf(b, "-");
        expr(d, n->in[0], ATOM, b);
        break;
    case OP_POW:
        expr(d, n->in[0], ATOM, b);
        buf_printf(b, d->latex ? "^{%s}" : "^%s", number(num, n->value));
        break;
    case OP_MATMUL:
    case OP_MATMUL_ADD: /* alpha op(a) op(b) [+ c] */
        if (n->value != 1)
            buf_printf(b, "%s ", number(num, n->value));
        operand(d, n->in[0], n->trans_a, b);
        buf_printf(b, " ");
        operand(d, n->in[1], n->trans_b, b);
        if (n->op == OP_MATMUL_ADD) {
            buf_printf(b, " + ");
            expr(d, n->in[2], PRODUCT, b);
        }
        break;
    case OP_TRANSPOSE:
        operand(d, n->in[0], true, b);
        break;
    case OP_BROADCAST:
    case OP_RESHAPE:
        /* the same values in another shape: the line's shape says which */
        expr(d, n->in[0], need, b);
        break;
    case OP_SUM:
        buf_printf(b, d->latex ? "\\sum_{" : "sum_{");
        for (int i = 0, first = 1; i < ir_at((Graph *)d->g, n->in[0])->shape.rank; i++)
            if (n->axes[i] != AX_KEEP) {
                buf_printf(b, "%s%d", first ? "" : ",", i + 1);
                first = 0;
            }
        buf_printf(b, "} ");
        expr(d, n->in[0], ATOM, b);
        break;
    default:
        buf_printf(b, d->latex ? "\\operatorname{%s}(" : "%s(", op_info[n->op].name);
        for (int k = 0; k < n->n_in; k++) {
            if (k)
                buf_printf(b, ", ");
            expr(d, n->in[k], SUM, b);
        }
        buf_printf(b, ")");
    }
    if (paren)
        buf_printf(b, d->latex ? "\\right)" : ")");
}

/* The lines a wanted line refers to, and it: marked in keep. */
static void refer(const Derive *d, int id, bool *seen, bool *keep)
{
    if (seen[id])
        return;
    seen[id] = true;
    if (d->line_of[id] >= 0)
        keep[d->line_of[id]] = true;
    const Node *n = ir_at((Graph *)d->g, id);
    if (!value_name(d, n))
        for (int k = 0; k < n->n_in; k++)
            refer(d, n->in[k], seen, keep);
}

static const Line *sort_lines;

static int by_name_then_line(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    int c = strcmp(sort_lines[i].name, sort_lines[j].name);
    return c ? c : i - j;
}

/* Whether node n is one op of named values (y_pred - y): short enough to
 * write out wherever it is read. */
static bool is_simple(const Derive *d, const Node *n)
{
    for (int k = 0; k < n->n_in; k++) {
        const Node *x = ir_at((Graph *)d->g, n->in[k]);
        if (x->op != OP_CONST && !value_name(d, x) && d->line_of[x->id] < 0)
            return false;
    }
    return true;
}

int derive(const char *model, const LoadOptions *o, const char *param, bool latex, FILE *out)
{
    Graph *g = compile_graph(model, o, "batch", NULL);
    if (!g)
        return 1;
    /* The gradients a person names, of each local and param the loss
     * reads, nearest the loss first: made as the language's grad() makes
     * them, and kept as roots. */
    int *wrt = xmalloc(2 * g->n * sizeof *wrt), n_wrt = 0;
    for (int i = g->loss - 1; i >= 0; i--)
        if (value_name(NULL, ir_at(g, i)) && ir_at(g, i)->dtype == DT_REAL)
            wrt[n_wrt++] = i;
    backward_of(g, g->loss, n_wrt, wrt, wrt + n_wrt);
    Line *lines = xmalloc((g->n + 1) * sizeof *lines);
    int n_lines = 0, first_output = g->n_outputs;
    /* A local reassigned (h in a loop of blocks) names values nearer the
     * loss h, then h_2, ... as the C names them. */
    int *by_name = xmalloc((n_wrt + 1) * sizeof *by_name), n_named = 0;
    for (int i = 0; i < n_wrt; i++)
        if (wrt[n_wrt + i] >= 0)
            lines[n_named++] = (Line){value_name(NULL, ir_at(g, wrt[i])), ir_at(g, wrt[i])->loc,
                                      wrt[n_wrt + i], false};
    for (int i = 0; i < n_named; i++)
        by_name[i] = i;
    sort_lines = lines;
    qsort(by_name, n_named, sizeof *by_name, by_name_then_line);
    char(*suffixed)[80] = xmalloc((n_named + 1) * sizeof *suffixed);
    for (int k = 0, same = 0; k < n_named; k++) {
        Line *l = &lines[by_name[k]];
        same = k && !strcmp(lines[by_name[k - 1]].name, l->name) ? same + 1 : 0;
        snprintf(suffixed[by_name[k]], sizeof *suffixed, same ? "%s_%d" : "%s", l->name,
                 same + 1);
    }
    for (int i = 0; i < n_named; i++)
        lines[i].name = suffixed[i];
    n_lines = n_named;
    free(by_name);
    free(wrt);
    g->outputs = xrealloc(g->outputs, (g->n_outputs + n_lines + 1) * sizeof *g->outputs);
    for (int i = 0; i < n_lines; i++)
        g->outputs[g->n_outputs++] = (Output){lines[i].name, lines[i].node};
    SimplifyStats st;
    Graph *s = simplify(g, &st);
    ir_free(g);
    g = dce(s);
    ir_free(s);
    for (int i = 0; i < n_lines; i++)
        lines[i].node = g->outputs[first_output + i].node;

    /* What several read, and is more than one op of named values, is
     * named once. */
    int *readers = xcalloc(g->n, sizeof *readers), *line_of = xmalloc(g->n * sizeof *line_of);
    const char **alias = xcalloc(g->n, sizeof *alias);
    for (int i = 0; i < g->n; i++) {
        line_of[i] = -1;
        for (int k = 0; k < ir_at(g, i)->n_in; k++)
            readers[ir_at(g, i)->in[k]]++;
    }
    for (int i = 0; i < n_lines; i++)
        line_of[lines[i].node] = i;
    const Node *loss = ir_at(g, g->loss);
    Derive d = {g, lines, n_lines, -1, loss->var ? loss->var : "L", latex, line_of, alias};
    char(*temp)[16] = xmalloc(g->n * sizeof *temp);
    for (int i = 0, k = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        if (readers[i] < 2 || line_of[i] >= 0 || value_name(&d, n) || n->op == OP_CONST ||
            is_simple(&d, n))
            continue;
        if (!n->is_grad && n->hint)
            alias[i] = n->hint;
        else {
            snprintf(temp[k], sizeof temp[k], "t%d", k + 1);
            line_of[i] = n_lines;
            lines[n_lines++] = (Line){temp[k++], n->loc, i, true};
        }
    }
    d.n_lines = n_lines;
    bool *keep = xcalloc(n_lines, sizeof *keep), *seen = xcalloc(g->n, sizeof *seen);
    int wanted = -1;
    for (int i = 0; i < n_lines; i++)
        if (param && !strcmp(lines[i].name, param))
            wanted = i;
    if (param && wanted < 0) {
        fprintf(stderr, "gradc: %s has no param or local '%s' the loss depends on\n", model, param);
        free(lines), free(keep), free(seen), free(readers), free(line_of), free(alias), free(temp);
        free(suffixed);
        ir_free(g);
        return 1;
    }
    if (wanted >= 0)
        refer(&d, lines[wanted].node, seen, keep);
    for (int i = 0; i < n_lines; i++) {
        if (wanted >= 0 && !keep[i])
            continue;
        Buf b = {0};
        char shape[64];
        d.self = i;
        if (lines[i].where)
            buf_printf(&b, latex ? "\\text{where } %s" : "  where %s", lines[i].name);
        else
            gradient_name(&d, lines[i].name, &b);
        buf_printf(&b, " = ");
        expr(&d, lines[i].node, SUM, &b);
        shape_str(shape, sizeof shape, ir_at(g, lines[i].node)->shape);
        if (latex)
            fprintf(out, "%s \\quad %% %s, %s:%d\n", b.data, shape, lines[i].loc.file,
                    lines[i].loc.line);
        else
            fprintf(out, "%-40s %-10s %s:%d\n", b.data, shape, lines[i].loc.file,
                    lines[i].loc.line);
        buf_free(&b);
    }
    free(lines), free(keep), free(seen), free(readers), free(line_of), free(alias), free(temp);
    free(suffixed);
    ir_free(g);
    return 0;
}
