/*
 * oom/inject.c - mapping failures injected with the test hook
 * os_set_fail_after(n) of src/internal.h (n = 0: every OS mapping fails until
 * reset with -1; n > 0: the n-th next mapping fails), through the prefixed
 * API, linked with liballoy_core.a.
 *
 *  1. A fresh process whose mappings all fail: every entry point (malloc of
 *     every size range, calloc, realloc(NULL), aligned_alloc, posix_memalign,
 *     memalign, valloc) gives NULL + ENOMEM (posix_memalign: ENOMEM, *out
 *     untouched); after the reset everything works.
 *  2. With some memory in use and all mappings failing: each size range
 *     (64 B, 20 KiB, 300 KiB, 5 MiB, 1 MiB aligned to 1 MiB, calloc,
 *     posix_memalign) is allocated until it fails, which must be NULL +
 *     ENOMEM and come within the memory already mapped; failed calls count
 *     nothing in the statistics; realloc of a live block to a size that needs
 *     a mapping fails and keeps the block.  After the reset every range works
 *     again.
 *  3. For n = 1..40: the n-th mapping of a fixed mixed sequence (allocations
 *     of all sizes, reallocs, frees) fails; every failure is NULL + ENOMEM
 *     (a failed realloc keeps its block), every success is a good block.
 *  4. A thread started while mappings fail: its first malloc fails cleanly
 *     (or succeeds), and works once mappings are back.
 *  5. Every block keeps its contents from allocation to free; at the end,
 *     with everything freed, alloy_stats_get's 'allocated' is back within
 *     64 KiB of its value at the start, huge_blocks is back, peaks are not
 *     below current values, and alloy_collect does not raise 'mapped'.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloy.h"
#include "../check.h"
#include "../testutil.h" /* addr_key, xor_words_fill, xor_words_ok */
#include "internal.h" /* os_set_fail_after */

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

/* ------------------------------------------------------------ blocks */
/* A block: [0] next in its chain, [1] its size, then a pattern keyed by the
 * address it was filled at. */
struct chain {
  unsigned char *head;
  size_t count;
};

static void blk_fill(unsigned char *p, size_t size, const void *keyed_at)
{
  memcpy(p + 8, &size, 8);
  uint64_t k = addr_key(keyed_at);
  size_t end = size < 4096 ? size : 4096; /* the head, and the tail below */
  xor_words_fill(p, 16, end, k);
  if (size >= 4096 + 16)
    memcpy(p + size - 8, &k, 8);
}

/* The first `keep` bytes of a block of `size` filled at `keyed_at` (what a
 * realloc must preserve). */
static bool prefix_ok(const unsigned char *p, size_t keep, size_t size, const void *keyed_at)
{
  if (keep >= 16) {
    size_t stored;
    memcpy(&stored, p + 8, 8);
    if (stored != size)
      return false;
  }
  uint64_t k = addr_key(keyed_at);
  size_t end = size < 4096 ? size : 4096;
  if (end > keep)
    end = keep;
  if (!xor_words_ok(p, 16, end, k))
    return false;
  if (size >= 4096 + 16 && size <= keep) {
    uint64_t w;
    memcpy(&w, p + size - 8, 8);
    if (w != k)
      return false;
  }
  return true;
}

/* The whole block (every block here has room for the [1] size word). */
static bool blk_ok(const unsigned char *p, size_t size, const void *keyed_at)
{
  return prefix_ok(p, size, size, keyed_at);
}

static void chain_add(struct chain *c, unsigned char *p, size_t size)
{
  memcpy(p, &c->head, 8);
  blk_fill(p, size, p);
  c->head = p;
  c->count++;
}

static void chain_free(struct chain *c, const char *what)
{
  size_t bad = 0;
  while (c->head) {
    unsigned char *p = c->head, *next;
    size_t size;
    memcpy(&next, p, 8);
    memcpy(&size, p + 8, 8);
    if (!blk_ok(p, size, p))
      bad++;
    alloy_free(p);
    c->head = next;
  }
  CHECK_MSG(bad == 0, "%s: %zu blocks lost their contents", what, bad);
  c->count = 0;
}

/* ------------------------------------------------------------ entry points */
enum kind { K_MALLOC, K_CALLOC, K_ALIGNED, K_POSIX, K_MEMALIGN, K_VALLOC, K_REALLOC_NULL };

struct req {
  const char *name;
  enum kind kind;
  size_t size, align;
};

