/*
 * tune.c: times the matrix products `gradc tune` asks about, each in the
 * ways that apply to it: the BLAS call (with its transpose flag); the
 * transposed operand copied first (the loop emit_c writes), then a plain
 * product; and gemm.c's kernel.
 *
 * Each argument is a product, M,N,K,FLAGS,WAYS (FLAGS NN, NT or TN: which
 * operand is transposed, and for a batch of attention's products *COUNT
 * and the triangles left out, /A, /C or /AC, as compiler/tune.c writes
 * them; WAYS the ways to time, of b, c and k: the BLAS call, copied,
 * kernel, as compiler/tune.c finds they apply); each gives
 * one line, `M N K FLAGS blas copied kernel`, in microseconds per product
 * (`-` for a way not timed), the median of rounds that alternate the ways.
 * With more than one core, a comment line after each gives the BLAS call
 * and the kernel as a trainer computes them, whole and shared among the
 * threads, and the last lines what a trainer's calibration finds
 * (split.c): which products and loops are worth sharing on this machine.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "rt.h"
#include "rt_real.h"

enum { ROUNDS = 9, BLAS = 0, COPIED, KERNEL, WAYS };

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int m, n, k;
    bool ta, tb;
    int count, tri; /* a batch: how many, side by side; the triangles left out */
    bool timed[WAYS];
    float *a, *b, *c, *copy;
} Product;

/* A batch of products, each matrix after the last: the BLAS call for
 * each, as a trainer's loop makes them, or gemm.c's kernel for the batch. */
static void batch(const Product *p, bool kernel)
{
    const int lda = p->ta ? p->m : p->k, ldb = p->tb ? p->k : p->n;
    const long sa = (long)p->m * p->k, sb = (long)p->k * p->n, sc = (long)p->m * p->n;
    const enum CBLAS_TRANSPOSE ta = p->ta ? CblasTrans : CblasNoTrans,
                               tb = p->tb ? CblasTrans : CblasNoTrans;
    if (kernel) {
        rt_sheads(1, p->count, ta, tb, p->m, p->n, p->k, 1.0f, p->a, (rt_layout){0, sa, lda}, p->b,
                  (rt_layout){0, sb, ldb}, 0.0f, p->c, (rt_layout){0, sc, p->n}, p->tri);
        return;
    }
    for (int i = 0; i < p->count; i++)
        rt_sgemm(CblasRowMajor, ta, tb, p->m, p->n, p->k, 1.0f, p->a + i * sa, lda, p->b + i * sb,
                 ldb, 0.0f, p->c + i * sc, p->n);
}

/* to = from transposed, from [rows, cols]: the loop emit_c writes. */
static void transpose(float *to, const float *from, int rows, int cols)
{
    for (int i = 0; i < rows; i += 16)
        for (int j = 0; j < cols; j++)
            for (int k = i; k < i + 16 && k < rows; k++)
                to[j * rows + k] = from[k * cols + j];
}

/* One product through gemm.c, by its kernel or by the BLAS, as a trainer
 * computes it. */
static void through_gemm_c(const Product *p, bool kernel)
{
    int lda = p->ta ? p->m : p->k, ldb = p->tb ? p->k : p->n;
    if (kernel)
        (p->tb ? rt_sgemm_nt : p->ta ? rt_sgemm_tn : rt_sgemm_nn)(p->m, p->n, p->k, 1.0f, p->a,
                                                                   lda, p->b, ldb, 0.0f, p->c,
                                                                   p->n);
    else
        rt_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans,
                 p->tb ? CblasTrans : CblasNoTrans, p->m, p->n, p->k, 1.0f, p->a, lda, p->b, ldb,
                 0.0f, p->c, p->n);
}

