/*
 * optim_reference.h: every optimizer's update written out plainly, as a
 * textbook gives it, for the tests to hold the generated train_step to.
 * It shares no code with the compiler's emitter (compiler/optim.c).
 */
#ifndef OPTIM_REFERENCE_H
#define OPTIM_REFERENCE_H

#include <math.h>
#include "rt_model.h"

/* The textbook update of one parameter element. */
static inline void reference_step(rt_optimizer kind, const rt_hyper *h, double scale, double *p, double grad,
                      double *s1, double *s2)
{
    double g = scale * grad + (kind == RT_OPT_ADAMW ? 0 : h->weight_decay * *p);
    switch (kind) {
    case RT_OPT_SGD:
        *p -= h->lr * g;
        break;
    case RT_OPT_MOMENTUM:
        *s1 = h->momentum * *s1 + g;
        *p -= h->lr * *s1;
        break;
    case RT_OPT_NESTEROV:
        *s1 = h->momentum * *s1 + g;
        *p -= h->lr * (g + h->momentum * *s1);
        break;
    case RT_OPT_ADAM:
    case RT_OPT_ADAMW:
        if (kind == RT_OPT_ADAMW)
            *p *= 1 - h->lr * h->weight_decay;
        *s1 = h->beta1 * *s1 + (1 - h->beta1) * g;
        *s2 = h->beta2 * *s2 + (1 - h->beta2) * g * g;
        *p -= h->lr * (*s1 / (1 - pow(h->beta1, h->step))) /
              (sqrt(*s2 / (1 - pow(h->beta2, h->step))) + h->eps);
        break;
    case RT_OPT_RMSPROP:
        *s1 = h->alpha * *s1 + (1 - h->alpha) * g * g;
        *p -= h->lr * g / (sqrt(*s1) + h->eps);
        break;
    case RT_OPT_NEWTON_CG: /* not one element's: the models suite solves it whole */
        *p = NAN;
        break;
    }
}

#endif
