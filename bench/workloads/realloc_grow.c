/*
 * realloc_grow - many strings grown by realloc, interleaved.
 *
 * `strings` buffers are grown round-robin by appending 1-64 bytes at a time
 * until each reaches its own random target length (up to `maxlen`).  Half
 * of the strings call realloc for every append with the exact new length
 * (naive code: many small in-place growths or copies); the other half grow
 * their capacity by 1.5x (typical string builders).  Because the strings grow
 * interleaved, a block's neighbour is usually live, so growing in place needs
 * an allocator that leaves room or moves blocks cheaply.  At the end of each
 * round every string is verified byte for byte and freed.
 *
 * usage: realloc_grow [strings=20000] [maxlen=4096] [rounds=8] [seed=5]
 */
#include "common.h"

typedef struct {
    unsigned char *buf;
    size_t len, cap, target;
    uint32_t salt;
    int exact;
} str_t;

static unsigned char byte_at(const str_t *s, size_t i)
{
    return (unsigned char)((i * 131u + s->salt) >> 3);
}

int main(int argc, char **argv)
{
    size_t ns = (size_t)arg_u(argc, argv, 1, 20000);
    size_t maxlen = (size_t)arg_u(argc, argv, 2, 4096);
    unsigned long long rounds = arg_u(argc, argv, 3, 8);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 4, 5));
    if (ns < 1 || maxlen < 2)
        die("bad parameters");

    str_t *s = xmalloc(ns * sizeof *s);
    unsigned long long reallocs = 0, moved = 0;
    long peak_live_rss = 0;
    double t0 = now_s();
    for (unsigned long long rd = 0; rd < rounds; rd++) {
        for (size_t i = 0; i < ns; i++) {
            s[i].len = 0;
            s[i].cap = 0;
            s[i].buf = NULL;
            s[i].target = (size_t)rng_range(&r, 1, maxlen);
            s[i].salt = (uint32_t)rng_next(&r);
            s[i].exact = (int)(i & 1);
        }
        size_t active = ns;
        while (active) {
            active = 0;
            for (size_t i = 0; i < ns; i++) {
                str_t *x = &s[i];
                if (x->len >= x->target)
                    continue;
                size_t add = (size_t)rng_range(&r, 1, 64);
                if (x->len + add > x->target)
                    add = x->target - x->len;
                size_t need = x->len + add;
                if (need > x->cap) {
                    size_t ncap = x->exact ? need : (x->cap * 3 / 2 > need ? x->cap * 3 / 2 : need + 16);
                    unsigned char *nb = xrealloc(x->buf, ncap);
                    if (x->buf && nb != x->buf)
                        moved++;
                    x->buf = nb;
                    x->cap = ncap;
                    reallocs++;
                }
                for (size_t k = x->len; k < need; k++)
                    x->buf[k] = byte_at(x, k);
                x->len = need;
                if (x->len < x->target)
                    active++;
            }
        }
        long rss = rss_now_kb();
        if (rss > peak_live_rss)
            peak_live_rss = rss;
        for (size_t i = 0; i < ns; i++) {
            for (size_t k = 0; k < s[i].len; k++)
                if (s[i].buf[k] != byte_at(&s[i], k))
                    die("realloc_grow: string %zu byte %zu is %u, expected %u", i, k, s[i].buf[k],
                        byte_at(&s[i], k));
            free(s[i].buf);
        }
    }
    double t = now_s() - t0;
    free(s);
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f moved_pct=%.1f live_rss_kb=%ld", t, reallocs,
           (double)reallocs / t, reallocs ? 100.0 * (double)moved / (double)reallocs : 0.0, peak_live_rss);
    print_tail();
    return 0;
}
