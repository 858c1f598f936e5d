/*
 * rt_real.h: what makes one generated NAME.c build as float or as double.
 *
 * Generated code says `real`, `REAL_C(0.5)`, `r_exp(x)` and `r_gemm(...)`;
 * compiling with -DREAL_DOUBLE turns all of them into double (gradient
 * checks, reference tests), without it into float (training).
 */
#ifndef RT_REAL_H
#define RT_REAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cblas.h>
#include "rt_model.h"

/* newton_cg's update() (products.c): one step of Newton's method on model m,
 * from the gradients in place, through its HVP twin. */
void rt_newton_cg_step(const rt_model *m, const rt_hyper *hyper);

/* Whether a product or loop of `work` (multiply-adds, elements) is
 * shared among the threads: from the size split.c measured it pays at, on
 * this machine, for its kind; never inside work already shared, nor work
 * of -1 (what would not compute each element as on one thread). */
enum { RT_SPLIT_BLAS, RT_SPLIT_KERNEL, RT_SPLIT_BATCHES, RT_SPLIT_LOOPS, RT_SPLIT_KINDS };
bool rt_split(int kind, long work);
#ifdef _OPENMP
#define RT_PRAGMA(x) _Pragma(#x)
/* Before an elementwise loop of n elements big enough that it may be worth
 * sharing (emit_c.c decides which; rt_split, at run time, whether). */
#define RT_PARALLEL_FOR(n) \
    RT_PRAGMA(omp parallel for if (rt_split(RT_SPLIT_LOOPS, n)) schedule(static))
/* Before the `depth` loops over a batch of products (attention's, one per
 * example and head) of `work` multiply-adds in all: shared among the
 * threads by whole products, each computed as on one thread. */
#define RT_SHARED_PRODUCTS(depth, work)                                                         \
    RT_PRAGMA(omp parallel for collapse(depth) if (rt_split(RT_SPLIT_BATCHES, work))        \
                  schedule(static))
#else
#define RT_PARALLEL_FOR(n)
#define RT_SHARED_PRODUCTS(depth, work)
#endif

/* A generated model's compute functions are built three times, for
 * AVX-512, for AVX2 and for any x86-64, and the loader takes the best the
 * CPU has: exp and tanh on 16 floats at a time run three times faster than
 * on the 4 of the x86-64 baseline. Built with -std=c11, as gradc build and
 * the Makefile do, no clone fuses a multiply and an add, so each does the
 * same operations on each element and results do not depend on the CPU
 * (under -std=gnu17 the AVX-512 clone would fuse them). Only with glibc,
 * whose loader makes the choice; not under ASan, whose checks would run
 * before it has chosen; and not with clang, whose clones need a newer
 * version. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define RT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RT_VECTOR_CLONES
#endif

/* gemm.c: cblas_?gemm, row-major, with a product worth it shared among
 * the threads (each part one OpenBLAS call on one thread). */
void rt_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
              int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
              float beta, float *c, int ldc);
void rt_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
              int n, int k, double alpha, const double *a, int lda, const double *b, int ldb,
              double beta, double *c, int ldc);
/* gemm.c, for the products `gradc tune` found it faster on, row-major:
 * C = alpha A B + beta C and alpha A^T B + beta C with n a multiple of 4
 * (_nn, _tn), and C = alpha A B^T + beta C with k a multiple of 16 (_nt). */
void rt_sgemm_nn(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc);
void rt_dgemm_nn(int m, int n, int k, double alpha, const double *a, int lda, const double *b,
                 int ldb, double beta, double *c, int ldc);
void rt_sgemm_tn(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc);
void rt_dgemm_tn(int m, int n, int k, double alpha, const double *a, int lda, const double *b,
                 int ldb, double beta, double *c, int ldc);
void rt_sgemm_nt(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc);
void rt_dgemm_nt(int m, int n, int k, double alpha, const double *a, int lda, const double *b,
                 int ldb, double beta, double *c, int ldc);

/* gemm.c: a batch [batch, heads] of products C = alpha op(A) op(B) + beta
 * C (attention's, one per example and head), matrix (i, j) of each operand
 * at i * step_i + j * step_j from its start, its rows ld apart; n a
 * multiple of 4, and with op(B) = B^T, k n at most RT_HEAD_PANEL. tri:
 * RT_TRI_A, op(A) square and zero on the far side of its diagonal (a
 * causal softmax's, as A above the diagonal, as A^T below); RT_TRI_C, C
 * square and only its columns up to each row computed (the rest are
 * left as they were, for a causal softmax that reads no further). */
