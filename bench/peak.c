/*
 * Peak probe: the two limits a CPU matmul runs into. Prefill (many prompt rows per weight) is
 * bound by int8 multiply-add throughput, decode (one row, every weight read once per token) by
 * read bandwidth; bench/run.sh quotes each benchmark row as a share of its limit.
 *
 * int8 multiply-adds per second, for each instruction form this CPU runs (after OB_ISA), with
 * 1..T threads each running independent accumulator chains on registers (no memory traffic):
 *   avx2      VPMADDUBSW + VPADDW, 32 byte products per pair: the AVX2 kernels' inner step
 *             (repack_avx2.c sums several products in int16 before widening)
 *   avxvnni   VEX VPDPBUSD on 256-bit registers, 32 products (AVX-VNNI CPUs)
 *   avx512    EVEX VPDPBUSD on 512-bit registers, 64 products (AVX-512 VNNI)
 * and the read bandwidth of T threads streaming their slices of a buffer far larger than the
 * caches with 256-bit (avx2) and 512-bit (avx512) loads. One multiply-add counts as one
 * operation. Each thread's rate is its work over its own CPU time (a thread of a shared machine
 * that waits for a core does not count the wait), the threads' rates add up, and each figure
 * is the best of P passes.
 *
 *   build/bench/peak [threads, default 2] [MiB to read, default 1024] [passes, default 5] [--json]
 */
#include "core/alloc.h"
#include "core/cpu_features.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PEAK_ITERS 20000000L /* loop trips per thread and pass: ~10-40 ms */

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct job {
    int kind;          /* PEAK_* */
    long iters;        /* int8 loops: trips */
    const void *p;     /* reads: this thread's slice */
    size_t bytes;
    uint64_t sink;     /* a result, so nothing is optimised away */
    double secs;       /* CPU time the work took */
} job;

enum { PEAK_AVX2, PEAK_AVXVNNI, PEAK_AVX512, PEAK_READ256, PEAK_READ512, PEAK_KINDS };
static const char *const KIND_NAMES[PEAK_KINDS] = {"avx2", "avxvnni", "avx512", "avx2",
                                                   "avx512"};
/* int8 multiply-adds per loop trip: 6 chains (CHAINS) x 32 or 64 */
static const double OPS_PER_ITER[3] = {6 * 32, 6 * 32, 6 * 64};

#if defined(__x86_64__)
/* CHAINS independent accumulators hide the instruction latency; each chain multiplies its own
 * input register, which an empty asm statement "changes" every trip, so the compiler can
 * neither hoist the products out of the loop nor merge the chains' identical products. */
#define CHAINS 6
#define TOUCH6(x) __asm__ volatile("" : "+x"(x[0]), "+x"(x[1]), "+x"(x[2]), "+x"(x[3]), \
                                   "+x"(x[4]), "+x"(x[5]))
#define TOUCH6V(x) __asm__ volatile("" : "+v"(x[0]), "+v"(x[1]), "+v"(x[2]), "+v"(x[3]), \
                                    "+v"(x[4]), "+v"(x[5]))

__attribute__((target("avx2"))) static uint64_t run_avx2(long iters) {
    const __m256i b = _mm256_set1_epi8(-2);
    __m256i x[CHAINS], acc[CHAINS];
#pragma GCC unroll 8
    for (int k = 0; k < CHAINS; k++) x[k] = _mm256_set1_epi8((char)(3 + k)), acc[k] = b;
    for (long i = 0; i < iters; i++) {
        TOUCH6(x);
#pragma GCC unroll 8
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm256_add_epi16(acc[k], _mm256_maddubs_epi16(x[k], b));
    }
    __m256i s = acc[0];
#pragma GCC unroll 8
    for (int k = 1; k < CHAINS; k++) s = _mm256_xor_si256(s, acc[k]);
    return (uint64_t)_mm256_extract_epi64(s, 0);
}

__attribute__((target("avx2,avxvnni"))) static uint64_t run_avxvnni(long iters) {
    const __m256i b = _mm256_set1_epi8(-2);
    __m256i x[CHAINS], acc[CHAINS];
#pragma GCC unroll 8
    for (int k = 0; k < CHAINS; k++) x[k] = _mm256_set1_epi8((char)(3 + k)), acc[k] = b;
    for (long i = 0; i < iters; i++) {
        TOUCH6(x);
#pragma GCC unroll 8
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_dpbusd_avx_epi32(acc[k], x[k], b);
    }
    __m256i s = acc[0];
#pragma GCC unroll 8
    for (int k = 1; k < CHAINS; k++) s = _mm256_xor_si256(s, acc[k]);
    return (uint64_t)_mm256_extract_epi64(s, 0);
}

__attribute__((target("avx512f,avx512vnni"))) static uint64_t run_avx512(long iters) {
    const __m512i b = _mm512_set1_epi8(-2);
    __m512i x[CHAINS], acc[CHAINS];
#pragma GCC unroll 8
    for (int k = 0; k < CHAINS; k++) x[k] = _mm512_set1_epi8((char)(3 + k)), acc[k] = b;
    for (long i = 0; i < iters; i++) {
        TOUCH6V(x);
#pragma GCC unroll 8
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_dpbusd_epi32(acc[k], x[k], b);
    }
    __m512i s = acc[0];
#pragma GCC unroll 8
    for (int k = 1; k < CHAINS; k++) s = _mm512_xor_si512(s, acc[k]);
    return (uint64_t)_mm512_reduce_add_epi64(s);
}

