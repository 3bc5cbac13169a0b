/*
 * Weights on the device: upload, embedding row lookup, and y = x W^T for every weight type the
 * CPU supports, reading GGUF blocks as they are stored (decoders in cuda_blocks.h, shared with
 * the host test that checks them against src/quant's reference).
 *
 * Decode (n_tok <= 8) is memory-bound: the types matvec_q8.cu covers run there, on int8
 * activations; for the rest (float types, Q2_K, Q3_K) k_matvec gives each warp one weight row;
 * each lane decodes 32-element chunks of it to f32 registers and dots them with up to 8
 * activation rows, so the quantized weights are read exactly once per call. Prefill (more
 * tokens) is compute-bound: W is decoded to F16 in tiles of rows and multiplied with cuBLAS
 * GemmEx on the tensor cores (F32 accumulate); without cuBLAS it falls back to the decode
 * products per 8 tokens.
 *
 * Kernels are templates over the type id, one instance per type and kernel (three kernels),
 * which keeps the fat binary's compile time in bounds.
 */
#include "cuda/cuda_impl.cuh"

#include <cuda_fp16.h>

#include "cuda/cuda_blocks.h"

extern "C" {
#include "core/alloc.h"
}

/* X(type id, chunk decoder): every type the kernels read. */
#define CUDA_TYPES(X)                                                                           \
    X(OB_QTYPE_F32, cb_chunk_f32)                                                               \
    X(OB_QTYPE_F16, cb_chunk_f16)                                                               \
    X(OB_QTYPE_BF16, cb_chunk_bf16)                                                             \
    X(OB_QTYPE_Q4_0, cb_chunk_q4_0)                                                             \
    X(OB_QTYPE_Q4_1, cb_chunk_q4_1)                                                             \
    X(OB_QTYPE_Q5_0, cb_chunk_q5_0)                                                             \
    X(OB_QTYPE_Q5_1, cb_chunk_q5_1)                                                             \
    X(OB_QTYPE_Q8_0, cb_chunk_q8_0)                                                             \
    X(OB_QTYPE_Q2_K, cb_chunk_q2_k)                                                             \
    X(OB_QTYPE_Q3_K, cb_chunk_q3_k)                                                             \
    X(OB_QTYPE_Q4_K, cb_chunk_q4_k)                                                             \
    X(OB_QTYPE_Q5_K, cb_chunk_q5_k)                                                             \
    X(OB_QTYPE_Q6_K, cb_chunk_q6_k)                                                             \
    X(OB_QTYPE_IQ4_NL, cb_chunk_iq4_nl)                                                         \
    X(OB_QTYPE_IQ4_XS, cb_chunk_iq4_xs)

template <uint32_t T> __device__ void dq(const uint8_t *row, int64_t c, int64_t n, float *y);
#define CUDA_DQ(id, fn)                                                                         \
    template <>                                                                                 \
    __device__ __forceinline__ void dq<id>(const uint8_t *row, int64_t c, int64_t n, float *y) { \
        fn(row, c, n, y);                                                                       \
    }
CUDA_TYPES(CUDA_DQ)

#define MATVEC_ROWS 4    /* weight rows (warps) per block */

/* y (n_tok, n_out) = x (n_tok, n_in) W^T for n_tok <= MATVEC_MAX_TOK. One warp per row of W;
 * lane l takes chunks l, l + 32, ...; partial sums meet in a warp reduction. */
