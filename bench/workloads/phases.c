/*
 * phases - does memory go back to the OS after a program's peak?
 *
 * 1. Build `total` bytes of small objects (16-256 B) in `phases` phases,
 *    each phase allocated one after the other and kept in its own table.
 * 2. Free every phase but one in the middle, whole phase by whole phase
 *    (with the default 20 phases that frees 95% of the objects).
 * 3. Stay lightly busy for `busy_s` seconds: bursts of small alloc/free on a
 *    small ring of objects with 1 ms pauses - the kind of activity a service
 *    has after a load spike, which gives an allocator the chance to purge.
 * 4. Report the RSS as the kernel counts it (/proc/self/statm resident x
 *    page size) as rss_after_kb and as a percentage of the peak RSS.
 * The objects of the surviving phase are checked at the end.
 *
 * usage: phases [total=1g] [phases=20] [busy_s=2] [seed=7]
 */
#include "common.h"

typedef struct { void **p; uint16_t *n; size_t count; } phase_t;

int main(int argc, char **argv)
{
    unsigned long long total = arg_u(argc, argv, 1, 1ull << 30);
    size_t nph = (size_t)arg_u(argc, argv, 2, 20);
    double busy = arg_f(argc, argv, 3, 2.0);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 4, 7));
    if (nph < 2 || nph > 1000)
        die("bad parameters");

    phase_t *ph = xmalloc(nph * sizeof *ph);
    unsigned long long per_phase = total / nph;
    size_t cap = (size_t)(per_phase / 16) + 16; /* enough for the smallest objects */
    double t0 = now_s();
    for (size_t i = 0; i < nph; i++) {
        unsigned long long bytes = 0;
        ph[i].p = xmalloc(cap * sizeof(void *));
        ph[i].n = xmalloc(cap * sizeof(uint16_t));
        size_t c = 0;
        while (bytes < per_phase && c < cap) {
            size_t n = (size_t)rng_range(&r, 16, 256);
            ph[i].p[c] = xmalloc(n);
            ph[i].n[c] = (uint16_t)n;
            stamp_write(ph[i].p[c], n);
            bytes += n;
            c++;
        }
        ph[i].count = c;
    }
    double t_build = now_s() - t0;
    long rss_peak_phase = rss_now_kb();
    size_t keep = nph / 2;
    double t1 = now_s();
    unsigned long long kept_bytes = 0;
    for (size_t i = 0; i < nph; i++) {
        if (i == keep) {
            for (size_t c = 0; c < ph[i].count; c++)
                kept_bytes += ph[i].n[c];
            continue;
        }
        for (size_t c = 0; c < ph[i].count; c++)
            free(ph[i].p[c]);
        free(ph[i].p);
        free(ph[i].n);
    }
    double t_free = now_s() - t1;

    /* lightly busy */
    enum { RING = 1024 };
    void *ring[RING];
    uint16_t rn[RING];
    for (int i = 0; i < RING; i++) {
        rn[i] = (uint16_t)rng_range(&r, 16, 256);
        ring[i] = xmalloc(rn[i]);
        stamp_write(ring[i], rn[i]);
    }
    double tb = now_s();
    unsigned long long busy_ops = 0;
    while (now_s() - tb < busy) {
        for (int k = 0; k < 2000; k++) {
            int i = (int)rng_below(&r, RING);
            stamp_check(ring[i], rn[i], "phases busy");
            free(ring[i]);
            rn[i] = (uint16_t)rng_range(&r, 16, 256);
            ring[i] = xmalloc(rn[i]);
            stamp_write(ring[i], rn[i]);
        }
        busy_ops += 2000;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    long rss_after = rss_now_kb();
    long peak = peak_rss_kb();
    if (peak < rss_after) /* the kernel's high-water mark is updated lazily */
        peak = rss_after;

    for (int i = 0; i < RING; i++)
        free(ring[i]);
    for (size_t c = 0; c < ph[keep].count; c++) {
        stamp_check(ph[keep].p[c], ph[keep].n[c], "phases kept");
        free(ph[keep].p[c]);
    }
    free(ph[keep].p);
    free(ph[keep].n);
    free(ph);
    printf("time_s=%.4f build_s=%.4f free_s=%.4f busy_ops=%llu kept_kb=%llu rss_built_kb=%ld "
           "rss_after_kb=%ld rss_after_pct=%.1f",
           t_build + t_free, t_build, t_free, busy_ops, kept_bytes / 1024, rss_peak_phase, rss_after,
           peak > 0 ? 100.0 * (double)rss_after / (double)peak : 0.0);
    print_tail();
    return 0;
}
