/*
 * checkpoint.c: what outlives a run: checkpoints, and parameters exported
 * as .npy files (--export) and read back from them (--init).
 *
 * A checkpoint is the params block (the parameters, then any buffers, such
 * as batch norm's running averages) and the optimizer state, byte for byte
 * in the model's real type, behind a fixed little-endian header and ahead of
 * an FNV-1a checksum of everything before it:
 *
 *   "GRADCKPT"  u32 version (2)  u32 header size (132)
 *   u64 signature  u32 real (4 = float32, 8 = float64)  i64 step  u64 seed
 *   i64 n_saved  i64 n_state  char name[64] (NUL padded)
 *   i64 epoch  i64 row  i64 batch
 *   real params[n_saved]  real state[n_state]  u64 checksum
 *
 * epoch, row and batch are where the data stood: the next minibatch is
 * rows row... of epoch epoch's order, and each step took batch rows (every
 * process's together), so a run on another number of processes goes on
 * from that row. Version 1 (header 108 bytes) had no such fields; it is
 * still read, its place in the data then counted from the step.
 *
 * The signature hashes everything that decides whether the bytes fit a
 * model, so a checkpoint of another model, or of this one recompiled with
 * other shapes, is refused by name. Loading checks every byte of the file
 * before it touches the model, so a refused file leaves the arena as it
 * was; saving writes a temporary file and renames it, so a crash mid-save
 * leaves the previous checkpoint whole (and at worst a PATH.tmp, which the
 * next save writes over: one name, so kills leave no trail of them).
 * A parameter that is not finite is refused too: the trainer never saves
 * one, so such a file was made by hand, and resuming from it would only
 * fail a step later with the file named as the last good checkpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "rt_internal.h"

enum {
    VERSION = 2,
    NAME_LEN = 64,
    HEADER_V1 = 8 + 4 + 8 + 8 + 8 + 8 + NAME_LEN, /* what follows the 16-byte preamble */
    HEADER_SIZE = HEADER_V1 + 3 * 8,
    DATA_START = 16 + HEADER_SIZE,
    CHECKSUM_SIZE = 8
};
static const char magic[8] = {'G', 'R', 'A', 'D', 'C', 'K', 'P', 'T'};

typedef struct {
    uint64_t signature, seed;
    uint32_t real; /* the element width: 4 or 8 */
    int64_t step, n_saved, n_state;
    char name[NAME_LEN + 1];
    int64_t epoch, row, batch; /* version 1: epoch -1 */
    long start;                /* where the params block begins: 16 + the header's size */
} Header;

/* ---- bytes: FNV-1a and little-endian fields, the same on every host ---- */

static const uint64_t fnv_basis = 0xcbf29ce484222325u, fnv_prime = 0x100000001b3u;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * fnv_prime;
    return h;
}

static void put_le(unsigned char *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> 8 * i);
}

static uint64_t get_le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

/* The parameters, then the buffers: the params block's order, in which a
 * checkpoint holds them, --export writes them and --init reads them. */
static const rt_tensor *saved_tensor(const rt_model *m, int k)
{
    return k < m->n_params ? &m->params[k] : &m->buffers[k - m->n_params];
}

/* ---- the signature ---- */

static uint64_t hash_int(uint64_t h, int64_t v)
{
    unsigned char b[8];
    put_le(b, (uint64_t)v, 8);
    return fnv(h, b, 8);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "", strlen(s ? s : "") + 1); /* the NUL ends it */
}

/* As if the model were built with `real`, so a load can tell "the other
 * build of this model" from "another model". Offsets count from the params
 * block, because that block is what the file holds: inputs growing in front
 * of it do not change where a parameter sits in a checkpoint. */
static uint64_t hash_tensor(uint64_t h, const rt_model *m, const rt_tensor *t)
{
    h = hash_str(h, t->name);
    h = hash_int(h, t->rank);
    for (int i = 0; i < t->rank; i++)
        h = hash_int(h, t->shape[i]);
    return hash_int(h, t->offset - m->params_offset);
}