template <uint32_t T>
__global__ void k_matvec(const uint8_t *w, size_t row_size, int64_t n_in, int64_t n_out,
                         const float *x, int64_t n_tok, float *y) {
    const int lane = threadIdx.x % 32;
    const int64_t row = (int64_t)blockIdx.x * MATVEC_ROWS + threadIdx.x / 32;
    if (row >= n_out) return;
    const uint8_t *r = w + row * row_size;
    const int64_t nc = (n_in + 31) / 32;
    /* float4 loads of x need every row of x 16-byte aligned */
    const bool vec = (n_in % 4) == 0 && ((uintptr_t)x % 16) == 0;
    float acc[MATVEC_MAX_TOK];
#pragma unroll
    for (int t = 0; t < MATVEC_MAX_TOK; t++) acc[t] = 0.0f;
    for (int64_t c = lane; c < nc; c += 32) {
        float v[32];
        dq<T>(r, c, n_in, v);
        const bool full = 32 * c + 32 <= n_in;
#pragma unroll
        for (int t = 0; t < MATVEC_MAX_TOK; t++) {
            if (t >= n_tok) break;
            const float *xt = x + t * n_in + 32 * c;
            float s = 0.0f;
            if (full && vec) {
#pragma unroll
                for (int i = 0; i < 32; i += 4) {
                    float4 a = __ldg((const float4 *)(xt + i));
                    s += v[i] * a.x + v[i + 1] * a.y + v[i + 2] * a.z + v[i + 3] * a.w;
                }
            } else {
                for (int i = 0; i < 32 && 32 * c + i < n_in; i++) s += v[i] * __ldg(xt + i);
            }
            acc[t] += s;
        }
    }
#pragma unroll
    for (int t = 0; t < MATVEC_MAX_TOK; t++) {
        if (t >= n_tok) break;
        float s = cuda_warp_sum(acc[t]);
        if (lane == 0) y[t * n_out + row] = s;
    }
}

/* out (n, n_in) f32 = rows ids of W; one block per id, threads over chunks. */
template <uint32_t T>
__global__ void k_get_rows(const uint8_t *w, size_t row_size, int64_t n_in, int64_t n_out,
                           const int32_t *ids, float *out) {
    const int64_t i = blockIdx.x;
    const int32_t id = ids[i];
    float *o = out + i * n_in;
    const int64_t nc = (n_in + 31) / 32;
    for (int64_t c = threadIdx.x; c < nc; c += blockDim.x) {
        float v[32];
        if (id >= 0 && id < n_out) {
            dq<T>(w + (int64_t)id * row_size, c, n_in, v);
        } else {
            for (int j = 0; j < 32; j++) v[j] = 0.0f;
        }
        for (int j = 0; j < 32 && 32 * c + j < n_in; j++) o[32 * c + j] = v[j];
    }
}

/* out (n_rows, n_in) f16 = rows row0.. of W decoded (a GemmEx tile); one block per row. */
template <uint32_t T>
__global__ void k_to_f16(const uint8_t *w, size_t row_size, int64_t n_in, int64_t row0,
                         __half *out) {
    const int64_t r = blockIdx.x;
    const uint8_t *src = w + (row0 + r) * row_size;
    __half *o = out + r * n_in;
    const int64_t nc = (n_in + 31) / 32;
    /* rows of a multiple of 8 halves keep every chunk 16-byte aligned in the tile (which
     * starts 256-byte aligned): a chunk leaves in four 16-byte stores, not 32 of two bytes */
    const bool vec = n_in % 8 == 0;
    for (int64_t c = threadIdx.x; c < nc; c += blockDim.x) {
        float v[32];
        dq<T>(src, c, n_in, v);
        if (vec && 32 * c + 32 <= n_in) {
            uint4 *o4 = (uint4 *)(o + 32 * c);
#pragma unroll
            for (int k = 0; k < 4; k++) {
                union {
                    __half2 h[4];
                    uint4 u;
                } pk;
#pragma unroll
                for (int i = 0; i < 4; i++)
                    pk.h[i] = __floats2half2_rn(v[8 * k + 2 * i], v[8 * k + 2 * i + 1]);
                o4[k] = pk.u;
            }
        } else {
            for (int j = 0; j < 32 && 32 * c + j < n_in; j++)
                o[32 * c + j] = __float2half_rn(v[j]);
        }
    }
}

/* out (n) f16 = x (n) f32. */
__global__ void k_f32_to_f16(const float *x, __half *out, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(x[i]);
}

