/*
 * prof.c - the heap profiler's recorder: what is kept of a sample (its call
 * stack, in the table), when profiles are written (prof.dump, every
 * lg_prof_interval, at new peaks with prof.gdump, at exit with prof_final),
 * the leak summary, and jemalloc's controls around them.  Which
 * allocations are samples is prof_sample.c's; the samples live in
 * prof_table.c, the file format in prof_dump.c, stack capture in unwind.c,
 * the mallctl names in prof_ctl.c.
 *
 * A sample is recorded at the event its block ended (prof_event), on the
 * allocating thread, outside every allocator lock: a block sampled in a
 * heap behind a lock (an explicit arena's, or the heap that threads past
 * their exit share) waits in the thread's `pending` slot until the caller
 * released the lock (prof_record_pending).  Nothing here runs with prof:false.
 *
 * Stacks are captured with the re-entrancy guard `busy` set: an allocation
 * made by the unwinder itself (glibc's backtrace loading libgcc_s) is
 * recorded without a stack instead of recursing.  Before the library's
 * constructor ran (allocations of the dynamic loader and of libc's
 * start-up) samples have no stack either; both are counted (no_stack).
 * The unwinder is set up by the constructor when the options are read by
 * then, else by the first sample after it: the constructor never reads
 * the options itself, so a program may still set ALLOY_CONF before its
 * first malloc (tests do).
 *
 * The controls start as the options say and are changed by mallctl: each
 * is -1 ("as the option") until first set, so nothing needs initialising
 * before the first malloc.  The profiler's own locks (the prefix's here,
 * the table's, the unwinder's rule cache) are leaves.
 */
#include "prof.h"
#include "unwind.h"

#include <alloy.h>
#include <string.h>

static _Atomic(bool) started;                /* the constructor ran: libc is set up */
static _Atomic(int) unwinder;                /* 0 not set up, 1 being set up, 2 ready */
static const unwind_path_t *alloc_path;      /* what the unwinder cuts (prof_start) */
static _Atomic(int) thread_active_init = -1; /* prof.thread_active_init */
static _Atomic(int) gdump = -1;              /* prof.gdump */
static _Atomic(size_t) gdump_peak;           /* mapped bytes at the last gdump (0: none yet) */
static _Atomic(uint64_t) interval_next;      /* allocated bytes at the next interval profile */

static os_lock_t prefix_lock = OS_LOCK_INIT;
static char prefix[PROF_PREFIX_MAX]; /* prof.prefix, once set */
static bool prefix_set;
static _Atomic(uint64_t) dump_seq;    /* <seq> of every profile's name */
static _Atomic(uint64_t) kind_seq[3]; /* m, i, u */

/* Per thread.  `active` 0: not set yet (prof.thread_active_init decides). */
static __thread struct {
  uint8_t busy;
  uint8_t active;
  void *pending; /* sampled behind a lock, recorded once it is released */
} tls;

/* The frame given to a sample recorded without a call stack. */
NOINLINE void alloy_prof_no_stack(void) { __asm__ volatile(""); }

/* ------------------------------------------------------------ recording */

static bool thread_active(void) {
  if (unlikely(tls.active == 0)) tls.active = prof_thread_active_init_get() ? 1 : 2;
  return tls.active == 1;
}

/* Sets the unwinder up once libc is (a thread that finds another doing it
 * records its sample without a stack rather than wait inside malloc).
 * With `busy` set: backtrace()'s first call allocates. */
static bool stacks_ready(void) {
  int state = atomic_load_explicit(&unwinder, memory_order_acquire), idle = 0;
  if (likely(state == 2)) return true;
  if (!atomic_load_explicit(&started, memory_order_acquire) ||
      !atomic_compare_exchange_strong(&unwinder, &idle, 1))
    return false;
  unwind_init((unwind_method_t)alloy__options.prof_unwind, alloc_path);
  atomic_store_explicit(&unwinder, 2, memory_order_release);
  return true;
}

