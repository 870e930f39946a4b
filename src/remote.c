/*
 * remote.c - other threads' frees of class blocks: each freeing thread
 * gathers them in a small table of its heap, one entry per bitmap word,
 * and publishes a word's bits with one atomic OR when the table fills,
 * when an entry is displaced, and at its thread's slow events (allocation
 * slow path, rare events, exit, alloy_collect).
 *
 * Why: a free into a page another thread is allocating from writes the
 * cache line the owner's malloc writes (the word's free and remote bits
 * sit side by side, types.h).  One atomic per free moved that line
 * between the cores at every free and every malloc: on a producer thread
 * and a consumer thread, 68% of the consumer's time in free was that
 * fetch_or.  Gathered, a word's frees cost one transfer.  Frees that land
 * one per word gain nothing from it: a review every REMOTE_REVIEW_WORDS
 * words published turns gathering off for the next REMOTE_DIRECT_FREES
 * when it finds that (remote_review).
 *
 * What it costs in checks: a block the table holds is still allocated for
 * everybody else (counted in its page's `used`, its bits clear), so its
 * page cannot be released under the table.  A second free of it by this
 * thread is found in the table at once; a free of it by its owner meanwhile
 * is found when the table publishes it (the owner's free bit set), unless
 * the owner has handed the block out again by then: the remote bit then
 * lands on the new block, whose next free by the owner reports it, unless
 * the owner folds the bit in first (then nothing reports it, and the block
 * is handed out twice).  The table holds at most REMOTE_BATCH blocks, so a
 * block waits there for at most that many of this thread's remote frees,
 * or until its next slow event; a thread that stops after a few remote
 * frees holds them until it runs again or exits.  docs/DESIGN.md,
 * "Gathered remote frees".
 */
#include "internal.h"

/* Where the table's entry for (page, word w) goes: the descriptors are 128
 * bytes apart, and a page's words are consecutive. */
static inline unsigned remote_slot(uintptr_t key) {
  return (unsigned)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> (64 - REMOTE_SLOTS_LG));
}

/* An entry's key: the page's descriptor (128-byte aligned) with the word's
 * index in its low bits. */
_Static_assert(BITMAP_WORDS <= sizeof(page_t), "a word index fits under a descriptor's alignment");
_Static_assert(REMOTE_SLOTS <= 64, "heap->remote_occupied has a bit per entry");
static inline uintptr_t remote_key(const page_t *page, size_t w) { return (uintptr_t)page | w; }

/* remote_publish's first bits into a word: its summary bit, and the wake-up
 * of a full page. */
static NOINLINE uint64_t remote_first_in_word(page_t *page, size_t w, uint64_t twice) {
  segment_waker_enter();
  uint64_t summary = atomic_fetch_or_explicit(&page->remote_summary, (uint64_t)1 << w, memory_order_seq_cst);
  if (summary == 0 && (atomic_load_explicit(&page->xheap, memory_order_seq_cst) & XHEAP_FULL)) heap_wake_page(page);
  segment_waker_leave();
  return twice;
}

/* Sets the bits of `mask` in word w's remote bits; returns those that were
 * free already (in the owner's bits, or another free's remote bits): double
 * frees.  The first bits into a word set the word's summary bit; the first
 * into an empty summary of a page marked full wakes the page (see
 * heap_page_to_full for the ordering), counted so that its frame is never
 * unmapped under it (segment_waker_enter). */
uint64_t remote_publish(page_t *page, size_t w, uint64_t mask) {
  bit_pair_t *pair = &page_bits(page)->word[w];
  /* The pair's line is read, then written: asked for writable at once, it
   * moves from the owner's core once, not twice (shared, then owned). */
  __builtin_prefetch(pair, 1, 3);
  uint64_t twice = __atomic_load_n(&pair->free, __ATOMIC_RELAXED) & mask;
  mask &= ~twice;
  if (mask == 0) return twice;
  uint64_t old = atomic_fetch_or_explicit(&pair->remote, mask, memory_order_acq_rel);
  twice |= old & mask;
  /* the first bits into the word: out of line, so that the common path
   * saves no registers (16 instructions a publish) */
  if (old == 0) return remote_first_in_word(page, w, twice);
  return twice;
}

/* An entry's page and word, from its key. */
static inline page_t *remote_slot_page(const remote_slot_t *slot) {
  return (page_t *)(slot->key & ~(uintptr_t)(sizeof(page_t) - 1));
}
static inline size_t remote_slot_word(const remote_slot_t *slot) { return slot->key & (sizeof(page_t) - 1); }

