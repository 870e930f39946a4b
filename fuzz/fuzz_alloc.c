/*
 * fuzz_alloc.c - libFuzzer harness for alloy's prefixed API, the standard
 * calls and jemalloc's extended ones, checked against a reference model.
 *
 * Built by fuzz/run.sh (fuzz/fuzz.mk) with clang -fsanitize=fuzzer,address,
 * undefined over the allocator's core sources (all of src/ but override.c), like
 * the sanitizer builds of tests/tests.mk; so the OS layer's test hooks
 * (os_set_fail_count, os_set_fail_after of src/os.h) are reachable.
 *
 * Input: byte 0 holds flags (bit 0: threaded mode), then a sequence of
 * operations, each an opcode byte (% 18), a slot byte (64 slots) and, for
 * allocations, a size (see take_size: mostly below 256 bytes, then up to
 * 8 KiB, 64 KiB, 2 MiB (large) and 8 MiB (huge)) and sometimes an alignment
 * or jemalloc flags (take_xflags: MALLOCX_LG_ALIGN 0..16, MALLOCX_ZERO, the
 * explicit tcache, MALLOCX_TCACHE_NONE, the explicit arena, MALLOCX_ARENA(0)):
 *
 *    0 malloc   1 calloc (count * size)   2 realloc (also of NULL, and to 0)
 *    3 aligned_alloc   4 posix_memalign   5 memalign (any alignment: rounded up)
 *    6 free   7 free_sized / free_aligned_sized with the right size (and the
 *    alignment asked for)   8 remote free   9 remote malloc   10 usable size
 *   11 free and malloc the same size again
 *   12 mallocx FLAGS (nallocx with the same flags must predict sallocx)
 *   13 rallocx FLAGS   14 xallocx SIZE EXTRA FLAGS
 *   15 dallocx or sdallocx of any block, with its alignment as flags, through
 *      the thread's tcache, the explicit one or none; sdallocx's size anywhere
 *      from the size asked for to the usable size (jemalloc's rule)
 *   16 arm an injected failure for the next operation: the next 1..8
 *      mappings fail (os_set_fail_count), or every one after the next 0..7
 *      (os_set_fail_after), or the back end's 0..7-th next request for a
 *      page, span or big block (segment_set_fail_after), however much its
 *      pool holds; disarmed after that operation
 *   17 tcache.flush, thread.tcache.flush, tcache.destroy + tcache.create,
 *      arena.<a>.purge or arena.<a>.decay of the explicit arena
 *
 * The explicit arena (arenas.create) and tcache (tcache.create) are made at
 * the first input and live for the whole run.
 *
 * The model keeps, per slot, the pointer, the size asked for, the alignment
 * and the usable size.  Every block is filled over its whole usable size with
 * a pattern derived from its slot, size and a generation counter (all of a
 * block up to 64 KiB; of bigger ones the first 64 KiB, the last 4 KiB and a
 * word every 32 KiB), and checked before it is freed or reallocated.  On
 * every allocation: alignment (16, or the one asked for), usable size >= size,
 * sallocx == usable size, no overlap of [p, p + usable) with any live block
 * of the model, calloc'ed and MALLOCX_ZERO'd bytes zero (mallocx: the whole
 * usable size); posix_memalign returns 0 and leaves *out alone on failure;
 * usable size is stable.  realloc keeps the first min(old, new) requested
 * bytes; rallocx the first min(old usable, new) bytes, and with MALLOCX_ZERO
 * the bytes from the old usable size to the new one are zero.  xallocx
 * returns the usable size, which is at least the size asked for or else the
 * old usable size (the block untouched); the block stays in place with its
 * contents, grown bytes zero with MALLOCX_ZERO and overlapping nothing.
 *
 * Nothing may fail unless a failure was injected.  Then a NULL is accepted
 * (errno ENOMEM for the standard calls, posix_memalign's ENOMEM with *out
 * untouched), and a failed realloc or rallocx must leave the old block the
 * caller's: same address, same usable size, contents intact (the model keeps
 * it and frees it later).  At the end of each input every block is freed and
 * alloy_stats_get().allocated must be back to its value at the start of the
 * input: failed calls count nothing.
 *
 * Threaded mode: a helper thread (started once) frees the blocks handed to
 * it through a queue ("remote free", after verifying them, while the main
 * thread goes on allocating; each of the free calls above, the explicit
 * tcache excepted, which belongs to the main thread) and allocates blocks
 * for the main thread ("remote malloc": blocks of the helper's heap, later
 * freed by the main thread).  At the end of each input the main thread
 * waits for the queue to drain.  Without the flag both operations are done
 * locally.
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
#include "../src/os.h"         /* os_set_fail_count, os_set_fail_after */
void segment_set_fail_after(long n); /* src/segment.c's test hook */
#include "../tests/testutil.h" /* mix64, pat_word */

