/*
 * gemm.c: C = alpha A B + beta C for the products OpenBLAS is slow at:
 * few rows against a wide matrix, as an LSTM's step multiplies its 32 rows
 * of h by U [256, 1024]. OpenBLAS packs all of U into its own layout on
 * every call, which costs as much as the product; this reads B in place,
 * 8 rows of C at a time in 8 x 48 accumulators held in registers, so each
 * 3 vectors of B loaded feed 24 fused multiply-adds. 32 x 1024 x 256 ran
 * at 160 GFLOP/s here, OpenBLAS at 110. The same kernel reads A down its
 * columns for A^T B (a weight's gradient X^T dY); A B^T has dot products
 * of its own for few rows (the LSTM's dz U^T) and, for many, copies B into
 * panels for the A B kernel. Which products use them, gradc tune measures
 * on one thread (the file it writes says `kernel`); with more, a product
 * too narrow to share among them by its columns goes in parts of rows
 * (too_narrow). All are row-major.
 *
 * Built with -ffp-contract=fast (the Makefile), unlike the generated code:
 * a product's sums depend on the CPU's kernels anyway, as OpenBLAS's do.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include "rt_real.h"
/* for (int I = 0; I < TO; I += STEP) BODY, its iterations shared among
 * the threads when `big` (each element of C is computed the same way, so
 * the result does not depend on the thread count); when not, it enters no
 * OpenMP region, which would cost a third of a microsecond a product even
 * for one thread. */
#ifdef _OPENMP
#include <omp.h>
#define SHARED_FOR(big, I, TO, STEP, ...)                                                     \
    if (big) {                                                                                \
        _Pragma("omp parallel for schedule(static)") for (int I = 0; I < (TO); I += (STEP))   \
            __VA_ARGS__                                                                       \
    } else                                                                                    \
        for (int I = 0; I < (TO); I += (STEP))                                                \
            __VA_ARGS__
static int threads(void) { return omp_get_max_threads(); }
#else
#define SHARED_FOR(big, I, TO, STEP, ...) for (int I = 0; I < (TO); I += (STEP)) __VA_ARGS__
static int threads(void) { return 1; }
#endif

/* Part `part` of `parts` of 0 .. len, cut at multiples of `unit`; the
 * last part takes what is left over. */
static inline void part_of(int len, int unit, int part, int parts, int *from, int *to)
{
    const int units = len / unit;
    *from = units * part / parts * unit;
    *to = part == parts - 1 ? len : units * (part + 1) / parts * unit;
}

/* OpenBLAS 0.3.21's AVX-512 kernels (SkylakeX and later) give a product
 * A B of at most 100^3 multiply-adds to a "small matrix" kernel, which
 * mallocs and frees a copy of A's last rows on every call when C's last
 * columns fill no more than half a vector (N % 16 in 1..8 for floats,
 * N % 8 in 1..4 for doubles) and K is at least two vectors: a trainer's
 * step would allocate. Such a product goes as C^T = B^T A^T, which no
 * small kernel takes (none has both operands transposed), into scratch
 * of the thread's own, read back transposed into C. */
enum { SMALL_MAX = 31250 }; /* the most elements of C: 100^3 / 32 */

static bool small_kernels(void)
{
    static _Thread_local int avx512 = -1;
    if (avx512 < 0) {
        const char *core = openblas_get_corename();
        avx512 = core && (!strcasecmp(core, "SkylakeX") || !strcasecmp(core, "Cooperlake") ||
                          !strcasecmp(core, "SapphireRapids"));
    }
    return avx512;
}

static bool small_kernel_allocates(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
                                   int k, int lanes)
{
    return small_kernels() && ta == CblasNoTrans && tb == CblasNoTrans &&
           (double)m * n * k <= 1e6 && k >= 2 * lanes && n % lanes >= 1 &&
           n % lanes <= lanes / 2 && (long)m * n <= SMALL_MAX;
}

/* Whether OpenBLAS computes each element of a product of `work`
 * multiply-adds as it would in parts of it, the least of them `least`
 * multiply-adds: its small kernels sum in another order than its others,
 * so no part may fall below 100^3 when the whole is above; and whether a
 * small product goes to them depends on its shape too, so none is shared. */
static bool parts_like_whole(long work, long least)
{
    return !small_kernels() || (work > 1000000 && least > 1000000);
}

/* C = alpha op(A) op(B) + beta C as cblas_?gemm, row-major only. A
 * product worth splitting goes in as many parts as there are threads,
 * each a call to OpenBLAS on one thread: OpenBLAS's own threads allocate
 * memory on every call they share (0.3.21), and would leave the trainer's
 * step allocating. The parts are rows of C when A is the larger operand
 * (each part then packs all of B, the smaller), else columns, in
 * multiples of 16 so that each part fills the BLAS's register blocks. */
