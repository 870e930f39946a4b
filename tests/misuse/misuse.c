/*
 * misuse.c - hardening test: every misuse of the allocator is reported on
 * stderr with its address and ends the process with SIGABRT (or, with
 * ALLOY_CONF=abort_on_error:false, is reported and ignored).
 *
 * Usage: misuse [-v] [--cxx PROGRAM] [CASE...]     run the cases (default: all)
 *        misuse --case CASE --fd N                 (internal: a child's body)
 *
 * The runner forks one child per case; the child re-executes this program
 * (/proc/self/exe) with ALLOY_CONF set for the case, so every case starts
 * from a fresh process and reads its own configuration.  The child sends
 * the address it is about to misuse through a pipe (fd N) and then misuses
 * it; its stderr goes into another pipe.  The parent then checks:
 *
 *   abort cases   the child died of SIGABRT, and exactly one line of its
 *                 stderr holds "alloy:", the address exactly as %p prints it
 *                 (0x + lowercase hex, not followed by another hex digit) and
 *                 the case's words ("double free", "interior", "never
 *                 allocated", "wrong size", ...);
 *   noabort cases (ALLOY_CONF=abort_on_error:false) the same single line,
 *                 and the child exited 0: after the ignored call it
 *                 allocated the same size again many times, got distinct
 *                 blocks that keep their contents (an ignored double free
 *                 must not put the block on a free list twice), and freed
 *                 them without any further report;
 *   clean cases   exit 0 and no "alloy:" at all on stderr: correct programs
 *                 (free_sized / free_aligned_sized with the right sizes,
 *                 threads handing blocks around; also with secure:false,
 *                 which must be a known option) are never reported;
 * MISUSE_EXTRA_CONF=opts adds options to every case (tests/run.sh runs the
 * cases again under guard, guard_sample, background_thread, purge:free,
 * secure:false, thp:always and percpu:true: every misuse is still caught).
 *
 * The table "case | detected | signal" at the end lists every case.
 *
 * Built twice from this source (tests/tests.mk):
 *   build/tests/misuse/misuse          the prefixed API, liballoy_core.a
 *                                      (glibc stays the program's malloc,
 *                                      which gives the "foreign" case);
 *   build/tests/misuse/misuse_preload  -DUSE_LIBC_NAMES: standard names,
 *                                      run under LD_PRELOAD=liballoy.so.
 * With --cxx PROGRAM (tests/misuse/misuse_cxx.cpp, preload only) the runner
 * also runs the C++ cases (sized delete of the wrong size, double delete,
 * correct sized and aligned deletes), which PROGRAM performs.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef USE_LIBC_NAMES
#include "../edge/preload.h"
#endif
#include "../api_names.h"
#include "../testutil.h" /* mix64, pat_word */

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

/* ====================================================================== */
/*                               the child                                */
/* ====================================================================== */

static int addr_fd = -1;

/* Hidden from the compiler, which would otherwise warn about (or drop) a
 * free of a freed or non-heap object. */
static void *volatile launder_slot;
static void *launder(void *p)
{
  launder_slot = p;
  return launder_slot;
}

#define DIE(...)                                                              \
  do {                                                                        \
    fprintf(stderr, "misuse child: " __VA_ARGS__);                            \
    fputc('\n', stderr);                                                      \
    _exit(2);                                                                 \
  } while (0)

/* Tells the parent which address is about to be misused. */
static void tell(const void *p)
{
  uintptr_t a = (uintptr_t)p;
  if (write(addr_fd, &a, sizeof a) != (ssize_t)sizeof a)
    DIE("cannot write the address");
  close(addr_fd);
  addr_fd = -1;
}

/* Fills / checks n bytes with a pattern keyed by k (a word at a time). */
static void pat_fill(unsigned char *p, size_t n, uint64_t k)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = pat_word(k, i);
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++)
    p[i] = (unsigned char)(k >> (i & 7));
}

static bool pat_ok(const unsigned char *p, size_t n, uint64_t k)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = pat_word(k, i), got;
    memcpy(&got, p + i, 8);
    if (got != w)
      return false;
  }
  for (; i < n; i++)
    if (p[i] != (unsigned char)(k >> (i & 7)))
      return false;
  return true;
}

static unsigned char *alloc_filled(size_t n, uint64_t k)
{
  unsigned char *p = A_MALLOC(n);
  if (!p)
    DIE("malloc(%zu) failed", n);
  pat_fill(p, n, k);
  return p;
}

static void check_free(unsigned char *p, size_t n, uint64_t k)
{
  if (!pat_ok(p, n, k))
    DIE("block %p of %zu bytes lost its contents", (void *)p, n);
  A_FREE(p);
}

