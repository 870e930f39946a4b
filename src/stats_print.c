/*
 * stats_print.c - the statistics report, jemalloc's malloc_stats_print
 * model: text by default, JSON with 'J' (under a "jemalloc" key, with
 * jemalloc's section names, so tools that read its report find the same
 * shape).  Sections: general (version, config, options, sizes), process
 * totals, merged arenas, each arena; jemalloc's letters leave them out:
 * 'g' general, 'm' merged arenas, 'a' per arena, 'b' bins (size-class
 * tables), 'l' large size classes.  'd' (destroyed arenas), 'x' (mutexes),
 * 'e' (extents) and 'h' (hpa) name sections alloy has no data for, and are
 * accepted.
 *
 * Written line by line through the caller's callback (stderr by default)
 * from a stack buffer: no allocation while reporting.
 */
#include "internal.h"

#include <alloy.h>
#include <stdarg.h>
#include <string.h>


typedef void (*write_cb_t)(void *, const char *);

typedef struct {
  write_cb_t write;
  void *opaque;
  bool json;
  bool general, merged, arenas, bins, large; /* sections to print */
  int depth;                                 /* JSON nesting */
  bool first[16];                            /* no comma before the next JSON item */
} out_t;

static void write_stderr(void *opaque, const char *s) {
  (void)opaque;
  os_write(2, s, strlen(s));
}

static void out(const out_t *o, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  fmt_vformat(line, sizeof line, fmt, ap);
  va_end(ap);
  o->write(o->opaque, line);
}

static const char *yes_no(bool b) { return b ? "true" : "false"; }
static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

static size_t slab_size(unsigned cls) {
  return size_class_page_slices(cls) * SLICE_SIZE;
}
static size_t slab_regs(unsigned cls) { return slab_size(cls) / size_class_size(cls); }

/* ------------------------------------------------------------------ JSON */

/* The separator an item needs: a comma unless it is the first of its object. */
static const char *j_sep(out_t *o) {
  bool first = o->first[o->depth];
  o->first[o->depth] = false;
  return first ? "" : ",";
}

/* Opens an object or array ('{' or '['), named unless key is NULL. */
static void j_open(out_t *o, const char *key, char bracket) {
  const char *sep = j_sep(o);
  if (key) out(o, "%s\"%s\": %c\n", sep, key, bracket);
  else out(o, "%s%c\n", sep, bracket);
  o->first[++o->depth] = true;
}

static void j_close(out_t *o, char bracket) {
  o->depth--;
  out(o, "%c\n", bracket);
}

static void j_u64(out_t *o, const char *key, uint64_t v) { out(o, "%s\"%s\": %llu\n", j_sep(o), key, ull(v)); }
static void j_i64(out_t *o, const char *key, int v) { out(o, "%s\"%s\": %d\n", j_sep(o), key, v); }
static void j_str(out_t *o, const char *key, const char *v) { out(o, "%s\"%s\": \"%s\"\n", j_sep(o), key, v); }
static void j_bool(out_t *o, const char *key, bool v) { out(o, "%s\"%s\": %s\n", j_sep(o), key, yes_no(v)); }

/* --------------------------------------------------------------- general */

static const char *thp_name(void) { return alloy__thp_names[alloy__options.thp]; }
static const char *purge_name(void) { return alloy__purge_names[alloy__options.purge]; }

static void general_text(out_t *o) {
  out(o, "Version: \"%s\"\n", ALLOY_JEMALLOC_VERSION);
  out(o, "Build-time option settings\n  config.debug: false\n  config.stats: true\n  config.prof: false\n");
  out(o, "Run-time option settings\n");
  out(o, "  opt.secure: %s\n  opt.abort: %s\n  opt.abort_conf: %s\n  opt.guard: %s\n",
      yes_no(alloy__options.secure), yes_no(alloy__options.abort_on_error),
      yes_no(alloy__options.abort_conf), yes_no(alloy__options.guard));
  out(o, "  opt.guard_sample: %d\n  opt.dirty_decay_ms: %d\n  opt.muzzy_decay_ms: %d\n",
      alloy__options.guard_sample, alloy__options.dirty_decay_ms, alloy__options.muzzy_decay_ms);
  out(o, "  opt.thp: \"%s\"\n  opt.purge: \"%s\"\n  opt.background_thread: %s\n  opt.tcache: %s\n",
      thp_name(), purge_name(), yes_no(alloy__options.background_thread), yes_no(alloy__options.tcache));
  out(o, "  opt.stats_print: %s\n  opt.stats_print_opts: \"%s\"\n", yes_no(alloy__options.stats_print),
      alloy__options.stats_print_opts);
  out(o, "  opt.percpu: \"%s\"\n  opt.sparse_purge: %s\n", alloy__percpu_names[alloy__options.percpu],
      yes_no(alloy__options.sparse_purge));
  out(o, "Arenas: %u\nQuantum size: %u\nPage size: %zu\nMaximum thread-cached size class: %u\n",
      arena_count(), ALIGNMENT_MIN, os_page_size(), 32768u);
  out(o, "Number of bin size classes: %u\nNumber of large size classes: %u\n", SIZE_CLASSES, LEXTENTS);
}

