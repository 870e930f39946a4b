# sources.mk - what alloy is built from and with which flags: the one build
# description that the Makefile, tests/tests.mk and fuzz/fuzz.mk include.
#
# CORE_SRC is the allocator under its prefixed names (alloy_*), in the
# order of the layers (src/internal.h); API_SRC adds the standard names
# (malloc, free, operator new, mallctl, mallinfo, ...), left out of the
# sanitizer and fuzzer builds, where the sanitizer owns malloc.

CORE_SRC := src/os_linux.c src/os_rseq_linux.c \
            src/meta.c src/report.c src/options.c src/size_class.c src/process.c src/unwind.c src/addrtree.c \
            src/pagemap.c src/segment.c \
            src/page.c src/heap.c src/stats.c src/free.c src/remote.c src/prof_sample.c src/prof_table.c src/percpu.c \
            src/arena.c src/tcache.c src/background.c src/event.c src/prof.c src/prof_dump.c \
            src/alloc.c src/mallocx.c src/ctl.c src/prof_ctl.c src/stats_print.c src/init.c src/vg.c
API_SRC  := src/override.c src/mallinfo.c
ALL_SRC  := $(CORE_SRC) $(API_SRC)
LIB_HEADERS := $(wildcard src/*.h) include/alloy.h

# The version is include/alloy.h's (ALLOY_VERSION_*): the shared library's
# soname (liballoy.so.MAJOR), its file name and alloy.pc follow it.
ALLOY_VERSION := $(shell sed -n 's/^\#define ALLOY_VERSION_STRING "\(.*\)"/\1/p' include/alloy.h)
ALLOY_SOVERSION := $(firstword $(subst ., ,$(ALLOY_VERSION)))
ALLOY_SONAME := liballoy.so.$(ALLOY_SOVERSION)

# Flags every build of the library shares: C11 with GNU extensions, hidden
# symbols, initial-exec TLS, no assumptions about malloc's semantics, no
# stack protector (the allocator runs before the program's TLS canary is
# set up when the dynamic loader's first malloc comes).
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes
# memcheck's client requests (src/vg.h) when $(CC) finds <valgrind/memcheck.h>
# (Debian's valgrind package); `make VALGRIND_CFLAGS=` builds without them.
VALGRIND_CFLAGS := $(shell printf '\043include <valgrind/memcheck.h>\n' | \
                     $(CC) -E -x c - >/dev/null 2>&1 && echo -DALLOY_VALGRIND)
LIB_BASE_CFLAGS := -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -fvisibility=hidden \
                   -ftls-model=initial-exec -fno-builtin-malloc -fno-stack-protector -g \
                   $(VALGRIND_CFLAGS)
# The shipped library.
LIB_CFLAGS := $(LIB_BASE_CFLAGS) -O2 -fPIC -gdwarf-4
LIB_LDLIBS := -pthread
# The sanitizer and fuzzer builds (clang), through the prefixed API.
SAN_LIB_CFLAGS := $(LIB_BASE_CFLAGS) -O1
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread
