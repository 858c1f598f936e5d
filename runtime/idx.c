/*
 * idx.c: IDX files, the format MNIST ships in, plain or gzip.
 *
 * The header is two zero bytes, a type code, the number of dimensions,
 * then each dimension as a big-endian u32; the data follows, big-endian.
 * The sizes are checked before anything is allocated: a header whose
 * dimensions multiply past a bound, or data shorter or longer than they
 * promise, is refused and never read past.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "rt_read.h"
#include "rt_internal.h"

enum { MAX_IDX_BYTES = 1 << 30 };

static int read_exact(gzFile f, void *p, size_t n) { return gzread(f, p, (unsigned)n) == (int)n; }

/* The n bytes of data, or NULL if the file ends first. The buffer grows
 * with what the file really holds, so a header that promises 1 GiB over a
 * few bytes costs a few bytes, not a 1 GiB allocation. */
static unsigned char *read_data(gzFile f, size_t n)
{
    unsigned char *p = NULL;
    size_t have = 0, cap = 0;
    while (have < n) {
        if (have == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            cap = cap < n ? cap : n;
            unsigned char *q = realloc(p, cap);
            if (!q)
                rt_die("out of memory reading IDX data (%zu bytes)", cap);
            p = q;
        }
        int got = gzread(f, p + have, (unsigned)(cap - have));
        if (got <= 0) {
            free(p);
            return NULL;
        }
        have += (size_t)got;
    }
    return p;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int rt_idx_read(const char *path, rt_array *out, char *err, size_t errlen)
{
    *out = (rt_array){0};
    gzFile f = gzopen(path, "rb");
    if (!f)
        return rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    unsigned char head[4];
    int status = 0;
    if (!read_exact(f, head, 4) || head[0] || head[1]) {
        gzclose(f);
        return rt_errf(err, errlen, "%s: not an IDX file (it must start with two zero bytes)",
                       path);
    }
    /* type code -> element size; signedness and kind */
    int size = head[2] == 0x08 || head[2] == 0x09   ? 1
               : head[2] == 0x0B                    ? 2
               : head[2] == 0x0C || head[2] == 0x0D ? 4
               : head[2] == 0x0E                    ? 8
                                                    : 0;
    if (!size || head[3] < 1 || head[3] > RT_MAX_RANK) {
        gzclose(f);
        return rt_errf(err, errlen, "%s: IDX type 0x%02x with %d dimensions is not supported", path,
                       head[2], head[3]);
    }
    out->rank = head[3];
    out->size = 1;
    for (int d = 0; d < out->rank && !status; d++) {
        unsigned char b[4];
        if (!read_exact(f, b, 4))
            status = rt_errf(err, errlen, "%s: truncated in its header", path);
        else {
            out->shape[d] = be32(b);
            if (out->shape[d] < 1 || out->size > MAX_IDX_BYTES / size / out->shape[d])
                status = rt_errf(err, errlen,
                                 "%s: dimension %d is %ld: more than gradc reads "
                                 "(1 GiB) or empty",
                                 path, d + 1, out->shape[d]);
            else
                out->size *= out->shape[d];
        }
    }
    unsigned char *raw = NULL;
    if (!status) {
        raw = read_data(f, (size_t)out->size * size);
        char extra;
        if (!raw)
            status = rt_errf(err, errlen, "%s: truncated: the header promises %ld values", path,
                             out->size);
        else if (gzread(f, &extra, 1) == 1)
            status = rt_errf(err, errlen, "%s: longer than its header says (%ld values)", path,
                             out->size);
    }
    gzclose(f);
    if (status) {
        free(raw);
        *out = (rt_array){0};
        return status;
    }
    int code = head[2];
    out->dtype = code == 0x0D ? RT_F32 : code == 0x0E ? RT_F64 : RT_I32;
    out->data = rt_malloc((size_t)out->size * rt_dtype_width(out->dtype));
    for (long i = 0; i < out->size; i++) {
        const unsigned char *b = raw + i * size;
        if (code == 0x08)
            ((int32_t *)out->data)[i] = b[0];
        else if (code == 0x09)
            ((int32_t *)out->data)[i] = (int8_t)b[0];
        else if (code == 0x0B)
            ((int32_t *)out->data)[i] = (int16_t)(b[0] << 8 | b[1]);
        else if (code == 0x0C)
            ((int32_t *)out->data)[i] = (int32_t)be32(b);
        else if (code == 0x0D) {
            uint32_t u = be32(b);
            memcpy((float *)out->data + i, &u, 4);
        } else {
            uint64_t u = (uint64_t)be32(b) << 32 | be32(b + 4);
            memcpy((double *)out->data + i, &u, 8);
        }
    }
    free(raw);
    return 0;
}
