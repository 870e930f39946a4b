/*
 * fuzz_alloc.c - libFuzzer harness for alloy's prefixed API, checked against
 * a reference model.
 *
 * Built by fuzz/run.sh (fuzz/fuzz.mk) with clang -fsanitize=fuzzer,address,
 * undefined over the allocator's core sources (all of src/ but override.c), like
 * the sanitizer builds of tests/tests.mk.
 *
 * Input: byte 0 holds flags (bit 0: threaded mode), then a sequence of
 * operations, each an opcode byte, a slot byte (64 slots) and, for
 * allocations, a size (see take_size: mostly below 256 bytes, then up to
 * 8 KiB, 64 KiB, 2 MiB (large) and 8 MiB (huge)) and sometimes an alignment:
 *
 *   malloc, calloc (count * size), realloc (also of NULL, and to 0),
 *   aligned_alloc, posix_memalign, memalign (any alignment: rounded up),
 *   free, free_sized / free_aligned_sized with the right size (and the
 *   alignment asked for), usable size, remote free, remote malloc
 *
 * The model keeps, per slot, the pointer, the size asked for, the alignment
 * and the usable size.  Every block is filled over its whole usable size with
 * a pattern derived from its slot, size and a generation counter (all of a
 * block up to 64 KiB; of bigger ones the first 64 KiB, the last 4 KiB and a
 * word every 32 KiB), and checked before it is freed or reallocated (realloc
 * keeps the first min(old, new) requested bytes).  On every allocation:
 * alignment (16, or the one asked for), usable size >= size, no overlap of
 * [p, p + usable) with any live block of the model, calloc'ed bytes zero;
 * posix_memalign returns 0 or ENOMEM and leaves *out alone on failure; usable
 * size is stable.  At the end of each input every block is freed and
 * alloy_stats_get().allocated must be back to its value at the start of the
 * input.
 *
 * Threaded mode: a helper thread (started once) frees the blocks handed to
 * it through a queue ("remote free", after verifying them, while the main
 * thread goes on allocating) and allocates blocks for the main thread
 * ("remote malloc": blocks of the helper's heap, later freed by the main
 * thread).  At the end of each input the main thread waits for the queue
 * to drain.  Without the flag both operations are done locally.
 *
 * A violation prints what was wrong and aborts (a libFuzzer crash).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy.h"
#include "../tests/testutil.h" /* mix64, pat_word */

#define NSLOTS 64
#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define HUGE_CAP (8 * MiB)

enum how { H_MALLOC, H_CALLOC, H_REALLOC, H_ALIGNED, H_POSIX, H_MEMALIGN, H_REMOTE };

struct slot {
  unsigned char *p;
  size_t size;   /* requested */
  size_t align;  /* asked for (0: none); free_aligned_sized is used only for H_ALIGNED */
  size_t usable; /* at allocation */
  uint64_t key;  /* pattern key */
  enum how how;
};

static struct slot slots[NSLOTS];
static uint64_t generation;

#define FAIL(...)                                                             \
  do {                                                                        \
    fprintf(stderr, "fuzz_alloc: " __VA_ARGS__);                              \
    fputc('\n', stderr);                                                      \
    abort();                                                                  \
  } while (0)

/* ------------------------------------------------------------------ input */
struct input {
  const uint8_t *d;
  size_t n, at;
};

static unsigned take8(struct input *in) { return in->at < in->n ? in->d[in->at++] : 0; }

static size_t take16(struct input *in) { return take8(in) | (size_t)take8(in) << 8; }

static size_t take24(struct input *in) { return take16(in) | (size_t)take8(in) << 16; }

/* A size biased to small ones: half below 256 bytes, a quarter up to 8 KiB,
 * then medium (to 64 KiB), large (to 2 MiB) and a few huge (to 8 MiB). */
static size_t take_size(struct input *in)
{
  unsigned sel = take8(in);
  if (sel < 128)
    return take8(in);
  if (sel < 192)
    return take16(in) % (8 * KiB + 1);
  if (sel < 230)
    return take24(in) % (64 * KiB + 1);
  if (sel < 250)
    return take24(in) % (2 * MiB + 1);
  return 2 * MiB + take24(in) % (HUGE_CAP - 2 * MiB + 1) / 4096 * 4096 + take8(in);
}

/* A power of two from 1 to 2^22 (4 MiB), mostly small. */
static size_t take_align(struct input *in)
{
  unsigned b = take8(in);
  unsigned e = b < 200 ? b % 9 : b % 23;
  return (size_t)1 << e;
}

/* ---------------------------------------------------------------- pattern */
/* The pattern covers the whole of a block up to 64 KiB; of a bigger block,
 * the first 64 KiB, the last 4 KiB and one word in every 32 KiB in between
 * (so huge blocks cost little, and a page lost or copied wrong still shows). */
