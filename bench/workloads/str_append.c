/*
 * str_append - strings built by realloc appends, in random order.
 *
 * `strings` string buffers, each with its own final length drawn
 * log-uniformly from 16 B to `maxlen` (default 32 KiB: most strings stay
 * small, a few grow through every size class into large blocks).  Each step
 * picks a random string and appends 1-32 random-looking bytes to it with
 * realloc to the exact new length (len + 1 for a terminating 0), as naive
 * string building, JSON and log formatting code does.  After a realloc the
 * first byte and the previous last byte are checked (the old contents must
 * have moved along); when a string reaches its final length all of it is
 * checked, it is freed and restarted with a new final length; and one step
 * in 1,000 frees a random unfinished string early (an aborted request) and
 * restarts it.  Many strings grow at once, so a growing block's neighbours
 * are usually live.  The time and the peak RSS (measured by the harness)
 * are the results: an allocator that moves blocks too often is slow, one
 * that leaves growth room everywhere uses more memory.
 *
 * usage: str_append [appends=8e6] [strings=10000] [maxlen=32768] [seed=19]
 */
#include "common.h"

typedef struct {
    unsigned char *buf;
    uint32_t len, target, salt;
} str_t;

static unsigned char byte_at(uint32_t salt, size_t i)
{
    uint32_t x = (uint32_t)i * 2654435761u + salt;
    return (unsigned char)((x >> 24) | 1);  /* never 0 */
}

static void restart(rng_t *r, str_t *s, size_t maxlen)
{
    s->buf = NULL;
    s->len = 0;
    s->target = (uint32_t)rng_log_uniform(r, 16, maxlen);
    s->salt = (uint32_t)rng_next(r);
}

static void check_all(const str_t *s, const char *where)
{
    for (size_t i = 0; i < s->len; i++)
        if (s->buf[i] != byte_at(s->salt, i))
            die("%s: string %p (len %u) differs at byte %zu", where, (void *)s->buf, s->len, i);
    if (s->buf[s->len] != 0)
        die("%s: string %p (len %u) lost its terminator", where, (void *)s->buf, s->len);
}

int main(int argc, char **argv)
{
    unsigned long long appends = arg_u(argc, argv, 1, 8000000ull);
    size_t ns = (size_t)arg_u(argc, argv, 2, 10000);
    size_t maxlen = (size_t)arg_u(argc, argv, 3, 32768);
    rng_t r;
    rng_seed(&r, arg_u(argc, argv, 4, 19));
    if (ns < 1 || maxlen < 16 || maxlen > 0x7fffffff)
        die("bad parameters");
    str_t *s = xmalloc(ns * sizeof *s);
    for (size_t i = 0; i < ns; i++)
        restart(&r, &s[i], maxlen);
    unsigned long long moved = 0, finished = 0, aborted = 0;
    double t0 = now_s();
    for (unsigned long long k = 0; k < appends; k++) {
        str_t *x = &s[rng_below(&r, ns)];
        size_t add = (size_t)rng_range(&r, 1, 32);
        if (x->len + add > x->target)
            add = x->target - x->len;
        if (add == 0)
            add = 1;  /* target reached below: never happens with a fresh string */
        unsigned char *old = x->buf;
        unsigned char *nb = xrealloc(x->buf, x->len + add + 1);
        if (old && nb != old)
            moved++;
        if (x->len && (nb[0] != byte_at(x->salt, 0) || nb[x->len - 1] != byte_at(x->salt, x->len - 1)))
            die("str_append: string %p (len %u) lost its contents in realloc", (void *)nb, x->len);
        for (size_t i = 0; i < add; i++)
            nb[x->len + i] = byte_at(x->salt, x->len + i);
        x->len += (uint32_t)add;
        nb[x->len] = 0;
        x->buf = nb;
        if (x->len >= x->target) {
            check_all(x, "str_append");
            free(x->buf);
            restart(&r, x, maxlen);
            finished++;
        } else if (rng_below(&r, 1000) == 0) {
            str_t *y = &s[rng_below(&r, ns)];
            if (y->buf) {
                check_all(y, "str_append abort");
                free(y->buf);
                restart(&r, y, maxlen);
                aborted++;
            }
        }
    }
    long rss = rss_now_kb();
    unsigned long long live_bytes = 0;
    for (size_t i = 0; i < ns; i++) {
        if (s[i].buf) {
            check_all(&s[i], "str_append final");
            live_bytes += s[i].len;
            free(s[i].buf);
        }
    }
    double t = now_s() - t0;
    free(s);
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f moved_pct=%.1f finished=%llu aborted=%llu live_mib=%.1f "
           "live_rss_kb=%ld",
           t, appends, (double)appends / t, appends ? 100.0 * (double)moved / (double)appends : 0.0, finished,
           aborted, (double)live_bytes / 1048576.0, rss);
    print_tail();
    return 0;
}
