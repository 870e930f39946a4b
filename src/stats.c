/*
 * stats.c - process-wide statistics, merged lazily: each heap counts in
 * plain per-thread fields (bytes allocated through the event countdown,
 * bytes freed, allocations) and folds the difference into the atomic totals
 * here at its rare events, at thread exit, and when its own thread reads the
 * statistics.  Nothing here runs on the fast path.
 */
#include "internal.h"

#include <alloy.h>
#include <string.h>

static _Atomic(uint64_t) total_alloc;
static _Atomic(uint64_t) total_freed;
static _Atomic(uint64_t) total_nmalloc;
static _Atomic(uint64_t) peak_allocated;

uint64_t stats_allocated_total(void) { return atomic_load_explicit(&total_alloc, memory_order_relaxed); }

static uint64_t in_use_now(void) {
  uint64_t a = atomic_load_explicit(&total_alloc, memory_order_relaxed);
  uint64_t f = atomic_load_explicit(&total_freed, memory_order_relaxed);
  return a > f ? a - f : 0; /* frees of other threads' blocks can be folded first */
}

static void peak_update(void) {
  uint64_t now = in_use_now();
  uint64_t peak = atomic_load_explicit(&peak_allocated, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&peak_allocated, &peak, now,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

/* Charge between two rare events: 256 KiB of allocation, or less when
 * guarded sampling asks for more frequent samples. */
int64_t stats_event_interval(void) {
  int64_t bytes = EVENT_INTERVAL_BYTES;
  int sample = alloy__options.guard_sample;
  if (sample > 0 && sample < bytes) bytes = sample < 4096 ? 4096 : sample;
  return bytes << CHARGE_SHIFT;
}

/* Adds what the heap counted since its last fold to the totals and restarts
 * its event countdown. */
void stats_fold(heap_t *heap) {
  uint64_t charged = (uint64_t)(heap->event_period - heap->event_countdown);
  heap->counters.alloc_bytes += charged >> CHARGE_SHIFT;
  heap->counters.nmalloc += charged & (((uint64_t)1 << CHARGE_SHIFT) - 1);
  heap->event_countdown = heap->event_period =
      prof_sample_period(heap, charged >> CHARGE_SHIFT, stats_event_interval());
  atomic_fetch_add_explicit(&total_alloc, heap->counters.alloc_bytes - heap->folded_alloc,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&total_freed, heap->counters.freed_bytes - heap->folded_freed,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&total_nmalloc, heap->counters.nmalloc - heap->folded_nmalloc,
                            memory_order_relaxed);
  heap->folded_alloc = heap->counters.alloc_bytes;
  heap->folded_freed = heap->counters.freed_bytes;
  heap->folded_nmalloc = heap->counters.nmalloc;
  peak_update();
  int64_t net = (int64_t)(heap->counters.alloc_bytes + heap->arena_alloc_bytes - heap->counters.freed_bytes -
                          heap->peak_base);
  if (net > 0 && (uint64_t)net > heap->peak_net) heap->peak_net = (uint64_t)net;
}

/* ------------------------------------------------- per-heap snapshots */

/* Bumped by an `epoch` write: every heap takes a fresh snapshot at its next
 * event, so readers never walk another thread's pages. */
static _Atomic(uint64_t) stats_generation;

static void put(uint64_t *field, uint64_t v) { __atomic_store_n(field, v, __ATOMIC_RELAXED); }
static uint64_t get(const uint64_t *field) { return __atomic_load_n(field, __ATOMIC_RELAXED); }

static void page_tally(heap_t *heap, page_t *page, void *arg) {
  (void)heap;
  heap_stats_t *t = arg;
  bin_stats_t *b = &t->bins[page->size_class];
  b->curregs += page->used;
  b->curslabs++;
  b->nonfull_slabs += page->used < page->reserved;
  b->nfills += page->capacity;
  t->pactive += page_active_bytes(page);
}

/* Takes the heap's snapshot now: its owner's thread, or under its lock. */
void stats_publish(heap_t *heap) {
  heap_stats_t *out = heap->published;
  if (out == NULL) {
    out = meta_alloc(sizeof *out); /* zeroed: readable at once */
    if (out == NULL) return;
    __atomic_store_n(&heap->published, out, __ATOMIC_RELEASE); /* readers load it atomically */
  }
  heap->published_gen = atomic_load_explicit(&stats_generation, memory_order_relaxed);
  heap_stats_t t; /* 2.6 KiB of stack, at a rare event */
  memset(&t, 0, sizeof t);
  heap_collect_remote(heap); /* other threads' frees counted as frees */
  heap_visit_pages(heap, page_tally, &t);
  for (unsigned c = 0; c < SIZE_CLASSES; c++) t.bins[c].nfills += heap->retired_fills[c];
  t.pactive /= os_page_size();
  t.nmalloc = heap->counters.nmalloc;
  const uint64_t *src = (const uint64_t *)&t;
  uint64_t *dst = (uint64_t *)out;
  for (size_t i = 0; i < sizeof t / sizeof(uint64_t); i++) put(&dst[i], src[i]);
}

void stats_maybe_publish(heap_t *heap) {
  if (heap->published_gen != atomic_load_explicit(&stats_generation, memory_order_relaxed))
    stats_publish(heap);
}

/* An `epoch` write: the caller's heap now, other threads at their next event. */
void stats_refresh(void) {
  atomic_fetch_add_explicit(&stats_generation, 1, memory_order_relaxed);
  heap_t *heap = heap_home();
  if (!heap_is_sentinel(heap)) {
    stats_fold(heap);
    stats_publish(heap);
  }
}

/* Blocks made available by the pages of heaps since recycled (their
 * threads exited and nobody adopted what they had), so that bins' nmalloc
 * never goes back when a thread exits. */
static _Atomic(uint64_t) exited_fills[SIZE_CLASSES];

void stats_retire_heap(heap_t *heap) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    if (heap->retired_fills[c]) atomic_fetch_add_explicit(&exited_fills[c], heap->retired_fills[c], memory_order_relaxed);
}

void stats_exited_add(heap_stats_t *sum) {
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    sum->bins[c].nfills += atomic_load_explicit(&exited_fills[c], memory_order_relaxed);
}

/* Adds a heap's last snapshot into `sum`. */
void stats_heap_add(const heap_t *heap, heap_stats_t *sum) {
  const heap_stats_t *p = __atomic_load_n(&heap->published, __ATOMIC_ACQUIRE);
  if (p == NULL) return;
  const uint64_t *src = (const uint64_t *)p;
  uint64_t *dst = (uint64_t *)sum;
  for (size_t i = 0; i < sizeof *sum / sizeof(uint64_t); i++) dst[i] += get(&src[i]);
}

/* thread.peak: the highest allocated - deallocated of the thread since the
 * last reset, sampled at its events and at each read. */
uint64_t stats_thread_peak(heap_t *heap, bool reset) {
  stats_fold(heap);
  /* may wrap: a thread frees others' blocks */
  uint64_t net = heap->counters.alloc_bytes + heap->arena_alloc_bytes - heap->counters.freed_bytes;
  if (reset) {
    heap->peak_base = net;
    heap->peak_net = 0;
    return 0;
  }
  int64_t now = (int64_t)(net - heap->peak_base);
  if (now > 0 && (uint64_t)now > heap->peak_net) heap->peak_net = (uint64_t)now;
  return heap->peak_net;
}

void stats_orphan_free(size_t bytes) {
  atomic_fetch_add_explicit(&total_freed, bytes, memory_order_relaxed);
}

EXPORT void alloy_stats_get(alloy_stats_t *out) {
  heap_t *heap = heap_home();
  if (!heap_is_sentinel(heap)) stats_fold(heap);
  out->allocated = in_use_now();
  out->peak_allocated = atomic_load_explicit(&peak_allocated, memory_order_relaxed);
  out->mapped = os_mapped_bytes();
  out->peak_mapped = os_mapped_peak();
  out->nmalloc = atomic_load_explicit(&total_nmalloc, memory_order_relaxed);
  segment_totals_t t;
  segment_totals(&t);
  out->segments = t.segments;
  out->huge_blocks = t.big_live;
  heap_count_threads(&out->threads, &out->abandoned);
  os_purge_counts(&out->purged, &out->npurge);
}

/* stats.{allocated,active,metadata,resident,mapped,retained}, jemalloc's
 * meanings: active = bytes of pages and blocks in use (the touched part of
 * class pages); metadata = segment headers, bitmap slices and structures;
 * resident = active + dirty (freed, not yet purged) + metadata, an upper
 * bound as jemalloc's is; retained = mapped but neither (purged frames kept
 * for reuse). */
void stats_memory(stats_memory_t *m) {
  alloy_stats_t s;
  alloy_stats_get(&s);
  segment_totals_t t;
  segment_totals(&t);
  m->allocated = s.allocated;
  m->active = t.active;
  m->dirty = t.dirty;
  m->metadata = t.headers + meta_mapped_bytes();
  m->resident = m->active + m->dirty + m->metadata;
  m->mapped = s.mapped;
  if (m->resident > m->mapped) m->resident = m->mapped;
  m->retained = m->mapped - m->resident;
}

/* "12.3 MiB" */
static void fmt_bytes(char *buf, size_t cap, uint64_t b) {
  static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  uint64_t scaled = b * 10;
  while (scaled >= 10240 && u < 4) {
    scaled /= 1024;
    u++;
  }
  fmt_format(buf, cap, "%llu.%llu %s", (unsigned long long)(scaled / 10),
             (unsigned long long)(scaled % 10), unit[u]);
}

EXPORT void alloy_stats_print_summary(int fd) {
  alloy_stats_t s;
  alloy_stats_get(&s);
  char a[32], b[32], c[32], d[32], line[256];
  fmt_bytes(a, sizeof a, s.allocated);
  fmt_bytes(b, sizeof b, s.peak_allocated);
  fmt_bytes(c, sizeof c, s.mapped);
  fmt_bytes(d, sizeof d, s.peak_mapped);
  size_t n = fmt_format(line, sizeof line,
                        "alloy: pid %d: in use %s, peak in use %s\n"
                        "alloy: pid %d: mapped from the OS %s, peak mapped %s\n",
                        os_getpid(), a, b, os_getpid(), c, d);
  os_write(fd, line, n < sizeof line ? n : sizeof line - 1);
  n = fmt_format(line, sizeof line,
                 "alloy: pid %d: allocations %llu, segments %llu, huge blocks %llu, "
                 "live thread heaps %llu, abandoned %llu\n",
                 os_getpid(), (unsigned long long)s.nmalloc, (unsigned long long)s.segments,
                 (unsigned long long)s.huge_blocks, (unsigned long long)s.threads,
                 (unsigned long long)s.abandoned);
  os_write(fd, line, n < sizeof line ? n : sizeof line - 1);
  fmt_bytes(a, sizeof a, s.purged);
  n = fmt_format(line, sizeof line, "alloy: pid %d: returned to the OS %s in %llu purges\n",
                 os_getpid(), a, (unsigned long long)s.npurge);
  os_write(fd, line, n < sizeof line ? n : sizeof line - 1);
  char mode[200];
  percpu_describe(mode, sizeof mode);
  n = fmt_format(line, sizeof line, "alloy: pid %d: %s\n", os_getpid(), mode);
  os_write(fd, line, n < sizeof line ? n : sizeof line - 1);
}

void stats_print_at_exit(void) {
  if (!alloy__options.stats_summary) return;
  if (alloy__options.summary_pid != 0 && alloy__options.summary_pid != os_getpid()) return;
  alloy_stats_print_summary(2);
}
