/*
 * ctl.c - the control namespace, jemalloc's mallctl model: a static tree of
 * nodes walked by name ("arenas.bin.3.size") or by a MIB, the array of child
 * indices and numbers that mallctlnametomib returns and callers may patch.
 * A leaf is a handler; an indexed node has one template child that stands
 * for any number.  Errors as jemalloc: ENOENT unknown name, EINVAL wrong
 * length or value, EPERM write to a read-only name, EFAULT no such arena.
 *
 * Only the prefixed alloy_mallctl* names exist so far: exporting `mallctl`
 * before the namespace covers what libjemalloc's clients call (arenas.create
 * for bind9, stats.* for redis) would break them under preload (issue #4).
 * Nothing here is on a fast path; reads fold the caller's counters first.
 */
#include "internal.h"

#include <alloy.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#define EXPORT __attribute__((visibility("default")))
#define CTL_MAX_DEPTH 8
#define ARENAS_ALL 4096 /* MALLCTL_ARENAS_ALL */
#define NARENAS 1       /* the thread heaps together; explicit arenas: issue #4 */

typedef int (*ctl_handler_t)(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                             void *newp, size_t newlen);

typedef struct ctl_node_s {
  const char *name;                   /* NULL for the template child of an indexed node */
  const struct ctl_node_s *children;
  size_t nchildren;
  ctl_handler_t handler;              /* leaves only */
  bool indexed;                       /* children[0] stands for any number */
} ctl_node_t;

/* --------------------------------------------------------------- helpers */

