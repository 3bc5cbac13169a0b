/*
 * The small ops of a transformer step on the device: RMSNorm, RoPE (normal and NeoX, with
 * Llama 3 frequency factors), SwiGLU / GeGLU, residual add, scale, bias add, softmax, the F16
 * KV-cache stores (rows in position order, or through a paged map) and greedy argmax. Each is
 * one kernel; rows map to blocks and elements to threads. The arithmetic
 * follows src/cpu/ops.c (ggml's definitions) in f32: sums are f32 tree reductions rather than
 * the CPU's double loops, which the tests' tolerances account for.
 */
#include "cuda/cuda_impl.cuh"

#include <cuda_fp16.h>
#include <math.h>

#define ROW_THREADS 256 /* threads per block for the per-row kernels */

/* Sum of v over the block (blockDim.x == ROW_THREADS); every thread gets the result. */
__device__ float block_sum(float v) {
    __shared__ float part[ROW_THREADS / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = cuda_warp_sum(v);
    __syncthreads(); /* part may still be read by a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < ROW_THREADS / 32 ? part[lane] : 0.0f;
    return cuda_warp_sum(v);
}

__device__ float block_max(float v) {
    __shared__ float part[ROW_THREADS / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = cuda_warp_max(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < ROW_THREADS / 32 ? part[lane] : -INFINITY;
    return cuda_warp_max(v);
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

__global__ void k_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    const float *xr = x + blockIdx.x * n;
    float *o = out + blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    const float s = 1.0f / sqrtf(ss / (float)n + eps);
    /* out may alias x: each element is read and written by the same thread */
    for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS) o[i] = xr[i] * s * w[i];
}

extern "C" ob_status cuda_rmsnorm(cuda_ctx *c, float *out, const float *x, const float *w,
                                  int64_t n_rows, int64_t n, float eps, ob_err *err) {
    CUDA_USE(c);
    if (n_rows <= 0 || n <= 0) return OB_OK;
    k_rmsnorm<<<(unsigned)n_rows, ROW_THREADS, 0, c->stream>>>(out, x, w, n, eps);
    CUDA_LAUNCHED("k_rmsnorm");
    return OB_OK;
}

/* ---- RoPE --------------------------------------------------------------------------------- */

/* One thread per rotated pair: (token, head, pair index i < n_dims / 2). theta = pos *
 * freq_scale * base^(-2i / n_dims) / ff[i]; normal mode rotates (2i, 2i+1), NeoX (i, i + n/2). */
__global__ void k_rope(float *x, int64_t n_tok, int64_t n_head, int64_t head_dim,
                       const int32_t *pos, int64_t n_dims, float base, float freq_scale,
                       const float *ff, int neox) {
    const int64_t half = n_dims / 2;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tok * n_head * half) return;
    const int64_t i = idx % half, th = idx / half, t = th / n_head;
    float *hx = x + th * head_dim;
    /* base^(-2/n_dims) raised to i, in f32, as ggml's CUDA backend computes it */
    const float theta_scale = powf(base, -2.0f / (float)n_dims);
    float theta = (float)pos[t] * powf(theta_scale, (float)i) * freq_scale;
    if (ff) theta /= ff[i];
    float sn, cs;
    sincosf(theta, &sn, &cs);
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = hx[a], x1 = hx[b];
    hx[a] = x0 * cs - x1 * sn;
    hx[b] = x0 * sn + x1 * cs;
}

extern "C" ob_status cuda_rope(cuda_ctx *c, float *x, int64_t n_tok, int64_t n_head,
                               int64_t head_dim, const int32_t *pos, const cuda_rope_params *rp,
                               ob_err *err) {
    CUDA_USE(c);
    if (rp->n_dims <= 0 || rp->n_dims > head_dim || rp->n_dims % 2)
        return ob_fail(err, OB_ERR_ARG, "cuda: rope: n_dims %lld, expected even and <= %lld",
                       (long long)rp->n_dims, (long long)head_dim);
    const int64_t total = n_tok * n_head * (rp->n_dims / 2);
    if (total <= 0) return OB_OK;
    k_rope<<<cuda_blocks(total, 256), 256, 0, c->stream>>>(x, n_tok, n_head, head_dim, pos,
                                                           rp->n_dims, rp->freq_base,
                                                           rp->freq_scale, rp->freq_factors_dev,
                                                           rp->neox ? 1 : 0);
    CUDA_LAUNCHED("k_rope");
    return OB_OK;
}

