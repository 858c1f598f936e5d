/* hvp_time.c: bench/bench_hvp.py's timer: one model built with --hvp
 * (its NAME.c and NAME_hvp.c linked in, its descriptor passed by -DMODEL),
 * its gradient (loss_and_grad), a training step and H v (rt_hvp), each
 * timed in turn, round after round, the best round of each kept. */
#include <stdio.h>
#include <stdlib.h>
#include "rt.h"
#include MODEL_H

static double ms_per_call(void (*f)(void), int calls)
{
    double t0 = rt_now_ms();
    for (int i = 0; i < calls; i++)
        f();
    return (rt_now_ms() - t0) / calls;
}

static const rt_model *m = &MODEL;
static void *v, *hv;
static rt_hyper still;

static void gradient(void) { m->loss_and_grad(); }
static void step(void) { m->train_step(&still); }
static void product(void) { rt_hvp(m, v, hv); }

int main(int argc, char **argv)
{
    rt_use_best_blas(argv); /* as the trainers do */
    rt_flush_subnormals();
    int rounds = argc > 1 ? atoi(argv[1]) : 5, calls = argc > 2 ? atoi(argv[2]) : 20;
    size_t bytes = (size_t)m->n_param_elems * (m->real == RT_F64 ? 8 : 4);
    v = malloc(bytes), hv = malloc(bytes);
    rt_init_params(m, 1);
    rt_random_inputs(m, 1);
    rt_rng r;
    rt_rng_seed(&r, 2);
    for (long i = 0; i < m->n_param_elems; i++)
        ((float *)v)[i] = (float)rt_rng_normal(&r);
    still = m->hyper;
    still.lr = 1e-30; /* all but the same point every call (a BLAS skips alpha 0) */
    still.step = 1;
    double best[3] = {1e30, 1e30, 1e30};
    void (*f[3])(void) = {gradient, step, product};
    for (int k = 0; k < 3; k++)
        f[k](); /* the first touches every page */
    for (int round = 0; round < rounds; round++)
        for (int k = 0; k < 3; k++) {
            double t = ms_per_call(f[k], calls);
            best[k] = t < best[k] ? t : best[k];
        }
    printf("gradient %.4f ms\nstep %.4f ms\nhvp %.4f ms\n", best[0], best[1], best[2]);
    free(v), free(hv);
    return 0;
}