typedef struct {
    long step_i, step_j;
    int ld;
} rt_layout;
enum { RT_TRI_A = 1, RT_TRI_C = 2, RT_HEAD_PANEL = 8192 };
void rt_sheads(int batch, int heads, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
               int k, float alpha, const float *a, rt_layout la, const float *b, rt_layout lb,
               float beta, float *c, rt_layout lc, int tri);
void rt_dheads(int batch, int heads, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
               int k, double alpha, const double *a, rt_layout la, const double *b, rt_layout lb,
               double beta, double *c, rt_layout lc, int tri);

#ifdef REAL_DOUBLE
typedef double real;
#define REAL_C(x) x
#define RT_REAL RT_F64
#define REAL_SUFFIX(name) name##_f64
#define r_exp exp
#define r_log log
#define r_tanh tanh
#define r_sqrt sqrt
#define r_fabs fabs
#define r_log1p log1p
#define r_fmin fmin
#define r_pow pow
#define r_fmax fmax
#define r_gemm rt_dgemm
#define r_gemm_nn rt_dgemm_nn
#define r_gemm_nt rt_dgemm_nt
#define r_gemm_tn rt_dgemm_tn
#define r_heads rt_dheads
#else
typedef float real;
#define REAL_C(x) x##f
#define RT_REAL RT_F32
#define REAL_SUFFIX(name) name##_f32
#define r_exp rt_expf
#define r_log logf
#define r_tanh rt_tanhf
#define r_sqrt sqrtf
#define r_fabs fabsf
#define r_log1p log1pf
#define r_fmin rt_fminf
#define r_pow powf
#define r_fmax rt_fmaxf
#define r_gemm rt_sgemm
#define r_gemm_nn rt_sgemm_nn
#define r_gemm_nt rt_sgemm_nt
#define r_gemm_tn rt_sgemm_tn
#define r_heads rt_sheads

/* exp and tanh for float training, written without branches or calls so
 * that the compiler turns a loop of them into vector code (glibc's expf
 * and tanhf are calls, one element at a time; its tanhf is slow). Within
 * 2 ulp of the true values; exp's results below 2^-125 flush to 0. The
 * double build keeps libm's, for gradient checks. */
static inline float rt_float_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 2^k, for k in [-126, 127]. */
static inline float rt_pow2f(int32_t k) { return rt_float_of_bits((uint32_t)(k + 127) << 23); }

/* x = k ln2 + r, |r| <= ln2 / 2: k rounded to the nearest integer by
 * adding 1.5 * 2^23 (whose float has no bits for fractions), ln2 in two
 * parts so that k ln2 is exact to float precision. */
static inline float rt_reduce(float x, int32_t *k)
{
    const float round = 12582912.0f;
    float kf = (x * 1.44269504088896341f + round) - round;
    *k = (int32_t)kf;
    return (x - kf * 0.693359375f) + kf * 2.12194440054690583e-4f;
}

/* e^r - 1 on |r| <= ln2 / 2, its Taylor series to r^8 / 8! (the rest is
 * below float precision there). */
static inline float rt_expm1_small(float r)
{
    float p = 1.0f / 40320;
    p = p * r + 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    return (p * r + 1.0f) * r;
}

static inline float rt_expf(float x)
{
    /* Clamped so that 2^(k - 1) is a normal float; outside, 0 or inf. */
    float xc = x < -86.5f ? -86.5f : x > 88.72f ? 88.72f : x;
    int32_t k;
    float r = rt_reduce(xc, &k);
    float y = (rt_expm1_small(r) + 1.0f) * rt_pow2f(k - 1) * 2.0f;
    return x < -86.5f ? 0.0f : x > 88.72f ? INFINITY : y;
}

/* fmax and fmin as libm's (a NaN argument gives the other), inline: the
 * calls would keep a softmax's loops scalar. */
static inline float rt_fmaxf(float a, float b) { return a != a ? b : b > a ? b : a; }
static inline float rt_fminf(float a, float b) { return a != a ? b : b < a ? b : a; }

/* tanh|x| = -m / (m + 2) with m = e^(-2|x|) - 1, which keeps its relative
 * precision near 0; from |x| = 9 on, tanh rounds to 1. */
