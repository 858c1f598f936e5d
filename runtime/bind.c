/*
 * bind.c: `--data NAME=FILE` and `--val NAME=FILE`, binding data files to
 * inputs by name, and cutting them into minibatches.
 *
 * A file is .npy, CSV (.csv, .csv.gz), IDX (.idx, -ubyte, gzip or not),
 * plain text (.txt, for character models) or an llm.c token file (.bin,
 * for token models); see read_sequence for the last two.
 * A CSV's label column (--label-column, the last by default) feeds an
 * int32 input and its other columns a float input; with --label-column
 * none, every column is a feature. --skip-rows N passes over its first N
 * lines. For an input of shape
 * [batch, rest...] the file must hold M >= batch rows of as many values
 * as `rest` holds (an IDX [M,28,28] feeds an input [batch,784]); a
 * held-out (--val) file may hold fewer rows than the batch. Its values are
 * converted once, at bind time, into the dtype the input has in memory,
 * and only if every value survives the trip exactly: a float64 file of
 * exact floats feeds a float32 model, 2.0 feeds an int32 input, 0.1 or 2.5
 * is an error naming the element. So is a NaN or an infinity: no step
 * could learn from one, and the run would only stop at the first loss it
 * turned to NaN, far from the file to blame.
 *
 * The minibatch rule: step s belongs to epoch e = (s-1) / nbatches, where
 * nbatches = floor(M / batch), and is that epoch's minibatch
 * j = (s-1) mod nbatches. In file order (no shuffle) minibatch j is rows
 * j*batch... of the file. Shuffled, epoch e first draws a permutation of
 * the M rows from the stream (seed, RT_STREAM_SHUFFLE, e) and minibatch j
 * is entries j*batch... of it. Either way the last M mod batch rows of the
 * epoch's order are dropped; shuffled, they are different rows each epoch,
 * so over the epochs every row is trained on. A batch is a function of
 * (seed, step) alone, which is what lets --resume be exact. On P
 * processes (an MPI trainer) minibatch j is P batches, entries
 * (jP + r) batch... going to process r, so the P processes train on the
 * rows one process with P times the batch would.
 *
 * --val-split F holds out ceil(F M) rows before any shuffling: the last in
 * file order, or with --val-shuffle rows drawn from the stream
 * (seed, RT_STREAM_SPLIT), the same for every epoch and on --resume. Both
 * sets keep their rows in file order.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"
#include "rt_read.h"

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
 * before a cast that would be undefined out of range. NaN stays NaN (and
 * convert refuses it for a float input). */
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
    out->data = rt_malloc((size_t)in->size * rt_dtype_width(to));
    for (long i = 0; i < in->size; i++) {
        double v = value_at(in, i);
        if (!converts_exactly(v, to)) {
            rt_array_free(out);
            return rt_errf(err, errlen,
                           "%s: element %ld (%.17g) does not convert "
                           "exactly to %s",
                           path, i, v, rt_dtype_name(to));
        }
        if (!isfinite(v)) {
            rt_array_free(out);
            return rt_errf(err, errlen, "%s: element %ld is %g; data must be finite", path, i, v);
        }
        store(out, i, v);
    }
    return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* lines: a CSV's line of each element, so the message names it; or NULL. */
static int check_labels(const char *path, const rt_tensor *t, const rt_array *a, const long *lines,
                        char *err, size_t errlen)
{
    const int32_t *v = a->data;
    if (t->classes <= 0)
        return 0;
    for (long i = 0; i < a->size; i++) {
        if (v[i] >= 0 && v[i] < t->classes)
            continue;
        if (lines)
            return rt_errf(err, errlen,
                           "%s:%ld: label %d is outside [0, %d) (the classes of input '%s')", path,
                           lines[i], (int)v[i], t->classes, t->name);
        return rt_errf(err, errlen,
                       "%s: element %ld is %d, outside [0, %d) "
                       "(the classes of input '%s')",
                       path, i, (int)v[i], t->classes, t->name);
    }
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
        snprintf(rows, sizeof rows, " with at least %ld row%s%s", min_rows,
                 min_rows == 1 ? "" : "s", min_rows == m->batch ? " (the batch)" : "");
    return rt_errf(err, errlen, "%s: expected %s %s%s, got %s %s", path, want,
                   rt_dtype_name(rt_storage_dtype(m, t)), rows, got, rt_dtype_name(a->dtype));
}

