/*
 * stress.c - multi-threaded allocator stress with content verification.
 *
 * T threads (default 8) run R rounds (default 12); every round the threads are
 * created anew and joined, so heaps of exited threads get abandoned and their
 * blocks freed by others.  Objects pass between threads through a shared array
 * of slots (atomic exchange), so most frees are cross-thread.  Sizes are
 * mostly small (<= 1 KiB), some up to 64 KiB and a few up to 4 MiB; malloc,
 * calloc, aligned_alloc, posix_memalign, memalign and realloc are mixed, and
 * frees use free, free_sized and free_aligned_sized.
 *
 * Every block is filled on allocation with a pattern derived from its
 * address, size and the run's seed, and checked before it is freed or
 * reallocated (realloc must keep the old pattern in the common prefix).  A
 * block of 16 bytes or more starts with a 16-byte header that encodes its size
 * and alignment (xor-ed with a hash of the address, so a damaged header is
 * caught too); smaller blocks carry their size in the low 4 bits of the slot
 * value.  Any mismatch is reported (address, size, offset, expected/actual)
 * and the program exits non-zero.
 *
 * Built two ways from this one source:
 *   default          - the prefixed API (alloy_malloc, ...), linked with
 *                      liballoy_core.a (or the sanitizer builds of it);
 *   -DUSE_LIBC_NAMES - plain malloc/free/..., run under
 *                      LD_PRELOAD=build/liballoy.so; with STRESS_REQUIRE_ALLOY=1
 *                      in the environment it fails unless alloy really serves
 *                      malloc in this process.
 *
 * Usage: stress [-t threads] [-r rounds] [-n ops-per-thread-per-round]
 *               [-s seed] [-S slots] [-M max-peak-rss-MiB]
 * -M fails the run when the process's peak RSS (getrusage) exceeds the
 * bound: tests/run.sh runs the preloaded build under each option of the
 * option matrix with one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../api_names.h"
#include "../testutil.h" /* mix64 */

#define MAX_SIZE ((size_t)4 << 20)
#define MAX_ALIGN ((size_t)1 << 16)
#define HDR 16

static unsigned nthreads = 8, nrounds = 12;
static unsigned long nops = 50000;
static uint64_t seed = 0x5eed;
static size_t nslots = 4096;
static _Atomic uintptr_t *slots;

static atomic_int failed;
static atomic_ulong n_allocs, n_frees, n_reallocs, n_cross_checked;

/* ---- pattern ------------------------------------------------------------ */

static inline uint64_t key_of(uintptr_t addr, size_t size)
{
  return mix64(addr ^ ((uint64_t)size << 20) ^ seed);
}

