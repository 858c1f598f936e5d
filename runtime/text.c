/*
 * text.c: plain text for character models: every byte of the file, as an
 * int32 in [0, 256), read whole (up to 1 GiB).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_read.h"
#include "rt_internal.h"

enum { MAX_TEXT_BYTES = 1 << 30 };

int rt_text_read(const char *path, rt_array *out, char *err, size_t errlen)
{
    *out = (rt_array){0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) || ftell(f) < 0) {
        fclose(f);
        return rt_errf(err, errlen, "%s: cannot read its size", path);
    }
    long n = ftell(f);
    rewind(f);
    if (n < 1 || n > MAX_TEXT_BYTES) {
        fclose(f);
        return rt_errf(err, errlen, "%s: %ld bytes: a text must have 1 byte to 1 GiB", path, n);
    }
    unsigned char *bytes = rt_malloc((size_t)n);
    size_t got = fread(bytes, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(bytes);
        return rt_errf(err, errlen, "%s: read %zu of %ld bytes", path, got, n);
    }
    *out = (rt_array){.dtype = RT_I32, .rank = 1, .shape = {n}, .size = n};
    out->data = rt_malloc((size_t)n * sizeof(int32_t));
    for (long i = 0; i < n; i++)
        ((int32_t *)out->data)[i] = bytes[i];
    free(bytes);
    return 0;
}
