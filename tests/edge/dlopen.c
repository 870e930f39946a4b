/*
 * dlopen.c - edge test (d): dlopen/dlclose of a library that allocates.
 * Usage: dlopen PATH-TO-libdl_lib.so
 *
 * 30 times: dlopen the library (its constructor allocates), check its data,
 * free in this program what the library allocated and let the library free
 * what this program allocated, realloc across the boundary, run 4 threads
 * that use the library's thread-local variables (allocated by glibc with
 * malloc) and allocate through it, then dlclose (its destructor frees).
 */
#include <pthread.h>
#include <stdint.h>

#include "preload.h"

typedef int (*check_fn)(void);
typedef void *(*alloc_fn)(size_t, int);
typedef void *(*realloc_fn)(void *, size_t);
typedef int (*free_fn)(unsigned char *, size_t, int);
typedef int (*tls_fn)(int);

static check_fn dl_check;
static alloc_fn dl_alloc;
static realloc_fn dl_realloc;
static free_fn dl_free_checked;
static tls_fn dl_tls_touch;

static void *thread_fn(void *arg)
{
  int v = (int)(intptr_t)arg;
  for (int i = 1; i <= 50; i++) {
    if (dl_tls_touch(v) != i)
      EDGE_FAIL("thread-local data of the library lost (thread %d, call %d)", v, i);
    unsigned char *p = dl_alloc((size_t)(i * 101), v);
    EDGE_CHECK(p != NULL);
    for (int j = 0; j < i * 101; j++)
      EDGE_CHECK(p[j] == (unsigned char)v);
    free(p);
  }
  return NULL;
}

int main(int argc, char **argv)
{
  if (argc != 2)
    EDGE_FAIL("usage: dlopen LIBRARY");
  require_alloy();
  for (int iter = 0; iter < 30; iter++) {
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h)
      EDGE_FAIL("dlopen: %s", dlerror());
    dl_check = (check_fn)dlsym(h, "dl_check");
    dl_alloc = (alloc_fn)dlsym(h, "dl_alloc");
    dl_realloc = (realloc_fn)dlsym(h, "dl_realloc");
    dl_free_checked = (free_fn)dlsym(h, "dl_free_checked");
    dl_tls_touch = (tls_fn)dlsym(h, "dl_tls_touch");
    EDGE_CHECK(dl_check && dl_alloc && dl_realloc && dl_free_checked && dl_tls_touch);
    EDGE_CHECK(dl_check() == 0);

    /* Library allocates, program frees (and reallocs). */
    unsigned char *a[40];
    for (int i = 0; i < 40; i++) {
      a[i] = dl_alloc((size_t)i * 1111 + 1, i);
      EDGE_CHECK(a[i] != NULL);
    }
    for (int i = 0; i < 40; i++) {
      for (int j = 0; j < i * 1111 + 1; j++)
        EDGE_CHECK(a[i][j] == (unsigned char)i);
      if (i % 2) {
        unsigned char *r = realloc(a[i], (size_t)i * 3000 + 7);
        EDGE_CHECK(r != NULL && r[0] == (unsigned char)i && r[i * 1111] == (unsigned char)i);
        a[i] = r;
      }
      free(a[i]);
    }
    /* Program allocates, library frees (and reallocs). */
    for (int i = 0; i < 40; i++) {
      size_t n = (size_t)i * 999 + 3;
      unsigned char *p = malloc(n);
      EDGE_CHECK(p != NULL);
      memset(p, 0x40 + i, n);
      if (i % 3 == 0) {
        p = dl_realloc(p, n * 2);
        EDGE_CHECK(p != NULL);
      }
      EDGE_CHECK(dl_free_checked(p, n, 0x40 + i) == 0);
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
      EDGE_CHECK(pthread_create(&t[i], NULL, thread_fn, (void *)(intptr_t)(iter * 4 + i + 1)) == 0);
    for (int i = 0; i < 4; i++)
      pthread_join(t[i], NULL);
    EDGE_CHECK(dl_tls_touch(7) == 1); /* main's first use in this load */
    EDGE_CHECK(dl_check() == 0);
    if (dlclose(h) != 0)
      EDGE_FAIL("dlclose: %s", dlerror());
  }
  printf("dlopen: ok\n");
  return 0;
}
