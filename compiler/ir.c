/*
 * ir.c: the graph, its constructors, its checker and its printer.
 *
 * Nodes live in one growing array owned by the graph and are freed all at
 * once. A node can only name nodes made before it, so ids are a
 * topological order by construction. Every node goes through ir_node(),
 * which runs the op's shape rule; with g->cse set, it also returns an
 * existing identical node instead of making a second one.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

Graph *ir_new(void)
{
    Graph *g = xcalloc(1, sizeof *g);
    g->loss = -1;
    g->opt = optim_info[OPT_SGD].defaults;
    return g;
}

void ir_free(Graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->hash);
    free(g->outputs);
    free(g->params);
    free(g->buffers);
    free(g->inputs);
    free(g);
}

/* Saturates at LONG_MAX, so an absurd shape is caught, not wrapped. */
long shape_size(Shape s)
{
    long n = 1;
    for (int i = 0; i < s.rank; i++)
        n = s.dim[i] && n > LONG_MAX / s.dim[i] ? LONG_MAX : n * s.dim[i];
    return n;
}

bool shape_eq(Shape a, Shape b)
{
    if (a.rank != b.rank)
        return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dim[i] != b.dim[i])
            return false;
    return true;
}

void shape_str(char *out, size_t n, Shape s)
{
    size_t len = snprintf(out, n, "[");
    for (int i = 0; i < s.rank && len < n; i++)
        len += snprintf(out + len, n - len, "%s%d", i ? "," : "", s.dim[i]);
    if (len < n)
        snprintf(out + len, n - len, "]");
}

/* ---- hash-consing ---- */

static bool is_hashable(const Node *n)
{
    return n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_BUFFER;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h;
}

