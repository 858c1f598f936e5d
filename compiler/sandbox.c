/*
 * sandbox.c: the Lua state a model file runs in, and its limits. A model
 * file is untrusted (docs/hostile.md): it reaches only a safe part of
 * Lua's library (no io, os, require, load, dofile, debug, package,
 * coroutine or string.dump; math with a fixed seed; no finalizers), and
 * runs under limits on instructions, CPU time and memory that no pcall
 * catches, memory counting what the front end keeps for the model
 * outside Lua. Every error leaves as one line that starts with the file
 * and line it was raised at, with nothing in it a terminal would act on.
 */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "front.h"

/* ---- sandbox limits ---- */

/* Lua's memory. A refusal is not yet the limit: Lua collects garbage and
 * asks again, and only if that fails too raises a memory error, which
 * l_pcall and sandbox_run see as such. */
static void *limited_alloc(void *ud, void *ptr, size_t old, size_t size)
{
    Front *f = ud;
    if (!ptr)
        old = 0;
    if (size == 0) {
        f->memory -= old;
        free(ptr);
        return NULL;
    }
    if (size > old && f->memory + (size - old) > f->max_memory)
        return NULL; /* Lua raises "not enough memory" */
    void *p = realloc(ptr, size);
    if (p)
        f->memory = f->memory - old + size;
    return p;
}

/* Memory the front end keeps outside Lua for the model (nodes, names,
 * file texts) counts against the same limit. */
static bool fits(const Front *f, size_t bytes) { return bytes <= f->max_memory - f->memory; }

void charge(lua_State *L, size_t bytes)
{
    Front *f = front(L);
    if (!fits(f, bytes)) {
        f->stop = TOO_MUCH_MEMORY;
        lua_pushliteral(L, "out of memory");
        lua_error(L);
    }
    f->memory += bytes;
}

/* Raises the stop at the line running: level 0 inside a hook is the Lua
 * function that was. */
static int stop_here(lua_State *L, Stop why, const char *fmt, long limit)
{
    front(L)->stop = why;
    lua_Debug here;
    if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
        lua_pushfstring(L, "%s:%d: ", here.short_src, here.currentline);
    else
        lua_pushliteral(L, "");
    lua_pushfstring(L, fmt, (lua_Integer)limit);
    lua_concat(L, 2);
    return lua_error(L);
}

static const char TIME_MESSAGE[] = "the model ran for more than %I s of CPU time (an endless loop? "
                                   "--max-seconds raises the limit)";

/* Counts instructions; at the CPU-time limit stops the model; at each
 * new line lets the front end look at the locals (values take the names
 * of the locals that hold them), and notes the line for messages; and at
 * each return lets it look at what a function returns (a module's value
 * takes the module's name). */
static void hook(lua_State *L, lua_Debug *ar)
{
    Front *f = front(L);
    if (f->out_of_time)
        stop_here(L, TOO_LONG, TIME_MESSAGE, f->max_seconds);
    if (ar->event == LUA_HOOKRET) {
        if (f->on_return)
            f->on_return(L, ar);
        return;
    }
    if (ar->event == LUA_HOOKLINE) {
        f->on_line(L, ar);
        if (lua_getinfo(L, "S", ar) && ar->source[0] == '@') {
            if (!f->last_file || strcmp(f->last_file, ar->source + 1))
                for (int i = 0; i < f->g->n_files; i++)
                    if (!strcmp(f->g->file_names[i], ar->source + 1))
                        f->last_file = f->g->file_names[i];
            f->last_line = ar->currentline;
        }
        return;
    }
    f->instructions += INSTRUCTION_STEP;
    if (f->instructions > f->max_instructions)
        stop_here(L, TOO_MANY_INSTRUCTIONS,
                  "the model ran for more than %I Lua instructions (an endless loop? "
                  "--max-instructions raises the limit)",
                  f->max_instructions);
}

/* ---- the CPU-time limit ----
 * A timer on the process's CPU time. When it fires, the hook is set to
 * run at the very next instruction, which raises the limit as a Lua error
 * at the running line (the way lua.c stops a script on Ctrl-C). A model
 * may instead sit inside one C function (a pattern that backtracks, a
 * sort) where no hook runs; if it still has not come back a second
 * later, nothing can be unwound safely, so the line that called it is
 * named from what the hook last saw and gradc exits, having written
 * nothing yet. One front end runs at a time. */

static Front *volatile timed; /* the front end the timer stops */
static timer_t cpu_timer;

static void arm(long seconds)
{
    struct itimerspec when = {.it_value = {.tv_sec = seconds}};
    timer_settime(cpu_timer, 0, &when, NULL);
}

/* Only async-signal-safe calls from here: write and _exit. Every byte
 * a terminal could act on (or that is not ASCII) goes as \xNN. */
