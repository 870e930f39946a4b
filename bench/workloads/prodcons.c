/*
 * prodcons - producer/consumer: one thread allocates, another frees.
 *
 * The producer allocates batches of `batch` objects of 16-256 B, fills them
 * and pushes each batch through a bounded queue (mutex + condition variables,
 * `depth` batches deep) to the consumer, which checks and frees every object.
 * Every free is a cross-thread free of a block the other thread allocated,
 * and the producer's heap never gets its own blocks back locally - the
 * pattern of message passing, logging and pipeline stages.  `pairs` such
 * producer/consumer pairs run at once.
 *
 * usage: prodcons [objects=20e6] [batch=256] [depth=16] [pairs=1]
 */
#include "common.h"

typedef struct {
    void **items;   /* batch of pointers; sizes are recomputed from position */
    size_t n;
} batch_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    batch_t *q;
    size_t cap, head, count;
    unsigned long long objects;
    size_t batch;
    unsigned long long freed;
    uint64_t seed;
} chan_t;

static size_t size_of(size_t idx)
{
    /* deterministic size from the index; the consumer recomputes it */
    return 16 + (idx * 37) % 241;
}

static void *producer(void *arg)
{
    chan_t *c = arg;
    unsigned long long made = 0;
    while (made < c->objects) {
        size_t n = c->batch;
        if (c->objects - made < n)
            n = (size_t)(c->objects - made);
        batch_t b = {xmalloc(n * sizeof(void *)), n};
        for (size_t i = 0; i < n; i++) {
            size_t sz = size_of(i);
            b.items[i] = xmalloc(sz);
            stamp_write(b.items[i], sz);
        }
        made += n;
        pthread_mutex_lock(&c->mu);
        while (c->count == c->cap)
            pthread_cond_wait(&c->not_full, &c->mu);
        c->q[(c->head + c->count) % c->cap] = b;
        c->count++;
        pthread_cond_signal(&c->not_empty);
        pthread_mutex_unlock(&c->mu);
    }
    /* end marker */
    pthread_mutex_lock(&c->mu);
    while (c->count == c->cap)
        pthread_cond_wait(&c->not_full, &c->mu);
    c->q[(c->head + c->count) % c->cap] = (batch_t){NULL, 0};
    c->count++;
    pthread_cond_signal(&c->not_empty);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void *consumer(void *arg)
{
    chan_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (c->count == 0)
            pthread_cond_wait(&c->not_empty, &c->mu);
        batch_t b = c->q[c->head];
        c->head = (c->head + 1) % c->cap;
        c->count--;
        pthread_cond_signal(&c->not_full);
        pthread_mutex_unlock(&c->mu);
        if (!b.items)
            break;
        for (size_t i = 0; i < b.n; i++) {
            stamp_check(b.items[i], size_of(i), "prodcons");
            free(b.items[i]);
        }
        c->freed += b.n;
        free(b.items);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long long objects = arg_u(argc, argv, 1, 20000000ull);
    size_t batch = (size_t)arg_u(argc, argv, 2, 256);
    size_t depth = (size_t)arg_u(argc, argv, 3, 16);
    size_t pairs = (size_t)arg_u(argc, argv, 4, 1);
    if (batch < 1 || depth < 1 || pairs < 1 || pairs > 64)
        die("bad parameters");

    chan_t ch[64];
    pthread_t tp[64], tc[64];
    double t0 = now_s();
    for (size_t i = 0; i < pairs; i++) {
        chan_t *c = &ch[i];
        memset(c, 0, sizeof *c);
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->not_full, NULL);
        pthread_cond_init(&c->not_empty, NULL);
        c->cap = depth;
        c->q = xmalloc(depth * sizeof(batch_t));
        c->objects = objects / pairs;
        c->batch = batch;
        xpthread_create(&tc[i], consumer, c);
        xpthread_create(&tp[i], producer, c);
    }
    unsigned long long freed = 0;
    for (size_t i = 0; i < pairs; i++) {
        xpthread_join(tp[i]);
        xpthread_join(tc[i]);
        if (ch[i].freed != ch[i].objects)
            die("prodcons: consumer freed %llu of %llu", ch[i].freed, ch[i].objects);
        freed += ch[i].freed;
        free(ch[i].q);
    }
    double t = now_s() - t0;
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f", t, freed, (double)freed / t);
    print_tail();
    return 0;
}
