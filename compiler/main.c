/*
 * main.c: the gradc command line. Runs the passes in order, so the
 * pipeline reads as a recipe:
 *
 *   load_model -> grad -> simplify -> dce -> fuse -> plan -> emit_c
 *
 * A compile writes nothing until every pass has succeeded, and then each
 * file goes to a temporary name first and is renamed into place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gradc.h"

static const char usage[] =
    "usage: gradc compile MODEL.lua [-o DIR] [-D KEY=VALUE]... [--optimizer KIND]\n"
    "       gradc print MODEL.lua [--after PASS] [-D KEY=VALUE]...\n"
    "       gradc graph MODEL.lua [--backward] [-D KEY=VALUE]...\n"
    "       gradc --help | --version\n"
    "\n"
    "gradc compiles a neural network written in Lua into C that trains it.\n"
    "\n"
    "commands:\n"
    "  compile   write DIR/NAME.h, NAME.c, NAME_train.c and NAME_gradcheck.c,\n"
    "            NAME being the model file's name without .lua (DIR: .)\n"
    "  print     print the graph, forward and backward, with shapes and lines\n"
    "  graph     write the forward graph (with --backward, the training graph)\n"
    "            as Graphviz DOT: gradc graph m.lua | dot -Tsvg > m.svg\n"
    "\n"
    "options:\n"
    "  -o DIR          where compile writes (made if missing)\n"
    "  -D KEY=VALUE    sets config.KEY in the model (numbers stay numbers)\n"
    "  --optimizer K   train with K instead of the model's optimizer, at K's\n"
    "                  defaults: sgd, momentum, nesterov, adam, adamw, rmsprop\n"
    "                  (the trainer sets its lr and other settings at run time)\n"
    "  --after PASS    print the graph after PASS: load, grad, simplify or dce\n"
    "                  (default dce, what the C is made from)\n"
    "\n"
    "Build the C with the gradc runtime and OpenBLAS; see README.md.\n";

typedef struct {
    const char *command, *model, *out_dir, *after;
    bool backward;
    LoadOptions load;
} Args;

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "gradc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try gradc --help)\n");
    return 2;
}

static int parse_args(int argc, char **argv, Args *a)
{
    static const char *defines[256];
    a->load.defines = defines;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(s, "-o") || !strcmp(s, "-D") || !strcmp(s, "--after") ||
            !strcmp(s, "--optimizer")) {
            if (!has_value)
                return bad_usage("%s needs a value", s);
            const char *v = argv[++i];
            if (!strcmp(s, "-o"))
                a->out_dir = v;
            else if (!strcmp(s, "--after"))
                a->after = v;
            else if (!strcmp(s, "--optimizer"))
                a->load.optimizer = v;
            else if (a->load.n_defines < 256)
                defines[a->load.n_defines++] = v;
        } else if (!strcmp(s, "--backward")) {
            a->backward = true;
        } else if (!strncmp(s, "-D", 2) && s[2]) {
            if (a->load.n_defines < 256)
                defines[a->load.n_defines++] = s + 2;
        } else if (s[0] == '-')
            return bad_usage("unknown option %s", s);
        else if (!a->command)
            a->command = s;
        else if (!a->model)
            a->model = s;
        else
            return bad_usage("unexpected argument %s", s);
    }
    if (!a->command)
        return bad_usage("%s", "no command given");
    if (strcmp(a->command, "compile") && strcmp(a->command, "print") && strcmp(a->command, "graph"))
        return bad_usage("unknown command '%s'", a->command);
    if (!a->model)
        return bad_usage("%s needs a model file", a->command);
    if (a->load.optimizer && optim_find(a->load.optimizer) < 0)
        return bad_usage("--optimizer %s: the kinds are sgd, momentum, nesterov, adam, adamw and "
                         "rmsprop", a->load.optimizer);
    if (a->after && strcmp(a->after, "load") && strcmp(a->after, "grad") &&
        strcmp(a->after, "simplify") && strcmp(a->after, "dce"))
        return bad_usage("--after %s: the passes are load, grad, simplify and dce", a->after);
    return 0;
}

/* The IR passes; stops early after `after`. Returns NULL on a user error. */
static Graph *run_passes(const Args *a)
{
    Graph *g = load_model(a->model, &a->load);
    if (!g || (a->after && !strcmp(a->after, "load")))
        return g;
    grad(g);
    ir_check(g);
    if (a->after && !strcmp(a->after, "grad"))
        return g;
    Graph *s = simplify(g);
    ir_free(g);
    ir_check(s);
    if (a->after && !strcmp(a->after, "simplify"))
        return s;
    Graph *d = dce(s);
    ir_free(s);
    ir_check(d);
    return d;
}

static int write_outputs(const char *dir, OutFile *files, int n)
{
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "gradc: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char tmp[4][1024], final[4][1024];
    for (int i = 0; i < n; i++) {
        snprintf(final[i], sizeof final[i], "%s/%s", dir, files[i].path);
        snprintf(tmp[i], sizeof tmp[i], "%s/.%s.tmp", dir, files[i].path);
        FILE *fp = fopen(tmp[i], "wb");
        bool ok = fp && fwrite(files[i].text.data, 1, files[i].text.len, fp) == files[i].text.len;
        if (fp && fclose(fp))
            ok = false;
        if (!ok) {
            fprintf(stderr, "gradc: cannot write %s: %s\n", tmp[i], strerror(errno));
            for (int j = 0; j <= i; j++)
                remove(tmp[j]);
            return 1;
        }
    }
    for (int i = 0; i < n; i++)
        if (rename(tmp[i], final[i])) {
            fprintf(stderr, "gradc: cannot write %s: %s\n", final[i], strerror(errno));
            return 1;
        }
    return 0;
}

static int compile(const Args *a)
{
    Graph *g = run_passes(a);
    if (!g)
        return 1;
    Fusion f = fuse(g);
    Plan p = plan(g, &f);
    OutFile files[4];
    emit_c(g, &f, &p, files);
    int status = write_outputs(a->out_dir ? a->out_dir : ".", files, 4);
    for (int i = 0; i < 4; i++) {
        free(files[i].path);
        buf_free(&files[i].text);
    }
    plan_free(&p);
    fusion_free(&f);
    ir_free(g);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("gradc %s\n", GRADC_VERSION);
        return 0;
    }
    Args a = {0};
    int status = parse_args(argc, argv, &a);
    if (status)
        return status;
    if (!strcmp(a.command, "compile"))
        status = compile(&a);
    else {
        Graph *g = run_passes(&a);
        if (g && !strcmp(a.command, "graph"))
            ir_dot(g, a.backward, stdout);
        else if (g)
            ir_print(g, stdout);
        status = g ? 0 : 1;
        ir_free(g);
    }
    free_kept();
    return status;
}
