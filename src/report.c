/*
 * report.c - messages to the user: a small printf that never allocates (the
 * allocator cannot call stdio, which may call malloc), and the reports of
 * misuse (invalid or double frees), which name the address and what was
 * wrong, then abort unless abort_on_error:false.
 */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

static size_t put_char(char *buf, size_t cap, size_t at, char c) {
  if (at + 1 < cap) buf[at] = c;
  return at + 1;
}

static size_t put_str(char *buf, size_t cap, size_t at, const char *s) {
  while (*s) at = put_char(buf, cap, at, *s++);
  return at;
}

static size_t put_uint(char *buf, size_t cap, size_t at, unsigned long long v, unsigned base,
                       bool prefix) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  if (prefix) at = put_str(buf, cap, at, "0x");
  while (n) at = put_char(buf, cap, at, tmp[--n]);
  return at;
}

/* Conversions: %s %c %d %u %x %p %% with optional l, ll or z; no widths. */
size_t fmt_vformat(char *buf, size_t cap, const char *fmt, va_list ap) {
  size_t at = 0;
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      at = put_char(buf, cap, at, *fmt);
      continue;
    }
    fmt++;
    int longness = 0;
    while (*fmt == 'l' || *fmt == 'z') {
      longness = *fmt == 'z' ? 2 : longness + 1;
      fmt++;
    }
    switch (*fmt) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      at = put_str(buf, cap, at, s ? s : "(null)");
      break;
    }
    case 'c': at = put_char(buf, cap, at, (char)va_arg(ap, int)); break;
    case 'd': {
      long long v = longness ? va_arg(ap, long long) : va_arg(ap, int);
      if (v < 0) at = put_char(buf, cap, at, '-');
      at = put_uint(buf, cap, at, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v,
                    10, false);
      break;
    }
    case 'u':
    case 'x': {
      unsigned long long v = longness ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
      at = put_uint(buf, cap, at, v, *fmt == 'x' ? 16 : 10, false);
      break;
    }
    case 'p': at = put_uint(buf, cap, at, (uintptr_t)va_arg(ap, void *), 16, true); break;
    case '%': at = put_char(buf, cap, at, '%'); break;
    default: at = put_char(buf, cap, at, '?'); break;
    }
  }
  if (cap) buf[at < cap ? at : cap - 1] = 0;
  return at;
}

size_t fmt_format(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = fmt_vformat(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

static void report_v(const char *fmt, va_list ap) {
  char buf[512];
  size_t n = fmt_vformat(buf, sizeof buf - 1, fmt, ap);
  if (n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  os_write(2, buf, n);
}

void report_message(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_v(fmt, ap);
  va_end(ap);
}

void report_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_v(fmt, ap);
  va_end(ap);
  os_abort();
}

void report_misuse_fmt(const char *fmt, ...) {
  process_init(); /* a bad free can be the program's first call: read the options */
  va_list ap;
  va_start(ap, fmt);
  report_v(fmt, ap);
  va_end(ap);
  if (alloy__options.abort_on_error) os_abort();
}

void report_misuse(const char *what, const void *p, const char *detail) {
  report_misuse_fmt("alloy: %s: %p (%s)", what, p, detail);
}
