#!/bin/sh
# launcher.sh - edge test (g): the `alloy run` launcher.  The command's exit
# status comes back (7 from `sh -c 'exit 7'`, 128+15 when it dies of
# SIGTERM), arguments pass through untouched, the program runs on alloy, and `--stats` makes the program
# print a summary on stderr: lines starting with "alloy:" that mention peak,
# mapped and allocations, with an allocation count that shows the program
# really ran on alloy.  Argument: "basic" (status, arguments), "stats"
# (--stats with python3) or "cli" (--version, --help, help run, -o,
# unknown options).  Env: BUILD, TEST_TMP.
set -u
T=${TEST_TMP:-/tmp}
alloy="$BUILD/alloy"
[ -x "$alloy" ] || { echo "FAILED: $alloy does not exist"; exit 1; }
fails=0
bad() { echo "FAILED: $*"; fails=$((fails + 1)); }

if [ "${1:-basic}" = basic ]; then
  "$alloy" run -- sh -c 'exit 7'
  rc=$?
  [ "$rc" -eq 7 ] && echo "ok: exit 7 passed through" || bad "alloy run -- sh -c 'exit 7' returned $rc"

  "$alloy" run -- sh -c 'kill -TERM $$'
  rc=$?
  [ "$rc" -eq 143 ] && echo "ok: death by SIGTERM gives 143" || bad "SIGTERM'd command: alloy returned $rc, want 143"

  out=$("$alloy" run -- printf '%s|' a 'b c' '' '-x')
  [ "$out" = "a|b c||-x|" ] && echo "ok: arguments" || bad "arguments mangled: '$out'"

  # ctor_main exits 1 unless malloc in its process is alloy's.
  "$alloy" run -- "$BUILD/tests/edge/ctor_main" >/dev/null
  rc=$?
  [ "$rc" -eq 0 ] && echo "ok: the program runs on alloy" || bad "alloy run -- ctor_main: exit $rc (not on alloy?)"

  "$alloy" run -- /nonexistent/program 2>/dev/null
  rc=$?
  [ "$rc" -ne 0 ] && echo "ok: missing program fails ($rc)" || bad "missing program: exit 0"
  [ "$fails" -eq 0 ] && echo "launcher: ok"
  [ "$fails" -eq 0 ]
  exit
fi

if [ "${1:-basic}" = cli ]; then
  want=$(sed -n 's/^#define ALLOY_VERSION_STRING "\(.*\)"/\1/p' "$ROOT/include/alloy.h")
  out=$("$alloy" --version)
  [ "$out" = "alloy $want" ] && echo "ok: --version: $out" || bad "--version printed '$out', want 'alloy $want'"

  "$alloy" --help >"$T/help" 2>"$T/help.err"
  rc=$?
  [ "$rc" -eq 0 ] && grep -q '^usage: alloy run' "$T/help" && [ ! -s "$T/help.err" ] &&
    echo "ok: --help on stdout, exit 0" || bad "--help: exit $rc, or not on stdout"
  "$alloy" help run >"$T/hrun"
  rc=$?
  [ "$rc" -eq 0 ] && grep -q '^Examples:' "$T/hrun" && grep -q -- '-o KEY:VALUE' "$T/hrun" &&
    echo "ok: help run, with examples" || bad "alloy help run: exit $rc, no examples or no -o"
  "$alloy" run --help | cmp -s - "$T/hrun" || bad "alloy run --help differs from alloy help run"

  for args in "--bogus" "frob" "run --bogus -- true" "run" "help frob" "run -o nocolon -- true"; do
    # shellcheck disable=SC2086
    "$alloy" $args >"$T/o" 2>"$T/e"
    rc=$?
    first=$(head -n 1 "$T/e")
    if [ "$rc" -eq 2 ] && [ ! -s "$T/o" ] && printf '%s\n' "$first" | grep -q '^alloy: ' &&
      sed -n 2p "$T/e" | grep -q '^usage: alloy'; then
      echo "ok: alloy $args: exit 2, '$first' and the usage"
    else
      bad "alloy $args: exit $rc, stderr '$(head -c 200 "$T/e")', stdout '$(head -c 100 "$T/o")'"
    fi
  done

  out=$(ALLOY_CONF= "$alloy" run -o a:1 -ob:2 -o c:3,d:4 -- sh -c 'printf %s "$ALLOY_CONF"')
  [ "$out" = "a:1,b:2,c:3,d:4" ] && echo "ok: -o options reach ALLOY_CONF" || bad "-o gave ALLOY_CONF='$out'"
  out=$(ALLOY_CONF=x:0 "$alloy" run -o y:1 -- sh -c 'printf %s "$ALLOY_CONF"')
  [ "$out" = "x:0,y:1" ] && echo "ok: -o comes after ALLOY_CONF (wins)" || bad "-o after ALLOY_CONF gave '$out'"

  [ "$fails" -eq 0 ] && echo "launcher: ok"
  [ "$fails" -eq 0 ]
  exit
fi

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
[ -n "$py" ] || { echo "SKIP: python3 not installed"; exit 77; }
"$alloy" run --stats -- "$py" -c 'x=[str(i) for i in range(100000)]' >"$T/out" 2>"$T/err"
rc=$?
echo "--- stderr of alloy run --stats -- python3:"
cat "$T/err"
echo "---"
[ "$rc" -eq 0 ] || bad "alloy run --stats python3: exit status $rc"
grep '^alloy:' "$T/err" >"$T/summary" || bad "no line starting with 'alloy:' on stderr"
for word in peak mapped allocations; do
  grep -qi "$word" "$T/summary" || bad "summary does not mention '$word'"
done
[ -s "$T/out" ] && bad "python printed on stdout: $(head -c 200 "$T/out")"

# With PYTHONMALLOC=malloc every Python object goes through malloc: the
# summary's allocation count must reflect the 100000 strings.
PYTHONMALLOC=malloc "$alloy" run --stats -- "$py" -c 'x=[str(i) for i in range(100000)]' 2>"$T/err2"
rc=$?
[ "$rc" -eq 0 ] || bad "PYTHONMALLOC=malloc alloy run --stats python3: exit status $rc"
n=$(grep '^alloy:' "$T/err2" | grep -io 'allocations[^0-9]*[0-9][0-9]*' | grep -o '[0-9][0-9]*$' | head -n 1)
echo "allocations counted with PYTHONMALLOC=malloc: ${n:-none}"
if [ -z "$n" ] || [ "$n" -lt 100000 ]; then
  bad "summary counts ${n:-no} allocations for 100000+ mallocs"
fi

# Without --stats nothing is added to stderr.
"$alloy" run -- "$py" -c 'pass' 2>"$T/err3"
[ -s "$T/err3" ] && bad "alloy run without --stats wrote to stderr: $(head -c 300 "$T/err3")"

[ "$fails" -eq 0 ] && echo "launcher: ok"
[ "$fails" -eq 0 ]
