/*
 * prof_table.c - the heap profiler's memory: the live samples (found by
 * block address when a block is freed), buckets (one per call stack and
 * usable size: a line of the profile) and call stacks (interned: many
 * buckets and samples share one).
 *
 * Finding a freed sample without taxing free.  A class page holding live
 * samples carries XHEAP_SAMPLED in its owner word, so the free fast path's
 * owner compare fails for all its blocks: the owner's frees of them take
 * free_owned, which hands a tagged page's block here (prof_table_free).
 * Another thread's free only sets the block's remote bit, as any remote
 * free does (nothing added to that path): the sample goes when the owner
 * folds those bits in (page_collect_remote -> prof_table_collected), always
 * before the block can be handed out again.  Until then the sample is in
 * the table while its block is free: every reader of samples (profiles,
 * stats.prof.samples, the leak summary) asks the block's bitmaps and skips
 * it (sample_live).  Large and big blocks are freed by any thread through
 * free_block, which asks page->prof_samples (one block, one flag).  The
 * table counts each page's samples in page->prof_samples and sets and
 * clears the tag with the first and last.
 *
 * Bounded: everything lives in one mapping reserved when the first sample
 * is taken (about 30 MiB of address space, touched only as it fills),
 * with fixed caps; a sample that does not fit is dropped and
 * counted (stats.prof.dropped, and the profile's comment line).  Without
 * prof_accum, buckets and stacks with no live sample are given back, so a
 * long-running program does not fill the tables with dead call stacks.
 *
 * One lock (table_lock) guards all of it; it is taken only to insert a
 * sample (once per 512 KiB allocated by default), to remove one, and by
 * the readers.  A free of a block in a tagged page first reads the head of
 * the block's hash chain without the lock: an empty chain (the common case,
 * most blocks in a tagged page are not samples) costs one load.  That read
 * is enough: the sample of block p was inserted before malloc returned p,
 * which happens before any free(p) (and before the remote bit that the
 * owner's fold acquires), and only the free of p (or a reset) removes it.
 * A page holding a sample is never released (its block is live, or freed
 * and not folded in: counted in page->used either way), so a reader under
 * the lock may follow a sample to its page.  The lock is a leaf, taken
 * under an arena's lock and a heap's pages_lock: while it is held nothing
 * is called that takes a lock or allocates (page look-ups through the page
 * map only); init.c takes it last at fork.  Never allocates.
 */
#include "prof.h"

#include <string.h>

#define SAMPLES_MAX (1u << 19) /* 8 MiB: 256 GiB of live memory at the default rate */
#define SAMPLE_HASH (1u << PROF_SAMPLE_HASH_BITS)
#define BUCKETS_MAX (1u << 16)
#define BUCKET_HASH (1u << 15)
#define STACKS_MAX (1u << 16)
#define STACK_HASH (1u << 15)
#define FRAMES_MAX (1u << 21) /* 16 MiB of return addresses */
#define FRAME_CLASSES 6       /* stacks are stored in slots of 4, 8, ... 128 frames */

/* Indices are 1-based: 0 means none. */
typedef struct {
  uintptr_t addr;
  uint32_t bucket, next;
} sample_t;

typedef struct {
  uint64_t size, live, accum; /* live counts samples until their free is folded in */
  uint64_t shown;             /* live samples whose blocks are still allocated (live_scan) */
  uint32_t stack, next;
} bucket_t;

typedef struct {
  uint64_t hash;
  uint32_t frames; /* offset in frames[]; a free slot holds the next free offset */
  uint32_t next;
  uint32_t refs;   /* buckets using it */
  uint16_t depth;
  uint8_t cls;
} stack_t_;

typedef struct {
  uint32_t free, top; /* free list, and first never used */
} pool_t;

static os_lock_t table_lock = OS_LOCK_INIT;
static _Atomic(int) mapped; /* 0, 1 mapping, 2 ready, 3 failed */
_Atomic(uint32_t) *alloy__prof_sample_heads; /* internal.h: read by the free path */
#define sample_heads alloy__prof_sample_heads
static uint32_t *bucket_heads, *stack_heads;
static sample_t *samples;
static bucket_t *buckets;
static stack_t_ *stacks;
static uintptr_t *frames;
static pool_t sample_pool, bucket_pool, stack_pool;
static uint32_t frame_free[FRAME_CLASSES], frame_top;
static uint64_t nbuckets, nstacks;
static _Atomic(uint64_t) dropped, no_stack;

