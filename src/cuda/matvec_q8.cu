/*
 * Decode products (a few activation rows against a quantized weight) on 8-bit integers, for
 * the types cuda_q8.h unpacks. The activation rows are quantized first (k_quantize_q8, one
 * thread per 32-element chunk, into the context's q8 scratch; skipped while the scratch still
 * holds the same rows, see cuda_impl.cuh). Then k_matvec_q8 gives each weight row a block of
 * Q8_THREADS threads that take its chunks in turn, unpack each chunk once and dot it with
 * every activation row; the block's partial sums meet through warp shuffles and shared memory.
 *
 * One block per row keeps enough loads in flight for the card's bandwidth even for the narrow
 * products of a step (1024 rows of K and V): a warp per row (matmul.cu's k_matvec) left most
 * of the card idle there.
 */
#include "cuda/cuda_impl.cuh"

#include "cuda/cuda_q8.h"

#define Q8_THREADS 128

/* X(type id, chunk unpacker): the types with an int8 decode product. */
#define CUDA_Q8_TYPES(X)                                                                        \
    X(OB_QTYPE_Q4_0, cq_chunk_q4_0)                                                             \
    X(OB_QTYPE_Q4_1, cq_chunk_q4_1)                                                             \
    X(OB_QTYPE_Q5_0, cq_chunk_q5_0)                                                             \
    X(OB_QTYPE_Q5_1, cq_chunk_q5_1)                                                             \
    X(OB_QTYPE_Q8_0, cq_chunk_q8_0)                                                             \
    X(OB_QTYPE_Q4_K, cq_chunk_q4_k)                                                             \
    X(OB_QTYPE_Q5_K, cq_chunk_q5_k)                                                             \
    X(OB_QTYPE_Q6_K, cq_chunk_q6_k)                                                             \
    X(OB_QTYPE_IQ4_NL, cq_chunk_iq4_nl)                                                         \
    X(OB_QTYPE_IQ4_XS, cq_chunk_iq4_xs)

template <uint32_t T> __device__ void unpack(const uint8_t *row, int64_t c, cq_chunk *w);
#define CUDA_Q8_UNPACK(id, fn)                                                                  \
    template <>                                                                                 \
    __device__ __forceinline__ void unpack<id>(const uint8_t *row, int64_t c, cq_chunk *w) {    \
        fn(row, c, w);                                                                          \
    }
CUDA_Q8_TYPES(CUDA_Q8_UNPACK)

/* xq (total chunks x 8 ints), xs (total chunks: dx, sx) from x (n_tok rows of n_in floats);
 * chunk i is row i / nc, elements 32 (i % nc) onwards. */
__global__ void k_quantize_q8(const float *x, int64_t n_in, int64_t nc, int64_t total,
                              int32_t *xq, float2 *xs) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const float *src = x + (i / nc) * n_in + 32 * (i % nc);
    float v[32];
    if (((uintptr_t)src % 16) == 0) {
#pragma unroll
        for (int k = 0; k < 32; k += 4) {
            float4 a = *(const float4 *)(src + k);
            v[k] = a.x;
            v[k + 1] = a.y;
            v[k + 2] = a.z;
            v[k + 3] = a.w;
        }
    } else {
#pragma unroll
        for (int k = 0; k < 32; k++) v[k] = src[k];
    }
    int32_t q[8];
    float d, s;
    cq_quantize_chunk(v, q, &d, &s);
    int4 *dst = (int4 *)(xq + 8 * i);
    dst[0] = make_int4(q[0], q[1], q[2], q[3]);
    dst[1] = make_int4(q[4], q[5], q[6], q[7]);
    xs[i] = make_float2(d, s);
}

