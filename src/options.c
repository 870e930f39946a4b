/*
 * options.c - configuration, jemalloc's model: "key:value,key:value"
 * strings read once at process start, without allocating, from three
 * sources in this order, a later one overriding an earlier one: the
 * program's `malloc_conf` symbol, the MALLOC_CONF environment variable, then
 * ALLOY_CONF.  An unknown key or a bad value is reported with its source and
 * ignored, or is fatal once all sources are read if abort_conf:true; a key
 * jemalloc knows and alloy does not implement is reported as such and is
 * never fatal (it is valid jemalloc configuration).
 */
#include "internal.h"

#include <limits.h>
#include <string.h>

/* ... and one that never purges (dirty_decay_ms:-1), for measuring what
 * purging costs: ALLOCATORS=alloy,alloy-nopurge make bench. */
#ifndef ALLOY_DECAY_DEFAULT
#define ALLOY_DECAY_DEFAULT 1000
#endif
/* The bench's alloy-threadheaps and alloy-percpu builds default to
 * percpu:false and percpu:true (the Makefile's VARIANTS). */
#ifndef ALLOY_PERCPU_DEFAULT
#define ALLOY_PERCPU_DEFAULT PERCPU_AUTO
#endif

alloy_options_t alloy__options = {
    .secure = true,
    .abort_on_error = true,
    .dirty_decay_ms = ALLOY_DECAY_DEFAULT,
    .muzzy_decay_ms = 0, /* jemalloc 5.3's default: no muzzy state to keep */
    .tcache = true,
    .sparse_purge = true,
    .purge = PURGE_DONTNEED,
    .percpu = ALLOY_PERCPU_DEFAULT,
    .prof_active = true,
    .prof_thread_active_init = true,
    .lg_prof_sample = 19,
    .lg_prof_interval = -1,
    .prof_prefix = "jeprof",
};

/* jemalloc's hook: a program defines `const char *malloc_conf = "...";`.
 * Weak and of default visibility so that the program's definition wins,
 * both when it links liballoy (the linker then exports it from the
 * executable) and when liballoy is preloaded over a program linked with
 * jemalloc, whose own weak definition makes the linker export it; being weak
 * and preemptible, it is read through the GOT.  override.c carries the
 * standard names, but this one is read here, at process start. */
__attribute__((weak, visibility("default"))) const char *malloc_conf = NULL;

/* OPT_LG: a log2 of bytes, 0..63; OPT_LG_OFF: the same or -1 (off);
 * OPT_STRING: up to PROF_PREFIX_MAX - 1 characters. */
typedef enum { OPT_BOOL, OPT_INT, OPT_UINT, OPT_ENUM, OPT_LETTERS, OPT_LG, OPT_LG_OFF, OPT_STRING } opt_type_t;

typedef struct {
  const char *name;
  opt_type_t type;
  void *target;
  const char *const *values; /* OPT_ENUM: the names of 0, 1, ..., then NULL */
} option_def_t;

const char *const alloy__thp_names[] = {"default", "always", "never", "auto", NULL};
const char *const alloy__purge_names[] = {"dontneed", "free", NULL};
const char *const alloy__unwind_names[] = {"cfi", "fp", "libgcc", NULL};
const char *const alloy__percpu_names[] = {"false", "true", "auto", NULL};

/* OPT_INT takes -1 to INT_MAX (-1: never, for the decay times), OPT_UINT 1
 * to UINT_MAX (jemalloc's narenas). */
