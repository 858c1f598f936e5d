/*
 * graph.c: writes a graph as Graphviz DOT, for people to look at.
 *
 * Needs: a graph after the passes (what the C is made from). Each node is
 * labelled with what a person knows it by (the model's name for it, its
 * Lua variable, the name the model implies, or its op), its op, its shape
 * and the model line that made it. Inputs are ellipses, parameters boxes,
 * the loss a double octagon; with the backward pass shown, gradient nodes
 * are shaded and each parameter's gradient points at its parameter. The text depends
 * only on the graph, so the same model draws the same picture.
 */
#include "gradc.h"

static void node_line(Graph *g, const Node *n, FILE *out)
{
    char shape[64];
    shape_str(shape, sizeof shape, n->shape);
    const Node *of = n->grad_of >= 0 ? ir_at(g, n->grad_of) : NULL;
    const char *who = of ? (node_word(of) ? node_word(of) : op_info[of->op].name) : node_word(n);
    const char *file = n->loc.file ? n->loc.file : "?";
    for (const char *slash = file; *slash; slash++)
        if (*slash == '/')
            file = slash + 1;
    fprintf(out, "  n%d [label=\"", n->id);
    if (who)
        fprintf(out, "%s%s\\n", of ? "d_" : "", who);
    fprintf(out, "%s %s\\n%s:%d\"", op_info[n->op].name, shape, file, n->loc.line);
    if (n->op == OP_INPUT)
        fprintf(out, ", shape=ellipse, style=filled, fillcolor=\"#dbeafe\"");
    else if (n->op == OP_PARAM || n->op == OP_BUFFER)
        fprintf(out, ", shape=box, style=\"filled,bold\", fillcolor=\"#fde68a\"");
    else if (n->id == g->loss)
        fprintf(out, ", shape=doubleoctagon, style=filled, fillcolor=\"#fecaca\"");
    else if (n->is_grad)
        fprintf(out, ", style=filled, fillcolor=\"#e5e7eb\"");
    fprintf(out, "];\n");
}

void ir_dot(Graph *g, bool backward, FILE *out)
{
    fprintf(out,
            "digraph %s {\n  rankdir=TB;\n  node [shape=box, style=rounded, "
            "fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#6b7280\"];\n",
            g->name);
    for (int i = 0; i < g->n; i++) {
        const Node *n = ir_at(g, i);
        /* Constants are literals in the C, and clutter in a picture. */
        if ((n->is_grad && !backward) || n->op == OP_CONST)
            continue;
        node_line(g, n, out);
        for (int k = 0; k < n->n_in; k++)
            if (ir_at(g, n->in[k])->op != OP_CONST)
                fprintf(out, "  n%d -> n%d;\n", n->in[k], i);
    }
    if (backward)
        for (int i = 0; i < g->n_params; i++)
            if (ir_at(g, g->params[i].grad)->op != OP_CONST)
                fprintf(out, "  n%d -> n%d [style=dashed, color=\"#b45309\", constraint=false];\n",
                        g->params[i].grad, g->params[i].node);
    fprintf(out, "}\n");
}
