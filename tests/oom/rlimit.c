/*
 * oom/rlimit.c - out of memory for real: a child process limits its address
 * space (setrlimit RLIMIT_AS = its current size + 64 MiB) and exhausts it
 * through each entry point of the prefixed API in turn:
 *
 *   malloc 64 B, 20 KiB, 300 KiB, 5 MiB; calloc 1000 B, 300 KiB;
 *   aligned_alloc(4096, 10000), aligned_alloc(1 MiB, 1 MiB);
 *   posix_memalign(256, 50000); realloc growing one block by half each time
 *
 * Each is called until it fails; the failure must be NULL with errno ENOMEM
 * (posix_memalign: returns ENOMEM, *out untouched; realloc: the old block
 * intact), never a crash, and not before a good part of the headroom is in
 * use (2/5 of it; 1/8 for the realloc chain, whose old and new blocks
 * coexist), whatever earlier phases freed (memory an allocator keeps cached
 * must be given back before it fails).  At that point, with the address
 * space full, every entry point asked for 32 MiB fails the same way (realloc
 * of a live block keeps it).  Blocks are chained through their first word
 * and carry a pattern checked before they are freed; calloc blocks must be
 * zero.  A few blocks of every size range stay alive throughout and must
 * keep their contents.  After each phase everything of the phase is freed;
 * at the end, with all freed, 64-byte blocks must fill at least 3/4 of what
 * they filled the first time (freed memory is usable again: nothing leaked,
 * no cache holds it).
 *
 * The parent only reports how the child ended (a signal is a failure).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloy.h"
#include "../check.h"
#include "../testutil.h" /* addr_key, xor_words_fill, xor_words_ok, all_bytes */

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define HEADROOM (64 * MiB)

enum kind { K_MALLOC, K_CALLOC, K_ALIGNED, K_POSIX };

struct phase {
  const char *name;
  enum kind kind;
  size_t size, align;
};

static const struct phase phases[] = {
    {"malloc(64)", K_MALLOC, 64, 0},
    {"malloc(20 KiB)", K_MALLOC, 20 * KiB, 0},
    {"malloc(300 KiB)", K_MALLOC, 300 * KiB, 0},
    {"malloc(5 MiB)", K_MALLOC, 5 * MiB, 0},
    {"calloc(1, 1000)", K_CALLOC, 1000, 0},
    {"calloc(1, 300 KiB)", K_CALLOC, 300 * KiB, 0},
    {"aligned_alloc(4096, 10000)", K_ALIGNED, 10000, 4096},
    {"aligned_alloc(1 MiB, 1 MiB)", K_ALIGNED, 1 * MiB, 1 * MiB},
    {"posix_memalign(256, 50000)", K_POSIX, 50000, 256},
};
#define NPHASES (sizeof phases / sizeof phases[0])

/* A block: [0] next block, [1] its size, then a pattern keyed by address. */
static void blk_fill(unsigned char *p, size_t size, void *next)
{
  memcpy(p, &next, 8);
  memcpy(p + 8, &size, 8);
  xor_words_fill(p, 16, size, addr_key(p));
}

/* The pattern written at address `at` (realloc may have moved it to p). */
static bool blk_ok_from(const unsigned char *p, size_t size, const void *at)
{
  size_t stored;
  memcpy(&stored, p + 8, 8);
  if (stored != size)
    return false;
  return xor_words_ok(p, 16, size, addr_key(at));
}

static bool blk_ok(const unsigned char *p, size_t size) { return blk_ok_from(p, size, p); }

/* Frees a chain after checking every block; returns how many were bad. */
static size_t chain_free(unsigned char *head, size_t size)
{
  size_t bad = 0;
  while (head) {
    unsigned char *next;
    memcpy(&next, head, 8);
    if (!blk_ok(head, size))
      bad++;
    alloy_free(head);
    head = next;
  }
  return bad;
}

