/*
 * api_names.h - the allocation API a whole-program test exercises, chosen
 * at build time: A_MALLOC, A_FREE, ... are alloy's prefixed functions (the
 * test links liballoy_core.a beside glibc's malloc), or with
 * -DUSE_LIBC_NAMES the standard names (the test runs under
 * LD_PRELOAD=liballoy.so).  The stress and misuse tests build both ways
 * from one source.  (Unit tests use api.h, which can point the prefixed
 * names at glibc instead, to check the tests themselves.)
 */
#ifndef ALLOY_TESTS_API_NAMES_H
#define ALLOY_TESTS_API_NAMES_H

#include <malloc.h>
#include <stdlib.h>

#ifdef USE_LIBC_NAMES
/* C23's sized frees are not in Debian 12's glibc: alloy.so provides them
 * (weak: NULL when the preload is missing, and then plain free). */
extern void free_sized(void *ptr, size_t size) __attribute__((weak));
extern void free_aligned_sized(void *ptr, size_t alignment, size_t size) __attribute__((weak));
static inline void a_free_sized(void *p, size_t n) {
  if (free_sized) free_sized(p, n);
  else free(p);
}
static inline void a_free_aligned_sized(void *p, size_t a, size_t n) {
  if (free_aligned_sized) free_aligned_sized(p, a, n);
  else free(p);
}
#define A_MALLOC malloc
#define A_CALLOC calloc
#define A_REALLOC realloc
#define A_FREE free
#define A_ALIGNED_ALLOC aligned_alloc
#define A_POSIX_MEMALIGN posix_memalign
#define A_MEMALIGN memalign
#define A_USABLE(p) malloc_usable_size(p)
#define A_FREE_SIZED(p, n) a_free_sized(p, n)
#define A_FREE_ALIGNED_SIZED(p, a, n) a_free_aligned_sized(p, a, n)
#define MODE_NAME "standard names under LD_PRELOAD"
#else
#include "alloy.h"
#define A_MALLOC alloy_malloc
#define A_CALLOC alloy_calloc
#define A_REALLOC alloy_realloc
#define A_FREE alloy_free
#define A_ALIGNED_ALLOC alloy_aligned_alloc
#define A_POSIX_MEMALIGN alloy_posix_memalign
#define A_MEMALIGN alloy_memalign
#define A_USABLE(p) alloy_usable_size(p)
#define A_FREE_SIZED(p, n) alloy_free_sized(p, n)
#define A_FREE_ALIGNED_SIZED(p, a, n) alloy_free_aligned_sized(p, a, n)
#define MODE_NAME "prefixed API (liballoy_core.a)"
#endif

#endif /* ALLOY_TESTS_API_NAMES_H */
