# alloy - build, test, run and benchmark.
#   make            library (build/liballoy.so, build/liballoy.a) and launcher (build/alloy)
#   make run        build, then run a real program on alloy and show its statistics
#   make test       every test; ends with "N passed, N failed"
#   make bench      side-by-side benchmark against glibc, jemalloc, mimalloc, tcmalloc
#   make install    PREFIX=/usr/local DESTDIR=... (mk/install.mk); make uninstall
#   make test-arm64 the ARM64 tests alone: cross-compiled, under qemu-user (mk/arm64.mk)
CC      ?= cc
BUILD   ?= build
include sources.mk

CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
ALL_OBJ  := $(ALL_SRC:src/%.c=$(BUILD)/obj/%.o)
SONAME_FLAGS := -shared -Wl,-soname,$(ALLOY_SONAME) -Wl,-z,nodelete

.PHONY: all run test bench bench-instr bench-workloads-instr fuzz clean
all: $(BUILD)/liballoy.so $(BUILD)/$(ALLOY_SONAME) $(BUILD)/liballoy.a $(BUILD)/liballoy_core.a $(BUILD)/alloy \
     $(BUILD)/liballoy-insecure.so $(BUILD)/liballoy-nopurge.so \
     $(BUILD)/liballoy-threadheaps.so $(BUILD)/liballoy-percpu.so

$(BUILD)/obj/%.o: src/%.c $(LIB_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/liballoy.so: $(ALL_OBJ)
	$(CC) $(SONAME_FLAGS) -o $@ $^ $(LIB_LDLIBS)

# What a program linked with -Lbuild -lalloy asks for at run time.
$(BUILD)/$(ALLOY_SONAME): $(BUILD)/liballoy.so
	ln -sf liballoy.so $@

$(BUILD)/liballoy.a: $(ALL_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The allocator without the standard names: for tests that use alloy_* beside
# libc's malloc, and for sanitizer builds (ASan/TSan own malloc there).
$(BUILD)/liballoy_core.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Variants for the benchmark, one pattern: the sources compiled differently
# and their defines.  insecure: the fast paths without the checks (page map,
# interior pointer, double free), to measure what the checks cost
# (ALLOCATORS=alloy,alloy-insecure make bench); nopurge: dirty_decay_ms:-1 by
# default, to measure what purging costs.
VARIANTS := insecure nopurge threadheaps percpu
insecure_SRC  := src/alloc.c src/override.c
insecure_DEFS := -DALLOY_UNCHECKED
nopurge_SRC   := src/options.c
nopurge_DEFS  := -DALLOY_DECAY_DEFAULT=-1
# threadheaps, percpu: percpu:false and percpu:true by default, to set each
# mode beside percpu:auto (ALLOCATORS=alloy,alloy-threadheaps,alloy-percpu)
threadheaps_SRC  := src/options.c
threadheaps_DEFS := -DALLOY_PERCPU_DEFAULT=PERCPU_OFF
percpu_SRC       := src/options.c
percpu_DEFS      := -DALLOY_PERCPU_DEFAULT=PERCPU_ON
define VARIANT_template
$(BUILD)/obj-$(1)/%.o: src/%.c $$(LIB_HEADERS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LIB_CFLAGS) $$($(1)_DEFS) -c $$< -o $$@
$(BUILD)/liballoy-$(1).so: $$(filter-out $$($(1)_SRC:src/%.c=$(BUILD)/obj/%.o),$$(ALL_OBJ)) \
                           $$($(1)_SRC:src/%.c=$(BUILD)/obj-$(1)/%.o)
	$$(CC) $$(SONAME_FLAGS) -o $$@ $$^ $$(LIB_LDLIBS)
endef
$(foreach v,$(VARIANTS),$(eval $(call VARIANT_template,$(v))))

# The launcher, with the heap-profile readers of `alloy flame` and `alloy leaks`.
TOOL_SRC := tools/alloy.c tools/run_prof.c tools/flame.c tools/leaks.c tools/heap_profile.c tools/elf_symbols.c
$(BUILD)/alloy: $(TOOL_SRC) $(wildcard tools/*.h)
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 $(WARN) -Iinclude -O2 -g -D_GNU_SOURCE -o $@ $(TOOL_SRC) -lm

run: all
	@sh tools/run-demo.sh $(BUILD)

test: all
	@sh tests/run.sh $(BUILD)

# QUICK=1: one round at small sizes (a smoke run, under 3 minutes).
bench: all
	@QUICK=$(QUICK) sh bench/run.sh

bench-instr: all
	@sh bench/instr.sh

# Whole workloads' instruction counts under alloy's variants (what a change
# costs, free of machine noise): ALLOY_BASE_LIB=other/liballoy.so to compare.
bench-workloads-instr: all
	@$(MAKE) -s -f bench/Makefile BUILD=$(BUILD)
	@BUILD=$(BUILD) python3 bench/instr_workloads.py

# libFuzzer against a reference model; FUZZ_TIME seconds (default 60),
# FUZZ_CONF options of the library under test (as ALLOY_CONF).
fuzz:
	@BUILD=$(BUILD) FUZZ_CONF="$(FUZZ_CONF)" sh fuzz/run.sh $(or $(FUZZ_TIME),60)

clean:
	rm -rf $(BUILD)

# make install / uninstall, alloy.pc (mk/install.mk); make test-arm64.
include mk/install.mk
include mk/arm64.mk