/* Four independent sums so the loop is bound by loads. */
__attribute__((target("avx2"))) static uint64_t read256(const void *p, size_t bytes) {
    const __m256i *v = p;
    __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
    for (size_t i = 0; i + 4 <= bytes / 32; i += 4)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) s[k] = _mm256_add_epi64(s[k], _mm256_load_si256(v + i + k));
    __m256i t = _mm256_add_epi64(_mm256_add_epi64(s[0], s[1]), _mm256_add_epi64(s[2], s[3]));
    return (uint64_t)_mm256_extract_epi64(t, 0);
}

__attribute__((target("avx512f"))) static uint64_t read512(const void *p, size_t bytes) {
    const __m512i *v = p;
    __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    for (size_t i = 0; i + 4 <= bytes / 64; i += 4)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) s[k] = _mm512_add_epi64(s[k], _mm512_load_si512(v + i + k));
    return (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(s[0], s[1]), _mm512_add_epi64(s[2], s[3])));
}
#endif

static void *run_job(void *arg) {
    job *j = arg;
    const double t0 = cpu_now();
#if defined(__x86_64__)
    switch (j->kind) {
    case PEAK_AVX2: j->sink = run_avx2(j->iters); break;
    case PEAK_AVXVNNI: j->sink = run_avxvnni(j->iters); break;
    case PEAK_AVX512: j->sink = run_avx512(j->iters); break;
    case PEAK_READ256: j->sink = read256(j->p, j->bytes); break;
    case PEAK_READ512: j->sink = read512(j->p, j->bytes); break;
    }
#endif
    j->secs = cpu_now() - t0;
    return NULL;
}

static int kind_runs(int kind, const ob_cpu_features *f) {
    switch (kind) {
    case PEAK_AVX2: case PEAK_READ256: return f->avx2;
    case PEAK_AVXVNNI: return f->avxvnni;
    case PEAK_AVX512: return f->avx512vnni;
    case PEAK_READ512: return f->avx512f;
    }
    return 0;
}

static volatile uint64_t g_sink;

/* Best of `passes` runs of `threads` threads: int8 ops/s, or bytes/s read. */
static double measure(int kind, int threads, int passes, const uint8_t *buf, size_t bytes) {
    job jobs[256];
    pthread_t tid[256];
    const size_t per = bytes / (size_t)threads / 256 * 256;
    double best = 0;
    for (int r = 0; r < passes; r++) {
        for (int t = 0; t < threads; t++) {
            jobs[t] = (job){kind, PEAK_ITERS, buf + (size_t)t * per, per, 0, 0};
            pthread_create(&tid[t], NULL, run_job, &jobs[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            g_sink += jobs[t].sink;
        }
        double v = 0;
        for (int t = 0; t < threads; t++)
            v += (kind < PEAK_READ256 ? OPS_PER_ITER[kind] * PEAK_ITERS : (double)per) /
                 jobs[t].secs;
        if (v > best) best = v;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, passes = argc > 3 ? atoi(argv[3]) : 5;
    size_t mib = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
    int json = argc > 4 && strcmp(argv[4], "--json") == 0;
    if (threads < 1 || threads > 256 || passes < 1 || mib < 1) {
        fprintf(stderr, "usage: peak [threads] [MiB] [passes] [--json]\n");
        return 1;
    }
    const ob_cpu_features *f = ob_cpu_features_get();
    const size_t bytes = mib << 20;
    uint8_t *buf = ob_alloc_streamed(bytes); /* as the weights are held */
    if (!buf) {
        fprintf(stderr, "peak: out of memory for %zu MiB\n", mib);
        return 1;
    }
    memset(buf, 1, bytes); /* touch every page */
    if (json) printf("{\"threads\": %d, \"mib\": %zu, \"int8_gops\": {", threads, mib);
    const char *sep = "";
    for (int kind = PEAK_AVX2; kind <= PEAK_AVX512; kind++) {
        if (!kind_runs(kind, f)) continue;
        if (json) printf("%s\"%s\": [", sep, KIND_NAMES[kind]);
        for (int t = 1; t <= threads; t++) {
            double v = measure(kind, t, passes, buf, bytes) * 1e-9;
            if (json) printf("%s%.1f", t > 1 ? ", " : "", v);
            else printf("int8 multiply-add  %-8s %2d thread%s %8.1f G/s\n", KIND_NAMES[kind], t,
                        t > 1 ? "s" : " ", v);
        }
        if (json) printf("]");
        sep = ", ";
    }
    if (json) printf("}, \"read_gbs\": {");
    sep = "";
    for (int kind = PEAK_READ256; kind <= PEAK_READ512; kind++) {
        if (!kind_runs(kind, f)) continue;
        if (json) printf("%s\"%s\": [", sep, KIND_NAMES[kind]);
        for (int t = 1; t <= threads; t++) {
            double v = measure(kind, t, passes, buf, bytes) * 1e-9;
            if (json) printf("%s%.2f", t > 1 ? ", " : "", v);
            else printf("read bandwidth     %-8s %2d thread%s %8.2f GB/s\n", KIND_NAMES[kind], t,
                        t > 1 ? "s" : " ", v);
        }
        if (json) printf("]");
        sep = ", ";
    }
    if (json) printf("}}\n");
    ob_free_aligned(buf);
    return 0;
}
