/*
 * rptest_like - random sizes across threads, some blocks freed by others.
 *
 * Each of `threads` threads keeps `slots` live blocks whose sizes follow a
 * power law from 16 B to 16 KiB (density ~ 1/size^1.5: most are small,
 * a steady trickle is large).  A step replaces a random slot: the old block
 * is checked and freed locally, except one in `xfer` (default 4), which is
 * put into the outgoing batch for the next thread instead.  A full batch of
 * 32 blocks is pushed onto the receiver's shared queue (mutex-guarded list);
 * every 64 steps a thread takes everything from its own queue, checks and
 * frees it.  Like rpmalloc's benchmark and many servers, memory crosses
 * threads in small batches while every thread allocates all sizes at once.
 * A queue takes at most 64 batches; a sender finding it full frees its own
 * incoming blocks while it waits, so the work is the same under every
 * allocator whatever the scheduling.
 *
 * usage: rptest_like [threads=4] [ops=4e6 per thread] [slots=4096] [xfer=4] [seed=15]
 */
#include "common.h"

#define BATCH 32
#define MAXQ 64

typedef struct { void *p; uint32_t n; } obj_t;
typedef struct bat { struct bat *next; obj_t o[BATCH]; } bat_t;

typedef struct {
    pthread_mutex_t mu;
    bat_t *q;
    size_t qlen;
    unsigned long long ops;
    size_t slots, xfer, self, nthreads;
    uint64_t seed;
    unsigned long long remote;
    char pad[64];
} worker_t;

static worker_t *W;
static pthread_barrier_t bar;
static int running;

/* Power law on [16, 16384] with density ~ n^-1.5 (inverse CDF). */
static size_t pick(rng_t *r)
{
    const double a = 1.0 / sqrt(16.0), b = 1.0 / sqrt(16384.0);
    double u = rng_unit(r);
    double x = 1.0 / (a - u * (a - b));
    size_t n = (size_t)(x * x);
    return n < 16 ? 16 : n > 16384 ? 16384 : n;
}

static void drain(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    bat_t *b = w->q;
    w->q = NULL;
    w->qlen = 0;
    pthread_mutex_unlock(&w->mu);
    while (b) {
        bat_t *nx = b->next;
        for (int i = 0; i < BATCH; i++) {
            stamp_check(b->o[i].p, b->o[i].n, "rptest_like remote");
            free(b->o[i].p);
        }
        w->remote += BATCH;
        free(b);
        b = nx;
    }
}

static void send_batch(worker_t *w, worker_t *d, bat_t *b)
{
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int ok = d->qlen < MAXQ;
        if (ok) {
            b->next = d->q;
            d->q = b;
            d->qlen++;
        }
        pthread_mutex_unlock(&d->mu);
        if (ok)
            return;
        drain(w);
        sched_yield();
    }
}

static void *run(void *arg)
{
    worker_t *w = arg;
    rng_t r;
    rng_seed(&r, w->seed);
    obj_t *t = xmalloc(w->slots * sizeof *t);
    for (size_t i = 0; i < w->slots; i++) {
        t[i].n = (uint32_t)pick(&r);
        t[i].p = xmalloc(t[i].n);
        stamp_write(t[i].p, t[i].n);
    }
    worker_t *dst = &W[(w->self + 1) % w->nthreads];
    bat_t *out = xmalloc(sizeof *out);
    int nout = 0;
    pthread_barrier_wait(&bar);
    for (unsigned long long k = 0; k < w->ops; k++) {
        obj_t *o = &t[rng_below(&r, w->slots)];
        stamp_check(o->p, o->n, "rptest_like");
        if (w->nthreads > 1 && rng_below(&r, w->xfer) == 0) {
            out->o[nout++] = *o;
            if (nout == BATCH) {
                send_batch(w, dst, out);
                out = xmalloc(sizeof *out);
                nout = 0;
            }
        } else {
            free(o->p);
        }
        o->n = (uint32_t)pick(&r);
        o->p = xmalloc(o->n);
        stamp_write(o->p, o->n);
        if ((k & 63) == 63)
            drain(w);
    }
    for (int i = 0; i < nout; i++) {
        stamp_check(out->o[i].p, out->o[i].n, "rptest_like unsent");
        free(out->o[i].p);
    }
    free(out);
    for (size_t i = 0; i < w->slots; i++) {
        stamp_check(t[i].p, t[i].n, "rptest_like final");
        free(t[i].p);
    }
    free(t);
    __atomic_sub_fetch(&running, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&running, __ATOMIC_ACQUIRE) > 0) {
        drain(w);
        sched_yield();
    }
    drain(w);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 4);
    unsigned long long ops = arg_u(argc, argv, 2, 4000000);
    size_t slots = (size_t)arg_u(argc, argv, 3, 4096);
    size_t xfer = (size_t)arg_u(argc, argv, 4, 4);
    uint64_t seed = arg_u(argc, argv, 5, 15);
    if (nt < 1 || nt > 256 || slots < 1 || xfer < 1)
        die("bad parameters");
    W = xmalloc(nt * sizeof *W);
    pthread_t th[256];
    pthread_barrier_init(&bar, NULL, (unsigned)nt);
    running = (int)nt;
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++) {
        memset(&W[i], 0, sizeof W[i]);
        pthread_mutex_init(&W[i].mu, NULL);
        W[i].ops = ops;
        W[i].slots = slots;
        W[i].xfer = xfer;
        W[i].self = i;
        W[i].nthreads = nt;
        W[i].seed = seed * 7777u + i;
    }
    for (size_t i = 0; i < nt; i++)
        xpthread_create(&th[i], run, &W[i]);
    for (size_t i = 0; i < nt; i++)
        xpthread_join(th[i]);
    double t = now_s() - t0;
    unsigned long long remote = 0;
    for (size_t i = 0; i < nt; i++)
        remote += W[i].remote;
    free(W);
    unsigned long long total = ops * nt;
    printf("time_s=%.4f threads=%zu ops=%llu ops_per_s=%.0f remote_pct=%.1f", t, nt, total, (double)total / t,
           100.0 * (double)remote / (double)total);
    print_tail();
    return 0;
}