static void say(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char hex[4] = {'\\', 'x', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
        bool plain = c >= 0x20 && c < 0x7f;
        ssize_t r = write(2, plain ? (const char *)s : hex, plain ? 1 : 4);
        (void)r;
    }
}

static void say_number(long n)
{
    char digits[24], *d = digits + sizeof digits - 1;
    *d = 0;
    do
        *--d = (char)('0' + n % 10);
    while (n /= 10);
    say(d);
}

static void on_cpu_limit(int sig)
{
    (void)sig;
    Front *f = timed;
    if (!f)
        return;
    if (!f->out_of_time) {
        f->out_of_time = 1;
        lua_sethook(f->L, hook, LUA_MASKCOUNT | LUA_MASKLINE | LUA_MASKRET, 1);
        arm(1);
        return;
    }
    say(f->last_file ? f->last_file : f->g->source);
    say(":");
    say_number(f->last_line);
    say(": the model ran for more than ");
    say_number(f->max_seconds);
    say(" s of CPU time, inside one call of Lua's library (--max-seconds raises the limit)");
    ssize_t r = write(2, "\n", 1);
    (void)r;
    _exit(1);
}

static struct sigaction before_timer;

static void start_timer(Front *f)
{
    struct sigaction sa = {.sa_handler = on_cpu_limit};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGXCPU, &sa, &before_timer);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGXCPU};
    if (timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &cpu_timer) != 0)
        die("cannot make a CPU-time timer");
    timed = f;
    arm(f->max_seconds);
}

static void stop_timer(void)
{
    timed = NULL;
    timer_delete(cpu_timer);
    sigaction(SIGXCPU, &before_timer, NULL);
}

/* The length of the well-formed UTF-8 character at s (at most n bytes),
 * or 1 for anything else. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    size_t want = s[0] >= 0xf0 && s[0] < 0xf5   ? 4
                  : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
                  : s[0] >= 0xc2 && s[0] < 0xe0 ? 2
                                                : 1;
    if (want > n)
        return 1;
    for (size_t k = 1; k < want; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 1;
    return want;
}

/* Writes text for a terminal: a control byte (an escape sequence could
 * rewrite the screen), C1 control or byte that is not UTF-8 as \xNN. */
void put_printable(FILE *to, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_length(u + i, len - i);
        /* C1 controls (U+0080 to U+009F) are escapes too, to a terminal. */
        bool c1 = n == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0;
        if (n > 1 && !c1) {
            fwrite(u + i, 1, n, to);
            i += n;
        } else if ((u[i] < 0x20 && u[i] != '\t') || u[i] >= 0x7f) {
            for (size_t k = 0; k < (c1 ? 2 : 1); k++)
                fprintf(to, "\\x%02x", u[i + k]);
            i += c1 ? 2 : 1;
        } else
            fputc(u[i++], to);
    }
}

/* stdout carries gradc's own results; a model's prints are logs, on
 * stderr, and capped: a model cannot fill a terminal or a disk. */
static int l_print(lua_State *L)
{
    Front *f = front(L);
    char text[PRINT_CALL] = {0};
    size_t len = 0,
           room = PRINT_TOTAL - f->printed < PRINT_CALL ? PRINT_TOTAL - f->printed : PRINT_CALL;
    bool cut = false;
    int n = lua_gettop(L);
    for (int i = 1; i <= n && !cut; i++) {
        size_t part;
        const char *s = luaL_tolstring(L, i, &part);
        if (i > 1)
            part++, s--; /* the tab before it, written below */
        cut = part > room - len;
        part = cut ? room - len : part;
        if (i > 1 && part > 0)
            text[len] = '\t', memcpy(text + len + 1, s + 1, part - 1);
        else
            memcpy(text + len, s, part);
        len += part;
        lua_pop(L, 1);
    }
    if (f->printed >= PRINT_TOTAL)
        return 0;
    f->printed += len + 1; /* and its newline */
    put_printable(stderr, text, len);
    if (cut)
        fprintf(stderr, "... (a model prints at most %d bytes a call, %d in all)", PRINT_CALL,
                PRINT_TOTAL);
    fputs("\n", stderr);
    return 0;
}

static int l_getmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    return lua_getmetatable(L, 1) ? 1 : 0;
}

/* pcall, except that a limit of the sandbox cannot be caught: a model
 * that passes one stops there. Running out of memory is one only once
 * Lua's last collection could not make room. */
static int l_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (status == LUA_ERRMEM)
        front(L)->stop = TOO_MUCH_MEMORY;
    if (status != LUA_OK && front(L)->stop != RUNNING)
        return lua_error(L);
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* setmetatable, without finalizers: a __gc runs with hooks off (no
 * limit stops it) and when Lua pleases, even after the model returned.
 * Lua marks a table for finalizing only if its metatable has __gc when
 * set, so refusing it here is enough. */
