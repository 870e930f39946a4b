#!/bin/sh
# tests/pkg/man.sh - the man pages (man/alloy.1, man/alloy.3) render without
# a warning (groff -ww, mandoc -T lint, man --warnings -l), carry the version
# of include/alloy.h, and cover what they document: every option of
# `alloy help run`, every function of <alloy.h>, every configuration key of
# src/options.c.  Env: ROOT (the repository), BUILD.
set -u
cd "${ROOT:-.}" || exit 2
fails=0
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }
have groff || have mandoc || { echo "SKIP: neither groff nor mandoc installed"; exit 77; }

version=$(sed -n 's/^#define ALLOY_VERSION_STRING "\(.*\)"/\1/p' include/alloy.h)
for page in man/alloy.1 man/alloy.3; do
  if have groff; then
    out=$(groff -ww -man -Tutf8 -z "$page" 2>&1)
    [ -z "$out" ] && echo "ok: groff -ww $page" || bad "groff -ww $page: $out"
  fi
  if have mandoc; then
    out=$(mandoc -T lint "$page" 2>&1)
    [ -z "$out" ] && echo "ok: mandoc -T lint $page" || bad "mandoc -T lint $page: $out"
  fi
  if have man; then
    out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$out" ] && echo "ok: man --warnings -l $page" || bad "man -l $page: $out"
  fi
  grep -q "^\.TH ALLOY [13] .* \"alloy $version\" " "$page" && echo "ok: $page says alloy $version" ||
    bad "$page: .TH does not say \"alloy $version\" (include/alloy.h)"
done

# alloy(1): the launcher's options and commands
for word in '\\-\\-stats' '\\-o' '\\-\\-help' '\\-\\-version' 'B run' 'B help' ALLOY_CONF ALLOY_LIB 'EXIT STATUS' EXAMPLES; do
  grep -q -- "$word" man/alloy.1 || bad "alloy.1 does not mention $word"
done
# alloy(3): every function of <alloy.h> and every configuration key
for fn in $(grep -o '^[A-Za-z_ *]*alloy_[a-z_]*(' include/alloy.h | grep -o 'alloy_[a-z_]*' | sort -u); do
  grep -q "$fn" man/alloy.3 || bad "alloy.3 does not document $fn"
done
for key in $(sed -n 's/^ *{"\([a-z_]*\)", OPT_.*/\1/p' src/options.c); do
  grep -q "$key" man/alloy.3 || bad "alloy.3 does not document the option $key"
done
for section in CONFIGURATION ENVIRONMENT VALGRIND 'DIFFERENCES FROM JEMALLOC' 'mallctl names'; do
  grep -q "^\.S[HS] .*$section" man/alloy.3 || bad "alloy.3 has no section $section"
done
[ "$fails" -eq 0 ] && echo "man pages: ok"
[ "$fails" -eq 0 ]
