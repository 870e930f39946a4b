/*
 * test_exit_alloc.c - threads whose pthread key destructors allocate in
 * every destructor round (prefixed API).
 *
 * A destructor that allocates after alloy's own exit hook ran used to give
 * the exiting thread a fresh heap that nobody ever abandoned: 200 such
 * threads left 201 live thread heaps and 1.6 GB mapped (reliability issue,
 * defect 9).  Here 240 threads, 8 at a time, each allocate blocks of several
 * classes, then exit with a key whose destructor frees its value, allocates
 * and frees a block, and re-arms the key with a new block in every round
 * glibc runs (PTHREAD_DESTRUCTOR_ITERATIONS), freeing it in the last.
 *
 * Checks: every destructor round ran; the blocks kept their contents; after
 * the threads, heaps in use are back to at most the main thread's, mapped
 * memory stays under 64 MiB, and allocated bytes are within 1 MiB of the
 * baseline (nothing leaked by the exiting heaps).
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "api.h"
#include "check.h"

#define NTHREADS 240
#define AT_ONCE 8
#define MiB ((size_t)1 << 20)

#ifndef PTHREAD_DESTRUCTOR_ITERATIONS
#define PTHREAD_DESTRUCTOR_ITERATIONS 4
#endif
/* TSan finishes a thread's own state in the last destructor round (its key
 * re-arms itself until then): a user destructor that runs in that round
 * crashes inside TSan's tracing, whatever it does.  Under TSan the key
 * re-arms one round less. */
#if defined(__SANITIZE_THREAD__)
#define ROUNDS (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROUNDS (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#endif
#endif
#ifndef ROUNDS
#define ROUNDS PTHREAD_DESTRUCTOR_ITERATIONS
#endif

static pthread_key_t key;
static atomic_int rounds_run, bad_blocks, failed_allocs;

/* A block of `size` bytes filled with a byte derived from its size; the
 * size is kept in its first 8 bytes. */
static unsigned char *blk_new(size_t size) {
  unsigned char *p = alloy_malloc(size);
  if (!p) {
    atomic_fetch_add(&failed_allocs, 1);
    return NULL;
  }
  memcpy(p, &size, sizeof size);
  memset(p + 8, (int)(size * 7 & 0xff), size - 8);
  return p;
}

static void blk_free(unsigned char *p) {
  if (!p) return;
  size_t size;
  memcpy(&size, p, sizeof size);
  for (size_t i = 8; i < size; i++)
    if (p[i] != (unsigned char)(size * 7 & 0xff)) {
      atomic_fetch_add(&bad_blocks, 1);
      break;
    }
  alloy_free(p);
}

/* Runs once per destructor round while the key holds a value. */
static void key_dtor(void *value) {
  static _Thread_local int round;
  round++;
  atomic_fetch_add(&rounds_run, 1);
  blk_free(value);
  blk_free(blk_new(96 + 512 * (size_t)round)); /* allocate and free in this round */
  if (round < ROUNDS)
    pthread_setspecific(key, blk_new(48 + 1000 * (size_t)round)); /* and once more next round */
}

static void *thread_main(void *arg) {
  size_t seed = (size_t)(uintptr_t)arg;
  unsigned char *keep[48];
  for (int i = 0; i < 48; i++) keep[i] = blk_new(16 + (seed * 131 + (size_t)i * 977) % 20000);
  for (int i = 0; i < 48; i += 2) blk_free(keep[i]); /* half freed: partly used pages */
  for (int i = 1; i < 48; i += 2) blk_free(keep[i]);
  pthread_setspecific(key, blk_new(64));
  return NULL;
}

int main(void) {
  REQUIRE(pthread_key_create(&key, key_dtor) == 0);
  alloy_stats_t s0, s;
  void *warm = alloy_malloc(100); /* the main thread's heap exists before the baseline */
  alloy_free(warm);
  alloy_collect();
  alloy_stats_get(&s0);
  size_t mapped_max = 0;
  for (long base = 0; base < NTHREADS; base += AT_ONCE) {
    pthread_t t[AT_ONCE];
    for (int i = 0; i < AT_ONCE; i++)
      REQUIRE(pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)(base + i)) == 0);
    for (int i = 0; i < AT_ONCE; i++) REQUIRE(pthread_join(t[i], NULL) == 0);
    alloy_stats_get(&s);
    if (s.mapped > mapped_max) mapped_max = s.mapped;
  }
  alloy_collect();
  alloy_stats_get(&s);
  int64_t drift = (int64_t)s.allocated - (int64_t)s0.allocated;
  printf("%d threads, %d destructor rounds: heaps in use %" PRIu64 " (before %" PRIu64
         "), abandoned %" PRIu64 ", max mapped %.1f MiB, allocated drift %" PRId64 "\n",
         NTHREADS, atomic_load(&rounds_run), s.threads, s0.threads, s.abandoned,
         mapped_max / (double)MiB, drift);
  CHECK_EQ(atomic_load(&rounds_run), NTHREADS * ROUNDS);
  CHECK_EQ(atomic_load(&bad_blocks), 0);
  CHECK_EQ(atomic_load(&failed_allocs), 0);
  CHECK_LE(s.threads, s0.threads);
  CHECK_MSG(s.abandoned <= 64, "%" PRIu64 " heaps left abandoned", s.abandoned);
  CHECK_MSG(mapped_max < 64 * MiB, "alloy mapped %.1f MiB (limit 64)", mapped_max / (double)MiB);
  CHECK_MSG(drift >= -(int64_t)MiB && drift <= (int64_t)MiB,
            "allocated %" PRIu64 " is not within 1 MiB of its baseline %" PRIu64, s.allocated,
            s0.allocated);
  return check_done();
}
