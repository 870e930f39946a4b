/*
 * jemalloc_api.c - a client of jemalloc's public API, compiled against
 * Debian's <jemalloc/jemalloc.h> and linked either with -ljemalloc (the
 * reference: every check here holds on jemalloc 5.3.0) or with -lalloy
 * instead (tests/programs/jemalloc_api.sh builds and runs both).
 *
 * It checks the extended API (mallocx and its flags, rallocx, xallocx,
 * sallocx, nallocx, dallocx, sdallocx), the control namespace (version,
 * epoch, stats.*, arenas.*, arena.<i>.*, tcache.*, thread.allocatedp,
 * names and MIBs, jemalloc's error codes), malloc_stats_print, the call
 * sequences of Debian's redis-server and bind9 libisc, and that every one
 * of these symbols comes from the library named by JEMALLOC_API_EXPECT
 * ("alloy" or "jemalloc").  Each failed check prints a "FAIL [section]"
 * line; the exit status is 1 when one failed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *section = "";
static int nchecks, nfailed, section_failed;
static const char *expect = "";

#define CHECK(cond, ...) check_((cond), __LINE__, __VA_ARGS__)

static void check_(bool ok, int line, const char *fmt, ...) {
  nchecks++;
  if (ok) return;
  nfailed++;
  section_failed++;
  printf("FAIL [%s] line %d: ", section, line);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

static void begin(const char *name) {
  section = name;
  section_failed = 0;
}

static void end(void) { printf("%-14s %s\n", section, section_failed ? "FAILED" : "ok"); }

static const char *err_name(int e) {
  switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    default: return "other";
  }
}

/* mallctl(name, ...) must return want; FAIL lines give the caller's line. */
#define expect_rc(...) expect_rc_(__LINE__, __VA_ARGS__)
static int expect_rc_(int line, int want, const char *name, void *oldp, size_t *oldlenp,
                      void *newp, size_t newlen) {
  int rc = mallctl(name, oldp, oldlenp, newp, newlen);
  check_(rc == want, line, "mallctl(\"%s\") returned %d (%s), expected %s", name, rc,
         err_name(rc), err_name(want));
  return rc;
}

/* Typed reads: false (and a FAIL line) when mallctl does not answer 0. */
#define read_size(name, v) read_value_(__LINE__, (name), (v), sizeof(size_t))
#define read_unsigned(name, v) read_value_(__LINE__, (name), (v), sizeof(unsigned))
static bool read_value_(int line, const char *name, void *v, size_t size) {
  size_t len = size;
  return expect_rc_(line, 0, name, v, &len, NULL, 0) == 0;
}

#define refresh() refresh_(__LINE__)
static void refresh_(int line) {
  uint64_t e = 1;
  size_t len = sizeof e;
  expect_rc_(line, 0, "epoch", &e, &len, &e, sizeof e);
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return false;
  return true;
}

#define MiB ((size_t)1 << 20)

/* ------------------------------------------------------------- symbols */

static void test_symbols(void) {
  begin("symbols");
  static const char *const names[] = {
      "malloc", "free", "calloc", "realloc", "posix_memalign", "aligned_alloc",
      "malloc_usable_size", "mallocx", "rallocx", "xallocx", "sallocx", "dallocx", "sdallocx",
      "nallocx", "mallctl", "mallctlnametomib", "mallctlbymib", "malloc_stats_print"};
  const char *lib = strcmp(expect, "alloy") == 0 ? "liballoy" : "libjemalloc";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *sym = dlsym(RTLD_DEFAULT, names[i]);
    Dl_info info;
    bool found = sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL;
    CHECK(found && strstr(info.dli_fname, lib) != NULL, "%s resolves to %s, expected %s",
          names[i], found ? info.dli_fname : "(nothing)", lib);
  }
  const char *version = NULL;
  size_t len = sizeof version;
  if (expect_rc(0, "version", &version, &len, NULL, 0) == 0 && version != NULL) {
    printf("version: %s\n", version);
    if (strcmp(expect, "alloy") == 0)
      CHECK(strstr(version, "alloy") != NULL, "version \"%s\" is not alloy's", version);
    else
      CHECK(strcmp(version, JEMALLOC_VERSION) == 0, "version \"%s\", header says \"%s\"", version,
            JEMALLOC_VERSION);
    CHECK(strncmp(version, "5.", 2) == 0, "version \"%s\" does not start with jemalloc's major 5.",
          version);
  }
  end();
}

/* --------------------------------------------------------- extended API */

