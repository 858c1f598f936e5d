/*
 * test_data.c: getting data into a model. npy.c's reader and writer, on
 * good files, truncated ones and lying headers; .npy files are also
 * written by numpy and read back by numpy, so the format is checked
 * against the reference, not against ourselves. And bind.c, which feeds a
 * model's inputs from .npy, CSV, IDX and text files: conversions that must
 * be exact, minibatches that cycle, shuffles that hang on the seed and the
 * epoch only, held-out rows. The CSV, IDX and text readers themselves are
 * test_readers.c's. Models: runtime_models.h's linear regression and float
 * build, and the digits data's shape, for binding only.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "runtime_models.h"
#include "rt_internal.h"
#include "rt_read.h"

/* ---- the digits data's shape (64 pixels, 10 classes): binding only ---- */

static float dg_arena[64 * 64];
static int32_t dg_iarena[64];
static const rt_tensor dg_inputs[] = {
    {.name = "x", .dtype = RT_F32, .rank = 2, .shape = {64, 64}, .size = 64 * 64, .offset = 0},
    {.name = "labels",
     .dtype = RT_I32,
     .rank = 1,
     .shape = {64},
     .size = 64,
     .offset = 0,
     .classes = 10},
};
static const rt_model digits_model = {.name = "digits",
                                      .batch = 64,
                                      .real = RT_F32,
                                      .arena = dg_arena,
                                      .iarena = dg_iarena,
                                      .arena_size = 64 * 64,
                                      .iarena_size = 64,
                                      .n_inputs = 2,
                                      .inputs = dg_inputs};

/* ---- helpers ---- */

