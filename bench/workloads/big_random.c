/*
 * big_random - random big blocks: 32 KiB to 8 MiB, log-uniform.
 *
 * One thread keeps `slots` (default 64) live blocks; each step replaces a
 * random one with a block of a random size drawn log-uniformly from
 * 32 KiB-8 MiB (each power of two equally likely, so most blocks are well
 * under 1 MiB but the big ones dominate the bytes).  Only the first and
 * the last page of a block are written (stamp words at both ends of each of
 * those pages, and the tail byte) and checked before the free: buffers for
 * I/O, images, decompression and column chunks, of which a program uses a
 * part.  An allocator that maps and unmaps every block of this range
 * pays a system call (and page faults) on most steps; one that caches or
 * carves them from a larger mapping does not.
 *
 * usage: big_random [ops=1e6] [slots=64] [seed=17]
 */
#include "common.h"

#define PG 4096u

typedef struct { unsigned char *p; size_t n; } blk_t;

static void put(unsigned char *p, size_t off, uint64_t v) { memcpy(p + off, &v, 8); }
static uint64_t get(const unsigned char *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, 8);
    return v;
}

/* offsets of the marker words: start and end of the first page, start and
   end of the last page */
static void offsets(size_t n, size_t off[4])
{
    size_t last = (n - 1) / PG * PG;
    off[0] = 8;
    off[1] = PG - 16;
    off[2] = n - last >= 32 ? last : n - 32;  /* keep clear of the word below */
    off[3] = n - 16;
}

static void fill(blk_t *b)
{
    size_t off[4];
    offsets(b->n, off);
    uint64_t s = stamp_of(b->p, b->n);
    for (int i = 0; i < 4; i++)
        put(b->p, off[i], s + (uint64_t)i);
    stamp_write(b->p, b->n);
}

static void check(const blk_t *b)
{
    size_t off[4];
    offsets(b->n, off);
    uint64_t s = stamp_of(b->p, b->n);
    stamp_check(b->p, b->n, "big_random");
    for (int i = 0; i < 4; i++)
        if (get(b->p, off[i]) != s + (uint64_t)i)
            die("big_random: block %p (size %zu) corrupted at offset %zu", (void *)b->p, b->n, off[i]);
}

int main(int argc, char **argv)
{
    unsigned long long ops = arg_u(argc, argv, 1, 1000000);
    size_t slots = (size_t)arg_u(argc, argv, 2, 64);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 3, 17));
    if (slots < 1)
        die("bad parameters");
    blk_t *t = xmalloc(slots * sizeof *t);
    double t0 = now_s();
    unsigned long long bytes = 0;
    for (size_t i = 0; i < slots; i++) {
        t[i].n = rng_log_uniform(&r, 32768, 8u << 20);
        t[i].p = xmalloc(t[i].n);
        fill(&t[i]);
    }
    for (unsigned long long k = 0; k < ops; k++) {
        blk_t *b = &t[rng_below(&r, slots)];
        check(b);
        free(b->p);
        b->n = rng_log_uniform(&r, 32768, 8u << 20);
        b->p = xmalloc(b->n);
        fill(b);
        bytes += b->n;
    }
    for (size_t i = 0; i < slots; i++) {
        check(&t[i]);
        free(t[i].p);
    }
    double t1 = now_s() - t0;
    free(t);
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f mean_kib=%.0f", t1, ops, (double)ops / t1,
           ops ? (double)bytes / (double)ops / 1024.0 : 0.0);
    print_tail();
    return 0;
}
