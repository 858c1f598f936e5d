/*
 * optim.c: the optimizers, each defined here once: its name in the model
 * language and on the command line, the settings it takes and their
 * defaults, how many copies of the parameters its state needs, and the
 * flat loop that applies it.
 *
 * The kind is compiled in; every setting is a runtime value read from
 * rt_hyper, so the defaults here only seed the descriptor. The update
 * runs over the parameter block and its gradient mirror in one loop, with
 * the gradient first clipped (by global norm) and, except for AdamW,
 * given its L2 weight decay.
 */
#include <string.h>
#include "gradc.h"

const OptimInfo optim_info[N_OPTIMS] = {
    [OPT_SGD] = {"sgd", "RT_OPT_SGD", 0, "", {.lr = 0.01}},
    [OPT_MOMENTUM] = {"momentum", "RT_OPT_MOMENTUM", 1, "momentum", {.lr = 0.01, .momentum = 0.9}},
    [OPT_NESTEROV] = {"nesterov", "RT_OPT_NESTEROV", 1, "momentum", {.lr = 0.01, .momentum = 0.9}},
    [OPT_ADAM] = {"adam",
                  "RT_OPT_ADAM",
                  2,
                  "beta1 beta2 eps",
                  {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}},
    [OPT_ADAMW] = {"adamw",
                   "RT_OPT_ADAMW",
                   2,
                   "beta1 beta2 eps",
                   {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01}},
    [OPT_RMSPROP] =
        {"rmsprop", "RT_OPT_RMSPROP", 1, "alpha eps", {.lr = 1e-2, .alpha = 0.99, .eps = 1e-8}},
    /* Its state is the conjugate gradients' four vectors (the step, the
     * residual, the search direction and H times it), kept between steps
     * only because the state is where a model's scratch of that size is. */
    [OPT_NEWTON_CG] = {"newton_cg",
                       "RT_OPT_NEWTON_CG",
                       4,
                       "damping cg_iters",
                       {.lr = 1, .damping = 1e-4, .cg_iters = 10}},
};

int optim_find(const char *name)
{
    for (int k = 0; k < N_OPTIMS; k++)
        if (!strcmp(optim_info[k].name, name))
            return k;
    return -1;
}

/* The setting called `name` in o, or NULL if no optimizer has one. */
double *optim_setting(Optimizer *o, const char *name)
{
    static const char *const names[] = {"lr",  "momentum",     "beta1", "beta2",   "alpha",
                                        "eps", "weight_decay", "clip",  "damping", "cg_iters"};
    double *fields[] = {&o->lr,  &o->momentum,     &o->beta1, &o->beta2,   &o->alpha,
                        &o->eps, &o->weight_decay, &o->clip,  &o->damping, &o->cg_iters};
    for (int i = 0; i < 10; i++)
        if (!strcmp(names[i], name))
            return fields[i];
    return NULL;
}

/* Whether kind k reads the setting: its own, and what every kind reads. */
bool optim_takes(int k, const char *name)
{
    if (!strcmp(name, "lr") || !strcmp(name, "weight_decay") || !strcmp(name, "clip"))
        return true;
    const char *s = strstr(optim_info[k].settings, name);
    size_t n = strlen(name);
    return s && (s[n] == ' ' || s[n] == 0) && (s == optim_info[k].settings || s[-1] == ' ');
}

