/*
 * report.c - messages to the user: a small printf that never allocates (the
 * allocator cannot call stdio, which may call malloc), and the reports of
 * misuse (invalid or double frees), which name the address and what was
 * wrong, then abort unless abort_on_error:false.  Below everything but the
 * platform layer: callers make sure the options were read (process_init)
 * before they report.
 */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

static size_t put_char(char *buf, size_t cap, size_t at, char c) {
  if (at + 1 < cap) buf[at] = c;
  return at + 1;
}

/* Digits of v in `base` into tmp (backwards); returns how many. */
static size_t uint_digits(char *tmp, unsigned long long v, unsigned base) {
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  return n;
}

/* One conversion's text, right-aligned in `width` columns (left with '-',
 * padded with zeros with '0'). */
static size_t put_field(char *buf, size_t cap, size_t at, const char *text, size_t len, int width,
                        char flag) {
  bool left = flag == '-';
  size_t pad = width > 0 && (size_t)width > len ? (size_t)width - len : 0;
  if (!left)
    while (pad) at = put_char(buf, cap, at, flag == '0' ? '0' : ' '), pad--;
  for (size_t i = 0; i < len; i++) at = put_char(buf, cap, at, text[i]);
  while (pad) at = put_char(buf, cap, at, ' '), pad--;
  return at;
}

/* Conversions: %s %c %d %u %x %p %% with optional l, ll or z, and an
 * optional field width ("%12llu", "%-8s", "%03u"). */
size_t fmt_vformat(char *buf, size_t cap, const char *fmt, va_list ap) {
  size_t at = 0;
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      at = put_char(buf, cap, at, *fmt);
      continue;
    }
    fmt++;
    char flag = *fmt == '-' || *fmt == '0' ? *fmt++ : ' ';
    int width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int longness = 0;
    while (*fmt == 'l' || *fmt == 'z') {
      longness = *fmt == 'z' ? 2 : longness + 1;
      fmt++;
    }
    char tmp[32], text[32];
    size_t n = 0, len = 0;
    const char *str = text;
    switch (*fmt) {
    case 's':
      str = va_arg(ap, const char *);
      if (!str) str = "(null)";
      len = strlen(str);
      break;
    case 'c': text[len++] = (char)va_arg(ap, int); break;
    case 'd': {
      long long v = longness ? va_arg(ap, long long) : va_arg(ap, int);
      if (v < 0) text[len++] = '-';
      n = uint_digits(tmp, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v, 10);
      break;
    }
    case 'u':
    case 'x': {
      unsigned long long v = longness ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
      n = uint_digits(tmp, v, *fmt == 'x' ? 16 : 10);
      break;
    }
    case 'p':
      text[len++] = '0';
      text[len++] = 'x';
      n = uint_digits(tmp, (uintptr_t)va_arg(ap, void *), 16);
      break;
    case '%': text[len++] = '%'; break;
    default: text[len++] = '?'; break;
    }
    while (n) text[len++] = tmp[--n];
    at = put_field(buf, cap, at, str, len, width, flag);
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

static bool abort_on_misuse = true;

/* abort_on_error (options.c): false reports misuse and goes on. */
void report_set_abort(bool on) { abort_on_misuse = on; }

void report_misuse_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_v(fmt, ap);
  va_end(ap);
  if (abort_on_misuse) os_abort();
}

void report_misuse(const char *what, const void *p, const char *detail) {
  report_misuse_fmt("alloy: %s: %p (%s)", what, p, detail);
}
