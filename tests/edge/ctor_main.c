/*
 * ctor_main.c - edge test (a): memory allocated before main, from
 * libctor.so's constructor and from this program's .preinit_array (which runs
 * before every shared library's constructor, alloy's included), is valid
 * alloy memory in main: contents intact, usable sizes right, freeable.
 */
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#include "preload.h"

#include "ctor.h"

static char *preinit_str;
static void *preinit_blocks[32];

static void preinit(int argc, char **argv, char **envp)
{
  (void)argc;
  (void)argv;
  (void)envp;
  preinit_str = malloc(64);
  if (preinit_str)
    strcpy(preinit_str, "from preinit_array");
  for (int i = 0; i < 32; i++) {
    preinit_blocks[i] = calloc(1, (size_t)(i + 1) * 100);
    free(malloc((size_t)i * 1000));
  }
}
__attribute__((section(".preinit_array"), used)) static void (*preinit_entry)(int, char **,
                                                                             char **) = preinit;

int main(void)
{
  require_alloy();
  struct ctor_results *r = &ctor_results;
  EDGE_CHECK(r->ran == 1);
  EDGE_CHECK(r->str && strcmp(r->str, "constructor string") == 0);
  EDGE_CHECK(malloc_usable_size(r->str) >= strlen(r->str) + 1);
  for (int i = 0; i < NBLK; i++) {
    EDGE_CHECK(r->blk[i] != NULL);
    EDGE_CHECK(malloc_usable_size(r->blk[i]) >= r->size[i]);
    for (size_t j = 0; j < r->size[i]; j++)
      if (r->blk[i][j] != (unsigned char)i)
        EDGE_FAIL("constructor block %d byte %zu changed", i, j);
  }
  EDGE_CHECK(r->zeros != NULL);
  for (int i = 0; i < 1000; i++)
    EDGE_CHECK(r->zeros[i] == 0);
  EDGE_CHECK(r->aligned != NULL && (uintptr_t)r->aligned % 4096 == 0);
  EDGE_CHECK(r->grown != NULL && r->grown[0] == 'g' && r->grown[65535] == 'g');
  EDGE_CHECK(r->from_thread && strstr(r->from_thread, "constructor") != NULL);
  EDGE_CHECK(preinit_str && strcmp(preinit_str, "from preinit_array") == 0);
  for (int i = 0; i < 32; i++) {
    unsigned char *b = preinit_blocks[i];
    EDGE_CHECK(b != NULL);
    for (int j = 0; j < (i + 1) * 100; j++)
      EDGE_CHECK(b[j] == 0);
    free(b);
  }
  free(preinit_str);
  free(r->str);
  for (int i = 0; i < NBLK; i++)
    free(r->blk[i]);
  free(r->zeros);
  free(r->aligned);
  free(r->grown);
  free(r->from_thread);
  printf("ctor: ok\n");
  return 0;
}
