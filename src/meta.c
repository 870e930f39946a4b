/*
 * meta.c - metadata that lives as long as the process: heap structures,
 * arenas, statistics snapshots, page-map chunks.  Bump-allocated, zeroed,
 * from 64 KiB mappings of its own (never from segments, so an overflow of a
 * block cannot reach it), and never freed: structures are recycled by their
 * owners instead (a remote freer may still read a heap it found through a
 * page, so heaps must stay valid memory).  One lock, a leaf: nothing is
 * called while it is held but the OS.
 */
#include "internal.h"

#define META_CHUNK (64 * ALLOY_KiB)

static os_lock_t meta_lock = OS_LOCK_INIT;
static uint8_t *meta_cur, *meta_end;
static _Atomic(size_t) meta_bytes;

size_t meta_mapped_bytes(void) { return atomic_load_explicit(&meta_bytes, memory_order_relaxed); }

void *meta_alloc(size_t size) {
  size = (size + 63) & ~(size_t)63; /* cache-line aligned: heaps, page-map chunks */
  os_lock(&meta_lock);
  if ((size_t)(meta_end - meta_cur) < size) {
    size_t chunk = size > META_CHUNK ? (size + META_CHUNK - 1) & ~(META_CHUNK - 1) : META_CHUNK;
    size_t mapped = 0;
    uint8_t *p = os_map_aligned(chunk, os_page_size(), &mapped);
    if (!p) {
      os_unlock(&meta_lock);
      return NULL;
    }
    atomic_fetch_add_explicit(&meta_bytes, mapped, memory_order_relaxed);
    meta_cur = p;
    meta_end = p + mapped;
  }
  void *r = meta_cur;
  meta_cur += size;
  os_unlock(&meta_lock);
  return r;
}

/* fork: held across it, so a child never inherits it taken. */
void meta_fork_prepare(void) { os_lock(&meta_lock); }
void meta_fork_release(void) { os_unlock(&meta_lock); }