static uint64_t node_hash(const Node *n)
{
    uint64_t h = mix(n->op, n->n_in), bits;
    for (int i = 0; i < n->n_in; i++)
        h = mix(h, n->in[i]);
    for (int i = 0; i < n->shape.rank; i++)
        h = mix(h, n->shape.dim[i]);
    memcpy(&bits, &n->value, sizeof bits);
    h = mix(h, bits);
    /* The table takes the low bits, and a whole number's bits differ only
     * in the high ones: without this every constant fell in one chain, and
     * a model of many took quadratic time. (splitmix64's finish) */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

static bool same_node(const Node *a, const Node *b)
{
    return a->op == b->op && a->n_in == b->n_in && !memcmp(a->in, b->in, sizeof a->in) &&
           shape_eq(a->shape, b->shape) && a->dtype == b->dtype &&
           !memcmp(&a->value, &b->value, sizeof a->value) &&
           !memcmp(a->axes, b->axes, sizeof a->axes) && a->trans_a == b->trans_a &&
           a->trans_b == b->trans_b;
}

static void hash_insert(Graph *g, int id)
{
    int mask = g->hash_cap - 1;
    for (uint64_t i = node_hash(&g->nodes[id]);; i++)
        if (g->hash[i & mask] < 0) {
            g->hash[i & mask] = id;
            return;
        }
}

static void hash_grow(Graph *g)
{
    free(g->hash);
    g->hash_cap = g->hash_cap ? g->hash_cap * 2 : 256;
    g->hash = xmalloc(g->hash_cap * sizeof *g->hash);
    memset(g->hash, 0xff, g->hash_cap * sizeof *g->hash);
    for (int i = 0; i < g->n; i++)
        if (is_hashable(&g->nodes[i]))
            hash_insert(g, i);
}

static int hash_find(Graph *g, const Node *n)
{
    if (!g->hash_cap)
        return -1;
    int mask = g->hash_cap - 1;
    for (uint64_t i = node_hash(n);; i++) {
        int id = g->hash[i & mask];
        if (id < 0)
            return -1;
        if (same_node(&g->nodes[id], n))
            return id;
    }
}

/* ---- constructors ---- */

int ir_node(Graph *g, const Node *proto)
{
    const OpInfo *info = &op_info[proto->op];
    Node n = *proto;
    n.grad_of = -1; /* ir_copy carries it over; grad() sets it */
    if (info->arity >= 0 ? n.n_in != info->arity : n.n_in < 1 || n.n_in > MAX_IN)
        die("%s made with %d inputs", info->name, n.n_in);
    for (int i = 0; i < n.n_in; i++)
        if (n.in[i] < 0 || n.in[i] >= g->n)
            die("%s input %d is node %d of %d", info->name, i, n.in[i], g->n);
    const char *err = info->shape(g, &n, g->error, sizeof g->error);
    if (err) {
        if (err != g->error)
            snprintf(g->error, sizeof g->error, "%s", err);
        return -1;
    }
    if (shape_size(n.shape) > MAX_TENSOR) {
        char s[64];
        shape_str(s, sizeof s, n.shape);
        snprintf(g->error, sizeof g->error, "%s is more elements than a tensor can hold (2^40)",
                 s);
        return -1;
    }
    n.is_grad = g->making_grad;
    if (n.loc.file == NULL)
        n.loc = g->loc;
    if (g->cse && is_hashable(&n)) {
        int old = hash_find(g, &n);
        if (old >= 0)
            return old;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->nodes = xrealloc(g->nodes, g->cap * sizeof *g->nodes);
    }
    n.id = g->n++;
    g->nodes[n.id] = n;
    if (g->cse && is_hashable(&n)) {
        if (2 * g->n > g->hash_cap)
            hash_grow(g);
        else
            hash_insert(g, n.id);
    }
    return n.id;
}

int ir_must(Graph *g, const Node *proto)
{
    int id = ir_node(g, proto);
    if (id < 0)
        die("%s: %s", op_info[proto->op].name, g->error);
    return id;
}

int ir_unary(Graph *g, int op, int x)
{
    return ir_must(g, &(Node){.op = op, .n_in = 1, .in = {x}});
}

int ir_binary(Graph *g, int op, int a, int b)
{
    return ir_must(g, &(Node){.op = op, .n_in = 2, .in = {a, b}});
}

int ir_const(Graph *g, double v, Shape s)
{
    return ir_must(g, &(Node){.op = OP_CONST, .shape = s, .value = v});
}

int ir_pow(Graph *g, int x, double p)
{
    return ir_must(g, &(Node){.op = OP_POW, .n_in = 1, .in = {x}, .value = p});
}

int ir_matmul(Graph *g, int a, bool ta, int b, bool tb)
{
    return ir_must(g,
                   &(Node){.op = OP_MATMUL, .n_in = 2, .in = {a, b}, .trans_a = ta, .trans_b = tb});
}

/* Sums away the axes along which `s` was broadcast to x's shape (NumPy's
 * rules: align right; a missing or size-1 axis was broadcast). */
int ir_sum_to(Graph *g, int x, Shape s)
{
    Shape xs = ir_at(g, x)->shape;
    if (shape_eq(xs, s))
        return x;
    Node n = {.op = OP_SUM, .n_in = 1, .in = {x}};
    int lead = xs.rank - s.rank;
    for (int i = 0; i < xs.rank; i++)
        if (i < lead)
            n.axes[i] = AX_DROP;
        else if (s.dim[i - lead] == 1 && xs.dim[i] != 1)
            n.axes[i] = AX_ONE;
        else
            n.axes[i] = AX_KEEP;
    return ir_must(g, &n);
}

int ir_broadcast_to(Graph *g, int x, Shape s, const int *axis_of)
{
    Node n = {.op = OP_BROADCAST, .n_in = 1, .in = {x}, .shape = s};
    memcpy(n.axes, axis_of, s.rank * sizeof *axis_of);
    return ir_must(g, &n);
}

int ir_permute(Graph *g, int x, const int *perm)
{
    Node n = {.op = OP_PERMUTE, .n_in = 1, .in = {x}};
    memcpy(n.axes, perm, ir_at(g, x)->shape.rank * sizeof *perm);
    return ir_must(g, &n);
}

int ir_slice(Graph *g, int x, const int *start, Shape s)
{
    Node n = {.op = OP_SLICE, .n_in = 1, .in = {x}, .shape = s};
    memcpy(n.axes, start, s.rank * sizeof *start);
    return ir_must(g, &n);
}

int ir_pad(Graph *g, int x, const int *before, Shape s)
{
    Node n = {.op = OP_PAD, .n_in = 1, .in = {x}, .shape = s};
    memcpy(n.axes, before, s.rank * sizeof *before);
    return ir_must(g, &n);
}

int ir_reshape(Graph *g, int x, Shape s)
{
    if (shape_eq(ir_at(g, x)->shape, s))
        return x;
    return ir_must(g, &(Node){.op = OP_RESHAPE, .n_in = 1, .in = {x}, .shape = s});
}

int ir_copy(Graph *to, const Node *n, const int *new_in)
{
    Node c = *n;
    for (int i = 0; i < c.n_in; i++)
        c.in[i] = new_in[c.in[i]];
    bool grad = to->making_grad;
    to->making_grad = n->is_grad;
    int id = ir_must(to, &c);
    to->making_grad = grad;
    /* Only nodes before this one are mapped yet; a node CSE merged into an
     * earlier one may name a later node as what it is the gradient of. */
    if (n->grad_of >= 0 && n->grad_of < n->id && new_in[n->grad_of] >= 0 &&
        to->nodes[id].grad_of < 0)
        to->nodes[id].grad_of = new_in[n->grad_of];
    return id;
}

Graph *ir_empty_like(const Graph *g)
{
    Graph *h = ir_new();
    h->name = g->name;
    h->source = g->source;
    h->batch = g->batch;
    h->opt = g->opt;
    h->loss_rows = g->loss_rows;
    h->files = g->files;
    h->file_names = g->file_names;
    h->n_files = g->n_files;
    return h;
}

Graph *ir_clone(const Graph *g)
{
    Graph *h = ir_empty_like(g);
    int *map = xmalloc(g->n * sizeof *map);
    for (int i = 0; i < g->n; i++)
        map[i] = ir_copy(h, &g->nodes[i], map);
    ir_remap_roots(h, g, map);
    free(map);
    return h;
}

void ir_remap_roots(Graph *g, const Graph *old, const int *map)
{
    g->loss = old->loss >= 0 ? map[old->loss] : -1;
    g->n_outputs = old->n_outputs;
    g->outputs = xmalloc(old->n_outputs * sizeof *g->outputs);
    for (int i = 0; i < old->n_outputs; i++)
        g->outputs[i] = (Output){old->outputs[i].name, map[old->outputs[i].node]};
    g->n_params = old->n_params;
    g->params = xmalloc(old->n_params * sizeof *g->params);
    for (int i = 0; i < old->n_params; i++) {
        int gr = old->params[i].grad;
        g->params[i] = (Param){map[old->params[i].node], gr < 0 ? -1 : map[gr]};
    }
    g->n_buffers = old->n_buffers;
    g->buffers = xmalloc(old->n_buffers * sizeof *g->buffers);
    for (int i = 0; i < old->n_buffers; i++) {
        int next = old->buffers[i].next;
        g->buffers[i] = (Buffer){map[old->buffers[i].node], next < 0 ? -1 : map[next]};
    }
    /* Inputs no root reads are gone (inference graphs drop the labels). */
    g->inputs = xmalloc(old->n_inputs * sizeof *g->inputs);
    g->n_inputs = 0;
    for (int i = 0; i < old->n_inputs; i++)
        if (map[old->inputs[i]] >= 0)
            g->inputs[g->n_inputs++] = map[old->inputs[i]];
}

/* ---- checking and printing ---- */

/* Re-derives every node's shape and checks the topological order: a pass
 * that breaks either is a compiler bug, caught where it happens. */
void ir_check(Graph *g)
{
    char err[256];
    for (int i = 0; i < g->n; i++) {
        Node n = g->nodes[i];
        if (n.id != i)
            die("node %d has id %d", i, n.id);
        for (int k = 0; k < n.n_in; k++)
            if (n.in[k] < 0 || n.in[k] >= i)
                die("node %d (%s) reads node %d", i, op_info[n.op].name, n.in[k]);
        Node again = n;
        if (op_info[n.op].shape(g, &again, err, sizeof err) || !shape_eq(again.shape, n.shape))
            die("node %d (%s) has a shape its op does not give", i, op_info[n.op].name);
    }
    for (int i = 0; i < g->n_params; i++) {
        int gr = g->params[i].grad;
        if (gr >= 0 && !shape_eq(g->nodes[gr].shape, g->nodes[g->params[i].node].shape))
            die("the gradient of %s does not have its shape", g->nodes[g->params[i].node].name);
    }
}

const char *ir_source_line(const Graph *g, SrcLoc loc)
{
    for (int f = 0; f < g->n_files; f++) {
        if (strcmp(g->file_names[f], loc.file))
            continue;
        const char *s = g->files[f];
        for (int line = 1; line < loc.line && s; line++) {
            s = strchr(s, '\n');
            if (s)
                s++;
        }
        return s;
    }
    return NULL;
}

bool ir_is_root(const Graph *g, int id)
{
    if (id == g->loss)
        return true;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i].node == id)
            return true;
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].grad == id)
            return true;
    for (int i = 0; i < g->n_buffers; i++)
        if (g->buffers[i].next == id)
            return true;
    return false;
}