static const size_t sizes[] = {1, 8, 100, 1000, 4096, 20000, 65536, 300000, 3 * MiB};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_mallocx(void) {
  begin("mallocx");
  static const int aligns[] = {0, 16, 64, 4096, 65536, 2 * 1024 * 1024};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
    for (size_t i = 0; i < NSIZES; i++) {
      size_t n = sizes[i];
      int flags = aligns[a] ? MALLOCX_ALIGN(aligns[a]) : 0;
      unsigned char *p = mallocx(n, flags);
      CHECK(p != NULL, "mallocx(%zu, MALLOCX_ALIGN(%d)) = NULL", n, aligns[a]);
      if (p == NULL) continue;
      if (aligns[a]) {
        CHECK((uintptr_t)p % (uintptr_t)aligns[a] == 0, "mallocx(%zu, MALLOCX_ALIGN(%d)) = %p", n,
              aligns[a], (void *)p);
        /* the same alignment through MALLOCX_LG_ALIGN */
        int lg = __builtin_ctz((unsigned)aligns[a]);
        void *q = mallocx(n, MALLOCX_LG_ALIGN(lg));
        CHECK(q != NULL && (uintptr_t)q % (uintptr_t)aligns[a] == 0,
              "mallocx(%zu, MALLOCX_LG_ALIGN(%d)) = %p", n, lg, q);
        if (q) sdallocx(q, n, MALLOCX_LG_ALIGN(lg));
      }
      size_t usable = sallocx(p, 0);
      CHECK(usable >= n, "sallocx = %zu < %zu", usable, n);
      CHECK(nallocx(n, flags) == usable, "nallocx(%zu, align %d) = %zu, sallocx = %zu", n,
            aligns[a], nallocx(n, flags), usable);
      CHECK(malloc_usable_size(p) == usable, "malloc_usable_size %zu != sallocx %zu",
            malloc_usable_size(p), usable);
      memset(p, 0xa5, usable);
      if (i % 2) sdallocx(p, n, flags);
      else dallocx(p, flags);
    }
  CHECK(nallocx(SIZE_MAX, 0) == 0, "nallocx(SIZE_MAX) = %zu", nallocx(SIZE_MAX, 0));
  void *huge = mallocx(SIZE_MAX / 2, 0);
  CHECK(huge == NULL, "mallocx(SIZE_MAX / 2) = %p", huge);

  /* MALLOCX_ZERO: blocks that were dirtied and freed come back zeroed */
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = sizes[i];
    unsigned char *d = mallocx(n, 0);
    memset(d, 0xff, sallocx(d, 0));
    dallocx(d, 0);
    unsigned char *p = mallocx(n, MALLOCX_ZERO);
    CHECK(p != NULL && all_bytes(p, n, 0), "mallocx(%zu, MALLOCX_ZERO) not zeroed", n);
    unsigned char *q = mallocx(n, MALLOCX_ZERO | MALLOCX_ALIGN(4096));
    CHECK(q != NULL && (uintptr_t)q % 4096 == 0 && all_bytes(q, n, 0),
          "mallocx(%zu, MALLOCX_ZERO | MALLOCX_ALIGN(4096)) not zeroed or aligned", n);
    dallocx(p, 0);
    dallocx(q, 0);
  }
  void *t = mallocx(64, MALLOCX_TCACHE_NONE);
  CHECK(t != NULL, "mallocx(64, MALLOCX_TCACHE_NONE) = NULL");
  dallocx(t, MALLOCX_TCACHE_NONE);
  end();
}

