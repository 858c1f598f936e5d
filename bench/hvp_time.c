/* hvp_time.c: bench/bench_hvp.py's timer: one model built with --hvp
 * and --jvp (its NAME.c, NAME_hvp.c and NAME_jvp.c linked in, its
 * descriptor passed by -DMODEL), its gradient (loss_and_grad), a training
 * step, H v (rt_hvp), its outputs (forward) and J v (rt_jvp), each timed
 * in turn, round after round, the best round of each kept. */
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
static void *v, *hv, *jv;
static rt_hyper still;

static void gradient(void) { m->loss_and_grad(); }
static void step(void) { m->train_step(&still); }
static void product(void) { rt_hvp(m, v, hv); }
static void outputs(void) { m->forward(m->batch); }
static void tangents(void) { rt_jvp(m, v, jv); }

int main(int argc, char **argv)
{
    rt_use_best_blas(argv); /* as the trainers do */
    rt_flush_subnormals();
    int rounds = argc > 1 ? atoi(argv[1]) : 5, calls = argc > 2 ? atoi(argv[2]) : 20;
    size_t bytes = (size_t)m->n_param_elems * (m->real == RT_F64 ? 8 : 4);
    v = malloc(bytes), hv = malloc(bytes);
    jv = malloc((size_t)m->jvp->n_product * (m->real == RT_F64 ? 8 : 4));
    rt_init_params(m, 1);
    rt_random_inputs(m, 1);
    rt_rng r;
    rt_rng_seed(&r, 2);
    for (long i = 0; i < m->n_param_elems; i++)
        ((float *)v)[i] = (float)rt_rng_normal(&r);
    still = m->hyper;
    still.lr = 1e-30; /* all but the same point every call (a BLAS skips alpha 0) */
    still.step = 1;
    enum { N = 5 };
    static const char *const name[N] = {"gradient", "step", "hvp", "forward", "jvp"};
    void (*f[N])(void) = {gradient, step, product, outputs, tangents};
    double best[N];
    for (int k = 0; k < N; k++) {
        f[k](); /* the first touches every page */
        best[k] = 1e30;
    }
    for (int round = 0; round < rounds; round++)
        for (int k = 0; k < N; k++) {
            double t = ms_per_call(f[k], calls);
            best[k] = t < best[k] ? t : best[k];
        }
    for (int k = 0; k < N; k++)
        printf("%s %.4f ms\n", name[k], best[k]);
    free(v), free(hv), free(jv);
    return 0;
}
