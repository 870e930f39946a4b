/*
 * test_mallocx.c - jemalloc's extended API (src/mallocx.c) through the
 * prefixed names: alignment flags, MALLOCX_ZERO, nallocx agreeing with
 * sallocx, rallocx keeping contents and alignment and zeroing growth,
 * xallocx growing in place only where it can, sized frees.
 */
#include "check.h"
#include "mallctl_util.h"
#include "internal.h" /* os_set_fail_after: the mapping-failure hook */
#include "testutil.h"

#include <alloy.h>


static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1024, 1025, 4096, 20000, 65536, 65537,
                               300000, 2097152, 2097153, 5000000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_alloc_and_nallocx(void) {
  for (unsigned la = 0; la <= 22; la++)
    for (size_t i = 0; i < NSIZES; i++) {
      size_t n = sizes[i];
      int flags = LG_ALIGN(la) | (la % 2 ? TCACHE_NONE : 0) | (la % 3 ? ARENA(0) : 0);
      unsigned char *p = alloy_mallocx(n, flags);
      REQUIRE(p != NULL);
      CHECK_ALIGNED(p, (size_t)1 << la);
      CHECK_ALIGNED(p, 16);
      size_t usable = alloy_sallocx(p, 0);
      CHECK_GE(usable, n);
      CHECK_MSG(alloy_nallocx(n, flags) == usable, "nallocx(%zu, lg %u) = %zu, sallocx %zu", n, la,
                alloy_nallocx(n, flags), usable);
      memset(p, 0xab, usable);
      alloy_sdallocx(p, n, flags);
    }
  CHECK_EQ(alloy_nallocx(SIZE_MAX, 0), 0);
  CHECK_EQ(alloy_nallocx((size_t)PTRDIFF_MAX + 1, 0), 0);
}

static void test_zero(void) {
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = sizes[i];
    unsigned char *dirty = alloy_mallocx(n, 0);
    memset(dirty, 0xff, alloy_sallocx(dirty, 0));
    alloy_dallocx(dirty, 0);
    unsigned char *p = alloy_mallocx(n, ZERO); /* likely the dirty block again */
    CHECK_MSG(all_bytes(p, n, 0), "mallocx(%zu, MALLOCX_ZERO) not zeroed", n);
    alloy_dallocx(p, 0);
  }
}

static void test_rallocx(void) {
  for (size_t i = 1; i < NSIZES; i++)
    for (size_t j = 1; j < NSIZES; j++) {
      size_t a = sizes[i], b = sizes[j];
      int flags = LG_ALIGN(12) | ZERO;
      unsigned char *p = alloy_mallocx(a, flags);
      for (size_t k = 0; k < a; k++) p[k] = (unsigned char)(k * 13 + 1);
      unsigned char *q = alloy_rallocx(p, b, flags);
      REQUIRE(q != NULL);
      CHECK_ALIGNED(q, 4096);
      size_t keep = a < b ? a : b, bad = SIZE_MAX;
      for (size_t k = 0; k < keep && bad == SIZE_MAX; k++)
        if (q[k] != (unsigned char)(k * 13 + 1)) bad = k;
      CHECK_MSG(bad == SIZE_MAX, "rallocx %zu -> %zu lost byte %zu", a, b, bad);
      if (b > a) CHECK_MSG(all_bytes(q + a, b - a, 0), "rallocx %zu -> %zu: growth not zeroed", a, b);
      alloy_dallocx(q, flags);
    }
  void *p = alloy_mallocx(100, 0);
  errno = 0;
  CHECK_NULL(alloy_rallocx(p, SIZE_MAX, 0)); /* failure leaves p alone */
  CHECK_EQ(alloy_sallocx(p, 0), 112);
  alloy_dallocx(p, 0);
}

/* A block rallocx resized, grown or shrunk, with an alignment or not, is
 * freed by sdallocx with the size and flags of that rallocx: the size it
 * keeps must fit the one the caller knows (Rust's global allocator does
 * exactly this; a shrink below half once kept a 224-byte block that
 * sdallocx(q, 51, MALLOCX_LG_ALIGN(5)) then reported as a wrong size). */