static void test_rallocx_xallocx(void) {
  begin("rallocx");
  for (size_t i = 0; i < NSIZES; i++)
    for (size_t j = 0; j < NSIZES; j++) {
      size_t a = sizes[i], b = sizes[j];
      unsigned char *p = mallocx(a, 0);
      size_t old = sallocx(p, 0);
      memset(p, 0x5a, old);
      unsigned char *q = rallocx(p, b, MALLOCX_ZERO);
      CHECK(q != NULL, "rallocx(%zu -> %zu) = NULL", a, b);
      if (q == NULL) {
        dallocx(p, 0);
        continue;
      }
      size_t now = sallocx(q, 0);
      CHECK(now >= b && now == nallocx(b, 0), "rallocx(%zu -> %zu): sallocx %zu, nallocx %zu", a,
            b, now, nallocx(b, 0));
      size_t keep = old < b ? old : b;
      CHECK(all_bytes(q, keep, 0x5a), "rallocx(%zu -> %zu) lost the contents", a, b);
      if (b > old) /* MALLOCX_ZERO: bytes past the old real size are zero */
        CHECK(all_bytes(q + old, b - old, 0), "rallocx(%zu -> %zu, MALLOCX_ZERO): growth not zeroed",
              a, b);
      unsigned char *r = rallocx(q, a, MALLOCX_ALIGN(4096));
      CHECK(r != NULL && (uintptr_t)r % 4096 == 0, "rallocx(%zu, MALLOCX_ALIGN(4096)) = %p", a,
            (void *)r);
      dallocx(r ? r : q, 0);
    }
  end();

  begin("xallocx");
  unsigned char *p = mallocx(100, 0);
  size_t usable = sallocx(p, 0);
  memset(p, 0x11, usable);
  size_t r = xallocx(p, 50, 0, 0); /* shrinking within the size class always succeeds */
  CHECK(r >= 50 && r == sallocx(p, 0), "xallocx(p, 50, 0) = %zu, sallocx %zu", r, sallocx(p, 0));
  r = xallocx(p, usable, 0, 0);
  CHECK(r == usable, "xallocx(p, usable %zu) = %zu", usable, r);
  r = xallocx(p, 64 * MiB, 0, 0); /* may or may not grow in place; says which */
  CHECK(r == sallocx(p, 0), "xallocx(p, 64 MiB) = %zu but sallocx = %zu", r, sallocx(p, 0));
  CHECK(all_bytes(p, usable, 0x11), "xallocx changed the contents");
  dallocx(p, 0);
  unsigned char *big = mallocx(4 * MiB, 0);
  memset(big, 0x22, 4 * MiB);
  r = xallocx(big, 4 * MiB, 2 * MiB, 0); /* size + extra: at least size */
  CHECK(r >= 4 * MiB && r == sallocx(big, 0), "xallocx(4 MiB, extra 2 MiB) = %zu, sallocx %zu", r,
        sallocx(big, 0));
  r = xallocx(big, 1 * MiB, 0, 0);
  CHECK(r >= 1 * MiB && r == sallocx(big, 0), "xallocx(4 MiB -> 1 MiB) = %zu, sallocx %zu", r,
        sallocx(big, 0));
  CHECK(all_bytes(big, 1 * MiB, 0x22), "xallocx changed the contents of a large block");
  sdallocx(big, r, 0);
  end();
}

/* ------------------------------------------------------------- mallctl */

static void test_stats(void) {
  begin("stats");
  expect_rc(0, "arena.4096.purge", NULL, NULL, NULL, 0); /* a low resident baseline */
  refresh();
  size_t s0[6];
  static const char *const names[] = {"stats.allocated", "stats.active", "stats.resident",
                                      "stats.mapped", "stats.retained", "stats.metadata"};
  for (int i = 0; i < 6; i++)
    if (!read_size(names[i], &s0[i])) s0[i] = 0;
  printf("stats: allocated %zu active %zu resident %zu mapped %zu retained %zu metadata %zu\n",
         s0[0], s0[1], s0[2], s0[3], s0[4], s0[5]);
  CHECK(s0[0] > 0 && s0[0] <= s0[1], "allocated %zu, active %zu", s0[0], s0[1]);
  CHECK(s0[1] <= s0[2], "active %zu > resident %zu", s0[1], s0[2]);
  CHECK(s0[1] <= s0[3], "active %zu > mapped %zu", s0[1], s0[3]);
  CHECK(s0[5] > 0, "metadata %zu", s0[5]);

  /* 64 MiB in 1 MiB blocks (past any thread cache), touched */
  enum { N = 64 };
  void *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = mallocx(MiB, 0);
    memset(blocks[i], 1, MiB);
  }
  refresh();
  size_t s1[3];
  for (int i = 0; i < 3; i++)
    if (!read_size(names[i], &s1[i])) s1[i] = 0;
  printf("stats after 64 MiB: allocated %zu active %zu resident %zu\n", s1[0], s1[1], s1[2]);
  for (int i = 0; i < 3; i++) /* resident: some pages may have been resident already */
    CHECK(s1[i] >= s0[i] + (i == 2 ? 48 : 60) * MiB,
          "%s grew by %zd bytes after allocating and touching 64 MiB", names[i],
          (ssize_t)(s1[i] - s0[i]));
  CHECK(s1[0] <= s1[1] && s1[1] <= s1[2], "allocated %zu <= active %zu <= resident %zu", s1[0],
        s1[1], s1[2]);
  for (int i = 0; i < N; i++) dallocx(blocks[i], 0);
  refresh();
  size_t s2[3];
  for (int i = 0; i < 3; i++)
    if (!read_size(names[i], &s2[i])) s2[i] = 0;
  CHECK(s2[0] + 60 * MiB <= s1[0], "allocated fell by %zd bytes after freeing 64 MiB",
        (ssize_t)(s1[0] - s2[0]));
  CHECK(s2[1] + 60 * MiB <= s1[1], "active fell by %zd bytes after freeing 64 MiB",
        (ssize_t)(s1[1] - s2[1]));
  /* what redis's MEMORY PURGE does: arena.<narenas>.purge purges every arena */
  unsigned narenas = 0;
  if (read_unsigned("arenas.narenas", &narenas)) {
    char name[64];
    snprintf(name, sizeof name, "arena.%u.purge", narenas);
    expect_rc(0, name, NULL, NULL, NULL, 0);
  }
  refresh();
  size_t s3[3];
  for (int i = 0; i < 3; i++)
    if (!read_size(names[i], &s3[i])) s3[i] = 0;
  printf("stats after free and purge: allocated %zu active %zu resident %zu\n", s3[0], s3[1],
         s3[2]);
  CHECK(s3[2] + 32 * MiB <= s1[2], "resident fell by only %zd bytes after freeing 64 MiB and purging",
        (ssize_t)(s1[2] - s3[2]));
  /* a read without a buffer, a read-only value written */
  expect_rc(0, "stats.allocated", NULL, NULL, NULL, 0);
  end();
}

