/*
 * heap_profile.c - parses the text heap profile (see heap_profile.h):
 *
 *   heap profile: <n>: <s> [<n>: <s>] @ heap_v2/<R>
 *   <n>: <s> [<n>: <s>] @ 0x... 0x...
 *   MAPPED_LIBRARIES:
 *   <start>-<end> <perms> <offset> <dev> <inode> <path>
 *
 * Lines that match neither form are skipped, as jeprof and pprof skip them.
 * The first address of a stack is taken as the call itself and the others
 * as return addresses (one is subtracted), as the readers do.
 */
#include "heap_profile.h"

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* Appends to a growing array of `size`-byte elements. */
static void *grow(void *array, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return array;
  *cap = *cap ? *cap * 2 : 64;
  void *p = realloc(array, *cap * size);
  if (p == NULL) {
    perror("alloy");
    exit(1);
  }
  return p;
}

/* "<n>: <s> [<n>: <s>] @ 0x.. 0x.." -> entry; false when not such a line. */
static bool parse_entry(const char *line, uint64_t rate, hp_entry_t *e) {
  unsigned long long n, s, an, as;
  int at = 0;
  if (sscanf(line, " %llu: %llu [ %llu: %llu ] @%n", &n, &s, &an, &as, &at) != 4 || at == 0) return false;
  if (n == 0) return false; /* cumulative counts only: not in use */
  memset(e, 0, sizeof *e);
  e->samples = n;
  e->sample_bytes = s;
  double scale = 1;
  if (rate) scale = 1 / -expm1(-((double)s / (double)n) / (double)rate);
  e->blocks = (double)n * scale;
  e->bytes = (double)s * scale;
  size_t cap = 0;
  for (const char *p = line + at;;) {
    char *end;
    while (*p == ' ' || *p == '\t') p++;
    unsigned long long pc = strtoull(p, &end, 16);
    if (end == p) break;
    e->pcs = grow(e->pcs, &cap, e->depth, sizeof *e->pcs);
    e->pcs[e->depth] = (uintptr_t)pc - (e->depth > 0);
    e->depth++;
    p = end;
  }
  return true;
}

static bool parse_map(const char *line, hp_map_t *m) {
  unsigned long long start, end, offset;
  char perms[8];
  int path_at = 0;
  if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &offset, &path_at) != 4 ||
      path_at == 0 || line[path_at] != '/')
    return false;
  m->start = (uintptr_t)start;
  m->end = (uintptr_t)end;
  m->offset = (uintptr_t)offset;
  m->path = strdup(line + path_at);
  m->path[strcspn(m->path, "\n")] = 0;
  return true;
}

int heap_profile_load(const char *path, heap_profile_t *out, char *err, size_t errcap) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    set_err(err, errcap, "cannot open %s", path);
    return -1;
  }
  char *line = NULL;
  size_t len = 0, ecap = 0, mcap = 0;
  bool header = false, maps = false;
  while (getline(&line, &len, f) > 0) {
    if (!header) {
      unsigned long long rate = 0;
      if (strncmp(line, "heap profile:", 13) != 0) break;
      const char *v2 = strstr(line, "heap_v2/");
      if (v2) rate = strtoull(v2 + 8, NULL, 10);
      out->rate = rate;
      header = true;
    } else if (maps) {
      hp_map_t m;
      if (!parse_map(line, &m)) continue;
      out->maps = grow(out->maps, &mcap, out->nmaps, sizeof m);
      out->maps[out->nmaps++] = m;
    } else if (strncmp(line, "MAPPED_LIBRARIES:", 17) == 0) {
      maps = true;
    } else if (strncmp(line, "# alloy", 7) == 0 && out->comment == NULL) {
      out->comment = strdup(line + 2);
      out->comment[strcspn(out->comment, "\n")] = 0;
    } else {
      hp_entry_t e;
      if (!parse_entry(line, out->rate, &e)) continue;
      out->entries = grow(out->entries, &ecap, out->nentries, sizeof e);
      out->entries[out->nentries++] = e;
      out->blocks += e.blocks;
      out->bytes += e.bytes;
      out->samples += e.samples;
    }
  }
  free(line);
  fclose(f);
  if (!header) {
    set_err(err, errcap, "%s is not a heap profile (no \"heap profile:\" header)", path);
    heap_profile_free(out);
    return -1;
  }
  return 0;
}

void heap_profile_free(heap_profile_t *p) {
  for (size_t i = 0; i < p->nentries; i++) free(p->entries[i].pcs);
  for (size_t i = 0; i < p->nmaps; i++) free(p->maps[i].path);
  free(p->entries);
  free(p->maps);
  free(p->comment);
  memset(p, 0, sizeof *p);
}
