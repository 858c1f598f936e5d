/*
 * replay.c: main() for a fuzz target without libFuzzer, so any compiler
 * (and the sanitizer build of `make test`) can run it: feeds it each file
 * named, and every file in each folder named, in name order. A file that
 * crashes it crashes this, under its name (printed first, to stderr).
 *
 *   build/replay_npy tests/fuzz/npy fuzz/corpus/npy    # or one crash-... file
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns 0, or -1 if the file cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t size = 0, cap = 4096;
    uint8_t *data = malloc(cap);
    for (size_t n; data && (n = fread(data + size, 1, cap - size, f)) > 0;) {
        size += n;
        if (size == cap)
            data = realloc(data, cap *= 2);
    }
    int bad = !data || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(data);
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    /* An exact-size copy, so the sanitizers see a read past the input's end. */
    uint8_t *exact = malloc(size ? size : 1);
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    int status = 0;
    long files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            status = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            status |= replay_file(argv[i]) ? 1 : 0;
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            perror(argv[i]);
            status = 1;
            continue;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
            if (names[k]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                status |= replay_file(path) ? 1 : 0;
                files++;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("replayed %ld files\n", files);
    return status;
}
