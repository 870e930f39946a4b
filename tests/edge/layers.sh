#!/bin/sh
# layers.sh - edge test: the library's files call each other only as the
# layer list at the top of src/internal.h allows (the one source of the
# layers: it is parsed here, not copied).  A file may use the symbols of
# files of its own layer or below; the files of the "core knot" layer may
# also use each other's in both directions (docs/DESIGN.md "Layers" says
# why each edge of the knot exists).  Anything else is an upward edge and
# fails the test, printed as `caller.c -> callee.c: symbol`, unless it is in
# the allow-list below, where each edge that exists today is written down
# with its reason until the code is changed to remove it.
#
# How: every src/*.c is compiled to $BUILD/obj/*.o by the library's own
# Makefile rule (one build description; a no-op when up to date), then `nm`
# gives each object's defined global symbols and its undefined ones; an
# undefined symbol defined by another object is a reference from the first
# file to the second (a call, or data such as a sentinel heap).  Inline
# functions of the headers count for the file they are compiled into.
# Needs nm (binutils).  Env: BUILD, ROOT (from tests/run.sh).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
MAKE=${MAKE:-make}
command -v nm >/dev/null 2>&1 || { echo "SKIP: nm (binutils) not installed"; exit 77; }
T=${TEST_TMP:-$(mktemp -d /tmp/alloy-layers.XXXXXX)}
mkdir -p "$T"

# Upward edges that exist today, each with the reason it exists (and what
# would remove it).  Format: caller.c -> callee.c: symbol  # reason
cat >"$T/allowed" <<'EOF'
arena.c -> alloc.c: alloy__usable_size  # arena_malloc counts the block's usable size in thread.allocated; segment_page_lookup(p)->block_size (back end) would do
free.c -> arena.c: arena_block_freed  # a large or big block of an explicit arena leaves that arena's list (reset frees what is left)
free.c -> arena.c: arena_large_stats  # a large or big block is counted in its arena's statistics
heap.c -> arena.c: arena_bind_thread  # heap_thread_done unbinds an exiting thread from its arena (nthreads)
heap.c -> arena.c: arena_route_thread  # under memcheck (vg.h) a new thread is routed as if bound to no arena; which arena a thread is bound to lives in arena.c's TLS
heap.c -> event.c: event_run  # the allocation slow path, as the fast path, ends in the rare-event hook when the countdown runs out
percpu.c -> event.c: event_run  # a per-CPU thread's malloc, as the thread-heap fast path, ends in the rare-event hook when its own heap's countdown runs out
EOF

# ------------------------------------------------------------ the layer list
# Layer lines of internal.h's first comment: " *   N name   file.c (note), ..."
# with continuation lines; parenthesised notes (which may span lines) and
# headers are dropped.  Output: "N file.c" per file, and "knot N".
awk '
  /^ \*   [0-9] / { last = $2; line = $0; sub(/^ \*   [0-9] +/, "", line)
                    if (index(line, "core knot") == 1) print "knot", last
                    text[last] = line; next }
  last != "" && /^ \*      / { l = $0; sub(/^ \*  +/, "", l); text[last] = text[last] " " l; next }
  last != "" { exit }
  END { for (n in text) { t = text[n]; gsub(/\([^)]*\)/, "", t)
                          m = split(t, w, /[ ,]+/)
                          for (i = 1; i <= m; i++) if (w[i] ~ /^[a-z_0-9]+\.c$/) print n, w[i] } }
' "$ROOT/src/internal.h" | sort >"$T/layers"
knot=$(awk '$1 == "knot" {print $2}' "$T/layers")
nfiles=$(grep -c '\.c$' "$T/layers")
if [ -z "$knot" ] || [ "$nfiles" -lt 10 ]; then
  echo "FAILED: cannot read the layer list at the top of src/internal.h (knot layer '$knot', $nfiles files)"
  exit 1
fi

fails=0
sources=$(cd "$ROOT/src" && ls *.c)
for f in $sources; do
  grep -q " $f\$" "$T/layers" || { echo "FAILED: src/$f is in no layer of src/internal.h"; fails=$((fails + 1)); }
done

# ------------------------------------------------------------- the objects
objs=""
for f in $sources; do objs="$objs $BUILD/obj/${f%.c}.o"; done
if ! "$MAKE" -s --no-print-directory -C "$ROOT" BUILD="$BUILD" $objs >"$T/make.log" 2>&1; then
  cat "$T/make.log"
  echo "FAILED: cannot build the library's objects"
  exit 1
fi
: >"$T/defined"
: >"$T/undefined"
for f in $sources; do
  o="$BUILD/obj/${f%.c}.o"
  nm -g --defined-only "$o" | awk -v f="$f" 'NF >= 3 {print $3, f}' >>"$T/defined"
  nm -u "$o" | awk -v f="$f" '{print f, $NF}' >>"$T/undefined"
done
dups=$(awk '{print $1}' "$T/defined" | sort | uniq -d)
[ -z "$dups" ] || { echo "FAILED: symbols defined in more than one file: $dups"; fails=$((fails + 1)); }

# ------------------------------------------------------------- the edges
# references: caller callee symbol (only symbols another object defines)
awk 'FILENAME == ARGV[1] { def[$1] = $2; next }
     ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' \
  "$T/defined" "$T/undefined" | sort -u >"$T/refs"
awk -v knot="$knot" '
  FILENAME == ARGV[1] { if ($1 != "knot") layer[$2] = $1; next }
  FILENAME == ARGV[2] { if ($0 !~ /^#/ && NF) { sub(/ *#.*/, ""); ok[$0] = 1 }; next }
  { edge = $1 " -> " $2 ": " $3
    lc = layer[$1]; le = layer[$2]
    if (lc == "" || le == "" || le <= lc || (lc == knot && le == knot)) next
    if (edge in ok) { print "allowed", edge; used[edge] = 1 } else print "VIOLATION", edge }
  END { for (e in ok) if (!(e in used)) print "stale", e }
' "$T/layers" "$T/allowed" "$T/refs" | sort >"$T/verdict"

nrefs=$(wc -l <"$T/refs")
nallowed=$(grep -c '^allowed' "$T/verdict")
grep '^allowed' "$T/verdict" | sed 's/^allowed /allowed upward: /'
grep '^stale' "$T/verdict" | sed 's/^stale /NOTE: no longer found, remove from the allow-list: /'
nviol=$(grep -c '^VIOLATION' "$T/verdict")
if [ "$nviol" -gt 0 ]; then
  echo "FAILED: $nviol call(s) to a higher layer (src/internal.h); call down, or pass a callback:"
  grep '^VIOLATION' "$T/verdict" | sed 's/^VIOLATION //'
  fails=$((fails + 1))
fi
echo "layers: $nfiles files in $(awk '$1 != "knot" {print $1}' "$T/layers" | sort -u | wc -l) layers (knot: layer $knot), $nrefs cross-file references, $nallowed allowed upward, $nviol violations"
[ -n "${TEST_TMP:-}" ] || rm -rf "$T"
[ "$fails" -eq 0 ] && echo "layers: ok"
[ "$fails" -eq 0 ]