static void general_json(out_t *o) {
  j_str(o, "version", ALLOY_JEMALLOC_VERSION);
  j_open(o, "config", '{');
  j_bool(o, "debug", false);
  j_bool(o, "prof", false);
  j_bool(o, "stats", true);
  j_close(o, '}');
  j_open(o, "opt", '{');
  j_bool(o, "secure", alloy__options.secure);
  j_bool(o, "abort", alloy__options.abort_on_error);
  j_bool(o, "abort_conf", alloy__options.abort_conf);
  j_bool(o, "guard", alloy__options.guard);
  j_i64(o, "guard_sample", alloy__options.guard_sample);
  j_i64(o, "dirty_decay_ms", alloy__options.dirty_decay_ms);
  j_i64(o, "muzzy_decay_ms", alloy__options.muzzy_decay_ms);
  j_str(o, "thp", thp_name());
  j_str(o, "purge", purge_name());
  j_bool(o, "background_thread", alloy__options.background_thread);
  j_bool(o, "tcache", alloy__options.tcache);
  j_str(o, "percpu", alloy__percpu_names[alloy__options.percpu]);
  j_bool(o, "sparse_purge", alloy__options.sparse_purge);
  j_close(o, '}');
  j_open(o, "arenas", '{');
  j_u64(o, "narenas", arena_count());
  j_u64(o, "quantum", ALIGNMENT_MIN);
  j_u64(o, "page", os_page_size());
  j_u64(o, "tcache_max", 32768);
  j_u64(o, "nbins", SIZE_CLASSES);
  j_u64(o, "nlextents", LEXTENTS);
  if (o->bins) {
    j_open(o, "bin", '[');
    for (unsigned c = 0; c < SIZE_CLASSES; c++) {
      j_open(o, NULL, '{');
      j_u64(o, "size", size_class_size(c));
      j_u64(o, "nregs", slab_regs(c));
      j_u64(o, "slab_size", slab_size(c));
      j_close(o, '}');
    }
    j_close(o, ']');
  }
  if (o->large) {
    j_open(o, "lextent", '[');
    for (unsigned j = 0; j < LEXTENTS; j++) {
      j_open(o, NULL, '{');
      j_u64(o, "size", segment_lextent_size(j));
      j_close(o, '}');
    }
    j_close(o, ']');
  }
  j_close(o, '}');
}

/* ---------------------------------------------------------------- totals */

typedef struct {
  alloy_stats_t s;
  stats_memory_t m;
  uint64_t bg_threads, bg_runs, bg_interval;
  percpu_stats_t pc;
} totals_t;

static void totals_text(const out_t *o, const totals_t *t) {
  out(o, "Allocated: %llu, active: %llu, metadata: %llu, resident: %llu, mapped: %llu, retained: %llu\n",
      ull(t->m.allocated), ull(t->m.active), ull(t->m.metadata), ull(t->m.resident), ull(t->m.mapped),
      ull(t->m.retained));
  out(o, "Peak allocated: %llu, peak mapped: %llu\n", ull(t->s.peak_allocated), ull(t->s.peak_mapped));
  out(o, "Background threads: %llu, num_runs: %llu, run_interval: %llu ns\n", ull(t->bg_threads),
      ull(t->bg_runs), ull(t->bg_interval));
  out(o, "Purged: %llu bytes in %llu madvise calls\n", ull(t->s.purged), ull(t->s.npurge));
  out(o, "Allocations: %llu; segments: %llu; huge blocks: %llu; thread heaps: %llu live, %llu abandoned\n",
      ull(t->s.nmalloc), ull(t->s.segments), ull(t->s.huge_blocks), ull(t->s.threads), ull(t->s.abandoned));
  out(o, "Per-CPU caches: mode: %s, caches: %u used of %u, threads: %llu, cached: %llu bytes, drains: %llu\n",
      percpu_mode_name(), t->pc.caches_used, t->pc.ncaches, ull(t->pc.threads), ull(t->pc.cached_bytes),
      ull(t->pc.drains));
}

