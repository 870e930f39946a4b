/*
 * size_class.c - the size classes, computed in one place.
 *
 * 16..128 bytes by 16 (the 16-byte alignment every block needs sets the
 * quantum), then 8 classes per doubling up to 64 KiB: from 128 bytes up the
 * internal waste of a request is below 12.5% (the step is 1/8 of the
 * doubling's base).  Above 64 KiB there are no classes: a large block takes
 * whole slices and its usable size is the request rounded to the OS page.
 *
 * The class of a size is pure arithmetic (size_class_of in internal.h); the
 * table here maps classes to sizes.
 */
#include "internal.h"

size_t alloy__class_size[SIZE_CLASSES];

static size_t class_size_compute(unsigned cls) {
  if (cls < 8) return 16 * ((size_t)cls + 1);
  unsigned group = (cls - 8) / 8, step = (cls - 8) % 8;
  unsigned b = group + 7; /* classes of this group lie in (2^b, 2^(b+1)] */
  return ((size_t)1 << b) + ((size_t)(step + 1) << (b - 3));
}

void size_class_init(void) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++) alloy__class_size[c] = class_size_compute(c);
}
