/*
 * util.c: the small things every other runtime file leans on: checked
 * allocation, the internal-bug exit, error-string formatting, dtype and
 * shape printing, and the clock.
 *
 * User errors never come through here as aborts: they are formatted into an
 * err buffer and returned. Only a failure the user cannot fix (out of
 * memory, a broken invariant) dies, naming the C file and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include "rt_internal.h"

void *rt_malloc_at(size_t n, const char *file, int line)
{
    /* malloc(0) may legally return NULL; callers want a pointer to free. */
    void *p = malloc(n ? n : 1);
    if (!p)
        rt_die_at(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void rt_die_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: gradc runtime: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Always returns -1 so callers can `return rt_errf(...)`. */
int rt_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

size_t rt_dtype_width(rt_dtype d) { return d == RT_F64 ? 8 : 4; }

const char *rt_dtype_name(rt_dtype d)
{
    switch (d) {
    case RT_F32:
        return "float32";
    case RT_F64:
        return "float64";
    case RT_I32:
        return "int32";
    }
    return "?";
}

void rt_format_shape(char *buf, size_t n, int rank, const long *shape, int star)
{
    char body[RT_MAX_RANK * 22 + 1] = "";
    size_t used = 0;
    for (int i = 0; i < rank && i < RT_MAX_RANK; i++) {
        const char *sep = i ? "," : "";
        int w = (i == 0 && star)
                    ? snprintf(body + used, sizeof body - used, "*")
                    : snprintf(body + used, sizeof body - used, "%s%ld", sep, shape[i]);
        if (w < 0 || (size_t)w >= sizeof body - used)
            break;
        used += (size_t)w;
    }
    snprintf(buf, n, "[%s]", body);
}

void rt_tensor_shape(const rt_tensor *t, long *shape)
{
    for (int i = 0; i < t->rank; i++)
        shape[i] = t->shape[i];
}

rt_dtype rt_storage_dtype(const rt_model *m, const rt_tensor *t)
{
    return t->dtype == RT_I32 ? RT_I32 : m->real;
}

double rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int rt_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Files gradc writes are little-endian; only a big-endian host reorders
 * each element's bytes (the same swap reads and writes). */
void rt_swap_if_big_endian(void *data, long n, int width)
{
    unsigned char *b = data;
    if (width == 1 || rt_is_little_endian())
        return;
    for (long i = 0; i < n; i++, b += width)
        for (int j = 0; j < width / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[width - 1 - j];
            b[width - 1 - j] = t;
        }
}