static void test_arenas(void) {
  begin("arenas");
  unsigned narenas = 0, nbins = 0;
  size_t page = 0, quantum = 0;
  read_unsigned("arenas.narenas", &narenas);
  CHECK(narenas >= 1, "arenas.narenas = %u", narenas);
  read_unsigned("arenas.nbins", &nbins);
  CHECK(nbins >= 8, "arenas.nbins = %u", nbins);
  read_size("arenas.page", &page);
  CHECK(page >= 4096 && (page & (page - 1)) == 0, "arenas.page = %zu", page);
  read_size("arenas.quantum", &quantum);
  CHECK(quantum == 16, "arenas.quantum = %zu", quantum);
  expect_rc(0, "arena.0.purge", NULL, NULL, NULL, 0);
  expect_rc(0, "arena.0.decay", NULL, NULL, NULL, 0);
  expect_rc(0, "arena.4096.purge", NULL, NULL, NULL, 0); /* MALLCTL_ARENAS_ALL */

  /* an explicit arena */
  unsigned a = 0;
  size_t len = sizeof a;
  bool created = expect_rc(0, "arenas.create", &a, &len, NULL, 0) == 0;
  if (!created) {
    end();
    return;
  }
  unsigned after = 0;
  read_unsigned("arenas.narenas", &after);
  CHECK(a >= narenas && after == narenas + 1, "arenas.create gave %u; narenas %u -> %u", a,
        narenas, after);
  int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
  enum { N = 100 };
  void *small[N];
  size_t small_bytes = 0;
  for (int i = 0; i < N; i++) {
    small[i] = mallocx(1000, flags);
    CHECK(small[i] != NULL, "mallocx(1000, MALLOCX_ARENA(%u) | MALLOCX_TCACHE_NONE) = NULL", a);
    if (small[i]) small_bytes += sallocx(small[i], 0);
  }
  void *large = mallocx(MiB, flags | MALLOCX_ZERO);
  CHECK(large != NULL && all_bytes(large, MiB, 0), "mallocx(1 MiB, arena | zero)");
  for (int k = 0; k < 2; k++) {
    void *p = k ? large : small[0];
    if (p == NULL) continue;
    unsigned owner = ~0u;
    len = sizeof owner;
    expect_rc(0, "arenas.lookup", &owner, &len, &p, sizeof p);
    CHECK(owner == a, "arenas.lookup(%s block) = %u, expected arena %u", k ? "large" : "small",
          owner, a);
  }
  void *mine = malloc(100);
  unsigned owner = ~0u;
  len = sizeof owner;
  expect_rc(0, "arenas.lookup", &owner, &len, &mine, sizeof mine);
  CHECK(owner != a && owner < after, "arenas.lookup(malloc'd block) = %u", owner);
  free(mine);

  char name[96];
  refresh();
  size_t v = 0;
  snprintf(name, sizeof name, "stats.arenas.%u.small.allocated", a);
  if (read_size(name, &v))
    CHECK(v >= small_bytes, "%s = %zu, expected at least %zu", name, v, small_bytes);
  snprintf(name, sizeof name, "stats.arenas.%u.large.allocated", a);
  if (read_size(name, &v)) CHECK(v >= MiB, "%s = %zu, expected at least 1 MiB", name, v);
  snprintf(name, sizeof name, "stats.arenas.%u.pactive", a);
  if (read_size(name, &v))
    CHECK(v * page >= small_bytes + MiB, "%s = %zu pages, expected %zu bytes", name, v,
          small_bytes + MiB);

  /* decay settings, as bind9 sets them */
  ssize_t ms = 0;
  snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", a);
  expect_rc(0, name, NULL, NULL, &ms, sizeof ms);
  ssize_t got = -5;
  len = sizeof got;
  if (expect_rc(0, name, &got, &len, NULL, 0) == 0) CHECK(got == 0, "%s reads %zd", name, got);
  expect_rc(EINVAL, name, NULL, NULL, &ms, sizeof(int)); /* wrong length */
  ms = -2;
  expect_rc(EFAULT, name, NULL, NULL, &ms, sizeof ms); /* not a decay time */
  ms = 0;
  snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", a);
  expect_rc(0, name, NULL, NULL, &ms, sizeof ms);

  /* reset discards every block of the arena; the arena stays usable */
  snprintf(name, sizeof name, "arena.%u.reset", a);
  if (expect_rc(0, name, NULL, NULL, NULL, 0) == 0) {
    refresh();
    snprintf(name, sizeof name, "stats.arenas.%u.small.allocated", a);
    if (read_size(name, &v)) CHECK(v == 0, "%s = %zu after arena.%u.reset", name, v, a);
    snprintf(name, sizeof name, "stats.arenas.%u.large.allocated", a);
    if (read_size(name, &v)) CHECK(v == 0, "%s = %zu after arena.%u.reset", name, v, a);
  } else {
    for (int i = 0; i < N; i++)
      if (small[i]) dallocx(small[i], flags);
    if (large) dallocx(large, flags);
  }
  void *again = mallocx(5000, flags);
  CHECK(again != NULL, "mallocx in arena %u after reset = NULL", a);
  if (again) dallocx(again, flags);

  snprintf(name, sizeof name, "arena.%u.destroy", a);
  expect_rc(0, name, NULL, NULL, NULL, 0);
  expect_rc(EFAULT, name, NULL, NULL, NULL, 0); /* already destroyed */
  expect_rc(EFAULT, "arena.0.destroy", NULL, NULL, NULL, 0); /* automatic arenas stay */
  expect_rc(EFAULT, "arena.0.reset", NULL, NULL, NULL, 0);
  end();
}

