/*
 * rt_internal.h: what the runtime's .c files share with each other (and with
 * tests/test_numerics.c and tests/test_data.c), but generated code never sees.
 *
 * One section per .c file, each listing only what that file exports. Names
 * carry the rt_ prefix because they are linked into every generated program
 * next to the model's own symbols.
 */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "rt.h"

/* util.c */
#define rt_malloc(n) rt_malloc_at((n), __FILE__, __LINE__)
void *rt_malloc_at(size_t n, const char *file, int line);
_Noreturn void rt_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define rt_die(...) rt_die_at(__FILE__, __LINE__, __VA_ARGS__)
int rt_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *rt_dtype_name(rt_dtype d);
/* Bytes an element of d takes: 8 for float64, 4 for float32 and int32. */
size_t rt_dtype_width(rt_dtype d);
/* "[64,1000]"; star replaces shape[0] with '*' (a batch of any size). */
void rt_format_shape(char *buf, size_t n, int rank, const long *shape, int star);
void rt_tensor_shape(const rt_tensor *t, long *shape);
int rt_is_little_endian(void);
/* Reorders each element's bytes on a big-endian host, so data is
 * little-endian in files; nothing on a little-endian one. */
void rt_swap_if_big_endian(void *data, long n, int width);
/* The dtype a tensor's elements have in memory: int32, or the model's real. */
rt_dtype rt_storage_dtype(const rt_model *m, const rt_tensor *t);

/* npy.c: rt_npy_read, and the dtype the file stores ("float64", "int64",
 * ...), which out->dtype may have widened or narrowed from; NULL when the
 * read failed before the header said. */
int rt_npy_read_typed(const char *path, rt_array *out, const char **file_type, char *err,
                      size_t errlen);

/* rng.c */
uint64_t rt_splitmix64(uint64_t *x);
/* Independent streams: domain separates params, inputs, gradcheck picks and
 * each epoch's shuffle. */
enum {
    RT_STREAM_PARAM = 1,
    RT_STREAM_INPUT = 2,
    RT_STREAM_CHECK = 3,
    RT_STREAM_SAMPLE = 5,
    RT_STREAM_SHUFFLE = 4,
    RT_STREAM_SPLIT = 6
};
void rt_rng_stream(rt_rng *r, uint64_t seed, uint64_t domain, uint64_t k);
long rt_rng_below(rt_rng *r, long n); /* uniform in [0, n), n >= 1 */

/* args.c: "--flag V" and "--flag=V" alike; messages name prog and flag. */
typedef struct {
    const char *prog; /* "NAME_train" */
    int argc;
    char **argv;
    int i; /* the argument being looked at */
} rt_args;
/* 1 and *val set if argv[i] is flag (i moves past it), 0 if it is another
 * flag, -1 (message printed) if the value is missing. */
int rt_args_value(rt_args *a, const char *flag, const char **val);
int rt_args_is(const rt_args *a, const char *flag);
int rt_parse_posint(const rt_args *a, const char *flag, const char *s, long *out);
int rt_parse_u64(const rt_args *a, const char *flag, const char *s, uint64_t *out);
int rt_parse_double(const rt_args *a, const char *flag, const char *s, double *out);
/* --label-column K: a column from 1, negative from the end, or none
 * (RT_NO_LABEL: a CSV of features only). */
enum { RT_NO_LABEL = 0 };
int rt_parse_label_column(const rt_args *a, const char *s, long *out);
/* --threads N: N >= 1, or 0 (also "auto") for every core. */
int rt_parse_threads(const rt_args *a, const char *s, long *out);
/* --skip-rows N: N >= 0. */
int rt_parse_count(const rt_args *a, const char *flag, const char *s, long *out);

/* How a CSV is cut into inputs: its label column, from 1, negative from
 * the end (-1, the default), or RT_NO_LABEL; the lines skipped at its
 * start. */