static int no_such_input(const rt_data *d, const rt_model *m, const char *name, char *err,
                         size_t errlen)
{
    char names[512] = "";
    size_t used = 0;
    for (int k = 0; k < m->n_inputs && used < sizeof names; k++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "",
                                 m->inputs[k].name);
    return rt_errf(err, errlen, "%s: the model has no input '%s' (inputs: %s)", d->flag, name,
                   names);
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
    d->flag = "--data";
    d->csv = RT_CSV_LAYOUT_DEFAULT;
    d->order_epoch = -1;
    d->ranks = 1;
}

/* A CSV's columns for input t: the label column for an int32 input, the
 * others for a float one. */
/* A CSV's numbers are decimal text: read into a float input they take the
 * nearest float, which is the value the text means, not a conversion that
 * loses one (the exact-conversion rule is for typed files). */
static void round_to_float(rt_array *a)
{
    float *f = rt_malloc((size_t)a->size * sizeof *f);
    for (long i = 0; i < a->size; i++)
        f[i] = (float)((double *)a->data)[i];
    free(a->data);
    a->data = f;
    a->dtype = RT_F32;
}

static int read_csv(const char *path, const rt_tensor *t, rt_dtype want, const rt_csv_layout *csv,
                    rt_array *out, char *err, size_t errlen)
{
    rt_csv c;
    long label_column = csv->label_column;
    if (rt_csv_read(path, csv->skip_rows, &c, err, errlen))
        return -1;
    long label = label_column < 0 ? c.cols + label_column : label_column - 1;
    int rc;
    if (label_column == RT_NO_LABEL && t->dtype == RT_I32)
        rc = rt_errf(err, errlen, "%s: --label-column none, but input '%s' takes labels", path,
                     t->name);
    else if (label_column == RT_NO_LABEL) {
        rc = rt_csv_columns(&c, path, 0, c.cols, RT_F64, out, err, errlen);
        if (rc == 0 && want == RT_F32)
            round_to_float(out);
    } else if (label < 0 || label >= c.cols)
        rc = rt_errf(err, errlen, "%s: --label-column %ld, but the table has %ld columns", path,
                     label_column, c.cols);
    else if (t->dtype == RT_I32) {
        /* Checked here too, where the lines are known. */
        rc = rt_csv_columns(&c, path, label, 1, RT_I32, out, err, errlen);
        if (rc == 0 && (rc = check_labels(path, t, out, c.lines, err, errlen)) != 0)
            rt_array_free(out);
    } else if (c.cols == 1)
        rc = rt_errf(err, errlen, "%s: one column, and it is the label column", path);
    else if (label == 0 || label == c.cols - 1) {
        rc = rt_csv_columns(&c, path, label == 0, c.cols - 1, RT_F64, out, err, errlen);
        if (rc == 0 && want == RT_F32)
            round_to_float(out);
    } else
        rc = rt_errf(err, errlen, "%s: the label column must be the first or the last", path);
    rt_csv_free(&c);
    return rc;
}

/* A sequence file: a text (.txt, its bytes) or an llm.c token file (.bin,
 * its tokens), with or without `:next` after the name. */
static int is_sequence(const char *path)
{
    return has_suffix(path, ".txt") || has_suffix(path, ".txt:next") || has_suffix(path, ".bin") ||
           has_suffix(path, ".bin:next");
}

/* Every token of the file, not only those the rows below take, is checked
 * against the input's classes: a token the model has no row for means the
 * file was made for another vocabulary, wherever in it the token lies. Its
 * place is counted in the file, from 0, whichever of x or y:next it feeds. */
static int check_tokens(const char *file, int text, const rt_tensor *t, const rt_array *a,
                        char *err, size_t errlen)
{
    const int32_t *v = a->data;
    for (long i = 0; t->classes > 0 && i < a->size; i++) {
        if (v[i] >= 0 && v[i] < t->classes)
            continue;
        if (text)
            return rt_errf(err, errlen,
                           "%s: byte %ld is %d, outside [0, %d) (the classes of input '%s'): "
                           "text takes 256 classes, one per byte value",
                           file, i, (int)v[i], t->classes, t->name);
        return rt_errf(err, errlen,
                       "%s: token %ld (from 0) is %d, outside [0, %d): the vocabulary of input "
                       "'%s' (its classes) is too small for this file",
                       file, i, (int)v[i], t->classes, t->name);
    }
    return 0;
}

