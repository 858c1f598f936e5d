/*
 * tune.c: gradc tune, and the file --tune FILE reads.
 *
 * A matrix product can be written up to three ways: the BLAS call (with
 * its transpose flag, if an operand is transposed); the transposed operand
 * copied first, then a plain BLAS product; and gradc's own kernels
 * (runtime/gemm.c), for A B or A^T B with N a multiple of 4, and for
 * A B^T with K a multiple of 16. Which is fastest depends on
 * the shapes and on the BLAS, so it is measured, not guessed: gradc tune
 * times each way on this machine for every product of a model
 * (runtime/tune.c) and writes what it found. Compiling with --tune FILE
 * writes each product the way the file says. The file is committed beside
 * the models, so the generated code is the same on every machine.
 *
 * The file: `#` comments, and a line per product,
 * `M N K FLAGS BLAS COPIED KERNEL USE`: FLAGS NN, NT or TN (which operand
 * is transposed), the times in microseconds (`-` for a way not timed, as
 * one that does not apply is not), USE `blas`, `copy` or `kernel`. A batch
 * of attention's products, one per example and head, says how many after
 * the flags, and the triangles the causal mask lets the kernel leave out
 * (A: op(A)'s, zero; C: the result's, unread): `NT*64/C` is 64 products
 * A B^T of which only the columns up to each row are read; the times are
 * the batch's.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradc.h"

/* How much faster another way must be than the BLAS call to be chosen, in
 * part and in microseconds a product: within this, timing noise would make
 * the choice flip from run to run, for a gain nobody could measure in a
 * step. */
#define GAIN 0.9
#define MIN_US 2.0

static const char *const use_name[] = {"blas", "copy", "kernel"};

static bool same(const Product *a, const Product *b)
{
    return a->m == b->m && a->n == b->n && a->k == b->k && a->ta == b->ta && a->tb == b->tb &&
           a->count == b->count && a->tri == b->tri;
}

/* Whether a way applies to a product. */
static bool applies(const Product *p, TuneUse u)
{
    return u == USE_BLAS || (u == USE_COPY && p->ta != p->tb && !p->count) ||
           (u == USE_KERNEL && kernel_fits(p));
}

/* FLAGS as the file writes them: NT, or NT*64/AC for a batch. */
static void flags_str(char *out, size_t len, const Product *p)
{
    int at = snprintf(out, len, "%s", p->ta ? "TN" : p->tb ? "NT" : "NN");
    if (p->count)
        at += snprintf(out + at, len - at, "*%d", p->count);
    if (p->tri)
        snprintf(out + at, len - at, "/%s%s", p->tri & TRI_A ? "A" : "", p->tri & TRI_C ? "C" : "");
}

/* Reads FLAGS into p; false if they are not flags. */
static bool read_flags(const char *s, Product *p)
{
    if ((strncmp(s, "NN", 2) && strncmp(s, "NT", 2) && strncmp(s, "TN", 2)))
        return false;
    p->ta = s[0] == 'T';
    p->tb = s[1] == 'T';
    s += 2;
    if (*s == '*') {
        char *end;
        long count = strtol(s + 1, &end, 10);
        if (end == s + 1 || count < 1 || count > INT_MAX)
            return false;
        p->count = (int)count;
        s = end;
    }
    if (*s == '/' && p->count) {
        s++;
        if (*s == 'A')
            p->tri |= TRI_A, s++;
        if (*s == 'C')
            p->tri |= TRI_C, s++;
        if (!p->tri)
            return false;
    }
    return !*s;
}

