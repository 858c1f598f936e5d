/*
 * test_util.h: what the suites that drive programs share: run a command
 * and capture what it printed, make a scratch folder, write a file.
 * Static inline functions: each suite is one translation unit, and uses
 * only some of them.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs cmd through the shell with stderr joined to stdout; returns its
 * exit status (or -1 if it did not exit) and, in *out, what it printed. */
static inline int run_cmd(const char *cmd, char **out)
{
    char *full = malloc(strlen(cmd) + 16);
    sprintf(full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int status = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A fresh folder under /tmp; the caller removes it with remove_dir. */
static inline char *make_tmpdir(void)
{
    char *dir = strdup("/tmp/gradc-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static inline void remove_dir(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(dir);
}

static inline void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static inline int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A model refused as gradc must refuse one: exit 1, one line that starts
 * with `message` (the file and line), and no output folder written. */
static inline void assert_refused(const char *what, int status, const char *said,
                                  const char *message, const char *out_dir)
{
    ck_assert_msg(status == 1, "%s: exit %d, said: %.2000s", what, status, said);
    ck_assert_msg(strncmp(said, message, strlen(message)) == 0,
                  "%s: expected '%s...', got '%.2000s'", what, message, said);
    const char *newline = strchr(said, '\n');
    ck_assert_msg(newline && newline[1] == 0, "%s: more than one line: '%.2000s'", what, said);
    ck_assert_msg(!file_exists(out_dir), "%s: wrote %s", what, out_dir);
}

#endif
