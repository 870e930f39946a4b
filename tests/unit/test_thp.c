/*
 * test_thp.c - transparent huge pages without bloat (thp:always,
 * src/segment.c): a segment is advised HUGEPAGE; a purge of part of a
 * 2 MiB unit (the segment with 32 KiB slices, a half with 64 KiB) that is
 * still partly in use advises that unit NOHUGEPAGE (so khugepaged cannot
 * fault the purged slices back in), a wholly free unit keeps its advice,
 * and a unit covered by pages again gets HUGEPAGE back.  Checked in the
 * segment's bookkeeping and, where the kernel reports it, in
 * /proc/self/smaps (THPeligible of the mapping that holds each unit).
 * The advice comes before the segment's first write, so that its first
 * fault gets a huge page (AnonHugePages, where faults may compact for
 * advised ranges: advised after the header's write, the segment got none).
 * A huge segment's frame given back to the pool is advised NOHUGEPAGE (a
 * big block may take it).
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>

#include "thp_smaps.h"

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
  CHECK_EQ(seg->huge, 1);

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

  /* 16 MiB more, written whole: past what the pool holds, new mappings,
   * each a huge page where faults may get one (frames from the pool have
   * their header page faulted: only khugepaged can make them huge) */
  enum { MORE = 8 * PER_SEGMENT };
  static void *more[MORE];
  for (int i = 0; i < MORE; i++) {
    more[i] = alloy_malloc(BLOCK);
    REQUIRE(more[i] != NULL);
    memset(more[i], 2, BLOCK);
  }
  long huge_kb = process_anon_huge_kb();
  if (thp_fault_huge() && huge_kb >= 0) CHECK_LE(2048L * 4, huge_kb);
  /* given back, a huge segment's frame is advised against huge pages, so
   * that a big block carved from it later is not made resident whole */
  segment_t *last = segment_of(more[MORE - 1]);
  for (int i = 0; i < MORE; i++) alloy_free(more[i]);
  alloy_collect();
  if (smaps && thp_eligible(last) >= 0) CHECK_EQ(thp_eligible(last), 0);
  printf("smaps checks: %s\n", smaps ? "yes" : "no (THP not reported)");
  return check_done();
}