/* Captures the stack and enters the sample; no allocator lock is held. */
static void record(const void *block) {
  page_t *page = segment_page_lookup(block);
  if (page == NULL) return;
  uintptr_t frames[PROF_DEPTH_MAX];
  int n = 0;
  if (!tls.busy) {
    tls.busy = 1;
    if (stacks_ready()) n = unwind_capture(frames, PROF_DEPTH_MAX);
    tls.busy = 0;
  }
  if (n == 0) {
    frames[0] = (uintptr_t)alloy_prof_no_stack + 1; /* the writer names the call, ret - 1 */
    n = 1;
    prof_table_count_no_stack();
  }
  prof_table_insert((uintptr_t)block, page, frames, (unsigned)n);
}

/* NOINLINE: an anchor the unwinder recognises (unwind.c). */
NOINLINE void prof_record_pending(void) {
  void *block = tls.pending;
  if (block == NULL) return;
  tls.pending = NULL;
  record(block);
}

static void auto_dumps(void);

/* NOINLINE: an anchor the unwinder recognises (unwind.c). */
NOINLINE void *prof_event(heap_t *heap, void *block, bool sampled) {
  if (sampled && prof_sample_active() && thread_active()) {
    if (heap->shared) tls.pending = block; /* under its lock: later */
    else record(block);
  }
  if (!heap->shared && !tls.busy && atomic_load_explicit(&started, memory_order_relaxed)) {
    tls.busy = 1;
    auto_dumps();
    tls.busy = 0;
  }
  return block;
}

/* A sample that grew moves to its new size's bucket (and address); and the
 * growth is sampled like an allocation of its bytes: when they contain the
 * caller's next sample point (its countdown went negative), the event runs
 * now and takes this block.  A block that reaches S bytes by growing is
 * then a sample with probability 1 - e^(-S/R), as one allocated at S bytes:
 * without this, blocks grown by realloc (CPython's and Redis's strings)
 * were under-counted, 3% of CPython's JSON workload.  The event keeps a
 * large or big block where it is (guarded sampling replaces class blocks
 * only).  NOINLINE: an anchor the unwinder recognises (unwind.c). */
NOINLINE void prof_resized(const void *from, const void *to) {
  page_t *page = segment_page_lookup(to);
  if (page == NULL) return;
  if (page->prof_samples != 0) prof_table_resize((uintptr_t)from, (uintptr_t)to, page);
  heap_t *heap = heap_resize_counter();
  if (heap && heap->event_countdown < 0) event_run(heap, (void *)(uintptr_t)to);
}

static bool block_of_heap(uintptr_t addr, const void *arg) {
  const heap_t *heap = arg;
  page_t *page = segment_page_lookup((void *)addr);
  if (page == NULL) return false;
  if (page->kind >= PAGE_LARGE) return page->arena != 0 && page->arena == heap->arena_index;
  return page_heap(page) == heap;
}

void prof_forget_heap(const heap_t *heap) { prof_table_forget(block_of_heap, heap); }

/* ----------------------------------------------------------- file names */

/* "<prefix>.<pid>.<seq>.<kind><kseq>.heap" ('f': no kseq) into buf; false
 * when the prefix is empty (automatic profiles off). */
static bool dump_name(char *buf, size_t cap, char kind) {
  char pre[PROF_PREFIX_MAX];
  os_lock(&prefix_lock);
  memcpy(pre, prefix_set ? prefix : alloy__options.prof_prefix, sizeof pre);
  os_unlock(&prefix_lock);
  if (pre[0] == 0) return false;
  unsigned long long seq = atomic_fetch_add(&dump_seq, 1);
  size_t n;
  if (kind == 'f') {
    n = fmt_format(buf, cap, "%s.%d.%llu.f.heap", pre, os_getpid(), seq);
  } else {
    unsigned k = kind == 'm' ? 0 : kind == 'i' ? 1 : 2;
    unsigned long long kseq = atomic_fetch_add(&kind_seq[k], 1);
    n = fmt_format(buf, cap, "%s.%d.%llu.%c%llu.heap", pre, os_getpid(), seq, kind, kseq);
  }
  return n < cap;
}

