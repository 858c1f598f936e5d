#!/bin/sh
# Makes sure the Debian packages gradc needs are here: installs them with
# apt-get when run as root, otherwise names them in one message and fails.
# `deps.sh test` also wants what the tests use (python3-numpy, valgrind,
# python3-torch for GPT-2's gradients against PyTorch, Open MPI for the
# data-parallel trainers), `deps.sh mpi` what gradc build --mpi builds
# with (openmpi-bin, libopenmpi-dev),
# `deps.sh demo` what plots a training log (gnuplot-nox), `deps.sh pictures`
# what draws the README's pictures (graphviz, gnuplot-nox), `deps.sh
# fuzz` what `make fuzz` builds with (clang, libclang-rt-dev), and `deps.sh
# bench` what `make bench` measures gradc against (python3-numpy,
# python3-torch).
missing=""
have() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
# The generated code's large loops use OpenMP: Debian's gcc brings libgomp.
if command -v cc >/dev/null 2>&1 &&
    ! echo 'int main(void) { return 0; }' | cc -fopenmp -x c - -o /dev/null >/dev/null 2>&1; then
    missing="$missing gcc"
fi
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
have lua5.4 || missing="$missing liblua5.4-dev"
have openblas || missing="$missing libopenblas-dev"
have check || missing="$missing check"
have zlib || missing="$missing zlib1g-dev"
if [ "$1" = test ]; then
    /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || missing="$missing python3-numpy"
    # Found, not imported: importing torch takes a second, every make.
    /usr/bin/python3 -c 'import importlib.util as u, sys; sys.exit(not u.find_spec("torch"))' \
        >/dev/null 2>&1 || missing="$missing python3-torch"
    command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
fi
if [ "$1" = mpi ] || [ "$1" = test ]; then
    command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
    have ompi-c || missing="$missing libopenmpi-dev"
fi
if [ "$1" = bench ]; then
    /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || missing="$missing python3-numpy"
    /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || missing="$missing python3-torch"
fi
if [ "$1" = pictures ]; then
    command -v dot >/dev/null 2>&1 || missing="$missing graphviz"
fi
if [ "$1" = fuzz ]; then
    # `deps.sh fuzz [CC]`: a clang (CC, clang by default) that can link
    # libFuzzer, which Debian ships apart from clang itself.
    fuzz_cc=${2:-clang}
    if ! command -v "$fuzz_cc" >/dev/null 2>&1; then
        missing="$missing clang libclang-rt-dev"
    elif ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return !d + !n; }' |
        "$fuzz_cc" -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1; then
        missing="$missing libclang-rt-dev"
    fi
fi
if [ "$1" = pictures ] || [ "$1" = demo ]; then
    command -v gnuplot >/dev/null 2>&1 || missing="$missing gnuplot-nox"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "gradc: installing Debian packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >&2 && exit 0
    echo "gradc: apt-get could not install:$missing" >&2
    exit 1
fi
echo "gradc: missing Debian packages:$missing; install them with: sudo apt-get install$missing" >&2
exit 1
