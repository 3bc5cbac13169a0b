# outboard build.
#
# Sources are found by walking src/, so a new file needs no edit here. Naming carries the rules:
#   src/cli/*.c            -> build/outboard (the only code with main())
#   src/**/*_avx2.c        -> compiled with AVX2/FMA/F16C flags, x86-64 only
#   src/**/*_avx512.c      -> compiled with AVX-512 (F/BW/VL/DQ/VNNI/BF16) flags, x86-64 only
#   src/**/*_avxvnni.c     -> compiled twice, x86-64 only: with AVX2 + AVX-VNNI flags (VEX
#                             VPDPBUSD), and as *_avxvnni_evex.o with AVX2 + AVX512-VNNI/VL and
#                             OB_VNNI_EVEX (the EVEX twin of the same code under other names,
#                             which CPUs with AVX-512 VNNI run and so test; repack_avxvnni.h)
#   src/**/*_neon.c        -> compiled with NEON dot-product flags, aarch64 only
#   src/**/*_i8mm_neon.c   -> the same plus the int8 matrix-multiply extension (I8MM)
#   src/cuda/*.cu          -> compiled by nvcc when it is on PATH (CUDA=0 forces it off)
#   src/vulkan/*.c         -> compiled when pkg-config finds `vulkan` and glslc is on PATH
#                             (VULKAN=0 forces it off; src/vulkan/stub.c stands in then)
#   src/vulkan/shaders/*.comp -> SPIR-V by glslc, embedded in the library (build/spv/)
#   everything else        -> build/liboutboard.a
#   src/serve/page/chat.html -> embedded in the library (build/gen/serve_page.c), served at /
#   tests/**/*_test.c      -> one test binary each, run by `make test`
#   tests/**/*_tool.c      -> helper programs for the Python tests, built by `make test`
#   bench/*.c              -> micro-benchmarks, built by `make bench`
#   tests/**/*_fuzz.c      -> libFuzzer targets, built by `make fuzz` (clang)
# Runtime dispatch chooses among the ISA files, so the library runs on any CPU of its arch.

CC      ?= cc
BUILD   ?= build
SHARED  ?= $(abspath ../shared)
ARCH    ?= $(shell $(CC) -dumpmachine | cut -d- -f1)
UNAME   := $(shell uname -s)
# The checkout's own virtual environment (scripts/setup.sh) when there is one.
PYTHON  ?= $(if $(wildcard .venv/bin/python),$(abspath .venv/bin/python),python3)

# The default model (scripts/fetch-default-model.sh puts it there); tests skip what needs it
# when it is absent.
DEFAULT_MODEL ?= $(abspath models/gemma-3-270m-q4_k_m.gguf)

# Platform libraries, found with pkg-config (Debian -dev packages / Homebrew formulae).
PKGS    := jansson libpcre2-8 libutf8proc libmicrohttpd libcurl libcrypto
# Homebrew keeps curl and openssl@3 out of the default pkg-config path (keg-only formulae).
PKG_CONFIG := pkg-config
ifeq ($(UNAME),Darwin)
BREW_PREFIX := $(shell brew --prefix 2>/dev/null)
ifneq ($(BREW_PREFIX),)
PKG_CONFIG := env PKG_CONFIG_PATH="$(BREW_PREFIX)/opt/curl/lib/pkgconfig:$(BREW_PREFIX)/opt/openssl@3/lib/pkgconfig:$$PKG_CONFIG_PATH" pkg-config
endif
endif
PKG_CFLAGS := $(if $(PKGS),$(shell $(PKG_CONFIG) --cflags $(PKGS)))
PKG_LIBS   := $(if $(PKGS),$(shell $(PKG_CONFIG) --libs $(PKGS)))

