/*
 * test_numerics.c: the runtime's arithmetic, each part against a reference
 * it shares no code with: gemm.c's kernels, and rt_sgemm's sharing out
 * among threads, against OpenBLAS; rt_real.h's float exp, tanh, fmax, fmin
 * and row reductions against libm and plain loops in double; the RNG
 * against values pinned from an independent model of it, and its moments;
 * and tensor.c's element access and initialization (each parameter and
 * input its own stream), on runtime_models.h's linear regression and float
 * build.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "runtime_models.h"
#include "rt_internal.h"
#include "rt_real.h"

/* ---- gemm ---- */

/* gemm.c's kernels against OpenBLAS, float and double, A B and A^T B (N
 * in stripes of 48, 32 and 16, then the last 4 to 12 columns: A B's as
 * dot products, K in vectors and the rest one by one, A^T B's 48 or 16
 * rows at a time, then 8 or 1; from 128 rows on, each stripe of 48
 * copied into panels, K in parts of 256) and A B^T (K in vectors of 16;
 * from 64 rows on, B copied into panels, K in parts of 256; with fewer
 * rows but 64 columns or more, unsplit, C^T = B A^T that way): blocks of
 * rows and columns and the ones left over, operands inside larger matrices
 * (lda, ldb, ldc), alpha and beta; beta 0 reads no C, here NaN, and
 * nothing outside the product is written. Sums may be in another order: a
 * relative tolerance, but on 2 threads A^T B, and A B below 128 rows,
 * exactly as on 1. And rt_sgemm, the BLAS's product shared out among
 * threads (by rows, or by columns, in parts of 16 and the rest), in every
 * transpose, and a small A B with few last columns as C^T = B^T A^T. On
 * 1 thread and on 2. */
