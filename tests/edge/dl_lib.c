/*
 * dl_lib.c - libdl_lib.so for edge test (d), loaded with dlopen: allocates in
 * its constructor and frees in its destructor, hands out memory for the main
 * program to free (and frees the program's), and has thread-local variables,
 * which for a dlopen'ed library glibc allocates with malloc in each thread
 * that touches them.
 */
#include <stdlib.h>
#include <string.h>

static char **table;
static int table_len;
static __thread char tls_buf[10000];
static __thread int tls_count;

__attribute__((constructor)) static void dl_ctor(void)
{
  table_len = 100;
  table = calloc((size_t)table_len, sizeof *table);
  for (int i = 0; table && i < table_len; i++) {
    table[i] = malloc((size_t)i * 37 + 1);
    if (table[i])
      memset(table[i], 'a' + i % 26, (size_t)i * 37 + 1);
  }
}

__attribute__((destructor)) static void dl_dtor(void)
{
  for (int i = 0; table && i < table_len; i++)
    free(table[i]);
  free(table);
  table = NULL;
}

/* 0 when the constructor's table is intact. */
int dl_check(void)
{
  if (!table)
    return -1;
  for (int i = 0; i < table_len; i++) {
    if (!table[i])
      return i + 1;
    for (int j = 0; j < i * 37 + 1; j++)
      if (table[i][j] != 'a' + i % 26)
        return i + 1;
  }
  return 0;
}

void *dl_alloc(size_t n, int fill)
{
  void *p = malloc(n);
  if (p)
    memset(p, fill, n);
  return p;
}

void *dl_realloc(void *p, size_t n) { return realloc(p, n); }

/* Frees a block the caller allocated, after checking it holds `fill`. */
int dl_free_checked(unsigned char *p, size_t n, int fill)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)fill)
      return -1;
  free(p);
  return 0;
}

/* Uses this thread's TLS block; returns how often this thread came here. */
int dl_tls_touch(int v)
{
  for (int i = 0; i < 10000; i += 100)
    if (tls_buf[i] != (char)(tls_count ? v : 0))
      return -1;
  memset(tls_buf, v, sizeof tls_buf);
  return ++tls_count;
}