#define SHARED(NAME, T, BLAS)                                                                 \
    void NAME(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,  \
              int n, int k, T alpha, const T *a, int lda, const T *b, int ldb, T beta, T *c,   \
              int ldc)                                                                        \
    {                                                                                         \
        if (order == CblasRowMajor &&                                                         \
            small_kernel_allocates(ta, tb, m, n, k, (int)(64 / sizeof(T)))) {                 \
            static _Thread_local T ct[SMALL_MAX];                                             \
            BLAS(CblasRowMajor, CblasTrans, CblasTrans, n, m, k, alpha, b, ldb, a, lda, 0, ct, \
                 m);                                                                          \
            for (int i = 0; i < m; i++)                                                       \
                for (int j = 0; j < n; j++)                                                   \
                    c[(long)i * ldc + j] =                                                    \
                        ct[(long)j * m + i] + (beta != 0 ? beta * c[(long)i * ldc + j] : 0);  \
            return;                                                                           \
        }                                                                                     \
        const bool by_rows = m >= n;                                                          \
        const int len = by_rows ? m : n, least = len / 16 / threads() * 16;                   \
        const long work = (long)m * n * k;                                                    \
        const bool big = rt_split(RT_SPLIT_BLAS,                                              \
                                  parts_like_whole(work, work / len * least) ? work : -1);    \
        const int parts = big ? threads() : 1;                                                \
        SHARED_FOR(big, part, parts, 1, {                                                     \
            int from, to;                                                                     \
            part_of(len, 16, part, parts, &from, &to);                                        \
            if (to == from)                                                                   \
                continue;                                                                     \
            if (by_rows)                                                                      \
                BLAS(order, ta, tb, to - from, n, k, alpha,                                   \
                     a + (ta == CblasNoTrans ? (long)from * lda : from), lda, b, ldb, beta,    \
                     c + (long)from * ldc, ldc);                                              \
            else                                                                              \
                BLAS(order, ta, tb, m, to - from, k, alpha, a, lda,                           \
                     b + (tb == CblasNoTrans ? from : (long)from * ldb), ldb, beta, c + from,  \
                     ldc);                                                                    \
        })                                                                                    \
    }
SHARED(rt_sgemm, float, cblas_sgemm)
SHARED(rt_dgemm, double, cblas_dgemm)

/* Whether a product is too narrow to share by its stripes: big enough
 * to split among the threads, but with too few stripes of `wide` columns
 * to share evenly (a layer's 1024 x 128 has 3: 2 and 1 would leave a
 * thread idle a third of the time). It then goes in parts of rows, each
 * thread's rows through the kernel the whole product would take, K cut
 * as the whole product's rows cut it: each element is computed as on one
 * thread, so results do not depend on the thread count (the seed MLP's
 * 64 x 100 x 1000 on 2 threads: 75 us instead of OpenBLAS's 87, and a
 * step 0.84 of its time; its 1000 x 100 x 64, A^T B, then 0.93). */
static bool too_narrow(bool big, int n, int wide) { return big && n / wide < 2 * threads(); }

/* Columns in vectors of 64 bytes: 16 floats or 8 doubles; the last few
 * columns of a product in vectors of 4 (vfloat4, vdouble4). */
typedef float vfloat __attribute__((vector_size(64)));
typedef double vdouble __attribute__((vector_size(64)));
typedef float vfloat4 __attribute__((vector_size(16)));
typedef double vdouble4 __attribute__((vector_size(32)));

/* One block of ROWS rows and VECS vectors of C, over all of K; element
 * (r, k) of op(A) at a[r * ar + k * ak] (A, or A stored transposed). The
 * loops over rows and vectors unroll, so the accumulators are registers;
 * each block is inlined into every clone of the caller, compiled for its
 * CPU. */
#define INLINE static inline __attribute__((always_inline))
#define BLOCK(NAME, T, V, ROWS, VECS)                                                        \
    INLINE void block_##NAME##_##ROWS##x##VECS(long k_n, T alpha, const T *a, long ar,        \
                                               long ak, const T *b, long ldb, T beta, T *c,   \
                                               long ldc)                                      \
    {                                                                                        \
        V acc[ROWS][VECS];                                                                   \
        memset(acc, 0, sizeof acc);                                                          \
        for (long k = 0; k < k_n; k++) {                                                     \
            V row[VECS];                                                                     \
            _Pragma("GCC unroll 4") for (int v = 0; v < VECS; v++)                           \
                memcpy(&row[v], b + k * ldb + v * (long)(sizeof(V) / sizeof(T)), sizeof(V)); \
            _Pragma("GCC unroll 8") for (int r = 0; r < ROWS; r++)                           \
            {                                                                                \
                T x = a[r * ar + k * ak];                                                    \
                _Pragma("GCC unroll 4") for (int v = 0; v < VECS; v++)                       \
                    acc[r][v] += x * row[v];                                                 \
            }                                                                                \
        }                                                                                    \
        _Pragma("GCC unroll 8") for (int r = 0; r < ROWS; r++)                               \
            _Pragma("GCC unroll 4") for (int v = 0; v < VECS; v++)                           \
        {                                                                                    \
            T *to = c + r * ldc + v * (long)(sizeof(V) / sizeof(T));                         \
            V sum = alpha * acc[r][v], old;                                                  \
            if (beta != 0) { /* beta 0 reads nothing: C may hold anything, NaN too */        \
                memcpy(&old, to, sizeof(V));                                                 \
                sum += beta * old;                                                           \
            }                                                                                \
            memcpy(to, &sum, sizeof(V));                                                     \
        }                                                                                    \
    }