static uint64_t signature(const rt_model *m, rt_dtype real)
{
    uint64_t h = hash_str(fnv_basis, m->name);
    h = hash_int(h, m->batch);
    h = hash_int(h, rt_dtype_width(real));
    h = hash_int(h, m->optimizer);
    h = hash_int(h, m->n_param_elems);
    h = hash_int(h, m->n_state);
    h = hash_int(h, m->n_params);
    for (int k = 0; k < m->n_params; k++)
        h = hash_tensor(h, m, &m->params[k]);
    /* Only models with buffers hash them: other checkpoints stay valid. */
    if (m->n_buffers)
        h = hash_int(h, m->n_buffers);
    for (int k = 0; k < m->n_buffers; k++)
        h = hash_tensor(h, m, &m->buffers[k]);
    return h;
}

uint64_t rt_model_signature(const rt_model *m) { return signature(m, m->real); }

/* The file size a checkpoint of m has, its params block from start. */
static long expected_size(const rt_model *m, long start)
{
    return start + (rt_saved_elems(m) + m->n_state) * rt_dtype_width(m->real) + CHECKSUM_SIZE;
}

static void format_header(unsigned char *b, const rt_model *m, const rt_progress *at)
{
    memset(b, 0, DATA_START);
    memcpy(b, magic, sizeof magic);
    put_le(b + 8, VERSION, 4);
    put_le(b + 12, HEADER_SIZE, 4);
    put_le(b + 16, rt_model_signature(m), 8);
    put_le(b + 24, (uint64_t)rt_dtype_width(m->real), 4);
    put_le(b + 28, (uint64_t)at->step, 8);
    put_le(b + 36, at->seed, 8);
    put_le(b + 44, (uint64_t)rt_saved_elems(m), 8);
    put_le(b + 52, (uint64_t)m->n_state, 8);
    /* At most 63 bytes of the name, so the field always ends in a NUL. */
    size_t n = strlen(m->name);
    memcpy(b + 60, m->name, n < NAME_LEN ? n : NAME_LEN - 1);
    put_le(b + 124, (uint64_t)at->epoch, 8);
    put_le(b + 132, (uint64_t)at->row, 8);
    put_le(b + 140, (uint64_t)at->batch, 8);
}

/* b holds the header of a file whose preamble check_preamble passed. */
static void parse_header(const unsigned char *b, Header *h)
{
    h->start = 16 + (long)get_le(b + 12, 4);
    h->signature = get_le(b + 16, 8);
    h->real = (uint32_t)get_le(b + 24, 4);
    h->step = (int64_t)get_le(b + 28, 8);
    h->seed = get_le(b + 36, 8);
    h->n_saved = (int64_t)get_le(b + 44, 8);
    h->n_state = (int64_t)get_le(b + 52, 8);
    memcpy(h->name, b + 60, NAME_LEN);
    h->name[NAME_LEN] = '\0';
    h->epoch = h->start == DATA_START ? (int64_t)get_le(b + 124, 8) : -1;
    h->row = h->start == DATA_START ? (int64_t)get_le(b + 132, 8) : 0;
    h->batch = h->start == DATA_START ? (int64_t)get_le(b + 140, 8) : 0;
}

/* ---- saving ---- */

typedef struct {
    FILE *f;
    uint64_t sum; /* FNV-1a of everything written so far */
    int failed;
} Writer;

static void put(Writer *w, const void *p, size_t n)
{
    w->sum = fnv(w->sum, p, n);
    if (!w->failed && fwrite(p, 1, n, w->f) != n)
        w->failed = 1;
}

/* In chunks, so a big-endian host swaps a copy, never the live model. */
static void put_reals(Writer *w, const void *data, long n, int width)
{
    const char *p = data;
    if (rt_is_little_endian()) {
        put(w, p, (size_t)n * (size_t)width);
        return;
    }
    unsigned char buf[4096];
    long per = (long)sizeof buf / width;
    for (long i = 0; i < n; i += per) {
        long k = n - i < per ? n - i : per;
        memcpy(buf, p + i * width, (size_t)(k * width));
        rt_swap_if_big_endian(buf, k, width);
        put(w, buf, (size_t)(k * width));
    }
}

/* The rename is durable only once the directory entry is on disk too. */
static int sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY);
    if (fd < 0)
        return -1;
    /* Some filesystems cannot sync a directory; that is no write error. */
    int rc = fsync(fd) != 0 && errno != EINVAL ? -1 : 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Writes the file at tmp; 0, or -1 with errno set. */