static int cmp_ptr(const void *a, const void *b)
{
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* After an ignored misuse (abort_on_error:false): the allocator still works.
 * Allocates `size` bytes many times (all alive together), checks the blocks
 * are distinct and keep their contents, frees them, then a mixed workload. */
static void still_works(size_t size)
{
  enum { N = 300 };
  int n = size > 2 * MiB ? 6 : size > 64 * KiB ? 40 : N;
  static uintptr_t v[N], sorted[N];
  for (int i = 0; i < n; i++)
    v[i] = (uintptr_t)alloc_filled(size, mix64((uint64_t)i + 1));
  memcpy(sorted, v, sizeof(uintptr_t) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof sorted[0], cmp_ptr);
  for (int i = 1; i < n; i++)
    if (sorted[i] == sorted[i - 1])
      DIE("after the ignored misuse, malloc(%zu) returned %p twice", size, (void *)sorted[i]);
  for (int i = 0; i < n; i++)
    check_free((unsigned char *)v[i], size, mix64((uint64_t)i + 1));
  for (int i = 0; i < 2000; i++) {
    size_t s = (size_t)(mix64((uint64_t)i) % 3000) + 1;
    check_free(alloc_filled(s, (uint64_t)i), s, (uint64_t)i);
  }
}

/* A misuse call returned: fine for abort_on_error:false, otherwise the
 * parent sees a normal exit and no SIGABRT. */
static void returned(size_t size)
{
  fprintf(stderr, "misuse child: the call returned\n");
  still_works(size);
  _exit(0);
}

static void double_free(size_t size)
{
  unsigned char *p = alloc_filled(size, 1);
  A_FREE(p);
  tell(p);
  A_FREE(launder(p));
  returned(size);
}

static void *free_in_thread(void *p)
{
  A_FREE(p);
  return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg)
{
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0 || pthread_join(t, NULL) != 0)
    DIE("pthread failed");
}

/* The thread that makes the second free is started before the first one:
 * pthread_create allocates (under LD_PRELOAD, libc's thread setup mallocs),
 * which could hand the freed address out again in between. */
static _Atomic(uintptr_t) xt_ptr;

static void *free_when_told(void *arg)
{
  (void)arg;
  uintptr_t p;
  while ((p = atomic_load(&xt_ptr)) == 0)
    sched_yield();
  A_FREE((void *)p);
  return NULL;
}

/* Owner frees, another thread frees again. */
static void double_free_xthread(size_t size)
{
  unsigned char *p = alloc_filled(size, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, free_when_told, NULL) != 0)
    DIE("pthread_create failed");
  A_FREE(p);
  tell(p);
  atomic_store(&xt_ptr, (uintptr_t)p);
  pthread_join(t, NULL);
  returned(size);
}

/* Another thread frees first (a remote free), the owner frees again. */
static void double_free_xthread_rev(size_t size)
{
  unsigned char *p = alloc_filled(size, 3);
  unsigned char *keep = alloc_filled(size, 4); /* the page stays in use */
  run_thread(free_in_thread, p);
  tell(p);
  A_FREE(launder(p));
  check_free(keep, size, 4);
  returned(size);
}

/* The block its page handed out last, freed by another thread, then by
 * the owner: the owner's free takes the shortcut for a page's last block
 * (no interior or bound test: fastpath.h), which must still see the
 * remote bit.  The other thread is started first (see above). */
static void double_free_xthread_last(size_t size)
{
  pthread_t t;
  if (pthread_create(&t, NULL, free_when_told, NULL) != 0)
    DIE("pthread_create failed");
  unsigned char *p = alloc_filled(size, 9);
  atomic_store(&xt_ptr, (uintptr_t)p);
  pthread_join(t, NULL);
  tell(p);
  A_FREE(launder(p));
  returned(size);
}

/* Another thread frees the block twice, while it is alive: the second
 * free finds it in the blocks that thread has gathered and not yet
 * published (src/remote.c).  It allocates first, so that it has a heap of
 * its own (a thread's first free, made before it has one, is published at
 * once). */
static void *free_twice_in_thread(void *p)
{
  A_FREE(alloc_filled(32, 11));
  A_FREE(p);
  tell(p);
  A_FREE(launder(p));
  return NULL;
}

static void double_free_xthread_held(size_t size)
{
  unsigned char *p = alloc_filled(size, 12);
  unsigned char *keep = alloc_filled(size, 4); /* the page stays in use */
  run_thread(free_twice_in_thread, p);
  check_free(keep, size, 4);
  returned(size);
}

/* Another thread frees the block and holds it (gathered, not published);
 * the owner then frees it too, which its bits cannot show; the other
 * thread's exit publishes it and finds the owner's free bit set. */
static _Atomic(int) held_step;

