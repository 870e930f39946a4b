/*
 * rseq.h - the restartable sequences of the per-CPU caches (percpu.c), one
 * implementation per architecture written to one contract.
 *
 * THE KERNEL'S SIDE.  A thread registers a `struct rseq` area (glibc does
 * it for every thread since 2.35; alloy only where glibc did not,
 * os_rseq_thread_ready).  The kernel keeps cpu_id (offset 4) and, from
 * Linux 6.3, mm_cid (offset 24: a concurrency id, dense in [0, number of
 * CPUs), shared by the threads of the process) up to date whenever the
 * thread returns to user space.  Before a critical section the thread
 * stores the address of a descriptor {version, flags, start, length, abort}
 * in the area's rseq_cs field (offset 8): if the kernel preempts the thread,
 * migrates it, or delivers a signal to it while its instruction pointer is
 * in [start, start + length), it resumes it at `abort` instead, after
 * checking that the four bytes before `abort` hold the signature the area
 * was registered with (glibc's: 0x53053053 on x86-64, BRK #0x45E0 on
 * arm64; alloy registers its own area with the same one).  alloy writes no
 * field of the area but rseq_cs: the others are the kernel's.
 *
 * THE CONTRACT (every architecture).  A CPU cache is a 64 KiB region at
 * base + (cpu << PCPU_SHIFT): one 32-bit header per size class, {cur: low
 * 16 bits, end: high 16 bits}, then slots of block pointers from byte
 * PCPU_SLOTS_OFF.  Class c owns slots [begin_c, end_c) and slot begin_c - 1
 * always holds NULL; slot 0 is NULL too.  The blocks in the cache are
 * slots[begin_c .. cur).  Each sequence reads the CPU number, its class's
 * header and one slot, and ends in ONE committing store (the new header);
 * a sequence that is aborted before that store has changed nothing anyone
 * reads (a push's slot store lies above cur), and it starts again from the
 * top, reading the CPU number afresh.
 *
 *   pop:  cur = hdr & 0xffff; p = slots[cur - 1]; if p == NULL: return NULL
 *         (empty); commit hdr - 1; return p
 *   push: cur = hdr & 0xffff, end = hdr >> 16; if cur >= end: return 0
 *         (full); slots[cur] = p; commit hdr + 1; return 1
 *
 * A drainer stops a cache by swapping each class's header for
 * PCPU_STOPPED = {cur 1, end 0} (pop finds slot 0's NULL, push finds it
 * full) and then aborting every sequence in flight with membarrier
 * (percpu.c explains the rest).  The register choice, the abort handler
 * (which re-arms rseq_cs, as the kernel clears it when it aborts) and the
 * descriptors (section __rseq_cs, listed in __rseq_cs_ptr_array for
 * debuggers) are each architecture's own; docs/PERCPU.md shows the x86-64
 * sequences annotated.
 */
#ifndef ALLOY_RSEQ_H
#define ALLOY_RSEQ_H

#include <stddef.h>
#include <stdint.h>

/* struct rseq, as the kernel fills it (linux/rseq.h of older systems stops
 * before node_id and mm_cid). */
#define RSEQ_OFF_CPU_ID 4
#define RSEQ_OFF_CS 8
#define RSEQ_OFF_MM_CID 24
#define RSEQ_AREA_SIZE 32          /* what alloy registers; the kernel fills mm_cid in it */
#define RSEQ_FEATURE_MM_CID 28     /* AT_RSEQ_FEATURE_SIZE from which mm_cid is filled */

#define PCPU_SHIFT 16              /* one CPU cache: 64 KiB */
#define PCPU_SLOTS_OFF 512         /* headers first (80 x 4 bytes) */
#define PCPU_MAX_SLOTS ((((size_t)1 << PCPU_SHIFT) - PCPU_SLOTS_OFF) / 8)
#define PCPU_STOPPED ((uint32_t)1) /* cur 1 (slot 0: NULL), end 0 */

#define RSEQ_STR_(x) #x
#define RSEQ_STR(x) RSEQ_STR_(x)

/* Both architectures: the critical section's descriptor (label 9: version,
 * flags, start 1, length up to 2, abort handler 4), its address in the
 * array debuggers and checkers read, then the abort handler's section, which
 * each architecture opens with its signature. */
#define RSEQ_CS_DESCRIPTOR                                       \
  ".pushsection __rseq_cs, \"aw\"\n\t"                         \
  ".balign 32\n\t"                                             \
  "9:\n\t"                                                     \
  ".long 0, 0\n\t"                                             \
  ".quad 1f, 2f - 1f, 4f\n\t"                                  \
  ".popsection\n\t"                                            \
  ".pushsection __rseq_cs_ptr_array, \"aw\"\n\t"               \
  ".quad 9b\n\t"                                               \
  ".popsection\n\t"                                            \
  ".pushsection __rseq_failure, \"ax\"\n\t"

