/*
 * thread_pass - threads recreated every round, passing objects to each other.
 *
 * There are T bags of `objs` objects (16-512 B).  Every round creates T fresh
 * threads; thread i works on bag (i + round) mod T, so bags move to a
 * different thread each round.  A thread
 *   1. frees and reallocates a random half of its bag (freeing blocks that
 *      earlier, now exited, threads allocated),
 *   2. allocates `pass` new objects and posts them to the mailbox of thread
 *      i+1, then waits at a barrier,
 *   3. checks and frees the objects in its own mailbox (allocated by thread
 *      i-1, which is still alive) and exits.
 * This stresses thread-exit cleanup, adoption of abandoned memory and
 * cross-thread frees together.
 *
 * usage: thread_pass [threads=4] [rounds=300] [objs=20000] [pass=4000] [seed=4]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } obj_t;

static size_t nthreads, nobjs, npass;
static unsigned long long cur_round;
static uint64_t base_seed;
static obj_t **bags;
static obj_t **mail;     /* mail[i]: objects posted to thread i this round */
static pthread_barrier_t bar;

static void *worker(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    rng_t r;
    rng_seed(&r, base_seed * 7919u + cur_round * 131u + i);
    obj_t *bag = bags[(i + cur_round) % nthreads];
    for (size_t k = 0; k < nobjs / 2; k++) {
        obj_t *o = &bag[rng_below(&r, nobjs)];
        stamp_check(o->p, o->n, "thread_pass bag");
        free(o->p);
        o->n = (uint32_t)rng_range(&r, 16, 512);
        o->p = xmalloc(o->n);
        stamp_write(o->p, o->n);
    }
    obj_t *out = mail[(i + 1) % nthreads];
    for (size_t k = 0; k < npass; k++) {
        out[k].n = (uint32_t)rng_range(&r, 16, 512);
        out[k].p = xmalloc(out[k].n);
        stamp_write(out[k].p, out[k].n);
    }
    pthread_barrier_wait(&bar);
    obj_t *in = mail[i];
    for (size_t k = 0; k < npass; k++) {
        stamp_check(in[k].p, in[k].n, "thread_pass mail");
        free(in[k].p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = (size_t)arg_u(argc, argv, 1, 4);
    unsigned long long rounds = arg_u(argc, argv, 2, 300);
    nobjs = (size_t)arg_u(argc, argv, 3, 20000);
    npass = (size_t)arg_u(argc, argv, 4, 4000);
    base_seed = arg_u(argc, argv, 5, 4);
    if (nthreads < 1 || nthreads > 256 || nobjs < 2)
        die("bad parameters");

    rng_t r;
    rng_seed(&r, base_seed);
    double t0 = now_s();
    bags = xmalloc(nthreads * sizeof *bags);
    mail = xmalloc(nthreads * sizeof *mail);
    for (size_t i = 0; i < nthreads; i++) {
        bags[i] = xmalloc(nobjs * sizeof(obj_t));
        mail[i] = xmalloc((npass ? npass : 1) * sizeof(obj_t));
        for (size_t k = 0; k < nobjs; k++) {
            bags[i][k].n = (uint32_t)rng_range(&r, 16, 512);
            bags[i][k].p = xmalloc(bags[i][k].n);
            stamp_write(bags[i][k].p, bags[i][k].n);
        }
    }
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    pthread_t th[256];
    for (cur_round = 0; cur_round < rounds; cur_round++) {
        for (size_t i = 0; i < nthreads; i++)
            xpthread_create(&th[i], worker, (void *)(uintptr_t)i);
        for (size_t i = 0; i < nthreads; i++)
            xpthread_join(th[i]);
    }
    long rss = rss_now_kb();
    for (size_t i = 0; i < nthreads; i++) {
        for (size_t k = 0; k < nobjs; k++) {
            stamp_check(bags[i][k].p, bags[i][k].n, "thread_pass final");
            free(bags[i][k].p);
        }
        free(bags[i]);
        free(mail[i]);
    }
    free(bags);
    free(mail);
    pthread_barrier_destroy(&bar);
    double t = now_s() - t0;
    unsigned long long total = rounds * nthreads * (nobjs / 2 + npass);
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f threads_created=%llu live_rss_kb=%ld", t, total,
           (double)total / t, rounds * nthreads, rss);
    print_tail();
    return 0;
}