static void test_tcache(void) {
  begin("tcache");
  unsigned tc = 0;
  size_t len = sizeof tc;
  if (expect_rc(0, "tcache.create", &tc, &len, NULL, 0) == 0) {
    void *p[32];
    for (int i = 0; i < 32; i++) {
      p[i] = mallocx(64 + 16 * (size_t)i, MALLOCX_TCACHE(tc));
      CHECK(p[i] != NULL, "mallocx(MALLOCX_TCACHE(%u)) = NULL", tc);
    }
    for (int i = 0; i < 32; i++)
      if (p[i]) dallocx(p[i], MALLOCX_TCACHE(tc));
    expect_rc(0, "tcache.flush", NULL, NULL, &tc, sizeof tc);
    void *q = mallocx(64, MALLOCX_TCACHE(tc));
    CHECK(q != NULL, "mallocx(MALLOCX_TCACHE(%u)) after flush = NULL", tc);
    if (q) sdallocx(q, 64, MALLOCX_TCACHE(tc));
    expect_rc(0, "tcache.destroy", NULL, NULL, &tc, sizeof tc);
  }
  end();
}

static void test_thread(void) {
  begin("thread");
  uint64_t *ap = NULL, *dp = NULL;
  size_t len = sizeof ap;
  expect_rc(0, "thread.allocatedp", &ap, &len, NULL, 0);
  len = sizeof dp;
  expect_rc(0, "thread.deallocatedp", &dp, &len, NULL, 0);
  if (ap == NULL || dp == NULL) {
    CHECK(false, "thread.allocatedp %p, thread.deallocatedp %p", (void *)ap, (void *)dp);
    end();
    return;
  }
  expect_rc(EPERM, "thread.allocatedp", NULL, NULL, &ap, sizeof ap);
  uint64_t a0 = *ap, d0 = *dp;
  /* the counters behind the pointers move with no mallctl call in between */
  enum { N = 4096 };
  void **blocks = malloc(N * sizeof *blocks);
  for (int i = 0; i < N; i++) blocks[i] = mallocx(4096, 0);
  void *big = mallocx(8 * MiB, 0);
  uint64_t a1 = *ap;
  CHECK(a1 >= a0 + 22 * MiB, "*thread.allocatedp grew by %llu bytes after 24 MiB",
        (unsigned long long)(a1 - a0));
  for (int i = 0; i < N; i++) dallocx(blocks[i], 0);
  dallocx(big, 0);
  free(blocks);
  uint64_t d1 = *dp;
  CHECK(d1 >= d0 + 22 * MiB, "*thread.deallocatedp grew by %llu bytes after freeing 24 MiB",
        (unsigned long long)(d1 - d0));
  uint64_t v = 0;
  len = sizeof v;
  if (expect_rc(0, "thread.allocated", &v, &len, NULL, 0) == 0)
    CHECK(v >= a1, "thread.allocated %llu < *thread.allocatedp %llu", (unsigned long long)v,
          (unsigned long long)a1);
  end();
}

