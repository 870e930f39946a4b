/*
 * fork_handlers_lib.c - libfork_handlers.so for edge test fork_handlers: its
 * constructor registers fork handlers that allocate.  Loaded before alloy's
 * own handlers are registered (the program links it; alloy is preloaded, or
 * linked after it), so its prepare handler runs after alloy's (which holds
 * every lock of alloy's then) and its parent and child handlers run before
 * alloy's.  Libraries do this (a pool refilled before a fork, a buffer for
 * the child's state): glibc, jemalloc, mimalloc and tcmalloc let it
 * through; alloy hung here on its own lock until os_fork_window_open.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fork_handlers.h"

struct fork_handler_counts fork_handler_counts;

/* Blocks the handlers keep across forks (freed by the next prepare), and
 * blocks other threads allocated, which the prepare handler frees: a free
 * of another thread's block takes that heap's locks. */
static unsigned char *kept[HANDLER_BLOCKS];
_Atomic(unsigned char *) handler_inbox[HANDLER_INBOX];

/* Sizes over every tier: small classes, medium pages, large blocks, and
 * a big block (which maps frames or takes a free run). */
static size_t handler_size(unsigned i) {
  static const size_t sizes[] = {8, 24, 100, 700, 3000, 20000, 70000, 300000, 3u << 20};
  return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

/* Allocates, fills, reallocates and frees through every entry point;
 * false when a block came back wrong. */
static int handler_work(unsigned char tag) {
  int ok = 1;
  for (unsigned i = 0; i < HANDLER_BLOCKS; i++) {
    free(kept[i]);
    size_t n = handler_size(i + tag);
    kept[i] = malloc(n);
    if (!kept[i]) return 0;
    memset(kept[i], tag, n);
  }
  for (unsigned i = 0; i < HANDLER_INBOX; i++) free(atomic_exchange(&handler_inbox[i], NULL));
  unsigned char *z = calloc(1000, 8);
  ok &= z != NULL && z[0] == 0 && z[7999] == 0;
  void *a = NULL;
  ok &= posix_memalign(&a, 4096, 5000) == 0 && ((uintptr_t)a & 4095) == 0;
  free(a);
  unsigned char *r = realloc(z, 200000);
  ok &= r != NULL && r[0] == 0 && r[7999] == 0;
  free(r);
  char *s = strdup("fork handler");
  ok &= s != NULL && strcmp(s, "fork handler") == 0;
  free(s);
  for (unsigned i = 0; i < HANDLER_BLOCKS; i++)
    for (size_t k = 0; k < handler_size(i + tag); k += 512) ok &= kept[i][k] == tag;
  return ok;
}

static void prepare(void) { fork_handler_counts.prepare += handler_work(1); }
static void parent(void) { fork_handler_counts.parent += handler_work(2); }
static void child(void) { fork_handler_counts.child += handler_work(3); }

__attribute__((constructor)) static void register_handlers(void) {
  kept[0] = malloc(10); /* allocates before alloy's handlers exist, too */
  pthread_atfork(prepare, parent, child);
}
