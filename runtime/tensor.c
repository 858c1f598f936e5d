/*
 * tensor.c: reading and writing model memory, and filling it with
 * initial parameters and random inputs.
 *
 * A tensor is an offset into one of the model's two arenas: int32 tensors
 * in iarena, everything else in arena, whose element type (float or
 * double) is the model's `real`. rt_get/rt_set hide that split behind
 * doubles, which hold every float and int32 value exactly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "rt_internal.h"

static double gib(double bytes) { return bytes / (1 << 30); }

void *rt_arena_alloc(const char *model, long n, size_t width)
{
    double bytes = (double)n * (double)width;
    double machine = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    /* More than the machine has would be granted (overcommitted) and then
     * killed mid-step; say it now instead. */
    char *p = machine > 0 && bytes > machine ? NULL : calloc((size_t)n * width + 64, 1);
    if (!p) {
        fprintf(stderr,
                "%s: its tensors take %.1f GiB (%ld values of %zu bytes), more than this "
                "machine %s (%.1f GiB)\n",
                model, gib(bytes), n, width, bytes > machine ? "has" : "could give", gib(machine));
        exit(1);
    }
    return p + (64 - (uintptr_t)p % 64) % 64; /* on a cache line, as a static arena */
}

double rt_get(const rt_model *m, const rt_tensor *t, long i)
{
    switch (rt_storage_dtype(m, t)) {
    case RT_I32:
        return m->iarena[t->offset + i];
    case RT_F32:
        return ((const float *)m->arena)[t->offset + i];
    case RT_F64:
        return ((const double *)m->arena)[t->offset + i];
    }
    rt_die("tensor %s: bad dtype %d", t->name, (int)t->dtype);
}

void rt_set(const rt_model *m, const rt_tensor *t, long i, double v)
{
    switch (rt_storage_dtype(m, t)) {
    case RT_I32:
        m->iarena[t->offset + i] = (int32_t)v;
        return;
    case RT_F32:
        ((float *)m->arena)[t->offset + i] = (float)v;
        return;
    case RT_F64:
        ((double *)m->arena)[t->offset + i] = v;
        return;
    }
    rt_die("tensor %s: bad dtype %d", t->name, (int)t->dtype);
}

static double draw_init(const rt_tensor *t, rt_rng *r)
{
    switch (t->init) {
    case RT_INIT_NORMAL:
        return t->init_a + t->init_b * rt_rng_normal(r);
    case RT_INIT_UNIFORM:
        return t->init_a + (t->init_b - t->init_a) * rt_rng_uniform(r);
    case RT_INIT_CONST:
        return t->init_a;
    case RT_INIT_NONE:
        return 0.0;
    }
    rt_die("parameter %s: bad initializer %d", t->name, (int)t->init);
}

void rt_init_params(const rt_model *m, uint64_t seed)
{
    for (int k = 0; k < m->n_params + m->n_buffers; k++) {
        const rt_tensor *t = k < m->n_params ? &m->params[k] : &m->buffers[k - m->n_params];
        rt_rng r;
        rt_rng_stream(&r, seed, RT_STREAM_PARAM, (uint64_t)k);
        for (long i = 0; i < t->size; i++)
            rt_set(m, t, i, draw_init(t, &r));
    }
}

void rt_random_inputs(const rt_model *m, uint64_t seed)
{
    for (int k = 0; k < m->n_inputs; k++) {
        const rt_tensor *t = &m->inputs[k];
        long classes = t->classes > 0 ? t->classes : 2;
        rt_rng r;
        rt_rng_stream(&r, seed, RT_STREAM_INPUT, (uint64_t)k);
        for (long i = 0; i < t->size; i++) {
            double v = t->dtype == RT_I32 ? (double)rt_rng_below(&r, classes) : rt_rng_normal(&r);
            rt_set(m, t, i, v);
        }
    }
}
