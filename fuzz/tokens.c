/*
 * tokens.c: the llm.c token file reader on hostile files: headers whose
 * count lies about the file's size, or is negative or zero, other magics
 * and versions, odd lengths. Then the file as x and as y:next would take
 * it, into the iris model's inputs.
 */
#include "readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "in.bin");
    rt_array a;
    char err[512] = "";
    int rc = rt_tokens_read(path, &a, err, sizeof err);
    if (rc == 0) {
        if (a.rank != 1 || a.size < 1 || a.shape[0] != a.size || 1024 + 2 * (size_t)a.size != size)
            fail("a token array that is not the file's tokens", path);
        for (long i = 0; i < a.size; i++)
            if (((const int32_t *)a.data)[i] != (data[1024 + 2 * i] | data[1024 + 2 * i + 1] << 8))
                fail("a token that is not the file's", path);
        rt_array_free(&a);
    } else
        check_refusal(rc, path, err);
    load_inputs(path, -1, 1);
    /* y:next's messages name the file, not the file and ":next". */
    char next[4300];
    snprintf(next, sizeof next, "%s:next", path);
    const rt_model *m = &iris_model_f32;
    for (int k = 0; k < m->n_inputs; k++) {
        char msg[512] = "";
        rc = rt_input_load(m, &m->inputs[k], next, &RT_CSV_LAYOUT_DEFAULT, 1, &a, msg, sizeof msg);
        if (rc == 0) {
            check_loaded(m, &m->inputs[k], &a, 1);
            rt_array_free(&a);
        } else
            check_refusal(rc, path, msg);
    }
    return 0;
}
