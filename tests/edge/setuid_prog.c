/*
 * setuid_prog.c - run set-user-ID root by tests/edge/setuid.sh, linked with
 * liballoy.a.  The program's own malloc_conf sets dirty_decay_ms:1234.
 *   setuid_prog conf    prints "decay=N abort=B" from mallctl (opt.*)
 *   setuid_prog double  frees a block twice: alloy must abort (SIGABRT)
 *                       whatever the environment asks; prints "survived"
 *                       and exits 0 if it did not
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

const char *malloc_conf = "dirty_decay_ms:1234";
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

static void *volatile launder;

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "conf") == 0) {
    ssize_t decay = 0;
    bool abort_on = false;
    size_t len = sizeof decay;
    mallctl("opt.dirty_decay_ms", &decay, &len, NULL, 0);
    len = sizeof abort_on;
    mallctl("opt.abort", &abort_on, &len, NULL, 0);
    printf("decay=%zd abort=%d\n", decay, (int)abort_on);
    return 0;
  }
  char *p = malloc(64);
  launder = p;
  free(p);
  free(launder);
  printf("survived\n");
  return 0;
}
