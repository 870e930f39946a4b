/*
 * ctor_lib.c - libctor.so for edge test (a): its constructor allocates (and
 * frees, reallocates, starts a thread that allocates) before the program's
 * main runs, possibly before alloy's own initialisation.  ctor_main checks the
 * results and frees the blocks.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ctor.h"

struct ctor_results ctor_results;

static void *ctor_thread(void *arg)
{
  (void)arg;
  char *s = malloc(300);
  if (s)
    strcpy(s, "allocated by a thread started from a constructor");
  return s;
}

__attribute__((constructor)) static void lib_ctor(void)
{
  struct ctor_results *r = &ctor_results;
  r->str = strdup("constructor string");
  for (int i = 0; i < NBLK; i++) {
    r->size[i] = (size_t)(i * 997) % 70000 + 1;
    r->blk[i] = malloc(r->size[i]);
    if (r->blk[i])
      memset(r->blk[i], i, r->size[i]);
    if (i % 3 == 0) { /* some churn: free and allocate again */
      free(r->blk[i]);
      r->blk[i] = malloc(r->size[i]);
      if (r->blk[i])
        memset(r->blk[i], i, r->size[i]);
    }
  }
  r->zeros = calloc(1000, sizeof(int));
  if (posix_memalign(&r->aligned, 4096, 5000) != 0)
    r->aligned = NULL;
  r->grown = NULL;
  for (size_t n = 16; n <= 100000; n *= 2) {
    char *g = realloc(r->grown, n);
    if (!g)
      break;
    memset(g + n / 2, 'g', n - n / 2);
    g[0] = 'g';
    r->grown = g;
  }
  pthread_t t;
  void *res = NULL;
  if (pthread_create(&t, NULL, ctor_thread, NULL) == 0 && pthread_join(t, &res) == 0)
    r->from_thread = res;
  r->ran = 1;
}