/* A time, or `-` (NAN) for a way not timed. */
static bool read_time(const char *s, double *t)
{
    char *end;
    *t = strcmp(s, "-") ? strtod(s, &end) : NAN;
    return !strcmp(s, "-") || (*end == 0 && *t >= 0);
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
        char flags[24], times[3][24], use[8];
        double time[3];
        int used = 0, u = 0;
        bool ok = sscanf(s, "%d %d %d %23s %23s %23s %23s %7s %n", &p.m, &p.n, &p.k, flags,
                         times[0], times[1], times[2], use, &used) == 8 &&
                  !s[used] && p.m > 0 && p.n > 0 && p.k > 0 && read_flags(flags, &p);
        while (u < 3 && strcmp(use, use_name[u]))
            u++;
        for (int w = 0; w < 3 && ok; w++)
            ok = read_time(times[w], &time[w]) && (applies(&p, (TuneUse)w) || isnan(time[w]));
        if (!ok || u == 3 || isnan(time[u])) {
            fprintf(stderr,
                    "%s:%d: expected `M N K NN|NT|TN[*COUNT[/A|/C|/AC]] BLAS COPIED KERNEL "
                    "blas|copy|kernel`: times in microseconds (`-`: not timed; the ways that do "
                    "not apply are not), and a way timed\n",
                    path, at);
            fclose(f);
            tune_free(t);
            return 1;
        }
        t->product = xrealloc(t->product, (t->n + 1) * sizeof *t->product);
        t->use = xrealloc(t->use, (t->n + 1) * sizeof *t->use);
        t->product[t->n] = p;
        t->use[t->n++] = (TuneUse)u;
    }
    fclose(f);
    return 0;
}

TuneUse tune_use(const Tune *t, const Product *p)
{
    for (int i = 0; t && i < t->n; i++)
        if (same(&t->product[i], p))
            return t->use[i];
    return USE_BLAS;
}

void tune_free(Tune *t)
{
    free(t->product);
    free(t->use);
    *t = (Tune){0};
}

int tune_model(Graph *g, const char *out, bool verbose)
{
    Product *seen = xmalloc(g->n * sizeof *seen);
    char **args = xmalloc(g->n * sizeof *args);
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *x = ir_at(g, i);
        Product p;
        if (!head_product(g, i, &p) &&
            ((x->op != OP_MATMUL && x->op != OP_MATMUL_ADD) ||
             !matmul_product(x, ir_at(g, x->in[0])->shape, ir_at(g, x->in[1])->shape, &p)))
            continue;
        if (!applies(&p, USE_COPY) && !applies(&p, USE_KERNEL))
            continue;
        bool again = false;
        for (int j = 0; j < n && !again; j++)
            again = same(&seen[j], &p);
        if (again)
            continue;
        seen[n] = p;
        char flags[24];
        flags_str(flags, sizeof flags, &p);
        args[n] = xmalloc(64);
        snprintf(args[n++], 64, "%d,%d,%d,%s,b%s%s", p.m, p.n, p.k, flags,
                 applies(&p, USE_COPY) ? "c" : "", applies(&p, USE_KERNEL) ? "k" : "");
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
                "# gradc tune %s: each product, timed on one thread in each way\n"
                "# that applies (microseconds, the median of 9 rounds): the BLAS call;\n"
                "# the transposed operand copied first, then a plain BLAS product; and\n"
                "# gradc's kernel (runtime/gemm.c). Another way than the BLAS call where\n"
                "# that is %.0f%% and %.0f us faster or more; compile with --tune FILE to\n"
                "# use it. With more cores, a comment after each product gives the\n"
                "# BLAS call and the kernel whole and shared among the threads, and the\n"
                "# last line which products and loops a trainer would share here.\n",
                g->source, (1 - GAIN) * 100, MIN_US);
        char line[256];
        int got = 0;
        while (in && fgets(line, sizeof line, in)) {
            Product p = {0};
            char flags[24], times[3][24];
            if (line[0] == '#') {
                fputs(line, f);
                continue;
            }
            double time[3];
            if (sscanf(line, "%d %d %d %23s %23s %23s %23s", &p.m, &p.n, &p.k, flags, times[0],
                       times[1], times[2]) != 7 ||
                !read_time(times[0], &time[0]) || !read_time(times[1], &time[1]) ||
                !read_time(times[2], &time[2]))
                break; /* counted short below */
            if (got++ == 0)
                fprintf(f,
                        "#     M      N      K  flags           blas     copied     kernel  use\n");
            int best = 0;
            for (int w = 1; w < 3; w++)
                if (time[w] < GAIN * time[0] && time[w] < time[0] - MIN_US &&
                    !(time[w] >= time[best]))
                    best = w;
            fprintf(f, "%7d %6d %6d  %-9s %10s %10s %10s  %s\n", p.m, p.n, p.k, flags, times[0],
                    times[1], times[2], use_name[best]);
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
    return status;
}