/* A sequence as rows of T consecutive tokens for an int32 input [batch, T]:
 * row r is tokens [rT, rT + T), or with `:next` after the name the tokens
 * one later, [rT + 1, rT + T + 1): a character or token model's targets.
 * Either way there are floor((tokens - 1) / T) rows, so inputs and targets
 * line up. A text's tokens are its bytes. */
static int read_sequence(const char *path, const rt_tensor *t, rt_array *out, char *err,
                         size_t errlen)
{
    int next = has_suffix(path, ":next");
    int text = has_suffix(path, ".txt") || has_suffix(path, ".txt:next");
    char file[4096];
    snprintf(file, sizeof file, "%.*s", (int)(strlen(path) - (next ? 5 : 0)), path);
    if (t->dtype != RT_I32)
        return rt_errf(err, errlen, "%s: a %s feeds int32 inputs (%s), not '%s'", path,
                       text ? "text" : "token file", text ? "characters" : "token ids", t->name);
    rt_array tokens;
    if ((text ? rt_text_read : rt_tokens_read)(file, &tokens, err, errlen))
        return -1;
    if (check_tokens(file, text, t, &tokens, err, errlen)) {
        rt_array_free(&tokens);
        return -1;
    }
    long width = t->rank > 1 ? t->size / t->shape[0] : 1;
    long rows = (tokens.size - 1) / width;
    *out = (rt_array){.dtype = RT_I32, .rank = 2, .shape = {rows, width}, .size = rows * width};
    out->data = rt_malloc((size_t)(out->size > 0 ? out->size : 1) * sizeof(int32_t));
    memcpy(out->data, (int32_t *)tokens.data + next, (size_t)out->size * sizeof(int32_t));
    rt_array_free(&tokens);
    return 0;
}

static int read_any(const char *path, const rt_tensor *t, rt_dtype want, const rt_csv_layout *csv,
                    rt_array *out, char *err, size_t errlen)
{
    if (is_sequence(path))
        return read_sequence(path, t, out, err, errlen);
    if (has_suffix(path, ".npy"))
        return rt_npy_read(path, out, err, errlen);
    if (has_suffix(path, ".csv") || has_suffix(path, ".csv.gz"))
        return read_csv(path, t, want, csv, out, err, errlen);
    if (strstr(path, ".idx") || strstr(path, "-ubyte"))
        return rt_idx_read(path, out, err, errlen);
    return rt_errf(err, errlen,
                   "%s: not a data file gradc reads (.npy, .csv, .csv.gz, .idx, "
                   "-ubyte, gzip or not, .txt, or llm.c's .bin)",
                   path);
}

int rt_input_load(const rt_model *m, const rt_tensor *t, const char *path, const rt_csv_layout *csv,
                  long min_rows, rt_array *out, char *err, size_t errlen)
{
    rt_array raw;
    if (read_any(path, t, rt_storage_dtype(m, t), csv, &raw, err, errlen))
        return -1;
    int rc =
        shape_fits(t, &raw, min_rows) ? 0 : shape_error(path, min_rows, t, &raw, m, err, errlen);
    if (rc == 0)
        rc = convert(path, &raw, rt_storage_dtype(m, t), out, err, errlen);
    rt_array_free(&raw);
    if (rc == 0 && (rc = check_labels(path, t, out, NULL, err, errlen)) != 0)
        rt_array_free(out);
    return rc;
}

