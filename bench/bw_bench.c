/*
 * Memory read bandwidth probe: the ceiling for token generation, which streams every weight
 * once per token. T threads each sum their own slice of a buffer far larger than the caches
 * (as the matmul reads weights: sequential, one pass per repetition), and the best of R
 * passes is printed in GB/s (10^9 bytes). bench/run.sh divides weight bytes per token by it.
 *
 *   build/bench/bw_bench [threads, default 2] [MiB, default 1024] [passes, default 5] [--json]
 */
#include "core/alloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slice {
    const uint64_t *p; /* (n) words of this thread's part */
    size_t n;
    uint64_t sum;      /* kept so the reads cannot be optimised away */
} slice;

static volatile uint64_t g_sink; /* the sums, so no read is optimised away */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Eight independent sums so the loop is bound by loads, not by an add chain. */
static void *read_slice(void *arg) {
    slice *s = arg;
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= s->n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += s->p[i + k];
    s->sum = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, passes = argc > 3 ? atoi(argv[3]) : 5;
    size_t mib = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
    int json = argc > 4 && strcmp(argv[4], "--json") == 0;
    if (threads < 1 || threads > 256 || passes < 1 || mib < 1) {
        fprintf(stderr, "usage: bw_bench [threads] [MiB] [passes] [--json]\n");
        return 1;
    }
    size_t words = mib * 1024 * 1024 / 8;
    uint64_t *buf = ob_alloc_streamed(words * 8); /* as the weights are held */
    slice *sl = ob_calloc((size_t)threads, sizeof *sl);
    pthread_t *tid = ob_calloc((size_t)threads, sizeof *tid);
    if (!buf || !sl || !tid) {
        fprintf(stderr, "bw_bench: out of memory for %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < words; i++) buf[i] = i * 0x9e3779b97f4a7c15ull; /* touch every page */
    size_t per = words / (size_t)threads / 8 * 8;
    double best = 0;
    uint64_t total = 0;
    for (int r = 0; r < passes; r++) {
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            sl[t] = (slice){buf + (size_t)t * per, per, 0};
            pthread_create(&tid[t], NULL, read_slice, &sl[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            total += sl[t].sum;
        }
        double gbs = (double)per * 8 * threads / (now() - t0) * 1e-9;
        if (gbs > best) best = gbs;
    }
    if (json)
        printf("{\"threads\": %d, \"mib\": %zu, \"read_gbs\": %.2f}\n", threads, mib, best);
    else
        printf("read bandwidth, %d threads, %zu MiB: %.2f GB/s (best of %d)\n", threads, mib,
               best, passes);
    ob_free_aligned(buf);
    ob_free(sl);
    ob_free(tid);
    g_sink = total;
    return 0;
}
