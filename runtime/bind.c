/*
 * bind.c: `--data NAME=FILE`, binding data files to inputs by name.
 *
 * A file is .npy, CSV (.csv, .csv.gz) or IDX (.idx, -ubyte, gzip or not).
 * A CSV's label column (--label-column, the last by default) feeds an
 * int32 input and its other columns a float input. For an input of shape
 * [batch, rest...] the file must hold M >= batch rows of as many values
 * as `rest` holds (an IDX [M,28,28] feeds an input [batch,784]). Its values are converted once, at
 * bind time, into the dtype the input has in memory, and only if every value survives the trip
 * exactly: a float64 file of exact floats feeds a float32 model, 2.0 feeds
 * an int32 input, 0.1 or 2.5 is an error naming the element. After that a
 * step is a memcpy of one batch of rows per input: minibatch (s-1) mod
 * floor(M / batch), in file order, the last partial batch dropped.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"
#include "rt_read.h"

static int width_of(rt_dtype d) { return d == RT_F64 ? 8 : 4; }

static double value_at(const rt_array *a, long i)
{
    switch (a->dtype) {
    case RT_F32:
        return ((const float *)a->data)[i];
    case RT_F64:
        return ((const double *)a->data)[i];
    case RT_I32:
        return ((const int32_t *)a->data)[i];
    }
    rt_die("array with bad dtype %d", (int)a->dtype);
}

/* Every source value is exact as a double, so "exact" is decided there,
 * before a cast that would be undefined out of range. NaN stays NaN. */
static int converts_exactly(double v, rt_dtype to)
{
    switch (to) {
    case RT_F64:
        return 1;
    case RT_F32:
        if (isnan(v) || isinf(v))
            return 1;
        return fabs(v) <= FLT_MAX && (double)(float)v == v;
    case RT_I32:
        return v == floor(v) && v >= INT32_MIN && v <= INT32_MAX;
    }
    return 0;
}

static void store(rt_array *a, long i, double v)
{
    switch (a->dtype) {
    case RT_F32:
        ((float *)a->data)[i] = (float)v;
        return;
    case RT_F64:
        ((double *)a->data)[i] = v;
        return;
    case RT_I32:
        ((int32_t *)a->data)[i] = (int32_t)v;
        return;
    }
}

static int convert(const char *path, const rt_array *in, rt_dtype to, rt_array *out, char *err,
                   size_t errlen)
{
    *out = *in;
    out->dtype = to;
    out->data = rt_malloc((size_t)in->size * (size_t)width_of(to));
    for (long i = 0; i < in->size; i++) {
        double v = value_at(in, i);
        if (!converts_exactly(v, to)) {
            rt_array_free(out);
            return rt_errf(err, errlen,
                           "%s: element %ld (%.17g) does not convert "
                           "exactly to %s",
                           path, i, v, rt_dtype_name(to));
        }
        store(out, i, v);
    }
    return 0;
}

static int check_labels(const char *path, const rt_tensor *t, const rt_array *a, char *err,
                        size_t errlen)
{
    const int32_t *v = a->data;
    if (t->classes <= 0)
        return 0;
    for (long i = 0; i < a->size; i++)
        if (v[i] < 0 || v[i] >= t->classes)
            return rt_errf(err, errlen,
                           "%s: element %ld is %d, outside [0, %d) "
                           "(the classes of input '%s')",
                           path, i, (int)v[i], t->classes, t->name);
    return 0;
}

static long row_size(int rank, const long *shape)
{
    long n = 1;
    for (int i = 1; i < rank; i++)
        n *= shape[i];
    return n;
}

/* Rows of the input's size; the array then takes the input's row shape. */
static int shape_fits(const rt_tensor *t, rt_array *a, long min_rows)
{
    long tshape[RT_MAX_RANK];
    rt_tensor_shape(t, tshape);
    if (t->rank < 1 || a->rank < 1 || a->shape[0] < min_rows ||
        row_size(a->rank, a->shape) != row_size(t->rank, tshape))
        return 0;
    a->rank = t->rank;
    for (int i = 1; i < t->rank; i++)
        a->shape[i] = tshape[i];
    return 1;
}

static int shape_error(const char *path, long min_rows, const rt_tensor *t, const rt_array *a,
                       const rt_model *m, char *err, size_t errlen)
{
    char want[160], got[160];
    long tshape[RT_MAX_RANK];
    rt_tensor_shape(t, tshape);
    rt_format_shape(want, sizeof want, t->rank, tshape, 1);
    rt_format_shape(got, sizeof got, a->rank, a->shape, 0);
    char rows[64] = "";
    if (a->rank >= 1 && a->shape[0] < min_rows)
        snprintf(rows, sizeof rows, " with at least %ld rows (the batch)", min_rows);
    return rt_errf(err, errlen, "%s: expected %s %s%s, got %s %s", path, want,
                   rt_dtype_name(rt_storage_dtype(m, t)), rows, got, rt_dtype_name(a->dtype));
}

static int no_such_input(const rt_model *m, const char *name, char *err, size_t errlen)
{
    char names[512] = "";
    size_t used = 0;
    for (int k = 0; k < m->n_inputs && used < sizeof names; k++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "",
                                 m->inputs[k].name);
    return rt_errf(err, errlen, "--data: the model has no input '%s' (inputs: %s)", name, names);
}

static const rt_tensor *find_input(const rt_model *m, const char *name)
{
    for (int k = 0; k < m->n_inputs; k++)
        if (strcmp(m->inputs[k].name, name) == 0)
            return &m->inputs[k];
    return NULL;
}

