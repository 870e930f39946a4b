/*
 * thp_smaps.h - what the huge-page tests (test_thp.c, test_thp_auto.c)
 * read of the kernel: the system's THP policy and, from /proc/self/smaps,
 * the advice (THPeligible) and the huge pages (AnonHugePages) of the
 * mapping that holds an address.
 */
#ifndef ALLOY_TEST_THP_SMAPS_H
#define ALLOY_TEST_THP_SMAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The field `key` (with its colon) of the smaps entry of the mapping
 * holding p, or -1 when not reported. */
static inline long smaps_field(const void *p, const char *key) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  long result = -1;
  bool inside = false;
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
      continue;
    }
    long v;
    if (inside && strncmp(line, key, klen) == 0 && sscanf(line + klen, " %ld", &v) == 1) {
      result = v;
      break;
    }
  }
  fclose(f);
  return result;
}

/* THPeligible of the mapping holding p: 1, 0, or -1 when not reported. */
static inline int thp_eligible(const void *p) { return (int)smaps_field(p, "THPeligible:"); }
/* Its AnonHugePages in KiB, -1 when not reported. */
static inline long anon_huge_kb(const void *p) { return smaps_field(p, "AnonHugePages:"); }

/* The process's AnonHugePages in KiB (smaps_rollup), -1 when not reported. */
static inline long process_anon_huge_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "AnonHugePages: %ld", &v) == 1) break;
  fclose(f);
  return v;
}

/* The bracketed choice of a /sys/kernel/mm/transparent_hugepage file
 * ("always", "madvise", "never", ...), or "" when unreadable. */
static inline const char *thp_setting(const char *file, char *buf, size_t size) {
  char path[128], line[256] = "";
  snprintf(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/%s", file);
  buf[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return buf;
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  fclose(f);
  char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
  if (open && close && (size_t)(close - open) < size) {
    memcpy(buf, open + 1, (size_t)(close - open - 1));
    buf[close - open - 1] = 0;
  }
  return buf;
}

static inline bool thp_available(void) {
  char b[32];
  const char *s = thp_setting("enabled", b, sizeof b);
  return *s && strcmp(s, "never") != 0;
}

/* Whether a first fault in a range advised HUGEPAGE gets a huge page when
 * one is free: THP on, and the fault allowed to compact for advised ranges
 * (defrag "always", "defer+madvise" or "madvise"), so that a 2 MiB page is
 * found on a machine with free memory. */
static inline bool thp_fault_huge(void) {
  char b[32];
  const char *d = thp_setting("defrag", b, sizeof b);
  return thp_available() && (strcmp(d, "always") == 0 || strstr(d, "madvise") != NULL);
}

#endif
