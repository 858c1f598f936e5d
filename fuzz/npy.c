/*
 * npy.c: the .npy reader on hostile files: headers that lie about their
 * length, shape or dtype, truncated data, values that do not convert.
 */
#include "readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "in.npy");
    rt_array a;
    char err[512] = "";
    int rc = rt_npy_read(path, &a, err, sizeof err);
    if (rc == 0) {
        if (shape_product(a.rank, a.shape) != a.size)
            fail("an array whose shape is not its size", path);
        for (long i = 0; i < a.size; i++) {
            volatile unsigned char b = ((unsigned char *)a.data)[i * (a.dtype == RT_F64 ? 8 : 4)];
            (void)b;
        }
        rt_array_free(&a);
    } else
        check_refusal(rc, path, err);
    load_inputs(path, -1, 1);
    return 0;
}
