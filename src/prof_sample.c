/*
 * prof_sample.c - the heap profiler's sampling schedule: which allocations
 * are samples (jemalloc's prof.active and prof.lg_sample), and the weight
 * of a sample.  What happens to a sample is prof.c's.
 *
 * Bytes are sampled as a Poisson process of mean interval R =
 * 2^lg_prof_sample: the distance to the next sample point is drawn from an
 * exponential distribution of mean R, and the block whose bytes contain a
 * sample point is the sample.  A block of s bytes is then sampled with
 * probability 1 - exp(-s/R) whatever the allocation pattern (no aliasing
 * with periodic sizes), which is what jeprof and pprof assume for a
 * "heap_v2/R" profile: they scale each line by 1 / (1 - exp(-avg/R)).
 *
 * No cost on the fast path.  Each heap already counts down to its next rare
 * event (every 256 KiB, stats.c); while sampling is active its period is
 * min(256 KiB, bytes to its next sample point) (prof_sample_period, where
 * stats_fold and heap_reset restart the countdown), so the block that ends
 * the period is the sample and event_run receives it (prof_sample_due, read
 * before the fold).  With prof:false each hook is one test of an option
 * where the countdown restarts.  A change of rate, or sampling switched on,
 * bumps a generation: each heap draws a fresh distance at its next fold.
 *
 * Per-heap state is its owner's (heap->prof_*); the controls are atomics.
 * Never takes a lock, never allocates, no libm.
 */
#include "internal.h"

#include <string.h>

/* prof.active and prof.lg_sample: -1 until set, meaning the option's value
 * (read lazily: sampling starts at the first malloc, before any start-up
 * code could copy the options). */
static _Atomic(int) active = -1;
static _Atomic(int) lg_sample = -1;
static _Atomic(uint64_t) generation = 1;
static _Atomic(uint64_t) seed; /* 0 until the first heap draws */

/* ----------------------------------------------------------------- math */

double prof_log(double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1023) << 52);
  double m;
  memcpy(&m, &bits, sizeof m); /* x = m * 2^e, 1 <= m < 2 */
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  /* ln m = 2 atanh(z), |z| <= 0.172: ten terms reach 1e-16 */
  double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = 0;
  for (int k = 1; k <= 21; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return 2 * sum + e * 0.6931471805599453;
}

/* e^-x for x >= 0: 2^-k e^-r with |r| <= ln2/2. */
static double exp_neg(double x) {
  if (x > 700) return 0;
  int k = (int)(x / 0.6931471805599453 + 0.5);
  double r = x - k * 0.6931471805599453, term = 1, sum = 1;
  for (int i = 1; i <= 18; i++) {
    term *= -r / i;
    sum += term;
  }
  uint64_t bits = (uint64_t)(1023 - k) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return sum * scale;
}

double prof_one_minus_exp_neg(double x) {
  if (x >= 0.5) return 1 - exp_neg(x);
  double term = x, sum = 0; /* x - x^2/2! + x^3/3! - ...: no cancellation for small x */
  for (int i = 2; i <= 20; i++) {
    sum += term;
    term *= -x / i;
  }
  return sum;
}

double prof_weight(uint64_t size, uint64_t rate) {
  return 1 / prof_one_minus_exp_neg((double)size / (double)rate);
}

/* ------------------------------------------------------------ controls */

bool prof_sample_active(void) {
  int a = atomic_load_explicit(&active, memory_order_relaxed);
  return a < 0 ? alloy__options.prof_active : a != 0;
}

void prof_sample_set_active(bool on) {
  if (on && !prof_sample_active()) atomic_fetch_add(&generation, 1);
  atomic_store(&active, on);
}

unsigned prof_sample_lg(void) {
  int lg = atomic_load_explicit(&lg_sample, memory_order_relaxed);
  return (unsigned)(lg < 0 ? alloy__options.lg_prof_sample : lg);
}

void prof_sample_restart(unsigned lg) {
  atomic_store(&lg_sample, (int)lg);
  atomic_fetch_add(&generation, 1);
}

/* ------------------------------------------------------------ sampling */

/* xorshift64*, per heap. */
static uint64_t heap_random(heap_t *heap) {
  uint64_t x = heap->prof_rng;
  if (x == 0) {
    uint64_t unseeded = 0; /* the first heap to draw seeds the process's sequence */
    if (atomic_load_explicit(&seed, memory_order_relaxed) == 0)
      atomic_compare_exchange_strong(&seed, &unseeded, os_random() | 1);
    x = atomic_fetch_add_explicit(&seed, 0x9E3779B97F4A7C15ull, memory_order_relaxed) ^ (uintptr_t)heap;
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    x |= 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  heap->prof_rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Bytes to the next sample point: exponential of mean 2^lg, at least 1. */
static int64_t draw_distance(heap_t *heap) {
  double u = (double)((heap_random(heap) >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
  double bytes = -prof_log(u) * (double)(UINT64_C(1) << prof_sample_lg());
  if (bytes > (double)(INT64_MAX / 4)) return INT64_MAX / 4;
  return (int64_t)bytes + 1; /* ceil, and never 0 */
}

int64_t prof_sample_period_slow(heap_t *heap, uint64_t bytes, int64_t interval) {
  if (!prof_sample_active()) return interval;
  uint64_t gen = atomic_load_explicit(&generation, memory_order_relaxed);
  if (heap->prof_gen != gen) {
    heap->prof_gen = gen;
    heap->prof_left = draw_distance(heap);
  } else if ((heap->prof_left -= (int64_t)bytes) <= 0) {
    heap->prof_left = draw_distance(heap); /* the point was crossed: a sample was taken there */
  }
  return heap->prof_left < (interval >> CHARGE_SHIFT) ? heap->prof_left << CHARGE_SHIFT : interval;
}

bool prof_sample_due_slow(const heap_t *heap) {
  if (heap->prof_gen != atomic_load_explicit(&generation, memory_order_relaxed)) return false;
  uint64_t consumed = (uint64_t)(heap->event_period - heap->event_countdown) >> CHARGE_SHIFT;
  return (int64_t)consumed >= heap->prof_left;
}
