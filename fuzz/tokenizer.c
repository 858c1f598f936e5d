/*
 * tokenizer.c: llm.c's tokenizer reader (a trainer's --tokenizer) on
 * hostile files: vocabulary sizes the file cannot hold, token lengths
 * that run past its end, empty tokens, bytes left over. A table it
 * accepts must give every token's bytes from inside the file.
 */
#include "rt_internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "tok.bin");
    rt_tokenizer t;
    char err[512] = "";
    int rc = rt_tokenizer_read(path, &t, err, sizeof err);
    if (rc != 0) {
        check_refusal(rc, path, err);
        return 0;
    }
    size_t end = 1024;
    for (long k = 0; k < t.vocab; k++) {
        size_t len;
        const unsigned char *b = rt_tokenizer_token(&t, k, &len);
        if (!b || len < 1 || memcmp(b, data + end + 1, len) != 0)
            fail("a token that is not the file's", path);
        end += 1 + len;
    }
    size_t len;
    if (end != size || rt_tokenizer_token(&t, t.vocab, &len) || rt_tokenizer_token(&t, -1, &len))
        fail("a table that is not the file's", path);
    rt_tokenizer_free(&t);
    return 0;
}
