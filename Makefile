# gradc: `make` builds the compiler, the runtime and every model's trainer
# and gradient check; `make demo` trains the seed network; `make test` runs
# every suite, then again under AddressSanitizer and UBSan. Missing Debian
# packages are installed first (as root) or named (otherwise).

BUILD   ?= build
SAN     ?=
CC      ?= cc
OPT     ?= -O2
# OpenMP splits the generated code's large loops across --threads threads.
OPENMP  ?= -fopenmp
# The float model's loops vectorize where gcc's cost model alone would not
# (gradc build says the same); clang, for the fuzzers, has no such flag.
F32_FLAGS ?= -fvect-cost-model=dynamic
CFLAGS  := -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -fno-math-errno -fno-trapping-math $(OPENMP) $(SAN)
LDFLAGS := $(OPENMP) $(SAN)
# Evaluated when used, so after the packages are installed.
LUA_CFLAGS  = $(shell pkg-config --cflags lua5.4)
LUA_LIBS    = $(shell pkg-config --libs lua5.4)
BLAS_CFLAGS = $(shell pkg-config --cflags openblas)
# What a program linking the runtime needs: OpenBLAS, and zlib for .gz data.
RT_LIBS     = $(shell pkg-config --libs openblas zlib)
CHECK_FLAGS = $(shell pkg-config --cflags --libs check)
# A build line says what it makes, `  CC      build/obj/ir.o`; make V=1 shows
# the whole command instead (the kernel's and automake's silent rules).
V ?= 0
ifeq ($(V),1)
quietly =
Q =
else
quietly = @printf '  %-7s %s\n' '$(1)' '$(2)';
Q = @
endif