static void *free_and_hold(void *arg)
{
  (void)arg;
  A_FREE(alloc_filled(32, 13));
  uintptr_t p;
  while ((p = atomic_load(&xt_ptr)) == 0)
    sched_yield();
  A_FREE((void *)p);
  atomic_store(&held_step, 1);
  while (atomic_load(&held_step) != 2)
    sched_yield();
  return NULL;
}

static void double_free_xthread_held_owner(size_t size)
{
  pthread_t t;
  if (pthread_create(&t, NULL, free_and_hold, NULL) != 0)
    DIE("pthread_create failed");
  unsigned char *p = alloc_filled(size, 14);
  unsigned char *keep = alloc_filled(size, 4); /* the page stays in use */
  atomic_store(&xt_ptr, (uintptr_t)p);
  while (atomic_load(&held_step) != 1)
    sched_yield();
  tell(p);
  A_FREE(launder(p));
  atomic_store(&held_step, 2);
  pthread_join(t, NULL);
  check_free(keep, size, 4);
  returned(size);
}

/* The block a page handed out last, freed twice, the first time through
 * the slow path (its page had filled up and was in the full list, where
 * the free does not mark the page's last block freed): the second free
 * takes the shortcut for a page's last block and must find its bit set.
 * Blocks of 20,000 bytes (a medium class: a few to a page, whose size is
 * no multiple of theirs) are taken until one does not follow the one
 * before: the one before is then the last of a page that has just filled. */
static void double_free_full_last(void)
{
  enum { N = 64 };
  static unsigned char *v[N];
  unsigned char *p = NULL;
  v[0] = alloc_filled(20000, 10);
  size_t step = A_USABLE(v[0]);
  for (int n = 1; n < N && !p; n++) {
    v[n] = alloc_filled(20000, 10);
    if (v[n] != v[n - 1] + step)
      p = v[n - 1];
  }
  if (!p)
    DIE("inconclusive: %d blocks of 20000 bytes followed each other", N);
  A_FREE(p);
  tell(p);
  A_FREE(launder(p));
  returned(20000);
}

/* p = malloc(64); free(p); 1000 blocks of other sizes come and go; free(p). */
static void double_free_delayed(void)
{
  static const size_t other[] = {16,   24,    32,    48,    80,     96,     100,  128,
                                 200,  256,   500,   1000,  2000,   4000,   8000, 16000,
                                 30000, 70000, 100000, 300000, 3 * MiB / 2};
  enum { N = 1000 };
  static unsigned char *v[N];
  static size_t sz[N];
  unsigned char *p = alloc_filled(64, 5);
  A_FREE(p);
  for (int i = 0; i < N; i++) {
    sz[i] = other[mix64((uint64_t)i + 77) % (sizeof other / sizeof other[0])];
    v[i] = alloc_filled(sz[i], (uint64_t)i);
    if (v[i] == p)
      DIE("inconclusive: %p was handed out again (size %zu)", (void *)p, sz[i]);
    if (i % 3 == 2) { /* some come and go at once, the rest later */
      check_free(v[i], sz[i], (uint64_t)i);
      v[i] = NULL;
    }
  }
  for (int i = N - 1; i >= 0; i -= 2)
    if (v[i])
      check_free(v[i], sz[i], (uint64_t)i);
  for (int i = 0; i < N; i += 2)
    if (v[i])
      check_free(v[i], sz[i], (uint64_t)i);
  tell(p);
  A_FREE(launder(p));
  returned(64);
}

static void interior(size_t size, size_t offset)
{
  unsigned char *p = alloc_filled(size, 6);
  tell(p + offset);
  A_FREE(launder(p + offset));
  if (!pat_ok(p, size, 6))
    DIE("the block was damaged by the ignored interior free");
  check_free(p, size, 6); /* the block itself is still live and freeable */
  returned(size);
}

static char global_buf[4096];

/* first: the misuse is the process's very first call into the allocator
 * (ALLOY_CONF must apply all the same). */
static void stack_free(bool first)
{
  char buf[256];
  memset(buf, 1, sizeof buf);
  if (!first)
    A_FREE(alloc_filled(100, 13));
  tell(buf + 32);
  A_FREE(launder(buf + 32));
  returned(100);
}

static void global_free(void)
{
  memset(global_buf, 1, sizeof global_buf);
  A_FREE(alloc_filled(100, 14));
  tell(global_buf + 64);
  A_FREE(launder(global_buf + 64));
  returned(100);
}

/* An address in a region that was mapped and is now unmapped. */
static void wild_free(void)
{
  A_FREE(alloc_filled(100, 7)); /* the allocator is set up before the hole is made */
  size_t len = 8 * MiB;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    DIE("mmap failed");
  munmap(m, len);
  tell(m + len / 2 + 48);
  A_FREE(launder(m + len / 2 + 48));
  returned(100);
}