static int write_file(const rt_model *m, const char *tmp, const rt_progress *at)
{
    Writer w = {.f = fopen(tmp, "wb"), .sum = fnv_basis};
    if (!w.f)
        return -1;
    unsigned char hdr[DATA_START], sum[CHECKSUM_SIZE];
    size_t width = rt_dtype_width(m->real);
    const char *arena = m->arena;
    format_header(hdr, m, at);
    put(&w, hdr, sizeof hdr);
    put_reals(&w, arena + m->params_offset * width, rt_saved_elems(m), width);
    put_reals(&w, arena + m->state_offset * width, m->n_state, width);
    put_le(sum, w.sum, CHECKSUM_SIZE);
    put(&w, sum, sizeof sum);
    int rc = w.failed || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0 ? -1 : 0;
    int saved = errno;
    if (fclose(w.f) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

int rt_checkpoint_save(const rt_model *m, const char *path, long step, uint64_t seed, char *err,
                       size_t errlen)
{
    const rt_progress at = {.step = step, .seed = seed, .epoch = -1};
    return rt_checkpoint_save_progress(m, path, &at, err, errlen);
}

int rt_checkpoint_save_progress(const rt_model *m, const char *path, const rt_progress *at,
                                char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return rt_errf(err, errlen, "%s: cannot save a checkpoint: the path is too long", path);
    if (write_file(m, tmp, at) != 0 || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        int where = saved == ENOENT || saved == EACCES || saved == EROFS || saved == EISDIR;
        return rt_errf(err, errlen, "%s: cannot save a checkpoint: %s%s", path, strerror(saved),
                       where ? " (is its directory there and writable?)" : "");
    }
    if (sync_dir(path) != 0)
        return rt_errf(err, errlen, "%s: saved, but cannot sync its directory: %s", path,
                       strerror(errno));
    return 0;
}

/* ---- loading ---- */

/* The preamble: magic, version and header size. */
static int check_preamble(const char *path, const unsigned char *b, size_t n, char *err,
                          size_t errlen)
{
    if (memcmp(b, magic, n < sizeof magic ? n : sizeof magic) != 0)
        return rt_errf(err, errlen,
                       "%s: not a gradc checkpoint (give --resume a file that "
                       "--checkpoint wrote)",
                       path);
    if (n < 16)
        return rt_errf(err, errlen, "%s: truncated: %zu bytes, shorter than a checkpoint header",
                       path, n);
    uint32_t version = (uint32_t)get_le(b + 8, 4), hsize = (uint32_t)get_le(b + 12, 4);
    if (version > VERSION)
        return rt_errf(err, errlen,
                       "%s: written by a newer gradc (version %u); this program "
                       "reads version %d: rebuild it with that gradc",
                       path, version, VERSION);
    if (version < 1 || hsize != (version == 1 ? HEADER_V1 : HEADER_SIZE))
        return rt_errf(err, errlen, "%s: corrupt: version %u with a header of %u bytes", path,
                       version, hsize);
    if (n < 16 + hsize)
        return rt_errf(err, errlen, "%s: truncated: %zu bytes, shorter than a checkpoint header",
                       path, n);
    return 0;
}

/* Whether the checkpoint described by h belongs to m: the name, then the
 * real type, then everything else the signature covers. */
static int check_identity(const rt_model *m, const char *path, const Header *h, char *err,
                          size_t errlen)
{
    char name[NAME_LEN];
    snprintf(name, sizeof name, "%s", m->name); /* as format_header stores it */
    if (strcmp(h->name, name) != 0)
        return rt_errf(err, errlen, "%s: is a checkpoint of model '%s', not of '%s'", path, h->name,
                       m->name);
    rt_dtype other = m->real == RT_F64 ? RT_F32 : RT_F64;
    if (h->real != (uint32_t)rt_dtype_width(m->real) && h->signature == signature(m, other))
        return rt_errf(err, errlen,
                       "%s: holds %s values; this program is the %s build (resume "
                       "with the %s build of %s)",
                       path, rt_dtype_name(other), rt_dtype_name(m->real), rt_dtype_name(other),
                       m->name);
    if (h->signature != rt_model_signature(m) || h->real != (uint32_t)rt_dtype_width(m->real) ||
        h->n_saved != rt_saved_elems(m) || h->n_state != m->n_state)
        return rt_errf(err, errlen,
                       "%s: is a checkpoint of another shape of model '%s' "
                       "(recompiled?): its parameters do not fit this build",
                       path, m->name);
    return 0;
}

/* For a file whose size is not the one m expects: say why, from its header
 * (not checksummed, since the file was not read). */
static int explain_size(const rt_model *m, const char *path, long size, const Header *h, char *err,
                        size_t errlen)
{
    long expect = expected_size(m, h->start);
    int width = h->real == 4 || h->real == 8 ? (int)h->real : 0;
    /* What the header says its own size is, if its counts are sane (each
     * bounded alone: their sum could overflow). */
    long own = -1;
    if (width && h->n_saved >= 0 && h->n_state >= 0 && h->n_saved < (1L << 40) &&
        h->n_state < (1L << 40))
        own = h->start + (long)(h->n_saved + h->n_state) * width + CHECKSUM_SIZE;
    if (own == size && check_identity(m, path, h, err, errlen))
        return -1;
    if (size < expect && (own < 0 || size < own))
        return rt_errf(err, errlen, "%s: truncated: %ld of %ld bytes (was it copied whole?)", path,
                       size, expect);
    return rt_errf(err, errlen, "%s: corrupt: %ld bytes where a checkpoint of %s has %ld", path,
                   size, m->name, expect);
}

/* The whole file, when it has exactly the size m expects: at most that
 * many bytes are ever allocated, whatever the file says. */
static unsigned char *read_all(const rt_model *m, const char *path, Header *h, char *err,
                               size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    long size = -1;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode))
        size = (long)st.st_size;
    /* A file of another size than either version's is only looked at for
     * its header. */
    int whole = size == expected_size(m, DATA_START) || size == expected_size(m, 16 + HEADER_V1);
    long want = whole ? size : size < DATA_START ? size : DATA_START;
    unsigned char *buf = rt_malloc(DATA_START + (size_t)(want > 0 ? want : 0));
    size_t got = size < 0 ? 0 : fread(buf, 1, (size_t)want, f);
    int bad = size < 0 || got != (size_t)want || ferror(f);
    fclose(f);
    if (size < 0)
        rt_errf(err, errlen, "%s: not a regular file (give --resume a checkpoint file)", path);
    else if (bad)
        rt_errf(err, errlen, "%s: cannot read all %ld bytes", path, size);
    else if (check_preamble(path, buf, got, err, errlen) == 0) {
        parse_header(buf, h);
        if (size == expected_size(m, h->start))
            return buf;
        explain_size(m, path, size, h, err, errlen);
    }
    free(buf);
    return NULL;
}

