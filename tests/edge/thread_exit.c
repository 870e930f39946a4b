/*
 * thread_exit.c - edge test (b): allocation during thread exit.
 *
 * 192 threads in waves of 16 (some joined, some detached, some leaving through
 * pthread_exit).  Each thread registers
 *   - a pthread_key destructor that verifies and frees its value, allocates
 *     and frees, frees a block another thread left behind, and re-arms the key
 *     once (a second round of destructors, after alloy's own exit hook may
 *     have run),
 *   - a C11 tss_create destructor doing the same,
 *   - a destructor for a _Thread_local object (registered like C++
 *     thread_local's, with __cxa_thread_atexit_impl) that frees the object's
 *     blocks and allocates again,
 * and leaves blocks in a shared hand-off array that other threads (or main)
 * verify and free after the owner is gone.  Main checks that every
 * destructor ran and every block kept its contents.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <threads.h>
#include <unistd.h>

#include "preload.h"

#define WAVES 12
#define PER_WAVE 16
#define NTHREADS (WAVES * PER_WAVE)
#define HANDOFF 97

static pthread_key_t key;
static tss_t tss;
static _Atomic(unsigned char *) handoff[HANDOFF];
static atomic_int key_dtor_runs, key_dtor_rearmed, tss_dtor_runs, tl_dtor_runs, finished;

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);
extern void *__dso_handle;

/* A block: its size in the first 8 bytes, then a byte derived from it. */
static unsigned char *blk_new(size_t size)
{
  if (size < 16)
    size = 16;
  unsigned char *p = malloc(size);
  if (!p)
    EDGE_FAIL("malloc(%zu) failed", size);
  memcpy(p, &size, sizeof size);
  memset(p + 8, (int)((size * 13) & 0xff), size - 8);
  return p;
}

static void blk_free(unsigned char *p, const char *who)
{
  if (!p)
    return;
  size_t size;
  memcpy(&size, p, sizeof size);
  if (size < 16 || size > (1u << 24))
    EDGE_FAIL("%s: block %p has a damaged header (%zu)", who, (void *)p, size);
  for (size_t i = 8; i < size; i++)
    if (p[i] != (unsigned char)((size * 13) & 0xff))
      EDGE_FAIL("%s: block %p size %zu: byte %zu changed", who, (void *)p, size, i);
  free(p);
}

/* Leave a block for someone else; verify and free what was there. */
static void hand_off(unsigned seed, size_t size, const char *who)
{
  unsigned char *old = atomic_exchange(&handoff[seed % HANDOFF], blk_new(size));
  blk_free(old, who);
}

static void churn(unsigned seed, const char *who)
{
  unsigned char *v[20];
  for (int i = 0; i < 20; i++)
    v[i] = blk_new((seed * 31u + (unsigned)i * 977u) % 20000);
  for (int i = 19; i >= 0; i -= 2)
    blk_free(v[i], who);
  for (int i = 0; i < 20; i += 2)
    blk_free(v[i], who);
  hand_off(seed, (seed % 5000) + 16, who);
}

struct tl_obj {
  unsigned char *a, *b;
  unsigned seed;
  int armed;
};
static _Thread_local struct tl_obj tl;

static void tl_dtor(void *arg)
{
  struct tl_obj *o = arg;
  if (o != &tl)
    EDGE_FAIL("thread-local destructor got %p, not its object %p", arg, (void *)&tl);
  blk_free(o->a, "thread_local destructor");
  blk_free(o->b, "thread_local destructor");
  o->a = o->b = NULL;
  churn(o->seed + 7, "thread_local destructor");
  atomic_fetch_add(&tl_dtor_runs, 1);
}

static void key_dtor(void *value)
{
  unsigned char *p = value;
  size_t size;
  memcpy(&size, p, sizeof size);
  unsigned seed = (unsigned)size;
  blk_free(p, "pthread_key destructor");
  churn(seed, "pthread_key destructor");
  /* Re-arm once: the next destructor round runs after the other keys'
   * destructors (alloy's own thread-exit hook among them). */
  if (size % 2 == 0) {
    pthread_setspecific(key, blk_new(size + 1));
    atomic_fetch_add(&key_dtor_rearmed, 1);
  }
  atomic_fetch_add(&key_dtor_runs, 1);
}