/* One product, as emit_c writes it in the given way. */
static void once(const Product *p, int way)
{
    if (p->count) {
        batch(p, way == KERNEL);
        return;
    }
    int lda = p->ta ? p->m : p->k, ldb = p->tb ? p->k : p->n;
    if (way == KERNEL) {
        through_gemm_c(p, true);
        return;
    }
    if (way == BLAS) {
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
static double time_once(const Product *p, int way, int reps)
{
    double t = rt_now_ms();
    for (int r = 0; r < reps; r++)
        once(p, way);
    return (rt_now_ms() - t) / reps * 1e3;
}

/* Microseconds per product as a trainer on more than one thread computes
 * it (through gemm.c, by the BLAS or by the kernel), whole or shared among
 * the threads: the median of ROUNDS, alternating the two. */
static void time_sharing(const Product *p, bool kernel, int reps, double us[2])
{
    double t[2][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        for (int shared = 0; shared < 2; shared++) {
            rt_split_force(shared);
            double t0 = rt_now_ms();
            for (int i = 0; i < reps; i++)
                if (p->count)
                    batch(p, kernel);
                else
                    through_gemm_c(p, kernel);
            t[shared][r] = (rt_now_ms() - t0) / reps * 1e3;
        }
    rt_split_force(0); /* the ways above are timed on one thread */
    for (int shared = 0; shared < 2; shared++) {
        qsort(t[shared], ROUNDS, sizeof t[shared][0], by_value);
        us[shared] = t[shared][ROUNDS / 2];
    }
}

static float *aligned(size_t n) { return aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64); }

static int tune_one(const char *arg, int threads)
{
    Product p = {0};
    char flags[24] = "", tri[3] = "", ways[4] = "";
    int used = 0;
    bool ok = sscanf(arg, "%d,%d,%d,%23[NT*/AC0-9],%3[bck]%n", &p.m, &p.n, &p.k, flags, ways,
                     &used) == 5 &&
              !arg[used] && p.m > 0 && p.n > 0 && p.k > 0 &&
              (!strncmp(flags, "NT", 2) || !strncmp(flags, "TN", 2) || !strncmp(flags, "NN", 2));
    if (ok && flags[2]) /* a batch */
        ok =
            (sscanf(flags + 2, "*%d%n", &p.count, &used) == 1 && p.count > 0 && !flags[2 + used]) ||
            (sscanf(flags + 2, "*%d/%2[AC]%n", &p.count, tri, &used) == 2 && p.count > 0 &&
             !flags[2 + used]);
    if (!ok) {
        fprintf(stderr,
                "tune: %s: expected M,N,K,NN|NT|TN[*COUNT[/A|/C|/AC]],WAYS (WAYS of b, c, k)\n",
                arg);
        return 1;
    }
    p.tri = (strchr(tri, 'A') ? RT_TRI_A : 0) | (strchr(tri, 'C') ? RT_TRI_C : 0);
    for (int w = 0; w < WAYS; w++)
        p.timed[w] = strchr(ways, "bck"[w]);
    p.ta = flags[0] == 'T';
    p.tb = flags[1] == 'T';
    const size_t count = p.count ? (size_t)p.count : 1;
    size_t sa = (size_t)p.m * p.k * count, sb = (size_t)p.k * p.n * count,
           sc = (size_t)p.m * p.n * count;
    /* On cache lines, as a generated program's arena places them. */
    p.a = aligned(sa);
    p.b = aligned(sb);
    p.c = aligned(sc);
    p.copy = aligned(p.ta ? sa : sb);
    if (!p.a || !p.b || !p.c || !p.copy) {
        fprintf(stderr, "tune: out of memory for %s\n", arg);
        return 1;
    }
    rt_rng rng;
    rt_rng_seed(&rng, 1);
    for (size_t i = 0; i < sa; i++) /* a triangle of A as a causal softmax leaves it */
        p.a[i] = (p.tri & RT_TRI_A) && i % p.k > i / p.k % p.m ? 0.0f : (float)rt_rng_uniform(&rng);
    for (size_t i = 0; i < sb; i++)
        p.b[i] = (float)rt_rng_uniform(&rng);
    for (int w = 0; w < WAYS; w++)
        if (p.timed[w])
            once(&p, w);
    double one = time_once(&p, BLAS, 1) + 1e-3;
    int reps = one > 1000 ? 1 : (int)(1000 / one);
    double t[WAYS][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        for (int w = 0; w < WAYS; w++)
            if (p.timed[w])
                t[w][r] = time_once(&p, w, reps);
    char text[WAYS][24];
    for (int w = 0; w < WAYS; w++) {
        snprintf(text[w], sizeof text[w], "-");
        if (p.timed[w]) {
            qsort(t[w], ROUNDS, sizeof t[w][0], by_value);
            snprintf(text[w], sizeof text[w], "%.3f", t[w][ROUNDS / 2]);
        }
    }
    printf("%d %d %d %s %s %s %s\n", p.m, p.n, p.k, flags, text[BLAS], text[COPIED], text[KERNEL]);
    if (threads > 1) {
        printf("#   on %d threads, whole / shared:", threads);
        for (int kernel = 0; kernel < 2; kernel++)
            if (p.timed[kernel ? KERNEL : BLAS]) {
                double us[2];
                time_sharing(&p, kernel, reps, us);
                printf(" %s %.3f / %.3f%s", kernel ? "kernel" : "blas", us[0], us[1],
                       us[1] < 0.9 * us[0] ? " (pays)" : "");
            }
        printf("\n");
    }
    free(p.a);
    free(p.b);
    free(p.c);
    free(p.copy);
    return 0;
}

int rt_tune_main(int argc, char **argv)
{
    rt_use_best_blas(argv);
    const int threads = rt_set_threads(0);
    rt_split_force(0);
    printf("# %s, kernels %s\n", openblas_get_config(), openblas_get_corename());
    for (int i = 1; i < argc; i++)
        if (tune_one(argv[i], threads))
            return 1;
    /* what a trainer on every core would find at start, for the record */
    rt_calibrate_split(true, false, stdout, "# on this machine");
    return 0;
}
