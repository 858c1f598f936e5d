/*
 * gemm_trace.c: an LD_PRELOAD library that records every cblas_sgemm call
 * a program makes, then makes it. With GRADC_GEMM_TRACE=FILE set, each call
 * appends one line to FILE:
 *
 *   order transA transB M N K alpha A lda B ldb beta C ldc
 *
 * the enums as numbers and A, B, C as addresses in hex. The benchmark runs
 * a gradc trainer under it for a few steps and cuts the trace into one
 * step's products (bench/bench.py), which gemm_bound replays: the same
 * products, in the same order, on a buffer laid out like the model's
 * arena. A generated model calls cblas_sgemm through the PLT, so the
 * definition here is the one it reaches. The first line of FILE is
 * `# corename NAME`: the kernels the program's OpenBLAS chose.
 *
 * At exit it also writes FILE.arena: the memory from the lowest byte any
 * product read or wrote to the highest (the model's arena), as it is then,
 * after the last pass; its last line of FILE is `# arena LO HI`. The
 * replay starts from these values rather than random ones: the
 * products' speed can depend on their data (denormal floats are slow).
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                         blasint, blasint, float, const float *, blasint, const float *, blasint,
                         float, float *, blasint);

static sgemm_fn real_sgemm;
static FILE *trace;
static int trace_opened;
static uintptr_t lo = UINTPTR_MAX, hi;
static char arena_path[4096];

/* The bytes a row-major rows x cols operand with leading dimension ld spans. */
static void touch(const float *p, long rows, long cols, long ld)
{
    if (rows <= 0 || cols <= 0)
        return;
    uintptr_t a = (uintptr_t)p, b = a + (uintptr_t)((rows - 1) * ld + cols) * sizeof(float);
    if (a < lo)
        lo = a;
    if (b > hi)
        hi = b;
}

/* write() fails with EFAULT rather than crashing if the range is not all
 * mapped (operands in more than one place): then there is no .arena. */
__attribute__((destructor)) static void dump_arena(void)
{
    if (!trace || hi <= lo)
        return;
    int fd = open(arena_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    const char *p = (const char *)lo;
    size_t left = hi - lo;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    close(fd);
    if (left == 0)
        fprintf(trace, "# arena %#jx %#jx\n", (uintmax_t)lo, (uintmax_t)hi);
    else
        unlink(arena_path);
    fflush(trace);
}

void cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER order, OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
                 OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint m,
                 OPENBLAS_CONST blasint n, OPENBLAS_CONST blasint k, OPENBLAS_CONST float alpha,
                 OPENBLAS_CONST float *a, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *b,
                 OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *c,
                 OPENBLAS_CONST blasint ldc)
{
    if (!real_sgemm) {
        real_sgemm = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
        if (!real_sgemm) {
            fprintf(stderr, "gemm_trace: cblas_sgemm not found after this library\n");
            abort();
        }
    }
    if (!trace_opened) {
        const char *path = getenv("GRADC_GEMM_TRACE");
        trace_opened = 1;
        if (path && *path && !(trace = fopen(path, "w"))) {
            fprintf(stderr, "gemm_trace: cannot write %s\n", path);
            abort();
        }
        if (path)
            snprintf(arena_path, sizeof arena_path, "%s.arena", path);
        char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_NEXT, "openblas_get_corename");
        if (trace)
            fprintf(trace, "# corename %s\n", corename ? corename() : "(not OpenBLAS)");
    }
    if (trace) {
        touch(a, ta == CblasTrans ? k : m, ta == CblasTrans ? m : k, lda);
        touch(b, tb == CblasTrans ? n : k, tb == CblasTrans ? k : n, ldb);
        touch(c, m, n, ldc);
    }
    if (trace)
        fprintf(trace, "%d %d %d %ld %ld %ld %.9g %#jx %ld %#jx %ld %.9g %#jx %ld\n", (int)order,
                (int)ta, (int)tb, (long)m, (long)n, (long)k, (double)alpha, (uintmax_t)(uintptr_t)a,
                (long)lda, (uintmax_t)(uintptr_t)b, (long)ldb, (double)beta,
                (uintmax_t)(uintptr_t)c, (long)ldc);
    real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
