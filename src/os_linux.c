/*
 * os_linux.c - the platform contract (os.h) on Linux, x86-64 and ARM64:
 * mappings, purging, randomness, the environment, output and files, time,
 * thread keys, fork handlers, the background worker thread, the spin lock,
 * and what the stack unwinder asks of glibc's dynamic loader.  Never calls
 * malloc (os_backtrace's first call aside: see os.h); usable from the
 * dynamic loader's first malloc on.
 */
#include "os.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define unlikely(x) __builtin_expect(!!(x), 0)

extern char **environ;

static size_t page_size;
static _Atomic(size_t) mapped_bytes;
static _Atomic(size_t) mapped_peak;
static _Atomic(long) fail_after = -1; /* test hook: <0 never fails */
static _Atomic(long) fail_count;      /* test hook: the next this many mappings fail */
static _Atomic(uintptr_t) aligned_hint;

size_t os_page_size(void) {
  if (unlikely(page_size == 0)) {
    unsigned long ps = getauxval(AT_PAGESZ); /* read, never assumed: ARM64 has 16/64 KiB */
    page_size = ps ? (size_t)ps : 4096;
  }
  return page_size;
}

void os_init(void) { (void)os_page_size(); }

/* ---------------------------------------------------------------- memory */

static void mapped_add(size_t n) {
  size_t now = atomic_fetch_add_explicit(&mapped_bytes, n, memory_order_relaxed) + n;
  size_t peak = atomic_load_explicit(&mapped_peak, memory_order_relaxed);
  while (now > peak &&
         !atomic_compare_exchange_weak_explicit(&mapped_peak, &peak, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static void mapped_sub(size_t n) { atomic_fetch_sub_explicit(&mapped_bytes, n, memory_order_relaxed); }

size_t os_mapped_bytes(void) { return atomic_load_explicit(&mapped_bytes, memory_order_relaxed); }
size_t os_mapped_peak(void) { return atomic_load_explicit(&mapped_peak, memory_order_relaxed); }

void os_set_fail_after(long n) { atomic_store(&fail_after, n); }
void os_set_fail_count(long n) { atomic_store(&fail_count, n); }

/* A test is injecting mapping failures. */
static bool failure_armed(void) {
  return atomic_load_explicit(&fail_count, memory_order_relaxed) > 0 ||
         atomic_load_explicit(&fail_after, memory_order_relaxed) >= 0;
}

/* The test hooks: returns true when this mapping must fail. */
static bool injected_failure(void) {
  if (unlikely(atomic_load_explicit(&fail_count, memory_order_relaxed) > 0) &&
      atomic_fetch_sub(&fail_count, 1) > 0)
    return true;
  long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
  if (__builtin_expect(n < 0, 1)) return false;
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
static void *map_raw(void *hint, size_t size, int extra_flags) {
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

bool os_unmap(void *p, size_t size) {
  if (munmap(p, size) != 0) return false;
  mapped_sub(size);
  return true;
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Kernels before 4.17 take MAP_FIXED_NOREPLACE as a hint: a mapping
 * elsewhere is undone.  While a test injects failures this optional
 * mapping always fails, without using up the count: the tests count the
 * mappings a request must make (test_segment's retained runs given back
 * when mapping fails). */
void *os_map_at(void *addr, size_t size) {
  if (failure_armed()) return NULL;
  uint8_t *p = map_raw(addr, size, MAP_FIXED_NOREPLACE);
  if (p == NULL) return NULL;
  if (p != addr) {
    munmap(p, size);
    return NULL;
  }
  mapped_add(size);
  return p;
}

/* First tries an exact-size mapping at a hint just past the last aligned
 * mapping (usually free, no trimming), then over-maps and trims. */
void *os_map_aligned(size_t size, size_t align, size_t *mapped) {
  if (injected_failure()) return NULL;
  uintptr_t hint = atomic_load_explicit(&aligned_hint, memory_order_relaxed);
  if (hint != 0) {
    uint8_t *p = map_raw((void *)hint, size, 0);
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
  uint8_t *raw = map_raw(NULL, size + align, 0);
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
  else mapped_sub(old_size - new_size);
  return true;
}

bool os_remap_onto(void *from, void *to, size_t size) {
  if (mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED) return false;
  mapped_sub(size); /* `to` was counted already; `from` is gone */
  return true;
}

void os_protect(void *p, size_t size, bool accessible) {
  mprotect(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
}

static _Atomic(uint64_t) purged_bytes;
static _Atomic(uint64_t) purge_calls;

/* MADV_DONTNEED drops pages from RSS at once; MADV_FREE (lazy) leaves them
 * counted until memory pressure, which monitoring reads as a leak, and is
 * used only when asked for (purge:free), falling back where the kernel
 * lacks it. */
void os_purge(void *p, size_t size, bool lazy) {
  if (!lazy || madvise(p, size, MADV_FREE) != 0) madvise(p, size, MADV_DONTNEED);
  atomic_fetch_add_explicit(&purged_bytes, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&purge_calls, 1, memory_order_relaxed);
}

void os_purge_counts(uint64_t *bytes, uint64_t *calls) {
  *bytes = atomic_load_explicit(&purged_bytes, memory_order_relaxed);
  *calls = atomic_load_explicit(&purge_calls, memory_order_relaxed);
}

void os_advise_huge(void *p, size_t size, bool huge) {
  madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

/* --------------------------------------------------------------- process */

void os_write(int fd, const char *s, size_t n) { (void)os_file_write(fd, s, n); }

void os_abort(void) { abort(); }

void os_exit(int status) { _exit(status); }

/* Early boot without entropy: mix what differs between processes and runs
 * (the clock's nanoseconds, an address randomised by ASLR, the pid). */
uint64_t os_random(void) {
  uint64_t r = 0;
  if (syscall(SYS_getrandom, &r, sizeof r, 1 /* GRND_NONBLOCK */) == (long)sizeof r) return r;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  r = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)(uintptr_t)&r << 17) ^
      ((uint64_t)getpid() << 40);
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

/* A set-user-ID or set-group-ID program (or one with file capabilities):
 * its environment comes from a less privileged user. */
bool os_secure_exec(void) { return getauxval(AT_SECURE) != 0; }

int os_getpid(void) { return (int)getpid(); }

static uint64_t (*_Atomic clock_hook)(void);

void os_set_clock(uint64_t (*now_ms)(void)) { atomic_store(&clock_hook, now_ms); }

uint64_t os_now_ms(void) {
  uint64_t (*hook)(void) = atomic_load_explicit(&clock_hook, memory_order_relaxed);
  if (unlikely(hook != NULL)) return hook();
  /* The coarse clock (a few ms of resolution, read from the vDSO without a
   * system call or a time-stamp read): decay needs no better. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void os_yield(void) { sched_yield(); }

uint64_t os_thread_id(void) { return (uint64_t)syscall(SYS_gettid); }

/* Linux's clock of one thread's CPU time: ~tid << 3 | CPUCLOCK_PERTHREAD
 * (4) | CPUCLOCK_SCHED (2), what glibc's pthread_getcpuclockid returns,
 * made from the id alone.  Both queries here run under alloy's locks, so
 * they make raw system calls: libc's open, read and close are cancellation
 * points (a pending pthread_cancel would unwind the thread with the lock
 * held) and may be interposed by a library that calls malloc.  errno is
 * left as it was. */
uint64_t os_thread_cpu_ns(uint64_t thread_id) {
  if (thread_id == 0 || thread_id >= (1u << 28)) return UINT64_MAX; /* ids stay below 2^22 (pid_max) */
  clockid_t clock = (clockid_t)((~(unsigned)thread_id << 3) | 6);
  struct timespec ts;
  int saved = errno;
  long r = syscall(SYS_clock_gettime, clock, &ts);
  errno = saved;
  if (r != 0) return UINT64_MAX;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The state letter of /proc/self/task/<id>/stat, after the command name's
 * closing parenthesis (a name may hold one): S (asleep in a wait), D (in
 * an uninterruptible wait), t or T (stopped) are blocked; R is running or
 * ready.  No /proc (a chroot, a sandbox): unknown. */
int os_thread_waiting(uint64_t thread_id) {
  char path[48] = "/proc/self/task/", digits[24];
  size_t n = 0, at = strlen(path);
  do digits[n++] = (char)('0' + thread_id % 10); while ((thread_id /= 10) != 0);
  while (n) path[at++] = digits[--n];
  memcpy(path + at, "/stat", 6);
  int saved = errno;
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  char buf[512];
  long got = fd < 0 ? -1 : syscall(SYS_read, (int)fd, buf, sizeof buf - 1);
  if (fd >= 0) syscall(SYS_close, (int)fd);
  errno = saved;
  if (got <= 0) return -1;
  buf[got] = 0;
  char *paren = strrchr(buf, ')');
  if (paren == NULL || paren[1] != ' ') return -1;
  char state = paren[2];
  return state == 'S' || state == 'D' || state == 't' || state == 'T' ? 1 : state == 'R' ? 0 : -1;
}

/* ----------------------------------------------------------------- files */

int os_file_create(const char *path) {
  int fd;
  do fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  while (fd < 0 && errno == EINTR);
  return fd;
}

bool os_file_write(int fd, const void *buf, size_t n) {
  const char *s = buf;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    s += w;
    n -= (size_t)w;
  }
  return true;
}

bool os_file_close(int fd) { return close(fd) == 0 || errno == EINTR; }

bool os_file_write_mappings(int fd) {
  int in;
  do in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  while (in < 0 && errno == EINTR);
  if (in < 0) return false;
  char buf[4096];
  bool ok = true;
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ok = r == 0;
      break;
    }
    if (!os_file_write(fd, buf, (size_t)r)) {
      ok = false;
      break;
    }
  }
  close(in);
  return ok;
}

/* ---------------------------------------------------------- code objects */

/* glibc 2.35 and later: a lock-free look-up of the object holding an
 * address, made for unwinders.  Weak: a library built here still loads
 * under an older glibc, where the unwinder then falls back to
 * os_backtrace. */
#ifdef DLFO_STRUCT_HAS_EH_DBASE
extern int _dl_find_object(void *address, struct dl_find_object *result) __attribute__((weak));

bool os_code_find(uintptr_t pc, os_code_object_t *out) {
  struct dl_find_object dlfo;
  if (_dl_find_object == NULL || _dl_find_object((void *)pc, &dlfo) != 0) return false;
  out->start = (uintptr_t)dlfo.dlfo_map_start;
  out->end = (uintptr_t)dlfo.dlfo_map_end;
  out->eh_frame_hdr = dlfo.dlfo_eh_frame;
  out->id = dlfo.dlfo_link_map;
  return true;
}
#else
bool os_code_find(uintptr_t pc, os_code_object_t *out) {
  (void)pc, (void)out;
  return false;
}
#endif

const void *os_code_executable(void) {
  os_code_object_t exe;
  uintptr_t entry = (uintptr_t)getauxval(AT_ENTRY);
  return entry != 0 && os_code_find(entry, &exe) ? exe.id : NULL;
}

/* dl_iterate_phdr's dlpi_subs: how many objects were ever unloaded. */
static int subs_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
    *(uint64_t *)arg = info->dlpi_subs;
  return 1;
}

/* dl_iterate_phdr holds the loader's lock, and glibc's fork does not take
 * it: a fork while another thread was inside left the child's first call
 * waiting for ever (the heap profiler reads the generation at each sample:
 * about one child in 500 of a program that samples in its threads).  The
 * same holds for backtrace() where libgcc finds frames with
 * dl_iterate_phdr (glibc before 2.35, GCC before 12).  So alloy's threads
 * are never inside either at a fork: the prepare handler raises
 * `code_forking` and waits until `code_inside` counts no thread but its
 * own; a thread that finds it raised does without (the last generation
 * seen, no stack).  A seq_cst pair: the handler sees the thread inside, or
 * the thread sees the fork.  `code_forking` counts forks, as glibc before
 * 2.28 ran concurrent forks' handlers at once; `code_depth` lets a fork
 * from a signal handler that interrupted this thread inside (or from the
 * callback) go through instead of waiting for itself.  Another library's
 * call in flight at a fork is beyond reach. */
static _Atomic(unsigned) code_inside;
static _Atomic(unsigned) code_forking;
static _Atomic(uint64_t) code_last_generation;
static __thread unsigned code_depth;

static bool code_enter(void) {
  atomic_fetch_add(&code_inside, 1);
  if (atomic_load(&code_forking) != 0) {
    atomic_fetch_sub(&code_inside, 1);
    return false;
  }
  code_depth++;
  return true;
}

static void code_leave(void) {
  code_depth--;
  atomic_fetch_sub(&code_inside, 1);
}

uint64_t os_code_generation(void) {
  if (!code_enter()) return atomic_load_explicit(&code_last_generation, memory_order_relaxed);
  uint64_t subs = 0;
  dl_iterate_phdr(subs_cb, &subs);
  atomic_store_explicit(&code_last_generation, subs, memory_order_relaxed);
  code_leave();
  return subs;
}

int os_backtrace(void **pcs, int max) {
  if (!code_enter()) return 0; /* a fork is under way: this sample has no stack */
  int n = backtrace(pcs, max);
  code_leave();
  return n;
}

/* Waits with sched_yield, then short sleeps: a forking thread of a higher
 * real-time priority on the same CPU would never let the one inside run. */
void os_code_fork_prepare(void) {
  atomic_fetch_add(&code_forking, 1);
  for (unsigned spins = 0; atomic_load(&code_inside) > code_depth; spins++) {
    if (spins < 64) {
      sched_yield();
    } else {
      struct timespec ts = {0, 50 * 1000};
      nanosleep(&ts, NULL);
    }
  }
}

void os_code_fork_parent(void) { atomic_fetch_sub(&code_forking, 1); }

/* Threads that were counted inside at the fork do not exist here, but for
 * this one, which leaves when its interrupted call returns. */
void os_code_fork_child(void) {
  atomic_store(&code_inside, code_depth);
  atomic_store(&code_forking, 0);
}

/* --------------------------------------------------------------- threads */

static pthread_key_t thread_key;
static void (*_Atomic thread_key_destructor)(void *);
/* pthread_once, not a lock of ours: glibc restarts a once-routine that a
 * fork interrupted in the child. */
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_key_init(void) {
  if (pthread_key_create(&thread_key, atomic_load(&thread_key_destructor)) != 0) {
    static const char msg[] = "alloy: cannot create the thread-exit key\n";
    os_write(2, msg, sizeof msg - 1);
    os_abort();
  }
}

void os_thread_key_set(void (*destructor)(void *), void *value) {
  atomic_store_explicit(&thread_key_destructor, destructor, memory_order_relaxed);
  pthread_once(&thread_key_once, thread_key_init);
  pthread_setspecific(thread_key, value);
}

void os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  pthread_atfork(prepare, parent, child);
}

static pthread_t worker;
static pthread_mutex_t worker_mutex = PTHREAD_MUTEX_INITIALIZER; /* with worker_wake: the sleep */
static pthread_cond_t worker_wake;                                /* on CLOCK_MONOTONIC */
static bool worker_stopping;
static void (*worker_run)(void);

static void *worker_main(void *arg) {
  (void)arg;
  worker_run();
  return NULL;
}

bool os_worker_start(void (*run)(void)) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&worker_wake, &attr);
  pthread_condattr_destroy(&attr);
  worker_stopping = false;
  worker_run = run;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the program's signals never land on it */
  bool ok = pthread_create(&worker, NULL, worker_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return ok;
}

/* A wall-clock step must not change the sleep: CLOCK_MONOTONIC. */
bool os_worker_sleep(unsigned ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)ms * 1000000u;
  until.tv_sec += (time_t)(ns / 1000000000u);
  until.tv_nsec = (long)(ns % 1000000000u);
  pthread_mutex_lock(&worker_mutex);
  while (!worker_stopping && pthread_cond_timedwait(&worker_wake, &worker_mutex, &until) == EINTR) {
  }
  bool go_on = !worker_stopping;
  pthread_mutex_unlock(&worker_mutex);
  return go_on;
}

void os_worker_stop(void) {
  pthread_mutex_lock(&worker_mutex);
  worker_stopping = true;
  pthread_cond_signal(&worker_wake);
  pthread_mutex_unlock(&worker_mutex);
  pthread_join(worker, NULL);
  pthread_cond_destroy(&worker_wake);
}

void os_worker_fork_child(void) {
  pthread_mutex_init(&worker_mutex, NULL);
  worker_stopping = false;
}

/* ----------------------------------------------------------------- locks */

void (*alloy__test_hook)(int point, const void *obj);

/* The thread in fork's window (os.h), or 0.  A lock word is 0 when free,
 * 1 when held (by fork's prepare handler, in the window), 2 when that
 * thread took it in the window (a lock made since, such as a new heap's):
 * its unlock then releases it. */
static _Atomic(uintptr_t) fork_window_owner;
enum { LOCK_FREE, LOCK_HELD, LOCK_HELD_IN_WINDOW };

static bool in_my_fork_window(void) {
  uintptr_t owner = atomic_load_explicit(&fork_window_owner, memory_order_relaxed);
  return unlikely(owner != 0) && owner == (uintptr_t)pthread_self();
}
bool os_in_fork_window(void) { return in_my_fork_window(); }

void os_fork_window_open(void) {
  atomic_store_explicit(&fork_window_owner, (uintptr_t)pthread_self(), memory_order_relaxed);
}
void os_fork_window_close(void) { atomic_store_explicit(&fork_window_owner, 0, memory_order_relaxed); }

/* In the window, a lock the prepare handler holds is the caller's already:
 * without this, another library's fork handler that allocates waited
 * for ever on a lock its own thread held (the peers let it through). */
static void lock_in_fork_window(os_lock_t *l) {
  int expected = LOCK_FREE;
  atomic_compare_exchange_strong_explicit(&l->locked, &expected, LOCK_HELD_IN_WINDOW, memory_order_acquire,
                                          memory_order_relaxed);
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Pauses (about 20 ns each on this project's x86-64 machine: 50 are a
 * microsecond) a spinning lock's waiter makes before it yields.  For the
 * back end's lock, held for a few hundred nanoseconds by a thread that is
 * almost always running: yielding at once made mixed_mt's 4 threads on 2
 * cores switch 50,000 times in 0.9 s (mimalloc: 200), and 2 threads on 2
 * cores spent a tenth of their time in sched_yield; with the spin,
 * mixed_mt took 0.85-0.88x the time (7 interleaved rounds, ranges apart;
 * 50 and 200 pauses alike).  Not for the heap lists' lock, held longer
 * (adoption walks a heap's pages, the idle scan reads other threads'
 * clocks) by threads that outnumber the CPUs: spinning first on every
 * lock, or sleeping in the kernel (futex) instead of yielding, made
 * larson_like_8 12-20% slower with 30-40% more peak RSS. */
#define LOCK_SPINS 50

static bool lock_spin(os_lock_t *l) {
  for (int i = 0; i < LOCK_SPINS; i++) {
    cpu_relax();
    if (!atomic_load_explicit(&l->locked, memory_order_relaxed) &&
        !atomic_exchange_explicit(&l->locked, LOCK_HELD, memory_order_acquire))
      return true;
  }
  return false;
}

/* Test-and-test-and-set with a yield: held only for short list operations
 * on slow paths; a pthread mutex would do too, but this one works before
 * libpthread is initialised and is trivially reset in a fork child. */
void os_lock(os_lock_t *l) {
  if (in_my_fork_window()) {
    lock_in_fork_window(l);
    return;
  }
  for (;;) {
    if (!atomic_exchange_explicit(&l->locked, LOCK_HELD, memory_order_acquire)) break;
    if (l->spin && lock_spin(l)) break;
    while (atomic_load_explicit(&l->locked, memory_order_relaxed)) os_yield();
  }
  if (unlikely(alloy__test_hook != NULL)) alloy__test_hook(TEST_LOCK_TAKEN, l);
}

bool os_trylock(os_lock_t *l) {
  if (in_my_fork_window()) {
    lock_in_fork_window(l);
    return true;
  }
  return !atomic_load_explicit(&l->locked, memory_order_relaxed) &&
         !atomic_exchange_explicit(&l->locked, LOCK_HELD, memory_order_acquire);
}

void os_unlock(os_lock_t *l) {
  if (in_my_fork_window() && atomic_load_explicit(&l->locked, memory_order_relaxed) == LOCK_HELD) return;
  atomic_store_explicit(&l->locked, LOCK_FREE, memory_order_release);
}
