/*
 * ctl.c - the control namespace, jemalloc's mallctl model: a static tree of
 * nodes walked by name ("arenas.bin.3.size") or by a MIB, the array of child
 * indices and numbers that mallctlnametomib returns and callers may patch.
 * A leaf is a handler; an indexed node has one template child that stands
 * for any number.  Errors as jemalloc: ENOENT unknown name, EINVAL wrong
 * length or value, EPERM write to a read-only name, EFAULT no such arena.
 *
 * override.c exports these as mallctl, mallctlnametomib and mallctlbymib.
 * Nothing here is on a fast path.  Process totals (stats.*) are current: an
 * `epoch` write folds the caller's counters, the rest are atomics updated
 * per page, never per block.  Per-arena statistics are snapshots (stats.c):
 * the first stats.arenas read after an epoch publishes the caller's heap
 * and explicit arenas at once, other threads' heaps at their next event, as
 * jemalloc's are refreshed by epoch and lag its thread caches.
 */
#include "ctl.h"
#include "internal.h"

#include <alloy.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#define CTL_MAX_DEPTH 8

typedef struct ctl_node_s {
  const char *name;                   /* NULL for the template child of an indexed node */
  const struct ctl_node_s *children;
  size_t nchildren;
  ctl_handler_t handler;              /* leaves only */
  bool indexed;                       /* children[0] stands for any number */
} ctl_node_t;

/* --------------------------------------------------------------- helpers */

int ctl_value(void *oldp, size_t *oldlenp, const void *value, size_t size) {
  if (oldp == NULL || oldlenp == NULL) return 0;
  if (*oldlenp != size) {
    size_t n = *oldlenp < size ? *oldlenp : size;
    memcpy(oldp, value, n);
    *oldlenp = n;
    return EINVAL;
  }
  memcpy(oldp, value, size);
  return 0;
}

int ctl_read(void *oldp, size_t *oldlenp, const void *newp, size_t newlen, const void *value,
             size_t size) {
  if (newp != NULL || newlen != 0) return EPERM;
  return ctl_value(oldp, oldlenp, value, size);
}

static uint64_t thread_allocated(void) {
  heap_t *heap = heap_home();
  if (heap_is_sentinel(heap)) return 0;
  uint64_t charged = (uint64_t)(heap->event_period - heap->event_countdown);
  return heap->counters.alloc_bytes + (charged >> CHARGE_SHIFT) + heap->arena_alloc_bytes;
}

static uint64_t thread_deallocated(void) {
  heap_t *heap = heap_home();
  return heap_is_sentinel(heap) ? 0 : heap->counters.freed_bytes;
}

int ctl_rw(void *oldp, size_t *oldlenp, const void *newp, size_t newlen, const void *old,
           size_t size) {
  if (newp != NULL && newlen != size) return EINVAL;
  return ctl_value(oldp, oldlenp, old, size);
}

int ctl_action(const void *oldp, const size_t *oldlenp, const void *newp, size_t newlen) {
  return oldp != NULL || oldlenp != NULL || newp != NULL || newlen != 0 ? EPERM : 0;
}

/* ---------------------------------------------------------------- leaves */

static const char *const version_string = ALLOY_JEMALLOC_VERSION;
static _Atomic(uint64_t) epoch;
static _Atomic(bool) arena_stats_stale = true;
static __thread bool thread_tcache_enabled = true;

static stats_memory_t ctl_memory(void) {
  stats_memory_t m;
  stats_memory(&m);
  return m;
}