/* An address in a live mapping that alloy did not make. */
static void mmap_free(void)
{
  A_FREE(alloc_filled(100, 8));
  size_t len = 8 * MiB;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    DIE("mmap failed");
  memset(m, 0x77, len);
  tell(m + len / 2 + 48);
  A_FREE(launder(m + len / 2 + 48));
  returned(100);
}

#ifndef USE_LIBC_NAMES
/* A block of glibc's malloc (the program's own allocator here). */
static void foreign_free(void)
{
  A_FREE(alloc_filled(100, 9));
  char *g = malloc(100);
  if (!g)
    DIE("glibc malloc failed");
  memset(g, 1, 100);
  tell(g);
  alloy_free(launder(g));
  returned(100);
}
#endif

static void realloc_freed(size_t size)
{
  unsigned char *p = alloc_filled(size, 10);
  A_FREE(p);
  tell(p);
  void *q = A_REALLOC(launder(p), size * 2);
  if (q != NULL && q != p)
    A_FREE(q);
  returned(size);
}

static void free_sized_wrong(size_t size, size_t wrong)
{
  unsigned char *p = alloc_filled(size, 11);
  tell(p);
  A_FREE_SIZED(launder(p), wrong);
  /* Ignored: the block is still live. */
  check_free(p, size, 11);
  returned(size);
}

/* Correct programs are never reported: free_sized with the size asked for
 * (malloc, calloc, realloc in place and moved) and free_aligned_sized with
 * the alignment and size asked for, over all size ranges. */
static void sized_ok(void)
{
  static const size_t big[] = {65536,     65537,    100000,   300000,  1 * MiB,
                               2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 3 * MiB, 8 * MiB + 5};
  for (size_t n = 0; n <= 70000; n += (n < 2048 ? 1 : n < 16384 ? 7 : 61)) {
    unsigned char *p = A_MALLOC(n);
    if (!p)
      DIE("malloc(%zu) failed", n);
    memset(p, 1, n);
    A_FREE_SIZED(p, n);
    p = A_CALLOC(1, n);
    if (!p)
      DIE("calloc(%zu) failed", n);
    A_FREE_SIZED(p, n);
  }
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    unsigned char *p = alloc_filled(big[i], 12);
    A_FREE_SIZED(p, big[i]);
  }
  /* A realloc chain up to 5 MiB and back: the size given to free_sized is
   * the last one asked for, whether the block moved or stayed in place. */
  size_t n = 1;
  unsigned char *p = A_MALLOC(n);
  for (int step = 0, growing = 1; growing || n > 1; step++) {
    size_t next = growing ? n + n / 5 + 1 : n - n / 6 - 1;
    if (growing && next > 5 * MiB)
      growing = 0;
    p = A_REALLOC(p, next);
    if (!p)
      DIE("realloc(%zu) failed", next);
    n = next;
    if (step % 7 == 0) { /* a sized free of the current block, then go on */
      memset(p, 2, n);
      A_FREE_SIZED(p, n);
      p = A_MALLOC(n);
      if (!p)
        DIE("malloc(%zu) failed", n);
    }
  }
  A_FREE_SIZED(p, n);
  /* aligned_alloc + free_aligned_sized with the alignment and the size asked
   * for (C23; the size need not be a multiple of the alignment). */
  for (size_t a = 16; a <= 8 * MiB; a *= 2) {
    static const size_t sizes[] = {1, 24, 100, 1000, 5000, 20000, 70000, 300000, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void *q = A_ALIGNED_ALLOC(a, sizes[i]);
      if (!q)
        DIE("aligned_alloc(%zu, %zu) failed", a, sizes[i]);
      memset(q, 3, sizes[i]);
      A_FREE_ALIGNED_SIZED(q, a, sizes[i]);
      q = A_ALIGNED_ALLOC(a, (sizes[i] + a - 1) / a * a);
      if (!q)
        DIE("aligned_alloc(%zu, %zu) failed", a, (sizes[i] + a - 1) / a * a);
      A_FREE_ALIGNED_SIZED(q, a, (sizes[i] + a - 1) / a * a);
      if (A_POSIX_MEMALIGN(&q, a, sizes[i]) != 0)
        DIE("posix_memalign(%zu, %zu) failed", a, sizes[i]);
      memset(q, 4, sizes[i]);
      A_FREE(q);
    }
  }
  _exit(0);
}

/* An ordinary multi-threaded workload: threads hand blocks to each other
 * through shared slots and verify every block before freeing it. */
#define NSLOTS 512
static _Atomic(uintptr_t) slots[NSLOTS];
static _Atomic(int) workload_bad;