static int l_setmetatable(lua_State *L)
{
    lua_pushliteral(L, "__gc");
    if (lua_istable(L, 2) && lua_rawget(L, 2) != LUA_TNIL)
        return luaL_error(L, "setmetatable: a __gc finalizer is not allowed in a model file "
                             "(it would run unbounded, and after the model)");
    lua_settop(L, 2);
    lua_getglobal(L, "setmetatable");
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static void copy_library(lua_State *L, const char *lib, const char *const *skip)
{
    lua_getglobal(L, lib);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        bool skipped = false;
        for (const char *const *s = skip; *s; s++)
            skipped |= !strcmp(lua_tostring(L, -2), *s);
        if (skipped)
            lua_pop(L, 1);
        else {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    }
    lua_remove(L, -2);
}

void sandbox_library(lua_State *L)
{
    static const char *const safe[] = {"assert", "error",    "ipairs",   "next", "pairs",
                                       "select", "tonumber", "tostring", "type", "rawequal",
                                       "rawlen", "rawget",   "rawset",   NULL};
    static const char *const none[] = {NULL};
    static const char *const no_seed[] = {"randomseed", NULL};
    static const luaL_Reg guarded[] = {
        {"print", l_print},
        {"pcall", l_pcall},
        {"getmetatable", l_getmetatable},
        {"setmetatable", l_setmetatable},
        {NULL, NULL},
    };
    lua_newtable(L);
    for (const char *const *s = safe; *s; s++) {
        lua_getglobal(L, *s);
        lua_setfield(L, -2, *s);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "unpack");
    lua_setfield(L, -3, "unpack");
    lua_pop(L, 1);
    copy_library(L, "math", no_seed);
    lua_setfield(L, -2, "math");
    copy_library(L, "string", none);
    lua_setfield(L, -2, "string");
    copy_library(L, "table", none);
    lua_setfield(L, -2, "table");
    luaL_setfuncs(L, guarded, 0);
}

/* A Lua file's text, kept with the graph (for the C's comments) and so
 * counted against the memory limit as it is read: a model file that is
 * /dev/zero stops there. Raises path:1: why, if it cannot be read. */
bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *read_file(lua_State *L, const char *path, size_t *len)
{
    /* Only a regular file: opening a FIFO would wait for a writer (with no
     * CPU time spent, so no limit would stop it), and /dev/zero never ends. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
        close(fd);
        luaL_error(L, "%s:1: not a regular file", path);
    }
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!fp)
        luaL_error(L, "%s:1: cannot read the file", path);
    Buf b = {0};
    char chunk[65536];
    size_t n;
    bool nul = false;
    while (!nul && (n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (!fits(front(L), b.len + n)) {
            fclose(fp);
            buf_free(&b);
            charge(L, SIZE_MAX); /* raises */
        }
        nul = memchr(chunk, 0, n) != NULL;
        if (!nul)
            buf_printf(&b, "%.*s", (int)n, chunk);
    }
    bool bad = ferror(fp);
    fclose(fp);
    char *text = keep(b.data ? b.data : xstrdup(""));
    if (bad)
        luaL_error(L, "%s:1: cannot read the file", path);
    if (nul)
        luaL_error(L, "%s:1: a NUL byte: a model file is Lua source text", path);
    charge(L, b.len + 1);
    *len = b.len;
    return text;
}

/* How Lua names a file in its messages (its chunk id): the path, or its
 * end after "..." if it is long. */
static void short_src(const char *path, char out[LUA_IDSIZE])
{
    size_t n = strlen(path);
    if (n + 1 <= LUA_IDSIZE)
        memcpy(out, path, n + 1);
    else
        snprintf(out, LUA_IDSIZE, "...%s", path + n - (LUA_IDSIZE - 4));
}

/* The length of the "file:line" msg starts with, file one of the model's
 * files; 0 if it starts with none. */
static size_t location_length(const Graph *g, const char *msg)
{
    for (int i = -1; i < g->n_files; i++) {
        char src[LUA_IDSIZE];
        short_src(i < 0 ? g->source : g->file_names[i], src);
        size_t n = strlen(src);
        if (!strncmp(msg, src, n) && msg[n] == ':' && isdigit((unsigned char)msg[n + 1])) {
            while (isdigit((unsigned char)msg[n + 1]))
                n++;
            return n + 1;
        }
    }
    return 0;
}

bool has_location(const Graph *g, const char *msg) { return location_length(g, msg) > 0; }