static void totals_json(out_t *o, const totals_t *t) {
  j_open(o, "stats", '{');
  j_u64(o, "allocated", t->m.allocated);
  j_u64(o, "active", t->m.active);
  j_u64(o, "metadata", t->m.metadata);
  j_u64(o, "resident", t->m.resident);
  j_u64(o, "mapped", t->m.mapped);
  j_u64(o, "retained", t->m.retained);
  j_u64(o, "peak_allocated", t->s.peak_allocated);
  j_u64(o, "peak_mapped", t->s.peak_mapped);
  j_u64(o, "purged", t->s.purged);
  j_u64(o, "npurge", t->s.npurge);
  j_u64(o, "nmalloc", t->s.nmalloc);
  j_u64(o, "segments", t->s.segments);
  j_u64(o, "huge_blocks", t->s.huge_blocks);
  j_u64(o, "threads", t->s.threads);
  j_u64(o, "abandoned", t->s.abandoned);
  j_open(o, "background_thread", '{');
  j_u64(o, "num_threads", t->bg_threads);
  j_u64(o, "num_runs", t->bg_runs);
  j_u64(o, "run_interval", t->bg_interval);
  j_close(o, '}');
  j_open(o, "percpu", '{');
  j_str(o, "mode", percpu_mode_name());
  j_u64(o, "ncaches", t->pc.ncaches);
  j_u64(o, "caches_used", t->pc.caches_used);
  j_u64(o, "threads", t->pc.threads);
  j_u64(o, "cached", t->pc.cached_bytes);
  j_u64(o, "drains", t->pc.drains);
  j_close(o, '}');
  j_close(o, '}');
}

/* ---------------------------------------------------------------- arenas */

static void arena_text(const out_t *o, const char *title, const arena_stats_t *st) {
  out(o, "%s\nassigned threads: %u\n", title, st->nthreads);
  out(o, "dirty pages: %llu:%llu active:dirty, 0 muzzy\n", ull(st->pactive), ull(st->pdirty));
  out(o, "                   allocated       nmalloc       ndalloc\n");
  out(o, "small:      %16llu %13llu %13llu\n", ull(st->small_allocated), ull(st->small_nmalloc),
      ull(st->small_ndalloc));
  out(o, "large:      %16llu %13llu %13llu\n", ull(st->large_allocated), ull(st->large_nmalloc),
      ull(st->large_ndalloc));
  out(o, "total:      %16llu %13llu %13llu\n", ull(st->small_allocated + st->large_allocated),
      ull(st->small_nmalloc + st->large_nmalloc), ull(st->small_ndalloc + st->large_ndalloc));
  if (o->bins) {
    out(o, "bins:           size ind    allocated      nmalloc      ndalloc    curregs   curslabs nonfull_slabs regs slab_size  util\n");
    for (unsigned c = 0; c < SIZE_CLASSES; c++) {
      const bin_stats_t *b = &st->heap.bins[c];
      if (b->nfills == 0 && b->curslabs == 0) continue;
      uint64_t capacity = b->curslabs * slab_regs(c);
      unsigned util = capacity ? (unsigned)(b->curregs * 1000 / capacity) : 0;
      out(o, "         %10zu %3u %12llu %12llu %12llu %10llu %10llu %13llu %4zu %9zu %u.%03u\n",
          size_class_size(c), c, ull(b->curregs * size_class_size(c)), ull(b->nfills),
          ull(b->nfills - b->curregs), ull(b->curregs), ull(b->curslabs), ull(b->nonfull_slabs),
          slab_regs(c), slab_size(c), util / 1000, util % 1000);
    }
  }
  if (o->large) {
    out(o, "large:          size ind  curlextents\n");
    for (unsigned j = 0; j < LEXTENTS; j++)
      if (st->curlextents[j])
        out(o, "         %10zu %3u %12llu\n", segment_lextent_size(j), j, ull(st->curlextents[j]));
  }
}

