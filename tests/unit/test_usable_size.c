/*
 * test_usable_size.c - malloc/calloc/free basics through the prefixed API.
 *
 *  - every size 0..70000 and sampled sizes up to 64 MiB: non-NULL, 16-aligned,
 *    alloy_usable_size >= size, the whole usable range is writable and does
 *    not overlap the (still live) blocks allocated just before;
 *  - malloc(0) gives distinct non-NULL pointers;
 *  - calloc returns zeroed memory, also when it reuses blocks that were
 *    dirtied (malloc, fill 0xff, free, calloc the same size), for small to
 *    huge sizes; calloc(count, size) overflow gives NULL + ENOMEM;
 *  - malloc of impossible sizes (SIZE_MAX, PTRDIFF_MAX, ...) gives NULL + ENOMEM;
 *  - free(NULL), free_sized(NULL, 0) are no-ops; usable_size(NULL) == 0;
 *  - alloy_stats_get: counters and byte totals grow with allocations and
 *    shrink with frees; the invariants between the fields hold.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "api.h"
#include "check.h"
#include "testutil.h" /* all_bytes */

/* Offset of the first non-zero byte in p[0..n), or SIZE_MAX. */
static size_t first_nonzero(const unsigned char *p, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v)
      break;
  }
  for (; i < n; i++)
    if (p[i])
      return i;
  return SIZE_MAX;
}

#define RING 64

struct ring_blk {
  unsigned char *p;
  size_t size, usable;
  unsigned char fill;
};

static void retire(struct ring_blk *b)
{
  if (!b->p)
    return;
  CHECK_MSG(all_bytes(b->p, b->usable, b->fill),
            "block of size %zu at %p (usable %zu) was overwritten while live", b->size,
            (void *)b->p, b->usable);
  if (b->size & 1)
    alloy_free_sized(b->p, b->size);
  else
    alloy_free(b->p);
  b->p = NULL;
}

static void check_one(struct ring_blk *slot, size_t size, unsigned char fill)
{
  retire(slot);
  unsigned char *p = alloy_malloc(size);
  CHECK_MSG(p != NULL, "malloc(%zu) returned NULL", size);
  if (!p)
    return;
  CHECK_MSG((uintptr_t)p % 16 == 0, "malloc(%zu) = %p is not 16-aligned", size, (void *)p);
  size_t usable = alloy_usable_size(p);
  CHECK_MSG(usable >= size, "malloc(%zu): usable size %zu", size, usable);
  memset(p, fill, usable);
  slot->p = p;
  slot->size = size;
  slot->usable = usable;
  slot->fill = fill;
}

static struct ring_blk ring[RING];

/* One sampled size into the next ring slot, with its own fill byte. */
static void check_next(size_t size)
{
  static size_t k;
  k++;
  check_one(&ring[k % RING], size, (unsigned char)k);
}

static void check_all_sizes(void)
{
  for (size_t n = 0; n <= 70000; n++)
    check_one(&ring[n % RING], n, (unsigned char)(n * 7 + 1));
  /* Sampled larger sizes, both sides of powers of two and page multiples. */
  for (size_t base = 70001; base <= (64u << 20); base += base / 5 + 4093) {
    check_next(base);
    check_next(base | 4095);
  }
  for (int sh = 17; sh <= 26; sh++) {
    size_t p2 = (size_t)1 << sh;
    check_next(p2 - 1);
    check_next(p2);
    check_next(p2 + 1);
  }
  for (int i = 0; i < RING; i++)
    retire(&ring[i]);
}

