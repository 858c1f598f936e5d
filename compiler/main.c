/*
 * main.c: the gradc command line: reads it, and runs the command it asks
 * for (the passes are compile.c's table). A compile writes nothing until
 * every pass has succeeded, and then each file goes to a temporary name
 * first and is renamed into place.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gradc.h"

static const char usage[] =
    "usage: gradc compile MODEL.lua [-o DIR] [-D KEY=VALUE]... [--test-config]\n"
    "                                [--optimizer KIND] [--tune FILE] [--heap-arena]\n"
    "                                [--bucket-mb X] [--hvp] [--jvp]\n"
    "       gradc build MODEL.lua [-o DIR] [-v] [--double] [--mpi] [-D KEY=VALUE]...\n"
    "                              [--optimizer KIND] [--tune FILE] [--heap-arena]\n"
    "                              [--bucket-mb X] [--hvp] [--jvp]\n"
    "       gradc check MODEL.lua... [--tol X] [--junit FILE] [-v] [-D KEY=VALUE]...\n"
    "                                 [--test-config]\n"
    "       gradc tune MODEL.lua [-o FILE] [-v] [-D KEY=VALUE]...\n"
    "       gradc print MODEL.lua [--after PASS | --stats | --memory] [-D KEY=VALUE]...\n"
    "       gradc graph MODEL.lua [--backward] [-D KEY=VALUE]...\n"
    "       gradc derive MODEL.lua [--param NAME] [--latex] [-D KEY=VALUE]...\n"
    "       gradc --help | --version\n"
    "\n"
    "gradc compiles a neural network written in Lua into C that trains it.\n"
    "\n"
    "commands:\n"
    "  compile   write DIR/NAME.h, NAME.c, NAME_train.c, NAME_gradcheck.c, and\n"
    "            the inference-only NAME_infer.c and NAME_predict.c, NAME being\n"
    "            the model file's name without .lua (DIR: .)\n"
    "  build     compile, then build DIR/NAME_train and NAME_predict (float) and\n"
    "            NAME_gradcheck (double) with cc against the gradc runtime;\n"
    "            --double builds the trainer and predict in double too;\n"
    "            --mpi also NAME_train_mpi, the trainer that runs data-parallel\n"
    "            under mpirun -np P (Open MPI; docs/distributed.md)\n"
    "  check     build and run each model's gradient check; print one table and\n"
    "            exit 1 if any parameter's relative error is above --tol (1e-6)\n"
    "  tune      time each product every way that applies on this machine (the\n"
    "            BLAS call, the transposed operand copied first, gradc's kernel)\n"
    "            and write the fastest to FILE (default NAME.tune), for --tune\n"
    "  print     print the graph, forward and backward, with shapes and lines\n"
    "  graph     write the forward graph (with --backward, the training graph)\n"
    "            as Graphviz DOT: gradc graph m.lua | dot -Tsvg > m.svg\n"
    "  derive    print the gradient of every local and param as math, from the\n"
    "            simplified backward graph, nearest the loss first: dL/dW = ...\n"
    "\n"
    "options:\n"
    "  -o DIR          where compile writes (made if missing); tune: the file\n"
    "  --tune FILE     write each product the way FILE (from gradc tune) says:\n"
    "                  `copy` (the transposed operand copied first) or `kernel`\n"
    "  --bucket-mb X   an MPI trainer sums the gradients in buckets of X MB of\n"
    "                  float (4), each as the backward pass finishes it\n"
    "  --hvp           also write NAME_hvp.c, the Hessian-vector product H v of\n"
    "                  the loss in the parameters (NAME_hvp() in NAME.h); the\n"
    "                  trainer then takes --direction DIR --export-hvp DIR, the\n"
    "                  gradient check --hvp\n"
    "  --jvp           also write NAME_jvp.c, the Jacobian-vector product J v of\n"
    "                  the real outputs in the parameters (forward mode,\n"
    "                  NAME_jvp() in NAME.h); the trainer then takes\n"
    "                  --direction DIR --export-jvp DIR, the gradient check --jvp\n"
    "  --heap-arena    allocate the model's memory when its program starts, not\n"
    "                  as static arrays (always so past 1 GiB, which static data\n"
    "                  cannot hold with the default code model)\n"
    "  -D KEY=VALUE    sets config.KEY in the model (numbers stay numbers)\n"
    "  --test-config   first the -D of the model file's line `-- test config: -D\n"
    "                  KEY=VALUE ...`, if it has one: the small size make test\n"
    "                  and generated/ use (every command takes it)\n"
    "  -v              print the C compiler's commands\n"
    "  --param NAME    derive: only NAME's gradient and the lines it reads\n"
    "  --latex         derive: the lines as LaTeX\n"
    "  --junit FILE    check: also write the results as JUnit XML, for CI\n"
    "  --optimizer K   train with K instead of the model's optimizer, at K's\n"
    "                  defaults: sgd, momentum, nesterov, adam, adamw, rmsprop,\n"
    "                  newton_cg (which writes the --hvp twin it needs)\n"
    "                  (the trainer sets its lr and other settings at run time)\n"
    "  --after PASS    print the graph after PASS (default remat, what the C is\n"
    "                  made from); after fuse or plan, the loops and calls in\n"
    "                  order (and each value's place). The passes, in order:\n"
    "                  %s\n"
    "  --stats         print what each pass did instead of the graph\n"
    "  --memory        print the arena: its parts, and its size against the least\n"
    "                  the schedule needs\n"
    "  --max-instructions N  let the model file run N Lua instructions (100000000),\n"
    "  --max-memory MB       hold MB MiB of memory (1024)\n"
    "  --max-seconds S       and take S seconds of CPU time (10)\n"
    "\n"
    "Build the C with the gradc runtime and OpenBLAS; see README.md.\n";

typedef struct {
    const char *command, *out_dir, *after, *junit, *param;
    const char *models[256];
    int n_models;
    double tol;
    bool backward, verbose, stats, memory, dbl, mpi, latex;
    LoadOptions load;
} Args;

static Args args;

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
            !strcmp(s, "--optimizer") || !strcmp(s, "--junit") || !strcmp(s, "--tol") ||
            !strcmp(s, "--tune") || !strcmp(s, "--max-instructions") ||
            !strcmp(s, "--max-memory") || !strcmp(s, "--max-seconds") ||
            !strcmp(s, "--bucket-mb") || !strcmp(s, "--param")) {
            if (!has_value)
                return bad_usage("%s needs a value", s);
            const char *v = argv[++i];
            if (!strcmp(s, "-o"))
                a->out_dir = v;
            else if (!strcmp(s, "--after"))
                a->after = v;
            else if (!strcmp(s, "--param"))
                a->param = v;
            else if (!strcmp(s, "--optimizer"))
                a->load.optimizer = v;
            else if (!strcmp(s, "--junit"))
                a->junit = v;
            else if (!strcmp(s, "--tune"))
                a->load.tune = v;
            else if (!strncmp(s, "--max-", 6)) {
                char *end;
                errno = 0;
                long n = strtol(v, &end, 10);
                /* The timer takes seconds as a time_t, memory is shifted to bytes. */
                if (*end || n < 1 || errno || n > (1L << 40))
                    return bad_usage("%s: expected a positive whole number", s);
                *(s[6] == 'i'   ? &a->load.max_instructions
                  : s[6] == 'm' ? &a->load.max_memory_mb
                                : &a->load.max_seconds) = n;
            } else if (!strcmp(s, "--bucket-mb")) {
                char *end;
                a->load.bucket_mb = strtod(v, &end);
                if (*end || !(a->load.bucket_mb >= 0.001 && a->load.bucket_mb <= 1 << 20))
                    return bad_usage("--bucket-mb %s: expected MB, from 0.001 to 1048576", v);
            } else if (!strcmp(s, "--tol")) {
                char *end;
                a->tol = strtod(v, &end);
                if (*end || !(a->tol > 0))
                    return bad_usage("--tol %s: expected a positive number", v);
            } else if (a->load.n_defines < 256)
                defines[a->load.n_defines++] = v;
        } else if (!strcmp(s, "--backward")) {
            a->backward = true;
        } else if (!strcmp(s, "--latex")) {
            a->latex = true;
        } else if (!strcmp(s, "--stats")) {
            a->stats = true;
        } else if (!strcmp(s, "--memory")) {
            a->memory = true;
        } else if (!strcmp(s, "--double")) {
            a->dbl = true;
        } else if (!strcmp(s, "--mpi")) {
            a->mpi = true;
        } else if (!strcmp(s, "--heap-arena")) {
            a->load.heap_arena = true;
        } else if (!strcmp(s, "--hvp")) {
            a->load.products |= PRODUCT_HVP;
        } else if (!strcmp(s, "--jvp")) {
            a->load.products |= PRODUCT_JVP;
        } else if (!strcmp(s, "--test-config")) {
            a->load.test_config = true;
        } else if (!strcmp(s, "-v")) {
            a->verbose = true;
        } else if (!strncmp(s, "-D", 2) && s[2]) {
            if (a->load.n_defines < 256)
                defines[a->load.n_defines++] = s + 2;
        } else if (s[0] == '-')
            return bad_usage("unknown option %s", s);
        else if (!a->command)
            a->command = s;
        else if (a->n_models < 256)
            a->models[a->n_models++] = s;
    }
    if (!a->command)
        return bad_usage("%s", "no command given");
    static const char *const commands[] = {"compile", "build", "check", "print",
                                           "graph",   "tune",  "derive"};
    bool known = false;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        known |= !strcmp(a->command, commands[i]);
    if (!known)
        return bad_usage("unknown command '%s'", a->command);
    if (a->n_models == 0)
        return bad_usage("%s needs a model file", a->command);
    if (a->n_models > 1 && strcmp(a->command, "check"))
        return bad_usage("unexpected argument %s", a->models[1]);
    if (a->load.optimizer && optim_find(a->load.optimizer) < 0)
        return bad_usage("--optimizer %s: the kinds are sgd, momentum, nesterov, adam, adamw, "
                         "rmsprop and newton_cg",
                         a->load.optimizer);
    if ((a->stats || a->memory) && (strcmp(a->command, "print") || a->after))
        return bad_usage("%s goes with gradc print, without --after",
                         a->stats ? "--stats" : "--memory");
    if ((a->param || a->latex) && strcmp(a->command, "derive"))
        return bad_usage("%s goes with gradc derive", a->param ? "--param" : "--latex");
    if (a->dbl && strcmp(a->command, "build"))
        return bad_usage("--double goes with gradc build%s", "");
    if (a->mpi && strcmp(a->command, "build"))
        return bad_usage("--mpi goes with gradc build%s", "");
    if (a->load.heap_arena && strcmp(a->command, "build") && strcmp(a->command, "compile"))
        return bad_usage("--heap-arena goes with gradc compile and build%s", "");
    if (a->load.products && strcmp(a->command, "build") && strcmp(a->command, "compile"))
        return bad_usage("%s goes with gradc compile and build",
                         a->load.products & PRODUCT_HVP ? "--hvp" : "--jvp");
    if (a->load.bucket_mb > 0 && strcmp(a->command, "build") && strcmp(a->command, "compile") &&
        strcmp(a->command, "print"))
        return bad_usage("--bucket-mb goes with gradc compile, build and print%s", "");
    if (a->after && !find_pass(a->after)) {
        fprintf(stderr, "gradc: --after %s: the passes are %s (try gradc --help)\n", a->after,
                pass_names());
        return 2;
    }
    return 0;
}

