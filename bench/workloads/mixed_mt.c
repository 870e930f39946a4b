/*
 * mixed_mt - mixed sizes from 8 B to 256 KiB over several threads.
 *
 * Each of `threads` threads keeps a table of `slots` live objects and
 * performs `ops` replacements (check, free, allocate, fill).  Sizes: 85% are
 * 8-256 B, 10% 257 B-4 KiB, 4% 4-32 KiB, 1% 32-256 KiB.  A new object gets
 * its header stamp and one written byte per 4 KiB page, like code that fills
 * its buffers, so allocators that return and re-fault large blocks pay for
 * it.  Exercises every size-class regime at once, under thread concurrency.
 *
 * With small=1 every size is 8-256 B and nothing else changes: the bench's
 * `warm_churn` (one thread, 2,000 live blocks, about 260 KB: in L2), where
 * no cache miss and no other size regime hides the small-block paths' own
 * cost.
 *
 * usage: mixed_mt [threads=4] [ops=8e6] [slots=2000] [seed=8] [small=0]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } obj_t;
typedef struct { unsigned long long ops; size_t slots; uint64_t seed; } job_t;

static int small_only;

static size_t pick(rng_t *r)
{
    if (small_only)
        return (size_t)rng_range(r, 8, 256);
    uint64_t u = rng_below(r, 100);
    if (u < 85)
        return (size_t)rng_range(r, 8, 256);
    if (u < 95)
        return (size_t)rng_range(r, 257, 4096);
    if (u < 99)
        return (size_t)rng_range(r, 4097, 32768);
    return (size_t)rng_range(r, 32769, 262144);
}

static void fill(obj_t *o)
{
    for (size_t off = 4096; off < o->n; off += 4096)
        ((unsigned char *)o->p)[off] = 1;
    stamp_write(o->p, o->n); /* last: the tail byte may share a page-touch offset */
}

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed);
    obj_t *t = xmalloc(j->slots * sizeof *t);
    for (size_t i = 0; i < j->slots; i++) {
        t[i].n = (uint32_t)pick(&r);
        t[i].p = xmalloc(t[i].n);
        fill(&t[i]);
    }
    for (unsigned long long k = 0; k < j->ops; k++) {
        obj_t *o = &t[rng_below(&r, j->slots)];
        stamp_check(o->p, o->n, "mixed_mt");
        free(o->p);
        o->n = (uint32_t)pick(&r);
        o->p = xmalloc(o->n);
        fill(o);
    }
    for (size_t i = 0; i < j->slots; i++) {
        stamp_check(t[i].p, t[i].n, "mixed_mt final");
        free(t[i].p);
    }
    free(t);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 4);
    unsigned long long ops = arg_u(argc, argv, 2, 8000000);
    size_t slots = (size_t)arg_u(argc, argv, 3, 2000);
    uint64_t seed = arg_u(argc, argv, 4, 8);
    small_only = arg_u(argc, argv, 5, 0) != 0;
    if (nt < 1 || nt > 256 || slots < 1)
        die("bad parameters");
    pthread_t th[256];
    job_t jobs[256];
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++) {
        jobs[i] = (job_t){ops, slots, seed * 1000u + i};
        xpthread_create(&th[i], worker, &jobs[i]);
    }
    for (size_t i = 0; i < nt; i++)
        xpthread_join(th[i]);
    double t = now_s() - t0;
    unsigned long long total = ops * nt;
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f", t, total, (double)total / t);
    print_tail();
    return 0;
}
