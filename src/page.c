/*
 * page.c - one page of a size class: its bitmaps (types.h) and their
 * summary of words with free blocks (kept exact: internal.h,
 * page_pop_lowest), carving, other threads' frees folded in, block
 * validation, and the purge of the free OS pages of a mostly empty page.
 *
 * The owner's side (free bits, the free summary, the summaries' owner half)
 * runs on the owning heap's thread only, or under its arena's lock.  Other
 * threads touch only remote bits and the remote summary, with atomic
 * read-modify-writes, and never read or write a block: alloy keeps nothing
 * in the memory it hands out.
 *
 * Memory ordering.  A remote freer sets its block's remote bit (acq_rel),
 * then, if that word had no bit yet, the word's bit in remote_summary
 * (seq_cst).  The owner exchanges remote_summary with 0, then each word it
 * names with 0 (acq_rel), and folds the bits into free_bits: it sees every
 * bit of every word the summary named.  A bit set after the owner read the
 * summary leaves its word non-zero, so a later freer of that word (old word
 * != 0) does not set the summary; the first freer does, after its bit, so
 * the bit is never stranded: whenever a word has bits, its summary bit is
 * set or about to be set by the freer that made it non-zero.
 */
#include "internal.h"

#define CARVE_BYTES (4 * ALLOY_KiB) /* carve about one OS page of blocks at a time */
#define CARVE_MIN 4

/* Makes the next few untouched blocks free (their bits set), in address
 * order: touching only ~4 KiB at a time keeps a barely used page from
 * becoming resident whole, and keeps stats.active to what was handed out. */