static bool dump_now(const char *path) { return prof_dump_write(path, prof_sample_lg(), alloy__options.prof_accum); }

static void dump_auto(char kind) {
  char path[PROF_PREFIX_MAX + 64];
  if (dump_name(path, sizeof path, kind)) dump_now(path);
}

/* Interval profiles (every 2^lg_prof_interval bytes allocated,
 * process-wide, as folded at events) and gdump (every new peak of memory
 * mapped from the OS).  At a thread heap's event: no allocator lock is
 * held. */
static void auto_dumps(void) {
  if (alloy__options.lg_prof_interval >= 0) {
    uint64_t step = UINT64_C(1) << alloy__options.lg_prof_interval, total = stats_allocated_total();
    uint64_t next = atomic_load_explicit(&interval_next, memory_order_relaxed);
    if (next == 0) { /* the first event: the count starts here */
      atomic_compare_exchange_strong(&interval_next, &next, (total / step + 1) * step);
    } else if (total >= next && atomic_compare_exchange_strong(&interval_next, &next, (total / step + 1) * step)) {
      dump_auto('i');
    }
  }
  if (prof_gdump_get()) {
    size_t peak = os_mapped_peak(), last = atomic_load_explicit(&gdump_peak, memory_order_relaxed);
    if (last == 0) atomic_compare_exchange_strong(&gdump_peak, &last, peak); /* the first: the peak so far */
    else if (peak > last && atomic_compare_exchange_strong(&gdump_peak, &last, peak)) dump_auto('u');
  }
}

/* ------------------------------------------------------------- controls */

/* A change of rate or of prof.active takes effect in the calling thread at
 * once (its heap draws again now); in other threads at their next event. */
static void rearm_caller(void) {
  heap_t *heap = heap_home();
  if (!heap_is_sentinel(heap)) stats_fold(heap);
}

void prof_active_set(bool on) {
  prof_sample_set_active(on);
  rearm_caller();
}

bool prof_thread_active_get(void) { return thread_active(); }
void prof_thread_active_set(bool on) { tls.active = on ? 1 : 2; }

bool prof_thread_active_init_get(void) {
  int v = atomic_load_explicit(&thread_active_init, memory_order_relaxed);
  return v < 0 ? alloy__options.prof_thread_active_init : v != 0;
}
void prof_thread_active_init_set(bool on) { atomic_store(&thread_active_init, on); }

bool prof_gdump_get(void) {
  int v = atomic_load_explicit(&gdump, memory_order_relaxed);
  return v < 0 ? alloy__options.prof_gdump : v != 0;
}

/* Switched on, it dumps at the next peak above today's. */
void prof_gdump_set(bool on) {
  if (on && !prof_gdump_get()) atomic_store(&gdump_peak, os_mapped_peak());
  atomic_store(&gdump, on);
}

uint64_t prof_interval(void) {
  int lg = alloy__options.lg_prof_interval;
  return lg < 0 ? 0 : UINT64_C(1) << lg;
}

/* prof.reset: forget every sample (and cumulative count), sample at the new
 * rate from now on. */
void prof_reset(unsigned lg) {
  prof_table_reset();
  prof_sample_restart(lg);
  rearm_caller();
}

bool prof_prefix_set(const char *p) {
  size_t n = strnlen(p, PROF_PREFIX_MAX);
  if (n == PROF_PREFIX_MAX) return false;
  os_lock(&prefix_lock);
  memcpy(prefix, p, n + 1);
  prefix_set = true;
  os_unlock(&prefix_lock);
  return true;
}

