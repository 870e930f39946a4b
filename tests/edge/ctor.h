/*
 * ctor.h - what libctor.so's constructor leaves for ctor_main (edge test a).
 */
#ifndef ALLOY_TESTS_CTOR_H
#define ALLOY_TESTS_CTOR_H

#include <stddef.h>

#define NBLK 64

struct ctor_results {
  char *str;                /* strdup'ed in the constructor */
  unsigned char *blk[NBLK]; /* malloc'ed, filled with their index */
  size_t size[NBLK];
  int *zeros;               /* calloc'ed, 1000 ints */
  void *aligned;            /* posix_memalign'ed, 4096 */
  char *grown;              /* realloc'ed up to 65536 bytes, 'g' in the upper halves */
  char *from_thread;        /* allocated by a thread the constructor ran */
  int ran;
};

extern struct ctor_results ctor_results;

#endif
