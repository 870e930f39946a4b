/*
 * test_mallocx.c - jemalloc's extended API (src/mallocx.c) through the
 * prefixed names: alignment flags, MALLOCX_ZERO, nallocx agreeing with
 * sallocx, rallocx keeping contents and alignment and zeroing growth,
 * xallocx growing in place only where it can, sized frees.
 */
#include "check.h"
#include "testutil.h"

#include <alloy.h>

#define LG_ALIGN(la) ((int)(la))
#define ZERO 0x40
#define TCACHE_NONE (1 << 8)
#define ARENA(a) (((int)(a) + 1) << 20)

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

static void test_xallocx(void) {
  unsigned char *small = alloy_mallocx(100, 0);
  CHECK_EQ(alloy_xallocx(small, 100, 0, 0), 112); /* a size class cannot grow */
  CHECK_EQ(alloy_xallocx(small, 5000, 0, 0), 112);
  alloy_dallocx(small, 0);
  unsigned char *large = alloy_mallocx(70000, 0); /* 2 slices: room to grow to 128 KiB */
  memset(large, 7, 70000);
  size_t got = alloy_xallocx(large, 100000, 20000, ZERO);
  CHECK_GE(got, 100000);
  CHECK(all_bytes(large, 70000, 7));
  CHECK(all_bytes(large + 72 * 1024, got - 72 * 1024, 0));
  CHECK_EQ(alloy_sallocx(large, 0), got);
  alloy_dallocx(large, 0);
}

int main(void) {
  test_alloc_and_nallocx();
  test_zero();
  test_rallocx();
  test_xallocx();
  return check_done();
}