/* Byte i (counted from the block start) of the pattern with key k. */
static inline unsigned char pat_byte(uint64_t k, size_t i)
{
  uint64_t w = k ^ ((uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL);
  return (unsigned char)(w >> ((i & 7) * 8));
}

static void pat_fill(unsigned char *p, size_t from, size_t to, uint64_t k)
{
  size_t i = from;
  for (; i < to && (i & 7); i++)
    p[i] = pat_byte(k, i);
  for (; i + 8 <= to; i += 8) {
    uint64_t w = k ^ ((uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL);
    memcpy(p + i, &w, 8);
  }
  for (; i < to; i++)
    p[i] = pat_byte(k, i);
}

/* Offset of the first byte in [from, to) not matching, or SIZE_MAX. */
static size_t pat_check(const unsigned char *p, size_t from, size_t to, uint64_t k)
{
  size_t i = from;
  for (; i < to && (i & 7); i++)
    if (p[i] != pat_byte(k, i))
      return i;
  for (; i + 8 <= to; i += 8) {
    uint64_t w = k ^ ((uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL), got;
    memcpy(&got, p + i, 8);
    if (got != w) {
      for (size_t j = i; j < i + 8; j++)
        if (p[j] != pat_byte(k, j))
          return j;
    }
  }
  for (; i < to; i++)
    if (p[i] != pat_byte(k, i))
      return i;
  return SIZE_MAX;
}

/* ---- blocks ------------------------------------------------------------- */

struct blk {
  unsigned char *p;
  size_t size;  /* requested size */
  size_t align; /* 0: plain malloc/calloc/realloc */
};

static inline uint64_t hdr_mask(uintptr_t addr, int word)
{
  return mix64(addr * 2 + (uint64_t)word + 0x1234567ULL);
}

/* Reports a problem with block b; off is the first bad byte (SIZE_MAX: none)
 * of the pattern with key k. */
static void fail_key(const char *what, const struct blk *b, size_t off, uint64_t k,
                     const char *extra)
{
  int n = atomic_fetch_add(&failed, 1);
  if (n < 20) {
    if (off != SIZE_MAX)
      fprintf(stderr,
              "stress: %s: block %p size %zu align %zu: byte %zu is 0x%02x, expected 0x%02x%s\n",
              what, (void *)b->p, b->size, b->align, off, b->p[off], pat_byte(k, off), extra);
    else
      fprintf(stderr, "stress: %s: block %p size %zu align %zu%s\n", what, (void *)b->p,
              b->size, b->align, extra);
  }
}

static void fail(const char *what, const struct blk *b, size_t off, const char *extra)
{
  fail_key(what, b, off, b->p ? key_of((uintptr_t)b->p, b->size) : 0, extra);
}

/* Writes header and pattern for a block whose size/align are set. */
static void blk_fill(const struct blk *b)
{
  uintptr_t a = (uintptr_t)b->p;
  uint64_t k = key_of(a, b->size);
  if (b->size >= HDR) {
    uint64_t h0 = (uint64_t)b->size ^ hdr_mask(a, 0);
    uint64_t h1 = (uint64_t)b->align ^ hdr_mask(a, 1);
    memcpy(b->p, &h0, 8);
    memcpy(b->p + 8, &h1, 8);
    pat_fill(b->p, HDR, b->size, k);
  } else {
    pat_fill(b->p, 0, b->size, k);
  }
}

/* Decodes a slot value into a block; checks the header and the alignment. */
static bool blk_decode(uintptr_t v, struct blk *b)
{
  b->p = (unsigned char *)(v & ~(uintptr_t)15);
  b->size = v & 15;
  b->align = 0;
  if (b->size)
    return true;
  uint64_t h0, h1;
  memcpy(&h0, b->p, 8);
  memcpy(&h1, b->p + 8, 8);
  b->size = (size_t)(h0 ^ hdr_mask((uintptr_t)b->p, 0));
  b->align = (size_t)(h1 ^ hdr_mask((uintptr_t)b->p, 1));
  if (b->size < HDR || b->size > MAX_SIZE || (b->align & (b->align - 1)) ||
      b->align > MAX_ALIGN) {
    struct blk raw = {b->p, 0, 0};
    char msg[96];
    snprintf(msg, sizeof msg, " (header damaged: %#" PRIx64 " %#" PRIx64 ")", h0, h1);
    fail("corrupt header", &raw, SIZE_MAX, msg);
    return false;
  }
  return true;
}

static uintptr_t blk_encode(const struct blk *b)
{
  return (uintptr_t)b->p | (b->size < HDR ? b->size : 0);
}

static bool blk_verify(const struct blk *b, const char *when)
{
  size_t off = pat_check(b->p, b->size >= HDR ? HDR : 0, b->size,
                         key_of((uintptr_t)b->p, b->size));
  if (off != SIZE_MAX) {
    fail(when, b, off, "");
    return false;
  }
  return true;
}

/* ---- per-thread random numbers ------------------------------------------ */

struct rng {
  uint64_t s;
};
static inline uint64_t rnd(struct rng *r)
{
  r->s += 0x9E3779B97F4A7C15ULL;
  return mix64(r->s);
}

static size_t rnd_size(struct rng *r)
{
  uint64_t x = rnd(r);
  unsigned cls = (unsigned)(x % 1000);
  x >>= 10;
  if (cls < 2) /* 0.2%: large and huge, up to 4 MiB */
    return 65536 + (size_t)(x % (MAX_SIZE - 65536 + 1));
  if (cls < 70) /* ~7%: up to 64 KiB */
    return 1025 + (size_t)(x % (65536 - 1025 + 1));
  if (cls < 400) /* a third: tiny */
    return 1 + (size_t)(x % 64);
  return 1 + (size_t)(x % 1024);
}

/* ---- operations ----------------------------------------------------------- */

static bool blk_alloc(struct rng *r, struct blk *b)
{
  size_t size = rnd_size(r);
  unsigned kind = (unsigned)(rnd(r) % 16);
  b->size = size;
  b->align = 0;
  if (size < HDR) /* small blocks: malloc or calloc only (their size rides in the slot) */
    kind = kind % 4 == 0 ? 10 : 0;
  void *p = NULL;
  if (kind <= 9) {
    p = A_MALLOC(size);
  } else if (kind <= 11) {
    p = A_CALLOC(1, size);
  } else {
    size_t align = (size_t)16 << (rnd(r) % 9); /* 16 .. 4096 */
    if (rnd(r) % 32 == 0)
      align = MAX_ALIGN;
    b->align = align;
    if (kind == 12 || kind == 13) {
      p = A_ALIGNED_ALLOC(align, size);
    } else if (kind == 14) {
      if (A_POSIX_MEMALIGN(&p, align, size) != 0)
        p = NULL;
    } else {
      p = A_MEMALIGN(align, size);
    }
  }
  if (!p) {
    struct blk raw = {NULL, size, b->align};
    fail("allocation returned NULL", &raw, SIZE_MAX, "");
    return false;
  }
  b->p = p;
  atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
  size_t need = b->align > 16 ? b->align : 16;
  if ((uintptr_t)p % need) {
    fail("misaligned result", b, SIZE_MAX, "");
    return false;
  }
  size_t usable = A_USABLE(p);
  if (usable < size) {
    char msg[64];
    snprintf(msg, sizeof msg, " (usable size %zu)", usable);
    fail("usable size too small", b, SIZE_MAX, msg);
    return false;
  }
  if (kind == 10 || kind == 11) {
    for (size_t i = 0; i < size; i++)
      if (b->p[i]) {
        fail("calloc memory not zero", b, SIZE_MAX, "");
        return false;
      }
  }
  blk_fill(b);
  /* The bytes beyond the requested size, up to the usable size, are ours too. */
  if (usable > size && rnd(r) % 4 == 0)
    b->p[usable - 1] = 0xa5;
  return true;
}

static void blk_free(struct rng *r, const struct blk *b)
{
  unsigned how = (unsigned)(rnd(r) % 4);
  if (how == 0 && !b->align) /* C23: free_sized is for malloc/calloc/realloc blocks */
    A_FREE_SIZED(b->p, b->size);
  else if (how == 1 && b->align)
    A_FREE_ALIGNED_SIZED(b->p, b->align, b->size);
  else
    A_FREE(b->p);
  atomic_fetch_add_explicit(&n_frees, 1, memory_order_relaxed);
}

/* Verifies and frees what a slot held (0: empty).  A damaged block is leaked
 * rather than handed back to the allocator. */
static void release(struct rng *r, uintptr_t v, const char *when)
{
  struct blk b;
  if (!v)
    return;
  if (!blk_decode(v, &b) || !blk_verify(&b, when))
    return;
  blk_free(r, &b);
}

/* realloc a verified block to a new size >= HDR; checks the common prefix. */
static bool blk_realloc(struct rng *r, struct blk *b)
{
  size_t nsize = rnd_size(r);
  if (nsize < HDR)
    nsize = HDR + nsize;
  uint64_t okey = key_of((uintptr_t)b->p, b->size);
  unsigned char *q = A_REALLOC(b->p, nsize);
  if (!q) {
    fail("realloc returned NULL", b, SIZE_MAX, "");
    return false;
  }
  atomic_fetch_add_explicit(&n_reallocs, 1, memory_order_relaxed);
  size_t keep = b->size < nsize ? b->size : nsize;
  size_t off = pat_check(q, HDR, keep, okey);
  struct blk nb = {q, nsize, 0};
  if (off != SIZE_MAX) {
    char msg[96];
    snprintf(msg, sizeof msg, " (realloc from %p size %zu to %zu lost data)", (void *)b->p,
             b->size, nsize);
    nb.size = b->size;
    fail_key("realloc", &nb, off, okey, msg); /* against the old pattern */
    return false;
  }
  if ((uintptr_t)q % 16 || A_USABLE(q) < nsize) {
    fail("realloc result misaligned or too small", &nb, SIZE_MAX, "");
    return false;
  }
  *b = nb;
  blk_fill(b);
  return true;
}

#define LOCAL 64

static void *worker(void *arg)
{
  struct rng r = {(uint64_t)(uintptr_t)arg * 0x100000001B3ULL + seed};
  struct blk local[LOCAL];
  memset(local, 0, sizeof local);
  for (unsigned long op = 0; op < nops && !atomic_load_explicit(&failed, memory_order_relaxed);
       op++) {
    unsigned what = (unsigned)(rnd(&r) % 100);
    size_t slot = (size_t)(rnd(&r) % nslots);
    struct blk b;
    if (what < 60) {
      /* Publish a new block, free whatever was there (usually another
       * thread's block: a cross-thread free). */
      if (!blk_alloc(&r, &b))
        break;
      uintptr_t old = atomic_exchange(&slots[slot], blk_encode(&b));
      if (old)
        atomic_fetch_add_explicit(&n_cross_checked, 1, memory_order_relaxed);
      release(&r, old, "cross-thread free");
    } else if (what < 72) {
      /* Take a block out, realloc it, put it back. */
      uintptr_t v = atomic_exchange(&slots[slot], 0);
      if (!v)
        continue;
      if (!blk_decode(v, &b) || !blk_verify(&b, "before realloc"))
        break;
      if (b.size < HDR) { /* small ones are just freed */
        blk_free(&r, &b);
        continue;
      }
      if (b.align) { /* realloc keeps only 16-byte alignment */
        b.align = 0;
        blk_fill(&b); /* header now says align 0 */
      }
      if (!blk_realloc(&r, &b))
        break;
      release(&r, atomic_exchange(&slots[slot], blk_encode(&b)), "cross-thread free");
    } else if (what < 86) {
      /* Same-thread, short-lived. */
      if (!blk_alloc(&r, &b))
        break;
      if (!blk_verify(&b, "local free"))
        break;
      blk_free(&r, &b);
    } else {
      /* A thread-private set of longer-lived blocks. */
      struct blk *l = &local[rnd(&r) % LOCAL];
      if (l->p) {
        if (!blk_verify(l, "private free"))
          break;
        blk_free(&r, l);
        l->p = NULL;
      }
      if (!blk_alloc(&r, l)) {
        l->p = NULL;
        break;
      }
    }
  }
  for (int i = 0; i < LOCAL; i++)
    if (local[i].p && blk_verify(&local[i], "private free at exit"))
      blk_free(&r, &local[i]);
#ifndef USE_LIBC_NAMES
  if (rnd(&r) % 2)
    alloy_collect();
#endif
  return NULL;
}

static void usage(const char *argv0)
{
  fprintf(stderr, "usage: %s [-t threads] [-r rounds] [-n ops] [-s seed] [-S slots] [-M MiB]\n", argv0);
  exit(2);
}

int main(int argc, char **argv)
{
  int c;
  unsigned long max_rss_mib = 0;
  while ((c = getopt(argc, argv, "t:r:n:s:S:M:")) != -1) {
    switch (c) {
    case 't': nthreads = (unsigned)strtoul(optarg, NULL, 0); break;
    case 'r': nrounds = (unsigned)strtoul(optarg, NULL, 0); break;
    case 'n': nops = strtoul(optarg, NULL, 0); break;
    case 's': seed = strtoull(optarg, NULL, 0); break;
    case 'S': nslots = strtoul(optarg, NULL, 0); break;
    case 'M': max_rss_mib = strtoul(optarg, NULL, 0); break;
    default: usage(argv[0]);
    }
  }
  if (optind != argc || nthreads < 1 || nrounds < 1 || nslots < 1 || nthreads > 1024)
    usage(argv[0]);

#ifdef USE_LIBC_NAMES
  const char *req = getenv("STRESS_REQUIRE_ALLOY");
  if (req && *req == '1') {
    /* malloc must resolve into the preloaded liballoy.so. */
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (!dlsym(RTLD_DEFAULT, "alloy_malloc") || !m || !dladdr(m, &info) ||
        !info.dli_fname || !strstr(info.dli_fname, "liballoy")) {
      fprintf(stderr, "stress: malloc is not alloy's here (is liballoy.so preloaded?)\n");
      return 1;
    }
  }
#endif

  printf("stress (%s): %u threads, %u rounds, %lu ops/thread/round, %zu slots, seed %#" PRIx64
         "\n",
         MODE_NAME, nthreads, nrounds, nops, nslots, seed);
  fflush(stdout);
  slots = calloc(nslots, sizeof *slots);
  pthread_t *tids = calloc(nthreads, sizeof *tids);
  if (!slots || !tids) {
    fprintf(stderr, "stress: out of memory\n");
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned round = 0; round < nrounds && !atomic_load(&failed); round++) {
    for (unsigned t = 0; t < nthreads; t++) {
      int rc = pthread_create(&tids[t], NULL, worker,
                              (void *)(uintptr_t)(round * 1000u + t + 1));
      if (rc) {
        fprintf(stderr, "stress: pthread_create: %s\n", strerror(rc));
        return 1;
      }
    }
    for (unsigned t = 0; t < nthreads; t++)
      pthread_join(tids[t], NULL);
    /* Between rounds, main frees part of what the dead threads left. */
    struct rng r = {seed + round};
    for (size_t i = round % 3; i < nslots; i += 3)
      release(&r, atomic_exchange(&slots[i], 0), "free by main between rounds");
  }
  struct rng r = {seed ^ 0xfeed};
  for (size_t i = 0; i < nslots; i++)
    release(&r, atomic_exchange(&slots[i], 0), "final free by main");
  clock_gettime(CLOCK_MONOTONIC, &t1);

  unsigned long allocs = atomic_load(&n_allocs), frees = atomic_load(&n_frees);
  printf("allocs %lu, frees %lu, reallocs %lu, cross-thread frees %lu, %.1f s\n", allocs, frees,
         atomic_load(&n_reallocs), atomic_load(&n_cross_checked),
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("peak RSS %ld MiB\n", ru.ru_maxrss / 1024);
  if (max_rss_mib && (unsigned long)ru.ru_maxrss / 1024 > max_rss_mib) {
    fprintf(stderr, "stress: peak RSS %ld MiB above the bound of %lu MiB\n", ru.ru_maxrss / 1024, max_rss_mib);
    atomic_fetch_add(&failed, 1);
  }
  if (!atomic_load(&failed) && allocs != frees) {
    fprintf(stderr, "stress: %lu allocations but %lu frees\n", allocs, frees);
    atomic_fetch_add(&failed, 1);
  }
#ifndef USE_LIBC_NAMES
  if (!atomic_load(&failed)) {
    /* All worker threads have exited (their counters are folded) and this
     * thread's are folded by the call: every allocation and free is counted. */
    alloy_stats_t s;
    alloy_stats_get(&s);
    printf("alloy stats: nmalloc %" PRIu64 " allocated %" PRIu64 " peak %" PRIu64
           " mapped %" PRIu64 " segments %" PRIu64 " abandoned %" PRIu64 "\n",
           s.nmalloc, s.allocated, s.peak_allocated, s.mapped, s.segments, s.abandoned);
    if (s.nmalloc < allocs) {
      fprintf(stderr, "stress: stats count %" PRIu64 " mallocs, fewer than the %lu done\n",
              s.nmalloc, allocs);
      atomic_fetch_add(&failed, 1);
    }
    if (s.allocated != 0) {
      /* Only this test allocates through alloy_* and everything is freed. */
      fprintf(stderr, "stress: stats say %" PRIu64 " bytes still allocated, want 0\n",
              s.allocated);
      atomic_fetch_add(&failed, 1);
    }
    if (s.peak_allocated < s.allocated || s.peak_mapped < s.mapped) {
      fprintf(stderr, "stress: peak below current in stats\n");
      atomic_fetch_add(&failed, 1);
    }
  }
#endif
  free(slots);
  free(tids);
  if (atomic_load(&failed)) {
    fprintf(stderr, "stress: FAILED (%d problems)\n", atomic_load(&failed));
    return 1;
  }
  printf("stress: OK\n");
  return 0;
}
