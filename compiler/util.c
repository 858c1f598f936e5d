/*
 * util.c: the few things every pass needs: checked allocation, a growing
 * text buffer, the one escaping of outside text into C, shortest
 * round-trip number formatting, and die() for
 * compiler bugs (which name the C file and line and abort, unlike user
 * errors, which name the Lua file and line and exit 1).
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gradc.h"

noreturn void die_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gradc: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, n + 1, fmt, ap);
    va_end(ap);
    b->len += n;
}

void buf_free(Buf *b)
{
    free(b->data);
    *b = (Buf){0};
}

/* Text from outside gradc (a path, a line of the model, a name) is data in
 * the C it writes, never code: inside a string literal every byte but
 * printable ASCII is an octal escape, and so are the quote, the backslash
 * and the '?' that could begin a trigraph; inside a comment no byte may
 * open or close one, nor be a control or non-ASCII byte (a bidi control
 * in a comment is itself a warning); an identifier must already be one,
 * as the front end checked. */
void buf_c_text(Buf *b, const char *s, size_t max, CText as)
{
    if (as == C_IDENT) {
        if (!is_c_identifier(s))
            die("'%s' reached the C as a name, but is not one", s);
        buf_printf(b, "%s", s);
        return;
    }
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = c >= 0x20 && c < 0x7f;
        if (as == C_STRING) {
            if (plain && c != '"' && c != '\\' && c != '?')
                buf_printf(b, "%c", c);
            else
                buf_printf(b, "\\%03o", c);
        } else if (!plain)
            buf_printf(b, "?");
        else if (c == '*' && (i == 0 || s[i - 1] == '/' || s[i + 1] == '/' || !s[i + 1]))
            buf_printf(b, "+");
        else
            buf_printf(b, "%c", c);
    }
}

/* Names the generated C's headers take, sorted as strcmp sorts. */
static const char *const header_names[] = {
#include "c_names.inc"
};

static int by_name(const void *key, const void *name)
{
    return strcmp(key, *(const char *const *)name);
}

bool is_header_name(const char *s)
{
    return bsearch(s, header_names, sizeof header_names / sizeof *header_names,
                   sizeof *header_names, by_name) != NULL;
}

bool is_c_identifier(const char *s)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

void fmt_real(char out[40], double v)
{
    /* %.17g always round-trips but prints 0.0001 as 0.00010000000000000000479;
     * the first precision that reads back exactly is what a person wrote. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".eni"))
        strcat(out, ".0");
}

const char *thousands(char out[32], long n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ld", n), o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    return out;
}

/* Strings that outlive any one graph (names, file names, file text) are
 * kept here until exit, so passes can share them without owning them. */
static char **kept;
static int n_kept, cap_kept;

char *keep(char *p)
{
    if (n_kept == cap_kept) {
        cap_kept = cap_kept ? 2 * cap_kept : 64;
        kept = xrealloc(kept, cap_kept * sizeof *kept);
    }
    return kept[n_kept++] = p;
}

void free_kept(void)
{
    for (int i = 0; i < n_kept; i++)
        free(kept[i]);
    free(kept);
    kept = NULL;
    n_kept = cap_kept = 0;
}

/* The folder gradc runs from: build/ in a source tree, PREFIX/bin once
 * installed. What gradc needs at run time is found relative to it, so an
 * installed tree can be moved. */
const char *gradc_dir(void)
{
    static char dir[PATH_MAX];
    if (!dir[0]) {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0)
            return strcpy(dir, ".");
        dir[n] = 0;
        *strrchr(dir, '/') = 0;
    }
    return dir;
}
