/*
 * test_huge_cache.c - freed huge blocks are reused without new page faults
 * (src/huge_cache.c, segment.c): a smaller request splits a cached mapping
 * and the tail stays cached; freed neighbours join again; a bigger request
 * grows or moves a cached mapping, faulting only the growth; calloc on
 * reused memory is still zero; entries expire after dirty_decay_ms (fake
 * clock) and are flushed by alloy_collect.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>
#include <sys/resource.h>

#define MiB ((size_t)1 << 20)

/* Sanitizers fault in shadow memory of their own: fault counts are only
 * checked without them. */
#ifdef CHECK_SANITIZED
#define CHECK_FAULTS(cond) ((void)0)
#else
#define CHECK_FAULTS(cond) CHECK(cond)
#endif

static uint64_t fake_ms = 1000000;
static uint64_t fake_clock(void) { return fake_ms; }

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

static void touch(char *p, size_t n, char v) {
  for (size_t i = 0; i < n; i += 4096) p[i] = v;
}

int main(void) {
  os_set_clock(fake_clock);
  huge_cache_flush();
  char *a = alloy_malloc(20 * MiB);
  REQUIRE(a != NULL);
  touch(a, 20 * MiB, 1);
  alloy_free(a);
  CHECK_GE(huge_cache_bytes(), 20 * MiB);

  /* A smaller block takes the head of the cached mapping; the tail stays. */
  long f0 = minflt();
  char *b = alloy_malloc(6 * MiB);
  CHECK_EQ_PTR(b, a);
  touch(b, 6 * MiB, 2);
  CHECK_FAULTS(minflt() - f0 < 64); /* its pages were faulted in already */
  CHECK_GE(huge_cache_bytes(), 12 * MiB);
  CHECK_LE(huge_cache_bytes(), 16 * MiB);

  /* Freed again, it joins its tail: one piece as big as the first block. */
  alloy_free(b);
  CHECK_GE(huge_cache_bytes(), 20 * MiB);
  f0 = minflt();
  char *c = alloy_malloc(19 * MiB);
  CHECK_EQ_PTR(c, a);
  touch(c, 19 * MiB, 3);
  CHECK_FAULTS(minflt() - f0 < 64);

  /* A bigger block grows (or moves) the cached mapping: only the growth
   * faults, about 10 MiB / 4 KiB = 2560 pages. */
  alloy_free(c);
  f0 = minflt();
  char *d = alloy_malloc(30 * MiB);
  REQUIRE(d != NULL);
  touch(d, 30 * MiB, 4);
  long faults = minflt() - f0;
  CHECK_FAULTS(faults < 3500 && faults > 2000);
  (void)faults;
  alloy_free(d);

  /* calloc on reused pages is zero. */
  unsigned char *z = alloy_calloc(1, 25 * MiB);
  REQUIRE(z != NULL);
  int nonzero = 0;
  for (size_t i = 0; i < 25 * MiB; i += 997) nonzero += z[i] != 0;
  CHECK_EQ(nonzero, 0);
  alloy_free(z);

  /* Expiry after dirty_decay_ms, as dirty pages. */
  CHECK_GT(huge_cache_bytes(), 0);
  fake_ms += (uint64_t)alloy__options.dirty_decay_ms - 1;
  huge_cache_expire();
  CHECK_GT(huge_cache_bytes(), 0);
  fake_ms += 2;
  huge_cache_expire();
  CHECK_EQ(huge_cache_bytes(), 0);

  /* alloy_collect empties it at once. */
  alloy_free(alloy_malloc(8 * MiB));
  CHECK_GT(huge_cache_bytes(), 0);
  alloy_collect();
  CHECK_EQ(huge_cache_bytes(), 0);
  os_set_clock(NULL);
  return check_done();
}
