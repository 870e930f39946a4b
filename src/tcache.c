/*
 * tcache.c - jemalloc's explicit thread caches (tcache.create, .flush,
 * .destroy, MALLOCX_TCACHE(tc)) as names: alloy's cache of free blocks is
 * the thread heap's pages themselves (a free block is a bit in its page's
 * bitmap, reused by the next malloc of its class), so a tcache has nothing
 * of its own to hold.  Blocks allocated or freed "through" a tcache are
 * the thread heap's, and a double free is caught as for any other block.
 *
 * What this keeps is jemalloc's contract on the identifiers: create gives
 * the lowest free one (EFAULT when all TCACHES_MAX are taken), flush and
 * destroy fail with EFAULT on one that does not exist, and a destroyed
 * identifier is reused.
 */
#include "internal.h"

#include <errno.h>

static os_lock_t tcaches_lock = OS_LOCK_INIT;
static uint8_t live[TCACHES_MAX];

int tcache_create(unsigned *id) {
  int err = EFAULT; /* jemalloc's code when no tcache can be made */
  os_lock(&tcaches_lock);
  for (unsigned i = 0; i < TCACHES_MAX; i++)
    if (!live[i]) {
      __atomic_store_n(&live[i], 1, __ATOMIC_RELAXED);
      *id = i;
      err = 0;
      break;
    }
  os_unlock(&tcaches_lock);
  return err;
}

bool tcache_exists(unsigned id) {
  return id < TCACHES_MAX && __atomic_load_n(&live[id], __ATOMIC_RELAXED);
}

int tcache_flush(unsigned id) { return tcache_exists(id) ? 0 : EFAULT; }

int tcache_destroy(unsigned id) {
  int err = EFAULT;
  os_lock(&tcaches_lock);
  if (id < TCACHES_MAX && live[id]) {
    __atomic_store_n(&live[id], 0, __ATOMIC_RELAXED);
    err = 0;
  }
  os_unlock(&tcaches_lock);
  return err;
}

void tcache_fork_prepare(void) { os_lock(&tcaches_lock); }
void tcache_fork_release(void) { os_unlock(&tcaches_lock); }