#define BLOCKS(T, V)                                                                         \
    BLOCK(T, T, V, 8, 3)                                                                     \
    BLOCK(T, T, V, 8, 2)                                                                     \
    BLOCK(T, T, V, 8, 1)                                                                     \
    BLOCK(T, T, V, 1, 3)                                                                     \
    BLOCK(T, T, V, 1, 2)                                                                     \
    BLOCK(T, T, V, 1, 1)                                                                     \
    BLOCK(T##4, T, V##4, 8, 1)                                                               \
    BLOCK(T##4, T, V##4, 1, 1)

/* One stripe of VECS vectors of columns from column j: rows 8 at a time,
 * then one by one, while the stripe of B stays in cache. */
#define STRIPE(NAME, T, VECS)                                                                 \
    INLINE void stripe_##NAME##_##VECS(int m, int j, long k, T alpha, const T *a, long ar,    \
                                       long ak, const T *b, long ldb, T beta, T *c, long ldc) \
    {                                                                                         \
        int i = 0;                                                                            \
        for (; i + 8 <= m; i += 8)                                                            \
            block_##NAME##_8x##VECS(k, alpha, a + i * ar, ar, ak, b + j, ldb, beta,           \
                                    c + i * ldc + j, ldc);                                    \
        for (; i < m; i++)                                                                    \
            block_##NAME##_1x##VECS(k, alpha, a + i * ar, ar, ak, b + j, ldb, beta,           \
                                    c + i * ldc + j, ldc);                                    \
    }

/* C = alpha A B^T + beta C, B stored [N, K]: each element of C is a dot
 * product of a row of A and a row of B, both read along K in vectors, so
 * B is read in place, not packed. An LSTM's step backward dh = dz U^T,
 * 32 x 256 x 1024, ran at 120 GFLOP/s here, OpenBLAS at 78. A block of
 * ROWS rows of A and COLS rows of B keeps ROWS x COLS vectors of partial
 * sums, added up at the end; the last elements of K, short of a vector,
 * one by one. */
#define DOTS(T, V, ROWS, COLS)                                                                \
    INLINE void dots_##T##_##ROWS##x##COLS(long k_n, T alpha, const T *a, long lda,           \
                                           const T *b, long ldb, T beta, T *c, long ldc)      \
    {                                                                                         \
        const int lanes = (int)(sizeof(V) / sizeof(T));                                       \
        V acc[ROWS][COLS];                                                                    \
        memset(acc, 0, sizeof acc);                                                           \
        long k = 0;                                                                           \
        for (; k + lanes <= k_n; k += lanes) {                                                \
            V x[ROWS], y[COLS];                                                               \
            _Pragma("GCC unroll 4") for (int r = 0; r < ROWS; r++)                            \
                memcpy(&x[r], a + r * lda + k, sizeof(V));                                    \
            _Pragma("GCC unroll 4") for (int s = 0; s < COLS; s++)                            \
                memcpy(&y[s], b + s * ldb + k, sizeof(V));                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < ROWS; r++)                            \
                _Pragma("GCC unroll 4") for (int s = 0; s < COLS; s++)                        \
                    acc[r][s] += x[r] * y[s];                                                 \
        }                                                                                     \
        _Pragma("GCC unroll 4") for (int r = 0; r < ROWS; r++)                                \
            _Pragma("GCC unroll 4") for (int s = 0; s < COLS; s++)                            \
        {                                                                                     \
            /* across the vector by halves, in registers: 16 adds in one chain                \
             * took longer than the products themselves at K = 128 */                         \
            typedef T half __attribute__((vector_size(sizeof(V) / 2)));                       \
            typedef T quarter __attribute__((vector_size(sizeof(V) / 4)));                    \
            half h[2];                                                                        \
            quarter q[2];                                                                     \
            memcpy(h, &acc[r][s], sizeof h);                                                  \
            h[0] += h[1];                                                                     \
            memcpy(q, &h[0], sizeof q);                                                       \
            q[0] += q[1];                                                                     \
            T sum = 0;                                                                        \
            for (int l = 0; l < lanes / 4; l++)                                               \
                sum += q[0][l];                                                               \
            for (long kk = k; kk < k_n; kk++) /* K's last few, short of a vector */          \
                sum += a[r * lda + kk] * b[s * ldb + kk];                                     \
            T *to = c + r * ldc + s;                                                          \
            *to = beta == 0 ? alpha * sum : alpha * sum + beta * *to;                         \
        }                                                                                     \
    }

