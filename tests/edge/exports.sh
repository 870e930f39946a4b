#!/bin/sh
# exports.sh - edge test (f, ABI part): liballoy.so exports the C, POSIX,
# glibc-internal and C++ allocation symbols, and needs nothing but libc (and
# libpthread, if linked) at run time (readelf -d NEEDED).  Env: ALLOY_SO.
set -u
so=$ALLOY_SO
[ -f "$so" ] || { echo "FAILED: $so does not exist"; exit 1; }
fails=0
defined=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwiV]$/ {print $3}' | sed 's/@.*//')
for sym in _Znwm _Znam _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t \
  _ZnwmSt11align_val_t _ZnamSt11align_val_t _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t \
  _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t \
  malloc free calloc realloc reallocarray aligned_alloc posix_memalign memalign valloc \
  pvalloc malloc_usable_size free_sized free_aligned_sized \
  __libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign \
  mallocx rallocx xallocx sallocx dallocx sdallocx nallocx \
  mallctl mallctlnametomib mallctlbymib malloc_stats_print \
  alloy_malloc alloy_free alloy_stats_get; do
  if printf '%s\n' "$defined" | grep -qx -- "$sym"; then
    :
  else
    echo "FAILED: $sym is not exported by $so"
    fails=$((fails + 1))
  fi
done
needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
echo "NEEDED: $(echo $needed)"
[ -n "$needed" ] || { echo "FAILED: no NEEDED entries found (readelf output unexpected?)"; fails=$((fails + 1)); }
for lib in $needed; do
  case "$lib" in
    libc.so.6 | libpthread.so.0) ;;
    *) echo "FAILED: $so needs $lib"; fails=$((fails + 1)) ;;
  esac
done
# Internal symbols stay hidden: nothing but the public API, the standard
# names and the C++ operators is exported.
extra=$(printf '%s\n' "$defined" | grep -Ev '^(alloy_|_Zn|_Zd|__libc_|__posix_memalign$|malloc|free|calloc$|realloc|reallocarray$|aligned_alloc$|posix_memalign$|memalign$|valloc$|pvalloc$|_init$|_fini$|mallopt$|mallinfo2?$|malloc_trim$|malloc_stats$|cfree$|mallocx$|rallocx$|xallocx$|sallocx$|dallocx$|sdallocx$|nallocx$|mallctl$|mallctlnametomib$|mallctlbymib$|malloc_stats_print$|malloc_conf$|malloc_message$)' || true)
if [ -n "$extra" ]; then
  echo "FAILED: unexpected exported symbols:"
  printf '%s\n' "$extra" | head -n 20
  fails=$((fails + 1))
fi
[ "$fails" -eq 0 ] && echo "exports: ok"
[ "$fails" -eq 0 ]
