/*
 * model.c: the front end on hostile model files. The input is the text of
 * a model file; it goes through every pass `gradc compile` runs, up to the
 * C it would write (kept in memory), so a model that load_model() accepts
 * but a later pass chokes on is found too. A refused model must come back
 * as NULL with one line on stderr, never as a crash, a leak or a hang.
 */
#include "gradc.h"
#include "fuzz.h"

static void compile(Graph *g)
{
    grad(g);
    ir_check(g);
    Graph *s = simplify(g);
    ir_free(g);
    ir_check(s);
    Graph *d = dce(s);
    ir_free(s);
    ir_check(d);

    OutFile files[6];
    Fusion f = fuse(d);
    Plan p = plan(d, &f);
    emit_c(d, &f, &p, files);
    plan_free(&p);
    fusion_free(&f);
    Graph *inf = dce_inference(d);
    ir_check(inf);
    f = fuse(inf);
    p = plan(inf, &f);
    emit_c_inference(inf, &f, &p, files + 4);
    plan_free(&p);
    fusion_free(&f);
    ir_free(inf);
    ir_free(d);
    for (int i = 0; i < 6; i++) {
        free(files[i].path);
        buf_free(&files[i].text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The model's name is its file's, and must be a C identifier. */
    const char *path = fuzz_file(data, size, "fuzz_model.lua");
    LoadOptions o = {0};
    Graph *g = load_model(path, &o);
    if (g)
        compile(g);
    free_kept(); /* the file's text and the names every graph shared */
    return 0;
}