/* Stripes of 48 columns (for floats; 24 for doubles), split among the
 * threads when the product is worth it, then one of 32 or 16 if left,
 * then the last 4 to 12 (N a multiple of 4) as below: the seed MLP's
 * 64 x 100 x 1000 ran in 0.83 to 0.92 of OpenBLAS's time on a Xeon, and
 * 1000 x 100 x 64 (A^T B) in 0.80 instead of 0.93. A is stored
 * transposed ([K, M]) when TA, and then K goes in parts of DEPTH, each
 * added to the last, so that what a part reads of A and of a
 * stripe of B stays in cache while every row goes by: A^T B 512x128x1024
 * ran at 130 GFLOP/s instead of 93. With PANEL_ROWS rows or more, each
 * part of a full stripe is first copied into a panel, its rows side by
 * side: read in place they are ldb apart, and where that is a multiple of
 * 1 KB they fall on few of the cache's sets. On a Xeon, A B 128x512x784
 * took 1.7 ms instead of 0.9 (OpenBLAS: 0.94), and A^T B 256x1024x32 0.87
 * of its time with the copy; with 64 rows, the seed MLP's 64x100x1000
 * took 1.23 times as long with it. Without it, A B reads K whole: the
 * parts' extra passes over C cost it 5 to 10%. */
#define DEPTH 256
#define PANEL_ROWS 128

/* The last 4 to 12 columns, which a block of 8 rows and a vector of 4
 * would compute with 8 multiply-adds of 4 lanes for each element of K
 * (the seed MLP's 64 x 100 x 1000 spent a fifth of its time on its last
 * 4; now about a twentieth). A^T B's go 16 VECS rows at a time by 4
 * columns, in vectors along the rows, which are A's as stored, each
 * times one element of B; the last rows, short of a vector, as before. */
#define COLUMNS(T, V, VECS)                                                                   \
    INLINE void columns_##T##_##VECS(long k_n, T alpha, const T *a, long ak, const T *b,      \
                                     long ldb, T beta, T *c, long ldc)                        \
    {                                                                                         \
        enum { LANES = sizeof(V) / sizeof(T) };                                               \
        V acc[4][VECS];                                                                       \
        memset(acc, 0, sizeof acc);                                                           \
        for (long k = 0; k < k_n; k++) {                                                      \
            V x[VECS];                                                                        \
            _Pragma("GCC unroll 4") for (int v = 0; v < VECS; v++)                            \
                memcpy(&x[v], a + k * ak + v * LANES, sizeof(V));                             \
            _Pragma("GCC unroll 4") for (int col = 0; col < 4; col++)                         \
            {                                                                                 \
                const T y = b[k * ldb + col];                                                 \
                _Pragma("GCC unroll 4") for (int v = 0; v < VECS; v++)                        \
                    acc[col][v] += x[v] * y;                                                  \
            }                                                                                 \
        }                                                                                     \
        for (int v = 0; v < VECS; v++)                                                        \
            for (int l = 0; l < LANES; l++)                                                   \
                for (int col = 0; col < 4; col++) {                                           \
                    T *to = c + (v * LANES + l) * ldc + col, sum = alpha * acc[col][v][l];    \
                    *to = beta == 0 ? sum : sum + beta * *to;                                 \
                }                                                                             \
    }

/* A B's last columns, from column j: copied into the rows of a panel,
 * DEPTH of K at a time, then dot products with A's rows. */
#define LAST_COLUMNS(T)                                                                       \
    INLINE void last_columns_##T(int m, int j, int n, int k, T alpha, const T *a, long lda,   \
                                 const T *b, long ldb, T beta, T *c, long ldc)                \
    {                                                                                         \
        _Alignas(64) T panel[12 * DEPTH];                                                     \
        for (int k0 = 0; k0 < k; k0 += DEPTH) {                                               \
            const int kn = k - k0 < DEPTH ? k - k0 : DEPTH;                                   \
            for (int kk = 0; kk < kn; kk++)                                                   \
                for (int col = 0; col < n - j; col++)                                         \
                    panel[col * kn + kk] = b[(long)(k0 + kk) * ldb + j + col];                \
            const T beta0 = k0 ? 1 : beta; /* later parts add to the first */                \
            for (int i = 0; i < m;) {                                                         \
                const int rows = m - i >= 4 ? 4 : 1;                                          \
                for (int col = 0; col < n - j; col += 4) {                                    \
                    const T *ai = a + (long)i * lda + k0, *p = panel + col * kn;              \
                    T *ci = c + (long)i * ldc + j + col;                                      \
                    if (rows == 4)                                                            \
                        dots_##T##_4x4(kn, alpha, ai, lda, p, kn, beta0, ci, ldc);            \
                    else                                                                      \
                        dots_##T##_1x4(kn, alpha, ai, lda, p, kn, beta0, ci, ldc);            \
                }                                                                             \
                i += rows;                                                                    \
            }                                                                                 \
        }                                                                                     \
    }

