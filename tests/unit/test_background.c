/*
 * test_background.c - the background thread (src/background.c): an idle
 * thread's freed pages stay dirty while nothing allocates, and are purged
 * within a few decay periods once `background_thread` is written true; the
 * thread's statistics count its runs; writing false stops it.  Also a fork
 * while it runs: the child allocates, and starts its own thread again.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* TSan does not support threads started in the child of a multi-threaded
 * fork, which is what the fork test checks. */
#ifdef CHECK_TSAN
#define NO_FORK_TEST 1
#endif

enum { BLOCKS = 40000, BLOCK = 4000 };
static void *blocks[BLOCKS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase; /* 1: worker freed, idle; 2: worker may exit */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t dirty_bytes(void) {
  segment_totals_t t;
  segment_totals(&t);
  return t.dirty;
}

/* Builds 160 MB of 4000-byte blocks, frees all but one in a thousand (so
 * segments stay in use and their free slices must be purged, not
 * unmapped), then idles: no allocation, so no event, runs its decay. */
static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = alloy_malloc(BLOCK);
    if (blocks[i]) memset(blocks[i], 0x33, BLOCK);
  }
  for (int i = 0; i < BLOCKS; i++)
    if (i % 1000 != 0) alloy_free(blocks[i]);
  pthread_mutex_lock(&mu);
  phase = 1;
  pthread_cond_broadcast(&cv);
  while (phase != 2) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < BLOCKS; i += 1000) alloy_free(blocks[i]);
  return NULL;
}

static uint64_t bg_stat(const char *name) {
  uint64_t v = 0;
  size_t len = sizeof v;
  CHECK_EQ(alloy_mallctl(name, &v, &len, NULL, 0), 0);
  return v;
}

static void set_background(bool on) {
  CHECK_EQ(alloy_mallctl("background_thread", NULL, NULL, &on, sizeof on), 0);
  bool now = !on;
  size_t len = sizeof now;
  CHECK_EQ(alloy_mallctl("background_thread", &now, &len, NULL, 0), 0);
  CHECK_EQ(now, on);
}

static void test_idle_purge(void) {
  ssize_t decay = 200;
  CHECK_EQ(alloy_mallctl("arenas.dirty_decay_ms", NULL, NULL, &decay, sizeof decay), 0);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_mutex_lock(&mu);
  while (phase != 1) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  uint64_t before = dirty_bytes();
  CHECK_GE(before, 100u << 20);
  sleep_ms(4 * decay); /* nothing allocates: nothing purges */
  CHECK_GE(dirty_bytes(), before - (8u << 20));

  set_background(true);
  uint64_t left = before;
  for (int i = 0; i < 100 && (left = dirty_bytes()) > (8u << 20); i++) sleep_ms(50);
  CHECK_LT(left, 8u << 20);
  CHECK_EQ(bg_stat("stats.background_thread.num_threads"), 1);
  CHECK_GT(bg_stat("stats.background_thread.num_runs"), 0);
  CHECK_GT(bg_stat("stats.background_thread.run_interval"), 0);

  pthread_mutex_lock(&mu);
  phase = 2;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(t, NULL);
}

/* A fork while the thread runs: the child has none, allocates normally,
 * and its next events start one. */
static void test_fork(void) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
      void *p = alloy_malloc(64 + (size_t)(i % 512));
      if (p == NULL) bad++;
      alloy_free(p);
    }
    _exit(bad == 0 && background_running() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
  test_idle_purge();
#ifndef NO_FORK_TEST
  test_fork();
#endif
  set_background(false);
  CHECK_EQ(bg_stat("stats.background_thread.num_threads"), 0);
  bool on = true;
  CHECK_EQ(alloy_mallctl("background_thread", NULL, NULL, &on, 4), EINVAL);
  return check_done();
}
