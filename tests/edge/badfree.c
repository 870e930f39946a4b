/*
 * badfree.c - edge test (e): free() of pointers alloy never returned.
 * Usage: badfree [MODE...]   MODE: stack global mmap-middle (the default set),
 *                            interior double (run only when named: a free of
 *                            p + 16 for a live 100-byte block p, and a second
 *                            free of a freed block)
 *
 * For each mode a child process frees such a pointer; the parent captures the
 * child's stderr and expects it to contain "alloy:" and the pointer's address
 * (as a 0x... hex number, compared by value), and the child to be killed by
 * SIGABRT.  Anything else (exit, another signal such as SIGSEGV, no report)
 * is a failure.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload.h"

static char global_buf[4096];

/* Hidden from the compiler, which would otherwise warn about (or drop) a
 * free of a non-heap object. */
static void *volatile launder_slot;
static void *launder(void *p)
{
  launder_slot = p;
  return launder_slot;
}

static void *bad_pointer(const char *mode, char *stack_buf)
{
  if (strcmp(mode, "stack") == 0)
    return launder(stack_buf + 32);
  if (strcmp(mode, "global") == 0)
    return launder(global_buf + 64);
  if (strcmp(mode, "mmap-middle") == 0) {
    size_t len = 8u << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      EDGE_FAIL("mmap failed");
    memset(m, 0x77, len);
    return launder(m + len / 2 + 48);
  }
  if (strcmp(mode, "interior") == 0) {
    char *p = malloc(100);
    memset(p, 1, 100);
    return launder(p + 16);
  }
  if (strcmp(mode, "double") == 0) {
    void *p = launder(malloc(100));
    free(p);
    return p; /* freed once already */
  }
  EDGE_FAIL("unknown mode %s", mode);
}

/* True when text contains a 0x... number equal to want. */
static int mentions_address(const char *text, uintptr_t want)
{
  for (const char *s = text; (s = strstr(s, "0x")) != NULL; s += 2) {
    char *end;
    unsigned long long v = strtoull(s, &end, 16);
    if (end > s + 2 && (uintptr_t)v == want)
      return 1;
  }
  return 0;
}

static int run_mode(const char *mode)
{
  int errpipe[2], addrpipe[2];
  if (pipe(errpipe) != 0 || pipe(addrpipe) != 0)
    EDGE_FAIL("pipe failed");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    EDGE_FAIL("fork failed");
  if (pid == 0) {
    char stack_buf[256];
    memset(stack_buf, 1, sizeof stack_buf);
    alarm(20);
    dup2(errpipe[1], 2);
    close(errpipe[0]);
    close(addrpipe[0]);
    void *p = bad_pointer(mode, stack_buf);
    uintptr_t a = (uintptr_t)p;
    if (write(addrpipe[1], &a, sizeof a) != (ssize_t)sizeof a)
      _exit(3);
    close(addrpipe[1]);
    free(p);
    /* Still here: the invalid free went unnoticed. */
    fprintf(stderr, "free(%#lx) returned normally\n", (unsigned long)a);
    _exit(0);
  }
  close(errpipe[1]);
  close(addrpipe[1]);
  uintptr_t addr = 0;
  ssize_t got = read(addrpipe[0], &addr, sizeof addr);
  close(addrpipe[0]);
  char err[8192];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof err - 1 && (n = read(errpipe[0], err + len, sizeof err - 1 - len)) > 0)
    len += (size_t)n;
  err[len] = 0;
  close(errpipe[0]);
  int status;
  if (waitpid(pid, &status, 0) != pid)
    EDGE_FAIL("waitpid failed");

  int ok = 1;
  printf("--- %s: free(%#lx); child stderr:\n%s---\n", mode, (unsigned long)addr, err);
  if (got != (ssize_t)sizeof addr) {
    printf("%s: child did not report the address\n", mode);
    ok = 0;
  }
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
    if (WIFSIGNALED(status))
      printf("%s: child killed by signal %d (%s), want SIGABRT\n", mode, WTERMSIG(status),
             strsignal(WTERMSIG(status)));
    else
      printf("%s: child exited with status %d, want death by SIGABRT\n", mode,
             WEXITSTATUS(status));
    ok = 0;
  }
  if (!strstr(err, "alloy:")) {
    printf("%s: stderr does not contain \"alloy:\"\n", mode);
    ok = 0;
  }
  if (!mentions_address(err, addr)) {
    printf("%s: stderr does not name the address %#lx\n", mode, (unsigned long)addr);
    ok = 0;
  }
  printf("%s: %s\n", mode, ok ? "ok" : "FAILED");
  return ok;
}

int main(int argc, char **argv)
{
  require_alloy();
  const char *all[] = {"stack", "global", "mmap-middle"};
  int failures = 0;
  if (argc > 1) {
    for (int i = 1; i < argc; i++)
      failures += !run_mode(argv[i]);
  } else {
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      failures += !run_mode(all[i]);
  }
  return failures ? 1 : 0;
}
