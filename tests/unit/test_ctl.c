/*
 * test_ctl.c - the control namespace (src/ctl.c) through alloy_mallctl*:
 * values and their types, jemalloc's error codes (ENOENT, EINVAL, EPERM,
 * EFAULT), name-to-MIB translation with patched indices, epoch-refreshed
 * statistics, exact per-thread byte counts, and purge on demand.
 */
#include "check.h"
#include "mallctl_util.h"
#include "internal.h"

#include <alloy.h>
#include <jemalloc/jemalloc.h> /* alloy's own: its version must match mallctl's */
#include <sys/types.h>


static void test_values(void) {
  const char *version = NULL;
  size_t len = sizeof version;
  CHECK_EQ(alloy_mallctl("version", &version, &len, NULL, 0), 0);
  REQUIRE(version != NULL);
  CHECK(strstr(version, "alloy") != NULL);
  CHECK(strcmp(version, JEMALLOC_VERSION) == 0);
  bool b = false;
  len = sizeof b;
  CHECK_EQ(alloy_mallctl("config.stats", &b, &len, NULL, 0), 0);
  CHECK(b);
  CHECK_EQ(alloy_mallctl("opt.secure", &b, &len, NULL, 0), 0);
  CHECK_EQ(b, alloy__options.secure);
  ssize_t decay = 0;
  len = sizeof decay;
  CHECK_EQ(alloy_mallctl("opt.dirty_decay_ms", &decay, &len, NULL, 0), 0);
  CHECK_EQ_INT(decay, alloy__options.dirty_decay_ms);
  unsigned n = 0;
  len = sizeof n;
  CHECK_EQ(alloy_mallctl("arenas.nbins", &n, &len, NULL, 0), 0);
  CHECK_EQ(n, SIZE_CLASSES);
  CHECK_EQ(ctl_size("arenas.quantum"), 16);
  CHECK_EQ(ctl_size("arenas.page"), os_page_size());
  CHECK_EQ(ctl_size("arenas.bin.0.size"), 16);
  CHECK_EQ(ctl_size("arenas.bin.79.size"), 65536);
}

/* Every option alloy reads (src/options.c) is readable as opt.<name>. */
static void test_every_option(void) {
  static const struct { const char *name; size_t size; } opts[] = {
      {"opt.secure", 1}, {"opt.abort_on_error", 1}, {"opt.guard", 1}, {"opt.guard_sample", 8},
      {"opt.dirty_decay_ms", 8}, {"opt.thp", sizeof(char *)}, {"opt.stats_summary", 1},
      {"opt.stats_summary_pid", 8}, {"opt.abort_conf", 1}, {"opt.stats_print", 1},
      {"opt.stats_print_opts", sizeof(char *)}, {"opt.background_thread", 1},
      {"opt.muzzy_decay_ms", 8}, {"opt.narenas", 4}, {"opt.tcache", 1}, {"opt.sparse_purge", 1}, {"opt.purge", sizeof(char *)}};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    char buf[8];
    size_t len = opts[i].size;
    CHECK_MSG(alloy_mallctl(opts[i].name, buf, &len, NULL, 0) == 0, "%s", opts[i].name);
    CHECK_EQ(len, opts[i].size);
  }
}

static void test_errors(void) {
  size_t v = 0, len = sizeof v;
  CHECK_EQ(alloy_mallctl("no.such.name", &v, &len, NULL, 0), ENOENT);
  CHECK_EQ(alloy_mallctl("arenas", &v, &len, NULL, 0), ENOENT); /* an inner node */
  CHECK_EQ(alloy_mallctl("arenas.bin.80.size", &v, &len, NULL, 0), ENOENT);
  CHECK_EQ(alloy_mallctl("arenas.bin.x.size", &v, &len, NULL, 0), ENOENT);
  len = 4; /* stats.allocated is a size_t */
  CHECK_EQ(alloy_mallctl("stats.allocated", &v, &len, NULL, 0), EINVAL);
  size_t w = 5;
  len = sizeof v;
  CHECK_EQ(alloy_mallctl("stats.allocated", &v, &len, &w, sizeof w), EPERM);
  CHECK_EQ(alloy_mallctl("epoch", NULL, NULL, &w, 2), EINVAL);
  CHECK_EQ(alloy_mallctl("arena.7.purge", NULL, NULL, NULL, 0), ENOENT); /* beyond arenas.narenas */
  CHECK_EQ(alloy_mallctl("arena.0.purge", &v, &len, NULL, 0), EPERM); /* takes no value */
}

