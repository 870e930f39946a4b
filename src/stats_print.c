/*
 * stats_print.c - the statistics report, jemalloc's malloc_stats_print
 * model: text by default, JSON with 'J'; 'g' leaves out the general section
 * (version, options), 'b' the size-class table; jemalloc's other letters
 * (m d a l x e) name sections alloy does not have yet and are accepted.
 * Written line by line through the caller's callback (stderr by default)
 * from a stack buffer: no allocation while reporting.
 */
#include "internal.h"

#include <alloy.h>
#include <stdarg.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef void (*write_cb_t)(void *, const char *);

typedef struct {
  write_cb_t write;
  void *opaque;
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

static const char *thp_name(void) {
  static const char *names[] = {"default", "always", "never"};
  return names[alloy__options.thp];
}

static const char *yes_no(bool b) { return b ? "true" : "false"; }

static size_t slab_size(unsigned cls) {
  return size_class_size(cls) <= SMALL_MAX ? SLICE_SIZE : MEDIUM_PAGE_SLICES * SLICE_SIZE;
}

static void print_text(const out_t *o, const alloy_stats_t *s, bool general, bool bins) {
  out(o, "___ Begin alloy statistics ___\n");
  if (general) {
    out(o, "Version: \"5.3.0-0-alloy-%s\"\n", ALLOY_VERSION_STRING);
    out(o, "Run-time option settings:\n");
    out(o, "  opt.secure: %s\n  opt.abort: %s\n  opt.guard: %s\n", yes_no(alloy__options.secure),
        yes_no(alloy__options.abort_on_error), yes_no(alloy__options.guard));
    out(o, "  opt.guard_sample: %d\n  opt.dirty_decay_ms: %d\n  opt.thp: \"%s\"\n",
        alloy__options.guard_sample, alloy__options.dirty_decay_ms, thp_name());
  }
  out(o, "Allocated: %llu, peak: %llu, mapped: %llu, peak mapped: %llu\n",
      (unsigned long long)s->allocated, (unsigned long long)s->peak_allocated,
      (unsigned long long)s->mapped, (unsigned long long)s->peak_mapped);
  out(o, "Purged: %llu bytes in %llu madvise calls\n", (unsigned long long)s->purged,
      (unsigned long long)s->npurge);
  out(o, "Allocations: %llu; segments: %llu; huge blocks: %llu; thread heaps: %llu live, %llu abandoned\n",
      (unsigned long long)s->nmalloc, (unsigned long long)s->segments,
      (unsigned long long)s->huge_blocks, (unsigned long long)s->threads,
      (unsigned long long)s->abandoned);
  if (bins) {
    out(o, "bins:           size  nregs  slab_size\n");
    for (unsigned c = 0; c < SIZE_CLASSES; c++)
      out(o, "  %u\t%zu\t%zu\t%zu\n", c, size_class_size(c), slab_size(c) / size_class_size(c),
          slab_size(c));
  }
  out(o, "___ End alloy statistics ___\n");
}

/* JSON under a "jemalloc" key, as jemalloc's own report, so tools that read
 * it find the same top-level shape. */
static void print_json(const out_t *o, const alloy_stats_t *s, bool general, bool bins) {
  out(o, "{\n\"jemalloc\": {\n");
  if (general) {
    out(o, "\"version\": \"5.3.0-0-alloy-%s\",\n", ALLOY_VERSION_STRING);
    out(o, "\"opt\": {\"secure\": %s, \"abort\": %s, \"guard\": %s, \"guard_sample\": %d, ",
        yes_no(alloy__options.secure), yes_no(alloy__options.abort_on_error),
        yes_no(alloy__options.guard), alloy__options.guard_sample);
    out(o, "\"dirty_decay_ms\": %d, \"thp\": \"%s\"},\n", alloy__options.dirty_decay_ms, thp_name());
  }
  out(o, "\"stats\": {\"allocated\": %llu, \"peak_allocated\": %llu, \"mapped\": %llu, ",
      (unsigned long long)s->allocated, (unsigned long long)s->peak_allocated,
      (unsigned long long)s->mapped);
  out(o, "\"peak_mapped\": %llu, \"purged\": %llu, \"npurge\": %llu, \"nmalloc\": %llu, ",
      (unsigned long long)s->peak_mapped, (unsigned long long)s->purged,
      (unsigned long long)s->npurge, (unsigned long long)s->nmalloc);
  out(o, "\"segments\": %llu, \"huge_blocks\": %llu, \"threads\": %llu, \"abandoned\": %llu}%s\n",
      (unsigned long long)s->segments, (unsigned long long)s->huge_blocks,
      (unsigned long long)s->threads, (unsigned long long)s->abandoned, bins ? "," : "");
  if (bins) {
    out(o, "\"arenas\": {\"nbins\": %u, \"quantum\": %u, \"page\": %zu, \"bin\": [\n", SIZE_CLASSES,
        ALIGNMENT_MIN, os_page_size());
    for (unsigned c = 0; c < SIZE_CLASSES; c++)
      out(o, "{\"size\": %zu, \"nregs\": %zu, \"slab_size\": %zu}%s\n", size_class_size(c),
          slab_size(c) / size_class_size(c), slab_size(c), c + 1 < SIZE_CLASSES ? "," : "");
    out(o, "]}\n");
  }
  out(o, "}\n}\n");
}

EXPORT void alloy_malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                                     const char *opts) {
  process_init();
  out_t o = {write_cb ? write_cb : write_stderr, cbopaque};
  bool json = false, general = true, bins = true;
  for (const char *c = opts; c && *c; c++) {
    if (*c == 'J') json = true;
    else if (*c == 'g') general = false;
    else if (*c == 'b') bins = false;
  }
  alloy_stats_t s;
  alloy_stats_get(&s);
  if (json) print_json(&o, &s, general, bins);
  else print_text(&o, &s, general, bins);
}