#define STRIPES(T, V)                                                                         \
    BLOCKS(T, V)                                                                              \
    STRIPE(T, T, 3)                                                                           \
    STRIPE(T, T, 2)                                                                           \
    STRIPE(T, T, 1)                                                                           \
    STRIPE(T##4, T, 1)                                                                        \
    COLUMNS(T, V, 3)                                                                          \
    COLUMNS(T, V, 1)                                                                          \
    DOTS(T, V, 4, 4)                                                                          \
    DOTS(T, V, 1, 4)                                                                          \
    LAST_COLUMNS(T)
#define GEMM(NAME, T, V, TA)                                                                  \
    RT_VECTOR_CLONES static void NAME##_in(int m, int n, int k, T alpha, const T *a, int lda, \
                                           const T *b, int ldb, T beta, T *c, int ldc,        \
                                           bool big, int depth)                               \
    {                                                                                         \
        const int lanes = (int)(sizeof(V) / sizeof(T)), wide = 3 * lanes;                     \
        const long ar = TA ? 1 : lda, ak = TA ? lda : 1;                                      \
        const int full = n / wide * wide, left = n - full; /* the columns past the stripes */ \
        const int last = full + (left >= 2 * lanes ? 2 * lanes : left >= lanes ? lanes : 0);  \
        const bool pack = m >= PANEL_ROWS;                                                    \
        for (int k0 = 0; k0 < k; k0 += depth) {                                               \
            const int kn = k - k0 < depth ? k - k0 : depth;                                   \
            const T *ak0 = a + k0 * ak, *bk0 = b + (long)k0 * ldb;                            \
            const T beta0 = k0 ? 1 : beta; /* later parts add to the first */                 \
            SHARED_FOR(big, s, n / wide, 1, {                                                 \
                if (!pack) {                                                                  \
                    stripe_##T##_3(m, s * wide, kn, alpha, ak0, ar, ak, bk0, ldb, beta0, c,   \
                                   ldc);                                                      \
                    continue;                                                                 \
                }                                                                             \
                /* two calls, not one on a chosen B: each is compiled for its own stride */  \
                _Alignas(64) T panel[DEPTH * 3 * sizeof(V) / sizeof(T)];                      \
                for (int kk = 0; kk < kn; kk++)                                               \
                    memcpy(panel + kk * wide, bk0 + kk * ldb + s * wide, 3 * sizeof(V));      \
                stripe_##T##_3(m, 0, kn, alpha, ak0, ar, ak, panel, wide, beta0, c + s * wide, \
                               ldc);                                                          \
            })                                                                                \
            if (last - full == 2 * lanes)                                                     \
                stripe_##T##_2(m, full, kn, alpha, ak0, ar, ak, bk0, ldb, beta0, c, ldc);     \
            else if (last - full == lanes)                                                    \
                stripe_##T##_1(m, full, kn, alpha, ak0, ar, ak, bk0, ldb, beta0, c, ldc);     \
            for (int j = last; TA && j < n; j += 4) { /* A B's go after the loop */           \
                int i = 0;                                                                    \
                for (; i + wide <= m; i += wide)                                              \
                    columns_##T##_3(kn, alpha, ak0 + i, ak, bk0 + j, ldb, beta0,              \
                                    c + (long)i * ldc + j, ldc);                              \
                for (; i + lanes <= m; i += lanes)                                            \
                    columns_##T##_1(kn, alpha, ak0 + i, ak, bk0 + j, ldb, beta0,              \
                                    c + (long)i * ldc + j, ldc);                              \
                stripe_##T##4_1(m - i, j, kn, alpha, ak0 + i, ar, ak, bk0, ldb, beta0,        \
                                c + (long)i * ldc, ldc);                                      \
            }                                                                                 \
        }                                                                                     \
        if (!TA && last < n)                                                                  \
            last_columns_##T(m, last, n, k, alpha, a, lda, b, ldb, beta, c, ldc);             \
    }                                                                                         \
    RT_VECTOR_CLONES void NAME(int m, int n, int k, T alpha, const T *a, int lda, const T *b, \
                               int ldb, T beta, T *c, int ldc)                                \
    {                                                                                         \
        const long ar = TA ? 1 : lda;                                                         \
        const bool big = rt_split(RT_SPLIT_KERNEL, (long)m * n * k);                          \
        /* K in parts by the whole product's rows, whichever rows a thread takes */           \
        const int depth = TA || m >= PANEL_ROWS ? DEPTH : k;                                  \
        if (!too_narrow(big, n, 3 * (int)(sizeof(V) / sizeof(T)))) {                          \
            NAME##_in(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, big, depth);              \
            return;                                                                           \
        }                                                                                     \
        const int parts = threads();                                                          \
        SHARED_FOR(big, part, parts, 1, {                                                     \
            int from, to;                                                                     \
            part_of(m, 8, part, parts, &from, &to);                                           \
            if (to > from)                                                                    \
                NAME##_in(to - from, n, k, alpha, a + from * ar, lda, b, ldb, beta,           \
                          c + (long)from * ldc, ldc, false, depth);                           \
        })                                                                                    \
    }

STRIPES(float, vfloat)
STRIPES(double, vdouble)
GEMM(rt_sgemm_nn, float, vfloat, 0)
GEMM(rt_dgemm_nn, double, vdouble, 0)
GEMM(rt_sgemm_tn, float, vfloat, 1)
GEMM(rt_dgemm_tn, double, vdouble, 1)

