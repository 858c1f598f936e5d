/*
 * rt_read.h: the data readers besides .npy (rt.h): numeric CSV, IDX (the
 * MNIST format), plain text and llm.c's token files. CSV and IDX files may
 * be gzip-compressed.
 * Each returns 0, or -1 with one line in err naming the file (and, for
 * CSV, the line) and what is wrong; nothing is read out of bounds.
 */
#ifndef RT_READ_H
#define RT_READ_H

#include <stddef.h>
#include "rt.h"

typedef struct {
    long rows, cols;
    double *values; /* rows x cols, row-major */
    long *lines;    /* the file's line of each row, from 1, for messages */
    int has_header; /* the first line had a field that is not a number */
} rt_csv;

/* The first skip_rows lines of the file are passed over unread, whatever
 * they hold (a licence, a title); a header may follow them. */
int rt_csv_read(const char *path, long skip_rows, rt_csv *out, char *err, size_t errlen);
void rt_csv_free(rt_csv *c);
/* Columns [first, first + n) (0-based) as a [rows, n] array ([rows] when n
 * is 1), as RT_F64, or as RT_I32 when every value is an integer. */
int rt_csv_columns(const rt_csv *c, const char *path, long first, long n, rt_dtype dtype,
                   rt_array *out, char *err, size_t errlen);

/* Integer IDX types become RT_I32, float RT_F32, double RT_F64. */
int rt_idx_read(const char *path, rt_array *out, char *err, size_t errlen);

/* Every byte, as RT_I32 in [0, 256), shape [bytes]. */
int rt_text_read(const char *path, rt_array *out, char *err, size_t errlen);

/* llm.c's GPT-2 token files (tokens.c): every token, as RT_I32 in
 * [0, 65536), shape [count]. */
int rt_tokens_read(const char *path, rt_array *out, char *err, size_t errlen);

#endif