/* Publishes an entry of heap's table and empties it, counted for the
 * review. */
static void remote_publish_slot(heap_t *heap, remote_slot_t *slot) {
  heap->remote_words++;
  page_t *page = remote_slot_page(slot);
  size_t w = remote_slot_word(slot);
  uint64_t mask = slot->mask;
  slot->key = 0;
  slot->mask = 0;
  uint64_t twice = remote_publish(page, w, mask);
  if (unlikely(twice != 0)) free_report_double_word(page, w, twice);
}

/* Every REMOTE_REVIEW_WORDS words published: did a word gather blocks?
 * When frees land one per word (scattered over other threads' pages), the
 * table only adds its own work to each publish (thread_pass: 45
 * instructions a free, 1.06x the time), so the next REMOTE_DIRECT_FREES
 * are published at once; the table is empty then (the caller's flush, or
 * flushed here), so no block is both held and published. */
static void remote_review(heap_t *heap) {
  if (heap->remote_words < REMOTE_REVIEW_WORDS) return;
  /* the blocks published since: gathered since, less what is held now more
   * than then (a count of the published masks' bits would cost more) */
  uint64_t blocks = (uint64_t)heap->remote_blocks + heap->remote_review_held - heap->remote_held;
  bool batching = 2 * blocks >= 3 * (uint64_t)heap->remote_words;
  heap->remote_words = heap->remote_blocks = 0;
  heap->remote_review_held = heap->remote_held;
  if (batching) return;
  heap->remote_direct = REMOTE_DIRECT_FREES;
  remote_flush(heap);
}

/* Publishes everything the heap's table holds.  The lines it will write
 * are asked for first, all of them: each publish's atomic waits for the
 * loads before it, so their misses (the other threads' pages, cold here)
 * would otherwise come one after the other. */
NOINLINE void remote_flush(heap_t *heap) {
  if (heap->remote_held == 0) return;
  heap->remote_held = 0;
  uint64_t occupied = heap->remote_occupied;
  heap->remote_occupied = 0;
  for (uint64_t o = occupied; o != 0; o &= o - 1) {
    const remote_slot_t *slot = &heap->remote[ctz64(o)];
    page_t *page = remote_slot_page(slot);
    __builtin_prefetch(&page_bits(page)->word[remote_slot_word(slot)], 1, 3);
    __builtin_prefetch(&page->remote_summary, 1, 3);
  }
  for (uint64_t o = occupied; o != 0; o &= o - 1) remote_publish_slot(heap, &heap->remote[ctz64(o)]);
  remote_review(heap);
}

/* One more block held; the whole table published at REMOTE_BATCH. */
static inline void remote_count(heap_t *heap) {
  heap->remote_blocks++;
  if (unlikely(++heap->remote_held >= REMOTE_BATCH)) remote_flush(heap);
}

/* remote_gather's entry i holds another word: published, then given to
 * (key, bit).  Out of line, with the publication: the common paths then
 * keep their values in scratch registers (saving five cost 17 instructions
 * a gathered free). */
static NOINLINE bool remote_gather_displace(heap_t *heap, unsigned i, uintptr_t key, uint64_t bit) {
  remote_slot_t *slot = &heap->remote[i];
  remote_publish_slot(heap, slot); /* still occupied: remote_occupied keeps its bit */
  slot->key = key;
  slot->mask = bit;
  remote_count(heap);
  remote_review(heap);
  return true;
}

/* Another thread's block `index` of page, freed by the thread of `heap`,
 * into the table (remote_free in internal.h decides).  False when it is a
 * double free found now (the table holds it already). */
bool remote_gather(heap_t *heap, page_t *page, size_t index) {
  size_t w = index / 64;
  uint64_t bit = (uint64_t)1 << (index % 64);
  uintptr_t key = remote_key(page, w);
  unsigned i = remote_slot(key);
  remote_slot_t *slot = &heap->remote[i];
  if (slot->key == key) {
    if (slot->mask & bit) return false;
    slot->mask |= bit;
  } else {
    if (slot->mask != 0) return remote_gather_displace(heap, i, key, bit);
    heap->remote_occupied |= (uint64_t)1 << i;
    slot->key = key;
    slot->mask = bit;
  }
  remote_count(heap);
  return true;
}
