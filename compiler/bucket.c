/*
 * bucket.c: the gradients in the order the backward pass finishes them,
 * in buckets of neighbouring gradients of at most a few MB. An MPI
 * trainer starts summing a bucket over its processes where the generated
 * code says the bucket's last gradient is written (compute_grads calls
 * grads_done(b) there), while the rest of the backward pass runs, and
 * waits for the sums only before the update. A framework learns that
 * order by hooks at run time; here it is read off the schedule.
 *
 * A bucket is one range of the gradient block, so that its sum is one
 * call on memory in place: gradients finished one after the other whose
 * ranges touch, up to the cap (a gradient larger than the cap is a bucket
 * alone).
 */
#include <stdlib.h>
#include "gradc.h"

typedef struct {
    int param, at; /* at: the step of the schedule after which it is final */
    long offset, size;
} Final;

static int by_finish(const void *a, const void *b)
{
    const Final *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->offset > y->offset ? -1 : x->offset < y->offset; /* the block's end first */
}

void plan_buckets(const Graph *g, Plan *p, long cap)
{
    if (g->loss < 0 || g->n_params == 0)
        return;
    int *pos = xmalloc(g->n * sizeof *pos);
    for (int i = 0; i < g->n; i++)
        pos[i] = p->n_order; /* not in the schedule: final at the end */
    for (int s = 0; s < p->n_order; s++)
        pos[p->order[s]] = s;
    Final *fin = xmalloc(g->n_params * sizeof *fin);
    for (int i = 0; i < g->n_params; i++) {
        int w = g->params[i].node;
        /* A gradient copied into place is final after the copies, at the
         * end; a shared loop's member is written with the loop, at or
         * before its own step. */
        fin[i] = (Final){i, p->grad_copy[i] ? p->n_order : pos[g->params[i].grad],
                         p->offset[w] - p->params_offset, shape_size(g->nodes[w].shape)};
    }
    qsort(fin, g->n_params, sizeof *fin, by_finish);
    p->buckets = xmalloc(g->n_params * sizeof *p->buckets);
    p->bucket_params = xmalloc(g->n_params * sizeof *p->bucket_params);
    for (int k = 0; k < g->n_params; k++) {
        Bucket *b = p->n_buckets ? &p->buckets[p->n_buckets - 1] : NULL;
        const Final *f = &fin[k];
        bool touches = b && (f->offset + f->size == b->offset || f->offset == b->offset + b->count);
        if (!touches || b->count + f->size > cap) {
            b = &p->buckets[p->n_buckets++];
            *b = (Bucket){.offset = f->offset, .first = k};
        }
        if (f->offset < b->offset)
            b->offset = f->offset;
        b->count += f->size;
        b->at = f->at;
        b->n++;
        p->bucket_params[k] = f->param;
    }
    free(fin);
    free(pos);
}