#if defined(__x86_64__)

#define RSEQ_SIG 0x53053053
#define RSEQ_ARCH_OK 1

static inline uintptr_t rseq_thread_pointer(void) {
  uintptr_t tp;
  __asm__("movq %%fs:0, %0" : "=r"(tp));
  return tp;
}

/* The descriptor (label 9), the arming of rseq_cs (label 0, where the abort
 * handler returns) and the abort handler after its signature: a ud1
 * instruction whose displacement is the signature, so that the bytes never
 * decode as a valid instruction stream. */
#define RSEQ_X86_PROLOGUE(tmp)                                   \
  RSEQ_CS_DESCRIPTOR                                           \
  ".byte 0x0f, 0xb9, 0x3d\n\t"                                 \
  ".long " RSEQ_STR(RSEQ_SIG) "\n\t"                           \
  "4:\n\t"                                                     \
  "jmp 0f\n\t"                                                 \
  ".popsection\n\t"                                            \
  "0:\n\t"                                                     \
  "leaq 9b(%%rip), %" tmp "\n\t"                               \
  "movq %" tmp ", %%fs:(%[cs])\n\t"

/* cs, cpu: the rseq_cs and CPU-number fields as offsets from the thread
 * pointer; base: the first cache; cls: the class. */
static inline __attribute__((always_inline)) void *rseq_pop(intptr_t cs, intptr_t cpu, uintptr_t base,
                                                             size_t cls) {
  void *p;
  uintptr_t cache, hdr, cur;
  __asm__ __volatile__ goto(RSEQ_X86_PROLOGUE("[cache]")
               "1:\n\t"
               "movl %%fs:(%[cpu]), %k[cache]\n\t"
               "shlq $" RSEQ_STR(PCPU_SHIFT) ", %[cache]\n\t"
               "addq %[base], %[cache]\n\t"
               "movl (%[cache],%[cls],4), %k[hdr]\n\t"
               "movzwl %w[hdr], %k[cur]\n\t"
               "movq " RSEQ_STR(PCPU_SLOTS_OFF) "-8(%[cache],%[cur],8), %[p]\n\t"
               "testq %[p], %[p]\n\t"
               "jz %l[empty]\n\t"
               "decl %k[hdr]\n\t"
               "movl %k[hdr], (%[cache],%[cls],4)\n\t" /* commit */
               "2:\n\t"
               : [p] "=&r"(p), [cache] "=&r"(cache), [hdr] "=&r"(hdr), [cur] "=&r"(cur)
               : [cs] "r"(cs), [cpu] "r"(cpu), [base] "r"(base), [cls] "r"(cls)
               : "memory", "cc"
               : empty);
  if (p == NULL) __builtin_unreachable(); /* NULL left through `empty` */
  return p;
empty:
  return NULL;
}

static inline __attribute__((always_inline)) int rseq_push(intptr_t cs, intptr_t cpu, uintptr_t base,
                                                            size_t cls, void *p) {
  uintptr_t cache, hdr, cur, end;
  __asm__ __volatile__ goto(RSEQ_X86_PROLOGUE("[cache]")
               "1:\n\t"
               "movl %%fs:(%[cpu]), %k[cache]\n\t"
               "shlq $" RSEQ_STR(PCPU_SHIFT) ", %[cache]\n\t"
               "addq %[base], %[cache]\n\t"
               "movl (%[cache],%[cls],4), %k[hdr]\n\t"
               "movzwl %w[hdr], %k[cur]\n\t"
               "movl %k[hdr], %k[end]\n\t"
               "shrl $16, %k[end]\n\t"
               "cmpl %k[end], %k[cur]\n\t"
               "jae %l[full]\n\t"              /* full (or stopped) */
               "movq %[p], " RSEQ_STR(PCPU_SLOTS_OFF) "(%[cache],%[cur],8)\n\t"
               "incl %k[hdr]\n\t"
               "movl %k[hdr], (%[cache],%[cls],4)\n\t" /* commit */
               "2:\n\t"
               : [cache] "=&r"(cache), [hdr] "=&r"(hdr), [cur] "=&r"(cur), [end] "=&r"(end)
               : [cs] "r"(cs), [cpu] "r"(cpu), [base] "r"(base), [cls] "r"(cls), [p] "r"(p)
               : "memory", "cc"
               : full);
  return 1;
full:
  return 0;
}

#elif defined(__aarch64__)

/* BRK #0x45E0 as an instruction word (glibc's and librseq's signature). */
#define RSEQ_SIG 0xd428bc00
#define RSEQ_ARCH_OK 1

static inline uintptr_t rseq_thread_pointer(void) {
  uintptr_t tp;
  __asm__("mrs %0, tpidr_el0" : "=r"(tp));
  return tp;
}

