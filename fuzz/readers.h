/*
 * readers.h: what the reader targets share. A data file goes through
 * rt_input_load(), the path a trainer's --data takes, for each input of the
 * iris model (x [*, 4] float, labels [*] int32 in [0, 3)): the reader, then
 * the checks behind it (row shape, lossless conversion, label range).
 * Either the file loads as promised or it is refused with a message naming
 * it; anything else aborts, which the fuzzer reports.
 */
#ifndef FUZZ_READERS_H
#define FUZZ_READERS_H

#include "rt_internal.h"
#include "rt_read.h"
#include "iris.h"
#include "fuzz.h"

/* What rt_input_load promises of an array it returns for input t. */
static inline void check_loaded(const rt_model *m, const rt_tensor *t, const rt_array *a, long min_rows)
{
    if (a->dtype != rt_storage_dtype(m, t) || a->rank != t->rank || a->shape[0] < min_rows ||
        shape_product(a->rank, a->shape) != a->size)
        fail("a loaded array that does not fit its input", t->name);
    for (int d = 1; d < a->rank; d++)
        if (a->shape[d] != t->shape[d])
            fail("a loaded array of another row shape", t->name);
    /* Every element is read, so a short buffer shows under ASan. */
    for (long i = 0; i < a->size; i++)
        if (a->dtype == RT_I32) {
            int32_t v = ((const int32_t *)a->data)[i];
            if (t->classes > 0 && (v < 0 || v >= t->classes))
                fail("a label out of range got through", t->name);
        } else {
            volatile float v = ((const float *)a->data)[i];
            (void)v;
        }
}

/* Loads path into every input of iris, at least min_rows rows each. */
static inline void load_inputs(const char *path, long label_column, long min_rows)
{
    const rt_model *m = &iris_model_f32;
    for (int k = 0; k < m->n_inputs; k++) {
        const rt_tensor *t = &m->inputs[k];
        rt_array a;
        char err[512] = "";
        rt_csv_layout csv = {.label_column = label_column};
        int rc = rt_input_load(m, t, path, &csv, min_rows, &a, err, sizeof err);
        if (rc == 0) {
            check_loaded(m, t, &a, min_rows);
            rt_array_free(&a);
        } else
            check_refusal(rc, path, err);
    }
}

#endif
