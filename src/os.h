/*
 * os.h - the platform contract: everything alloy asks of the operating
 * system, in about thirty-five functions.  src/os_linux.c implements it for
 * Linux (x86-64 and ARM64), with src/os_rseq_linux.c for the restartable
 * sequences of the per-CPU caches; a port to FreeBSD or macOS adds one file that
 * implements this header and touches nothing else.
 *
 * Rules for an implementation: never call malloc (alloy may be serving it);
 * be usable before the C library's own initialisation (the dynamic loader's
 * first malloc) and in a fork child; report failure by returning NULL or
 * false, never by aborting, except os_abort.  Nothing here knows about
 * segments, pages or heaps.
 */
#ifndef ALLOY_OS_H
#define ALLOY_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------- machine */
size_t os_page_size(void);     /* read at start-up: 4, 16 or 64 KiB pages */
void os_init(void);
/* Bits of a user-space address (47 on x86-64 and ARM64 with 4-level page
 * tables): the size of alloy's page map depends on it. */
#define OS_ADDRESS_BITS 47

/* ------------------------------------------------------------ memory */
/* Read-write anonymous memory aligned to `align` (a power of two, at least
 * the OS page); *mapped receives the bytes mapped.  Counted as mapped. */
void *os_map_aligned(size_t size, size_t align, size_t *mapped);
bool os_unmap(void *p, size_t size);
/* Maps [p, p + size) fresh at exactly that address if nothing else is
 * there (growing a region in place). */
bool os_map_at(void *p, size_t size);
bool os_remap_in_place(void *p, size_t old_size, size_t new_size);
/* Moves a mapping with its pages (no copy, no fault) to a new place aligned
 * to `align`, grown to new_size; NULL and the old mapping intact on failure. */
void *os_remap_move(void *p, size_t old_size, size_t new_size, size_t align);
/* Moves [from, from + size) onto [to, to + size), which is mapped: the
 * pages go with it, `from` is left unmapped. */
bool os_remap_onto(void *from, void *to, size_t size);
void os_protect(void *p, size_t size, bool accessible);
/* Gives pages back to the OS, keeping the range mapped (zero when touched
 * again, or unchanged with `lazy`: MADV_FREE). */
void os_purge(void *p, size_t size, bool lazy);
void os_purge_counts(uint64_t *bytes, uint64_t *calls);
void os_advise_huge(void *p, size_t size, bool huge); /* transparent huge pages */
size_t os_mapped_bytes(void);
size_t os_mapped_peak(void);
void os_set_fail_after(long n); /* test hook: mappings fail after n more succeed (-1: never) */
void os_set_fail_count(long n); /* test hook: the next n mappings fail, then they succeed again */

/* -------------------------------------------------------- process */
void os_write(int fd, const char *s, size_t n);
__attribute__((noreturn)) void os_abort(void);
uint64_t os_random(void);
const char *os_getenv(const char *name); /* without libc's getenv */
bool os_secure_exec(void);               /* set-user-ID and the like: ignore the environment */
int os_getpid(void);
uint64_t os_now_ms(void);                /* monotonic */
void os_set_clock(uint64_t (*now_ms)(void)); /* test hook: a fake clock (NULL: the real one) */
void os_yield(void);
void os_sleep_ms(unsigned ms);

/* ---------------------------------------------------------- threads */
/* A per-thread value whose destructor runs at thread exit (once per
 * os_thread_key_set after it); the key is created on the first call. */
void os_thread_key_set(void (*destructor)(void *), void *value);
void os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
/* One background worker thread at a time, started with every signal
 * blocked; it calls os_worker_sleep between passes, which returns false
 * once os_worker_stop asked it to end (os_worker_stop waits for that). */
bool os_worker_start(void (*run)(void));
bool os_worker_sleep(unsigned ms);
void os_worker_stop(void);
void os_worker_fork_child(void); /* the child has no worker */

/* ------------------------------------------------ restartable sequences */
/* (src/os_rseq_linux.c) Who registered the calling thread's rseq area with
 * the kernel: glibc (2.35 and later, unless glibc.pthread.rseq=0), alloy
 * itself (when glibc did not), or nobody (no kernel support, refused by
 * seccomp, ...: per-CPU caches are then off). */
typedef enum { OS_RSEQ_NONE, OS_RSEQ_GLIBC, OS_RSEQ_OWN } os_rseq_owner_t;
typedef struct {
  int owner;             /* os_rseq_owner_t */
  intptr_t offset;       /* the area's offset from the thread pointer, the same in every thread */
  unsigned feature_size; /* what the kernel fills (AT_RSEQ_FEATURE_SIZE; 20 before Linux 6.3) */
  int error;             /* OS_RSEQ_NONE: the errno of the refused registration */
} os_rseq_info_t;
/* Finds the calling thread's area, registering alloy's own with `sig` when
 * glibc did not register one (process start). */
void os_rseq_probe(os_rseq_info_t *info, uint32_t sig);
/* The calling thread's area is registered (OS_RSEQ_OWN: registers it now);
 * false when it cannot be. */
bool os_rseq_thread_ready(const os_rseq_info_t *info, uint32_t sig);
/* Aborts every restartable sequence of the process running or preempted
 * now (membarrier, expedited, rseq); false when the kernel refuses. */
bool os_rseq_fence(void);
unsigned os_cpus_possible(void); /* bound on CPU numbers and concurrency ids */
unsigned os_cpus_allowed(void);  /* CPUs the process may run on now */

/* ------------------------------------------------------------ locks */
/* A spin lock that yields: usable before libpthread is, trivially reset in
 * a fork child.  Held only for short list operations on slow paths. */
typedef struct {
  _Atomic(int) locked;
} os_lock_t;
#define OS_LOCK_INIT {0}
void os_lock(os_lock_t *l);
bool os_trylock(os_lock_t *l);
void os_unlock(os_lock_t *l);

/* Test hook: a test may pause a thread at these points (every lock just
 * taken; see tests/unit/test_fork.c) and fork there.  NULL in programs:
 * one load and a branch, on slow paths only. */
enum { TEST_LOCK_TAKEN };
extern void (*alloy__test_hook)(int point, const void *obj);

#endif /* ALLOY_OS_H */
