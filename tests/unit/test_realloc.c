/*
 * test_realloc.c - alloy_realloc and alloy_reallocarray.
 *
 *  - every pair of sizes from a list spanning small, medium (8K-64K), large
 *    (64K-2MiB) and huge (>2MiB) blocks: the first min(old, new) bytes survive,
 *    the result is 16-aligned, usable >= new size and fully writable;
 *  - long growth and shrink chains (1 byte steps, then geometric steps up to
 *    40 MiB and back) keep the contents;
 *  - realloc(NULL, n) behaves as malloc(n); realloc(p, 0) frees p and returns
 *    NULL, as glibc does;
 *  - realloc to SIZE_MAX, PTRDIFF_MAX and PTRDIFF_MAX + 1 fails with NULL and
 *    ENOMEM and leaves the old block intact and still usable (for old blocks
 *    of every size range);
 *  - reallocarray multiplies with overflow checking (NULL + ENOMEM, old block
 *    intact) and otherwise behaves like realloc;
 *  - a large block shrunk in place gives back the memory past its new end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "api.h"
#include "check.h"

/* The byte stored at offset i of a block filled with seed s. */
static inline unsigned char pat(size_t i, unsigned s)
{
  return (unsigned char)((i * 2654435761u + s) >> 7 ^ (i >> 13));
}

static void fill(unsigned char *p, size_t n, unsigned s)
{
  for (size_t i = 0; i < n; i++)
    p[i] = pat(i, s);
}

/* Offset of the first byte in [from, n) that does not hold the pattern, or
 * SIZE_MAX if all do. */
static size_t first_bad(const unsigned char *p, size_t from, size_t n, unsigned s)
{
  for (size_t i = from; i < n; i++)
    if (p[i] != pat(i, s))
      return i;
  return SIZE_MAX;
}

static const size_t sizes[] = {
    1,         8,         15,        16,        17,         100,        1000,
    4000,      8191,      8192,      8193,      16000,      32768,      65535,
    65536,     65537,     100000,    1u << 20,  (2u << 20) - 1, 2u << 20, (2u << 20) + 1,
    3u << 20,  8u << 20,  (33u << 20) + 5};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void check_pairs(void)
{
  unsigned seed = 1;
  for (size_t a = 0; a < NSIZES; a++) {
    for (size_t b = 0; b < NSIZES; b++, seed++) {
      size_t from = sizes[a], to = sizes[b];
      unsigned char *p = alloy_malloc(from);
      REQUIRE(p != NULL);
      fill(p, from, seed);
      unsigned char *q = alloy_realloc(p, to);
      CHECK_MSG(q != NULL, "realloc(%zu -> %zu) returned NULL", from, to);
      if (!q) {
        alloy_free(p);
        continue;
      }
      size_t keep = from < to ? from : to;
      size_t bad = first_bad(q, 0, keep, seed);
      CHECK_MSG(bad == SIZE_MAX, "realloc(%zu -> %zu): byte %zu lost (0x%02x, want 0x%02x)",
                from, to, bad, bad == SIZE_MAX ? 0 : q[bad], bad == SIZE_MAX ? 0 : pat(bad, seed));
      CHECK_ALIGNED(q, 16);
      size_t usable = alloy_usable_size(q);
      CHECK_MSG(usable >= to, "realloc(%zu -> %zu): usable %zu", from, to, usable);
      memset(q, 0xee, usable);
      alloy_free(q);
    }
  }
}

/* Grow one block a byte at a time (cheap in-place growth is allowed, losing
 * data is not), then by geometric steps to 40 MiB, then shrink it back. */
static void check_chains(void)
{
  const unsigned s = 77;
  size_t n = 1;
  unsigned char *p = alloy_malloc(n);
  REQUIRE(p != NULL);
  fill(p, n, s);
  for (; n < 5000; n++) {
    unsigned char *q = alloy_realloc(p, n + 1);
    REQUIRE(q != NULL);
    p = q;
    p[n] = pat(n, s);
    size_t bad = first_bad(p, 0, n + 1, s);
    CHECK_MSG(bad == SIZE_MAX, "1-byte growth to %zu lost byte %zu", n + 1, bad);
    if (bad != SIZE_MAX)
      break;
  }
  /* here the block holds n bytes */
  while (n < (40u << 20)) {
    size_t next = n + n / 3 + 97;
    unsigned char *q = alloy_realloc(p, next);
    REQUIRE(q != NULL);
    p = q;
    size_t bad = first_bad(p, 0, n, s);
    CHECK_MSG(bad == SIZE_MAX, "growth %zu -> %zu lost byte %zu", n, next, bad);
    CHECK_GE(alloy_usable_size(p), next);
    for (size_t i = n; i < next; i++) /* extend the position-based pattern */
      p[i] = pat(i, s);
    n = next;
  }
  while (n > 10) {
    size_t next = n / 3 + 1;
    unsigned char *q = alloy_realloc(p, next);
    REQUIRE(q != NULL);
    p = q;
    size_t bad = first_bad(p, 0, next, s);
    CHECK_MSG(bad == SIZE_MAX, "shrink %zu -> %zu lost byte %zu", n, next, bad);
    CHECK_GE(alloy_usable_size(p), next);
    n = next;
  }
  alloy_free(p);
}