static void *do_alloc(const struct req *r, int *err)
{
  void *p = NULL;
  errno = 0;
  switch (r->kind) {
  case K_MALLOC:
    p = alloy_malloc(r->size);
    break;
  case K_CALLOC:
    p = alloy_calloc(1, r->size);
    break;
  case K_ALIGNED:
    p = alloy_aligned_alloc(r->align, r->size);
    break;
  case K_MEMALIGN:
    p = alloy_memalign(r->align, r->size);
    break;
  case K_VALLOC:
    p = alloy_valloc(r->size);
    break;
  case K_REALLOC_NULL:
    p = alloy_realloc(NULL, r->size);
    break;
  case K_POSIX: {
    void *sentinel = (void *)r, *out = sentinel;
    int rc = alloy_posix_memalign(&out, r->align, r->size);
    if (rc != 0) {
      CHECK_MSG(out == sentinel, "failed posix_memalign(%zu, %zu) changed *out", r->align,
                r->size);
      *err = rc;
      return NULL;
    }
    *err = 0;
    return out;
  }
  }
  *err = errno;
  if (p) {
    if (r->align)
      CHECK_ALIGNED(p, r->align);
    CHECK_ALIGNED(p, 16);
    CHECK_MSG(alloy_usable_size(p) >= r->size, "%s: usable %zu < %zu", r->name,
              alloy_usable_size(p), r->size);
    if (r->kind == K_CALLOC) {
      const unsigned char *b = p;
      size_t n = r->size < 65536 ? r->size : 65536;
      for (size_t i = 0; i < n; i++)
        if (b[i]) {
          CHECK_MSG(0, "%s: byte %zu not zero", r->name, i);
          break;
        }
    }
  }
  return p;
}

static const struct req all_reqs[] = {
    {"malloc(64)", K_MALLOC, 64, 0},
    {"malloc(20 KiB)", K_MALLOC, 20 * KiB, 0},
    {"malloc(300 KiB)", K_MALLOC, 300 * KiB, 0},
    {"malloc(5 MiB)", K_MALLOC, 5 * MiB, 0},
    {"calloc(1, 1000)", K_CALLOC, 1000, 0},
    {"calloc(1, 3 MiB)", K_CALLOC, 3 * MiB, 0},
    {"realloc(NULL, 100)", K_REALLOC_NULL, 100, 0},
    {"aligned_alloc(64, 100)", K_ALIGNED, 100, 64},
    {"aligned_alloc(1 MiB, 1 MiB)", K_ALIGNED, 1 * MiB, 1 * MiB},
    {"posix_memalign(256, 50000)", K_POSIX, 50000, 256},
    {"memalign(4096, 100)", K_MEMALIGN, 100, 4096},
    {"valloc(10000)", K_VALLOC, 10000, 4096},
};
#define NREQS (sizeof all_reqs / sizeof all_reqs[0])

static struct chain keep; /* blocks alive across the phases */
static uint64_t successes;

/* ---------------------------------------------------------------- phase 1 */
static void phase_fresh(void)
{
  os_set_fail_after(0);
  for (size_t i = 0; i < NREQS; i++) {
    int err;
    void *p = do_alloc(&all_reqs[i], &err);
    CHECK_MSG(p == NULL && err == ENOMEM,
              "fresh process, mappings failing: %s = %p (err %d), want NULL/ENOMEM",
              all_reqs[i].name, p, err);
    if (p)
      alloy_free(p);
  }
  os_set_fail_after(-1);
  for (size_t i = 0; i < NREQS; i++) {
    int err;
    unsigned char *p = do_alloc(&all_reqs[i], &err);
    CHECK_MSG(p != NULL, "after the reset: %s failed (err %d)", all_reqs[i].name, err);
    if (p) {
      chain_add(&keep, p, all_reqs[i].size);
      successes++;
    }
  }
}