/* One allocation of the phase's kind; *err gets errno (or the return code). */
static void *alloc_one(const struct phase *ph, int *err)
{
  errno = 0;
  void *p = NULL;
  switch (ph->kind) {
  case K_MALLOC:
    p = alloy_malloc(ph->size);
    break;
  case K_CALLOC:
    p = alloy_calloc(1, ph->size);
    break;
  case K_ALIGNED:
    p = alloy_aligned_alloc(ph->align, ph->size);
    break;
  case K_POSIX: {
    void *sentinel = (void *)&p, *out = sentinel;
    int rc = alloy_posix_memalign(&out, ph->align, ph->size);
    if (rc != 0) {
      CHECK_MSG(out == sentinel, "failed posix_memalign changed *out");
      *err = rc;
      return NULL;
    }
    return out;
  }
  }
  *err = errno;
  return p;
}

/* Survivors: a few blocks of every size range, alive through everything. */
static const size_t survivor_sizes[] = {24,    100,    1000,    8000,   20000,
                                        70000, 300000, 1 * MiB, 3 * MiB};
#define NSURV (sizeof survivor_sizes / sizeof survivor_sizes[0])
static unsigned char *survivors[NSURV];
static bool survivors_alive;

static void check_survivors(const char *when)
{
  for (size_t i = 0; i < NSURV; i++)
    CHECK_MSG(blk_ok(survivors[i], survivor_sizes[i]), "survivor of %zu bytes damaged %s",
              survivor_sizes[i], when);
}

/* With the address space full: 32 MiB through every entry point fails. */
static void check_all_fail(const char *after)
{
  const size_t big = 32 * MiB;
  errno = 0;
  void *p = alloy_malloc(big);
  CHECK_MSG(p == NULL && errno == ENOMEM, "after %s: malloc(32 MiB) = %p errno %d", after, p,
            errno);
  errno = 0;
  p = alloy_calloc(4, big / 4);
  CHECK_MSG(p == NULL && errno == ENOMEM, "after %s: calloc(32 MiB) = %p errno %d", after, p,
            errno);
  errno = 0;
  p = alloy_aligned_alloc(4096, big);
  CHECK_MSG(p == NULL && errno == ENOMEM, "after %s: aligned_alloc(32 MiB) = %p errno %d", after, p,
            errno);
  errno = 0;
  p = alloy_memalign(64, big);
  CHECK_MSG(p == NULL && errno == ENOMEM, "after %s: memalign(32 MiB) = %p errno %d", after, p,
            errno);
  void *sentinel = &p, *out = sentinel;
  int rc = alloy_posix_memalign(&out, 64, big);
  CHECK_MSG(rc == ENOMEM && out == sentinel, "after %s: posix_memalign(32 MiB) = %d", after, rc);
  for (size_t i = 0; survivors_alive && i < NSURV; i += 4) {
    errno = 0;
    p = alloy_realloc(survivors[i], big);
    CHECK_MSG(p == NULL && errno == ENOMEM, "after %s: realloc(survivor %zu, 32 MiB) = %p errno %d",
              after, survivor_sizes[i], p, errno);
    if (p) { /* the survivor lives on at its new address */
      CHECK_MSG(blk_ok_from(p, survivor_sizes[i], survivors[i]),
                "realloc(survivor %zu) did not keep its contents", survivor_sizes[i]);
      survivors[i] = p;
      blk_fill(p, survivor_sizes[i], NULL);
    }
  }
  if (survivors_alive)
    check_survivors(after);
}

/* Allocates with the phase's entry point until it fails; returns the bytes
 * obtained (then freed). */
static size_t exhaust(const struct phase *ph, bool verbose)
{
  unsigned char *head = NULL;
  size_t count = 0;
  int err = 0;
  for (;;) {
    unsigned char *p = alloc_one(ph, &err);
    if (!p)
      break;
    if (ph->kind == K_CALLOC && count % 16 == 0)
      CHECK_MSG(all_bytes(p, ph->size, 0), "%s: block %zu not zeroed", ph->name, count);
    if (ph->align)
      CHECK_ALIGNED(p, ph->align);
    blk_fill(p, ph->size, head);
    head = p;
    if (++count > 100000000) {
      CHECK_MSG(0, "%s: never failed", ph->name);
      break;
    }
  }
  CHECK_MSG(err == ENOMEM, "%s failed with %d (%s), want ENOMEM", ph->name, err, strerror(err));
  /* Everything earlier phases freed is available again: each phase gets a
   * good part of the headroom (5 MiB blocks need a spare 4 MiB to be placed
   * on 4 MiB boundaries; 1 MiB-aligned blocks use 3/4 of a segment). */
  CHECK_MSG(count * ph->size >= HEADROOM / 5 * 2,
            "%s: ENOMEM after only %zu MiB of %zu MiB headroom (is freed memory held back?)",
            ph->name, count * ph->size / MiB, HEADROOM / MiB);
  if (verbose)
    printf("  %-28s %8zu blocks, %6zu MiB before ENOMEM\n", ph->name, count,
           count * ph->size / MiB);
  check_all_fail(ph->name);
  size_t bad = chain_free(head, ph->size);
  CHECK_MSG(bad == 0, "%s: %zu blocks lost their contents", ph->name, bad);
  return count * ph->size;
}

