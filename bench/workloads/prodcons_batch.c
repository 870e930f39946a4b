/*
 * prodcons_batch - batches of small blocks handed from a producer thread to
 * a consumer thread through a lock-free bounded queue.
 *
 * The producer allocates a batch descriptor and `batch` (default 128) blocks
 * of random sizes 16-512 B, stamps them and pushes the batch into a
 * single-producer single-consumer ring `depth` batches deep (spin, then
 * yield when full).  The consumer pops a batch, checks and frees every block
 * and the descriptor.  Every free is a free of memory another, still running
 * thread allocated, and the producer never gets its blocks back locally:
 * the shape of request pipelines, message queues and log shippers.  `pairs`
 * independent producer/consumer pairs run at once.
 *
 * usage: prodcons_batch [objects=16e6] [batch=128] [depth=8] [pairs=1] [seed=12]
 */
#include "common.h"

typedef struct {
    uint32_t n;
    uint16_t *sz;
    void **p;
} batch_t;

typedef struct {
    ring_t q;
    unsigned long long objects;
    size_t batch;
    uint64_t seed;
    unsigned long long freed;
} pair_t;

static void *producer(void *arg)
{
    pair_t *c = arg;
    rng_t r;
    rng_seed(&r, c->seed);
    unsigned long long made = 0;
    while (made < c->objects) {
        size_t n = c->batch;
        if (c->objects - made < n)
            n = (size_t)(c->objects - made);
        /* one allocation for the descriptor and its two arrays */
        batch_t *b = xmalloc(sizeof *b + n * (sizeof(void *) + sizeof(uint16_t)));
        b->n = (uint32_t)n;
        b->p = (void **)(b + 1);
        b->sz = (uint16_t *)(b->p + n);
        for (size_t i = 0; i < n; i++) {
            size_t sz = (size_t)rng_range(&r, 16, 512);
            b->sz[i] = (uint16_t)sz;
            b->p[i] = xmalloc(sz);
            stamp_write(b->p[i], sz);
        }
        made += n;
        ring_push(&c->q, b);
    }
    /* end marker: an empty batch */
    batch_t *end = xmalloc(sizeof *end);
    end->n = 0;
    ring_push(&c->q, end);
    return NULL;
}

static void *consumer(void *arg)
{
    pair_t *c = arg;
    for (;;) {
        batch_t *b = ring_pop(&c->q);
        size_t n = b->n;
        for (size_t i = 0; i < n; i++) {
            stamp_check(b->p[i], b->sz[i], "prodcons_batch");
            free(b->p[i]);
        }
        free(b);
        if (n == 0)
            break;
        c->freed += n;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long long objects = arg_u(argc, argv, 1, 16000000ull);
    size_t batch = (size_t)arg_u(argc, argv, 2, 128);
    size_t depth = (size_t)arg_u(argc, argv, 3, 8);
    size_t pairs = (size_t)arg_u(argc, argv, 4, 1);
    uint64_t seed = arg_u(argc, argv, 5, 12);
    if (batch < 1 || batch > 65535 || depth < 2 || (depth & (depth - 1)) || pairs < 1 || pairs > 64)
        die("bad parameters (depth must be a power of two)");

    pair_t *pp = xmalloc(pairs * sizeof *pp);
    pthread_t tp[64], tc[64];
    double t0 = now_s();
    for (size_t i = 0; i < pairs; i++) {
        pair_t *c = &pp[i];
        memset(c, 0, sizeof *c);
        ring_init(&c->q, depth);
        c->objects = objects / pairs;
        c->batch = batch;
        c->seed = seed * 131u + i;
        xpthread_create(&tc[i], consumer, c);
        xpthread_create(&tp[i], producer, c);
    }
    unsigned long long freed = 0;
    for (size_t i = 0; i < pairs; i++) {
        xpthread_join(tp[i]);
        xpthread_join(tc[i]);
        if (pp[i].freed != pp[i].objects)
            die("prodcons_batch: consumer freed %llu of %llu", pp[i].freed, pp[i].objects);
        freed += pp[i].freed;
        ring_destroy(&pp[i].q);
    }
    double t = now_s() - t0;
    free(pp);
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f", t, freed, (double)freed / t);
    print_tail();
    return 0;
}
