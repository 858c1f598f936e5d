/*
 * blas.c: OpenBLAS's fastest kernels for this CPU, and threads that keep
 * out of each other's way.
 *
 * OpenBLAS picks its kernels once, when it loads, from the CPUs it knows.
 * Debian's 0.3.21 does not know recent ones and falls back to its oldest
 * kernels, an sgemm ten times slower than the CPU's AVX2 or AVX-512 ones.
 * OPENBLAS_CORETYPE overrides the choice, but only at load time: by the
 * time main() runs it is too late, so a program that finds the slow
 * kernels runs itself again with the variable set. A CPU without AVX2
 * keeps what OpenBLAS chose, and so does anyone who set the variable.
 *
 * OpenMP's idle threads spin by default, and on a machine with as many
 * cores as threads they take the cores OpenBLAS's threads need: a 2-thread
 * step ran 3 times slower than a 1-thread one. With OMP_WAIT_POLICY
 * passive they sleep; libgomp too reads it only when it loads, so a
 * program asked for more than one thread sets it in the same new start.
 */
#include <stdbool.h>
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

/* Whether the command line asks for more than one thread (--threads N or
 * --threads=N), read before the program parses it. */
static bool threads_asked(char **argv)
{
    for (int i = 1; argv[i]; i++) {
        const char *v = !strcmp(argv[i], "--threads")        ? argv[i + 1]
                        : !strncmp(argv[i], "--threads=", 10) ? argv[i] + 10
                                                              : NULL;
        if (v && atol(v) > 1)
            return true;
    }
    return false;
}

void rt_use_best_blas(char **argv)
{
    bool again = false;
    const char *best = best_kernels(), *core = openblas_get_corename();
    /* Kernels OpenBLAS chose for a CPU it knows are as good as ours. */
    if (best && !getenv("OPENBLAS_CORETYPE") && core &&
        (!strcasecmp(core, "Prescott") || !strcasecmp(core, "Core2") ||
         !strcasecmp(core, "Nehalem") || !strcasecmp(core, "Sandybridge"))) {
        setenv("OPENBLAS_CORETYPE", best, 1);
        again = true;
    }
#ifdef _OPENMP
    if (threads_asked(argv) && !getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        again = true;
    }
#endif
    if (again) {
        fflush(NULL);
        execv("/proc/self/exe", argv);
    }
    /* No /proc: carry on as we are rather than fail. */
}

void rt_set_threads(int n)
{
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
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
