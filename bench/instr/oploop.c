/*
 * oploop - fixed loops of malloc+free for instruction counting (callgrind).
 *
 *   oploop SIZE ITERS     after a warm-up, ITERS x { p = malloc(SIZE); p[0] = 1; free(p); }
 *   oploop xthread ITERS  one thread allocates batches of 64-byte blocks, hands
 *                         each batch to a second thread that frees it (ITERS
 *                         blocks in all, batches of 100)
 *
 * All measured work happens inside functions named measured_*, so
 *   valgrind --tool=callgrind --toggle-collect='measured_*' oploop ...
 * counts only the loops.  malloc and free are reached through the out-of-line
 * wrappers bench_malloc and bench_free, whose inclusive cost is the cost of a
 * malloc and of a free (whatever name the allocator gives its entry points)
 * plus the call through the PLT.
 */
#include "common.h"

__attribute__((noipa)) void *bench_malloc(size_t n)
{
    return malloc(n);
}

__attribute__((noipa)) void bench_free(void *p)
{
    free(p);
}

static inline void pairs_body(size_t size, unsigned long long iters)
{
    for (unsigned long long k = 0; k < iters; k++) {
        unsigned char *p = bench_malloc(size);
        if (!p)
            die("malloc(%zu) failed", size);
        p[0] = 1;
        bench_free(p);
    }
}

__attribute__((noipa)) void warm_pairs(size_t size, unsigned long long iters)
{
    pairs_body(size, iters);
}

__attribute__((noipa)) void measured_pairs(size_t size, unsigned long long iters)
{
    pairs_body(size, iters);
}

/* ---- cross-thread ---- */
enum { BATCH = 100, XSIZE = 64 };

static inline void alloc_body(void **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = bench_malloc(XSIZE);
        if (!p)
            die("malloc failed");
        p[0] = 1;
        v[i] = p;
    }
}

static inline void free_body(void **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bench_free(v[i]);
}

__attribute__((noipa)) void warm_alloc_batch(void **v, size_t n) { alloc_body(v, n); }
__attribute__((noipa)) void warm_free_batch(void **v, size_t n) { free_body(v, n); }
__attribute__((noipa)) void measured_alloc_batch(void **v, size_t n) { alloc_body(v, n); }
__attribute__((noipa)) void measured_free_batch(void **v, size_t n) { free_body(v, n); }

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void *slot_ptrs[BATCH];
static size_t slot_n;        /* batch waiting for the consumer, 0 = empty */
static int slot_full, slot_warm, done;

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!slot_full && !done)
            pthread_cond_wait(&cv, &mu);
        if (!slot_full && done) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        if (slot_warm)
            warm_free_batch(slot_ptrs, slot_n);
        else
            measured_free_batch(slot_ptrs, slot_n);
        slot_full = 0;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
}

static void post(void **v, size_t n, int warm)
{
    pthread_mutex_lock(&mu);
    while (slot_full)
        pthread_cond_wait(&cv, &mu);
    memcpy(slot_ptrs, v, n * sizeof(void *));
    slot_n = n;
    slot_warm = warm;
    slot_full = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void run_xthread(unsigned long long iters)
{
    pthread_t t;
    void *v[BATCH];
    xpthread_create(&t, consumer, NULL);
    for (int w = 0; w < 100; w++) {
        warm_alloc_batch(v, BATCH);
        post(v, BATCH, 1);
    }
    unsigned long long left = iters;
    while (left) {
        size_t n = left < BATCH ? (size_t)left : BATCH;
        measured_alloc_batch(v, n);
        post(v, n, 0);
        left -= n;
    }
    pthread_mutex_lock(&mu);
    while (slot_full)
        pthread_cond_wait(&cv, &mu);
    done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    xpthread_join(t);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die("usage: oploop SIZE|xthread ITERS");
    unsigned long long iters = arg_u(argc, argv, 2, 0);
    if (strcmp(argv[1], "xthread") == 0) {
        run_xthread(iters);
    } else {
        size_t size = (size_t)arg_u(argc, argv, 1, 16);
        warm_pairs(size, 10000);
        measured_pairs(size, iters);
    }
    printf("done mode=%s iters=%llu\n", argv[1], iters);
    return 0;
}
