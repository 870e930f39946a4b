/*
 * os.h - the platform contract: everything alloy asks of the operating
 * system and of the dynamic loader, in 49 functions.  src/os_linux.c
 * implements it for Linux (x86-64 and ARM64), with src/os_rseq_linux.c for
 * the restartable sequences of the per-CPU caches; a port to FreeBSD or
 * macOS adds one file that implements this header and touches nothing else.
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
/* Bits of a user-space address: the size of alloy's page map depends on
 * it.  x86-64 Linux with 4-level page tables maps user space below 2^47
 * (5-level tables hand out higher addresses only to mmap hints above it,
 * which alloy never gives); ARM64 Linux with 48-bit virtual addresses maps
 * up to 2^48. */
#if defined(__aarch64__)
#define OS_ADDRESS_BITS 48
#else
#define OS_ADDRESS_BITS 47
#endif

/* ------------------------------------------------------------ memory */
/* Read-write anonymous memory aligned to `align` (a power of two, at least
 * the OS page); *mapped receives the bytes mapped.  Counted as mapped. */
void *os_map_aligned(size_t size, size_t align, size_t *mapped);
bool os_unmap(void *p, size_t size);
/* Read-write anonymous memory at exactly `addr` (OS-page aligned) when
 * nothing is mapped there, else NULL; never replaces a mapping.  Counted
 * as mapped. */
void *os_map_at(void *addr, size_t size);
bool os_remap_in_place(void *p, size_t old_size, size_t new_size);
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
void os_write(int fd, const char *s, size_t n); /* all of it, errors ignored (reports) */
__attribute__((noreturn)) void os_abort(void);
__attribute__((noreturn)) void os_exit(int status); /* at once: no atexit handlers, no destructors */
uint64_t os_random(void);
const char *os_getenv(const char *name); /* without libc's getenv */
bool os_secure_exec(void);               /* set-user-ID and the like: ignore the environment */
int os_getpid(void);
uint64_t os_now_ms(void);                /* monotonic */
void os_set_clock(uint64_t (*now_ms)(void)); /* test hook: a fake clock (NULL: the real one) */
void os_yield(void);
/* Threads: the calling thread's id, the CPU time a thread of this process
 * has used so far (UINT64_MAX when unknown: no such thread, or no way to
 * ask), and whether it is blocked now.  A thread blocked now that used no
 * CPU time for a while waits (heap.c, idle owners); one merely waiting for
 * a CPU is ready to run. */
uint64_t os_thread_id(void);
uint64_t os_thread_cpu_ns(uint64_t thread_id);
/* 1: the thread of this process is blocked (asleep in a wait), 0: running
 * or ready to run, -1: unknown. */
int os_thread_waiting(uint64_t thread_id);

/* ------------------------------------------------------------ files */
/* For the heap profiler's profiles (prof_dump.c).  os_file_create opens
 * `path` for writing, created (mode 0644) or truncated; -1 when it cannot. */
int os_file_create(const char *path);
bool os_file_write(int fd, const void *buf, size_t n); /* all of it; false on an error */
bool os_file_close(int fd);                            /* false: written data may be lost */
/* Appends the process's memory mappings to fd in the text of Linux's
 * /proc/self/maps (start-end perms offset dev inode path), the
 * MAPPED_LIBRARIES section that jeprof and pprof read to find the files
 * behind code addresses. */
bool os_file_write_mappings(int fd);

/* ----------------------------------------------------- code objects */
/* What the heap profiler's stack unwinder (unwind.c) asks of the dynamic
 * loader.  None of these allocates or takes a lock of the loader's but
 * os_backtrace's first call. */
typedef struct {
  uintptr_t start, end;        /* the object's mapped range */
  const uint8_t *eh_frame_hdr; /* its DWARF call-frame index (.eh_frame_hdr), or NULL */
  const void *id;              /* the same for every address of one object */
} os_code_object_t;
/* The loaded object holding code address pc; false when there is none or
 * the loader cannot tell without a lock (glibc before 2.35). */
bool os_code_find(uintptr_t pc, os_code_object_t *out);
/* The id of the main executable's object, or NULL. */
const void *os_code_executable(void);
/* Changes when an object is unloaded: what was learnt of a code address
 * stays true while it is the same. */
uint64_t os_code_generation(void);
/* Fork handlers: no thread of alloy's is inside the loader's lock at a
 * fork (os_code_generation's call), and the child's first call cannot
 * wait on a lock held by a thread that does not exist there. */
void os_code_fork_prepare(void);
void os_code_fork_parent(void);
void os_code_fork_child(void);
/* The C library's own stack walk (glibc: backtrace(), libgcc's unwinder):
 * return addresses, innermost first.  Its first call loads libgcc_s, which
 * allocates: make it once where malloc may be called. */
int os_backtrace(void **pcs, int max);

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
 * a fork child.  Held only for short list operations on slow paths.  A
 * lock made with OS_LOCK_INIT_SPIN first spins about a microsecond before
 * it yields (os_linux.c says when that pays). */
typedef struct {
  _Atomic(int) locked;
  int spin; /* nonzero: spin before yielding */
} os_lock_t;
#define OS_LOCK_INIT {0, 0}
#define OS_LOCK_INIT_SPIN {0, 1}
void os_lock(os_lock_t *l);
bool os_trylock(os_lock_t *l);
void os_unlock(os_lock_t *l);
/* Fork's window: from the end of alloy's prepare handler, which took every
 * lock, to the start of its parent or child handler.  Other libraries'
 * fork handlers run in it (prepare handlers registered before alloy's run
 * after it, parent and child handlers registered before it run before
 * it), on the forking thread, and may allocate: that thread's os_lock of
 * a lock the prepare handler holds passes (it has everything to itself),
 * and its os_unlock of it leaves it held. */
void os_fork_window_open(void);
void os_fork_window_close(void);
bool os_in_fork_window(void); /* the caller is the thread in fork's window */

/* Test hook: a test may pause a thread at these points (every lock just
 * taken; see tests/unit/test_fork.c) and fork there, or count them (the
 * idle scan's looks at a thread's CPU clock, obj its heap:
 * tests/unit/test_thread_churn.c).  NULL in programs: one load and a
 * branch, on slow paths only. */
enum { TEST_LOCK_TAKEN, TEST_IDLE_LOOK };
extern void (*alloy__test_hook)(int point, const void *obj);

#endif /* ALLOY_OS_H */
