# tests/tests.mk - builds alloy's test programs (driven by tests/run.sh).
#
#   make -f tests/tests.mk BUILD=build all-tests     everything below
#   make -f tests/tests.mk BUILD=build unit          tests/test_*.c -> build/tests/unit/
#   make -f tests/tests.mk BUILD=build stress        build/tests/stress/{stress,stress_libc}
#   make -f tests/tests.mk BUILD=build edge          build/tests/edge/*
#   make -f tests/tests.mk BUILD=build asan tsan     sanitizer builds in build/asan, build/tsan
#   make -f tests/tests.mk BUILD=build misuse        build/tests/misuse/* (misuse reports)
#   make -f tests/tests.mk BUILD=build oom           build/tests/oom/* (out of memory)
#   make -f tests/tests.mk BUILD=build valgrind      build/tests/valgrind/* (memcheck, liballoy.a)
#   make -f tests/tests.mk glibc-check               unit tests against glibc's malloc
#
# Unit tests use the prefixed API and link build/liballoy_core.a (made by the
# top-level Makefile), so the test program itself keeps glibc's malloc.  The
# sanitizer builds compile the allocator's core sources (CORE_SRC of
# sources.mk) with clang together with the unit tests and the stress test.
BUILD    ?= build
T        := $(BUILD)/tests
CC       ?= cc
CXX      ?= g++
SAN_CC   ?= clang
include sources.mk

TEST_CFLAGS := -std=gnu11 -Wall -Wextra -O2 -g -Iinclude -Isrc -Itests -D_GNU_SOURCE

UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_NAMES := $(UNIT_SRC:tests/unit/%.c=%)
UNIT_BIN   := $(UNIT_NAMES:%=$(T)/unit/%)
TEST_HDRS  := $(wildcard tests/*.h)

EDGE_BIN := $(T)/edge/ctor_main $(T)/edge/libctor.so $(T)/edge/thread_exit $(T)/edge/fork \
            $(T)/edge/dlopen $(T)/edge/libdl_lib.so $(T)/edge/badfree $(T)/edge/guard $(T)/edge/mallinfo \
            $(T)/edge/fork_handlers $(T)/edge/libfork_handlers.so
CXX_BIN  := $(T)/edge/cxx

MISUSE_BIN := $(T)/misuse/misuse $(T)/misuse/misuse_preload
MISUSE_CXX := $(T)/misuse/misuse_cxx
OOM_BIN    := $(T)/oom/rlimit $(T)/oom/inject

.PHONY: all-tests unit stress edge cxx asan tsan glibc-check misuse misuse-cxx oom valgrind
all-tests: unit stress edge cxx asan tsan misuse misuse-cxx oom valgrind
misuse: $(MISUSE_BIN)
misuse-cxx: $(MISUSE_CXX)
oom: $(OOM_BIN)
unit: $(UNIT_BIN)
stress: $(T)/stress/stress $(T)/stress/stress_libc
edge: $(EDGE_BIN)
cxx: $(CXX_BIN)

# ---------------------------------------------------------------- unit tests
$(T)/unit/%: tests/unit/%.c $(TEST_HDRS) $(BUILD)/liballoy_core.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(BUILD)/liballoy_core.a -pthread

# -------------------------------------------------------------------- stress
$(T)/stress/stress: tests/stress/stress.c $(TEST_HDRS) $(BUILD)/liballoy_core.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(BUILD)/liballoy_core.a -pthread -ldl

# Plain malloc/free names: run with LD_PRELOAD=$(BUILD)/liballoy.so.
$(T)/stress/stress_libc: tests/stress/stress.c $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DUSE_LIBC_NAMES -o $@ $< -pthread -ldl

# ---------------------------------------------------------------- edge cases
# These use the standard names and run under LD_PRELOAD=$(BUILD)/liballoy.so.
EDGE_CFLAGS := $(TEST_CFLAGS) -fno-builtin-malloc -fno-builtin-free

$(T)/edge/libctor.so: tests/edge/ctor_lib.c tests/edge/ctor.h
	@mkdir -p $(dir $@)
	$(CC) $(EDGE_CFLAGS) -shared -fPIC -o $@ $< -pthread -ldl

$(T)/edge/ctor_main: tests/edge/ctor_main.c tests/edge/ctor.h tests/edge/preload.h $(T)/edge/libctor.so
	$(CC) $(EDGE_CFLAGS) -o $@ $< -L$(T)/edge -lctor -Wl,-rpath,'$$ORIGIN' -pthread -ldl

# fork_handlers links the library whose fork handlers allocate: its
# constructor runs before alloy's (preloaded) registers alloy's handlers.
$(T)/edge/libfork_handlers.so: tests/edge/fork_handlers_lib.c tests/edge/fork_handlers.h
	@mkdir -p $(dir $@)
	$(CC) $(EDGE_CFLAGS) -shared -fPIC -o $@ $< -pthread

$(T)/edge/fork_handlers: tests/edge/fork_handlers.c tests/edge/fork_handlers.h tests/edge/preload.h $(T)/edge/libfork_handlers.so
	$(CC) $(EDGE_CFLAGS) -o $@ $< -L$(T)/edge -lfork_handlers -Wl,-rpath,'$$ORIGIN' -pthread -ldl

$(T)/edge/libdl_lib.so: tests/edge/dl_lib.c
	@mkdir -p $(dir $@)
	$(CC) $(EDGE_CFLAGS) -shared -fPIC -o $@ $< -pthread

$(T)/edge/%: tests/edge/%.c tests/edge/preload.h
	@mkdir -p $(dir $@)
	$(CC) $(EDGE_CFLAGS) -o $@ $< -pthread -ldl

$(T)/edge/cxx: tests/edge/cxx.cpp tests/edge/preload.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -Wall -Wextra -O2 -g -fsized-deallocation -faligned-new \
	  -Iinclude -o $@ $< -pthread -ldl

# ------------------------------------------------------------------- misuse
# The same source twice: the prefixed API, and the standard names (run under
# LD_PRELOAD=$(BUILD)/liballoy.so); the C++ cases are a program of their own.
$(T)/misuse/misuse: tests/misuse/misuse.c $(TEST_HDRS) $(BUILD)/liballoy_core.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(BUILD)/liballoy_core.a -pthread

$(T)/misuse/misuse_preload: tests/misuse/misuse.c $(TEST_HDRS) tests/edge/preload.h
	@mkdir -p $(dir $@)
	$(CC) $(EDGE_CFLAGS) -DUSE_LIBC_NAMES -o $@ $< -pthread -ldl

$(T)/misuse/misuse_cxx: tests/misuse/misuse_cxx.cpp
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -Wall -Wextra -O2 -g -fsized-deallocation -faligned-new \
	  -o $@ $< -ldl

# ---------------------------------------------------------------------- oom
# Prefixed API with liballoy_core.a; inject.c uses the os_set_fail_after test
# hook of src/internal.h (a hidden symbol: reachable in a static link).
$(T)/oom/%: tests/oom/%.c tests/check.h tests/testutil.h $(BUILD)/liballoy_core.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(BUILD)/liballoy_core.a -pthread

# ----------------------------------------------------------------- valgrind
# Programs memcheck runs with alloy serving them: the standard names from a
# static link of liballoy.a (tests/valgrind/memcheck.sh).  -O1 and no
# builtin malloc/free: the errors they make must stay in the code.
VALGRIND_BIN := $(T)/valgrind/bugs $(T)/valgrind/clean
valgrind: $(VALGRIND_BIN)
$(T)/valgrind/%: tests/valgrind/%.c $(BUILD)/liballoy.a
	@mkdir -p $(dir $@)
	$(CC) $(EDGE_CFLAGS) -O1 -o $@ $< $(BUILD)/liballoy.a -pthread

# ---------------------------------------------------------- sanitizer builds
# $(1): asan or tsan, $(2): the sanitizer flags
define SAN_template
$(1)_OBJ := $$(CORE_SRC:src/%.c=$$(BUILD)/$(1)/obj/%.o)

$$(BUILD)/$(1)/obj/%.o: src/%.c $$(LIB_HEADERS)
	@mkdir -p $$(dir $$@)
	$$(SAN_CC) $$(SAN_LIB_CFLAGS) $(2) -c $$< -o $$@

$$(BUILD)/$(1)/liballoy_core.a: $$($(1)_OBJ)
	@rm -f $$@
	ar rcs $$@ $$^

$$(BUILD)/$(1)/%: tests/unit/%.c $$(TEST_HDRS) $$(BUILD)/$(1)/liballoy_core.a
	@mkdir -p $$(dir $$@)
	$$(SAN_CC) $$(TEST_CFLAGS) $(2) -O1 -o $$@ $$< $$(BUILD)/$(1)/liballoy_core.a -pthread

$$(BUILD)/$(1)/stress: tests/stress/stress.c $$(TEST_HDRS) $$(BUILD)/$(1)/liballoy_core.a
	@mkdir -p $$(dir $$@)
	$$(SAN_CC) $$(TEST_CFLAGS) $(2) -O1 -o $$@ $$< $$(BUILD)/$(1)/liballoy_core.a -pthread -ldl

$(1): $$(UNIT_NAMES:%=$$(BUILD)/$(1)/%) $$(BUILD)/$(1)/stress
endef
$(eval $(call SAN_template,asan,$(ASAN_FLAGS)))
$(eval $(call SAN_template,tsan,$(TSAN_FLAGS)))

# -------------------------------------------------------- glibc sanity check
# The prefixed unit tests run against glibc's allocator (see tests/api.h); a
# check of the tests themselves, not of alloy.  Tests that need src/ are left out.
GLIBC_UNITS := test_aligned test_realloc test_usable_size
glibc-check:
	@mkdir -p $(T)/glibc
	@set -e; for t in $(GLIBC_UNITS); do \
	  $(CC) $(TEST_CFLAGS) -fno-builtin -Wno-use-after-free -DALLOY_TEST_GLIBC \
	    -o $(T)/glibc/$$t tests/unit/$$t.c; \
	  echo "$$t (glibc):"; $(T)/glibc/$$t; done
