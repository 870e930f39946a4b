#!/bin/sh
# git.sh - git on a generated repository (init, add 2000 files, commit, more
# commits with edits, deletions and renames, log --stat, gc, fsck, object
# listing) under glibc and under alloy, with fixed names and dates so commit
# hashes match; the transcripts must be identical.
. "$(dirname "$0")/lib.sh"
skip_unless git
skip_unless awk
cat >"$T/flow.sh" <<'FLOW'
set -e
dir=$1
rm -rf "$dir"
mkdir -p "$dir/home"
export HOME="$dir/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Alloy Test" GIT_AUTHOR_EMAIL=alloy@example.invalid
export GIT_COMMITTER_NAME="Alloy Test" GIT_COMMITTER_EMAIL=alloy@example.invalid
export LC_ALL=C TZ=UTC
commit() { # DATE MESSAGE
  GIT_AUTHOR_DATE="$1" GIT_COMMITTER_DATE="$1" git -c gc.auto=0 commit -q -m "$2"
}
cd "$dir"
git init -q -b main repo
cd repo
awk 'BEGIN { for (i = 0; i < 2000; i++) {
  f = sprintf("d%02d/file%04d.txt", i % 40, i);
  if (i < 40) system("mkdir -p " sprintf("d%02d", i));
  for (l = 0; l < 20 + i % 50; l++) printf "line %d of file %d: %x\n", l, i, l * i * 2654435761 % 4294967296 > f;
  close(f) } }'
git add -A
commit "2024-01-01T00:00:00Z" "initial: 2000 files"
awk 'BEGIN { for (i = 0; i < 2000; i += 7) { f = sprintf("d%02d/file%04d.txt", i % 40, i);
  print "appended in commit 2" >> f; close(f) } }'
git add -A
commit "2024-01-02T00:00:00Z" "edit every 7th file"
i=0
while [ $i -lt 2000 ]; do git rm -q "d$(printf %02d $((i % 40)))/file$(printf %04d $i).txt"; i=$((i + 41)); done
mkdir -p new
awk 'BEGIN { for (i = 0; i < 60; i++) { f = sprintf("new/n%03d.c", i); printf "int n%d(void) { return %d; }\n", i, i * i > f; close(f) } }'
git add -A
commit "2024-01-03T00:00:00Z" "delete some, add new/"
git mv d01 renamed01
commit "2024-01-04T00:00:00Z" "rename d01"
git rev-parse HEAD HEAD~1 HEAD~2 HEAD~3
git log --stat
git diff --stat HEAD~3 HEAD | tail -n 3
git ls-tree -r HEAD | wc -l
git grep -c "appended in commit 2" | wc -l
git gc -q
git fsck --full --no-progress
git count-objects -v | grep -E '^(count|in-pack|packs|garbage)'
git cat-file --batch-all-objects --batch-check | sort | sha256sum
git log --format='%H %s' | head -n 5
FLOW
ref git sh "$T/flow.sh" "$T/ref"
on_alloy git sh "$T/flow.sh" "$T/alloy"
same git
rm -rf "$T/ref" "$T/alloy"
finish