/* ---------------------------------------------------------------- phase 2 */
static void phase_exhaust(void)
{
  static const struct req exhaust_reqs[] = {
      {"malloc(64)", K_MALLOC, 64, 0},
      {"malloc(20 KiB)", K_MALLOC, 20 * KiB, 0},
      {"malloc(300 KiB)", K_MALLOC, 300 * KiB, 0},
      {"malloc(5 MiB)", K_MALLOC, 5 * MiB, 0},
      {"aligned_alloc(1 MiB, 1 MiB)", K_ALIGNED, 1 * MiB, 1 * MiB},
      {"calloc(1, 5000)", K_CALLOC, 5000, 0},
      {"posix_memalign(4096, 10000)", K_POSIX, 10000, 4096},
  };
  struct chain got[sizeof exhaust_reqs / sizeof exhaust_reqs[0]] = {{NULL, 0}};
  os_set_fail_after(0);
  for (size_t i = 0; i < sizeof exhaust_reqs / sizeof exhaust_reqs[0]; i++) {
    const struct req *r = &exhaust_reqs[i];
    int err = 0;
    for (;;) {
      alloy_stats_t before, after;
      alloy_stats_get(&before);
      unsigned char *p = do_alloc(r, &err);
      if (!p) {
        alloy_stats_get(&after);
        CHECK_MSG(after.allocated == before.allocated && after.nmalloc == before.nmalloc,
                  "%s: the failed call was counted (allocated %" PRIu64 " -> %" PRIu64
                  ", nmalloc %" PRIu64 " -> %" PRIu64 ")",
                  r->name, before.allocated, after.allocated, before.nmalloc, after.nmalloc);
        break;
      }
      chain_add(&got[i], p, r->size);
      successes++;
      if (got[i].count * r->size > 1024 * MiB) { /* the hook is not working */
        CHECK_MSG(0, "%s: 1 GiB allocated with every mapping failing", r->name);
        break;
      }
    }
    CHECK_MSG(err == ENOMEM, "%s: failed with %d, want ENOMEM", r->name, err);
    printf("  mappings failing: %-28s %6zu blocks before ENOMEM\n", r->name, got[i].count);
  }
  /* realloc to a size that needs a new mapping fails and keeps the block. */
  unsigned char *small = alloy_malloc(100);
  if (small) { /* (a free block of that class may be left, or not) */
    blk_fill(small, 100, small);
    errno = 0;
    void *q = alloy_realloc(small, 64 * MiB);
    CHECK_MSG(q == NULL && errno == ENOMEM, "realloc(p[100], 64 MiB) = %p errno %d", q, errno);
    if (q)
      small = q;
    else
      CHECK_MSG(blk_ok(small, 100, small), "failed realloc damaged the block");
    alloy_free(small);
  }
  os_set_fail_after(-1);
  /* Mappings are back: every range works, and all blocks kept their contents. */
  struct chain again = {NULL, 0};
  for (size_t i = 0; i < sizeof exhaust_reqs / sizeof exhaust_reqs[0]; i++) {
    int err;
    unsigned char *p = do_alloc(&exhaust_reqs[i], &err);
    CHECK_MSG(p != NULL, "after the reset: %s failed (err %d)", exhaust_reqs[i].name, err);
    if (p) {
      chain_add(&again, p, exhaust_reqs[i].size);
      successes++;
    }
  }
  for (size_t i = 0; i < sizeof exhaust_reqs / sizeof exhaust_reqs[0]; i++)
    chain_free(&got[i], exhaust_reqs[i].name);
  chain_free(&again, "after the reset");
}

/* ---------------------------------------------------------------- phase 3 */
static const size_t mix_sizes[] = {24,     700,     3000,   9000,    20000,  60000,
                                   100000, 300000,  1 * MiB, 3 * MiB, 5 * MiB, 9 * MiB};
#define NMIX (sizeof mix_sizes / sizeof mix_sizes[0])

static uint64_t phase_sequence(long n, uint64_t *nulls)
{
  enum { SLOTS = 48 };
  unsigned char *slot[SLOTS] = {NULL};
  size_t size[SLOTS] = {0};
  bool aligned[SLOTS] = {false}; /* free_sized is for malloc/calloc/realloc blocks */
  uint64_t r = 0x9e3779b97f4a7c15ULL * (uint64_t)(n + 1), ok = 0;
  os_set_fail_after(n);
  for (int step = 0; step < 400; step++) {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    int s = (int)(r % SLOTS);
    size_t want = mix_sizes[(r >> 8) % NMIX] + (size_t)((r >> 20) % 512);
    unsigned op = (unsigned)((r >> 32) % 8);
    if (slot[s] && op < 3) { /* realloc */
      errno = 0;
      unsigned char *q = alloy_realloc(slot[s], want);
      if (!q) {
        CHECK_MSG(errno == ENOMEM, "realloc(%zu -> %zu) failed with errno %d", size[s], want,
                  errno);
        CHECK_MSG(blk_ok(slot[s], size[s], slot[s]), "failed realloc(%zu -> %zu) damaged the block",
                  size[s], want);
        (*nulls)++;
        continue;
      }
      CHECK_MSG(prefix_ok(q, want < size[s] ? want : size[s], size[s], slot[s]),
                "realloc(%zu -> %zu) lost the contents", size[s], want);
      if (q != slot[s]) ok++; /* a new block (one resized in place is no allocation) */
      slot[s] = q;
      size[s] = want;
      aligned[s] = false;
      blk_fill(q, want, q);
      continue;
    }
    if (slot[s]) {
      CHECK_MSG(blk_ok(slot[s], size[s], slot[s]), "block of %zu damaged", size[s]);
      if (op == 3 && !aligned[s])
        alloy_free_sized(slot[s], size[s]);
      else
        alloy_free(slot[s]);
      slot[s] = NULL;
      continue;
    }
    enum kind kind = op % 3 == 0 ? K_CALLOC : op % 3 == 1 ? K_MALLOC : K_ALIGNED;
    struct req rq = {"sequence", kind, want,
                     kind == K_ALIGNED ? (size_t)1 << (4 + (r >> 40) % 13) : 0};
    int err;
    unsigned char *p = do_alloc(&rq, &err);
    if (!p) {
      CHECK_MSG(err == ENOMEM, "allocation of %zu failed with %d, want ENOMEM", want, err);
      (*nulls)++;
      continue;
    }
    slot[s] = p;
    size[s] = want;
    aligned[s] = rq.kind == K_ALIGNED;
    blk_fill(p, want, p);
    ok++;
  }
  os_set_fail_after(-1);
  for (int s = 0; s < SLOTS; s++)
    if (slot[s]) {
      CHECK_MSG(blk_ok(slot[s], size[s], slot[s]), "block of %zu damaged", size[s]);
      alloy_free(slot[s]);
    }
  return ok;
}

