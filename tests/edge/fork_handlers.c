/*
 * fork_handlers.c - edge test: fork handlers of another library allocate.
 *
 * libfork_handlers.so (linked) registers its fork handlers before alloy's
 * are (alloy is preloaded), so they run inside fork's window: its prepare
 * handler after alloy's, which holds every lock of alloy's then, its
 * parent and child handlers before alloy's release them.  They allocate,
 * reallocate and free blocks of every tier, and free blocks other threads
 * allocated.  Two threads churn meanwhile; the main thread forks 40 times,
 * then a second thread forks 10 times.  Each child allocates, starts a
 * thread, and exits 0; an alarm turns a hang into a failure (alloy hung in
 * the first prepare handler before os_fork_window_open).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork_handlers.h"
#include "preload.h"

#define FORKS 40
#define THREAD_FORKS 10

static atomic_int stop;

static void *churn(void *arg) {
  uint64_t n = (uint64_t)(uintptr_t)arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    n = n * 6364136223846793005ull + 1442695040888963407ull;
    size_t size = (n >> 33) % 4 == 0 ? (n >> 40) % 200000 + 1 : (n >> 40) % 1000 + 1;
    unsigned char *p = malloc(size);
    if (!p) EDGE_FAIL("malloc(%zu) failed", size);
    memset(p, 7, size);
    free(atomic_exchange(&handler_inbox[(n >> 20) % HANDLER_INBOX], p));
  }
  return NULL;
}

static void *child_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) free(malloc((size_t)i * 37 % 5000 + 1));
  return malloc(100);
}

static int fork_and_wait(void) {
  unsigned before = fork_handler_counts.parent;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) EDGE_FAIL("fork failed");
  if (pid == 0) {
    alarm(20);
    if (fork_handler_counts.child == 0) _exit(2); /* the child handler ran, and found its blocks right */
    pthread_t t;
    void *res;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &res) != 0) _exit(3);
    free(res);
    _exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) EDGE_FAIL("waitpid failed");
  if (fork_handler_counts.parent != before + 1) EDGE_FAIL("the parent handler found a block wrong");
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "child %d killed by signal %d%s\n", (int)pid, WTERMSIG(status),
            WTERMSIG(status) == SIGALRM ? " (hung: alarm)" : "");
    return 1;
  }
  if (WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child %d exited with status %d\n", (int)pid, WEXITSTATUS(status));
    return 1;
  }
  return 0;
}

static void *forking_thread(void *arg) {
  int *failures = arg;
  for (int i = 0; i < THREAD_FORKS; i++) *failures += fork_and_wait();
  return NULL;
}

int main(void) {
  require_alloy();
  alarm(60); /* a hang in the parent (a prepare or parent handler) */
  pthread_t workers[2];
  for (uintptr_t i = 0; i < 2; i++)
    if (pthread_create(&workers[i], NULL, churn, (void *)(i + 1)) != 0) EDGE_FAIL("pthread_create failed");
  int failures = 0;
  for (int i = 0; i < FORKS; i++) failures += fork_and_wait();
  pthread_t forker;
  if (pthread_create(&forker, NULL, forking_thread, &failures) != 0 || pthread_join(forker, NULL) != 0)
    EDGE_FAIL("forking thread failed");
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(workers[i], NULL);
  if (fork_handler_counts.prepare != FORKS + THREAD_FORKS)
    EDGE_FAIL("prepare handler: %u of %d runs found every block right", fork_handler_counts.prepare,
              FORKS + THREAD_FORKS);
  printf("fork_handlers: %d forks, %d failures\n", FORKS + THREAD_FORKS, failures);
  return failures != 0;
}