/* With many rows (a layer's dX = dY W^T, 1024 rows), each stripe of 48
 * rows of B and DEPTH of K is first copied transposed into a panel on the
 * stack, then multiplied as A B: the copy is paid once for all the rows,
 * and the dot products' sums across the vector at the end are not. 1024 x
 * 128 x 128 ran in 215 us instead of the dot products' 890 (OpenBLAS:
 * 256). With few rows (an LSTM's 32), the copy costs more than it saves. */
#define PACKED_ROWS 64
/* Statements, not a function: OpenMP outlines a parallel loop before it
 * is inlined, so only a loop written in the cloned function itself is
 * compiled for each CPU. */
#define PACKED_NT(T, V)                                                                       \
    {                                                                                         \
        enum { LANES = sizeof(V) / sizeof(T), WIDE = 3 * LANES };                             \
        SHARED_FOR(big, j, n, WIDE, {                                                         \
            _Alignas(64) T panel[DEPTH * WIDE];                                               \
            const int cols = n - j < WIDE ? n - j : WIDE;                                     \
            for (int k0 = 0; k0 < k; k0 += DEPTH) {                                           \
                const int kn = k - k0 < DEPTH ? k - k0 : DEPTH;                               \
                for (int col = 0; col < cols; col++)                                          \
                    for (int kk = 0; kk < kn; kk++)                                           \
                        panel[kk * cols + col] = b[(long)(j + col) * ldb + k0 + kk];           \
                const T beta0 = k0 ? 1 : beta; /* later parts add to the first */            \
                T *cj = c + j;                                                                \
                if (cols == WIDE)                                                             \
                    stripe_##T##_3(m, 0, kn, alpha, a + k0, lda, 1, panel, cols, beta0, cj,    \
                                   ldc);                                                      \
                else if (cols == 2 * LANES)                                                   \
                    stripe_##T##_2(m, 0, kn, alpha, a + k0, lda, 1, panel, cols, beta0, cj,    \
                                   ldc);                                                      \
                else                                                                          \
                    stripe_##T##_1(m, 0, kn, alpha, a + k0, lda, 1, panel, cols, beta0, cj,    \
                                   ldc);                                                      \
            }                                                                                 \
        })                                                                                    \
    }

/* With few rows but many columns, in a product not shared among the
 * threads (an LSTM's step backward dh = dz U^T, 32 x 256 x 1024): C^T =
 * B A^T has the many rows, so it goes the packed way, copying A (the small
 * operand) into the panels, and C is then read off its transpose. 111 us
 * instead of the dot products' 150 (OpenBLAS: 203). C^T is kept on the
 * stack: at most SWAPPED elements. */
#define SWAPPED 16384
#define SWAPPED_NT(NAME, T, V)                                                                \
    if (m < PACKED_ROWS && n >= PACKED_ROWS && m % (sizeof(V) / sizeof(T)) == 0 &&            \
        (long)m * n <= SWAPPED) {                                                             \
        T ct[SWAPPED];                                                                        \
        NAME(n, m, k, 1, b, ldb, a, lda, 0, ct, m);                                           \
        for (int i = 0; i < m; i++)                                                           \
            for (int j = 0; j < n; j++) {                                                     \
                T *to = c + (long)i * ldc + j;                                                \
                *to = beta == 0 ? alpha * ct[j * m + i] : alpha * ct[j * m + i] + beta * *to; \
            }                                                                                 \
        return;                                                                               \
    }

/* Otherwise rows 4 at a time, each across the columns 4 at a time, then
 * the rows and columns left one by one; the columns in as many parts as
 * there are threads, when the product is worth splitting. K a multiple of
 * 16 (of 8 for doubles). */
