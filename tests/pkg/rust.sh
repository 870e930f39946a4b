#!/bin/sh
# tests/pkg/rust.sh - the Rust crate (bindings/rust): `cargo test --offline`
# with Debian's rustc and cargo (/usr/bin: rustup's newer ones earlier in
# PATH are left out), in a CARGO_HOME of its own, building into
# BUILD/rust.  build.rs compiles alloy's sources with the system C compiler.
# Env: ROOT, BUILD, TEST_TMP.
set -u
cd "${ROOT:-.}/bindings/rust" || exit 2
B=${BUILD:-$ROOT/build}
CARGO=${ALLOY_CARGO:-/usr/bin/cargo}
RUSTC=${ALLOY_RUSTC:-/usr/bin/rustc}
[ -x "$CARGO" ] && [ -x "$RUSTC" ] || { echo "SKIP: $CARGO or $RUSTC missing (apt-get install rustc cargo)"; exit 77; }
home=${TEST_TMP:-/tmp}/cargo-home.$$
mkdir -p "$home"
echo "$("$RUSTC" --version), $("$CARGO" --version)"
# PATH: Debian's tools and the C compiler, not ~/.cargo/bin.
env PATH=/usr/bin:/bin CARGO_HOME="$home" CARGO_TARGET_DIR="$B/rust" RUSTC="$RUSTC" \
  "$CARGO" test --offline --locked
rc=$?
rm -rf "$home"
exit "$rc"