/* ---- element-wise ------------------------------------------------------------------------- */

/* op 0: out = silu(g) * u; op 1: out = gelu_tanh(g) * u; op 2: out = g + u (residual add). */
__global__ void k_binary(float *out, const float *g, const float *u, int64_t n, int op) {
    const float k0 = 0.79788456080286535588f; /* sqrt(2/pi) */
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float a = g[i], b = u[i];
        float r;
        if (op == 0) r = a / (1.0f + expf(-a)) * b;
        else if (op == 1) r = 0.5f * a * (1.0f + tanhf(k0 * a * (1.0f + 0.044715f * a * a))) * b;
        else r = a + b;
        out[i] = r;
    }
}

static ob_status binary(cuda_ctx *c, float *out, const float *g, const float *u, int64_t n,
                        int op, ob_err *err) {
    CUDA_USE(c);
    if (n <= 0) return OB_OK;
    unsigned grid = cuda_blocks(n, 256);
    if (grid > 65535) grid = 65535; /* grid-stride loop covers the rest */
    k_binary<<<grid, 256, 0, c->stream>>>(out, g, u, n, op);
    CUDA_LAUNCHED("k_binary");
    return OB_OK;
}

extern "C" ob_status cuda_swiglu(cuda_ctx *c, float *out, const float *gate, const float *up,
                                 int64_t n, ob_err *err) {
    return binary(c, out, gate, up, n, 0, err);
}

extern "C" ob_status cuda_geglu(cuda_ctx *c, float *out, const float *gate, const float *up,
                                int64_t n, ob_err *err) {
    return binary(c, out, gate, up, n, 1, err);
}

extern "C" ob_status cuda_add(cuda_ctx *c, float *x, const float *y, int64_t n, ob_err *err) {
    return binary(c, x, x, y, n, 2, err);
}

/* x (n) *= s. */
__global__ void k_scale(float *x, float s, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

/* x (n_rows, n) += b (n), element i of the flattened rows taking b[i % n]. */
__global__ void k_add_bias(float *x, const float *b, int64_t total, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] += b[i % n];
}

static unsigned flat_grid(int64_t n) {
    unsigned grid = cuda_blocks(n, 256);
    return grid > 65535 ? 65535 : grid; /* grid-stride loops cover the rest */
}

extern "C" ob_status cuda_scale(cuda_ctx *c, float *x, float s, int64_t n, ob_err *err) {
    CUDA_USE(c);
    if (n <= 0) return OB_OK;
    k_scale<<<flat_grid(n), 256, 0, c->stream>>>(x, s, n);
    CUDA_LAUNCHED("k_scale");
    return OB_OK;
}

extern "C" ob_status cuda_add_bias(cuda_ctx *c, float *x, const float *b, int64_t n_rows,
                                   int64_t n, ob_err *err) {
    CUDA_USE(c);
    if (n_rows <= 0 || n <= 0) return OB_OK;
    k_add_bias<<<flat_grid(n_rows * n), 256, 0, c->stream>>>(x, b, n_rows * n, n);
    CUDA_LAUNCHED("k_add_bias");
    return OB_OK;
}

/* ---- softmax ------------------------------------------------------------------------------ */

__global__ void k_softmax(float *x, int64_t n, float scale) {
    float *r = x + blockIdx.x * n;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS) m = fmaxf(m, r[i] * scale);
    m = block_max(m);
    if (m == -INFINITY) { /* a fully masked row: all zeros rather than NaN */
        for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS) r[i] = 0.0f;
        return;
    }
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS) {
        float e = expf(r[i] * scale - m);
        r[i] = e;
        s += e;
    }
    s = block_sum(s);
    const float inv = 1.0f / s;
    for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS) r[i] *= inv;
}

extern "C" ob_status cuda_softmax(cuda_ctx *c, float *x, int64_t n_rows, int64_t n, float scale,
                                  ob_err *err) {
    CUDA_USE(c);
    if (n_rows <= 0 || n <= 0) return OB_OK;
    k_softmax<<<(unsigned)n_rows, ROW_THREADS, 0, c->stream>>>(x, n, scale);
    CUDA_LAUNCHED("k_softmax");
    return OB_OK;
}

/* ---- KV cache store ----------------------------------------------------------------------- */

__global__ void k_kv_store(__half *kc, __half *vc, const float *k, const float *v, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        kc[i] = __float2half_rn(k[i]);
        vc[i] = __float2half_rn(v[i]);
    }
}