/* A read-only value: EPERM on a write, EINVAL unless *oldlenp is its size. */
static int ctl_read(void *oldp, size_t *oldlenp, const void *newp, const void *value, size_t size) {
  if (newp != NULL) return EPERM;
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

#define READ_ONLY(fn, type, expr)                                                          \
  static int fn(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp, \
                size_t newlen) {                                                           \
    (void)mib;                                                                             \
    (void)miblen;                                                                          \
    (void)newlen;                                                                          \
    type value = (expr);                                                                   \
    return ctl_read(oldp, oldlenp, newp, &value, sizeof value);                           \
  }

static heap_t *ctl_heap(void) {
  heap_t *heap = heap_get();
  if (heap != &alloy__heap_empty) stats_fold(heap);
  return heap;
}

static alloy_stats_t ctl_stats(void) {
  alloy_stats_t s;
  alloy_stats_get(&s);
  return s;
}

static uint64_t thread_allocated(void) {
  heap_t *heap = heap_get();
  if (heap == &alloy__heap_empty) return 0;
  uint64_t charged = (uint64_t)(heap->event_period - heap->event_countdown);
  return heap->counters.alloc_bytes + (charged >> CHARGE_SHIFT);
}

static uint64_t thread_deallocated(void) {
  heap_t *heap = heap_get();
  return heap == &alloy__heap_empty ? 0 : heap->counters.freed_bytes;
}

/* ---------------------------------------------------------------- leaves */

static const char *const version_string = "5.3.0-0-alloy-" ALLOY_VERSION_STRING;
static const char *const thp_names[] = {"default", "always", "never"};
static _Atomic(uint64_t) epoch;

READ_ONLY(ctl_version, const char *, version_string)
READ_ONLY(ctl_config_debug, bool, false)
READ_ONLY(ctl_config_stats, bool, true)
READ_ONLY(ctl_config_prof, bool, false)
READ_ONLY(ctl_opt_abort, bool, alloy__options.abort_on_error)
READ_ONLY(ctl_opt_secure, bool, alloy__options.secure)
READ_ONLY(ctl_opt_guard, bool, alloy__options.guard)
READ_ONLY(ctl_opt_guard_sample, ssize_t, alloy__options.guard_sample)
READ_ONLY(ctl_opt_dirty_decay_ms, ssize_t, alloy__options.dirty_decay_ms)
READ_ONLY(ctl_opt_thp, const char *, thp_names[alloy__options.thp])
READ_ONLY(ctl_opt_narenas, unsigned, NARENAS)
READ_ONLY(ctl_thread_allocated, uint64_t, thread_allocated())
READ_ONLY(ctl_thread_deallocated, uint64_t, thread_deallocated())
READ_ONLY(ctl_arenas_narenas, unsigned, NARENAS)
READ_ONLY(ctl_arenas_page, size_t, os_page_size())
READ_ONLY(ctl_arenas_quantum, size_t, ALIGNMENT_MIN)
READ_ONLY(ctl_arenas_nbins, unsigned, SIZE_CLASSES)
READ_ONLY(ctl_stats_allocated, size_t, (size_t)ctl_stats().allocated)
READ_ONLY(ctl_stats_mapped, size_t, (size_t)ctl_stats().mapped)

/* epoch: writing any uint64_t refreshes the statistics; reading returns it. */
static int ctl_epoch(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                     size_t newlen) {
  (void)mib;
  (void)miblen;
  if (newp != NULL) {
    if (newlen != sizeof(uint64_t)) return EINVAL;
    ctl_heap();
    atomic_fetch_add(&epoch, 1);
  }
  uint64_t e = atomic_load(&epoch);
  return ctl_read(oldp, oldlenp, NULL, &e, sizeof e);
}

/* arenas.bin.<j>.*: mib[2] is the class. */
static bool bin_index(const size_t *mib, size_t miblen, unsigned *cls) {
  if (miblen < 3 || mib[2] >= SIZE_CLASSES) return false;
  *cls = (unsigned)mib[2];
  return true;
}

static int ctl_bin_size(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
  (void)newlen;
  unsigned cls;
  if (!bin_index(mib, miblen, &cls)) return ENOENT;
  size_t v = size_class_size(cls);
  return ctl_read(oldp, oldlenp, newp, &v, sizeof v);
}

static size_t bin_slab_size(unsigned cls) {
  return size_class_size(cls) <= SMALL_MAX ? SLICE_SIZE : MEDIUM_PAGE_SLICES * SLICE_SIZE;
}

static int ctl_bin_slab_size(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                             void *newp, size_t newlen) {
  (void)newlen;
  unsigned cls;
  if (!bin_index(mib, miblen, &cls)) return ENOENT;
  size_t v = bin_slab_size(cls);
  return ctl_read(oldp, oldlenp, newp, &v, sizeof v);
}

static int ctl_bin_nregs(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
  (void)newlen;
  unsigned cls;
  if (!bin_index(mib, miblen, &cls)) return ENOENT;
  uint32_t v = (uint32_t)(bin_slab_size(cls) / size_class_size(cls));
  return ctl_read(oldp, oldlenp, newp, &v, sizeof v);
}

/* arena.<i>.purge / decay: <i> is 0, arenas.narenas or MALLCTL_ARENAS_ALL. */
static int arena_action(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                        const void *newp, bool now) {
  if (oldp != NULL || oldlenp != NULL || newp != NULL) return EINVAL; /* takes no value */
  size_t i = miblen >= 2 ? mib[1] : 0;
  if (i != 0 && i != NARENAS && i != ARENAS_ALL) return EFAULT;
  heap_t *heap = ctl_heap();
  if (heap == &alloy__heap_empty) heap = heap_init_thread();
  if (heap == NULL) return EFAULT;
  if (now) heap_collect(heap); /* adopts exited threads' heaps, purges what is free */
  else segment_decay(heap, false);
  return 0;
}

static int ctl_arena_purge(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen) {
  (void)newlen;
  return arena_action(mib, miblen, oldp, oldlenp, newp, true);
}

static int ctl_arena_decay(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                           void *newp, size_t newlen) {
  (void)newlen;
  return arena_action(mib, miblen, oldp, oldlenp, newp, false);
}

/* ------------------------------------------------------------------ tree */

#define LEAF(n, h) {n, NULL, 0, h, false}
#define NODE(n, c) {n, c, sizeof(c) / sizeof((c)[0]), NULL, false}
#define INDEXED(n, c) {n, c, 1, NULL, true}

static const ctl_node_t config_nodes[] = {
    LEAF("debug", ctl_config_debug), LEAF("prof", ctl_config_prof), LEAF("stats", ctl_config_stats)};
static const ctl_node_t opt_nodes[] = {
    LEAF("abort", ctl_opt_abort), LEAF("dirty_decay_ms", ctl_opt_dirty_decay_ms),
    LEAF("guard", ctl_opt_guard), LEAF("guard_sample", ctl_opt_guard_sample),
    LEAF("narenas", ctl_opt_narenas), LEAF("secure", ctl_opt_secure), LEAF("thp", ctl_opt_thp)};
static const ctl_node_t thread_nodes[] = {
    LEAF("allocated", ctl_thread_allocated), LEAF("deallocated", ctl_thread_deallocated)};
static const ctl_node_t bin_nodes[] = {
    LEAF("nregs", ctl_bin_nregs), LEAF("size", ctl_bin_size), LEAF("slab_size", ctl_bin_slab_size)};
static const ctl_node_t bin_index_node[] = {NODE(NULL, bin_nodes)};
static const ctl_node_t arenas_nodes[] = {
    INDEXED("bin", bin_index_node), LEAF("narenas", ctl_arenas_narenas),
    LEAF("nbins", ctl_arenas_nbins), LEAF("page", ctl_arenas_page),
    LEAF("quantum", ctl_arenas_quantum)};
static const ctl_node_t arena_nodes[] = {
    LEAF("decay", ctl_arena_decay), LEAF("purge", ctl_arena_purge)};
static const ctl_node_t arena_index_node[] = {NODE(NULL, arena_nodes)};
static const ctl_node_t stats_nodes[] = {
    LEAF("allocated", ctl_stats_allocated), LEAF("mapped", ctl_stats_mapped)};
static const ctl_node_t root_nodes[] = {
    INDEXED("arena", arena_index_node), NODE("arenas", arenas_nodes), NODE("config", config_nodes),
    LEAF("epoch", ctl_epoch), NODE("opt", opt_nodes), NODE("stats", stats_nodes),
    NODE("thread", thread_nodes), LEAF("version", ctl_version)};
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
  for (const char *s = name; node->handler == NULL;) {
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
    if (!dot) break;
    s = dot + 1;
  }
  if (node->handler == NULL) return ENOENT; /* an inner node, not a value */
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
  if (*miblenp < depth) return EINVAL;
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
