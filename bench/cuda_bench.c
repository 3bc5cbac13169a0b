/*
 * Micro-benchmark of the CUDA kernels at Llama 3.1 8B shapes: decode matrix-vector products
 * (weight GB/s, to compare with the card's memory bandwidth), prefill matrix products at 512
 * tokens (TFLOP/s), and decode attention over a long F16 cache (KV GB/s). Without a GPU it
 * prints the device layer's reason and exits 0.
 *
 *   build/bench/cuda_bench [type names, default Q4_K,Q8_0] [seconds per case, default 0.5]
 */
#include "cuda/cuda_backend.h"

#include "core/alloc.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rngf(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / 8388608.0f - 1.0f;
}

/* (n_in, n_out) of the 8B model's matrices: q/o, k/v, gate/up, down, output. */
static const int64_t SHAPES[][2] = {{4096, 4096}, {4096, 1024}, {4096, 14336}, {14336, 4096},
                                    {4096, 128256}};

/* Runs fn until secs pass (after one warm-up call); returns seconds per call, or -1. */
typedef ob_status (*bench_fn)(cuda_ctx *c, void *arg, ob_err *err);
static double timed(cuda_ctx *c, bench_fn fn, void *arg, double secs) {
    ob_err err;
    if (fn(c, arg, &err) || cuda_ctx_sync(c, &err)) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        return -1;
    }
    int64_t n = 0;
    double t0 = now(), t;
    do {
        if (fn(c, arg, &err)) return -1;
        n++;
        if (n % 8 == 0 && cuda_ctx_sync(c, &err)) return -1;
    } while ((t = now() - t0) < secs || n % 8);
    if (cuda_ctx_sync(c, &err)) return -1;
    return (now() - t0) / (double)n;
}

typedef struct {
    cuda_weight w;
    float *x, *y;
    int64_t n_tok;
    int flip; /* calls alternate between two activation rows */
} mm_arg;

/* Each call reads another activation row than the last, as a model's products do, so the
 * decode figure includes quantizing it (a repeated row is quantized once, matvec_q8.cu). */
static ob_status run_mm(cuda_ctx *c, void *a, ob_err *err) {
    mm_arg *m = a;
    m->flip ^= 1;
    const float *x = m->x + (m->flip && m->n_tok == 1 ? m->w.n_in : 0);
    return cuda_matmul(c, m->y, &m->w, x, m->n_tok, err);
}

/* One weight shape of one type: decode GB/s and prefill TFLOP/s. */
static void bench_weight(cuda_ctx *c, const quant_traits *qt, int64_t n_in, int64_t n_out,
                         float *xd, float *yd, double secs) {
    size_t row = (size_t)(n_in / qt->block_size) * qt->type_size, bytes = row * (size_t)n_out;
    uint8_t *host = ob_alloc(bytes, 1);
    float *src = ob_alloc((size_t)n_in, sizeof(float));
    if (!host || !src) goto out;
    for (int64_t i = 0; i < n_in; i++) src[i] = rngf();
    /* one random row repeated: the kernels' speed does not depend on the values */
    qt->from_f32(src, host, n_in);
    for (int64_t r = 1; r < n_out; r++) memcpy(host + (size_t)r * row, host, row);
    mm_arg a = {.x = xd, .y = yd};
    ob_err err;
    if (cuda_weight_upload(c, "bench", host, qt->type, n_in, n_out, &a.w, &err)) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        goto out;
    }
    a.n_tok = 1;
    double t1 = timed(c, run_mm, &a, secs);
    a.n_tok = 512;
    double tp = timed(c, run_mm, &a, secs);
    printf("%-7s %6lld x %-6lld  decode %8.1f us %7.1f GB/s   prefill-512 %8.2f ms %6.1f TFLOP/s\n",
           qt->name, (long long)n_in, (long long)n_out, t1 * 1e6, (double)bytes / t1 / 1e9,
           tp * 1e3, 2.0 * 512 * (double)n_in * (double)n_out / tp / 1e12);
    cuda_weight_free(c, &a.w);
out:
    ob_free(host);
    ob_free(src);
}

static ob_status run_attn(cuda_ctx *c, void *a, ob_err *err) {
    return cuda_attention(c, (const cuda_attn_args *)a, err);
}

