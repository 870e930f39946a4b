/*
 * cold_churn - random replacement in a live set larger than the caches.
 *
 * Each of `threads` threads owns `live` slots (default 100,000), each holding
 * one object of 8 B-2 KiB, skewed small: 60% 8-64 B, 25% 65-256 B, 12%
 * 257 B-1 KiB, 3% 1-2 KiB (mean about 185 B, so one thread's live set is about
 * 19 MB of requested bytes, far beyond L2/L3).  Every step picks a slot at
 * random, checks the object's stamp, frees it and allocates a replacement of
 * a new random size.  Unlike churn_liveset there is no locality at all: the
 * block being freed (and the allocator's metadata for it) is almost never in
 * cache, so any per-free work that touches the block or its page header
 * (hardening checks, free lists threaded through the block) costs a cache
 * miss.  Models caches, session tables and object stores with random
 * eviction.  threads=2 gives each thread its own live set (no sharing).
 *
 * usage: cold_churn [ops=12e6 per thread] [live=100000] [threads=1] [seed=11]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } slot_t;
typedef struct {
    unsigned long long ops;
    size_t live;
    uint64_t seed;
    unsigned long long allocs;
    long live_rss;
} job_t;

static size_t pick_size(rng_t *r)
{
    uint64_t u = rng_below(r, 100);
    if (u < 60)
        return (size_t)rng_range(r, 8, 64);
    if (u < 85)
        return (size_t)rng_range(r, 65, 256);
    if (u < 97)
        return (size_t)rng_range(r, 257, 1024);
    return (size_t)rng_range(r, 1025, 2048);
}

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed);
    slot_t *slots = xmalloc(j->live * sizeof *slots);
    for (size_t i = 0; i < j->live; i++) {
        slots[i].n = (uint32_t)pick_size(&r);
        slots[i].p = xmalloc(slots[i].n);
        stamp_write(slots[i].p, slots[i].n);
    }
    for (unsigned long long k = 0; k < j->ops; k++) {
        slot_t *s = &slots[rng_below(&r, j->live)];
        stamp_check(s->p, s->n, "cold_churn");
        free(s->p);
        s->n = (uint32_t)pick_size(&r);
        s->p = xmalloc(s->n);
        stamp_write(s->p, s->n);
    }
    j->live_rss = rss_now_kb();
    for (size_t i = 0; i < j->live; i++) {
        stamp_check(slots[i].p, slots[i].n, "cold_churn final");
        free(slots[i].p);
    }
    free(slots);
    j->allocs = j->live + j->ops;
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long long ops = arg_u(argc, argv, 1, 12000000ull);
    size_t live = (size_t)arg_u(argc, argv, 2, 100000);
    size_t nt = (size_t)arg_u(argc, argv, 3, 1);
    uint64_t seed = arg_u(argc, argv, 4, 11);
    if (live < 1 || nt < 1 || nt > 64)
        die("bad parameters");
    job_t jobs[64];
    pthread_t th[64];
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++) {
        jobs[i] = (job_t){ops, live, seed * 7919u + i, 0, 0};
        if (nt == 1)
            worker(&jobs[0]);
        else
            xpthread_create(&th[i], worker, &jobs[i]);
    }
    unsigned long long total = 0;
    long live_rss = 0;
    for (size_t i = 0; i < nt; i++) {
        if (nt > 1)
            xpthread_join(th[i]);
        total += jobs[i].allocs;
        if (jobs[i].live_rss > live_rss)
            live_rss = jobs[i].live_rss;
    }
    double t = now_s() - t0;
    printf("time_s=%.4f threads=%zu ops=%llu ops_per_s=%.0f live_rss_kb=%ld", t, nt, total, (double)total / t,
           live_rss);
    print_tail();
    return 0;
}
