/*
 * larson_like - a server simulation in the spirit of Larson & Krishnan's
 * benchmark: worker threads that are replaced by fresh threads.
 *
 * `threads` chains run at once.  Each chain owns an array of `slots` blocks
 * of random sizes 16-1024 B.  The thread running a chain performs `ops`
 * steps, each replacing the block in a random slot (check stamp, free,
 * allocate, stamp); then it starts a fresh thread, hands it the array and
 * exits.  The new thread goes on freeing blocks its dead predecessor (and
 * earlier ones) allocated, while the other chains run out of step with it.
 * After `rounds` threads per chain the last one checks and frees the array.
 * Stresses thread-heap creation and abandonment, adoption of memory from
 * exited threads and frees of "remote" blocks, as the mimalloc-bench larson
 * test does.
 *
 * Built twice: as C (larson_like: blocks freed with free()) and as C++
 * (larson_sized, from larson_sized.cpp: ::operator new(n) and the sized
 * ::operator delete(p, n), compiled with -fsized-deallocation).
 *
 * usage: larson_like [threads=2] [rounds=100] [ops=20000] [slots=1000] [seed=13]
 */
#include "common.h"
#include <semaphore.h>

#ifdef __cplusplus
#include <new>
#define WL_NAME "larson_sized"
static inline void *blk_alloc(size_t n) { return ::operator new(n); }
static inline void blk_free(void *p, size_t n) { ::operator delete(p, n); }
#else
#define WL_NAME "larson_like"
static inline void *blk_alloc(size_t n) { return xmalloc(n); }
static inline void blk_free(void *p, size_t n) { (void)n; free(p); }
#endif

typedef struct { void *p; uint32_t n; } slot_t;

typedef struct {
    slot_t *slots;
    size_t nslots;
    unsigned long long ops;       /* steps per thread */
    unsigned long long rounds_left;
    unsigned long long done_ops;
    unsigned long long threads_made;
    rng_t r;
    sem_t *finished;
} chain_t;

static void *chain_thread(void *arg);

static void start_detached(chain_t *c)
{
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    c->threads_made++;  /* before: the new thread owns c once it runs */
    int e = pthread_create(&t, &at, chain_thread, c);
    if (e)
        die("pthread_create: %s", strerror(e));
    pthread_attr_destroy(&at);
}

static void *chain_thread(void *arg)
{
    chain_t *c = (chain_t *)arg;
    slot_t *s = c->slots;
    for (unsigned long long k = 0; k < c->ops; k++) {
        slot_t *o = &s[rng_below(&c->r, c->nslots)];
        stamp_check(o->p, o->n, WL_NAME);
        blk_free(o->p, o->n);
        o->n = (uint32_t)rng_range(&c->r, 16, 1024);
        o->p = blk_alloc(o->n);
        stamp_write(o->p, o->n);
    }
    c->done_ops += c->ops;
    if (--c->rounds_left > 0) {
        start_detached(c);  /* the successor takes over the array; this thread exits */
    } else {
        for (size_t i = 0; i < c->nslots; i++) {
            stamp_check(s[i].p, s[i].n, WL_NAME " final");
            blk_free(s[i].p, s[i].n);
        }
        sem_post(c->finished);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 2);
    unsigned long long rounds = arg_u(argc, argv, 2, 100);
    unsigned long long ops = arg_u(argc, argv, 3, 20000);
    size_t nslots = (size_t)arg_u(argc, argv, 4, 1000);
    uint64_t seed = arg_u(argc, argv, 5, 13);
    if (nt < 1 || nt > 1024 || rounds < 1 || nslots < 1)
        die("bad parameters");

    chain_t *ch = (chain_t *)xmalloc(nt * sizeof *ch);
    sem_t finished;
    sem_init(&finished, 0, 0);
    double t0 = now_s();
    /* the main thread fills every chain's array: the first thread of each
       chain already frees blocks it did not allocate */
    for (size_t i = 0; i < nt; i++) {
        chain_t *c = &ch[i];
        memset(c, 0, sizeof *c);
        rng_seed(&c->r, seed * 1000003u + i);
        c->slots = (slot_t *)xmalloc(nslots * sizeof(slot_t));
        c->nslots = nslots;
        c->ops = ops;
        c->rounds_left = rounds;
        c->finished = &finished;
        for (size_t k = 0; k < nslots; k++) {
            c->slots[k].n = (uint32_t)rng_range(&c->r, 16, 1024);
            c->slots[k].p = blk_alloc(c->slots[k].n);
            stamp_write(c->slots[k].p, c->slots[k].n);
        }
    }
    for (size_t i = 0; i < nt; i++)
        start_detached(&ch[i]);
    for (size_t i = 0; i < nt; i++)
        while (sem_wait(&finished) != 0)
            if (errno != EINTR)
                die("sem_wait: %s", strerror(errno));
    double t = now_s() - t0;
    unsigned long long total = 0, made = 0;
    for (size_t i = 0; i < nt; i++) {
        total += ch[i].done_ops;
        made += ch[i].threads_made;
        free(ch[i].slots);
    }
    free(ch);
    if (total != (unsigned long long)nt * rounds * ops)
        die(WL_NAME ": %llu steps done, expected %llu", total, (unsigned long long)nt * rounds * ops);
    printf("time_s=%.4f threads=%zu thread_starts=%llu ops=%llu ops_per_s=%.0f", t, nt, made, total,
           (double)total / t);
    print_tail();
    return 0;
}
