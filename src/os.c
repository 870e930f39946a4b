/*
 * os.c - the platform layer: every call alloy makes to the operating system
 * goes through the functions here (mapping, purging, randomness, environment,
 * output, locks), so a port to FreeBSD, macOS or another architecture touches
 * this file only.  Nothing here allocates with malloc, and nothing here knows
 * about segments or heaps.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static size_t page_size;
static _Atomic(size_t) mapped_bytes;
static _Atomic(size_t) mapped_peak;
static _Atomic(long) fail_after = -1; /* test hook: <0 never fails */
static _Atomic(uintptr_t) aligned_hint;

size_t os_page_size(void) {
  if (unlikely(page_size == 0)) {
    unsigned long ps = getauxval(AT_PAGESZ); /* read, never assumed: ARM64 has 16/64 KiB */
    page_size = ps ? (size_t)ps : 4096;
  }
  return page_size;
}

void os_init(void) { (void)os_page_size(); }

static void mapped_add(size_t n) {
  size_t now = atomic_fetch_add_explicit(&mapped_bytes, n, memory_order_relaxed) + n;
  size_t peak = atomic_load_explicit(&mapped_peak, memory_order_relaxed);
  while (now > peak &&
         !atomic_compare_exchange_weak_explicit(&mapped_peak, &peak, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

size_t os_mapped_bytes(void) { return atomic_load_explicit(&mapped_bytes, memory_order_relaxed); }
size_t os_mapped_peak(void) { return atomic_load_explicit(&mapped_peak, memory_order_relaxed); }

void os_set_fail_after(long n) { atomic_store(&fail_after, n); }

/* The test hook: returns true when this mapping must fail. */
static bool injected_failure(void) {
  long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
  if (likely(n < 0)) return false;
  if (n == 0) return true; /* keeps failing until reset to -1 */
  atomic_fetch_sub(&fail_after, 1);
  return false;
}

/* Without MAP_NORESERVE: the kernel then applies its overcommit policy to
 * every mapping, so a request it would never commit (under the default
 * heuristic, one above RAM + swap) fails here with ENOMEM instead of
 * succeeding and feeding the OOM killer later (malloc(64 GiB) on a 24 GiB
 * machine returned a pointer before).  Pages are still only charged to RSS
 * when touched; with overcommit_memory=1 nothing changes. */
static void *map_raw(void *hint, size_t size) {
  if (injected_failure()) return NULL;
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void *os_map(size_t size) {
  void *p = map_raw(NULL, size);
  if (p) mapped_add(size);
  return p;
}

bool os_unmap(void *p, size_t size) {
  if (munmap(p, size) != 0) return false;
  atomic_fetch_sub_explicit(&mapped_bytes, size, memory_order_relaxed);
  return true;
}

/* Maps `size` bytes aligned to `align` (a power of two >= the OS page).
 * First tries an exact-size mapping at a hint just past the last aligned
 * mapping (usually free, no trimming), then over-maps and trims. */
void *os_map_aligned(size_t size, size_t align, size_t *mapped) {
  uintptr_t hint = atomic_load_explicit(&aligned_hint, memory_order_relaxed);
  if (hint != 0) {
    uint8_t *p = map_raw((void *)hint, size);
    if (p && ((uintptr_t)p & (align - 1)) == 0) {
      atomic_store_explicit(&aligned_hint, (uintptr_t)p + size + ((align - size % align) % align),
                            memory_order_relaxed);
      mapped_add(size);
      *mapped = size;
      return p;
    }
    if (p) munmap(p, size);
  }
  if (size + align < size) return NULL;
  uint8_t *raw = map_raw(NULL, size + align);
  if (!raw) return NULL;
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  size_t before = (size_t)(p - raw), after = align - before;
  if (before) munmap(raw, before);
  if (after) munmap(p + size, after);
  atomic_store_explicit(&aligned_hint, (uintptr_t)p + size + ((align - size % align) % align),
                        memory_order_relaxed);
  mapped_add(size);
  *mapped = size;
  return p;
}

/* Grows or shrinks a mapping where it stands (never moves it: callers rely
 * on its alignment).  False when the address space after it is taken. */
bool os_remap_in_place(void *p, size_t old_size, size_t new_size) {
  if (new_size > old_size && injected_failure()) return false;
  if (mremap(p, old_size, new_size, 0) == MAP_FAILED) return false;
  if (new_size > old_size) mapped_add(new_size - old_size);
  else atomic_fetch_sub_explicit(&mapped_bytes, old_size - new_size, memory_order_relaxed);
  return true;
}

/* Moves a mapping to a new place aligned to `align` and grows it there, in
 * one mremap: its pages move with their contents (page tables, no copy, no
 * fault), only the growth is fresh.  Returns the new address, or NULL with
 * the old mapping untouched. */
void *os_remap_move(void *p, size_t old_size, size_t new_size, size_t align) {
  size_t mapped = 0;
  void *target = os_map_aligned(new_size, align, &mapped); /* reserves the aligned range */
  if (target == NULL) return NULL;
  if (mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) {
    os_unmap(target, mapped);
    return NULL;
  }
  atomic_fetch_sub_explicit(&mapped_bytes, old_size, memory_order_relaxed); /* p's range is gone */
  return target;
}

/* Makes a range inaccessible (guard pages, freed sampled blocks) or
 * accessible again. */
void os_protect(void *p, size_t size, bool accessible) {
  mprotect(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
}

/* Gives the pages back while keeping the range mapped: MADV_DONTNEED drops
 * them from RSS at once (MADV_FREE would leave them counted until memory
 * pressure, which monitoring reads as a leak). */
static _Atomic(uint64_t) purged_bytes;
static _Atomic(uint64_t) purge_calls;

/* purge:free uses MADV_FREE (the kernel takes the pages only under memory
 * pressure, so RSS does not drop at once); otherwise, or where the kernel
 * lacks it, MADV_DONTNEED. */
void os_purge(void *p, size_t size) {
  if (alloy__options.purge != PURGE_FREE || madvise(p, size, MADV_FREE) != 0)
    madvise(p, size, MADV_DONTNEED);
  atomic_fetch_add_explicit(&purged_bytes, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&purge_calls, 1, memory_order_relaxed);
}

void os_purge_counts(uint64_t *bytes, uint64_t *calls) {
  *bytes = atomic_load_explicit(&purged_bytes, memory_order_relaxed);
  *calls = atomic_load_explicit(&purge_calls, memory_order_relaxed);
}

/* thp:always / thp:never for a segment (2 MiB-aligned halves of 4 MiB). */
void os_advise_huge(void *p, size_t size, bool huge) {
  madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

void os_write(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

void os_abort(void) {
  abort();
}

uint64_t os_random(void) {
  uint64_t r = 0;
  if (syscall(SYS_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */) == (long)sizeof r) return r;
  /* Early boot without entropy: mix what differs between processes. */
  uint64_t t = (uint64_t)__builtin_ia32_rdtsc();
  r = t ^ ((uint64_t)(uintptr_t)&r << 17) ^ ((uint64_t)getpid() << 40);
  r ^= r >> 33;
  r *= 0xff51afd7ed558ccdULL;
  r ^= r >> 33;
  return r;
}

/* getenv() without libc: environ can be read before libc's own init. */
const char *os_getenv(const char *name) {
  if (!environ) return NULL;
  size_t n = strlen(name);
  for (char **e = environ; *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

int os_getpid(void) { return (int)getpid(); }

/* A set-user-ID or set-group-ID program (or one with file capabilities):
 * its environment comes from a less privileged user. */
bool os_secure_exec(void) { return getauxval(AT_SECURE) != 0; }

static uint64_t (*_Atomic clock_hook)(void);

void os_set_clock(uint64_t (*now_ms)(void)) { atomic_store(&clock_hook, now_ms); }

uint64_t os_now_ms(void) {
  uint64_t (*hook)(void) = atomic_load_explicit(&clock_hook, memory_order_relaxed);
  if (unlikely(hook != NULL)) return hook();
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void os_yield(void) { sched_yield(); }

/* A test-and-test-and-set lock: held only for short list operations on slow
 * paths (abandoned heaps, the heap registry, metadata).  pthread_mutex would
 * do too, but this one is usable before libpthread's initialisation and
 * trivially reset in a fork child. */
void (*alloy__test_hook)(int point, const void *obj);

void os_lock(os_lock_t *l) {
  for (;;) {
    if (!atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) break;
    while (atomic_load_explicit(&l->locked, memory_order_relaxed)) os_yield();
  }
  os_test_point(TEST_LOCK_TAKEN, l);
}

bool os_trylock(os_lock_t *l) {
  return !atomic_load_explicit(&l->locked, memory_order_relaxed) &&
         !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}

void os_unlock(os_lock_t *l) { atomic_store_explicit(&l->locked, 0, memory_order_release); }

/* Metadata that lives for the whole process (heap structures): bump-allocated
 * from 64 KiB mappings. */
static os_lock_t meta_lock = OS_LOCK_INIT;
static uint8_t *meta_cur, *meta_end;

static _Atomic(size_t) meta_bytes; /* mapped for os_meta_alloc: never returned */
size_t os_meta_bytes(void) { return atomic_load_explicit(&meta_bytes, memory_order_relaxed); }

void *os_meta_alloc(size_t size) {
  size = (size + 63) & ~(size_t)63;
  os_lock(&meta_lock);
  if ((size_t)(meta_end - meta_cur) < size) {
    size_t chunk = size > 64 * ALLOY_KiB ? size : 64 * ALLOY_KiB;
    uint8_t *p = map_raw(NULL, chunk);
    if (!p) {
      os_unlock(&meta_lock);
      return NULL;
    }
    mapped_add(chunk);
    atomic_fetch_add_explicit(&meta_bytes, chunk, memory_order_relaxed);
    meta_cur = p;
    meta_end = p + chunk;
  }
  void *r = meta_cur;
  meta_cur += size;
  os_unlock(&meta_lock);
  return r;
}

/* fork: the metadata lock is held across fork so the child never inherits it
 * taken by a thread that does not exist there. */
void os_fork_prepare(void) { os_lock(&meta_lock); }
void os_fork_parent(void) { os_unlock(&meta_lock); }
void os_fork_child(void) { os_unlock(&meta_lock); }
