/*
 * leaks.c - the leak report of `alloy leaks PROFILE` and `alloy run
 * --leaks`: from a final profile (what was still allocated at exit), the
 * call stacks holding the most bytes, each with its estimated bytes and
 * blocks and its frames named, innermost first.  Lines of one call stack
 * with different block sizes are added together.
 */
#include "elf_symbols.h"
#include "heap_profile.h"
#include "prof_tools.h"

#include <stdlib.h>
#include <string.h>

#define FRAMES_SHOWN 10

void format_bytes(char *buf, size_t cap, double bytes) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", bytes, unit[u]);
}

typedef struct {
  const hp_entry_t *e; /* first line of the stack */
  double bytes, blocks;
  uint64_t samples;
} stack_sum_t;

static int same_stack(const hp_entry_t *a, const hp_entry_t *b) {
  return a->depth == b->depth && memcmp(a->pcs, b->pcs, a->depth * sizeof *a->pcs) == 0;
}

static int by_bytes(const void *a, const void *b) {
  double x = ((const stack_sum_t *)a)->bytes, y = ((const stack_sum_t *)b)->bytes;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* One sum per distinct call stack (quadratic, on the few hundred lines of
 * a final profile). */
static size_t sum_stacks(const heap_profile_t *p, stack_sum_t *out) {
  size_t n = 0;
  for (size_t i = 0; i < p->nentries; i++) {
    const hp_entry_t *e = &p->entries[i];
    size_t k = 0;
    while (k < n && !same_stack(out[k].e, e)) k++;
    if (k == n) out[n++] = (stack_sum_t){e, 0, 0, 0};
    out[k].bytes += e->bytes;
    out[k].blocks += e->blocks;
    out[k].samples += e->samples;
  }
  qsort(out, n, sizeof *out, by_bytes);
  return n;
}

int leaks_print(const char *profile, FILE *out, int top) {
  heap_profile_t p;
  char err[512];
  if (heap_profile_load(profile, &p, err, sizeof err) != 0) {
    fprintf(stderr, "alloy: %s\n", err);
    return -1;
  }
  stack_sum_t *sums = calloc(p.nentries + 1, sizeof *sums);
  size_t n = sum_stacks(&p, sums);
  char total[32], rate[32], size[32];
  format_bytes(total, sizeof total, p.bytes);
  format_bytes(rate, sizeof rate, (double)p.rate);
  if (n == 0) {
    fprintf(out, "alloy: no sampled block was still allocated (1 sample per %s allocated)\n", rate);
  } else {
    fprintf(out, "alloy: %s in ~%.0f blocks still allocated, from %zu call stacks "
                 "(estimated from %llu samples, 1 per %s allocated)%s\n",
            total, p.blocks, n, (unsigned long long)p.samples, rate,
            (int)n > top ? "; the largest:" : ":");
  }
  symbolizer_t *sym = symbolizer_new(p.maps, p.nmaps);
  for (size_t i = 0; i < n && (int)i < top; i++) {
    format_bytes(size, sizeof size, sums[i].bytes);
    fprintf(out, "  #%zu %s in ~%.0f blocks (%.1f%%, %llu samples), allocated at\n", i + 1, size,
            sums[i].blocks, 100.0 * sums[i].bytes / p.bytes, (unsigned long long)sums[i].samples);
    const hp_entry_t *e = sums[i].e;
    for (unsigned k = 0; k < e->depth && k < FRAMES_SHOWN; k++) {
      const char *file;
      const char *name = symbolize(sym, e->pcs[k], &file);
      fprintf(out, "      %-40s %s\n", name, file);
    }
    if (e->depth > FRAMES_SHOWN) fprintf(out, "      ... (%u more frames)\n", e->depth - FRAMES_SHOWN);
  }
  symbolizer_free(sym);
  free(sums);
  heap_profile_free(&p);
  return 0;
}