static bool page_carve(page_t *page) {
  uint32_t left = page->reserved - page->capacity;
  if (left == 0) return false;
  uint32_t n = (uint32_t)(CARVE_BYTES / page->block_size);
  if (n < CARVE_MIN) n = CARVE_MIN;
  if (n > left) n = left;
  size_t before = page_active_bytes(page);
  for (uint32_t i = page->capacity, end = i + n; i < end;) {
    unsigned w = i / 64, b = i % 64, k = end - i < 64 - b ? end - i : 64 - b;
    uint64_t bits = (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << b;
    __atomic_store_n(&page_bits(page)->word[w].free, page_bits(page)->word[w].free | bits, __ATOMIC_RELAXED);
    page->free_summary |= (uint64_t)1 << w;
    i += k;
  }
  /* others read it to tell a block from the untouched rest (page_check_block) */
  __atomic_store_n(&page->capacity, page->capacity + n, __ATOMIC_RELAXED);
  segment_count_active((int64_t)(page_active_bytes(page) - before));
  return true;
}

void page_init(page_t *page, unsigned cls, size_t block_size) {
  page_bits_t *bits = page_bits(page);
  size_t area = (size_t)page->slice_count * SLICE_SIZE;
  page->block_size = block_size;
  page->block_magic = page_magic_of(block_size);
  page->alloc_charge = alloc_charge_of(block_size);
  page->size_class = (uint8_t)cls;
  page->kind = block_size <= SMALL_MAX ? PAGE_SMALL : PAGE_MEDIUM;
  page->reserved = (uint32_t)(area / block_size);
  page->used = 0;
  page->capacity = 0;
  page_note_last(page, 0);
  for (unsigned w = 0; w < (page->reserved + 63) / 64; w++) {
    __atomic_store_n(&bits->word[w].free, 0, __ATOMIC_RELAXED);
    atomic_store_explicit(&bits->word[w].remote, 0, memory_order_relaxed);
  }
  page->free_summary = 0;
  atomic_store_explicit(&page->remote_summary, 0, memory_order_relaxed);
  page->free_bits = bits->word;
  page->purged_used = PAGE_NOT_PURGED;
  page->sparse_seen = 0;
  page_carve(page);
}

/* Folds other threads' frees into the owner's bits.  A block freed by
 * another thread that the owner's bits already show free was freed twice:
 * reported, and counted once.  Returns the blocks folded in. */
uint32_t page_collect_remote(page_t *page) {
  if (atomic_load_explicit(&page->remote_summary, memory_order_relaxed) == 0) return 0;
  uint64_t words = atomic_exchange_explicit(&page->remote_summary, 0, memory_order_acq_rel);
  uint32_t n = 0;
  while (words) {
    unsigned w = (unsigned)__builtin_ctzll(words);
    words &= words - 1;
    uint64_t r = atomic_exchange_explicit(&page_bits(page)->word[w].remote, 0, memory_order_acq_rel);
    uint64_t twice = r & page_bits(page)->word[w].free;
    if (unlikely(twice)) {
      free_report_double_word(page, w, twice);
      r &= ~twice;
    }
    if (r == 0) continue;
    __atomic_store_n(&page_bits(page)->word[w].free, page_bits(page)->word[w].free | r, __ATOMIC_RELAXED);
    page->free_summary |= (uint64_t)1 << w;
    n += (uint32_t)popcount64(r);
    /* Heap-profiler samples among these blocks go now, before any can be
     * handed out again.  The tag is read after the exchange, which acquires
     * the freers' bits: a tag set (by another thread: a sample taken in an
     * arena) before the block was freed is seen. */
    if (unlikely(atomic_load_explicit(&page->xheap, memory_order_relaxed) & XHEAP_SAMPLED))
      prof_table_collected(page, w, r);
  }
  page->used -= n;
  return n;
}

/* Makes the page have a free block in its own bits (free_summary non-zero),
 * folding in other threads' frees or carving more of it; false when it has
 * none. */
bool page_refill(page_t *page) {
  while (page->free_summary == 0)
    if (page_collect_remote(page) == 0 && !page_carve(page)) return false;
  return true;
}

bool page_has_free(const page_t *page) {
  return page->free_summary != 0 || page->capacity < page->reserved ||
         atomic_load_explicit(&page->remote_summary, memory_order_relaxed) != 0;
}

/* Why p is not a block of this page, or NULL when it is the start of one
 * (live or free: telling those apart is the bitmaps' job). */
const char *page_check_block(const page_t *page, const void *p) {
  if (page->slice_count == 0) return "inside an alloy region, in no page";
  if ((const uint8_t *)p < page->start) return "outside the blocks of its page";
  size_t off = (size_t)((const uint8_t *)p - page->start);
  if (page->kind >= PAGE_LARGE) return off == 0 ? NULL : "not the start of a block (interior pointer)";
  uint64_t m = (uint64_t)off * page->block_magic;
  /* capacity grows on the owner's thread while others free: read atomically */
  if ((m >> MAGIC_BITS) >= __atomic_load_n(&page->capacity, __ATOMIC_RELAXED)) return "outside the blocks of its page";
  if (page_offset_is_interior(m, page->block_magic)) return "not the start of a block (interior pointer)";
  return NULL;
}

/* ------------------------------------------------- mostly empty pages */

/* The free state of the 64 blocks of word w: carved blocks by their bits,
 * the uncarved rest as free (never handed out).  Other threads' frees not
 * yet folded in read as live: the purge stays on the safe side. */
static uint64_t word_free(const page_t *page, unsigned w) {
  uint32_t lo = w * 64;
  if (page->capacity <= lo) return ~(uint64_t)0;
  uint64_t x = page->free_bits[w].free;
  if (page->capacity - lo < 64) x |= ~(uint64_t)0 << (page->capacity - lo);
  return x;
}

/* The first block from `i` on that is free (want_free) or live, else
 * page->reserved. */
static uint32_t scan_blocks(const page_t *page, uint32_t i, bool want_free) {
  while (i < page->reserved) {
    unsigned w = i / 64;
    uint64_t x = word_free(page, w);
    if (!want_free) x = ~x;
    x &= ~(uint64_t)0 << (i % 64);
    if (x) {
      uint32_t j = w * 64 + (uint32_t)__builtin_ctzll(x);
      return j < page->reserved ? j : page->reserved;
    }
    i = (w + 1) * 64;
  }
  return page->reserved;
}

/* A page worth purging: at most a quarter of its carved blocks live, and
 * fewer than half as many as at its last purge (so that a purged page
 * that stays as it is is not purged again). */
bool page_is_sparse(const page_t *page) {
  return page->used * 4 <= page->capacity && page->capacity > 0 &&
         (page->purged_used == PAGE_NOT_PURGED || page->used * 2 < page->purged_used);
}

/* Gives back to the OS every whole OS page of `page` that holds no live
 * block (segment_purge_inside: one madvise per run; os_purge counts them),
 * and marks the page purged at its current use.  Owner only.  The blocks
 * stay free in the bitmap: handing one out again faults its OS page back
 * in, zeroed. */
void page_purge_free(page_t *page) {
  uintptr_t ps = os_page_size(), end_of_page = (uintptr_t)page->start + (size_t)page->slice_count * SLICE_SIZE;
  for (uint32_t i = scan_blocks(page, 0, true); i < page->reserved;) {
    uint32_t j = scan_blocks(page, i, false);
    uintptr_t a = (uintptr_t)page->start + (size_t)i * page->block_size;
    uintptr_t b = j == page->reserved ? end_of_page : (uintptr_t)page->start + (size_t)j * page->block_size;
    a = (a + ps - 1) & ~(ps - 1);
    b &= ~(ps - 1);
    if (b > a) segment_purge_inside(page, (void *)a, b - a);
    if (j == page->reserved) break;
    i = scan_blocks(page, j, true);
  }
  page->purged_used = page->used;
}