static void check_null_and_zero(void)
{
  /* realloc(NULL, n) is malloc(n). */
  const size_t ns[] = {0, 1, 100, 10000, 100000, 5u << 20};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    unsigned char *p = alloy_realloc(NULL, ns[i]);
    CHECK_MSG(p != NULL, "realloc(NULL, %zu) returned NULL", ns[i]);
    if (!p)
      continue;
    CHECK_ALIGNED(p, 16);
    CHECK_GE(alloy_usable_size(p), ns[i]);
    memset(p, 1, ns[i]);
    alloy_free(p);
  }
  unsigned char *p = alloy_reallocarray(NULL, 10, 10);
  CHECK_NOT_NULL(p);
  CHECK_GE(alloy_usable_size(p), 100);
  alloy_free(p);

  /* realloc(p, 0) frees p and returns NULL (glibc's behaviour). */
  for (size_t i = 1; i < sizeof ns / sizeof ns[0]; i++) {
#ifdef ALLOY_HAVE_STATS
    alloy_stats_t before, after;
    alloy_stats_get(&before);
#endif
    unsigned char *q = alloy_malloc(ns[i]);
    REQUIRE(q != NULL);
    memset(q, 2, ns[i]);
    unsigned char *r = alloy_realloc(q, 0);
    CHECK_MSG(r == NULL, "realloc(p[%zu], 0) = %p, want NULL", ns[i], (void *)r);
    if (r)
      alloy_free(r);
#ifdef ALLOY_HAVE_STATS
    alloy_stats_get(&after);
    /* This thread's counters are folded by alloy_stats_get, so they are
     * exact: the block was allocated and then freed by realloc(p, 0), so no
     * more bytes are live than before. */
    CHECK_MSG(after.allocated <= before.allocated,
              "realloc(p[%zu], 0) did not free: allocated %" PRIu64 " -> %" PRIu64, ns[i],
              before.allocated, after.allocated);
    CHECK_MSG(after.nmalloc - before.nmalloc >= 1, "malloc(%zu) not counted", ns[i]);
#endif
  }
}

/* A realloc that cannot succeed leaves the old block alone. */
static void check_impossible(void)
{
  const size_t impossible[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096,
                               (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1};
  const size_t olds[] = {24, 5000, 20000, 200000, 3u << 20};
  for (size_t o = 0; o < sizeof olds / sizeof olds[0]; o++) {
    size_t old = olds[o];
    unsigned s = (unsigned)(900 + o);
    unsigned char *p = alloy_malloc(old);
    REQUIRE(p != NULL);
    fill(p, old, s);
    for (size_t k = 0; k < sizeof impossible / sizeof impossible[0]; k++) {
      errno = 0;
      unsigned char *q = alloy_realloc(p, impossible[k]);
      CHECK_MSG(q == NULL, "realloc(p[%zu], %zu) = %p, want NULL", old, impossible[k], (void *)q);
      CHECK_MSG(errno == ENOMEM, "realloc(p[%zu], %zu): errno %d, want ENOMEM", old,
                impossible[k], errno);
      size_t bad = first_bad(p, 0, old, s);
      CHECK_MSG(bad == SIZE_MAX, "failed realloc(p[%zu], %zu) damaged byte %zu", old,
                impossible[k], bad);
    }
    /* reallocarray: count * size overflows. */
    const size_t pairs[][2] = {{SIZE_MAX / 2, 3}, {(size_t)1 << 32, (size_t)1 << 32},
                               {SIZE_MAX, SIZE_MAX}, {3, SIZE_MAX / 2}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
      errno = 0;
      unsigned char *q = alloy_reallocarray(p, pairs[k][0], pairs[k][1]);
      CHECK_MSG(q == NULL && errno == ENOMEM,
                "reallocarray(p[%zu], %zu, %zu) = %p errno %d, want NULL/ENOMEM", old,
                pairs[k][0], pairs[k][1], (void *)q, errno);
      size_t bad = first_bad(p, 0, old, s);
      CHECK_MSG(bad == SIZE_MAX, "failed reallocarray(p[%zu]) damaged byte %zu", old, bad);
    }
    /* Still a live, usable block: it can be written, grown and freed. */
    CHECK_GE(alloy_usable_size(p), old);
    unsigned char *q = alloy_realloc(p, old * 2);
    REQUIRE(q != NULL);
    size_t bad = first_bad(q, 0, old, s);
    CHECK_MSG(bad == SIZE_MAX, "growing p[%zu] after failed reallocs lost byte %zu", old, bad);
    memset(q, 3, old * 2);
    /* reallocarray without overflow behaves as realloc. */
    unsigned char *r = alloy_reallocarray(q, old, 3);
    REQUIRE(r != NULL);
    for (size_t i = 0; i < old * 2; i++)
      if (r[i] != 3) {
        CHECK_MSG(r[i] == 3, "reallocarray(p[%zu], %zu, 3) lost byte %zu", old * 2, old, i);
        break;
      }
    CHECK_GE(alloy_usable_size(r), old * 3);
    alloy_free(r);
  }
}

/* Same-size and shrink-in-place reallocs keep contents; usable size follows. */
static void check_same_size(void)
{
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = sizes[i];
    unsigned char *p = alloy_malloc(n);
    REQUIRE(p != NULL);
    fill(p, n, (unsigned)i);
    unsigned char *q = alloy_realloc(p, n);
    REQUIRE(q != NULL);
    CHECK_MSG(first_bad(q, 0, n, (unsigned)i) == SIZE_MAX, "realloc(p[%zu], same) lost data", n);
    unsigned char *r = alloy_realloc(q, n / 2 + 1);
    REQUIRE(r != NULL);
    CHECK_MSG(first_bad(r, 0, n / 2 + 1, (unsigned)i) == SIZE_MAX,
              "realloc(p[%zu], half) lost data", n);
    CHECK_GE(alloy_usable_size(r), n / 2 + 1);
    alloy_free(r);
  }
}