static void test_mib(void) {
  begin("mib");
  size_t mib[8], miblen = 8;
  if (mallctlnametomib("arenas.bin.0.size", mib, &miblen) != 0) {
    CHECK(false, "mallctlnametomib(\"arenas.bin.0.size\") failed");
    end();
    return;
  }
  CHECK(miblen == 4, "miblen = %zu", miblen);
  size_t nregs_mib[8], nregs_len = 8;
  CHECK(mallctlnametomib("arenas.bin.0.nregs", nregs_mib, &nregs_len) == 0 && nregs_len == 4,
        "mallctlnametomib(\"arenas.bin.0.nregs\")");
  unsigned nbins = 0;
  read_unsigned("arenas.nbins", &nbins);
  size_t prev = 0;
  for (unsigned j = 0; j < nbins; j++) {
    mib[2] = j;
    size_t size = 0, len = sizeof size;
    int rc = mallctlbymib(mib, miblen, &size, &len, NULL, 0);
    CHECK(rc == 0, "arenas.bin.%u.size by MIB: %s", j, err_name(rc));
    CHECK(size > prev, "arenas.bin.%u.size %zu after %zu", j, size, prev);
    CHECK(nallocx(size, 0) == size, "nallocx(bin %u size %zu) = %zu", j, size, nallocx(size, 0));
    nregs_mib[2] = j;
    uint32_t nregs = 0;
    len = sizeof nregs;
    rc = mallctlbymib(nregs_mib, nregs_len, &nregs, &len, NULL, 0);
    CHECK(rc == 0 && nregs >= 1, "arenas.bin.%u.nregs = %u (%s)", j, nregs, err_name(rc));
    prev = size;
  }
  printf("mib: %u bins, largest %zu\n", nbins, prev);
  mib[2] = nbins + 10;
  size_t size, len = sizeof size;
  int rc = mallctlbymib(mib, miblen, &size, &len, NULL, 0);
  CHECK(rc == ENOENT, "arenas.bin.%u.size by MIB: %s, expected ENOENT", nbins + 10, err_name(rc));
  miblen = 8;
  rc = mallctlnametomib("no.such.name", mib, &miblen);
  CHECK(rc == ENOENT, "mallctlnametomib(\"no.such.name\") = %s", err_name(rc));
  /* stats.allocated by MIB agrees with the name */
  miblen = 8;
  if (mallctlnametomib("stats.allocated", mib, &miblen) == 0) {
    refresh();
    size_t by_mib = 0, by_name = 0;
    len = sizeof by_mib;
    CHECK(mallctlbymib(mib, miblen, &by_mib, &len, NULL, 0) == 0, "stats.allocated by MIB");
    read_size("stats.allocated", &by_name);
    CHECK(by_mib == by_name, "stats.allocated by MIB %zu, by name %zu", by_mib, by_name);
  } else {
    CHECK(false, "mallctlnametomib(\"stats.allocated\") failed");
  }
  end();
}

