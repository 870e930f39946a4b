/*
 * test_guard.c - the guard options keep every other promise: alignment,
 * statistics, the quarantine, memory return.  Each case runs in a child
 * process with its own ALLOY_CONF (read at the child's first call):
 *
 *   sample_aligned    guard_sample:1: aligned requests of 16-64 KiB alignment
 *                     through every entry point come back aligned (the
 *                     sampled replacement used to drop the alignment)
 *   sample_sizes      guard_sample:1: a sampled block's usable size is its
 *                     class size, as nallocx predicts (it was the request
 *                     rounded up to the OS page or the block's alignment;
 *                     found by the fuzzer under guard_sample)
 *   sample_large      guard_sample:1: large and huge requests are never
 *                     replaced, so they neither count a huge allocation that
 *                     did not happen nor evict a quarantined block
 *   guard_sizes       guard:true: big blocks end against their guard page
 *                     and their usable size is what nallocx predicts (it
 *                     predicted the page-rounded size; found by the fuzzer)
 *   guard_huge_rss    guard:true: freed huge blocks stay quarantined but not
 *                     resident (16 x 32 MiB touched and freed: RSS back down)
 */
#include "api.h"
#include "check.h"
#include "internal.h" /* segment_totals */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

static void sample_aligned(void) {
  unsigned bad = 0, calls = 0;
  for (int i = 0; i < 3000; i++) {
    size_t align = (size_t)16384 << (i % 3); /* 16, 32, 64 KiB */
    size_t size = 1 + mix64((uint64_t)i) % (3 * align);
    void *p = NULL;
    switch (i % 4) {
    case 0: p = alloy_aligned_alloc(align, (size + align - 1) & ~(align - 1)); break;
    case 1:
      if (alloy_posix_memalign(&p, align, size) != 0) p = NULL;
      break;
    case 2: p = alloy_memalign(align, size); break;
    case 3: p = alloy_mallocx(size, ALLOY_MALLOCX_LG_ALIGN(14 + i % 3)); break;
    }
    REQUIRE(p != NULL);
    calls++;
    if ((uintptr_t)p % align != 0) bad++;
    memset(p, 1, size);
    alloy_free(p);
  }
  CHECK_MSG(bad == 0, "%u of %u aligned requests came back misaligned", bad, calls);
}

/* Every block, sampled or not, has the usable size nallocx predicts for
 * its request (jemalloc's contract: sdallocx and sized deletes rely on it,
 * and so do programs that size a buffer with nallocx). */
static void sample_sizes(void) {
  unsigned bad = 0, sampled = 0;
  segment_totals_t t0, t1;
  segment_totals(&t0);
  for (int i = 0; i < 3000; i++) {
    size_t size = 1 + mix64((uint64_t)i * 7 + 1) % (48 * KiB);
    int flags = i % 3 == 0 ? 0 : ALLOY_MALLOCX_LG_ALIGN(4 + i % 9); /* 16 B .. 4 KiB */
    void *p = i % 2 ? alloy_mallocx(size, flags) : alloy_malloc(size);
    REQUIRE(p != NULL);
    size_t want = alloy_nallocx(size, i % 2 ? flags : 0), got = alloy_sallocx(p, 0);
    if (got != want || alloy_usable_size(p) != want) {
      if (bad++ < 5) fprintf(stderr, "size %zu flags %#x: usable %zu, nallocx %zu\n", size, i % 2 ? flags : 0, got, want);
    }
    memset(p, 1, got);
    alloy_free(p);
  }
  segment_totals(&t1);
  sampled = (unsigned)(t1.big_nmalloc - t0.big_nmalloc); /* a sample is a guarded big block */
  CHECK_MSG(sampled > 0, "no allocation was sampled: the case tests nothing");
  CHECK_MSG(bad == 0, "%u of 3000 blocks (%u sampled) had a usable size other than nallocx's", bad, sampled);
}

/* guard:true: every big block's usable size is nallocx's, within a page
 * of the request, and its last usable byte writable (that a write past it
 * faults is tests/edge/guard.c's huge_overflow). */
