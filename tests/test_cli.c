/*
 * test_cli.c: gradc as a user meets it: --help and --version, one clear
 * line for every bad model file (naming file and line, exit 1, nothing
 * written), the same bytes from run to run, and generated/ kept fresh.
 */
#include <dirent.h>
#include <glob.h>
#include <math.h>
#include "test_util.h"

START_TEST(help_and_version)
{
    char *out;
    ck_assert_int_eq(run_cmd(GRADC_BIN " --help", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: gradc compile MODEL.lua"));
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " --version", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "gradc 0."));
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " frobnicate models/seed_mlp.lua", &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown command 'frobnicate'"));
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN, &out), 2);
    free(out);
}
END_TEST

/* A bad or hostile model file, the line it must get, and any flags for
 * gradc compile (lower limits, so the endless cases end sooner). Every
 * case is listed in docs/hostile.md. */
typedef struct {
    const char *what, *model, *message, *flags;
} BadModel;

#define SEED_HEAD                                                                                  \
    "local x = input(\"x\", {64, 1000})\n"                                                         \
    "local y = input(\"y\", {64, 10})\n"                                                           \
    "local w1 = param(\"w1\", {1000, 100}, randn())\n"

static const BadModel bad_models[] = {
    {"syntax error", SEED_HEAD "local h = sigmoid(x:matmul(w1)\nreturn model { loss = sum(h) }\n",
     "bad.lua:5: ')' expected (to close '(' at line 4) near 'return'", NULL},
    {"unknown op", SEED_HEAD "local h = swish(x:matmul(w1))\nreturn model { loss = sum(h) }\n",
     "bad.lua:4: 'swish' is not defined", NULL},
    {"shape mismatch",
     SEED_HEAD "local w2 = param(\"w2\", {100, 10}, randn())\nlocal h = x:matmul(w2)\n"
               "return model { loss = sum(h) }\n",
     "bad.lua:5: matmul: inner dimensions differ: [64,1000] x [100,10]", NULL},
    {"broadcast mismatch", SEED_HEAD "local h = x:matmul(w1) + y\nreturn model { loss = sum(h) }\n",
     "bad.lua:4: add: shapes do not broadcast: [64,100] and [64,10]", NULL},
    {"missing loss", SEED_HEAD "local h = x:matmul(w1)\nreturn model { outputs = { h = h } }\n",
     "bad.lua:5: model: loss is missing", NULL},
    {"loss not a scalar", SEED_HEAD "return model { loss = x:matmul(w1) }\n",
     "bad.lua:4: model: the loss must be a scalar, got [64,100]", NULL},
    {"no model returned", SEED_HEAD "local h = x:matmul(w1)\n",
     "bad.lua:4: the model file must end with `return model{ loss = ... }`", NULL},
    {"loss without params", SEED_HEAD "return model { loss = sum(x) }\n",
     "bad.lua:4: the loss does not depend on any param()", NULL},
    {"labels in arithmetic",
     "local s = input(\"s\", {8, 3})\nlocal y = input(\"y\", {8}, \"int32\")\n"
     "local w = param(\"w\", {3}, randn())\nreturn model { loss = sum(s * w + y) }\n",
     "bad.lua:4: add: int32 tensor 'y' holds labels", NULL},
    {"bad dimension", "local x = input(\"x\", {64, 0})\n",
     "bad.lua:1: input: dimension 2 must be a positive integer, got 0", NULL},
    {"runs os", "os.execute(\"touch pwned\")\n", "bad.lua:1: 'os' is not defined", NULL},
    {"reads files", "local f = io.open(\"/etc/passwd\")\n", "bad.lua:1: 'io' is not defined", NULL},
    {"loads code", "load(\"return 1\")()\n", "bad.lua:1: 'load' is not defined", NULL},
    {"requires a library", "local os = require(\"os\")\n", "bad.lua:1: 'require' is not defined",
     NULL},
    {"reaches package", "package.loadlib(\"libc.so.6\", \"system\")\n",
     "bad.lua:1: 'package' is not defined", NULL},
    {"runs a file", "dofile(\"/etc/passwd\")\n", "bad.lua:1: 'dofile' is not defined", NULL},
    {"loads a file", "loadfile(\"/etc/passwd\")\n", "bad.lua:1: 'loadfile' is not defined", NULL},
    {"reaches debug", "debug.sethook()\n", "bad.lua:1: 'debug' is not defined", NULL},
    {"collects garbage", "collectgarbage(\"stop\")\n", "bad.lua:1: 'collectgarbage' is not defined",
     NULL},
    {"dumps bytecode", "local f = string.dump(print)\n",
     "bad.lua:1: attempt to call a nil value (field 'dump')", NULL},
    {"dumps through a string", "local f = (\"\").dump(print)\n",
     "bad.lua:1: attempt to call a nil value (field 'dump')", NULL},
    {"takes a string's metatable", "local m = getmetatable(\"\")\n",
     "bad.lua:1: bad argument #1 to 'getmetatable' (table expected, got string)", NULL},
    {"takes a tensor's metatable", "local m = getmetatable(input(\"x\", {2}))\n",
     "bad.lua:1: bad argument #1 to 'getmetatable' (table expected, got gradc.tensor)", NULL},
    {"runs forever", "while true do end\n", "bad.lua:1: the model ran for more than 1000000",
     "--max-instructions 1000000"},
    {"runs forever inside pcall", "while true do pcall(function() while true do end end) end\n",
     "bad.lua:1: the model ran for more than 1000000", "--max-instructions 1000000"},
    {"recurses forever", "local function f() return 1 + f() end\nf()\n",
     "bad.lua:1: stack overflow", NULL},
    {"allocates forever", "local t = {}\nfor i = 1, 1e9 do\n  t[i] = i\nend\n",
     "bad.lua:3: the model used more than 16 MiB of memory", "--max-memory 16"},
    {"allocates inside pcall",
     "local t = {}\npcall(function()\n  for i = 1, 1e9 do t[i] = i end\nend)\n",
     "bad.lua:3: the model used more than 16 MiB of memory", "--max-memory 16"},
    {"a huge string", "local s = string.rep(\"x\", 1 << 28)\n",
     "bad.lua:1: the model used more than 16 MiB of memory", "--max-memory 16"},
    {"an absurd tensor", "local x = input(\"x\", {10000000, 1000000})\n",
     "bad.lua:1: input: [10000000,1000000] is more elements than a tensor can hold", NULL},
    {"a dimension of -1", "local x = input(\"x\", {64, -1})\n",
     "bad.lua:1: input: dimension 2 must be a positive integer, got -1", NULL},
    {"an absurd product",
     "local a = input(\"a\", {2000000, 1})\n"
     "local b = param(\"b\", {1, 1000000}, zeros())\nlocal c = a:matmul(b)\n",
     "bad.lua:3: matmul: [2000000,1000000] is more elements than a tensor can hold", NULL},
    {"too many ops",
     "local x = input(\"x\", {4, 4})\nlocal s = x\nfor i = 1, 2000000 do s = s + 1 end\n",
     "bad.lua:3: the model makes more than 1000000 ops", NULL},
    {"too much memory in all",
     "local x = input(\"x\", {4, 1000000})\nlocal s = 0\nfor i = 1, 3000 do\n"
     "  s = s + sum(x:matmul(param(\"w\" .. i, {1000000, 1000000}, zeros())))\nend\n"
     "return model { loss = s }\n",
     "bad.lua:4: the model's tensors take", NULL},
    {"grad of a non-scalar",
     "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 2}, randn())\n"
     "local g = grad(x:matmul(w), {w})\n",
     "bad.lua:3: grad: y must be a real scalar (a loss), not [4,2]", NULL},
    {"grad by a number",
     "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 2}, randn())\n"
     "local g = grad(sum(x:matmul(w)), {w, 2})\n",
     "bad.lua:3: grad: variable 2 must be a tensor, got number", NULL},
    {"grad by labels",
     "local x = input(\"x\", {4, 3})\nlocal y = input(\"y\", {4}, \"int32\")\n"
     "local w = param(\"w\", {3, 2}, randn())\n"
     "local g = grad(mean(cross_entropy(x:matmul(w), y)), {y})\n",
     "bad.lua:4: grad: variable 1 is int32 (labels or ids), which has no gradient", NULL},
    {"gradients of gradients without end",
     "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 3}, randn())\n"
     "local l = sum(tanh(x:matmul(w)))\nfor i = 1, 100 do\n  l = l + sum(grad(l, w) ^ 2)\nend\n",
     "bad.lua:5: grad: the model has ", NULL},
    {"an unused input",
     "local x = input(\"x\", {8, 3})\nlocal z = input(\"z\", {8, 3})\n"
     "local w = param(\"w\", {3, 2}, randn())\nreturn model { loss = sum(x:matmul(w)) }\n",
     "bad.lua:2: input 'z' is read by neither the loss nor an output", NULL},
    {"a param with no gradient",
     "local x = input(\"x\", {8, 3})\nlocal w = param(\"w\", {3, 2}, randn())\n"
     "local v = param(\"v\", {3, 2}, randn())\n"
     "return model { loss = sum(x:matmul(w)) + sum(gt(x:matmul(v), 0)) }\n",
     "bad.lua:3: param 'v' gets no gradient", NULL},
    {"a module not imported", "local x = input(\"x\", {4, 4})\nlocal h = dense(x, 3, \"fc\")\n",
     "bad.lua:2: 'dense' is not defined: it is a module; load it with local dense = "
     "import(\"dense\")",
     NULL},
    {"lua error", SEED_HEAD "error(\"no such layer\")\n", "bad.lua:4: no such layer", NULL},
    {"a name given twice",
     "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 2}, randn())\n"
     "local v = param(\"w\", {3, 2}, randn())\n",
     "bad.lua:3: param: the name 'w' is taken (at line 2)", NULL},
    {"a name taken inside a module",
     "local dense = import(\"dense\")\nlocal x = input(\"x\", {4, 3})\n"
     "local h = dense(x, 5, \"fc\")\nlocal y = dense(h, 2, \"fc\")\n",
     "bad.lua:4: param: the name 'fc_w' is taken (in ", NULL},
    {"a bad size inside a module",
     "local attention = import(\"attention\")\nlocal x = input(\"x\", {4, 8, 6})\n"
     "local y = attention(6, 4, \"att\")(x)\n",
     "bad.lua:3: attention: width must be a multiple of heads (in ", NULL},
    {"a misspelt -D key",
     "local x = input(\"x\", {config.batch or 2, 2})\nlocal w = param(\"w\", {2, 2}, randn())\n"
     "return model { loss = sum(x:matmul(w)) }\n",
     "bad.lua:1: -D hiden: the model never reads config.hiden (it reads batch)",
     "-D batch=4 -D hiden=8"},
    {"a malformed test config",
     "-- test config: batch=3\nlocal x = input(\"x\", {config.batch or 2, 2})\n"
     "local w = param(\"w\", {2, 2}, randn())\nreturn model { loss = sum(x:matmul(w)) }\n",
     "bad.lua:1: test config: expected -D KEY=VALUE, not 'batch=3'", "--test-config"},
    {"a misspelt test config key",
     "-- test config: -D batch=3 -D hiden=8\nlocal x = input(\"x\", {config.batch or 2, 2})\n"
     "local w = param(\"w\", {2, 2}, randn())\nreturn model { loss = sum(x:matmul(w)) }\n",
     "bad.lua:1: test config: the model never reads the config key 'hiden'", "--test-config"},
    {"two test config lines",
     "-- test config: -D batch=3\n-- test config: -D batch=4\n"
     "local x = input(\"x\", {config.batch or 2, 2})\n"
     "local w = param(\"w\", {2, 2}, randn())\nreturn model { loss = sum(x:matmul(w)) }\n",
     "bad.lua:2: test config: a second line (the first is line 1)", "--test-config"},
};

/* One line on stderr naming the file and line, exit 1, and the output
 * folder left as it was (empty here). */
START_TEST(bad_model_gets_one_line)
{
    const BadModel *b = &bad_models[_i];
    char *dir = make_tmpdir(), path[512], out_dir[512], cmd[2048], *out;
    snprintf(path, sizeof path, "%s/bad.lua", dir);
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);
    write_text(path, b->model);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s/%s compile bad.lua -o out %s", dir, getenv("PWD"),
             GRADC_BIN, b->flags ? b->flags : "");
    int status = run_cmd(cmd, &out);
    assert_refused(b->what, status, out, b->message, out_dir);
    snprintf(path, sizeof path, "%s/pwned", dir);
    ck_assert_msg(!file_exists(path), "%s: the model ran a command", b->what);
    free(out);
    remove_dir(dir);
}
END_TEST

