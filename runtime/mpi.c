/*
 * mpi.c: the trainer over MPI's processes, the one file built with Open
 * MPI's headers (libgradc_mpi.a; gradc build --mpi links it).
 *
 * Every call is a collective on MPI_COMM_WORLD. MPI counts in int, so
 * the large ones go in parts of at most 2^30 elements. A sum of two
 * values is the same whichever process adds them, and Open MPI's
 * allreduce gives every process one result, so the parameters stay the
 * same bits everywhere.
 */
#include <mpi.h>
#include "train.h"

enum { PART = 1 << 30 };

static void sum(double *v, int n)
{
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static void sum_reals(void *v, long n, int dbl)
{
    size_t width = dbl ? sizeof(double) : sizeof(float);
    for (long i = 0; i < n; i += PART) {
        int count = n - i < PART ? (int)(n - i) : PART;
        MPI_Allreduce(MPI_IN_PLACE, (char *)v + (size_t)i * width, count,
                      dbl ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

static void share(void *v, long bytes)
{
    for (long i = 0; i < bytes; i += PART) {
        int count = bytes - i < PART ? (int)(bytes - i) : PART;
        MPI_Bcast((char *)v + i, count, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
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
    MPI_Init(&argc, &argv);
    rt_comm comm = {.sum = sum, .sum_reals = sum_reals, .share = share, .same = same};
    MPI_Comm_rank(MPI_COMM_WORLD, &comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm.size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &comm.local);
    MPI_Comm_free(&node);
    int rc = rt_train_run(m, argc, argv, &comm);
    MPI_Finalize();
    return rc;
}