static void guard_sizes(void) {
  unsigned bad = 0;
  for (int i = 0; i < 60; i++) {
    size_t size = 2 * MiB + 1 + mix64((uint64_t)i * 3 + 5) % (7 * MiB);
    int flags = i % 3 == 0 ? 0 : ALLOY_MALLOCX_LG_ALIGN(4 + i % 9); /* 16 B .. 4 KiB */
    void *p = i % 2 ? alloy_mallocx(size, flags) : alloy_malloc(size);
    REQUIRE(p != NULL);
    size_t want = alloy_nallocx(size, i % 2 ? flags : 0), got = alloy_sallocx(p, 0);
    if (got != want && bad++ < 5) fprintf(stderr, "size %zu flags %#x: usable %zu, nallocx %zu\n", size, i % 2 ? flags : 0, got, want);
    CHECK(got >= size && got - size < 4096);
    ((char *)p)[got - 1] = 1; /* the last usable byte is writable */
    alloy_free(p);
  }
  CHECK_MSG(bad == 0, "%u of 60 big blocks had a usable size other than nallocx's", bad);
  /* the largest blocks of a large segment: with the guard page they must
   * still fit in it (1952 KiB + 4 KiB in 62 slices of 32 KiB; a malloc of
   * 1984 KiB failed before) */
  for (size_t size = LARGE_MAX - 3 * 4096; size <= LARGE_MAX + 3 * 4096; size += 4093) {
    void *p = alloy_malloc(size);
    CHECK_MSG(p != NULL, "malloc(%zu) failed under guard:true", size);
    if (p == NULL) continue;
    CHECK_EQ(alloy_sallocx(p, 0), alloy_nallocx(size, 0));
    ((char *)p)[size - 1] = 1;
    alloy_free(p);
  }
}

/* True when [p, p + n) is still mapped (whatever its protection). */
static bool mapped(const void *p, size_t n) {
  unsigned char vec[64];
  uintptr_t page = (uintptr_t)p & ~(uintptr_t)4095;
  return mincore((void *)page, n < 4096 ? 4096 : n, vec) == 0;
}

static void sample_large(void) {
  /* a sampled small block, freed: quarantined (mapped, inaccessible) */
  char *small = alloy_malloc(64);
  REQUIRE(small != NULL);
  alloy_free(small);
  CHECK(mapped(small, 64));
  segment_totals_t t0, t1;
  segment_totals(&t0);
  void *v[40];
  for (int i = 0; i < 40; i++) v[i] = alloy_malloc(i % 4 == 0 ? 5 * MiB : 300 * KiB);
  segment_totals(&t1);
  CHECK_EQ(t1.big_nmalloc - t0.big_nmalloc, 10); /* the ten 5 MiB blocks, nothing else */
  for (int i = 0; i < 40; i++) alloy_free(v[i]);
  CHECK_MSG(mapped(small, 64), "a quarantined block was evicted by large allocations");
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void guard_huge_rss(void) {
  for (int i = 0; i < 16; i++) {
    char *p = alloy_malloc(32 * MiB);
    REQUIRE(p != NULL);
    memset(p, 7, 32 * MiB);
    alloy_free(p);
  }
  alloy_collect();
  long kb = rss_kb();
  fprintf(stderr, "guard_huge_rss: %ld KiB resident after 16 x 32 MiB freed\n", kb);
#ifndef CHECK_SANITIZED
  CHECK_LT(kb, 64 * 1024);
#endif
}

static const struct {
  const char *name, *conf;
  void (*fn)(void);
} cases[] = {
    {"sample_aligned", "guard_sample:1", sample_aligned},
    {"sample_aligned_64k", "guard_sample:65536", sample_aligned},
    {"sample_sizes", "guard_sample:1", sample_sizes},
    {"sample_large", "guard_sample:1", sample_large},
    {"guard_sizes", "guard:true", guard_sizes},
    {"guard_huge_rss", "guard:true", guard_huge_rss},
};

int main(void) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) { /* alloy starts here, with this case's options */
      check_count_ = check_fail_ = 0; /* a failed case before this one is the parent's to report */
      setenv("ALLOY_CONF", cases[i].conf, 1);
      cases[i].fn();
      _exit(check_done());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "case %s (%s) failed (status %#x)", cases[i].name,
              cases[i].conf, status);
  }
  return check_done();
}