static const option_def_t option_table[] = {
    {"secure", OPT_BOOL, &alloy__options.secure, NULL},
    {"abort_on_error", OPT_BOOL, &alloy__options.abort_on_error, NULL},
    {"guard", OPT_BOOL, &alloy__options.guard, NULL},
    {"guard_sample", OPT_INT, &alloy__options.guard_sample, NULL},
    {"dirty_decay_ms", OPT_INT, &alloy__options.dirty_decay_ms, NULL},
    {"thp", OPT_ENUM, &alloy__options.thp, alloy__thp_names},
    {"stats_summary", OPT_BOOL, &alloy__options.stats_summary, NULL},
    {"stats_summary_pid", OPT_INT, &alloy__options.summary_pid, NULL},
    {"abort_conf", OPT_BOOL, &alloy__options.abort_conf, NULL},
    {"stats_print", OPT_BOOL, &alloy__options.stats_print, NULL},
    {"stats_print_opts", OPT_LETTERS, alloy__options.stats_print_opts, NULL},
    {"background_thread", OPT_BOOL, &alloy__options.background_thread, NULL},
    {"muzzy_decay_ms", OPT_INT, &alloy__options.muzzy_decay_ms, NULL},
    {"narenas", OPT_UINT, &alloy__options.narenas, NULL},
    {"tcache", OPT_BOOL, &alloy__options.tcache, NULL},
    {"sparse_purge", OPT_BOOL, &alloy__options.sparse_purge, NULL},
    {"purge", OPT_ENUM, &alloy__options.purge, alloy__purge_names},
    {"percpu", OPT_ENUM, &alloy__options.percpu, alloy__percpu_names},
    {"prof", OPT_BOOL, &alloy__options.prof, NULL},
    {"prof_active", OPT_BOOL, &alloy__options.prof_active, NULL},
    {"prof_thread_active_init", OPT_BOOL, &alloy__options.prof_thread_active_init, NULL},
    {"lg_prof_sample", OPT_LG, &alloy__options.lg_prof_sample, NULL},
    {"prof_prefix", OPT_STRING, alloy__options.prof_prefix, NULL},
    {"prof_accum", OPT_BOOL, &alloy__options.prof_accum, NULL},
    {"prof_final", OPT_BOOL, &alloy__options.prof_final, NULL},
    {"prof_leak", OPT_BOOL, &alloy__options.prof_leak, NULL},
    {"prof_leak_error", OPT_BOOL, &alloy__options.prof_leak_error, NULL},
    {"lg_prof_interval", OPT_LG_OFF, &alloy__options.lg_prof_interval, NULL},
    {"prof_gdump", OPT_BOOL, &alloy__options.prof_gdump, NULL},
    {"prof_unwind", OPT_ENUM, &alloy__options.prof_unwind, alloy__unwind_names},
    {"prof_pid", OPT_INT, &alloy__options.prof_pid, NULL},
};

/* jemalloc keys alloy does not implement: reported, never fatal, so that a
 * configuration written for jemalloc works under abort_conf:true too. */
static const char *const jemalloc_keys[] = {
    "abort", "bin_shards", "cache_oblivious", "confirm_conf", "dss",
    "experimental_infallible_new", "hpa", "junk", "lg_extent_max_active_fit",
    "lg_tcache_max", "max_background_threads", "metadata_thp", "mutex_max_spin",
    "oversize_threshold", "percpu_arena", "prof_log", "prof_recent_alloc_max", "prof_stats",
    "prof_sys_thread_name", "prof_time_resolution", "retain", "san_guard_large",
    "san_guard_small", "slab_sizes", "stats_interval", "stats_interval_opts",
    "tcache_max", "trust_madvise", "utrace", "xmalloc", "zero", "zero_realloc",
};

static bool conf_error; /* an unknown key or bad value was seen */
static void options_checked(void);

static bool name_is(const char *name, const char *s, size_t n) {
  return strlen(name) == n && memcmp(name, s, n) == 0;
}

static bool parse_bool(const char *v, size_t n, bool *out) {
  if (name_is("true", v, n) || name_is("1", v, n)) return *out = true, true;
  if (name_is("false", v, n) || name_is("0", v, n)) return *out = false, true;
  return false;
}

/* A decimal integer within [min, max]. */
static bool parse_num(const char *v, size_t n, long long min, long long max, long long *out) {
  bool negative = n > 0 && v[0] == '-';
  if (negative) {
    v++;
    n--;
  }
  if (n == 0 || n > 10) return false; /* ten digits hold UINT_MAX, not an overflow */
  long long x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return false;
    x = x * 10 + (v[i] - '0');
  }
  if (negative) x = -x;
  if (x < min || x > max) return false;
  *out = x;
  return true;
}

static bool parse_enum(const char *v, size_t n, const char *const *values, int *out) {
  for (int i = 0; values[i]; i++)
    if (name_is(values[i], v, n)) return *out = i, true;
  return false;
}

/* jemalloc's rule for stats_print_opts: letters add up over the sources; a
 * repeated letter or one that is not among jemalloc's report options is
 * skipped, never an error. */
static bool add_letters(const char *v, size_t n, char *dest) {
  static const char known[] = "Jgmdablxeh";
  size_t len = strlen(dest);
  for (size_t i = 0; i < n && len + 1 < sizeof alloy__options.stats_print_opts; i++)
    if (memchr(known, v[i], sizeof known - 1) && !memchr(dest, v[i], len)) dest[len++] = v[i];
  dest[len] = 0;
  return true;
}