#define DENSE (64 * KiB)
#define TAIL (4 * KiB)
#define STRIDE (32 * KiB)

/* The first covered word offset at or after i (a multiple of 8) in a block of n. */
__attribute__((always_inline)) static inline size_t next_cov(size_t i, size_t n)
{
  if (i < DENSE || i + TAIL >= n)
    return i;
  size_t j = (i + STRIDE - 1) / STRIDE * STRIDE, t = (n - TAIL) & ~(size_t)7;
  return j < t ? j : t;
}

/* (neither ASan checks nor coverage here: alloy's memory is not ASan's, and
 * these loops are the hot ones) */
#if defined(__clang__)
#define HOT_LOOP __attribute__((no_sanitize("address", "coverage")))
#else
#define HOT_LOOP __attribute__((no_sanitize_address))
#endif
HOT_LOOP static void pat_fill(unsigned char *p, size_t n, uint64_t key)
{
  for (size_t i = 0; i < n; i = next_cov(i + 8, n)) {
    uint64_t w = pat_word(key, i);
    if (i + 8 <= n)
      __builtin_memcpy(p + i, &w, 8); /* a plain store, not a call */
    else
      for (size_t k = 0; i + k < n; k++)
        p[i + k] = (unsigned char)(w >> (k * 8));
  }
}

/* First offset below limit, of the pattern of a block of n bytes, that does
 * not hold it; SIZE_MAX if none. */
HOT_LOOP static size_t pat_check(const unsigned char *p, size_t n, size_t limit, uint64_t key)
{
  if (limit > n)
    limit = n;
  for (size_t i = 0; i < limit; i = next_cov(i + 8, n)) {
    uint64_t w = pat_word(key, i), got;
    if (i + 8 <= limit) {
      __builtin_memcpy(&got, p + i, 8);
      if (got == w)
        continue;
    }
    for (size_t k = 0; k < 8 && i + k < limit; k++)
      if (p[i + k] != (unsigned char)(w >> (k * 8)))
        return i + k;
  }
  return SIZE_MAX;
}

/* calloc: the same coverage, every byte zero. */
HOT_LOOP static size_t zero_check(const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i = next_cov(i + 8, n)) {
    size_t len = n - i < 8 ? n - i : 8;
    for (size_t k = 0; k < len; k++)
      if (p[i + k])
        return i + k;
  }
  return SIZE_MAX;
}

static void verify(int s, const char *when)
{
  struct slot *b = &slots[s];
  size_t bad = pat_check(b->p, b->usable, b->usable, b->key);
  if (bad != SIZE_MAX)
    FAIL("slot %d (%p, size %zu, usable %zu, align %zu, how %d) %s: byte %zu changed", s,
         (void *)b->p, b->size, b->usable, b->align, (int)b->how, when, bad);
  size_t u = alloy_usable_size(b->p);
  if (u != b->usable)
    FAIL("slot %d (%p): usable size changed from %zu to %zu", s, (void *)b->p, b->usable, u);
}

/* ------------------------------------------------------- new block checks */
static void check_new(int s, unsigned char *p, size_t size, size_t align, bool zeroed)
{
  if (((uintptr_t)p & 15) != 0)
    FAIL("%p (size %zu) is not 16-aligned", (void *)p, size);
  if (align > 16 && ((uintptr_t)p & (align - 1)) != 0)
    FAIL("%p (size %zu) is not %zu-aligned", (void *)p, size, align);
  size_t usable = alloy_usable_size(p);
  if (usable < size)
    FAIL("%p: usable size %zu < size %zu", (void *)p, usable, size);
  size_t nz;
  if (zeroed && (nz = zero_check(p, size)) != SIZE_MAX)
    FAIL("calloc block %p (size %zu): byte %zu is 0x%02x", (void *)p, size, nz, p[nz]);
  uintptr_t lo = (uintptr_t)p, hi = lo + (usable ? usable : 1);
  for (int t = 0; t < NSLOTS; t++) {
    if (t == s || !slots[t].p)
      continue;
    uintptr_t l2 = (uintptr_t)slots[t].p, h2 = l2 + (slots[t].usable ? slots[t].usable : 1);
    if (lo < h2 && l2 < hi)
      FAIL("new block %p+%zu (size %zu) overlaps slot %d %p+%zu", (void *)p, usable, size, t,
           (void *)slots[t].p, slots[t].usable);
  }
}

static void install(int s, unsigned char *p, size_t size, size_t align, enum how how)
{
  struct slot *b = &slots[s];
  b->p = p;
  b->size = size;
  b->align = align;
  b->usable = alloy_usable_size(p);
  b->how = how;
  b->key = mix64(((uint64_t)s << 56) ^ ((uint64_t)size << 8) ^ ++generation);
  pat_fill(p, b->usable, b->key);
}