typedef struct {
    long label_column;
    long skip_rows;
} rt_csv_layout;
#define RT_CSV_LAYOUT_DEFAULT ((rt_csv_layout){.label_column = -1})
void rt_args_error(const rt_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* bind.c: --data and --val NAME=FILE, converted once into each input's
 * storage dtype, and the minibatch rule (the file's opening comment). */
typedef struct {
    const rt_tensor *input;
    const char *path;
    rt_array arr; /* rows x input row, in the input's storage dtype */
} rt_binding;
typedef struct {
    const char *flag; /* "--data" (rt_data_init's) or "--val": messages name it */
    long min_rows;    /* the fewest rows a file may hold; 0 means the batch */
    int n;
    rt_binding *b;   /* one per bound input, in --data order */
    long rows;       /* M, shared by every file */
    long nbatches;   /* floor(M / (batch ranks)) */
    int rank, ranks; /* this process's share of each minibatch: --data's on MPI */
    rt_csv_layout csv;
    int shuffle;      /* rt_data_load: a fresh order each epoch, from seed */
    uint64_t seed;    /* set, like shuffle, before the first load: orders are cached */
    long *order;      /* rt_data_order's cache: the order of order_epoch */
    long order_epoch; /* -1 before the first */
} rt_data;
/* One input's file, in any format gradc reads, checked against the input
 * (at least min_rows rows of the input's row size) and converted exactly
 * to its storage dtype: shape [M, input's row shape...]. */
int rt_input_load(const rt_model *m, const rt_tensor *t, const char *path, const rt_csv_layout *csv,
                  long min_rows, rt_array *out, char *err, size_t errlen);
/* Defaults: --data, file order, the last column for labels. */
void rt_data_init(rt_data *d);
int rt_data_bind(rt_data *d, const rt_model *m, const char *name, const char *path, char *err,
                 size_t errlen);
int rt_data_finish(rt_data *d, const rt_model *m, char *err, size_t errlen);
/* --val-split: moves ceil(frac M) rows of every file of a finished d into
 * val (initialized, empty), the last ones or, shuffled, rows drawn from
 * seed; fails if fewer than a batch would stay. */
int rt_data_split(rt_data *d, rt_data *val, const rt_model *m, double frac, int shuffled,
                  uint64_t seed, char *err, size_t errlen);
/* Epoch e's order of the rows (shuffled by (seed, e)); valid until the next call. */
const long *rt_data_order(rt_data *d, long epoch);
/* Where in the data a run stands after `steps` steps from the start: the
 * next minibatch is rows row... of epoch epoch's order. */
void rt_data_place(const rt_data *d, const rt_model *m, long steps, long *epoch, long *row);
/* The training minibatch of a step (1-based) into the inputs. */
void rt_data_load(rt_data *d, const rt_model *m, long step);
/* The minibatch at rows row... of epoch epoch's order (this process's
 * share of them): what rt_data_load loads for a step, from a place in the
 * data that a run on another number of processes may have reached. */
void rt_data_load_at(rt_data *d, const rt_model *m, long epoch, long row);
/* Rows [first, first + n) in file order into the first n rows of the inputs
 * (n <= batch); the rest of each input is left as it was. */
void rt_data_load_rows(const rt_data *d, const rt_model *m, long first, long n);
/* The same, and the rest of the batch filled with copies of row first. */
void rt_data_load_padded(const rt_data *d, const rt_model *m, long first, long n);
/* The rows bound, as a number: the same on two processes that read the
 * same files. */
uint64_t rt_data_hash(const rt_data *d);
void rt_data_free(rt_data *d);

/* tokens.c: llm.c's tokenizer file (gpt2_tokenizer.bin), which only
 * decodes: token ids to their bytes. */
typedef struct {
    long vocab;
    unsigned char *bytes; /* the whole file */
    long *start;          /* token k's bytes begin at bytes[start[k]], after their length */
} rt_tokenizer;
int rt_tokenizer_read(const char *path, rt_tokenizer *t, char *err, size_t errlen);
/* Token id's bytes and their number, or NULL for an id outside the table. */
const unsigned char *rt_tokenizer_token(const rt_tokenizer *t, long id, size_t *len);
void rt_tokenizer_free(rt_tokenizer *t);

#endif
