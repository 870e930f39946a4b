# alloy - build, test, run and benchmark.
#   make            library (build/liballoy.so, build/liballoy.a) and launcher (build/alloy)
#   make run        build, then run a real program on alloy and show its statistics
#   make test       every test; ends with "N passed, N failed"
#   make bench      side-by-side benchmark against glibc, jemalloc, mimalloc, tcmalloc
CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Iinclude -g -gdwarf-4
LIB_CFLAGS := $(CFLAGS_COMMON) $(OPT) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
              -fno-builtin-malloc -fno-stack-protector -D_GNU_SOURCE
LDLIBS_LIB := -pthread

# One file, one concept; override.c and mallinfo.c alone carry the standard names.
CORE_SRC := src/os.c src/size_class.c src/segment.c src/page.c src/heap.c src/alloc.c \
            src/free.c src/huge_cache.c src/arena.c src/tcache.c src/background.c src/mallocx.c src/ctl.c src/stats.c src/stats_print.c src/options.c src/report.c src/init.c
ALL_SRC  := $(CORE_SRC) src/override.c src/mallinfo.c
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
ALL_OBJ  := $(ALL_SRC:src/%.c=$(BUILD)/obj/%.o)
HEADERS  := $(wildcard src/*.h) include/alloy.h

.PHONY: all run test bench bench-instr fuzz clean
all: $(BUILD)/liballoy.so $(BUILD)/liballoy.a $(BUILD)/liballoy_core.a $(BUILD)/alloy \
     $(BUILD)/liballoy-insecure.so $(BUILD)/liballoy-nopurge.so

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/liballoy.so: $(ALL_OBJ)
	$(CC) -shared -Wl,-soname,liballoy.so -Wl,-z,nodelete -o $@ $^ $(LDLIBS_LIB)

$(BUILD)/liballoy.a: $(ALL_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The same library with secure:false as its default, for measuring what
# hardening costs: ALLOCATORS=alloy,alloy-insecure make bench.
$(BUILD)/obj/options-insecure.o: src/options.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DALLOY_SECURE_DEFAULT=false -c $< -o $@

$(BUILD)/liballoy-insecure.so: $(filter-out $(BUILD)/obj/options.o,$(ALL_OBJ)) $(BUILD)/obj/options-insecure.o
	$(CC) -shared -Wl,-soname,liballoy.so -Wl,-z,nodelete -o $@ $^ $(LDLIBS_LIB)

# ... and one that never purges (dirty_decay_ms:-1 as its default), for
# measuring what purging costs: ALLOCATORS=alloy,alloy-nopurge make bench.
$(BUILD)/obj/options-nopurge.o: src/options.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DALLOY_DECAY_DEFAULT=-1 -c $< -o $@

$(BUILD)/liballoy-nopurge.so: $(filter-out $(BUILD)/obj/options.o,$(ALL_OBJ)) $(BUILD)/obj/options-nopurge.o
	$(CC) -shared -Wl,-soname,liballoy.so -Wl,-z,nodelete -o $@ $^ $(LDLIBS_LIB)

# The allocator without the standard names: for tests that use alloy_* beside
# libc's malloc, and for sanitizer builds (ASan/TSan own malloc there).
$(BUILD)/liballoy_core.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/alloy: tools/alloy.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(OPT) -D_GNU_SOURCE -o $@ $<

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