extern "C" ob_status cuda_kv_store(cuda_ctx *c, uint16_t *k_cache, uint16_t *v_cache,
                                   int64_t kv_stride, const float *k, const float *v,
                                   int64_t pos0, int64_t n_tok, ob_err *err) {
    CUDA_USE(c);
    const int64_t n = n_tok * kv_stride;
    if (n <= 0) return OB_OK;
    unsigned grid = cuda_blocks(n, 256);
    if (grid > 65535) grid = 65535;
    /* rows pos0.. of the cache are contiguous, so the store is one flat copy with conversion */
    k_kv_store<<<grid, 256, 0, c->stream>>>((__half *)(k_cache + pos0 * kv_stride),
                                            (__half *)(v_cache + pos0 * kv_stride), k, v, n);
    CUDA_LAUNCHED("k_kv_store");
    return OB_OK;
}

/* Row t of k, v to the cache row the map gives it: its pool slot, or its ring row. */
__global__ void k_kv_store_map(__half *kc, __half *vc, const float *k, const float *v,
                               int64_t n, int64_t kv_stride, const int32_t *meta,
                               int64_t stride, int64_t ring_rows) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / kv_stride, d = i % kv_stride;
        const int32_t *m = meta + t * stride;
        const int64_t row = ring_rows > 0 ? (int64_t)m[CUDA_KV_META_SEQ] * ring_rows +
                                                m[CUDA_KV_META_POS] % ring_rows
                                          : (int64_t)m[CUDA_KV_META_SLOT];
        kc[row * kv_stride + d] = __float2half_rn(k[i]);
        vc[row * kv_stride + d] = __float2half_rn(v[i]);
    }
}

extern "C" ob_status cuda_kv_store_map(cuda_ctx *c, uint16_t *k_cache, uint16_t *v_cache,
                                       int64_t kv_stride, const float *k, const float *v,
                                       int64_t n_tok, const cuda_kv_map *map, ob_err *err) {
    CUDA_USE(c);
    const int64_t n = n_tok * kv_stride;
    if (n <= 0) return OB_OK;
    k_kv_store_map<<<flat_grid(n), 256, 0, c->stream>>>((__half *)k_cache, (__half *)v_cache,
                                                        k, v, n, kv_stride, map->meta_dev,
                                                        map->stride, map->ring_rows);
    CUDA_LAUNCHED("k_kv_store_map");
    return OB_OK;
}

/* ---- argmax ------------------------------------------------------------------------------- */

/* Keeps the larger value, the lower index on ties; NaN never replaces a number. */
__device__ __forceinline__ void argmax_merge(float *v, int32_t *i, float ov, int32_t oi) {
    if (ov > *v || (ov == *v && oi < *i) || (*i < 0 && oi >= 0 && !isnan(ov))) {
        *v = ov;
        *i = oi;
    }
}

__global__ void k_argmax(const float *x, int64_t n, int32_t *out) {
    __shared__ float sv[ROW_THREADS / 32];
    __shared__ int32_t si[ROW_THREADS / 32];
    const float *r = x + blockIdx.x * n;
    float v = -INFINITY;
    int32_t idx = -1;
    for (int64_t i = threadIdx.x; i < n; i += ROW_THREADS)
        if (!isnan(r[i])) argmax_merge(&v, &idx, r[i], (int32_t)i);
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int32_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (oi >= 0) argmax_merge(&v, &idx, ov, oi);
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        sv[warp] = v;
        si[warp] = idx;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < ROW_THREADS / 32; w++)
            if (si[w] >= 0) argmax_merge(&v, &idx, sv[w], si[w]);
        out[blockIdx.x] = idx < 0 ? 0 : idx; /* an all-NaN row has no answer; 0 is harmless */
    }
}

extern "C" ob_status cuda_argmax(cuda_ctx *c, const float *x, int64_t n_rows, int64_t n,
                                 int32_t *out, ob_err *err) {
    CUDA_USE(c);
    if (n_rows <= 0 || n <= 0) return OB_OK;
    if (n > INT32_MAX) return ob_fail(err, OB_ERR_LIMIT, "cuda: argmax: row of %lld", (long long)n);
    k_argmax<<<(unsigned)n_rows, ROW_THREADS, 0, c->stream>>>(x, n, out);
    CUDA_LAUNCHED("k_argmax");
    return OB_OK;
}
