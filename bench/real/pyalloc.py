"""Allocation-heavy Python workload for alloy's benchmark (run with PYTHONMALLOC=malloc).

Builds and drops many small objects the way data-processing scripts do:
records as dicts, JSON round trips, string formatting, sorting, a dict of
tuples keyed by tuples, and a tree of lists.  Prints a checksum so runs under
different allocators can be compared for identical results.

usage: python3 pyalloc.py [n=200000]
"""
import json
import sys


def build_records(n):
    return [
        {
            "id": i,
            "name": "item-%d-%x" % (i, (i * 2654435761) & 0xFFFFFFFF),
            "tags": [str(i % 7), str(i % 11), "t%d" % (i % 13)],
            "score": ((i * 40503) % 65521) / 7.0,
        }
        for i in range(n)
    ]


def tree(depth, seed):
    if depth == 0:
        return (seed, str(seed))
    return [tree(depth - 1, seed * 2 + k) for k in range(3)]


def walk(t):
    if isinstance(t, tuple):
        return t[0] + len(t[1])
    return sum(walk(c) for c in t)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    check = 0
    for rnd in range(3):
        recs = build_records(n)
        text = json.dumps(recs)
        back = json.loads(text)
        back.sort(key=lambda r: (r["score"], r["name"]))
        check = (check * 31 + back[0]["id"] + back[-1]["id"] + len(text)) % 1000000007
        index = {}
        for r in back:
            for t in r["tags"]:
                index.setdefault(t, []).append(r["id"])
        check = (check + sum(len(v) for v in index.values())) % 1000000007
        del recs, text, back, index
        pairs = {}
        for i in range(n):
            key = (i % 1009, "k%d" % (i % 5003))
            pairs[key] = pairs.get(key, ()) + (i,)
            if i % 3 == 0:
                pairs.pop(((i // 2) % 1009, "k%d" % ((i // 2) % 5003)), None)
        check = (check + len(pairs)) % 1000000007
        del pairs
        check = (check + walk(tree(9, rnd))) % 1000000007
        words = " ".join("w%d" % (i % 997) for i in range(n)).split()
        check = (check + len(set(words)) + len("".join(sorted(words[:50000])))) % 1000000007
    print("check=%d" % check)


if __name__ == "__main__":
    main()