START_TEST(test_gemm_kernels_match_blas)
{
    enum { NN, NT, TN };
    static const int shape[][4] = {
        {8, 48, 5, NN},  {13, 80, 7, NN},     {32, 1024, 256, NN}, {3, 16, 1, NN},
        {17, 64, 40, NN}, {5, 7, 32, NT},     {32, 256, 1024, NT}, {9, 13, 16, NT},
        {4, 4, 48, NT},  {64, 48, 32, NT},     {70, 80, 304, NT},  {64, 16, 16, NT},
        {65, 20, 16, NT}, {128, 128, 1024, TN}, {11, 48, 9, TN},   {9, 32, 3, TN},
        {520, 36, 64, TN},  {20, 1000, 80, NN},  {9, 36, 5, NN},     {10, 12, 7, TN},
        {16, 100, 700, NN}, {300, 50, 100, NT},  {9, 50, 3, NN},     {48, 96, 64, NT},
        {16, 300, 32, NT}, {128, 100, 300, NN}, {130, 96, 520, NN}, {136, 148, 260, TN},
        {1000, 100, 64, TN}, {70, 108, 20, TN}, {9, 60, 33, NN},
        /* the small products OpenBLAS's AVX-512 kernels would allocate for */
        {64, 100, 64, NN}, {5, 3, 40, NN}, {30, 17, 100, NN}};
    static const double scale[][2] = {{1, 0}, {-0.25, 1}, {2, 0.5}};
    rt_rng rng;
    rt_rng_seed(&rng, 7);
    const int threads = _i; /* 1, then 2 */
    for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++)
        for (size_t a = 0; a < sizeof scale / sizeof scale[0]; a++) {
            int m = shape[s][0], n = shape[s][1], k = shape[s][2];
            int ta = shape[s][3] == TN, tb = shape[s][3] == NT;
            int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 16, ldc = n + 32;
            double alpha = scale[a][0], beta = scale[a][1];
            size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb;
            size_t nc = (size_t)m * ldc;
            float *fa = malloc(na * sizeof *fa), *fb = malloc(nb * sizeof *fb);
            float *fc = malloc(nc * sizeof *fc), *fr = malloc(nc * sizeof *fr);
            float *fs = malloc(nc * sizeof *fs);
            double *da = malloc(na * sizeof *da), *db = malloc(nb * sizeof *db);
            double *dc = malloc(nc * sizeof *dc), *dr = malloc(nc * sizeof *dr);
            double *ds = malloc(nc * sizeof *ds);
            rt_set_threads(threads);
            for (size_t i = 0; i < na; i++)
                da[i] = fa[i] = (float)(rt_rng_uniform(&rng) - 0.5);
            for (size_t i = 0; i < nb; i++)
                db[i] = fb[i] = (float)(rt_rng_uniform(&rng) - 0.5);
            for (size_t i = 0; i < nc; i++)
                ds[i] = dc[i] = dr[i] = fs[i] = fc[i] = fr[i] =
                    beta ? (float)rt_rng_uniform(&rng) : NAN;
            enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
            enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
            rt_sgemm(CblasRowMajor, opa, opb, m, n, k, (float)alpha, fa, lda, fb, ldb,
                     (float)beta, fs, ldc);
            rt_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha, da, lda, db, ldb, beta, ds, ldc);
            const int kernel = tb ? k % 16 == 0 : n % 4 == 0; /* the last two: rt_sgemm only */
            float *f1 = malloc(nc * sizeof *f1);
            memcpy(f1, fc, nc * sizeof *f1);
            if (kernel)
                (tb ? rt_sgemm_nt : ta ? rt_sgemm_tn : rt_sgemm_nn)(m, n, k, (float)alpha, fa, lda,
                                                                     fb, ldb, (float)beta, fc, ldc);
            /* A^T B, and A B below 128 rows, come out the same on 2 threads
             * as on 1, bit for bit (A B with more goes to the BLAS there) */
            if (kernel && threads == 2 && !tb && (ta || m < 128)) {
                rt_set_threads(1);
                (ta ? rt_sgemm_tn : rt_sgemm_nn)(m, n, k, (float)alpha, fa, lda, fb, ldb,
                                                 (float)beta, f1, ldc);
                rt_set_threads(threads);
                ck_assert_msg(!memcmp(f1, fc, nc * sizeof *f1),
                              "%dx%dx%d %d: 2 threads differ from 1", m, n, k, shape[s][3]);
            }
            free(f1);
            cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, (float)alpha, fa, lda, fb, ldb,
                        (float)beta, fr, ldc);
            if (kernel)
                (tb ? rt_dgemm_nt : ta ? rt_dgemm_tn : rt_dgemm_nn)(m, n, k, alpha, da, lda, db,
                                                                     ldb, beta, dc, ldc);
            cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha, da, lda, db, ldb, beta, dr,
                        ldc);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < ldc; j++) {
                    size_t at = (size_t)i * ldc + j;
                    if (j >= n) { /* outside the product: untouched */
                        ck_assert(isnan(fc[at]) ? isnan(fr[at]) : fc[at] == fr[at]);
                        ck_assert(isnan(fs[at]) ? isnan(fr[at]) : fs[at] == fr[at]);
                        continue;
                    }
                    ck_assert_msg(fabs(fs[at] - fr[at]) <= 1e-5 * (1 + fabs(fr[at])) &&
                                      fabs(ds[at] - dr[at]) <= 1e-13 * (1 + fabs(dr[at])),
                                  "shared %dx%dx%d %d, %d threads, at %d,%d: %g against %g", m,
                                  n, k, shape[s][3], threads, i, j, fs[at], fr[at]);
                    if (!kernel)
                        continue;
                    ck_assert_msg(fabs(fc[at] - fr[at]) <= 1e-5 * (1 + fabs(fr[at])),
                                  "float %dx%dx%d %d at %d,%d: %g against %g", m, n, k,
                                  shape[s][3], i, j, fc[at], fr[at]);
                    ck_assert_msg(fabs(dc[at] - dr[at]) <= 1e-13 * (1 + fabs(dr[at])),
                                  "double %dx%dx%d %d at %d,%d: %g against %g", m, n, k,
                                  shape[s][3], i, j, dc[at], dr[at]);
                }
            free(fa), free(fb), free(fc), free(fr), free(fs);
            free(da), free(db), free(dc), free(dr), free(ds);
        }
    rt_set_threads(1);
}
END_TEST

/* Where matrix (i, j) of a batch [I, J] of rows x cols starts: side by
 * side, or with the rows of the J matrices interleaved (heads read in
 * place from [I, rows, J, cols]). */
