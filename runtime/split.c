/*
 * split.c: which products and loops are shared among the threads.
 *
 * Sharing work wakes the other threads and waits for the last of them,
 * which costs a microsecond or two when the vCPUs sit near each other and
 * several times that when the host placed them far apart: a product too
 * small to pay for it gets slower on two threads than on one. So the
 * trainer measures, when it starts, the smallest products and loops that
 * run faster shared than whole on this machine, and shares only those.
 * Products of each kind (an OpenBLAS call, gradc's kernels, a batch of
 * products such as attention's per head) are timed both ways at growing
 * sizes, and the size from which sharing pays at two sizes in a row
 * becomes the kind's threshold; loops the same way, on a loop as cheap
 * per element as a generated one gets. Without calibrating, the
 * thresholds are those measured on near vCPUs.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "rt.h"
#include "rt_internal.h"
#include "rt_real.h"

/* The least work shared, by kind (without measuring, what pays on near
 * vCPUs); what was decided, whole and shared, since rt_split_reset; and
 * whether rt_split_force decides instead. */
#define NEAR_FROM                                                                                  \
    {                                                                                              \
        1L << 20, 1L << 20, 1L << 20, 1L << 18                                                     \
    }
static const long near_from[RT_SPLIT_KINDS] = NEAR_FROM;
static long split_from[RT_SPLIT_KINDS] = NEAR_FROM;
static long split_counts[RT_SPLIT_KINDS][2];
static int forced = -1;
/* The trial on the trainer's own steps: whether it is on, and each way's
 * time so far (whole, shared). */
static bool trial_on;
static double trial_ms[2];
static long trial_steps[2];

bool rt_split(int kind, long work)
{
#ifdef _OPENMP
    if (omp_get_max_threads() < 2 || omp_in_parallel())
        return false;
    const bool shared = work >= 0 && (forced >= 0 ? forced : work >= split_from[kind]);
    split_counts[kind][shared]++;
    return shared;
#else
    return (void)kind, (void)work, false;
#endif
}

void rt_split_force(int how) { forced = how; }

static const char *const kind_name[RT_SPLIT_KINDS] = {"OpenBLAS products", "gradc's kernels",
                                                      "batches of products", "loops"};

enum { SIZES = 8 };

/* Milliseconds for one call of `run` on size s, whole (shared = 0) or
 * shared: the least of `rounds`, taken alternately with the other way. */
static void time_both(void (*run)(int s, void *), int s, void *data, int rounds, double ms[2])
{
    ms[0] = ms[1] = 1e30;
    for (int r = 0; r < rounds; r++)
        for (int shared = 0; shared < 2; shared++) {
            forced = shared;
            double t = rt_now_ms();
            run(s, data);
            t = rt_now_ms() - t;
            if (t < ms[shared])
                ms[shared] = t;
        }
    forced = -1;
}

typedef struct {
    bool dbl;
    void *a, *b, *c;
} Operands;

/* A product of s rows, 4s columns and s deep: a layer's shape. */
static void blas_product(int s, void *data)
{
    const Operands *o = data;
    if (o->dbl)
        rt_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, 4 * s, s, 1, o->a, s, o->b, 4 * s, 0,
                 o->c, 4 * s);
    else
        rt_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, 4 * s, s, 1, o->a, s, o->b, 4 * s, 0,
                 o->c, 4 * s);
}

static void kernel_product(int s, void *data)
{
    const Operands *o = data;
    if (o->dbl)
        rt_dgemm_nn(s, 4 * s, s, 1, o->a, s, o->b, 4 * s, 0, o->c, 4 * s);
    else
        rt_sgemm_nn(s, 4 * s, s, 1, o->a, s, o->b, 4 * s, 0, o->c, 4 * s);
}

/* A batch of 4 products of s rows, s columns and s deep, each whole on
 * the thread it falls to. */
static void batch_of_products(int s, void *data)
{
    const Operands *o = data;
    RT_SHARED_PRODUCTS(1, 4L * s * s * s)
    for (int i = 0; i < 4; i++)
        if (o->dbl)
            rt_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, s, s, 1, o->a, s, o->b, s, 0,
                     (double *)o->c + (long)i * s * s, s);
        else
            rt_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, s, s, 1, o->a, s, o->b, s, 0,
                     (float *)o->c + (long)i * s * s, s);
}

/* A loop of 1024 s floats: one multiply-add each, as cheap as loops come. */
static void loop(int s, void *data)
{
    const Operands *o = data;
    const float *x = o->a;
    float *y = o->c;
    const long n = 1024L * s;
    RT_PARALLEL_FOR(n)
    for (long i = 0; i < n; i++)
        y[i] = 0.5f * x[i] + y[i];
}

static const int product_sizes[SIZES] = {16, 24, 32, 48, 64, 96, 128, 192};
static const int loop_sizes[SIZES] = {4, 8, 16, 32, 64, 128, 256, 512};

/* The work at size s: multiply-adds of a product, elements of a loop. */
static long work(int kind, int s) { return kind == RT_SPLIT_LOOPS ? 1024L * s : 4L * s * s * s; }

/* The first size from which sharing pays at two sizes in a row (by a
 * tenth, beyond what the timing's noise would give), or at the largest;
 * LONG_MAX if it does not. */
static long calibrate(int kind, void (*run)(int, void *), const int sizes[SIZES], void *data)
{
    int paid = 0;
    for (int i = 0; i < SIZES; i++) {
        double ms[2];
        /* fewer rounds of the larger sizes: they vary less, and cost more */
        time_both(run, sizes[i], data, work(kind, sizes[i]) < 1000000 ? 5 : 3, ms);
        paid = ms[1] < 0.9 * ms[0] ? paid + 1 : 0;
        if (paid == 2 || (paid == 1 && i == SIZES - 1))
            return work(kind, sizes[i + 1 - paid]);
    }
    return LONG_MAX;
}