static size_t wl_size(uint64_t r)
{
  unsigned k = (unsigned)(r % 1000);
  if (k < 800)
    return (size_t)(r >> 10) % 1024 + 1;
  if (k < 970)
    return (size_t)(r >> 10) % 60000 + 1;
  if (k < 998)
    return (size_t)(r >> 10) % 700000 + 1;
  return (size_t)(r >> 10) % (4 * MiB) + 2 * MiB;
}

/* A slot holds a block whose first 8 bytes are its size. */
static void wl_release(uintptr_t v)
{
  if (!v)
    return;
  unsigned char *p = (unsigned char *)v;
  size_t n;
  memcpy(&n, p, 8);
  if (n < 8 || n > 8 * MiB || !pat_ok(p + 8, n - 8, n)) {
    atomic_fetch_add(&workload_bad, 1);
    return;
  }
  if (n % 2)
    A_FREE_SIZED(p, n);
  else
    A_FREE(p);
}

static void *wl_thread(void *arg)
{
  uint64_t r = (uint64_t)(uintptr_t)arg;
  for (int i = 0; i < 20000; i++) {
    r = mix64(r + 1);
    size_t n = wl_size(r);
    if (n < 8)
      n = 8;
    unsigned char *p = A_MALLOC(n);
    if (!p) {
      atomic_fetch_add(&workload_bad, 1);
      break;
    }
    memcpy(p, &n, 8);
    pat_fill(p + 8, n - 8, n);
    wl_release(atomic_exchange(&slots[r % NSLOTS], (uintptr_t)p));
  }
  return NULL;
}

static void normal_workload(void)
{
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++)
    if (pthread_create(&t[i], NULL, wl_thread, (void *)(i * 1000 + 1)) != 0)
      DIE("pthread_create failed");
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < NSLOTS; i++)
    wl_release(atomic_exchange(&slots[i], 0));
  if (atomic_load(&workload_bad))
    DIE("%d blocks were damaged or not allocated", atomic_load(&workload_bad));
  _exit(0);
}

/* ====================================================================== */
/*                               the cases                                */
/* ====================================================================== */

enum expect {
  ABORT,   /* one report line, then SIGABRT */
  REPORT,  /* abort_on_error:false: one report line, then exit 0 */
  CLEAN,   /* exit 0, no report at all */
};

struct mcase {
  const char *name;
  enum expect expect;
  const char *conf;     /* ALLOY_CONF for the child; NULL: unset */
  const char *words[3]; /* every one must be on the report line */
  const char *alt;      /* when set: this or words[1] (realloc: "freed"/"double free") */
  bool addr;            /* the line must name the address */
  bool cxx;             /* run by the C++ program (--cxx) */
};

#define NOABORT "abort_on_error:false"
#define DF {"alloy:", "double free", NULL}
#define NEVER {"alloy:", "never allocated", NULL}
#define INTERIOR {"alloy:", "interior", NULL}
#define WRONG {"alloy:", "wrong size", NULL}

