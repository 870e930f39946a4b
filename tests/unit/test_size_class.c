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
  /* Every class's thread-heap page fits its bitmap, holds at least one
   * block, and the classes of 32-128 B take 64 KiB pages (with 32 KiB
   * ones mimalloc-bench's xmalloc-test ran 1.3x slower, 6 runs). */
  for (unsigned c = 0; c < SIZE_CLASSES; c++) {
    size_t bytes = size_class_page_slices(c) * SLICE_SIZE, n = bytes / size_class_size(c);
    CHECK_MSG(n >= 1 && n <= BITMAP_WORDS * 64, "class %zu: %zu blocks in a page of %zu bytes", size_class_size(c), n, bytes);
    size_t bs = size_class_size(c);
    if (bs >= 32 && bs <= 128) CHECK_EQ(bytes, SLICE_SIZE > 64 * 1024 ? SLICE_SIZE : 64 * 1024);
  }
  return check_done();
}
