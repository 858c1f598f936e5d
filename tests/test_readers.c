/*
 * test_readers.c: the CSV, IDX, text and llm.c token readers, and llm.c's
 * tokenizer, on good files and on the bad ones people have: ragged rows,
 * words where numbers go, IDX and token headers that lie about their
 * sizes, truncated and oversized files, gzip or not. Each bad file must be
 * refused with a message naming it (and the line, for CSV), never read
 * past its end.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "rt_internal.h"
#include "rt_read.h"

static char dir[] = "/tmp/gradc-readers-XXXXXX";
static char path[600], err[512];

static const char *file(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Writes bytes to a file, through gzip when the name ends in .gz. */
static const char *write_bytes(const char *name, const void *data, size_t n)
{
    const char *p = file(name);
    size_t len = strlen(name);
    if (len > 3 && !strcmp(name + len - 3, ".gz")) {
        gzFile f = gzopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, data, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
    return p;
}

static const char *write_text(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

static void setup(void) { ck_assert_ptr_nonnull(mkdtemp(dir)); }

static void teardown(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/gradc-readers-XXXXXX");
}

/* ---- CSV ---- */

START_TEST(csv_with_header_and_labels)
{
    const char *p = write_text("iris.csv", "150,4,setosa,versicolor,virginica\n"
                                           "5.1,3.5,1.4,0.2,0\n"
                                           "\n"
                                           "6.3, 3.3 ,6.0,2.5,2\r\n");
    rt_csv c;
    ck_assert_int_eq(rt_csv_read(p, 0, &c, err, sizeof err), 0);
    ck_assert_int_eq(c.has_header, 1);
    ck_assert_int_eq(c.rows, 2);
    ck_assert_int_eq(c.cols, 5);
    rt_array x, y;
    ck_assert_int_eq(rt_csv_columns(&c, p, 0, 4, RT_F64, &x, err, sizeof err), 0);
    ck_assert_int_eq(rt_csv_columns(&c, p, 4, 1, RT_I32, &y, err, sizeof err), 0);
    ck_assert_int_eq(x.rank, 2);
    ck_assert_int_eq(x.shape[0], 2);
    ck_assert_int_eq(x.shape[1], 4);
    ck_assert_double_eq(((double *)x.data)[5], 3.3);
    ck_assert_int_eq(y.rank, 1);
    ck_assert_int_eq(((int32_t *)y.data)[1], 2);
    rt_array_free(&x);
    rt_array_free(&y);
    rt_csv_free(&c);
}
END_TEST

/* The header UCI's wine file has (as scikit-learn ships it): rows,
 * columns and class names, not a field per column. */
START_TEST(csv_header_of_other_width)
{
    const char *p = write_text("wine.csv", "178,13,class_0,class_1,class_2\n"
                                           "14.23,1.71,2.43,15.6,127,2.8,3.06,.28,2.29,5.64,1.04,"
                                           "3.92,1065,0\n"
                                           "13.2,1.78,2.14,11.2,100,2.65,2.76,.26,1.28,4.38,1.05,"
                                           "3.4,1050,1\n");
    rt_csv c;
    ck_assert_msg(rt_csv_read(p, 0, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.has_header, 1);
    ck_assert_int_eq(c.rows, 2);
    ck_assert_int_eq(c.cols, 14);
    ck_assert_double_eq(c.values[14 + 12], 1050);
    rt_csv_free(&c);
}
END_TEST

/* A file that opens with lines of its own (a title, a source):
 * --skip-rows passes over them unread, and a header after them is
 * still told by its words; skipping the whole file is said as such. */
START_TEST(csv_skip_rows)
{
    const char *p = write_text("notes.csv", "Wine recognition data\n"
                                            "source: UCI, 1991, 3 classes\n"
                                            "alcohol,ash,class\n"
                                            "14.2,2.4,0\n"
                                            "13.2,2.1,1\n");
    rt_csv c;
    ck_assert_msg(rt_csv_read(p, 2, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.has_header, 1);
    ck_assert_int_eq(c.rows, 2);
    ck_assert_int_eq(c.cols, 3);
    ck_assert_int_eq(c.lines[0], 4);
    ck_assert_double_eq(c.values[3], 13.2);
    rt_csv_free(&c);
    ck_assert_int_eq(rt_csv_read(p, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "notes.csv:2: column 1 is 'source: UCI', not a number"), "%s", err);
    ck_assert_int_eq(rt_csv_read(p, 3, &c, err, sizeof err), 0);
    ck_assert_int_eq(c.has_header, 0);
    ck_assert_int_eq(c.rows, 2);
    rt_csv_free(&c);
    ck_assert_int_eq(rt_csv_read(p, 9, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "notes.csv: --skip-rows 9, but the file has 5 lines"), "%s", err);
}
END_TEST

START_TEST(csv_gzip_without_header)
{
    const char *p = write_text("d.csv.gz", "0,1,2\n3,4,5\n6,7,8\n");
    rt_csv c;
    ck_assert_int_eq(rt_csv_read(p, 0, &c, err, sizeof err), 0);
    ck_assert_int_eq(c.has_header, 0);
    ck_assert_int_eq(c.rows, 3);
    ck_assert_double_eq(c.values[7], 7);
    rt_csv_free(&c);
}
END_TEST

/* A bad CSV and the start of what it must be told. */
static const struct {
    const char *text, *message;
} bad_csv[] = {
    {"1,2,3\n4,5\n", "bad.csv:2: 2 fields, but the first row has 3"},
    {"a,b\n1,2\n3,x\n", "bad.csv:3: column 2 is 'x', not a number"},
    {"1,2\n1,nan\n", "bad.csv:2: column 2 is 'nan', not a number"},
    {"a,b\n", "bad.csv: no rows of numbers"},
    {"", "bad.csv: no rows of numbers"},
};

START_TEST(csv_refused)
{
    const char *p = write_text("bad.csv", bad_csv[_i].text);
    rt_csv c;
    ck_assert_int_eq(rt_csv_read(p, 0, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, bad_csv[_i].message), "expected '%s' in '%s'", bad_csv[_i].message,
                  err);
    ck_assert_ptr_null(c.values);
}
END_TEST

START_TEST(csv_labels_must_be_integers)
{
    const char *p = write_text("l.csv", "1,0\n2,1.5\n");
    rt_csv c;
    rt_array y;
    ck_assert_int_eq(rt_csv_read(p, 0, &c, err, sizeof err), 0);
    ck_assert_int_eq(rt_csv_columns(&c, p, 1, 1, RT_I32, &y, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "l.csv:2: column 2 is 1.5, not an integer label"));
    ck_assert_int_eq(rt_csv_columns(&c, p, 1, 2, RT_F64, &y, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "the table has 2"));
    rt_csv_free(&c);
}
END_TEST

START_TEST(csv_missing_file)
{
    rt_csv c;
    ck_assert_int_eq(rt_csv_read(file("none.csv"), 0, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "none.csv: cannot open"));
}
END_TEST

/* ---- IDX ---- */

/* An IDX header: type code, then the dimensions, big-endian. */
static size_t idx_header(unsigned char *b, int code, int rank, const uint32_t *dims)
{
    b[0] = b[1] = 0;
    b[2] = (unsigned char)code;
    b[3] = (unsigned char)rank;
    for (int d = 0; d < rank; d++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * d + k] = (unsigned char)(dims[d] >> (24 - 8 * k));
    return 4 + 4 * (size_t)rank;
}

START_TEST(idx_images_plain_and_gzip)
{
    unsigned char b[64];
    size_t n = idx_header(b, 0x08, 3, (uint32_t[]){2, 2, 3});
    for (int i = 0; i < 12; i++)
        b[n + i] = (unsigned char)(i * 20);
    const char *names[] = {"img.idx", "img.idx.gz"};
    for (int k = 0; k < 2; k++) {
        rt_array a;
        const char *p = write_bytes(names[k], b, n + 12);
        ck_assert_msg(rt_idx_read(p, &a, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(a.dtype, RT_I32);
        ck_assert_int_eq(a.rank, 3);
        ck_assert_int_eq(a.shape[2], 3);
        ck_assert_int_eq(((int32_t *)a.data)[11], 220);
        rt_array_free(&a);
    }
}
END_TEST

START_TEST(idx_floats_big_endian)
{
    unsigned char b[32];
    size_t n = idx_header(b, 0x0D, 1, (uint32_t[]){1});
    memcpy(b + n, (unsigned char[]){0x40, 0x49, 0x0f, 0xdb}, 4); /* 3.14159274f */
    rt_array a;
    ck_assert_int_eq(rt_idx_read(write_bytes("f.idx", b, n + 4), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_F32);
    ck_assert_float_eq(((float *)a.data)[0], 3.14159274f);
    rt_array_free(&a);
}
END_TEST

START_TEST(idx_refused)
{
    unsigned char b[64] = {0};
    rt_array a;
    /* counts that lie: 10 values promised, 4 there */
    size_t n = idx_header(b, 0x08, 1, (uint32_t[]){10});
    ck_assert_int_eq(rt_idx_read(write_bytes("short.idx", b, n + 4), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "short.idx: truncated: the header promises 10 values"));
    /* more data than promised */
    n = idx_header(b, 0x08, 1, (uint32_t[]){2});
    ck_assert_int_eq(rt_idx_read(write_bytes("long.idx", b, n + 5), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "long.idx: longer than its header says"));
    /* absurd dimensions: refused before anything is allocated */
    n = idx_header(b, 0x0E, 3, (uint32_t[]){100000, 100000, 100000});
    ck_assert_int_eq(rt_idx_read(write_bytes("huge.idx.gz", b, n), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "huge.idx.gz: dimension 2"));
    /* a zero dimension, a bad type, not IDX at all, a cut header */
    n = idx_header(b, 0x08, 2, (uint32_t[]){3, 0});
    ck_assert_int_eq(rt_idx_read(write_bytes("zero.idx", b, n), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "zero.idx: dimension 2 is 0"));
    n = idx_header(b, 0x07, 1, (uint32_t[]){1});
    ck_assert_int_eq(rt_idx_read(write_bytes("type.idx", b, n + 1), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "type.idx: IDX type 0x07"));
    ck_assert_int_eq(rt_idx_read(write_text("text.idx", "P5 28 28"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "text.idx: not an IDX file"));
    n = idx_header(b, 0x08, 3, (uint32_t[]){1, 1, 1});
    ck_assert_int_eq(rt_idx_read(write_bytes("cut.idx", b, n - 2), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cut.idx: truncated in its header"));
}
END_TEST

/* ---- text ---- */

START_TEST(text_bytes)
{
    rt_array a;
    ck_assert_int_eq(rt_text_read(write_text("t.txt", "To be,\n\xc3\xa9"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.size, 9);
    ck_assert_int_eq(((int32_t *)a.data)[0], 'T');
    ck_assert_int_eq(((int32_t *)a.data)[8], 0xa9);
    rt_array_free(&a);
    ck_assert_int_eq(rt_text_read(write_text("empty.txt", ""), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "empty.txt: 0 bytes"));
}
END_TEST

/* ---- llm.c token files and tokenizer ---- */

/* Little-endian whatever the host: the files are, and the reader must
 * undo it on a big-endian one. */
static void put_le(unsigned char *b, uint32_t v, int width)
{
    for (int k = 0; k < width; k++)
        b[k] = (unsigned char)(v >> (8 * k));
}

/* A header of 256 int32, three of them set and the rest zero. */
static void header(unsigned char *b, int32_t magic, int32_t version, int32_t count)
{
    memset(b, 0, 1024);
    put_le(b, (uint32_t)magic, 4);
    put_le(b + 4, (uint32_t)version, 4);
    put_le(b + 8, (uint32_t)count, 4);
}

/* A token file of n tokens whose header says count; its size in bytes. */
static size_t token_file(unsigned char *b, int32_t magic, int32_t version, int32_t count,
                         const uint16_t *tokens, int n)
{
    header(b, magic, version, count);
    for (int i = 0; i < n; i++)
        put_le(b + 1024 + 2 * i, tokens[i], 2);
    return 1024 + 2 * (size_t)n;
}

static const uint16_t some_tokens[] = {50256, 0, 1, 255, 256, 32767, 32768, 65535, 464};
enum { N_SOME = sizeof some_tokens / sizeof *some_tokens };

START_TEST(tokens_read)
{
    unsigned char b[2048];
    size_t n = token_file(b, 20240520, 1, N_SOME, some_tokens, N_SOME);
    rt_array a;
    ck_assert_msg(rt_tokens_read(write_bytes("t.bin", b, n), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(a.rank, 1);
    ck_assert_int_eq(a.shape[0], N_SOME);
    ck_assert_int_eq(a.size, N_SOME);
    for (int i = 0; i < N_SOME; i++)
        ck_assert_int_eq(((int32_t *)a.data)[i], some_tokens[i]);
    rt_array_free(&a);
}
END_TEST

/* Each bad file: its bytes (made by the case's builder) and the message. */
static const struct {
    const char *name, *says;
} bad_tokens[] = {
    {"empty.bin", "empty.bin: empty (0 bytes): an llm.c token file starts with a 1024-byte header"},
    {"cut_header.bin",
     "cut_header.bin: 1000 bytes, shorter than the 1024-byte header of an llm.c token file"},
    {"magic.bin", "magic.bin: not an llm.c token file (magic 20240521, not 20240520)"},
    {"npy.bin", "npy.bin: not an llm.c token file (magic 1297436307, not 20240520)"},
    {"llama3.bin", "llama3.bin: an llm.c token file for llama-3 (magic 20240801, uint32 tokens)"},
    {"version.bin", "version.bin: version 2 of llm.c's token format; gradc reads version 1"},
    {"none.bin", "none.bin: its header counts 0 tokens; a token file holds at least 1"},
    {"negative.bin", "negative.bin: its header counts -3 tokens"},
    {"cut.bin", "cut.bin: truncated: the header promises 9 tokens (1042 bytes), the file has "
                "1041 bytes"},
    {"huge.bin", "huge.bin: truncated: the header promises 2147483647 tokens (4294968318 bytes), "
                 "the file has 1042 bytes"},
    {"long.bin", "long.bin: longer than its header says (8 tokens, 1040 bytes); the file has "
                 "1042 bytes"},
};

START_TEST(tokens_refused)
{
    unsigned char b[2048];
    const char *name = bad_tokens[_i].name;
    size_t n = token_file(b, 20240520, 1, N_SOME, some_tokens, N_SOME);
    if (!strcmp(name, "empty.bin"))
        n = 0;
    else if (!strcmp(name, "cut_header.bin"))
        n = 1000;
    else if (!strcmp(name, "magic.bin"))
        put_le(b, 20240521, 4);
    else if (!strcmp(name, "npy.bin"))
        memcpy(b, "\x93NUMPY\x01\x00", 8);
    else if (!strcmp(name, "llama3.bin"))
        n = token_file(b, 20240801, 7, 4, some_tokens, 8); /* 4 uint32 */
    else if (!strcmp(name, "version.bin"))
        put_le(b + 4, 2, 4);
    else if (!strcmp(name, "none.bin"))
        n = token_file(b, 20240520, 1, 0, some_tokens, 0);
    else if (!strcmp(name, "negative.bin"))
        put_le(b + 8, (uint32_t)-3, 4);
    else if (!strcmp(name, "cut.bin"))
        n -= 1; /* half of the last token */
    else if (!strcmp(name, "huge.bin"))
        put_le(b + 8, INT32_MAX, 4);
    else if (!strcmp(name, "long.bin"))
        put_le(b + 8, N_SOME - 1, 4);
    rt_array a;
    const char *p = write_bytes(name, b, n);
    ck_assert_int_eq(rt_tokens_read(p, &a, err, sizeof err), -1);
    ck_assert_ptr_null(a.data);
    ck_assert_msg(strstr(err, p) == err, "%s: the message does not start with the path: %s", name,
                  err);
    ck_assert_msg(strstr(err, bad_tokens[_i].says), "%s: expected '%s', got '%s'", name,
                  bad_tokens[_i].says, err);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

/* A tokenizer of n tokens (NUL-terminated strings) whose header says vocab;
 * version 2 also names its last token the end of text. */
static size_t tokenizer_file(unsigned char *b, int32_t magic, int32_t version, int32_t vocab,
                             const char *const *tokens, int n)
{
    header(b, magic, version, vocab);
    if (version == 2)
        put_le(b + 12, (uint32_t)vocab - 1, 4);
    size_t at = 1024;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(tokens[i]);
        b[at] = (unsigned char)len;
        memcpy(b + at + 1, tokens[i], len);
        at += 1 + len;
    }
    return at;
}

static const char *const some_words[] = {"!", "a", " the", "\xe2\x80", "\n", "<|endoftext|>"};
enum { N_WORDS = sizeof some_words / sizeof *some_words };

START_TEST(tokenizer_read)
{
    unsigned char b[2048];
    for (int version = 1; version <= 2; version++) {
        size_t n = tokenizer_file(b, 20240328, version, N_WORDS, some_words, N_WORDS);
        rt_tokenizer t;
        ck_assert_msg(rt_tokenizer_read(write_bytes("tok.bin", b, n), &t, err, sizeof err) == 0,
                      "%s", err);
        ck_assert_int_eq(t.vocab, N_WORDS);
        for (int k = 0; k < N_WORDS; k++) {
            size_t len;
            const unsigned char *w = rt_tokenizer_token(&t, k, &len);
            ck_assert_ptr_nonnull(w);
            ck_assert_uint_eq(len, strlen(some_words[k]));
            ck_assert_mem_eq(w, some_words[k], len);
        }
        size_t len = 1;
        ck_assert_ptr_null(rt_tokenizer_token(&t, N_WORDS, &len));
        ck_assert_uint_eq(len, 0);
        ck_assert_ptr_null(rt_tokenizer_token(&t, -1, &len));
        rt_tokenizer_free(&t);
    }
}
END_TEST

START_TEST(tokenizer_refused)
{
    unsigned char b[2048];
    static const char *const with_empty[] = {"abc", "", "b"};
    static const struct {
        int32_t magic, version, vocab;
        int n, cut, extra;
        const char *const *words;
        const char *says;
    } bad[] = {
        {20240328, 1, N_WORDS, N_WORDS, 0, 0, some_words, NULL}, /* the good file, first */
        {20240520, 1, N_WORDS, N_WORDS, 0, 0, some_words,
         "not an llm.c tokenizer (magic 20240520, not 20240328)"},
        {20240328, 3, N_WORDS, N_WORDS, 0, 0, some_words,
         "version 3 of llm.c's tokenizer format; gradc reads versions 1 and 2"},
        {20240328, 2, 0, 0, 0, 0, some_words, "its header counts 0 tokens"},
        {20240328, 2, 50257, N_WORDS, 0, 0, some_words,
         "its header counts 50257 tokens, but its 28 bytes after the header hold 1 to 14"},
        {20240328, 2, N_WORDS, N_WORDS, 3, 0, some_words, "truncated in token 5 of the 6"},
        {20240328, 2, 3, 3, 0, 0, with_empty, "token 1 is empty"},
        {20240328, 2, N_WORDS - 1, N_WORDS, 0, 0, some_words,
         "longer than its header says (5 tokens end at byte 1038 of 1052)"},
        {20240328, 2, N_WORDS, N_WORDS, 0, 0, some_words, "shorter than the 1024-byte header"},
        {20240328, 2, N_WORDS, N_WORDS, 0, 0, some_words, "empty (0 bytes)"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        size_t n =
            tokenizer_file(b, bad[k].magic, bad[k].version, bad[k].vocab, bad[k].words, bad[k].n) -
            (size_t)bad[k].cut;
        if (bad[k].says && strstr(bad[k].says, "shorter"))
            n = 1020;
        if (bad[k].says && strstr(bad[k].says, "empty (0"))
            n = 0;
        rt_tokenizer t;
        char name[32];
        snprintf(name, sizeof name, "tok%zu.bin", k);
        const char *p = write_bytes(name, b, n);
        int rc = rt_tokenizer_read(p, &t, err, sizeof err);
        if (!bad[k].says) {
            ck_assert_msg(rc == 0, "%s", err);
            rt_tokenizer_free(&t);
            continue;
        }
        ck_assert_int_eq(rc, -1);
        ck_assert_ptr_null(t.bytes);
        ck_assert_msg(strstr(err, p) == err && strstr(err, bad[k].says),
                      "case %zu: expected '%s: %s', got '%s'", k, p, bad[k].says, err);
    }
}
END_TEST

/* The real data the project ships reads as its documentation says. */
START_TEST(shipped_digits)
{
    rt_csv c;
    const char *p = "data/digits.csv.gz";
    ck_assert_msg(rt_csv_read(p, 0, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.rows, 1797);
    ck_assert_int_eq(c.cols, 65);
    rt_array y;
    ck_assert_int_eq(rt_csv_columns(&c, p, 64, 1, RT_I32, &y, err, sizeof err), 0);
    int seen[10] = {0};
    for (long i = 0; i < y.size; i++) {
        int32_t v = ((int32_t *)y.data)[i];
        ck_assert(v >= 0 && v <= 9);
        seen[v]++;
    }
    for (int d = 0; d < 10; d++)
        ck_assert_int_gt(seen[d], 150);
    rt_array_free(&y);
    rt_csv_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("readers");
    TCase *t = tcase_create("readers");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, csv_with_header_and_labels);
    tcase_add_test(t, csv_header_of_other_width);
    tcase_add_test(t, csv_skip_rows);
    tcase_add_test(t, csv_gzip_without_header);
    tcase_add_loop_test(t, csv_refused, 0, sizeof bad_csv / sizeof *bad_csv);
    tcase_add_test(t, csv_labels_must_be_integers);
    tcase_add_test(t, csv_missing_file);
    tcase_add_test(t, idx_images_plain_and_gzip);
    tcase_add_test(t, idx_floats_big_endian);
    tcase_add_test(t, idx_refused);
    tcase_add_test(t, text_bytes);
    tcase_add_test(t, tokens_read);
    tcase_add_loop_test(t, tokens_refused, 0, sizeof bad_tokens / sizeof *bad_tokens);
    tcase_add_test(t, tokenizer_read);
    tcase_add_test(t, tokenizer_refused);
    tcase_add_test(t, shipped_digits);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