static rt_layout layout(int J, int rows, int cols, bool interleaved)
{
    return interleaved ? (rt_layout){(long)rows * J * cols, cols, J * cols}
                       : (rt_layout){(long)J * rows * cols, (long)rows * cols, cols};
}

/* gemm.c's heads kernel: each product of a batch [2, 3] against
 * cblas_dgemm on that matrix, in every form, with the matrices side by
 * side or interleaved, and with the triangles a causal mask lets it leave
 * out: with RT_TRI_A, A lower triangular as stored, zeros above (the
 * kernel may not read past them); with RT_TRI_C, only C's columns up to
 * each row are asked for, and the rest hold what they held or the
 * product, nothing else. Float and double; on 2 threads (a product per
 * thread) bit for bit as on 1. */
START_TEST(test_heads_kernel_matches_blas)
{
    enum { BATCH = 2, HEADS = 3, NN = 0, NT, TN };
    static const int shape[][4] = {{8, 8, 8, NN},    {64, 32, 64, NN}, {13, 20, 13, NN},
                                   {64, 64, 32, NT}, {9, 12, 5, NT},   {24, 24, 24, NT},
                                   {64, 32, 64, TN}, {7, 4, 7, TN},    {17, 48, 17, TN},
                                   {16, 16, 40, NT}, {1, 4, 1, NN},    {40, 40, 16, NT}};
    static const double scale[][2] = {{1, 0}, {-0.25, 1}};
    rt_rng rng;
    rt_rng_seed(&rng, 11);
    for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++)
        for (int tri = 0; tri < 4; tri++)
            for (int inter = 0; inter < 8; inter += 7)
                for (size_t sc = 0; sc < 2; sc++) {
                    const int m = shape[s][0], n = shape[s][1], k = shape[s][2];
                    const bool ta = shape[s][3] == TN, tb = shape[s][3] == NT;
                    if (((tri & RT_TRI_A) && m != k) || ((tri & RT_TRI_C) && m != n))
                        continue;
                    const double alpha = scale[sc][0], beta = scale[sc][1];
                    const int ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
                    rt_layout la = layout(HEADS, ra, ca, inter & 1),
                              lb = layout(HEADS, rb, cb, inter & 2),
                              lc = layout(HEADS, m, n, inter & 4);
                    size_t na = (size_t)BATCH * HEADS * ra * ca,
                           nb = (size_t)BATCH * HEADS * rb * cb, nc = (size_t)BATCH * HEADS * m * n;
                    double *da = malloc(na * sizeof *da), *db = malloc(nb * sizeof *db),
                           *dc = malloc(nc * sizeof *dc), *dr = malloc(nc * sizeof *dr),
                           *d0 = malloc(nc * sizeof *d0);
                    float *fa = malloc(na * sizeof *fa), *fb = malloc(nb * sizeof *fb),
                          *fc = malloc(nc * sizeof *fc), *f2 = malloc(nc * sizeof *f2);
                    for (size_t x = 0; x < na; x++)
                        da[x] = fa[x] = (float)(rt_rng_uniform(&rng) - 0.5);
                    for (size_t x = 0; x < nb; x++)
                        db[x] = fb[x] = (float)(rt_rng_uniform(&rng) - 0.5);
                    for (size_t x = 0; x < nc; x++)
                        d0[x] = dc[x] = dr[x] = fc[x] = f2[x] =
                            beta ? (float)rt_rng_uniform(&rng) : NAN;
                    for (int i = 0; i < BATCH; i++)
                        for (int j = 0; j < HEADS; j++)
                            for (int r = 0; r < ra; r++)
                                for (int c = r + 1; (tri & RT_TRI_A) && c < ca; c++) {
                                    size_t at =
                                        i * la.step_i + j * la.step_j + (size_t)r * la.ld + c;
                                    da[at] = fa[at] = 0;
                                }
                    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans,
                                         opb = tb ? CblasTrans : CblasNoTrans;
                    for (int i = 0; i < BATCH; i++)
                        for (int j = 0; j < HEADS; j++)
                            cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha,
                                        da + i * la.step_i + j * la.step_j, la.ld,
                                        db + i * lb.step_i + j * lb.step_j, lb.ld, beta,
                                        dr + i * lc.step_i + j * lc.step_j, lc.ld);
                    rt_set_threads(1);
                    rt_dheads(BATCH, HEADS, opa, opb, m, n, k, alpha, da, la, db, lb, beta, dc, lc,
                              tri);
                    rt_sheads(BATCH, HEADS, opa, opb, m, n, k, (float)alpha, fa, la, fb, lb,
                              (float)beta, fc, lc, tri);
                    rt_set_threads(2);
                    rt_sheads(BATCH, HEADS, opa, opb, m, n, k, (float)alpha, fa, la, fb, lb,
                              (float)beta, f2, lc, tri);
                    rt_set_threads(1);
                    ck_assert_msg(!memcmp(fc, f2, nc * sizeof *fc),
                                  "%dx%dx%d form %d tri %d: 2 threads differ from 1", m, n, k,
                                  shape[s][3], tri);
                    for (int i = 0; i < BATCH; i++)
                        for (int j = 0; j < HEADS; j++)
                            for (int r = 0; r < m; r++)
                                for (int c = 0; c < n; c++) {
                                    size_t at =
                                        i * lc.step_i + j * lc.step_j + (size_t)r * lc.ld + c;
                                    bool asked = !(tri & RT_TRI_C) || c <= r;
                                    bool dok = fabs(dc[at] - dr[at]) <= 1e-13 * (1 + fabs(dr[at]));
                                    bool fok = fabs(fc[at] - dr[at]) <= 1e-5 * (1 + fabs(dr[at]));
                                    if (!asked) { /* what it held, or the product */
                                        dok = dok ||
                                              (isnan(d0[at]) ? isnan(dc[at]) : dc[at] == d0[at]);
                                        fok = fok || (isnan(d0[at]) ? isnan(fc[at])
                                                                    : fc[at] == (float)d0[at]);
                                    }
                                    ck_assert_msg(dok && fok,
                                                  "%dx%dx%d form %d tri %d layout %d beta %g, "
                                                  "matrix %d,%d at %d,%d: %g and %g against %g",
                                                  m, n, k, shape[s][3], tri, inter, beta, i, j, r,
                                                  c, dc[at], fc[at], dr[at]);
                                }
                    free(da), free(db), free(dc), free(dr), free(d0);
                    free(fa), free(fb), free(fc), free(f2);
                }
}
END_TEST

