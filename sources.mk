# sources.mk - what alloy is built from and with which flags: the one build
# description that the Makefile, tests/tests.mk and fuzz/fuzz.mk include.
#
# CORE_SRC is the allocator under its prefixed names (alloy_*), in the
# order of the layers (src/internal.h); API_SRC adds the standard names
# (malloc, free, operator new, mallctl, mallinfo, ...), left out of the
# sanitizer and fuzzer builds, where the sanitizer owns malloc.

CORE_SRC := src/os_linux.c src/os_rseq_linux.c src/meta.c src/report.c src/options.c src/size_class.c src/process.c \
            src/pagemap.c src/segment.c \
            src/page.c src/heap.c src/stats.c src/free.c src/percpu.c \
            src/arena.c src/tcache.c src/background.c src/event.c \
            src/alloc.c src/mallocx.c src/ctl.c src/stats_print.c src/init.c
API_SRC  := src/override.c src/mallinfo.c
ALL_SRC  := $(CORE_SRC) $(API_SRC)
LIB_HEADERS := $(wildcard src/*.h) include/alloy.h

# Flags every build of the library shares: C11 with GNU extensions, hidden
# symbols, initial-exec TLS, no assumptions about malloc's semantics, no
# stack protector (the allocator runs before the program's TLS canary is
# set up when the dynamic loader's first malloc comes).
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes
LIB_BASE_CFLAGS := -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -fvisibility=hidden \
                   -ftls-model=initial-exec -fno-builtin-malloc -fno-stack-protector -g
# The shipped library.
LIB_CFLAGS := $(LIB_BASE_CFLAGS) -O2 -fPIC -gdwarf-4
LIB_LDLIBS := -pthread
# The sanitizer and fuzzer builds (clang), through the prefixed API.
SAN_LIB_CFLAGS := $(LIB_BASE_CFLAGS) -O1
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread
