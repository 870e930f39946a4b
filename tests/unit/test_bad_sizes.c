/*
 * test_bad_sizes.c - impossible sizes and bad alignments through the
 * prefixed API, where test_usable_size.c, test_realloc.c and test_aligned.c
 * leave gaps:
 *
 *  - sizes beyond the address space or above PTRDIFF_MAX (2^47, 2^48, 2^60,
 *    PTRDIFF_MAX minus a little) for malloc, calloc without overflow,
 *    realloc(NULL, n) and reallocarray(NULL, ...): NULL + ENOMEM;
 *  - calloc(0, SIZE_MAX) and calloc(SIZE_MAX, 0) are legal (non-NULL, freeable);
 *  - aligned_alloc with alignment 0 or not a power of two (3, 24, 48, 4097,
 *    2^63 + 8, SIZE_MAX): NULL + EINVAL, also when the size is impossible
 *    too; with powers of two below 16 (1, 2, 4): a usable block;
 *  - huge power-of-two alignments (2^62, 2^63 = SIZE_MAX/2+1) with small and
 *    zero sizes: aligned_alloc gives NULL + ENOMEM, posix_memalign returns
 *    ENOMEM and leaves *out untouched, memalign gives NULL (ENOMEM or EINVAL);
 *    posix_memalign with a non-power-of-two huge alignment (2^63 + 8, 2^62 +
 *    8) gives EINVAL, *out untouched;
 *  - memalign with alignment 0, 1, 3 gives an ordinary block; a
 *    non-power-of-two alignment is rounded up to the next power of two, as
 *    glibc does (24 -> 32, 48 -> 64, 4097 -> 8192, 65537 -> 131072,
 *    3 MiB -> 4 MiB); alignments above PTRDIFF_MAX give NULL;
 *  - realloc of aligned blocks (aligned_alloc 64 / 4096 / 1 MiB) to
 *    impossible sizes: NULL + ENOMEM, the block keeps its contents,
 *    alignment and usable size, and can still be freed;
 *  - reallocarray(p, 0, n) and (p, n, 0) free p like realloc(p, 0);
 *  - free_sized / free_aligned_sized of NULL with non-zero sizes are no-ops;
 *  - sizes the kernel would refuse to commit under its default (heuristic)
 *    overcommit policy, twice RAM + swap: NULL + ENOMEM from malloc,
 *    calloc, realloc (growing a live block, which keeps it), aligned_alloc
 *    and posix_memalign, instead of a pointer whose pages the OOM killer
 *    collects later (skipped under overcommit_memory=1, where the kernel
 *    grants anything);
 *  - none of the failed calls changes the statistics (bytes allocated,
 *    allocations counted), and the allocator works afterwards.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "api.h"
#include "check.h"

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

static const size_t PMAX = (size_t)PTRDIFF_MAX;

/* Sizes no allocation can satisfy on x86-64 (47-bit user address space). */
static const size_t impossible[] = {
    (size_t)1 << 47,      (size_t)1 << 48,       (size_t)1 << 60,
    (size_t)PTRDIFF_MAX - 4 * 1024 * 1024, (size_t)PTRDIFF_MAX - 1, (size_t)PTRDIFF_MAX + 2,
    ((size_t)1 << 63) + 4096, SIZE_MAX - 2 * 1024 * 1024 + 1, SIZE_MAX - 16};
#define NIMPOSSIBLE (sizeof impossible / sizeof impossible[0])

static volatile size_t opaque_zero; /* hides constants from the compiler's size checks */