READ_ONLY(ctl_version, const char *, version_string)
READ_ONLY(ctl_config_debug, bool, false)
READ_ONLY(ctl_config_prof, bool, true)
READ_ONLY(ctl_config_stats, bool, true)
READ_ONLY(ctl_config_malloc_conf, const char *, "")
READ_ONLY(ctl_opt_abort, bool, alloy__options.abort_on_error)
READ_ONLY(ctl_opt_abort_conf, bool, alloy__options.abort_conf)
READ_ONLY(ctl_opt_background_thread, bool, alloy__options.background_thread)
READ_ONLY(ctl_opt_secure, bool, alloy__options.secure)
READ_ONLY(ctl_opt_guard, bool, alloy__options.guard)
READ_ONLY(ctl_opt_guard_sample, ssize_t, alloy__options.guard_sample)
READ_ONLY(ctl_opt_dirty_decay_ms, ssize_t, alloy__options.dirty_decay_ms)
READ_ONLY(ctl_opt_muzzy_decay_ms, ssize_t, alloy__options.muzzy_decay_ms)
READ_ONLY(ctl_opt_thp, const char *, alloy__thp_names[alloy__options.thp])
READ_ONLY(ctl_opt_purge, const char *, alloy__purge_names[alloy__options.purge])
READ_ONLY(ctl_opt_narenas, unsigned, alloy__options.narenas ? (unsigned)alloy__options.narenas : 1)
READ_ONLY(ctl_opt_tcache, bool, alloy__options.tcache)
READ_ONLY(ctl_opt_sparse_purge, bool, alloy__options.sparse_purge)
READ_ONLY(ctl_opt_tcache_max, size_t, TCACHE_MAX_SIZE)
READ_ONLY(ctl_opt_stats_print, bool, alloy__options.stats_print)
READ_ONLY(ctl_opt_stats_summary, bool, alloy__options.stats_summary)
READ_ONLY(ctl_opt_stats_summary_pid, ssize_t, alloy__options.summary_pid)
READ_ONLY(ctl_opt_stats_print_opts, const char *, alloy__options.stats_print_opts)
READ_ONLY(ctl_opt_percpu, const char *, alloy__percpu_names[alloy__options.percpu])
READ_ONLY(ctl_thread_allocated, uint64_t, thread_allocated())
READ_ONLY(ctl_thread_deallocated, uint64_t, thread_deallocated())
READ_ONLY(ctl_arenas_narenas, unsigned, arena_count())
READ_ONLY(ctl_arenas_page, size_t, os_page_size())
READ_ONLY(ctl_arenas_quantum, size_t, ALIGNMENT_MIN)
READ_ONLY(ctl_arenas_tcache_max, size_t, TCACHE_MAX_SIZE)
READ_ONLY(ctl_arenas_nbins, unsigned, SIZE_CLASSES)
READ_ONLY(ctl_arenas_nlextents, unsigned, LEXTENTS)
READ_ONLY(ctl_stats_allocated, size_t, (size_t)ctl_memory().allocated)
READ_ONLY(ctl_stats_active, size_t, (size_t)ctl_memory().active)
READ_ONLY(ctl_stats_metadata, size_t, (size_t)ctl_memory().metadata)
READ_ONLY(ctl_stats_resident, size_t, (size_t)ctl_memory().resident)
READ_ONLY(ctl_stats_mapped, size_t, (size_t)ctl_memory().mapped)
READ_ONLY(ctl_stats_retained, size_t, (size_t)ctl_memory().retained)

/* epoch: writing any uint64_t refreshes the statistics (the caller's heap
 * and explicit arenas now, other threads at their next event); reading
 * returns the epoch. */
HANDLER(ctl_epoch) {
  (void)mib;
  (void)miblen;
  if (newp != NULL) {
    if (newlen != sizeof(uint64_t)) return EINVAL;
    heap_t *heap = heap_home();
    if (!heap_is_sentinel(heap)) stats_fold(heap);
    /* Per-arena snapshots walk pages: taken when first read after this
     * epoch, not here (Redis writes epoch ten times a second for totals). */
    atomic_store(&arena_stats_stale, true);
    atomic_fetch_add(&epoch, 1);
  }
  uint64_t e = atomic_load(&epoch);
  return ctl_value(oldp, oldlenp, &e, sizeof e);
}


/* background_thread: read whether it is enabled; write to start or stop it. */
HANDLER(ctl_background_thread) {
  UNUSED_ARGS;
  bool old = background_enabled();
  int err = ctl_rw(oldp, oldlenp, newp, newlen, &old, sizeof old);
  if (err == 0 && newp != NULL) {
    if (heap_for_thread() == NULL) return EAGAIN; /* makes the heap and registers the thread-exit hook */
    err = background_set(*(const bool *)newp);
  }
  return err;
}

/* max_background_threads: alloy runs one thread whatever the limit (at
 * least 1) a program sets. */
HANDLER(ctl_max_background_threads) {
  UNUSED_ARGS;
  size_t one = 1;
  int err = ctl_rw(oldp, oldlenp, newp, newlen, &one, sizeof one);
  if (err == 0 && newp != NULL && *(const size_t *)newp == 0) err = EINVAL;
  return err;
}

static uint64_t background_stat(int which) {
  uint64_t v[3];
  background_counts(&v[0], &v[1], &v[2]);
  return v[which];
}

READ_ONLY(ctl_stats_bg_num_threads, size_t, background_stat(0))
READ_ONLY(ctl_stats_bg_num_runs, uint64_t, background_stat(1))
READ_ONLY(ctl_stats_bg_run_interval, uint64_t, background_stat(2))

/* stats.thp.segments: live segments advised for transparent huge pages
 * (thp:auto past its thresholds, thp:always), to see whether auto engaged */
static uint64_t huge_segments(void) {
  segment_totals_t t;
  segment_totals(&t);
  return t.huge_segments;
}
READ_ONLY(ctl_stats_thp_segments, uint64_t, huge_segments())

/* stats.percpu.*: which registration serves the per-CPU caches ("glibc",
 * "own", or "off" for thread heaps), caches used and mapped, threads in
 * per-CPU mode now, bytes of blocks in caches, drains. */