#define GEMM_NT(NAME, T, V)                                                                   \
    DOTS(T, V, 4, 1)                                                                          \
    DOTS(T, V, 1, 1)                                                                          \
    RT_VECTOR_CLONES void NAME(int m, int n, int k, T alpha, const T *a, int lda, const T *b, \
                               int ldb, T beta, T *c, int ldc)                                \
    {                                                                                         \
        const bool big = rt_split(RT_SPLIT_KERNEL, (long)m * n * k);                          \
        if (m >= PACKED_ROWS && n % (sizeof(V) / sizeof(T)) == 0) {                           \
            /* parts of rows only if each still goes this way */                              \
            const int parts = m / PACKED_ROWS < threads() ? m / PACKED_ROWS : threads();      \
            if (too_narrow(big, n, 3 * (int)(sizeof(V) / sizeof(T))) && parts > 1) {          \
                SHARED_FOR(big, part, parts, 1, {                                             \
                    int from, to;                                                             \
                    part_of(m, 8, part, parts, &from, &to);                                   \
                    NAME(to - from, n, k, alpha, a + (long)from * lda, lda, b, ldb, beta,     \
                         c + (long)from * ldc, ldc);                                          \
                })                                                                            \
                return;                                                                       \
            }                                                                                 \
            PACKED_NT(T, V)                                                                   \
            return;                                                                           \
        }                                                                                     \
        SWAPPED_NT(NAME, T, V)                                                                \
        const int parts = big ? threads() : 1;                                                \
        SHARED_FOR(big, part, parts, 1, {                                                     \
            int from, to;                                                                     \
            part_of(n, 4, part, parts, &from, &to);                                           \
            for (int i = 0; i < m;) {                                                         \
                int rows = m - i >= 4 ? 4 : 1, j = from;                                      \
                const T *ai = a + (long)i * lda;                                              \
                T *ci = c + (long)i * ldc;                                                    \
                for (; j + 4 <= to; j += 4)                                                   \
                    if (rows == 4)                                                            \
                        dots_##T##_4x4(k, alpha, ai, lda, b + (long)j * ldb, ldb, beta,       \
                                       ci + j, ldc);                                          \
                    else                                                                      \
                        dots_##T##_1x4(k, alpha, ai, lda, b + (long)j * ldb, ldb, beta,       \
                                       ci + j, ldc);                                          \
                for (; j < to; j++)                                                           \
                    if (rows == 4)                                                            \
                        dots_##T##_4x1(k, alpha, ai, lda, b + (long)j * ldb, ldb, beta,       \
                                       ci + j, ldc);                                          \
                    else                                                                      \
                        dots_##T##_1x1(k, alpha, ai, lda, b + (long)j * ldb, ldb, beta,       \
                                       ci + j, ldc);                                          \
                i += rows;                                                                    \
            }                                                                                 \
        })                                                                                    \
    }

GEMM_NT(rt_sgemm_nt, float, vfloat)
GEMM_NT(rt_dgemm_nt, double, vdouble)

/* to[c * ldt + r] = from[r * ldf + c] for a matrix `from` [rows, cols]:
 * squares of a vector's lanes at a time in registers, where both are
 * whole vectors of them, each square transposed in log2(lanes) rounds of
 * swapping the off-diagonal halves of its halves. One element at a time,
 * each store a row of `to` further, took as long as a third of the product
 * it fed (64 x 64 x 32). */
#define TRANSPOSE(T, V, LANES)                                                                \
    INLINE void transpose_##T(T *to, long ldt, const T *from, long ldf, int rows, int cols)   \
    {                                                                                         \
        enum { L = sizeof(V) / sizeof(T) };                                                   \
        if (rows % L || cols % L) {                                                           \
            for (int r = 0; r < rows; r++)                                                    \
                for (int c = 0; c < cols; c++)                                                \
                    to[c * ldt + r] = from[r * ldf + c];                                      \
            return;                                                                           \
        }                                                                                     \
        for (int r0 = 0; r0 < rows; r0 += L)                                                  \
            for (int c0 = 0; c0 < cols; c0 += L) {                                            \
                V x[L];                                                                       \
                _Pragma("GCC unroll 16") for (int r = 0; r < L; r++)                          \
                    memcpy(&x[r], from + (r0 + r) * ldf + c0, sizeof(V));                     \
                SWAP_HALVES(L / 2, LANES);                                                    \
                SWAP_HALVES(L / 4, LANES);                                                    \
                SWAP_HALVES(L / 8, LANES);                                                    \
                if (L == 16)                                                                  \
                    SWAP_HALVES(L / 16, LANES);                                               \
                _Pragma("GCC unroll 16") for (int c = 0; c < L; c++)                          \
                    memcpy(to + (c0 + c) * ldt + r0, &x[c], sizeof(V));                       \
            }                                                                                 \
    }
/* One round: rows r and r + h (r with bit h clear) trade the lanes with
 * bit h set of the first for the lanes with it clear of the second. The
 * masks are constants, so each shuffle is one instruction. */
#define LO(h, e) ((e) & (h) ? L + (e) - (h) : (e))
#define HI(h, e) ((e) & (h) ? L + (e) : (e) + (h))
#define LANES8(F, h) F(h, 0), F(h, 1), F(h, 2), F(h, 3), F(h, 4), F(h, 5), F(h, 6), F(h, 7)
#define LANES16(F, h)                                                                         \
    LANES8(F, h), F(h, 8), F(h, 9), F(h, 10), F(h, 11), F(h, 12), F(h, 13), F(h, 14), F(h, 15)
#define SWAP_HALVES(h, LANES)                                                                 \
    _Pragma("GCC unroll 16") for (int r = 0; r < L; r++) if (!(r & (h)))                      \
    {                                                                                         \
        const __typeof__(x[0]) a = x[r], b = x[r + (h)];                                      \
        x[r] = __builtin_shuffle(a, b, (mask){LANES(LO, h)});                                 \
        x[r + (h)] = __builtin_shuffle(a, b, (mask){LANES(HI, h)});                           \
    }
typedef int32_t vint32 __attribute__((vector_size(64)));
typedef int64_t vint64 __attribute__((vector_size(64)));
#define mask vint32
TRANSPOSE(float, vfloat, LANES16)
#undef mask
#define mask vint64
TRANSPOSE(double, vdouble, LANES8)
#undef mask

