/*
 * tcache.c - explicit thread caches (jemalloc's tcache.create and
 * MALLOCX_TCACHE(tc)): a small stack of freed blocks per size class that a
 * program names and uses from one thread at a time, as jemalloc's are (they
 * take no lock: the caller guarantees exclusive use).
 *
 * alloy's automatic "thread cache" is the thread heap itself, so these exist
 * for programs that manage caches explicitly.  A block parked in a tcache
 * keeps its free mark set, so a later free() or dallocx() of it without the
 * tcache is still reported as a double free; the mark is cleared when the
 * block is handed out again or flushed back to its page.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define TCACHE_MAX_SIZE (32 * ALLOY_KiB) /* jemalloc's default tcache_max */
#define TCACHE_SLOTS 32                  /* blocks per class */

typedef struct tcache_s {
  uint8_t count[SIZE_CLASSES];
  void *slots[SIZE_CLASSES][TCACHE_SLOTS];
  bool live;
} tcache_t;

static os_lock_t tcaches_lock = OS_LOCK_INIT; /* create and destroy only */
static tcache_t *tcaches[TCACHES_MAX];

static tcache_t *tcache_get(unsigned id) {
  if (id >= TCACHES_MAX) return NULL;
  tcache_t *tc = __atomic_load_n(&tcaches[id], __ATOMIC_ACQUIRE);
  return tc && tc->live ? tc : NULL;
}

/* tcache.create: the lowest free identifier; EFAULT when all are taken. */
int tcache_create(unsigned *id) {
  process_init();
  int err = EFAULT; /* jemalloc's code when no tcache can be made */
  os_lock(&tcaches_lock);
  for (unsigned i = 0; i < TCACHES_MAX; i++) {
    tcache_t *tc = tcaches[i];
    if (tc && tc->live) continue;
    if (tc == NULL) tc = os_meta_alloc(sizeof *tc); /* never freed: reused */
    if (tc == NULL) break;
    memset(tc, 0, sizeof *tc);
    tc->live = true;
    __atomic_store_n(&tcaches[i], tc, __ATOMIC_RELEASE);
    *id = i;
    err = 0;
    break;
  }
  os_unlock(&tcaches_lock);
  return err;
}

static void block_unpark(void *p) { ((block_t *)p)->free_mark = 0; }

/* tcache.flush: every parked block goes back to its page. */
int tcache_flush(unsigned id) {
  tcache_t *tc = tcache_get(id);
  if (tc == NULL) return EFAULT;
  for (unsigned c = 0; c < SIZE_CLASSES; c++)
    while (tc->count[c] > 0) {
      void *p = tc->slots[c][--tc->count[c]];
      block_unpark(p);
      alloy__free(p);
    }
  return 0;
}

int tcache_destroy(unsigned id) {
  int err = tcache_flush(id);
  if (err) return err;
  os_lock(&tcaches_lock);
  tcaches[id]->live = false;
  os_unlock(&tcaches_lock);
  return 0;
}

/* A block of `size` from tcache `id`, or from arena `arena` (0: the thread's
 * heap) when the tcache has none of that class. */
void *tcache_malloc(unsigned id, size_t size, unsigned arena) {
  tcache_t *tc = tcache_get(id);
  if (tc != NULL && size <= TCACHE_MAX_SIZE) {
    unsigned c = size_class_of(size == 0 ? 1 : size);
    if (tc->count[c] > 0) {
      void *p = tc->slots[c][--tc->count[c]];
      block_unpark(p);
      return p;
    }
  }
  return arena ? arena_malloc(arena, size, 0) : alloy__malloc(size);
}

/* Parks p in tcache `id`; false when the caller must free it the ordinary
 * way (no such tcache, not a small block, its class full, or misuse, which
 * the ordinary free then reports). */
bool tcache_free(unsigned id, void *p) {
  tcache_t *tc = tcache_get(id);
  if (tc == NULL || p == NULL || !segment_map_has(p)) return false;
  page_t *page = segment_page_of(segment_of(p), p);
  if (page->kind > PAGE_MEDIUM || page->block_size > TCACHE_MAX_SIZE) return false;
  if (page_check_block(page, p) != NULL || block_is_marked_free(page, p)) return false;
  unsigned c = page->size_class;
  if (tc->count[c] == TCACHE_SLOTS) return false;
  ((block_t *)p)->free_mark = block_free_mark(page, p);
  tc->slots[c][tc->count[c]++] = p;
  return true;
}

/* fork: tcache.create holds tcaches_lock while it maps metadata, so the
 * lock is taken before the metadata lock (init.c orders the handlers). */
void tcache_fork_prepare(void) { os_lock(&tcaches_lock); }
void tcache_fork_release(void) { os_unlock(&tcaches_lock); }