#define NSLOTS 64
#define NOPS 18
#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define HUGE_CAP (8 * MiB)

/* H_MALLOCX: from mallocx, rallocx or (grown by) xallocx: its alignment is
 * 1 << MALLOCX_LG_ALIGN (0: none). */
enum how { H_MALLOC, H_CALLOC, H_REALLOC, H_ALIGNED, H_POSIX, H_MEMALIGN, H_REMOTE, H_MALLOCX };

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

/* The explicit arena and tcache of the extended API, made at the first input. */
static unsigned ext_arena, ext_tcache;

/* Set while an injected mapping failure is armed: allocations may fail. */
static bool armed;

/* FUZZ_TRACE=1 in the environment: each operation and the state of its
 * slot afterwards go to stderr (reading a crash's input). */
static bool tracing;

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

/* xallocx's extra: none half of the time, else up to 8 KiB or 4 MiB. */
static size_t take_extra(struct input *in)
{
  unsigned sel = take8(in);
  if (sel < 128)
    return 0;
  if (sel < 224)
    return take16(in) % (8 * KiB + 1);
  return take24(in) % (4 * MiB + 1);
}

/* jemalloc flags, two bytes: MALLOCX_LG_ALIGN (mostly 0, else up to 8, a
 * few up to 16), then bit 0 MALLOCX_ZERO and bits 1..3 the route: the
 * thread's tcache (0, 1), the explicit tcache (2), MALLOCX_TCACHE_NONE (3),
 * the explicit arena (4), with the explicit tcache (5), MALLOCX_ARENA(0)
 * (6: the thread heaps), the explicit arena with MALLOCX_TCACHE_NONE (7). */
struct xflags {
  unsigned lg_align;
  bool zero;
  int flags;
};

static struct xflags take_xflags(struct input *in)
{
  unsigned a = take8(in), b = take8(in);
  struct xflags x = {a < 128 ? 0 : a < 224 ? a % 9 : a % 17, b & 1, 0};
  x.flags = ALLOY_MALLOCX_LG_ALIGN(x.lg_align) | (x.zero ? ALLOY_MALLOCX_ZERO : 0);
  switch ((b >> 1) & 7) {
  case 2:
    x.flags |= ALLOY_MALLOCX_TCACHE(ext_tcache);
    break;
  case 3:
    x.flags |= ALLOY_MALLOCX_TCACHE_NONE;
    break;
  case 4:
    x.flags |= ALLOY_MALLOCX_ARENA(ext_arena);
    break;
  case 5:
    x.flags |= ALLOY_MALLOCX_ARENA(ext_arena) | ALLOY_MALLOCX_TCACHE(ext_tcache);
    break;
  case 6:
    x.flags |= ALLOY_MALLOCX_ARENA(0);
    break;
  case 7:
    x.flags |= ALLOY_MALLOCX_ARENA(ext_arena) | ALLOY_MALLOCX_TCACHE_NONE;
    break;
  }
  return x;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

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

/* calloc, MALLOCX_ZERO: the same coverage, every byte zero. */
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
    FAIL("slot %d (%p) %s: usable size changed from %zu to %zu", s, (void *)b->p, when, b->usable, u);
  u = alloy_sallocx(b->p, 0);
  if (u != b->usable)
    FAIL("slot %d (%p) %s: sallocx %zu, usable size %zu", s, (void *)b->p, when, u, b->usable);
}