/* The first parameter (or buffer) value in the file's params block that
 * is not finite: 1 and its tensor and index, or 0 if every value is. */
static int find_nonfinite(const rt_model *m, const unsigned char *p, const rt_tensor **t, long *i,
                          double *v)
{
    size_t width = rt_dtype_width(m->real);
    for (int k = 0; k < m->n_params + m->n_buffers; k++) {
        *t = saved_tensor(m, k);
        const unsigned char *b = p + ((*t)->offset - m->params_offset) * width;
        for (*i = 0; *i < (*t)->size; (*i)++, b += width) {
            uint64_t bits = get_le(b, width);
            if (width == 4) {
                uint32_t u = (uint32_t)bits;
                float f;
                memcpy(&f, &u, 4);
                *v = f;
            } else
                memcpy(v, &bits, 8);
            if (!isfinite(*v))
                return 1;
        }
    }
    return 0;
}

/* The load both entry points share; the optimizer state is copied only
 * when with_state (an inference model has none). */
static int load(const rt_model *m, const char *path, int with_state, rt_progress *at, char *err,
                size_t errlen)
{
    Header h;
    unsigned char *buf = read_all(m, path, &h, err, errlen);
    if (!buf)
        return -1;
    long size = expected_size(m, h.start), body = size - CHECKSUM_SIZE;
    int rc = 0;
    if (fnv(fnv_basis, buf, (size_t)body) != get_le(buf + body, CHECKSUM_SIZE))
        rc = rt_errf(err, errlen,
                     "%s: corrupt: checksum mismatch (the file was damaged; resume "
                     "from an earlier checkpoint)",
                     path);
    else if (check_identity(m, path, &h, err, errlen))
        rc = -1;
    else if (h.step < 0)
        rc = rt_errf(err, errlen, "%s: corrupt: step %lld", path, (long long)h.step);
    else if (h.epoch < -1 || h.row < 0 || h.batch < 0)
        rc = rt_errf(err, errlen, "%s: corrupt: the place in the data is epoch %lld, row %lld",
                     path, (long long)h.epoch, (long long)h.row);
    const rt_tensor *t;
    long i;
    double v;
    if (rc == 0 && find_nonfinite(m, buf + h.start, &t, &i, &v))
        rc = rt_errf(err, errlen,
                     "%s: corrupt: parameter '%s' element %ld is %g (no checkpoint gradc "
                     "writes holds one)",
                     path, t->name, i, v);
    if (rc == 0) {
        /* Every check passed: only now does the model change. */
        size_t width = rt_dtype_width(m->real);
        char *arena = m->arena;
        const unsigned char *p = buf + h.start;
        size_t np = (size_t)rt_saved_elems(m) * (size_t)width;
        memcpy(arena + m->params_offset * width, p, np);
        rt_swap_if_big_endian(arena + m->params_offset * width, rt_saved_elems(m), width);
        if (with_state) {
            memcpy(arena + m->state_offset * width, p + np, (size_t)m->n_state * (size_t)width);
            rt_swap_if_big_endian(arena + m->state_offset * width, m->n_state, width);
        }
        *at = (rt_progress){.step = (long)h.step,
                            .seed = h.seed,
                            .epoch = (long)h.epoch,
                            .row = (long)h.row,
                            .batch = (long)h.batch};
    }
    free(buf);
    return rc;
}

