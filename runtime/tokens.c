/*
 * tokens.c: the token files llm.c's data scripts write (dev/data, e.g.
 * tinyshakespeare_train.bin), and its GPT-2 tokenizer file, so data
 * prepared for llm.c trains here unchanged.
 *
 * A token file is a header of 256 int32 (magic 20240520, version 1, the
 * token count, zeros), then `count` uint16 tokens, all little-endian. The
 * header is checked against the file's size before a token is read, so a
 * cut or padded file is refused, never half read, and a file that is not
 * one costs 1 KiB of reading whatever its size. A tokenizer is a header
 * of 256 uint32 (magic 20240328, version 1 or 2, the vocabulary size,
 * version 2's end-of-text token), then per token a length byte and that
 * many bytes; gradc only decodes with it, to print a sample.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_read.h"
#include "rt_internal.h"

enum {
    HEADER_INTS = 256,
    HEADER_BYTES = HEADER_INTS * 4,
    TOKENS_MAGIC = 20240520,
    TOKENS_VERSION = 1,
    /* llm.c's llama-3 files: the same header, uint32 tokens. */
    LLAMA3_MAGIC = 20240801,
    TOKENIZER_MAGIC = 20240328,
    /* The text reader's bound, so a file too big for one is too big here. */
    MAX_FILE_BYTES = 1 << 30
};

/* path opened, and its size in *n, from 1 byte to MAX_FILE_BYTES; or NULL
 * with err. what names the format in the messages. */
static FILE *open_sized(const char *path, const char *what, long *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rt_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) || (*n = ftell(f)) < 0) {
        fclose(f);
        rt_errf(err, errlen, "%s: cannot read its size", path);
        return NULL;
    }
    rewind(f);
    if (*n == 0)
        rt_errf(err, errlen, "%s: empty (0 bytes): %s starts with a %d-byte header", path, what,
                HEADER_BYTES);
    else if (*n < HEADER_BYTES)
        rt_errf(err, errlen, "%s: %ld bytes, shorter than the %d-byte header of %s", path, *n,
                HEADER_BYTES, what);
    else if (*n > MAX_FILE_BYTES)
        rt_errf(err, errlen, "%s: %ld bytes: more than gradc reads (1 GiB)", path, *n);
    else
        return f;
    fclose(f);
    return NULL;
}

/* n bytes from f into a new buffer; 0, or -1 with err. */
static int read_bytes(FILE *f, const char *path, size_t n, unsigned char **out, char *err,
                      size_t errlen)
{
    *out = rt_malloc(n);
    size_t got = fread(*out, 1, n, f);
    if (got == n)
        return 0;
    free(*out);
    *out = NULL;
    return rt_errf(err, errlen, "%s: read %zu of %zu bytes", path, got, n);
}

/* The header, decoded on any host: the file's words are little-endian. */
static void read_header(const unsigned char *bytes, int32_t *header)
{
    memcpy(header, bytes, HEADER_BYTES);
    rt_swap_if_big_endian(header, HEADER_INTS, 4);
}

/* The header's complaint about a token file of n bytes, or 0. */
static int check_token_header(const char *path, const int32_t *h, long n, char *err, size_t errlen)
{
    long long want = HEADER_BYTES + 2LL * h[2];
    if (h[0] == LLAMA3_MAGIC)
        return rt_errf(err, errlen,
                       "%s: an llm.c token file for llama-3 (magic %d, uint32 tokens); gradc "
                       "reads GPT-2's (magic %d, uint16 tokens)",
                       path, LLAMA3_MAGIC, TOKENS_MAGIC);
    if (h[0] != TOKENS_MAGIC)
        return rt_errf(err, errlen, "%s: not an llm.c token file (magic %d, not %d)", path,
                       (int)h[0], TOKENS_MAGIC);
    if (h[1] != TOKENS_VERSION)
        return rt_errf(err, errlen,
                       "%s: version %d of llm.c's token format; gradc reads version %d", path,
                       (int)h[1], TOKENS_VERSION);
    if (h[2] < 1)
        return rt_errf(err, errlen,
                       "%s: its header counts %d tokens; a token file holds at least 1", path,
                       (int)h[2]);
    if (n < want)
        return rt_errf(err, errlen,
                       "%s: truncated: the header promises %d tokens (%lld bytes), the file has "
                       "%ld bytes",
                       path, (int)h[2], want, n);
    if (n > want)
        return rt_errf(err, errlen,
                       "%s: longer than its header says (%d tokens, %lld bytes); the file has "
                       "%ld bytes",
                       path, (int)h[2], want, n);
    return 0;
}

