/*
 * tune.c: times the matrix products `gradc tune` asks about, each written
 * two ways: one with a transposed operand by the BLAS call with its
 * transpose flag, and with the operand copied first (the loop emit_c
 * writes), then a plain product; a plain one by the BLAS and by gemm.c.
 *
 * Each argument is a product, M,N,K,FLAGS (FLAGS NT or TN: which operand
 * is transposed, or NN); each gives one line, `M N K FLAGS as_is other`,
 * in microseconds per product, the median of rounds that alternate the
 * two.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "rt.h"
#include "rt_real.h"

enum { ROUNDS = 9 };

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int m, n, k;
    bool ta, tb;
    float *a, *b, *c, *copy;
} Product;

/* to = from transposed, from [rows, cols]: the loop emit_c writes. */
static void transpose(float *to, const float *from, int rows, int cols)
{
    for (int i = 0; i < rows; i += 16)
        for (int j = 0; j < cols; j++)
            for (int k = i; k < i + 16 && k < rows; k++)
                to[j * rows + k] = from[k * cols + j];
}

/* One product, as emit_c writes it: as it is, or the other way (copied,
 * or by gemm.c's kernel). */
static void once(const Product *p, bool other)
{
    int lda = p->ta ? p->m : p->k, ldb = p->tb ? p->k : p->n;
    if (other && !p->ta && !p->tb) {
        rt_sgemm_nn(p->m, p->n, p->k, 1.0f, p->a, lda, p->b, ldb, 0.0f, p->c, p->n);
        return;
    }
    if (!other) {
        cblas_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans,
                    p->tb ? CblasTrans : CblasNoTrans, p->m, p->n, p->k, 1.0f, p->a, lda, p->b,
                    ldb, 0.0f, p->c, p->n);
        return;
    }
    if (p->ta) { /* A is stored [K, M] */
        transpose(p->copy, p->a, p->k, p->m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->m, p->n, p->k, 1.0f, p->copy,
                    p->k, p->b, ldb, 0.0f, p->c, p->n);
    } else { /* B is stored [N, K] */
        transpose(p->copy, p->b, p->n, p->k);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->m, p->n, p->k, 1.0f, p->a, lda,
                    p->copy, p->n, 0.0f, p->c, p->n);
    }
}

/* Microseconds per product: enough repetitions to fill a millisecond. */
static double time_once(const Product *p, bool copied, int reps)
{
    double t = rt_now_ms();
    for (int r = 0; r < reps; r++)
        once(p, copied);
    return (rt_now_ms() - t) / reps * 1e3;
}

static int tune_one(const char *arg)
{
    Product p = {0};
    char flags[3] = "";
    if (sscanf(arg, "%d,%d,%d,%2s", &p.m, &p.n, &p.k, flags) != 4 || p.m < 1 || p.n < 1 ||
        p.k < 1 || (strcmp(flags, "NT") && strcmp(flags, "TN") && strcmp(flags, "NN")) ||
        (!strcmp(flags, "NN") && p.n % 16)) {
        fprintf(stderr, "tune: %s: expected M,N,K,NT or M,N,K,TN, or M,N,K,NN with N a multiple "
                        "of 16\n", arg);
        return 1;
    }
    p.ta = flags[0] == 'T';
    p.tb = flags[1] == 'T';
    size_t sa = (size_t)p.m * p.k, sb = (size_t)p.k * p.n, sc = (size_t)p.m * p.n;
    p.a = malloc(sa * sizeof *p.a);
    p.b = malloc(sb * sizeof *p.b);
    p.c = malloc(sc * sizeof *p.c);
    p.copy = malloc((p.ta ? sa : sb) * sizeof *p.copy);
    if (!p.a || !p.b || !p.c || !p.copy) {
        fprintf(stderr, "tune: out of memory for %s\n", arg);
        return 1;
    }
    rt_rng rng;
    rt_rng_seed(&rng, 1);
    for (size_t i = 0; i < sa; i++)
        p.a[i] = (float)rt_rng_uniform(&rng);
    for (size_t i = 0; i < sb; i++)
        p.b[i] = (float)rt_rng_uniform(&rng);
    once(&p, false);
    once(&p, true);
    double one = time_once(&p, false, 1) + 1e-3;
    int reps = one > 1000 ? 1 : (int)(1000 / one);
    double t[2][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        for (int v = 0; v < 2; v++)
            t[v][r] = time_once(&p, v, reps);
    qsort(t[0], ROUNDS, sizeof t[0][0], by_value);
    qsort(t[1], ROUNDS, sizeof t[1][0], by_value);
    printf("%d %d %d %s %.3f %.3f\n", p.m, p.n, p.k, flags, t[0][ROUNDS / 2], t[1][ROUNDS / 2]);
    free(p.a);
    free(p.b);
    free(p.c);
    free(p.copy);
    return 0;
}

int rt_tune_main(int argc, char **argv)
{
    rt_use_best_blas(argv);
    rt_set_threads(1);
    printf("# %s, kernels %s\n", openblas_get_config(), openblas_get_corename());
    for (int i = 1; i < argc; i++)
        if (tune_one(argv[i]))
            return 1;
    return 0;
}
