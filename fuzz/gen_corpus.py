#!/usr/bin/env python3
"""fuzz/gen_corpus.py - writes the seed inputs of fuzz/corpus/ (run from the
repository root: python3 fuzz/gen_corpus.py).  Each seed is a short program
in the input language of fuzz/fuzz_alloc.c:

  byte 0: flags (bit 0: threaded mode)
  then operations: opcode byte (% 18), slot byte (% 64), operands

  0 malloc SIZE          1 calloc SIZE COUNT     2 realloc SIZE [zero-flag]
  3 aligned_alloc SIZE ALIGN                     4 posix_memalign SIZE ALIGN
  5 memalign SIZE RAW16  6 free                  7 free_sized / free_aligned_sized
  8 remote free          9 remote malloc SIZE    10 usable-size check
  11 free and malloc the same size again
  12 mallocx SIZE XFLAGS 13 rallocx SIZE XFLAGS  14 xallocx SIZE EXTRA XFLAGS
  15 dallocx / sdallocx PICK
  16 inject mapping failures into the next operation (the slot byte is the shape)
  17 tcache / arena control (the slot byte says which)

SIZE: selector byte then its value (see take_size in fuzz_alloc.c); EXTRA:
take_extra; XFLAGS: two bytes, see take_xflags.
"""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

KiB = 1024
MiB = 1024 * KiB


def size(n):
    """Encodes a size for take_size()."""
    if n < 256:
        return bytes([0, n])
    if n <= 8 * KiB:
        return bytes([128, n & 255, n >> 8])
    if n <= 64 * KiB:
        return bytes([192, n & 255, (n >> 8) & 255, n >> 16])
    if n <= 2 * MiB:
        return bytes([230, n & 255, (n >> 8) & 255, n >> 16])
    # huge: 2 MiB + a multiple of 4096 (up to 6 MiB) + a byte
    assert n <= 8 * MiB + 255
    extra = n - 2 * MiB
    v, b = extra // 4096 * 4096, extra % 4096
    if b > 255:
        b = 255
    return bytes([250, v & 255, (v >> 8) & 255, v >> 16, b])


def align(a):
    """Encodes a power-of-two alignment for take_align()."""
    e = a.bit_length() - 1
    assert 1 << e == a and e <= 22
    if e <= 8:
        return bytes([e])
    return bytes([200 + (e - 200 % 23) % 23])


def malloc(slot, n):
    return bytes([0, slot]) + size(n)


def calloc(slot, n, count=1):
    return bytes([1, slot]) + size(n) + bytes([count - 1])


def realloc(slot, n, free_on_zero=True):
    return bytes([2, slot]) + size(n) + (bytes([1 if free_on_zero else 0]) if n == 0 else b"")


def aligned(slot, n, a):
    return bytes([3, slot]) + size(n) + align(a)


def posix(slot, n, a):
    return bytes([4, slot]) + size(n) + align(a)


def memalign(slot, n, raw):
    assert raw < 5000  # the harness takes raw % 5000
    return bytes([5, slot]) + size(n) + bytes([raw & 255, raw >> 8])


def free(slot):
    return bytes([6, slot])


def free_sized(slot):
    return bytes([7, slot])


def remote_free(slot):
    return bytes([8, slot])


def remote_malloc(slot, n):
    return bytes([9, slot]) + size(n)


def usable(slot):
    return bytes([10, slot])


def again(slot):
    return bytes([11, slot])


def extra(n):
    """Encodes xallocx's extra for take_extra()."""
    if n == 0:
        return bytes([0])
    if n <= 8 * KiB:
        return bytes([128, n & 255, n >> 8])
    assert n <= 4 * MiB
    return bytes([224, n & 255, (n >> 8) & 255, n >> 16])


# take_xflags's route index (bits 1..3 of its second byte)
ROUTES = {"thread": 0, "tcache": 2, "none": 3, "arena": 4, "arena+tcache": 5, "arena0": 6,
          "arena+none": 7}


def xflags(lg=0, zero=False, route="thread"):
    """Encodes MALLOCX_LG_ALIGN(lg) | [MALLOCX_ZERO] | route for take_xflags()."""
    if lg == 0:
        a = 0
    elif lg <= 8:
        a = next(v for v in range(128, 224) if v % 9 == lg)
    else:
        assert lg <= 16
        a = next(v for v in range(224, 256) if v % 17 == lg)
    return bytes([a, ROUTES[route] << 1 | (1 if zero else 0)])


def mallocx(slot, n, **fl):
    return bytes([12, slot]) + size(n) + xflags(**fl)


def rallocx(slot, n, **fl):
    return bytes([13, slot]) + size(n) + xflags(**fl)


