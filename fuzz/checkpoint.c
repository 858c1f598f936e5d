/*
 * checkpoint.c: the checkpoint loader on hostile files, into the iris
 * model as --resume (float and double builds) and as iris_predict
 * --checkpoint (the inference model, which takes the parameters alone).
 * Almost every mutation breaks the checksum, which is checked first; so
 * each input is also tried with its last 8 bytes replaced by the right
 * FNV-1a checksum, to reach the checks behind it. A refusal must name the
 * file and leave the model's memory as it was.
 */
#include "rt.h"
#include "iris.h"
#include "fuzz.h"

/* runtime/checkpoint.c's checksum: FNV-1a of everything before the last
 * 8 bytes, stored there little-endian. size > 8. */
static void fix_checksum(uint8_t *b, size_t size)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < size - 8; i++)
        h = (h ^ b[i]) * 0x100000001b3u;
    for (int i = 0; i < 8; i++)
        b[size - 8 + i] = (uint8_t)(h >> 8 * i);
}

static void load_into(const rt_model *m, const char *path, int params_only)
{
    size_t bytes = (size_t)m->arena_size * (m->real == RT_F64 ? 8 : 4);
    unsigned char *before = malloc(bytes);
    memcpy(before, m->arena, bytes);
    char err[512] = "";
    long step = -1;
    uint64_t seed;
    int rc = params_only ? rt_checkpoint_load_params(m, path, err, sizeof err)
                         : rt_checkpoint_load(m, path, &step, &seed, err, sizeof err);
    if (rc == 0 && !params_only && step < 0)
        fail("a checkpoint loaded with a negative step", path);
    if (rc != 0) {
        check_refusal(rc, path, err);
        if (memcmp(before, m->arena, bytes) != 0)
            fail("a refused checkpoint changed the model", err);
    }
    free(before);
}

static void load_all(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "in.ckpt");
    load_into(&iris_model_f32, path, 0);
    load_into(&iris_model_f64, path, 0);
    load_into(&iris_infer_model_f32, path, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_all(data, size);
    if (size > 8) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        fix_checksum(fixed, size);
        load_all(fixed, size);
        free(fixed);
    }
    return 0;
}
