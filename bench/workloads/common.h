/*
 * common.h - small helpers shared by alloy's benchmark workloads.
 *
 * Every workload is a stand-alone program that uses only the standard
 * allocation API (malloc/free/realloc/...), so the allocator under test is
 * chosen from outside with LD_PRELOAD.  Each prints exactly one result line
 * on stdout made of key=value pairs, e.g.
 *     time_s=1.234 ops=1000000 ops_per_s=810372 rss_kb=5120 peak_rss_kb=6400 check=ok
 * and exits non-zero (after a message on stderr) when it finds corrupted
 * data, so a broken allocator is reported rather than measured.
 */
#ifndef ALLOY_BENCH_COMMON_H
#define ALLOY_BENCH_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define UNUSED_FN __attribute__((unused))

/* Keep the compiler from proving a block dead and removing a malloc/free pair. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static UNUSED_FN double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static UNUSED_FN __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FATAL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    exit(3);
}

/* Allocation failure is an error in every workload: sizes are bounded. */
static UNUSED_FN void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("malloc(%zu) returned NULL", n);
    return p;
}

static UNUSED_FN void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n);
    if (!p)
        die("realloc(%p, %zu) returned NULL", old, n);
    return p;
}

/* Positional numeric argument i (1-based) or the default. Accepts 1e6, 64k, 2m, 1g. */
static UNUSED_FN unsigned long long arg_u(int argc, char **argv, int i, unsigned long long def)
{
    if (i >= argc)
        return def;
    char *end = NULL;
    errno = 0;
    double v = strtod(argv[i], &end);
    if (errno || end == argv[i] || v < 0)
        die("bad numeric argument %d: '%s'", i, argv[i]);
    switch (*end) {
    case 'k': case 'K': v *= 1024.0; end++; break;
    case 'm': case 'M': v *= 1024.0 * 1024.0; end++; break;
    case 'g': case 'G': v *= 1024.0 * 1024.0 * 1024.0; end++; break;
    default: break;
    }
    if (*end)
        die("bad numeric argument %d: '%s'", i, argv[i]);
    return (unsigned long long)v;
}

static UNUSED_FN double arg_f(int argc, char **argv, int i, double def)
{
    if (i >= argc)
        return def;
    char *end = NULL;
    double v = strtod(argv[i], &end);
    if (end == argv[i] || *end)
        die("bad numeric argument %d: '%s'", i, argv[i]);
    return v;
}

/* xorshift64* - small, fast, good enough for choosing sizes and slots. */
typedef struct { uint64_t s; } rng_t;

static UNUSED_FN void rng_seed(rng_t *r, uint64_t seed)
{
    /* splitmix64 step so that small seeds still give well-mixed states */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 1;
}

static UNUSED_FN uint64_t rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

__extension__ typedef unsigned __int128 bench_u128;

/* Uniform in [0, n) (multiply-shift, no division). */
static UNUSED_FN uint64_t rng_below(rng_t *r, uint64_t n)
{
    return (uint64_t)(((bench_u128)rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static UNUSED_FN uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_below(r, hi - lo + 1);
}

/* Uniform double in [0, 1). */
static UNUSED_FN double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Resident set size right now as the kernel counts it (statm resident pages). */
static UNUSED_FN long rss_now_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak resident set size of this process so far (kernel high-water mark). */
static UNUSED_FN long peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

/*
 * Object stamps: every workload writes a header into each block it allocates
 * and checks it before freeing, so overlapping or recycled-while-live blocks
 * are caught.  The header is 8 bytes (fits the smallest 8-byte requests);
 * blocks of 16 bytes or more also get a tail byte.
 */
static UNUSED_FN uint64_t stamp_of(const void *p, size_t n)
{
    uint64_t x = (uint64_t)(uintptr_t)p ^ ((uint64_t)n << 40) ^ 0xA5A5C3C3ull;
    return x * 0x9E3779B97F4A7C15ull;
}

static UNUSED_FN void stamp_write(void *p, size_t n)
{
    uint64_t s = stamp_of(p, n);
    if (n >= 8)
        memcpy(p, &s, 8);
    else
        memset(p, (int)(s & 0xff), n);
    if (n >= 16)
        ((unsigned char *)p)[n - 1] = (unsigned char)(s >> 56);
}

static UNUSED_FN void stamp_check(const void *p, size_t n, const char *where)
{
    uint64_t s = stamp_of(p, n), got = 0;
    int ok = 1;
    if (n >= 8) {
        memcpy(&got, p, 8);
        ok = got == s;
    } else {
        for (size_t i = 0; i < n; i++)
            ok &= ((const unsigned char *)p)[i] == (unsigned char)(s & 0xff);
    }
    if (n >= 16)
        ok &= ((const unsigned char *)p)[n - 1] == (unsigned char)(s >> 56);
    if (!ok)
        die("%s: corrupted block %p (size %zu): header %016" PRIx64 " expected %016" PRIx64,
            where, p, n, got, s);
}

static UNUSED_FN void xpthread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);
    if (e)
        die("pthread_create: %s", strerror(e));
}

