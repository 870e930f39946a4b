/*
 * false_share - does the allocator put different threads' objects on one
 * cache line?
 *
 * Two measurements, each with T threads that write `writes` times to a
 * small object they hold, repeated `reps` times with a fresh object:
 *  - active:  each thread mallocs its own `size`-byte object, writes to it
 *             intensively, frees it.  An allocator that hands neighbouring
 *             blocks to different threads makes the cores fight over a line.
 *  - passive: the main thread allocates T objects back to back and gives one
 *             to each thread, which writes to it, then frees it and
 *             continues with objects it allocates itself.  An allocator that
 *             reuses the freed (main thread's) memory for the thread
 *             inherits the false sharing.
 * Reports the time of each part; no false sharing means both stay close to
 * a single thread's write speed.
 *
 * usage: false_share [threads=2] [writes=4e6] [reps=40] [size=8]
 */
#include "common.h"

static size_t nthreads, objsize;
static unsigned long long nwrites, nreps;

typedef struct { void *given; } job_t;

static void hammer(unsigned char *p, unsigned long long n)
{
    volatile unsigned char *v = p;
    for (unsigned long long k = 0; k < n; k++)
        v[0]++;
}

static void *active(void *arg)
{
    (void)arg;
    for (unsigned long long r = 0; r < nreps; r++) {
        unsigned char *p = xmalloc(objsize);
        memset(p, 0, objsize);
        hammer(p, nwrites);
        free(p);
    }
    return NULL;
}

static void *passive(void *arg)
{
    job_t *j = arg;
    unsigned char *p = j->given;
    for (unsigned long long r = 0; r < nreps; r++) {
        hammer(p, nwrites);
        free(p);
        p = xmalloc(objsize);
        memset(p, 0, objsize);
    }
    free(p);
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = (size_t)arg_u(argc, argv, 1, 2);
    nwrites = arg_u(argc, argv, 2, 4000000);
    nreps = arg_u(argc, argv, 3, 40);
    objsize = (size_t)arg_u(argc, argv, 4, 8);
    if (nthreads < 1 || nthreads > 256 || objsize < 1)
        die("bad parameters");
    pthread_t th[256];
    job_t jobs[256];

    double t0 = now_s();
    for (size_t i = 0; i < nthreads; i++)
        xpthread_create(&th[i], active, NULL);
    for (size_t i = 0; i < nthreads; i++)
        xpthread_join(th[i]);
    double ta = now_s() - t0;

    double t1 = now_s();
    for (size_t i = 0; i < nthreads; i++) {
        jobs[i].given = xmalloc(objsize);
        memset(jobs[i].given, 0, objsize);
    }
    for (size_t i = 0; i < nthreads; i++)
        xpthread_create(&th[i], passive, &jobs[i]);
    for (size_t i = 0; i < nthreads; i++)
        xpthread_join(th[i]);
    double tp = now_s() - t1;

    printf("time_s=%.4f active_s=%.4f passive_s=%.4f", ta + tp, ta, tp);
    print_tail();
    return 0;
}