void load_text(lua_State *L, const char *path, const char *text, size_t len)
{
    Graph *g = front(L)->g;
    charge(L, 2 * sizeof(char *) + strlen(path) + 1);
    g->files = xrealloc(g->files, (g->n_files + 1) * sizeof *g->files);
    g->file_names = xrealloc(g->file_names, (g->n_files + 1) * sizeof *g->file_names);
    g->files[g->n_files] = (char *)text;
    g->file_names[g->n_files++] = keep(xstrdup(path));
    /* Text only: precompiled chunks can break the VM's invariants. */
    if (len > 0 && text[0] == LUA_SIGNATURE[0])
        luaL_error(L, "%s:1: a precompiled Lua chunk: a model file is Lua source text", path);
    lua_pushfstring(L, "@%s", path);
    if (luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t") != LUA_OK) {
        if (lua_type(L, -1) == LUA_TSTRING && !has_location(g, lua_tostring(L, -1))) {
            lua_pushfstring(L, "%s:1: %s", path, lua_tostring(L, -1));
            lua_replace(L, -2);
        }
        lua_error(L);
    }
    lua_remove(L, -2);
}

/* The message handler of the model's run: every error leaves as one
 * message that starts with the file and line it was raised at, whatever
 * was raised (error({}), error(42), error("x", 0)). */
static int locate_error(lua_State *L)
{
    Graph *g = front(L)->g;
    const char *msg = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
    if (msg && has_location(g, msg))
        return 1;
    const char *file = g->source;
    int line = 1;
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++)
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            file = ar.short_src;
            line = ar.currentline;
            break;
        }
    if (msg)
        lua_pushfstring(L, "%s:%d: %s", file, line, msg);
    else
        lua_pushfstring(L, "%s:%d: the model raised an error that is a %s, not a message", file,
                        line, luaL_typename(L, 1));
    return 1;
}

/* An error raised inside a module (models/lib's, or the user's own) is
 * the user's at the line of the model file that called into it: said
 * there, the module's line after it, so a duplicate name or a bad shape
 * points at the call the user wrote. */
static int blame_the_caller(lua_State *L)
{
    locate_error(L);
    Graph *g = front(L)->g;
    const char *msg = lua_tostring(L, -1);
    char model[LUA_IDSIZE];
    short_src(g->source, model);
    size_t at = location_length(g, msg), n = strlen(model);
    if (!at || (!strncmp(msg, model, n) && msg[n] == ':'))
        return 1;
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++)
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 && !strcmp(ar.short_src, model)) {
            const char *rest = msg[at] == ':' ? msg + at + 1 : msg + at;
            rest += *rest == ' ';
            char where[LUA_IDSIZE + 16];
            snprintf(where, sizeof where, "%.*s", (int)at, msg);
            lua_pushfstring(L, "%s:%d: %s (in %s)", model, ar.currentline, rest, where);
            break;
        }
    return 1;
}

lua_State *sandbox_open(Front *f)
{
    lua_State *L = lua_newstate(limited_alloc, f);
    if (!L)
        return NULL;
    f->L = L;
    *(Front **)lua_getextraspace(L) = f;
    luaL_openlibs(L);
    /* Strings' methods are the string library itself ("".dump): dump goes
     * from there, so no bytecode can be made, from anywhere. */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, 42);
    lua_call(L, 1, 0); /* models are deterministic */
    lua_pop(L, 1);
    lua_sethook(L, hook, LUA_MASKCOUNT | LUA_MASKLINE | LUA_MASKRET, INSTRUCTION_STEP);
    return L;
}

int sandbox_run(Front *f, lua_CFunction body, void *a, void *b, char *err, size_t len)
{
    lua_State *L = f->L;
    const char *path = f->g->source;
    lua_pushcfunction(L, blame_the_caller);
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, a);
    lua_pushlightuserdata(L, b);
    start_timer(f);
    int status = lua_pcall(L, 2, 0, -4);
    stop_timer();
    f->frozen = true;
    if (status == LUA_ERRMEM || f->stop == TOO_MUCH_MEMORY) {
        /* The one limit whose message Lua writes, without a line. */
        snprintf(err, len,
                 "%s:%d: the model used more than %zu MiB of memory (--max-memory MB raises "
                 "the limit)",
                 f->last_file ? f->last_file : path, f->last_line > 0 ? f->last_line : 1,
                 f->max_memory >> 20);
        return 1;
    }
    if (status == LUA_OK)
        return 0;
    const char *said = lua_tostring(L, -1); /* locate_error made it a string */
    if (has_location(f->g, said))
        snprintf(err, len, "%s", said);
    else /* an error in the error handling itself */
        snprintf(err, len, "%s:%d: %s", f->last_file ? f->last_file : path,
                 f->last_line > 0 ? f->last_line : 1, said);
    return 1;
}