OPT     ?= -O2
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS += -Iinclude -Isrc $(PKG_CFLAGS)
ifeq ($(UNAME),Darwin)
CPPFLAGS += -D_DARWIN_C_SOURCE
else
CPPFLAGS += -D_GNU_SOURCE
endif
# EXTRA_CFLAGS: additions from the command line (CFLAGS itself is assembled here).
# PLAIN_CFLAGS: without the sanitizers and EXTRA_CFLAGS (see ISA_CFLAGS below).
PLAIN_CFLAGS := -std=c11 $(OPT) -g $(WARN) -pthread -fno-strict-aliasing
CFLAGS  := $(PLAIN_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lm -pthread

# `make SAN=1` (used by `make check`): AddressSanitizer + UndefinedBehaviorSanitizer.
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# ISA_CFLAGS: the x86 kernel files' flags. The fuzz build leaves its sanitizers and coverage
# out of them (ISA_PLAIN=1): clang takes minutes over the repacking kernels' intrinsics with
# ASan on, no fuzzer input reaches them except as weights of an already-checked shape, and
# `make check` runs them under ASan + UBSan.
ISA_CFLAGS := $(if $(filter 1,$(ISA_PLAIN)),$(PLAIN_CFLAGS),$(CFLAGS))

ISA_AVX2   := -mavx2 -mfma -mf16c
ISA_AVXVNNI := $(ISA_AVX2) -mavxvnni
ISA_AVXVNNI_EVEX := $(ISA_AVX2) -mavx512vnni -mavx512vl -DOB_VNNI_EVEX
ISA_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mfma -mf16c
ISA_NEON   := -march=armv8.2-a+dotprod+fp16
ISA_I8MM   := -march=armv8.2-a+dotprod+fp16+i8mm

# LIB_DIRS narrows the library (the NEON cross-build takes only the dependency-free kernels).
LIB_DIRS ?= src
ALL_LIB_SRC := $(shell find $(LIB_DIRS) -name '*.c' -not -path 'src/cli/*' | sort)
ifeq ($(filter x86_64 amd64,$(ARCH)),)
LIB_SRC := $(filter-out %_avx2.c %_avx512.c %_avxvnni.c,$(ALL_LIB_SRC))
else
LIB_SRC := $(filter-out %_neon.c,$(ALL_LIB_SRC))
endif
ifeq ($(filter aarch64 arm64,$(ARCH)),)
LIB_SRC := $(filter-out %_neon.c,$(LIB_SRC))
endif
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(shell find tests -name '*_test.c' | sort)
# tests/**/*_tool.c: helper programs the Python tests drive (built by `make test`, not run).
TOOL_SRC := $(shell find tests -name '*_tool.c' | sort)
FUZZ_SRC := $(shell find tests -name '*_fuzz.c' | sort)

# CUDA: on when nvcc is found, unless CUDA=0. Kernels are compiled for every supported
# generation plus PTX so a newer card JITs them.
NVCC    ?= $(shell command -v nvcc 2>/dev/null)
CUDA    ?= $(if $(NVCC),1,0)
CU_SRC  := $(if $(filter 1,$(CUDA)),$(shell find src/cuda -name '*.cu' 2>/dev/null | sort))
NVCC_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
             -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O2 -std=c++17 $(NVCC_ARCH) -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter -Werror all-warnings -Iinclude -Isrc
# The runtime is linked statically so a CUDA build still starts on a machine without CUDA (it
# then reports "no CUDA device"); cuBLAS is opened with dlopen at run time (src/cuda/device.cu).
# Without nvcc, src/cuda/stub.c supplies the same entry points.
ifneq ($(CU_SRC),)
CPPFLAGS += -DOB_HAVE_CUDA=1
CUDA_HOME ?= $(abspath $(dir $(NVCC))/..)
NVCCFLAGS += -DOB_HAVE_CUDA=1 -I$(CUDA_HOME)/include
LDLIBS  += -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
endif

# Vulkan: on when pkg-config finds the loader and headers and glslc is on PATH, unless
# VULKAN=0. Each shader becomes a C initializer of SPIR-V words (glslc -mfmt=c) and
# build/spv/vulkan_spv.c gathers them into one table (scripts/vulkan-spv-table.sh).
GLSLC   ?= $(shell command -v glslc 2>/dev/null)
VULKAN  ?= $(if $(GLSLC),$(shell pkg-config --exists vulkan 2>/dev/null && echo 1 || echo 0),0)
VK_COMP := $(sort $(wildcard src/vulkan/shaders/*.comp))
VK_NAMES := $(VK_COMP:src/vulkan/shaders/%.comp=%) $(VK_COMP:src/vulkan/shaders/%.comp=%__sg)
VK_INC  := $(VK_NAMES:%=$(BUILD)/spv/%.inc)
ifeq ($(VULKAN),1)
CPPFLAGS += -DOB_HAVE_VULKAN=1 $(shell pkg-config --cflags vulkan)
LDLIBS  += $(shell pkg-config --libs vulkan)
VK_OBJ  := $(BUILD)/obj/spv/vulkan_spv.o
else
LIB_SRC := $(filter-out src/vulkan/%,$(LIB_SRC)) $(filter src/vulkan/stub.c,$(LIB_SRC))
VK_OBJ  :=
endif

# The chat page: edited as HTML, embedded as bytes by scripts/embed-file.sh when the server is
# part of the library.
PAGE_OBJ := $(if $(filter src/serve/%,$(LIB_SRC)),$(BUILD)/obj/gen/serve_page.o)

# every *_avxvnni.c also gives its EVEX twin
EVEX_OBJ := $(patsubst %_avxvnni.c,$(BUILD)/obj/%_avxvnni_evex.o,$(filter %_avxvnni.c,$(LIB_SRC)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(EVEX_OBJ) $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o) $(VK_OBJ) $(PAGE_OBJ)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
TOOL_BIN := $(TOOL_SRC:%.c=$(BUILD)/%)
LIB      := $(BUILD)/liboutboard.a
CLI      := $(BUILD)/outboard

.PHONY: all test test-c check fuzz fuzz-run fuzz-long clean neon-test neon-full-build \
        neon-model-test format bench
all: $(CLI) $(LIB)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(CLI): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ISA_CFLAGS) $(ISA_AVX2) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ISA_CFLAGS) $(ISA_AVX512) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_avxvnni.o: %_avxvnni.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ISA_CFLAGS) $(ISA_AVXVNNI) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_avxvnni_evex.o: %_avxvnni.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ISA_CFLAGS) $(ISA_AVXVNNI_EVEX) -MMD -MP -c $< -o $@

# (make takes the rule with the shorter stem, so *_i8mm_neon.c files get this one)
$(BUILD)/obj/%_i8mm_neon.o: %_i8mm_neon.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(ISA_I8MM) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_neon.o: %_neon.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(ISA_NEON) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# Each shader twice: plain, and with OB_SUBGROUP (reductions by subgroup arithmetic).
GLSLC_FLAGS := --target-env=vulkan1.2 -O -Werror -Isrc/vulkan/shaders
$(BUILD)/spv/%__sg.inc: src/vulkan/shaders/%.comp
	@mkdir -p $(dir $@)
	$(GLSLC) $(GLSLC_FLAGS) -DOB_SUBGROUP=1 -MD -MF $@.d -mfmt=c $< -o $@
$(BUILD)/spv/%.inc: src/vulkan/shaders/%.comp
	@mkdir -p $(dir $@)
	$(GLSLC) $(GLSLC_FLAGS) -MD -MF $@.d -mfmt=c $< -o $@

$(BUILD)/spv/vulkan_spv.c: $(VK_INC) scripts/vulkan-spv-table.sh
	sh scripts/vulkan-spv-table.sh $(VK_NAMES) > $@

$(BUILD)/obj/spv/vulkan_spv.o: $(BUILD)/spv/vulkan_spv.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/serve_page.c: src/serve/page/chat.html scripts/embed-file.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-file.sh serve_page_chat_html $< > $@

$(BUILD)/obj/gen/serve_page.o: $(BUILD)/gen/serve_page.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

# A test may #include the .c it tests to reach its statics; the linker then takes the
# test's copy and never pulls that archive member, so there is no clash. Its dependency file
# (next to it) makes a change to such a .c, which is not in the archive's timestamp, rebuild it.
$(BUILD)/tests/%: tests/%.c $(LIB) tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -MMD -MP -MF $@.d -MT $@ \
	    -o $@ $< $(LIB) $(LDLIBS)

# `make test`: every C test binary, then the Python reference tests (pytest), one summary line.
test: all $(TEST_BIN) $(TOOL_BIN)
	OB_BUILD=$(abspath $(BUILD)) OB_SHARED=$(SHARED) OB_DEFAULT_MODEL=$(DEFAULT_MODEL) $(PYTHON) tests/run_tests.py

# The C tests alone (fast inner loop; also what the NEON cross-build runs under qemu).
test-c: all $(TEST_BIN) $(TOOL_BIN)
	OB_BUILD=$(abspath $(BUILD)) OB_SHARED=$(SHARED) OB_DEFAULT_MODEL=$(DEFAULT_MODEL) $(PYTHON) tests/run_tests.py --c-only

# `make check`: the same suite built with ASan + UBSan in its own build folder.
check:
	$(MAKE) BUILD=build-san SAN=1 OPT=-O1 test

# NEON: cross-build the library and the quant, cpu and cpu_features tests for aarch64 and run
# them under qemu-user, twice:
# as qemu's default CPU ("max": SDOT and I8MM, so the SMMLA kernels run) and as a Cortex-A76
# (SDOT only, so the SDOT kernels run where the SMMLA ones would).
# The test programs are linked statically, so qemu needs no QEMU_LD_PREFIX: with the prefix, a
# machine that also has Debian's arm64 C library (scripts/setup-arm64.sh) can pair the cross
# toolchain's loader with the multiarch libc through the host's ld.so.cache, and threaded
# tests then hang.
NEON_CPU_NO_I8MM ?= cortex-a76
NEON_TESTS = $(filter $(BUILD)/tests/quant/% $(BUILD)/tests/cpu/% \
    $(BUILD)/tests/core/cpu_features_test,$(TEST_BIN))
neon-test:
	$(MAKE) BUILD=build-aarch64-static CC=aarch64-linux-gnu-gcc ARCH=aarch64 CUDA=0 VULKAN=0 \
	    PKGS= LIB_DIRS="src/core src/quant src/cpu src/gguf/qtype.c" neon-tests-only
# The test programs are built without the loop vectorizer: gcc 12 for aarch64 stops with an
# internal error (tree-vect-loop.cc:7457) on the double-precision reductions of the reference
# code in the tests. The library itself keeps its normal flags.
neon-tests-only: $(LIB)
	$(MAKE) BUILD=$(BUILD) CC=$(CC) ARCH=$(ARCH) CUDA=0 VULKAN=0 PKGS= LIB_DIRS="$(LIB_DIRS)" \
	    TEST_CFLAGS=-fno-tree-vectorize LDFLAGS=-static $(NEON_TESTS)
	OB_BUILD=$(abspath $(BUILD)) OB_SHARED=$(SHARED) OB_RUNNER=qemu-aarch64-static \
	    $(PYTHON) tests/run_tests.py --c-only --only quant,cpu,core
	@echo "again as a CPU with SDOT and without I8MM (QEMU_CPU=$(NEON_CPU_NO_I8MM)):"
	OB_BUILD=$(abspath $(BUILD)) OB_SHARED=$(SHARED) OB_RUNNER=qemu-aarch64-static \
	    QEMU_CPU=$(NEON_CPU_NO_I8MM) $(PYTHON) tests/run_tests.py --c-only --only quant,cpu,core

# The whole program for aarch64, linked against the arm64 builds of its libraries (Debian's
# multiarch archive, scripts/setup-arm64.sh), and the engine's logits against llama.cpp run
# through it under qemu-user: as qemu's "max" CPU (the SMMLA kernels), then the synthetic
# models of every type again as a Cortex-A76 (SDOT only).
NEON_FULL_BUILD ?= build-aarch64-model
NEON_MODEL_TESTS ?= tests/model/test_logits.py
neon-full-build:
	bash scripts/setup-arm64.sh
	PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
	    $(MAKE) -s BUILD=$(NEON_FULL_BUILD) CC=aarch64-linux-gnu-gcc ARCH=aarch64 CUDA=0 VULKAN=0 \
	    $(NEON_FULL_BUILD)/outboard
neon-model-test: neon-full-build
	OB_BUILD=$(abspath $(NEON_FULL_BUILD)) OB_SHARED=$(SHARED) OB_RUNNER=qemu-aarch64-static \
	    $(PYTHON) -m pytest -q $(NEON_MODEL_TESTS)
	@echo "again as a CPU with SDOT and without I8MM (QEMU_CPU=$(NEON_CPU_NO_I8MM)):"
	OB_BUILD=$(abspath $(NEON_FULL_BUILD)) OB_SHARED=$(SHARED) OB_RUNNER=qemu-aarch64-static \
	    QEMU_CPU=$(NEON_CPU_NO_I8MM) $(PYTHON) -m pytest -q $(NEON_MODEL_TESTS) \
	    -k test_synth_logits_match

# libFuzzer targets (clang only). FUZZ_SECONDS bounds each target in `make fuzz-run`, which
# runs FUZZ_RUN_JOBS targets at a time (each fuzzer is one process on one core).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_RUN_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) CUDA=0 VULKAN=0 SAN=1 OPT=-O1 ISA_PLAIN=1 \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link" build-fuzz/liboutboard.a $(FUZZ_SRC:tests/%.c=build-fuzz/fuzz/%)
build-fuzz/fuzz/%_fuzz: tests/%_fuzz.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
fuzz-run: fuzz
	$(PYTHON) tests/run_fuzz.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_RUN_JOBS)
# `make fuzz-long`: every target for an hour (FUZZ_LONG_SECONDS), FUZZ_JOBS targets at a time;
# the corpus grows in build-fuzz/corpus/<target> and carries over between runs.
FUZZ_LONG_SECONDS ?= 3600
FUZZ_JOBS ?= 1
fuzz-long: fuzz
	$(PYTHON) tests/run_fuzz.py --seconds $(FUZZ_LONG_SECONDS) --jobs $(FUZZ_JOBS)

# `make bench`: builds bench/*.c into build/bench/ (micro-benchmarks; never run by tests).
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
bench: $(BENCH_BIN)
$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

format:
	clang-format -i $$(find src include tests bench -name '*.[ch]')

clean:
	rm -rf build build-san build-fuzz build-aarch64

-include $(shell find $(BUILD)/obj $(BUILD)/spv $(BUILD)/tests -name '*.d' 2>/dev/null)

# `make run`: the main job. Fetches the default model (scripts/fetch-default-model.sh) and
# serves it over HTTP on 127.0.0.1:8080 (scripts/serve-default.sh, which prints the chat page's
# URL) until Ctrl-C. It needs no test tools.
# `make story`: the same model writes a story on the terminal (scripts/run-default.sh).
run: all
	scripts/fetch-default-model.sh
	scripts/serve-default.sh
story: all
	scripts/fetch-default-model.sh
	scripts/run-default.sh
.PHONY: run story
