/*
 * test_first_call.c - calls that may come before any malloc of the process
 * answer as they do afterwards: nallocx must initialise what it reads (the
 * size classes and the OS page size), not return 0 from empty tables.
 * Each case runs in a fresh child process, where that call is the first.
 */
#include "check.h"

#include <alloy.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn in a child whose first allocator call it makes; true when fn
 * returned true. */
static bool first_call(bool (*fn)(void)) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool nallocx_small(void) { return alloy_nallocx(100, 0) == 112; }
static bool nallocx_large(void) { return alloy_nallocx(100 * 1024, 0) == 100 * 1024; }
static bool nallocx_aligned(void) { return alloy_nallocx(1, ALLOY_MALLOCX_LG_ALIGN(12)) == 4096; }

int main(void) {
  CHECK(first_call(nallocx_small));
  CHECK(first_call(nallocx_large));
  CHECK(first_call(nallocx_aligned));
  /* the same answers once the process is running */
  void *p = alloy_malloc(1);
  CHECK(nallocx_small() && nallocx_large() && nallocx_aligned());
  alloy_free(p);
  return check_done();
}