/* ---------------------------------------------------------------- phase 4 */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;

static void wait_stage(int want)
{
  pthread_mutex_lock(&mu);
  while (stage < want)
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

static void set_stage(int s)
{
  pthread_mutex_lock(&mu);
  stage = s;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void *thread_body(void *arg)
{
  (void)arg;
  errno = 0;
  void *p = alloy_malloc(64); /* mappings fail now */
  int err = errno;
  CHECK_MSG(p != NULL || err == ENOMEM, "new thread, mappings failing: malloc = NULL errno %d",
            err);
  printf("  new thread while mappings fail: malloc(64) %s\n",
         p ? "succeeded" : "failed with ENOMEM");
  alloy_free(p);
  set_stage(1);
  wait_stage(2); /* mappings are back */
  for (int i = 0; i < 1000; i++) {
    unsigned char *q = alloy_malloc((size_t)i * 37 + 1);
    CHECK_MSG(q != NULL, "thread: malloc(%d) failed after the reset", i * 37 + 1);
    if (q) {
      memset(q, 5, (size_t)i * 37 + 1);
      alloy_free(q);
    }
  }
  void *h = alloy_malloc(5 * MiB);
  CHECK_NOT_NULL(h);
  alloy_free(h);
  return NULL;
}

static void phase_thread(void)
{
  pthread_t t;
  os_set_fail_after(0);
  REQUIRE(pthread_create(&t, NULL, thread_body, NULL) == 0);
  wait_stage(1);
  os_set_fail_after(-1);
  set_stage(2);
  pthread_join(t, NULL);
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  alloy_stats_t s0, s1, s2;
  phase_fresh();
  alloy_stats_get(&s0); /* the baseline: what phase 1 keeps */
  successes = 0;
  printf("oom/inject: baseline allocated %" PRIu64 ", mapped %" PRIu64 "\n", s0.allocated,
         s0.mapped);
  phase_exhaust();
  uint64_t nulls = 0, ok = 0;
  for (long n = 1; n <= 40; n++)
    ok += phase_sequence(n, &nulls);
  printf("  injected failures n=1..40: %" PRIu64 " allocations succeeded, %" PRIu64
         " failed with ENOMEM\n",
         ok, nulls);
  CHECK_MSG(nulls > 0, "no allocation ever failed: the hook has no effect");
  phase_thread();

  alloy_stats_get(&s1);
  int64_t drift = (int64_t)s1.allocated - (int64_t)s0.allocated;
  printf("oom/inject: allocated %" PRIu64 " (baseline %" PRIu64 ", drift %" PRId64
         "), mapped %" PRIu64 ", peak %" PRIu64 ", huge blocks %" PRIu64 "\n",
         s1.allocated, s0.allocated, drift, s1.mapped, s1.peak_mapped, s1.huge_blocks);
  CHECK_MSG(drift >= -65536 && drift <= 65536,
            "allocated %" PRIu64 " is not back near its baseline %" PRIu64, s1.allocated,
            s0.allocated);
  CHECK_EQ(s1.huge_blocks, s0.huge_blocks);
  CHECK_GE(s1.peak_allocated, s1.allocated);
  CHECK_GE(s1.peak_mapped, s1.mapped);
  CHECK_GE(s1.mapped, s1.allocated);
  CHECK_GE(s1.nmalloc - s0.nmalloc, successes + ok);
  CHECK_LE(s1.threads, 1);
  alloy_collect();
  alloy_stats_get(&s2);
  CHECK_LE(s2.mapped, s1.mapped);
  CHECK_MSG(s2.allocated == s1.allocated,
            "alloy_collect changed allocated: %" PRIu64 " -> %" PRIu64, s1.allocated,
            s2.allocated);
  chain_free(&keep, "blocks kept from phases 1 and 2");
  alloy_stats_get(&s2);
  CHECK_MSG(s2.allocated <= 65536, "everything freed, yet allocated = %" PRIu64, s2.allocated);
  return check_done();
}
