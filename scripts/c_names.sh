#!/bin/sh
# Writes compiler/c_names.inc: every name that the headers a generated
# NAME.c includes (through runtime/rt_real.h) define as a macro or declare
# at file scope, and the base name of every header they include, one C
# string a line, sorted. emit_c.c renames a model's value that would take
# one of these names, and load_model.c refuses a model named after a
# header. Run it after a change to what rt_real.h includes; the test
# clashing_names_build (tests/test_safety.c) checks the list against the
# compiler, on every name those headers say.
set -e
cd "$(dirname "$0")/.."
CC=${CC:-cc}
FLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -fopenmp $(pkg-config --cflags openblas) -Iruntime"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <string.h>\n#include "rt_real.h"\n' > "$tmp/probe.c"

# Macros, and the headers read.
$CC $FLAGS -E -dM "$tmp/probe.c" | awk '$1 == "#define" { n = $2; sub(/\(.*/, "", n); print n }' \
    > "$tmp/names"
$CC $FLAGS -E "$tmp/probe.c" | awk '/^# [0-9]+ "\// { f = $3; gsub(/"/, "", f); sub(/.*\//, "", f);
    sub(/\.h$/, "", f); print f }' >> "$tmp/names"

# Declarations: each identifier of the preprocessed headers declared again
# as the generated C declares its arrays, after them; those the compiler
# refuses are taken. (A name
# that is only a parameter or a member is refused by nothing.)
$CC $FLAGS -E "$tmp/probe.c" | grep -v '^#' | grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b' | sort -u |
    grep -vxE 'auto|break|case|char|const|continue|default|do|double|else|enum|extern|float|for|goto|if|inline|int|long|register|restrict|return|short|signed|sizeof|static|struct|switch|typedef|union|unsigned|void|volatile|while|_[A-Za-z_].*' \
    > "$tmp/candidates"
{ cat "$tmp/probe.c"; sed 's/.*/static char *const &= 0;/' "$tmp/candidates"; } > "$tmp/declare.c"
skip=$(wc -l < "$tmp/probe.c")
$CC $FLAGS -fmax-errors=0 -c "$tmp/declare.c" -o /dev/null 2>&1 |
    sed -n "s|^$tmp/declare.c:\([0-9]*\):[0-9]*: error:.*|\1|p" | sort -un |
    while read -r line; do sed -n "$((line - skip))p" "$tmp/candidates"; done >> "$tmp/names"

{
    echo "/* Made by scripts/c_names.sh: names the generated C's headers take. */"
    grep -vE '^_' "$tmp/names" | LC_ALL=C sort -u | sed 's/.*/"&",/'
} > compiler/c_names.inc
echo "compiler/c_names.inc: $(($(wc -l < compiler/c_names.inc) - 1)) names"
