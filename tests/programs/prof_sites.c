/*
 * prof_sites.c - a program whose call sites hold known amounts of memory,
 * for the heap-profiler tests (prof_shares.sh, prof_leaks.sh).  Run under
 * LD_PRELOAD=liballoy.so; mallctl is found at run time, so nothing else
 * is linked.
 *
 *   prof_sites shares FILE [big]
 *                            keeps 6,400,000 B at site_small (100,000 x 64 B),
 *                            16,384,000 B at site_medium (2,000 x 8 KiB),
 *                            41,943,040 B at site_large (40 x 1 MiB), after
 *                            416 MB of churn (1,000,000 blocks of 416 B)
 *                            freed at once, and blocks passed between two
 *                            threads; writes prof.dump to FILE and prints
 *                            "dump 0" when it succeeded.  With "big": twice
 *                            the small and medium blocks and 40 x 4 MiB at
 *                            site_large (12.8, 32.8 and 167.8 MB): at the
 *                            default rate of 1 sample per 512 KiB, enough
 *                            for the total's sampling error to be about 2%
 *   prof_sites leaks         leaks 1,000 x 1,000 B at leak_small and 50 x
 *                            100 KiB at leak_large, frees everything else
 *   prof_sites clean         frees everything it allocates
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
static void *keep[210000];
static int nkeep, scale = 1;
static size_t large_size = 1 << 20;
static volatile unsigned long sink;

static NOINLINE void site_small(void) {
  for (int i = 0; i < 100000 * scale; i++) keep[nkeep++] = malloc(64);
}
static NOINLINE void site_medium(void) {
  for (int i = 0; i < 2000 * scale; i++) keep[nkeep++] = malloc(8192);
}
static NOINLINE void site_large(void) {
  for (int i = 0; i < 40; i++) keep[nkeep++] = malloc(large_size);
}
/* Allocated and freed: must not be in the profile. */
static NOINLINE void churn(void) {
  for (int i = 0; i < 1000000; i++) {
    char *p = malloc(400);
    p[0] = (char)i;
    sink += (unsigned char)p[0];
    free(p);
  }
}

#define PASSED 20000
static void *passed[PASSED];
static void *producer(void *arg) {
  (void)arg;
  for (int i = 0; i < PASSED; i++) passed[i] = malloc(256);
  return NULL;
}
/* Blocks allocated by one thread and freed by another. */
static NOINLINE void cross_thread(void) {
  pthread_t t;
  pthread_create(&t, NULL, producer, NULL);
  pthread_join(t, NULL);
  for (int i = 0; i < PASSED; i++) free(passed[i]);
}

static NOINLINE void leak_small(void) {
  for (int i = 0; i < 1000; i++) {
    void *p = malloc(1000);
    memset(p, 1, 8);
    sink += (unsigned long)p & 1;
  }
}
static NOINLINE void leak_large(void) {
  for (int i = 0; i < 50; i++) {
    void *p = malloc(100 * 1024);
    memset(p, 1, 8);
    sink += (unsigned long)p & 1;
  }
}

typedef int (*mallctl_t)(const char *, void *, size_t *, void *, size_t);

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  if (strcmp(mode, "shares") == 0 && argc > 2) {
    if (argc > 3 && strcmp(argv[3], "big") == 0) {
      scale = 2;
      large_size = 4 << 20;
    }
    churn();
    site_small();
    site_medium();
    site_large();
    cross_thread();
    mallctl_t mallctl = (mallctl_t)dlsym(RTLD_DEFAULT, "mallctl");
    const char *file = argv[2];
    printf("dump %d\n", mallctl ? mallctl("prof.dump", NULL, NULL, &file, sizeof file) : -1);
    for (int i = 0; i < nkeep; i++) free(keep[i]);
    return 0;
  }
  churn();
  cross_thread();
  if (strcmp(mode, "leaks") == 0) {
    leak_small();
    leak_large();
  }
  return 0;
}
