/*
 * mallctl_util.h - reading alloy's control namespace from the C tests:
 * values of a given type by name, an `epoch` refresh, and jemalloc's
 * MALLOCX_* flag macros under short names.  Each read is itself checked
 * (CHECK_EQ on the return code), so a name that disappears fails the test.
 * ctl_fmt_* build the name from a printf format ("stats.arenas.%u.pactive").
 */
#ifndef ALLOY_TESTS_MALLCTL_UTIL_H
#define ALLOY_TESTS_MALLCTL_UTIL_H

#include <alloy.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"

static inline size_t ctl_size(const char *name) {
  size_t v = 0, len = sizeof v;
  CHECK_MSG(alloy_mallctl(name, &v, &len, NULL, 0) == 0, "mallctl(\"%s\")", name);
  return v;
}

static inline uint64_t ctl_u64(const char *name) {
  uint64_t v = 0;
  size_t len = sizeof v;
  CHECK_MSG(alloy_mallctl(name, &v, &len, NULL, 0) == 0, "mallctl(\"%s\")", name);
  return v;
}

static inline unsigned ctl_unsigned(const char *name) {
  unsigned v = 0;
  size_t len = sizeof v;
  CHECK_MSG(alloy_mallctl(name, &v, &len, NULL, 0) == 0, "mallctl(\"%s\")", name);
  return v;
}

static inline uint64_t ctl_fmt_u64(const char *fmt, ...) {
  char name[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return ctl_u64(name);
}

/* An `epoch` write: statistics brought up to date. */
static inline void ctl_refresh(void) {
  uint64_t e = 1;
  CHECK_EQ(alloy_mallctl("epoch", NULL, NULL, &e, sizeof e), 0);
}

/* jemalloc's mallocx flags, short. */
#define LG_ALIGN(la) ALLOY_MALLOCX_LG_ALIGN(la)
#define ZERO ALLOY_MALLOCX_ZERO
#define TCACHE(t) ALLOY_MALLOCX_TCACHE(t)
#define TCACHE_NONE ALLOY_MALLOCX_TCACHE_NONE
#define ARENA(a) ALLOY_MALLOCX_ARENA(a)

#endif /* ALLOY_TESTS_MALLCTL_UTIL_H */
