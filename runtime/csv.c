/*
 * csv.c: numeric CSV tables, plain or gzip (zlib reads both).
 *
 * Fields are numbers separated by commas; blank lines are skipped. A first
 * line with any field that is not a number is a header. Every row must
 * have as many fields as the first; a ragged row or a field that is not a
 * number is refused with the file, line and column. Columns are then cut
 * out as arrays, with lossless conversion only (labels must be integers).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "rt_read.h"
#include "rt_internal.h"

/* The next line, without its newline, however long; NULL at the end. */
static char *next_line(gzFile f, char **buf, size_t *cap)
{
    size_t len = 0;
    for (;;) {
        if (*cap - len < 2) {
            *cap = *cap ? 2 * *cap : 4096;
            *buf = realloc(*buf, *cap);
            if (!*buf)
                rt_die("out of memory reading a CSV line");
        }
        if (!gzgets(f, *buf + len, (int)(*cap - len)))
            return len ? *buf : NULL;
        len += strlen(*buf + len);
        if (len && (*buf)[len - 1] == '\n') {
            (*buf)[--len] = 0;
            if (len && (*buf)[len - 1] == '\r')
                (*buf)[--len] = 0;
            return *buf;
        }
    }
}

/* Splits a line in place at its commas into fields, which has room. */
static long split(char *line, char **fields)
{
    long n = 0;
    for (char *s = line;; s++) {
        fields[n++] = s;
        s = strchr(s, ',');
        if (!s)
            return n;
        *s = 0;
    }
}

static long count_fields(const char *line)
{
    long n = 1;
    for (const char *s = line; (s = strchr(s, ',')); s++)
        n++;
    return n;
}

static int parse_number(const char *s, double *v)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    return end != s && *end == 0 && errno != ERANGE && isfinite(*v);
}

int rt_csv_read(const char *path, rt_csv *out, char *err, size_t errlen)
{
    *out = (rt_csv){0};
    gzFile f = gzopen(path, "rb");
    if (!f)
        return rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    char *buf = NULL, **fields = NULL;
    size_t cap = 0, vcap = 0;
    long line_no = 0, max_fields = 0;
    int status = 0;
    for (char *line; (line = next_line(f, &buf, &cap));) {
        line_no++;
        if (!line[strspn(line, " \t")])
            continue;
        long n = count_fields(line);
        if (n > max_fields) {
            max_fields = n;
            fields = realloc(fields, n * sizeof *fields);
            if (!fields)
                rt_die("out of memory reading %s", path);
        }
        split(line, fields);
        if (out->cols == 0 && out->rows == 0 && !out->has_header) {
            double v;
            for (long k = 0; k < n && !out->has_header; k++)
                out->has_header = !parse_number(fields[k], &v);
            out->cols = n;
            if (out->has_header)
                continue;
        }
        if (n != out->cols) {
            status = rt_errf(err, errlen, "%s:%ld: %ld fields, but the first row has %ld", path,
                             line_no, n, out->cols);
            break;
        }
        if ((size_t)((out->rows + 1) * out->cols) > vcap) {
            vcap = vcap ? 2 * vcap : (size_t)out->cols * 1024;
            out->values = realloc(out->values, vcap * sizeof *out->values);
            if (!out->values)
                rt_die("out of memory reading %s", path);
        }
        for (long k = 0; k < n && status == 0; k++)
            if (!parse_number(fields[k], &out->values[out->rows * out->cols + k]))
                status = rt_errf(err, errlen, "%s:%ld: column %ld is '%.40s', not a number", path,
                                 line_no, k + 1, fields[k]);
        if (status)
            break;
        out->rows++;
    }
    int gzerr = 0;
    const char *gzmsg = gzerror(f, &gzerr);
    if (status == 0 && gzerr != Z_OK && gzerr != Z_STREAM_END)
        status = rt_errf(err, errlen, "%s: cannot read: %s", path, gzmsg);
    gzclose(f);
    free(buf);
    free(fields);
    if (status == 0 && out->rows == 0)
        status = rt_errf(err, errlen, "%s: no rows of numbers", path);
    if (status)
        rt_csv_free(out);
    return status;
}

void rt_csv_free(rt_csv *c)
{
    free(c->values);
    *c = (rt_csv){0};
}

int rt_csv_columns(const rt_csv *c, const char *path, long first, long n, rt_dtype dtype,
                   rt_array *out, char *err, size_t errlen)
{
    if (first < 0 || n < 1 || first + n > c->cols)
        return rt_errf(err, errlen, "%s: columns %ld..%ld asked for, the table has %ld", path,
                       first + 1, first + n, c->cols);
    *out = (rt_array){
        .dtype = dtype, .rank = n == 1 ? 1 : 2, .shape = {c->rows, n}, .size = c->rows * n};
    out->data = rt_malloc((size_t)out->size * (dtype == RT_I32 ? sizeof(int32_t) : sizeof(double)));
    for (long r = 0; r < c->rows; r++)
        for (long k = 0; k < n; k++) {
            double v = c->values[r * c->cols + first + k];
            if (dtype == RT_I32) {
                if (v != floor(v) || v < INT32_MIN || v > INT32_MAX) {
                    rt_array_free(out);
                    return rt_errf(err, errlen,
                                   "%s: row %ld, column %ld is %g, not an integer label", path,
                                   r + 1 + (c->has_header ? 1 : 0), first + k + 1, v);
                }
                ((int32_t *)out->data)[r * n + k] = (int32_t)v;
            } else
                ((double *)out->data)[r * n + k] = v;
        }
    return 0;
}
