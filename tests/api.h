/*
 * api.h - how the unit tests reach the allocator.
 *
 * Normally this is just alloy.h: the tests call alloy_* and are linked with
 * build/liballoy_core.a.  Compiled with -DALLOY_TEST_GLIBC, the alloy_* names
 * are mapped onto glibc's allocator instead, so that a test's own expectations
 * can be sanity-checked against a reference implementation
 * (`make -f tests/tests.mk glibc-check`).  Statistics do not exist there:
 * code using them is guarded by ALLOY_HAVE_STATS.
 */
#ifndef ALLOY_TESTS_API_H
#define ALLOY_TESTS_API_H

#include <malloc.h>
#include <stdlib.h>

#include "alloy.h"

#ifdef ALLOY_TEST_GLIBC
#define alloy_malloc(n) malloc(n)
#define alloy_calloc(c, n) calloc(c, n)
#define alloy_realloc(p, n) realloc(p, n)
#define alloy_reallocarray(p, c, n) reallocarray(p, c, n)
#define alloy_free(p) free(p)
#define alloy_free_sized(p, n) ((void)(n), free(p))
#define alloy_free_aligned_sized(p, a, n) ((void)(a), (void)(n), free(p))
#define alloy_aligned_alloc(a, n) aligned_alloc(a, n)
#define alloy_posix_memalign(o, a, n) posix_memalign(o, a, n)
#define alloy_memalign(a, n) memalign(a, n)
#define alloy_valloc(n) valloc(n)
#define alloy_pvalloc(n) pvalloc(n)
#define alloy_usable_size(p) malloc_usable_size((void *)(p))
#define alloy_collect() ((void)0)
#else
#define ALLOY_HAVE_STATS 1
#endif

#endif /* ALLOY_TESTS_API_H */
