/*
 * predict.c: rt_predict_main, the whole of every NAME_predict program.
 *
 * It runs an inference-only model (NAME_infer.c: forward pass, no
 * gradients, no optimizer) with the parameters of a training checkpoint
 * (or of .npy files, --init), over every row of its input files, a batch
 * at a time (the last batch through forward(rows), so no row is dropped),
 * and writes one output for every row: as .npy, as CSV, or as the index
 * of each row's largest value (--argmax, the predicted class). An output
 * file is written to a temporary name and renamed, so a failed run leaves
 * nothing half-written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rt_internal.h"

typedef struct {
    const char *checkpoint, *init, *out, *output;
    rt_csv_layout csv;
    long threads;
    int argmax, help, n_data;
    const char **data;
} Opts;

static void usage(const rt_model *m, const char *prog)
{
    printf("usage: %s --checkpoint FILE | --init DIR  --data NAME=FILE...\n"
           "       [--out FILE.npy|FILE.csv] [--output NAME] [--argmax] [--label-column K]\n"
           "       [--skip-rows N] [--threads N]\n\n"
           "Runs model %s (%s) forward with the parameters of a checkpoint that\n"
           "%s_train wrote (or of .npy files), on every row of the data, %d rows\n"
           "at a time.\n",
           prog, m->name, m->source ? m->source : "?", m->name, m->batch);
    printf("inputs:\n");
    for (int k = 0; k < m->n_inputs; k++)
        printf("  %s\n", m->inputs[k].name);
    printf("outputs:\n");
    for (int k = 0; k < m->n_outputs; k++)
        printf("  %s\n", m->outputs[k].name);
    printf("\n  --checkpoint F     the trained parameters (from --checkpoint of the trainer)\n"
           "  --init DIR         or DIR/NAME.npy, a file per parameter (as --export writes)\n"
           "  --data NAME=F      .npy, .csv[.gz] or IDX data for input NAME, any number of rows\n"
           "  --out F            where to write: .npy, or .csv (default: CSV on stdout)\n"
           "  --output NAME      which output (default: the first)\n"
           "  --argmax           write each row's predicted class, not its values\n"
           "  --label-column K   a CSV's label column, from 1; negative from the end (-1);\n"
           "                     none: the file holds features only\n"
           "  --skip-rows N      pass over a CSV's first N lines unread (a title, notes)\n"
           "  --threads N        threads for products and large loops (default 1; 0 or\n"
           "                     auto: one per core the program may run on)\n");
}

static int parse(rt_args *a, Opts *o)
{
    for (; a->i < a->argc;) {
        const char *v;
        int r;
        if (rt_args_is(a, "--help") || rt_args_is(a, "-h")) {
            o->help = 1;
            return 0;
        }
        if (rt_args_is(a, "--argmax")) {
            o->argmax = 1;
            a->i++;
        } else if ((r = rt_args_value(a, "--checkpoint", &v)) != 0) {
            if (r < 0)
                return 2;
            o->checkpoint = v;
        } else if ((r = rt_args_value(a, "--init", &v)) != 0) {
            if (r < 0)
                return 2;
            o->init = v;
        } else if ((r = rt_args_value(a, "--out", &v)) != 0) {
            if (r < 0)
                return 2;
            o->out = v;
        } else if ((r = rt_args_value(a, "--output", &v)) != 0) {
            if (r < 0)
                return 2;
            o->output = v;
        } else if ((r = rt_args_value(a, "--label-column", &v)) != 0) {
            if (r < 0 || rt_parse_label_column(a, v, &o->csv.label_column))
                return 2;
        } else if ((r = rt_args_value(a, "--skip-rows", &v)) != 0) {
            if (r < 0 || rt_parse_count(a, "--skip-rows", v, &o->csv.skip_rows))
                return 2;
        } else if ((r = rt_args_value(a, "--threads", &v)) != 0) {
            if (r < 0 || rt_parse_threads(a, v, &o->threads))
                return 2;
        } else if ((r = rt_args_value(a, "--data", &v)) != 0) {
            if (r < 0)
                return 2;
            if (!strchr(v, '=')) {
                rt_args_error(a, "--data: expected NAME=FILE, got '%s'", v);
                return 2;
            }
            o->data[o->n_data++] = v;
        } else {
            rt_args_error(a, "unknown flag '%s'", a->argv[a->i]);
            return 2;
        }
    }
    if (!o->checkpoint && !o->init) {
        rt_args_error(a, "--checkpoint FILE (or --init DIR) is needed: the parameters to "
                         "predict with");
        return 2;
    }
    if (o->checkpoint && o->init) {
        rt_args_error(a, "--checkpoint and --init both give the parameters; give one");
        return 2;
    }
    return 0;
}

/* Every input's file, with one row count for all; 0, or 1 after a message. */
static int bind_inputs(const rt_model *m, const char *prog, const Opts *o, rt_array *arrays,
                       long *rows)
{
    char err[1024];
    for (int k = 0; k < m->n_inputs; k++) {
        const rt_tensor *t = &m->inputs[k];
        const char *path = NULL;
        for (int d = 0; d < o->n_data; d++) {
            size_t n = strcspn(o->data[d], "=");
            if (strlen(t->name) == n && !strncmp(o->data[d], t->name, n))
                path = o->data[d] + n + 1;
        }
        if (!path) {
            fprintf(stderr, "%s: input '%s' has no --data %s=FILE\n", prog, t->name, t->name);
            return 1;
        }
        if (rt_input_load(m, t, path, &o->csv, 1, &arrays[k], err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", prog, err);
            return 1;
        }
        if (k > 0 && arrays[k].shape[0] != *rows) {
            fprintf(stderr, "%s: %s has %ld rows, but the first input's file has %ld\n", prog, path,
                    arrays[k].shape[0], *rows);
            return 1;
        }
        *rows = arrays[k].shape[0];
    }
    return 0;
}

static size_t width(const rt_model *m, const rt_tensor *t)
{
    return rt_dtype_width(rt_storage_dtype(m, t));
}

static char *address(const rt_model *m, const rt_tensor *t)
{
    if (t->dtype == RT_I32)
        return (char *)(m->iarena + t->offset);
    return (char *)m->arena + (size_t)t->offset * width(m, t);
}

/* Rows [first, first + n) of every input into the model, then forward. */
static void run_batch(const rt_model *m, const rt_array *arrays, long first, long n)
{
    for (int k = 0; k < m->n_inputs; k++) {
        const rt_tensor *t = &m->inputs[k];
        size_t row = (size_t)(t->size / m->batch) * width(m, t);
        memcpy(address(m, t), (const char *)arrays[k].data + (size_t)first * row, (size_t)n * row);
    }
    m->forward((int)n);
}

static int write_csv(const char *path, const rt_array *a)
{
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f)
        return -1;
    long cols = a->size / a->shape[0];
    for (long r = 0; r < a->shape[0]; r++)
        for (long c = 0; c < cols; c++) {
            long i = r * cols + c;
            if (a->dtype == RT_I32)
                fprintf(f, "%d", (int)((int32_t *)a->data)[i]);
            else
                fprintf(f, "%.9g",
                        a->dtype == RT_F64 ? ((double *)a->data)[i] : ((float *)a->data)[i]);
            fputc(c + 1 < cols ? ',' : '\n', f);
        }
    if (path) {
        int bad = ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) != 0);
        return (fclose(f) != 0) | bad ? -1 : 0;
    }
    return fflush(f) ? -1 : 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int write_result(const char *prog, const char *path, const rt_array *a)
{
    char err[1024];
    if (path && has_suffix(path, ".npy")) {
        if (rt_npy_write(path, a->dtype, a->rank, a->shape, a->data, err, sizeof err) == 0)
            return 0;
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    if (path && !has_suffix(path, ".csv")) {
        fprintf(stderr, "%s: --out %s: name a .npy or a .csv file\n", prog, path);
        return 1;
    }
    char tmp[4096];
    if (path)
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (write_csv(path ? tmp : NULL, a) || (path && rename(tmp, path))) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path ? path : "stdout", strerror(errno));
        if (path)
            remove(tmp);
        return 1;
    }
    return 0;
}