static percpu_stats_t ctl_percpu(void) {
  percpu_stats_t s;
  percpu_stats(&s);
  return s;
}
READ_ONLY(ctl_stats_percpu_mode, const char *, percpu_mode_name())
READ_ONLY(ctl_stats_percpu_caches, unsigned, ctl_percpu().caches_used)
READ_ONLY(ctl_stats_percpu_ncaches, unsigned, ctl_percpu().ncaches)
READ_ONLY(ctl_stats_percpu_threads, uint64_t, ctl_percpu().threads)
READ_ONLY(ctl_stats_percpu_cached, size_t, (size_t)ctl_percpu().cached_bytes)
READ_ONLY(ctl_stats_percpu_metadata, size_t, (size_t)ctl_percpu().metadata)
READ_ONLY(ctl_stats_percpu_drains, uint64_t, ctl_percpu().drains)

/* ------------------------------------------------------------- thread.* */

HANDLER(ctl_thread_arena) {
  UNUSED_ARGS;
  unsigned old = arena_thread_index();
  if (newp != NULL && newlen != sizeof(unsigned)) return EINVAL;
  int err = ctl_value(oldp, oldlenp, &old, sizeof old);
  if (err == 0 && newp != NULL) err = arena_bind_thread(*(const unsigned *)newp);
  return err;
}

/* Pointers to the thread's counters: deallocatedp is exact at every moment;
 * allocatedp is brought up to date at the thread's events, so it lags by at
 * most 256 KiB of allocation (thread.allocated is always exact). */
HANDLER(ctl_thread_allocatedp) {
  UNUSED_ARGS;
  heap_t *heap = heap_for_thread();
  if (heap == NULL) return EAGAIN;
  stats_fold(heap);
  uint64_t *p = &heap->counters.alloc_bytes;
  return ctl_read(oldp, oldlenp, newp, newlen, &p, sizeof p);
}

HANDLER(ctl_thread_deallocatedp) {
  UNUSED_ARGS;
  heap_t *heap = heap_for_thread();
  if (heap == NULL) return EAGAIN;
  uint64_t *p = &heap->counters.freed_bytes;
  return ctl_read(oldp, oldlenp, newp, newlen, &p, sizeof p);
}

/* alloy's thread cache is the thread heap: the flag is kept and reported,
 * and flushing gives the heap's empty pages back. */
HANDLER(ctl_thread_tcache_enabled) {
  UNUSED_ARGS;
  bool old = thread_tcache_enabled;
  int err = ctl_rw(oldp, oldlenp, newp, newlen, &old, sizeof old);
  if (err == 0 && newp != NULL) thread_tcache_enabled = *(const bool *)newp;
  return err;
}

HANDLER(ctl_thread_tcache_flush) {
  UNUSED_ARGS;
  int err = ctl_action(oldp, oldlenp, newp, newlen);
  heap_t *heap = err == 0 ? heap_for_thread() : NULL;
  if (heap) {
    remote_flush(heap); /* other threads' blocks it freed: jemalloc's tcache flush gives those back too */
    heap_release_empty(heap);
  }
  return err;
}

HANDLER(ctl_thread_peak_read) {
  UNUSED_ARGS;
  heap_t *heap = heap_for_thread();
  uint64_t v = heap ? stats_thread_peak(heap, false) : 0;
  return ctl_read(oldp, oldlenp, newp, newlen, &v, sizeof v);
}

HANDLER(ctl_thread_peak_reset) {
  UNUSED_ARGS;
  int err = ctl_action(oldp, oldlenp, newp, newlen);
  heap_t *heap = err == 0 ? heap_for_thread() : NULL;
  if (heap) stats_thread_peak(heap, true);
  return err;
}

/* ------------------------------------------------------------- tcache.* */

HANDLER(ctl_tcache_create) {
  UNUSED_ARGS;
  if (newp != NULL) return EPERM;
  if (oldp == NULL || oldlenp == NULL || *oldlenp != sizeof(unsigned)) return EINVAL;
  unsigned id;
  if (heap_for_thread() == NULL) return EFAULT; /* makes the heap and registers the thread-exit hook */
  int err = tcache_create(&id);
  return err ? err : ctl_value(oldp, oldlenp, &id, sizeof id);
}

/* tcache.flush / tcache.destroy: write the identifier. */
static int tcache_op(void *oldp, const size_t *oldlenp, const void *newp, size_t newlen, bool destroy) {
  if (oldp != NULL || oldlenp != NULL) return EPERM; /* write-only */
  if (newp == NULL) return EFAULT;
  if (newlen != sizeof(unsigned)) return EINVAL;
  unsigned id = *(const unsigned *)newp;
  return destroy ? tcache_destroy(id) : tcache_flush(id);
}

HANDLER(ctl_tcache_flush) {
  (void)mib, (void)miblen;
  return tcache_op(oldp, oldlenp, newp, newlen, false);
}

HANDLER(ctl_tcache_destroy) {
  (void)mib, (void)miblen;
  return tcache_op(oldp, oldlenp, newp, newlen, true);
}

/* -------------------------------------------------------------- arenas.* */