/* A row block's columns up to cols: stripes of 3 vectors, then 2 or 1,
 * then 4 at a time; j the first column. */
#define HEAD_COLUMNS(T, ROWS, LANES)                                                          \
    {                                                                                         \
        for (; j + 3 * LANES <= cols; j += 3 * LANES)                                         \
            block_##T##_##ROWS##x3(kn, alpha, ai, ar, ak, bk + j, ldb, beta, ci + j, ldc);    \
        if (cols - j >= 2 * LANES) {                                                          \
            block_##T##_##ROWS##x2(kn, alpha, ai, ar, ak, bk + j, ldb, beta, ci + j, ldc);    \
            j += 2 * LANES;                                                                   \
        } else if (cols - j >= LANES) {                                                       \
            block_##T##_##ROWS##x1(kn, alpha, ai, ar, ak, bk + j, ldb, beta, ci + j, ldc);    \
            j += LANES;                                                                       \
        }                                                                                     \
        for (; j < cols; j += 4)                                                              \
            block_##T##4_##ROWS##x1(kn, alpha, ai, ar, ak, bk + j, ldb, beta, ci + j, ldc);   \
    }

/* Attention's products, one per example and head: 64 x 64 x 32 and 64 x 32
 * x 64 at the bench's GPT, 768 a step. OpenBLAS takes a few microseconds to
 * dispatch each, a quarter of its time on them; here each is the blocks
 * above straight away, op(B) copied into a panel first when it is B^T (the
 * blocks read rows of op(B)). And where attention is causal half of each
 * product is known: RT_TRI_A, op(A) is a causal softmax's output (or its
 * gradient), zero above its diagonal (A B: row i reads K up to i) or, as
 * A^T, below it (row i reads K from i); RT_TRI_C, only C's columns up to
 * the row are read (scores, and their gradient, that a causal softmax
 * reads), so the blocks right of the diagonal are not computed: C holds
 * anything there. Each element computed is computed as without the
 * triangle, bar the zeros the triangle leaves out. */
#define HEAD(NAME, T, V)                                                                      \
    INLINE void head_##T(int m, int n, int k, bool ta, bool tb, int tri, T alpha, const T *a,  \
                         long lda, const T *b, long ldb, T beta, T *c, long ldc)              \
    {                                                                                         \
        enum { LANES = sizeof(V) / sizeof(T) };                                               \
        const long ar = ta ? 1 : lda, ak = ta ? lda : 1;                                      \
        _Alignas(64) T panel[RT_HEAD_PANEL];                                                  \
        if (tb) {                                                                             \
            transpose_##T(panel, n, b, ldb, n, k);                                            \
            b = panel;                                                                        \
            ldb = n;                                                                          \
        }                                                                                     \
        for (int i = 0; i < m;) {                                                             \
            const int rows = m - i >= 8 ? 8 : 1;                                              \
            int k0 = 0, kn = k;                                                               \
            if (tri & RT_TRI_A) {                                                             \
                k0 = ta ? i : 0;                                                              \
                kn = ta ? k - i : i + rows < k ? i + rows : k;                                \
            }                                                                                 \
            int cols = n;                                                                     \
            if ((tri & RT_TRI_C) && (i + rows + 3) / 4 * 4 < n)                               \
                cols = (i + rows + 3) / 4 * 4;                                                \
            const T *ai = a + i * ar + k0 * ak, *bk = b + k0 * ldb;                           \
            T *ci = c + i * ldc;                                                              \
            int j = 0;                                                                        \
            if (rows == 8)                                                                    \
                HEAD_COLUMNS(T, 8, LANES)                                                     \
            else                                                                              \
                HEAD_COLUMNS(T, 1, LANES)                                                     \
            i += rows;                                                                        \
        }                                                                                     \
    }                                                                                         \
    RT_VECTOR_CLONES void NAME(int batch, int heads, enum CBLAS_TRANSPOSE ta,                 \
                               enum CBLAS_TRANSPOSE tb, int m, int n, int k, T alpha,         \
                               const T *a, rt_layout la, const T *b, rt_layout lb, T beta,    \
                               T *c, rt_layout lc, int tri)                                   \
    {                                                                                         \
        const bool big = rt_split(RT_SPLIT_BATCHES, (long)batch * heads * m * n * k);         \
        SHARED_FOR(big, p, batch * heads, 1, {                                                \
            const long i = p / heads, j = p % heads;                                          \
            head_##T(m, n, k, ta == CblasTrans, tb == CblasTrans, tri, alpha,                 \
                     a + i * la.step_i + j * la.step_j, la.ld,                                \
                     b + i * lb.step_i + j * lb.step_j, lb.ld, beta,                          \
                     c + i * lc.step_i + j * lc.step_j, lc.ld);                               \
        })                                                                                    \
    }

HEAD(rt_sheads, float, vfloat)
HEAD(rt_dheads, double, vdouble)
