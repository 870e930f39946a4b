/*
 * conf_ctl.c - helper of conf.sh: allocates (the first malloc reads the
 * configuration), then prints opt.dirty_decay_ms as alloy_mallctl reports
 * it.  alloy_mallctl is looked up with dlsym so that one source serves a
 * program linked with -lalloy and one that gets alloy by LD_PRELOAD (linked
 * with jemalloc, or with conf_jelib.c in its place).  -DCONF='"..."' makes it
 * define jemalloc's malloc_conf symbol.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#ifdef CONF
const char *malloc_conf = CONF;
#endif

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

int main(void) {
  char *p = malloc(100);
  if (!p) return 2;
  p[0] = 1;
  mallctl_fn ctl;
  *(void **)&ctl = dlsym(RTLD_DEFAULT, "alloy_mallctl");
  if (!ctl) {
    printf("alloy_mallctl not found: not running on alloy\n");
    return 3;
  }
  ssize_t v = 0;
  size_t len = sizeof v;
  int err = ctl("opt.dirty_decay_ms", &v, &len, NULL, 0);
  if (err) {
    printf("alloy_mallctl(opt.dirty_decay_ms) failed: %d\n", err);
    return 4;
  }
  printf("dirty_decay_ms=%zd\n", v);
  free(p);
  return 0;
}
