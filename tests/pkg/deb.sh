#!/bin/sh
# tests/pkg/deb.sh - the Debian packages built from a copy of the tree
# (dpkg-buildpackage -us -uc -b with debian/): liballoy0, liballoy-dev and
# alloy-tools exist with the files mk/install.mk installs, lintian finds no
# error, apt can install them (simulated: the machine is left alone), and
# the unpacked packages work (the launcher runs a program on the packaged
# library).  Env: ROOT, TEST_TMP.
set -u
cd "${ROOT:-.}" || exit 2
T=${TEST_TMP:-/tmp}/deb.$$
for tool in dpkg-buildpackage dh lintian apt-get; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed (dpkg-dev, debhelper, lintian, apt)"; exit 77; }
done
fails=0
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }
rm -rf "$T"
mkdir -p "$T/src/alloy"
# The tree as it is (committed or not), without build outputs.
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C "$T/src/alloy"
else
  tar -cf - --exclude=./build --exclude=./.git . | tar -xf - -C "$T/src/alloy"
fi
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg --print-architecture)
# debian/changelog must follow include/alloy.h, the version's one source.
upstream=$(sed -n 's/^#define ALLOY_VERSION_STRING "\(.*\)"/\1/p' include/alloy.h)
case $version in
  "$upstream" | "$upstream"-*) echo "ok: debian/changelog's version $version follows alloy.h's $upstream" ;;
  *) bad "debian/changelog says $version, include/alloy.h $upstream" ;;
esac
(cd "$T/src/alloy" && DEB_BUILD_OPTIONS="parallel=2 nocheck" dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1
rc=$?
tail -n 12 "$T/build.log"
[ "$rc" -eq 0 ] || { echo "FAILED: dpkg-buildpackage exit $rc"; tail -n 40 "$T/build.log"; exit 1; }

debs=""
for p in liballoy0 liballoy-dev alloy-tools; do
  f="$T/src/${p}_${version}_${arch}.deb"
  [ -f "$f" ] && debs="$debs $f" || bad "no package $p"
done
contents() { dpkg-deb -c "$T/src/${1}_${version}_${arch}.deb" | awk '{print $6}'; }
contents liballoy0 | grep -q '/liballoy\.so\.[0-9]*\.[0-9]*\.[0-9]*$' || bad "liballoy0 lacks liballoy.so.VERSION"
contents liballoy0 | grep -q '/liballoy\.so\.0$' || bad "liballoy0 lacks the soname link"
for f in /usr/include/alloy.h /usr/include/alloy/jemalloc/jemalloc.h '/liballoy\.a$' '/liballoy_core\.a$' \
  '/liballoy\.so$' '/pkgconfig/alloy\.pc$' 'man3/alloy\.3'; do
  contents liballoy-dev | grep -q "$f" || bad "liballoy-dev lacks $f"
done
contents alloy-tools | grep -q '/usr/bin/alloy$' || bad "alloy-tools lacks /usr/bin/alloy"
contents alloy-tools | grep -q 'man1/alloy\.1' || bad "alloy-tools lacks alloy(1)"
contents liballoy-dev | grep -q '/usr/include/jemalloc/' && bad "liballoy-dev would overwrite libjemalloc-dev's header"

lintian --fail-on error "$T/src/alloy_${version}_${arch}.changes" >"$T/lintian.txt" 2>&1
rc=$?
grep -v '^running with root' "$T/lintian.txt"
[ "$rc" -eq 0 ] && echo "ok: lintian: no error ($(grep -c '^W:' "$T/lintian.txt") warnings)" || bad "lintian found errors"

# shellcheck disable=SC2086
if apt-get install --simulate $debs >"$T/apt.txt" 2>&1; then
  echo "ok: apt-get install --simulate: installable"
  grep '^Inst' "$T/apt.txt"
else
  bad "apt-get cannot install them: $(tail -n 5 "$T/apt.txt")"
fi

mkdir -p "$T/root"
for d in $debs; do dpkg-deb -x "$d" "$T/root"; done
lib=$(find "$T/root" -name 'liballoy.so.0' | head -n 1)
out=$("$T/root/usr/bin/alloy" --version)
[ "$out" = "alloy $(sed -n 's/^#define ALLOY_VERSION_STRING "\(.*\)"/\1/p' include/alloy.h)" ] &&
  echo "ok: packaged launcher: $out" || bad "packaged alloy --version: '$out'"
if command -v python3 >/dev/null 2>&1; then
  ALLOY_LIB=$lib "$T/root/usr/bin/alloy" run --stats -- python3 -c 'x = [str(i) for i in range(1000)]' 2>"$T/err"
  grep -q '^alloy: .*allocations' "$T/err" && echo "ok: the packaged launcher runs python3 on the packaged library" ||
    bad "packaged launcher + library: no summary ($(head -c 300 "$T/err"))"
fi
rm -rf "$T"
[ "$fails" -eq 0 ] && echo "deb: ok"
[ "$fails" -eq 0 ]
