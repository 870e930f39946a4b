/*
 * stats.c - process-wide statistics, merged lazily: each heap counts in
 * plain per-thread fields (bytes allocated through the event countdown,
 * bytes freed, allocations) and folds the difference into the atomic totals
 * here at its rare events, at thread exit, and when its own thread reads the
 * statistics.  Nothing here runs on the fast path.
 */
#include "internal.h"

#include <alloy.h>

static _Atomic(uint64_t) total_alloc;
static _Atomic(uint64_t) total_freed;
static _Atomic(uint64_t) total_nmalloc;
static _Atomic(uint64_t) peak_allocated;

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
  heap->event_countdown = heap->event_period = stats_event_interval();
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
}

void stats_orphan_free(size_t bytes) {
  atomic_fetch_add_explicit(&total_freed, bytes, memory_order_relaxed);
}

__attribute__((visibility("default"))) void alloy_stats_get(alloy_stats_t *out) {
  heap_t *heap = heap_get();
  if (heap != &alloy__heap_empty) stats_fold(heap);
  out->allocated = in_use_now();
  out->peak_allocated = atomic_load_explicit(&peak_allocated, memory_order_relaxed);
  out->mapped = os_mapped_bytes();
  out->peak_mapped = os_mapped_peak();
  out->nmalloc = atomic_load_explicit(&total_nmalloc, memory_order_relaxed);
  segment_count(&out->segments, &out->huge_blocks);
  heap_count_threads(&out->threads, &out->abandoned);
  os_purge_counts(&out->purged, &out->npurge);
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

__attribute__((visibility("default"))) void alloy_stats_print_summary(int fd) {
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
}

void stats_print_at_exit(void) {
  if (!alloy__options.stats_summary) return;
  if (alloy__options.summary_pid != 0 && alloy__options.summary_pid != os_getpid()) return;
  alloy_stats_print_summary(2);
}