/* ---- rng, and rt_real.h's float arithmetic ---- */

/* rt_real.h's row reductions, in 16 lanes and the few left, against
 * plain loops in double, for rows of 1 to 40: the max exactly, the sums
 * within float rounding, and r_exp_sum stores each exp (also in place). */
START_TEST(test_row_reductions)
{
    rt_rng rng;
    rt_rng_seed(&rng, 3);
    float x[40], y[40], e[40];
    for (int n = 1; n <= 40; n++) {
        double mx = -INFINITY, sum = 0, dot = 0, plain = 0, scale = 0;
        for (int j = 0; j < n; j++) {
            x[j] = (float)(4 * rt_rng_uniform(&rng) - 2);
            y[j] = (float)(rt_rng_uniform(&rng) - 0.5);
            mx = fmax(mx, x[j]);
        }
        for (int j = 0; j < n; j++) {
            sum += rt_expf(x[j] - (float)mx);
            dot += (double)x[j] * y[j];
            plain += x[j];
            scale += fabs((double)x[j] * y[j]) + fabs(x[j]);
        }
        ck_assert_msg(r_max_of(x, n) == (float)mx, "max of %d", n);
        ck_assert_msg(fabs(r_exp_sum(e, x, n, (float)mx) - sum) <= 1e-6 * sum, "exp sum of %d", n);
        ck_assert_msg(fabs(r_exp_sum(NULL, x, n, (float)mx) - sum) <= 1e-6 * sum, "of %d", n);
        for (int j = 0; j < n; j++)
            ck_assert(e[j] == rt_expf(x[j] - (float)mx));
        ck_assert_msg(fabs(r_dot(x, y, n) - dot) <= 1e-6 * scale, "dot of %d", n);
        ck_assert_msg(fabs(r_dot(x, NULL, n) - plain) <= 1e-6 * scale, "sum of %d", n);
        memcpy(e, x, sizeof x);
        ck_assert(fabs(r_exp_sum(e, e, n, (float)mx) - sum) <= 1e-6 * sum);
        ck_assert(e[n - 1] == rt_expf(x[n - 1] - (float)mx));
    }
}
END_TEST

