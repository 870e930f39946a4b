/*
 * event.c - the rare-event hook.  Each heap's allocations count down an
 * event interval (256 KiB, less with guarded sampling); when it runs out,
 * the fast path calls event_run with the block it just took, and
 * everything that must not tax the fast path happens here: statistics are
 * folded and snapshots refreshed, exited threads' heaps are adopted, a
 * sampled block is moved to a guarded mapping, the back end's decay pass
 * runs when due, the background thread is started when wanted, and the
 * heap profiler records its sample (the period ends at its sample points:
 * prof_sample.c).
 */
#include "prof.h"

/* A long-lived thread adopts an abandoned heap at its events only once this
 * many events passed since the heap was abandoned (the event clock is
 * process-wide: about 64 x 256 KiB allocated by all threads together): a
 * new thread should get it first. */
#define ADOPT_AGE_EVENTS 64
#define IDLE_SCAN_EVENTS 16

/* guard_sample: about one allocation in every guard_sample bytes is moved to
 * a mapping of its own that ends against an inaccessible page (and becomes
 * inaccessible when freed), catching overflows and uses after free in
 * production at the cost of one mapping per sample.  Large and big blocks
 * have the `guard` option instead. */
static void *event_sample_guarded(heap_t *heap, void *block) {
  if (heap->counters.alloc_bytes - heap->sampled_at < (uint64_t)alloy__options.guard_sample) return block;
  page_t *page = segment_page_lookup(block);
  if (page->kind > PAGE_MEDIUM) return block;
  heap->sampled_at = heap->counters.alloc_bytes;
  /* The replacement has the block's class size as its usable size (what
   * nallocx told, what sdallocx may be given), ending against the guard
   * page, and keeps every alignment the request may have asked for
   * (aligned_alloc, memalign, MALLOCX_LG_ALIGN): that alignment divides
   * both the block's address and its class size (an aligned request is
   * served from a class whose size is a multiple of it), so the largest
   * power of two dividing both keeps it, and leaves no slack after the
   * block (a slack of a bigger alignment would make the usable size
   * larger than the class size). */
  size_t usable = page->block_size;
  uintptr_t both = (uintptr_t)block | usable;
  size_t align = both & (0 - both);
  if (align > SLICE_SIZE) align = SLICE_SIZE;
  page_t *guarded = segment_alloc_big(usable, align, 0, &alloy__large_stats, true);
  if (guarded == NULL) return block;
  free_owned_block(heap, page, block);
  return guarded->start;
}

/* The event's work, but the heap profiler's. */
static inline __attribute__((always_inline)) void *event_work(heap_t *heap, void *block) {
  stats_fold(heap);
  stats_maybe_publish(heap);
  uint64_t now = heap_event_clock(), ms = os_now_ms();
  bool thread_heap = heap->arena_index == 0 && !heap->shared;
  if (thread_heap) {
    remote_flush(heap); /* other threads' blocks wait here at most until its next event */
    heap_note_active(heap, now, ms);
    if (alloy__options.guard_sample > 0) block = event_sample_guarded(heap, block);
    /* Threads that exited leave memory others may have freed since, and
     * the empty pages they kept for a successor: reclaim it even when no
     * new thread comes to take it, once the process allocated 16 MiB since
     * or a decay period went by (the pages kept, which decay cannot purge,
     * stay no longer than freed memory does: 200 threads that exited kept
     * 8.3 MiB of empty pages while the main thread allocated 2 MB over 2 s) */
    int decay = options_decay_ms();
    bool adopted = now >= ADOPT_AGE_EVENTS && heap_adopt_old(heap, now - ADOPT_AGE_EVENTS, UINT64_MAX);
    if (!adopted && decay >= 0 && ms >= (uint64_t)decay) heap_adopt_old(heap, UINT64_MAX, ms - (uint64_t)decay);
    /* and so do live threads that stopped allocating (one event in 16 of
     * the process looks: a walk over the heaps, under their lock); not a
     * per-CPU thread, whose heap serves no malloc */
    if (now % IDLE_SCAN_EVENTS == 0 && heap_get() == heap) heap_take_idle_pending(heap);
    percpu_event(heap);
    heap_sparse_decay(heap, ms);
  }
  heap_large_idle(heap);
  if (segment_decay_due(ms)) segment_decay(ms, false);
  if (unlikely(thread_heap && background_wanted())) background_start();
  return block;
}

/* With the heap profiler on: was the block that ended the period a sample
 * (asked before the fold restarts the countdown), then the event, then the
 * sample recorded.  A function of its own, so that prof:false pays one test
 * per event. */
static NOINLINE void *event_run_prof(heap_t *heap, void *block) {
  bool sampled = prof_sample_due(heap);
  block = event_work(heap, block);
  return prof_event(heap, block, sampled);
}

NOINLINE void *event_run(heap_t *heap, void *block) {
  if (unlikely(alloy__options.prof)) return event_run_prof(heap, block);
  return event_work(heap, block);
}
