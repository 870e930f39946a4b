/*
 * huge_cache.c - a small cache of recently freed huge mappings, so a program
 * that frees and allocates blocks of several MiB in turn reuses pages that
 * are already faulted in instead of unmapping them and faulting fresh ones.
 * Neighbouring pieces are joined, and segment.c splits a piece bigger than a
 * request and moves (mremap) one too small to where it can grow, so no
 * faulted page is given up while it is cached.
 *
 * Sized by measurement on 5-25 MiB blocks (bench/workloads/big_blocks.c,
 * 800 steps): unmapping every time 8.2 s; 8 entries / 64 MiB with shrinking
 * 1.42 s; with split, move and join: 64 MiB 0.23 s, 128 MiB 0.06 s (25.7k
 * page faults, tcmalloc 0.19 s / 94k), 256 MiB no better.  Every entry
 * expires after dirty_decay_ms (never with -1), as dirty pages do, so an
 * idle program's RSS still drops.
 *
 * Holds its own lock; called only on the huge-block paths and from rare
 * events, never from the fast paths.
 */
#include "internal.h"

#define HUGE_CACHE_SLOTS 8
#define HUGE_CACHE_BYTES (128 * ALLOY_MiB)

typedef struct {
  segment_t *seg; /* NULL: slot empty */
  uint64_t freed_ms;
} cache_entry_t;

static os_lock_t cache_lock = OS_LOCK_INIT;
static cache_entry_t cache[HUGE_CACHE_SLOTS];
static size_t cache_bytes;
static _Atomic(size_t) cache_count; /* read without the lock as a hint */

static void entry_drop(cache_entry_t *e, segment_t **to_unmap) {
  cache_bytes -= e->seg->mapped_size;
  *to_unmap = e->seg;
  e->seg = NULL;
  atomic_fetch_sub_explicit(&cache_count, 1, memory_order_relaxed);
}

/* Unmaps entries older than dirty_decay_ms. */
void huge_cache_expire(void) {
  if (atomic_load_explicit(&cache_count, memory_order_relaxed) == 0) return;
  int decay = __atomic_load_n(&alloy__options.dirty_decay_ms, __ATOMIC_RELAXED);
  if (decay < 0) return;
  uint64_t now = os_now_ms();
  segment_t *old[HUGE_CACHE_SLOTS];
  size_t n = 0;
  os_lock(&cache_lock);
  for (size_t i = 0; i < HUGE_CACHE_SLOTS; i++)
    if (cache[i].seg && now - cache[i].freed_ms >= (uint64_t)decay) entry_drop(&cache[i], &old[n++]);
  os_unlock(&cache_lock);
  for (size_t i = 0; i < n; i++) os_unmap(old[i], old[i]->mapped_size);
}

/* Joins `seg` with cached mappings that touch it (a split block's tail, the
 * neighbour freed before it), so the cache keeps maximal pieces a big
 * request can take whole.  Absorbed entries leave the cache.  Lock held. */
static segment_t *coalesce(segment_t *seg) {
  for (bool merged = true; merged;) {
    merged = false;
    for (size_t i = 0; i < HUGE_CACHE_SLOTS; i++) {
      segment_t *s = cache[i].seg;
      if (!s) continue;
      bool below = (uint8_t *)s + s->mapped_size == (uint8_t *)seg;
      bool above = (uint8_t *)seg + seg->mapped_size == (uint8_t *)s;
      if (!below && !above) continue;
      cache[i].seg = NULL;
      cache_bytes -= s->mapped_size;
      atomic_fetch_sub_explicit(&cache_count, 1, memory_order_relaxed);
      size_t total = s->mapped_size + seg->mapped_size;
      if (below) seg = s;
      seg->mapped_size = total;
      merged = true;
    }
  }
  return seg;
}

/* Takes a freed huge mapping: keeps it (joined with its cached neighbours)
 * if it fits, else unmaps it. */
void huge_cache_put(segment_t *seg) {
  huge_cache_expire();
  segment_t *evicted = NULL;
  uint64_t now = os_now_ms();
  os_lock(&cache_lock);
  seg = coalesce(seg);
  cache_entry_t *slot = NULL, *oldest = NULL;
  for (size_t i = 0; i < HUGE_CACHE_SLOTS; i++) {
    if (!cache[i].seg) slot = &cache[i];
    else if (!oldest || cache[i].freed_ms < oldest->freed_ms) oldest = &cache[i];
  }
  /* Room is made by evicting the oldest entry once: the newest block is the
   * likeliest to be reused. */
  if (seg->mapped_size <= HUGE_CACHE_BYTES && (!slot || cache_bytes + seg->mapped_size > HUGE_CACHE_BYTES) &&
      oldest) {
    entry_drop(oldest, &evicted);
    if (!slot) slot = oldest;
  }
  bool kept = slot && cache_bytes + seg->mapped_size <= HUGE_CACHE_BYTES;
  if (kept) {
    slot->seg = seg;
    slot->freed_ms = now;
    cache_bytes += seg->mapped_size;
    atomic_fetch_add_explicit(&cache_count, 1, memory_order_relaxed);
  }
  os_unlock(&cache_lock);
  if (evicted) os_unmap(evicted, evicted->mapped_size);
  if (!kept) os_unmap(seg, seg->mapped_size);
}

/* A cached mapping for a block needing `total` bytes: the smallest that is
 * big enough, else the biggest (which the caller may grow in place).
 * NULL when the cache is empty. */
segment_t *huge_cache_take(size_t total) {
  if (atomic_load_explicit(&cache_count, memory_order_relaxed) == 0) return NULL;
  os_lock(&cache_lock);
  cache_entry_t *fit = NULL, *biggest = NULL;
  for (size_t i = 0; i < HUGE_CACHE_SLOTS; i++) {
    segment_t *s = cache[i].seg;
    if (!s) continue;
    if (s->mapped_size >= total && (!fit || s->mapped_size < fit->seg->mapped_size)) fit = &cache[i];
    if (!biggest || s->mapped_size > biggest->seg->mapped_size) biggest = &cache[i];
  }
  cache_entry_t *e = fit ? fit : biggest;
  segment_t *seg = NULL;
  if (e) {
    seg = e->seg;
    cache_bytes -= seg->mapped_size;
    e->seg = NULL;
    atomic_fetch_sub_explicit(&cache_count, 1, memory_order_relaxed);
  }
  os_unlock(&cache_lock);
  return seg;
}

/* Unmaps everything cached (alloy_collect, malloc_trim). */
void huge_cache_flush(void) {
  segment_t *all[HUGE_CACHE_SLOTS];
  size_t n = 0;
  os_lock(&cache_lock);
  for (size_t i = 0; i < HUGE_CACHE_SLOTS; i++)
    if (cache[i].seg) entry_drop(&cache[i], &all[n++]);
  os_unlock(&cache_lock);
  for (size_t i = 0; i < n; i++) os_unmap(all[i], all[i]->mapped_size);
}

size_t huge_cache_bytes(void) {
  os_lock(&cache_lock);
  size_t b = cache_bytes;
  os_unlock(&cache_lock);
  return b;
}

void huge_cache_fork_prepare(void) { os_lock(&cache_lock); }
void huge_cache_fork_release(void) { os_unlock(&cache_lock); }
