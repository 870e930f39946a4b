/*
 * test_segment.c - segments and the OS layer (src/segment.c, src/os.c): the
 * segment map knows alloy's regions and nothing else, blocks never live in
 * the header slice, large blocks are page-granular and slice-aligned, huge
 * blocks get their own mapping, are cached a while for reuse and given back
 * (alloy_collect) when flushed, empty regions go
 * back to the OS, and a failing OS gives NULL with ENOMEM and no damage.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>

static int global_object;

static void test_map(void) {
  int local = 0;
  void *small = alloy_malloc(100);
  REQUIRE(small != NULL);
  CHECK(segment_map_has(small));
  CHECK(!segment_map_has(&local));
  CHECK(!segment_map_has(&global_object));
  void *libc_block = malloc(100); /* glibc's, in this test */
  CHECK(!segment_map_has(libc_block));
  free(libc_block);
  CHECK(!segment_map_has((void *)~(uintptr_t)0)); /* beyond the address space */
  CHECK_GE((uintptr_t)small - (uintptr_t)segment_of(small), SLICE_SIZE); /* not in the header */
  page_t *page = segment_page_of(segment_of(small), small);
  CHECK_EQ(page->kind, PAGE_SMALL);
  CHECK_ALIGNED(page->start, SLICE_SIZE);
  alloy_free(small);
}

static void test_large_and_huge(void) {
  size_t ps = os_page_size();
  void *large = alloy_malloc(100 * 1024 + 1);
  REQUIRE(large != NULL);
  page_t *page = segment_page_of(segment_of(large), large);
  CHECK_EQ(page->kind, PAGE_LARGE);
  CHECK_ALIGNED(large, SLICE_SIZE);
  CHECK_EQ(alloy_usable_size(large), (100 * 1024 + 1 + ps - 1) / ps * ps);
  alloy_free(large);

  alloy_collect();
  size_t before = os_mapped_bytes();
  void *huge = alloy_malloc(5 * ALLOY_MiB);
  REQUIRE(huge != NULL);
  CHECK_EQ(segment_page_of(segment_of(huge), huge)->kind, PAGE_HUGE);
  CHECK_GE(os_mapped_bytes(), before + 5 * ALLOY_MiB);
  CHECK_GE(alloy_usable_size(huge), 5 * ALLOY_MiB);
  alloy_free(huge);
  CHECK(!segment_map_has(huge)); /* freed: a second free would be reported */

  /* The freed mapping is cached: the next huge block of a similar size
   * reuses its (already faulted) pages without mapping anything new. */
  void *again = alloy_malloc(5 * ALLOY_MiB - 4096);
  CHECK_EQ_PTR(again, huge);
  CHECK_LE(os_mapped_bytes(), before + 5 * ALLOY_MiB + SEGMENT_SIZE);
  alloy_free(again);
  alloy_collect(); /* flushes the cache */
  CHECK_EQ(os_mapped_bytes(), before);
}

static void test_empty_regions_return(void) {
  enum { N = 40000 };
  static void *p[N];
  alloy_collect();
  size_t base = os_mapped_bytes();
  for (int i = 0; i < N; i++) p[i] = alloy_malloc(1000);
  CHECK_GE(os_mapped_bytes(), base + (size_t)N * 1000);
  for (int i = 0; i < N; i++) alloy_free(p[i]);
  alloy_collect();
  CHECK_LE(os_mapped_bytes(), base + SEGMENT_SIZE);
}

static void test_os_failure(void) {
  void *keep = alloy_malloc(64);
  alloy_collect(); /* no spare segment to fall back on */
  os_set_fail_after(0);
  errno = 0;
  CHECK_NULL(alloy_malloc(3 * ALLOY_MiB));
  CHECK_ERRNO(ENOMEM);
  errno = 0;
  void *many[64];
  int got = 0;
  for (int i = 0; i < 64; i++) { /* exhausts the segment in use, then needs a new one */
    many[i] = alloy_malloc(1024 * 1024);
    if (many[i]) got++;
    else CHECK_ERRNO(ENOMEM);
  }
  CHECK_LT(got, 64);
  os_set_fail_after(-1);
  void *again = alloy_malloc(3 * ALLOY_MiB);
  CHECK_NOT_NULL(again);
  memset(again, 1, 3 * ALLOY_MiB);
  alloy_free(again);
  for (int i = 0; i < 64; i++) alloy_free(many[i]);
  CHECK_EQ(*(volatile char *)keep, *(volatile char *)keep);
  alloy_free(keep);
}

int main(void) {
  test_map();
  test_large_and_huge();
  test_empty_regions_return();
  test_os_failure();
  return check_done();
}
