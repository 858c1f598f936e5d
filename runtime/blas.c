/*
 * blas.c: OpenBLAS's fastest kernels for this CPU, and one thread for it.
 *
 * OpenBLAS picks its kernels once, when it loads, from the CPUs it knows.
 * Debian's 0.3.21 does not know recent ones: it falls back to its oldest
 * kernels, an sgemm ten times slower than the CPU's AVX2 or AVX-512 ones,
 * or, on an AVX-512 CPU it takes for an older one (Zen), to its AVX2
 * kernels, half as fast. OPENBLAS_CORETYPE overrides the choice, but only
 * at load time: by the time main() runs it is too late, so a program that
 * finds narrower kernels than the CPU can run runs itself again with the
 * variable set. Anyone who set the variable keeps their choice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif
#include "rt.h"

/* The width in bits of the vectors OpenBLAS's kernels of that name use;
 * 0 for older kernels or a name not known here. */
static int kernel_width(const char *core)
{
    static const struct {
        const char *name;
        int width;
    } kernels[] = {{"SkylakeX", 512}, {"Cooperlake", 512}, {"SapphireRapids", 512},
                   {"Haswell", 256},  {"Zen", 256}};
    for (size_t i = 0; core && i < sizeof kernels / sizeof *kernels; i++)
        if (!strcasecmp(core, kernels[i].name))
            return kernels[i].width;
    return 0;
}

/* The kernels this CPU can run best, or NULL to leave OpenBLAS's choice. */
static const char *best_kernels(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void rt_use_best_blas(char **argv)
{
    const char *best = best_kernels();
    if (best && !getenv("OPENBLAS_CORETYPE") &&
        kernel_width(openblas_get_corename()) < kernel_width(best)) {
        setenv("OPENBLAS_CORETYPE", best, 1);
        fflush(NULL);
        execv("/proc/self/exe", argv);
    }
    /* No /proc: carry on as we are rather than fail. */
}

/* OpenBLAS's pthread build starts its own threads when it loads, which
 * spin for about 100 ms before they sleep, taking a CPU from ours; its
 * other builds have no such function. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

int rt_set_threads(int n)
{
    openblas_set_num_threads(1); /* gemm.c shares products out itself */
    if (blas_thread_shutdown_)
        blas_thread_shutdown_();
#ifdef _OPENMP
    if (n == 0)
        n = omp_get_num_procs(); /* libgomp counts the CPUs of the affinity mask */
    omp_set_num_threads(n);
    return n;
#else
    (void)n;
    return 1;
#endif
}

void rt_flush_subnormals(void)
{
#if defined(__SSE__) || defined(__x86_64__)
    /* FTZ (bit 15): results too small for a normal float become 0; DAZ
     * (bit 6): such inputs count as 0. Each subnormal operand otherwise
     * costs the CPU a microcode assist of a hundred cycles or more. */
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
