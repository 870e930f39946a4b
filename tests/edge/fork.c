/*
 * fork.c - edge test (c): fork while other threads allocate.
 *
 * Four threads allocate, verify and free continuously (and pass blocks to
 * each other) while the main thread forks 100 times.  Each child allocates,
 * verifies and frees a lot (also from a new thread of its own, and freeing
 * blocks inherited from the parent), then exits 0; an alarm turns a
 * deadlock into a failure.  The parent checks every child's status.  Then the
 * same is done 20 times with the fork issued from a non-main thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload.h"

#define WORKERS 4
#define SHARED 256
#define FORKS 100
#define THREAD_FORKS 20

static _Atomic(unsigned char *) shared[SHARED];
static atomic_int stop;
static unsigned char *inherited[64];

static unsigned char *blk_new(size_t size)
{
  if (size < 16)
    size = 16;
  unsigned char *p = malloc(size);
  if (!p)
    EDGE_FAIL("malloc(%zu) failed (pid %d)", size, (int)getpid());
  memcpy(p, &size, sizeof size);
  memset(p + 8, (int)(size & 0xff), size - 8);
  return p;
}

static void blk_free(unsigned char *p)
{
  if (!p)
    return;
  size_t size;
  memcpy(&size, p, sizeof size);
  if (size < 16 || size > (1u << 24))
    EDGE_FAIL("block %p: damaged header %zu (pid %d)", (void *)p, size, (int)getpid());
  for (size_t i = 8; i < size; i++)
    if (p[i] != (unsigned char)(size & 0xff))
      EDGE_FAIL("block %p size %zu: byte %zu changed (pid %d)", (void *)p, size, i,
                (int)getpid());
  free(p);
}

static size_t size_for(uint64_t x)
{
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 32;
  return (x % 16 == 0) ? (size_t)(x % 300000) : (size_t)(x % 2000);
}

static void *worker(void *arg)
{
  uint64_t n = (uint64_t)(uintptr_t)arg * 1000003;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    n++;
    unsigned char *p = blk_new(size_for(n));
    blk_free(atomic_exchange(&shared[n % SHARED], p));
    unsigned char *q = blk_new(size_for(n * 7));
    blk_free(q);
  }
  return NULL;
}

static void *child_thread(void *arg)
{
  (void)arg;
  for (uint64_t i = 0; i < 2000; i++)
    blk_free(blk_new(size_for(i + 99)));
  return blk_new(1000);
}

/* What a child does: exits 0 only if everything worked. */
static void child_work(unsigned k)
{
  alarm(30);
  unsigned char *mine[200];
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 200; i++)
      mine[i] = blk_new(size_for(k * 1000u + (unsigned)(round * 200 + i)));
    for (int i = 0; i < 200; i++)
      blk_free(mine[i]);
  }
  /* Blocks inherited from the parent are ours to free. */
  for (int i = 0; i < 64; i++)
    if (i % 2 == (int)(k % 2))
      blk_free(inherited[i]);
  /* Whatever the workers had published at the time of the fork. */
  for (int i = 0; i < SHARED; i += 5)
    blk_free(atomic_exchange(&shared[i], NULL));
  pthread_t t;
  void *res;
  if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &res) != 0)
    EDGE_FAIL("child: pthread failed");
  blk_free(res);
  char *s = strdup("child done");
  if (!s || strcmp(s, "child done"))
    EDGE_FAIL("child: strdup");
  free(s);
  exit(0);
}

static int fork_and_wait(unsigned k)
{
  fflush(stdout); /* or the child's exit would print our buffered lines again */
  pid_t pid = fork();
  if (pid < 0)
    EDGE_FAIL("fork failed");
  if (pid == 0)
    child_work(k);
  int status;
  if (waitpid(pid, &status, 0) != pid)
    EDGE_FAIL("waitpid failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFSIGNALED(status))
      fprintf(stderr, "child %u (pid %d) killed by signal %d%s\n", k, (int)pid,
              WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (deadlock: alarm)" : "");
    else
      fprintf(stderr, "child %u (pid %d) exited with status %d\n", k, (int)pid,
              WEXITSTATUS(status));
    return 1;
  }
  return 0;
}

static void *forking_thread(void *arg)
{
  (void)arg;
  int bad = 0;
  for (unsigned k = 0; k < THREAD_FORKS; k++)
    bad += fork_and_wait(1000 + k);
  return (void *)(intptr_t)bad;
}

int main(void)
{
  require_alloy();
  for (int i = 0; i < 64; i++)
    inherited[i] = blk_new((size_t)i * 4099 + 20);
  pthread_t w[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
      EDGE_FAIL("pthread_create failed");
  int bad = 0;
  for (unsigned k = 0; k < FORKS; k++)
    bad += fork_and_wait(k);
  printf("forks from main thread: %d of %d children failed\n", bad, FORKS);
  pthread_t f;
  void *res;
  if (pthread_create(&f, NULL, forking_thread, NULL) != 0 || pthread_join(f, &res) != 0)
    EDGE_FAIL("pthread_create failed");
  int tbad = (int)(intptr_t)res;
  printf("forks from another thread: %d of %d children failed\n", tbad, THREAD_FORKS);
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(w[i], NULL);
  for (int i = 0; i < SHARED; i++)
    blk_free(atomic_exchange(&shared[i], NULL));
  for (int i = 0; i < 64; i++)
    blk_free(inherited[i]);
  if (bad || tbad)
    return 1;
  printf("fork: ok\n");
  return 0;
}
