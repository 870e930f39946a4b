/*
 * test_stats_print.c - the statistics report (src/stats_print.c): the text
 * report has its sections and the size-class table, JSON is well nested and
 * carries the same totals, and the option letters leave sections out.
 */
#include "check.h"
#include "internal.h"

#include <alloy.h>

static char buf[64 * 1024];
static size_t len;

static void collect(void *opaque, const char *s) {
  CHECK_EQ_PTR(opaque, &len);
  size_t n = strlen(s);
  if (len + n < sizeof buf) {
    memcpy(buf + len, s, n);
    len += n;
    buf[len] = 0;
  }
}

static const char *report(const char *opts) {
  len = 0;
  buf[0] = 0;
  alloy_malloc_stats_print(collect, &len, opts);
  return buf;
}

static size_t count(const char *s, const char *what) {
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
  return n;
}

/* Braces and brackets balance and never go negative, outside strings. */
static bool json_nested(const char *s) {
  int depth = 0;
  bool in_string = false;
  for (; *s; s++) {
    if (*s == '"') in_string = !in_string;
    if (in_string) continue;
    if (*s == '{' || *s == '[') depth++;
    if (*s == '}' || *s == ']') depth--;
    if (depth < 0) return false;
  }
  return depth == 0 && !in_string;
}

/* The bins row of class `size` in a text report, with the given column
 * values (allocated nmalloc ndalloc curregs are checked through curregs). */
static bool bins_row_has(const char *t, size_t size, unsigned curregs, unsigned regs) {
  char head[32];
  snprintf(head, sizeof head, " %zu ", size);
  for (const char *line = strstr(t, "bins:"); line; line = strchr(line + 1, '\n')) {
    unsigned long long sz, ind, alloc, nmalloc, ndalloc, cur, slabs, nonfull, nregs, slab;
    if (sscanf(line + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &sz, &ind, &alloc,
               &nmalloc, &ndalloc, &cur, &slabs, &nonfull, &nregs, &slab) == 10 &&
        sz == size)
      return cur == curregs && nregs == regs && nmalloc - ndalloc == cur && alloc == cur * sz;
  }
  return false;
}

int main(void) {
  void *p = alloy_malloc(1 << 20);
  void *small[3];
  for (int i = 0; i < 3; i++) small[i] = alloy_malloc(40000); /* class 40960: 6 per 256 KiB page */
  const char *t = report(NULL);
  CHECK(strstr(t, "___ Begin alloy statistics ___") != NULL);
  CHECK(strstr(t, "___ End alloy statistics ___") != NULL);
  CHECK(strstr(t, "Version: \"5.3.0-0-alloy-") != NULL);
  CHECK(strstr(t, "opt.dirty_decay_ms: ") != NULL);
  CHECK(strstr(t, "Allocated: ") != NULL);
  CHECK(strstr(t, "Merged arenas stats:") != NULL);
  CHECK(strstr(t, "arenas[0]:") != NULL);
  CHECK(bins_row_has(t, 40960, 3, 6));
  CHECK(strstr(t, "large:          size ind  curlextents") != NULL);
  alloy_stats_t s;
  alloy_stats_get(&s);
  CHECK_GE(s.allocated, (uint64_t)1 << 20);

  t = report("gb");
  CHECK(strstr(t, "Version") == NULL);
  CHECK(strstr(t, "bins:") == NULL);
  CHECK(strstr(t, "Allocated: ") != NULL);
  t = report("ma");
  CHECK(strstr(t, "Merged arenas") == NULL);
  CHECK(strstr(t, "arenas[0]") == NULL);
  t = report("l");
  CHECK(strstr(t, "curlextents") == NULL);

  t = report("J");
  CHECK_EQ(t[0], '{');
  CHECK(json_nested(t));
  CHECK(strstr(t, "\"jemalloc\": {") != NULL);
  CHECK(strstr(t, "\"allocated\": ") != NULL);
  CHECK_EQ(count(t, "\"slab_size\""), SIZE_CLASSES);
  CHECK(strstr(t, "\"stats.arenas\": {") != NULL);
  CHECK(strstr(t, "\"merged\": {") != NULL);
  CHECK(strstr(t, "\"resident\": ") != NULL);
  CHECK_EQ(count(t, "\"curregs\""), 2 * SIZE_CLASSES); /* merged and arena 0 */
  t = report("Jgb");
  CHECK(json_nested(t));
  CHECK(strstr(t, "\"version\"") == NULL);
  CHECK(strstr(t, "\"bin\"") == NULL);
  alloy_free(p);
  for (int i = 0; i < 3; i++) alloy_free(small[i]);
  return check_done();
}