static const struct mcase cases[] = {
    {"double_small", ABORT, NULL, DF, NULL, true, false},
    {"double_medium", ABORT, NULL, DF, NULL, true, false},
    {"double_large", ABORT, NULL, DF, NULL, true, false},
    {"double_huge", ABORT, NULL, DF, NULL, true, false},
    {"double_delayed", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread_large", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread_rev", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread_last", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread_held", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread_held_owner", ABORT, NULL, DF, NULL, true, false},
    {"double_full_last", ABORT, NULL, DF, NULL, true, false},
    {"double_large_cached", ABORT, NULL, DF, NULL, true, false},
    {"double_xthread_cached", ABORT, NULL, DF, NULL, true, false},
    {"interior16", ABORT, NULL, INTERIOR, NULL, true, false},
    {"interior8", ABORT, NULL, INTERIOR, NULL, true, false},
    {"interior_large", ABORT, NULL, INTERIOR, NULL, true, false},
    {"interior_huge", ABORT, NULL, INTERIOR, NULL, true, false},
    {"stack", ABORT, NULL, NEVER, NULL, true, false},
    {"global", ABORT, NULL, NEVER, NULL, true, false},
    {"first_call", ABORT, NULL, NEVER, NULL, true, false},
    {"wild", ABORT, NULL, NEVER, NULL, true, false},
    {"mmap", ABORT, NULL, NEVER, NULL, true, false},
#ifndef USE_LIBC_NAMES
    {"foreign", ABORT, NULL, NEVER, NULL, true, false},
#endif
    {"realloc_freed", ABORT, NULL, {"alloy:", "freed", NULL}, "double free", true, false},
    {"realloc_freed_large", ABORT, NULL, {"alloy:", "freed", NULL}, "double free", true, false},
    {"realloc_freed_cached", ABORT, NULL, {"alloy:", "freed", NULL}, "double free", true, false},
    {"free_sized_wrong", ABORT, NULL, WRONG, NULL, false, false},
    {"free_sized_small", ABORT, NULL, WRONG, NULL, false, false},
    {"free_sized_large", ABORT, NULL, WRONG, NULL, false, false},
    {"free_sized_huge", ABORT, NULL, WRONG, NULL, false, false},
    {"sized_ok", CLEAN, NULL, {NULL}, NULL, false, false},
    {"normal", CLEAN, NULL, {NULL}, NULL, false, false},
    /* abort_on_error:false: reported, ignored, the process goes on */
    {"noabort_double_small", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_double_medium", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_double_large", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_double_huge", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_double_delayed", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_double_xthread", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_double_xthread_held_owner", REPORT, NOABORT, DF, NULL, true, false},
    {"noabort_interior16", REPORT, NOABORT, INTERIOR, NULL, true, false},
    {"noabort_stack", REPORT, NOABORT, NEVER, NULL, true, false},
#ifndef USE_LIBC_NAMES /* (under LD_PRELOAD, libc allocates before main) */
    {"noabort_first_call", REPORT, NOABORT, NEVER, NULL, true, false},
#endif
    {"noabort_wild", REPORT, NOABORT, NEVER, NULL, true, false},
    {"noabort_realloc_freed", REPORT, NOABORT, {"alloy:", "freed", NULL}, "double free", true,
     false},
    {"noabort_free_sized_wrong", REPORT, NOABORT, WRONG, NULL, false, false},
    /* secure:false: no interior-pointer test, but double frees are caught */
    {"secure_off_double_small", ABORT, "secure:false", DF, NULL, true, false},
    {"secure_off_double_delayed", ABORT, "secure:false", DF, NULL, true, false},
    {"secure_off_double_xthread", ABORT, "secure:false", DF, NULL, true, false},
    {"secure_off_double_xthread_rev", ABORT, "secure:false", DF, NULL, true, false},
    {"secure_off_double_large", ABORT, "secure:false", DF, NULL, true, false},
    {"secure_off_normal", CLEAN, "secure:false", {NULL}, NULL, false, false},
    {"secure_off_sized_ok", CLEAN, "secure:false", {NULL}, NULL, false, false},
    /* C++ (run by misuse_cxx under LD_PRELOAD) */
    {"cxx_sized_delete_wrong", ABORT, NULL, WRONG, NULL, false, true},
    {"cxx_sized_delete_base", ABORT, NULL, WRONG, NULL, false, true},
    {"cxx_double_delete", ABORT, NULL, DF, NULL, true, true},
    {"cxx_sized_ok", CLEAN, NULL, {NULL}, NULL, false, true},
    {"cxx_noabort_sized_delete_wrong", REPORT, NOABORT, WRONG, NULL, false, true},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* The body of a case, in the child.  Returns only for an unknown name. */
static void child_run(const char *name)
{
  const char *n = name;
  if (strncmp(n, "noabort_", 8) == 0)
    n += 8;
  else if (strncmp(n, "secure_off_", 11) == 0)
    n += 11;
  if (!strcmp(n, "double_small")) double_free(64);
  if (!strcmp(n, "double_medium")) double_free(20 * KiB);
  if (!strcmp(n, "double_large")) double_free(300 * KiB);
  if (!strcmp(n, "double_huge")) double_free(8 * MiB);
  if (!strcmp(n, "double_delayed")) double_free_delayed();
  if (!strcmp(n, "double_xthread")) double_free_xthread(64);
  if (!strcmp(n, "double_xthread_large")) double_free_xthread(300 * KiB);
  if (!strcmp(n, "double_xthread_rev")) double_free_xthread_rev(64);
  if (!strcmp(n, "double_xthread_last")) double_free_xthread_last(64);
  if (!strcmp(n, "double_xthread_held")) double_free_xthread_held(64);
  if (!strcmp(n, "double_xthread_held_owner")) double_free_xthread_held_owner(64);
  if (!strcmp(n, "double_full_last")) double_free_full_last();
  /* 100 KiB: a large block the freeing thread's heap keeps (heap.c) */
  if (!strcmp(n, "double_large_cached")) double_free(100 * KiB);
  if (!strcmp(n, "double_xthread_cached")) double_free_xthread(100 * KiB);
  if (!strcmp(n, "interior16")) interior(100, 16);
  if (!strcmp(n, "interior8")) interior(100, 8);
  if (!strcmp(n, "interior_large")) interior(300 * KiB, 4096);
  if (!strcmp(n, "interior_huge")) interior(8 * MiB, 64 * KiB + 16);
  if (!strcmp(n, "stack")) stack_free(false);
  if (!strcmp(n, "first_call")) stack_free(true);
  if (!strcmp(n, "global")) global_free();
  if (!strcmp(n, "wild")) wild_free();
  if (!strcmp(n, "mmap")) mmap_free();
#ifndef USE_LIBC_NAMES
  if (!strcmp(n, "foreign")) foreign_free();
#endif
  if (!strcmp(n, "realloc_freed")) realloc_freed(64);
  if (!strcmp(n, "realloc_freed_large")) realloc_freed(300 * KiB);
  if (!strcmp(n, "realloc_freed_cached")) realloc_freed(100 * KiB);
  if (!strcmp(n, "free_sized_wrong")) free_sized_wrong(100, 5000);
  if (!strcmp(n, "free_sized_small")) free_sized_wrong(5000, 100);
  if (!strcmp(n, "free_sized_large")) free_sized_wrong(300 * KiB, 1000);
  if (!strcmp(n, "free_sized_huge")) free_sized_wrong(8 * MiB, 100);
  if (!strcmp(n, "sized_ok")) sized_ok();
  if (!strcmp(n, "normal")) normal_workload();
}

/* ====================================================================== */
/*                               the parent                               */
/* ====================================================================== */

static int verbose;

struct result {
  bool ok;
  const char *detected; /* yes / no / n/a */
  char signal[32];      /* SIGABRT / exit 0 / SIGSEGV ... */
  char why[160];
};

/* Does `line` hold the address exactly as %p prints it? */
static bool line_has_addr(const char *line, uintptr_t addr)
{
  char want[32];
  snprintf(want, sizeof want, "%p", (void *)addr);
  for (const char *s = line; (s = strstr(s, want)) != NULL; s++) {
    char next = s[strlen(want)];
    bool before_ok = s == line || !isalnum((unsigned char)s[-1]);
    if (!isxdigit((unsigned char)next) && before_ok)
      return true;
  }
  return false;
}

static bool line_matches(const struct mcase *c, const char *line, bool have_addr, uintptr_t addr)
{
  for (int i = 0; i < 3 && c->words[i]; i++) {
    bool found = strstr(line, c->words[i]) != NULL;
    if (!found && i == 1 && c->alt)
      found = strstr(line, c->alt) != NULL;
    if (!found)
      return false;
  }
  if (c->addr && (!have_addr || !line_has_addr(line, addr)))
    return false;
  return true;
}

static void read_all(int fd, char *buf, size_t cap)
{
  size_t len = 0;
  ssize_t n;
  for (;;) {
    n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == cap - 1) { /* keep draining so the child never blocks */
      char sink[4096];
      while ((n = read(fd, sink, sizeof sink)) > 0 || (n < 0 && errno == EINTR)) {
      }
      break;
    }
  }
  buf[len] = 0;
}

static struct result run_case(const struct mcase *c, const char *self, const char *cxx)
{
  struct result r = {false, "no", "", ""};
  int errp[2], addrp[2];
  if (pipe2(errp, O_CLOEXEC) != 0 || pipe2(addrp, O_CLOEXEC) != 0) {
    perror("pipe2");
    exit(2);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* no core files from the SIGABRTs */
    alarm(60);                        /* kept across exec: a hang is a failure */
    dup2(errp[1], 2);
    fcntl(addrp[1], F_SETFD, 0); /* the address pipe survives exec */
    char fdbuf[16];
    snprintf(fdbuf, sizeof fdbuf, "%d", addrp[1]);
    /* MISUSE_EXTRA_CONF (the option matrix of tests/run.sh) adds to every case */
    const char *extra = getenv("MISUSE_EXTRA_CONF");
    char conf[256];
    snprintf(conf, sizeof conf, "%s%s%s", c->conf ? c->conf : "", c->conf && extra ? "," : "",
             extra ? extra : "");
    if (conf[0])
      setenv("ALLOY_CONF", conf, 1);
    else
      unsetenv("ALLOY_CONF");
    if (c->cxx) {
      char *argv[] = {(char *)cxx, (char *)c->name, fdbuf, NULL};
      execv(cxx, argv);
    } else {
      char *argv[] = {(char *)self, (char *)"--case", (char *)c->name, (char *)"--fd", fdbuf,
                      NULL};
      execv("/proc/self/exe", argv);
    }
    fprintf(stderr, "misuse: exec failed: %s\n", strerror(errno));
    _exit(127);
  }
  close(errp[1]);
  close(addrp[1]);
  static char err[65536];
  read_all(errp[0], err, sizeof err);
  close(errp[0]);
  uintptr_t addr = 0;
  ssize_t got;
  do {
    got = read(addrp[0], &addr, sizeof addr);
  } while (got < 0 && errno == EINTR);
  close(addrp[0]);
  bool have_addr = got == (ssize_t)sizeof addr;
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *abbrev = sigabbrev_np(sig);
    snprintf(r.signal, sizeof r.signal, "SIG%s", abbrev ? abbrev : "?");
  } else {
    snprintf(r.signal, sizeof r.signal, "exit %d", WEXITSTATUS(status));
  }

  /* The lines of stderr that carry "alloy:", and whether one matches. */
  int alloy_lines = 0, matching = 0;
  for (char *line = err; *line;) {
    char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char save = line[len];
    line[len] = 0;
    if (strstr(line, "alloy:")) {
      alloy_lines++;
      if (c->words[0] && line_matches(c, line, have_addr, addr))
        matching++;
    }
    line[len] = save;
    line += len + (save ? 1 : 0);
  }

  bool exited0 = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  switch (c->expect) {
  case ABORT:
  case REPORT:
    r.detected = matching ? "yes" : "no";
    if (c->addr && !have_addr)
      snprintf(r.why, sizeof r.why, "the child did not get as far as the misuse");
    else if (!matching)
      snprintf(r.why, sizeof r.why, "no stderr line with %s%s%s%s%s", c->words[1],
               c->alt ? " (or " : "", c->alt ? c->alt : "", c->alt ? ")" : "",
               c->addr ? " and the address" : "");
    else if (alloy_lines != 1)
      snprintf(r.why, sizeof r.why, "%d lines with \"alloy:\", want exactly 1", alloy_lines);
    else if (c->expect == ABORT && !aborted)
      snprintf(r.why, sizeof r.why, "reported, but %s instead of SIGABRT", r.signal);
    else if (c->expect == REPORT && !exited0)
      snprintf(r.why, sizeof r.why, "reported, but then %s (want exit 0: the process goes on)",
               r.signal);
    else
      r.ok = true;
    break;
  case CLEAN:
    r.detected = alloy_lines ? "REPORTED" : "-";
    if (alloy_lines)
      snprintf(r.why, sizeof r.why, "a correct program got %d \"alloy:\" line(s)", alloy_lines);
    else if (!exited0)
      snprintf(r.why, sizeof r.why, "%s, want exit 0", r.signal);
    else
      r.ok = true;
    break;
  }
  if (!r.ok || verbose) {
    printf("--- %s (ALLOY_CONF=%s): address %s%#lx, %s; child stderr:\n%s---\n", c->name,
           c->conf ? c->conf : "unset", have_addr ? "" : "(none) ", (unsigned long)addr,
           r.signal, err);
  }
  if (!r.ok)
    printf("FAILED %s: %s\n", c->name, r.why);
  return r;
}

