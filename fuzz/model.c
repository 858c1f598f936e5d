/*
 * model.c: the front end on hostile model files. The input is the text of
 * a model file; it goes through every pass `gradc compile` runs, up to the
 * C it would write (kept in memory, compile_files), so a model that
 * load_model() accepts but a later pass chokes on is found too. A refused
 * model must come back with one line on stderr, never as a crash, a leak
 * or a hang.
 */
#include "gradc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The model's name is its file's, and must be a C identifier. */
    const char *path = fuzz_file(data, size, "fuzz_model.lua");
    /* Its seeds, models/, at the size make test compiles them; and the
     * test config line is one more thing a file can get wrong. */
    LoadOptions o = {.test_config = true};
    OutFile files[N_OUT_FILES];
    if (compile_files(path, &o, files) == 0)
        free_files(files, N_OUT_FILES);
    free_kept(); /* the file's text and the names every graph shared */
    return 0;
}
