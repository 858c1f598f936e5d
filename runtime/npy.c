/*
 * npy.c: NumPy .npy files, read (format 1.0 to 3.0) and written (1.0).
 *
 * A file is a magic string, a version, a header length, a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (64, 1000), }
 * and the raw C-order data. The header is parsed as a tiny language, not
 * matched as text, so key order, quoting and spacing do not matter. Every
 * size is checked against the file's real length before anything is
 * allocated or read, so a lying header costs an error line, never a crash
 * or an out-of-bounds read (and data longer than the header says is
 * refused like data shorter). Loaded data ends as float32, float64 or
 * int32; int64 and uint8 are narrowed to int32 only when every value fits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rt_internal.h"

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* A dtype as the file stores it. */
typedef struct {
    char kind;    /* 'f', 'i' or 'u' */
    int width;    /* bytes per element */
    rt_dtype out; /* what it becomes in memory */
    const char *name;
} FileType;

static const FileType file_types[] = {
    {'f', 4, RT_F32, "float32"}, {'f', 8, RT_F64, "float64"}, {'i', 4, RT_I32, "int32"},
    {'i', 8, RT_I32, "int64"},   {'u', 1, RT_I32, "uint8"},
};

typedef struct {
    char descr[16];
    int has_descr, has_fortran, has_shape;
    int fortran;
    int rank;
    long shape[RT_MAX_RANK];
} Header;

/* The parser's cursor; errors go to err, prefixed with the path. */
typedef struct {
    const char *p, *end;
    const char *path;
    char *err;
    size_t errlen;
} Parser;

/* ---- header parsing ---- */

static int bad_header(Parser *ps, const char *what)
{
    return rt_errf(ps->err, ps->errlen, "%s: bad .npy header: %s", ps->path, what);
}

static void skip_ws(Parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int accept(Parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string; *s and *n point into the header. */
static int parse_string(Parser *ps, const char **s, size_t *n)
{
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return bad_header(ps, "expected a quoted string");
    char q = *ps->p++;
    *s = ps->p;
    while (ps->p < ps->end && *ps->p != q)
        ps->p += (*ps->p == '\\' && ps->p + 1 < ps->end) ? 2 : 1;
    if (ps->p >= ps->end)
        return bad_header(ps, "unterminated string");
    *n = (size_t)(ps->p - *s);
    ps->p++;
    return 0;
}

static int parse_bool(Parser *ps, int *v)
{
    skip_ws(ps);
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0) {
        ps->p += 4;
        *v = 1;
        return 0;
    }
    if (left >= 5 && memcmp(ps->p, "False", 5) == 0) {
        ps->p += 5;
        *v = 0;
        return 0;
    }
    return bad_header(ps, "fortran_order is neither True nor False");
}

static int parse_dim(Parser *ps, long *v)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return bad_header(ps, "shape holds something other than a non-negative integer");
    long x = 0;
    for (; ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9'; ps->p++) {
        int d = *ps->p - '0';
        if (x > (LONG_MAX - d) / 10)
            return rt_errf(ps->err, ps->errlen, "%s: shape has a dimension too large to hold",
                           ps->path);
        x = x * 10 + d;
    }
    if (ps->p < ps->end && (*ps->p == 'L' || *ps->p == 'l'))
        ps->p++; /* Python 2 wrote long integers as 3L */
    *v = x;
    return 0;
}

/* (), (3,), (3, 4) and (3, 4,) are all valid tuples. */
static int parse_shape(Parser *ps, Header *h)
{
    if (!accept(ps, '('))
        return bad_header(ps, "shape is not a tuple");
    h->rank = 0;
    while (!accept(ps, ')')) {
        long d = 0;
        if (h->rank == RT_MAX_RANK)
            return rt_errf(ps->err, ps->errlen, "%s: rank is more than %d", ps->path, RT_MAX_RANK);
        if (parse_dim(ps, &d))
            return -1;
        h->shape[h->rank++] = d;
        if (!accept(ps, ',')) {
            if (accept(ps, ')'))
                break;
            return bad_header(ps, "expected ',' or ')' in shape");
        }
    }
    return 0;
}

/* Keys numpy may add one day: skip their value, brackets and strings
 * balanced, up to the ',' or '}' that ends it. */