/* A v1.0 file with any header text and `data` bytes after it. */
static void write_raw_npy(const char *path, const char *dict, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    size_t len = strlen(dict);
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(len & 0xff),
                             (unsigned char)(len >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, len, f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

/* ---- npy ---- */

static void check_round_trip(rt_dtype dt, int rank, const long *shape, const void *data,
                             size_t width)
{
    char err[512];
    rt_array a;
    const char *path = tmp("rt.npy");
    ck_assert_msg(rt_npy_write(path, dt, rank, shape, data, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_npy_read(path, &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, dt);
    ck_assert_int_eq(a.rank, rank);
    long size = 1;
    for (int i = 0; i < rank; i++) {
        ck_assert_int_eq(a.shape[i], shape[i]);
        size *= shape[i];
    }
    ck_assert_int_eq(a.size, size);
    ck_assert_mem_eq(a.data, data, (size_t)size * width);
    rt_array_free(&a);
    /* The data starts on a 64-byte boundary. */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fclose(f);
    ck_assert_int_eq((bytes - size * (long)width) % 64, 0);
}

START_TEST(test_npy_round_trip)
{
    make_tmpdir();
    float f[24];
    double d[5] = {0.1, -1e300, 5e-324, 1.0 / 3, -0.0};
    int32_t i[6] = {0, -1, 2147483647, -2147483647 - 1, 7, 42};
    for (int k = 0; k < 24; k++)
        f[k] = (float)k / 7.0f - 1.0f;
    check_round_trip(RT_F32, 3, (long[]){2, 3, 4}, f, 4);
    check_round_trip(RT_F64, 1, (long[]){5}, d, 8);
    check_round_trip(RT_I32, 2, (long[]){3, 2}, i, 4);
    check_round_trip(RT_F64, 0, (long[]){0}, d, 8);
    check_round_trip(RT_F32, 2, (long[]){0, 5}, f, 4);
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_write_leaves_no_temp)
{
    make_tmpdir();
    char err[512];
    double d[2] = {1, 2};
    ck_assert_int_eq(rt_npy_write(tmp("a.npy"), RT_F64, 1, (long[]){2}, d, err, sizeof err), 0);
    ck_assert_int_eq(rt_npy_write(tmp("a.npy"), RT_F64, 1, (long[]){2}, d, err, sizeof err), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test \"$(ls '%s')\" = a.npy", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    /* A directory that does not exist: an error naming the path. */
    ck_assert_int_eq(rt_npy_write(tmp("no/such/b.npy"), RT_F64, 1, (long[]){2}, d, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "no/such/b.npy"));
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_read_numpy_files)
{
    make_tmpdir();
    ck_assert_msg(python("import numpy as np\n"
                         "np.save('f4.npy', (np.arange(12, dtype=np.float32) / 8).reshape(3, 4))\n"
                         "np.save('f8.npy', np.array([[0.1, -2.5]]))\n"
                         "np.save('i4.npy', np.array([5, -6, 7], dtype=np.int32))\n"
                         "np.save('i8.npy', np.array([[1], [-2], [2**31 - 1]], dtype=np.int64))\n"
                         "np.save('u1.npy', np.array([0, 255, 9], dtype=np.uint8))\n"
                         "np.save('scalar.npy', np.float64(2.5))\n"
                         "np.save('big.npy', np.array([2**40], dtype=np.int64))\n"
                         "np.save('fortran.npy', np.asfortranarray(np.arange(6.).reshape(2, 3)))\n"
                         "np.save('be.npy', np.arange(3, dtype='>f4'))\n"
                         "np.save('f2.npy', np.arange(3, dtype=np.float16))\n"
                         "f = open('v2.npy', 'wb')\n"
                         "np.lib.format.write_array(f, np.arange(6, dtype=np.int32).reshape(1, 2, "
                         "3), version=(2, 0))\n"
                         "f.close()\n"
                         "f = open('v3.npy', 'wb')\n"
                         "np.lib.format.write_array(f, np.arange(4.), version=(3, 0))\n"
                         "f.close()\n") == 0,
                  "python3 with numpy is required for this test");
    char err[512];
    rt_array a;
    ck_assert_msg(rt_npy_read(tmp("f4.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.dtype, RT_F32);
    ck_assert_int_eq(a.rank, 2);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert_int_eq(a.shape[1], 4);
    ck_assert_float_eq(((float *)a.data)[11], 11.0f / 8);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("f8.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_F64);
    ck_assert_double_eq(((double *)a.data)[0], 0.1);
    ck_assert_double_eq(((double *)a.data)[1], -2.5);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("i4.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(((int32_t *)a.data)[1], -6);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("i8.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert_int_eq(a.shape[1], 1);
    ck_assert_int_eq(((int32_t *)a.data)[1], -2);
    ck_assert_int_eq(((int32_t *)a.data)[2], 2147483647);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("u1.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.dtype, RT_I32);
    ck_assert_int_eq(((int32_t *)a.data)[1], 255);
    rt_array_free(&a);
    ck_assert_int_eq(rt_npy_read(tmp("scalar.npy"), &a, err, sizeof err), 0);
    ck_assert_int_eq(a.rank, 0);
    ck_assert_int_eq(a.size, 1);
    ck_assert_double_eq(((double *)a.data)[0], 2.5);
    rt_array_free(&a);
    ck_assert_msg(rt_npy_read(tmp("v2.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.rank, 3);
    ck_assert_int_eq(((int32_t *)a.data)[5], 5);
    rt_array_free(&a);
    ck_assert_msg(rt_npy_read(tmp("v3.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_double_eq(((double *)a.data)[3], 3.0);
    rt_array_free(&a);

    const char *refused[][2] = {
        {"big.npy", "does not fit in int32"},
        {"fortran.npy", "fortran_order"},
        {"be.npy", "big-endian"},
        {"f2.npy", "unsupported dtype '<f2'"},
    };
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(rt_npy_read(tmp(refused[k][0]), &a, err, sizeof err), -1);
        ck_assert_ptr_null(a.data);
        ck_assert_msg(strstr(err, tmp(refused[k][0])) && strstr(err, refused[k][1]), "%s: got '%s'",
                      refused[k][0], err);
    }
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_numpy_reads_ours)
{
    make_tmpdir();
    char err[512];
    float f[6] = {0.5f, -1, 2, 3, 4.25f, 1e-7f};
    int32_t i[3] = {1, -2, 3};
    double d[1] = {1.0 / 3};
    ck_assert_int_eq(rt_npy_write(tmp("f.npy"), RT_F32, 2, (long[]){2, 3}, f, err, sizeof err), 0);
    ck_assert_int_eq(rt_npy_write(tmp("i.npy"), RT_I32, 1, (long[]){3}, i, err, sizeof err), 0);
    ck_assert_int_eq(rt_npy_write(tmp("d.npy"), RT_F64, 0, NULL, d, err, sizeof err), 0);
    ck_assert_int_eq(
        python("import numpy as np\n"
               "f = np.load('f.npy'); i = np.load('i.npy'); d = np.load('d.npy')\n"
               "assert f.dtype == np.float32 and f.shape == (2, 3), f\n"
               "assert (f == np.array([[0.5, -1, 2], [3, 4.25, 1e-7]], dtype=np.float32)).all()\n"
               "assert i.dtype == np.int32 and list(i) == [1, -2, 3]\n"
               "assert d.shape == () and d == 1 / 3\n"),
        0);
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_truncated)
{
    make_tmpdir();
    char err[512];
    rt_array a;
    double d[12] = {0};
    write_f64(tmp("t.npy"), 2, (long[]){3, 4}, d);
    ck_assert_int_eq(truncate(tmp("t.npy"), 128 + 40), 0);
    ck_assert_int_eq(rt_npy_read(tmp("t.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, tmp("t.npy")));
    ck_assert_str_eq(strstr(err, "truncated"), "truncated: header says [3,4] float64 "
                                               "(96 bytes), file has 40 bytes of data");
    /* Cut inside the header, and inside the magic string. */
    ck_assert_int_eq(truncate(tmp("t.npy"), 50), 0);
    ck_assert_int_eq(rt_npy_read(tmp("t.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    ck_assert_int_eq(truncate(tmp("t.npy"), 3), 0);
    ck_assert_int_eq(rt_npy_read(tmp("t.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, tmp("t.npy")));
    ck_assert_int_eq(rt_npy_read(tmp("missing.npy"), &a, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "missing.npy: cannot open"));
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_bad_headers)
{
    make_tmpdir();
    char err[512];
    rt_array a;
    double d[4] = {1, 2, 3, 4};
    static const struct {
        const char *dict, *want;
    } cases[] = {
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", "fortran_order"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }",
         "is too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         "too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", "truncated"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }", "rank"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-2, 2), }", "shape"},
        {"{'descr': '<f8', 'fortran_order': False, }", "no 'shape'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4,", "shape"},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (4,), }", "big-endian"},
        {"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4,), }", "structured"},
        {"{'descr': '<f8 ", "unterminated"},
        {"", "not a dict"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_raw_npy(tmp("h.npy"), cases[k].dict, d, sizeof d);
        ck_assert_int_eq(rt_npy_read(tmp("h.npy"), &a, err, sizeof err), -1);
        ck_assert_msg(strstr(err, tmp("h.npy")) && strstr(err, cases[k].want), "case %zu: got '%s'",
                      k, err);
    }
    /* Spacing, key order, double quotes and unknown keys are all fine. */
    write_raw_npy(tmp("h.npy"),
                  "{ \"shape\":(2,2) ,'extra': {'x': (1, '}')},"
                  "'fortran_order':False,'descr':'<f8'}\n",
                  d, sizeof d);
    ck_assert_msg(rt_npy_read(tmp("h.npy"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.size, 4);
    ck_assert_double_eq(((double *)a.data)[3], 4.0);
    rt_array_free(&a);
    remove_tmpdir();
}
END_TEST

START_TEST(test_npy_fuzzed_headers)
{
    /* Every byte of a valid file's header replaced by a few values: each
     * read must succeed or fail cleanly (the sanitizers watch the rest). */
    make_tmpdir();
    char err[512];
    double d[6] = {1, 2, 3, 4, 5, 6};
    write_f64(tmp("ok.npy"), 2, (long[]){2, 3}, d);
    FILE *f = fopen(tmp("ok.npy"), "rb");
    unsigned char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const unsigned char vals[] = {0, '(', ')', '\'', ',', '9', 0xff, ' '};
    for (size_t i = 0; i < 128; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            unsigned char c[256];
            memcpy(c, buf, n);
            c[i] = vals[v];
            FILE *g = fopen(tmp("fz.npy"), "wb");
            fwrite(c, 1, n, g);
            fclose(g);
            rt_array a;
            err[0] = '\0';
            if (rt_npy_read(tmp("fz.npy"), &a, err, sizeof err) == 0)
                rt_array_free(&a);
            else
                ck_assert_ptr_nonnull(strstr(err, "fz.npy"));
        }
    remove_tmpdir();
}
END_TEST

/* ---- bind ---- */

/* A CSV feeds a float input its feature columns and an int32 input its
 * label column; an IDX file of [M, 3, 1] feeds an input of rows of 3. */
START_TEST(test_bind_csv_and_idx)
{
    make_tmpdir();
    char err[512];
    FILE *f = fopen(tmp("t.csv"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("a,b,c,label\n", f);
    for (int r = 0; r < 5; r++)
        fprintf(f, "%d.5,%d,%d,%d\n", r, 10 + r, 20 + r, r % 3);
    ck_assert_int_eq(fclose(f), 0);
    rt_array x, y;
    ck_assert_msg(rt_input_load(&float_model, &f_inputs[0], tmp("t.csv"), &RT_CSV_LAYOUT_DEFAULT, 4,
                                &x, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(x.shape[0], 5);
    ck_assert_int_eq(x.shape[1], 3);
    ck_assert_float_eq(((float *)x.data)[3], 1.5f);
    ck_assert_float_eq(((float *)x.data)[14], 24.0f);
    ck_assert_msg(rt_input_load(&float_model, &f_inputs[1], tmp("t.csv"), &RT_CSV_LAYOUT_DEFAULT, 4,
                                &y, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(((int32_t *)y.data)[4], 1);
    rt_array_free(&x);
    rt_array_free(&y);
    /* label column 1: now the features are the last three columns */
    ck_assert_int_eq(rt_input_load(&float_model, &f_inputs[1], tmp("t.csv"),
                                   &(rt_csv_layout){.label_column = 1}, 4, &y, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "column 1 is 0.5, not an integer label"));
    /* too few rows for the batch, and a format gradc does not read */
    ck_assert_int_eq(rt_input_load(&float_model, &f_inputs[0], tmp("t.csv"), &RT_CSV_LAYOUT_DEFAULT,
                                   6, &x, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "with at least 6 rows"));
    ck_assert_int_eq(rt_input_load(&float_model, &f_inputs[0], tmp("t.json"),
                                   &RT_CSV_LAYOUT_DEFAULT, 4, &x, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "t.json: not a data file gradc reads"));
    unsigned char idx[4 + 12 + 15] = {0, 0, 0x08, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 1};
    for (int i = 0; i < 15; i++)
        idx[16 + i] = (unsigned char)i;
    f = fopen(tmp("x-ubyte"), "wb");
    ck_assert_uint_eq(fwrite(idx, 1, sizeof idx, f), sizeof idx);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(rt_input_load(&float_model, &f_inputs[0], tmp("x-ubyte"), &RT_CSV_LAYOUT_DEFAULT,
                                4, &x, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(x.rank, 2);
    ck_assert_int_eq(x.shape[1], 3);
    ck_assert_float_eq(((float *)x.data)[14], 14.0f);
    rt_array_free(&x);
    remove_tmpdir();
}
END_TEST

/* A text is rows of T bytes for an int32 input [batch, T]; `:next` gives
 * the same rows a byte later, the targets of a character model. */
START_TEST(test_bind_text)
{
    static int32_t iarena[6];
    static const rt_tensor in[] = {
        {.name = "chars", .dtype = RT_I32, .rank = 2, .shape = {2, 3}, .size = 6, .classes = 128},
        {.name = "x", .dtype = RT_F64, .rank = 2, .shape = {2, 3}, .size = 6},
    };
    const rt_model m = {
        .name = "chars", .batch = 2, .real = RT_F64, .iarena = iarena, .n_inputs = 2, .inputs = in};
    make_tmpdir();
    char err[512];
    FILE *f = fopen(tmp("t.txt"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("abcdefghij", f);
    ck_assert_int_eq(fclose(f), 0);
    char next[600];
    snprintf(next, sizeof next, "%s:next", tmp("t.txt"));
    rt_array x, y;
    ck_assert_msg(rt_input_load(&m, &in[0], tmp("t.txt"), &RT_CSV_LAYOUT_DEFAULT, 2, &x, err,
                                sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(rt_input_load(&m, &in[0], next, &RT_CSV_LAYOUT_DEFAULT, 2, &y, err, sizeof err) ==
                      0,
                  "%s", err);
    ck_assert_int_eq(x.shape[0], 3); /* (10 - 1) / 3 */
    ck_assert_int_eq(y.shape[0], 3);
    ck_assert_int_eq(x.shape[1], 3);
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(((int32_t *)x.data)[i], 'a' + i);
        ck_assert_int_eq(((int32_t *)y.data)[i], 'b' + i);
    }
    rt_array_free(&x);
    rt_array_free(&y);
    ck_assert_int_eq(
        rt_input_load(&m, &in[1], tmp("t.txt"), &RT_CSV_LAYOUT_DEFAULT, 2, &x, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "a text feeds int32 inputs"));
    f = fopen(tmp("u.txt"), "w");
    fputs("ab\xe9"
          "defg",
          f); /* a byte past the 128 classes */
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(
        rt_input_load(&m, &in[0], tmp("u.txt"), &RT_CSV_LAYOUT_DEFAULT, 2, &x, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "byte 2 is 233, outside [0, 128)"));
    ck_assert_ptr_nonnull(strstr(err, "text takes 256 classes"));
    remove_tmpdir();
}
END_TEST

/* ---- llm.c token files (.bin): bound as a text is, token by token ---- */

static int32_t tok_iarena[32];
static const rt_tensor tok_inputs[] = {
    {.name = "ids", .dtype = RT_I32, .rank = 2, .shape = {2, 3}, .size = 6, .classes = 128},
    {.name = "x", .dtype = RT_F64, .rank = 2, .shape = {2, 3}, .size = 6},
    {.name = "wide", .dtype = RT_I32, .rank = 2, .shape = {4, 8}, .size = 32, .classes = 65536},
};
static const rt_model tok_model = {.name = "tok",
                                   .batch = 2,
                                   .real = RT_F64,
                                   .iarena = tok_iarena,
                                   .n_inputs = 3,
                                   .inputs = tok_inputs};

/* llm.c's layout, written byte by byte: 256 int32 (magic, version 1, the
 * count, zeros), then the tokens as uint16, little-endian. */
static void write_tokens(const char *path, const uint16_t *tokens, int n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    const uint32_t head[3] = {20240520, 1, (uint32_t)n};
    for (int i = 0; i < 256; i++)
        for (int k = 0; k < 4; k++)
            fputc(i < 3 ? (int)(head[i] >> (8 * k) & 0xff) : 0, f);
    for (int i = 0; i < n; i++) {
        fputc(tokens[i] & 0xff, f);
        fputc(tokens[i] >> 8, f);
    }
    ck_assert_int_eq(fclose(f), 0);
}

static void load_ok(const rt_tensor *t, const char *path, rt_array *a)
{
    char err[512];
    ck_assert_msg(
        rt_input_load(&tok_model, t, path, &RT_CSV_LAYOUT_DEFAULT, 2, a, err, sizeof err) == 0,
        "%s", err);
}

/* The same bytes as a text and as tokens give the same x and y:next. */
START_TEST(test_bind_tokens_as_text)
{
    make_tmpdir();
    const char *text = "abcdefghij";
    uint16_t tokens[10];
    for (int i = 0; i < 10; i++)
        tokens[i] = (uint16_t)text[i];
    write_bytes(tmp("t.txt"), text, 10);
    write_tokens(tmp("t.bin"), tokens, 10);
    char txt_next[600], bin_next[600];
    snprintf(txt_next, sizeof txt_next, "%s:next", tmp("t.txt"));
    snprintf(bin_next, sizeof bin_next, "%s:next", tmp("t.bin"));
    rt_array tx, ty, bx, by;
    load_ok(&tok_inputs[0], tmp("t.txt"), &tx);
    load_ok(&tok_inputs[0], txt_next, &ty);
    load_ok(&tok_inputs[0], tmp("t.bin"), &bx);
    load_ok(&tok_inputs[0], bin_next, &by);
    const rt_array *pairs[2][2] = {{&tx, &bx}, {&ty, &by}};
    for (int k = 0; k < 2; k++) {
        const rt_array *a = pairs[k][0], *b = pairs[k][1];
        ck_assert_int_eq(b->dtype, RT_I32);
        ck_assert_int_eq(b->rank, a->rank);
        ck_assert_int_eq(b->shape[0], 3); /* (10 - 1) / 3 */
        ck_assert_int_eq(b->shape[1], a->shape[1]);
        ck_assert_int_eq(b->size, a->size);
        ck_assert_mem_eq(b->data, a->data, (size_t)a->size * sizeof(int32_t));
    }
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(((int32_t *)bx.data)[i], 'a' + i);
        ck_assert_int_eq(((int32_t *)by.data)[i], 'b' + i);
    }
    rt_array_free(&tx), rt_array_free(&ty), rt_array_free(&bx), rt_array_free(&by);

    /* Through --data's path too: one row count for x and y:next. */
    rt_data d;
    char err[512];
    rt_data_init(&d);
    static const rt_tensor pair[] = {
        {.name = "x", .dtype = RT_I32, .rank = 2, .shape = {2, 3}, .size = 6, .classes = 128},
        {.name = "y",
         .dtype = RT_I32,
         .rank = 2,
         .shape = {2, 3},
         .size = 6,
         .offset = 6,
         .classes = 128},
    };
    const rt_model pm = {.name = "pair",
                         .batch = 2,
                         .real = RT_F64,
                         .iarena = tok_iarena,
                         .n_inputs = 2,
                         .inputs = pair};
    ck_assert_msg(rt_data_bind(&d, &pm, "x", tmp("t.bin"), err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_data_bind(&d, &pm, "y", bin_next, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rt_data_finish(&d, &pm, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.rows, 3);
    ck_assert_int_eq(d.nbatches, 1);
    rt_data_load(&d, &pm, 1);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(tok_iarena[i], 'a' + i);
        ck_assert_int_eq(tok_iarena[6 + i], 'b' + i);
    }
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

/* A token the model has no row for is refused wherever it lies, even past
 * the last row's window, with its place in the file. */
START_TEST(test_bind_tokens_out_of_vocab)
{
    make_tmpdir();
    char err[512], file[300], next[600];
    rt_array a;
    uint16_t tokens[10] = {1, 2, 3, 4, 5, 6, 7, 200, 9, 10};
    snprintf(file, sizeof file, "%s", tmp("v.bin"));
    snprintf(next, sizeof next, "%s:next", file);
    write_tokens(file, tokens, 10);
    const char *paths[] = {file, next};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(rt_input_load(&tok_model, &tok_inputs[0], paths[k], &RT_CSV_LAYOUT_DEFAULT,
                                       2, &a, err, sizeof err),
                         -1);
        char want[700];
        snprintf(want, sizeof want,
                 "%s: token 7 (from 0) is 200, outside [0, 128): the vocabulary of input 'ids'",
                 file);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "expected '%s', got '%s'", want, err);
    }
    /* 10 tokens make 3 rows of 3: token 9 is only ever a target's last */
    tokens[7] = 8;
    tokens[9] = 128;
    write_tokens(tmp("v.bin"), tokens, 10);
    ck_assert_int_eq(rt_input_load(&tok_model, &tok_inputs[0], tmp("v.bin"), &RT_CSV_LAYOUT_DEFAULT,
                                   2, &a, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "v.bin: token 9 (from 0) is 128, outside [0, 128)"));
    /* the highest token a file can hold fits a vocabulary of 65536 */
    uint16_t many[33];
    for (int i = 0; i < 33; i++)
        many[i] = (uint16_t)(65535 - i);
    write_tokens(tmp("w.bin"), many, 33);
    load_ok(&tok_inputs[2], tmp("w.bin"), &a);
    ck_assert_int_eq(a.shape[0], 4);
    ck_assert_int_eq(((int32_t *)a.data)[0], 65535);
    ck_assert_int_eq(((int32_t *)a.data)[31], 65535 - 31);
    rt_array_free(&a);
    /* a float input, and a bad file behind the suffix */
    ck_assert_int_eq(rt_input_load(&tok_model, &tok_inputs[1], tmp("w.bin"), &RT_CSV_LAYOUT_DEFAULT,
                                   2, &a, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(
        strstr(err, "w.bin: a token file feeds int32 inputs (token ids), not 'x'"));
    write_bytes(tmp("n.bin"), "not tokens", 10);
    snprintf(next, sizeof next, "%s:next", tmp("n.bin"));
    ck_assert_int_eq(rt_input_load(&tok_model, &tok_inputs[0], next, &RT_CSV_LAYOUT_DEFAULT, 2, &a,
                                   err, sizeof err),
                     -1);
    char want[700];
    snprintf(want, sizeof want, "%s: 10 bytes, shorter than the 1024-byte header", tmp("n.bin"));
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "expected '%s', got '%s'", want, err);
    remove_tmpdir();
}
END_TEST

/* The oracle: a file written by numpy exactly as llm.c's
 * dev/data/data_common.py's write_datafile does reads as the same tokens,
 * and binds as the same windows. */
START_TEST(test_bind_tokens_numpy)
{
    make_tmpdir();
    ck_assert_msg(python("import numpy as np\n"
                         "toks = [(i * 40503 + 50256) % 65536 for i in range(1001)]\n"
                         "header = np.zeros(256, dtype=np.int32)\n"
                         "header[0] = 20240520\n"
                         "header[1] = 1\n"
                         "header[2] = len(toks)\n"
                         "toks_np = np.array(toks, dtype=np.uint16)\n"
                         "with open('llmc.bin', 'wb') as f:\n"
                         "    f.write(header.tobytes())\n"
                         "    f.write(toks_np.tobytes())\n") == 0,
                  "python3 with numpy is required for this test");
    char err[512], next[600];
    rt_array a, x, y;
    ck_assert_msg(rt_tokens_read(tmp("llmc.bin"), &a, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(a.size, 1001);
    for (int i = 0; i < 1001; i++)
        ck_assert_int_eq(((int32_t *)a.data)[i], (i * 40503 + 50256) % 65536);
    snprintf(next, sizeof next, "%s:next", tmp("llmc.bin"));
    load_ok(&tok_inputs[2], tmp("llmc.bin"), &x);
    load_ok(&tok_inputs[2], next, &y);
    ck_assert_int_eq(x.shape[0], 125); /* (1001 - 1) / 8 */
    ck_assert_int_eq(y.shape[0], 125);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(((int32_t *)x.data)[i], ((int32_t *)a.data)[i]);
        ck_assert_int_eq(((int32_t *)y.data)[i], ((int32_t *)a.data)[i + 1]);
    }
    rt_array_free(&a), rt_array_free(&x), rt_array_free(&y);
    remove_tmpdir();
}
END_TEST

START_TEST(test_bind_conversions)
{
    make_tmpdir();
    char err[512];
    rt_data d;
    double x[6 * 3], lab[6] = {0, 1, 2, 2, 1, 0}, bit[12] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    for (int i = 0; i < 18; i++)
        x[i] = i * 0.25; /* exact in float */
    write_f64(tmp("x.npy"), 2, (long[]){6, 3}, x);
    write_f64(tmp("lab.npy"), 1, (long[]){6}, lab);
    write_f64(tmp("bit.npy"), 2, (long[]){6, 2}, bit); /* two values a row, for one */
    rt_data_init(&d);
    ck_assert_msg(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(rt_data_bind(&d, &float_model, "label", tmp("lab.npy"), err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(rt_data_finish(&d, &float_model, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'bit'"));
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "twice"));
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "z", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_str_eq(err, "--data: the model has no input 'z' (inputs: x, label, bit)");
    ck_assert_msg(rt_data_bind(&d, &float_model, "bit", tmp("bit.npy"), err, sizeof err) == -1,
                  "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "expected [*] int32, got [6,2] float64"));
    /* A column of labels is rows of one value: it fits an input [*]. */
    double bit1[6] = {1, 0, 1, 0, 1, 0};
    write_f64(tmp("bit.npy"), 2, (long[]){6, 1}, bit1);
    ck_assert_msg(rt_data_bind(&d, &float_model, "bit", tmp("bit.npy"), err, sizeof err) == 0, "%s",
                  err);
    ck_assert_msg(rt_data_finish(&d, &float_model, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.rows, 6);
    ck_assert_int_eq(d.nbatches, 1);
    rt_data_load(&d, &float_model, 2); /* one batch: step 2 wraps to rows 0-3 */
    ck_assert_float_eq(f_arena[2 + 11], 11 * 0.25f);
    ck_assert_int_eq(f_iarena[1 + 2], 2);
    ck_assert_int_eq(f_iarena[5], 1);
    rt_data_free(&d);

    static const struct {
        double v;
        int idx;
        const char *want;
    } bad[] = {
        {0.1, 4, "lab.npy: element 4 (0.10000000000000001) does not convert exactly to int32"},
        {2.5, 1, "lab.npy: element 1 (2.5) does not convert exactly to int32"},
        {3, 5, "lab.npy: element 5 is 3, outside [0, 3)"},
        {-1, 0, "lab.npy: element 0 is -1, outside [0, 3)"},
        {NAN, 2, "lab.npy: element 2 (nan) does not convert"},
        {3e9, 2, "lab.npy: element 2 (3000000000) does not convert"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        double l[6] = {0, 1, 2, 2, 1, 0};
        l[bad[k].idx] = bad[k].v;
        write_f64(tmp("lab.npy"), 1, (long[]){6}, l);
        rt_data_init(&d);
        ck_assert_int_eq(rt_data_bind(&d, &float_model, "label", tmp("lab.npy"), err, sizeof err),
                         -1);
        ck_assert_msg(strstr(err, bad[k].want) != NULL, "case %zu: got '%s'", k, err);
        rt_data_free(&d);
    }
    x[7] = 0.1; /* not a float */
    write_f64(tmp("x.npy"), 2, (long[]){6, 3}, x);
    rt_data_init(&d);
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "x.npy: element 7 (0.10000000000000001) does not "
                                      "convert exactly to float32"));
    x[7] = 1e300; /* out of float range: refused, not undefined */
    write_f64(tmp("x.npy"), 2, (long[]){6, 3}, x);
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "element 7"));
    x[7] = 0.25;
    write_f64(tmp("x.npy"), 2, (long[]){3, 3}, x);
    ck_assert_int_eq(rt_data_bind(&d, &float_model, "x", tmp("x.npy"), err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "x.npy: expected [*,3] float32 with at least 4 rows"));
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(test_bind_batches_cycle)
{
    make_tmpdir();
    char err[512];
    rt_data d;
    double x[10 * 3], y[10], y9[9];
    for (int i = 0; i < 30; i++)
        x[i] = i;
    for (int i = 0; i < 10; i++)
        y[i] = 100 + i;
    write_f64(tmp("x.npy"), 2, (long[]){10, 3}, x);
    write_f64(tmp("y.npy"), 2, (long[]){10, 1}, y);
    write_f64(tmp("y9.npy"), 2, (long[]){9, 1}, y9);
    rt_data_init(&d);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "x", tmp("x.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "y", tmp("y9.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_finish(&d, &linreg_model, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "y9.npy: has 9 rows but"));
    rt_data_free(&d);
    rt_data_init(&d);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "y", tmp("y.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_bind(&d, &linreg_model, "x", tmp("x.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_finish(&d, &linreg_model, err, sizeof err), 0);
    ck_assert_int_eq(d.nbatches, 2); /* rows 8 and 9 are dropped */
    static const int first_row[] = {0, 4, 0, 4, 0};
    for (int s = 1; s <= 5; s++) {
        rt_data_load(&d, &linreg_model, s);
        ck_assert_double_eq(lr_arena[X_OFF], first_row[s - 1] * 3);
        ck_assert_double_eq(lr_arena[X_OFF + 11], first_row[s - 1] * 3 + 11);
        ck_assert_double_eq(lr_arena[Y_OFF + 3], 100 + first_row[s - 1] + 3);
    }
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

/* rows rows for linreg: x row r is (3r, 3r+1, 3r+2) and y row r is 100 + r,
 * so a loaded row names itself; bound into d (initialized here). */
static void bind_numbered(rt_data *d, int rows)
{
    char err[512];
    double *x = malloc(sizeof *x * (size_t)rows * 3), *y = malloc(sizeof *y * (size_t)rows);
    for (int i = 0; i < rows * 3; i++)
        x[i] = i;
    for (int r = 0; r < rows; r++)
        y[r] = 100 + r;
    write_f64(tmp("x.npy"), 2, (long[]){rows, 3}, x);
    write_f64(tmp("y.npy"), 2, (long[]){rows, 1}, y);
    free(x), free(y);
    rt_data_init(d);
    ck_assert_int_eq(rt_data_bind(d, &linreg_model, "x", tmp("x.npy"), err, sizeof err), 0);
    ck_assert_int_eq(rt_data_bind(d, &linreg_model, "y", tmp("y.npy"), err, sizeof err), 0);
    ck_assert_msg(rt_data_finish(d, &linreg_model, err, sizeof err) == 0, "%s", err);
}

/* The row in lr_arena's batch row b, after checking that x and y agree. */
static long loaded_row(int b)
{
    long r = (long)lr_arena[X_OFF + b * 3] / 3;
    ck_assert_double_eq(lr_arena[X_OFF + b * 3 + 2], 3 * r + 2);
    ck_assert_double_eq(lr_arena[Y_OFF + b], 100 + r);
    return r;
}

START_TEST(test_bind_shuffle)
{
    make_tmpdir();
    rt_data d, d2;
    bind_numbered(&d, 10); /* two minibatches of 4 an epoch, 2 rows sit out */
    d.shuffle = 1;
    d.seed = 7;
    int used[10] = {0};
    long epoch0[8];
    for (long e = 0; e < 5; e++) {
        long rows[8];
        int seen[10] = {0};
        for (int j = 0; j < 2; j++) {
            rt_data_load(&d, &linreg_model, 2 * e + j + 1);
            for (int b = 0; b < 4; b++) {
                long r = loaded_row(b);
                ck_assert(r >= 0 && r < 10);
                rows[4 * j + b] = r;
                seen[r]++;
                used[r]++;
            }
        }
        for (int r = 0; r < 10; r++)
            ck_assert_int_le(seen[r], 1); /* each training row at most once an epoch */
        /* The epoch's order is a permutation, and the batches are its head. */
        const long *order = rt_data_order(&d, e);
        int count[10] = {0};
        for (int i = 0; i < 10; i++)
            count[order[i]]++;
        for (int r = 0; r < 10; r++)
            ck_assert_int_eq(count[r], 1);
        ck_assert_mem_eq(rows, order, sizeof rows);
        if (e == 0)
            memcpy(epoch0, rows, sizeof rows);
        else if (e == 1)
            ck_assert(memcmp(epoch0, rows, sizeof rows) != 0);
    }
    for (int r = 0; r < 10; r++)
        ck_assert_int_gt(used[r], 0); /* over the epochs, every row */
    /* The order of epoch 3 hangs on (seed, 3) only: a fresh binding that
     * starts there (a resumed run) gets the same; another seed does not. */
    long o3[10];
    memcpy(o3, rt_data_order(&d, 3), sizeof o3);
    bind_numbered(&d2, 10);
    d2.shuffle = 1;
    d2.seed = 7;
    ck_assert_mem_eq(rt_data_order(&d2, 3), o3, sizeof o3);
    rt_data_load(&d2, &linreg_model, 8); /* epoch 3, second minibatch */
    for (int b = 0; b < 4; b++)
        ck_assert_int_eq(loaded_row(b), o3[4 + b]);
    rt_data_free(&d2);
    bind_numbered(&d2, 10);
    d2.shuffle = 1;
    d2.seed = 8;
    ck_assert(memcmp(rt_data_order(&d2, 3), o3, sizeof o3) != 0);
    rt_data_free(&d2);
    rt_data_free(&d);
    remove_tmpdir();
}
END_TEST

START_TEST(test_bind_val_split)
{
    make_tmpdir();
    char err[512];
    rt_data d, val;
    bind_numbered(&d, 10);
    rt_data_init(&val);
    ck_assert_msg(rt_data_split(&d, &val, &linreg_model, 0.2, 0, 0, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_int_eq(d.rows, 8);
    ck_assert_int_eq(d.nbatches, 2);
    ck_assert_int_eq(d.b[0].arr.shape[0], 8);
    ck_assert_int_eq(val.rows, 2);
    ck_assert_int_eq(val.nbatches, 0);
    ck_assert_int_eq(val.n, 2);
    /* The held-out rows are the file's last, 8 and 9, in file order. */
    memset(lr_arena, 0, sizeof lr_arena);
    rt_data_load_rows(&val, &linreg_model, 0, 2);
    ck_assert_int_eq(loaded_row(0), 8);
    ck_assert_int_eq(loaded_row(1), 9);
    ck_assert_double_eq(lr_arena[X_OFF + 6], 0); /* rows past n untouched */
    /* Shuffled for 50 epochs, training never sees them. */
    d.shuffle = 1;
    d.seed = 3;
    int used[10] = {0};
    for (long s = 1; s <= 100; s++) {
        rt_data_load(&d, &linreg_model, s);
        for (int b = 0; b < 4; b++)
            used[loaded_row(b)]++;
    }
    for (int r = 0; r < 8; r++)
        ck_assert_int_eq(used[r], 50);
    ck_assert_int_eq(used[8] + used[9], 0);
    rt_data_free(&d), rt_data_free(&val);

    /* 0.07 * 100 is 7.000000000000001 in double: still 7 rows. */
    bind_numbered(&d, 100);
    ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.07, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(val.rows, 7);
    ck_assert_int_eq(d.rows, 93);
    rt_data_free(&d), rt_data_free(&val);
    /* ceil: 0.25 of 10 holds out 3; 0.7 leaves fewer than a batch. */
    bind_numbered(&d, 10);
    ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.25, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(val.rows, 3);
    rt_data_free(&d), rt_data_free(&val);
    bind_numbered(&d, 10);
    ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.7, 0, 0, err, sizeof err), -1);
    ck_assert_str_eq(err, "--val-split 0.7: holding out 7 of 10 rows leaves 3 to train on, fewer "
                          "than the batch 4; use a smaller fraction");
    rt_data_free(&d), rt_data_free(&val);

    /* Shuffled: 3 of 10 rows drawn by the seed, not the last 3; the two
     * sets part the rows, each in file order; the same seed, the same. */
    int held[2][3];
    for (int k = 0; k < 2; k++) {
        bind_numbered(&d, 10);
        ck_assert_int_eq(rt_data_split(&d, &val, &linreg_model, 0.25, 1, 7, err, sizeof err), 0);
        ck_assert_int_eq(val.rows, 3);
        ck_assert_int_eq(d.rows, 7);
        int rows[10], seen[10] = {0};
        rt_data_load_rows(&val, &linreg_model, 0, 3);
        for (int r = 0; r < 3; r++)
            rows[r] = held[k][r] = loaded_row(r);
        rt_data_load_rows(&d, &linreg_model, 0, 4);
        for (int r = 0; r < 4; r++)
            rows[3 + r] = loaded_row(r);
        rt_data_load_rows(&d, &linreg_model, 4, 3);
        for (int r = 0; r < 3; r++)
            rows[7 + r] = loaded_row(r);
        for (int r = 0; r < 10; r++) {
            ck_assert(r == 0 || r == 3 || rows[r] > rows[r - 1]); /* file order */
            seen[rows[r]]++;
        }
        for (int r = 0; r < 10; r++)
            ck_assert_int_eq(seen[r], 1);
        ck_assert_int_ne(held[k][0], 7);
        rt_data_free(&d), rt_data_free(&val);
    }
    ck_assert_mem_eq(held[0], held[1], sizeof held[0]);
    remove_tmpdir();
}
END_TEST

/* The digits file: 0.2 holds out its last 360 rows, 1438-1797. */
START_TEST(test_bind_val_split_digits)
{
    char err[512];
    rt_data d, val;
    rt_data_init(&d);
    rt_data_init(&val);
    ck_assert_msg(rt_data_bind(&d, &digits_model, "x", "data/digits.csv.gz", err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(
        rt_data_bind(&d, &digits_model, "labels", "data/digits.csv.gz", err, sizeof err) == 0, "%s",
        err);
    ck_assert_msg(rt_data_finish(&d, &digits_model, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.rows, 1797);
    float x1438[64], x1797[64];
    memcpy(x1438, (float *)d.b[0].arr.data + 1437 * 64, sizeof x1438);
    memcpy(x1797, (float *)d.b[0].arr.data + 1796 * 64, sizeof x1797);
    int32_t l1438 = ((int32_t *)d.b[1].arr.data)[1437], l1797 = ((int32_t *)d.b[1].arr.data)[1796];
    ck_assert_int_eq(rt_data_split(&d, &val, &digits_model, 0.2, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(d.rows, 1437);
    ck_assert_int_eq(d.nbatches, 22);
    ck_assert_int_eq(val.rows, 360);
    ck_assert_int_eq(val.nbatches, 5);
    ck_assert_mem_eq(val.b[0].arr.data, x1438, sizeof x1438);
    ck_assert_mem_eq((float *)val.b[0].arr.data + 359 * 64, x1797, sizeof x1797);
    ck_assert_int_eq(((int32_t *)val.b[1].arr.data)[0], l1438);
    ck_assert_int_eq(((int32_t *)val.b[1].arr.data)[359], l1797);
    rt_data_free(&d), rt_data_free(&val);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("npy");
    tcase_add_test(tc, test_npy_round_trip);
    tcase_add_test(tc, test_npy_write_leaves_no_temp);
    tcase_add_test(tc, test_npy_read_numpy_files);
    tcase_add_test(tc, test_npy_numpy_reads_ours);
    tcase_add_test(tc, test_npy_truncated);
    tcase_add_test(tc, test_npy_bad_headers);
    tcase_add_test(tc, test_npy_fuzzed_headers);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("bind");
    tcase_add_test(tc, test_bind_conversions);
    tcase_add_test(tc, test_bind_csv_and_idx);
    tcase_add_test(tc, test_bind_text);
    tcase_add_test(tc, test_bind_tokens_as_text);
    tcase_add_test(tc, test_bind_tokens_out_of_vocab);
    tcase_add_test(tc, test_bind_tokens_numpy);
    tcase_add_test(tc, test_bind_batches_cycle);
    tcase_add_test(tc, test_bind_shuffle);
    tcase_add_test(tc, test_bind_val_split);
    tcase_add_test(tc, test_bind_val_split_digits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(data_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
