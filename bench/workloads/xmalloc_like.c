/*
 * xmalloc_like - pure cross-thread free at a high rate.
 *
 * `pairs` pairs of threads; in each pair one thread only allocates blocks of
 * 16-256 B, stamps them and pushes the pointers into a lock-free
 * single-producer single-consumer ring (`ring` entries), and the other only
 * pops, checks and frees them.  Both threads draw the sizes from the same
 * seeded generator, so the freeing thread knows each block's size without
 * it being sent.  No block is ever freed by the thread that allocated it,
 * and nothing is batched: the allocator's remote-free path and the
 * allocating thread's refill from remotely freed memory carry the whole
 * load, as in the Lever & Boreham xmalloc test.
 *
 * usage: xmalloc_like [objects=4e6 per pair] [pairs=1] [ring=1024] [seed=16]
 */
#include "common.h"

typedef struct {
    ring_t q;
    unsigned long long objects;
    uint64_t seed;
    unsigned long long freed;
} pair_t;

static void *producer(void *arg)
{
    pair_t *c = arg;
    rng_t r;
    rng_seed(&r, c->seed);
    for (unsigned long long k = 0; k < c->objects; k++) {
        size_t n = (size_t)rng_range(&r, 16, 256);
        void *p = xmalloc(n);
        stamp_write(p, n);
        ring_push(&c->q, p);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    pair_t *c = arg;
    rng_t r;
    rng_seed(&r, c->seed);
    for (unsigned long long k = 0; k < c->objects; k++) {
        size_t n = (size_t)rng_range(&r, 16, 256);
        void *p = ring_pop(&c->q);
        stamp_check(p, n, "xmalloc_like");
        free(p);
        c->freed++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long long objects = arg_u(argc, argv, 1, 4000000ull);
    size_t pairs = (size_t)arg_u(argc, argv, 2, 1);
    size_t ring = (size_t)arg_u(argc, argv, 3, 1024);
    uint64_t seed = arg_u(argc, argv, 4, 16);
    if (pairs < 1 || pairs > 64 || ring < 2 || (ring & (ring - 1)))
        die("bad parameters (ring must be a power of two)");
    pair_t *pp = xmalloc(pairs * sizeof *pp);
    pthread_t tp[64], tc[64];
    double t0 = now_s();
    for (size_t i = 0; i < pairs; i++) {
        memset(&pp[i], 0, sizeof pp[i]);
        ring_init(&pp[i].q, ring);
        pp[i].objects = objects;
        pp[i].seed = seed * 31337u + i;
        xpthread_create(&tc[i], consumer, &pp[i]);
        xpthread_create(&tp[i], producer, &pp[i]);
    }
    unsigned long long total = 0;
    for (size_t i = 0; i < pairs; i++) {
        xpthread_join(tp[i]);
        xpthread_join(tc[i]);
        total += pp[i].freed;
        ring_destroy(&pp[i].q);
    }
    double t = now_s() - t0;
    free(pp);
    if (total != objects * pairs)
        die("xmalloc_like: freed %llu of %llu", total, objects * pairs);
    printf("time_s=%.4f pairs=%zu ops=%llu ops_per_s=%.0f", t, pairs, total, (double)total / t);
    print_tail();
    return 0;
}
