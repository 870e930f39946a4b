/*
 * override.c - alloy under the standard names: the C and POSIX allocation
 * functions, glibc's __libc_* entry points, and every C++ operator new and
 * delete under its mangled name (so C++ programs get alloy, sized delete
 * included, without relinking).  The only file that defines these names;
 * left out of the sanitizer builds, where the sanitizer owns malloc.
 *
 * malloc and free carry the inline fast path themselves; other names are
 * aliases or one call into alloc.c.
 */
#include "fastpath.h"

#include <alloy.h>
#include <errno.h>
#include <stdbool.h>

/* An alias does not inherit the attributes libc's headers put on its target
 * (nothrow, malloc, ...); gcc warns about that, harmlessly. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#define ALIAS(target) __attribute__((alias(#target), visibility("default")))

EXPORT void *malloc(size_t size) { return fast_malloc(size); }
EXPORT void free(void *p) { fast_free(p); }
EXPORT void *calloc(size_t n, size_t size) { return alloy__calloc(n, size); }
EXPORT void *realloc(void *p, size_t size) { return alloy__realloc(p, size); }
EXPORT void *reallocarray(void *p, size_t n, size_t size) { return alloy__reallocarray(p, n, size); }
EXPORT void *aligned_alloc(size_t align, size_t size) { return alloy__aligned_alloc(align, size); }
EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  return alloy__posix_memalign(out, align, size);
}
EXPORT void *memalign(size_t align, size_t size) { return alloy__memalign(align, size); }
EXPORT void *valloc(size_t size) { return alloy__valloc(size); }
EXPORT void *pvalloc(size_t size) { return alloy__pvalloc(size); }
EXPORT size_t malloc_usable_size(void *p) { return alloy__usable_size(p); }
EXPORT void free_sized(void *p, size_t size) { alloy__free_sized(p, size); }
EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
  alloy__free_aligned_sized(p, align, size);
}
/* glibc: gives free memory back; returns 1 when it could have released some. */
EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  alloy__collect();
  return 1;
}

/* jemalloc's extended API (src/mallocx.c), so a program linked against
 * libjemalloc that is run on alloy never hands alloy a block of jemalloc's. */
EXPORT void *mallocx(size_t size, int flags) { return alloy_mallocx(size, flags); }
EXPORT void *rallocx(void *p, size_t size, int flags) { return alloy_rallocx(p, size, flags); }
EXPORT size_t xallocx(void *p, size_t size, size_t extra, int flags) {
  return alloy_xallocx(p, size, extra, flags);
}
EXPORT size_t sallocx(const void *p, int flags) { return alloy_sallocx(p, flags); }
EXPORT void dallocx(void *p, int flags) { alloy_dallocx(p, flags); }
EXPORT void sdallocx(void *p, size_t size, int flags) { alloy_sdallocx(p, size, flags); }
EXPORT size_t nallocx(size_t size, int flags) { return alloy_nallocx(size, flags); }
/* jemalloc's control and statistics interface (src/ctl.c, src/stats_print.c):
 * with these exported, Redis's INFO and MEMORY commands and bind9's arenas
 * talk to alloy, not to the libjemalloc they were linked with. */
EXPORT int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
  return alloy_mallctl(name, oldp, oldlenp, newp, newlen);
}
EXPORT int mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
  return alloy_mallctlnametomib(name, mibp, miblenp);
}
EXPORT int mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
  return alloy_mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen);
}
/* jemalloc's hook for where its messages go: the report uses it when the
 * caller gives no callback. */
EXPORT void (*malloc_message)(void *cbopaque, const char *s);
EXPORT void malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts) {
  alloy_malloc_stats_print(write_cb ? write_cb : malloc_message, cbopaque, opts);
}

/* glibc's internal names, called by some programs and by libc itself. */
void *__libc_malloc(size_t size) ALIAS(malloc);
void __libc_free(void *p) ALIAS(free);
void *__libc_calloc(size_t n, size_t size) ALIAS(calloc);
void *__libc_realloc(void *p, size_t size) ALIAS(realloc);
void *__libc_memalign(size_t align, size_t size) ALIAS(memalign);
void *__libc_valloc(size_t size) ALIAS(valloc);
void *__libc_pvalloc(size_t size) ALIAS(pvalloc);
int __posix_memalign(void **out, size_t align, size_t size) ALIAS(posix_memalign);

/* ------------------------------------------------------------------ C++ */

/* From libstdc++, present whenever a C++ program is: weak, so a C program
 * does not need them. */
typedef void (*new_handler_t)(void);
extern new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* operator new's contract on failure: call the new-handler until it gives
 * up; then throw std::bad_alloc, or return NULL for the nothrow forms. */
static NOINLINE void *new_failed(size_t size, size_t align, bool nothrow) {
  for (;;) {
    new_handler_t handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (handler == NULL) {
      if (nothrow) return NULL;
      if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
      report_fatal("alloy: operator new: out of memory (%zu bytes)", size);
    }
    handler();
    void *p = alloy__aligned(align, size);
    if (p) return p;
  }
}

static inline void *new_impl(size_t size, size_t align, bool nothrow) {
  void *p = align <= ALIGNMENT_MIN ? fast_malloc(size) : alloy__aligned(align, size);
  if (unlikely(p == NULL)) return new_failed(size, align, nothrow);
  return p;
}

/* operator new(size_t), new[](size_t), and their nothrow forms */
EXPORT void *_Znwm(size_t n) { return new_impl(n, 0, false); }
EXPORT void *_Znam(size_t n) { return new_impl(n, 0, false); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag) {
  (void)tag;
  return new_impl(n, 0, true);
}
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *tag) {
  (void)tag;
  return new_impl(n, 0, true);
}
/* aligned forms (std::align_val_t is a size_t) */
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al) { return new_impl(n, al, false); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t al) { return new_impl(n, al, false); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *tag) {
  (void)tag;
  return new_impl(n, al, true);
}
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *tag) {
  (void)tag;
  return new_impl(n, al, true);
}

/* operator delete: plain, sized, nothrow, aligned, aligned+sized.  Every
 * block records its own size and alignment, so all forms free the same way;
 * the sized ones pass the size on for checking. */
EXPORT void _ZdlPv(void *p) { fast_free(p); }
EXPORT void _ZdaPv(void *p) { fast_free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *tag) {
  (void)tag;
  fast_free(p);
}
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *tag) {
  (void)tag;
  fast_free(p);
}
EXPORT void _ZdlPvm(void *p, size_t n) { alloy__free_sized(p, n); }
EXPORT void _ZdaPvm(void *p, size_t n) { alloy__free_sized(p, n); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al) { alloy__free_aligned_sized(p, al, 0); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al) { alloy__free_aligned_sized(p, al, 0); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *tag) {
  (void)tag;
  alloy__free_aligned_sized(p, al, 0);
}
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *tag) {
  (void)tag;
  alloy__free_aligned_sized(p, al, 0);
}
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al) {
  alloy__free_aligned_sized(p, al, n);
}
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t al) {
  alloy__free_aligned_sized(p, al, n);
}