static void arena_json(out_t *o, const char *key, const arena_stats_t *st) {
  j_open(o, key, '{');
  j_u64(o, "nthreads", st->nthreads);
  j_u64(o, "pactive", st->pactive);
  j_u64(o, "pdirty", st->pdirty);
  j_u64(o, "pmuzzy", 0);
  j_open(o, "small", '{');
  j_u64(o, "allocated", st->small_allocated);
  j_u64(o, "nmalloc", st->small_nmalloc);
  j_u64(o, "ndalloc", st->small_ndalloc);
  j_close(o, '}');
  j_open(o, "large", '{');
  j_u64(o, "allocated", st->large_allocated);
  j_u64(o, "nmalloc", st->large_nmalloc);
  j_u64(o, "ndalloc", st->large_ndalloc);
  j_close(o, '}');
  if (o->bins) {
    j_open(o, "bins", '[');
    for (unsigned c = 0; c < SIZE_CLASSES; c++) {
      const bin_stats_t *b = &st->heap.bins[c];
      j_open(o, NULL, '{');
      j_u64(o, "nmalloc", b->nfills);
      j_u64(o, "ndalloc", b->nfills - b->curregs);
      j_u64(o, "curregs", b->curregs);
      j_u64(o, "curslabs", b->curslabs);
      j_u64(o, "nonfull_slabs", b->nonfull_slabs);
      j_close(o, '}');
    }
    j_close(o, ']');
  }
  if (o->large) {
    j_open(o, "lextents", '[');
    for (unsigned j = 0; j < LEXTENTS; j++) {
      j_open(o, NULL, '{');
      j_u64(o, "curlextents", st->curlextents[j]);
      j_close(o, '}');
    }
    j_close(o, ']');
  }
  j_close(o, '}');
}

/* Merged arenas, then arena 0 (the thread heaps) and each explicit arena. */
static void arenas_section(out_t *o) {
  if (!o->merged && !o->arenas) return;
  arena_stats_t st;
  if (o->json) j_open(o, "stats.arenas", '{');
  if (o->merged && arena_stats(ARENAS_ALL, &st)) {
    if (o->json) arena_json(o, "merged", &st);
    else arena_text(o, "Merged arenas stats:", &st);
  }
  for (unsigned i = 0; o->arenas && i < arena_count(); i++) {
    if (!arena_stats(i, &st)) continue; /* destroyed */
    char name[32];
    if (o->json) {
      fmt_format(name, sizeof name, "%u", i);
      arena_json(o, name, &st);
    } else {
      fmt_format(name, sizeof name, "arenas[%u]:", i);
      arena_text(o, name, &st);
    }
  }
  if (o->json) j_close(o, '}');
}

EXPORT void alloy_malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                                     const char *opts) {
  process_init();
  out_t o = {write_cb ? write_cb : write_stderr, cbopaque, false, true, true, true, true, true, 0, {true}};
  for (const char *c = opts; c && *c; c++) {
    if (*c == 'J') o.json = true;
    else if (*c == 'g') o.general = false;
    else if (*c == 'm') o.merged = false;
    else if (*c == 'a') o.arenas = false;
    else if (*c == 'b') o.bins = false;
    else if (*c == 'l') o.large = false;
  }
  stats_refresh(); /* the caller's heap now; others as of their last event */
  totals_t t;
  stats_memory(&t.m);
  alloy_stats_get(&t.s);
  background_counts(&t.bg_threads, &t.bg_runs, &t.bg_interval);
  percpu_stats(&t.pc);
  if (o.json) {
    out(&o, "{\n");
    o.first[0] = true;
    j_open(&o, "jemalloc", '{');
    if (o.general) general_json(&o);
    totals_json(&o, &t);
    arenas_section(&o);
    j_close(&o, '}');
    out(&o, "}\n");
  } else {
    out(&o, "___ Begin alloy statistics ___\n");
    if (o.general) general_text(&o);
    totals_text(&o, &t);
    arenas_section(&o);
    out(&o, "___ End alloy statistics ___\n");
  }
}
