/*
 * Causal grouped-query attention over the F16 KV cache.
 *
 * k_attn runs one block of ATTN_WARPS warps per (query head, query token, split). The split is
 * a contiguous range of cache positions; the warps of the block take positions in turn and each
 * keeps an online softmax (running max m, running sum l, weighted V sum o) in registers, lane
 * l holding elements l, l + 32, ... of the head (head_dim <= 256, so at most 8 per lane). The
 * warps' states are merged in shared memory at the end.
 *
 * Decode (few query rows) would leave most of the GPU idle with one block per head, so the
 * cache is split across blocks (flash-decoding): each split writes its (m, l, o) to scratch and
 * k_attn_merge combines them. Prefill has enough (token, head) blocks to fill the GPU and runs
 * with one split, writing the output directly; its K/V reads across tokens are served by L2.
 *
 * Rows of a paged cache (cuda_kv_map): each query row has its own position and sequence, and
 * position j of its sequence is found through its block table, or in its sequence's ring on a
 * sliding-window layer, where it sees only the last n_swa positions. The splits then cut the
 * positions a row sees (its window), not the whole cache.
 *
 * Rounding follows the CPU (src/cpu/attn.c): q is rounded to F16 before it meets the F16 keys.
 */
#include "cuda/cuda_impl.cuh"

#include <cuda_fp16.h>
#include <math.h>

#define ATTN_WARPS 4
#define ATTN_MAX_PER_LANE 8 /* head_dim <= 32 * 8 = 256 */
/* Fewer positions per split than this is not worth a block. Each warp walks its positions one
 * after another, a global load's latency apiece, so short splits are what makes decode fast:
 * at 128, a 512-position decode step took 23.6 us per layer on an H200 (89 GB/s of KV). */
#define ATTN_MIN_SPLIT_KV 32
#define ATTN_MAX_SPLIT 64

struct attn_params {
    const float *q;
    const __half *k, *v;
    float *out;   /* (n_tok, n_head * head_dim) when n_split == 1 */
    float *part;  /* (n_tok, n_head, n_split, head_dim + 2) f32 partials otherwise: m, l, o */
    int64_t pos0, n_head, group, head_dim, kv_stride;
    int64_t n_split, split_len;
    float scale;
    /* paged cache (meta != NULL): per row `stride` ints (cuda_kv_map) */
    const int32_t *meta;
    int64_t stride, block, ring_rows, n_swa;
};

/* Position of query row t. */
__device__ __forceinline__ int64_t attn_pos(const attn_params &p, int64_t t) {
    return p.meta ? p.meta[t * p.stride + CUDA_KV_META_POS] : p.pos0 + t;
}

/* First position row t (at position pos) sees. */
__device__ __forceinline__ int64_t attn_first(const attn_params &p, int64_t pos) {
    return p.n_swa > 0 && pos + 1 > p.n_swa ? pos + 1 - p.n_swa : 0;
}

/* Cache row of position j of row t's sequence. */
__device__ __forceinline__ int64_t attn_row(const attn_params &p, int64_t t, int64_t j) {
    if (!p.meta) return j;
    const int32_t *m = p.meta + t * p.stride;
    if (p.ring_rows > 0) return (int64_t)m[CUDA_KV_META_SEQ] * p.ring_rows + j % p.ring_rows;
    return (int64_t)m[CUDA_KV_META_TABLE + j / p.block] * p.block + j % p.block;
}

__global__ void __launch_bounds__(ATTN_WARPS * 32) k_attn(attn_params p) {
    __shared__ float sm_m[ATTN_WARPS], sm_l[ATTN_WARPS];
    __shared__ float sm_o[ATTN_WARPS][32 * ATTN_MAX_PER_LANE];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t h = blockIdx.x, t = blockIdx.y, s = blockIdx.z, hd = p.head_dim;
    const int64_t kvh = h / p.group;
    const int64_t pos = attn_pos(p, t), end = pos + 1; /* causal: sees positions ..pos */
    const int64_t lo = attn_first(p, pos) + s * p.split_len;
    const int64_t hi = lo + p.split_len < end ? lo + p.split_len : end;

    float qv[ATTN_MAX_PER_LANE], o[ATTN_MAX_PER_LANE];
    const float *qh = p.q + (t * p.n_head + h) * hd;
#pragma unroll
    for (int i = 0; i < ATTN_MAX_PER_LANE; i++) {
        const int64_t d = lane + 32 * i;
        qv[i] = d < hd ? __half2float(__float2half_rn(qh[d])) * p.scale : 0.0f;
        o[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int64_t j = lo + warp; j < hi; j += ATTN_WARPS) {
        const int64_t row = attn_row(p, t, j);
        const __half *kr = p.k + row * p.kv_stride + kvh * hd;
        const __half *vr = p.v + row * p.kv_stride + kvh * hd;
        float sc = 0.0f;
#pragma unroll
        for (int i = 0; i < ATTN_MAX_PER_LANE; i++) {
            const int64_t d = lane + 32 * i;
            if (d < hd) sc += qv[i] * __half2float(kr[d]);
        }
        sc = cuda_warp_sum(sc);
        const float mn = fmaxf(m, sc);
        const float corr = expf(m - mn), pj = expf(sc - mn);
        l = l * corr + pj;
#pragma unroll
        for (int i = 0; i < ATTN_MAX_PER_LANE; i++) {
            const int64_t d = lane + 32 * i;
            o[i] = o[i] * corr + (d < hd ? pj * __half2float(vr[d]) : 0.0f);
        }
        m = mn;
    }
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < ATTN_MAX_PER_LANE; i++) sm_o[warp][lane + 32 * i] = o[i];
    __syncthreads();

    /* merge the warps: M = max m_w, L = sum l_w e^(m_w - M), O = sum o_w e^(m_w - M) */
    float M = -INFINITY;
    for (int w = 0; w < ATTN_WARPS; w++) M = fmaxf(M, sm_m[w]);
    float L = 0.0f, f[ATTN_WARPS];
    for (int w = 0; w < ATTN_WARPS; w++) {
        /* a warp that saw no position has m = -inf and contributes nothing */
        f[w] = sm_m[w] == -INFINITY ? 0.0f : expf(sm_m[w] - M);
        L += sm_l[w] * f[w];
    }
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float od = 0.0f;
        for (int w = 0; w < ATTN_WARPS; w++) od += sm_o[w][d] * f[w];
        if (p.n_split == 1) {
            p.out[(t * p.n_head + h) * hd + d] = L > 0.0f ? od / L : 0.0f;
        } else {
            float *pp = p.part + ((t * p.n_head + h) * p.n_split + s) * (hd + 2);
            pp[2 + d] = od;
            if (d == 0) {
                pp[0] = M;
                pp[1] = L;
            }
        }
    }
}

