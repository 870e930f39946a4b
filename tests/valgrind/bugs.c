/*
 * bugs.c - one memory error per run, for memcheck to find in blocks alloy
 * serves (tests/valgrind/memcheck.sh): `bugs uaf|overflow|overflow_class|
 * leak|leak_large|uninit|double`.  Linked statically with liballoy.a; each
 * case first checks that malloc is alloy's (sallocx is alloy's own, and
 * reports and aborts on a block it did not make).
 */
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *volatile sink;

/* A block from malloc, after checking on another one that malloc is
 * alloy's: asking for a usable size makes all of it usable (vg.h), which
 * would hide an overflow past the size asked for. */
static char *alloy_block(size_t n) {
  char *probe = malloc(n);
  if (probe == NULL || sallocx(probe, 0) < n) {
    fprintf(stderr, "bugs: malloc(%zu) is not alloy's\n", n);
    exit(2);
  }
  free(probe);
  return malloc(n);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "uaf") == 0) { /* write into a freed block */
    char *p = alloy_block(64);
    free(p);
    p[8] = 1;
  } else if (strcmp(what, "overflow") == 0) { /* one past 100 bytes, inside the 112-byte class */
    char *p = alloy_block(100);
    p[100] = 1;
    free(p);
  } else if (strcmp(what, "overflow_class") == 0) { /* one past a whole 64-byte class block */
    char *p = alloy_block(64);
    p[64] = 1;
    free(p);
  } else if (strcmp(what, "overflow_large") == 0) { /* one past a large block */
    char *p = alloy_block(100000);
    p[100000] = 1;
    free(p);
  } else if (strcmp(what, "leak") == 0) { /* the only pointer to a block is lost */
    sink = alloy_block(100);
    sink = NULL;
  } else if (strcmp(what, "leak_large") == 0) {
    sink = alloy_block(300000);
    sink = NULL;
  } else if (strcmp(what, "uninit") == 0) { /* a branch on bytes malloc did not set */
    char *p = alloy_block(32);
    if (p[5] == 42) puts("42");
    free(p);
  } else if (strcmp(what, "double") == 0) { /* memcheck reports it, then alloy aborts */
    char *p = alloy_block(48);
    free(p);
    free(p);
  } else {
    fprintf(stderr, "usage: bugs uaf|overflow|overflow_class|overflow_large|leak|leak_large|uninit|double\n");
    return 2;
  }
  return 0;
}
