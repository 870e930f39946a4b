/*
 * os_rseq_linux.c - the platform contract's restartable sequences (os.h)
 * on Linux: whose rseq area the calling thread has (glibc's, found through
 * the dynamic loader's __rseq_offset and __rseq_size, or alloy's own), the
 * kernel's feature size, membarrier, and the CPU counts.  Never calls
 * malloc; writes no field of an area but by registering alloy's own.
 */
#include "os.h"
#include "rseq.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif

/* glibc 2.35 and later (ld.so): the offset of each thread's area from the
 * thread pointer, and its size, 0 when glibc registered none
 * (glibc.pthread.rseq=0, or the kernel refused it).  Weak: older C
 * libraries define neither. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* alloy's own area, for processes where glibc registered none.  cpu_id
 * starts at -1 (RSEQ_CPU_ID_UNINITIALIZED), as the kernel expects. */
static __thread struct {
  uint32_t words[RSEQ_AREA_SIZE / 4];
} own_area __attribute__((aligned(32), tls_model("initial-exec"))) = {{0, (uint32_t)-1}};

static long sys_rseq(void *area, uint32_t len, int flags, uint32_t sig) {
  return syscall(SYS_rseq, area, len, flags, sig);
}

/* The CPU number the kernel wrote into the calling thread's area at
 * `offset` (negative: not registered). */
static int32_t area_cpu(intptr_t offset) {
  return __atomic_load_n((const int32_t *)(rseq_thread_pointer() + (uintptr_t)offset + RSEQ_OFF_CPU_ID),
                         __ATOMIC_RELAXED);
}

static intptr_t own_offset(void) { return (intptr_t)((uintptr_t)&own_area - rseq_thread_pointer()); }

/* Measurement hook, ALLOY_RSEQ_SIMULATE=1 in the environment: alloy's own
 * area looks registered without the kernel, each thread with a CPU number
 * (and concurrency id) of its own that alloy writes itself, so that no two
 * threads share a cache and no sequence ever needs aborting.  valgrind
 * answers rseq with ENOSYS, so this is how callgrind counts the per-CPU
 * paths' instructions (bench/instr.sh); never for production (more
 * threads than CPUs would share caches unprotected). */
static bool simulated;
static _Atomic(uint32_t) simulated_next;

static bool simulate_thread(void) {
  if (own_area.words[RSEQ_OFF_CPU_ID / 4] != (uint32_t)-1) return true;
  uint32_t id = atomic_fetch_add(&simulated_next, 1) % os_cpus_possible();
  own_area.words[RSEQ_OFF_MM_CID / 4] = id;
  own_area.words[RSEQ_OFF_CPU_ID / 4] = id;
  return true;
}

void os_rseq_probe(os_rseq_info_t *info, uint32_t sig) {
  memset(info, 0, sizeof *info);
  unsigned long fs = getauxval(AT_RSEQ_FEATURE_SIZE);
  info->feature_size = fs ? (unsigned)fs : 20; /* no auxv entry: the original 20 bytes */
  if (!RSEQ_ARCH_OK) {
    info->error = ENOSYS;
    return;
  }
  const char *sim = os_secure_exec() ? NULL : os_getenv("ALLOY_RSEQ_SIMULATE");
  if (sim && sim[0] == '1') {
    simulated = true;
    info->owner = OS_RSEQ_OWN;
    info->offset = own_offset();
    info->feature_size = RSEQ_FEATURE_MM_CID;
    simulate_thread();
    return;
  }
  if (&__rseq_size != NULL && __rseq_size != 0 && area_cpu(__rseq_offset) >= 0) {
    info->owner = OS_RSEQ_GLIBC;
    info->offset = __rseq_offset;
    return;
  }
  if (sys_rseq(&own_area, RSEQ_AREA_SIZE, 0, sig) != 0 && errno != EBUSY) {
    info->error = errno; /* ENOSYS: no kernel support; EPERM: seccomp */
    return;
  }
  /* EBUSY: this thread's own area is registered already (a second probe). */
  if (area_cpu(own_offset()) < 0) {
    info->error = EBUSY; /* somebody else's area, unknown to us */
    return;
  }
  info->owner = OS_RSEQ_OWN;
  info->offset = own_offset();
}

bool os_rseq_thread_ready(const os_rseq_info_t *info, uint32_t sig) {
  if (info->owner == OS_RSEQ_NONE) return false;
  if (simulated) return simulate_thread();
  if (area_cpu(info->offset) >= 0) return true;
  if (info->owner != OS_RSEQ_OWN) return false; /* glibc failed for this thread alone */
  return sys_rseq(&own_area, RSEQ_AREA_SIZE, 0, sig) == 0 && area_cpu(info->offset) >= 0;
}

/* Registration is per process (per mm) and does not survive fork: when the
 * kernel says EPERM, register and try again. */
bool os_rseq_fence(void) {
  if (simulated) return false;
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0) return true;
  if (errno != EPERM) return false;
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) return false;
  return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0;
}

/* "0-3,8-11" in /sys/devices/system/cpu/possible: the highest number + 1.
 * Read with open and read (glibc's get_nprocs_conf may allocate). */
unsigned os_cpus_possible(void) {
  static unsigned cached;
  unsigned n = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (n) return n;
  char buf[256];
  int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
  ssize_t len = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  unsigned highest = 0, v = 0;
  bool digits = false;
  for (ssize_t i = 0; i < len; i++) {
    if (buf[i] >= '0' && buf[i] <= '9') {
      v = v * 10 + (unsigned)(buf[i] - '0');
      digits = true;
    } else {
      if (digits && v > highest) highest = v;
      v = 0;
      digits = false;
    }
  }
  if (digits && v > highest) highest = v;
  n = len > 0 ? highest + 1 : CPU_SETSIZE; /* unknown: as many as a cpu_set_t names */
  __atomic_store_n(&cached, n, __ATOMIC_RELAXED);
  return n;
}

unsigned os_cpus_allowed(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return os_cpus_possible();
  int n = CPU_COUNT(&set);
  return n > 0 ? (unsigned)n : 1;
}