/* --------------------------------------------------------- helper thread */
enum { Q_FREE, Q_ALLOC, Q_DRAIN };
struct qitem {
  int op;
  struct slot blk; /* Q_FREE: the block; Q_ALLOC: size wanted, result */
};

#define QCAP 128
static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER, q_done_cv = PTHREAD_COND_INITIALIZER;
static struct qitem queue[QCAP];
static unsigned q_head, q_tail;       /* items [q_head, q_tail) pending */
static unsigned long q_done_count;    /* items finished by the helper */
static struct slot q_alloc_result;
static bool helper_started;
static pthread_t helper;

static void helper_free(struct slot *b)
{
  size_t bad = pat_check(b->p, b->usable, b->usable, b->key);
  if (bad != SIZE_MAX)
    FAIL("remote free of %p (size %zu): byte %zu changed", (void *)b->p, b->size, bad);
  if (b->how == H_ALIGNED)
    alloy_free_aligned_sized(b->p, b->align, b->size);
  else if (b->how == H_MEMALIGN || b->how == H_POSIX)
    alloy_free(b->p);
  else if (b->key & 1)
    alloy_free_sized(b->p, b->size);
  else
    alloy_free(b->p);
}

static void *helper_main(void *arg)
{
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&q_mu);
    while (q_head == q_tail)
      pthread_cond_wait(&q_cv, &q_mu);
    struct qitem it = queue[q_head % QCAP];
    pthread_mutex_unlock(&q_mu);
    if (it.op == Q_FREE) {
      helper_free(&it.blk);
    } else if (it.op == Q_ALLOC) {
      unsigned char *p = alloy_malloc(it.blk.size);
      it.blk.p = p;
      it.blk.usable = p ? alloy_usable_size(p) : 0;
      if (p)
        pat_fill(p, it.blk.usable, it.blk.key);
      q_alloc_result = it.blk;
    } else {
      alloy_stats_t st;
      alloy_stats_get(&st); /* folds this thread's counters */
    }
    pthread_mutex_lock(&q_mu);
    q_head++;
    q_done_count++;
    pthread_cond_broadcast(&q_done_cv);
    pthread_mutex_unlock(&q_mu);
  }
  return NULL;
}

/* Queues an item; with wait, returns once the helper has done it. */
static void q_push(const struct qitem *it, bool wait)
{
  pthread_mutex_lock(&q_mu);
  while (q_tail - q_head >= QCAP)
    pthread_cond_wait(&q_done_cv, &q_mu);
  queue[q_tail % QCAP] = *it;
  q_tail++;
  unsigned long target = q_done_count + (q_tail - q_head);
  pthread_cond_signal(&q_cv);
  if (wait)
    while (q_done_count < target)
      pthread_cond_wait(&q_done_cv, &q_mu);
  pthread_mutex_unlock(&q_mu);
}

static void start_helper(void)
{
  if (helper_started)
    return;
  if (pthread_create(&helper, NULL, helper_main, NULL) != 0)
    FAIL("pthread_create failed");
  pthread_detach(helper);
  helper_started = true;
}

/* ------------------------------------------------------------- operations */
static void slot_free(int s, bool sized)
{
  struct slot *b = &slots[s];
  verify(s, "before free");
  if (sized && b->how == H_ALIGNED)
    alloy_free_aligned_sized(b->p, b->align, b->size);
  else if (sized && b->how != H_MEMALIGN && b->how != H_POSIX)
    alloy_free_sized(b->p, b->size);
  else
    alloy_free(b->p);
  b->p = NULL;
}

static void op_alloc(int s, struct input *in, unsigned op, bool threaded)
{
  if (slots[s].p)
    slot_free(s, false);
  size_t size = take_size(in), align = 0;
  unsigned char *p = NULL;
  enum how how = H_MALLOC;
  errno = 0;
  switch (op) {
  case 0:
    p = alloy_malloc(size);
    break;
  case 1: { /* calloc: count * size == the drawn size when it divides */
    size_t count = take8(in) % 16 + 1;
    if (size % count)
      count = 1;
    p = alloy_calloc(count, size / count);
    how = H_CALLOC;
    break;
  }
  case 3:
    align = take_align(in);
    p = alloy_aligned_alloc(align, size);
    how = H_ALIGNED;
    break;
  case 4: {
    align = take_align(in);
    if (align < sizeof(void *))
      align = sizeof(void *);
    void *out = (void *)&slots[s];
    int rc = alloy_posix_memalign(&out, align, size);
    if (rc != 0) {
      if (rc != ENOMEM || out != (void *)&slots[s])
        FAIL("posix_memalign(%zu, %zu) = %d, *out %s", align, size, rc,
             out != (void *)&slots[s] ? "changed" : "untouched");
      return;
    }
    p = out;
    how = H_POSIX;
    break;
  }
  case 5: { /* memalign with any alignment: rounded up to a power of two */
    size_t raw = take16(in) % 5000;
    p = alloy_memalign(raw, size);
    align = 1;
    while (align < raw)
      align <<= 1;
    how = H_MEMALIGN;
    break;
  }
  case 9: /* remote malloc */
    if (threaded) {
      struct qitem it = {Q_ALLOC, {0}};
      it.blk.size = size;
      it.blk.key = mix64(((uint64_t)s << 56) ^ ((uint64_t)size << 8) ^ ++generation);
      q_push(&it, true);
      struct slot r = q_alloc_result;
      if (!r.p)
        FAIL("remote malloc(%zu) failed", size);
      check_new(s, r.p, size, 0, false);
      slots[s] = r;
      slots[s].how = H_REMOTE;
      verify(s, "after remote malloc");
      return;
    }
    p = alloy_malloc(size);
    break;
  }
  if (!p)
    FAIL("allocation op %u of %zu bytes (align %zu) failed, errno %d", op, size, align, errno);
  check_new(s, p, size, align, how == H_CALLOC);
  install(s, p, size, align, how);
}