static UNUSED_FN void xpthread_join(pthread_t t)
{
    int e = pthread_join(t, NULL);
    if (e)
        die("pthread_join: %s", strerror(e));
}

/*
 * Bounded single-producer single-consumer ring of pointers (lock-free).  A
 * side that finds the ring full (empty) spins briefly and then yields the
 * CPU, so that the other side gets to run on a loaded 2-core machine.
 */

typedef struct {
    size_t head __attribute__((aligned(64)));   /* next slot to pop (consumer) */
    size_t tail __attribute__((aligned(64)));   /* next slot to push (producer) */
    size_t mask __attribute__((aligned(64)));
    void **buf;
} ring_t;

static UNUSED_FN void ring_init(ring_t *q, size_t cap_pow2)
{
    if (cap_pow2 < 2 || (cap_pow2 & (cap_pow2 - 1)))
        die("ring capacity %zu is not a power of two >= 2", cap_pow2);
    q->head = q->tail = 0;
    q->mask = cap_pow2 - 1;
    q->buf = (void **)xmalloc(cap_pow2 * sizeof(void *));
}

static UNUSED_FN void ring_destroy(ring_t *q)
{
    free(q->buf);
    q->buf = NULL;
}

static UNUSED_FN void backoff(unsigned *spins)
{
    if (++*spins < 100)
        __builtin_ia32_pause();
    else
        sched_yield();
}

static UNUSED_FN int ring_try_push(ring_t *q, void *p)
{
    size_t t = q->tail;
    if (t - __atomic_load_n(&q->head, __ATOMIC_ACQUIRE) > q->mask)
        return 0;
    q->buf[t & q->mask] = p;
    __atomic_store_n(&q->tail, t + 1, __ATOMIC_RELEASE);
    return 1;
}

static UNUSED_FN void *ring_try_pop(ring_t *q)
{
    size_t h = q->head;
    if (h == __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE))
        return NULL;
    void *p = q->buf[h & q->mask];
    __atomic_store_n(&q->head, h + 1, __ATOMIC_RELEASE);
    return p;
}

static UNUSED_FN void ring_push(ring_t *q, void *p)
{
    unsigned spins = 0;
    while (!ring_try_push(q, p))
        backoff(&spins);
}

/* p must never be NULL (NULL means "empty"). */
static UNUSED_FN void *ring_pop(ring_t *q)
{
    unsigned spins = 0;
    void *p;
    while (!(p = ring_try_pop(q)))
        backoff(&spins);
    return p;
}

/* Log-uniform integer in [lo, hi]: every power of two of the range equally likely. */
static UNUSED_FN size_t rng_log_uniform(rng_t *r, size_t lo, size_t hi)
{
    double l = log((double)lo), h = log((double)hi + 1.0);
    size_t v = (size_t)exp(l + (h - l) * rng_unit(r));
    return v < lo ? lo : v > hi ? hi : v;
}

/* The common tail of every result line. */
static UNUSED_FN void print_tail(void)
{
    printf(" rss_kb=%ld peak_rss_kb=%ld check=ok\n", rss_now_kb(), peak_rss_kb());
    fflush(stdout);
}

#endif