HANDLER(ctl_arenas_create) {
  UNUSED_ARGS;
  if (newp != NULL) return EINVAL; /* custom extent hooks: not supported */
  if (oldp == NULL || oldlenp == NULL || *oldlenp != sizeof(unsigned)) return EINVAL;
  if (heap_for_thread() == NULL) return EAGAIN; /* makes the heap and registers the thread-exit hook */
  unsigned index = arena_create();
  if (index == 0) return EAGAIN;
  return ctl_value(oldp, oldlenp, &index, sizeof index);
}

/* Write a pointer, read the index of the arena that holds it. */
HANDLER(ctl_arenas_lookup) {
  UNUSED_ARGS;
  if (newp == NULL || newlen != sizeof(void *)) return EINVAL;
  int index = arena_of(*(void *const *)newp);
  if (index < 0) return EINVAL;
  unsigned v = (unsigned)index;
  return ctl_value(oldp, oldlenp, &v, sizeof v);
}

static size_t bin_slab_size(unsigned cls) {
  return size_class_page_slices(cls) * SLICE_SIZE;
}

/* arenas.bin.<j>.* and arenas.lextent.<j>.*: mib[2] is j, below `count`;
 * `j` names it in the expression. */
#define INDEXED_GEOMETRY(fn, count, type, expr)                         \
  HANDLER(fn) {                                                         \
    if (miblen < 3 || mib[2] >= (count)) return ENOENT;                 \
    unsigned j = (unsigned)mib[2];                                      \
    type v = (type)(expr);                                              \
    return ctl_read(oldp, oldlenp, newp, newlen, &v, sizeof v);         \
  }

INDEXED_GEOMETRY(ctl_bin_size, SIZE_CLASSES, size_t, size_class_size(j))
INDEXED_GEOMETRY(ctl_bin_slab_size, SIZE_CLASSES, size_t, bin_slab_size(j))
INDEXED_GEOMETRY(ctl_bin_nregs, SIZE_CLASSES, uint32_t, bin_slab_size(j) / size_class_size(j))
INDEXED_GEOMETRY(ctl_lextent_size, LEXTENTS, size_t, segment_lextent_size(j))

/* One decay schedule serves every arena (alloy keeps no per-arena one):
 * arenas.dirty_decay_ms and arena.<i>.dirty_decay_ms read and set it. */
static int decay_ms_rw(void *oldp, size_t *oldlenp, const void *newp, size_t newlen, int *target) {
  ssize_t old = __atomic_load_n(target, __ATOMIC_RELAXED);
  int err = ctl_rw(oldp, oldlenp, newp, newlen, &old, sizeof old);
  if (err || newp == NULL) return err;
  ssize_t v = *(const ssize_t *)newp;
  if (v < -1) return EFAULT; /* jemalloc's code for a refused value */
  __atomic_store_n(target, v > 0x7fffffff ? 0x7fffffff : (int)v, __ATOMIC_RELAXED); /* 24 days: never, near enough */
  return 0;
}

static long arena_index_of(const size_t *mib, size_t miblen);

/* arena.<i>.*_decay_ms names an arena that must exist (EFAULT when it was
 * destroyed, ENOENT beyond arenas.narenas); arenas.*_decay_ms does not. */
static int decay_arena_check(const size_t *mib, size_t miblen) {
  if (miblen < 3) return 0;
  long i = arena_index_of(mib, miblen);
  if (i < 0) return ENOENT;
  return i == 0 || i == ARENAS_ALL || arena_exists((unsigned)i) ? 0 : EFAULT;
}

HANDLER(ctl_dirty_decay_ms) {
  int err = decay_arena_check(mib, miblen);
  return err ? err : decay_ms_rw(oldp, oldlenp, newp, newlen, &alloy__options.dirty_decay_ms);
}

/* Accepted and kept: freed pages decay (dirty, then purged after
 * dirty_decay_ms) with no "muzzy" stage for this to time. */
HANDLER(ctl_muzzy_decay_ms) {
  int err = decay_arena_check(mib, miblen);
  return err ? err : decay_ms_rw(oldp, oldlenp, newp, newlen, &alloy__options.muzzy_decay_ms);
}

/* --------------------------------------------------------------- arena.* */

/* <i> of arena.<i>: the arena, or ARENAS_ALL for "all" (MALLCTL_ARENAS_ALL,
 * or arenas.narenas as Redis writes it); -1 (ENOENT) for an index beyond. */
static long arena_index_of(const size_t *mib, size_t miblen) {
  size_t i = miblen >= 2 ? mib[1] : 0;
  if (i == arena_count() || i == ARENAS_ALL) return ARENAS_ALL;
  return i < arena_count() ? (long)i : -1;
}

/* purge: give back empty pages and segments (a thread heap first adopts
 * what exited threads left) and purge every free slice; decay: one pass of
 * the schedule.  An explicit arena first collects the frees other threads
 * made, which is how all of its blocks come back. */
