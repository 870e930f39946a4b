/*
 * fake_clock.h - what the decay tests (test_decay.c, test_sparse.c) share:
 * a clock they move by hand (install it with os_set_clock(fake_clock)), a
 * burst of allocations that is sure to run the thread's rare events (where
 * decay and sweeps happen), and the purged-bytes counter.
 */
#ifndef ALLOY_TEST_FAKE_CLOCK_H
#define ALLOY_TEST_FAKE_CLOCK_H

#include <alloy.h>
#include <stdint.h>

static uint64_t fake_ms;
static uint64_t fake_clock(void) { return fake_ms; }

/* Allocates (and frees) 512 KiB in 64-byte blocks: at least one rare event. */
static void run_events(void) {
  enum { N = 512 * 1024 / 64 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = alloy_malloc(64);
  for (int i = 0; i < N; i++) alloy_free(p[i]);
}

static uint64_t purged(void) {
  alloy_stats_t s;
  alloy_stats_get(&s);
  return s.purged;
}

#endif
