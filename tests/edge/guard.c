/*
 * guard.c - the guard options catch what they promise (run under
 * LD_PRELOAD=liballoy.so).  Each case runs in a child re-executed with its
 * own ALLOY_CONF; the parent checks the child died of SIGSEGV with the
 * option on and exited normally with it off, so the fault is the guard's.
 *   sample_overflow  guard_sample: one byte written past many 64-byte blocks
 *   sample_uaf       guard_sample: a write to blocks after they are freed
 *   large_overflow   guard: a write just past a large block's usable size
 *   huge_overflow    guard: a write just past a huge block's requested size
 */
#include "preload.h"

#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 20000

static void sample_overflow(void) {
  static char *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc(64);
  for (int i = 0; i < N; i++) ((volatile char *)p[i])[64] = 1; /* the byte after the block */
}

static void sample_uaf(void) {
  static char *p[N];
  for (int i = 0; i < N; i++) p[i] = malloc(64);
  for (int i = 0; i < N; i++) free(p[i]);
  for (int i = 0; i < N; i++) ((volatile char *)p[i])[8] = 1;
}

static void large_overflow(void) {
  char *p = malloc(300000);
  ((volatile char *)p)[malloc_usable_size(p)] = 1;
}

static void huge_overflow(void) {
  volatile size_t n = 5 * 1024 * 1024 + 100 * 16; /* a multiple of 16, not of the page */
  char *p = malloc(n);
  ((volatile char *)p)[n] = 1; /* n is volatile: the compiler cannot see the overflow */
}

static const struct {
  const char *name;
  const char *conf;
  void (*run)(void);
} cases[] = {
    {"sample_overflow", "guard_sample:4096", sample_overflow},
    {"sample_uaf", "guard_sample:4096", sample_uaf},
    {"large_overflow", "guard:true", large_overflow},
    {"huge_overflow", "guard:true", huge_overflow},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* Runs case i in a child, with the option on or off; returns its status. */
static int run_child(const char *self, size_t i, int on) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("ALLOY_CONF", on ? cases[i].conf : "guard:false", 1);
    char idx[8];
    snprintf(idx, sizeof idx, "%zu", i);
    execl(self, self, idx, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

int main(int argc, char **argv) {
  require_alloy();
  if (argc == 2) { /* child */
    cases[atoi(argv[1])].run();
    return 0;
  }
  int failed = 0;
  for (size_t i = 0; i < NCASES; i++) {
    int on = run_child(argv[0], i, 1), off = run_child(argv[0], i, 0);
    int caught = WIFSIGNALED(on) && WTERMSIG(on) == SIGSEGV;
    int quiet_off = WIFEXITED(off) && WEXITSTATUS(off) == 0;
    printf("%-16s %-18s %s, without it: %s\n", cases[i].name, cases[i].conf,
           caught ? "SIGSEGV (caught)" : "not caught", quiet_off ? "exit 0" : "FAILED");
    failed += !caught || !quiet_off;
  }
  printf("%d of %zu guard cases failed\n", failed, NCASES);
  return failed != 0;
}
