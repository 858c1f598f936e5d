/*
 * tune.c: gradc tune, and the file --tune FILE reads.
 *
 * A product with one transposed operand can be written two ways: the BLAS
 * call with its transpose flag, or the operand copied transposed first and
 * then a plain product. A plain product, too: the BLAS call, or
 * runtime/gemm.c's kernel (when N is a multiple of 16). Which is faster
 * depends on the shapes and on the BLAS, so it is measured, not guessed:
 * gradc tune times both ways on this machine for every such product of a
 * model (runtime/tune.c) and writes what it found. Compiling with --tune
 * FILE writes the products the file marks `copy` or `kernel` the second
 * way. The file is committed beside the models, so the generated code is
 * the same on every machine.
 *
 * The file: `#` comments, and a line per product,
 * `M N K FLAGS AS_IS OTHER USE`: FLAGS NT or TN (which operand is
 * transposed) or NN, the times in microseconds, USE `flag` or `copy` (NT
 * and TN), `blas` or `kernel` (NN).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

/* How much faster the copy must be to be chosen, in part and in
 * microseconds a product: within this, timing noise would make the choice
 * flip from run to run, for a gain nobody could measure in a step. */
#define COPY_GAIN 0.9
#define COPY_MIN_US 2.0

static bool same(const Product *a, const Product *b)
{
    return a->m == b->m && a->n == b->n && a->k == b->k && a->ta == b->ta && a->tb == b->tb;
}

int tune_read(const char *path, Tune *t)
{
    *t = (Tune){0};
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
        return 1;
    }
    char line[256];
    for (int at = 1; fgets(line, sizeof line, f); at++) {
        char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || !*s)
            continue;
        Product p = {0};
        char flags[4], use[8];
        double as_is, other;
        int used = 0;
        bool plain = false;
        if (sscanf(s, "%d %d %d %3s %lf %lf %7s %n", &p.m, &p.n, &p.k, flags, &as_is, &other, use,
                   &used) != 7 ||
            s[used] || p.m < 1 || p.n < 1 || p.k < 1 ||
            (strcmp(flags, "NT") && strcmp(flags, "TN") && !(plain = !strcmp(flags, "NN"))) ||
            (plain ? strcmp(use, "blas") && (strcmp(use, "kernel") || p.n % 16)
                   : strcmp(use, "flag") && strcmp(use, "copy"))) {
            fprintf(stderr,
                    "%s:%d: expected `M N K NT|TN AS_IS COPIED flag|copy` or `M N K NN BLAS "
                    "KERNEL blas|kernel` (N a multiple of 16)\n",
                    path, at);
            fclose(f);
            tune_free(t);
            return 1;
        }
        p.ta = flags[0] == 'T';
        p.tb = flags[1] == 'T';
        if (!strcmp(use, "copy")) {
            t->copy = xrealloc(t->copy, (t->n + 1) * sizeof *t->copy);
            t->copy[t->n++] = p;
        } else if (!strcmp(use, "kernel")) {
            t->kernel = xrealloc(t->kernel, (t->n_kernel + 1) * sizeof *t->kernel);
            t->kernel[t->n_kernel++] = p;
        }
    }
    fclose(f);
    return 0;
}

bool tune_copies(const Tune *t, const Product *p)
{
    for (int i = 0; t && i < t->n; i++)
        if (same(&t->copy[i], p))
            return true;
    return false;
}

bool tune_kernel(const Tune *t, const Product *p)
{
    for (int i = 0; t && i < t->n_kernel; i++)
        if (same(&t->kernel[i], p))
            return true;
    return false;
}

void tune_free(Tune *t)
{
    free(t->copy);
    free(t->kernel);
    *t = (Tune){0};
}

int tune_model(const char *model, const LoadOptions *o, const char *out, bool verbose)
{
    Graph *g = compile_graph(model, o, NULL, NULL);
    if (!g)
        return 1;
    Product *seen = xmalloc(g->n * sizeof *seen);
    char **args = xmalloc(g->n * sizeof *args);
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *x = ir_at(g, i);
        Product p;
        if ((x->op != OP_MATMUL && x->op != OP_MATMUL_ADD) ||
            !matmul_product(x, ir_at(g, x->in[0])->shape, ir_at(g, x->in[1])->shape, &p) ||
            (p.ta == p.tb && !kernel_fits(&p)))
            continue;
        bool again = false;
        for (int j = 0; j < n && !again; j++)
            again = same(&seen[j], &p);
        if (again)
            continue;
        seen[n] = p;
        args[n] = xmalloc(64);
        snprintf(args[n++], 64, "%d,%d,%d,%s", p.m, p.n, p.k, p.ta ? "TN" : p.tb ? "NT" : "NN");
    }
    char times[PATH_MAX], tmp[PATH_MAX];
    snprintf(times, sizeof times, "%s.times", out);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    int status = n ? run_tune_program((const char *const *)args, n, times, verbose) : 0;
    FILE *in = n && !status ? fopen(times, "r") : NULL, *f = status ? NULL : fopen(tmp, "w");
    if (!status && !f) {
        fprintf(stderr, "gradc: cannot write %s: %s\n", tmp, strerror(errno));
        status = 1;
    }
    if (f) {
        fprintf(f,
                "# gradc tune %s: each product with a transposed operand, timed on\n"
                "# one thread both ways (microseconds, the median of 9 rounds): with the\n"
                "# BLAS flag, and with the operand copied transposed first; each plain\n"
                "# product (NN) by the BLAS and by gradc's kernel (runtime/gemm.c).\n"
                "# `copy` or `kernel` where that is %.0f%% and %.0f us faster or more;\n"
                "# compile with --tune FILE to use it.\n",
                model, (1 - COPY_GAIN) * 100, COPY_MIN_US);
        char line[256];
        int got = 0;
        while (in && fgets(line, sizeof line, in)) {
            Product p = {0};
            char flags[4];
            double as_is, other;
            if (line[0] == '#') {
                fputs(line, f);
                continue;
            }
            if (sscanf(line, "%d %d %d %3s %lf %lf", &p.m, &p.n, &p.k, flags, &as_is, &other) != 6)
                break;
            if (got++ == 0)
                fprintf(f, "#     M      N      K  flags      as_is      other  use\n");
            bool plain = !strcmp(flags, "NN"),
                 faster = other < COPY_GAIN * as_is && other < as_is - COPY_MIN_US;
            fprintf(f, "%7d %6d %6d  %-5s %10.3f %10.3f  %s\n", p.m, p.n, p.k, flags, as_is, other,
                    plain ? (faster ? "kernel" : "blas") : faster ? "copy" : "flag");
        }
        if (got != n) {
            fprintf(stderr, "gradc: the timing program gave %d of %d products\n", got, n);
            status = 1;
        }
        if (fclose(f) && !status) {
            fprintf(stderr, "gradc: cannot write %s: %s\n", tmp, strerror(errno));
            status = 1;
        }
    }
    if (in)
        fclose(in);
    remove(times);
    if (!status && rename(tmp, out)) {
        fprintf(stderr, "gradc: cannot write %s: %s\n", out, strerror(errno));
        status = 1;
    }
    if (status)
        remove(tmp);
    else
        printf("%s: %d products timed\n", out, n);
    for (int i = 0; i < n; i++)
        free(args[i]);
    free(args);
    free(seen);
    ir_free(g);
    return status;
}