static void heap_purge_cb(heap_t *heap, void *arg) {
  bool now = *(bool *)arg;
  if (now && heap->arena_index == 0) heap_collect(heap);
  else heap_release_empty(heap);
  segment_decay(os_now_ms(), now);
}

/* purge (now) or decay (the schedule, now) on the caller's heap (which
 * adopts exited threads' heaps first), or on an explicit arena under its
 * lock.  Other live threads' heaps are purged by their own decay. */
static int arena_purge(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                       const void *newp, size_t newlen, bool now) {
  int err = ctl_action(oldp, oldlenp, newp, newlen);
  if (err) return err;
  long i = arena_index_of(mib, miblen);
  if (i < 0) return ENOENT;
  if (i != 0 && i != ARENAS_ALL) {
    arena_with_heap((unsigned)i, heap_purge_cb, &now); /* a destroyed arena: nothing to do */
    return 0;
  }
  heap_t *heap = heap_for_thread();
  if (heap == NULL) return EFAULT;
  heap_purge_cb(heap, &now);
  if (i == ARENAS_ALL)
    for (unsigned a = 1; a < arena_count(); a++) arena_with_heap(a, heap_purge_cb, &now);
  return 0;
}

HANDLER(ctl_arena_purge) {
  (void)newlen;
  return arena_purge(mib, miblen, oldp, oldlenp, newp, newlen, true);
}

HANDLER(ctl_arena_decay) {
  (void)newlen;
  return arena_purge(mib, miblen, oldp, oldlenp, newp, newlen, false);
}

static int arena_reset_op(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                          const void *newp, size_t newlen, bool destroy) {
  int err = ctl_action(oldp, oldlenp, newp, newlen);
  if (err) return err;
  long i = arena_index_of(mib, miblen);
  if (i < 0) return ENOENT;
  return i == 0 || i >= ARENAS_MAX ? EFAULT : arena_reset((unsigned)i, destroy);
}

HANDLER(ctl_arena_reset) {
  (void)newlen;
  return arena_reset_op(mib, miblen, oldp, oldlenp, newp, newlen, false);
}

HANDLER(ctl_arena_destroy) {
  (void)newlen;
  return arena_reset_op(mib, miblen, oldp, oldlenp, newp, newlen, true);
}

/* --------------------------------------------------------- stats.arenas.* */

/* stats.arenas.<i>: mib[2]; ENOENT for an arena that does not exist. */
static int arena_stats_of(const size_t *mib, size_t miblen, arena_stats_t *st) {
  if (miblen < 3) return ENOENT;
  if (atomic_exchange(&arena_stats_stale, false)) stats_refresh();
  size_t i = mib[2] == arena_count() ? ARENAS_ALL : mib[2];
  if (i > ARENAS_ALL || !arena_stats((unsigned)i, st)) return ENOENT;
  return 0;
}

static uint64_t purge_count(bool bytes) {
  uint64_t purged, calls;
  os_purge_counts(&purged, &calls);
  return bytes ? purged / os_page_size() : calls;
}

#define ARENA_STAT(fn, type, expr)                                     \
  HANDLER(fn) {                                                        \
    arena_stats_t st;                                                  \
    int err = arena_stats_of(mib, miblen, &st);                        \
    if (err) return err;                                               \
    type value = (type)(expr);                                         \
    return ctl_read(oldp, oldlenp, newp, newlen, &value, sizeof value); \
  }

/* Purges are counted process-wide: reported for every arena index. */
ARENA_STAT(ctl_sa_nthreads, unsigned, st.nthreads)
ARENA_STAT(ctl_sa_pactive, size_t, st.pactive)
ARENA_STAT(ctl_sa_pdirty, size_t, st.pdirty)
ARENA_STAT(ctl_sa_pmuzzy, size_t, 0)
ARENA_STAT(ctl_sa_dirty_npurge, uint64_t, purge_count(false))
ARENA_STAT(ctl_sa_dirty_nmadvise, uint64_t, purge_count(false))
ARENA_STAT(ctl_sa_dirty_purged, uint64_t, purge_count(true))
ARENA_STAT(ctl_sa_small_allocated, size_t, st.small_allocated)
ARENA_STAT(ctl_sa_small_nmalloc, uint64_t, st.small_nmalloc)
ARENA_STAT(ctl_sa_small_ndalloc, uint64_t, st.small_ndalloc)
ARENA_STAT(ctl_sa_large_allocated, size_t, st.large_allocated)
ARENA_STAT(ctl_sa_large_nmalloc, uint64_t, st.large_nmalloc)
ARENA_STAT(ctl_sa_large_ndalloc, uint64_t, st.large_ndalloc)

/* stats.arenas.<i>.bins.<j>.* and lextents.<j>.*: mib[4] is j, below
 * `count`; `j` names it in the expression. */