static void test_rallocx_then_sdallocx(void) {
  const size_t sizes_[] = {1, 24, 100, 1000, 5000, 70000, 300000, 3 << 20};
  for (unsigned la = 0; la <= 12; la++)
    for (size_t i = 0; i < sizeof sizes_ / sizeof sizes_[0]; i++) {
      size_t n = sizes_[i];
      int flags = la > 4 ? LG_ALIGN(la) : 0;
      void *p = alloy_mallocx(n, flags);
      REQUIRE(p != NULL);
      void *q = alloy_rallocx(p, n * 2 + 1, flags);
      REQUIRE(q != NULL);
      void *r = alloy_rallocx(q, n / 2 + 1, flags);
      REQUIRE(r != NULL);
      CHECK_ALIGNED(r, (size_t)1 << la);
      alloy_sdallocx(r, n / 2 + 1, flags); /* a wrong size aborts here */
    }
}

/* Blocks of `size` bytes until one starts on `align` (a block of a size
 * class that sits at an alignment by chance); the others are kept live in
 * keep[0..*n) so that they are not handed out again. */
static void *block_starting_on(size_t size, size_t align, void **keep, int cap, int *n) {
  for (*n = 0; *n < cap;) {
    void *b = alloy_mallocx(size, 0);
    REQUIRE(b != NULL);
    if (((uintptr_t)b & (align - 1)) == 0) return b;
    keep[(*n)++] = b;
  }
  REQUIRE(!"no block started on the alignment");
  return NULL;
}

/* A small block that happens to sit at a large alignment, resized with that
 * alignment to a size whose aligned class is bigger than the block: kept in
 * place it would fail the size check of the sdallocx that follows (the
 * aligned size is rounded up to the alignment).  Found by the fuzzer. */
static void test_rallocx_aligned_by_chance(void) {
  static void *keep[2000];
  int n;
  void *p = block_starting_on(70, 1024, keep, 2000, &n); /* 80-byte blocks */
  int flags = LG_ALIGN(10);
  void *q = alloy_rallocx(p, 67, flags);
  REQUIRE(q != NULL);
  CHECK_ALIGNED(q, 1024);
  CHECK_EQ(alloy_sallocx(q, flags), alloy_nallocx(67, flags));
  alloy_sdallocx(q, 67, flags); /* a wrong size aborts here */
  for (int i = 0; i < n; i++) alloy_free(keep[i]);
}

/* A 6 KiB block that starts on 4 KiB, shrunk by rallocx with that
 * alignment, then freed by sdallocx with its usable size (jemalloc's rule
 * allows any size from the one asked for to the usable one): kept in place
 * it would be a 6 KiB block whose usable size, rounded up to the alignment,
 * is 8 KiB, and the free would abort as a wrong size.  Found by the fuzzer
 * (in CI). */
static void test_rallocx_usable_not_aligned(void) {
  static void *keep[64];
  int n;
  void *p = block_starting_on(5886, 4096, keep, 64, &n);
  CHECK_EQ(alloy_sallocx(p, 0), (size_t)6144);
  int flags = LG_ALIGN(12);
  void *q = alloy_rallocx(p, 1, flags);
  REQUIRE(q != NULL);
  CHECK_ALIGNED(q, 4096);
  size_t usable = alloy_sallocx(q, flags);
  CHECK_EQ(usable % 4096, (size_t)0);
  alloy_sdallocx(q, usable, flags); /* a wrong size aborts here */
  for (int i = 0; i < n; i++) alloy_free(keep[i]);
}

/* Every routing flag with an alignment: a block that grows in place must
 * still be aligned (a huge block growing in place kept its unaligned start
 * under MALLOCX_ARENA/TCACHE), contents kept, growth zeroed. */
static void test_rallocx_routed_align(void) {
  unsigned arena = 0, tc = 0;
  size_t len = sizeof arena;
  REQUIRE(alloy_mallctl("arenas.create", &arena, &len, NULL, 0) == 0);
  len = sizeof tc;
  REQUIRE(alloy_mallctl("tcache.create", &tc, &len, NULL, 0) == 0);
  const int routes[] = {0, ARENA(arena), TCACHE(tc), TCACHE_NONE};
  const size_t from[] = {100, 5000, 300000, 3 << 20}, to[] = {200, 70000, 3 << 20, 7 << 19};
  for (size_t r = 0; r < 4; r++)
    for (unsigned la = 12; la <= 16; la += 2)
      for (size_t i = 0; i < 4; i++) {
        int flags = routes[r] | LG_ALIGN(la) | ZERO;
        unsigned char *p = alloy_mallocx(from[i], routes[r]); /* not necessarily aligned */
        REQUIRE(p != NULL);
        xor_words_fill(p, 0, from[i], 77);
        unsigned char *q = alloy_rallocx(p, to[i], flags);
        REQUIRE(q != NULL);
        CHECK_ALIGNED(q, (size_t)1 << la);
        CHECK_MSG(xor_words_ok(q, 0, from[i], 77), "route %zu lg_align %u: %zu -> %zu lost contents", r,
                  la, from[i], to[i]);
        alloy_dallocx(q, routes[r]);
      }
  alloy_mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
}