int rt_data_bind(rt_data *d, const rt_model *m, const char *name, const char *path, char *err,
                 size_t errlen)
{
    const rt_tensor *t = find_input(m, name);
    rt_array a;
    if (!t)
        return no_such_input(d, m, name, err, errlen);
    if (find_binding(d, t))
        return rt_errf(err, errlen, "%s: input '%s' is given twice", d->flag, name);
    if (rt_input_load(m, t, path, &d->csv, d->min_rows ? d->min_rows : m->batch, &a, err, errlen))
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
            return rt_errf(err, errlen, "%s: input '%s' has no file; bind every input%s", d->flag,
                           m->inputs[k].name,
                           strcmp(d->flag, "--data") ? "" : ", or none to train on random data");
    d->rows = d->b[0].arr.shape[0];
    for (int k = 1; k < d->n; k++)
        if (d->b[k].arr.shape[0] != d->rows)
            return rt_errf(err, errlen,
                           "%s: has %ld rows but %s has %ld; every %s "
                           "file needs the same number of rows",
                           d->b[k].path, d->b[k].arr.shape[0], d->b[0].path, d->rows, d->flag);
    d->nbatches = d->rows / ((long)m->batch * d->ranks);
    return 0;
}

/* Where row r of input b->input lives in the model's memory. */
static char *input_row(const rt_binding *b, const rt_model *m, long r, size_t row)
{
    const rt_tensor *t = b->input;
    char *base = b->arr.dtype == RT_I32
                     ? (char *)(m->iarena + t->offset)
                     : (char *)m->arena + (size_t)t->offset * rt_dtype_width(b->arr.dtype);
    return base + (size_t)r * row;
}

/* One row's bytes. shape[0] is the batch for any input gradc emits; going
 * by it rather than m->batch keeps an input of fewer rows (a hand-written
 * model's) in bounds. */
static size_t row_bytes(const rt_binding *b)
{
    return (size_t)(b->input->size / b->input->shape[0]) * rt_dtype_width(b->arr.dtype);
}

static long rows_fit(const rt_binding *b, long n)
{
    return n < b->input->shape[0] ? n : b->input->shape[0];
}

/* Which of rows rows a split holds out: the last hold, or hold drawn by
 * (seed, RT_STREAM_SPLIT) when shuffled (a partial Fisher-Yates). */
static char *held_rows(long rows, long hold, int shuffled, uint64_t seed)
{
    char *held = calloc((size_t)rows, 1);
    if (!held)
        rt_die("out of memory splitting %ld rows", rows);
    if (!shuffled) {
        memset(held + rows - hold, 1, (size_t)hold);
        return held;
    }
    long *order = rt_malloc(sizeof *order * (size_t)rows);
    for (long i = 0; i < rows; i++)
        order[i] = i;
    rt_rng r;
    rt_rng_stream(&r, seed, RT_STREAM_SPLIT, 0);
    for (long i = 0; i < hold; i++) {
        long k = i + rt_rng_below(&r, rows - i);
        long v = order[i];
        order[i] = order[k];
        order[k] = v;
        held[order[i]] = 1;
    }
    free(order);
    return held;
}

/* Moves b's held rows, in file order, into an array of their own; the
 * others close up in place, in file order too. */
static rt_array split_rows(rt_binding *b, const char *held, long hold)
{
    rt_array a = b->arr;
    size_t row = row_bytes(b);
    long rows = b->arr.shape[0], kept = 0, out = 0;
    a.shape[0] = hold;
    a.size = b->arr.size / rows * hold;
    a.data = rt_malloc(row * (size_t)hold);
    char *src = b->arr.data;
    for (long i = 0; i < rows; i++) {
        const char *from = src + row * (size_t)i;
        if (held[i])
            memcpy((char *)a.data + row * (size_t)out++, from, row);
        else
            memmove(src + row * (size_t)kept++, from, row);
    }
    /* The training array keeps its allocation; only its row count shrinks. */
    b->arr.size = b->arr.size / rows * kept;
    b->arr.shape[0] = kept;
    return a;
}

