/*
 * idx.c: the IDX reader on hostile files: headers whose dimensions
 * overflow or promise more or less data than there is, unknown type codes.
 * The name ends in .idx, but zlib reads it gzipped or plain.
 */
#include "readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "in.idx");
    rt_array a;
    char err[512] = "";
    int rc = rt_idx_read(path, &a, err, sizeof err);
    if (rc == 0) {
        if (shape_product(a.rank, a.shape) != a.size || a.size < 1)
            fail("an array whose shape is not its size", path);
        volatile unsigned char last =
            ((unsigned char *)a.data)[a.size * (a.dtype == RT_F64 ? 8 : 4) - 1];
        (void)last;
        rt_array_free(&a);
    } else
        check_refusal(rc, path, err);
    load_inputs(path, -1, 1);
    return 0;
}
