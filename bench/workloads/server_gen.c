/*
 * server_gen - a server's worker threads, replaced generation by generation.
 *
 * N worker threads each own a table of `slots` objects of 8-1000 B.  A worker
 * performs `ops` steps, each replacing the object in a random slot (check,
 * free, allocate, fill) - like a connection handler building and dropping
 * request state.  When a generation's workers exit, each table with its
 * surviving objects is handed to a worker of the next generation (shifted by
 * one), which keeps freeing them: memory allocated by threads that no longer
 * exist is freed by new threads, and objects migrate between thread caches.
 *
 * usage: server_gen [threads=4] [gens=60] [ops=300000] [slots=4000] [seed=3]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; } obj_t;

typedef struct {
    obj_t *table;
    size_t slots;
    unsigned long long ops;
    uint64_t seed;
} job_t;

static void *worker(void *arg)
{
    job_t *j = arg;
    rng_t r;
    rng_seed(&r, j->seed);
    for (unsigned long long k = 0; k < j->ops; k++) {
        obj_t *o = &j->table[rng_below(&r, j->slots)];
        stamp_check(o->p, o->n, "server_gen");
        free(o->p);
        o->n = (uint32_t)rng_range(&r, 8, 1000);
        o->p = xmalloc(o->n);
        stamp_write(o->p, o->n);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 4);
    unsigned long long gens = arg_u(argc, argv, 2, 60);
    unsigned long long ops = arg_u(argc, argv, 3, 300000);
    size_t slots = (size_t)arg_u(argc, argv, 4, 4000);
    uint64_t seed = arg_u(argc, argv, 5, 3);
    if (nt < 1 || nt > 256 || slots < 1)
        die("bad parameters");

    job_t jobs[256];
    pthread_t th[256];
    obj_t *tables[256];
    rng_t r;
    rng_seed(&r, seed);
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++) {
        tables[i] = xmalloc(slots * sizeof(obj_t));
        for (size_t s = 0; s < slots; s++) {
            tables[i][s].n = (uint32_t)rng_range(&r, 8, 1000);
            tables[i][s].p = xmalloc(tables[i][s].n);
            stamp_write(tables[i][s].p, tables[i][s].n);
        }
    }
    for (unsigned long long g = 0; g < gens; g++) {
        for (size_t i = 0; i < nt; i++) {
            /* worker i of this generation inherits the table of worker i+1 of the last */
            jobs[i].table = tables[(i + (size_t)g) % nt];
            jobs[i].slots = slots;
            jobs[i].ops = ops;
            jobs[i].seed = seed * 1000003u + g * 257u + i;
            xpthread_create(&th[i], worker, &jobs[i]);
        }
        for (size_t i = 0; i < nt; i++)
            xpthread_join(th[i]);
    }
    long rss = rss_now_kb();
    for (size_t i = 0; i < nt; i++) {
        for (size_t s = 0; s < slots; s++) {
            stamp_check(tables[i][s].p, tables[i][s].n, "server_gen final");
            free(tables[i][s].p);
        }
        free(tables[i]);
    }
    double t = now_s() - t0;
    unsigned long long total = gens * ops * nt;
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f live_rss_kb=%ld", t, total, (double)total / t, rss);
    print_tail();
    return 0;
}