void optim_emit_update(Buf *b, const Optimizer *o, const char *model, long params, long grads,
                       long state, long n, const char *after)
{
    static const char *const title[N_OPTIMS] = {
        "SGD", "SGD with momentum", "SGD with Nesterov momentum", "Adam", "AdamW", "RMSprop"};
    if (o->kind == OPT_NEWTON_CG) {
        buf_printf(b,
                   "\n/* One step of Newton's method from the gradients in place: the\n"
                   " * runtime solves (H + (weight_decay + damping) I) s = -g by conjugate\n"
                   " * gradients, H v from the Hessian-vector product twin, and steps\n"
                   " * lr s. */\n"
                   "static void update(const rt_hyper *hyper)\n{\n"
                   "    rt_newton_cg_step(&REAL_SUFFIX(%s_model), hyper);\n%s}\n",
                   model, after);
        return;
    }
    buf_printf(b,
               "\n/* One step of %s from the gradients in place, over the flat\n"
               " * parameter block, after clipping them to a global norm of\n"
               " * hyper->clip (when that is > 0). */\n"
               "RT_VECTOR_CLONES\nstatic void update(const rt_hyper *hyper)\n{\n"
               "    real *const params = arena + %ld;\n"
               "    const real *const grads = arena + %ld;\n",
               title[o->kind], params, grads);
    if (optim_info[o->kind].state_slots >= 1)
        buf_printf(b, "    real *const avg = arena + %ld;\n", state);
    if (optim_info[o->kind].state_slots >= 2)
        buf_printf(b, "    real *const avg_sq = arena + %ld;\n", state + n);
    long whole = n / PARTIAL_SUMS * PARTIAL_SUMS;
    const char *count = count_type(n);
    buf_printf(
        b,
        "    const real pre = hyper->grad_scale > 0 ? (real)hyper->grad_scale : REAL_C(1.0);\n"
        "    real scale = pre;\n"
        "    if (hyper->clip > 0) {\n"
        "        double part[%d] = {0.0};\n"
        "        for (%s i = 0; i < %ld; i += %d)\n"
        "            for (int j = 0; j < %d; j++)\n"
        "                part[j] += (double)grads[i + j] * grads[i + j];\n"
        "        double norm2 = 0.0;\n",
        PARTIAL_SUMS, count, whole, PARTIAL_SUMS, PARTIAL_SUMS);
    if (whole < n)
        buf_printf(b,
                   "        for (%s i = %ld; i < %ld; i++)\n"
                   "            norm2 += (double)grads[i] * grads[i];\n",
                   count, whole, n);
    buf_printf(b,
               "        for (int j = 0; j < %d; j++)\n"
               "            norm2 += part[j];\n"
               "        if (pre * sqrt(norm2) > hyper->clip)\n"
               "            scale = (real)(hyper->clip / sqrt(norm2));\n"
               "    }\n"
               "    const real lr = (real)hyper->lr, wd = (real)hyper->weight_decay;\n",
               PARTIAL_SUMS);
    switch (o->kind) {
    case OPT_SGD:
        buf_printf(b,
                   "    for (%s i = 0; i < %ld; i++)\n"
                   "        params[i] -= lr * (scale * grads[i] + wd * params[i]);\n",
                   count, n);
        break;
    case OPT_MOMENTUM:
    case OPT_NESTEROV:
        buf_printf(b,
                   "    const real mu = (real)hyper->momentum;\n"
                   "    for (%s i = 0; i < %ld; i++) {\n"
                   "        const real g = scale * grads[i] + wd * params[i];\n"
                   "        avg[i] = mu * avg[i] + g;\n"
                   "        params[i] -= lr * %s;\n"
                   "    }\n",
                   count, n, o->kind == OPT_NESTEROV ? "(g + mu * avg[i])" : "avg[i]");
        break;
    case OPT_ADAM:
    case OPT_ADAMW:
        buf_printf(
            b,
            "    const real b1 = (real)hyper->beta1, b2 = (real)hyper->beta2;\n"
            "    const real eps = (real)hyper->eps;\n"
            "    /* bias corrections for averages that start at zero, as factors:\n"
            "     * divides and square roots are the slow part of the loop */\n"
            "    const real c1 = (real)(1 / (1 - pow(hyper->beta1, (double)hyper->step)));\n"
            "    const real c2 = (real)(1 / sqrt(1 - pow(hyper->beta2, (double)hyper->step)));\n"
            "    for (%s i = 0; i < %ld; i++) {\n",
            count, n);
        if (o->kind == OPT_ADAMW)
            buf_printf(b, "        const real g = scale * grads[i];\n"
                          "        params[i] -= lr * wd * params[i];\n");
        else
            buf_printf(b, "        const real g = scale * grads[i] + wd * params[i];\n");
        buf_printf(b, "        avg[i] = b1 * avg[i] + (1 - b1) * g;\n"
                      "        avg_sq[i] = b2 * avg_sq[i] + (1 - b2) * g * g;\n"
                      "        params[i] -= lr * c1 * avg[i] / (r_sqrt(avg_sq[i]) * c2 + eps);\n"
                      "    }\n");
        break;
    case OPT_RMSPROP:
        buf_printf(b,
                   "    const real alpha = (real)hyper->alpha, eps = (real)hyper->eps;\n"
                   "    for (%s i = 0; i < %ld; i++) {\n"
                   "        const real g = scale * grads[i] + wd * params[i];\n"
                   "        avg[i] = alpha * avg[i] + (1 - alpha) * g * g;\n"
                   "        params[i] -= lr * g / (r_sqrt(avg[i]) + eps);\n"
                   "    }\n",
                   count, n);
        break;
    }
    buf_printf(b, "%s}\n", after);
}

void optim_emit_hyper(Buf *b, const Optimizer *o)
{
    static const char *const names[] = {"lr",  "momentum",     "beta1", "beta2",   "alpha",
                                        "eps", "weight_decay", "clip",  "damping", "cg_iters"};
    Optimizer copy = *o;
    buf_printf(b, "    .optimizer = %s,\n    .hyper = {", optim_info[o->kind].enum_name);
    const char *sep = "";
    for (int i = 0; i < 10; i++) {
        double v = *optim_setting(&copy, names[i]);
        if (v == 0)
            continue;
        char num[40];
        fmt_real(num, v);
        buf_printf(b, "%s.%s = %s", sep, names[i], num);
        sep = ", ";
    }
    buf_printf(b, "},\n");
}
