/*
 * test_aligned.c - aligned allocation through the prefixed API:
 * alloy_aligned_alloc / posix_memalign / memalign / valloc / pvalloc.
 *
 * For every power-of-two alignment 8 .. 8 MiB and a spread of sizes (tiny,
 * around the alignment, across size-class boundaries): the result is aligned,
 * alloy_usable_size >= size, the whole usable range is writable and blocks
 * that are alive together do not overlap (each is filled with its own byte and
 * re-checked once all exist).  posix_memalign rejects bad alignments (0, 3,
 * 24, non multiples of sizeof(void *)) with EINVAL and leaves *out alone;
 * impossible sizes give NULL + ENOMEM (or ENOMEM from posix_memalign).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "check.h"
#include "testutil.h" /* all_bytes */

enum api { API_ALIGNED_ALLOC, API_POSIX_MEMALIGN, API_MEMALIGN, API_COUNT };
static const char *const api_name[API_COUNT] = {"aligned_alloc", "posix_memalign",
                                                "memalign"};

static void *alloc_with(enum api api, size_t align, size_t size)
{
  void *p = NULL;
  switch (api) {
  case API_ALIGNED_ALLOC:
    return alloy_aligned_alloc(align, size);
  case API_POSIX_MEMALIGN: {
    int rc = alloy_posix_memalign(&p, align, size);
    CHECK_MSG(rc == 0, "posix_memalign(align=%zu, size=%zu) returned %d", align, size, rc);
    return rc == 0 ? p : NULL;
  }
  case API_MEMALIGN:
    return alloy_memalign(align, size);
  default:
    return NULL;
  }
}

struct blk {
  unsigned char *p;
  size_t size, usable;
  unsigned char fill;
};

#define MAX_SIZES 32

/* Allocates one block per size with the given alignment, keeps them all
 * alive, fills each whole usable range, then verifies and frees them. */
static void check_alignment(enum api api, size_t align)
{
  size_t sizes[MAX_SIZES];
  int n = 0;
  const size_t fixed[] = {1,    8,     15,    16,    17,    48,      100,
                          255,  1000,  4095,  4096,  4097,  10000,   65535,
                          65536, 65537, 300000, (2u << 20) + 1};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    sizes[n++] = fixed[i];
  sizes[n++] = align - 1;
  sizes[n++] = align;
  sizes[n++] = align + 1;
  sizes[n++] = 2 * align + 16;
  if (api != API_POSIX_MEMALIGN)
    sizes[n++] = 0;

  struct blk b[MAX_SIZES];
  for (int i = 0; i < n; i++) {
    size_t size = sizes[i];
    unsigned char *p = alloc_with(api, align, size);
    b[i].p = p;
    b[i].size = size;
    b[i].fill = (unsigned char)(0x11 * (i % 15 + 1));
    CHECK_MSG(p != NULL, "%s(align=%zu, size=%zu) returned NULL", api_name[api], align, size);
    if (!p) {
      b[i].usable = 0;
      continue;
    }
    CHECK_MSG((uintptr_t)p % align == 0, "%s(align=%zu, size=%zu) = %p is misaligned",
              api_name[api], align, size, (void *)p);
    CHECK_ALIGNED(p, 16);
    size_t usable = alloy_usable_size(p);
    CHECK_MSG(usable >= size, "%s(align=%zu, size=%zu): usable size %zu too small",
              api_name[api], align, size, usable);
    b[i].usable = usable;
    memset(p, b[i].fill, usable);
  }
  /* Every block still holds its own byte: no two live blocks overlap. */
  for (int i = 0; i < n; i++) {
    if (!b[i].p)
      continue;
    CHECK_MSG(all_bytes(b[i].p, b[i].usable, b[i].fill),
              "%s(align=%zu, size=%zu) block %p was overwritten", api_name[api], align,
              b[i].size, (void *)b[i].p);
  }
  for (int i = 0; i < n; i++) {
    if (i % 3 == 0)
      alloy_free_aligned_sized(b[i].p, align, b[i].size);
    else if (i % 3 == 1)
      alloy_free_aligned_sized(b[i].p, align, 0); /* size unknown (C++'s aligned delete) */
    else
      alloy_free(b[i].p);
  }
}

/* Many small blocks of one alignment alive at once: distinct, aligned. */
static void check_many(size_t align, size_t size, int count)
{
  unsigned char **v = calloc((size_t)count, sizeof *v);
  REQUIRE(v != NULL);
  for (int i = 0; i < count; i++) {
    v[i] = alloy_aligned_alloc(align, size);
    CHECK_NOT_NULL(v[i]);
    if (!v[i])
      continue;
    CHECK_MSG((uintptr_t)v[i] % align == 0, "aligned_alloc(%zu, %zu) #%d = %p misaligned",
              align, size, i, (void *)v[i]);
    memset(v[i], (unsigned char)i, size);
  }
  for (int i = 0; i < count; i++) {
    if (!v[i])
      continue;
    CHECK_MSG(all_bytes(v[i], size, (unsigned char)i),
              "aligned_alloc(%zu, %zu) #%d overwritten", align, size, i);
    alloy_free(v[i]);
  }
  free(v);
}