/* The float build's exp and tanh (rt_real.h) against libm's double ones:
 * within 2 ulp (2^-22 relative) over their range, and right at the ends;
 * its fmax and fmin take NaN as libm's do. */
START_TEST(test_fast_exp_tanh)
{
    const double ulp2 = 0x1p-22;
    for (double x = -86.0; x <= 88.7; x += 0.000731) {
        float f = (float)x;
        double want = exp((double)f);
        ck_assert_msg(fabs(rt_expf(f) - want) <= ulp2 * want, "exp(%.9g) = %.9g, libm %.9g", f,
                      rt_expf(f), want);
    }
    for (double x = -12.0; x <= 12.0; x += 0.0000913) {
        float f = (float)x;
        double want = tanh((double)f);
        ck_assert_msg(fabs(rt_tanhf(f) - want) <= ulp2 * fabs(want), "tanh(%.9g) = %.9g, libm %.9g",
                      f, rt_tanhf(f), want);
    }
    for (float f = 1e-30f; f < 1; f *= 1.013f) /* near 0, where 1 - e^-2x loses digits */
        ck_assert_msg(fabs(rt_tanhf(-f) + tanh((double)f)) <= ulp2 * tanh((double)f),
                      "tanh(%.9g) = %.9g", -f, rt_tanhf(-f));
    ck_assert(rt_expf(INFINITY) == INFINITY && rt_expf(89.0f) == INFINITY);
    ck_assert(rt_expf(-INFINITY) == 0 && rt_expf(-100.0f) == 0 && rt_expf(0) == 1);
    ck_assert(isnan(rt_expf(NAN)) && isnan(rt_tanhf(NAN)));
    ck_assert(rt_tanhf(INFINITY) == 1 && rt_tanhf(-30.0f) == -1);
    ck_assert(rt_tanhf(0.0f) == 0 && signbit(rt_tanhf(-0.0f)));
    ck_assert(rt_fmaxf(NAN, 1) == 1 && rt_fmaxf(1, NAN) == 1 && rt_fmaxf(-2, 3) == 3);
    ck_assert(rt_fminf(NAN, 1) == 1 && rt_fminf(1, NAN) == 1 && rt_fminf(-2, 3) == -2);
    /* A running max or min from an infinity skips NaNs as fmax and fmin do. */
    const real xs[] = {NAN, -3, 5, NAN, 2, -INFINITY};
    real mx = -INFINITY, mn = INFINITY;
    for (int i = 0; i < 6; i++) {
        mx = r_max(mx, xs[i]);
        mn = r_min(mn, xs[i]);
    }
    ck_assert(mx == 5 && mn == -INFINITY && r_max(-INFINITY, NAN) == -INFINITY);
}
END_TEST

START_TEST(test_rng_golden)
{
    /* Pinned values (from an independent Python model of the algorithm):
     * the same seed must give these numbers on every machine. */
    uint64_t x = 0;
    ck_assert_uint_eq(rt_splitmix64(&x), 0xe220a8397b1dcdafu);
    rt_rng r;
    rt_rng_seed(&r, 42);
    ck_assert_uint_eq(rt_rng_next(&r), 0x15780b2e0c2ec716u);
    ck_assert_uint_eq(rt_rng_next(&r), 0x6104d9866d113a7eu);
    ck_assert_uint_eq(rt_rng_next(&r), 0xae17533239e499a1u);
    rt_rng_seed(&r, 42);
    ck_assert_double_eq(rt_rng_uniform(&r), 0.08386297105988216);
}
END_TEST

START_TEST(test_rng_determinism)
{
    rt_rng a, b, c;
    rt_rng_seed(&a, 7);
    rt_rng_seed(&b, 7);
    rt_rng_seed(&c, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        double x = rt_rng_normal(&a);
        ck_assert_double_eq(x, rt_rng_normal(&b));
        differ += x != rt_rng_normal(&c);
    }
    ck_assert_int_gt(differ, 990);
}
END_TEST