static void check_impossible_sizes(void)
{
  for (size_t i = 0; i < NIMPOSSIBLE; i++) {
    size_t n = impossible[i] + opaque_zero;
    errno = 0;
    void *p = alloy_malloc(n);
    CHECK_MSG(p == NULL && errno == ENOMEM, "malloc(%zu) = %p errno %d, want NULL/ENOMEM", n, p,
              errno);
    errno = 0;
    p = alloy_calloc(1, n);
    CHECK_MSG(p == NULL && errno == ENOMEM, "calloc(1, %zu) = %p errno %d, want NULL/ENOMEM", n,
              p, errno);
    errno = 0;
    p = alloy_realloc(NULL, n);
    CHECK_MSG(p == NULL && errno == ENOMEM, "realloc(NULL, %zu) = %p errno %d, want NULL/ENOMEM",
              n, p, errno);
    errno = 0;
    p = alloy_aligned_alloc(64, n);
    CHECK_MSG(p == NULL && errno == ENOMEM,
              "aligned_alloc(64, %zu) = %p errno %d, want NULL/ENOMEM", n, p, errno);
  }
  /* calloc: no overflow, but the product is above PTRDIFF_MAX. */
  const size_t pairs[][2] = {{1, PMAX + 1},
                             {2, PMAX / 2 + 1},
                             {PMAX / 2 + 1, 2},
                             {(size_t)1 << 31, (size_t)1 << 32},
                             {PMAX, 1},
                             {4096, (size_t)1 << 50}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = alloy_calloc(pairs[i][0] + opaque_zero, pairs[i][1]);
    CHECK_MSG(p == NULL && errno == ENOMEM, "calloc(%zu, %zu) = %p errno %d, want NULL/ENOMEM",
              pairs[i][0], pairs[i][1], p, errno);
  }
  /* reallocarray(NULL, ...): overflow and impossible products. */
  const size_t rpairs[][2] = {{SIZE_MAX, 2}, {(size_t)1 << 32, (size_t)1 << 32}, {1, PMAX + 1},
                              {3, SIZE_MAX / 3 + 1}};
  for (size_t i = 0; i < sizeof rpairs / sizeof rpairs[0]; i++) {
    errno = 0;
    void *p = alloy_reallocarray(NULL, rpairs[i][0] + opaque_zero, rpairs[i][1]);
    CHECK_MSG(p == NULL && errno == ENOMEM,
              "reallocarray(NULL, %zu, %zu) = %p errno %d, want NULL/ENOMEM", rpairs[i][0],
              rpairs[i][1], p, errno);
  }
  /* Zero products are legal, whatever the other factor. */
  void *z1 = alloy_calloc(0, SIZE_MAX + opaque_zero), *z2 = alloy_calloc(SIZE_MAX + opaque_zero, 0);
  CHECK_NOT_NULL(z1);
  CHECK_NOT_NULL(z2);
  CHECK(z1 != z2);
  alloy_free(z1);
  alloy_free(z2);
}

/* 0, 1 or 2 (/proc/sys/vm/overcommit_memory); -1 when unreadable. */
static int overcommit_mode(void)
{
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = -1;
  if (f) {
    if (fscanf(f, "%d", &mode) != 1) mode = -1;
    fclose(f);
  }
  return mode;
}

static void check_beyond_memory(void)
{
  struct sysinfo si;
  if (overcommit_mode() == 1 || sysinfo(&si) != 0) {
    fprintf(stderr, "beyond_memory: skipped (overcommit_memory=1 or no sysinfo)\n");
    return;
  }
  size_t n = 2 * ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit + opaque_zero;
  void *p;
  errno = 0;
  p = alloy_malloc(n);
  CHECK_MSG(p == NULL && errno == ENOMEM, "malloc(%zu) beyond RAM + swap = %p errno %d", n, p, errno);
  errno = 0;
  p = alloy_calloc(n / 4096, 4096);
  CHECK_MSG(p == NULL && errno == ENOMEM, "calloc beyond RAM + swap = %p errno %d", p, errno);
  errno = 0;
  p = alloy_aligned_alloc(1 << 21, n);
  CHECK_MSG(p == NULL && errno == ENOMEM, "aligned_alloc beyond RAM + swap = %p errno %d", p, errno);
  p = NULL;
  CHECK_EQ(alloy_posix_memalign(&p, 4096, n), ENOMEM);
  CHECK_NULL(p);
  char *live = alloy_malloc(5 * MiB);
  REQUIRE(live != NULL);
  memset(live, 0x5a, 5 * MiB);
  errno = 0;
  p = alloy_realloc(live, n);
  CHECK_MSG(p == NULL && errno == ENOMEM, "realloc to beyond RAM + swap = %p errno %d", p, errno);
  CHECK(live[0] == 0x5a && live[5 * MiB - 1] == 0x5a);
  alloy_free(live);
}

static void check_aligned_alloc_einval(void)
{
  const size_t bad_align[] = {0, 3, 5, 24, 48, 100, 4097, 65535, ((size_t)1 << 63) + 8,
                              ((size_t)1 << 62) + 1, SIZE_MAX};
  const size_t sizes[] = {0, 1, 64, 4096, 100000, 5 * MiB, SIZE_MAX};
  for (size_t a = 0; a < sizeof bad_align / sizeof bad_align[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      errno = 0;
      void *p = alloy_aligned_alloc(bad_align[a] + opaque_zero, sizes[s]);
      CHECK_MSG(p == NULL && errno == EINVAL,
                "aligned_alloc(%zu, %zu) = %p errno %d, want NULL/EINVAL", bad_align[a],
                sizes[s], p, errno);
      if (p)
        alloy_free(p);
    }
  }
  /* Powers of two below the minimum alignment are fine. */
  for (size_t a = 1; a <= 8; a *= 2) {
    unsigned char *p = alloy_aligned_alloc(a, 40);
    CHECK_MSG(p != NULL, "aligned_alloc(%zu, 40) returned NULL", a);
    if (p) {
      CHECK_ALIGNED(p, 16);
      CHECK_GE(alloy_usable_size(p), 40);
      memset(p, 1, 40);
      alloy_free(p);
    }
  }
}

static void check_huge_alignments(void)
{
  const size_t huge_align[] = {(size_t)1 << 62, ((size_t)1 << 63) /* SIZE_MAX/2+1 */};
  const size_t sizes[] = {0, 1, 16, 4096, 3 * MiB, PMAX + 1};
  for (size_t a = 0; a < sizeof huge_align / sizeof huge_align[0]; a++) {
    size_t al = huge_align[a] + opaque_zero;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t n = sizes[s];
      errno = 0;
      void *p = alloy_aligned_alloc(al, n);
      CHECK_MSG(p == NULL && errno == ENOMEM,
                "aligned_alloc(%zu, %zu) = %p errno %d, want NULL/ENOMEM", al, n, p, errno);
      errno = 0;
      p = alloy_memalign(al, n);
      CHECK_MSG(p == NULL && (errno == ENOMEM || errno == EINVAL),
                "memalign(%zu, %zu) = %p errno %d, want NULL with ENOMEM or EINVAL", al, n, p,
                errno);
      void *sentinel = (void *)&huge_align[a];
      void *out = sentinel;
      int rc = alloy_posix_memalign(&out, al, n);
      CHECK_MSG(rc == ENOMEM, "posix_memalign(%zu, %zu) returned %d, want ENOMEM", al, n, rc);
      CHECK_MSG(out == sentinel, "posix_memalign(%zu, %zu) failed but changed *out to %p", al, n,
                out);
    }
  }
  /* Huge, but not a power of two: EINVAL from posix_memalign. */
  const size_t bad[] = {((size_t)1 << 63) + 8, ((size_t)1 << 62) + 8, ((size_t)1 << 62) + 4096,
                        SIZE_MAX - 7};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *sentinel = (void *)&bad[i];
    void *out = sentinel;
    int rc = alloy_posix_memalign(&out, bad[i] + opaque_zero, 64);
    CHECK_MSG(rc == EINVAL, "posix_memalign(%zu, 64) returned %d, want EINVAL", bad[i], rc);
    CHECK_MSG(out == sentinel, "posix_memalign(%zu, 64) failed but changed *out", bad[i]);
    errno = 0;
    void *p = alloy_memalign(bad[i] + opaque_zero, 64);
    CHECK_MSG(p == NULL && (errno == ENOMEM || errno == EINVAL),
              "memalign(%zu, 64) = %p errno %d, want NULL with ENOMEM or EINVAL", bad[i], p,
              errno);
  }
}

static void check_memalign_rounding(void)
{
  const struct {
    size_t align, want;
  } cases[] = {{0, 16},      {1, 16},      {3, 16},        {24, 32},
               {48, 64},     {100, 128},   {4097, 8192},   {65537, 131072},
               {3 * MiB, 4 * MiB}};
  const size_t sizes[] = {0, 10, 100, 5000, 100000};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t a = cases[i].align + opaque_zero, n = sizes[s];
      unsigned char *p = alloy_memalign(a, n);
      CHECK_MSG(p != NULL, "memalign(%zu, %zu) returned NULL", a, n);
      if (!p)
        continue;
      CHECK_MSG((uintptr_t)p % cases[i].want == 0, "memalign(%zu, %zu) = %p, not %zu-aligned", a,
                n, (void *)p, cases[i].want);
      CHECK_GE(alloy_usable_size(p), n);
      memset(p, 0x3c, n);
      alloy_free(p);
    }
  }
}

