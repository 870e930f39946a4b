#!/bin/sh
# bind9.sh - bind9's named-compilezone (Debian's, linked against libjemalloc:
# its libisc allocates with mallocx, rallocx, sallocx and sdallocx) on a
# generated zone of 200,000 names, on jemalloc and under LD_PRELOAD of alloy,
# which then serves those extended calls too; the compiled zones must be
# identical.
. "$(dirname "$0")/lib.sh"
skip_unless named-compilezone
python3 - "$T/zone.db" <<'PY'
import sys
out = ["$TTL 3600", "@ IN SOA ns1.example.test. admin.example.test. 1 7200 3600 1209600 3600",
       "@ IN NS ns1.example.test.", "ns1 IN A 192.0.2.1"]
for i in range(200000):
    out.append("host%d IN A 10.%d.%d.%d" % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
    if i % 3 == 0:
        out.append('host%d IN TXT "record number %d"' % (i, i))
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
# Both runs write the same path (it is in what they print), then it is kept.
ref bind9 named-compilezone -o "$T/out.zone" example.test "$T/zone.db"
mv "$T/out.zone" "$T/ref.zone"
on_alloy bind9 named-compilezone -o "$T/out.zone" example.test "$T/zone.db"
mv "$T/out.zone" "$T/alloy.zone"
same bind9
if cmp -s "$T/ref.zone" "$T/alloy.zone"; then
  echo "bind9: compiled zones identical ($(wc -l <"$T/ref.zone") lines)"
else
  bad "bind9: the zone compiled on alloy differs"
fi
if ! nm -D "$ALLOY_SO" | grep -q ' T mallocx$'; then bad "liballoy.so does not export mallocx"; fi
finish