/* realloc growing one block by half each time until it fails. */
static void exhaust_realloc(void)
{
  size_t n = 64;
  unsigned char *p = alloy_malloc(n);
  REQUIRE(p != NULL);
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(i * 13);
  for (;;) {
    size_t next = n + n / 2;
    errno = 0;
    unsigned char *q = alloy_realloc(p, next);
    if (!q) {
      CHECK_MSG(errno == ENOMEM, "realloc(%zu -> %zu) failed with errno %d", n, next, errno);
      break;
    }
    p = q;
    for (size_t i = n; i < next; i++)
      p[i] = (unsigned char)(i * 13);
    n = next;
    if (n > HEADROOM * 2) {
      CHECK_MSG(0, "realloc grew past the address-space limit (%zu bytes)", n);
      break;
    }
  }
  size_t bad = SIZE_MAX;
  for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
    if (p[i] != (unsigned char)(i * 13))
      bad = i;
  CHECK_MSG(bad == SIZE_MAX, "failed realloc damaged the block at byte %zu", bad);
  CHECK_MSG(n >= HEADROOM / 8, "realloc growth failed at %zu MiB of %zu MiB headroom", n / MiB,
            HEADROOM / MiB);
  printf("  %-28s grew to %zu MiB before ENOMEM\n", "realloc(x1.5)", n / MiB);
  check_all_fail("realloc growth");
  alloy_free(p);
}

static size_t vm_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1)
      pages = 0;
    fclose(f);
  }
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static int child(void)
{
  alarm(120);
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (size_t i = 0; i < NSURV; i++) {
    survivors[i] = alloy_malloc(survivor_sizes[i]);
    REQUIRE(survivors[i] != NULL);
    blk_fill(survivors[i], survivor_sizes[i], NULL);
  }
  survivors_alive = true;
  printf("oom/rlimit: address space limited to current + %zu MiB\n", HEADROOM / MiB);
  fflush(stdout); /* stdio's buffer exists before the limit */
  size_t vm = vm_bytes();
  REQUIRE(vm > 0);
  struct rlimit rl = {vm + HEADROOM, vm + HEADROOM};
  REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0);

  size_t first = exhaust(&phases[0], true);
  CHECK_MSG(first >= HEADROOM / 4, "only %zu MiB of 64-byte blocks in %zu MiB of headroom",
            first / MiB, HEADROOM / MiB);
  for (size_t i = 1; i < NPHASES; i++)
    exhaust(&phases[i], true);
  exhaust_realloc();
  check_survivors("after the phases");

  /* Everything freed: the memory is usable again. */
  for (size_t i = 0; i < NSURV; i++)
    alloy_free(survivors[i]);
  survivors_alive = false;
  for (size_t i = 0; i < NPHASES; i++) {
    int err;
    void *p = alloc_one(&phases[i], &err);
    CHECK_MSG(p != NULL, "%s fails after everything was freed (errno %d)", phases[i].name, err);
    alloy_free(p);
  }
  size_t again = exhaust(&phases[0], true);
  CHECK_MSG(again >= first / 4 * 3,
            "after freeing everything, 64-byte blocks fill %zu MiB, first time %zu MiB",
            again / MiB, first / MiB);
  fflush(stdout);
  return check_done();
}

int main(void)
{
  fflush(stdout);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0)
    _exit(child());
  int status;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) {
    printf("oom/rlimit: the child was killed by signal %d (%s)\n", WTERMSIG(status),
           strsignal(WTERMSIG(status)));
    return 1;
  }
  printf("oom/rlimit: child exited with status %d\n", WEXITSTATUS(status));
  return WEXITSTATUS(status) != 0;
}
