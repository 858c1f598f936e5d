/*
 * csv.c: numeric CSV tables, plain or gzip (zlib reads both).
 *
 * Fields are numbers separated by commas; blank lines are skipped. A first
 * line with any field that is not a number is a header, however many
 * fields it has; lines before it may be skipped unread (--skip-rows).
 * Every row must have as many fields as the first row after it; a ragged
 * row or a field that is not a number is refused with the file, line and
 * column. Columns are then cut out as arrays, with lossless conversion
 * only (labels must be integers).
 * A file that is no text (a NUL byte), a line longer than MAX_LINE (what a
 * gzip bomb inflates to) and a gzip stream that ends early are refused
 * too, before any of their bytes become a row.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "rt_read.h"
#include "rt_internal.h"

/* No CSV of numbers has a longer line; memory stays bounded whatever a
 * gzip file inflates to. */
enum { MAX_LINE = 1 << 24 };

enum { LINE_END = -1, LINE_NUL = -2, LINE_LONG = -3 };

/* The next line into *buf, without its newline (or \r\n): its length, or
 * LINE_END at the end of the file (or at a read error, which the caller
 * asks gzerror about: a last line cut short by one is never returned),
 * LINE_NUL for a NUL byte, LINE_LONG past MAX_LINE bytes. Byte by byte,
 * since gzgets cannot tell a NUL byte from the end of its string. */
static long next_line(gzFile f, char **buf, size_t *cap)
{
    size_t len = 0;
    int c;
    if (!*buf) {
        *cap = 4096;
        *buf = rt_malloc(*cap);
    }
    while ((c = gzgetc(f)) != -1 && c != '\n') {
        if (c == 0)
            return LINE_NUL;
        if (len == MAX_LINE)
            return LINE_LONG;
        if (len + 1 >= *cap) {
            *cap *= 2;
            *buf = realloc(*buf, *cap);
            if (!*buf)
                rt_die("out of memory reading a CSV line");
        }
        (*buf)[len++] = (char)c;
    }
    if (c == -1) {
        int gzerr;
        gzerror(f, &gzerr);
        if (len == 0 || (gzerr != Z_OK && gzerr != Z_STREAM_END))
            return LINE_END;
    }
    if (len && (*buf)[len - 1] == '\r')
        len--;
    (*buf)[len] = 0;
    return (long)len;
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

int rt_csv_read(const char *path, long skip_rows, rt_csv *out, char *err, size_t errlen)
{
    *out = (rt_csv){0};
    gzFile f = gzopen(path, "rb");
    if (!f)
        return rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    char *buf = NULL, **fields = NULL;
    size_t cap = 0, vcap = 0, lcap = 0;
    long line_no = 0, max_fields = 0, len;
    int status = 0;
    while ((len = next_line(f, &buf, &cap)) != LINE_END) {
        char *line = buf;
        line_no++;
        if (len == LINE_NUL) {
            status =
                rt_errf(err, errlen, "%s:%ld: a NUL byte: a binary file, not a CSV", path, line_no);
            break;
        }
        if (len == LINE_LONG) {
            status = rt_errf(err, errlen,
                             "%s:%ld: a line of more than %d bytes: no CSV of numbers has one",
                             path, line_no, MAX_LINE);
            break;
        }
        if (line_no <= skip_rows || !line[strspn(line, " \t")])
            continue;
        long n = count_fields(line);
        if (n > max_fields) {
            max_fields = n;
            fields = realloc(fields, n * sizeof *fields);
            if (!fields)
                rt_die("out of memory reading %s", path);
        }
        split(line, fields);
        if (out->cols == 0) { /* the first line, or the first after a header */
            double v;
            int header = 0;
            for (long k = 0; k < n && !header && !out->has_header; k++)
                header = !parse_number(fields[k], &v);
            /* A header need not have a field per column: UCI's and
             * scikit-learn's files start with rows, columns, class names. */
            if (header) {
                out->has_header = 1;
                continue;
            }
            out->cols = n;
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
        if ((size_t)out->rows + 1 > lcap) {
            lcap = lcap ? 2 * lcap : 1024;
            out->lines = realloc(out->lines, lcap * sizeof *out->lines);
            if (!out->lines)
                rt_die("out of memory reading %s", path);
        }
        out->lines[out->rows] = line_no;
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
    /* zlib's message starts with the path, which ours already has. */
    size_t plen = strlen(path);
    if (strncmp(gzmsg, path, plen) == 0 && strncmp(gzmsg + plen, ": ", 2) == 0)
        gzmsg += plen + 2;
    if (status == 0 && gzerr != Z_OK && gzerr != Z_STREAM_END)
        status = rt_errf(err, errlen, "%s: cannot read: %s", path, gzmsg);
    gzclose(f);
    free(buf);
    free(fields);
    if (status == 0 && out->rows == 0 && skip_rows > 0 && line_no <= skip_rows)
        status = rt_errf(err, errlen, "%s: --skip-rows %ld, but the file has %ld lines", path,
                         skip_rows, line_no);
    else if (status == 0 && out->rows == 0)
        status = rt_errf(err, errlen, "%s: no rows of numbers", path);
    if (status)
        rt_csv_free(out);
    return status;
}

void rt_csv_free(rt_csv *c)
{
    free(c->values);
    free(c->lines);
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
                    return rt_errf(err, errlen, "%s:%ld: column %ld is %g, not an integer label",
                                   path, c->lines[r], first + k + 1, v);
                }
                ((int32_t *)out->data)[r * n + k] = (int32_t)v;
            } else
                ((double *)out->data)[r * n + k] = v;
        }
    return 0;
}
