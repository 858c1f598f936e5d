/*
 * test_fuzz.c: every fuzz target, replayed without libFuzzer over its seed
 * corpus and over what the fuzzer once broke it with (tests/fuzz/TARGET),
 * so a fixed crash stays fixed, with or without clang. The seeds are in
 * fuzz/corpus/TARGET, except the model target's: the project's own models
 * (models/, and the test models in tests/).
 * Each target's replay program (fuzz/replay.c) runs as its own process: a
 * file that crashes it, or trips ASan or UBSan, fails the test by name.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char targets[] = FUZZ_TARGETS; /* "model npy ...", from the Makefile */
static const char *target[32];
static int n_targets;

/* Runs cmd with stderr joined to stdout: its exit status (-1 if it did not
 * exit, as when a sanitizer aborts it), and in *out the last of what it
 * printed, where a crash report and the file that caused it are. */
static int run(const char *cmd, char *out, size_t n)
{
    char full[1200];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = 0;
    for (size_t got; (got = fread(out + len, 1, n - 1 - len, p)) > 0;) {
        len += got;
        if (len == n - 1) { /* keep the second half */
            memmove(out, out + n / 2, len - n / 2);
            len -= n / 2;
        }
    }
    out[len] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The files in paths (folders and files, as the shell expands them). */
static int count_files(const char *paths)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find %s -maxdepth 1 -type f ! -name '.*' | wc -l", paths);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

START_TEST(replay_target)
{
    const char *t = target[_i];
    char corpus[256], found[256], cmd[1024];
    if (!strcmp(t, "model"))
        snprintf(corpus, sizeof corpus, "models tests/*_model.lua");
    else
        snprintf(corpus, sizeof corpus, "fuzz/corpus/%s", t);
    snprintf(found, sizeof found, "tests/fuzz/%s", t);
    /* A target with no seeds would replay nothing and pass. */
    int seeds = count_files(corpus);
    ck_assert_msg(seeds > 0, "%s: no seed files", corpus);
    struct stat st;
    int regressions = stat(found, &st) == 0 ? count_files(found) : 0;
    snprintf(cmd, sizeof cmd, "%s/replay_%s %s %s", BUILD_DIR, t, corpus,
             regressions ? found : "");
    static char out[8192];
    int status = run(cmd, out, sizeof out);
    char want[64];
    snprintf(want, sizeof want, "replayed %d files", seeds + regressions);
    ck_assert_msg(status == 0 && strstr(out, want), "%s: exit %d, output ends:\n%s", cmd, status,
                  out);
}
END_TEST

int main(void)
{
    for (char *s = strtok(targets, " "); s && n_targets < 32; s = strtok(NULL, " "))
        target[n_targets++] = s;
    Suite *s = suite_create("fuzz");
    TCase *t = tcase_create("fuzz");
    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, replay_target, 0, n_targets);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