static void print_node(Graph *g, const Node *n, FILE *out)
{
    char line[512], shape[64], num[40];
    int len = snprintf(line, sizeof line, "  %%%-3d = %s", n->id, op_info[n->op].name);
    if (n->name)
        len += snprintf(line + len, sizeof line - len, " \"%s\"", n->name);
    for (int k = 0; k < n->n_in; k++)
        len += snprintf(line + len, sizeof line - len, "%s%%%d", k ? ", " : " ", n->in[k]);
    if (n->op == OP_CONST || n->op == OP_POW) {
        fmt_real(num, n->value);
        len += snprintf(line + len, sizeof line - len, " %s", num);
    }
    if ((n->op == OP_MATMUL || n->op == OP_MATMUL_ADD) && (n->trans_a || n->trans_b))
        len += snprintf(line + len, sizeof line - len, " (%s%s)", n->trans_a ? "A^T" : "A",
                        n->trans_b ? " B^T" : " B");
    if ((n->op == OP_MATMUL || n->op == OP_MATMUL_ADD) && (n->axes[0] || n->axes[1] || n->axes[2]))
        len += snprintf(line + len, sizeof line - len, " (heads read in place:%s%s%s)",
                        n->axes[0] ? " A" : "", n->axes[1] ? " B" : "",
                        n->axes[2] ? " result" : "");
    if ((n->op == OP_MATMUL || n->op == OP_MATMUL_ADD) && n->value != 1) {
        fmt_real(num, n->value);
        len += snprintf(line + len, sizeof line - len, " times %s", num);
    }
    if ((n->op == OP_SOFTMAX || n->op == OP_SOFTMAX_GRAD) && n->value == 1)
        len += snprintf(line + len, sizeof line - len, " (causal)");
    if ((n->op == OP_PAD || n->op == OP_PAD_ADD) && n->value == 1)
        len += snprintf(line + len, sizeof line - len, " (tiled: %s)",
                        n->op == OP_PAD ? "no zero fill" : "stores");
    /* Axes as the model language counts them, from 1. */
    if (op_info[n->op].kind == REDUCE) {
        const char *sep = " over ";
        for (int i = 0; i < g->nodes[n->in[0]].shape.rank; i++)
            if (n->axes[i] != AX_KEEP) {
                len += snprintf(line + len, sizeof line - len, "%s%d%s", sep, i + 1,
                                n->axes[i] == AX_ONE ? " (kept)" : "");
                sep = ",";
            }
    }
    if (n->op == OP_BROADCAST) {
        const char *sep = " along ";
        for (int i = 0; i < n->shape.rank; i++)
            if (n->axes[i] < 0) {
                len += snprintf(line + len, sizeof line - len, "%s%d", sep, i + 1);
                sep = ",";
            }
    }
    shape_str(shape, sizeof shape, n->shape);
    fprintf(out, "%-44s %-12s %s  %s:%d\n", line, shape, n->dtype == DT_I32 ? "int32" : "real",
            n->loc.file ? n->loc.file : "?", n->loc.line);
}

