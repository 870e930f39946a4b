/*
 * warm_churn - small blocks replaced at random in a live set that stays
 * in the caches.
 *
 * Each of `threads` threads keeps `slots` live blocks of 8-256 B (about
 * 260 KB with the default 2,000: in L2) and performs `ops` steps, each
 * checking a random block's stamp, freeing it, and allocating and
 * stamping a block of a new random size.  The shape of a server's
 * per-request small objects (strings, nodes, small buffers) once its
 * working set is warm: no cache miss to hide the allocator's own cost.
 * The small-size half of mixed_mt without its larger sizes, alone on one
 * thread by default, so that a gap in the small-block paths shows by
 * itself.
 *
 * usage: warm_churn [threads=1] [ops=30e6] [slots=2000] [seed=21]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } obj_t;
typedef struct { unsigned long long ops; size_t slots; uint64_t seed; } job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed);
    obj_t *t = xmalloc(j->slots * sizeof *t);
    for (size_t i = 0; i < j->slots; i++) {
        t[i].n = (uint32_t)rng_range(&r, 8, 256);
        t[i].p = xmalloc(t[i].n);
        stamp_write(t[i].p, t[i].n);
    }
    for (unsigned long long k = 0; k < j->ops; k++) {
        obj_t *o = &t[rng_below(&r, j->slots)];
        stamp_check(o->p, o->n, "warm_churn");
        free(o->p);
        o->n = (uint32_t)rng_range(&r, 8, 256);
        o->p = xmalloc(o->n);
        stamp_write(o->p, o->n);
    }
    for (size_t i = 0; i < j->slots; i++) {
        stamp_check(t[i].p, t[i].n, "warm_churn final");
        free(t[i].p);
    }
    free(t);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 1);
    unsigned long long ops = arg_u(argc, argv, 2, 30000000);
    size_t slots = (size_t)arg_u(argc, argv, 3, 2000);
    uint64_t seed = arg_u(argc, argv, 4, 21);
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
    printf("time_s=%.4f threads=%zu ops=%llu ops_per_s=%.0f", t, nt, total, (double)total / t);
    print_tail();
    return 0;
}
