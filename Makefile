# alloy - build, test, run and benchmark.
#   make            library (build/liballoy.so, build/liballoy.a) and launcher (build/alloy)
#   make run        build, then run a real program on alloy and show its statistics
#   make test       every test; ends with "N passed, N failed"
#   make bench      side-by-side benchmark against glibc, jemalloc, mimalloc, tcmalloc
CC      ?= cc
BUILD   ?= build
include sources.mk

CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
ALL_OBJ  := $(ALL_SRC:src/%.c=$(BUILD)/obj/%.o)
SONAME_FLAGS := -shared -Wl,-soname,liballoy.so -Wl,-z,nodelete

.PHONY: all run test bench bench-instr fuzz clean
all: $(BUILD)/liballoy.so $(BUILD)/liballoy.a $(BUILD)/liballoy_core.a $(BUILD)/alloy \
     $(BUILD)/liballoy-insecure.so $(BUILD)/liballoy-nopurge.so \
     $(BUILD)/liballoy-threadheaps.so $(BUILD)/liballoy-percpu.so

$(BUILD)/obj/%.o: src/%.c $(LIB_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/liballoy.so: $(ALL_OBJ)
	$(CC) $(SONAME_FLAGS) -o $@ $^ $(LIB_LDLIBS)

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

$(BUILD)/alloy: tools/alloy.c
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 $(WARN) -Iinclude -O2 -g -D_GNU_SOURCE -o $@ $<

run: all
	@sh tools/run-demo.sh $(BUILD)

test: all
	@sh tests/run.sh $(BUILD)

# QUICK=1: one round at small sizes (a smoke run, under 3 minutes).
bench: all
	@QUICK=$(QUICK) sh bench/run.sh

bench-instr: all
	@sh bench/instr.sh

# libFuzzer against a reference model; FUZZ_TIME seconds (default 60).
fuzz:
	@BUILD=$(BUILD) sh fuzz/run.sh $(or $(FUZZ_TIME),60)

clean:
	rm -rf $(BUILD)