START_TEST(test_rng_normal_moments)
{
    rt_rng r;
    rt_rng_seed(&r, 1);
    double s = 0, ss = 0;
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        double x = rt_rng_normal(&r);
        ck_assert(isfinite(x));
        s += x;
        ss += x * x;
    }
    double mean = s / N, sd = sqrt(ss / N - mean * mean);
    ck_assert_double_eq_tol(mean, 0.0, 0.02);
    ck_assert_double_eq_tol(sd, 1.0, 0.02);
}
END_TEST

START_TEST(test_rng_uniform_range)
{
    rt_rng r;
    rt_rng_seed(&r, 3);
    double lo = 1, hi = 0, s = 0;
    for (int i = 0; i < 100000; i++) {
        double u = rt_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
        s += u;
    }
    ck_assert_double_lt(lo, 1e-3);
    ck_assert_double_gt(hi, 1 - 1e-3);
    ck_assert_double_eq_tol(s / 100000, 0.5, 0.01);
    for (int i = 0; i < 1000; i++) {
        long v = rt_rng_below(&r, 7);
        ck_assert(v >= 0 && v < 7);
    }
}
END_TEST

START_TEST(test_rng_streams_differ)
{
    rt_rng a, b, c;
    rt_rng_stream(&a, 1, RT_STREAM_PARAM, 0);
    rt_rng_stream(&b, 1, RT_STREAM_PARAM, 1);
    rt_rng_stream(&c, 1, RT_STREAM_INPUT, 0);
    uint64_t x = rt_rng_next(&a);
    ck_assert_uint_ne(x, rt_rng_next(&b));
    ck_assert_uint_ne(x, rt_rng_next(&c));
}
END_TEST

/* ---- tensor ---- */

START_TEST(test_get_set_float_build)
{
    memset(f_arena, 0, sizeof f_arena);
    const rt_tensor *x = &f_inputs[0], *label = &f_inputs[1];
    rt_set(&float_model, x, 5, 1.5);
    ck_assert_float_eq(f_arena[2 + 5], 1.5f);
    ck_assert_double_eq(rt_get(&float_model, x, 5), 1.5);
    /* Stored as float: 0.1 comes back as the nearest float, not 0.1. */
    rt_set(&float_model, x, 0, 0.1);
    ck_assert_double_eq(rt_get(&float_model, x, 0), (double)0.1f);
    rt_set(&float_model, label, 3, 2);
    ck_assert_int_eq(f_iarena[1 + 3], 2);
    ck_assert_double_eq(rt_get(&float_model, label, 3), 2.0);
    ck_assert_float_eq(f_arena[1 + 3], 0.0f); /* not written to the wrong arena */
}
END_TEST

START_TEST(test_get_set_double_build)
{
    rt_set(&linreg_model, &lr_params[0], 2, 0.1);
    ck_assert_double_eq(lr_arena[W_OFF + 2], 0.1);
    ck_assert_double_eq(rt_get(&linreg_model, &lr_params[0], 2), 0.1);
}
END_TEST

START_TEST(test_init_params)
{
    rt_init_params(&float_model, 5);
    ck_assert_float_eq(f_arena[14], 0.25f);
    ck_assert_float_eq(f_arena[15], 0.25f);
    float u[4];
    for (int i = 0; i < 4; i++) {
        u[i] = f_arena[16 + i];
        ck_assert(u[i] >= 2.0f && u[i] <= 3.0f);
    }
    ck_assert_float_ne(u[0], u[1]);
    rt_init_params(&float_model, 5);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(f_arena[16 + i], u[i]);
    rt_init_params(&float_model, 6);
    ck_assert_float_ne(f_arena[16], u[0]);
}
END_TEST

START_TEST(test_init_param_streams_independent)
{
    /* Parameter 1 of float_model must not move if parameter 0 goes away. */
    rt_init_params(&float_model, 9);
    float u[4];
    memcpy(u, f_arena + 16, sizeof u);
    rt_model one = float_model;
    rt_tensor only = f_params[1];
    one.params = &only;
    one.n_params = 1;
    memset(f_arena, 0, sizeof f_arena);
    rt_init_params(&one, 9);
    ck_assert_float_ne(u[0], f_arena[16]); /* now it is parameter 0's stream */
    one.params = f_params;
    one.n_params = 2;
    rt_init_params(&one, 9);
    ck_assert_mem_eq(u, f_arena + 16, sizeof u);
}
END_TEST

