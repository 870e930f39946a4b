/*
 * mallinfo.c - edge test (under LD_PRELOAD=liballoy.so): glibc's
 * introspection calls answer from alloy's statistics, not from glibc's
 * unused heap.  After 20 MB of small blocks and 3 huge blocks are live:
 * mallinfo2's uordblks is stats.allocated (within what other calls add),
 * hblks and hblkhd count the huge blocks, arena covers the small ones;
 * mallinfo's int fields agree; malloc_stats prints "in use bytes" with the
 * same total; malloc_info writes glibc's XML shape (and EINVAL for options
 * != 0); mallopt accepts glibc's parameters (1) and refuses unknown ones (0).
 */
#include "preload.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo: tested on purpose */

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static size_t ctl(const char *name) {
  mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl"); /* alloy's, preloaded */
  if (!mallctl) EDGE_FAIL("no mallctl in the process");
  uint64_t e = 1;
  mallctl("epoch", NULL, NULL, &e, sizeof e);
  size_t v = 0, len = sizeof v;
  if (mallctl(name, &v, &len, NULL, 0) != 0) EDGE_FAIL("mallctl %s", name);
  return v;
}

int main(void) {
  require_alloy();
  enum { N = 20000 };
  static void *v[N];
  for (int i = 0; i < N; i++) v[i] = malloc(1000);
  void *huge[3];
  for (int i = 0; i < 3; i++) huge[i] = malloc((size_t)(5 + i) << 20);
  size_t allocated = ctl("stats.allocated");
  struct mallinfo2 mi = mallinfo2();
  if (mi.uordblks + 65536 < allocated || mi.uordblks > allocated + 65536)
    EDGE_FAIL("mallinfo2.uordblks %zu, stats.allocated %zu", mi.uordblks, allocated);
  if (mi.uordblks < (size_t)N * 1000 + (18u << 20)) EDGE_FAIL("uordblks %zu: the blocks are not counted", mi.uordblks);
  if (mi.hblks < 3 || mi.hblkhd < (18u << 20)) EDGE_FAIL("hblks %zu hblkhd %zu: huge blocks", mi.hblks, mi.hblkhd);
  if (mi.arena < (size_t)N * 1000) EDGE_FAIL("arena %zu below the small blocks' bytes", mi.arena);
  struct mallinfo old = mallinfo();
  if ((size_t)old.uordblks + 65536 < mi.uordblks || (size_t)old.hblks != mi.hblks)
    EDGE_FAIL("mallinfo (%d, %d) disagrees with mallinfo2", old.uordblks, old.hblks);

  /* malloc_stats goes to stderr: catch it in a pipe */
  int fds[2];
  if (pipe(fds) != 0) EDGE_FAIL("pipe");
  int saved = dup(2);
  dup2(fds[1], 2);
  malloc_stats();
  dup2(saved, 2);
  close(fds[1]);
  char buf[4096];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  unsigned long long in_use = 0;
  const char *at = strstr(buf, "in use bytes");
  if (!at || sscanf(strchr(at, '=') + 1, "%llu", &in_use) != 1 || in_use + 65536 < allocated)
    EDGE_FAIL("malloc_stats: '%s'", buf);

  char *xml = NULL;
  size_t xlen = 0;
  FILE *f = open_memstream(&xml, &xlen);
  if (malloc_info(0, f) != 0) EDGE_FAIL("malloc_info failed");
  fclose(f);
  if (!strstr(xml, "<malloc version=\"1\">") || !strstr(xml, "<total type=\"mmap\" count=\"") ||
      !strstr(xml, "</malloc>"))
    EDGE_FAIL("malloc_info XML: %s", xml);
  free(xml);
  if (malloc_info(1, stdout) != EINVAL) EDGE_FAIL("malloc_info(1, ...) is not EINVAL");

  if (mallopt(M_ARENA_MAX, 2) != 1 || mallopt(M_MMAP_THRESHOLD, 1 << 20) != 1) EDGE_FAIL("mallopt refused glibc's parameters");
  if (mallopt(12345, 1) != 0) EDGE_FAIL("mallopt accepted an unknown parameter");

  for (int i = 0; i < N; i++) free(v[i]);
  for (int i = 0; i < 3; i++) free(huge[i]);
  mi = mallinfo2();
  if (mi.hblks != 0) EDGE_FAIL("hblks %zu after freeing the huge blocks", mi.hblks);
  printf("mallinfo: ok (uordblks %zu at the peak, in use %llu)\n", allocated, in_use);
  return 0;
}