static int skip_value(Parser *ps)
{
    int depth = 0;
    skip_ws(ps);
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == '\'' || c == '"') {
            const char *s;
            size_t n;
            if (parse_string(ps, &s, &n))
                return -1;
            continue;
        }
        if (depth == 0 && (c == ',' || c == '}'))
            return 0;
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if (c == ')' || c == ']' || c == '}')
            depth--;
        ps->p++;
    }
    return bad_header(ps, "unterminated value");
}

static int parse_entry(Parser *ps, Header *h)
{
    const char *key, *s;
    size_t klen, n;
    if (parse_string(ps, &key, &klen))
        return -1;
    if (!accept(ps, ':'))
        return bad_header(ps, "expected ':' after a key");
    if (klen == 5 && memcmp(key, "descr", 5) == 0) {
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p != '\'' && *ps->p != '"')
            return rt_errf(ps->err, ps->errlen, "%s: structured dtypes are not supported",
                           ps->path);
        if (parse_string(ps, &s, &n))
            return -1;
        if (n >= sizeof h->descr)
            return rt_errf(ps->err, ps->errlen, "%s: unsupported dtype '%.*s'", ps->path, (int)n,
                           s);
        memcpy(h->descr, s, n);
        h->descr[n] = '\0';
        h->has_descr = 1;
        return 0;
    }
    if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
        h->has_fortran = 1;
        return parse_bool(ps, &h->fortran);
    }
    if (klen == 5 && memcmp(key, "shape", 5) == 0) {
        h->has_shape = 1;
        return parse_shape(ps, h);
    }
    return skip_value(ps);
}

static int parse_header(Parser *ps, Header *h)
{
    memset(h, 0, sizeof *h);
    if (!accept(ps, '{'))
        return bad_header(ps, "not a dict");
    while (!accept(ps, '}')) {
        if (parse_entry(ps, h))
            return -1;
        if (!accept(ps, ',')) {
            if (accept(ps, '}'))
                break;
            return bad_header(ps, "expected ',' or '}' after a value");
        }
    }
    if (!h->has_descr || !h->has_fortran || !h->has_shape)
        return bad_header(ps, !h->has_descr   ? "no 'descr'"
                              : !h->has_shape ? "no 'shape'"
                                              : "no 'fortran_order'");
    return 0;
}

/* '<f4' and friends; '|' (and for one byte, any order mark) is fine. */
static int find_type(const char *path, const char *descr, const FileType **ft, char *err,
                     size_t errlen)
{
    char order = descr[0];
    if (strchr("<>|=", order) == NULL || descr[1] == '\0')
        return rt_errf(err, errlen, "%s: unsupported dtype '%s'", path, descr);
    for (size_t i = 0; i < sizeof file_types / sizeof file_types[0]; i++) {
        const FileType *t = &file_types[i];
        char want[8];
        snprintf(want, sizeof want, "%c%d", t->kind, t->width);
        if (strcmp(descr + 1, want) != 0)
            continue;
        int little = order == '<' || (order == '=' && rt_is_little_endian());
        if (t->width > 1 && !little)
            return rt_errf(err, errlen,
                           "%s: dtype '%s' is big-endian; save it little-endian "
                           "(a.astype(a.dtype.newbyteorder('<')))",
                           path, descr);
        *ft = t;
        return 0;
    }
    return rt_errf(err, errlen, "%s: unsupported dtype '%s' (need <f4, <f8, <i4, <i8 or |u1)", path,
                   descr);
}

/* ---- reading ---- */

typedef struct {
    FILE *f;
    const char *path;
    long file_size;
    char *err;
    size_t errlen;
} Reader;

static int read_exact(Reader *r, void *buf, size_t n, const char *what)
{
    if (fread(buf, 1, n, r->f) != n)
        return rt_errf(r->err, r->errlen, "%s: truncated: cannot read the %s", r->path, what);
    return 0;
}

static uint32_t le_u32(const unsigned char *b, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* Reads everything up to the data; leaves the file at its first byte. */
static int read_preamble(Reader *r, Header *h, long *data_start)
{
    unsigned char pre[12];
    if (read_exact(r, pre, 8, "magic string"))
        return -1;
    if (memcmp(pre, magic, sizeof magic) != 0)
        return rt_errf(r->err, r->errlen, "%s: not a .npy file (bad magic string)", r->path);
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3)
        return rt_errf(r->err, r->errlen, "%s: unsupported .npy format version %d.%d", r->path,
                       major, minor);
    int lenbytes = major == 1 ? 2 : 4;
    if (read_exact(r, pre + 8, (size_t)lenbytes, "header length"))
        return -1;
    long hlen = (long)le_u32(pre + 8, lenbytes);
    *data_start = 8 + lenbytes + hlen;
    if (*data_start > r->file_size)
        return rt_errf(r->err, r->errlen,
                       "%s: truncated: header says it is %ld bytes, "
                       "file has %ld",
                       r->path, hlen, r->file_size - 8 - lenbytes);
    char *text = rt_malloc((size_t)hlen);
    int rc = read_exact(r, text, (size_t)hlen, "header");
    if (rc == 0) {
        Parser ps = {text, text + hlen, r->path, r->err, r->errlen};
        rc = parse_header(&ps, h);
    }
    free(text);
    return rc;
}