bool prof_dump_manual(const char *path) {
  char name[PROF_PREFIX_MAX + 64];
  if (path == NULL) {
    if (!dump_name(name, sizeof name, 'm')) return false;
    path = name;
  }
  return dump_now(path);
}

/* ------------------------------------------------- start, fork and exit */

/* From the library's constructor (init.c): libc is set up by then, so the
 * unwinder can be warmed up (backtrace() loads libgcc_s, which mallocs),
 * here if the options say to, else at the first sample. */
void prof_start(const unwind_path_t *path) {
  alloc_path = path;
  atomic_store_explicit(&started, true, memory_order_release);
  if (atomic_load_explicit(&alloy__process_ready, memory_order_acquire) != 2 || !alloy__options.prof) return;
  tls.busy = 1;
  stacks_ready();
  tls.busy = 0;
}

void prof_fork_prepare(void) {
  os_lock(&prefix_lock);
  prof_table_fork_prepare();
  unwind_fork_prepare();
}

void prof_fork_release(void) {
  unwind_fork_release();
  prof_table_fork_release();
  os_unlock(&prefix_lock);
}

typedef struct {
  double bytes, blocks;
  uint64_t samples;
  uint64_t rate;
} leak_sum_t;

static void leak_add(const prof_bucket_t *b, void *arg) {
  leak_sum_t *s = arg;
  double w = prof_weight(b->size, s->rate);
  s->samples += b->live;
  s->blocks += (double)b->live * w;
  s->bytes += (double)(b->live * b->size) * w;
}

/* jemalloc's leak summary: what is still allocated at exit, estimated from
 * the samples (unbiased), and where the profile with the call stacks is.
 * True when something is. */
static bool leak_summary(const char *path) {
  leak_sum_t s = {0, 0, 0, UINT64_C(1) << prof_sample_lg()};
  prof_table_visit(false, leak_add, &s);
  prof_table_stats_t st;
  prof_table_stats(&st);
  unsigned long long bytes = (unsigned long long)(s.bytes + 0.5);
  if (s.samples == 0) {
    report_message("alloy: leak summary: no sampled block is still allocated at exit "
                   "(1 sample per %llu bytes allocated)", (unsigned long long)s.rate);
  } else {
    report_message("alloy: leak summary: ~%llu bytes (%llu.%llu MiB) in ~%llu blocks still "
                   "allocated at exit, estimated from %llu samples in %llu call stacks "
                   "(1 sample per %llu bytes allocated)",
                   bytes, bytes / ALLOY_MiB, bytes % ALLOY_MiB * 10 / ALLOY_MiB,
                   (unsigned long long)(s.blocks + 0.5), (unsigned long long)s.samples,
                   (unsigned long long)st.stacks, (unsigned long long)s.rate);
  }
  if (path) report_message("alloy: leak profile: %s (read it with alloy flame, jeprof or google-pprof)", path);
  if (st.dropped) report_message("alloy: %llu samples were dropped (profiler tables full)", (unsigned long long)st.dropped);
  return s.samples != 0;
}

/* From the library's destructor (init.c), after the program's own atexit
 * handlers: the final profile (prof_final), and with prof_leak the leak
 * summary; prof_leak_error then ends the process with status 1 when
 * something leaked, as jemalloc's does. */
void prof_at_exit(void) {
  if (!atomic_load(&started) || !alloy__options.prof_final) return;
  char path[PROF_PREFIX_MAX + 64];
  tls.busy = 1;
  bool named = dump_name(path, sizeof path, 'f');
  bool written = named && dump_now(path);
  if (!written && named) report_message("alloy: cannot write the final heap profile %s", path);
  if (alloy__options.prof_leak || alloy__options.prof_leak_error) {
    bool leaked = leak_summary(written ? path : NULL);
    if (leaked && alloy__options.prof_leak_error) os_exit(1);
  }
  tls.busy = 0;
}