int rt_checkpoint_load(const rt_model *m, const char *path, long *step, uint64_t *seed, char *err,
                       size_t errlen)
{
    rt_progress at;
    if (load(m, path, 1, &at, err, errlen))
        return -1;
    *step = at.step;
    *seed = at.seed;
    return 0;
}

int rt_checkpoint_load_progress(const rt_model *m, const char *path, rt_progress *at, char *err,
                                size_t errlen)
{
    return load(m, path, 1, at, err, errlen);
}

int rt_checkpoint_load_params(const rt_model *m, const char *path, char *err, size_t errlen)
{
    /* An inference model is its training model without the optimizer's
     * state; the header says how much state that model kept. Seen with
     * that much state, it has the training model's signature and file
     * size, so every check of a resume applies unchanged. */
    unsigned char head[DATA_START];
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (check_preamble(path, head, got, err, errlen))
        return -1;
    Header h;
    parse_header(head, &h);
    if (h.n_state < 0 || h.n_state > (1L << 40))
        return rt_errf(err, errlen, "%s: corrupt: optimizer state of %lld values", path,
                       (long long)h.n_state);
    rt_model trained = *m;
    trained.n_state = (long)h.n_state;
    rt_progress at;
    return load(&trained, path, 0, &at, err, errlen);
}

/* ---- exporting ---- */

/* mkdir -p: every missing directory along dir. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return rt_errf(err, errlen, "%s: the path is too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return rt_errf(err, errlen, "%s: cannot create %s: %s", dir, path, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rt_errf(err, errlen, "%s: exists and is not a directory", dir);
    return 0;
}

/* dir/NAME.npy, where --export writes tensor t and --init reads it; 0, or
 * -1 with err. */
