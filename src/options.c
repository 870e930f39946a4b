/*
 * options.c - configuration from the ALLOY_CONF environment string,
 * "key:value,key:value", read once at process start without allocating.
 * An unknown key or a bad value is reported by name and ignored.
 */
#include "internal.h"

#include <string.h>

/* The hardening cost benchmark builds a copy whose default is secure:false. */
#ifndef ALLOY_SECURE_DEFAULT
#define ALLOY_SECURE_DEFAULT true
#endif

alloy_options_t alloy__options = {
    .secure = ALLOY_SECURE_DEFAULT,
    .abort_on_error = true,
    .dirty_decay_ms = 1000,
};

typedef enum { OPT_BOOL, OPT_INT, OPT_THP } opt_type_t;

typedef struct {
  const char *name;
  opt_type_t type;
  void *target;
} option_def_t;

static const option_def_t option_table[] = {
    {"secure", OPT_BOOL, &alloy__options.secure},
    {"abort_on_error", OPT_BOOL, &alloy__options.abort_on_error},
    {"guard", OPT_BOOL, &alloy__options.guard},
    {"guard_sample", OPT_INT, &alloy__options.guard_sample},
    {"dirty_decay_ms", OPT_INT, &alloy__options.dirty_decay_ms},
    {"thp", OPT_THP, &alloy__options.thp},
    {"stats_summary", OPT_BOOL, &alloy__options.stats_summary},
    {"stats_summary_pid", OPT_INT, &alloy__options.summary_pid},
};

static bool parse_bool(const char *v, size_t n, bool *out) {
  if ((n == 4 && !memcmp(v, "true", 4)) || (n == 1 && v[0] == '1')) return *out = true, true;
  if ((n == 5 && !memcmp(v, "false", 5)) || (n == 1 && v[0] == '0')) return *out = false, true;
  return false;
}

/* A decimal integer; "-1" is the only negative value any option takes. */
static bool parse_int(const char *v, size_t n, int *out) {
  if (n == 2 && v[0] == '-' && v[1] == '1') return *out = -1, true;
  long long x = 0;
  if (n == 0 || n > 10) return false;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return false;
    x = x * 10 + (v[i] - '0');
  }
  if (x > 0x7fffffff) return false;
  *out = (int)x;
  return true;
}

static bool parse_thp(const char *v, size_t n, int *out) {
  static const char *names[] = {"default", "always", "never"};
  for (int i = 0; i < 3; i++)
    if (strlen(names[i]) == n && memcmp(names[i], v, n) == 0) return *out = i, true;
  return false;
}

static void option_set(const char *key, size_t klen, const char *val, size_t vlen) {
  for (size_t i = 0; i < sizeof option_table / sizeof option_table[0]; i++) {
    const option_def_t *o = &option_table[i];
    if (strlen(o->name) != klen || memcmp(o->name, key, klen) != 0) continue;
    bool ok = o->type == OPT_BOOL  ? parse_bool(val, vlen, o->target)
              : o->type == OPT_INT ? parse_int(val, vlen, o->target)
                                   : parse_thp(val, vlen, o->target);
    if (!ok) report_message("alloy: bad value for option '%s' in ALLOY_CONF (ignored)", o->name);
    return;
  }
  char name[64];
  size_t n = klen < sizeof name - 1 ? klen : sizeof name - 1;
  memcpy(name, key, n);
  name[n] = 0;
  report_message("alloy: unknown option '%s' in ALLOY_CONF (ignored)", name);
}

void options_init(void) {
  const char *conf = os_getenv("ALLOY_CONF");
  while (conf && *conf) {
    const char *end = strchr(conf, ',');
    if (!end) end = conf + strlen(conf);
    const char *colon = memchr(conf, ':', (size_t)(end - conf));
    if (colon)
      option_set(conf, (size_t)(colon - conf), colon + 1, (size_t)(end - colon - 1));
    else if (end > conf)
      option_set(conf, (size_t)(end - conf), "", 0);
    conf = *end ? end + 1 : end;
  }
}
