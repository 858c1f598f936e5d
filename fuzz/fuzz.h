/*
 * fuzz.h: what the fuzz targets share. Each fuzz/TARGET.c defines
 * LLVMFuzzerTestOneInput; `make fuzz` links it with libFuzzer (clang), and
 * `make test` links it with replay.c (any compiler) to replay the corpus
 * and the regression files. Static functions: each target is one
 * translation unit; static inline, so a target need not use them all.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[4096], fuzz_path[4200];

static inline void fuzz_cleanup(void)
{
    unlink(fuzz_path);
    rmdir(fuzz_dir);
}

/* The input as the file dir/name, because the readers and the front end
 * take paths: one private folder per process, made on the first call and
 * removed at exit, and the same file rewritten for every input. The name
 * matters: its suffix picks the reader, and a model's name is its file's. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *name)
{
    if (!fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/gradc-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror(fuzz_dir);
            abort();
        }
        atexit(fuzz_cleanup);
    }
    if (fuzz_path[0])
        unlink(fuzz_path);
    snprintf(fuzz_path, sizeof fuzz_path, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(fuzz_path);
        abort();
    }
    return fuzz_path;
}

static inline void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, detail);
    abort();
}

/* The product of n dimensions, or -1 if it overflows a long. */
static inline long shape_product(int n, const long *shape)
{
    long size = 1;
    for (int d = 0; d < n; d++)
        if (__builtin_mul_overflow(size, shape[d], &size))
            return -1;
    return size;
}

/* A refusal: -1, and one line that names the file. */
static inline void check_refusal(int rc, const char *path, const char *err)
{
    if (rc != -1)
        fail("a reader returned neither 0 nor -1", path);
    if (!strstr(err, path))
        fail("a refusal that does not name the file", err);
}

#endif