#define ARENA_INDEXED_STAT(fn, count, type, expr)                      \
  HANDLER(fn) {                                                        \
    arena_stats_t st;                                                  \
    int err = arena_stats_of(mib, miblen, &st);                        \
    if (err) return err;                                               \
    if (miblen < 5 || mib[4] >= (count)) return ENOENT;                \
    size_t j = mib[4];                                                 \
    type value = (type)(expr);                                         \
    return ctl_read(oldp, oldlenp, newp, newlen, &value, sizeof value); \
  }

ARENA_INDEXED_STAT(ctl_sab_curregs, SIZE_CLASSES, size_t, st.heap.bins[j].curregs)
ARENA_INDEXED_STAT(ctl_sab_curslabs, SIZE_CLASSES, size_t, st.heap.bins[j].curslabs)
ARENA_INDEXED_STAT(ctl_sab_nonfull_slabs, SIZE_CLASSES, size_t, st.heap.bins[j].nonfull_slabs)
ARENA_INDEXED_STAT(ctl_sab_nmalloc, SIZE_CLASSES, uint64_t, st.heap.bins[j].nfills)
ARENA_INDEXED_STAT(ctl_sab_ndalloc, SIZE_CLASSES, uint64_t, st.heap.bins[j].nfills - st.heap.bins[j].curregs)
ARENA_INDEXED_STAT(ctl_sal_curlextents, LEXTENTS, size_t, st.curlextents[j])

/* ------------------------------------------------------------------ tree */

#define LEAF(n, h) {n, NULL, 0, h, false}
#define NODE(n, c) {n, c, sizeof(c) / sizeof((c)[0]), NULL, false}
#define INDEXED(n, c) {n, c, 1, NULL, true}

static const ctl_node_t config_nodes[] = {
    LEAF("debug", ctl_config_debug), LEAF("malloc_conf", ctl_config_malloc_conf),
    LEAF("prof", ctl_config_prof), LEAF("stats", ctl_config_stats)};
static const ctl_node_t opt_nodes[] = {
    LEAF("abort", ctl_opt_abort), LEAF("abort_conf", ctl_opt_abort_conf),
    LEAF("abort_on_error", ctl_opt_abort),
    LEAF("background_thread", ctl_opt_background_thread),
    LEAF("dirty_decay_ms", ctl_opt_dirty_decay_ms), LEAF("guard", ctl_opt_guard),
    LEAF("guard_sample", ctl_opt_guard_sample),
    LEAF("lg_prof_interval", ctl_opt_lg_prof_interval), LEAF("lg_prof_sample", ctl_opt_lg_prof_sample),
    LEAF("muzzy_decay_ms", ctl_opt_muzzy_decay_ms), LEAF("narenas", ctl_opt_narenas), LEAF("percpu", ctl_opt_percpu),
    LEAF("prof", ctl_opt_prof), LEAF("prof_accum", ctl_opt_prof_accum),
    LEAF("prof_active", ctl_opt_prof_active), LEAF("prof_final", ctl_opt_prof_final),
    LEAF("prof_gdump", ctl_opt_prof_gdump), LEAF("prof_leak", ctl_opt_prof_leak),
    LEAF("prof_leak_error", ctl_opt_prof_leak_error), LEAF("prof_pid", ctl_opt_prof_pid),
    LEAF("prof_prefix", ctl_opt_prof_prefix),
    LEAF("prof_thread_active_init", ctl_opt_prof_thread_active_init),
    LEAF("prof_unwind", ctl_opt_prof_unwind),
    LEAF("purge", ctl_opt_purge), LEAF("secure", ctl_opt_secure), LEAF("sparse_purge", ctl_opt_sparse_purge),
    LEAF("stats_print", ctl_opt_stats_print), LEAF("stats_print_opts", ctl_opt_stats_print_opts),
    LEAF("stats_summary", ctl_opt_stats_summary), LEAF("stats_summary_pid", ctl_opt_stats_summary_pid),
    LEAF("tcache", ctl_opt_tcache), LEAF("tcache_max", ctl_opt_tcache_max), LEAF("thp", ctl_opt_thp)};
static const ctl_node_t thread_tcache_nodes[] = {
    LEAF("enabled", ctl_thread_tcache_enabled), LEAF("flush", ctl_thread_tcache_flush)};
static const ctl_node_t thread_peak_nodes[] = {
    LEAF("read", ctl_thread_peak_read), LEAF("reset", ctl_thread_peak_reset)};
static const ctl_node_t thread_prof_nodes[] = {LEAF("active", ctl_thread_prof_active)};
static const ctl_node_t thread_nodes[] = {
    LEAF("allocated", ctl_thread_allocated), LEAF("allocatedp", ctl_thread_allocatedp),
    LEAF("arena", ctl_thread_arena), LEAF("deallocated", ctl_thread_deallocated),
    LEAF("deallocatedp", ctl_thread_deallocatedp), NODE("peak", thread_peak_nodes),
    NODE("prof", thread_prof_nodes), NODE("tcache", thread_tcache_nodes)};