/* The chosen output for every row, as values or as argmax classes. */
static void collect(const rt_model *m, const rt_tensor *out, int argmax, long first, long n,
                    rt_array *result)
{
    long cols = out->size / m->batch;
    for (long r = 0; r < n; r++) {
        long best = 0;
        for (long c = 0; c < cols; c++) {
            double v = rt_get(m, out, r * cols + c);
            if (argmax && v > rt_get(m, out, r * cols + best))
                best = c;
            if (!argmax && result->dtype == RT_F64)
                ((double *)result->data)[(first + r) * cols + c] = v;
            else if (!argmax)
                ((float *)result->data)[(first + r) * cols + c] = (float)v;
        }
        if (argmax)
            ((int32_t *)result->data)[first + r] = (int32_t)best;
    }
}

static int predict(const rt_model *m, const char *prog, const Opts *o)
{
    char err[1024];
    const rt_tensor *out = &m->outputs[0];
    for (int k = 0; o->output && k < m->n_outputs; k++)
        out = !strcmp(m->outputs[k].name, o->output) ? &m->outputs[k] : out;
    if (o->output && strcmp(out->name, o->output)) {
        fprintf(stderr, "%s: --output %s: the model's outputs are listed by --help\n", prog,
                o->output);
        return 2;
    }
    if (o->init)
        rt_init_params(m, 1); /* the buffers DIR has no file for start as training's do */
    if (o->checkpoint ? rt_checkpoint_load_params(m, o->checkpoint, err, sizeof err)
                      : rt_import_params(m, o->init, err, sizeof err)) {
        fprintf(stderr, "%s: %s%s\n", prog, o->init ? "--init: " : "", err);
        return 1;
    }
    rt_array *arrays = calloc((size_t)m->n_inputs + 1, sizeof *arrays);
    long rows = 0;
    int rc = bind_inputs(m, prog, o, arrays, &rows);
    if (rc == 0) {
        long cols = out->size / m->batch;
        rt_array result = {.dtype = o->argmax ? RT_I32 : m->real,
                           .rank = o->argmax ? 1 : out->rank,
                           .size = o->argmax ? rows : rows * cols};
        result.shape[0] = rows;
        for (int i = 1; i < out->rank; i++)
            result.shape[i] = out->shape[i];
        result.data = rt_malloc((size_t)result.size * rt_dtype_width(result.dtype));
        for (long first = 0; first < rows; first += m->batch) {
            long n = rows - first < m->batch ? rows - first : m->batch;
            run_batch(m, arrays, first, n);
            collect(m, out, o->argmax, first, n, &result);
        }
        rc = write_result(prog, o->out, &result);
        if (rc == 0 && o->out)
            fprintf(stderr, "%s: %ld rows of %s written to %s\n", prog, rows,
                    o->argmax ? "predicted classes" : out->name, o->out);
        rt_array_free(&result);
    }
    for (int k = 0; k < m->n_inputs; k++)
        rt_array_free(&arrays[k]);
    free(arrays);
    return rc;
}

int rt_predict_main(const rt_model *m, int argc, char **argv)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s_predict", m->name);
    Opts o = {.csv = RT_CSV_LAYOUT_DEFAULT, .threads = 1};
    o.data = rt_malloc(sizeof *o.data * (size_t)(argc > 0 ? argc : 1));
    rt_args a = {prog, argc, argv, 1};
    int rc = parse(&a, &o);
    if (rc == 0 && o.help)
        usage(m, prog);
    else if (rc == 0 && m->n_outputs == 0) {
        fprintf(stderr,
                "%s: the model has no outputs to predict: name some in model{ outputs = "
                "{...} }\n",
                prog);
        rc = 1;
    } else if (rc == 0) {
        rt_set_threads((int)o.threads);
        rc = predict(m, prog, &o);
    }
    free(o.data);
    return rc;
}
