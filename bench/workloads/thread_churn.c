/*
 * thread_churn - many short-lived threads, each holding a little memory.
 *
 * Creates `threads` threads in waves of `concurrent`.  Each thread allocates
 * `objs` objects of 16-2048 B, fills them, frees all but `keep` of them and
 * exits; the kept objects outlive the thread and are freed by the main thread
 * after the join.  Measures per-thread setup/teardown cost in the allocator
 * (thread caches, heaps, arenas) and whether memory of dead threads is
 * reused (see rss).
 *
 * usage: thread_churn [threads=40000] [concurrent=4] [objs=100] [keep=4]
 */
#include "common.h"

typedef struct {
    size_t objs, keep;
    uint64_t seed;
    void *kept[64];
    uint32_t kept_n[64];
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed);
    void *p[1024];
    uint32_t n[1024];
    for (size_t i = 0; i < j->objs; i++) {
        n[i] = (uint32_t)rng_range(&r, 16, 2048);
        p[i] = xmalloc(n[i]);
        stamp_write(p[i], n[i]);
    }
    for (size_t i = 0; i < j->objs; i++) {
        if (i < j->keep) {
            j->kept[i] = p[i];
            j->kept_n[i] = n[i];
        } else {
            stamp_check(p[i], n[i], "thread_churn");
            free(p[i]);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long long total = arg_u(argc, argv, 1, 40000);
    size_t conc = (size_t)arg_u(argc, argv, 2, 4);
    size_t objs = (size_t)arg_u(argc, argv, 3, 100);
    size_t keep = (size_t)arg_u(argc, argv, 4, 4);
    if (conc < 1 || conc > 256 || objs > 1024 || keep > 64 || keep > objs)
        die("bad parameters");
    pthread_t th[256];
    job_t jobs[256];
    double t0 = now_s();
    unsigned long long made = 0;
    while (made < total) {
        size_t w = conc;
        if (total - made < w)
            w = (size_t)(total - made);
        for (size_t i = 0; i < w; i++) {
            jobs[i].objs = objs;
            jobs[i].keep = keep;
            jobs[i].seed = made + i;
            xpthread_create(&th[i], worker, &jobs[i]);
        }
        for (size_t i = 0; i < w; i++) {
            xpthread_join(th[i]);
            for (size_t k = 0; k < keep; k++) {
                stamp_check(jobs[i].kept[k], jobs[i].kept_n[k], "thread_churn kept");
                free(jobs[i].kept[k]);
            }
        }
        made += w;
    }
    double t = now_s() - t0;
    printf("time_s=%.4f ops=%llu threads_per_s=%.0f", t, total, (double)total / t);
    print_tail();
    return 0;
}
