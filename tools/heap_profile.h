/*
 * heap_profile.h - reads a heap profile in gperftools' text format (what
 * alloy's prof.dump writes; also tcmalloc's and gperftools' own) for the
 * launcher's `flame` and leak report.  Counts are scaled as jeprof and pprof
 * scale them: a "heap_v2/R" line of n blocks and s bytes stands for
 * s / (1 - exp(-(s/n)/R)) bytes.
 */
#ifndef ALLOY_TOOLS_HEAP_PROFILE_H
#define ALLOY_TOOLS_HEAP_PROFILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t samples;       /* blocks sampled (in use) */
  uint64_t sample_bytes;
  double blocks, bytes;   /* estimated, unbiased */
  uintptr_t *pcs;         /* innermost first, each the address of its call */
  unsigned depth;
} hp_entry_t;

typedef struct {
  uintptr_t start, end, offset;
  char *path; /* file-backed mappings only */
} hp_map_t;

typedef struct {
  uint64_t rate;          /* mean bytes between samples; 0: not sampled */
  hp_entry_t *entries;
  size_t nentries;
  hp_map_t *maps;
  size_t nmaps;
  double blocks, bytes;   /* totals of the entries */
  uint64_t samples;
  char *comment;          /* the "# alloy ..." line, or NULL */
} heap_profile_t;

/* 0 on success; else -1 with a message in err. */
int heap_profile_load(const char *path, heap_profile_t *out, char *err, size_t errcap);
void heap_profile_free(heap_profile_t *p);

#endif