static const ctl_node_t tcache_nodes[] = {
    LEAF("create", ctl_tcache_create), LEAF("destroy", ctl_tcache_destroy),
    LEAF("flush", ctl_tcache_flush)};
static const ctl_node_t bin_nodes[] = {
    LEAF("nregs", ctl_bin_nregs), LEAF("size", ctl_bin_size), LEAF("slab_size", ctl_bin_slab_size)};
static const ctl_node_t bin_index_node[] = {NODE(NULL, bin_nodes)};
static const ctl_node_t lextent_nodes[] = {LEAF("size", ctl_lextent_size)};
static const ctl_node_t lextent_index_node[] = {NODE(NULL, lextent_nodes)};
static const ctl_node_t arenas_nodes[] = {
    INDEXED("bin", bin_index_node), LEAF("create", ctl_arenas_create),
    LEAF("dirty_decay_ms", ctl_dirty_decay_ms), INDEXED("lextent", lextent_index_node),
    LEAF("lookup", ctl_arenas_lookup), LEAF("muzzy_decay_ms", ctl_muzzy_decay_ms),
    LEAF("narenas", ctl_arenas_narenas), LEAF("nbins", ctl_arenas_nbins),
    LEAF("nlextents", ctl_arenas_nlextents), LEAF("page", ctl_arenas_page),
    LEAF("quantum", ctl_arenas_quantum), LEAF("tcache_max", ctl_arenas_tcache_max)};
static const ctl_node_t arena_nodes[] = {
    LEAF("decay", ctl_arena_decay), LEAF("destroy", ctl_arena_destroy),
    LEAF("dirty_decay_ms", ctl_dirty_decay_ms), LEAF("muzzy_decay_ms", ctl_muzzy_decay_ms),
    LEAF("purge", ctl_arena_purge), LEAF("reset", ctl_arena_reset)};
static const ctl_node_t arena_index_node[] = {NODE(NULL, arena_nodes)};
static const ctl_node_t sa_bin_nodes[] = {
    LEAF("curregs", ctl_sab_curregs), LEAF("curslabs", ctl_sab_curslabs),
    LEAF("ndalloc", ctl_sab_ndalloc), LEAF("nmalloc", ctl_sab_nmalloc),
    LEAF("nonfull_slabs", ctl_sab_nonfull_slabs), LEAF("nrequests", ctl_sab_nmalloc)};
static const ctl_node_t sa_bin_index_node[] = {NODE(NULL, sa_bin_nodes)};
static const ctl_node_t sa_lextent_nodes[] = {LEAF("curlextents", ctl_sal_curlextents)};
static const ctl_node_t sa_lextent_index_node[] = {NODE(NULL, sa_lextent_nodes)};
static const ctl_node_t sa_small_nodes[] = {
    LEAF("allocated", ctl_sa_small_allocated), LEAF("ndalloc", ctl_sa_small_ndalloc),
    LEAF("nmalloc", ctl_sa_small_nmalloc), LEAF("nrequests", ctl_sa_small_nmalloc)};
static const ctl_node_t sa_large_nodes[] = {
    LEAF("allocated", ctl_sa_large_allocated), LEAF("ndalloc", ctl_sa_large_ndalloc),
    LEAF("nmalloc", ctl_sa_large_nmalloc), LEAF("nrequests", ctl_sa_large_nmalloc)};
static const ctl_node_t stats_arena_nodes[] = {
    INDEXED("bins", sa_bin_index_node), LEAF("dirty_nmadvise", ctl_sa_dirty_nmadvise),
    LEAF("dirty_npurge", ctl_sa_dirty_npurge), LEAF("dirty_purged", ctl_sa_dirty_purged),
    NODE("large", sa_large_nodes), INDEXED("lextents", sa_lextent_index_node),
    LEAF("nthreads", ctl_sa_nthreads), LEAF("pactive", ctl_sa_pactive),
    LEAF("pdirty", ctl_sa_pdirty), LEAF("pmuzzy", ctl_sa_pmuzzy), NODE("small", sa_small_nodes)};
static const ctl_node_t stats_arena_index_node[] = {NODE(NULL, stats_arena_nodes)};
static const ctl_node_t stats_bg_nodes[] = {
    LEAF("num_runs", ctl_stats_bg_num_runs), LEAF("num_threads", ctl_stats_bg_num_threads),
    LEAF("run_interval", ctl_stats_bg_run_interval)};
static const ctl_node_t stats_percpu_nodes[] = {
    LEAF("cached", ctl_stats_percpu_cached), LEAF("caches", ctl_stats_percpu_caches),
    LEAF("drains", ctl_stats_percpu_drains), LEAF("metadata", ctl_stats_percpu_metadata),
    LEAF("mode", ctl_stats_percpu_mode), LEAF("ncaches", ctl_stats_percpu_ncaches),
    LEAF("threads", ctl_stats_percpu_threads)};