void ir_print(Graph *g, FILE *out)
{
    fprintf(out, "model %s (batch %d)\nforward:\n", g->name, g->batch);
    for (int i = 0; i < g->n; i++)
        if (!g->nodes[i].is_grad)
            print_node(g, &g->nodes[i], out);
    fprintf(out, "backward:\n");
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].is_grad)
            print_node(g, &g->nodes[i], out);
    fprintf(out, "roots:\n");
    if (g->loss >= 0)
        fprintf(out, "  loss %%%d\n", g->loss);
    for (int i = 0; i < g->n_outputs; i++)
        fprintf(out, "  output \"%s\" %%%d\n", g->outputs[i].name, g->outputs[i].node);
    for (int i = 0; i < g->n_params; i++) {
        Param p = g->params[i];
        fprintf(out, "  param \"%s\" %%%d", g->nodes[p.node].name, p.node);
        if (p.grad >= 0)
            fprintf(out, "  gradient %%%d", p.grad);
        fprintf(out, "\n");
    }
    for (int i = 0; i < g->n_buffers; i++) {
        Buffer b = g->buffers[i];
        fprintf(out, "  buffer \"%s\" %%%d", g->nodes[b.node].name, b.node);
        if (b.next >= 0)
            fprintf(out, "  next %%%d", b.next);
        fprintf(out, "\n");
    }
}
