/*
 * rng.c: xoshiro256** seeded through splitmix64, and the derived streams.
 *
 * Everything is integer arithmetic on uint64_t plus one fixed conversion to
 * double, so the same seed gives the same numbers on every machine. A stream
 * is keyed by (seed, domain, k): parameter k, input k, the gradient
 * check's picks and epoch k's shuffle each get their own generator, so
 * adding a parameter moves no other parameter's values.
 */
#include <math.h>
#include "rt_internal.h"

/* M_PI is not ISO C; spelled out so strict builds find it. */
static const double two_pi = 6.283185307179586476925286766559;

uint64_t rt_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

void rt_rng_seed(rt_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = rt_splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rt_rng_next(rt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top 53 bits are the best ones and fill a double's mantissa exactly. */
double rt_rng_uniform(rt_rng *r) { return (double)(rt_rng_next(r) >> 11) * 0x1.0p-53; }

/* Box-Muller. rt_rng has no room to cache the second value, so it is
 * dropped; 1 - u keeps the logarithm's argument in (0, 1]. */
double rt_rng_normal(rt_rng *r)
{
    double u1 = 1.0 - rt_rng_uniform(r);
    double u2 = rt_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

/* Each key is folded through splitmix64 in turn, so nearby seeds and nearby
 * indices still land on unrelated states. */
void rt_rng_stream(rt_rng *r, uint64_t seed, uint64_t domain, uint64_t k)
{
    uint64_t x = seed;
    uint64_t h = rt_splitmix64(&x);
    x = h ^ (domain * 0xD6E8FEB86659FD93u);
    h = rt_splitmix64(&x);
    x = h + k;
    rt_rng_seed(r, rt_splitmix64(&x));
}

/* Multiplying a 53-bit uniform keeps the bias below 2^-53 * n: nothing a
 * seeded pick or a random label could notice. */
long rt_rng_below(rt_rng *r, long n)
{
    long v = (long)(rt_rng_uniform(r) * (double)n);
    return v < n ? v : n - 1;
}
