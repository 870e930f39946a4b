# fuzz/fuzz.mk - builds the libFuzzer harness (driven by fuzz/run.sh).
#
#   make -f fuzz/fuzz.mk BUILD=build        -> build/fuzz/fuzz_alloc
#
# The allocator's core sources (CORE_SRC of sources.mk) are compiled like
# the sanitizer builds of tests/tests.mk (clang, ASan + UBSan, the library's
# visibility and TLS model), plus libFuzzer's coverage instrumentation; the
# harness links libFuzzer's main.
BUILD   ?= build
FUZZ_CC ?= clang
F       := $(BUILD)/fuzz

include sources.mk

LIB_FUZZ_CFLAGS := $(SAN_LIB_CFLAGS) $(ASAN_FLAGS) -fsanitize=fuzzer-no-link
HARNESS_CFLAGS := -std=gnu11 -Wall -Wextra -g -O1 -D_GNU_SOURCE -Iinclude $(ASAN_FLAGS)

FUZZ_OBJ := $(CORE_SRC:src/%.c=$(F)/obj/%.o)

.PHONY: fuzz-build
fuzz-build: $(F)/fuzz_alloc

$(F)/obj/%.o: src/%.c $(LIB_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(LIB_FUZZ_CFLAGS) -c $< -o $@

$(F)/liballoy_fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(F)/fuzz_alloc: fuzz/fuzz_alloc.c tests/testutil.h include/alloy.h $(F)/liballoy_fuzz.a
	$(FUZZ_CC) $(HARNESS_CFLAGS) -fsanitize=fuzzer -o $@ $< $(F)/liballoy_fuzz.a -pthread
