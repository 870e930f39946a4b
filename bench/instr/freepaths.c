/*
 * freepaths - instructions of the free paths bench-instr does not measure
 * (docs/DESIGN.md, "The free path"): a free of a large and of a big block,
 * a sized free, realloc to the same size and malloc_usable_size, each
 * validating a live block.  Every measured call is one out-of-line
 * measured_* function around one allocator call (a tail call: about 2
 * instructions of wrapper and PLT), so
 *
 *   cc -O2 -o /tmp/freepaths bench/instr/freepaths.c
 *   LD_PRELOAD=build/liballoy.so valgrind --tool=callgrind \
 *       --toggle-collect='measured_*' --callgrind-out-file=/tmp/cg.out /tmp/freepaths
 *   callgrind_annotate --inclusive=yes /tmp/cg.out | grep measured_
 *
 * gives each path's instructions times the count printed by the program.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

/* C23; glibc 2.36 does not declare it (alloy exports it). */
__attribute__((weak)) void free_sized(void *p, size_t size);

enum { N = 100000, NBIG = 10000 };
static void *volatile sink;

__attribute__((noipa)) void measured_free_small(void *p) { free(p); }
__attribute__((noipa)) void measured_free_sized(void *p, size_t n) { free_sized(p, n); }
__attribute__((noipa)) void measured_free_large(void *p) { free(p); }
__attribute__((noipa)) void measured_free_big(void *p) { free(p); }
__attribute__((noipa)) void *measured_realloc_same(void *p, size_t n) { return realloc(p, n); }
__attribute__((noipa)) size_t measured_usable(void *p) { return malloc_usable_size(p); }

int main(void) {
  if (!free_sized) {
    fprintf(stderr, "freepaths: free_sized is not exported (run with alloy preloaded)\n");
    return 1;
  }
  free(malloc(64)); /* warm up: the thread's heap and pages exist */
  free(malloc(128 << 10));
  free(malloc(8 << 20));
  for (int i = 0; i < N; i++) measured_free_small(sink = malloc(64));
  for (int i = 0; i < N; i++) measured_free_sized(sink = malloc(64), 64);
  for (int i = 0; i < N; i++) measured_free_large(sink = malloc(128 << 10));
  for (int i = 0; i < NBIG; i++) measured_free_big(sink = malloc(8 << 20));
  void *p = malloc(64);
  for (int i = 0; i < N; i++) p = measured_realloc_same(p, 64);
  size_t s = 0;
  for (int i = 0; i < N; i++) s += measured_usable(p);
  free(p);
  printf("freepaths: %d calls each, free_big %d (usable sum %zu)\n", N, NBIG, s);
  return 0;
}