static const rt_binding *find_binding(const rt_data *d, const rt_tensor *t)
{
    for (int k = 0; k < d->n; k++)
        if (d->b[k].input == t)
            return &d->b[k];
    return NULL;
}

void rt_data_init(rt_data *d)
{
    memset(d, 0, sizeof *d);
    d->label_column = -1;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A CSV's columns for input t: the label column for an int32 input, the
 * others for a float one. */
static int read_csv(const char *path, const rt_tensor *t, long label_column, rt_array *out,
                    char *err, size_t errlen)
{
    rt_csv c;
    if (rt_csv_read(path, &c, err, errlen))
        return -1;
    long label = label_column < 0 ? c.cols + label_column : label_column - 1;
    int rc;
    if (label < 0 || label >= c.cols)
        rc = rt_errf(err, errlen, "%s: --label-column %ld, but the table has %ld columns", path,
                     label_column, c.cols);
    else if (t->dtype == RT_I32)
        rc = rt_csv_columns(&c, path, label, 1, RT_I32, out, err, errlen);
    else if (c.cols == 1)
        rc = rt_errf(err, errlen, "%s: one column, and it is the label column", path);
    else if (label == 0 || label == c.cols - 1)
        rc = rt_csv_columns(&c, path, label == 0, c.cols - 1, RT_F64, out, err, errlen);
    else
        rc = rt_errf(err, errlen, "%s: the label column must be the first or the last", path);
    rt_csv_free(&c);
    return rc;
}

static int read_any(const char *path, const rt_tensor *t, long label_column, rt_array *out,
                    char *err, size_t errlen)
{
    if (has_suffix(path, ".npy"))
        return rt_npy_read(path, out, err, errlen);
    if (has_suffix(path, ".csv") || has_suffix(path, ".csv.gz"))
        return read_csv(path, t, label_column, out, err, errlen);
    if (strstr(path, ".idx") || strstr(path, "-ubyte"))
        return rt_idx_read(path, out, err, errlen);
    return rt_errf(err, errlen,
                   "%s: not a data file gradc reads (.npy, .csv, .csv.gz, .idx, "
                   "-ubyte, gzip or not)",
                   path);
}

int rt_input_load(const rt_model *m, const rt_tensor *t, const char *path, long label_column,
                  long min_rows, rt_array *out, char *err, size_t errlen)
{
    rt_array raw;
    if (read_any(path, t, label_column, &raw, err, errlen))
        return -1;
    int rc =
        shape_fits(t, &raw, min_rows) ? 0 : shape_error(path, min_rows, t, &raw, m, err, errlen);
    if (rc == 0)
        rc = convert(path, &raw, rt_storage_dtype(m, t), out, err, errlen);
    rt_array_free(&raw);
    if (rc == 0 && (rc = check_labels(path, t, out, err, errlen)) != 0)
        rt_array_free(out);
    return rc;
}

int rt_data_bind(rt_data *d, const rt_model *m, const char *name, const char *path, char *err,
                 size_t errlen)
{
    const rt_tensor *t = find_input(m, name);
    rt_array a;
    if (!t)
        return no_such_input(m, name, err, errlen);
    if (find_binding(d, t))
        return rt_errf(err, errlen, "--data: input '%s' is given twice", name);
    if (rt_input_load(m, t, path, d->label_column, m->batch, &a, err, errlen))
        return -1;
    rt_binding *b = rt_malloc(sizeof *b * (size_t)(d->n + 1));
    if (d->n)
        memcpy(b, d->b, sizeof *b * (size_t)d->n);
    free(d->b);
    d->b = b;
    d->b[d->n++] = (rt_binding){t, path, a};
    return 0;
}

/* All or nothing, and one row count for every file. */
int rt_data_finish(rt_data *d, const rt_model *m, char *err, size_t errlen)
{
    if (d->n == 0)
        return 0;
    for (int k = 0; k < m->n_inputs; k++)
        if (!find_binding(d, &m->inputs[k]))
            return rt_errf(err, errlen,
                           "--data: input '%s' has no file; bind every "
                           "input, or none to train on random data",
                           m->inputs[k].name);
    d->rows = d->b[0].arr.shape[0];
    for (int k = 1; k < d->n; k++)
        if (d->b[k].arr.shape[0] != d->rows)
            return rt_errf(err, errlen,
                           "%s: has %ld rows but %s has %ld; every --data "
                           "file needs the same number of rows",
                           d->b[k].path, d->b[k].arr.shape[0], d->b[0].path, d->rows);
    d->nbatches = d->rows / m->batch;
    return 0;
}

void rt_data_load(const rt_data *d, const rt_model *m, long step)
{
    long batch = (step - 1) % d->nbatches;
    for (int k = 0; k < d->n; k++) {
        const rt_binding *b = &d->b[k];
        const rt_tensor *t = b->input;
        size_t w = (size_t)width_of(b->arr.dtype);
        size_t bytes = (size_t)t->size * w;
        char *dst = b->arr.dtype == RT_I32 ? (char *)(m->iarena + t->offset)
                                           : (char *)m->arena + (size_t)t->offset * w;
        memcpy(dst, (const char *)b->arr.data + (size_t)batch * bytes, bytes);
    }
}

void rt_data_free(rt_data *d)
{
    for (int k = 0; k < d->n; k++)
        rt_array_free(&d->b[k].arr);
    free(d->b);
    rt_data_init(d);
}
