/*
 * pairs - same-size malloc/free pairs: the allocator's fast path.
 *
 * For each size in {16, 64, 512} bytes: a warm-up, then `iters` rounds of
 * p = malloc(size); write first and last byte; free(p).  A small window of
 * `depth` blocks is kept so the freed block is not always the one handed out
 * next (depth=1 is the pure pair).  Reports ns per malloc+free pair per size.
 *
 * usage: pairs [iters=40e6] [depth=1]
 */
#include "common.h"

static double run_size(size_t size, unsigned long long iters, size_t depth)
{
    void *win[64] = {0};
    for (size_t i = 0; i < depth; i++) {
        win[i] = xmalloc(size);
        stamp_write(win[i], size);
    }
    for (unsigned long long k = 0; k < 100000; k++) { /* warm-up */
        void *p = xmalloc(size);
        ESCAPE(p);
        free(p);
    }
    size_t w = 0;
    double t0 = now_s();
    for (unsigned long long k = 0; k < iters; k++) {
        unsigned char *p = xmalloc(size);
        p[0] = (unsigned char)k;
        p[size - 1] = (unsigned char)k;
        ESCAPE(p);
        if (depth > 1) {
            void *old = win[w];
            win[w] = p;
            w = (w + 1 == depth) ? 0 : w + 1;
            p = old;
        }
        free(p);
    }
    double t = now_s() - t0;
    for (size_t i = 0; i < depth; i++)
        free(win[i]);
    return t;
}

int main(int argc, char **argv)
{
    unsigned long long iters = arg_u(argc, argv, 1, 40000000ull);
    size_t depth = (size_t)arg_u(argc, argv, 2, 1);
    if (depth < 1 || depth > 64)
        die("depth must be 1..64");
    static const size_t sizes[] = {16, 64, 512};
    double total = 0, ns[3];
    for (int i = 0; i < 3; i++) {
        double t = run_size(sizes[i], iters, depth);
        ns[i] = t * 1e9 / (double)iters;
        total += t;
    }
    printf("time_s=%.4f ops=%llu ops_per_s=%.0f ns16=%.2f ns64=%.2f ns512=%.2f",
           total, 3 * iters, 3.0 * (double)iters / total, ns[0], ns[1], ns[2]);
    print_tail();
    return 0;
}