int rt_data_split(rt_data *d, rt_data *val, const rt_model *m, double frac, int shuffled,
                  uint64_t seed, char *err, size_t errlen)
{
    /* F M is a product of decimals (0.07 * 100 is 7.000000000000001), so a
     * fraction below 1e-6 is rounding, not a row. */
    long hold = (long)ceil(frac * (double)d->rows - 1e-6);
    if (hold < 1)
        hold = 1;
    long keep = d->rows - hold, global = (long)m->batch * d->ranks;
    if (keep < global)
        return rt_errf(err, errlen,
                       "--val-split %g: holding out %ld of %ld rows leaves %ld to train on, "
                       "fewer than the batch %ld; use a smaller fraction",
                       frac, hold, d->rows, keep, global);
    char *held = held_rows(d->rows, hold, shuffled, seed);
    val->b = rt_malloc(sizeof *val->b * (size_t)d->n);
    val->n = d->n;
    for (int k = 0; k < d->n; k++)
        val->b[k] = (rt_binding){d->b[k].input, d->b[k].path, split_rows(&d->b[k], held, hold)};
    free(held);
    val->rows = hold;
    val->nbatches = hold / m->batch;
    d->rows = keep;
    d->nbatches = keep / global;
    return 0;
}

void rt_data_load_rows(const rt_data *d, const rt_model *m, long first, long n)
{
    for (int k = 0; k < d->n; k++) {
        const rt_binding *b = &d->b[k];
        size_t row = row_bytes(b);
        memcpy(input_row(b, m, 0, row), (const char *)b->arr.data + (size_t)first * row,
               (size_t)rows_fit(b, n) * row);
    }
}

void rt_data_load_padded(const rt_data *d, const rt_model *m, long first, long n)
{
    rt_data_load_rows(d, m, first, n);
    for (int k = 0; k < d->n; k++) {
        const rt_binding *b = &d->b[k];
        size_t row = row_bytes(b);
        for (long r = n; r < rows_fit(b, m->batch); r++)
            memcpy(input_row(b, m, r, row), input_row(b, m, 0, row), row);
    }
}

/* Fisher-Yates from the identity, so epoch e's order depends on (seed, e)
 * alone and never on which epochs were drawn before it. */
const long *rt_data_order(rt_data *d, long epoch)
{
    if (d->order_epoch == epoch)
        return d->order;
    if (!d->order)
        d->order = rt_malloc(sizeof *d->order * (size_t)d->rows);
    for (long i = 0; i < d->rows; i++)
        d->order[i] = i;
    rt_rng r;
    rt_rng_stream(&r, d->seed, RT_STREAM_SHUFFLE, (uint64_t)epoch);
    for (long i = d->rows - 1; i > 0; i--) {
        long k = rt_rng_below(&r, i + 1);
        long v = d->order[i];
        d->order[i] = d->order[k];
        d->order[k] = v;
    }
    d->order_epoch = epoch;
    return d->order;
}

void rt_data_place(const rt_data *d, const rt_model *m, long steps, long *epoch, long *row)
{
    *epoch = steps / d->nbatches;
    *row = steps % d->nbatches * d->ranks * m->batch;
}

void rt_data_load(rt_data *d, const rt_model *m, long step)
{
    long epoch, row;
    rt_data_place(d, m, step - 1, &epoch, &row);
    rt_data_load_at(d, m, epoch, row);
}

void rt_data_load_at(rt_data *d, const rt_model *m, long epoch, long row)
{
    long first = row + (long)d->rank * m->batch; /* this process's share */
    if (!d->shuffle) {
        rt_data_load_rows(d, m, first, m->batch);
        return;
    }
    const long *order = rt_data_order(d, epoch) + first;
    for (int k = 0; k < d->n; k++) {
        const rt_binding *b = &d->b[k];
        size_t row = row_bytes(b);
        for (long r = 0; r < rows_fit(b, m->batch); r++)
            memcpy(input_row(b, m, r, row), (const char *)b->arr.data + (size_t)order[r] * row,
                   row);
    }
}

uint64_t rt_data_hash(const rt_data *d)
{
    uint64_t h = 1469598103934665603u ^ (uint64_t)d->rows;
    for (int k = 0; k < d->n; k++) {
        const rt_array *a = &d->b[k].arr;
        size_t bytes = (size_t)a->size * rt_dtype_width(a->dtype), i = 0;
        const unsigned char *p = a->data;
        for (; i + 8 <= bytes; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            h = (h ^ w) * 1099511628211u;
        }
        for (; i < bytes; i++)
            h = (h ^ p[i]) * 1099511628211u;
    }
    return h;
}

void rt_data_free(rt_data *d)
{
    for (int k = 0; k < d->n; k++)
        rt_array_free(&d->b[k].arr);
    free(d->b);
    free(d->order);
    rt_data_init(d);
}
