/*
 * background.c - the background thread (background_thread:true, or the
 * `background_thread` mallctl, as jemalloc's): one thread per process that
 * wakes every half dirty_decay_ms and runs the decay schedule where no
 * allocation would run it.  The back end is shared, so one pass purges
 * every thread's free pages; the thread also adopts heaps of exited threads
 * that nobody took (a new thread would have taken them within a decay
 * period) and gives back what emptied in them.  Busy threads keep purging
 * at their own events; this only makes an idle program give memory back.
 *
 * It is started lazily, at a thread heap's rare event (never during the
 * process's first malloc) or by the mallctl, with every signal blocked
 * (os_worker_start) so the program's signals never land on it.  A fork
 * child has no such thread: it starts again at the child's next event.
 */
#include "internal.h"

enum { BG_OFF, BG_RUNNING, BG_STOPPING };

static _Atomic(int) state = BG_OFF;
static _Atomic(int) enabled = -1; /* -1: follow the option; 0 or 1: set by mallctl */
static os_lock_t control = OS_LOCK_INIT; /* serialises start and stop */
static _Atomic(uint64_t) runs;
static _Atomic(uint64_t) run_ns; /* sum of the intervals between runs */

bool background_enabled(void) {
  int e = atomic_load_explicit(&enabled, memory_order_relaxed);
  return e < 0 ? alloy__options.background_thread : e == 1;
}

bool background_wanted(void) {
  return atomic_load_explicit(&state, memory_order_relaxed) == BG_OFF && background_enabled();
}

bool background_running(void) { return atomic_load_explicit(&state, memory_order_acquire) == BG_RUNNING; }

/* Sleep between passes: half the decay period (a page is purged at the
 * second pass that finds it free), at least 10 ms; 1 s when decay is off. */
static unsigned interval_ms(void) {
  int decay = options_decay_ms();
  if (decay < 0) return 1000;
  return decay / 2 < 10 ? 10 : (unsigned)decay / 2;
}

/* One pass: adopt heaps abandoned more than a decay period ago, give back
 * what is empty in them and in what was adopted before, then purge. */
static void background_pass(heap_t *self) {
  uint64_t now = os_now_ms();
  int decay = options_decay_ms();
  if (decay < 0) return;
  while (heap_adopt_old(self, UINT64_MAX, now - (uint64_t)decay)) {
  }
  heap_release_empty(self);
  stats_publish(self); /* what it adopted stays in the statistics */
  percpu_decay(now);
  if (segment_decay_due(now)) segment_decay(now, false);
}

static void background_main(void) {
  heap_t *self = heap_init_thread(); /* adopted heaps move here */
  uint64_t last = os_now_ms();
  while (os_worker_sleep(interval_ms())) {
    if (self) background_pass(self);
    uint64_t now = os_now_ms();
    atomic_fetch_add_explicit(&run_ns, (now - last) * 1000000u, memory_order_relaxed);
    atomic_fetch_add_explicit(&runs, 1, memory_order_relaxed);
    last = now;
  }
}

static void start_locked(void) {
  if (atomic_load_explicit(&state, memory_order_relaxed) != BG_OFF) return;
  atomic_store_explicit(&state, BG_RUNNING, memory_order_release); /* before its loop tests it */
  if (!os_worker_start(background_main)) {
    atomic_store_explicit(&state, BG_OFF, memory_order_release);
    atomic_store_explicit(&enabled, 0, memory_order_relaxed); /* do not retry at every event */
    report_message("alloy: cannot start the background thread (background_thread disabled)");
  }
}

/* Creates the thread unless one exists.  From a heap event (inside malloc)
 * it never waits: a start or stop in progress elsewhere wins. */
void background_start(void) {
  if (!os_trylock(&control)) return;
  start_locked();
  os_unlock(&control);
}

static void stop_locked(void) {
  if (atomic_load_explicit(&state, memory_order_relaxed) != BG_RUNNING) return;
  atomic_store_explicit(&state, BG_STOPPING, memory_order_relaxed);
  os_worker_stop();
  atomic_store_explicit(&state, BG_OFF, memory_order_release);
}

/* background_thread write: true starts the thread now, false stops it and
 * waits for it to end. */
int background_set(bool on) {
  process_init();
  os_lock(&control);
  atomic_store_explicit(&enabled, on ? 1 : 0, memory_order_relaxed);
  if (on) start_locked();
  else stop_locked();
  os_unlock(&control);
  return 0;
}

void background_counts(uint64_t *threads, uint64_t *nruns, uint64_t *avg_interval_ns) {
  *threads = background_running();
  *nruns = atomic_load_explicit(&runs, memory_order_relaxed);
  *avg_interval_ns = *nruns ? atomic_load_explicit(&run_ns, memory_order_relaxed) / *nruns : 0;
}

/* The child of a fork has only the forking thread. */
void background_fork_child(void) {
  os_worker_fork_child();
  atomic_store_explicit(&control.locked, 0, memory_order_relaxed);
  atomic_store_explicit(&state, BG_OFF, memory_order_relaxed);
}
