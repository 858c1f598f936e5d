/*
 * test_readers.c: the CSV, IDX and text readers, on good files and on the
 * bad ones people have: ragged rows, words where numbers go, IDX headers
 * that lie about their sizes, truncated and oversized files, gzip or not.
 * Each bad file must be refused with a message naming it (and the line,
 * for CSV), never read past its end.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
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
    ck_assert_int_eq(rt_csv_read(p, &c, err, sizeof err), 0);
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
    ck_assert_msg(rt_csv_read(p, &c, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.has_header, 1);
    ck_assert_int_eq(c.rows, 2);
    ck_assert_int_eq(c.cols, 14);
    ck_assert_double_eq(c.values[14 + 12], 1050);
    rt_csv_free(&c);
}
END_TEST

START_TEST(csv_gzip_without_header)
{
    const char *p = write_text("d.csv.gz", "0,1,2\n3,4,5\n6,7,8\n");
    rt_csv c;
    ck_assert_int_eq(rt_csv_read(p, &c, err, sizeof err), 0);
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
    ck_assert_int_eq(rt_csv_read(p, &c, err, sizeof err), -1);
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
    ck_assert_int_eq(rt_csv_read(p, &c, err, sizeof err), 0);
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
    ck_assert_int_eq(rt_csv_read(file("none.csv"), &c, err, sizeof err), -1);
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

/* The real data the project ships reads as its documentation says. */
START_TEST(shipped_digits)
{
    rt_csv c;
    const char *p = "data/digits.csv.gz";
    ck_assert_msg(rt_csv_read(p, &c, err, sizeof err) == 0, "%s", err);
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
    tcase_add_test(t, csv_gzip_without_header);
    tcase_add_loop_test(t, csv_refused, 0, sizeof bad_csv / sizeof *bad_csv);
    tcase_add_test(t, csv_labels_must_be_integers);
    tcase_add_test(t, csv_missing_file);
    tcase_add_test(t, idx_images_plain_and_gzip);
    tcase_add_test(t, idx_floats_big_endian);
    tcase_add_test(t, idx_refused);
    tcase_add_test(t, text_bytes);
    tcase_add_test(t, shipped_digits);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