static int param_path(char *path, size_t n, const char *dir, const rt_tensor *t, char *err,
                      size_t errlen)
{
    if (snprintf(path, n, "%s/%s.npy", dir, t->name) >= (int)n)
        return rt_errf(err, errlen, "%s: the path is too long", dir);
    /* Names are C identifiers, but a '/' must never leave dir. */
    for (char *p = path + strlen(dir) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    return 0;
}

static int export_tensor(const rt_model *m, const char *dir, const rt_tensor *t, char *err,
                         size_t errlen)
{
    char path[4096];
    long shape[RT_MAX_RANK];
    rt_tensor_shape(t, shape);
    if (param_path(path, sizeof path, dir, t, err, errlen))
        return -1;
    const char *data = (const char *)m->arena + t->offset * rt_dtype_width(m->real);
    return rt_npy_write(path, m->real, t->rank, shape, data, err, errlen);
}

int rt_export_params(const rt_model *m, const char *dir, char *err, size_t errlen)
{
    if (make_dirs(dir, err, errlen))
        return -1;
    for (int k = 0; k < m->n_params + m->n_buffers; k++)
        if (export_tensor(m, dir, saved_tensor(m, k), err, errlen))
            return -1;
    return 0;
}

int rt_export_grads(const rt_model *m, const char *dir, char *err, size_t errlen)
{
    if (make_dirs(dir, err, errlen))
        return -1;
    for (int k = 0; k < m->n_params; k++)
        if (export_tensor(m, dir, &m->grads[k], err, errlen))
            return -1;
    return 0;
}

/* ---- importing: --init DIR ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's .npy files, sorted so that the first stray one named
 * is the same on every filesystem; NULL with err if dir cannot be read. */
static char **list_npy(const char *dir, int *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        int saved = errno;
        struct stat st;
        if (saved == ENOTDIR || (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)))
            rt_errf(err, errlen, "%s: not a directory (give --init the directory --export wrote)",
                    dir);
        else
            rt_errf(err, errlen, "%s: cannot open: %s", dir, strerror(saved));
        return NULL;
    }
    int cap = 16;
    char **names = rt_malloc(sizeof *names * (size_t)cap);
    *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".npy") != 0)
            continue;
        if (*n == cap)
            names = realloc(names, sizeof *names * (size_t)(cap *= 2));
        if (!names)
            rt_die("out of memory listing %s", dir);
        names[(*n)++] = strdup(e->d_name);
        if (!names[*n - 1])
            rt_die("out of memory listing %s", dir);
    }
    closedir(d);
    qsort(names, (size_t)*n, sizeof *names, cmp_str);
    return names;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Whether path, dir/NAME.npy, is one of dir's .npy files. */
static int has_file(char *const *names, int n, const char *path, const char *dir)
{
    const char *base = path + strlen(dir) + 1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], base) == 0)
            return 1;
    return 0;
}

/* One file's values into its place in stage (the params block as it will
 * be), in the model's real type; 0, or -1 with err naming the file. */
static int stage_file(const rt_model *m, const rt_tensor *t, const char *path, char *stage,
                      char *err, size_t errlen)
{
    rt_array a;
    const char *type;
    if (rt_npy_read_typed(path, &a, &type, err, errlen))
        return -1;
    int rc = 0;
    long want[RT_MAX_RANK];
    rt_tensor_shape(t, want);
    int same = a.rank == t->rank;
    for (int i = 0; same && i < t->rank; i++)
        same = a.shape[i] == want[i];
    const char *kind = t >= m->params && t < m->params + m->n_params ? "parameter" : "buffer";
    if (a.dtype == RT_I32) {
        rc = rt_errf(err, errlen, "%s: dtype %s; %s %s needs float32 or float64", path, type, kind,
                     t->name);
    } else if (!same) {
        char got[160], need[160];
        rt_format_shape(got, sizeof got, a.rank, a.shape, 0);
        rt_format_shape(need, sizeof need, t->rank, want, 0);
        rc = rt_errf(err, errlen, "%s: shape %s, but %s %s of model %s is %s", path, got, kind,
                     t->name, m->name, need);
    }
    size_t width = rt_dtype_width(m->real);
    char *to = stage + (t->offset - m->params_offset) * width;
    for (long i = 0; rc == 0 && i < a.size; i++) {
        double v = a.dtype == RT_F64 ? ((const double *)a.data)[i] : ((const float *)a.data)[i];
        /* A float64 beyond float32's range would become an infinity. */
        float f = (float)v;
        if (!isfinite(v))
            rc = rt_errf(err, errlen, "%s: element %ld is %g; a %s must be finite", path, i, v,
                         kind);
        else if (m->real == RT_F32 && !isfinite(f))
            rc = rt_errf(err, errlen,
                         "%s: element %ld is %g, beyond float32's range (this is the float "
                         "build of %s)",
                         path, i, v, m->name);
        else if (m->real == RT_F32)
            memcpy(to + i * 4, &f, 4);
        else
            memcpy(to + i * 8, &v, 8);
    }
    rt_array_free(&a);
    return rc;
}