MODELS   := $(basename $(notdir $(wildcard models/*.lua)))
COMPILER := $(filter-out compiler/main.c,$(wildcard compiler/*.c)) $(wildcard compiler/ops/*.c)
# mpi.c is built apart, with Open MPI (libgradc_mpi.a).
RUNTIME  := $(filter-out runtime/mpi.c,$(wildcard runtime/*.c))
PROGRAMS := $(foreach m,$(MODELS),$(BUILD)/$(m)_train $(BUILD)/$(m)_gradcheck $(BUILD)/$(m)_predict)
SUITES   := runtime numerics data checkpoint readers compiler ops models optim cli mpi
OPTIMS   := sgd momentum nesterov adam adamw rmsprop

.PHONY: all deps test-deps mpi-deps demo plot zoo test suite-programs check-suites generate golden pictures install clean
.SUFFIXES:

all: $(BUILD)/gradc $(BUILD)/libgradc_rt.a $(PROGRAMS)

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh test

$(BUILD)/.dir:
	@mkdir -p $(BUILD)/obj && touch $@

# ---- the compiler ----
# gradc build links programs against the runtime, which needs these.
BUILD_DEFS = -DGRADC_RT_CFLAGS='"$(BLAS_CFLAGS) $(SAN)"' -DGRADC_RT_LIBS='"$(RT_LIBS)"'

$(BUILD)/obj/%.o: compiler/%.c compiler/gradc.h compiler/front.h compiler/emit.h compiler/ops.def compiler/c_names.inc | deps $(BUILD)/.dir
	$(call quietly,CC,$@)$(CC) $(CFLAGS) $(LUA_CFLAGS) $(BUILD_DEFS) -c $< -o $@
$(BUILD)/obj/ops/%.o: compiler/ops/%.c compiler/ops/ops.h compiler/gradc.h compiler/ops.def | deps $(BUILD)/.dir
	@mkdir -p $(@D)
	$(call quietly,CC,$@)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libgradc.a: $(COMPILER:compiler/%.c=$(BUILD)/obj/%.o)
	$(call quietly,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/gradc: $(BUILD)/obj/main.o $(BUILD)/libgradc.a
	$(call quietly,LD,$@)$(CC) $(LDFLAGS) $^ $(LUA_LIBS) -lm -o $@

# ---- the runtime ----
$(BUILD)/obj/rt_%.o: runtime/%.c $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$(call quietly,CC,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -c $< -o $@

# The one file whose sums may fuse a multiply and an add: runtime/gemm.c says why.
$(BUILD)/obj/rt_gemm.o: CFLAGS += -ffp-contract=fast
$(BUILD)/libgradc_rt.a: $(RUNTIME:runtime/%.c=$(BUILD)/obj/rt_%.o)
	$(call quietly,AR,$@)rm -f $@ && ar rcs $@ $^

# The trainer on MPI's processes, for gradc build --mpi: Open MPI's headers
# and packages, wanted only here.
MPI_CFLAGS = $(shell pkg-config --cflags ompi-c)
mpi-deps:
	@scripts/deps.sh mpi
$(BUILD)/obj/rt_mpi.o: runtime/mpi.c $(wildcard runtime/*.h) | mpi-deps $(BUILD)/.dir
	$(call quietly,CC,$@)$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@
$(BUILD)/libgradc_mpi.a: $(BUILD)/obj/rt_mpi.o
	$(call quietly,AR,$@)rm -f $@ && ar rcs $@ $^

# ---- every model: the committed generated/ C, float trainer, double check ----
# A model with a Hessian-vector product twin (newton_cg's) links its
# NAME_hvp.c beside NAME.c.
hvp_obj = $(if $(wildcard generated/$(1)/$(1)_hvp.c),$(BUILD)/obj/$(1)_hvp_$(2).o)
define model_rules
$(BUILD)/$(1)_train: generated/$(1)/$(1)_train.c $(BUILD)/obj/$(1)_f32.o $(call hvp_obj,$(1),f32) $(BUILD)/libgradc_rt.a
	$$(call quietly,LD,$$@)$$(CC) $$(CFLAGS) -Iruntime -Igenerated/$(1) $$^ $$(LDFLAGS) $$(RT_LIBS) -lm -o $$@
$(BUILD)/$(1)_gradcheck: generated/$(1)/$(1)_gradcheck.c $(BUILD)/obj/$(1)_f64.o $(call hvp_obj,$(1),f64) $(BUILD)/libgradc_rt.a
	$$(call quietly,LD,$$@)$$(CC) $$(CFLAGS) -DREAL_DOUBLE -Iruntime -Igenerated/$(1) $$^ $$(LDFLAGS) $$(RT_LIBS) -lm -o $$@
$(BUILD)/$(1)_predict: generated/$(1)/$(1)_predict.c generated/$(1)/$(1)_infer.c $(BUILD)/libgradc_rt.a
	$$(call quietly,LD,$$@)$$(CC) $$(CFLAGS) $$(BLAS_CFLAGS) -Iruntime -Igenerated/$(1) $$^ $$(LDFLAGS) $$(RT_LIBS) -lm -o $$@
$(BUILD)/obj/$(1)_infer_f64.o: generated/$(1)/$(1)_infer.c generated/$(1)/$(1).h $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$$(call quietly,CC,$$@)$$(CC) $$(CFLAGS) $$(BLAS_CFLAGS) -Iruntime -Igenerated/$(1) -DREAL_DOUBLE -c $$< -o $$@
$(BUILD)/obj/$(1)_f32.o: generated/$(1)/$(1).c generated/$(1)/$(1).h $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$$(call quietly,CC,$$@)$$(CC) $$(CFLAGS) $$(F32_FLAGS) $$(BLAS_CFLAGS) -Iruntime -c $$< -o $$@
$(BUILD)/obj/$(1)_f64.o: generated/$(1)/$(1).c generated/$(1)/$(1).h $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$$(call quietly,CC,$$@)$$(CC) $$(CFLAGS) $$(BLAS_CFLAGS) -Iruntime -DREAL_DOUBLE -c $$< -o $$@
$(BUILD)/obj/$(1)_hvp_f32.o: generated/$(1)/$(1)_hvp.c generated/$(1)/$(1).h $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$$(call quietly,CC,$$@)$$(CC) $$(CFLAGS) $$(F32_FLAGS) $$(BLAS_CFLAGS) -Iruntime -c $$< -o $$@
$(BUILD)/obj/$(1)_hvp_f64.o: generated/$(1)/$(1)_hvp.c generated/$(1)/$(1).h $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$$(call quietly,CC,$$@)$$(CC) $$(CFLAGS) $$(BLAS_CFLAGS) -Iruntime -DREAL_DOUBLE -c $$< -o $$@
endef
$(foreach m,$(MODELS),$(eval $(call model_rules,$(m))))

# Regenerates generated/ from models/ (and tune/, what `gradc tune` measured
# for each), each model at its test config if it has one (a big model's
# small size, docs/cli.md); a test fails when this would change it.
generate: $(BUILD)/gradc
	@for m in $(MODELS); do $(BUILD)/gradc compile models/$$m.lua --test-config -o generated/$$m \
	    $$(test -f tune/$$m.tune && echo --tune tune/$$m.tune) || exit 1; done

# The passes' golden files: tests/golden/NAME.PASS is what `gradc print
# --after PASS` says of tests/golden/NAME.lua; a test fails when a pass
# changes it, and this writes them again (then read the diff).
PASSES = load batch grad simplify dce remat fuse plan bucket
golden: $(BUILD)/gradc
	@for m in tests/golden/*.lua; do for p in $(PASSES); do \
	    $(BUILD)/gradc print $$m --after $$p > $${m%.lua}.$$p || exit 1; done; done
	@for m in norm_wx seed_mlp; do \
	    $(BUILD)/gradc derive models/$$m.lua > tests/golden/$$m.derive && \
	    $(BUILD)/gradc derive models/$$m.lua --latex > tests/golden/$$m.derive-latex || exit 1; done

# The README's pictures: the seed network drawn from `gradc graph`, and the
# digit classifier's training curve drawn from its --log.
pictures: $(BUILD)/gradc $(BUILD)/digits_train
	@scripts/deps.sh pictures
	$(BUILD)/gradc graph models/seed_mlp.lua | dot -Tsvg -o docs/seed_mlp.svg
	$(BUILD)/gradc graph models/seed_mlp.lua --backward | dot -Tsvg -o docs/seed_mlp_backward.svg
	OPENBLAS_NUM_THREADS=1 GRADC_NO_PROGRESS=1 $(BUILD)/digits_train --data x=data/digits.csv.gz \
	    --data labels=data/digits.csv.gz --val-split 0.2 --epochs 40 --log $(BUILD)/digits_log.csv >/dev/null
	scripts/plot.sh $(BUILD)/digits_log.csv docs/digits_training.png

# ---- demo: the notes' seed network, then a digit classifier on real data ----
# 1.44 is the least the digits' loss can be: the entropy of its smoothed
# targets, 0.64 on the label and 0.04 on each other digit (models/digits.lua).
DEMO := $(BUILD)/demo
demo: $(BUILD)/gradc $(BUILD)/libgradc_rt.a
	@scripts/deps.sh demo
	@echo "== 1. the lecture notes' seed network (models/seed_mlp.lua): compile it to C, build, train"
	$(BUILD)/gradc build models/seed_mlp.lua -o $(DEMO)
	OPENBLAS_NUM_THREADS=1 $(DEMO)/seed_mlp_train --steps 200 --print-every 40
	@echo
	@echo "== 2. a digit classifier (models/digits.lua) on the UCI digits that ship in data/:"
	@echo "==    it trains on rows 1-1437 and is scored on rows 1438-1797, 360 held-out rows"
	@echo "==    it never trains on. Its loss includes label smoothing (0.4), so it cannot"
	@echo "==    fall below 1.44, let alone to 0: the held-out accuracy is the figure to watch."
	$(BUILD)/gradc build models/digits.lua -o $(DEMO)
	@rm -f $(DEMO)/digits.ckpt
	OPENBLAS_NUM_THREADS=1 $(DEMO)/digits_train --data x=data/digits.csv.gz \
	    --data labels=data/digits.csv.gz --val-split 0.2 --epochs 40 --eval-every 220 --print-every 220 \
	    --checkpoint $(DEMO)/digits.ckpt --log $(DEMO)/digits_log.csv
	@scripts/plot.sh $(DEMO)/digits_log.csv $(DEMO)/digits.png
	@echo
	@awk -F, 'END { printf "accuracy %.1f%% on the 360 held-out digits\n", 100 * $$6 }' $(DEMO)/digits_log.csv
	@echo "checkpoint: $(DEMO)/digits.ckpt (resume with $(DEMO)/digits_train ... --resume $(DEMO)/digits.ckpt)"
	@echo "loss and accuracy curve: $(DEMO)/digits.png; the C: $(DEMO)/digits.c"

# Trains every model of the zoo on its real data and prints each figure
# next to its target (about 35 minutes; ZOO_MINUTES=1 for a quick look).
zoo: $(BUILD)/gradc $(BUILD)/libgradc_rt.a
	@BUILD=$(BUILD) scripts/zoo.sh

# A training log (--log FILE.csv) as a PNG curve: make plot LOG=run.csv [PNG=run.png]
plot:
	@test -n "$(LOG)" || { echo "make plot LOG=FILE.csv [PNG=FILE.png]: which log?" >&2; exit 2; }
	@scripts/deps.sh demo
	scripts/plot.sh $(LOG) $(or $(PNG),$(basename $(LOG)).png)

# ---- tests ----
# Each suite links what it tests; the model suite links every model twice
# (float and double).
TEST_DEFS = -DBUILD_DIR='"$(BUILD)"' -DGRADC_BIN='"$(BUILD)/gradc"' -DRT_LIB='"$(BUILD)/libgradc_rt.a"' \
            -DTEST_CC='"$(CC) $(CFLAGS) $(BLAS_CFLAGS)"' -DTEST_LIBS='"$(LDFLAGS) $(RT_LIBS) -lm"' \
            -DTEST_SAN='"$(SAN)"' \
            -DPLAIN_CC='"$(CC) -std=c11 -Wall -Wextra -Werror $(BLAS_CFLAGS)"'

# The runtime's suites, split by what they test, share tests/runtime_models.h.
RT_SUITES := runtime numerics data checkpoint
$(RT_SUITES:%=$(BUILD)/test_%): $(BUILD)/test_%: tests/test_%.c tests/runtime_models.h $(BUILD)/libgradc_rt.a | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime $< $(BUILD)/libgradc_rt.a $(LDFLAGS) $(CHECK_FLAGS) $(RT_LIBS) -lm -o $@
$(BUILD)/test_readers: tests/test_readers.c $(BUILD)/libgradc_rt.a | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime $< $(BUILD)/libgradc_rt.a $(LDFLAGS) $(CHECK_FLAGS) $(RT_LIBS) -lm -o $@
$(BUILD)/test_compiler: tests/test_compiler.c $(BUILD)/libgradc.a | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(LUA_CFLAGS) -Icompiler $< $(BUILD)/libgradc.a $(LDFLAGS) $(CHECK_FLAGS) $(LUA_LIBS) -lm -o $@
$(BUILD)/test_ops: tests/test_ops.c tests/test_util.h $(BUILD)/gradc $(BUILD)/libgradc_rt.a | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(TEST_DEFS) -Icompiler $< $(LDFLAGS) $(CHECK_FLAGS) -lm -o $@
# gpt2 against PyTorch builds models/gpt2.lua at a size of its own, with gradc.
$(BUILD)/test_models: tests/test_models.c tests/optim_reference.h $(MODELS:%=$(BUILD)/obj/%_f32.o) $(MODELS:%=$(BUILD)/obj/%_f64.o) $(MODELS:%=$(BUILD)/obj/%_infer_f64.o) $(foreach m,$(MODELS),$(call hvp_obj,$(m),f32) $(call hvp_obj,$(m),f64)) $(BUILD)/bn/batch_norm_model.o $(BUILD)/bn/batch_norm_model_infer.o $(BUILD)/bn/attention_model.o $(BUILD)/libgradc_rt.a | test-deps $(BUILD)/gradc
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -DGRADC_BIN='"$(BUILD)/gradc"' -Iruntime $(addprefix -Igenerated/,$(MODELS)) -I$(BUILD)/bn $(filter-out %.a %.h,$^) $(BUILD)/libgradc_rt.a $(LDFLAGS) $(CHECK_FLAGS) $(RT_LIBS) -lm -o $@
# The batch norm and attention tests' models, compiled in double.
$(BUILD)/bn/%.c $(BUILD)/bn/%_infer.c: tests/%.lua $(BUILD)/gradc
	$(call quietly,GRADC,$@)$(BUILD)/gradc compile $< -o $(BUILD)/bn
$(BUILD)/bn/%.o: $(BUILD)/bn/%.c
	$(call quietly,CC,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime -DREAL_DOUBLE -c $< -o $@
# One copy of tests/optim_model.lua per optimizer, compiled in double.
$(BUILD)/optim/optim_%.c: tests/optim_model.lua $(BUILD)/gradc
	@mkdir -p $(BUILD)/optim
	$(Q)cp tests/optim_model.lua $(BUILD)/optim/optim_$*.lua
	$(call quietly,GRADC,$@)$(BUILD)/gradc compile $(BUILD)/optim/optim_$*.lua --optimizer $* -o $(BUILD)/optim
$(BUILD)/optim/optim_%.o: $(BUILD)/optim/optim_%.c
	$(call quietly,CC,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime -DREAL_DOUBLE -c $< -o $@
$(BUILD)/test_optim: tests/test_optim.c tests/optim_reference.h $(OPTIMS:%=$(BUILD)/optim/optim_%.o) $(BUILD)/libgradc_rt.a | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime -I$(BUILD)/optim $(filter-out %.h,$^) $(LDFLAGS) $(CHECK_FLAGS) $(RT_LIBS) -lm -o $@
$(BUILD)/test_cli: tests/test_cli.c tests/test_util.h $(BUILD)/gradc $(PROGRAMS) | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(TEST_DEFS) $< $(LDFLAGS) $(CHECK_FLAGS) -lm -o $@

# The data-parallel trainers, built by gradc build --mpi and run by mpirun.
$(BUILD)/test_mpi: tests/test_mpi.c tests/test_util.h $(BUILD)/gradc $(BUILD)/libgradc_rt.a $(BUILD)/libgradc_mpi.a | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(TEST_DEFS) $< $(LDFLAGS) $(CHECK_FLAGS) -lm -o $@

# The suites run two at a time (scripts/run-tests.sh), the longest first.
SLOW_SUITES := safety ops cli models mpi numerics
suite-programs: all $(SUITES:%=$(BUILD)/test_%)
check-suites: suite-programs
	@OPENBLAS_NUM_THREADS=1 BUILD=$(BUILD) scripts/run-tests.sh \
	    $(foreach s,$(SLOW_SUITES),$(filter $(s),$(SUITES))) $(filter-out $(SLOW_SUITES),$(SUITES))

# Each pass builds on every core first, then runs the suites.
JOBS ?= $(shell nproc)
SANITIZED := BUILD=build/san OPT=-O1 \
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
test: test-deps
	@$(MAKE) --no-print-directory -j$(JOBS) suite-programs
	@$(MAKE) --no-print-directory check-suites
	@echo "== again under AddressSanitizer and UndefinedBehaviorSanitizer"
	@$(MAKE) --no-print-directory -j$(JOBS) suite-programs $(SANITIZED)
	@$(MAKE) --no-print-directory check-suites $(SANITIZED)

# ---- install: relocatable ----
# gradc finds its runtime beside itself, and gradc.pc takes its prefix from
# where it lies (scripts/gradc.pc.in), so an installed tree may be moved.
PREFIX ?= /usr/local
HEADERS := runtime/rt.h runtime/rt_model.h runtime/rt_real.h runtime/rt_read.h
install: $(BUILD)/gradc $(BUILD)/libgradc_rt.a
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include/gradc $(DESTDIR)$(PREFIX)/share/gradc/lib
	install -m 755 $(BUILD)/gradc $(DESTDIR)$(PREFIX)/bin/gradc
	install -m 644 $(BUILD)/libgradc_rt.a $(DESTDIR)$(PREFIX)/lib/libgradc_rt.a
	test ! -f $(BUILD)/libgradc_mpi.a || install -m 644 $(BUILD)/libgradc_mpi.a $(DESTDIR)$(PREFIX)/lib/libgradc_mpi.a
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/gradc/
	install -m 644 models/lib/*.lua $(DESTDIR)$(PREFIX)/share/gradc/lib/
	sed -e 's|@VERSION@|$(shell $(BUILD)/gradc --version | cut -d" " -f2)|' \
	    scripts/gradc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradc.pc

clean:
	rm -rf build

# ---- safety: hostile data and checkpoints, crash safety, valgrind ----
# test_safety runs real trainers on every file of tests/hostile/data (each
# with its .expect; tests/hostile/make_cases.py made them), kills one
# mid-save again and again, and in the plain pass only runs a few under
# valgrind, which cannot run ASan code: SAN leaves SAFETY_VALGRIND out.
SUITES += safety
SAFETY_PROGS = $(addprefix $(BUILD)/,iris_train iris_gradcheck iris_predict char_rnn_train)
$(BUILD)/test_safety: tests/test_safety.c tests/test_util.h | test-deps $(BUILD)/gradc $(SAFETY_PROGS)
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(TEST_DEFS) $(if $(SAN),,-DSAFETY_VALGRIND) $< $(LDFLAGS) $(CHECK_FLAGS) -lm -o $@
# suite-programs read SUITES into its prerequisites before this block.
suite-programs: $(BUILD)/test_safety

# ---- fuzzing: `make fuzz` (libFuzzer), and the replay `make test` runs ----
# Each fuzz/TARGET.c defines LLVMFuzzerTestOneInput. `make fuzz` links it
# with libFuzzer (clang) and runs it FUZZ_SECONDS on one core, from its
# seeds in fuzz/corpus/TARGET, or the project's models for the model target
# (scripts/fuzz.sh). `make test` links the same
# file with fuzz/replay.c (any compiler) instead, and the suite `fuzz`
# replays the seeds and tests/fuzz/TARGET, what the fuzzer once found.
FUZZ_TARGETS := model program npy csv idx tokens tokenizer checkpoint
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build/fuzz
SUITES       += fuzz
# SUITES was read into suite-programs' prerequisites before this line.
suite-programs: $(BUILD)/test_fuzz

# Every target links the same: the compiler, the runtime, and the iris
# model (float, double and the float inference twin) the readers load into.
FUZZ_LINK  = $(BUILD)/obj/iris_f32.o $(BUILD)/obj/iris_f64.o $(BUILD)/obj/iris_infer_f32.o \
             $(BUILD)/libgradc.a $(BUILD)/libgradc_rt.a
FUZZ_FLAGS = $(CFLAGS) $(LUA_CFLAGS) $(BLAS_CFLAGS) -Icompiler -Iruntime -Igenerated/iris
FUZZ_LIBS  = $(LDFLAGS) $(LUA_LIBS) $(RT_LIBS) -lm

$(BUILD)/obj/iris_infer_f32.o: generated/iris/iris_infer.c generated/iris/iris.h $(wildcard runtime/*.h) | deps $(BUILD)/.dir
	$(call quietly,CC,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime -Igenerated/iris -c $< -o $@
$(BUILD)/replay_%: fuzz/%.c fuzz/replay.c $(wildcard fuzz/*.h) $(FUZZ_LINK)
	$(call quietly,LD,$@)$(CC) $(FUZZ_FLAGS) $< fuzz/replay.c $(FUZZ_LINK) $(FUZZ_LIBS) -o $@
$(BUILD)/fuzz_%: fuzz/%.c $(wildcard fuzz/*.h) $(FUZZ_LINK)
	$(call quietly,LD,$@)$(CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_LINK) $(FUZZ_LIBS) -o $@
$(BUILD)/test_fuzz: tests/test_fuzz.c $(FUZZ_TARGETS:%=$(BUILD)/replay_%) | test-deps
	$(call quietly,LD,$@)$(CC) $(CFLAGS) -DBUILD_DIR='"$(BUILD)"' -DFUZZ_TARGETS='"$(FUZZ_TARGETS)"' $< $(LDFLAGS) $(CHECK_FLAGS) -o $@

# The fuzzers are built by clang, with ASan and UBSan, in a folder of their
# own, without OpenMP (clang's needs a package of its own).
FUZZ_SAN = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
.PHONY: fuzz
fuzz:
	@scripts/deps.sh fuzz $(FUZZ_CC)
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT=-O1 SAN="$(FUZZ_SAN)" OPENMP= F32_FLAGS= \
	    $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
	@BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

# ---- bench: `make bench`, gradc against NumPy, PyTorch and the GEMM-only bound ----
# bench/bench.py builds the benchmark's networks with gradc into
# $(BENCH_BUILD), runs each beside NumPy, PyTorch and the GEMM-only bound,
# round by round, and writes bench/results.md (under 10 minutes on 2 cores);
# then bench/bench_mpi.py trains two of them on 2 MPI processes against 1
# process of 1 and 2 threads, and writes bench/results-mpi.md (a minute).
# BENCH_FLAGS passes flags on: make bench BENCH_FLAGS="--rounds 3 --nets seed_mlp,gpt"
# (--quick: one short round). Not part of `make test`.
BENCH_BUILD ?= $(BUILD)/bench
BENCH_FLAGS ?=
BENCH_TOOLS := $(BENCH_BUILD)/spawn $(BENCH_BUILD)/gemm_bound $(BENCH_BUILD)/gemm_trace.so $(BENCH_BUILD)/pingpong
.PHONY: bench
bench: $(BUILD)/gradc $(BUILD)/libgradc_rt.a $(BUILD)/libgradc_mpi.a $(BENCH_TOOLS)
	@scripts/deps.sh bench
	@BUILD=$(BUILD) BENCH_BUILD=$(BENCH_BUILD) /usr/bin/python3 bench/bench.py $(BENCH_FLAGS)
	@BUILD=$(BUILD) BENCH_BUILD=$(BENCH_BUILD) /usr/bin/python3 bench/bench_mpi.py
# bench-gpt2: GPT-2 124M (models/gpt2.lua -D context=64 -D batch=4, as llm.c's
# CPU trainer runs it) against its GEMM-only bound and PyTorch autograd, at
# 1 and 2 threads, with its compile and build times, memory and a sample;
# writes bench/results-gpt2.md (about 10 minutes on 2 cores, 3 GB of memory
# and 3 GB of disk in $(BENCH_BUILD)). Apart from `make bench`, which it
# would more than double. BENCH_GPT2_FLAGS="--rounds 1" narrows it.
BENCH_GPT2_FLAGS ?=
.PHONY: bench-gpt2
bench-gpt2: $(BUILD)/gradc $(BUILD)/libgradc_rt.a $(BENCH_TOOLS)
	@scripts/deps.sh bench
	@BUILD=$(BUILD) BENCH_BUILD=$(BENCH_BUILD) /usr/bin/python3 bench/bench_gpt2.py $(BENCH_GPT2_FLAGS)
# bench-hvp: the MNIST MLP's Hessian-vector product (gradc build --hvp)
# against its gradient and step, its Jacobian-vector product (--jvp)
# against its forward pass, and both against PyTorch's, on one thread;
# writes bench/results-hvp.md (a minute).
.PHONY: bench-hvp
bench-hvp: $(BUILD)/gradc $(BUILD)/libgradc_rt.a
	@scripts/deps.sh bench
	@BUILD=$(BUILD) BENCH_BUILD=$(BENCH_BUILD) /usr/bin/python3 bench/bench_hvp.py
$(BENCH_BUILD)/spawn: bench/spawn.c | deps
	@mkdir -p $(@D)
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $< $(LDFLAGS) -o $@
$(BENCH_BUILD)/pingpong: bench/pingpong.c | deps
	@mkdir -p $(@D)
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $< $(LDFLAGS) -pthread -o $@
$(BENCH_BUILD)/gemm_bound: bench/gemm_bound.c | deps
	@mkdir -p $(@D)
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) $< $(LDFLAGS) $(RT_LIBS) -o $@
$(BENCH_BUILD)/gemm_trace.so: bench/gemm_trace.c | deps
	@mkdir -p $(@D)
	$(call quietly,LD,$@)$(CC) $(CFLAGS) $(BLAS_CFLAGS) -fPIC -shared $< $(LDFLAGS) -ldl -o $@