/* ------------------------------------------------------------ the mapping */

#define HEADS_BYTES ((SAMPLE_HASH + BUCKET_HASH + STACK_HASH) * sizeof(uint32_t))

static size_t region_bytes(void) {
  return HEADS_BYTES + (size_t)SAMPLES_MAX * sizeof(sample_t) + (size_t)BUCKETS_MAX * sizeof(bucket_t) +
         (size_t)STACKS_MAX * sizeof(stack_t_) + (size_t)FRAMES_MAX * sizeof(uintptr_t);
}

/* Maps the tables at the first sample; false when they cannot be had. */
static bool tables_ready(void) {
  int state = atomic_load_explicit(&mapped, memory_order_acquire);
  if (likely(state == 2)) return true;
  if (state == 3) return false;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&mapped, &expected, 1)) {
    while ((state = atomic_load_explicit(&mapped, memory_order_acquire)) == 1) os_yield();
    return state == 2;
  }
  size_t got;
  uint8_t *p = os_map_aligned(region_bytes(), os_page_size(), &got);
  if (p == NULL) {
    atomic_store(&mapped, 3);
    return false;
  }
  bucket_heads = (uint32_t *)(p + SAMPLE_HASH * sizeof(uint32_t));
  stack_heads = bucket_heads + BUCKET_HASH;
  samples = (sample_t *)(p + HEADS_BYTES);
  buckets = (bucket_t *)(samples + SAMPLES_MAX);
  stacks = (stack_t_ *)(buckets + BUCKETS_MAX);
  frames = (uintptr_t *)(stacks + STACKS_MAX);
  sample_pool.top = bucket_pool.top = stack_pool.top = frame_top = 1;
  __atomic_store_n(&sample_heads, (_Atomic(uint32_t) *)p, __ATOMIC_RELEASE);
  atomic_store_explicit(&mapped, 2, memory_order_release);
  return true;
}

/* ------------------------------------------------------------- pools */

static uint32_t pool_take(pool_t *pool, uint32_t max, uint32_t *next_of_free) {
  uint32_t i = pool->free;
  if (i) {
    pool->free = *next_of_free;
    return i;
  }
  return pool->top < max ? pool->top++ : 0;
}

static unsigned frame_class(unsigned depth) {
  unsigned cls = 0;
  while ((4u << cls) < depth) cls++;
  return cls;
}

/* A slot of 4 << cls frames, or 0 when full. */
static uint32_t frames_take(unsigned cls) {
  uint32_t off = frame_free[cls];
  if (off) {
    frame_free[cls] = (uint32_t)frames[off];
    return off;
  }
  uint32_t size = 4u << cls;
  if (frame_top + size > FRAMES_MAX) return 0;
  off = frame_top;
  frame_top += size;
  return off;
}

static void frames_give(unsigned cls, uint32_t off) {
  frames[off] = frame_free[cls];
  frame_free[cls] = off;
}

/* ------------------------------------------------------------- stacks */