START_TEST(test_init_normal_moments)
{
    static double arena[20000];
    rt_tensor p = {.name = "p",
                   .dtype = RT_F64,
                   .rank = 1,
                   .shape = {20000},
                   .size = 20000,
                   .init = RT_INIT_NORMAL,
                   .init_a = 3,
                   .init_b = 0.5};
    rt_model m = {.name = "n", .real = RT_F64, .arena = arena, .n_params = 1, .params = &p};
    rt_init_params(&m, 1);
    double s = 0, ss = 0;
    for (int i = 0; i < 20000; i++)
        s += arena[i], ss += arena[i] * arena[i];
    double mean = s / 20000, sd = sqrt(ss / 20000 - mean * mean);
    ck_assert_double_eq_tol(mean, 3.0, 0.02);
    ck_assert_double_eq_tol(sd, 0.5, 0.02);
}
END_TEST

START_TEST(test_random_inputs)
{
    static double arena[3000];
    static int32_t iarena[3000];
    rt_tensor in[] = {
        {.name = "x", .dtype = RT_F64, .rank = 1, .shape = {1000}, .size = 1000},
        {.name = "c", .dtype = RT_I32, .rank = 1, .shape = {1000}, .size = 1000, .classes = 5},
        {.name = "b", .dtype = RT_I32, .rank = 1, .shape = {1000}, .size = 1000, .offset = 1000},
        {.name = "x2", .dtype = RT_F64, .rank = 1, .shape = {1000}, .size = 1000, .offset = 1000},
    };
    rt_model m = {
        .name = "r", .real = RT_F64, .arena = arena, .iarena = iarena, .n_inputs = 4, .inputs = in};
    rt_random_inputs(&m, 1);
    int seen[5] = {0}, bits[2] = {0};
    for (int i = 0; i < 1000; i++) {
        ck_assert(iarena[i] >= 0 && iarena[i] < 5);
        seen[iarena[i]]++;
        ck_assert(iarena[1000 + i] == 0 || iarena[1000 + i] == 1);
        bits[iarena[1000 + i]]++;
    }
    for (int c = 0; c < 5; c++)
        ck_assert_int_gt(seen[c], 100);
    ck_assert_int_gt(bits[0], 400);
    ck_assert_int_gt(bits[1], 400);
    ck_assert_double_ne(arena[0], arena[1000]); /* each input its own stream */
    double s = 0;
    for (int i = 0; i < 1000; i++)
        s += arena[i];
    ck_assert_double_eq_tol(s / 1000, 0.0, 0.15);
}
END_TEST

static Suite *numerics_suite(void)
{
    Suite *s = suite_create("numerics");
    TCase *tc = tcase_create("gemm");
    tcase_add_loop_test(tc, test_gemm_kernels_match_blas, 1, 3);
    tcase_add_test(tc, test_heads_kernel_matches_blas);
    tcase_set_timeout(tc, 60); /* a minute under ASan */
    suite_add_tcase(s, tc);
    tc = tcase_create("rng");
    tcase_add_test(tc, test_fast_exp_tanh);
    tcase_add_test(tc, test_row_reductions);
    tcase_add_test(tc, test_rng_golden);
    tcase_add_test(tc, test_rng_determinism);
    tcase_add_test(tc, test_rng_normal_moments);
    tcase_add_test(tc, test_rng_uniform_range);
    tcase_add_test(tc, test_rng_streams_differ);
    suite_add_tcase(s, tc);
    tc = tcase_create("tensor");
    tcase_add_test(tc, test_get_set_float_build);
    tcase_add_test(tc, test_get_set_double_build);
    tcase_add_test(tc, test_init_params);
    tcase_add_test(tc, test_init_param_streams_independent);
    tcase_add_test(tc, test_init_normal_moments);
    tcase_add_test(tc, test_random_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(numerics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