/* Number of elements, or -1 (with a message) if it overflows. The nonzero
 * dimensions must multiply without overflow even when another is 0: users
 * of the array multiply some of them (a row's size) and would overflow. */
static long checked_size(const char *path, const Header *h, int width, char *err, size_t errlen)
{
    long n = 1;
    int empty = 0;
    for (int i = 0; i < h->rank; i++) {
        if (h->shape[i] == 0) {
            empty = 1;
            continue;
        }
        if (n > LONG_MAX / width / h->shape[i]) {
            char s[160];
            rt_format_shape(s, sizeof s, h->rank, h->shape, 0);
            return rt_errf(err, errlen, "%s: shape %s is too large", path, s);
        }
        n *= h->shape[i];
    }
    return empty ? 0 : n;
}

/* int64 and uint8 become int32; an int64 that does not fit is an error. */
static int narrow(Reader *r, const FileType *ft, const unsigned char *raw, long n, int32_t *out)
{
    for (long i = 0; i < n; i++) {
        if (ft->width == 1) {
            out[i] = raw[i];
            continue;
        }
        int64_t v;
        memcpy(&v, raw + 8 * i, 8);
        if (v < INT32_MIN || v > INT32_MAX)
            return rt_errf(r->err, r->errlen,
                           "%s: element %ld is %lld, which does not fit "
                           "in int32",
                           r->path, i, (long long)v);
        out[i] = (int32_t)v;
    }
    return 0;
}

static int read_data(Reader *r, const FileType *ft, rt_array *out)
{
    size_t bytes = (size_t)out->size * (size_t)ft->width;
    size_t obytes = (size_t)out->size * rt_dtype_width(out->dtype);
    out->data = rt_malloc(obytes);
    if ((size_t)ft->width == rt_dtype_width(out->dtype)) {
        if (read_exact(r, out->data, bytes, "data"))
            return -1;
        rt_swap_if_big_endian(out->data, out->size, ft->width);
        return 0;
    }
    unsigned char *raw = rt_malloc(bytes);
    int rc = read_exact(r, raw, bytes, "data");
    if (rc == 0) {
        rt_swap_if_big_endian(raw, out->size, ft->width);
        rc = narrow(r, ft, raw, out->size, out->data);
    }
    free(raw);
    return rc;
}

static int check_layout(Reader *r, const Header *h, const FileType *ft, long data_start, long *size)
{
    if (h->fortran)
        return rt_errf(r->err, r->errlen,
                       "%s: fortran_order is True; save it in C order "
                       "(np.ascontiguousarray)",
                       r->path);
    *size = checked_size(r->path, h, ft->width, r->err, r->errlen);
    if (*size < 0)
        return -1;
    long have = r->file_size - data_start, need = *size * ft->width;
    char s[160];
    rt_format_shape(s, sizeof s, h->rank, h->shape, 0);
    if (have < need)
        return rt_errf(r->err, r->errlen,
                       "%s: truncated: header says %s %s (%ld bytes), "
                       "file has %ld bytes of data",
                       r->path, s, ft->name, need, have);
    /* numpy writes exactly the data; more means the header lies about it. */
    if (have > need)
        return rt_errf(r->err, r->errlen,
                       "%s: longer than its header says: %s %s is %ld bytes, "
                       "file has %ld bytes of data",
                       r->path, s, ft->name, need, have);
    return 0;
}

static int read_file(Reader *r, rt_array *out, const FileType **ftp)
{
    Header h;
    const FileType *ft = NULL;
    long data_start = 0, size = 0;
    if (read_preamble(r, &h, &data_start) || find_type(r->path, h.descr, &ft, r->err, r->errlen) ||
        check_layout(r, &h, ft, data_start, &size))
        return -1;
    *ftp = ft;
    out->dtype = ft->out;
    out->rank = h.rank;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->size = size;
    if (fseek(r->f, data_start, SEEK_SET) != 0)
        return rt_errf(r->err, r->errlen, "%s: cannot seek: %s", r->path, strerror(errno));
    return read_data(r, ft, out);
}

