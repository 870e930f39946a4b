/*
 * big_pass - big buffers allocated in one thread and freed in another.
 *
 * `threads` threads form a ring.  Each one, `bufs` times: allocates a buffer
 * of 256 KiB-4 MiB (log-uniform), writes all of it (memset with a
 * per-buffer byte, then a stamp), passes it to the next thread through a
 * lock-free ring, takes one buffer from the previous thread, checks it (the
 * stamp and one byte of every 4 KiB page) and frees it.  Models pipelines
 * that hand whole I/O buffers, decoded images or serialized messages to
 * another stage: every big free is remote, and the allocator must not
 * return each buffer to the kernel and fault it back in for the next one.
 *
 * usage: big_pass [threads=4] [bufs=3000 per thread] [seed=18]
 */
#include "common.h"

typedef struct { unsigned char *p; size_t n; } buf_t;

typedef struct {
    ring_t in;          /* buffers sent to this thread */
    ring_t *out;
    unsigned long long bufs;
    uint64_t seed;
    unsigned long long bytes;
    char pad[64];
} worker_t;

static unsigned char byte_of(const buf_t *b) { return (unsigned char)(stamp_of(b->p, b->n) >> 24) | 1; }

static void *run(void *arg)
{
    worker_t *w = arg;
    rng_t r;
    rng_seed(&r, w->seed);
    for (unsigned long long k = 0; k < w->bufs; k++) {
        buf_t *b = xmalloc(sizeof *b);
        b->n = rng_log_uniform(&r, 256u << 10, 4u << 20);
        b->p = xmalloc(b->n);
        memset(b->p, byte_of(b), b->n);
        stamp_write(b->p, b->n);
        w->bytes += b->n;
        ring_push(w->out, b);

        buf_t *c = ring_pop(&w->in);
        stamp_check(c->p, c->n, "big_pass");
        unsigned char v = byte_of(c);
        for (size_t off = 4096; off < c->n - 1; off += 4096)
            if (c->p[off] != v)
                die("big_pass: buffer %p (size %zu) corrupted at offset %zu", (void *)c->p, c->n, off);
        free(c->p);
        free(c);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    size_t nt = (size_t)arg_u(argc, argv, 1, 4);
    unsigned long long bufs = arg_u(argc, argv, 2, 3000);
    uint64_t seed = arg_u(argc, argv, 3, 18);
    if (nt < 2 || nt > 64)
        die("bad parameters (2-64 threads)");
    /* a thread is at most nthreads buffers ahead of its successor, so rings
       of that capacity never fill for good */
    size_t cap = 4;
    while (cap < nt)
        cap *= 2;
    worker_t *W = xmalloc(nt * sizeof *W);
    pthread_t th[64];
    for (size_t i = 0; i < nt; i++) {
        memset(&W[i], 0, sizeof W[i]);
        ring_init(&W[i].in, cap);
        W[i].bufs = bufs;
        W[i].seed = seed * 4099u + i;
    }
    for (size_t i = 0; i < nt; i++)
        W[i].out = &W[(i + 1) % nt].in;
    double t0 = now_s();
    for (size_t i = 0; i < nt; i++)
        xpthread_create(&th[i], run, &W[i]);
    unsigned long long bytes = 0;
    for (size_t i = 0; i < nt; i++) {
        xpthread_join(th[i]);
        bytes += W[i].bytes;
    }
    double t = now_s() - t0;
    for (size_t i = 0; i < nt; i++)
        ring_destroy(&W[i].in);
    free(W);
    unsigned long long total = bufs * nt;
    printf("time_s=%.4f threads=%zu ops=%llu ops_per_s=%.0f mib_per_s=%.0f", t, nt, total, (double)total / t,
           (double)bytes / 1048576.0 / t);
    print_tail();
    return 0;
}