/* ------------------------------------------------------- new block checks */
/* [p, p + usable) against every live block of the model but slot s. */
static void check_no_overlap(int s, const unsigned char *p, size_t usable, const char *what)
{
  uintptr_t lo = (uintptr_t)p, hi = lo + (usable ? usable : 1);
  for (int t = 0; t < NSLOTS; t++) {
    if (t == s || !slots[t].p)
      continue;
    uintptr_t l2 = (uintptr_t)slots[t].p, h2 = l2 + (slots[t].usable ? slots[t].usable : 1);
    if (lo < h2 && l2 < hi)
      FAIL("%s %p+%zu overlaps slot %d %p+%zu", what, (void *)p, usable, t, (void *)slots[t].p,
           slots[t].usable);
  }
}

/* A block just returned for `size` bytes at `align`; its first zero_len
 * bytes must be zero. */
static void check_new(int s, unsigned char *p, size_t size, size_t align, size_t zero_len)
{
  if (((uintptr_t)p & 15) != 0)
    FAIL("%p (size %zu) is not 16-aligned", (void *)p, size);
  if (align > 16 && ((uintptr_t)p & (align - 1)) != 0)
    FAIL("%p (size %zu) is not %zu-aligned", (void *)p, size, align);
  size_t usable = alloy_usable_size(p);
  if (usable < size)
    FAIL("%p: usable size %zu < size %zu", (void *)p, usable, size);
  size_t nz;
  if ((nz = zero_check(p, zero_len)) != SIZE_MAX)
    FAIL("zeroed block %p (size %zu): byte %zu is 0x%02x", (void *)p, size, nz, p[nz]);
  check_no_overlap(s, p, usable, "new block");
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

/* An allocation returned NULL: fine only with a failure injected, and then
 * the standard calls say ENOMEM (err: errno after the call, 0 when the
 * call's contract does not say). */
static void check_failed(const char *what, size_t size, int err)
{
  if (!armed)
    FAIL("%s of %zu bytes failed, errno %d", what, size, errno);
  if (err != 0 && err != ENOMEM)
    FAIL("%s of %zu bytes failed under an injected mapping failure with errno %d, want ENOMEM",
         what, size, err);
}

/* ------------------------------------------------------------ releasing */
/* How a block goes back: free; the C23 sized free its allocation allows
 * (free_sized, free_aligned_sized; free for memalign and posix_memalign
 * blocks); dallocx; sdallocx with a size from the size asked for to the
 * usable one. */
enum release { R_FREE, R_SIZED, R_DALLOCX, R_SDALLOCX };

/* The flags of a dallocx/sdallocx of b: its alignment, and by `pick` the
 * thread's tcache, MALLOCX_TCACHE_NONE, or the explicit tcache (only on the
 * main thread: a tcache is not to be shared between threads). */
static int release_flags(const struct slot *b, unsigned pick, bool remote)
{
  int flags = b->align > 1 ? ALLOY_MALLOCX_LG_ALIGN(__builtin_ctzl(b->align)) : 0;
  if (pick % 3 == 1)
    flags |= ALLOY_MALLOCX_TCACHE_NONE;
  else if (pick % 3 == 2 && !remote)
    flags |= ALLOY_MALLOCX_TCACHE(ext_tcache);
  return flags;
}

static void release(const struct slot *b, enum release how, unsigned pick, bool remote)
{
  int flags = release_flags(b, pick, remote);
  switch (how) {
  case R_FREE:
    alloy_free(b->p);
    break;
  case R_SIZED:
    if (b->how == H_ALIGNED)
      alloy_free_aligned_sized(b->p, b->align, b->size);
    else if (b->how == H_MALLOCX)
      alloy_sdallocx(b->p, b->size, flags);
    else if (b->how == H_MEMALIGN || b->how == H_POSIX)
      alloy_free(b->p);
    else
      alloy_free_sized(b->p, b->size);
    break;
  case R_DALLOCX:
    alloy_dallocx(b->p, flags);
    break;
  case R_SDALLOCX: {
    size_t n = b->size;
    if (pick / 3 % 3 == 1)
      n = b->usable;
    else if (pick / 3 % 3 == 2)
      n = b->size + (b->usable - b->size) / 2;
    alloy_sdallocx(b->p, n, flags);
    break;
  }
  }
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
static int q_alloc_errno;
static bool helper_started;
static pthread_t helper;

static void helper_free(struct slot *b)
{
  size_t bad = pat_check(b->p, b->usable, b->usable, b->key);
  if (bad != SIZE_MAX)
    FAIL("remote free of %p (size %zu): byte %zu changed", (void *)b->p, b->size, bad);
  release(b, (enum release)(b->key & 3), (unsigned)(b->key >> 2 & 0xff), true);
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
      errno = 0;
      unsigned char *p = alloy_malloc(it.blk.size);
      q_alloc_errno = errno;
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
static void slot_free(int s, enum release how, unsigned pick)
{
  verify(s, "before free");
  release(&slots[s], how, pick, false);
  slots[s].p = NULL;
}

static void op_alloc(int s, struct input *in, unsigned op, bool threaded)
{
  if (slots[s].p)
    slot_free(s, R_FREE, 0);
  size_t size = take_size(in), align = 0, zero_len = 0;
  unsigned char *p = NULL;
  enum how how = H_MALLOC;
  const char *what = "malloc";
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
    what = "calloc";
    zero_len = size;
    break;
  }
  case 3:
    align = take_align(in);
    p = alloy_aligned_alloc(align, size);
    how = H_ALIGNED;
    what = "aligned_alloc";
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
      check_failed("posix_memalign", size, 0);
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
    what = "memalign";
    break;
  }
  case 9: /* remote malloc */
    if (threaded) {
      struct qitem it = {Q_ALLOC, {0}};
      it.blk.size = size;
      it.blk.key = mix64(((uint64_t)s << 56) ^ ((uint64_t)size << 8) ^ ++generation);
      q_push(&it, true);
      struct slot r = q_alloc_result;
      if (!r.p) {
        check_failed("remote malloc", size, q_alloc_errno);
        return;
      }
      check_new(s, r.p, size, 0, 0);
      slots[s] = r;
      slots[s].how = H_REMOTE;
      verify(s, "after remote malloc");
      return;
    }
    p = alloy_malloc(size);
    break;
  }
  if (!p) {
    check_failed(what, size, errno);
    return;
  }
  check_new(s, p, size, align, zero_len);
  install(s, p, size, align, how);
}