static uint64_t stack_hash(const uintptr_t *f, unsigned depth) {
  uint64_t h = 0xcbf29ce484222325ull ^ depth;
  for (unsigned i = 0; i < depth; i++) {
    h ^= f[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

/* The stack's index (its refs not yet counted), made if new; 0 when full. */
static uint32_t stack_intern(const uintptr_t *f, unsigned depth) {
  uint64_t h = stack_hash(f, depth);
  uint32_t *head = &stack_heads[h & (STACK_HASH - 1)];
  for (uint32_t i = *head; i; i = stacks[i].next)
    if (stacks[i].hash == h && stacks[i].depth == depth &&
        memcmp(&frames[stacks[i].frames], f, depth * sizeof *f) == 0)
      return i;
  unsigned cls = frame_class(depth);
  uint32_t i = pool_take(&stack_pool, STACKS_MAX, &stacks[stack_pool.free].next);
  if (i == 0) return 0;
  uint32_t off = frames_take(cls);
  if (off == 0) {
    stacks[i].next = stack_pool.free;
    stack_pool.free = i;
    return 0;
  }
  memcpy(&frames[off], f, depth * sizeof *f);
  stacks[i] = (stack_t_){.hash = h, .frames = off, .next = *head, .refs = 0, .depth = (uint16_t)depth, .cls = (uint8_t)cls};
  *head = i;
  nstacks++;
  return i;
}

static void stack_release(uint32_t i) {
  if (--stacks[i].refs != 0) return;
  uint32_t *link = &stack_heads[stacks[i].hash & (STACK_HASH - 1)];
  while (*link != i) link = &stacks[*link].next;
  *link = stacks[i].next;
  frames_give(stacks[i].cls, stacks[i].frames);
  stacks[i].next = stack_pool.free;
  stack_pool.free = i;
  nstacks--;
}

/* ------------------------------------------------------------ buckets */

static uint32_t bucket_slot(uint32_t stack, uint64_t size) {
  return (uint32_t)(((stack * 0x9E3779B97F4A7C15ull) ^ (size * 0xbf58476d1ce4e5b9ull)) >> 49) &
         (BUCKET_HASH - 1);
}

static uint32_t bucket_get(uint32_t stack, uint64_t size) {
  uint32_t *head = &bucket_heads[bucket_slot(stack, size)];
  for (uint32_t i = *head; i; i = buckets[i].next)
    if (buckets[i].stack == stack && buckets[i].size == size) return i;
  uint32_t i = pool_take(&bucket_pool, BUCKETS_MAX, &buckets[bucket_pool.free].next);
  if (i == 0) return 0;
  buckets[i] = (bucket_t){.size = size, .stack = stack, .next = *head};
  *head = i;
  stacks[stack].refs++;
  nbuckets++;
  return i;
}

/* Gives a bucket back once it says nothing: no live sample, and no
 * cumulative count to keep. */
static void bucket_release_if_idle(uint32_t i, bool accum) {
  if (buckets[i].live != 0 || (accum && buckets[i].accum != 0)) return;
  uint32_t *link = &bucket_heads[bucket_slot(buckets[i].stack, buckets[i].size)];
  while (*link != i) link = &buckets[*link].next;
  *link = buckets[i].next;
  stack_release(buckets[i].stack);
  buckets[i].next = bucket_pool.free;
  bucket_pool.free = i;
  nbuckets--;
}

/* ------------------------------------------------------------ samples */

static uint32_t sample_slot(uintptr_t addr) { return prof_sample_slot((const void *)addr); }

static void sample_unlink(_Atomic(uint32_t) *link_head, uint32_t prev, uint32_t i, bool accum) {
  if (prev) samples[prev].next = samples[i].next;
  else atomic_store_explicit(link_head, samples[i].next, memory_order_relaxed);
  uint32_t b = samples[i].bucket;
  buckets[b].live--;
  bucket_release_if_idle(b, accum);
  samples[i].next = sample_pool.free;
  sample_pool.free = i;
}

/* The page's count of live samples; a class page's tag goes with the
 * last one.  Any thread may change the tag: the owner's writes of xheap
 * keep it (heap.c page_set_owner, heap_page_to_full).  Large and big
 * blocks have no owner to tell: their count is their flag (free_block). */
static void page_count(page_t *page, int delta) {
  bool tagged = page->kind <= PAGE_MEDIUM;
  if (delta > 0 && page->prof_samples++ == 0) {
    if (tagged) atomic_fetch_or_explicit(&page->xheap, XHEAP_SAMPLED, memory_order_relaxed);
  } else if (delta < 0 && page->prof_samples > 0 && --page->prof_samples == 0) {
    if (tagged) atomic_fetch_and_explicit(&page->xheap, ~XHEAP_SAMPLED, memory_order_relaxed);
  }
}

/* Is the sampled block at addr still allocated?  A class block another
 * thread freed keeps its sample until the owner folds the free in; its
 * remote bit (or its free bit, once folded) says it is gone.  Lock held:
 * the page stays (see the top). */
static bool sample_live(uintptr_t addr) {
  page_t *page = segment_page_lookup((void *)addr);
  if (page == NULL) return false;
  if (page->kind >= PAGE_LARGE) return true;
  size_t index = (size_t)(((uint64_t)(addr - (uintptr_t)page->start) * page->block_magic) >> MAGIC_BITS);
  uint64_t bit = (uint64_t)1 << (index % 64);
  return ((__atomic_load_n(&page_bits(page)->word[index / 64].free, __ATOMIC_RELAXED) |
           atomic_load_explicit(&page_bits(page)->word[index / 64].remote, memory_order_relaxed)) & bit) == 0;
}

/* Counts in each bucket's `shown` the samples whose blocks are still
 * allocated; returns them all.  Lock held. */
static uint64_t live_scan(void) {
  for (uint32_t b = 1; b < bucket_pool.top; b++) buckets[b].shown = 0;
  uint64_t n = 0;
  for (uint32_t h = 0; h < SAMPLE_HASH; h++)
    for (uint32_t i = atomic_load_explicit(&sample_heads[h], memory_order_relaxed); i; i = samples[i].next)
      if (sample_live(samples[i].addr)) {
        buckets[samples[i].bucket].shown++;
        n++;
      }
  return n;
}

/* Removes addr's sample; true if there was one.  Lock held. */
static bool sample_remove_locked(uintptr_t addr, page_t *page, bool accum) {
  _Atomic(uint32_t) *head = &sample_heads[sample_slot(addr)];
  uint32_t prev = 0;
  for (uint32_t i = atomic_load_explicit(head, memory_order_relaxed); i; prev = i, i = samples[i].next)
    if (samples[i].addr == addr) {
      sample_unlink(head, prev, i, accum);
      if (page) page_count(page, -1);
      return true;
    }
  return false;
}

bool prof_table_insert(uintptr_t addr, page_t *page, const uintptr_t *f, unsigned depth) {
  bool accum = alloy__options.prof_accum;
  uint64_t size = page->block_size;
  if (!tables_ready()) {
    atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
    return false;
  }
  if (depth > PROF_DEPTH_MAX) depth = PROF_DEPTH_MAX;
  os_lock(&table_lock);
  /* A sample at this address can only be stale (its block was discarded
   * without a free: an arena reset raced with it). */
  sample_remove_locked(addr, page, accum);
  uint32_t s = 0, b = 0, st = stack_intern(f, depth);
  if (st) b = bucket_get(st, size);
  if (b) s = pool_take(&sample_pool, SAMPLES_MAX, &samples[sample_pool.free].next);
  if (s == 0) {
    if (b) {
      bucket_release_if_idle(b, accum); /* and its stack, if new */
    } else if (st && stacks[st].refs == 0) {
      stacks[st].refs = 1; /* a stack made just now for nothing */
      stack_release(st);
    }
    os_unlock(&table_lock);
    atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
    return false;
  }
  _Atomic(uint32_t) *head = &sample_heads[sample_slot(addr)];
  samples[s] = (sample_t){.addr = addr, .bucket = b, .next = atomic_load_explicit(head, memory_order_relaxed)};
  atomic_store_explicit(head, s, memory_order_relaxed);
  buckets[b].live++;
  buckets[b].accum++;
  page_count(page, +1);
  os_unlock(&table_lock);
  return true;
}

void prof_table_free(page_t *page, const void *p) {
  if (atomic_load_explicit(&mapped, memory_order_acquire) != 2) return;
  os_lock(&table_lock);
  sample_remove_locked((uintptr_t)p, page, alloy__options.prof_accum);
  os_unlock(&table_lock);
}

void prof_table_collected(page_t *page, unsigned word, uint64_t bits) {
  uint8_t *base = page->start + (size_t)word * 64 * page->block_size;
  while (bits) {
    unsigned b = (unsigned)__builtin_ctzll(bits);
    bits &= bits - 1;
    uint8_t *p = base + (size_t)b * page->block_size;
    if (prof_table_may_hold(p)) prof_table_free(page, p);
  }
}

/* A sampled block was resized in place, or moved with its pages (a big
 * block's realloc): it moves to its stack's bucket of the new size (it
 * stays in its old bucket when that one cannot be made), and to its new
 * address.  page is the block's page now. */
void prof_table_resize(uintptr_t from, uintptr_t to, page_t *page) {
  if (atomic_load_explicit(&mapped, memory_order_acquire) != 2) return;
  bool accum = alloy__options.prof_accum;
  os_lock(&table_lock);
  _Atomic(uint32_t) *head = &sample_heads[sample_slot(from)];
  for (uint32_t i = atomic_load_explicit(head, memory_order_relaxed), prev = 0; i; prev = i, i = samples[i].next) {
    if (samples[i].addr != from) continue;
    uint32_t old = samples[i].bucket, b = bucket_get(buckets[old].stack, page->block_size);
    if (b && b != old) {
      samples[i].bucket = b;
      buckets[b].live++;
      buckets[b].accum++;
      buckets[old].live--;
      bucket_release_if_idle(old, accum);
    }
    if (to != from) { /* re-chained under its new address */
      if (prev) samples[prev].next = samples[i].next;
      else atomic_store_explicit(head, samples[i].next, memory_order_relaxed);
      _Atomic(uint32_t) *to_head = &sample_heads[sample_slot(to)];
      samples[i].addr = to;
      samples[i].next = atomic_load_explicit(to_head, memory_order_relaxed);
      atomic_store_explicit(to_head, i, memory_order_relaxed);
    }
    break;
  }
  os_unlock(&table_lock);
}

/* The pages of live samples give their count (and tag) back.  Lock held. */
static void uncount_all(void) {
  for (uint32_t h = 0; h < SAMPLE_HASH; h++)
    for (uint32_t i = atomic_load_explicit(&sample_heads[h], memory_order_relaxed); i; i = samples[i].next) {
      page_t *page = segment_page_lookup((void *)samples[i].addr);
      if (page) page_count(page, -1);
    }
}

/* prof.reset: everything goes, the dropped count stays (it says how much
 * the tables ever lost). */
void prof_table_reset(void) {
  if (atomic_load_explicit(&mapped, memory_order_acquire) != 2) return;
  os_lock(&table_lock);
  uncount_all();
  for (uint32_t h = 0; h < SAMPLE_HASH; h++) atomic_store_explicit(&sample_heads[h], 0, memory_order_relaxed);
  memset(bucket_heads, 0, (BUCKET_HASH + STACK_HASH) * sizeof(uint32_t));
  sample_pool = bucket_pool = stack_pool = (pool_t){0, 1};
  memset(frame_free, 0, sizeof frame_free);
  frame_top = 1;
  nbuckets = nstacks = 0;
  atomic_store(&no_stack, 0);
  os_unlock(&table_lock);
}

/* Drops the samples of blocks that `gone` says no longer exist. */
void prof_table_forget(bool (*gone)(uintptr_t addr, const void *arg), const void *arg) {
  if (atomic_load_explicit(&mapped, memory_order_acquire) != 2) return;
  os_lock(&table_lock);
  for (uint32_t h = 0; h < SAMPLE_HASH; h++) {
    uint32_t prev = 0;
    for (uint32_t i = atomic_load_explicit(&sample_heads[h], memory_order_relaxed), next; i; i = next) {
      next = samples[i].next;
      if (gone(samples[i].addr, arg)) {
        page_t *page = segment_page_lookup((void *)samples[i].addr);
        if (page) page_count(page, -1);
        sample_unlink(&sample_heads[h], prev, i, alloy__options.prof_accum);
      } else {
        prev = i;
      }
    }
  }
  os_unlock(&table_lock);
}

void prof_table_count_no_stack(void) { atomic_fetch_add_explicit(&no_stack, 1, memory_order_relaxed); }

void prof_table_visit(bool accum, void (*fn)(const prof_bucket_t *b, void *arg), void *arg) {
  if (atomic_load_explicit(&mapped, memory_order_acquire) != 2) return;
  os_lock(&table_lock);
  live_scan();
  for (uint32_t h = 0; h < BUCKET_HASH; h++)
    for (uint32_t i = bucket_heads[h]; i; i = buckets[i].next) {
      const bucket_t *b = &buckets[i];
      if (b->shown == 0 && !(accum && b->accum != 0)) continue;
      const stack_t_ *st = &stacks[b->stack];
      prof_bucket_t view = {b->size, b->shown, b->accum, &frames[st->frames], st->depth};
      fn(&view, arg);
    }
  os_unlock(&table_lock);
}

void prof_table_stats(prof_table_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->dropped = atomic_load(&dropped);
  out->no_stack = atomic_load(&no_stack);
  if (atomic_load_explicit(&mapped, memory_order_acquire) != 2) return;
  os_lock(&table_lock);
  out->samples = live_scan();
  out->buckets = nbuckets;
  out->stacks = nstacks;
  /* what has been touched: the hash heads and each pool up to its top */
  out->metadata = HEADS_BYTES + sample_pool.top * sizeof(sample_t) + bucket_pool.top * sizeof(bucket_t) +
                  stack_pool.top * sizeof(stack_t_) + (uint64_t)frame_top * sizeof(uintptr_t);
  os_unlock(&table_lock);
}

void prof_table_fork_prepare(void) { os_lock(&table_lock); }
void prof_table_fork_release(void) { os_unlock(&table_lock); }