static void check_valloc_pvalloc(void)
{
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t sizes[] = {0, 1, 16, 100, 4095, 4096, 4097, 12288, 65536, 100000,
                          (1u << 20) + 3, (3u << 20), (5u << 20) + 7};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    unsigned char *p = alloy_valloc(size);
    CHECK_MSG(p != NULL, "valloc(%zu) returned NULL", size);
    if (p) {
      CHECK_MSG((uintptr_t)p % page == 0, "valloc(%zu) = %p not page aligned", size, (void *)p);
      size_t usable = alloy_usable_size(p);
      CHECK_MSG(usable >= size, "valloc(%zu): usable %zu", size, usable);
      memset(p, 0x5a, usable);
      CHECK(all_bytes(p, usable, 0x5a));
      alloy_free(p);
    }
    unsigned char *q = alloy_pvalloc(size);
    CHECK_MSG(q != NULL, "pvalloc(%zu) returned NULL", size);
    if (q) {
      size_t rounded = (size + page - 1) / page * page;
      CHECK_MSG((uintptr_t)q % page == 0, "pvalloc(%zu) = %p not page aligned", size, (void *)q);
      size_t usable = alloy_usable_size(q);
      CHECK_MSG(usable >= rounded, "pvalloc(%zu): usable %zu < size rounded to pages %zu",
                size, usable, rounded);
      memset(q, 0xa5, usable);
      CHECK(all_bytes(q, usable, 0xa5));
      alloy_free(q);
    }
  }
}

static void check_posix_memalign_einval(void)
{
  const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 40, 48, 96, 4095, 4097, 65536 + 8,
                        SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *sentinel = (void *)&bad[i];
    void *out = sentinel;
    int rc = alloy_posix_memalign(&out, bad[i], 64);
    CHECK_MSG(rc == EINVAL, "posix_memalign(align=%zu) returned %d, want EINVAL", bad[i], rc);
    CHECK_MSG(out == sentinel, "posix_memalign(align=%zu) failed but changed *out to %p",
              bad[i], out);
  }
  /* The smallest legal alignment is sizeof(void *). */
  void *out = NULL;
  CHECK_EQ_INT(alloy_posix_memalign(&out, sizeof(void *), 24), 0);
  CHECK_NOT_NULL(out);
  CHECK_ALIGNED(out, sizeof(void *));
  alloy_free(out);
}

static void check_enomem(void)
{
  const size_t big = SIZE_MAX, pbig = (size_t)PTRDIFF_MAX + 1;
  struct {
    size_t align, size;
  } cases[] = {{16, big},        {64, big - 63},        {4096, big - 4095},
               {64, PTRDIFF_MAX}, {1u << 20, pbig},      {16, pbig + 4096},
               {1u << 23, big - (1u << 23)}, {8, big - 7}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t a = cases[i].align, n = cases[i].size;
    errno = 0;
    void *p = alloy_aligned_alloc(a, n);
    CHECK_MSG(p == NULL, "aligned_alloc(%zu, %zu) = %p, want NULL", a, n, p);
    CHECK_MSG(errno == ENOMEM, "aligned_alloc(%zu, %zu): errno %d, want ENOMEM", a, n, errno);
    errno = 0;
    p = alloy_memalign(a, n);
    CHECK_MSG(p == NULL, "memalign(%zu, %zu) = %p, want NULL", a, n, p);
    CHECK_MSG(errno == ENOMEM, "memalign(%zu, %zu): errno %d, want ENOMEM", a, n, errno);
    void *sentinel = &cases[i];
    void *out = sentinel;
    int rc = alloy_posix_memalign(&out, a, n);
    CHECK_MSG(rc == ENOMEM, "posix_memalign(%zu, %zu) returned %d, want ENOMEM", a, n, rc);
    CHECK_MSG(out == sentinel, "posix_memalign(%zu, %zu) failed but changed *out", a, n);
  }
  const size_t vsizes[] = {big, big - 100, big - 4096, pbig, PTRDIFF_MAX};
  for (size_t i = 0; i < sizeof vsizes / sizeof vsizes[0]; i++) {
    errno = 0;
    void *p = alloy_valloc(vsizes[i]);
    CHECK_MSG(p == NULL && errno == ENOMEM, "valloc(%zu) = %p errno %d, want NULL/ENOMEM",
              vsizes[i], p, errno);
    errno = 0;
    p = alloy_pvalloc(vsizes[i]); /* rounding up to a page must not wrap */
    CHECK_MSG(p == NULL && errno == ENOMEM, "pvalloc(%zu) = %p errno %d, want NULL/ENOMEM",
              vsizes[i], p, errno);
  }
  /* A failed attempt leaves the allocator usable. */
  void *p = alloy_aligned_alloc(4096, 4096);
  CHECK_NOT_NULL(p);
  CHECK_ALIGNED(p, 4096);
  alloy_free(p);
}

int main(void)
{
  for (int api = 0; api < API_COUNT; api++) {
    for (size_t align = (api == API_POSIX_MEMALIGN ? sizeof(void *) : 8);
         align <= (8u << 20); align *= 2)
      check_alignment((enum api)api, align);
  }
  check_many(16, 24, 2000);
  check_many(64, 100, 2000);
  check_many(256, 256, 1000);
  check_many(4096, 4096, 300);
  check_many(4096, 100, 300);
  check_many(65536, 70000, 40);
  check_valloc_pvalloc();
  check_posix_memalign_einval();
  check_enomem();
  return check_done();
}