/* y (n_tok, n_out) = x W^T from the quantized rows of x; one block per row of W. */
template <uint32_t T>
__global__ void __launch_bounds__(Q8_THREADS)
    k_matvec_q8(const uint8_t *w, size_t row_size, int64_t nc, int64_t n_out,
                const int32_t *xq, const float2 *xs, int64_t n_tok, float *y) {
    const int64_t row = blockIdx.x;
    const uint8_t *r = w + row * row_size;
    float acc[MATVEC_MAX_TOK];
#pragma unroll
    for (int t = 0; t < MATVEC_MAX_TOK; t++) acc[t] = 0.0f;
    for (int64_t c = threadIdx.x; c < nc; c += Q8_THREADS) {
        cq_chunk wc;
        unpack<T>(r, c, &wc);
#pragma unroll
        for (int t = 0; t < MATVEC_MAX_TOK; t++) {
            if (t >= n_tok) break;
            const int64_t i = t * nc + c;
            const int4 *xp = (const int4 *)(xq + 8 * i);
            const int4 lo = __ldg(xp), hi = __ldg(xp + 1);
            const int32_t xv[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
            const float2 s = __ldg(xs + i);
            acc[t] += cq_dot(&wc, xv, s.x, s.y);
        }
    }
    __shared__ float part[Q8_THREADS / 32][MATVEC_MAX_TOK];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
    for (int t = 0; t < MATVEC_MAX_TOK; t++) {
        if (t >= n_tok) break;
        const float v = cuda_warp_sum(acc[t]);
        if (lane == 0) part[warp][t] = v;
    }
    __syncthreads();
    if (threadIdx.x < n_tok) {
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < Q8_THREADS / 32; k++) s += part[k][threadIdx.x];
        y[threadIdx.x * n_out + row] = s;
    }
}

extern "C" bool cuda_q8_type(uint32_t type) {
    switch (type) {
#define CUDA_Q8_CASE_TRUE(id, fn) case id:
        CUDA_Q8_TYPES(CUDA_Q8_CASE_TRUE)
        return true;
    default:
        return false;
    }
}

ob_status cuda_matvec_q8(cuda_ctx *c, float *y, const cuda_weight *w, const float *x,
                         int64_t n_tok, ob_err *err) {
    if (!cuda_q8_type(w->type) || w->n_in % 32 || n_tok < 1 || n_tok > MATVEC_MAX_TOK)
        return ob_fail(err, OB_ERR_ARG, "cuda: tensor '%s': no int8 decode product for %s, "
                       "%lld inputs, %lld rows", w->name ? w->name : "?",
                       gguf_qtype_name(w->type), (long long)w->n_in, (long long)n_tok);
    const int64_t nc = w->n_in / 32, total = n_tok * nc;
    const size_t xq_bytes = (size_t)total * 32;
    ob_status st = cuda_scratch(c, &c->q8_ws, &c->q8_ws_bytes,
                                xq_bytes + (size_t)total * sizeof(float2),
                                "decode activations", err);
    if (st) return st;
    int32_t *xq = (int32_t *)c->q8_ws;
    float2 *xs = (float2 *)((char *)c->q8_ws + xq_bytes);
    if (c->q8_gen != c->gen || c->q8_x != x || c->q8_n_in != w->n_in || c->q8_n_tok != n_tok) {
        k_quantize_q8<<<cuda_blocks(total, 128), 128, 0, c->stream>>>(x, w->n_in, nc, total, xq,
                                                                        xs);
        CUDA_LAUNCHED("k_quantize_q8");
        c->q8_x = x;
        c->q8_n_in = w->n_in;
        c->q8_n_tok = n_tok;
    }
    const uint8_t *wd = (const uint8_t *)w->data_dev;
    switch (w->type) {
#define CUDA_Q8_CASE_LAUNCH(id, fn)                                                             \
    case id:                                                                                    \
        k_matvec_q8<id><<<(unsigned)w->n_out, Q8_THREADS, 0, c->stream>>>(                      \
            wd, w->row_size, nc, w->n_out, xq, xs, n_tok, y);                                   \
        break;
        CUDA_Q8_TYPES(CUDA_Q8_CASE_LAUNCH)
    }
    CUDA_LAUNCHED("k_matvec_q8");
    /* the product wrote only y: x's quantized copy stays good unless y overlaps x */
    const char *xb = (const char *)x, *yb = (const char *)y;
    const bool overlap = yb < xb + (size_t)total * 32 * sizeof(float) &&
                         xb < yb + (size_t)(n_tok * w->n_out) * sizeof(float);
    c->q8_gen = overlap ? c->gen - 1 : c->gen;
    return OB_OK;
}