int rt_tokens_read(const char *path, rt_array *out, char *err, size_t errlen)
{
    *out = (rt_array){0};
    long n;
    FILE *f = open_sized(path, "an llm.c token file", &n, err, errlen);
    if (!f)
        return -1;
    unsigned char *head, *body = NULL;
    int32_t h[HEADER_INTS];
    int rc = read_bytes(f, path, HEADER_BYTES, &head, err, errlen);
    if (rc == 0) {
        read_header(head, h);
        free(head);
        rc = check_token_header(path, h, n, err, errlen);
    }
    /* Only a header that matches the file's size gets its tokens read. */
    if (rc == 0)
        rc = read_bytes(f, path, 2 * (size_t)h[2], &body, err, errlen);
    fclose(f);
    if (rc)
        return -1;
    long count = h[2];
    rt_swap_if_big_endian(body, count, 2);
    *out = (rt_array){.dtype = RT_I32, .rank = 1, .shape = {count}, .size = count};
    out->data = rt_malloc((size_t)count * sizeof(int32_t));
    for (long i = 0; i < count; i++) {
        uint16_t t;
        memcpy(&t, body + 2 * i, sizeof t);
        ((int32_t *)out->data)[i] = t;
    }
    free(body);
    return 0;
}

int rt_tokenizer_read(const char *path, rt_tokenizer *t, char *err, size_t errlen)
{
    *t = (rt_tokenizer){0};
    long n;
    FILE *f = open_sized(path, "an llm.c tokenizer", &n, err, errlen);
    if (!f)
        return -1;
    unsigned char *bytes;
    int rc = read_bytes(f, path, (size_t)n, &bytes, err, errlen);
    fclose(f);
    if (rc)
        return -1;
    int32_t h[HEADER_INTS];
    read_header(bytes, h);
    /* Every token takes at least 2 bytes (its length, one byte), which
     * bounds the count before the offsets are allocated. */
    long most = (n - HEADER_BYTES) / 2;
    if (h[0] != TOKENIZER_MAGIC)
        rc = rt_errf(err, errlen, "%s: not an llm.c tokenizer (magic %d, not %d)", path, (int)h[0],
                     TOKENIZER_MAGIC);
    else if (h[1] != 1 && h[1] != 2)
        rc = rt_errf(err, errlen,
                     "%s: version %d of llm.c's tokenizer format; gradc reads versions 1 and 2",
                     path, (int)h[1]);
    else if (h[2] < 1 || h[2] > most)
        rc = rt_errf(err, errlen,
                     "%s: its header counts %d tokens, but its %ld bytes after the header hold "
                     "1 to %ld",
                     path, (int)h[2], n - HEADER_BYTES, most);
    if (rc) {
        free(bytes);
        return rc;
    }
    t->bytes = bytes;
    t->vocab = h[2];
    t->start = rt_malloc((size_t)t->vocab * sizeof *t->start);
    long at = HEADER_BYTES;
    for (long k = 0; k < t->vocab && !rc; k++) {
        if (at >= n || at + 1 + bytes[at] > n)
            rc = rt_errf(err, errlen, "%s: truncated in token %ld of the %ld its header counts",
                         path, k, t->vocab);
        else if (bytes[at] == 0)
            rc = rt_errf(err, errlen, "%s: token %ld is empty (every token has 1 to 255 bytes)",
                         path, k);
        else {
            t->start[k] = at + 1;
            at += 1 + bytes[at];
        }
    }
    if (!rc && at != n)
        rc = rt_errf(err, errlen,
                     "%s: longer than its header says (%ld tokens end at byte %ld of %ld)", path,
                     t->vocab, at, n);
    if (rc)
        rt_tokenizer_free(t);
    return rc;
}

const unsigned char *rt_tokenizer_token(const rt_tokenizer *t, long id, size_t *len)
{
    if (id < 0 || id >= t->vocab) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)t->bytes[t->start[id] - 1];
    return t->bytes + t->start[id];
}

void rt_tokenizer_free(rt_tokenizer *t)
{
    free(t->bytes);
    free(t->start);
    *t = (rt_tokenizer){0};
}
