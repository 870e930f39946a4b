#!/bin/sh
# make run: runs a real program on alloy and shows alloy's statistics.
# Python with PYTHONMALLOC=malloc sends every object through malloc/free, so
# a JSON and dictionary workload exercises alloy's small-object paths.
set -eu
BUILD=${1:-build}
PY=$(command -v python3 || true)
if [ -z "$PY" ]; then
  echo "make run needs python3 (apt-get install python3)" >&2
  exit 1
fi
echo "== running python3 on alloy: build/alloy run --stats -- python3 (JSON and dict workload)"
PYTHONMALLOC=malloc "$BUILD/alloy" run --stats -- "$PY" -c '
import json, time
t = time.time()
docs = [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 7), "x" * (i % 50)],
         "score": i * 0.5} for i in range(200000)]
text = json.dumps(docs)
back = json.loads(text)
index = {d["name"]: d for d in back}
total = sum(d["score"] for d in index.values())
print("python: %d objects, %d bytes of JSON, checksum %.1f, %.2f s"
      % (len(back), len(text), total, time.time() - t))
'