/* out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M); one block per (head, token), a thread
 * per element of the head. */
__global__ void k_attn_merge(attn_params p) {
    const int64_t h = blockIdx.x, t = blockIdx.y, hd = p.head_dim;
    const float *base = p.part + (t * p.n_head + h) * p.n_split * (hd + 2);
    float M = -INFINITY;
    for (int64_t s = 0; s < p.n_split; s++) M = fmaxf(M, base[s * (hd + 2)]);
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float L = 0.0f, od = 0.0f;
        for (int64_t s = 0; s < p.n_split; s++) {
            const float *pp = base + s * (hd + 2);
            if (pp[0] == -INFINITY) continue; /* an empty split (past this token's causal end) */
            const float f = expf(pp[0] - M);
            L += pp[1] * f;
            od += pp[2 + d] * f;
        }
        p.out[(t * p.n_head + h) * hd + d] = L > 0.0f ? od / L : 0.0f;
    }
}

extern "C" ob_status cuda_attention(cuda_ctx *c, const cuda_attn_args *a, ob_err *err) {
    CUDA_USE(c);
    if (a->head_dim <= 0 || a->head_dim > 32 * ATTN_MAX_PER_LANE || a->n_head_kv <= 0 ||
        a->n_head % a->n_head_kv)
        return ob_fail(err, OB_ERR_ARG,
                       "cuda: attention: head_dim %lld (max %d), %lld heads over %lld kv heads",
                       (long long)a->head_dim, 32 * ATTN_MAX_PER_LANE, (long long)a->n_head,
                       (long long)a->n_head_kv);
    if (a->n_tok <= 0) return OB_OK;
    if (a->n_tok > 65535 || a->n_head > INT32_MAX)
        return ob_fail(err, OB_ERR_LIMIT, "cuda: attention: %lld query tokens (max 65535)",
                       (long long)a->n_tok);
    attn_params p;
    p.q = a->q;
    p.k = (const __half *)a->k;
    p.v = (const __half *)a->v;
    p.out = a->out;
    p.part = NULL;
    p.pos0 = a->pos0;
    p.n_head = a->n_head;
    p.group = a->n_head / a->n_head_kv;
    p.head_dim = a->head_dim;
    p.kv_stride = a->kv_stride;
    p.scale = a->scale;
    p.meta = a->map ? a->map->meta_dev : NULL;
    p.stride = a->map ? a->map->stride : 0;
    p.block = a->map && a->map->block > 0 ? a->map->block : 1;
    p.ring_rows = a->map ? a->map->ring_rows : 0;
    p.n_swa = a->map && a->map->ring_rows > 0 ? a->map->n_swa : 0;

    /* splits: enough blocks for ~8 per SM, none shorter than ATTN_MIN_SPLIT_KV positions; a
     * split covers part of the positions one row sees (at most n_kv, or the window) */
    int64_t n_kv = a->map ? a->map->n_kv : a->pos0 + a->n_tok;
    if (p.n_swa > 0 && n_kv > p.n_swa) n_kv = p.n_swa;
    if (n_kv < 1) n_kv = 1;
    const int64_t work = a->n_tok * a->n_head;
    int64_t n_split = 1;
    if (work < 8 * (int64_t)c->sm_count) {
        n_split = (8 * (int64_t)c->sm_count + work - 1) / work;
        int64_t by_len = (n_kv + ATTN_MIN_SPLIT_KV - 1) / ATTN_MIN_SPLIT_KV;
        if (n_split > by_len) n_split = by_len;
        if (n_split > ATTN_MAX_SPLIT) n_split = ATTN_MAX_SPLIT;
        if (n_split < 1) n_split = 1;
    }
    p.n_split = n_split;
    p.split_len = (n_kv + n_split - 1) / n_split;
    if (n_split > 1) {
        size_t bytes = (size_t)work * n_split * (a->head_dim + 2) * sizeof(float);
        ob_status st = cuda_scratch(c, (void **)&c->attn_ws, &c->attn_ws_bytes, bytes,
                                    "attention scratch", err);
        if (st) return st;
        p.part = c->attn_ws;
    }
    dim3 grid((unsigned)a->n_head, (unsigned)a->n_tok, (unsigned)n_split);
    k_attn<<<grid, ATTN_WARPS * 32, 0, c->stream>>>(p);
    CUDA_LAUNCHED("k_attn");
    if (n_split > 1) {
        dim3 mgrid((unsigned)a->n_head, (unsigned)a->n_tok);
        k_attn_merge<<<mgrid, (unsigned)(a->head_dim < 32 ? 32 : a->head_dim), 0, c->stream>>>(p);
        CUDA_LAUNCHED("k_attn_merge");
    }
    return OB_OK;
}