/* Makes dir and the folders above it that are missing, as mkdir -p. */
static int make_dirs(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *c = path + 1;; c++)
        if (*c == '/' || !*c) {
            char end = *c;
            *c = 0;
            if (mkdir(path, 0777) && errno != EEXIST) {
                fprintf(stderr, "gradc: cannot make %s: %s\n", path, strerror(errno));
                return 1;
            }
            if (!(*c = end))
                return 0;
        }
}

static int write_outputs(const char *dir, OutFile *files, int n)
{
    if (make_dirs(dir))
        return 1;
    char tmp[8][1024], final[8][1024];
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

/* Compiles one model into dir with the command line's settings;
 * *products: the twins it wrote (--hvp, newton_cg's, --jvp). */
static int compile_to(const char *model, const char *dir, unsigned *products)
{
    OutFile files[N_OUT_FILES];
    if (compile_files(model, &args.load, files))
        return 1;
    int n = 6;
    *products = 0;
    for (int k = 0; k < N_PRODUCTS; k++)
        if (files[6 + k].path) {
            *products |= 1u << k;
            files[n++] = files[6 + k];
        }
    int status = write_outputs(dir, files, n);
    free_files(files, n);
    return status;
}

/* The outermost folder of dir that is missing (as much of dir as ends
 * there), or "" when dir exists. */
static void first_missing(const char *dir, char out[4096])
{
    snprintf(out, 4096, "%s", dir);
    for (char *c = out + 1;; c++)
        if (*c == '/' || !*c) {
            char end = *c;
            *c = 0;
            if (access(out, F_OK))
                return;
            if (!(*c = end)) {
                out[0] = 0;
                return;
            }
        }
}

/* The names in dir, NULL-terminated (an empty list when dir is missing). */
static char **names_in(const char *dir)
{
    DIR *d = opendir(dir);
    char **names = xcalloc(1, sizeof *names);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        names = xrealloc(names, (n + 2) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
        names[n] = NULL;
    }
    if (d)
        closedir(d);
    return names;
}

static void free_list(char **names)
{
    for (char **name = names; *name; name++)
        free(*name);
    free(names);
}

static bool listed(char *const *names, const char *name)
{
    for (; *names; names++)
        if (!strcmp(*names, name))
            return true;
    return false;
}

/* gradc build: compile, then cc the programs. A build that cannot finish
 * leaves nothing: not the folders it made, nor files in a folder that was
 * there that were not there before. */
static int build_model(const char *model, const char *dir)
{
    if (!runtime_found())
        return 1;
    char made[4096];
    first_missing(dir, made);
    char **before = names_in(dir);
    unsigned products = 0;
    int status = compile_to(model, dir, &products);
    if (!status)
        status = build_programs(dir, model_name(model), args.dbl ? DOUBLE_PROGRAMS : FLOAT_PROGRAMS,
                                args.mpi, products, args.verbose);
    if (status && made[0])
        remove_tree(made);
    else if (status) {
        char **after = names_in(dir);
        for (char **name = after; *name; name++)
            if (!listed(before, *name)) {
                char path[8192];
                snprintf(path, sizeof path, "%s/%s", dir, *name);
                remove(path);
            }
        free_list(after);
    }
    free_list(before);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf(usage, pass_names());
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("gradc %s\n", GRADC_VERSION);
        return 0;
    }
    Args a = {.tol = 1e-6};
    int status = parse_args(argc, argv, &a);
    if (status)
        return status;
    args = a;
    const char *dir = a.out_dir ? a.out_dir : ".";
    if (!strcmp(a.command, "compile"))
        status = compile_to(a.models[0], dir, &(unsigned){0});
    else if (!strcmp(a.command, "build"))
        status = build_model(a.models[0], dir);
    else if (!strcmp(a.command, "tune")) {
        char out[1024];
        snprintf(out, sizeof out, "%s.tune", model_name(a.models[0]));
        Graph *g = compile_graph(a.models[0], &a.load, NULL, NULL);
        status = g ? tune_model(g, a.out_dir ? a.out_dir : out, a.verbose) : 1;
        ir_free(g);
    } else if (!strcmp(a.command, "check")) {
        static bool read[256];
        args.load.defines_read = read;
        status = check_models(a.models, a.n_models, compile_to, a.tol, a.junit, a.verbose);
        for (int i = 0; i < a.load.n_defines; i++)
            if (!read[i]) {
                fprintf(stderr, "gradc: -D %.*s: no model read config.%.*s\n",
                        (int)strcspn(a.load.defines[i], "="), a.load.defines[i],
                        (int)strcspn(a.load.defines[i], "="), a.load.defines[i]);
                status = 1;
            }
    } else if (!strcmp(a.command, "derive"))
        status = derive(a.models[0], &a.load, a.param, a.latex, stdout);
    else if (a.after && !strcmp(a.after, "bucket"))
        status = print_bucket_list(a.models[0], &a.load, stdout);
    else if (a.after && (!strcmp(a.after, "fuse") || !strcmp(a.after, "plan")))
        status = print_schedule(a.models[0], &a.load, !strcmp(a.after, "plan"), stdout);
    else if (a.stats)
        status = print_stats(a.models[0], &a.load, stdout);
    else if (a.memory)
        status = print_memory(a.models[0], &a.load, stdout);
    else {
        Graph *g = compile_graph(a.models[0], &a.load, a.after, NULL);
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