static const ctl_node_t stats_prof_nodes[] = {
    LEAF("dropped", ctl_stats_prof_dropped), LEAF("metadata", ctl_stats_prof_metadata),
    LEAF("samples", ctl_stats_prof_samples)};
static const ctl_node_t stats_thp_nodes[] = {LEAF("segments", ctl_stats_thp_segments)};
static const ctl_node_t stats_nodes[] = {
    LEAF("active", ctl_stats_active), LEAF("allocated", ctl_stats_allocated),
    INDEXED("arenas", stats_arena_index_node), NODE("background_thread", stats_bg_nodes),
    LEAF("mapped", ctl_stats_mapped),
    LEAF("metadata", ctl_stats_metadata), NODE("percpu", stats_percpu_nodes),
    NODE("prof", stats_prof_nodes),
    LEAF("resident", ctl_stats_resident), LEAF("retained", ctl_stats_retained), NODE("thp", stats_thp_nodes)};
static const ctl_node_t prof_nodes[] = {
    LEAF("active", ctl_prof_active), LEAF("dump", ctl_prof_dump), LEAF("gdump", ctl_prof_gdump),
    LEAF("interval", ctl_prof_interval), LEAF("lg_sample", ctl_prof_lg_sample),
    LEAF("prefix", ctl_prof_prefix), LEAF("reset", ctl_prof_reset),
    LEAF("thread_active_init", ctl_prof_thread_active_init)};
static const ctl_node_t root_nodes[] = {
    INDEXED("arena", arena_index_node), NODE("arenas", arenas_nodes),
    LEAF("background_thread", ctl_background_thread), NODE("config", config_nodes),
    LEAF("epoch", ctl_epoch), LEAF("max_background_threads", ctl_max_background_threads),
    NODE("opt", opt_nodes), NODE("prof", prof_nodes), NODE("stats", stats_nodes),
    NODE("tcache", tcache_nodes), NODE("thread", thread_nodes), LEAF("version", ctl_version)};
static const ctl_node_t root = NODE("", root_nodes);

/* A number component of a name ("12"), or false. */
static bool parse_index(const char *s, size_t n, size_t *out) {
  if (n == 0 || n > 19) return false;
  size_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (size_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

/* Name -> MIB; *depth is its length.  ENOENT for a name not in the tree. */
static int ctl_lookup(const char *name, size_t *mib, size_t *depth) {
  const ctl_node_t *node = &root;
  size_t d = 0;
  const char *s = name;
  for (; node->handler == NULL;) {
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    if (d == CTL_MAX_DEPTH) return ENOENT;
    if (node->indexed) {
      if (!parse_index(s, n, &mib[d])) return ENOENT;
      node = &node->children[0];
    } else {
      size_t i = 0;
      while (i < node->nchildren && (strlen(node->children[i].name) != n ||
                                     memcmp(node->children[i].name, s, n) != 0))
        i++;
      if (i == node->nchildren) return ENOENT;
      mib[d] = i;
      node = &node->children[i];
    }
    d++;
    s = dot ? dot + 1 : NULL;
    if (!s) break;
  }
  if (node->handler == NULL) return ENOENT; /* an inner node, not a value */
  if (s != NULL) return ENOENT;             /* components after a value: "epoch.x" */
  *depth = d;
  return 0;
}

/* MIB -> leaf, or NULL. */
static const ctl_node_t *ctl_walk(const size_t *mib, size_t miblen) {
  const ctl_node_t *node = &root;
  for (size_t d = 0; d < miblen && node->handler == NULL; d++) {
    if (node->indexed) node = &node->children[0];
    else if (mib[d] < node->nchildren) node = &node->children[mib[d]];
    else return NULL;
  }
  return node->handler ? node : NULL;
}

EXPORT int alloy_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
  if (name == NULL || mibp == NULL || miblenp == NULL) return EINVAL;
  size_t mib[CTL_MAX_DEPTH], depth = 0;
  int err = ctl_lookup(name, mib, &depth);
  if (err) return err;
  /* A shorter *miblenp gets the MIB's prefix (jemalloc's partial MIB), to
   * be completed by the caller before mallctlbymib. */
  if (*miblenp < depth) depth = *miblenp;
  memcpy(mibp, mib, depth * sizeof *mib);
  *miblenp = depth;
  return 0;
}

EXPORT int alloy_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                              void *newp, size_t newlen) {
  process_init();
  const ctl_node_t *leaf = mib ? ctl_walk(mib, miblen) : NULL;
  if (leaf == NULL) return ENOENT;
  return leaf->handler(mib, miblen, oldp, oldlenp, newp, newlen);
}

EXPORT int alloy_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
  if (name == NULL) return EINVAL;
  size_t mib[CTL_MAX_DEPTH], depth = 0;
  int err = ctl_lookup(name, mib, &depth);
  if (err) return err;
  return alloy_mallctlbymib(mib, depth, oldp, oldlenp, newp, newlen);
}