/* A failed rallocx leaves the old block untouched and the caller's on
 * every path (plain, aligned, arena, tcache; small, large, huge): it keeps
 * its contents and frees without a double-free report afterwards.  The
 * n-th next mapping fails (os_set_fail_after(n), n = 0..3), so a failure
 * lands at each step of a rallocx that maps more than once (an aligned
 * move used to free the block, then fail to re-align and return NULL). */
static void test_rallocx_failure_keeps_block(void) {
  unsigned arena = 0, tc = 0;
  size_t len = sizeof arena;
  REQUIRE(alloy_mallctl("arenas.create", &arena, &len, NULL, 0) == 0);
  len = sizeof tc;
  REQUIRE(alloy_mallctl("tcache.create", &tc, &len, NULL, 0) == 0);
  const int routes[] = {0, ARENA(arena), TCACHE(tc)};
  const size_t from[] = {100, 300000, 3 << 20};
  unsigned failed = 0;
  for (long n = 0; n <= 3; n++)
    for (size_t r = 0; r < 3; r++)
      for (size_t i = 0; i < 3; i++)
        for (unsigned la = 0; la <= 16; la += 16) {
          int flags = routes[r] | LG_ALIGN(la);
          unsigned char *p = alloy_mallocx(from[i], flags); /* aligned: may grow or move */
          REQUIRE(p != NULL);
          xor_words_fill(p, 0, from[i], 99);
          os_set_fail_after(n);
          unsigned char *q = alloy_rallocx(p, 40 << 20, flags); /* must map */
          os_set_fail_after(-1);
          if (q != NULL) { /* it managed: then it did the whole job */
            CHECK_ALIGNED(q, (size_t)1 << la);
            CHECK(xor_words_ok(q, 0, from[i], 99));
            alloy_dallocx(q, routes[r]);
            continue;
          }
          failed++;
          CHECK_MSG(xor_words_ok(p, 0, from[i], 99), "n %ld route %zu size %zu lg_align %u: the old block changed",
                    n, r, from[i], la);
          CHECK_EQ(alloy_sallocx(p, 0), alloy_nallocx(from[i], flags));
          alloy_dallocx(p, routes[r]); /* still the caller's: no double-free report */
        }
  CHECK_GE(failed, 18); /* every path failed at least with n = 0 */
  alloy_mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
}

static void test_xallocx(void) {
  unsigned char *small = alloy_mallocx(100, 0);
  CHECK_EQ(alloy_xallocx(small, 100, 0, 0), 112); /* a size class cannot grow */
  CHECK_EQ(alloy_xallocx(small, 5000, 0, 0), 112);
  alloy_dallocx(small, 0);
  /* past two slices, so three: room to grow within its own span */
  size_t n = 2 * SLICE_SIZE + 4464, want = 2 * SLICE_SIZE + SLICE_SIZE / 2;
  unsigned char *large = alloy_mallocx(n, 0);
  size_t had = alloy_sallocx(large, 0);
  memset(large, 7, n);
  size_t got = alloy_xallocx(large, want, SLICE_SIZE / 4, ZERO);
  CHECK_GE(got, want);
  CHECK(all_bytes(large, n, 7));
  CHECK(all_bytes(large + had, got - had, 0));
  CHECK_EQ(alloy_sallocx(large, 0), got);
  alloy_dallocx(large, 0);
}

int main(void) {
  test_alloc_and_nallocx();
  test_zero();
  test_rallocx();
  test_rallocx_then_sdallocx();
  test_rallocx_aligned_by_chance();
  test_rallocx_usable_not_aligned();
  test_rallocx_routed_align();
  test_rallocx_failure_keeps_block();
  test_xallocx();
  return check_done();
}