static void tss_dtor(void *value)
{
  unsigned char *p = value;
  size_t size;
  memcpy(&size, p, sizeof size);
  blk_free(p, "tss destructor");
  churn((unsigned)size * 3, "tss destructor");
  atomic_fetch_add(&tss_dtor_runs, 1);
}

static void *thread_main(void *arg)
{
  unsigned id = (unsigned)(uintptr_t)arg;
  tl.seed = id;
  tl.a = blk_new(100 + id);
  tl.b = blk_new(5000 + id * 3);
  if (__cxa_thread_atexit_impl(tl_dtor, &tl, &__dso_handle) != 0)
    EDGE_FAIL("__cxa_thread_atexit_impl failed");
  if (pthread_setspecific(key, blk_new(64 + id * 2)) != 0)
    EDGE_FAIL("pthread_setspecific failed");
  if (tss_set(tss, blk_new(32 + id)) != thrd_success)
    EDGE_FAIL("tss_set failed");
  for (unsigned i = 0; i < 50; i++)
    churn(id * 100 + i, "thread body");
  atomic_fetch_add(&finished, 1);
  if (id % 3 == 0)
    pthread_exit(NULL);
  return NULL;
}

int main(void)
{
  require_alloy();
  if (pthread_key_create(&key, key_dtor) != 0 || tss_create(&tss, tss_dtor) != thrd_success)
    EDGE_FAIL("cannot create keys");
  int detached = 0;
  for (int w = 0; w < WAVES; w++) {
    pthread_t t[PER_WAVE];
    int joinable[PER_WAVE];
    for (int i = 0; i < PER_WAVE; i++) {
      unsigned id = (unsigned)(w * PER_WAVE + i);
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      joinable[i] = id % 4 != 1;
      if (!joinable[i]) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        detached++;
      }
      if (pthread_create(&t[i], &attr, thread_main, (void *)(uintptr_t)id) != 0)
        EDGE_FAIL("pthread_create failed");
      pthread_attr_destroy(&attr);
    }
    for (int i = 0; i < PER_WAVE; i++)
      if (joinable[i])
        pthread_join(t[i], NULL);
  }
  /* Detached threads: wait until every destructor has run. */
  for (int i = 0; i < 2000; i++) {
    if (atomic_load(&tl_dtor_runs) == NTHREADS && atomic_load(&tss_dtor_runs) == NTHREADS &&
        atomic_load(&key_dtor_runs) == NTHREADS + atomic_load(&key_dtor_rearmed))
      break;
    usleep(10000);
  }
  usleep(50000); /* let the last detached threads finish exiting */
  for (int i = 0; i < HANDOFF; i++)
    blk_free(atomic_exchange(&handoff[i], NULL), "main");
  printf("threads %d (detached %d), key destructors %d (re-armed %d), tss destructors %d, "
         "thread_local destructors %d\n",
         NTHREADS, detached, atomic_load(&key_dtor_runs), atomic_load(&key_dtor_rearmed),
         atomic_load(&tss_dtor_runs), atomic_load(&tl_dtor_runs));
  EDGE_CHECK(atomic_load(&finished) == NTHREADS);
  EDGE_CHECK(atomic_load(&tl_dtor_runs) == NTHREADS);
  EDGE_CHECK(atomic_load(&tss_dtor_runs) == NTHREADS);
  EDGE_CHECK(atomic_load(&key_dtor_rearmed) > 0);
  EDGE_CHECK(atomic_load(&key_dtor_runs) == NTHREADS + atomic_load(&key_dtor_rearmed));
  /* The allocator still works after all that. */
  churn(12345, "main at end");
  blk_free(atomic_exchange(&handoff[12345 % HANDOFF], NULL), "main");
  printf("thread_exit: ok\n");
  return 0;
}