static int cmp_ptr(const void *a, const void *b)
{
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static void check_malloc_zero(void)
{
  enum { N = 2000 };
  static void *v[N];
  for (int i = 0; i < N; i++) {
    v[i] = alloy_malloc(0);
    CHECK_NOT_NULL(v[i]);
    CHECK_ALIGNED(v[i], 16);
  }
  qsort(v, N, sizeof v[0], cmp_ptr);
  int dups = 0;
  for (int i = 1; i < N; i++)
    dups += v[i] == v[i - 1] && v[i] != NULL;
  CHECK_MSG(dups == 0, "malloc(0) returned %d duplicate pointers", dups);
  for (int i = 0; i < N; i++)
    alloy_free(v[i]);
}

static const size_t calloc_sizes[] = {1,     7,      16,     24,      100,      500,
                                      1024,  4000,   8192,   20000,   65536,    70000,
                                      200000, 1u << 20, (2u << 20) + 100, 5u << 20,
                                      (17u << 20) + 3};
#define NCALLOC (sizeof calloc_sizes / sizeof calloc_sizes[0])

static void check_calloc(void)
{
  /* Dirty reuse: the same size right after freeing a 0xff-filled block. */
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < NCALLOC; i++) {
      size_t n = calloc_sizes[i];
      unsigned char *p = alloy_malloc(n);
      REQUIRE(p != NULL);
      memset(p, 0xff, alloy_usable_size(p));
      alloy_free(p);
      unsigned char *q = alloy_calloc(1, n);
      CHECK_MSG(q != NULL, "calloc(1, %zu) returned NULL", n);
      if (!q)
        continue;
      size_t bad = first_nonzero(q, n);
      CHECK_MSG(bad == SIZE_MAX, "calloc(1, %zu) after dirty free: byte %zu = 0x%02x", n, bad,
                bad == SIZE_MAX ? 0 : q[bad]);
      memset(q, 0xff, n);
      alloy_free(q);
    }
  }
  /* Many dirty blocks freed together, then as many callocs of count*size. */
  enum { M = 300 };
  static unsigned char *v[M];
  for (size_t i = 0; i < NCALLOC; i++) {
    size_t n = calloc_sizes[i];
    int m = n > (1u << 20) ? 8 : M;
    for (int j = 0; j < m; j++) {
      v[j] = alloy_malloc(n);
      REQUIRE(v[j] != NULL);
      memset(v[j], 0xff, n);
    }
    for (int j = 0; j < m; j++)
      alloy_free(v[j]);
    for (int j = 0; j < m; j++) {
      size_t count = (n % 4 == 0) ? 4 : 1;
      v[j] = alloy_calloc(count, n / count);
      CHECK_NOT_NULL(v[j]);
      if (!v[j])
        continue;
      CHECK_ALIGNED(v[j], 16);
      size_t bad = first_nonzero(v[j], n);
      CHECK_MSG(bad == SIZE_MAX, "calloc(%zu, %zu) #%d: byte %zu not zero", count, n / count, j,
                bad);
      memset(v[j], 0xff, n);
    }
    for (int j = 0; j < m; j++)
      alloy_free(v[j]);
  }
  /* calloc(0, n) and calloc(n, 0) give freeable non-NULL pointers. */
  void *z1 = alloy_calloc(0, 16), *z2 = alloy_calloc(16, 0);
  CHECK_NOT_NULL(z1);
  CHECK_NOT_NULL(z2);
  CHECK(z1 != z2);
  alloy_free(z1);
  alloy_free(z2);
  /* Overflow of count * size. */
  const size_t ov[][2] = {{SIZE_MAX / 2, 3}, {(size_t)1 << 33, (size_t)1 << 33},
                          {SIZE_MAX, SIZE_MAX}, {2, SIZE_MAX / 2 + 1},
                          {SIZE_MAX, 2}, {65537, (size_t)1 << 48}};
  for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
    errno = 0;
    void *p = alloy_calloc(ov[i][0], ov[i][1]);
    CHECK_MSG(p == NULL, "calloc(%zu, %zu) = %p, want NULL", ov[i][0], ov[i][1], p);
    CHECK_MSG(errno == ENOMEM, "calloc(%zu, %zu): errno %d, want ENOMEM", ov[i][0], ov[i][1],
              errno);
  }
  /* No overflow but impossible. */
  volatile size_t huge = SIZE_MAX; /* hidden from the compiler's size checks */
  errno = 0;
  void *p = alloy_calloc(1, huge);
  CHECK(p == NULL && errno == ENOMEM);
}

static void check_impossible(void)
{
  const size_t sizes[] = {SIZE_MAX,          SIZE_MAX - 1,         SIZE_MAX - 4096,
                          SIZE_MAX - (8u << 20), (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1,
                          (size_t)1 << 62};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = 0;
    void *p = alloy_malloc(sizes[i]);
    CHECK_MSG(p == NULL, "malloc(%zu) = %p, want NULL", sizes[i], p);
    CHECK_MSG(errno == ENOMEM, "malloc(%zu): errno %d, want ENOMEM", sizes[i], errno);
  }
  alloy_free(NULL);
  alloy_free_sized(NULL, 0);
  alloy_free_aligned_sized(NULL, 64, 0);
  CHECK_EQ(alloy_usable_size(NULL), 0);
  /* Still working afterwards. */
  void *q = alloy_malloc(100);
  CHECK_NOT_NULL(q);
  alloy_free(q);
}

#ifdef ALLOY_HAVE_STATS
static void check_stats(void)
{
  alloy_stats_t s0, s1, s2, s3;
  enum { N = 1000, SZ = 1000 };
  static void *v[N];
  alloy_stats_get(&s0);
  for (int i = 0; i < N; i++) {
    v[i] = alloy_malloc(SZ);
    REQUIRE(v[i] != NULL);
  }
  alloy_stats_get(&s1);
  CHECK_GE(s1.nmalloc - s0.nmalloc, N);
  CHECK_GE(s1.allocated, s0.allocated + (uint64_t)N * SZ);
  CHECK_GE(s1.peak_allocated, s1.allocated);
  CHECK_GE(s1.mapped, s1.allocated);
  CHECK_GE(s1.peak_mapped, s1.mapped);
  CHECK_GE(s1.segments, 1);
  CHECK_GE(s1.threads, 1);
  for (int i = 0; i < N; i++)
    alloy_free(v[i]);
  alloy_stats_get(&s2);
  CHECK_LE(s2.allocated + (uint64_t)N * SZ, s1.allocated);
  CHECK_GE(s2.peak_allocated, s1.allocated);
  CHECK_EQ(s2.nmalloc, s1.nmalloc);

  /* A huge block lives in its own mapping. */
  size_t huge = 64u << 20;
  unsigned char *h = alloy_malloc(huge);
  REQUIRE(h != NULL);
  memset(h, 1, huge);
  alloy_stats_get(&s3);
  CHECK_GE(s3.huge_blocks, s2.huge_blocks + 1);
  CHECK_GE(s3.mapped, huge); /* (a cached mapping may be reused: no "+ huge") */
  CHECK_GE(s3.mapped, s3.allocated);
  CHECK_GE(s3.allocated, s2.allocated + huge);
  CHECK_GE(s3.peak_mapped, s3.mapped);
  alloy_free(h);
  alloy_stats_get(&s2);
  CHECK_EQ(s2.huge_blocks, s3.huge_blocks - 1);
  CHECK_LE(s2.allocated + huge, s3.allocated);
  alloy_collect();
  alloy_stats_get(&s3);
  CHECK_LE(s3.mapped, s2.mapped);
}
#endif

int main(void)
{
  check_all_sizes();
  check_malloc_zero();
  check_calloc();
  check_impossible();
#ifdef ALLOY_HAVE_STATS
  check_stats();
#endif
  return check_done();
}
