/*
 * mpi.c: the trainer over MPI's processes, the one file built with Open
 * MPI's headers (libgradc_mpi.a; gradc build --mpi links it).
 *
 * Every call is a collective on MPI_COMM_WORLD, made by every process in
 * the same order. The gradients are summed in the compiler's buckets
 * (bucket.c): the generated backward pass calls grads_done(b) where
 * bucket b's last gradient is written, and its sum starts there, an
 * MPI_Iallreduce in place, while the backward pass goes on; each call
 * also lets the sums already started progress (Open MPI moves them only
 * inside its calls). The trainer waits for them all only before the
 * update. A sum of two values is the same whichever process adds them,
 * and Open MPI's allreduce gives every process one result, so the
 * parameters stay the same bits everywhere. MPI counts in int, so a
 * large range goes in parts of at most 2^30 values.
 */
#include <mpi.h>
#include <string.h>
#include <stdlib.h>
#include "train.h"

enum { PART = 1 << 30 };

/* The sums of one step's buckets: bucket b's parts are requests
 * first[b] .. first[b + 1] - 1. */
static struct {
    const rt_model *m;
    void *grads;
    MPI_Datatype type;
    size_t width;
    int n_req, *first;
    MPI_Request *req;
    char *started;
} step;

static void sum(double *v, int n)
{
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static void start_bucket(int b)
{
    const rt_bucket *k = &step.m->buckets[b];
    char *at = (char *)step.grads + (size_t)k->offset * step.width;
    for (long i = 0, r = step.first[b]; i < k->count; i += PART, r++)
        MPI_Iallreduce(MPI_IN_PLACE, at + (size_t)i * step.width,
                       k->count - i < PART ? (int)(k->count - i) : PART, step.type, MPI_SUM,
                       MPI_COMM_WORLD, &step.req[r]);
    step.started[b] = 1;
}

/* What the generated backward pass calls as bucket b is final. */
static void bucket_done(int b)
{
    int done;
    start_bucket(b);
    MPI_Testall(step.first[b + 1], step.req, &done, MPI_STATUSES_IGNORE);
}

/* The buckets' parts, counted once per model. */
static void prepare(const rt_model *m)
{
    if (step.m == m)
        return;
    step.m = m;
    step.width = m->real == RT_F64 ? sizeof(double) : sizeof(float);
    step.type = m->real == RT_F64 ? MPI_DOUBLE : MPI_FLOAT;
    step.grads = (char *)m->arena + (size_t)m->grads_offset * step.width;
    free(step.first);
    free(step.req);
    free(step.started);
    step.first = rt_malloc(sizeof *step.first * (size_t)(m->n_buckets + 1));
    step.first[0] = 0;
    for (int b = 0; b < m->n_buckets; b++)
        step.first[b + 1] = step.first[b] + (int)((m->buckets[b].count + PART - 1) / PART);
    step.n_req = step.first[m->n_buckets];
    step.req = rt_malloc(sizeof *step.req * (size_t)(step.n_req + 1));
    step.started = rt_malloc((size_t)m->n_buckets + 1);
}

static void start_grads(const rt_model *m)
{
    if (!m->n_buckets)
        return;
    prepare(m);
    memset(step.started, 0, (size_t)m->n_buckets);
    *m->grads_done = bucket_done;
}

static double finish_grads(const rt_model *m)
{
    double t0 = rt_now_ms();
    if (!m->n_buckets) { /* a model without buckets: the block at once */
        size_t width = m->real == RT_F64 ? sizeof(double) : sizeof(float);
        char *g = (char *)m->arena + (size_t)m->grads_offset * width;
        for (long i = 0; i < m->n_param_elems; i += PART)
            MPI_Allreduce(MPI_IN_PLACE, g + (size_t)i * width,
                          m->n_param_elems - i < PART ? (int)(m->n_param_elems - i) : PART,
                          m->real == RT_F64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        return rt_now_ms() - t0;
    }
    for (int b = 0; b < m->n_buckets; b++)
        if (!step.started[b]) /* in bucket order, on every process alike */
            start_bucket(b);
    MPI_Waitall(step.n_req, step.req, MPI_STATUSES_IGNORE);
    *m->grads_done = NULL;
    return rt_now_ms() - t0;
}

static void share(void *v, long bytes)
{
    for (long i = 0; i < bytes; i += PART)
        MPI_Bcast((char *)v + i, bytes - i < PART ? (int)(bytes - i) : PART, MPI_BYTE, 0,
                  MPI_COMM_WORLD);
}

static int same(uint64_t v)
{
    uint64_t lo = v, hi = v;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

int rt_train_main_mpi(const rt_model *m, int argc, char **argv)
{
    int level;
    /* Only the main thread calls MPI; OpenMP's threads compute. */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &level);
    rt_comm comm = {.sum = sum,
                    .start_grads = start_grads,
                    .finish_grads = finish_grads,
                    .share = share,
                    .same = same};
    MPI_Comm_rank(MPI_COMM_WORLD, &comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm.size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &comm.local);
    MPI_Comm_free(&node);
    int rc = rt_train_run(m, argc, argv, &comm);
    free(step.first);
    free(step.req);
    free(step.started);
    MPI_Finalize();
    return rc;
}
