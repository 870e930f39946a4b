/*
 * test_rss_return.c - memory really goes back to the OS: after 500 MB of
 * small blocks are built and 95% of them freed (in whole phases, as a
 * program drops a finished data structure), the resident set the kernel
 * reports (/proc/self/statm) falls below a bound within dirty_decay_ms while
 * the program stays lightly busy.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>
#include <time.h>
#include <unistd.h>

#ifdef CHECK_SANITIZED
#define SANITIZED 1
#endif

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
#ifdef SANITIZED
  enum { TOTAL_MB = 100 }; /* shadow memory would dominate the RSS: check the purge only */
#else
  enum { TOTAL_MB = 500 };
#endif
  enum { BLOCK = 1000 };
  size_t n = (size_t)TOTAL_MB * 1000 * 1000 / BLOCK;
  void **p = malloc(n * sizeof *p); /* glibc's, for the test's own bookkeeping */
  REQUIRE(p != NULL);
  size_t base = rss_bytes();
  for (size_t i = 0; i < n; i++) {
    p[i] = alloy_malloc(BLOCK);
    REQUIRE(p[i] != NULL);
    memset(p[i], (int)i, BLOCK);
  }
  size_t peak = rss_bytes();
  CHECK_GE(peak - base, (size_t)TOTAL_MB * 1000 * 1000 * 9 / 10);
  size_t keep_from = n - n / 20;
  for (size_t i = 0; i < keep_from; i++) alloy_free(p[i]);

  /* Light activity (allocation events drive decay) for at most 2 decay
   * periods, until the resident set falls below the bound. */
  size_t bound = base + (size_t)TOTAL_MB * 1000 * 1000 / 10; /* 10% of what was built */
  double t0 = now_s(), waited = 0;
  size_t rss = rss_bytes();
  while (rss > bound && waited < 2.0 * alloy__options.dirty_decay_ms / 1000.0 + 0.5) {
    for (int i = 0; i < 1000; i++) alloy_free(alloy_malloc(64 + (size_t)(i % 7) * 16));
    usleep(1000);
    rss = rss_bytes();
    waited = now_s() - t0;
  }
  printf("built %d MB: rss %zu MiB -> %zu MiB (bound %zu MiB) after %.2f s\n", TOTAL_MB,
         peak >> 20, rss >> 20, bound >> 20, waited);
#ifndef SANITIZED
  CHECK_LE(rss, bound);
#endif
  alloy_stats_t s;
  alloy_stats_get(&s);
  CHECK_GT(s.purged + (peak - rss), (size_t)TOTAL_MB * 1000 * 1000 / 2); /* purged or unmapped */
  for (size_t i = 0; i < n; i++) {
    if (i >= keep_from) {
      CHECK_EQ(((unsigned char *)p[i])[BLOCK - 1], (unsigned char)i);
      alloy_free(p[i]);
    }
  }
  free(p);
  return check_done();
}