/* A block that must move to grow gets at least a quarter more room, so a
 * buffer grown a little at a time does not move at every size class; the
 * contents come along; shrinking and large sizes get what was asked. */
static void check_growth_headroom(void)
{
  char *p = alloy_malloc(1000);
  REQUIRE(p != NULL);
  size_t old = alloy_usable_size(p);
  memset(p, 0x61, old);
  char *q = alloy_realloc(p, old + 1);
  REQUIRE(q != NULL);
  CHECK_GE(alloy_usable_size(q), old + old / 4);
  for (size_t i = 0; i < old; i++) CHECK_EQ(q[i], 0x61);
  size_t moves = 0, usable = alloy_usable_size(q);
  for (size_t n = usable + 1; n < 8192; n += 16) { /* +16 at a time up to 8 KiB */
    char *r = alloy_realloc(q, n);
    REQUIRE(r != NULL);
    moves += r != q;
    q = r;
  }
  CHECK_LE(moves, 12); /* 1.25x a move from ~1.3 KiB to 8 KiB: about 8 */
  alloy_free(q);
  char *big = alloy_malloc(100000);
  char *bigger = alloy_realloc(big, 300000);
  REQUIRE(bigger != NULL);
  CHECK_LT(alloy_usable_size(bigger), 300000 + 4096 * 2); /* large: no headroom */
  alloy_free(bigger);
}

#ifdef ALLOY_HAVE_STATS
/* OS pages of [from, to) resident, by mincore. */
static size_t resident_pages(uintptr_t from, uintptr_t to)
{
  static unsigned char vec[1024];
  size_t n = (to - from) / 4096, count = 0;
  REQUIRE(n <= sizeof vec && mincore((void *)from, to - from, vec) == 0);
  for (size_t i = 0; i < n; i++) count += vec[i] & 1;
  return count;
}

/* A large block shrunk in place, to half its size or more, keeps its
 * address and contents and gives back the part past its new end: purged
 * with the rest of the free memory.  Kept (as before), that part stayed
 * resident until the block was freed. */
static void check_large_shrink_gives_back(void)
{
  size_t from = 1900000, to = 1000000;
  unsigned char *p = alloy_malloc(from);
  REQUIRE(p != NULL);
  fill(p, from, 7);
  unsigned char *q = alloy_realloc(p, to);
  REQUIRE(q != NULL);
  CHECK(q == p);
  CHECK_LT(alloy_usable_size(q), to + 4096);
  CHECK(first_bad(q, 0, to, 7) == SIZE_MAX);
  CHECK_EQ(alloy_mallctl("arena.4096.purge", NULL, NULL, NULL, 0), 0);
  uintptr_t tail = ((uintptr_t)q + to + 65535) & ~(uintptr_t)65535; /* the next 64 KiB slice */
  uintptr_t end = ((uintptr_t)p + from) & ~(uintptr_t)4095;
  CHECK_EQ(resident_pages(tail, end), 0);
  CHECK(first_bad(q, 0, to, 7) == SIZE_MAX);
  alloy_free(q);
}
#endif

int main(void)
{
#ifdef ALLOY_HAVE_STATS
  check_large_shrink_gives_back();
#endif
  check_growth_headroom();
  check_pairs();
  check_chains();
  check_null_and_zero();
  check_impossible();
  check_same_size();
  return check_done();
}
