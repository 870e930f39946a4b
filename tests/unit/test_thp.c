/*
 * test_thp.c - transparent huge pages without bloat (thp:always,
 * src/segment.c): a segment is advised HUGEPAGE; a purge of part of a
 * 2 MiB unit (the segment with 32 KiB slices, a half with 64 KiB) that is
 * still partly in use advises that unit NOHUGEPAGE (so khugepaged cannot
 * fault the purged slices back in), a wholly free unit keeps its advice,
 * and a unit covered by pages again gets HUGEPAGE back.  Checked in the
 * segment's bookkeeping and, where the kernel reports it, in
 * /proc/self/smaps (THPeligible of the mapping that holds each unit).
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>

/* THPeligible of the mapping holding p: 1, 0, or -1 when not reported. */
static int thp_eligible(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int result = -1;
  bool inside = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
      continue;
    }
    int v;
    if (inside && sscanf(line, "THPeligible: %d", &v) == 1) {
      result = v;
      break;
    }
  }
  fclose(f);
  return result;
}

static bool thp_available(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return false;
  char buf[128] = "";
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  return strstr(buf, "[never]") == NULL;
}

enum { BLOCK = 4000, PER_SEGMENT = SEGMENT_SIZE / BLOCK };
#define UNIT ((size_t)2 << 20) /* a huge page: the whole segment with 32 KiB slices, a half with 64 KiB */

int main(void) {
  alloy__options.thp = THP_ALWAYS; /* before the first allocation sets up the process */
  void *blocks[PER_SEGMENT];
  for (int i = 0; i < PER_SEGMENT; i++) {
    blocks[i] = alloy_malloc(BLOCK);
    REQUIRE(blocks[i] != NULL);
    memset(blocks[i], 1, BLOCK);
  }
  segment_t *seg = segment_of(blocks[0]);
  uint8_t *unit1 = SEGMENT_SIZE > UNIT ? (uint8_t *)seg + UNIT : NULL;
  bool smaps = thp_available() && thp_eligible(seg) >= 0;
  if (smaps) CHECK_EQ(thp_eligible(seg), 1);
  if (smaps && unit1) CHECK_EQ(thp_eligible(unit1), 1);

  /* Keep only blocks in the first unit's first page: unit 0 stays partly
   * in use, a second unit (64 KiB slices) becomes wholly free. */
  for (int i = 0; i < PER_SEGMENT; i++) {
    if (i < 4 && segment_of(blocks[i]) == seg) continue;
    alloy_free(blocks[i]);
    blocks[i] = NULL;
  }
  alloy_collect(); /* the page that served the class last goes back too, and all is purged */
  CHECK_EQ(seg->nohuge_halves & 1, 1);
  if (unit1) CHECK_EQ(seg->nohuge_halves & 2, 0);
  if (smaps) CHECK_EQ(thp_eligible((uint8_t *)seg + SLICE_SIZE), 0);
  if (smaps && unit1) CHECK_EQ(thp_eligible(unit1 + SLICE_SIZE), 1);

  /* Pages covering unit 0 again: HUGEPAGE comes back. */
  void *again[PER_SEGMENT];
  for (int i = 0; i < PER_SEGMENT; i++) again[i] = alloy_malloc(BLOCK);
  CHECK_EQ(seg->nohuge_halves & 1, 0);
  if (smaps) CHECK_EQ(thp_eligible((uint8_t *)seg + SLICE_SIZE), 1);
  for (int i = 0; i < PER_SEGMENT; i++) alloy_free(again[i]);
  for (int i = 0; i < 4; i++) alloy_free(blocks[i]);
  printf("smaps checks: %s\n", smaps ? "yes" : "no (THP not reported)");
  return check_done();
}
