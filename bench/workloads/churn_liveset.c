/*
 * churn_liveset - single-threaded small-object churn around a live set.
 *
 * Models a compiler building and rewriting an AST, or a bignum library
 * creating and dropping temporaries: a fixed number of live slots, each
 * holding one small object; every step replaces the object in a random slot
 * (check, free, allocate a new one of a new size, fill it).  Sizes: 70% are
 * 16-48 B (nodes, small limbs), 25% 49-128 B, 5% 129-512 B.  Every 64th step
 * also builds and drops a short chain of 8 temporaries (a subexpression).
 *
 * usage: churn_liveset [ops=25e6] [live=100000] [seed=1]
 */
#include "common.h"

static size_t pick_size(rng_t *r)
{
    uint64_t u = rng_below(r, 100);
    if (u < 70)
        return (size_t)rng_range(r, 16, 48);
    if (u < 95)
        return (size_t)rng_range(r, 49, 128);
    return (size_t)rng_range(r, 129, 512);
}

typedef struct { void *p; size_t n; } slot_t;

int main(int argc, char **argv)
{
    unsigned long long ops = arg_u(argc, argv, 1, 25000000ull);
    size_t live = (size_t)arg_u(argc, argv, 2, 100000);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 3, 1));
    if (live == 0)
        die("live must be > 0");

    slot_t *slots = xmalloc(live * sizeof *slots);
    double t0 = now_s();
    for (size_t i = 0; i < live; i++) {
        slots[i].n = pick_size(&r);
        slots[i].p = xmalloc(slots[i].n);
        stamp_write(slots[i].p, slots[i].n);
    }
    unsigned long long allocs = live;
    for (unsigned long long k = 0; k < ops; k++) {
        slot_t *s = &slots[rng_below(&r, live)];
        stamp_check(s->p, s->n, "churn_liveset");
        free(s->p);
        s->n = pick_size(&r);
        s->p = xmalloc(s->n);
        stamp_write(s->p, s->n);
        allocs++;
        if ((k & 63) == 0) {
            void *chain[8];
            for (int j = 0; j < 8; j++) {
                chain[j] = xmalloc(24 + 8 * (size_t)j);
                stamp_write(chain[j], 24 + 8 * (size_t)j);
            }
            for (int j = 7; j >= 0; j--) {
                stamp_check(chain[j], 24 + 8 * (size_t)j, "churn_liveset chain");
                free(chain[j]);
            }
            allocs += 8;
        }
    }
    long rss = rss_now_kb();
    for (size_t i = 0; i < live; i++) {
        stamp_check(slots[i].p, slots[i].n, "churn_liveset final");
        free(slots[i].p);
    }
    double t = now_s() - t0;
    free(slots);
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f live_rss_kb=%ld", t, allocs, (double)allocs / t, rss);
    print_tail();
    return 0;
}