/* Decode attention (32 heads over 8 KV heads of 128) at several cache lengths. */
static void bench_attention(cuda_ctx *c, double secs) {
    const int64_t n_ctx = 32768, stride = 8 * 128;
    void *k = NULL, *v = NULL, *q = NULL, *o = NULL;
    ob_err err;
    if (cuda_buf_alloc(c, (size_t)(n_ctx * stride) * 2, "k", &k, &err) ||
        cuda_buf_alloc(c, (size_t)(n_ctx * stride) * 2, "v", &v, &err) ||
        cuda_buf_alloc(c, 32 * 128 * 4, "q", &q, &err) ||
        cuda_buf_alloc(c, 32 * 128 * 4, "o", &o, &err) ||
        cuda_buf_zero(c, k, (size_t)(n_ctx * stride) * 2, &err) ||
        cuda_buf_zero(c, v, (size_t)(n_ctx * stride) * 2, &err) ||
        cuda_buf_zero(c, q, 32 * 128 * 4, &err)) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        goto out;
    }
    for (int64_t n_kv = 512; n_kv <= n_ctx; n_kv *= 4) {
        cuda_attn_args a = {q, k, v, o, 1, n_kv - 1, 32, 8, 128, stride,
                            1.0f / sqrtf(128.0f), NULL};
        double t = timed(c, run_attn, &a, secs);
        printf("attention decode n_kv %6lld  %8.1f us %7.1f GB/s of KV\n", (long long)n_kv,
               t * 1e6, (double)(n_kv * stride * 2 * 2) / t / 1e9);
    }
out:
    cuda_buf_free(c, k);
    cuda_buf_free(c, v);
    cuda_buf_free(c, q);
    cuda_buf_free(c, o);
}

static ob_status run_sync(cuda_ctx *c, void *a, ob_err *err) { return cuda_ctx_sync(c, err); }

/* What a decode step pays per op and per step apart from the kernels' work: a product too
 * small to take measurable device time (the launch and its host-side glue), and a
 * synchronization with nothing queued (the round trip each token's logits wait for). */
static void bench_floor(cuda_ctx *c, float *xd, float *yd, double secs) {
    const quant_traits *qt = quant_traits_ref(OB_QTYPE_Q8_0);
    const int64_t n = 256;
    size_t row = (size_t)(n / qt->block_size) * qt->type_size;
    uint8_t *host = ob_calloc((size_t)n, row);
    mm_arg a = {.x = xd, .y = yd, .n_tok = 1};
    ob_err err;
    if (!host || cuda_weight_upload(c, "floor", host, qt->type, n, n, &a.w, &err)) {
        ob_free(host);
        return;
    }
    double t = timed(c, run_mm, &a, secs), ts = timed(c, run_sync, NULL, secs);
    printf("floor: a 256 x 256 product %.2f us per call; an idle synchronization %.2f us\n",
           t * 1e6, ts * 1e6);
    cuda_weight_free(c, &a.w);
    ob_free(host);
}

int main(int argc, char **argv) {
    const char *types = argc > 1 ? argv[1] : "Q4_K,Q8_0";
    double secs = argc > 2 ? atof(argv[2]) : 0.5;
    cuda_ctx *c = NULL;
    ob_err err;
    if (cuda_ctx_new(0, &c, &err)) {
        printf("cuda_bench: %s\n", err.msg);
        return 0;
    }
    cuda_device_info info;
    if (!cuda_device_get_info(0, &info, &err))
        printf("%s, %d SMs, %.1f GiB, cuBLAS %s\n", info.name, info.sm_count,
               (double)info.mem_total / (1 << 30), cuda_ctx_has_cublas(c) ? "yes" : "no");
    void *xd = NULL, *yd = NULL;
    if (cuda_buf_alloc(c, (size_t)512 * 14336 * 4, "x", &xd, &err) ||
        cuda_buf_alloc(c, (size_t)512 * 128256 * 4, "y", &yd, &err) ||
        cuda_buf_zero(c, xd, (size_t)512 * 14336 * 4, &err)) {
        fprintf(stderr, "cuda_bench: %s\n", err.msg);
        return 1;
    }
    bench_floor(c, xd, yd, secs);
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++) {
        const quant_traits *qt = quant_traits_ref(t);
        if (!qt || !qt->from_f32 || !cuda_type_supported(t)) continue;
        char key[32];
        snprintf(key, sizeof key, ",%s,", qt->name);
        char list[256];
        snprintf(list, sizeof list, ",%s,", types);
        if (!strstr(list, key) && strcmp(types, "all")) continue;
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
            bench_weight(c, qt, SHAPES[s][0], SHAPES[s][1], xd, yd, secs);
    }
    bench_attention(c, secs);
    cuda_buf_free(c, xd);
    cuda_buf_free(c, yd);
    cuda_ctx_free(c);
    return 0;
}
