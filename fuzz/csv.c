/*
 * csv.c: the CSV reader on hostile tables: ragged rows, words and
 * overflowing numbers where numbers go, huge lines, odd label columns.
 * The name ends in .csv.gz, so zlib reads it gzipped or plain, as a
 * trainer does.
 */
#include "readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "in.csv.gz");
    rt_csv c;
    char err[512] = "";
    int rc = rt_csv_read(path, 0, &c, err, sizeof err);
    if (rc == 0) {
        if (c.rows < 1 || c.cols < 1)
            fail("a table with no rows or columns", path);
        /* Every way of cutting columns out, in range or not. */
        for (long first = -1; first <= c.cols && first < 4; first++)
            for (long n = 0; first + n <= c.cols + 1 && n < 4; n++)
                for (int i32 = 0; i32 < 2; i32++) {
                    rt_array a;
                    rt_dtype d = i32 ? RT_I32 : RT_F64;
                    rc = rt_csv_columns(&c, path, first, n, d, &a, err, sizeof err);
                    if (rc == 0 && (a.size != c.rows * n || a.dtype != d))
                        fail("columns of the wrong size", path);
                    if (rc == 0)
                        rt_array_free(&a);
                    else
                        check_refusal(rc, path, err);
                }
        rt_csv_free(&c);
    } else
        check_refusal(rc, path, err);
    /* The label column last (the default), first, and out of range. */
    load_inputs(path, -1, 1);
    load_inputs(path, 1, 1);
    load_inputs(path, 9, 1);
    return 0;
}