/* ---- host side --------------------------------------------------------------------------- */

extern "C" bool cuda_type_supported(uint32_t type) {
    switch (type) {
#define CUDA_CASE_TRUE(id, fn) case id:
        CUDA_TYPES(CUDA_CASE_TRUE)
        return true;
    default:
        return false;
    }
}

static ob_status check_weight(const cuda_weight *w, ob_err *err) {
    if (!cuda_type_supported(w->type))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "cuda: tensor '%s': type %s has no CUDA kernels",
                       w->name ? w->name : "?", gguf_qtype_name(w->type));
    return OB_OK;
}

extern "C" ob_status cuda_weight_upload(cuda_ctx *c, const char *name, const void *host,
                                        uint32_t type, int64_t n_in, int64_t n_out,
                                        cuda_weight *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    out->name = name;
    out->type = type;
    out->n_in = n_in;
    out->n_out = n_out;
    ob_status st = check_weight(out, err);
    if (st) return st;
    st = gguf_qtype_row_size(type, n_in, &out->row_size, err);
    if (st) {
        ob_err_prefix(err, name);
        return st;
    }
    size_t bytes;
    if (n_out < 0 || ob_mul_size(out->row_size, (size_t)n_out, &bytes))
        return ob_fail(err, OB_ERR_LIMIT, "cuda: tensor '%s': %lld rows of %zu bytes overflow",
                       name, (long long)n_out, out->row_size);
    st = cuda_buf_alloc(c, bytes, name, &out->data_dev, err);
    if (st) return st;
    st = cuda_copy_h2d(c, out->data_dev, host, bytes, err);
    if (st) {
        cuda_buf_free(c, out->data_dev);
        out->data_dev = NULL;
    }
    return st;
}

extern "C" void cuda_weight_free(cuda_ctx *c, cuda_weight *w) {
    if (!w) return;
    cuda_buf_free(c, w->data_dev);
    w->data_dev = NULL;
}

extern "C" ob_status cuda_get_rows(cuda_ctx *c, const cuda_weight *w, const int32_t *ids,
                                   int64_t n, float *out, ob_err *err) {
    CUDA_USE(c);
    ob_status st = check_weight(w, err);
    if (st || n <= 0) return st;
    const uint8_t *wd = (const uint8_t *)w->data_dev;
    switch (w->type) {
#define CUDA_CASE_GET_ROWS(id, fn)                                                              \
    case id:                                                                                    \
        k_get_rows<id><<<(unsigned)n, 128, 0, c->stream>>>(wd, w->row_size, w->n_in, w->n_out,  \
                                                            ids, out);                          \
        break;
        CUDA_TYPES(CUDA_CASE_GET_ROWS)
    }
    CUDA_LAUNCHED("k_get_rows");
    return OB_OK;
}

static ob_status matvec(cuda_ctx *c, float *y, const cuda_weight *w, const float *x,
                        int64_t n_tok, ob_err *err) {
    const uint8_t *wd = (const uint8_t *)w->data_dev;
    const unsigned grid = cuda_blocks(w->n_out, MATVEC_ROWS);
    switch (w->type) {
#define CUDA_CASE_MATVEC(id, fn)                                                                \
    case id:                                                                                    \
        k_matvec<id><<<grid, 32 * MATVEC_ROWS, 0, c->stream>>>(wd, w->row_size, w->n_in,        \
                                                               w->n_out, x, n_tok, y);          \
        break;
        CUDA_TYPES(CUDA_CASE_MATVEC)
    }
    CUDA_LAUNCHED("k_matvec");
    return OB_OK;
}

/* Decodes rows [row0, row0 + rows) of W into the F16 tile. */
static ob_status to_f16(cuda_ctx *c, const cuda_weight *w, int64_t row0, int64_t rows,
                        __half *tile, ob_err *err) {
    const uint8_t *wd = (const uint8_t *)w->data_dev;
    switch (w->type) {
#define CUDA_CASE_TO_F16(id, fn)                                                                \
    case id:                                                                                    \
        k_to_f16<id><<<(unsigned)rows, 128, 0, c->stream>>>(wd, w->row_size, w->n_in, row0,     \
                                                             tile);                             \
        break;
        CUDA_TYPES(CUDA_CASE_TO_F16)
    }
    CUDA_LAUNCHED("k_to_f16");
    return OB_OK;
}

