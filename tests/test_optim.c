/*
 * test_optim.c: every optimizer against a step computed by hand, and the
 * learning-rate schedules.
 *
 * The build compiles tests/optim_model.lua once per optimizer (as
 * optim_KIND, in double). Each test runs three steps of the generated
 * train_step and, beside it, the textbook update written out plainly
 * here, and requires the parameters to agree to 1e-12.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "rt.h"
#include "optim_reference.h"
#include "optim_adam.h"
#include "optim_adamw.h"
#include "optim_momentum.h"
#include "optim_nesterov.h"
#include "optim_rmsprop.h"
#include "optim_sgd.h"

static const struct {
    const char *name;
    const rt_model *model;
    rt_optimizer kind;
} optims[] = {
    {"sgd", &optim_sgd_model_f64, RT_OPT_SGD},
    {"momentum", &optim_momentum_model_f64, RT_OPT_MOMENTUM},
    {"nesterov", &optim_nesterov_model_f64, RT_OPT_NESTEROV},
    {"adam", &optim_adam_model_f64, RT_OPT_ADAM},
    {"adamw", &optim_adamw_model_f64, RT_OPT_ADAMW},
    {"rmsprop", &optim_rmsprop_model_f64, RT_OPT_RMSPROP},
};
enum { N_OPTIMS = sizeof optims / sizeof *optims };

/* Settings chosen so that clipping bites (the gradient norm here is a few
 * units) and weight decay matters. */
static const rt_hyper plain = {
    .lr = 0.05, .momentum = 0.8, .beta1 = 0.85, .beta2 = 0.95, .alpha = 0.9, .eps = 1e-6};

static rt_hyper with_decay_and_clip(void)
{
    rt_hyper h = plain;
    h.weight_decay = 0.1;
    h.clip = 0.5;
    return h;
}

static void check_steps(int which, rt_hyper h)
{
    const rt_model *m = optims[which].model;
    double *arena = m->arena;
    long n = m->n_param_elems;
    ck_assert_int_eq(m->optimizer, optims[which].kind);
    rt_init_params(m, 7);
    rt_random_inputs(m, 7);
    memset(arena + m->state_offset, 0, m->n_state * sizeof *arena);
    double *p = malloc(n * sizeof *p), *s1 = calloc(n, sizeof *s1), *s2 = calloc(n, sizeof *s2);
    memcpy(p, arena + m->params_offset, n * sizeof *p);
    bool clipped = false;
    for (long t = 1; t <= 3; t++) {
        h.step = t;
        m->loss_and_grad();
        const double *g = arena + m->grads_offset;
        double norm = 0;
        for (long i = 0; i < n; i++)
            norm += g[i] * g[i];
        norm = sqrt(norm);
        double scale = h.clip > 0 && norm > h.clip ? h.clip / norm : 1;
        clipped |= scale < 1;
        for (long i = 0; i < n; i++)
            reference_step(optims[which].kind, &h, scale, &p[i], g[i], &s1[i], &s2[i]);
        m->train_step(&h);
        for (long i = 0; i < n; i++) {
            double got = arena[m->params_offset + i];
            ck_assert_msg(fabs(got - p[i]) <= 1e-12 * fmax(1, fabs(p[i])),
                          "%s step %ld element %ld: train_step gives %.17g, by hand %.17g",
                          optims[which].name, t, i, got, p[i]);
        }
    }
    if (h.clip > 0)
        ck_assert_msg(clipped, "%s: the clip never bit; the test would not see it",
                      optims[which].name);
    free(p);
    free(s1);
    free(s2);
}

START_TEST(step_by_hand) { check_steps(_i, plain); }
END_TEST

START_TEST(step_by_hand_with_decay_and_clip) { check_steps(_i, with_decay_and_clip()); }
END_TEST

START_TEST(step_schedule)
{
    rt_schedule s = {.kind = RT_SCHEDULE_STEP, .every = 10, .gamma = 0.5};
    ck_assert_double_eq(rt_lr_at(&s, 0.2, 1, 100), 0.2);
    ck_assert_double_eq(rt_lr_at(&s, 0.2, 10, 100), 0.2);
    ck_assert_double_eq(rt_lr_at(&s, 0.2, 11, 100), 0.1);
    ck_assert_double_eq(rt_lr_at(&s, 0.2, 31, 100), 0.025);
}
END_TEST

START_TEST(cosine_schedule_with_warmup)
{
    rt_schedule s = {.kind = RT_SCHEDULE_COSINE, .min_lr = 0.01};
    ck_assert_double_eq_tol(rt_lr_at(&s, 1.0, 1, 101), 1.0, 1e-15);
    ck_assert_double_eq_tol(rt_lr_at(&s, 1.0, 51, 101), 0.505, 1e-15);
    ck_assert_double_eq_tol(rt_lr_at(&s, 1.0, 101, 101), 0.01, 1e-15);
    s.warmup = 4;
    ck_assert_double_eq_tol(rt_lr_at(&s, 1.0, 1, 101), 0.25, 1e-15);
    ck_assert_double_eq_tol(
        rt_lr_at(&s, 1.0, 4, 101),
        rt_lr_at(&(rt_schedule){.kind = RT_SCHEDULE_COSINE, .min_lr = 0.01}, 1.0, 4, 101), 1e-15);
    rt_schedule c = {0};
    ck_assert_int_eq(rt_schedule_parse(&c, "cosine"), 0);
    ck_assert_int_eq(c.kind, RT_SCHEDULE_COSINE);
    ck_assert_int_eq(rt_schedule_parse(&c, "exponential"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim");
    TCase *steps = tcase_create("steps");
    tcase_add_loop_test(steps, step_by_hand, 0, N_OPTIMS);
    tcase_add_loop_test(steps, step_by_hand_with_decay_and_clip, 0, N_OPTIMS);
    suite_add_tcase(s, steps);
    TCase *schedules = tcase_create("schedules");
    tcase_add_test(schedules, step_schedule);
    tcase_add_test(schedules, cosine_schedule_with_warmup);
    suite_add_tcase(s, schedules);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