static void test_errors(void) {
  begin("errors");
  size_t v = 0, len = sizeof v;
  expect_rc(ENOENT, "no.such.name", &v, &len, NULL, 0);
  expect_rc(ENOENT, "stats.allocatedx", &v, &len, NULL, 0);
  expect_rc(ENOENT, "stats", &v, &len, NULL, 0); /* an inner node is not a value */
  expect_rc(ENOENT, "arena.x.purge", NULL, NULL, NULL, 0);
  expect_rc(ENOENT, "arena.9999.purge", NULL, NULL, NULL, 0); /* no such arena */
  /* a wrong length: EINVAL, and as jemalloc, *oldlenp says how much was copied */
  len = sizeof(uint32_t);
  expect_rc(EINVAL, "stats.allocated", &v, &len, NULL, 0);
  CHECK(len == sizeof(uint32_t), "*oldlenp = %zu after a short read", len);
  unsigned u = 0;
  len = sizeof(uint64_t);
  expect_rc(EINVAL, "arenas.narenas", &u, &len, NULL, 0);
  uint64_t e = 1;
  expect_rc(EINVAL, "epoch", NULL, NULL, &e, sizeof(uint32_t));
  bool b = false;
  expect_rc(EINVAL, "background_thread", NULL, NULL, &b, sizeof(int));
  /* writes to read-only names */
  const char *s = "x";
  expect_rc(EPERM, "version", NULL, NULL, &s, sizeof s);
  len = sizeof v;
  expect_rc(EPERM, "stats.allocated", &v, &len, &v, sizeof v);
  unsigned n = 1;
  expect_rc(EPERM, "arenas.narenas", NULL, NULL, &n, sizeof n);
  /* arena.<i>.purge takes no value */
  len = sizeof u;
  expect_rc(EPERM, "arena.0.purge", &u, &len, NULL, 0);
  expect_rc(EPERM, "arena.0.purge", NULL, NULL, &u, sizeof u);
  end();
}

static void test_background_thread(void) {
  begin("background");
  bool on = false;
  size_t len = sizeof on;
  expect_rc(0, "background_thread", &on, &len, NULL, 0);
  bool want = true; /* what redis-server does at start (jemalloc-bg-thread yes) */
  expect_rc(0, "background_thread", NULL, NULL, &want, sizeof want);
  len = sizeof on;
  if (expect_rc(0, "background_thread", &on, &len, NULL, 0) == 0)
    CHECK(on, "background_thread reads false after writing true");
  want = false;
  expect_rc(0, "background_thread", NULL, NULL, &want, sizeof want);
  len = sizeof on;
  if (expect_rc(0, "background_thread", &on, &len, NULL, 0) == 0)
    CHECK(!on, "background_thread reads true after writing false");
  end();
}

/* ---------------------------------------------------- malloc_stats_print */

typedef struct {
  char *text;
  size_t len, calls;
} sink_t;

/* Allocates while the report is being written, as redis's callback does. */
static void sink_write(void *opaque, const char *s) {
  sink_t *k = opaque;
  size_t n = strlen(s);
  char *t = realloc(k->text, k->len + n + 1);
  if (t == NULL) return;
  memcpy(t + k->len, s, n + 1);
  k->text = t;
  k->len += n;
  k->calls++;
}

static void test_stats_print(void) {
  begin("stats_print");
  sink_t k = {NULL, 0, 0};
  malloc_stats_print(sink_write, &k, NULL);
  CHECK(k.calls > 0 && k.len > 100, "malloc_stats_print wrote %zu bytes in %zu calls", k.len,
        k.calls);
  if (k.text) {
    char first[128];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(k.text, "\n"), k.text);
    printf("stats_print: %zu bytes, first line \"%s\"\n", k.len, first);
    char want[64];
    snprintf(want, sizeof want, "___ Begin %s statistics ___", expect);
    CHECK(strstr(first, want) != NULL, "first line \"%s\", expected \"%s\"", first, want);
    snprintf(want, sizeof want, "End %s statistics", expect); /* jemalloc: "--- End ... ---" */
    CHECK(strstr(k.text, want) != NULL, "no \"%s\" line", want);
    CHECK(strstr(k.text, "Allocated") != NULL, "no \"Allocated\" in the report");
  }
  free(k.text);
  sink_t j = {NULL, 0, 0};
  malloc_stats_print(sink_write, &j, "J");
  CHECK(j.text != NULL && j.text[0] == '{' && strstr(j.text, "\"jemalloc\"") != NULL,
        "JSON report does not start with { or lacks \"jemalloc\"");
  free(j.text);
  sink_t g = {NULL, 0, 0};
  malloc_stats_print(sink_write, &g, "gmdablxe");
  CHECK(g.calls > 0, "malloc_stats_print(\"gmdablxe\") wrote nothing");
  free(g.text);
  end();
}

/* ------------------------------------------- what redis and bind9 call */