/* As on x86-64, but the fields are addressed through the thread pointer
 * (read once: a thread's pointer never changes) plus their offsets, and the
 * signature is an instruction word placed right before the abort label. */
#define RSEQ_A64_PROLOGUE                                        \
  RSEQ_CS_DESCRIPTOR                                           \
  ".inst " RSEQ_STR(RSEQ_SIG) "\n\t"                           \
  "4:\n\t"                                                     \
  "b 0f\n\t"                                                   \
  ".popsection\n\t"                                            \
  "0:\n\t"                                                     \
  "adrp %[cache], 9b\n\t"                                      \
  "add %[cache], %[cache], :lo12:9b\n\t"                       \
  "str %[cache], [%[tp], %[cs]]\n\t"

static inline __attribute__((always_inline)) void *rseq_pop(intptr_t cs, intptr_t cpu, uintptr_t base,
                                                             size_t cls) {
  void *p;
  uintptr_t cache, hdr, cur, tp = rseq_thread_pointer();
  __asm__ __volatile__ goto(RSEQ_A64_PROLOGUE
               "1:\n\t"
               "ldr %w[cache], [%[tp], %[cpu]]\n\t"
               "add %[cache], %[base], %[cache], lsl #" RSEQ_STR(PCPU_SHIFT) "\n\t"
               "ldr %w[hdr], [%[cache], %[cls], lsl #2]\n\t"
               "and %w[cur], %w[hdr], #0xffff\n\t"
               "add %[cur], %[cache], %[cur], lsl #3\n\t"
               "ldr %[p], [%[cur], #" RSEQ_STR(PCPU_SLOTS_OFF) "-8]\n\t"
               "cbz %[p], %l[empty]\n\t"
               "sub %w[hdr], %w[hdr], #1\n\t"
               "str %w[hdr], [%[cache], %[cls], lsl #2]\n\t" /* commit */
               "2:\n\t"
               : [p] "=&r"(p), [cache] "=&r"(cache), [hdr] "=&r"(hdr), [cur] "=&r"(cur)
               : [tp] "r"(tp), [cs] "r"(cs), [cpu] "r"(cpu), [base] "r"(base), [cls] "r"(cls)
               : "memory", "cc"
               : empty);
  if (p == NULL) __builtin_unreachable(); /* NULL left through `empty` */
  return p;
empty:
  return NULL;
}

static inline __attribute__((always_inline)) int rseq_push(intptr_t cs, intptr_t cpu, uintptr_t base,
                                                            size_t cls, void *p) {
  uintptr_t cache, hdr, cur, tp = rseq_thread_pointer();
  __asm__ __volatile__ goto(RSEQ_A64_PROLOGUE
               "1:\n\t"
               "ldr %w[cache], [%[tp], %[cpu]]\n\t"
               "add %[cache], %[base], %[cache], lsl #" RSEQ_STR(PCPU_SHIFT) "\n\t"
               "ldr %w[hdr], [%[cache], %[cls], lsl #2]\n\t"
               "and %w[cur], %w[hdr], #0xffff\n\t"
               "cmp %w[cur], %w[hdr], lsr #16\n\t"
               "b.hs %l[full]\n\t"             /* full (or stopped) */
               "add %[cur], %[cache], %[cur], lsl #3\n\t"
               "str %[p], [%[cur], #" RSEQ_STR(PCPU_SLOTS_OFF) "]\n\t"
               "add %w[hdr], %w[hdr], #1\n\t"
               "str %w[hdr], [%[cache], %[cls], lsl #2]\n\t" /* commit */
               "2:\n\t"
               : [cache] "=&r"(cache), [hdr] "=&r"(hdr), [cur] "=&r"(cur)
               : [tp] "r"(tp), [cs] "r"(cs), [cpu] "r"(cpu), [base] "r"(base), [cls] "r"(cls),
                 [p] "r"(p)
               : "memory", "cc"
               : full);
  return 1;
full:
  return 0;
}

#else

/* No sequences for this architecture: per-CPU mode is never entered
 * (percpu.c checks RSEQ_ARCH_OK), so these are never called. */
#define RSEQ_SIG 0
#define RSEQ_ARCH_OK 0
static inline uintptr_t rseq_thread_pointer(void) { return 0; }
static inline void *rseq_pop(intptr_t cs, intptr_t cpu, uintptr_t base, size_t cls) {
  (void)cs, (void)cpu, (void)base, (void)cls;
  return NULL;
}
static inline int rseq_push(intptr_t cs, intptr_t cpu, uintptr_t base, size_t cls, void *p) {
  (void)cs, (void)cpu, (void)base, (void)cls, (void)p;
  return 0;
}

#endif

#endif /* ALLOY_RSEQ_H */