static void op_realloc(int s, struct input *in)
{
  size_t size = take_size(in);
  struct slot *b = &slots[s];
  if (!b->p) {
    unsigned char *p = alloy_realloc(NULL, size);
    if (!p)
      FAIL("realloc(NULL, %zu) failed", size);
    check_new(s, p, size, 0, false);
    install(s, p, size, 0, H_REALLOC);
    return;
  }
  verify(s, "before realloc");
  if (size == 0 && (take8(in) & 1)) { /* realloc(p, 0) frees, returns NULL */
    unsigned char *q = alloy_realloc(b->p, 0);
    if (q)
      FAIL("realloc(%p, 0) returned %p, want NULL", (void *)b->p, (void *)q);
    b->p = NULL;
    return;
  }
  if (size == 0)
    size = 1;
  struct slot old = *b;
  unsigned char *q = alloy_realloc(b->p, size);
  if (!q)
    FAIL("realloc(%p, %zu) failed", (void *)old.p, size);
  size_t keep = old.size < size ? old.size : size;
  size_t bad = pat_check(q, old.usable, keep, old.key);
  if (bad != SIZE_MAX)
    FAIL("realloc(%p size %zu -> %zu) = %p lost byte %zu", (void *)old.p, old.size, size,
         (void *)q, bad);
  b->p = NULL; /* the old block is gone: exclude it from the overlap check */
  check_new(s, q, size, 0, false);
  install(s, q, size, 0, H_REALLOC);
  /* (install refilled the block with a pattern of the new key) */
}

static void op_remote_free(int s, bool threaded)
{
  if (!slots[s].p)
    return;
  if (!threaded) {
    slot_free(s, true);
    return;
  }
  verify(s, "before remote free");
  struct qitem it = {Q_FREE, slots[s]};
  slots[s].p = NULL;
  q_push(&it, false);
}

static void drain(void)
{
  struct qitem it = {Q_DRAIN, {0}};
  q_push(&it, true);
}

/* ------------------------------------------------------------------ entry */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct input in = {data, size, 0};
  bool threaded = take8(&in) & 1;
  if (threaded)
    start_helper();
  alloy_stats_t st0, st1;
  if (helper_started)
    drain();
  alloy_stats_get(&st0);
  while (in.at < in.n) {
    unsigned op = take8(&in) % 12;
    int s = (int)(take8(&in) % NSLOTS);
    switch (op) {
    case 0: case 1: case 3: case 4: case 5: case 9:
      op_alloc(s, &in, op, threaded);
      break;
    case 2:
      op_realloc(s, &in);
      break;
    case 6:
    case 7:
      if (slots[s].p)
        slot_free(s, op == 7);
      break;
    case 8:
      op_remote_free(s, threaded);
      break;
    case 10:
      if (slots[s].p)
        verify(s, "at a usable-size check");
      break;
    case 11: /* free then allocate the same size again: quick reuse */
      if (slots[s].p) {
        size_t n = slots[s].size;
        slot_free(s, true);
        unsigned char *p = alloy_malloc(n);
        if (!p)
          FAIL("malloc(%zu) failed", n);
        check_new(s, p, n, 0, false);
        install(s, p, n, 0, H_MALLOC);
      }
      break;
    }
  }
  for (int s = 0; s < NSLOTS; s++)
    if (slots[s].p)
      slot_free(s, (s & 1) != 0);
  if (helper_started)
    drain();
  alloy_stats_get(&st1);
  if (st1.allocated != st0.allocated)
    FAIL("every block freed, yet allocated went from %llu to %llu bytes",
         (unsigned long long)st0.allocated, (unsigned long long)st1.allocated);
  return 0;
}
