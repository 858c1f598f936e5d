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
#include <stdint.h>
#include <cblas.h>
#include "rt_model.h"

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
#define r_gemm cblas_dgemm
#else
typedef float real;
#define REAL_C(x) x##f
#define RT_REAL RT_F32
#define REAL_SUFFIX(name) name##_f32
#define r_exp expf
#define r_log logf
#define r_tanh tanhf
#define r_sqrt sqrtf
#define r_fabs fabsf
#define r_log1p log1pf
#define r_fmin fminf
#define r_pow powf
#define r_fmax fmaxf
#define r_gemm cblas_sgemm

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