int rt_npy_read_typed(const char *path, rt_array *out, const char **file_type, char *err,
                      size_t errlen)
{
    struct stat st;
    const FileType *ft = NULL;
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return rt_errf(err, errlen, "%s: not a regular file", path);
    }
    Reader r = {f, path, (long)st.st_size, err, errlen};
    int rc = read_file(&r, out, &ft);
    fclose(f);
    if (rc)
        rt_array_free(out);
    if (file_type)
        *file_type = ft ? ft->name : NULL;
    return rc;
}

int rt_npy_read(const char *path, rt_array *out, char *err, size_t errlen)
{
    return rt_npy_read_typed(path, out, NULL, err, errlen);
}

void rt_array_free(rt_array *a)
{
    free(a->data);
    a->data = NULL;
}

/* ---- writing ---- */

static const char *descr_of(rt_dtype d)
{
    return d == RT_F32 ? "<f4" : d == RT_F64 ? "<f8" : "<i4";
}

/* The magic, version, length and dict, padded with spaces and a newline so
 * the data starts on a 64-byte boundary as numpy itself does. */
static size_t format_header(char *buf, size_t n, rt_dtype dtype, int rank, const long *shape)
{
    char dims[RT_MAX_RANK * 24 + 4] = "";
    size_t used = 0;
    for (int i = 0; i < rank; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%s%ld", i ? ", " : "", shape[i]);
    if (rank == 1)
        snprintf(dims + used, sizeof dims - used, ",");
    int len = snprintf(buf + 10, n - 10,
                       "{'descr': '%s', 'fortran_order': False, "
                       "'shape': (%s), }",
                       descr_of(dtype), dims);
    size_t total = 10 + (size_t)len + 1;
    total = (total + 63) / 64 * 64;
    memset(buf + 10 + len, ' ', total - 10 - (size_t)len);
    buf[total - 1] = '\n';
    memcpy(buf, magic, sizeof magic);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)((total - 10) & 0xff);
    buf[9] = (char)((total - 10) >> 8);
    return total;
}

/* path.tmp.PID, or with a counter if a stale one is in the way: the same
 * directory, so the final rename never crosses filesystems. */
static int open_temp(const char *path, char *tmp, size_t n)
{
    for (int k = 0; k < 100; k++) {
        snprintf(tmp, n, "%s.tmp.%ld.%d", path, (long)getpid(), k);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_body(int fd, const char *hdr, size_t hlen, rt_dtype dtype, long size,
                      const void *data)
{
    size_t bytes = (size_t)size * rt_dtype_width(dtype);
    if (write_all(fd, hdr, hlen))
        return -1;
    if (rt_is_little_endian())
        return write_all(fd, data, bytes);
    void *copy = rt_malloc(bytes);
    memcpy(copy, data, bytes);
    rt_swap_if_big_endian(copy, size, rt_dtype_width(dtype));
    int rc = write_all(fd, copy, bytes);
    free(copy);
    return rc;
}

static int check_write_shape(const char *path, int rank, const long *shape, long *size, char *err,
                             size_t errlen)
{
    if (rank < 0 || rank > RT_MAX_RANK)
        return rt_errf(err, errlen, "%s: cannot write rank %d (at most %d)", path, rank,
                       RT_MAX_RANK);
    Header h = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return rt_errf(err, errlen, "%s: cannot write a negative dimension", path);
        h.shape[i] = shape[i];
    }
    *size = checked_size(path, &h, 8, err, errlen);
    return *size < 0 ? -1 : 0;
}

int rt_npy_write(const char *path, rt_dtype dtype, int rank, const long *shape, const void *data,
                 char *err, size_t errlen)
{
    char hdr[512], tmp[4096];
    long size = 0;
    if (check_write_shape(path, rank, shape, &size, err, errlen))
        return -1;
    size_t hlen = format_header(hdr, sizeof hdr, dtype, rank, shape);
    int fd = open_temp(path, tmp, sizeof tmp);
    if (fd < 0)
        return rt_errf(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    int rc = write_body(fd, hdr, hlen, dtype, size, data);
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        return rt_errf(err, errlen, "%s: cannot write: %s", path, strerror(saved));
    }
    return 0;
}