/* params("m") gives a module's parameters: mlp's m1_w, m1_b, m2_w, m2_b,
 * in that order, and no other; their l2 reaches the loss (each gets a
 * gradient, or the compile would refuse). */
START_TEST(params_of_a_module)
{
    char *dir = make_tmpdir(), path[600], cmd[1200], *out;
    snprintf(path, sizeof path, "%s/m.lua", dir);
    write_text(path, "local mlp = import(\"mlp\")\nlocal x = input(\"x\", {4, 3})\n"
                     "local y = mlp(x, {5, 2}, \"m\")\nlocal other = param(\"mx\", {2}, zeros())\n"
                     "local names = {}\nfor _, p in ipairs(params(\"m\")) do\n"
                     "  names[#names + 1] = tostring(p):match(\"param (%S+)\")\nend\n"
                     "assert(table.concat(names, \" \") == \"m1_w m1_b m2_w m2_b\", "
                     "table.concat(names, \" \"))\nassert(#params(\"nothing\") == 0)\n"
                     "return model { loss = sum(y) + sum(other) + 1e-4 * l2(params(\"m\")) }\n");
    snprintf(cmd, sizeof cmd, "%s compile %s -o %s", GRADC_BIN, path, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* grad() of a value the loss does not reach warns once, at its line,
 * naming the variables, and compiles: their gradient is a zero. */
START_TEST(grad_of_an_unreached_value_warns)
{
    char *dir = make_tmpdir(), path[600], cmd[1200], *out;
    snprintf(path, sizeof path, "%s/m.lua", dir);
    write_text(path, "local x = input(\"x\", {4, 3})\nlocal w = param(\"w\", {3, 2}, randn())\n"
                     "local v = param(\"v\", {3, 2}, randn())\nlocal l = sum(x:matmul(w))\n"
                     "local g = grad(l, {w, v, x})\n"
                     "return model { loss = l + sum(g[2]) + sum(g[3] ^ 2) + sum(v) }\n");
    snprintf(cmd, sizeof cmd, "cd %s && %s/%s compile m.lua -o out", dir, getenv("PWD"), GRADC_BIN);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "m.lua:5: warning: grad: y does not depend on variable 2: a zero "
                              "gradient\n"),
                  "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* gradc compile -o a/b/c makes the folders that are missing; gradc build
 * with no runtime beside gradc and no build tree to make it in says so,
 * naming the make target, and writes nothing. */
START_TEST(output_folders_and_missing_runtime)
{
    char *dir = make_tmpdir(), cmd[2048], path[700], *out;
    snprintf(cmd, sizeof cmd, "%s compile models/iris.lua -o %s/a/b/c", GRADC_BIN, dir);
    ck_assert_int_eq(run_cmd(cmd, NULL), 0);
    snprintf(path, sizeof path, "%s/a/b/c/iris.c", dir);
    ck_assert_msg(file_exists(path), "no %s", path);
    snprintf(cmd, sizeof cmd, "cp %s %s/gradc && %s/gradc build models/iris.lua -o %s/out/x",
             GRADC_BIN, dir, dir, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "cannot find the gradc runtime") &&
                      strstr(out, "`make build/libgradc_rt.a`"),
                  "%s", out);
    snprintf(path, sizeof path, "%s/out", dir);
    ck_assert_msg(!file_exists(path), "a build that cannot finish wrote %s", path);
    free(out);
    remove_dir(dir);
}
END_TEST

/* The minimal build of the README: a tree where only `make build/gradc`
 * ran. Its first gradc build makes the runtime, and two started at once
 * both succeed; a runtime that does not build leaves the output folder as
 * it was. */
START_TEST(build_tree_makes_its_runtime)
{
    char *dir = make_tmpdir(), cmd[4096], path[700], *out;
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/tree/build && cp -r Makefile runtime scripts %s/tree && "
             "cp %s %s/tree/build/gradc && cp -r %s/tree %s/broken && "
             "echo '#error does not build' > %s/broken/runtime/a_broken.c",
             dir, dir, GRADC_BIN, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s/tree/build/gradc build models/iris.lua -o %s/one/a & first=$!; "
             "%s/tree/build/gradc build models/iris.lua -o %s/two || exit 1; wait $first && "
             "%s/one/a/iris_train --steps 2 && %s/two/iris_train --steps 2",
             dir, dir, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    snprintf(path, sizeof path,
             "gradc: building the gradc runtime first: make -C %s/tree build/libgradc_rt.a", dir);
    ck_assert_msg(strstr(out, path), "%s", out);
    ck_assert_msg(strstr(out, "final loss"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/tree/build/libgradc_rt.a", dir);
    ck_assert_msg(file_exists(path), "no %s", path);

    snprintf(cmd, sizeof cmd,
             "mkdir %s/kept && touch %s/kept/mine && "
             "%s/broken/build/gradc build models/iris.lua -o %s/kept; echo status $?; "
             "%s/broken/build/gradc build models/iris.lua -o %s/new/a; echo status $?; "
             "ls -A %s/kept; ls %s/new",
             dir, dir, dir, dir, dir, dir, dir, dir);
    run_cmd(cmd, &out);
    ck_assert_msg(strstr(out, "does not build") &&
                      strstr(out, "gradc: could not build the gradc runtime (make said why above)"),
                  "%s", out);
    ck_assert_msg(strstr(out, "status 1\n") && !strstr(out, "status 0"), "%s", out);
    ck_assert_msg(strstr(out, "status 1\nmine\n") && strstr(out, "No such file"),
                  "a build that cannot finish wrote files: %s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* A build whose cc fails after some programs are built (here the double
 * gradient check) leaves nothing: not the folders it made, and in a
 * folder that was there only what was there before. */
START_TEST(failed_build_leaves_nothing)
{
    char *dir = make_tmpdir(), cmd[4096], path[700], *out;
    snprintf(path, sizeof path, "%s/cc", dir);
    write_text(path, "#!/bin/sh\ncase \"$*\" in *REAL_DOUBLE*) exit 1;; esac\nexec cc \"$@\"\n");
    snprintf(cmd, sizeof cmd,
             "chmod +x %s/cc && mkdir %s/kept && touch %s/kept/mine && "
             "CC=%s/cc %s build models/iris.lua -o %s/kept; echo status $?; "
             "CC=%s/cc %s build models/iris.lua -o %s/new/a/b; echo status $?; "
             "ls -A %s/kept; ls %s",
             dir, dir, dir, dir, GRADC_BIN, dir, dir, GRADC_BIN, dir, dir, dir);
    run_cmd(cmd, &out);
    ck_assert_msg(strstr(out, "failed building"), "%s", out);
    ck_assert_msg(strstr(out, "status 1\nmine\ncc\nkept\n") && !strstr(out, "status 0"),
                  "a build that cannot finish left files: %s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* make says what each build line makes in one short line, and V=1 shows
 * the command; make demo and the trainer call the 360 rows they score on
 * held out, never validation or test, and the demo says why the digits'
 * loss stays above 1.44. */
START_TEST(make_and_demo_read_well)
{
    char *dir = make_tmpdir(), cmd[2048], want[700], *out;
    snprintf(cmd, sizeof cmd, "MAKEFLAGS= make --no-print-directory V=0 BUILD=%s %s/obj/rt_rng.o",
             dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    snprintf(want, sizeof want, "  CC      %s/obj/rt_rng.o\n", dir);
    ck_assert_str_eq(out, want);
    free(out);
    snprintf(cmd, sizeof cmd, "MAKEFLAGS= make --no-print-directory V=1 BUILD=%s %s/obj/rt_util.o",
             dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    snprintf(want, sizeof want, " -c runtime/util.c -o %s/obj/rt_util.o\n", dir);
    ck_assert_msg(strstr(out, want) && !strstr(out, "  CC "), "%s", out);
    free(out);
    ck_assert_int_eq(run_cmd("MAKEFLAGS= make --no-print-directory -n demo BUILD=" BUILD_DIR, &out),
                     0);
    ck_assert_msg(strstr(out, "360 held-out rows") && strstr(out, "label smoothing") &&
                      strstr(out, "below 1.44") && strstr(out, "% on the 360 held-out digits"),
                  "%s", out);
    ck_assert_msg(!strstr(out, "validation") && !strstr(out, "test"), "%s", out);
    free(out);
    const char *train = BUILD_DIR
        "/digits_train --data x=data/digits.csv.gz --data "
        "labels=data/digits.csv.gz --val-split 0.2 --steps 1 && " BUILD_DIR "/digits_train --help";
    ck_assert_int_eq(run_cmd(train, &out), 0);
    ck_assert_msg(strstr(out, "digits_train: 360 held-out rows (the last of the --data files)"),
                  "%s", out);
    ck_assert_msg(!strstr(out, "validation"), "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* gradc build --double builds a trainer in double: the parameters it
 * exports are float64 where the float build's are float32; --double
 * goes with build only. */
START_TEST(double_build)
{
    char *dir = make_tmpdir(), cmd[2048], *out;
    snprintf(cmd, sizeof cmd,
             "%s build models/iris.lua -o %s --double && %s/iris_train --steps 2 --export %s/f8 && "
             "%s/iris_train --steps 2 --export %s/f4",
             GRADC_BIN, dir, dir, dir, BUILD_DIR, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    const char *kinds[] = {"f8", "f4"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "cat %s/%s/*.npy | head -c 64 | tr -c '[:print:]' .; echo; ls %s/%s | wc -l", dir,
                 kinds[k], dir, kinds[k]);
        ck_assert_int_eq(run_cmd(cmd, &out), 0);
        char want[16];
        snprintf(want, sizeof want, "'<%s'", kinds[k]);
        ck_assert_msg(strstr(out, want) && strstr(out, "\n2\n"), "%s: %s", kinds[k], out);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "%s compile models/iris.lua -o %s --double", GRADC_BIN, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 2);
    ck_assert_msg(strstr(out, "--double goes with gradc build"), "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* A command that must fail in one line: its arguments (a format given
 * the folder of the build's own programs for the first two, of dir for
 * the rest, then dir twice), what the line says and the exit status. */
typedef struct {
    const char *args, *says;
    int status;
} Refusal;

static void refused(const Refusal *bad, size_t n, const char *dir)
{
    for (size_t i = 0; i < n; i++) {
        char args[1024], cmd[1200], *out;
        snprintf(args, sizeof args, bad[i].args, i < 2 ? BUILD_DIR : dir, dir, dir);
        snprintf(cmd, sizeof cmd, "%s 2>&1 >/dev/null", args);
        int rc = run_cmd(cmd, &out);
        const char *end = strchr(out, '\n');
        ck_assert_msg(rc == bad[i].status && strstr(out, bad[i].says) && end && !end[1],
                      "%s: exit %d:\n%s", args, rc, out);
        free(out);
    }
}

/* --hvp: the twin is built, the gradient check holds H v to differences
 * of the gradient, the trainer exports it; without --hvp there is no
 * twin, and each way of asking for one wrongly is one line. */
START_TEST(hvp_builds_checks_and_refuses)
{
    char *dir = make_tmpdir(), cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "%s build models/iris.lua --hvp --double -o %s/h && %s/h/iris_gradcheck --hvp && "
             "grep -c 'iris_hvp' %s/h/iris.h && %s/h/iris_train --export %s/v --steps 0 && "
             "%s/h/iris_train --data x=data/iris.csv --data labels=data/iris.csv --steps 1 "
             "--direction %s/v --export-hvp %s/hv && ls %s/hv",
             GRADC_BIN, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    double worst = 1;
    const char *at = strstr(out, "max relative error ");
    ck_assert_msg(at && sscanf(at, "max relative error %lf", &worst) == 1 && worst < 1e-8, "%s",
                  out);
    ck_assert_msg(strstr(out, "wrote H v of 2 parameters to") && strstr(out, "W.npy\nb.npy"), "%s",
                  out);
    free(out);
    /* Without --hvp: no twin, and nothing in the header names one. */
    snprintf(cmd, sizeof cmd,
             "%s compile models/iris.lua -o %s/plain && ls %s/plain | grep -c hvp; "
             "grep -c hvp %s/plain/iris.h",
             GRADC_BIN, dir, dir, dir);
    run_cmd(cmd, &out);
    ck_assert_msg(!strcmp(out, "0\n0\n"), "%s", out);
    free(out);
    const Refusal bad[] = {
        {"%s/iris_gradcheck --hvp", "iris was compiled without --hvp, so it has no H v", 1},
        {"%s/iris_train --steps 0 --direction %s/v --export-hvp %s/x",
         "--export-hvp: iris was compiled without --hvp (gradc build --hvp)", 1},
        {"%s/h/iris_train --steps 0 --export-hvp %s/x", "--export-hvp needs --direction DIR", 2},
        {"%s/h/iris_train --steps 0 --direction %s/h --export-hvp %s/x",
         "has no file (every parameter needs one)", 1},
        {"%s/h/iris_train --steps 0 --direction %s/missing --export-hvp %s/x", "--direction: ", 1},
    };
    refused(bad, sizeof bad / sizeof *bad, dir);
    snprintf(cmd, sizeof cmd, "%s print models/iris.lua --hvp", GRADC_BIN);
    ck_assert_int_eq(run_cmd(cmd, &out), 2);
    ck_assert_msg(strstr(out, "--hvp goes with gradc compile and build"), "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* --jvp: the twin is built beside the HVP one, the gradient check holds
 * J v to differences of the outputs (the seed MLP's sigmoid), the trainer
 * exports it; a model without real outputs, or a trainer without the
 * twin, is one line. */
START_TEST(jvp_builds_checks_and_refuses)
{
    char *dir = make_tmpdir(), cmd[4096], path[600], *out;
    snprintf(cmd, sizeof cmd,
             "%s build models/seed_mlp.lua --jvp --double -o %s/s && %s/s/seed_mlp_gradcheck --jvp",
             GRADC_BIN, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    double worst = 1;
    const char *at = strstr(out, "max relative error ");
    ck_assert_msg(strstr(out, "y_pred [64,10]  relative error") && at &&
                      sscanf(at, "max relative error %lf", &worst) == 1 && worst < 1e-8,
                  "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s build models/iris.lua --jvp --hvp --double -o %s/j && grep -c 'iris_[hj]vp_f64(' "
             "%s/j/iris.h && %s/j/iris_train --export %s/v --steps 0 && %s/j/iris_train --data "
             "x=data/iris.csv --data labels=data/iris.csv --steps 1 --direction %s/v "
             "--export-jvp %s/jv --export-hvp %s/hv && ls %s/jv %s/hv",
             GRADC_BIN, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "wrote J v of 1 output to") && strstr(out, "jv_logits.npy\n") &&
                      strstr(out, "W.npy\nb.npy"),
                  "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/quiet.lua", dir);
    write_text(path, "local x = input(\"x\", {2, 3})\n"
                     "local W = param(\"W\", {3, 3}, randn(0.1))\n"
                     "return model { loss = sum(x:matmul(W)^2) }\n");
    const Refusal bad[] = {
        {"%s/iris_gradcheck --jvp", "iris was compiled without --jvp, so it has no J v", 1},
        {"%s/iris_train --steps 0 --direction %s/v --export-jvp %s/x",
         "--export-jvp: iris was compiled without --jvp (gradc build --jvp)", 1},
        {"%s/j/iris_train --steps 0 --export-jvp %s/x", "--export-jvp needs --direction DIR", 2},
        {"%s/j/iris_gradcheck --jvp --hvp", "one check at a time", 2},
        {GRADC_BIN " compile %s/quiet.lua --jvp -o %s/q",
         "quiet.lua: --jvp: the model has no real outputs", 1},
        {GRADC_BIN " print models/iris.lua --jvp", "--jvp goes with gradc compile and build", 2},
    };
    refused(bad, sizeof bad / sizeof *bad, dir);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c q", dir);
    run_cmd(cmd, &out);
    ck_assert_msg(!strcmp(out, "1\n"), "a refused compile wrote: %s", out); /* quiet.lua */
    free(out);
    remove_dir(dir);
}
END_TEST

/* A model whose arena fits a static array but whose HVP twin's does not
 * (W, v_W and H v: 147M values): both go to the heap, as the header,
 * declaring them alike, needs, and both compile. */
START_TEST(hvp_twin_too_big_for_static)
{
    char *dir = make_tmpdir(), path[600], cmd[4096], *out;
    snprintf(path, sizeof path, "%s/bigtwin.lua", dir);
    write_text(path, "local x = input(\"x\", {2, 7000})\n"
                     "local W = param(\"W\", {7000, 7000}, randn(0.01))\n"
                     "return model { loss = sum(x:matmul(W)^2) }\n");
    snprintf(cmd, sizeof cmd,
             "%s compile %s --hvp -o %s && grep -c open_arena %s/bigtwin.c %s/bigtwin_hvp.c && "
             "grep -c 'extern const' %s/bigtwin.h; cd %s && " TEST_CC " -I%s/runtime -c bigtwin.c "
             "bigtwin_hvp.c && echo compiled",
             GRADC_BIN, path, dir, dir, dir, dir, dir, getenv("PWD"));
    run_cmd(cmd, &out);
    ck_assert_msg(strstr(out, "bigtwin.c:2\n") && strstr(out, "bigtwin_hvp.c:2\n") &&
                      strstr(out, "\n0\n") && strstr(out, "compiled"),
                  "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* No size cap below the machine's memory: a model of 2^38 values (one
 * tensor of 2^36) compiles and links, counting in long where an int would
 * overflow, its arena allocated at start; and started on a machine without
 * a terabyte, it says so in one line. */
START_TEST(huge_model_builds)
{
    char *dir = make_tmpdir(), cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s build tests/huge_model.lua -o %s", GRADC_BIN, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "grep -c -e 'for (long i = 0; i < 68719476736; i++)' -e 'rt_arena_alloc(' "
             "-e '(long)ids\\[i\\] \\* 4096' %s/huge_model.c",
             dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    ck_assert_msg(atoi(out) >= 4, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/huge_model_train --steps 1", dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_msg(!strncmp(out, "huge_model: its tensors take 1088.0 GiB (", 41) &&
                      strstr(out, " values of 4 bytes), more than this machine has (") &&
                      strchr(out, '\n') == out + strlen(out) - 1,
                  "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* An arena allocated at start is the static one moved: the same steps
 * give the same parameters, bit for bit. */
START_TEST(heap_arena_trains_alike)
{
    char *dir = make_tmpdir(), cmd[4096], *out;
    const char *models[][2] = {{"iris", ""}, {"gpt", "-D layers=1 -D width=32 -D batch=2"}};
    for (int k = 0; k < 2; k++) {
        const char *m = models[k][0], *d = models[k][1];
        snprintf(cmd, sizeof cmd,
                 "%s build models/%s.lua %s -o %s/static && %s build models/%s.lua %s --heap-arena "
                 "-o %s/heap && grep -c rt_arena_alloc %s/heap/%s.c && "
                 "%s/static/%s_train --steps 3 --export %s/static/w && "
                 "%s/heap/%s_train --steps 3 --export %s/heap/w && "
                 "for f in %s/static/w/*.npy; do cmp $f %s/heap/w/${f##*/} || exit 1; done",
                 GRADC_BIN, m, d, dir, GRADC_BIN, m, d, dir, dir, m, dir, m, dir, dir, m, dir, dir,
                 dir);
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s: %s", m, out);
        free(out);
    }
    remove_dir(dir);
}
END_TEST

/* A float loss is as accurate as its last rounding: a sum of a million
 * squares (an l2 term), added in one running float, put the loss 4e-4
 * off the double trainer's; added in double, it is 2e-8 off. */
START_TEST(float_loss_sums_accurately)
{
    char *dir = make_tmpdir(), path[600], cmd[2048], *out;
    snprintf(path, sizeof path, "%s/l2sum.lua", dir);
    write_text(path, "local x = input(\"x\", {2, 999})\n"
                     "local w = param(\"w\", {999, 1001}, randn(1))\n"
                     "return model { loss = mean(x:matmul(w)) * 1e-3 + sum(w * w) * 1e-6 }\n");
    double loss[2];
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s build %s -o %s/%d %s >/dev/null && %s/%d/l2sum_train --steps 0",
                 GRADC_BIN, path, dir, k, k ? "--double" : "", dir, k);
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
        const char *at = strstr(out, "final loss ");
        ck_assert_msg(at, "%s", out);
        loss[k] = strtod(at + 11, NULL);
        free(out);
    }
    ck_assert_msg(fabs(loss[0] - loss[1]) < 1e-6 * fabs(loss[1]), "float %.9g, double %.9g",
                  loss[0], loss[1]);
    remove_dir(dir);
}
END_TEST

/* The validation loss covers every row: 45 held out of iris by a batch of
 * 30 are a full batch and 15 more, and the double trainer's loss over them
 * (penalty included once) equals NumPy's from the exported weights. */
START_TEST(validation_loss_covers_every_row)
{
    char *dir = make_tmpdir(), path[600], cmd[4096], *out;
    snprintf(path, sizeof path, "%s/softmax.lua", dir);
    write_text(path, "local x = input(\"x\", {30, 4})\n"
                     "local labels = input(\"labels\", {30}, \"int32\")\n"
                     "local W = param(\"W\", {4, 3}, randn(0.5))\n"
                     "local b = param(\"b\", {3}, zeros())\n"
                     "local logits = x:matmul(W) + b\n"
                     "return model { loss = mean(cross_entropy(logits, labels)) + 0.01 * l2({W}),\n"
                     "  outputs = { logits = logits } }\n");
    snprintf(cmd, sizeof cmd,
             "%s build %s -o %s --double >/dev/null && %s/softmax_train --data x=data/iris.csv "
             "--data labels=data/iris.csv --val-split 0.3 --steps 7 --export %s/w 2>&1 && "
             "/usr/bin/python3 tests/val_loss_reference.py %s/w data/iris.csv 105 0.01",
             GRADC_BIN, path, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "45 held-out rows (the last of the --data files): loss and "
                              "accuracy over every row"),
                  "%s", out);
    const char *eval = strstr(out, "eval step 7 loss ");
    ck_assert_msg(eval, "%s", out);
    const char *last = out + strlen(out) - 1; /* NumPy's line */
    while (last > out && last[-1] != '\n')
        last--;
    double ours = strtod(eval + 17, NULL), numpy = strtod(last, NULL);
    ck_assert_msg(fabs(ours - numpy) < 1e-8 * fabs(numpy), "ours %.17g, NumPy %.17g\n%s", ours,
                  numpy, out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* The sampled gradient check estimates the full one: on a gradient that
 * sits in one row of 64 (a thousand times the others), the norms of 64
 * picks alone put the figure 200 times over the full check's whenever the
 * picks missed that row; estimated for the whole tensor, it is within
 * sampling of it (0.57 to 1.08 of it over these seeds). */
START_TEST(sampled_gradcheck_estimates_full)
{
    char *dir = make_tmpdir(), path[600], cmd[2048], *out;
    snprintf(path, sizeof path, "%s/skewed.lua", dir);
    write_text(path, "local x = input(\"x\", {1, 1})\n"
                     "local W = param(\"W\", {64, 64}, randn(1))\n"
                     "return model { loss = sum(W ^ 3) / 6 + 1000 * sum(slice(W, 1, 1, 1) ^ 2)\n"
                     "  + 0 * sum(x) }\n");
    snprintf(cmd, sizeof cmd, "%s build %s -o %s >/dev/null", GRADC_BIN, path, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    double full = 0;
    for (int seed = 0; seed <= 6; seed++) {
        snprintf(cmd, sizeof cmd, "%s/skewed_gradcheck --seed %d%s", dir, seed ? seed : 1,
                 seed ? "" : " --all");
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
        const char *at = strstr(out, "max relative error ");
        ck_assert_msg(at, "%s", out);
        double e = strtod(at + 19, NULL);
        if (seed == 0)
            full = e;
        ck_assert_msg(e > 0 && e < 3 * full && e > full / 3, "seed %d: %g, the full check %g\n%s",
                      seed, e, full, out);
        free(out);
    }
    remove_dir(dir);
}
END_TEST

/* A CSV of features only: with --label-column none, predict reads every
 * column as a feature and predicts what it does from the labelled file;
 * an input that takes labels is refused one, in one line. */
START_TEST(features_only_csv)
{
    char *dir = make_tmpdir(), cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "%s/iris_train --data x=data/iris.csv --data labels=data/iris.csv --steps 50 "
             "--export %s/w >/dev/null && tail -n +2 data/iris.csv | cut -d, -f1-4 > %s/feat.csv "
             "&& %s/iris_predict --init %s/w --data x=data/iris.csv --argmax --out %s/a.csv && "
             "%s/iris_predict --init %s/w --data x=%s/feat.csv --label-column none --argmax "
             "--out %s/b.csv && cmp %s/a.csv %s/b.csv && wc -l < %s/b.csv",
             BUILD_DIR, dir, dir, BUILD_DIR, dir, dir, BUILD_DIR, dir, dir, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0 && strstr(out, "\n150\n"), "%s", out);
    free(out);
    /* Lines before the table: --skip-rows passes over them, in the
     * trainer (the same weights as from the plain file) and in predict. */
    snprintf(cmd, sizeof cmd,
             "(echo 'Iris plants'; echo 'Fisher, 1936'; cat data/iris.csv) > %s/notes.csv && "
             "%s/iris_train --data x=%s/notes.csv --data labels=%s/notes.csv --skip-rows 2 "
             "--steps 50 --export %s/w2 >/dev/null && diff -r %s/w %s/w2 && "
             "(echo 'Iris plants'; cat %s/feat.csv) > %s/featnotes.csv && "
             "%s/iris_predict --init %s/w --data x=%s/featnotes.csv --label-column none "
             "--skip-rows 1 --argmax --out %s/c.csv && cmp %s/a.csv %s/c.csv",
             dir, BUILD_DIR, dir, dir, dir, dir, dir, dir, dir, BUILD_DIR, dir, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s/iris_train --data x=%s/feat.csv --data labels=%s/feat.csv --label-column none",
             BUILD_DIR, dir, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "feat.csv: --label-column none, but input 'labels' takes labels\n"),
                  "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* A clone stands alone: nothing in the project points at the folder
 * beside its checkout that only its developers have (the pattern is cut
 * in two, so that this file does not match it). */
START_TEST(docs_stand_alone)
{
    char *out;
    int status = run_cmd("grep -rIln -e '[.][.]/sha''red' README.md docs compiler runtime models "
                         "scripts bench tests Makefile .ci",
                         &out);
    ck_assert_msg(status == 1 && !*out, "these point outside the project:\n%s", out);
    free(out);
}
END_TEST

/* The README quotes generated/seed_mlp/seed_mlp.c: each run of lines of
 * its C excerpt (runs cut at a line `    ...`) is in that file as it is,
 * in the same order. */
START_TEST(readme_quotes_the_generated_c)
{
    FILE *f = fopen("README.md", "r");
    ck_assert_ptr_nonnull(f);
    char *text = malloc(1 << 20), *c;
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = 0;
    f = fopen("generated/seed_mlp/seed_mlp.c", "r");
    ck_assert_ptr_nonnull(f);
    c = malloc(1 << 20);
    n = fread(c, 1, (1 << 20) - 1, f);
    fclose(f);
    c[n] = 0;
    char *from = strstr(text, "```c\n"), *end = from ? strstr(from + 5, "```\n") : NULL;
    ck_assert_msg(from && end, "the README has no C excerpt");
    *end = 0;
    from += 5;
    const char *at = c;
    int runs = 0;
    for (char *run = from; *run; runs++) {
        char *cut = strstr(run, "    ...\n");
        if (cut)
            *cut = 0;
        const char *found = strstr(at, run);
        ck_assert_msg(found, "the README's excerpt is not in seed_mlp.c (in order):\n%s", run);
        at = found + strlen(run);
        run = cut ? cut + strlen("    ...\n") : run + strlen(run);
    }
    ck_assert_int_ge(runs, 2);
    free(text);
    free(c);
}
END_TEST

/* The passes' golden files: what each pass makes of tests/golden/M.lua,
 * as gradc print --after PASS shows it, must be tests/golden/M.PASS. A
 * change to a pass fails here with the diff to read (make golden writes
 * the files again). Every pass in gradc's table has its file. */
START_TEST(passes_match_golden_files)
{
    char *said, cmd[1024];
    ck_assert_int_eq(run_cmd(GRADC_BIN " print tests/golden/mlp.lua --after none", &said), 2);
    char *list = strstr(said, "the passes are "), *end = list ? strstr(list, " (") : NULL;
    ck_assert_msg(list && end, "no list of passes in: %s", said);
    *end = 0;
    list += strlen("the passes are ");
    glob_t models;
    ck_assert_int_eq(glob("tests/golden/*.lua", 0, NULL, &models), 0);
    int checked = 0;
    for (char *pass = strtok(list, ", "); pass; pass = strtok(NULL, ", ")) {
        if (!strcmp(pass, "and"))
            continue;
        for (size_t m = 0; m < models.gl_pathc; m++) {
            const char *model = models.gl_pathv[m];
            snprintf(cmd, sizeof cmd, "%s print %s --after %s | diff -u %.*s.%s -", GRADC_BIN,
                     model, pass, (int)(strlen(model) - 4), model, pass);
            char *diff;
            ck_assert_msg(run_cmd(cmd, &diff) == 0, "%s after %s is not its golden file:\n%s",
                          model, pass, diff);
            free(diff);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 8);
    globfree(&models);
    free(said);
}
END_TEST

/* gradc derive of the seed models, as text and as LaTeX, is
 * tests/golden/M.derive and M.derive-latex (make golden writes them);
 * --param keeps the lines its gradient reads and its own, and a name
 * the loss does not read gets one line. */
START_TEST(derive_matches_golden_files)
{
    static const char *const models[] = {"norm_wx", "seed_mlp"};
    char cmd[1024], *out;
    for (int m = 0; m < 2; m++)
        for (int latex = 0; latex < 2; latex++) {
            snprintf(cmd, sizeof cmd, "%s derive models/%s.lua%s | diff -u tests/golden/%s.%s -",
                     GRADC_BIN, models[m], latex ? " --latex" : "", models[m],
                     latex ? "derive-latex" : "derive");
            ck_assert_msg(run_cmd(cmd, &out) == 0, "%s:\n%s", cmd, out);
            free(out);
        }
    ck_assert_int_eq(run_cmd(GRADC_BIN " derive models/seed_mlp.lua --param w1", &out), 0);
    ck_assert_msg(strstr(out, "dL/dw1 = x^T t1") && strstr(out, "where t1 = dL/dh * h * (1 - h)") &&
                      strstr(out, "dL/dh = ") && !strstr(out, "dL/dw2") && !strstr(out, "dL/dx"),
                  "%s", out);
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " derive models/seed_mlp.lua --param w3", &out), 1);
    ck_assert_msg(strstr(out, "models/seed_mlp.lua has no param or local 'w3'"), "%s", out);
    free(out);
}
END_TEST

/* A failed compile leaves what an earlier one wrote untouched. */
START_TEST(failed_compile_keeps_old_output)
{
    char *dir = make_tmpdir(), path[512], cmd[2048], *out;
    snprintf(path, sizeof path, "%s/m.lua", dir);
    write_text(path, "local x = input(\"x\", {2, 2})\nlocal w = param(\"w\", {2, 2}, randn())\n"
                     "return model { loss = sum(x:matmul(w)) }\n");
    snprintf(cmd, sizeof cmd, "%s compile %s -o %s", GRADC_BIN, path, dir);
    ck_assert_int_eq(run_cmd(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "cat %s/m.c", dir);
    char *before;
    ck_assert_int_eq(run_cmd(cmd, &before), 0);
    write_text(path,
               "local x = input(\"x\", {2, 2})\nreturn model { loss = sum(x:matmul(x:t() + 1 }\n");
    snprintf(cmd, sizeof cmd, "%s compile %s -o %s", GRADC_BIN, path, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    free(out);
    snprintf(cmd, sizeof cmd, "cat %s/m.c", dir);
    char *after;
    ck_assert_int_eq(run_cmd(cmd, &after), 0);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    remove_dir(dir);
}
END_TEST

/* Every model in models/ (not models/lib). */
static int list_models(char names[][64], int max)
{
    DIR *d = opendir("models");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len < 64 && !strcmp(e->d_name + len - 4, ".lua")) {
            memcpy(names[n], e->d_name, len - 4);
            names[n++][len - 4] = 0;
        }
    }
    closedir(d);
    return n;
}

static const char *const suffixes[] = {".h",           ".c",       "_train.c",
                                       "_gradcheck.c", "_infer.c", "_predict.c"};
enum { N_SUFFIXES = sizeof suffixes / sizeof *suffixes };

static int same_file(const char *a, const char *b)
{
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "cmp -s '%.600s' '%.600s'", a, b);
    return run_cmd(cmd, NULL) == 0;
}

/* generated/ is what the compiler makes today: `make generate` would not
 * change it (each model at its test config, as make generate does). */
START_TEST(generated_is_fresh)
{
    char names[64][64];
    int n = list_models(names, 64);
    ck_assert_int_ge(n, 4);
    for (int i = 0; i < n; i++) {
        char *dir = make_tmpdir(), cmd[1024], *out, tune[128];
        snprintf(tune, sizeof tune, "tune/%.63s.tune", names[i]);
        snprintf(cmd, sizeof cmd, "%s compile models/%.63s.lua --test-config -o %.500s%s%s",
                 GRADC_BIN, names[i], dir, access(tune, R_OK) ? "" : " --tune ",
                 access(tune, R_OK) ? "" : tune);
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s: %s", names[i], out);
        free(out);
        /* Every file, the product twins' too, and no file missing or extra. */
        snprintf(cmd, sizeof cmd, "diff -rq %.500s generated/%.63s", dir, names[i]);
        int rc = run_cmd(cmd, &out);
        ck_assert_msg(rc == 0, "generated/%s is stale (run `make generate` and commit it):\n%s",
                      names[i], out);
        free(out);
        remove_dir(dir);
    }
}
END_TEST

/* GPT-2 small (124M) as models/gpt2.lua's defaults give it, compiled and
 * not built (make test and generated/ use its test config): llm.c's
 * shapes (wte [50304, 768], the vocabulary padded to a multiple of 128;
 * wpe [1024, 768]; matrices [out, in]), the head tied to wte as one
 * product that transposes wte by its flag, with no transposed copy, and
 * the loss over the 50257 real columns; its 2.7G values (batch 4,
 * context 1024) in an arena allocated at start. */
START_TEST(gpt2_124m_compiles)
{
    char *dir = make_tmpdir(), cmd[1200], *c;
    snprintf(cmd, sizeof cmd,
             "%s compile models/gpt2.lua -o %s && cat %s/gpt2.c", GRADC_BIN, dir, dir);
    int status = run_cmd(cmd, &c);
    ck_assert_msg(status == 0, "exit %d: %.2000s", status, c);
    static const char *const want[] = {"static real *wte; /* param [50304,768] */",
                                       "static real *wpe; /* param [1024,768] */",
                                       "static real *h11_qkv_w; /* param [2304,768] */",
                                       "static real *h11_fcproj_w; /* param [768,3072] */",
                                       "    wte = arena + 0;\n",
                                       "/* [4,1024,50257] */"};
    for (int i = 0; i < (int)(sizeof want / sizeof *want); i++)
        ck_assert_msg(strstr(c, want[i]), "no %s in gpt2.c", want[i]);
    ck_assert_msg(!strstr(c, "[768,50304]"), "gpt2.c has a transposed copy of wte");
    int head = 0;
    for (const char *at = c; (at = strstr(at, "CblasNoTrans, CblasTrans, ")); at++) {
        const char *eol = strchr(at, '\n'), *dims = strstr(at, ", 50304, 768,");
        head |= dims && eol && dims < eol;
    }
    ck_assert_msg(head, "gpt2.c has no product lnf wte^T with wte transposed by its flag");
    free(c);
    remove_dir(dir);
}
END_TEST

/* The same model gives the same bytes, whatever the folder it is written
 * to or the time. */
START_TEST(same_model_same_bytes)
{
    char *a = make_tmpdir(), *b = make_tmpdir(), cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s compile models/mlp3.lua -o %s && %s compile models/mlp3.lua -o %s", GRADC_BIN, a,
             GRADC_BIN, b);
    ck_assert_int_eq(run_cmd(cmd, NULL), 0);
    for (int k = 0; k < N_SUFFIXES; k++) {
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/mlp3%s", a, suffixes[k]);
        snprintf(pb, sizeof pb, "%s/mlp3%s", b, suffixes[k]);
        ck_assert_msg(same_file(pa, pb), "mlp3%s differs between two runs", suffixes[k]);
    }
    remove_dir(a);
    remove_dir(b);
}
END_TEST

START_TEST(print_shows_both_passes)
{
    char *out;
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "forward:"));
    ck_assert_ptr_nonnull(strstr(out, "backward:"));
    ck_assert_ptr_nonnull(strstr(out, "sigmoid %4                          [64,100]"));
    ck_assert_ptr_nonnull(strstr(out, "models/seed_mlp.lua:12"));
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua --after load", &out), 0);
    ck_assert_ptr_null(strstr(out, "(A^T B)"));
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua -D batch=4 -D d_in=3", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "[4,3]"));
    free(out);
}
END_TEST

/* What each pass did, and the arena against its minimum. */
START_TEST(print_stats_and_memory)
{
    char *out;
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua --stats", &out), 0);
    ck_assert_msg(strstr(out, "  dce       21 -> 17 nodes") &&
                      strstr(out, "constant factors into their alpha 2") &&
                      strstr(out, "library calls 5 (matrix products 5)") &&
                      strstr(out, "loops joined\n            by another's (the same elements) 1, "
                                  "values kept only as\n            temporaries there 0") &&
                      strstr(out, "1.00x the minimum"),
                  "%s", out);
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua --memory", &out), 0);
    ck_assert_msg(strstr(out, "  parameters                  101,000\n") &&
                      strstr(out, "  optimizer state                   0\n") &&
                      strstr(out, "(293,536 if no two values"),
                  "%s", out);
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/gpt.lua --memory", &out), 0);
    ck_assert_msg(strstr(out, "  optimizer state             874,240\n"), "%s", out); /* adam: 2 */
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua --after plan", &out), 0);
    ck_assert_msg(strstr(out, "compute_grads:\n") &&
                      strstr(out, "  %7     sub            [64,10]        loop   arena 267296\n") &&
                      strstr(out, "  %9     sum            []             in %7's loop   arena") &&
                      strstr(out, "loop   arena 267296  computing inside: %13 mul, %14 sub\n"),
                  "%s", out);
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " print models/seed_mlp.lua --stats --after grad", &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--stats goes with gradc print, without --after"));
    free(out);
}
END_TEST

START_TEST(graph_draws_forward_and_backward)
{
    char *out;
    ck_assert_int_eq(run_cmd(GRADC_BIN " graph models/seed_mlp.lua", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "digraph seed_mlp {"));
    ck_assert_ptr_nonnull(strstr(out, "[label=\"h\\nsigmoid [64,100]\\nseed_mlp.lua:12\""));
    ck_assert_ptr_null(strstr(out, "d_w1"));
    free(out);
    ck_assert_int_eq(run_cmd(GRADC_BIN " graph models/seed_mlp.lua --backward", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "d_w1\\nmatmul [1000,100]"));
    ck_assert_ptr_nonnull(strstr(out, "style=dashed"));
    free(out);
}
END_TEST

/* gradc tune times norm_wx's two products with a transposed operand; a
 * file marking them `copy` makes C that copies the operand first, whose
 * gradient check still passes; a broken file names its line. A plain
 * product is timed too, and one marked `kernel` is runtime/gemm.c's. */
START_TEST(tune_times_and_applies)
{
    char *dir = make_tmpdir(), cmd[1024], path[600], *out;
    snprintf(cmd, sizeof cmd, "%s tune models/norm_wx.lua -o %s/n.tune && cat %s/n.tune", GRADC_BIN,
             dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "n.tune: 2 products timed") && strstr(out, "kernels ") &&
                      strstr(out, "     8     16     16  NT ") &&
                      strstr(out, "    16     16      8  TN "),
                  "%s", out);
    /* With more cores, each product whole and shared too, and what a
     * trainer would measure at start. */
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
        ck_assert_msg(strstr(out, "#   on ") && strstr(out, " threads, whole / shared: blas ") &&
                          strstr(out, "# on this machine: ") && strstr(out, "woken and joined in "),
                      "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/copy.tune", dir);
    write_text(path, "# both copied\n 8 16 16 NT 1.0 0.5 - copy\n16 16 8 TN 1.0 0.5 - copy\n");
    snprintf(cmd, sizeof cmd,
             "%s build models/norm_wx.lua --tune %s -o %s/b && %s/b/norm_wx_gradcheck", GRADC_BIN,
             path, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "grep -c 'tuned_copy\\[j \\* ' %s/b/norm_wx.c", dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    ck_assert_str_eq(out, "2\n");
    free(out);
    snprintf(path, sizeof path, "%s/bad.tune", dir);
    write_text(path, "# fine\n8 16 16 NT 1.0 0.5 0.7 copy\n8 16 x NT 1 2 - copy\n");
    snprintf(cmd, sizeof cmd, "%s compile models/norm_wx.lua --tune %s -o %s/c", GRADC_BIN, path,
             dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "bad.tune:3: expected `M N K NN|NT|TN[*COUNT[/A|/C|/AC]] BLAS "
                              "COPIED KERNEL blas|copy|kernel`"),
                  "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/c", dir);
    ck_assert(!file_exists(path));

    snprintf(path, sizeof path, "%s/plain.lua", dir);
    write_text(path, "local x = input(\"x\", {8, 24})\n"
                     "local w = param(\"w\", {24, 32}, randn())\n"
                     "return model { loss = sum(tanh(x:matmul(w))) }\n");
    snprintf(cmd, sizeof cmd, "%s tune %s -o %s/p.tune && cat %s/p.tune", GRADC_BIN, path, dir,
             dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "      8     32     24  NN "), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/kernel.tune", dir);
    write_text(path, "8 32 24 NN 1.0 - 0.5 kernel\n");
    snprintf(cmd, sizeof cmd,
             "%s build %s/plain.lua --tune %s -o %s/k && %s/k/plain_gradcheck --all && "
             "grep -q 'r_gemm_nn(8, 32, 24,' %s/k/plain.c",
             GRADC_BIN, dir, path, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* Attention's products per example and head are timed as batches, each
 * with the triangles the causal mask leaves out (the scores and their
 * gradient: only the columns up to the row are read; the weights, and
 * their gradient: zero past the diagonal); marked `kernel`, the C calls
 * r_heads for them and its gradient check passes, the trainer's losses
 * equal to the BLAS's to float's rounding. */
START_TEST(tune_times_head_batches)
{
    char *dir = make_tmpdir(), cmd[2048], *out, *losses[2];
    const char *config = "-D context=16 -D width=32 -D batch=2";
    snprintf(cmd, sizeof cmd, "%s tune models/gpt.lua %s -o %s/g.tune && cat %s/g.tune", GRADC_BIN,
             config, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "     16     16      8  NT*8/C ") &&
                      strstr(out, "     16      8     16  NN*8/A ") &&
                      strstr(out, "     16      8     16  TN*8/A "),
                  "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "sed 's/ blas$/ kernel/' %s/g.tune > %s/k.tune", dir, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    free(out);
    for (int k = 0; k < 2; k++) {
        char tune[700] = "";
        if (k)
            snprintf(tune, sizeof tune, "--tune %s/k.tune", dir);
        snprintf(
            cmd, sizeof cmd,
            "%s build models/gpt.lua %s %s -o %s/b%d >/dev/null && %s/b%d/gpt_gradcheck >/dev/null "
            "&& %s/b%d/gpt_train --data x=data/tinyshakespeare.txt "
            "--data y=data/tinyshakespeare.txt:next --steps 20 --print-every 1 2>/dev/null | grep "
            "'^step'",
            GRADC_BIN, config, tune, dir, k, dir, k, dir, k);
        ck_assert_msg(run_cmd(cmd, &losses[k]) == 0, "%s", losses[k]);
    }
    snprintf(cmd, sizeof cmd,
             "grep -c 'r_heads(2, 4, ' %s/b1/gpt.c && grep -c 'RT_TRI_C);' %s/b1/gpt.c", dir, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    ck_assert_str_eq(out, "12\n4\n");
    free(out);
    char *at[2] = {losses[0], losses[1]};
    int steps = 0;
    for (double x[2]; sscanf(at[0], "step %*d loss %lf", &x[0]) == 1 &&
                      sscanf(at[1], "step %*d loss %lf", &x[1]) == 1;
         steps++) {
        ck_assert_msg(fabs(x[0] - x[1]) <= 1e-5 * fabs(x[0]), "%s\nagainst\n%s", losses[0],
                      losses[1]);
        for (int k = 0; k < 2; k++)
            at[k] = strchr(at[k], '\n') ? strchr(at[k], '\n') + 1 : at[k] + strlen(at[k]);
    }
    ck_assert_int_eq(steps, 20);
    free(losses[0]), free(losses[1]);
    remove_dir(dir);
}
END_TEST

/* gradc build: a trainer and a gradient check, ready to run. */
START_TEST(build_makes_programs)
{
    char *dir = make_tmpdir(), cmd[1024], *out;
    snprintf(cmd, sizeof cmd,
             "%s build models/norm_wx.lua -o %s && %s/norm_wx_gradcheck --threads 2 && "
             "%s/norm_wx_train --steps 3 && %s/norm_wx_predict --help",
             GRADC_BIN, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "max relative error"));
    ck_assert_ptr_nonnull(strstr(out, "final loss"));
    ck_assert_ptr_nonnull(strstr(out, "usage: norm_wx_predict --checkpoint FILE"));
    free(out);
    /* Every program takes --threads, and refuses a count that is no count. */
    snprintf(cmd, sizeof cmd, "%s/norm_wx_predict --checkpoint none --threads -1", dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 2);
    ck_assert_msg(strstr(out, "--threads: expected a count of threads, or 0 or auto for every "
                              "core, got '-1'"),
                  "%s", out);
    free(out);
    /* --threads auto: one per core the program may run on, as its CPU
     * affinity says (taskset pins it to one). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (int pinned = 0; pinned < 2; pinned++) {
        snprintf(cmd, sizeof cmd, "%s%s/norm_wx_train --steps 3 --threads auto",
                 pinned ? "taskset -c 0 " : "", dir);
        ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
        char want[96];
        snprintf(want, sizeof want, "norm_wx_train: --threads auto: %ld, the cores it may run on\n",
                 pinned ? 1 : cores);
        ck_assert_msg(strstr(out, want), "expected '%s' in:\n%s", want, out);
        free(out);
    }
    remove_dir(dir);
}
END_TEST

/* gradc check: one table, JUnit for CI, and a failure that fails. */
START_TEST(check_prints_one_table)
{
    char *dir = make_tmpdir(), cmd[1024], *out;
    snprintf(cmd, sizeof cmd, "%s check models/norm_wx.lua models/svm.lua --junit %s/j.xml",
             GRADC_BIN, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "max relative error  result"));
    ck_assert_ptr_nonnull(strstr(out, "norm_wx              W"));
    ck_assert_ptr_nonnull(strstr(out, "svm                  W"));
    ck_assert_ptr_null(strstr(out, "FAIL"));
    free(out);
    snprintf(cmd, sizeof cmd, "cat %s/j.xml", dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    ck_assert_ptr_nonnull(
        strstr(out, "<testsuite name=\"gradc check\" tests=\"2\" failures=\"0\">"));
    ck_assert_ptr_nonnull(strstr(out, "<testcase classname=\"svm\" name=\"W\">"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s check models/svm.lua --tol 1e-30 --junit %s/j.xml", GRADC_BIN,
             dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "FAIL"));
    free(out);
    snprintf(cmd, sizeof cmd, "grep -c '<failure' %s/j.xml", dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    ck_assert_str_eq(out, "1\n");
    free(out);
    remove_dir(dir);
}
END_TEST

/* docs/c-api.md's example program `name`, the block of C that starts
 * with its file's name, written to path: the tests build the page's own
 * text, so the page cannot drift from what compiles. */
static void write_c_api_program(const char *name, const char *path)
{
    FILE *f = fopen("docs/c-api.md", "r");
    ck_assert_ptr_nonnull(f);
    char *text = malloc(1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = 0;
    char start[128];
    snprintf(start, sizeof start, "```c\n/* %s:", name);
    char *from = strstr(text, start);
    char *end = from ? strstr(from, "\n```\n") : NULL;
    ck_assert_msg(from && end, "docs/c-api.md has no %s", name);
    end[1] = 0;
    write_text(path, from + strlen("```c\n"));
    free(text);
}

/* What the example prints must hold: the loss of zero weights over three
 * classes is ln 3; d_W[0] agrees with the central difference (to 1e-3, as
 * float rounding allows); the step lowered the loss; and loading the
 * checkpoint of step 0 gave its loss back to the last digit. */
static void check_c_api_example(const char *out)
{
    double loss, grad, diff, after;
    char saved[64], loaded[64];
    long step;
    const char *at = strstr(out, "d_W[0]"), *at_saved = strstr(out, "\nsaved "),
               *at_after = strstr(out, "after one step: "), *at_loaded = strstr(out, "\nloaded ");
    ck_assert_msg(sscanf(out, "loss %lf", &loss) == 1 && at && at_saved && at_after && at_loaded,
                  "%s", out);
    ck_assert_int_eq(sscanf(at, "d_W[0] %lf central difference %lf", &grad, &diff), 2);
    ck_assert_int_eq(sscanf(at_saved, " saved %*s at loss %63s", saved), 1);
    ck_assert_int_eq(sscanf(at_after, "after one step: loss %lf", &after), 1);
    ck_assert_int_eq(sscanf(at_loaded, " loaded %*s at step %ld: loss %63s", &step, loaded), 2);
    ck_assert_msg(fabs(loss - log(3.0)) < 1e-6, "%s", out);
    ck_assert_msg(grad != 0 && fabs(grad - diff) <= 1e-3 * fabs(diff), "%s", out);
    ck_assert_msg(after < strtod(saved, NULL), "%s", out);
    ck_assert_int_eq(step, 0);
    ck_assert_str_eq(loaded, saved);
}

/* The C API's example compiles with -Wall -Wextra -Werror against the
 * model and the runtime of the build tree, and does what it says; its
 * checkpoint is one the trainer resumes from and predict reads. */
/* docs/c-api.md's H v program: models/norm_wx.lua's twin, through
 * NAME_hvp(params, v, out), against the closed form 2 V X^T X. */
START_TEST(c_api_hvp_example_runs)
{
    char *dir = make_tmpdir(), cmd[4096], path[600], *out;
    snprintf(path, sizeof path, "%s/hvp_by_hand.c", dir);
    write_c_api_program("hvp_by_hand.c", path);
    snprintf(cmd, sizeof cmd,
             "%s compile models/norm_wx.lua --hvp -o %s && " TEST_CC
             " -DREAL_DOUBLE -Iruntime -I%s %s %s/norm_wx.c %s/norm_wx_hvp.c " RT_LIB " " TEST_LIBS
             " -o %s/hvp_by_hand && %s/hvp_by_hand",
             GRADC_BIN, dir, dir, path, dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    double first = 0, worst = 1;
    const char *at = strstr(out, "H v[0] ");
    ck_assert_msg(
        at && sscanf(at, "H v[0] %lf, worst error against 2 V X^T X %lf", &first, &worst) == 2,
        "%s", out);
    ck_assert_msg(first != 0 && worst <= 1e-12, "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

START_TEST(c_api_example_runs)
{
    char *dir = make_tmpdir(), cmd[4096], path[600], *out;
    snprintf(path, sizeof path, "%s/iris_by_hand.c", dir);
    write_c_api_program("iris_by_hand.c", path);
    snprintf(cmd, sizeof cmd,
             TEST_CC " -Iruntime -Igenerated/iris %s generated/iris/iris.c " RT_LIB " " TEST_LIBS
                     " -o %s/iris_by_hand && %s/iris_by_hand %s/iris.ckpt",
             path, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    check_c_api_example(out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s/iris_train --resume %s/iris.ckpt --steps 2 && "
             "%s/iris_predict --checkpoint %s/iris.ckpt --data x=data/iris.csv --out %s/p.csv",
             BUILD_DIR, dir, BUILD_DIR, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "resumed from") && strstr(out, "final loss"), "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* make install gives a tree that builds models on its own, from anywhere,
 * with the modules it installed, and still does once moved: gradc finds
 * its runtime beside itself, and gradc.pc its prefix from where it lies. */
START_TEST(installed_tree_builds_models)
{
    char *dir = make_tmpdir(), cmd[2048], *out;
    /* installed in one place and then moved: everything below runs from
     * where it was moved to */
    snprintf(cmd, sizeof cmd,
             "make --no-print-directory -s install BUILD=%s PREFIX=%s/first && mv %s/first %s/usr",
             BUILD_DIR, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    char model[600];
    snprintf(model, sizeof model, "%s/tiny.lua", dir);
    write_text(model, "local dense = import(\"dense\")\n"
                      "local x = input(\"x\", {4, 3})\n"
                      "local y = input(\"y\", {4}, \"int32\")\n"
                      "return model { loss = mean(cross_entropy(dense(x, 2, \"fc\"), y)) }\n");
    snprintf(cmd, sizeof cmd, "cd %s && usr/bin/gradc build tiny.lua -o out && out/tiny_gradcheck",
             dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "fc_w [3,2]"));
    free(out);
    snprintf(cmd, sizeof cmd,
             "PKG_CONFIG_PATH=%s/usr/lib/pkgconfig pkg-config --cflags --libs gradc", dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    char moved[700];
    snprintf(moved, sizeof moved, "-I%s/usr/", dir);
    ck_assert_msg(strstr(out, moved) && strstr(out, "-lgradc_rt") && !strstr(out, "/first"),
                  "gradc.pc does not name the moved tree: %s", out);
    free(out);
    /* and its flags build the generated C alone, as the README does (with
     * the sanitizers a sanitized runtime needs) */
    snprintf(
        cmd, sizeof cmd,
        "cd %s && cc -std=c11 -O2 " TEST_SAN " out/tiny_train.c out/tiny.c -Iout "
        "$(PKG_CONFIG_PATH=%s/usr/lib/pkgconfig pkg-config --cflags --libs gradc) -o tiny_train "
        "2>&1 | head -5 && ./tiny_train --steps 2",
        dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    /* and the C API's example, built as docs/c-api.md says */
    char path[700];
    snprintf(path, sizeof path, "%s/iris_by_hand.c", dir);
    write_c_api_program("iris_by_hand.c", path);
    snprintf(cmd, sizeof cmd,
             "%s/usr/bin/gradc compile models/iris.lua -o %s/iris && "
             "cc -std=c11 -O2 -Wall -Wextra -Werror " TEST_SAN " -I%s/iris %s %s/iris/iris.c "
             "$(PKG_CONFIG_PATH=%s/usr/lib/pkgconfig pkg-config --cflags --libs gradc) "
             "-o %s/iris_by_hand",
             dir, dir, dir, path, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/iris_by_hand %s/iris.ckpt", dir, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 0);
    check_c_api_example(out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* Train with a checkpoint, then predict every row of a file that is not a
 * whole number of batches: as many rows out as in, classes that agree
 * with the values, and a checkpoint of another model refused. */
START_TEST(predict_from_a_checkpoint)
{
    char *dir = make_tmpdir(), cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "zcat data/digits.csv.gz | head -70 > %s/d.csv && "
             "%s/mlp3_train --data x=%s/d.csv --data labels=%s/d.csv --steps 20 "
             "--checkpoint %s/m.ckpt && "
             "%s/mlp3_predict --checkpoint %s/m.ckpt --data x=%s/d.csv --argmax --out %s/c.csv && "
             "%s/mlp3_predict --checkpoint %s/m.ckpt --data x=%s/d.csv --out %s/v.csv && wc -l < "
             "%s/c.csv",
             dir, BUILD_DIR, dir, dir, dir, BUILD_DIR, dir, dir, dir, BUILD_DIR, dir, dir, dir,
             dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "70 rows of predicted classes written"));
    ck_assert_ptr_nonnull(strstr(out, "\n70\n"));
    free(out);
    /* each class is the argmax of its row of values */
    snprintf(cmd, sizeof cmd,
             "awk -F, '{b=1; for (i=2;i<=NF;i++) if ($i>$b) b=i; print b-1}' "
             "%s/v.csv | cmp - %s/c.csv",
             dir, dir);
    ck_assert_int_eq(run_cmd(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s/svm_predict --checkpoint %s/m.ckpt --data x=%s/d.csv", BUILD_DIR,
             dir, dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "is a checkpoint of model 'mlp3', not of 'svm'"));
    free(out);
    remove_dir(dir);
}
END_TEST

/* The zoo's sequence models gradient-check at a small size of the same
 * files (at full size a check takes minutes): one `gradc check`, every
 * parameter of every model within 1e-6. */
START_TEST(zoo_models_check_small)
{
    char *out;
    const char *cmd =
        GRADC_BIN " check models/char_rnn.lua models/char_lstm.lua models/gpt.lua "
                  "-D batch=2 -D steps=3 -D hidden=6 -D context=4 -D width=8 -D layers=1";
    int status = run_cmd(cmd, &out);
    ck_assert_msg(status == 0, "exit %d: %.3000s", status, out);
    ck_assert_ptr_null(strstr(out, "FAIL"));
    ck_assert_ptr_nonnull(strstr(out, "char_rnn             rnn_u"));
    ck_assert_ptr_nonnull(strstr(out, "char_lstm            lstm_forget_b"));
    ck_assert_ptr_nonnull(strstr(out, "gpt                  block1_attn_q"));
    free(out);
    /* A key that no model of the check reads is misspelt. */
    ck_assert_int_eq(run_cmd(GRADC_BIN " check models/iris.lua -D batch=4 -D hiden=8", &out), 1);
    ck_assert_msg(strstr(out, "gradc: -D hiden: no model read config.hiden\n"), "%s", out);
    free(out);
}
END_TEST

/* Same seed, same numbers, bit for bit (one thread); another seed, others.
 * The times per step are the one figure that may differ. */
START_TEST(same_seed_same_numbers)
{
    char cmd[1024], *a, *b, *c;
    const char *train = BUILD_DIR "/digits_train --data x=data/digits.csv.gz "
                                  "--data labels=data/digits.csv.gz --steps 60 --threads 1 --seed";
    const char *no_time =
        "2>/dev/null | sed 's/  [0-9.e+-]* ms\\/step, the first [0-9.e+-]* ms$//'";
    snprintf(cmd, sizeof cmd, "%s 7 %s", train, no_time);
    ck_assert_int_eq(run_cmd(cmd, &a), 0);
    ck_assert_int_eq(run_cmd(cmd, &b), 0);
    snprintf(cmd, sizeof cmd, "%s 8 %s", train, no_time);
    ck_assert_int_eq(run_cmd(cmd, &c), 0);
    ck_assert_ptr_nonnull(strstr(a, "step 60 loss "));
    ck_assert_ptr_null(strstr(a, "ms/step"));
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* A text and the same bytes as an llm.c token file, written by numpy as
 * llm.c's dev/data/data_common.py writes one, train a real character model
 * to the same losses and the same checkpoint, byte for byte, and sample
 * the same text: as characters from the text, as ids from the tokens. */
START_TEST(tokens_train_as_text)
{
    char *dir = make_tmpdir(), cmd[4096], cwd[1024], *out;
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && /usr/bin/python3 -c \""
             "import numpy as np\n"
             "raw = open('%s/data/tinyshakespeare.txt', 'rb').read(20000)\n"
             "open('s.txt', 'wb').write(raw)\n"
             "toks = list(raw)\n"
             "header = np.zeros(256, dtype=np.int32)\n"
             "header[0] = 20240520\n"
             "header[1] = 1\n"
             "header[2] = len(toks)\n"
             "toks_np = np.array(toks, dtype=np.uint16)\n"
             "with open('s.bin', 'wb') as f:\n"
             "    f.write(header.tobytes())\n"
             "    f.write(toks_np.tobytes())\n"
             "\"",
             dir, cwd);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "python3 with numpy is required: %s", out);
    free(out);
    const char *no_time = "| sed 's/  [0-9.e+-]* ms\\/step, the first [0-9.e+-]* ms$//'";
    char *said[2];
    const char *kind[2] = {"txt", "bin"}, *prompt[2] = {"F", "70"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 BUILD_DIR "/char_rnn_train --data x=%s/s.%s --data y=%s/s.%s:next --steps 6 "
                           "--print-every 1 --seed 3 --threads 1 --sample 40 --prompt %s "
                           "--checkpoint %s/%s.ckpt 2>%s/%s.err %s",
                 dir, kind[k], dir, kind[k], prompt[k], dir, kind[k], dir, kind[k], no_time);
        ck_assert_int_eq(run_cmd(cmd, &said[k]), 0);
    }
    /* The losses, then the sample: bytes for the text, ids for the tokens. */
    char *txt_sample = strstr(said[0], "sample (temperature 0.8):\n");
    char *bin_sample = strstr(said[1], "sample (temperature 0.8):\n");
    ck_assert_ptr_nonnull(txt_sample);
    ck_assert_ptr_nonnull(bin_sample);
    ck_assert_ptr_nonnull(strstr(said[0], "step 6 loss "));
    ck_assert_int_eq(txt_sample - said[0], bin_sample - said[1]);
    ck_assert_mem_eq(said[0], said[1], (size_t)(txt_sample - said[0]));
    const char *c = txt_sample + strlen("sample (temperature 0.8):\n");
    char *p = bin_sample + strlen("sample (temperature 0.8):\n");
    int n = 0;
    for (; *c && c[1]; c++, n++) { /* the text's sample ends with a newline */
        char *end;
        long id = strtol(p, &end, 10);
        ck_assert_msg(end != p && id == (unsigned char)*c,
                      "character %d of the sample: '%c' from the text, '%.20s' from the tokens", n,
                      *c, p);
        p = end;
    }
    ck_assert_int_eq(n, 41); /* the prompt and 40 */
    ck_assert_str_eq(p, "\n");
    /* The same parameters and optimizer state at the end. */
    snprintf(cmd, sizeof cmd, "cmp %s/txt.ckpt %s/bin.ckpt && cmp %s/txt.err %s/bin.err", dir, dir,
             dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    free(said[0]);
    free(said[1]);
    remove_dir(dir);
}
END_TEST

/* The optimizer is compiled in: a trainer asked for another one, or for a
 * setting its optimizer does not read, says how to get it. */
START_TEST(trainer_names_the_compile_flag)
{
    char *out;
    ck_assert_int_eq(run_cmd(BUILD_DIR "/mlp3_train --beta1 0.5", &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--beta1 is a setting of adam/adamw"));
    ck_assert_ptr_nonnull(strstr(out, "gradc compile --optimizer"));
    free(out);
    ck_assert_int_eq(run_cmd(BUILD_DIR "/mlp3_train --optimizer adam", &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "gradc compile MODEL.lua --optimizer adam"));
    free(out);
    ck_assert_int_eq(run_cmd(BUILD_DIR "/mlp3_train --optimizer sgd --steps 3 --schedule cosine "
                                       "--warmup 2 --clip 1 --weight-decay 1e-4",
                             &out),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "final loss"));
    free(out);
}
END_TEST

/* Whether text has flag as a whole word (not a prefix of a longer flag). */
static int has_flag(const char *text, const char *start, size_t len)
{
    char flag[64];
    snprintf(flag, sizeof flag, "%.*s", (int)len, start);
    for (const char *p = text; (p = strstr(p, flag)); p += len) {
        char next = p[len];
        if (!(next == '-' || (next >= 'a' && next <= 'z')))
            return 1;
    }
    return 0;
}

/* A trainer's --help fits 80 columns, and its usage line and its flag
 * list name the same flags: for the three optimizers' flag sets. */
START_TEST(trainer_help_is_tidy)
{
    static const char *const trainers[] = {"iris", "char_lstm", "gpt"};
    for (size_t t = 0; t < sizeof trainers / sizeof *trainers; t++) {
        char cmd[256], *out;
        snprintf(cmd, sizeof cmd, BUILD_DIR "/%s_train --help", trainers[t]);
        ck_assert_int_eq(run_cmd(cmd, &out), 0);
        char *body = strstr(out, "\n\n");
        ck_assert_ptr_nonnull(body);
        *body++ = 0;
        int flags = 0;
        for (char *line = body; *line;) {
            char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            ck_assert_msg(len <= 80, "%s: a line of %zu columns: %.*s", cmd, len, (int)len, line);
            if (!strncmp(line, "  --", 4)) {
                size_t flag = strcspn(line + 2, " ");
                ck_assert_msg(has_flag(out, line + 2, flag), "%s: %.*s is not in the usage line",
                              cmd, (int)flag, line + 2);
                flags++;
            }
            line += len + (end != NULL);
        }
        for (const char *p = out; (p = strstr(p, "--")); p += 2) {
            size_t flag = strspn(p, "-abcdefghijklmnopqrstuvwxyz0123456789");
            char want[64];
            snprintf(want, sizeof want, "\n  %.*s ", (int)flag, p);
            ck_assert_msg(!strncmp(p, "--help", 6) || strstr(body, want),
                          "%s: %.*s has no line under the headings", cmd, (int)flag, p);
        }
        ck_assert_int_ge(flags, 25);
        free(out);
    }
}
END_TEST

/* --init with the real programs. The seed network starts from weights
 * numpy wrote: its first loss is numpy's loss of them on numpy's data, and
 * after a step at rate 0 it exports the very same files. Iris, exported
 * by one run, predicts the same from --init as from that run's
 * checkpoint, and gradient-checks at those weights, not the seed's. */
START_TEST(init_from_numpy_files)
{
    char *dir = make_tmpdir(), cmd[8192], path[600], root[400], bin[800], *out;
    ck_assert_ptr_nonnull(getcwd(root, sizeof root));
    /* The programs run in dir, so their folder is named from the root. */
    snprintf(bin, sizeof bin, "%s%s" BUILD_DIR, BUILD_DIR[0] == '/' ? "" : root,
             BUILD_DIR[0] == '/' ? "" : "/");
    snprintf(path, sizeof path, "%s/make.py", dir);
    write_text(path, "import numpy as np, os\n"
                     "r = np.random.default_rng(11)\n"
                     "f = lambda *s: r.standard_normal(s).astype(np.float32)\n"
                     "x, y, w1, w2 = f(64, 1000), f(64, 10), f(1000, 100) * 0.05, f(100, 10)\n"
                     "np.save('x.npy', x); np.save('y.npy', y)\n"
                     "os.mkdir('w'); np.save('w/w1.npy', w1); np.save('w/w2.npy', w2)\n"
                     "d = np.float64\n"
                     "h = 1 / (1 + np.exp(-(x.astype(d) @ w1.astype(d))))\n"
                     "print(repr(float(((h @ w2.astype(d) - y) ** 2).sum())))\n");
    snprintf(path, sizeof path, "%s/same.py", dir);
    write_text(path, "import numpy as np\n"
                     "for n in ('w1', 'w2'):\n"
                     "    a, b = np.load('w/' + n + '.npy'), np.load('e/' + n + '.npy')\n"
                     "    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, n\n"
                     "    assert (a.view(np.uint32) == b.view(np.uint32)).all(), n\n"
                     "print('same')\n");
    snprintf(cmd, sizeof cmd,
             "cd %s && /usr/bin/python3 make.py && %s/seed_mlp_train --data x=x.npy --data "
             "y=y.npy --init w --steps 1 --lr 0 --export e 2>/dev/null && /usr/bin/python3 "
             "same.py",
             dir, bin);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    double want = strtod(out, NULL), got = strtod(strstr(out, "step 1 loss ") + 12, NULL);
    ck_assert_msg(want > 0 && fabs(got - want) <= 1e-5 * want, "numpy %.17g, seed_mlp %.17g", want,
                  got);
    ck_assert_ptr_nonnull(strstr(out, "\nsame\n"));
    free(out);

    snprintf(cmd, sizeof cmd,
             "cd %s && %s/iris_train --data x=%s/data/iris.csv --data labels=%s/data/iris.csv "
             "--steps 30 --checkpoint i.ckpt --export ie 2>/dev/null >/dev/null && "
             "%s/iris_predict --checkpoint i.ckpt --data x=%s/data/iris.csv --out a.csv && "
             "%s/iris_predict --init ie --data x=%s/data/iris.csv --out b.csv && cmp a.csv b.csv",
             dir, bin, root, root, bin, root, bin, root);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    free(out);
    char *seeded, *given;
    snprintf(cmd, sizeof cmd, "%s/iris_gradcheck", BUILD_DIR);
    ck_assert_int_eq(run_cmd(cmd, &seeded), 0);
    snprintf(cmd, sizeof cmd, "%s/iris_gradcheck --init %s/ie", BUILD_DIR, dir);
    ck_assert_msg(run_cmd(cmd, &given) == 0, "%s", given);
    ck_assert_ptr_nonnull(strstr(given, "max relative error "));
    ck_assert_str_ne(given, seeded);
    free(seeded), free(given);
    /* A bad directory: one line, exit 1, from each program. */
    snprintf(cmd, sizeof cmd, "rm %s/ie/W.npy && %s/iris_gradcheck --init %s/ie", dir, BUILD_DIR,
             dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "iris_gradcheck: --init: ") == out &&
                      strstr(out, "/ie/W.npy: missing") && strchr(out, '\n')[1] == '\0',
                  "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/iris_predict --init %s/ie --data x=data/iris.csv", BUILD_DIR,
             dir);
    ck_assert_int_eq(run_cmd(cmd, &out), 1);
    ck_assert_msg(strstr(out, "iris_predict: --init: ") == out && strchr(out, '\n')[1] == '\0',
                  "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* ---- scripts/llmc_to_npy.py: llm.c's GPT-2 checkpoints ---- */

/* llm.c's tensors in its file order, each stacked over the layers (or
 * one, when not layered), one layer's shape in units of C (or Vp, maxT). */
enum { LC_L = 3, LC_C = 8, LC_NH = 2, LC_V = 10, LC_VP = 16, LC_T = 6 };
static const struct {
    const char *gradc; /* the file: NAME.npy, or hL_NAME.npy per layer */
    int layered;
    long rows, cols; /* cols 0: a vector */
} llmc_tensors[] = {
    {"wte", 0, LC_VP, LC_C},         {"wpe", 0, LC_T, LC_C},       {"ln1_w", 1, LC_C, 0},
    {"ln1_b", 1, LC_C, 0},           {"qkv_w", 1, 3 * LC_C, LC_C}, {"qkv_b", 1, 3 * LC_C, 0},
    {"attproj_w", 1, LC_C, LC_C},    {"attproj_b", 1, LC_C, 0},    {"ln2_w", 1, LC_C, 0},
    {"ln2_b", 1, LC_C, 0},           {"fc_w", 1, 4 * LC_C, LC_C},  {"fc_b", 1, 4 * LC_C, 0},
    {"fcproj_w", 1, LC_C, 4 * LC_C}, {"fcproj_b", 1, LC_C, 0},     {"lnf_w", 0, LC_C, 0},
    {"lnf_b", 0, LC_C, 0},
};

/* Element e of tensor t's layer l: scattered multiples of 1/256 in
 * [-128, 128), which float32 holds exactly and numpy recomputes. */
static float llmc_value(int t, int l, long e)
{
    uint64_t h =
        ((uint64_t)e * 2654435761u + (uint64_t)t * 40503u + (uint64_t)l * 977u) & 0xffffffffu;
    return (float)((double)((h >> 8) & 0xffff) / 256.0 - 128.0);
}

/* An llm.c checkpoint written here, by the format alone: the header's
 * version, and the number of values cut off (< 0) or added (> 0). */
static void write_llmc(const char *path, int version, int magic, long extra)
{
    int32_t header[256] = {magic, version, LC_T, LC_V, LC_L, LC_NH, LC_C, LC_VP};
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(header, 4, 256, f), 256); /* this host is little-endian */
    long n = 0, total = 0;
    for (size_t t = 0; t < sizeof llmc_tensors / sizeof *llmc_tensors; t++)
        total += (llmc_tensors[t].layered ? LC_L : 1) * llmc_tensors[t].rows *
                 (llmc_tensors[t].cols ? llmc_tensors[t].cols : 1);
    for (size_t t = 0; t < sizeof llmc_tensors / sizeof *llmc_tensors; t++) {
        long per = llmc_tensors[t].rows * (llmc_tensors[t].cols ? llmc_tensors[t].cols : 1);
        for (int l = 0; l < (llmc_tensors[t].layered ? LC_L : 1); l++)
            for (long e = 0; e < per && n < total + extra; e++, n++) {
                float v = llmc_value((int)t, l, e);
                ck_assert_int_eq(fwrite(&v, 4, 1, f), 1);
            }
    }
    for (; n < total + extra; n++)
        ck_assert_int_eq(fwrite("\0\0\0\0", 4, 1, f), 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* cmd fails: exit 1, one line that starts with `start` and holds `want`,
 * and dir holds only the files it held before (names, a listing). */
static void llmc_refused(const char *cmd, const char *start, const char *want, const char *dir,
                         const char *names)
{
    char *out, ls[700];
    int status = run_cmd(cmd, &out);
    ck_assert_msg(status == 1, "%s: exit %d: %s", cmd, status, out);
    ck_assert_msg(strncmp(out, start, strlen(start)) == 0 && strstr(out, want),
                  "%s: want '%s...%s', got '%s'", cmd, start, want, out);
    ck_assert_msg(strchr(out, '\n')[1] == '\0', "%s: more than one line: %s", cmd, out);
    free(out);
    snprintf(ls, sizeof ls, "ls -A %s | tr '\\n' ' '", dir);
    ck_assert_int_eq(run_cmd(ls, &out), 0);
    ck_assert_str_eq(out, names);
    free(out);
}

/* The converter, against a checkpoint this test writes from the format:
 * every .npy holds its layer's slice, the flags for gradc are printed,
 * the way back gives the same bytes, and each bad file or directory is
 * one line, exit 1, with nothing written. */
START_TEST(llmc_converter)
{
    char *dir = make_tmpdir(), cmd[4096], path[700], *out;
    snprintf(path, sizeof path, "%s/a.bin", dir);
    write_llmc(path, 3, 20240326, 0);
    snprintf(cmd, sizeof cmd, "scripts/llmc_to_npy.py %s/a.bin %s/w", dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "L=3 C=8 NH=2 V=10 Vp=16 maxT=6\n") &&
                      strstr(out, "wrote 40 .npy files to ") &&
                      strstr(out, "compile models/gpt2.lua with: -D layers=3 -D width=8 -D "
                                  "heads=2 -D vocab=10 -D max_context=6\n"),
                  "%s", out);
    free(out);
    /* numpy recomputes each element from its tensor, layer and index */
    snprintf(path, sizeof path, "%s/same.py", dir);
    char py[4096];
    size_t len = (size_t)snprintf(py, sizeof py,
                                  "import numpy as np, os\n"
                                  "def value(t, l, n):\n"
                                  "    h = (np.arange(n, dtype=np.uint64) * 2654435761 + t * "
                                  "40503 + l * 977) %% 2**32\n"
                                  "    return ((h >> 8) & 0xffff) / 256.0 - 128.0\n"
                                  "seen = set()\n"
                                  "for t, (name, layered, shape) in enumerate([\n");
    for (size_t t = 0; t < sizeof llmc_tensors / sizeof *llmc_tensors; t++)
        len +=
            (size_t)snprintf(py + len, sizeof py - len, "        ('%s', %d, (%ld,%s%.0ld)),\n",
                             llmc_tensors[t].gradc, llmc_tensors[t].layered, llmc_tensors[t].rows,
                             llmc_tensors[t].cols ? " " : "", llmc_tensors[t].cols);
    snprintf(py + len, sizeof py - len,
             "        ]):\n"
             "    for l in range(%d if layered else 1):\n"
             "        f = ('h%%d_' %% l if layered else '') + name + '.npy'\n"
             "        a = np.load('w/' + f)\n"
             "        assert a.dtype == np.float32 and a.shape == shape, (f, a.dtype, a.shape)\n"
             "        assert (a.reshape(-1) == value(t, l, a.size)).all(), f\n"
             "        seen.add(f)\n"
             "assert seen == set(os.listdir('w')), set(os.listdir('w')) - seen\n"
             "print('same', len(seen))\n",
             LC_L);
    write_text(path, py);
    snprintf(cmd, sizeof cmd, "cd %s && /usr/bin/python3 same.py", dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_str_eq(out, "same 40\n");
    free(out);
    /* and back, byte for byte */
    snprintf(cmd, sizeof cmd,
             "scripts/llmc_to_npy.py --to-llmc %s/w %s/b.bin --heads 2 --vocab 10 && cmp %s/a.bin "
             "%s/b.bin",
             dir, dir, dir, dir);
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "wrote "));
    free(out);
    /* The test can fail: one value changed in the files changes the bytes
     * of that element, where llm.c's layout puts it, and no others. */
    snprintf(cmd, sizeof cmd,
             "cd %s && cp -r w w2 && /usr/bin/python3 -c \"import numpy as np; a = "
             "np.load('w2/h2_fc_w.npy'); a[31, 7] = 1000; np.save('w2/h2_fc_w.npy', a)\" && "
             "%s/scripts/llmc_to_npy.py --to-llmc w2 c.bin --heads 2 --vocab 10 >/dev/null && "
             "(cmp -l a.bin c.bin; true) && rm -r w2 c.bin b.bin",
             dir, getcwd(path, sizeof path));
    ck_assert_msg(run_cmd(cmd, &out) == 0, "%s", out);
    long at = 0; /* the element's index among the file's values */
    for (size_t t = 0; strcmp(llmc_tensors[t].gradc, "fc_w"); t++)
        at += (llmc_tensors[t].layered ? LC_L : 1) * llmc_tensors[t].rows *
              (llmc_tensors[t].cols ? llmc_tensors[t].cols : 1);
    at += 2 * 4 * LC_C * LC_C + 31 * LC_C + 7;
    int differ = 0;
    for (char *line = out; *line; line = strchr(line, '\n') + 1, differ++) {
        long byte = strtol(line, NULL, 10) - 1; /* cmp counts from 1 */
        ck_assert_msg(byte >= 1024 + 4 * at && byte < 1024 + 4 * at + 4, "byte %ld: %s", byte, out);
    }
    ck_assert_int_ge(differ, 1);
    free(out);

    /* Refused: llm.c files not of version 3 float32, or not whole. */
    static const struct {
        int version, magic;
        long extra, cut; /* values added or cut off; cut: the file's size */
        const char *want;
    } bad[] = {
        {5, 20240326, 0, 0, ": llm.c version 5 (bfloat16 weights); this reads version 3"},
        {2, 20240326, 0, 0, ": llm.c checkpoint version 2; this reads version 3 (float32)"},
        {3, 20240327, 0, 0, ": not an llm.c GPT-2 checkpoint (magic 20240327, not 20240326)"},
        {3, 20240326, -1, 0,
         ": truncated: 12252 bytes, where a checkpoint of L=3 C=8 NH=2 V=10 Vp=16 maxT=6 has "
         "12256"},
        {3, 20240326, 1, 0,
         ": 4 bytes past the parameters: 12260 bytes, where a checkpoint of L=3 C=8 NH=2 V=10 "
         "Vp=16 maxT=6 has 12256"},
        {3, 20240326, 0, 1012, ": truncated: 1012 bytes, shorter than llm.c's 1024-byte header"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char start[800];
        snprintf(path, sizeof path, "%s/bad.bin", dir);
        write_llmc(path, bad[k].version, bad[k].magic, bad[k].extra);
        if (bad[k].cut)
            ck_assert_int_eq(truncate(path, bad[k].cut), 0);
        snprintf(cmd, sizeof cmd, "scripts/llmc_to_npy.py %s/bad.bin %s/out", dir, dir);
        snprintf(start, sizeof start, "llmc_to_npy.py: %s/bad.bin", dir);
        llmc_refused(cmd, start, bad[k].want, dir, "a.bin bad.bin same.py w ");
    }
    /* Refused: a directory that is not a GPT-2's files, and no config. */
    static const struct {
        const char *make, *file, *want;
    } dirs[] = {
        {"os.remove('d/h1_fc_b.npy')", "/h1_fc_b.npy",
         ": missing: GPT-2 with L=3 C=8 NH=2 V=10 Vp=16 maxT=6 has this parameter (llm.c's "
         "fcb)"},
        {"np.save('d/h0_qkv_w.npy', np.zeros((8, 24), np.float32))", "/h0_qkv_w.npy",
         ": shape [8, 24], but llm.c's qkvw is [24, 8] with L=3"},
        {"np.save('d/h0_ln1_b.npy', np.zeros(8, np.int64))", "/h0_ln1_b.npy",
         ": dtype int64; the weights must be float32 or float64"},
        {"np.save('d/extra.npy', np.zeros(8, np.float32))", "/extra.npy",
         ": names no parameter of GPT-2 with L=3 C=8"},
        {"f = open('d/lnf_b.npy', 'r+b'); f.truncate(140)", "/lnf_b.npy",
         ": truncated: header says [8] float32 (32 bytes), file has 12 bytes of data"},
        {"a = np.load('d/wpe.npy'); a[2, 3] = np.inf; np.save('d/wpe.npy', a)", "/wpe.npy",
         ": element 19 is inf; weights must be finite"},
    };
    for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) {
        char start[800];
        snprintf(cmd, sizeof cmd,
                 "cd %s && rm -rf d && cp -r w d && /usr/bin/python3 -c \"import numpy as np, "
                 "os; %s\"",
                 dir, dirs[k].make);
        ck_assert_int_eq(run_cmd(cmd, NULL), 0);
        snprintf(cmd, sizeof cmd,
                 "scripts/llmc_to_npy.py --to-llmc %s/d %s/o.bin --heads 2 "
                 "--vocab 10",
                 dir, dir);
        snprintf(start, sizeof start, "llmc_to_npy.py: %s/d%s", dir, dirs[k].file);
        llmc_refused(cmd, start, dirs[k].want, dir, "a.bin bad.bin d same.py w ");
    }
    snprintf(cmd, sizeof cmd, "scripts/llmc_to_npy.py --to-llmc %s/w %s/o.bin", dir, dir);
    snprintf(path, sizeof path, "llmc_to_npy.py: %s/w: ", dir);
    llmc_refused(cmd, path, "give --heads NH and --vocab V", dir, "a.bin bad.bin d same.py w ");
    snprintf(cmd, sizeof cmd, "scripts/llmc_to_npy.py %s/a.bin %s/w", dir, dir);
    llmc_refused(cmd, path, "exists and is not empty", dir, "a.bin bad.bin d same.py w ");
    ck_assert_int_eq(run_cmd("scripts/llmc_to_npy.py --help", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: llmc_to_npy.py CHECKPOINT.bin DIR\n"));
    ck_assert_ptr_nonnull(strstr(out, "--to-llmc DIR CHECKPOINT.bin --heads NH --vocab V\n"));
    free(out);
    remove_dir(dir);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *t = tcase_create("cli");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, help_and_version);
    tcase_add_loop_test(t, bad_model_gets_one_line, 0, sizeof bad_models / sizeof *bad_models);
    tcase_add_test(t, docs_stand_alone);
    tcase_add_test(t, params_of_a_module);
    tcase_add_test(t, grad_of_an_unreached_value_warns);
    tcase_add_test(t, derive_matches_golden_files);
    tcase_add_test(t, output_folders_and_missing_runtime);
    tcase_add_test(t, failed_build_leaves_nothing);
    tcase_add_test(t, make_and_demo_read_well);
    tcase_add_test(t, double_build);
    tcase_add_test(t, hvp_builds_checks_and_refuses);
    tcase_add_test(t, hvp_twin_too_big_for_static);
    tcase_add_test(t, jvp_builds_checks_and_refuses);
    tcase_add_test(t, huge_model_builds);
    tcase_add_test(t, features_only_csv);
    tcase_add_test(t, float_loss_sums_accurately);
    tcase_add_test(t, validation_loss_covers_every_row);
    tcase_add_test(t, sampled_gradcheck_estimates_full);
    tcase_add_test(t, heap_arena_trains_alike);
    tcase_add_test(t, passes_match_golden_files);
    tcase_add_test(t, readme_quotes_the_generated_c);
    tcase_add_test(t, failed_compile_keeps_old_output);
    tcase_add_test(t, generated_is_fresh);
    tcase_add_test(t, gpt2_124m_compiles);
    tcase_add_test(t, same_model_same_bytes);
    tcase_add_test(t, print_shows_both_passes);
    tcase_add_test(t, print_stats_and_memory);
    tcase_add_test(t, trainer_names_the_compile_flag);
    tcase_add_test(t, trainer_help_is_tidy);
    tcase_add_test(t, graph_draws_forward_and_backward);
    tcase_add_test(t, build_makes_programs);
    tcase_add_test(t, tune_times_and_applies);
    tcase_add_test(t, tune_times_head_batches);
    tcase_add_test(t, predict_from_a_checkpoint);
    tcase_add_test(t, init_from_numpy_files);
    tcase_add_test(t, llmc_converter);
    tcase_add_test(t, same_seed_same_numbers);
    tcase_add_test(t, tokens_train_as_text);
    tcase_add_test(t, zoo_models_check_small);
    tcase_add_test(t, check_prints_one_table);
    tcase_add_test(t, c_api_example_runs);
    tcase_add_test(t, c_api_hvp_example_runs);
    tcase_add_test(t, installed_tree_builds_models);
    suite_add_tcase(s, t);
    /* It builds the whole runtime in a tree of its own, beside another
     * suite: minutes on a busy machine. */
    t = tcase_create("runtime_build");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, build_tree_makes_its_runtime);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(cli_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