int main(int argc, char **argv)
{
  if (argc >= 5 && strcmp(argv[1], "--case") == 0 && strcmp(argv[3], "--fd") == 0) {
    addr_fd = atoi(argv[4]);
#ifdef USE_LIBC_NAMES
    require_alloy();
    if (!free_sized || !free_aligned_sized)
      DIE("free_sized / free_aligned_sized are not provided by the preloaded allocator");
#endif
    child_run(argv[2]);
    DIE("unknown case %s", argv[2]);
  }

  const char *cxx = NULL;
  int first = 1;
  for (; first < argc && argv[first][0] == '-'; first++) {
    if (!strcmp(argv[first], "-v"))
      verbose = 1;
    else if (!strcmp(argv[first], "--cxx") && first + 1 < argc)
      cxx = argv[++first];
    else {
      fprintf(stderr, "usage: %s [-v] [--cxx PROGRAM] [CASE...]\n", argv[0]);
      return 2;
    }
  }
#ifdef USE_LIBC_NAMES
  require_alloy();
#endif
  printf("misuse: %s\n", MODE_NAME);
  struct result res[NCASES];
  bool ran[NCASES] = {false};
  int failures = 0, count = 0;
  for (size_t i = 0; i < NCASES; i++) {
    const struct mcase *c = &cases[i];
    if (first < argc) {
      bool named = false;
      for (int a = first; a < argc; a++)
        named |= strcmp(argv[a], c->name) == 0;
      if (!named)
        continue;
    } else if (c->cxx != (cxx != NULL)) {
      continue; /* by default: the C cases, or with --cxx the C++ ones */
    }
    if (c->cxx && !cxx) {
      printf("%s needs --cxx PROGRAM\n", c->name);
      failures++;
      continue;
    }
    res[i] = run_case(c, argv[0], cxx);
    ran[i] = true;
    count++;
    failures += !res[i].ok;
  }
  printf("\n%-32s | %-14s | %s\n", "case", "detected", "signal");
  printf("---------------------------------+----------------+---------\n");
  for (size_t i = 0; i < NCASES; i++)
    if (ran[i])
      printf("%-32s | %-14s | %s%s\n", cases[i].name, res[i].detected, res[i].signal,
             res[i].ok ? "" : "   <- FAILED");
  printf("\nmisuse (%s): %d cases, %d failed\n", MODE_NAME, count, failures);
  return failures ? 1 : 0;
}
