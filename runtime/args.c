/*
 * args.c: command-line flags for the generic mains.
 *
 * Flags take their value as the next argument or after '=' (`--steps 50`,
 * `--steps=50`). A bad flag or value is one line on stderr naming the
 * program, the flag and what was given, ending with a pointer to --help;
 * the callers turn that into exit status 2.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt_internal.h"

void rt_args_error(const rt_args *a, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", a->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
}

int rt_args_is(const rt_args *a, const char *flag) { return strcmp(a->argv[a->i], flag) == 0; }

int rt_args_value(rt_args *a, const char *flag, const char **val)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(flag);
    if (strncmp(arg, flag, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *val = arg + n + 1;
        a->i += 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (a->i + 1 >= a->argc) {
        rt_args_error(a, "%s: missing value", flag);
        return -1;
    }
    *val = a->argv[a->i + 1];
    a->i += 2;
    return 1;
}

/* strto* skip leading blanks and accept signs; a flag value may not. */
static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int rt_parse_posint(const rt_args *a, const char *flag, const char *s, long *out)
{
    errno = 0;
    long v = all_digits(s) ? strtol(s, NULL, 10) : 0;
    if (errno || v < 1 || v > INT_MAX) {
        rt_args_error(a, "%s: expected a positive integer, got '%s'", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int rt_parse_count(const rt_args *a, const char *flag, const char *s, long *out)
{
    errno = 0;
    long v = all_digits(s) ? strtol(s, NULL, 10) : -1;
    if (errno || v < 0) {
        rt_args_error(a, "%s: expected a non-negative integer, got '%s'", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int rt_parse_threads(const rt_args *a, const char *s, long *out)
{
    if (!strcmp(s, "auto")) {
        *out = 0;
        return 0;
    }
    errno = 0;
    long v = all_digits(s) ? strtol(s, NULL, 10) : -1;
    if (errno || v < 0 || v > 4096) {
        rt_args_error(a, "--threads: expected a count of threads, or 0 or auto for every core, "
                         "got '%s'",
                      s);
        return -1;
    }
    *out = v;
    return 0;
}

int rt_parse_u64(const rt_args *a, const char *flag, const char *s, uint64_t *out)
{
    errno = 0;
    unsigned long long v = all_digits(s) ? strtoull(s, NULL, 10) : 0;
    if (!all_digits(s) || errno) {
        rt_args_error(a, "%s: expected a non-negative integer, got '%s'", flag, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int rt_parse_double(const rt_args *a, const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(v) || v < 0) {
        rt_args_error(a, "%s: expected a non-negative number, got '%s'", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int rt_parse_label_column(const rt_args *a, const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!strcmp(s, "none")) {
        *out = RT_NO_LABEL;
        return 0;
    }
    if (*s == '\0' || *end != '\0' || errno || v == 0 || v > INT_MAX || v < -INT_MAX) {
        rt_args_error(a,
                      "--label-column: expected a column number from 1, or negative from the "
                      "end (-1 is the last), or none, got '%s'",
                      s);
        return -1;
    }
    *out = v;
    return 0;
}
