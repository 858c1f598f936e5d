/*
 * pingpong.c: how near each other the host placed CPUs 0 and 1, the two
 * a 2-vCPU machine runs the 2-thread figures on: the round trip of a
 * cache line between them, in ns. Two hyperthreads of a core or two cores
 * sharing a cache answer in under 100 ns; cores on other chiplets or
 * sockets take up to 500, and then a second thread gains little on small
 * products. It pins itself to those two CPUs, whatever it was given.
 *
 *   pingpong [--ms MS]   prints `round trip NS ns`, the median of rounds
 *                        of 10000 round trips over MS milliseconds (200)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TRIPS = 10000, MAX_ROUNDS = 1000 };

/* ping writes an odd number, pong answers with the next even one; 0 stops */
static _Atomic long ball = 2;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
        fprintf(stderr, "pingpong: cannot run on CPU %d\n", cpu);
        exit(1);
    }
}

static void *pong(void *unused)
{
    (void)unused;
    pin(1);
    for (;;) {
        long b = atomic_load_explicit(&ball, memory_order_acquire);
        if (b == 0)
            return NULL;
        if (b & 1)
            atomic_store_explicit(&ball, b + 1, memory_order_release);
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double ms = 200;
    if (argc == 3 && !strcmp(argv[1], "--ms"))
        ms = atof(argv[2]);
    else if (argc != 1) {
        fprintf(stderr, "usage: pingpong [--ms MS]\n");
        return 2;
    }
    pin(0);
    pthread_t t;
    if (pthread_create(&t, NULL, pong, NULL)) {
        fprintf(stderr, "pingpong: cannot start a second thread\n");
        return 1;
    }
    static double ns[MAX_ROUNDS];
    int rounds = 0;
    long b = 2;
    for (double end = now() + ms / 1e3; rounds < MAX_ROUNDS && (rounds < 5 || now() < end);) {
        double t0 = now();
        for (int i = 0; i < TRIPS; i++) {
            atomic_store_explicit(&ball, b + 1, memory_order_release);
            while (atomic_load_explicit(&ball, memory_order_acquire) != b + 2)
                ;
            b += 2;
        }
        ns[rounds++] = (now() - t0) / TRIPS * 1e9;
    }
    atomic_store(&ball, 0);
    pthread_join(t, NULL);
    qsort(ns, rounds, sizeof *ns, by_value);
    printf("round trip %.0f ns\n", ns[rounds / 2]);
    return 0;
}
