/*
 * mallinfo.c - glibc's introspection calls answered from alloy's
 * statistics: mallinfo, mallinfo2, malloc_stats, malloc_info and mallopt.
 * Without them a preloaded alloy let these reach glibc's own (unused) heap,
 * and programs that print them (rsync --info=stats3, e2fsck -tt, ld.gold
 * --stats, clang's memory tracking) showed zeros.  Like override.c, these
 * are standard names: in liballoy.so and liballoy.a, not in the prefixed
 * core library.
 *
 * How glibc's fields map to alloy (docs/DESIGN.md says the same):
 *   arena     bytes mapped for segments and metadata (not big blocks)
 *   ordblks   free runs of slices in segments: 1 per slice of dirty memory
 *   hblks     big blocks (above LARGE_MAX), hblkhd their bytes
 *   uordblks  bytes allocated (stats.allocated)
 *   fordblks  resident bytes not allocated (free blocks, free pages)
 *   keepcost  bytes malloc_trim would give back now (dirty, not purged)
 *   smblks, usmblks, fsmblks  0 (no fastbins; glibc itself reports 0 for usmblks)
 */
#include "internal.h"

#include <alloy.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>


static struct mallinfo2 info_now(void) {
  stats_memory_t m;
  stats_memory(&m);
  segment_totals_t t;
  segment_totals(&t);
  struct mallinfo2 mi = {0};
  mi.arena = m.mapped > t.big_bytes ? m.mapped - t.big_bytes : 0;
  mi.ordblks = m.dirty / SLICE_SIZE;
  mi.hblks = t.big_live;
  mi.hblkhd = t.big_bytes;
  mi.uordblks = m.allocated;
  mi.fordblks = m.resident > m.allocated ? m.resident - m.allocated : 0;
  mi.keepcost = m.dirty;
  return mi;
}

EXPORT struct mallinfo2 mallinfo2(void) { return info_now(); }

/* The old form: int fields, which wrap above 2 GiB as glibc's do. */
EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = info_now();
  struct mallinfo mi = {0};
  mi.arena = (int)m2.arena;
  mi.ordblks = (int)m2.ordblks;
  mi.hblks = (int)m2.hblks;
  mi.hblkhd = (int)m2.hblkhd;
  mi.uordblks = (int)m2.uordblks;
  mi.fordblks = (int)m2.fordblks;
  mi.keepcost = (int)m2.keepcost;
  return mi;
}

/* glibc's layout, one "arena" (alloy's thread heaps together). */
EXPORT void malloc_stats(void) {
  alloy_stats_t s;
  alloy_stats_get(&s);
  segment_totals_t t;
  segment_totals(&t);
  char buf[512];
  size_t n = fmt_format(buf, sizeof buf,
                        "Arena 0:\nsystem bytes     = %10llu\nin use bytes     = %10llu\n"
                        "Total (incl. mmap):\nsystem bytes     = %10llu\nin use bytes     = %10llu\n"
                        "max mmap regions = %10llu\nmax mmap bytes   = %10llu\n",
                        (unsigned long long)(s.mapped - t.big_bytes), (unsigned long long)s.allocated,
                        (unsigned long long)s.mapped, (unsigned long long)s.allocated,
                        (unsigned long long)t.big_live, (unsigned long long)s.peak_mapped);
  os_write(2, buf, n < sizeof buf ? n : sizeof buf - 1);
}

/* glibc's XML shape; options must be 0 (EINVAL otherwise, as glibc). */
EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0) return EINVAL;
  if (fp == NULL) return EINVAL;
  struct mallinfo2 mi = info_now();
  alloy_stats_t s;
  alloy_stats_get(&s);
  char buf[1536];
  size_t n = fmt_format(
      buf, sizeof buf,
      "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n"
      "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
      "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
      "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
      "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n</heap>\n"
      "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
      "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
      "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
      "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
      "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n</malloc>\n",
      (unsigned long long)mi.ordblks, (unsigned long long)mi.fordblks, (unsigned long long)mi.arena,
      (unsigned long long)s.peak_mapped, (unsigned long long)mi.arena, (unsigned long long)mi.arena,
      (unsigned long long)mi.ordblks, (unsigned long long)mi.fordblks, (unsigned long long)mi.hblks,
      (unsigned long long)mi.hblkhd, (unsigned long long)s.mapped, (unsigned long long)s.peak_mapped,
      (unsigned long long)s.mapped, (unsigned long long)s.mapped);
  if (n >= sizeof buf) n = sizeof buf - 1;
  return fwrite(buf, 1, n, fp) == n ? 0 : errno;
}

/* glibc's tuning knobs have no meaning for alloy: each is accepted (1, as
 * glibc answers success) and ignored.  Unknown parameters fail with 0, as
 * glibc's do. */
EXPORT int mallopt(int param, int value) {
  (void)value;
  switch (param) {
  case M_MXFAST:
  case M_TRIM_THRESHOLD:
  case M_TOP_PAD:
  case M_MMAP_THRESHOLD:
  case M_MMAP_MAX:
  case M_CHECK_ACTION:
  case M_PERTURB:
  case M_ARENA_TEST:
  case M_ARENA_MAX:
    return 1;
  default:
    return 0;
  }
}
