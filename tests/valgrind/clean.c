/*
 * clean.c - a correct program that uses every allocation path alloy has,
 * for memcheck to find nothing in (tests/valgrind/memcheck.sh): sizes of
 * every kind (classes, large, big over several frames), calloc, realloc
 * growing and shrinking, aligned allocation up to 64 KiB, the usable size
 * written whole, jemalloc's *allocx with explicit arenas and their reset,
 * and threads, among them a consumer whose first call is a free of the
 * producer's blocks.  Everything is freed before exit.
 */
#include <jemalloc/jemalloc.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                  \
  do {                                                            \
    if (!(c)) {                                                   \
      fprintf(stderr, "clean.c:%d: check failed: %s\n", __LINE__, #c); \
      exit(1);                                                    \
    }                                                             \
  } while (0)

static void fill_check(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i);
  for (size_t i = 0; i < n; i++) CHECK(p[i] == (unsigned char)(seed + i));
}

static void sizes(void) {
  static const size_t n[] = {0, 1, 15, 16, 17, 100, 128, 1000, 1024, 4000, 8192, 9000, 65536,
                             70000, 300000, 2u << 20, (2u << 20) + 1, 9u << 20};
  void *p[sizeof n / sizeof n[0]];
  for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
    p[i] = malloc(n[i]);
    CHECK(p[i] != NULL);
    fill_check(p[i], n[i], (unsigned)i);
  }
  for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) free(p[i]);
}

static void zeroed(void) {
  static const size_t n[] = {24, 5000, 200000, 6u << 20};
  for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
    unsigned char *p = calloc(1, n[i]);
    CHECK(p != NULL);
    for (size_t j = 0; j < n[i]; j++) CHECK(p[j] == 0); /* branches on every byte: all defined */
    free(p);
  }
}

static void reallocs(void) {
  unsigned char *p = NULL;
  size_t have = 0;
  /* grows through classes, large and big, then shrinks back */
  for (size_t n = 8; n <= (12u << 20); n = n * 3 / 2 + 7) {
    p = realloc(p, n);
    CHECK(p != NULL);
    for (size_t i = 0; i < have && i < 4096; i++) CHECK(p[i] == (unsigned char)i);
    for (size_t i = have; i < n && i < 4096; i++) p[i] = (unsigned char)i;
    have = n;
  }
  for (size_t n = have; n > 8; n /= 3) {
    p = realloc(p, n);
    CHECK(p != NULL);
    for (size_t i = 0; i < n && i < 4096; i++) CHECK(p[i] == (unsigned char)i);
  }
  free(p);
  CHECK(realloc(malloc(10), 0) == NULL); /* frees, as glibc's */
}

static void aligned(void) {
  for (size_t a = 16; a <= 65536; a *= 2) {
    void *p = aligned_alloc(a, a * 3);
    CHECK(p != NULL && (uintptr_t)p % a == 0);
    memset(p, 1, a * 3);
    free(p);
    void *q = NULL;
    CHECK(posix_memalign(&q, a, 100) == 0 && (uintptr_t)q % a == 0);
    memset(q, 2, 100);
    free(q);
    void *r = memalign(a, 5000);
    CHECK(r != NULL && (uintptr_t)r % a == 0);
    memset(r, 3, 5000);
    free(r);
  }
}

static void usable(void) {
  for (size_t n = 1; n < 300000; n = n * 2 + 3) {
    unsigned char *p = malloc(n);
    CHECK(p != NULL);
    size_t u = malloc_usable_size(p);
    CHECK(u >= n);
    memset(p, 7, u); /* the whole usable size is the program's */
    CHECK(p[u - 1] == 7);
    free(p);
  }
}

static void extended(void) {
  unsigned arena;
  size_t len = sizeof arena;
  CHECK(mallctl("arenas.create", &arena, &len, NULL, 0) == 0);
  void *keep[64];
  for (int i = 0; i < 64; i++) {
    keep[i] = mallocx(40 + (size_t)i * 300, MALLOCX_ARENA(arena) | MALLOCX_ZERO);
    CHECK(keep[i] != NULL && ((char *)keep[i])[39] == 0);
  }
  void *big = mallocx(3u << 20, MALLOCX_ARENA(arena));
  CHECK(big != NULL);
  memset(big, 4, 3u << 20);
  char name[64];
  snprintf(name, sizeof name, "arena.%u.reset", arena); /* frees every block of the arena */
  CHECK(mallctl(name, NULL, NULL, NULL, 0) == 0);

  void *p = mallocx(1000, MALLOCX_ALIGN(256) | MALLOCX_ZERO);
  CHECK(p != NULL && (uintptr_t)p % 256 == 0 && ((char *)p)[999] == 0);
  p = rallocx(p, 5000, MALLOCX_ALIGN(256));
  CHECK(p != NULL && (uintptr_t)p % 256 == 0 && ((char *)p)[999] == 0);
  memset(p, 5, 5000);
  sdallocx(p, 5000, MALLOCX_ALIGN(256));

  char *l = mallocx(100000, 0);
  CHECK(l != NULL);
  size_t now = xallocx(l, 200000, 0, 0); /* in place if the back end has room */
  CHECK(now >= 100000);
  memset(l, 6, now);
  now = xallocx(l, 70000, 0, 0);
  memset(l, 7, now);
  dallocx(l, 0);
  CHECK(nallocx(100, 0) >= 100);
}

/* A producer and a consumer whose first call into the allocator is free. */
#define BATCH 200
static void *volatile handoff[BATCH];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready;

static void *consumer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!ready) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < BATCH; i++) {
    CHECK(((unsigned char *)handoff[i])[0] == (unsigned char)i);
    free(handoff[i]);
  }
  return NULL;
}

static void *churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *live[32] = {0};
  for (int i = 0; i < 3000; i++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)(seed >> 16) % 32;
    free(live[k]);
    size_t n = 1 + (seed >> 8) % ((seed & 1) ? 200 : 20000);
    live[k] = malloc(n);
    CHECK(live[k] != NULL);
    memset(live[k], k, n);
  }
  for (int k = 0; k < 32; k++) free(live[k]);
  return NULL;
}

static void threads(void) {
  pthread_t c, t[3];
  CHECK(pthread_create(&c, NULL, consumer, NULL) == 0);
  for (int i = 0; i < BATCH; i++) {
    unsigned char *p = malloc(16 + (size_t)i * 7);
    CHECK(p != NULL);
    p[0] = (unsigned char)i;
    handoff[i] = p;
  }
  pthread_mutex_lock(&lock);
  ready = 1;
  pthread_cond_signal(&cond);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < 3; i++) CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  pthread_join(c, NULL);
}

int main(void) {
  void *probe = malloc(8); /* alloy's, or sallocx aborts */
  CHECK(probe != NULL && sallocx(probe, 0) >= 8);
  free(probe);
  sizes();
  zeroed();
  reallocs();
  aligned();
  usable();
  extended();
  threads();
  free(NULL);
  puts("clean: done");
  return 0;
}