/* Stores the value only when it is valid. */
static bool option_parse(const option_def_t *o, const char *v, size_t n) {
  long long x;
  switch (o->type) {
  case OPT_BOOL: return parse_bool(v, n, o->target);
  case OPT_INT:
    if (!parse_num(v, n, -1, INT_MAX, &x)) return false;
    *(int *)o->target = (int)x;
    return true;
  case OPT_UINT:
    if (!parse_num(v, n, 1, UINT_MAX, &x)) return false;
    *(unsigned *)o->target = (unsigned)x;
    return true;
  case OPT_ENUM: return parse_enum(v, n, o->values, o->target);
  case OPT_LETTERS: return add_letters(v, n, o->target);
  case OPT_LG:
  case OPT_LG_OFF:
    if (!parse_num(v, n, o->type == OPT_LG ? 0 : -1, 63, &x)) return false;
    *(int *)o->target = (int)x;
    return true;
  case OPT_STRING:
    if (n >= PROF_PREFIX_MAX) return false;
    memcpy(o->target, v, n);
    ((char *)o->target)[n] = 0;
    return true;
  }
  return false;
}

static const option_def_t *option_find(const char *key, size_t klen) {
  for (size_t i = 0; i < sizeof option_table / sizeof option_table[0]; i++)
    if (name_is(option_table[i].name, key, klen)) return &option_table[i];
  return NULL;
}

static bool jemalloc_key(const char *key, size_t klen) {
  for (size_t i = 0; i < sizeof jemalloc_keys / sizeof jemalloc_keys[0]; i++)
    if (name_is(jemalloc_keys[i], key, klen)) return true;
  return false;
}

/* s[0, n) as a string for a message, cut to fit buf. */
static const char *clip(char *buf, size_t cap, const char *s, size_t n) {
  if (n > cap - 1) n = cap - 1;
  memcpy(buf, s, n);
  buf[n] = 0;
  return buf;
}

static void option_set(const char *source, const char *key, size_t klen, const char *val,
                       size_t vlen) {
  char k[64], v[64];
  const option_def_t *o = option_find(key, klen);
  if (o && option_parse(o, val, vlen)) return;
  if (o) {
    report_message("alloy: bad value '%s' for option '%s' in %s (ignored)",
                   clip(v, sizeof v, val, vlen), o->name, source);
    conf_error = true;
  } else if (jemalloc_key(key, klen)) {
    report_message("alloy: option '%s' (jemalloc) in %s is not supported by alloy (ignored)",
                   clip(k, sizeof k, key, klen), source);
  } else {
    report_message("alloy: unknown option '%s' in %s (ignored)", clip(k, sizeof k, key, klen),
                   source);
    conf_error = true;
  }
}

/* "key:value,key:value"; an empty item is skipped, a key without a value
 * gets the empty value (a bad one for every option). */
static void conf_parse(const char *source, const char *conf) {
  while (conf && *conf) {
    const char *end = strchr(conf, ',');
    if (!end) end = conf + strlen(conf);
    const char *colon = memchr(conf, ':', (size_t)(end - conf));
    if (colon)
      option_set(source, conf, (size_t)(colon - conf), colon + 1, (size_t)(end - colon - 1));
    else if (end > conf)
      option_set(source, conf, (size_t)(end - conf), "", 0);
    conf = *end ? end + 1 : end;
  }
}

/* As jemalloc, abort_conf is judged after every source is read, so its place
 * in the strings does not matter.  In a set-user-ID or set-group-ID program
 * (the kernel's AT_SECURE) the environment is the invoking user's, not the
 * program's: its variables are ignored, as jemalloc ignores MALLOC_CONF
 * under issetugid() and glibc drops its malloc tunables, so a user cannot
 * turn checks off (abort_on_error:false, secure:false) in a program that
 * runs with more privileges than theirs; the malloc_conf symbol, compiled
 * into the program, still applies. */
void options_init(void) {
  conf_parse("malloc_conf", malloc_conf);
  if (!os_secure_exec()) {
    conf_parse("MALLOC_CONF", os_getenv("MALLOC_CONF"));
    conf_parse("ALLOY_CONF", os_getenv("ALLOY_CONF"));
  }
  /* prof_pid (alloy run --prof): the processes the program starts do not profile */
  if (alloy__options.prof_pid != 0 && alloy__options.prof_pid != os_getpid()) alloy__options.prof = false;
  options_checked();
}

/* Ends the reading of the sources: fatal for a bad one with abort_conf. */
static void options_checked(void) {
  report_set_abort(alloy__options.abort_on_error);
  if (conf_error && alloy__options.abort_conf)
    report_fatal("alloy: invalid configuration (above) with abort_conf:true: aborting");
}
