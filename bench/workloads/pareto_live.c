/*
 * pareto_live - heavy-tailed sizes up to 1 KiB with a large live set.
 *
 * Sizes follow a Pareto law (shape alpha, scale 8 B) truncated at 1024 B, so
 * most requests are tiny and a few are near 1 KiB - the shape seen in
 * interpreters and document stores.  First `live` objects are allocated, then
 * `ops` times a random live object is checked, freed and replaced by a new one
 * with a new size.  The large live set stresses cache/TLB locality of the
 * allocator's metadata and its memory overhead (see peak RSS).
 *
 * usage: pareto_live [ops=8e6] [live=2e6] [alpha=1.3] [seed=2]
 */
#include "common.h"
#include <math.h>

typedef struct { void *p; uint32_t n; } obj_t;

static size_t pareto(rng_t *r, double inv_alpha)
{
    double u = 1.0 - rng_unit(r); /* (0,1] */
    double x = 8.0 * pow(u, -inv_alpha);
    if (x > 1024.0)
        x = 1024.0;
    return (size_t)x;
}

int main(int argc, char **argv)
{
    unsigned long long ops = arg_u(argc, argv, 1, 8000000ull);
    size_t live = (size_t)arg_u(argc, argv, 2, 2000000);
    double alpha = arg_f(argc, argv, 3, 1.3);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 4, 2));
    if (live == 0 || alpha <= 0)
        die("bad parameters");
    double inv_alpha = 1.0 / alpha;

    obj_t *o = xmalloc(live * sizeof *o);
    double t0 = now_s();
    unsigned long long bytes = 0;
    for (size_t i = 0; i < live; i++) {
        o[i].n = (uint32_t)pareto(&r, inv_alpha);
        o[i].p = xmalloc(o[i].n);
        stamp_write(o[i].p, o[i].n);
        bytes += o[i].n;
    }
    for (unsigned long long k = 0; k < ops; k++) {
        obj_t *s = &o[rng_below(&r, live)];
        stamp_check(s->p, s->n, "pareto_live");
        free(s->p);
        bytes -= s->n;
        s->n = (uint32_t)pareto(&r, inv_alpha);
        s->p = xmalloc(s->n);
        stamp_write(s->p, s->n);
        bytes += s->n;
    }
    long rss = rss_now_kb();
    for (size_t i = 0; i < live; i++) {
        stamp_check(o[i].p, o[i].n, "pareto_live final");
        free(o[i].p);
    }
    double t = now_s() - t0;
    free(o);
    unsigned long long total = live + ops;
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f live_kb=%llu live_rss_kb=%ld", t, total,
           (double)total / t, bytes / 1024, rss);
    print_tail();
    return 0;
}
