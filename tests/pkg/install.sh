#!/bin/sh
# tests/pkg/install.sh - `make install` into a temporary DESTDIR: the files
# and links of mk/install.mk (liballoy.so.MAJOR -> liballoy.so.VERSION with
# that soname, liballoy.so -> liballoy.so.MAJOR, the static libraries, the
# headers, alloy.pc, the launcher, the man pages); a program built with
# `pkg-config --cflags --libs alloy` from the installed tree (shared and
# static) runs on alloy; the installed launcher finds the installed
# library; `make uninstall` leaves nothing.  Env: ROOT, BUILD, TEST_TMP.
set -u
cd "${ROOT:-.}" || exit 2
B=${BUILD:-build}
T=${TEST_TMP:-/tmp}/install.$$
command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: pkg-config not installed"; exit 77; }
fails=0
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }
rm -rf "$T"
mkdir -p "$T"
D=$T/root
PREFIX=/opt/alloy-test
version=$(sed -n 's/^#define ALLOY_VERSION_STRING "\(.*\)"/\1/p' include/alloy.h)
major=${version%%.*}
make -s --no-print-directory BUILD="$B" install DESTDIR="$D" PREFIX="$PREFIX" || { echo "FAILED: make install"; exit 1; }
echo "--- installed:"
(cd "$D" && find . \( -type f -o -type l \) | sort)

L=$D$PREFIX/lib
for f in "$L/liballoy.so.$version" "$L/liballoy.a" "$L/liballoy_core.a" "$L/pkgconfig/alloy.pc" \
  "$D$PREFIX/include/alloy.h" "$D$PREFIX/include/alloy/jemalloc/jemalloc.h" "$D$PREFIX/bin/alloy" \
  "$D$PREFIX/share/man/man1/alloy.1" "$D$PREFIX/share/man/man3/alloy.3"; do
  [ -f "$f" ] || bad "missing ${f#$D}"
done
[ "$(readlink "$L/liballoy.so.$major")" = "liballoy.so.$version" ] || bad "liballoy.so.$major does not point at liballoy.so.$version"
[ "$(readlink "$L/liballoy.so")" = "liballoy.so.$major" ] || bad "liballoy.so does not point at liballoy.so.$major"
soname=$(readelf -d "$L/liballoy.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "liballoy.so.$major" ] && echo "ok: soname $soname" || bad "soname '$soname', want liballoy.so.$major"
[ -x "$L/liballoy.so.$version" ] && bad "the shared library is executable (Debian policy: 644)"
[ -e "$D$PREFIX/include/jemalloc" ] && bad "include/jemalloc exists: it would shadow libjemalloc-dev's header"

export PKG_CONFIG_PATH="$L/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D"
v=$(pkg-config --modversion alloy)
[ "$v" = "$version" ] && echo "ok: pkg-config --modversion alloy: $v" || bad "pkg-config --modversion: '$v'"
flags=$(pkg-config --cflags --libs alloy)
echo "pkg-config --cflags --libs alloy: $flags"
cat >"$T/prog.c" <<'C'
#include <alloy.h>
#include <jemalloc/jemalloc.h> /* alloy's, from -I<includedir>/alloy */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
  const char *v;
  size_t len = sizeof v;
  if (mallctl("version", &v, &len, NULL, 0) != 0 || !strstr(v, "alloy-" ALLOY_VERSION_STRING)) return 1;
  if (strcmp(JEMALLOC_VERSION, ALLOY_JEMALLOC_VERSION) != 0) return 2;
  char *p = malloc(100), *q = alloy_malloc(100);
  if (!p || !q || sallocx(p, 0) != 112 || alloy_usable_size(q) != 112) return 3; /* both alloy's */
  free(p);
  alloy_free(q);
  printf("prog: %s\n", v);
  return 0;
}
C
# shellcheck disable=SC2086
if cc -Wall -Werror -o "$T/prog" "$T/prog.c" $flags; then
  needed=$(readelf -d "$T/prog" | sed -n 's/.*(NEEDED).*\[\(liballoy[^]]*\)\]/\1/p')
  [ "$needed" = "liballoy.so.$major" ] && echo "ok: the program needs liballoy.so.$major" || bad "NEEDED '$needed'"
  if LD_LIBRARY_PATH="$L" "$T/prog"; then echo "ok: built with pkg-config, runs on alloy"; else bad "the pkg-config program failed ($?)"; fi
else
  bad "cc prog.c \$(pkg-config --cflags --libs alloy) failed"
fi
# Static: liballoy.a with pkg-config's flags for the headers and --static's for the rest.
# shellcheck disable=SC2086
if cc -Wall -Werror -o "$T/prog_static" "$T/prog.c" $(pkg-config --cflags alloy) "$L/liballoy.a" \
  $(pkg-config --static --libs-only-other alloy); then
  readelf -d "$T/prog_static" | grep -q 'liballoy' && bad "the static program still needs liballoy.so"
  "$T/prog_static" >/dev/null && echo "ok: static link with liballoy.a runs on alloy" || bad "static program failed"
else
  bad "static link with liballoy.a failed"
fi

out=$("$D$PREFIX/bin/alloy" --version)
[ "$out" = "alloy $version" ] && echo "ok: installed launcher: $out" || bad "installed alloy --version: '$out'"
# The installed launcher was built for $PREFIX/lib; moved under DESTDIR it
# finds the library as ../lib/liballoy.so.MAJOR.
out=$("$D$PREFIX/bin/alloy" run -- "$T/prog")
case $out in prog:*) echo "ok: installed launcher runs a program on the installed library" ;; *) bad "alloy run: '$out'" ;; esac
if command -v man >/dev/null 2>&1; then
  MANPATH="$D$PREFIX/share/man" man -w alloy >/dev/null 2>&1 && echo "ok: man finds alloy(1) in MANDIR" || bad "man -w alloy fails with MANPATH=MANDIR"
fi

make -s --no-print-directory BUILD="$B" uninstall DESTDIR="$D" PREFIX="$PREFIX" || bad "make uninstall"
left=$(cd "$D" && find . \( -type f -o -type l \))
[ -z "$left" ] && echo "ok: make uninstall removed every file" || bad "left after uninstall: $left"
[ -d "$D$PREFIX/include/alloy" ] && bad "uninstall left include/alloy"
rm -rf "$T"
[ "$fails" -eq 0 ] && echo "install: ok"
[ "$fails" -eq 0 ]
