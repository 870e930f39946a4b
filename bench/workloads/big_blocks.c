/*
 * big_blocks - large blocks of 5-25 MiB allocated, touched and freed.
 *
 * Keeps a window of `keep` large blocks; each step frees the oldest and
 * allocates a new one of a random size in 5-25 MiB, writes one byte in every
 * 4 KiB page (as a program filling a buffer would fault every page in) and
 * checks the first and last bytes of the block it frees.  Measures how the
 * allocator maps, caches and returns huge blocks (mmap/munmap, page-fault
 * and zeroing costs, retained memory).
 *
 * usage: big_blocks [steps=800] [keep=4] [seed=6]
 */
#include "common.h"

typedef struct { unsigned char *p; size_t n; } blk_t;

static void check_blk(const blk_t *b)
{
    if (b->p[0] != (unsigned char)(b->n >> 12) || b->p[b->n - 1] != (unsigned char)(b->n >> 4))
        die("big_blocks: block %p of %zu bytes corrupted", (void *)b->p, b->n);
}

int main(int argc, char **argv)
{
    unsigned long long steps = arg_u(argc, argv, 1, 800);
    size_t keep = (size_t)arg_u(argc, argv, 2, 4);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 3, 6));
    if (keep < 1 || keep > 1024)
        die("bad parameters");
    blk_t win[1024];
    memset(win, 0, sizeof win);
    unsigned long long bytes = 0;
    double t0 = now_s();
    for (unsigned long long k = 0; k < steps; k++) {
        blk_t *b = &win[k % keep];
        if (b->p) {
            check_blk(b);
            free(b->p);
        }
        b->n = (size_t)rng_range(&r, 5u << 20, 25u << 20);
        b->p = xmalloc(b->n);
        for (size_t off = 0; off < b->n; off += 4096)
            b->p[off] = (unsigned char)off;
        b->p[0] = (unsigned char)(b->n >> 12);
        b->p[b->n - 1] = (unsigned char)(b->n >> 4);
        bytes += b->n;
    }
    long rss = rss_now_kb();
    for (size_t i = 0; i < keep; i++)
        if (win[i].p) {
            check_blk(&win[i]);
            free(win[i].p);
        }
    double t = now_s() - t0;
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f mib_per_s=%.0f live_rss_kb=%ld", t, steps, (double)steps / t,
           (double)bytes / 1048576.0 / t, rss);
    print_tail();
    return 0;
}
