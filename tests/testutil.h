/*
 * testutil.h - small helpers shared by alloy's C tests and the fuzz harness
 * (fuzz/fuzz_alloc.c includes it as "../tests/testutil.h").
 *
 *   mix64(x)                   a 64-bit finalizer (splitmix/murmur3 style):
 *                              keys, seeds and pseudo-random numbers
 *   pat_word(key, i)           the pattern word at byte offset i (a multiple
 *                              of 8) of a block keyed by key: key ^ (i * golden)
 *   addr_key(p)                a pattern key derived from an address
 *   xor_words_fill(p, from, end, k) / xor_words_ok(p, from, end, k)
 *                              the 8-byte words at offsets from, from + 8, ...
 *                              (each wholly below end) hold k ^ offset
 *   all_bytes(p, n, b)         every byte of [p, p + n) equals b
 *
 * Everything is static inline and depends on nothing but the C library, so
 * any test (prefixed API, standard names, sanitizer builds, the glibc check)
 * can include it.  The block layouts and the checks built on these helpers
 * stay in the tests themselves.
 */
#ifndef ALLOY_TESTS_TESTUTIL_H
#define ALLOY_TESTS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t mix64(uint64_t x)
{
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/* (always inlined: the fuzz harness calls it from loops that are built
 * without sanitizer and coverage instrumentation) */
__attribute__((always_inline)) static inline uint64_t pat_word(uint64_t key, size_t i)
{
  return key ^ (i * 0x9E3779B97F4A7C15ULL);
}

static inline uint64_t addr_key(const void *p)
{
  return (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL;
}

static inline void xor_words_fill(unsigned char *p, size_t from, size_t end, uint64_t k)
{
  for (size_t i = from; i + 8 <= end; i += 8) {
    uint64_t w = k ^ i;
    memcpy(p + i, &w, 8);
  }
}

static inline bool xor_words_ok(const unsigned char *p, size_t from, size_t end, uint64_t k)
{
  for (size_t i = from; i + 8 <= end; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != (k ^ i))
      return false;
  }
  return true;
}

/* True when every byte of [p, p+n) equals b (compared a word at a time:
 * the sanitizer builds instrument every load). */
static inline bool all_bytes(const unsigned char *p, size_t n, unsigned char b)
{
  const uint64_t w = 0x0101010101010101ULL * b;
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 7); i++)
    if (p[i] != b)
      return false;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != w)
      return false;
  }
  for (; i < n; i++)
    if (p[i] != b)
      return false;
  return true;
}

#endif /* ALLOY_TESTS_TESTUTIL_H */