/* The least time, in microseconds, to wake the threads and wait for them,
 * once they have started. */
static double wake_us(void)
{
    double least = 1e30;
#ifdef _OPENMP
    for (int r = 0; r < 20; r++) {
        double t = rt_now_ms();
#pragma omp parallel
        {
            volatile int id = omp_get_thread_num();
            (void)id;
        }
        t = rt_now_ms() - t;
        least = t < least ? t : least;
    }
#endif
    return least * 1e3;
}

/* Measures the thresholds: false if there was no memory to do it with. */
static bool measure(bool dbl)
{
    const size_t most = (size_t)product_sizes[SIZES - 1];
    const size_t longest = 1024 * (size_t)loop_sizes[SIZES - 1];
    const size_t size = dbl ? sizeof(double) : sizeof(float);
    /* calloc: pages of zeros, faulted in by the first call at each size */
    Operands o = {dbl, calloc(most * most, size), calloc(4 * most * most, size),
                  calloc(4 * most * most, size)};
    float *x = calloc(longest, sizeof *x), *y = calloc(longest, sizeof *y);
    const bool ok = o.a && o.b && o.c && x && y;
    if (ok) {
        split_from[RT_SPLIT_BLAS] = calibrate(RT_SPLIT_BLAS, blas_product, product_sizes, &o);
        split_from[RT_SPLIT_KERNEL] = calibrate(RT_SPLIT_KERNEL, kernel_product, product_sizes, &o);
        split_from[RT_SPLIT_BATCHES] =
            calibrate(RT_SPLIT_BATCHES, batch_of_products, product_sizes, &o);
        split_from[RT_SPLIT_LOOPS] =
            calibrate(RT_SPLIT_LOOPS, loop, loop_sizes, &(Operands){0, x, 0, y});
    }
    free(o.a), free(o.b), free(o.c), free(x), free(y);
    return ok;
}

void rt_calibrate_split(bool calibrate, bool dbl, FILE *say, const char *prog)
{
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
    if (threads < 2)
        return;
    /* The threads start, which can take 100 ms when the host is slow to
     * run the other vCPU: not a wake-up like those of a step, and one the
     * first step would make anyway. */
    {
#pragma omp parallel
        (void)0;
    }
    memcpy(split_from, near_from, sizeof split_from);
    trial_on = calibrate;
    const double start = rt_now_ms();
    const bool measured = calibrate && measure(dbl);
    const double took = rt_now_ms() - start;
    if (!say)
        return;
    fprintf(say, "%s: %d threads, woken and joined in %.2g us; shared from", prog, threads,
            wake_us());
    if (measured)
        fprintf(say, " (measured in %.1f ms):", took);
    else
        fprintf(say, " (%s):", calibrate ? "no memory to measure" : "--no-calibrate");
    for (int k = 0; k < RT_SPLIT_KINDS; k++) {
        if (split_from[k] == LONG_MAX)
            fprintf(say, "%s %s never", k ? "," : "", kind_name[k]);
        else
            fprintf(say, "%s %s %ld%s", k ? "," : "", kind_name[k], split_from[k],
                    k == RT_SPLIT_LOOPS ? " elements" : " multiply-adds");
    }
    fprintf(say, "\n");
#else
    (void)calibrate, (void)dbl, (void)say, (void)prog;
#endif
}

bool rt_split_trial(long k, double first_ms)
{
    if (k == 1 || !trial_on)
        return false;
    if (k == 2) {
        long shared = 0;
        for (int kind = 0; kind < RT_SPLIT_KINDS; kind++)
            shared += split_counts[kind][1];
        /* nothing to choose, or steps too long to spend some on a trial */
        trial_on = shared > 0 && first_ms < 1000;
        trial_ms[0] = trial_ms[1] = 0;
        trial_steps[0] = trial_steps[1] = 0;
        if (!trial_on)
            return false;
    }
    forced = k % 2 ? -1 : 0; /* whole first, then as measured */
    return true;
}

void rt_split_trial_done(long k, double ms, FILE *say, const char *prog)
{
    trial_ms[k % 2] += ms;
    trial_steps[k % 2]++;
    /* Each way over 20 ms at least, five of the kernel's time slices:
     * another process on a thread's CPU costs a shared step nothing while
     * that thread runs, and a slice of waiting when it does not. */
    const double least = trial_ms[0] < trial_ms[1] ? trial_ms[0] : trial_ms[1];
    if (k % 2 == 0 || trial_steps[1] < 2 || (least < 20 && trial_steps[1] < 100))
        return;
    const double whole = trial_ms[0] / trial_steps[0], shared = trial_ms[1] / trial_steps[1];
    forced = shared < whole ? -1 : 0;
    trial_on = false;
    if (say)
        fprintf(say, "%s: steps 2-%ld took %.4g ms a step whole, %.4g shared: %s\n", prog, k, whole,
                shared, shared < whole ? "sharing as measured" : "sharing nothing from here");
}

void rt_split_reset(void) { memset(split_counts, 0, sizeof split_counts); }

void rt_split_report(const char *prog, long step)
{
#ifdef _OPENMP
    if (omp_get_max_threads() < 2)
        return;
#endif
    fprintf(stderr, "%s: step %ld shared", prog, step);
    for (int k = 0; k < RT_SPLIT_KINDS; k++)
        fprintf(stderr, "%s %ld of %ld %s", k ? "," : "", split_counts[k][1],
                split_counts[k][0] + split_counts[k][1], kind_name[k]);
    fprintf(stderr, " among the threads\n");
}
