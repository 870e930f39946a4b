/*
 * mstress_like - multi-thread stress with bursts, a long tail of sizes and
 * blocks handed to other threads.
 *
 * `threads` threads (default 4 on the 2-core machine) each keep up to
 * `slots` live blocks.  Sizes follow a long tail from 16 B to 64 KiB: 16 B
 * times 2^(12 u^3) for u uniform in [0,1) (half the blocks under 64 B, about
 * 10% over 2 KiB, 1% over 28 KiB).  A new block gets its stamp and one
 * written byte per 4 KiB page.  A thread works in bursts: an allocation
 * burst fills 1-`slots`/4 empty slots, a free burst frees a random run of
 * live blocks.  Every `xfer_every` bursts a thread moves a quarter of its live
 * blocks to the inbox of another thread (round-robin target; a mutex-guarded
 * list holding at most `slots`/2 blocks, so that a receiver descheduled on
 * the oversubscribed machine does not pile up memory: a sender waits
 * for room, draining its own inbox meanwhile), and every burst it frees whatever arrived in its own inbox.  So
 * most memory dies where it was born, but a steady fraction is freed by
 * other threads in large batches, as in a task system or actor runtime.
 *
 * usage: mstress_like [threads=4] [bursts=15000 per thread] [slots=2000] [xfer_every=8] [seed=14]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } obj_t;

typedef struct xfer {
    struct xfer *next;
    size_t n;
    obj_t objs[];
} xfer_t;

typedef struct {
    pthread_mutex_t mu;
    xfer_t *inbox;
    size_t pending;  /* blocks in the inbox (under mu) */
    unsigned long long bursts;
    size_t slots, xfer_every, self, nthreads;
    uint64_t seed;
    unsigned long long allocs, frees, remote_frees;
} worker_t;

static worker_t *W;
static pthread_barrier_t start_bar;
static int running;  /* threads still sending */

static size_t pick(rng_t *r)
{
    double u = rng_unit(r);
    size_t n = (size_t)(16.0 * exp2(12.0 * u * u * u));
    return n > 65536 ? 65536 : n;
}

static void fill(void *p, size_t n)
{
    for (size_t off = 4096; off < n; off += 4096)
        ((unsigned char *)p)[off] = 1;
    stamp_write(p, n);
}

static void drain_inbox(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    xfer_t *x = w->inbox;
    w->inbox = NULL;
    w->pending = 0;
    pthread_mutex_unlock(&w->mu);
    while (x) {
        xfer_t *nx = x->next;
        for (size_t i = 0; i < x->n; i++) {
            stamp_check(x->objs[i].p, x->objs[i].n, "mstress_like remote");
            free(x->objs[i].p);
        }
        w->remote_frees += x->n;
        free(x);
        x = nx;
    }
}

static void *run(void *arg)
{
    worker_t *w = arg;
    rng_t r;
    rng_seed(&r, w->seed);
    obj_t *t = xmalloc(w->slots * sizeof *t);
    memset(t, 0, w->slots * sizeof *t);
    size_t live = 0;  /* t[0..live) are live (kept dense) */
    size_t target = w->self;
    pthread_barrier_wait(&start_bar);
    for (unsigned long long b = 0; b < w->bursts; b++) {
        if (live < w->slots / 4 || (live < w->slots && rng_below(&r, 2))) {
            size_t n = (size_t)rng_range(&r, 1, w->slots / 4);
            if (n > w->slots - live)
                n = w->slots - live;
            for (size_t i = 0; i < n; i++) {
                obj_t *o = &t[live++];
                o->n = (uint32_t)pick(&r);
                o->p = xmalloc(o->n);
                fill(o->p, o->n);
            }
            w->allocs += n;
        } else {
            size_t n = (size_t)rng_range(&r, 1, live / 2);
            size_t at = (size_t)rng_below(&r, live - n + 1);
            for (size_t i = at; i < at + n; i++) {
                stamp_check(t[i].p, t[i].n, "mstress_like");
                free(t[i].p);
            }
            memmove(&t[at], &t[at + n], (live - at - n) * sizeof *t);
            live -= n;
            w->frees += n;
        }
        if (w->nthreads > 1 && b % w->xfer_every == w->xfer_every - 1 && live >= 4) {
            target = (target + 1) % w->nthreads;
            if (target == w->self)
                target = (target + 1) % w->nthreads;
            worker_t *d = &W[target];
            size_t n = live / 4;
            xfer_t *x = xmalloc(sizeof *x + n * sizeof(obj_t));
            x->n = n;
            memcpy(x->objs, &t[live - n], n * sizeof(obj_t));
            live -= n;
            /* a receiver that is off the CPU must not pile up memory without
               bound: it takes at most slots/2 blocks in flight, and a sender
               that finds the inbox full drains its own while it waits (so
               threads waiting on each other still make progress) */
            for (;;) {
                pthread_mutex_lock(&d->mu);
                int ok = d->pending == 0 || d->pending + n <= w->slots / 2;
                if (ok) {
                    x->next = d->inbox;
                    d->inbox = x;
                    d->pending += n;
                }
                pthread_mutex_unlock(&d->mu);
                if (ok)
                    break;
                drain_inbox(w);
                sched_yield();
            }
        }
        drain_inbox(w);
    }
    for (size_t i = 0; i < live; i++) {
        stamp_check(t[i].p, t[i].n, "mstress_like final");
        free(t[i].p);
    }
    w->frees += live;
    free(t);
    /* keep receiving until every thread has stopped sending */
    __atomic_sub_fetch(&running, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&running, __ATOMIC_ACQUIRE) > 0) {
        drain_inbox(w);
        sched_yield();
    }
    drain_inbox(w);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 4);
    unsigned long long bursts = arg_u(argc, argv, 2, 15000);
    size_t slots = (size_t)arg_u(argc, argv, 3, 2000);
    size_t xfer_every = (size_t)arg_u(argc, argv, 4, 8);
    uint64_t seed = arg_u(argc, argv, 5, 14);
    if (nt < 1 || nt > 256 || slots < 8 || xfer_every < 1)
        die("bad parameters");
    W = xmalloc(nt * sizeof *W);
    pthread_t th[256];
    pthread_barrier_init(&start_bar, NULL, (unsigned)nt);
    running = (int)nt;
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++) {
        memset(&W[i], 0, sizeof W[i]);
        pthread_mutex_init(&W[i].mu, NULL);
        W[i].bursts = bursts;
        W[i].slots = slots;
        W[i].xfer_every = xfer_every;
        W[i].self = i;
        W[i].nthreads = nt;
        W[i].seed = seed * 65537u + i;
    }
    for (size_t i = 0; i < nt; i++)
        xpthread_create(&th[i], run, &W[i]);
    unsigned long long allocs = 0, frees = 0, remote = 0;
    for (size_t i = 0; i < nt; i++)
        xpthread_join(th[i]);
    double t = now_s() - t0;
    for (size_t i = 0; i < nt; i++) {
        allocs += W[i].allocs;
        frees += W[i].frees;
        remote += W[i].remote_frees;
    }
    if (frees + remote != allocs)
        die("mstress_like: %llu allocated, %llu freed locally + %llu remotely", allocs, frees, remote);
    free(W);
    printf("time_s=%.4f threads=%zu ops=%llu ops_per_s=%.0f remote_pct=%.1f", t, nt, allocs, (double)allocs / t,
           100.0 * (double)remote / (double)allocs);
    print_tail();
    return 0;
}