def xallocx(slot, n, ext=0, **fl):
    return bytes([14, slot]) + size(n) + extra(ext) + xflags(**fl)


def dallocx(slot, sized=False, tcache=0, size_pick=0):
    """dallocx, or sdallocx with the size asked for (size_pick 0), the usable
    size (1) or halfway (2); tcache 0: the thread's, 1: none, 2: explicit."""
    return bytes([15, slot, (tcache + 3 * size_pick) << 1 | (1 if sized else 0)])


def fail_next(count=1):
    """The next `count` (1..8) mappings fail, then they succeed again."""
    return bytes([16, count - 1])


def fail_after(n=0):
    """Every mapping after the next n (0..7) fails."""
    return bytes([16, 8 | n])


def control(what):
    """0 tcache.flush, 1 thread.tcache.flush, 2 tcache.destroy + create,
    3 arena.<a>.purge, 4 arena.<a>.decay."""
    return bytes([17, what])


SIZES = [0, 1, 15, 16, 17, 100, 255, 1000, 4096, 8192, 9000, 20000, 65536, 70000,
         300000, 2 * MiB, 2 * MiB + 1, 5 * MiB, 8 * MiB]


def seeds():
    s = {}
    # one block of each size, every way of freeing it
    for i, n in enumerate(SIZES):
        s["size-%02d-%d" % (i, n)] = (bytes([0]) + malloc(1, n) + usable(1) + free_sized(1)
                                      + calloc(2, n) + free(2) + malloc(3, n) + again(3))
    # many small blocks, freed in another order
    body = b"".join(malloc(i, 16 + 16 * (i % 12)) for i in range(64))
    body += b"".join(free_sized(i) for i in range(63, -1, -2))
    body += b"".join(malloc(i, 24) for i in range(63, -1, -2))
    s["many-small"] = bytes([0]) + body
    # realloc chains: growth from 1 byte to huge, and back
    chain, n = b"", 1
    while n < 6 * MiB:
        chain += realloc(5, n)
        n = n * 2 + 3
    while n > 1:
        n //= 3
        chain += realloc(5, n)
    s["realloc-chain"] = bytes([0]) + chain + usable(5) + free_sized(5)
    s["realloc-zero"] = bytes([0]) + malloc(4, 100) + realloc(4, 0) + realloc(4, 0, False) + realloc(4, 70000)
    s["realloc-null"] = bytes([0]) + realloc(9, 5000) + realloc(9, 300000) + realloc(9, 3 * MiB)
    # aligned allocations of every kind
    for a in (16, 64, 4096, 65536, 1 * MiB, 4 * MiB):
        body = b""
        for j, n in enumerate((0, 1, 100, 5000, 70000, 3 * MiB)):
            body += aligned(j, n, a) + posix(j + 10, n, a) + memalign(j + 20, n, min(a, 4096))
        body += b"".join(free_sized(j) for j in range(6))
        s["aligned-%d" % a] = bytes([0]) + body
    s["memalign-odd"] = bytes([0]) + b"".join(memalign(j, 100 + j, raw) for j, raw in
                                              enumerate((0, 1, 3, 24, 48, 100, 4097, 4999)))
    # calloc after dirty frees of the same size
    body = b""
    for n in (64, 1000, 20000, 300000, 3 * MiB):
        body += malloc(1, n) + free(1) + calloc(1, n, 4) + free_sized(1)
    s["calloc-dirty"] = bytes([0]) + body
    # threaded: remote frees while allocating, remote mallocs freed locally
    for i, n in enumerate((32, 3000, 40000, 500000, 4 * MiB)):
        body = b"".join(malloc(j, n + j) for j in range(16))
        body += b"".join(remote_free(j) for j in range(0, 16, 2))
        body += b"".join(malloc(j, n) for j in range(0, 16, 2))
        body += b"".join(remote_malloc(j + 20, n) for j in range(8))
        body += b"".join(free_sized(j + 20) for j in range(8))
        s["threaded-%d" % i] = bytes([1]) + body
    body = b""
    for j in range(40):
        body += remote_malloc(j % 8, 16 * (j + 1)) + realloc(j % 8, 40 * (j + 1)) + remote_free(j % 8)
    s["threaded-mix"] = bytes([1]) + body
    s["threaded-aligned"] = bytes([1]) + b"".join(
        aligned(j, 1000 * j + 1, 1 << (4 + j % 10)) + remote_free(j) for j in range(20))
    # a mixed workload
    body, x = b"", 12345
    for j in range(200):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        slot, pick = x % 64, (x >> 8) % 10
        n = SIZES[(x >> 12) % len(SIZES)] if pick == 0 else (x >> 12) % 600
        body += [malloc(slot, n), free(slot), realloc(slot, n), free_sized(slot),
                 calloc(slot, n), usable(slot), again(slot), aligned(slot, n, 256),
                 malloc(slot, n), free(slot)][pick]
    s["mixed"] = bytes([0]) + body
    s["mixed-threaded"] = bytes([1]) + body
    # the extended API: every alignment and route, with and without ZERO,
    # each block freed in another of the dallocx/sdallocx ways
    for lg in (0, 4, 6, 12, 16):
        body = b""
        for j, route in enumerate(sorted(ROUTES)):
            for k, n in enumerate((1, 100, 5000, 70000, 3 * MiB)):
                slot = j * 5 + k
                body += mallocx(slot, n, lg=lg, zero=(j + k) % 2 == 0, route=route)
                body += dallocx(slot, sized=k % 2 == 1, tcache=(j + k) % 3, size_pick=k % 3)
        s["mallocx-lg%d" % lg] = bytes([0]) + body
    # rallocx: growth with ZERO from 1 byte to huge, at an alignment and in
    # the arena, then shrinking; and rallocx between the routes
    for name, fl in (("plain", {}), ("aligned", {"lg": 12}), ("arena", {"route": "arena"}),
                     ("tcache", {"lg": 6, "route": "tcache"})):
        chain, n = mallocx(6, 1, **fl), 1
        while n * 3 + 5 < 8 * MiB:
            n = n * 3 + 5
            chain += rallocx(6, n, zero=True, **fl)
        while n > 1:
            n //= 5
            chain += rallocx(6, n, **fl)
        s["rallocx-chain-" + name] = bytes([0]) + chain + usable(6) + dallocx(6, sized=True)
    body = b""
    for j, route in enumerate(sorted(ROUTES)):
        body += malloc(j, 1000 * j + 10) + rallocx(j, 300000 + j, lg=j % 17, zero=True, route=route)
        body += rallocx(j, 2 * MiB + 4096 * j, lg=16, route=route) + xallocx(j, 3 * MiB, MiB, zero=True)
    s["rallocx-routes"] = bytes([0]) + body
    # xallocx: small blocks cannot grow, large and huge ones grow in place
    body = b""
    for j, n in enumerate((100, 5000, 70000, 300000, 3 * MiB)):
        body += mallocx(j, n) + xallocx(j, n + 1) + xallocx(j, 2 * n, n, zero=True)
        body += xallocx(j, n // 2) + usable(j)
        body += aligned(j + 10, n, 4096) + xallocx(j + 10, n * 2, zero=True) + free_sized(j + 10)
    s["xallocx"] = bytes([0]) + body
    # injected mapping failures before each kind of allocation, the block
    # that a failed realloc/rallocx/xallocx keeps checked and freed later
    body = b""
    for j, n in enumerate((100, 70000, 300000, 1 * MiB, 2 * MiB - 4096)):
        body += fail_next() + malloc(j, n) + fail_after(0) + calloc(j + 5, n, 2)
        body += fail_next(2) + aligned(j + 10, n, 1 << 20) + fail_after(1) + posix(j + 15, n, 65536)
        body += fail_after(0) + mallocx(j + 20, n, lg=16, route="arena")
        body += malloc(j + 25, n) + fail_after(0) + realloc(j + 25, 4 * n)
        body += mallocx(j + 30, n, lg=12) + fail_after(j % 3) + rallocx(j + 30, 4 * n + 1, lg=16, zero=True)
        body += mallocx(j + 35, n, route="arena") + fail_next(3) + rallocx(j + 35, 3 * n, route="arena")
        body += malloc(j + 40, n) + fail_after(0) + xallocx(j + 40, 4 * n, n, zero=True)
        body += fail_next(8) + again(j + 40)
    s["oom"] = bytes([0]) + body
    s["oom-threaded"] = bytes([1]) + b"".join(
        fail_after(j % 4) + remote_malloc(j, 300000 * (j + 1)) + remote_free(j) for j in range(12))
    # tcache and arena control between allocations through them
    body = b""
    for j in range(24):
        body += mallocx(j, 64 * (j + 1) + 4000 * (j % 3), route=["tcache", "arena", "none"][j % 3])
        body += control(j % 5) + dallocx((j * 7) % 24, sized=True, tcache=2)
    s["control"] = bytes([0]) + body
    # threaded: extended-API blocks freed remotely (every release way)
    body = b""
    for j in range(32):
        body += mallocx(j, 24 * (j + 1) + 9000 * (j % 4), lg=j % 13, route=sorted(ROUTES)[j % 7])
        body += remote_free((j * 5) % 32)
    s["threaded-mallocx"] = bytes([1]) + body
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds()), OUT))


if __name__ == "__main__":
    main()