/* DIR's files, one per parameter (and buffer, with buffers), into
 * block, laid out as the parameter block (and the buffers after it); the
 * block changes only once every file has passed. */
static int import_block(const rt_model *m, const char *dir, char *block, bool buffers, char *err,
                        size_t errlen)
{
    int n;
    char **names = list_npy(dir, &n, err, errlen);
    if (!names)
        return -1;
    int total = m->n_params + (buffers ? m->n_buffers : 0), rc = 0;
    char path[4096];
    /* The cheap checks first: every parameter has a file, and every file
     * names a parameter or a buffer. */
    for (int k = 0; rc == 0 && k < m->n_params; k++) {
        const rt_tensor *t = saved_tensor(m, k);
        if (param_path(path, sizeof path, dir, t, err, errlen))
            rc = -1;
        else if (!has_file(names, n, path, dir)) {
            char s[160];
            long shape[RT_MAX_RANK];
            rt_tensor_shape(t, shape);
            rt_format_shape(s, sizeof s, t->rank, shape, 0);
            rc = rt_errf(err, errlen,
                         "%s: missing: parameter %s %s of model %s has no file (every "
                         "parameter needs one)",
                         path, t->name, s, m->name);
        }
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        int named = 0;
        for (int k = 0; !named && k < total; k++)
            named = param_path(path, sizeof path, dir, saved_tensor(m, k), err, errlen) == 0 &&
                    strcmp(path + strlen(dir) + 1, names[i]) == 0;
        if (!named)
            rc = rt_errf(err, errlen, "%s/%s: names no parameter%s of model %s", dir, names[i],
                         buffers ? " or buffer" : "", m->name);
    }
    /* Then every file, read whole into a copy of the params block: the
     * model changes only once all of them have passed. */
    size_t width = rt_dtype_width(m->real);
    size_t bytes = (size_t)(buffers ? rt_saved_elems(m) : m->n_param_elems) * (size_t)width;
    char *stage = rc == 0 ? rt_malloc(bytes ? bytes : 1) : NULL;
    if (stage)
        memcpy(stage, block, bytes);
    for (int k = 0; rc == 0 && k < total; k++) {
        const rt_tensor *t = saved_tensor(m, k);
        if (param_path(path, sizeof path, dir, t, err, errlen))
            rc = -1;
        else if (has_file(names, n, path, dir))
            rc = stage_file(m, t, path, stage, err, errlen);
    }
    if (rc == 0)
        memcpy(block, stage, bytes);
    free(stage);
    free_names(names, n);
    return rc;
}

int rt_import_params(const rt_model *m, const char *dir, char *err, size_t errlen)
{
    char *block = (char *)m->arena + m->params_offset * rt_dtype_width(m->real);
    return import_block(m, dir, block, true, err, errlen);
}

int rt_import_values(const rt_model *m, const char *dir, void *block, char *err, size_t errlen)
{
    return import_block(m, dir, block, false, err, errlen);
}

/* Each of the n tensors t to DIR/NAME.npy from block: at its offset past
 * base, or with base -1 one after another. */
static int export_tensors(rt_dtype real, const char *dir, const rt_tensor *t, int n, long base,
                          const void *block, char *err, size_t errlen)
{
    if (make_dirs(dir, err, errlen))
        return -1;
    long at = 0;
    for (int k = 0; k < n; k++, t++) {
        char path[4096];
        long shape[RT_MAX_RANK];
        rt_tensor_shape(t, shape);
        if (param_path(path, sizeof path, dir, t, err, errlen))
            return -1;
        const char *data =
            (const char *)block + (base < 0 ? at : t->offset - base) * rt_dtype_width(real);
        if (rt_npy_write(path, real, t->rank, shape, data, err, errlen))
            return -1;
        at += t->size;
    }
    return 0;
}

int rt_export_values(const rt_model *m, const char *dir, const void *block, char *err,
                     size_t errlen)
{
    return export_tensors(m->real, dir, m->params, m->n_params, m->params_offset, block, err,
                          errlen);
}

int rt_export_product(const rt_model *twin, const char *dir, const void *out, char *err,
                      size_t errlen)
{
    return export_tensors(twin->real, dir, twin->outputs, twin->n_outputs, -1, out, err, errlen);
}
