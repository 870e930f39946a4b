/*
 * threads_200 - thread-per-connection server: many more threads than cores.
 *
 * `threads` threads (default 200 on the 2-core machine), all alive at once,
 * each keep `slots` (default 64) live blocks of 16 B-16 KiB (log-uniform)
 * and perform `ops` steps, each replacing a random block.  One free in
 * `xchg` (default 8) is of a block another thread allocated: instead of
 * freeing its old block, the thread swaps it into a random cell of a shared
 * exchange array (atomic exchange) and frees the block it takes out, if
 * any.  Every 32 steps a thread yields the CPU, like a handler waiting for
 * its socket, so all threads stay active together.  The allocator's
 * per-thread state (caches, heaps, arenas) is multiplied by 200 here: peak
 * RSS (measured by the harness) shows what that costs, ops/s what the
 * oversubscription costs.  A block's size lives in its second word, so the
 * thread that frees it can check it.
 *
 * usage: threads_200 [threads=200] [ops=40000 per thread] [slots=64] [xchg=8] [cells=1024] [seed=20]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } obj_t;

typedef struct {
    unsigned long long ops;
    size_t slots, xchg;
    uint64_t seed;
    unsigned long long foreign;
} job_t;

static void **cells;
static size_t ncells;
static pthread_barrier_t bar;

static void *new_block(rng_t *r, uint32_t *np)
{
    uint32_t n = (uint32_t)rng_log_uniform(r, 16, 16384);
    unsigned char *p = xmalloc(n);
    stamp_write(p, n);
    memcpy(p + 8, &n, 4);
    *np = n;
    return p;
}

static void check_free(void *p, uint32_t n, const char *where)
{
    uint32_t m;
    memcpy(&m, (unsigned char *)p + 8, 4);
    if (n == 0)
        n = m;  /* a foreign block: its size is in the block */
    if (m != n)
        die("%s: block %p: size word %u, expected %u", where, p, m, n);
    stamp_check(p, n, where);
    free(p);
}

static void *run(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed);
    obj_t *t = xmalloc(j->slots * sizeof *t);
    pthread_barrier_wait(&bar);
    for (size_t i = 0; i < j->slots; i++)
        t[i].p = new_block(&r, &t[i].n);
    for (unsigned long long k = 0; k < j->ops; k++) {
        obj_t *o = &t[rng_below(&r, j->slots)];
        if (rng_below(&r, j->xchg) == 0) {
            void *q = __atomic_exchange_n(&cells[rng_below(&r, ncells)], o->p, __ATOMIC_ACQ_REL);
            if (q) {
                check_free(q, 0, "threads_200 foreign");
                j->foreign++;
            }
        } else {
            check_free(o->p, o->n, "threads_200");
        }
        o->p = new_block(&r, &o->n);
        if ((k & 31) == 31)
            sched_yield();
    }
    for (size_t i = 0; i < j->slots; i++)
        check_free(t[i].p, t[i].n, "threads_200 final");
    free(t);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 200);
    unsigned long long ops = arg_u(argc, argv, 2, 40000);
    size_t slots = (size_t)arg_u(argc, argv, 3, 64);
    size_t xchg = (size_t)arg_u(argc, argv, 4, 8);
    ncells = (size_t)arg_u(argc, argv, 5, 1024);
    uint64_t seed = arg_u(argc, argv, 6, 20);
    if (nt < 1 || nt > 4096 || slots < 1 || xchg < 1 || ncells < 1)
        die("bad parameters");
    cells = xmalloc(ncells * sizeof(void *));
    memset(cells, 0, ncells * sizeof(void *));
    job_t *jobs = xmalloc(nt * sizeof *jobs);
    pthread_t *th = xmalloc(nt * sizeof *th);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 << 10);
    pthread_barrier_init(&bar, NULL, (unsigned)nt);
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++) {
        jobs[i] = (job_t){ops, slots, xchg, seed * 100003u + i, 0};
        int e = pthread_create(&th[i], &at, run, &jobs[i]);
        if (e)
            die("pthread_create: %s", strerror(e));
    }
    unsigned long long foreign = 0;
    for (size_t i = 0; i < nt; i++) {
        xpthread_join(th[i]);
        foreign += jobs[i].foreign;
    }
    double t = now_s() - t0;
    size_t left = 0;
    for (size_t i = 0; i < ncells; i++)
        if (cells[i]) {
            check_free(cells[i], 0, "threads_200 cells");
            left++;
        }
    free(cells);
    free(jobs);
    free(th);
    unsigned long long total = ops * nt;
    printf("time_s=%.4f threads=%zu ops=%llu ops_per_s=%.0f foreign_pct=%.1f", t, nt, total, (double)total / t,
           100.0 * (double)foreign / (double)total);
    print_tail();
    return 0;
}
