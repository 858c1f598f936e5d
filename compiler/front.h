/*
 * front.h: what the front end's four files share (compiler/front/ in
 * all but name): sandbox.c, the Lua state and its limits; language.c, the
 * model language's tensors and ops; naming.c, the names values take from
 * the model; load_model.c, a model file run through them into a graph.
 * Only they include Lua's headers.
 */
#ifndef FRONT_H
#define FRONT_H

#include <signal.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include "gradc.h"

enum {
    INSTRUCTION_STEP = 10000, /* instructions are counted in these steps */
    MAX_VAR = 64,        /* a Lua local's name (or a module's) longer than this names nothing */
    PRINT_CALL = 4096,   /* bytes one print() of a model may write */
    PRINT_TOTAL = 65536, /* and all of them together */
};

/* Which limit of the sandbox stopped the model: no pcall catches one. */
typedef enum { RUNNING, TOO_MANY_INSTRUCTIONS, TOO_LONG, TOO_MUCH_MEMORY } Stop;

typedef struct Front {
    Graph *g;
    lua_State *L;
    const char *dir; /* the model file's folder, for import */
    /* sandbox.c's */
    long instructions, max_instructions;
    size_t memory, max_memory; /* Lua's, and what the graph keeps of it */
    long max_seconds;          /* of CPU time */
    volatile sig_atomic_t out_of_time;
    Stop stop;
    const char *last_file; /* the line running last (the graph's copy of */
                           /* its file's name), for a stop Lua cannot place */
    volatile int last_line;
    size_t printed;
    void (*on_line)(lua_State *L, lua_Debug *ar); /* at each new line the model runs */
    /* at each return of a function, or NULL */
    void (*on_return)(lua_State *L, lua_Debug *ar);
    /* language.c's */
    bool frozen;      /* the model returned: nothing may add to the graph */
    int named_up_to;  /* nodes made before the last line are named or never will be */
    long local_reads; /* how often the naming read a local, for --stats */
    int random_sites; /* each dropout() and random_shift() draws its own */
    /* per node, what name_values() names it from; the module last found */
    struct Naming *naming;
    const char *module;
    /* load_model.c's */
    bool have_model;
    SrcLoc model_loc; /* where model{} was called */
    int model_ref;    /* the table model{} returned */
} Front;

static inline Front *front(lua_State *L) { return *(Front **)lua_getextraspace(L); }

/* ---- sandbox.c ---- */
/* A Lua state with f's limits, the standard library loaded (for the
 * sandbox to pick from) and no string.dump; NULL if there is no memory. */
lua_State *sandbox_open(Front *f);
/* Pushes a fresh environment holding the safe part of Lua's library. */
void sandbox_library(lua_State *L);
/* Runs body(a, b) in the sandbox, under its CPU-time limit; 0, or 1 with
 * the one line to say in err (file:line first). The model is frozen then. */
int sandbox_run(Front *f, lua_CFunction body, void *a, void *b, char *err, size_t len);
/* Counts memory the front end keeps for the model against the limit. */
void charge(lua_State *L, size_t bytes);
/* Whether path is a regular file (not a FIFO, a device or a folder). */
bool is_file(const char *path);
/* A Lua file's text, counted against the memory limit; raises FILE:1: why. */
char *read_file(lua_State *L, const char *path, size_t *len);
/* Pushes the function of a file's text (no bytecode), kept for the C's
 * comments; raises on bad syntax, at the file and line. */
void load_text(lua_State *L, const char *path, const char *text, size_t len);
/* Whether a message starts with file:line of one of the model's files. */
bool has_location(const Graph *g, const char *msg);
/* Text for a terminal: control bytes as \xNN. */
void put_printable(FILE *to, const char *s, size_t len);

/* ---- language.c ---- */
/* The model language's functions, for an environment. */
void open_model_language(lua_State *L); /* into the table on top */
void make_tensor_metatable(lua_State *L);
/* Tensors are userdata holding a node id, with this metatable. Inline, so
 * that naming.c, which language.c calls, need not call back into it. */
#define TENSOR "gradc.tensor"
static inline bool is_tensor(lua_State *L, int idx) { return luaL_testudata(L, idx, TENSOR); }
static inline int tensor_id(lua_State *L, int idx) { return *(int *)lua_touserdata(L, idx); }
static inline const Node *node_of(lua_State *L, int id) { return ir_at(front(L)->g, id); }
/* Room for element n of an array that grows by one, doubling. */
void *grow(void *p, int n, size_t size);

/* ---- naming.c ---- */
/* What name_values() names a value from, besides its Lua local: the module
 * whose function made it and the one that returned it (module_of: a
 * function with a parameter or an upvalue `name`, as dense(x, n, "fc") is
 * the module fc), and for a part of a composite (layer_norm's mean), the
 * composite's value and the part's role. */
typedef struct Naming {
    const char *module;   /* the module that made it, or NULL */
    const char *returned; /* the module that first returned it, or NULL */
    const char *role;     /* a part's role (a literal), or NULL: its op's name */
    const char *what;     /* a composite's value: its name without a local */
    int owner;            /* a part: the composite's value; else -1 */
} Naming;

enum { MAX_NAME = 2 * MAX_VAR + 1 }; /* a module's name, _, a local's */

/* The innermost Lua line on the stack: the line that called the op. */
SrcLoc where(lua_State *L);
/* The innermost frame running a line of the model's files: *ar, and its
 * file (the graph's copy of the name), or NULL. */
const char *model_frame(lua_State *L, lua_Debug *ar);
/* The module whose function runs at *ar, or NULL. */
const char *module_of(lua_State *L, lua_Debug *ar);
/* a_b, kept; b alone without a or if a_b would be longer than MAX_NAME. */
const char *joined(lua_State *L, const char *a, const char *b);
Naming *naming(lua_State *L, int id);
/* A part's role in the composite it is part of: its name is the
 * composite value's, then _role. */
void role(lua_State *L, int id, const char *r);
/* A norm's value, without a local, takes its scale's name less _g. */
void named_after_scale(lua_State *L, int y, int gamma);
/* The nodes a composite made from first on, before its value y, are parts
 * of y; y without a local is named what (in its module). Returns y. */
int composite(lua_State *L, int first, int y, const char *what);
/* Names the values made since the last line after the locals holding them. */
void name_locals(lua_State *L, lua_Debug *ar);
/* At each return of a function: a module's value is named after it. */
void name_returns(lua_State *L, lua_Debug *ar);
/* Once the model has returned: a name for every value no local holds. */
void name_values(lua_State *L);

#endif
