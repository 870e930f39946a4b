/*
 * prof_dump.c - writes a heap profile in gperftools' text format, which
 * Debian's jeprof (libjemalloc-dev) and google-pprof (google-perftools) both
 * read, and `alloy flame` too (jemalloc's own "heap_v2/" format is refused
 * by google-pprof):
 *
 *   heap profile:  <live blocks>: <live bytes> [<ever>: <ever bytes>] @ heap_v2/<R>
 *   # alloy: <how many samples, dropped, profiler memory, unwinder>
 *   <n>: <n*size> [<a>: <a*size>] @ 0x<pc> 0x<pc> ...     one per (stack, size)
 *   ...
 *   MAPPED_LIBRARIES:
 *   <contents of /proc/self/maps>
 *
 * The counts are the samples themselves; the readers scale each line by
 * 1 / (1 - exp(-(bytes/count)/R)), the inverse of the probability that a
 * block of that size is sampled, which is exact because all blocks of a
 * line have the same size (the unbiased estimate of what is allocated
 * there).  Addresses are return addresses, innermost first; the first is
 * written minus one (the readers take it as a PC and subtract one from the
 * others), so every frame names its call instruction.  The "# alloy" line
 * matches neither reader's line pattern and is skipped by both.
 *
 * No malloc, no stdio: the text is formatted with fmt_format into a
 * mapping (sized by a first pass over the tables) while the table's lock is
 * held, then written to the file (os.h) after it is released.
 */
#include "prof.h"
#include "unwind.h"

#include <alloy.h>

/* ------------------------------------------------------- formatting */

#define LINE_BYTES 80 /* counts, brackets and '@' */
#define FRAME_BYTES 19 /* " 0x" and 16 hex digits */

static void add_bound(const prof_bucket_t *b, void *arg) {
  *(size_t *)arg += LINE_BYTES + (size_t)b->depth * FRAME_BYTES;
}

typedef struct {
  char *buf;
  size_t cap, at;
  bool overflow, with_accum; /* without prof_accum the brackets hold 0: 0 */
  uint64_t live, live_bytes, accum, accum_bytes;
} out_t;

static void put(out_t *o, size_t n) {
  if (o->at + n >= o->cap) o->overflow = true;
  else o->at += n;
}

static void format_bucket(const prof_bucket_t *b, void *arg) {
  out_t *o = arg;
  if (o->overflow) return;
  unsigned long long accum = o->with_accum ? b->accum : 0;
  put(o, fmt_format(o->buf + o->at, o->cap - o->at, "%6llu: %8llu [%6llu: %8llu] @",
                    (unsigned long long)b->live, (unsigned long long)(b->live * b->size), accum,
                    accum * b->size));
  for (unsigned i = 0; i < b->depth && !o->overflow; i++)
    put(o, fmt_format(o->buf + o->at, o->cap - o->at, " 0x%llx",
                      (unsigned long long)(b->frames[i] - (i == 0))));
  put(o, fmt_format(o->buf + o->at, o->cap - o->at, "\n"));
  o->live += b->live;
  o->live_bytes += b->live * b->size;
  o->accum += accum;
  o->accum_bytes += accum * b->size;
}

/* Formats every line into a fresh mapping; *cap is its size (unmap it). */
static char *format_lines(bool accum, out_t *o, size_t *cap) {
  for (int attempt = 0; attempt < 8; attempt++) {
    size_t bound = 4096;
    prof_table_visit(accum, add_bound, &bound);
    bound += bound / 4 << attempt; /* room for samples taken meanwhile */
    bound = (bound + os_page_size() - 1) & ~(os_page_size() - 1);
    size_t got;
    char *buf = os_map_aligned(bound, os_page_size(), &got);
    if (buf == NULL) return NULL;
    *o = (out_t){.buf = buf, .cap = bound, .with_accum = accum};
    prof_table_visit(accum, format_bucket, o);
    if (!o->overflow) {
      *cap = bound;
      return buf;
    }
    os_unmap(buf, bound);
  }
  return NULL;
}

static size_t format_header(char *buf, size_t cap, const out_t *o, unsigned lg_sample) {
  prof_table_stats_t st;
  prof_table_stats(&st);
  size_t n = fmt_format(buf, cap, "heap profile: %6llu: %8llu [%6llu: %8llu] @ heap_v2/%llu\n",
                        (unsigned long long)o->live, (unsigned long long)o->live_bytes,
                        (unsigned long long)o->accum, (unsigned long long)o->accum_bytes,
                        (unsigned long long)1 << lg_sample);
  if (n >= cap) return cap - 1;
  n += fmt_format(buf + n, cap - n,
                  "# alloy %s: %llu samples live in %llu lines, %llu call stacks; %llu samples "
                  "dropped (tables full), %llu without a call stack; %llu KiB of profiler memory; "
                  "stacks by %s\n",
                  ALLOY_VERSION_STRING, (unsigned long long)st.samples,
                  (unsigned long long)st.buckets, (unsigned long long)st.stacks,
                  (unsigned long long)st.dropped, (unsigned long long)st.no_stack,
                  (unsigned long long)(st.metadata / 1024), unwind_method_name());
  return n < cap ? n : cap - 1;
}

bool prof_dump_write(const char *path, unsigned lg_sample, bool accum) {
  int fd = os_file_create(path);
  if (fd < 0) return false;
  out_t o;
  size_t cap = 0;
  char *lines = format_lines(accum, &o, &cap);
  char header[512];
  size_t hn = format_header(header, sizeof header, &o, lg_sample);
  static const char maps_title[] = "\nMAPPED_LIBRARIES:\n";
  bool ok = lines != NULL && os_file_write(fd, header, hn) && os_file_write(fd, lines, o.at) &&
            os_file_write(fd, maps_title, sizeof maps_title - 1) && os_file_write_mappings(fd);
  if (lines) os_unmap(lines, cap);
  return os_file_close(fd) && ok;
}
