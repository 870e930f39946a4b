/*
 * preload.h - shared by the edge-case programs that run under
 * LD_PRELOAD=liballoy.so: fail fast unless malloc really is alloy's in this
 * process (a preload that ld.so ignored would otherwise test glibc).
 */
#ifndef ALLOY_TESTS_PRELOAD_H
#define ALLOY_TESTS_PRELOAD_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exits with status 1 unless the process's `symbol` resolves into a loaded
 * object whose file name contains "liballoy". */
static inline void require_alloy_symbol(const char *symbol)
{
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, symbol);
  if (!sym || !dladdr(sym, &info) || !info.dli_fname || !strstr(info.dli_fname, "liballoy")) {
    fprintf(stderr, "%s does not come from liballoy.so (%s): not running on alloy\n", symbol,
            sym && info.dli_fname ? info.dli_fname : "unresolved");
    exit(1);
  }
}

static inline void require_alloy(void)
{
  require_alloy_symbol("malloc");
  require_alloy_symbol("free");
  require_alloy_symbol("alloy_stats_get");
}

#define EDGE_FAIL(...)                                                        \
  do {                                                                        \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                           \
    fprintf(stderr, __VA_ARGS__);                                             \
    fputc('\n', stderr);                                                      \
    exit(1);                                                                  \
  } while (0)

#define EDGE_CHECK(cond)                                                      \
  do {                                                                        \
    if (!(cond))                                                              \
      EDGE_FAIL("check failed: %s", #cond);                                   \
  } while (0)

#endif /* ALLOY_TESTS_PRELOAD_H */
