/*
 * pagemap.c - which header governs each frame of the address space:
 * a segment's, a big block's, or a free run's (tagged PAGEMAP_FREE).  The
 * free fast path reads it before it dereferences anything (pagemap_owns in
 * internal.h), so a pointer alloy never returned is reported, not followed.
 *
 * Two levels, sized to what is in use: a first level of 2^15 offsets in
 * .bss (256 KiB of address space, of which only the pages covering used
 * entries are ever touched) and second-level chunks of 2048 entries (2 MiB
 * frames; 1024 with 4 MiB ones), one per 4 GiB of address space, from the
 * metadata allocator.  A flat map of the
 * 47-bit space cost 32 MiB of address space, which broke programs under
 * `ulimit -v` that run under glibc.  Entries are written by the back end
 * under its lock and read by any thread with relaxed atomics: a frame's
 * entry changes only while no block of it is live.
 */
#include "internal.h"

#define L2_ENTRIES ((size_t)1 << PAGEMAP_L2_BITS)

uintptr_t alloy__pagemap_l1[(size_t)1 << PAGEMAP_L1_BITS];
/* Frame 0 (NULL and the first frame, never mapped) reads PAGEMAP_FREE with
 * no header: not a live segment (so free(NULL) leaves the fast path at the
 * page-map check) and no free run either. */
const uintptr_t alloy__pagemap_zero[L2_ENTRIES] = {PAGEMAP_FREE};

/* The second-level chunk for frames at `a`, made if need be (NULL: out of
 * memory).  Installed with a release store: a reader seeing the offset sees
 * the chunk's zeros. */
static uintptr_t *chunk_for(uintptr_t a) {
  uintptr_t i = a >> 32;
  uintptr_t off = __atomic_load_n(&alloy__pagemap_l1[i], __ATOMIC_ACQUIRE);
  if (off == 0) {
    uintptr_t *chunk = meta_alloc(L2_ENTRIES * sizeof(uintptr_t));
    if (chunk == NULL) return NULL;
    if (i == 0) chunk[0] = PAGEMAP_FREE; /* frame 0, as in the zero chunk */
    off = (uintptr_t)chunk - (uintptr_t)alloy__pagemap_zero;
    __atomic_store_n(&alloy__pagemap_l1[i], off, __ATOMIC_RELEASE);
  }
  return (uintptr_t *)((uintptr_t)alloy__pagemap_zero + off);
}

/* Sets the entries of `frames` frames from `frame` (the back end's lock
 * held, so chunks are never made twice). */
bool pagemap_set(const void *frame, size_t frames, uintptr_t value) {
  uintptr_t a = (uintptr_t)frame;
  for (size_t f = 0; f < frames; f++, a += SEGMENT_SIZE) {
    if ((a >> OS_ADDRESS_BITS) != 0) return false;
    uintptr_t *chunk = chunk_for(a);
    if (chunk == NULL) return false;
    __atomic_store_n(&chunk[(a >> SEGMENT_SHIFT) & (L2_ENTRIES - 1)], value, __ATOMIC_RELEASE);
  }
  return true;
}