/* A failed realloc of an aligned block leaves it as it was. */
static void check_realloc_aligned_impossible(void)
{
  const size_t aligns[] = {64, 4096, 1 * MiB};
  const size_t sizes[] = {100, 20000, 300000};
  const size_t targets[] = {SIZE_MAX, PMAX + 1, PMAX, (size_t)1 << 48, SIZE_MAX - 4096};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t al = aligns[a], n = sizes[s];
      unsigned char *p = alloy_aligned_alloc(al, n);
      REQUIRE(p != NULL);
      for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 + a + s);
      size_t usable = alloy_usable_size(p);
      for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        errno = 0;
        void *q = alloy_realloc(p, targets[t] + opaque_zero);
        CHECK_MSG(q == NULL && errno == ENOMEM,
                  "realloc(aligned(%zu, %zu), %zu) = %p errno %d, want NULL/ENOMEM", al, n,
                  targets[t], q, errno);
        errno = 0;
        q = alloy_reallocarray(p, targets[t] + opaque_zero, 2);
        CHECK_MSG(q == NULL && errno == ENOMEM,
                  "reallocarray(aligned(%zu, %zu), %zu, 2) = %p errno %d, want NULL/ENOMEM", al,
                  n, targets[t], q, errno);
      }
      CHECK_EQ(alloy_usable_size(p), usable);
      CHECK_ALIGNED(p, al);
      size_t bad = SIZE_MAX;
      for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
        if (p[i] != (unsigned char)(i * 7 + a + s))
          bad = i;
      CHECK_MSG(bad == SIZE_MAX, "failed reallocs damaged aligned(%zu, %zu) at byte %zu", al, n,
                bad);
      alloy_free_aligned_sized(p, al, n);
    }
  }
}

static void check_reallocarray_zero(void)
{
  const size_t sizes[] = {24, 5000, 300000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int form = 0; form < 2; form++) {
#ifdef ALLOY_HAVE_STATS
      alloy_stats_t before, after;
      alloy_stats_get(&before);
#endif
      unsigned char *p = alloy_malloc(sizes[i]);
      REQUIRE(p != NULL);
      memset(p, 9, sizes[i]);
      void *q = form ? alloy_reallocarray(p, sizes[i], 0) : alloy_reallocarray(p, 0, sizes[i]);
      CHECK_MSG(q == NULL, "reallocarray(p[%zu], %s) = %p, want NULL (p freed)", sizes[i],
                form ? "n, 0" : "0, n", q);
      if (q)
        alloy_free(q);
#ifdef ALLOY_HAVE_STATS
      alloy_stats_get(&after);
      CHECK_MSG(after.allocated <= before.allocated,
                "reallocarray(p[%zu], %s) did not free: allocated %" PRIu64 " -> %" PRIu64,
                sizes[i], form ? "n, 0" : "0, n", before.allocated, after.allocated);
#endif
    }
  }
}

static void check_null_sized_frees(void)
{
  alloy_free_sized(NULL, 100);
  alloy_free_sized(NULL, SIZE_MAX);
  alloy_free_aligned_sized(NULL, 64, 100);
  alloy_free_aligned_sized(NULL, 4096, SIZE_MAX);
  alloy_free_aligned_sized(NULL, 3, 100); /* not even a valid alignment: still a no-op */
}

int main(void)
{
#ifdef ALLOY_HAVE_STATS
  /* Prime the thread's heap, then make sure failed calls count nothing. */
  alloy_free(alloy_malloc(100));
  alloy_stats_t s0, s1;
  alloy_stats_get(&s0);
#endif
  check_impossible_sizes();
  check_aligned_alloc_einval();
  check_huge_alignments();
  check_null_sized_frees();
#ifdef ALLOY_HAVE_STATS
  alloy_stats_get(&s1);
  /* Only the calls above that succeed (and are freed) are counted: two
   * zero-sized callocs and four aligned_alloc(1..8, 40). */
  CHECK_MSG(s1.allocated == s0.allocated,
            "failed calls changed 'allocated': %" PRIu64 " -> %" PRIu64, s0.allocated,
            s1.allocated);
  CHECK_MSG(s1.nmalloc - s0.nmalloc <= 6, "failed calls were counted: nmalloc %" PRIu64
            " -> %" PRIu64, s0.nmalloc, s1.nmalloc);
#endif
  check_beyond_memory();
  check_memalign_rounding();
  check_realloc_aligned_impossible();
  check_reallocarray_zero();
  /* Still working afterwards, in every size range. */
  const size_t sizes[] = {1, 100, 5000, 40000, 300000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = alloy_malloc(sizes[i]);
    CHECK_NOT_NULL(p);
    if (p) {
      memset(p, 0x42, sizes[i]);
      alloy_free(p);
    }
  }
  return check_done();
}