static void op_realloc(int s, struct input *in)
{
  size_t size = take_size(in);
  struct slot *b = &slots[s];
  errno = 0;
  if (!b->p) {
    unsigned char *p = alloy_realloc(NULL, size);
    if (!p) {
      check_failed("realloc(NULL)", size, errno);
      return;
    }
    check_new(s, p, size, 0, 0);
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
  if (!q) { /* the old block is still the caller's, untouched */
    check_failed("realloc", size, errno);
    verify(s, "after a failed realloc");
    return;
  }
  size_t keep = old.size < size ? old.size : size;
  size_t bad = pat_check(q, old.usable, keep, old.key);
  if (bad != SIZE_MAX)
    FAIL("realloc(%p size %zu -> %zu) = %p lost byte %zu", (void *)old.p, old.size, size,
         (void *)q, bad);
  b->p = NULL; /* the old block is gone: exclude it from the overlap check */
  check_new(s, q, size, 0, 0);
  install(s, q, size, 0, H_REALLOC);
  /* (install refilled the block with a pattern of the new key) */
}

/* mallocx; nallocx with the same flags must predict the usable size. */
static void op_mallocx(int s, struct input *in)
{
  if (slots[s].p)
    slot_free(s, R_FREE, 0);
  size_t size = take_size(in);
  struct xflags x = take_xflags(in);
  size_t predicted = alloy_nallocx(size, x.flags);
  unsigned char *p = alloy_mallocx(size, x.flags);
  if (!p) {
    check_failed("mallocx", size, 0);
    return;
  }
  size_t usable = alloy_usable_size(p), align = x.lg_align ? (size_t)1 << x.lg_align : 0;
  if (usable != predicted)
    FAIL("nallocx(%zu, %#x) = %zu, but mallocx gave %p with usable size %zu", size, x.flags,
         predicted, (void *)p, usable);
  check_new(s, p, size, align, x.zero ? usable : 0);
  install(s, p, size, align, H_MALLOCX);
}

/* rallocx: contents kept up to min(old usable, size), the alignment asked
 * for, growth zeroed with MALLOCX_ZERO from the old usable size on; on
 * failure the old block untouched. */
static void op_rallocx(int s, struct input *in)
{
  size_t size = take_size(in);
  struct xflags x = take_xflags(in);
  struct slot *b = &slots[s];
  if (!b->p)
    return; /* (rallocx of NULL is undefined) */
  if (size == 0)
    size = 1; /* (so is size 0) */
  verify(s, "before rallocx");
  struct slot old = *b;
  unsigned char *q = alloy_rallocx(old.p, size, x.flags);
  if (!q) {
    check_failed("rallocx", size, 0);
    verify(s, "after a failed rallocx");
    return;
  }
  size_t bad = pat_check(q, old.usable, min_size(old.usable, size), old.key);
  if (bad != SIZE_MAX)
    FAIL("rallocx(%p usable %zu -> %zu, flags %#x) = %p lost byte %zu", (void *)old.p, old.usable,
         size, x.flags, (void *)q, bad);
  size_t usable = alloy_usable_size(q), align = x.lg_align ? (size_t)1 << x.lg_align : 0;
  if (x.zero && usable > old.usable && (bad = zero_check(q + old.usable, usable - old.usable)) != SIZE_MAX)
    FAIL("rallocx(%p usable %zu -> %zu, flags %#x) = %p: grown byte %zu is 0x%02x", (void *)old.p,
         old.usable, size, x.flags, (void *)q, old.usable + bad, q[old.usable + bad]);
  b->p = NULL; /* the old block is gone: exclude it from the overlap check */
  check_new(s, q, size, align, 0);
  install(s, q, size, align, H_MALLOCX);
}

/* xallocx: in place, returns the usable size: at least `size`, or else the
 * old usable size with the block untouched. */
static void op_xallocx(int s, struct input *in)
{
  size_t size = take_size(in), extra = take_extra(in);
  struct xflags x = take_xflags(in);
  struct slot *b = &slots[s];
  if (!b->p)
    return;
  if (size == 0)
    size = 1; /* (size 0 is undefined) */
  verify(s, "before xallocx");
  size_t got = alloy_xallocx(b->p, size, extra, x.flags), usable = alloy_usable_size(b->p);
  if (got != usable)
    FAIL("xallocx(%p, %zu, %zu, %#x) = %zu, but the usable size is %zu", (void *)b->p, size,
         extra, x.flags, got, usable);
  if (got < size && got != b->usable)
    FAIL("xallocx(%p usable %zu, %zu, %zu, %#x) = %zu: neither grown nor left alone",
         (void *)b->p, b->usable, size, extra, x.flags, got);
  size_t bad = pat_check(b->p, b->usable, min_size(b->usable, got), b->key);
  if (bad != SIZE_MAX)
    FAIL("xallocx(%p usable %zu, %zu, %zu, %#x) = %zu changed byte %zu", (void *)b->p, b->usable,
         size, extra, x.flags, got, bad);
  if (got == b->usable)
    return;
  if (x.zero && got > b->usable && (bad = zero_check(b->p + b->usable, got - b->usable)) != SIZE_MAX)
    FAIL("xallocx(%p usable %zu, %zu, %zu, %#x) = %zu: grown byte %zu is 0x%02x", (void *)b->p,
         b->usable, size, extra, x.flags, got, b->usable + bad, b->p[b->usable + bad]);
  check_no_overlap(s, b->p, got, "block grown in place");
  /* its size is now the usable one (what sdallocx may be given), its
   * alignment that of its start */
  install(s, b->p, got, b->align, b->how);
}

static void op_remote_free(int s, bool threaded)
{
  if (!slots[s].p)
    return;
  if (!threaded) {
    slot_free(s, (enum release)(slots[s].key & 3), (unsigned)(slots[s].key >> 2 & 0xff));
    return;
  }
  verify(s, "before remote free");
  struct qitem it = {Q_FREE, slots[s]};
  slots[s].p = NULL;
  q_push(&it, false);
}

/* tcache.flush, thread.tcache.flush, tcache.destroy + create, arena purge
 * and decay: none of them may touch a live block. */
static void op_control(unsigned what)
{
  char name[48];
  int rc = 0;
  switch (what % 5) {
  case 0:
    rc = alloy_mallctl("tcache.flush", NULL, NULL, &ext_tcache, sizeof ext_tcache);
    break;
  case 1:
    rc = alloy_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    break;
  case 2: {
    rc = alloy_mallctl("tcache.destroy", NULL, NULL, &ext_tcache, sizeof ext_tcache);
    size_t len = sizeof ext_tcache;
    if (rc == 0)
      rc = alloy_mallctl("tcache.create", &ext_tcache, &len, NULL, 0);
    break;
  }
  default:
    snprintf(name, sizeof name, "arena.%u.%s", ext_arena, what % 5 == 3 ? "purge" : "decay");
    rc = alloy_mallctl(name, NULL, NULL, NULL, 0);
    break;
  }
  if (rc != 0)
    FAIL("control operation %u failed: %d", what % 5, rc);
}

/* Op 16: the next operation runs with failures injected, shaped by the slot
 * byte: bit 4 set, the back end's (b & 7)-th next request (class page,
 * large span, big block) fails whatever its pool holds; else bit 3 clear,
 * the next (b & 7) + 1 mappings fail, then they succeed again (a fallback
 * after a failure); bit 3 set, every mapping fails after the next b & 7
 * succeed (a multi-step path failing at each step). */
static void arm_failure(unsigned b)
{
  if (b & 16)
    segment_set_fail_after((long)(b & 7));
  else if (b & 8)
    os_set_fail_after((long)(b & 7));
  else
    os_set_fail_count((long)(b & 7) + 1);
  armed = true;
}

static void disarm_failure(void)
{
  os_set_fail_count(0);
  os_set_fail_after(-1);
  segment_set_fail_after(-1);
  armed = false;
}

static void drain(void)
{
  struct qitem it = {Q_DRAIN, {0}};
  q_push(&it, true);
}

static void setup_extended(void)
{
  static bool done;
  if (done)
    return;
  tracing = getenv("FUZZ_TRACE") != NULL;
  size_t len = sizeof ext_arena;
  if (alloy_mallctl("arenas.create", &ext_arena, &len, NULL, 0) != 0)
    FAIL("arenas.create failed");
  len = sizeof ext_tcache;
  if (alloy_mallctl("tcache.create", &ext_tcache, &len, NULL, 0) != 0)
    FAIL("tcache.create failed");
  done = true;
}

/* ------------------------------------------------------------------ entry */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct input in = {data, size, 0};
  bool threaded = take8(&in) & 1;
  setup_extended();
  if (threaded)
    start_helper();
  alloy_stats_t st0, st1;
  if (helper_started)
    drain();
  alloy_stats_get(&st0);
  while (in.at < in.n) {
    unsigned op = take8(&in) % NOPS;
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
        slot_free(s, op == 7 ? R_SIZED : R_FREE, 0);
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
        slot_free(s, R_SIZED, 0);
        errno = 0;
        unsigned char *p = alloy_malloc(n);
        if (!p) {
          check_failed("malloc", n, errno);
          break;
        }
        check_new(s, p, n, 0, 0);
        install(s, p, n, 0, H_MALLOC);
      }
      break;
    case 12:
      op_mallocx(s, &in);
      break;
    case 13:
      op_rallocx(s, &in);
      break;
    case 14:
      op_xallocx(s, &in);
      break;
    case 15: {
      unsigned pick = take8(&in);
      if (slots[s].p)
        slot_free(s, pick & 1 ? R_SDALLOCX : R_DALLOCX, pick >> 1);
      break;
    }
    case 16: /* (the slot byte is the failure's shape) */
      arm_failure((unsigned)s);
      continue;
    case 17:
      op_control((unsigned)s);
      break;
    }
    if (tracing)
      fprintf(stderr, "op %2u slot %2d%s: %p size %zu usable %zu align %zu how %d\n", op, s,
              armed ? " (failure armed)" : "", slots[s].p ? (void *)slots[s].p : NULL,
              slots[s].size, slots[s].usable, slots[s].align, (int)slots[s].how);
    if (armed)
      disarm_failure();
  }
  if (armed)
    disarm_failure();
  for (int s = 0; s < NSLOTS; s++)
    if (slots[s].p)
      slot_free(s, (enum release)(s & 3), (unsigned)s >> 2);
  if (helper_started)
    drain();
  alloy_stats_get(&st1);
  if (st1.allocated != st0.allocated)
    FAIL("every block freed, yet allocated went from %llu to %llu bytes",
         (unsigned long long)st0.allocated, (unsigned long long)st1.allocated);
  return 0;
}
