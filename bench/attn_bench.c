/*
 * Attention alone (cpu_attention): n_tok new tokens of one sequence over a cache of depth
 * positions, the shape of one layer, timed over rounds. Prints the best and median time and
 * the multiply-add rate (scores and value sums: 2 * head_dim per visible position per head).
 * The next turn of a conversation (tens of tokens over thousands cached) spends most of its
 * prefill here.
 *
 *   build/bench/attn_bench N_TOK DEPTH N_HEAD N_HEAD_KV HEAD_DIM THREADS [N_SWA] [ROUNDS]
 *   e.g. build/bench/attn_bench 48 4200 4 1 256 2      (Gemma 3 270M's global layers)
 */
#include "core/alloc.h"
#include "cpu/ops.h"
#include "cpu/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: attn_bench N_TOK DEPTH N_HEAD N_HEAD_KV HEAD_DIM THREADS "
                        "[N_SWA] [ROUNDS]\n");
        return 2;
    }
    const int64_t n_tok = atoll(argv[1]), depth = atoll(argv[2]), nh = atoll(argv[3]);
    const int64_t nkv = atoll(argv[4]), hd = atoll(argv[5]);
    const int threads = atoi(argv[6]);
    const int64_t swa = argc > 7 ? atoll(argv[7]) : 0;
    const int rounds = argc > 8 ? atoi(argv[8]) : 20;
    if (n_tok < 1 || depth < 0 || nh < 1 || nkv < 1 || nh % nkv || hd < 1 || threads < 1 ||
        rounds < 1 || rounds > 1000) {
        fprintf(stderr, "attn_bench: bad arguments\n");
        return 2;
    }
    const int64_t rows = depth + n_tok, stride = nkv * hd;
    float *q = ob_alloc((size_t)(n_tok * nh * hd), sizeof(float));
    float *out = ob_alloc((size_t)(n_tok * nh * hd), sizeof(float));
    uint16_t *k = ob_alloc((size_t)(rows * stride), 2), *v = ob_alloc((size_t)(rows * stride), 2);
    float *scratch = ob_alloc(cpu_attn_scratch_floats(rows, hd, threads), sizeof(float));
    cpu_pool *pool;
    if (!q || !out || !k || !v || !scratch || cpu_pool_new(threads, &pool, NULL)) {
        fprintf(stderr, "attn_bench: out of memory\n");
        return 1;
    }
    uint32_t r = 1;
    for (int64_t i = 0; i < n_tok * nh * hd; i++) q[i] = (float)((r = r * 1664525u + 1013904223u) >> 9) * 1e-7f - 0.4f;
    for (int64_t i = 0; i < rows * stride; i++) {
        k[i] = cpu_f32_to_f16((float)((r = r * 1664525u + 1013904223u) >> 9) * 1e-7f - 0.4f);
        v[i] = cpu_f32_to_f16((float)((r = r * 1664525u + 1013904223u) >> 9) * 1e-7f - 0.4f);
    }
    cpu_attn_args a = {.q = q, .k = k, .v = v, .out = out, .n_tok = n_tok, .pos0 = depth,
                       .n_head = nh, .n_head_kv = nkv, .head_dim = hd, .kv_stride = stride,
                       .scale = 0.0625f, .scratch = scratch, .n_swa = swa};
    double t[1000], macs = 0;
    for (int64_t i = 0; i < n_tok; i++) {
        const int64_t p = depth + i, seen = swa > 0 && swa < p + 1 ? swa : p + 1;
        macs += 2.0 * (double)(seen * hd * nh);
    }
    cpu_attention(pool, &a); /* warm */
    for (int i = 0; i < rounds; i++) {
        const double t0 = now();
        cpu_attention(pool, &a);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)rounds, sizeof *t, by_value);
    printf("attn n_tok %lld depth %lld heads %lld/%lld hd %lld swa %lld threads %d: best %.3f ms, "
           "median %.3f ms, %.1f G multiply-adds/s (best)\n",
           (long long)n_tok, (long long)depth, (long long)nh, (long long)nkv, (long long)hd,
           (long long)swa, threads, t[0] * 1e3, t[rounds / 2] * 1e3, macs / t[0] * 1e-9);
    cpu_pool_free(pool);
    ob_free(q), ob_free(out), ob_free(k), ob_free(v), ob_free(scratch);
    return 0;
}