static inline float rt_tanhf(float x)
{
    float a = fabsf(x);
    a = a > 9.0f ? 9.0f : a;
    int32_t k;
    float r = rt_reduce(-2.0f * a, &k), s = rt_pow2f(k);
    float m = rt_expm1_small(r) * s + (s - 1.0f);
    return copysignf(-m / (m + 2.0f), x);
}

#endif

/* The random draws of training-only ops (dropout, random_shift): number i
 * of site `site` at step `step`, uniform in [0, 1). A hash of the three,
 * so the same step gives the same draws to the forward pass and to its
 * gradient, and a gradient check (which never advances the step) sees
 * one fixed mask. */
static inline double rt_draw(uint64_t step, uint64_t site, uint64_t i)
{
    uint64_t z = step * 0x9e3779b97f4a7c15u + site * 0xbf58476d1ce4e5b9u + i * 0x94d049bb133111ebu;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* A running max (min) that starts at -INFINITY (INFINITY) takes x where x
 * is larger (smaller). A NaN x is skipped, as fmax would skip it, and the
 * accumulator is never NaN, so fmax's test of it is not needed: without
 * it the compiler writes one maxss, where the test made a branch per
 * element (a max pool 20 times slower). */
static inline real r_max(real acc, real x) { return x > acc ? x : acc; }
static inline real r_min(real acc, real x) { return x < acc ? x : acc; }

/* A row's max, sum of exps and dot product, for softmax and
 * cross-entropy: each in 16 partial results, one per lane of a vector,
 * combined at the end. One running result is a chain of dependent adds (4
 * cycles an element, the causal softmax of a GPT's attention 5 times
 * slower); the lanes are independent, and the compiler keeps them in
 * vector registers. The sums add in that order, not left to right. */
enum { R_LANES = 16 };
/* Always inlined: a copy out of line would be built for the baseline CPU,
 * not for the clone of the loop that calls it. */
#ifdef __GNUC__
#define R_ROW_INLINE static inline __attribute__((always_inline))
#else
#define R_ROW_INLINE static inline
#endif

R_ROW_INLINE real r_max_of(const real *x, int n)
{
    real part[R_LANES];
    for (int l = 0; l < R_LANES; l++)
        part[l] = -INFINITY;
    int o = 0;
    for (; o + R_LANES <= n; o += R_LANES)
        for (int l = 0; l < R_LANES; l++)
            part[l] = r_max(part[l], x[o + l]);
    for (int l = 0; o + l < n; l++)
        part[l] = r_max(part[l], x[o + l]);
    real mx = part[0];
    for (int l = 1; l < R_LANES; l++)
        mx = r_max(mx, part[l]);
    return mx;
}

R_ROW_INLINE real r_sum_parts(const real *part)
{
    real acc = part[0];
    for (int l = 1; l < R_LANES; l++)
        acc += part[l];
    return acc;
}

/* The sum of exp(x_j - shift); with `to`, each exp is also stored there
 * (to may be x itself). */
R_ROW_INLINE real r_exp_sum(real *to, const real *x, int n, real shift)
{
    real part[R_LANES] = {0};
    int o = 0;
    for (; o + R_LANES <= n; o += R_LANES)
        for (int l = 0; l < R_LANES; l++) {
            const real e = r_exp(x[o + l] - shift);
            if (to)
                to[o + l] = e;
            part[l] += e;
        }
    for (int l = 0; o + l < n; l++) {
        const real e = r_exp(x[o + l] - shift);
        if (to)
            to[o + l] = e;
        part[l] += e;
    }
    return r_sum_parts(part);
}

/* sum_j x_j y_j; y NULL: sum_j x_j. */
R_ROW_INLINE real r_dot(const real *x, const real *y, int n)
{
    real part[R_LANES] = {0};
    int o = 0;
    for (; o + R_LANES <= n; o += R_LANES)
        for (int l = 0; l < R_LANES; l++)
            part[l] += y ? x[o + l] * y[o + l] : x[o + l];
    for (int l = 0; o + l < n; l++)
        part[l] += y ? x[o + l] * y[o + l] : x[o + l];
    return r_sum_parts(part);
}

/* Whether dropout drops element i, with probability p. */
static inline int rt_dropped(uint64_t step, uint64_t site, uint64_t i, double p)
{
    return rt_draw(step, site, i) < p;
}

/* random_shift's offset number i: an integer in [-k, k]. */
static inline int rt_offset(uint64_t step, uint64_t site, uint64_t i, int k)
{
    return (int)(rt_draw(step, site, i) * (2 * k + 1)) - k;
}

#endif