static void test_redis_calls(void) {
  begin("redis");
  /* zmalloc_get_allocator_info, 10 times a second from serverCron */
  uint64_t epoch = 1;
  size_t sz = sizeof epoch;
  CHECK(mallctl("epoch", &epoch, &sz, &epoch, sz) == 0, "epoch");
  size_t resident = 0, active = 0, allocated = 0;
  sz = sizeof(size_t);
  CHECK(mallctl("stats.resident", &resident, &sz, NULL, 0) == 0, "stats.resident");
  CHECK(mallctl("stats.active", &active, &sz, NULL, 0) == 0, "stats.active");
  CHECK(mallctl("stats.allocated", &allocated, &sz, NULL, 0) == 0, "stats.allocated");
  CHECK(allocated > 0 && allocated <= active && active <= resident,
        "allocated %zu, active %zu, resident %zu", allocated, active, resident);
  /* set_jemalloc_bg_thread: a char, no old value */
  char val = 1;
  CHECK(mallctl("background_thread", NULL, 0, &val, 1) == 0, "background_thread <- 1");
  val = 0;
  CHECK(mallctl("background_thread", NULL, 0, &val, 1) == 0, "background_thread <- 0");
  /* jemalloc_purge (MEMORY PURGE) */
  unsigned narenas = 0;
  sz = sizeof(unsigned);
  char tmp[32];
  CHECK(mallctl("arenas.narenas", &narenas, &sz, NULL, 0) == 0, "arenas.narenas");
  snprintf(tmp, sizeof tmp, "arena.%d.purge", (int)narenas);
  CHECK(mallctl(tmp, NULL, 0, NULL, 0) == 0, "%s", tmp);
  /* sdsResize skips realloc when nallocx(newlen, 0) == zmalloc_size(sh) */
  for (size_t n = 1; n < 70000; n += n < 1024 ? 1 : 97) {
    void *p = malloc(n);
    CHECK(nallocx(n, 0) == malloc_usable_size(p), "nallocx(%zu) = %zu, malloc_usable_size %zu", n,
          nallocx(n, 0), malloc_usable_size(p));
    free(p);
  }
  end();
}

static void test_bind9_calls(void) {
  begin("bind9");
  /* isc_mem: contexts allocated with MALLOCX_LG_ALIGN(6), blocks with 0 */
  void *ctx = mallocx(256, 0x6);
  CHECK(ctx != NULL && (uintptr_t)ctx % 64 == 0, "mallocx(256, 0x6) = %p", ctx);
  sdallocx(ctx, 256, 0x6);
  /* mem_jemalloc_arena_create / isc_mem_arena_set_*_decay_ms / destroy */
  unsigned arenano = 0;
  size_t len = sizeof arenano;
  if (mallctl("arenas.create", &arenano, &len, NULL, 0) != 0) {
    CHECK(false, "arenas.create failed");
    end();
    return;
  }
  char buf[256];
  ssize_t value = 0;
  snprintf(buf, sizeof buf, "arena.%u.%s", arenano, "dirty_decay_ms");
  CHECK(mallctl(buf, NULL, NULL, (void *)&value, sizeof value) == 0, "%s <- 0", buf);
  snprintf(buf, sizeof buf, "arena.%u.%s", arenano, "muzzy_decay_ms");
  CHECK(mallctl(buf, NULL, NULL, (void *)&value, sizeof value) == 0, "%s <- 0", buf);
  int flags = MALLOCX_ARENA(arenano) | MALLOCX_TCACHE_NONE;
  void *p = mallocx(3000, flags);
  CHECK(p != NULL, "mallocx(3000, arena %u | tcache none)", arenano);
  size_t s = sallocx(p, flags);
  CHECK(s >= 3000, "sallocx = %zu", s);
  memset(p, 7, 3000);
  void *q = rallocx(p, 70000, flags);
  CHECK(q != NULL && all_bytes(q, 3000, 7), "rallocx(70000, arena flags)");
  sdallocx(q ? q : p, q ? 70000 : 3000, flags);
  snprintf(buf, sizeof buf, "arena.%u.destroy", arenano);
  CHECK(mallctl(buf, NULL, NULL, NULL, 0) == 0, "%s", buf);
  end();
}

int main(void) {
  expect = getenv("JEMALLOC_API_EXPECT");
  if (expect == NULL || (strcmp(expect, "alloy") != 0 && strcmp(expect, "jemalloc") != 0)) {
    fprintf(stderr, "usage: JEMALLOC_API_EXPECT=alloy|jemalloc %s\n", "jemalloc_api");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_symbols();
  test_mallocx();
  test_rallocx_xallocx();
  test_stats();
  test_arenas();
  test_tcache();
  test_thread();
  test_mib();
  test_errors();
  test_background_thread();
  test_stats_print();
  test_redis_calls();
  test_bind9_calls();
  printf("jemalloc_api (%s): %d checks, %d failed\n", expect, nchecks, nfailed);
  return nfailed ? 1 : 0;
}
