/*
 * conf_dump.c - helper of conf.sh: linked with build/liballoy.a, so it can
 * read alloy__options (a hidden symbol, reachable in a static link) and
 * print the options that have no opt.* name yet.  -DCONF='"..."' makes it
 * define jemalloc's malloc_conf symbol.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef CONF
const char *malloc_conf = CONF;
#endif

int main(void) {
  char *p = malloc(100); /* the first malloc reads the configuration */
  if (!p) return 2;
  const alloy_options_t *o = &alloy__options;
  printf("dirty_decay_ms=%d muzzy_decay_ms=%d narenas=%u tcache=%d background_thread=%d "
         "purge=%d abort_conf=%d stats_print=%d stats_print_opts=[%s]\n",
         o->dirty_decay_ms, o->muzzy_decay_ms, o->narenas, o->tcache, o->background_thread,
         o->purge, o->abort_conf, o->stats_print, o->stats_print_opts);
  free(p);
  return 0;
}
