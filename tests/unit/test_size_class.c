/*
 * test_size_class.c - the size classes (src/size_class.c): every request gets
 * the smallest class that holds it, classes are 16-byte multiples, waste is
 * under 12.5% from 128 bytes up,
 * and rounding a size up to a power-of-two alignment gives an aligned class
 * (which aligned allocation relies on).
 */
#include "check.h"
#include "internal.h"

int main(void) {
  size_class_init();
  CHECK_EQ(size_class_size(0), 16);
  CHECK_EQ(size_class_size(SIZE_CLASSES - 1), MEDIUM_MAX);
  for (unsigned c = 1; c < SIZE_CLASSES; c++) CHECK_LT(size_class_size(c - 1), size_class_size(c));

  CHECK_EQ(size_class_of(0), 0);
  for (size_t size = 1; size <= MEDIUM_MAX; size++) {
    unsigned c = size_class_of(size);
    REQUIRE(c < SIZE_CLASSES);
    size_t cs = size_class_size(c);
    CHECK_GE(cs, size);
    CHECK_EQ(cs % ALIGNMENT_MIN, 0);
    if (c > 0) CHECK_LT(size_class_size(c - 1), size); /* the smallest class that fits */
    if (size >= 128) CHECK_MSG((cs - size) * 8 < size, "size %zu -> class %zu wastes >= 12.5%%", size, cs);
  }

  for (size_t align = 32; align <= MEDIUM_MAX; align *= 2)
    for (size_t size = align; size <= MEDIUM_MAX; size += align)
      CHECK_MSG(size_class_size(size_class_of(size)) % align == 0,
                "size %zu (a multiple of %zu) got class %zu", size, align,
                size_class_size(size_class_of(size)));
  return check_done();
}