/* The F16 weight tile is kept near this many bytes: large enough that GemmEx runs at speed,
 * small enough that the scratch stays a rounding error next to the weights. */
#define GEMM_TILE_BYTES ((size_t)64 << 20)

static ob_status gemm(cuda_ctx *c, float *y, const cuda_weight *w, const float *x,
                      int64_t n_tok, ob_err *err) {
    const int64_t n_in = w->n_in, n_out = w->n_out;
    int64_t tile_rows = (int64_t)(GEMM_TILE_BYTES / ((size_t)n_in * 2));
    if (tile_rows < 64) tile_rows = 64;
    if (tile_rows > n_out) tile_rows = n_out;
    /* scratch: (n_tok, n_in) f16 activations, then (tile_rows, n_in) f16 weights */
    /* the weight tile starts 256-byte aligned, as tensor-core GEMM algorithms want */
    size_t x_bytes = ((size_t)n_tok * n_in * 2 + 255) & ~(size_t)255;
    size_t w_bytes = (size_t)tile_rows * n_in * 2;
    ob_status st = cuda_scratch(c, &c->gemm_ws, &c->gemm_ws_bytes, x_bytes + w_bytes,
                                "matmul scratch", err);
    if (st) return st;
    __half *x16 = (__half *)c->gemm_ws, *w16 = (__half *)((char *)c->gemm_ws + x_bytes);
    k_f32_to_f16<<<cuda_blocks(n_tok * n_in, 256) < 4096 ? cuda_blocks(n_tok * n_in, 256) : 4096,
                   256, 0, c->stream>>>(x, x16, n_tok * n_in);
    CUDA_LAUNCHED("k_f32_to_f16");
    for (int64_t r0 = 0; r0 < n_out; r0 += tile_rows) {
        int64_t rows = n_out - r0 < tile_rows ? n_out - r0 : tile_rows;
        if ((st = to_f16(c, w, r0, rows, w16, err))) return st;
        /* column-major view: C (rows, n_tok) at y + r0 with ldc n_out = W_tile^T . X */
        st = cuda_cublas_gemm_f16(c, (int)rows, (int)n_tok, (int)n_in, w16, (int)n_in, x16,
                                  (int)n_in, y + r0, (int)n_out, err);
        if (st) return st;
    }
    return OB_OK;
}

extern "C" ob_status cuda_matmul(cuda_ctx *c, float *y, const cuda_weight *w, const float *x,
                                 int64_t n_tok, ob_err *err) {
    CUDA_USE(c);
    ob_status st = check_weight(w, err);
    if (st || n_tok <= 0) return st;
    if (w->n_in > INT32_MAX || w->n_out > INT32_MAX || n_tok > INT32_MAX)
        return ob_fail(err, OB_ERR_LIMIT, "cuda: tensor '%s': dimensions exceed 2^31",
                       w->name ? w->name : "?");
    if (n_tok > MATVEC_MAX_TOK && c->cublas) return gemm(c, y, w, x, n_tok, err);
    const bool q8 = cuda_q8_type(w->type); /* their blocks are 32 or 256 long */
    for (int64_t t = 0; t < n_tok; t += MATVEC_MAX_TOK) {
        int64_t nt = n_tok - t < MATVEC_MAX_TOK ? n_tok - t : MATVEC_MAX_TOK;
        st = q8 ? cuda_matvec_q8(c, y + t * w->n_out, w, x + t * w->n_in, nt, err)
                : matvec(c, y + t * w->n_out, w, x + t * w->n_in, nt, err);
        if (st) return st;
    }
    return OB_OK;
}
