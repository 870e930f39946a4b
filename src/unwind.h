/*
 * unwind.h - stack capture for the heap profiler (unwind.c): the return
 * addresses of the calling thread's stack, innermost first, with alloy's
 * own frames (the allocation entry point and everything inside it) left out.
 */
#ifndef ALLOY_UNWIND_H
#define ALLOY_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* opt.prof_unwind: how stacks are walked (see unwind.c for when to use
 * which). */
typedef enum {
  UNWIND_CFI,    /* alloy's own DWARF CFI walker with a rule cache (default) */
  UNWIND_FP,     /* CFI through alloy's frames, then the frame-pointer chain */
  UNWIND_LIBGCC, /* glibc's backtrace() (libgcc's unwinder), warmed up at start */
} unwind_method_t;

/* The allocation path as the unwinder cuts it when alloy is linked into the
 * executable (where alloy's frames cannot be told apart by address):
 * `anchors`, the functions that capture stacks (the profiler's hooks), and
 * `path`, the alloy functions through which the program reaches them
 * (entry points and slow paths).  Entries of 0 (a name not in this build)
 * are skipped. */
typedef struct {
  const uintptr_t *anchors;
  size_t nanchors;
  const uintptr_t *path;
  size_t npath;
} unwind_path_t;

/* Once, after libc's start-up (it may call backtrace(), which allocates):
 * finds alloy's own code range and warms up backtrace() for UNWIND_LIBGCC.
 * Until it ran, unwind_capture returns 0 frames. */
void unwind_init(unwind_method_t method, const unwind_path_t *path);
/* Fills pcs[0..max) with the program's return addresses, innermost first;
 * returns how many.  Never allocates (UNWIND_LIBGCC: after unwind_init),
 * never takes an allocator lock; the unwinder's rule cache has a lock of its
 * own that only cache misses take, for a moment. */
int unwind_capture(uintptr_t *pcs, int max);
/* What unwind_capture uses ("cfi", "fp", "libgcc"): a method whose
 * requirements are missing falls back to libgcc. */
const char *unwind_method_name(void);
/* fork: the rule cache's lock. */
void unwind_fork_prepare(void);
void unwind_fork_release(void);

#endif /* ALLOY_UNWIND_H */