static void test_mib(void) {
  size_t mib[8], miblen = 8;
  CHECK_EQ(alloy_mallctlnametomib("arenas.bin.0.size", mib, &miblen), 0);
  CHECK_EQ(miblen, 4);
  for (size_t j = 0; j < SIZE_CLASSES; j++) {
    mib[2] = j; /* patch the bin number, as jemalloc's callers do */
    size_t v = 0, len = sizeof v;
    CHECK_EQ(alloy_mallctlbymib(mib, miblen, &v, &len, NULL, 0), 0);
    CHECK_EQ(v, size_class_size((unsigned)j));
    uint32_t nregs = 0;
    size_t nlen = sizeof nregs, nmib[8], nmiblen = 8;
    CHECK_EQ(alloy_mallctlnametomib("arenas.bin.0.nregs", nmib, &nmiblen), 0);
    nmib[2] = j;
    CHECK_EQ(alloy_mallctlbymib(nmib, nmiblen, &nregs, &nlen, NULL, 0), 0);
    CHECK_GE(nregs, MEDIUM_PAGE_BLOCKS);
    CHECK_EQ(nregs, size_class_page_slices((unsigned)j) * SLICE_SIZE / size_class_size((unsigned)j));
  }
  /* A short MIB buffer gets the prefix (jemalloc's partial MIB), which the
   * caller completes. */
  size_t full[8], fulllen = 8, v = 0, len = sizeof v;
  CHECK_EQ(alloy_mallctlnametomib("arenas.bin.5.size", full, &fulllen), 0);
  miblen = 2;
  CHECK_EQ(alloy_mallctlnametomib("arenas.bin.0.size", mib, &miblen), 0);
  CHECK_EQ(miblen, 2);
  mib[2] = 5;
  mib[3] = full[3];
  CHECK_EQ(alloy_mallctlbymib(mib, 4, &v, &len, NULL, 0), 0);
  CHECK_EQ(v, size_class_size(5));
  /* Names past a value, or stopping at an inner node, do not exist. */
  CHECK_EQ(alloy_mallctl("epoch.x", NULL, NULL, NULL, 0), ENOENT);
  CHECK_EQ(alloy_mallctl("version.a.b", &v, &len, NULL, 0), ENOENT);
  /* newlen without newp is a write too: EPERM on a read-only name. */
  len = sizeof v;
  CHECK_EQ(alloy_mallctl("stats.allocated", &v, &len, NULL, 8), EPERM);
  size_t pmib[4], pmiblen = 4;
  CHECK_EQ(alloy_mallctlnametomib("arena.0.purge", pmib, &pmiblen), 0);
  pmib[1] = 4096; /* MALLCTL_ARENAS_ALL */
  CHECK_EQ(alloy_mallctlbymib(pmib, pmiblen, NULL, NULL, NULL, 0), 0);
}

static void test_stats(void) {
  ctl_refresh();
  size_t before = ctl_size("stats.allocated");
  uint64_t t0 = ctl_u64("thread.allocated"), d0 = ctl_u64("thread.deallocated");
  enum { N = 1000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = alloy_malloc(10000);
  uint64_t t1 = ctl_u64("thread.allocated");
  CHECK_EQ(t1 - t0, (uint64_t)N * alloy_usable_size(p[0])); /* exact, not sampled */
  ctl_refresh();
  size_t during = ctl_size("stats.allocated");
  CHECK_GE(during - before, (size_t)N * 10000);
  CHECK_GE(ctl_size("stats.mapped"), during);
  for (int i = 0; i < N; i++) alloy_free(p[i]);
  CHECK_EQ(ctl_u64("thread.deallocated") - d0, (uint64_t)N * 10240);
  CHECK_EQ(alloy_mallctl("arena.0.purge", NULL, NULL, NULL, 0), 0);
  CHECK_EQ(alloy_mallctl("arena.1.decay", NULL, NULL, NULL, 0), 0); /* arenas.narenas: all */
  ctl_refresh();
  CHECK_LE(ctl_size("stats.allocated"), before + 64 * 1024);
}

int main(void) {
  test_every_option();
  test_values();
  test_errors();
  test_mib();
  test_stats();
  return check_done();
}
