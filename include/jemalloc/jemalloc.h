/*
 * jemalloc/jemalloc.h - alloy's declaration of jemalloc's public API, for
 * programs written against <jemalloc/jemalloc.h> that are built with alloy
 * (-I<alloy>/include ... -lalloy) where libjemalloc-dev is not installed.
 *
 * The functions are the ones liballoy exports under jemalloc's names, with
 * jemalloc 5's signatures and flag encoding; the version macros say which
 * jemalloc interface alloy follows.  Only the standard (unprefixed) names
 * are declared: alloy replaces malloc itself, as jemalloc does on Linux.
 *
 * Installed as <prefix>/include/alloy/jemalloc/jemalloc.h, beside (never
 * over) libjemalloc-dev's: `pkg-config --cflags alloy` puts it first.
 */
#ifndef ALLOY_JEMALLOC_H
#define ALLOY_JEMALLOC_H

#include <alloy.h> /* the version */
#include <stddef.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JEMALLOC_VERSION ALLOY_JEMALLOC_VERSION /* "5.3.0-0-alloy-<alloy's version>" */
#define JEMALLOC_VERSION_MAJOR 5
#define JEMALLOC_VERSION_MINOR 3
#define JEMALLOC_VERSION_BUGFIX 0
#define JEMALLOC_VERSION_NREV 0
#define JEMALLOC_VERSION_GID "alloy"
#define JEMALLOC_VERSION_GID_IDENT alloy

/* Flags of the *allocx functions: alignment in the low 6 bits (as its
 * base-2 logarithm), zeroing, the tcache field from bit 8 (tc + 2; 1 means
 * none) and the arena field from bit 20 (a + 1). */
#define MALLOCX_LG_ALIGN(la) ((int)(la))
#if defined(__GNUC__)
#define MALLOCX_ALIGN(a) ((int)(((size_t)(a) < 2) ? 0 : __builtin_ctzl((size_t)(a))))
#else
#define MALLOCX_ALIGN(a) ((int)(((size_t)(a) < 2) ? 0 : ffsl((long)(a)) - 1))
#endif
#define MALLOCX_ZERO ((int)0x40)
#define MALLOCX_TCACHE(tc) ((int)(((tc) + 2) << 8))
#define MALLOCX_TCACHE_NONE MALLOCX_TCACHE(-1)
#define MALLOCX_ARENA(a) ((int)(((unsigned)(a) + 1) << 20))

/* mallctl index meaning "every arena", and the destroyed arenas' merge. */
#define MALLCTL_ARENAS_ALL 4096
#define MALLCTL_ARENAS_DESTROYED 4097

#if defined(__GNUC__)
#define JEMALLOC_ALLOCATOR_ATTR __attribute__((malloc, warn_unused_result))
#else
#define JEMALLOC_ALLOCATOR_ATTR
#endif

extern const char *malloc_conf;
extern void (*malloc_message)(void *cbopaque, const char *s);

JEMALLOC_ALLOCATOR_ATTR void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t xallocx(void *ptr, size_t size, size_t extra, int flags);
size_t sallocx(const void *ptr, int flags);
void dallocx(void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);
size_t nallocx(size_t size, int flags);

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
int mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen);
void malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts);
size_t malloc_usable_size(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* ALLOY_JEMALLOC_H */
