/*
 * schedule.c: the learning rate at each step.
 *
 * A schedule scales the base rate: `step` multiplies it by gamma every
 * `every` steps, `cosine` anneals it from the base to min_lr over the
 * run; a linear warm-up, when asked for, ramps it up over the first
 * `warmup` steps on top of either.
 */
#include <math.h>
#include <string.h>
#include "rt.h"

int rt_schedule_parse(rt_schedule *s, const char *name)
{
    if (!strcmp(name, "constant"))
        s->kind = RT_SCHEDULE_CONSTANT;
    else if (!strcmp(name, "step"))
        s->kind = RT_SCHEDULE_STEP;
    else if (!strcmp(name, "cosine"))
        s->kind = RT_SCHEDULE_COSINE;
    else
        return -1;
    return 0;
}

double rt_lr_at(const rt_schedule *s, double base, long step, long total)
{
    double lr = base;
    if (s->kind == RT_SCHEDULE_STEP && s->every > 0)
        lr = base * pow(s->gamma, (double)((step - 1) / s->every));
    else if (s->kind == RT_SCHEDULE_COSINE && total > 1) {
        const double pi = 3.14159265358979323846;
        double done = (double)(step - 1) / (double)(total - 1);
        lr = s->min_lr + (base - s->min_lr) * 0.5 * (1 + cos(pi * done));
    }
    if (s->warmup > 0 && step <= s->warmup)
        lr *= (double)step / (double)s->warmup;
    return lr;
}
