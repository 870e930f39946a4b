/*
 * mallctl_util.h - reading alloy's control namespace from the C tests:
 * values of a given type by name, an `epoch` refresh, and jemalloc's
 * MALLOCX_* flag macros under short names.  Each read is itself checked
 * (CHECK_EQ on the return code), so a name that disappears fails the test.
 */
#ifndef ALLOY_TESTS_MALLCTL_UTIL_H
#define ALLOY_TESTS_MALLCTL_UTIL_H

#include <alloy.h>
#include <stdint.h>

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

/* An `epoch` write: statistics brought up to date. */
static inline void ctl_refresh(void) {
  uint64_t e = 1;
  CHECK_EQ(alloy_mallctl("epoch", NULL, NULL, &e, sizeof e), 0);
}

#endif /* ALLOY_TESTS_MALLCTL_UTIL_H */
