/*
 * test_decay.c - decay purging (segment_decay, heap_event) against a fake
 * clock: freed slices are purged only after staying free through two decay
 * passes (half a dirty_decay_ms apart), never with dirty_decay_ms:-1, at the
 * first pass with dirty_decay_ms:0; the purge counters and the page-level
 * state (dirty bits) agree.
 */
#include "check.h"
#include "fake_clock.h"
#include "internal.h"

#include <alloy.h>

/* Frees most of 3 MiB of 1000-byte blocks (keeping the first, which keeps
 * the segment mapped): about 40 one-slice pages become free, dirty slices. */
static void *make_free_slices(void) {
  enum { N = 3 * 1024 * 1024 / 1000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = alloy_malloc(1000);
  for (int i = 1; i < N; i++) alloy_free(p[i]);
  return p[0];
}

static void test_two_passes(void) {
  alloy__options.dirty_decay_ms = 1000;
  fake_ms = 1000000;
  run_events(); /* a pass now: the slate is clean */
  void *keep = make_free_slices();
  uint64_t before = purged();
  fake_ms += 100; /* within half a period: no pass */
  run_events();
  CHECK_EQ(purged(), before);
  fake_ms += 500; /* first pass: marks the free slices, purges nothing freed since */
  run_events();
  uint64_t after_first = purged();
  CHECK_LT(after_first - before, 8 * SLICE_SIZE); /* at most what run_events itself left */
  fake_ms += 500; /* second pass: still free, so purged */
  run_events();
  uint64_t after_second = purged();
  CHECK_GE(after_second - after_first, 30 * SLICE_SIZE);
  alloy_free(keep);
}

static void test_never(void) {
  alloy__options.dirty_decay_ms = -1;
  void *keep = make_free_slices();
  uint64_t before = purged();
  for (int i = 0; i < 5; i++) {
    fake_ms += 10000;
    run_events();
  }
  CHECK_EQ(purged(), before);
  alloy_free(keep);
}

static void test_immediate(void) {
  alloy__options.dirty_decay_ms = 0;
  void *keep = make_free_slices();
  uint64_t before = purged();
  fake_ms += 1;
  run_events();
  CHECK_GE(purged() - before, 30 * SLICE_SIZE);
  alloy_free(keep);
}

int main(void) {
  os_set_clock(fake_clock);
  alloy_free(alloy_malloc(1)); /* the thread's heap exists before the clock matters */
  test_two_passes();
  test_never();
  test_immediate();
  os_set_clock(NULL);
  return check_done();
}
