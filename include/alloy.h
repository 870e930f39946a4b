/*
 * alloy.h - alloy's public, prefixed API.
 *
 * Every function here behaves like its standard namesake (malloc(3), free(3),
 * posix_memalign(3), C23 free_sized, ...).  The prefixed names let a program or
 * a test use alloy beside another allocator; when liballoy.so is preloaded or
 * linked, the same code also answers to the standard names.
 */
#ifndef ALLOY_H
#define ALLOY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALLOY_VERSION_MAJOR 0
#define ALLOY_VERSION_MINOR 1
#define ALLOY_VERSION_PATCH 0
#define ALLOY_VERSION_STRING "0.1.0"
/* What mallctl("version") answers: jemalloc's version format, naming alloy. */
#define ALLOY_JEMALLOC_VERSION "5.3.0-0-alloy-" ALLOY_VERSION_STRING

#if defined(__GNUC__)
#define ALLOY_ALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define ALLOY_ALLOC_ATTR
#endif

ALLOY_ALLOC_ATTR void *alloy_malloc(size_t size);
ALLOY_ALLOC_ATTR void *alloy_calloc(size_t count, size_t size);
void *alloy_realloc(void *ptr, size_t size);
void *alloy_reallocarray(void *ptr, size_t count, size_t size);
void alloy_free(void *ptr);
void alloy_free_sized(void *ptr, size_t size);
void alloy_free_aligned_sized(void *ptr, size_t alignment, size_t size);

ALLOY_ALLOC_ATTR void *alloy_aligned_alloc(size_t alignment, size_t size);
int alloy_posix_memalign(void **out, size_t alignment, size_t size);
ALLOY_ALLOC_ATTR void *alloy_memalign(size_t alignment, size_t size);
ALLOY_ALLOC_ATTR void *alloy_valloc(size_t size);
ALLOY_ALLOC_ATTR void *alloy_pvalloc(size_t size);

/* jemalloc's extended API with its flag encoding (the macros below are
 * jemalloc's MALLOCX_* under alloy's prefix).  liballoy.so also exports
 * these as mallocx, rallocx, ... */
#define ALLOY_MALLOCX_LG_ALIGN(la) ((int)(la))
#define ALLOY_MALLOCX_ALIGN(a) ((int)(__builtin_ffsl((long)(a)) - 1))
#define ALLOY_MALLOCX_ZERO ((int)0x40)
#define ALLOY_MALLOCX_TCACHE(tc) ((int)(((unsigned)(tc) + 2) << 8))
#define ALLOY_MALLOCX_TCACHE_NONE ALLOY_MALLOCX_TCACHE(-1)
#define ALLOY_MALLOCX_ARENA(a) ((int)(((unsigned)(a) + 1) << 20))
ALLOY_ALLOC_ATTR void *alloy_mallocx(size_t size, int flags);
void *alloy_rallocx(void *ptr, size_t size, int flags);
size_t alloy_xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t alloy_sallocx(const void *ptr, int flags);
void alloy_dallocx(void *ptr, int flags);
void alloy_sdallocx(void *ptr, size_t size, int flags);
size_t alloy_nallocx(size_t size, int flags);

/* jemalloc's control interface, by name or by MIB, with jemalloc's names,
 * types and error codes (ENOENT, EINVAL, EPERM, EFAULT): version, epoch,
 * config.*, opt.*, thread.*, tcache.*, arena.<i>.*, arenas.*, stats.*
 * (README.md lists them).  liballoy.so also exports these as mallctl,
 * mallctlnametomib and mallctlbymib. */
int alloy_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int alloy_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
int alloy_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen);

/* jemalloc's statistics report: text, or JSON with 'J' in opts ('g' leaves
 * out version and options, 'm' the merged arenas, 'a' each arena, 'b' the
 * size classes, 'l' the large sizes); write_cb NULL: stderr.  liballoy.so
 * also exports it as malloc_stats_print. */
void alloy_malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                              const char *opts);

/* Bytes usable at ptr: at least what was asked for. 0 for NULL. */
size_t alloy_usable_size(const void *ptr);

/* A snapshot of process-wide statistics.  Each thread folds its counters
 * into these totals every few hundred KiB of allocation and at exit, so the
 * figures of busy threads other than the caller lag by at most that much. */
typedef struct alloy_stats_s {
  uint64_t allocated;      /* bytes in live blocks (usable sizes) */
  uint64_t peak_allocated; /* largest 'allocated' seen at a fold */
  uint64_t mapped;         /* bytes currently mapped from the OS */
  uint64_t peak_mapped;    /* largest 'mapped' ever */
  uint64_t nmalloc;        /* allocations served, all sizes */
  uint64_t segments;       /* live segments (2 MiB frames on x86-64, 4 MiB elsewhere, split into pages) */
  uint64_t huge_blocks;    /* live big blocks (above about 2 MiB) */
  uint64_t threads;        /* thread heaps in use (not abandoned) */
  uint64_t abandoned;      /* heaps left by exited threads, not yet adopted */
  uint64_t purged;         /* bytes given back to the OS with MADV_DONTNEED, ever */
  uint64_t npurge;         /* madvise calls that did it */
} alloy_stats_t;

/* Folds the calling thread's counters, then fills *out. */
void alloy_stats_get(alloy_stats_t *out);

/* Writes the short human-readable summary (what `alloy run --stats` shows)
 * to file descriptor fd. */
void alloy_stats_print_summary(int fd);

/* Takes over what exited threads left, gives the calling thread's empty
 * pages back, and returns every free page to the OS now (malloc_trim). */
void alloy_collect(void);

#ifdef __cplusplus
}
#endif

#endif /* ALLOY_H */
