/*
 * The CUDA backend's C interface: devices, device buffers, the one counted host<->device copy
 * path, and the transformer ops (the same set as src/cpu) on device memory. The kernels live in
 * the .cu files of src/cuda behind extern "C" entry points declared here; a build without nvcc links
 * src/cuda/stub.c instead, whose entry points report "built without CUDA", so callers need no
 * #ifdef.
 *
 * Model code reaches these functions through the backend op table (src/model/backend.h): a CUDA
 * backend holds a range of layers, their weights (uploaded once) and KV cache in device memory;
 * only the hidden state (n_tok, n_embd) f32 crosses the link, once per range per step.
 *
 * Conventions:
 *  - every op is asynchronous on the context's stream and returns OB_ERR_CUDA (naming the
 *    kernel and cudaGetErrorString) when the launch fails; cuda_ctx_sync waits and reports
 *    errors raised while kernels ran;
 *  - pointers named *_dev are device memory from cuda_buf_alloc; "(n_tok, n) f32" means n_tok
 *    rows of n contiguous floats, as in src/cpu/ops.h;
 *  - weight types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS,
 *    with GGUF's block layouts unchanged (cuda_type_supported).
 */
#ifndef OB_CUDA_BACKEND_H
#define OB_CUDA_BACKEND_H

#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- devices ---------------------------------------------------------------------------- */

typedef struct cuda_device_info {
    int id;
    char name[256];     /* "NVIDIA GeForce RTX 4090" */
    int cc_major, cc_minor; /* compute capability */
    int sm_count;       /* streaming multiprocessors */
    size_t mem_free, mem_total; /* bytes, at the time of the call */
    bool managed;       /* can allocate managed memory (cuda_managed_alloc) */
    bool concurrent_managed; /* the host may touch managed memory while kernels run */
    int driver_version; /* the CUDA version the driver supports, 1000 * major + 10 * minor */
} cuda_device_info;

/* The oldest compute capability the kernels are built for (the Makefile's NVCC_ARCH starts
 * at sm_80: Ampere). */
#define CUDA_MIN_CC_MAJOR 8

/* True when this build contains CUDA kernels (nvcc was found at build time). */
bool cuda_compiled(void);

/* Number of usable CUDA devices in *n. With no driver, no device, or a build without CUDA, *n
 * is 0 and the status is OB_ERR_UNSUPPORTED with a message that starts "no CUDA device: using
 * the CPU" and says why (driver missing, no device, built without CUDA). Never crashes. */
ob_status cuda_device_count(int *n, ob_err *err);

/* Properties of device `dev` (0 <= dev < count). OB_ERR_ARG for a bad index. */
ob_status cuda_device_get_info(int dev, cuda_device_info *out, ob_err *err);

/* Test hook: kind 1 makes the next device allocation fail as out of device memory, kind 2
 * the next cuda_ctx_sync report a kernel that failed (cudaErrorLaunchFailure), kind 3 the
 * next cuda_device_get_info say 64 KiB free. 0 clears it. */
void cuda_fault_set(int kind);

/* ---- context: one device, one stream, scratch, cuBLAS ------------------------------------- */

typedef struct cuda_ctx cuda_ctx;

/* Opens device `dev`: a stream, a small scratch area, and cuBLAS when the library can be
 * loaded (it is optional: without it, matrix-matrix products run on the matrix-vector kernel).
 * *out owned by the caller (cuda_ctx_free). Status as cuda_device_count when there is none. */
ob_status cuda_ctx_new(int dev, cuda_ctx **out, ob_err *err);
void cuda_ctx_free(cuda_ctx *c); /* NULL is a no-op */

/* Waits for all work queued on the context; OB_ERR_CUDA for an error raised by a kernel. */
ob_status cuda_ctx_sync(cuda_ctx *c, ob_err *err);

/* Whether cuBLAS was loaded (prefill uses GemmEx on F16 tiles when it was). */
bool cuda_ctx_has_cublas(const cuda_ctx *c);

/* ---- device buffers ----------------------------------------------------------------------- */

/* bytes of device memory in *out (uninitialised). `what` names the buffer for messages. Out of
 * memory gives OB_ERR_NOMEM: "cuda: <what>: out of device memory: need N bytes, M free of T". */
ob_status cuda_buf_alloc(cuda_ctx *c, size_t bytes, const char *what, void **out, ob_err *err);
void cuda_buf_free(cuda_ctx *c, void *p_dev); /* NULL is a no-op */

/* bytes of managed memory in *out: one address the host and the device both use. It is
 * advised to live on the device (the host's reads map it remotely rather than moving it) and
 * prefetched there, so kernels read it in place at device speed and the host touches it only
 * after cuda_ctx_sync. Errors as cuda_buf_alloc; freed by cuda_buf_free. */
ob_status cuda_managed_alloc(cuda_ctx *c, size_t bytes, const char *what, void **out,
                             ob_err *err);

/* Whether p is device (or managed) memory that kernels can read; false for host memory, NULL,
 * and always in a build without CUDA. */
bool cuda_ptr_is_device(const void *p);

/* Sets bytes of device memory to zero (asynchronous). */
ob_status cuda_buf_zero(cuda_ctx *c, void *p_dev, size_t bytes, ob_err *err);

/* ---- the counted copy path: every copy between host and device goes through these (the
 * host's own reads and writes of managed memory, cuda_managed_alloc, are not copies and are
 * not counted) ---- */

/* Host -> device and device -> host copies of `bytes`. They are synchronous with respect to
 * the host (the source may be reused on return; the destination is ready) and are counted in
 * the process-wide statistics below. */
ob_status cuda_copy_h2d(cuda_ctx *c, void *dst_dev, const void *src, size_t bytes, ob_err *err);
ob_status cuda_copy_d2h(cuda_ctx *c, void *dst, const void *src_dev, size_t bytes, ob_err *err);

/* Device -> device copy of `bytes` on the context's stream (asynchronous, not counted: nothing
 * crosses the link). */
ob_status cuda_copy_d2d(cuda_ctx *c, void *dst_dev, const void *src_dev, size_t bytes,
                        ob_err *err);

/* Page-locked host memory of `bytes` (cudaMallocHost), the source cuda_copy_h2d_async needs;
 * freed by cuda_host_free (NULL is a no-op). */
ob_status cuda_host_alloc(cuda_ctx *c, size_t bytes, void **out, ob_err *err);
void cuda_host_free(void *p);

/* Host -> device copy of `bytes` from page-locked memory, queued on the context's stream and
 * counted like cuda_copy_h2d; the source must stay unchanged until the stream has run it
 * (cuda_ctx_sync). */
ob_status cuda_copy_h2d_async(cuda_ctx *c, void *dst_dev, const void *pinned_src, size_t bytes,
                              ob_err *err);

typedef struct cuda_copy_stats {
    uint64_t h2d_bytes, h2d_count; /* host -> device */
    uint64_t d2h_bytes, d2h_count; /* device -> host */
} cuda_copy_stats;

/* Totals since the start of the process (or the last reset), for --verbose and /metrics.
 * Thread-safe. */
void cuda_copy_stats_get(cuda_copy_stats *out);
void cuda_copy_stats_reset(void);

/* ---- weights -------------------------------------------------------------------------------- */

/* A weight matrix in device memory, rows as GGUF stores them. */
typedef struct cuda_weight {
    const char *name;   /* borrowed tensor name, for messages */
    void *data_dev;     /* (n_out rows, row_size bytes) of `type`, owned */
    uint32_t type;      /* ob_qtype */
    int64_t n_in, n_out;
    size_t row_size;
} cuda_weight;

/* Whether the kernels read this ob_qtype. */
bool cuda_type_supported(uint32_t type);

/* Whether decode products (up to 8 activation rows) of this type run on int8 activations
 * (matvec_q8.cu): each 32-element chunk of an activation row is rounded to int8 at scale
 * amax / 127, so a product differs from the f32 one by at most the sum over chunks of
 * (amax / 254) * sum |w| (as the CPU's own quantized activations do). */
bool cuda_q8_type(uint32_t type);

/* Copies a host weight (n_out rows of n_in elements of `type`) to the device through the
 * counted path. OB_ERR_UNSUPPORTED naming the tensor and type for a type the kernels lack;
 * OB_ERR_FORMAT when n_in does not fill whole blocks. */
ob_status cuda_weight_upload(cuda_ctx *c, const char *name, const void *host, uint32_t type,
                             int64_t n_in, int64_t n_out, cuda_weight *out, ob_err *err);
void cuda_weight_free(cuda_ctx *c, cuda_weight *w); /* frees data_dev; NULL is a no-op */

/* ---- ops (all pointers are device memory) ------------------------------------------------- */

/* out (n, w->n_in) f32 = rows ids[0..n) of w, dequantized. Ids out of [0, n_out) give zeros. */
ob_status cuda_get_rows(cuda_ctx *c, const cuda_weight *w, const int32_t *ids_dev, int64_t n,
                        float *out_dev, ob_err *err);

/* y (n_tok, w->n_out) f32 = x (n_tok, w->n_in) f32 times W^T. Up to 8 tokens: a kernel that
 * reads the quantized weights once and dots them in f32 (decode). More: W is dequantized to
 * F16 in tiles of rows and multiplied by cuBLAS GemmEx (F16 inputs, F32 accumulate), or, when
 * cuBLAS is absent, by the first kernel in groups of 8 tokens. */
ob_status cuda_matmul(cuda_ctx *c, float *y_dev, const cuda_weight *w, const float *x_dev,
                      int64_t n_tok, ob_err *err);

/* out (n_rows, n) = x / sqrt(mean(x^2) + eps) * w (n); out may alias x. */
ob_status cuda_rmsnorm(cuda_ctx *c, float *out_dev, const float *x_dev, const float *w_dev,
                       int64_t n_rows, int64_t n, float eps, ob_err *err);

typedef struct cuda_rope_params {
    int64_t n_dims;          /* rotated dims per head (<= head_dim, even) */
    float freq_base;         /* theta_i = pos * base^(-2i/n_dims) */
    float freq_scale;        /* linear position scaling (1 = none) */
    const float *freq_factors_dev; /* (n_dims/2) f32 divisors of theta, or NULL */
    bool neox;               /* pairs (i, i + n_dims/2) instead of (2i, 2i+1) */
} cuda_rope_params;

/* Rotates x (n_tok, n_head * head_dim) f32 in place; token t is at position pos_dev[t]. */
ob_status cuda_rope(cuda_ctx *c, float *x_dev, int64_t n_tok, int64_t n_head, int64_t head_dim,
                    const int32_t *pos_dev, const cuda_rope_params *rp, ob_err *err);

/* out (n) = silu(gate) * up; out may alias gate or up. */
ob_status cuda_swiglu(cuda_ctx *c, float *out_dev, const float *gate_dev, const float *up_dev,
                      int64_t n, ob_err *err);
/* out (n) = gelu(gate) * up, gelu with ggml's tanh approximation; out may alias. */
ob_status cuda_geglu(cuda_ctx *c, float *out_dev, const float *gate_dev, const float *up_dev,
                     int64_t n, ob_err *err);
/* x (n) += y (n). */
ob_status cuda_add(cuda_ctx *c, float *x_dev, const float *y_dev, int64_t n, ob_err *err);
/* x (n) *= s. */
ob_status cuda_scale(cuda_ctx *c, float *x_dev, float s, int64_t n, ob_err *err);
/* x (n_rows, n) += b (n) on every row. */
ob_status cuda_add_bias(cuda_ctx *c, float *x_dev, const float *b_dev, int64_t n_rows,
                        int64_t n, ob_err *err);
/* Each row of x (n_rows, n) <- softmax(row * scale); -INFINITY entries become 0. */
ob_status cuda_softmax(cuda_ctx *c, float *x_dev, int64_t n_rows, int64_t n, float scale,
                       ob_err *err);

/* Writes k, v (n_tok, kv_stride) f32 as F16 into rows pos0..pos0+n_tok of k_cache, v_cache
 * (n_ctx, kv_stride) f16. The caller has checked pos0 + n_tok <= n_ctx. */
ob_status cuda_kv_store(cuda_ctx *c, uint16_t *k_cache_dev, uint16_t *v_cache_dev,
                        int64_t kv_stride, const float *k_dev, const float *v_dev, int64_t pos0,
                        int64_t n_tok, ob_err *err);

/* Where a batch's rows live in a paged KV cache (the layout of the CPU backend): per batch
 * row, `stride` int32 of device memory: its position, its sequence, its pool slot, then its
 * sequence's block table (block j holds positions j * block .. j * block + block - 1 at rows
 * table[j] * block ..). A sliding-window layer keeps a ring of ring_rows rows per sequence
 * instead: position p of sequence s at row s * ring_rows + p % ring_rows. */
typedef struct cuda_kv_map {
    const int32_t *meta_dev; /* (n_tok, stride) */
    int64_t stride;          /* 3 + blocks in the table */
    int64_t block;           /* rows per block (KV_BLOCK) */
    int64_t ring_rows;       /* > 0 on a sliding-window layer */
    int64_t n_swa;           /* positions a query sees on such a layer (the last n_swa) */
    int64_t n_kv;            /* largest position + 1 over the batch */
} cuda_kv_map;

#define CUDA_KV_META_POS 0
#define CUDA_KV_META_SEQ 1
#define CUDA_KV_META_SLOT 2
#define CUDA_KV_META_TABLE 3

/* Writes k, v (n_tok, kv_stride) f32 as F16 into the cache rows the map gives each batch row:
 * its pool slot, or its sequence's ring row on a sliding-window layer. */
ob_status cuda_kv_store_map(cuda_ctx *c, uint16_t *k_cache_dev, uint16_t *v_cache_dev,
                            int64_t kv_stride, const float *k_dev, const float *v_dev,
                            int64_t n_tok, const cuda_kv_map *map, ob_err *err);

typedef struct cuda_attn_args {
    const float *q;     /* (n_tok, n_head * head_dim) f32, rotated */
    const uint16_t *k;  /* (n_kv, kv_stride) f16 key cache of this layer */
    const uint16_t *v;  /* (n_kv, kv_stride) f16 value cache */
    float *out;         /* (n_tok, n_head * head_dim) f32 */
    int64_t n_tok;      /* query tokens */
    int64_t pos0;       /* position of the first query token; token t sees kv 0..pos0+t */
    int64_t n_head, n_head_kv, head_dim; /* head_dim <= 256; n_head % n_head_kv == 0 */
    int64_t kv_stride;  /* elements per cache row (n_head_kv * head_dim) */
    float scale;        /* usually 1/sqrt(head_dim) */
    const cuda_kv_map *map; /* NULL: one sequence whose cache rows are its positions (pos0 +
                               t); else each row's own position, sequence and rows (pos0 and
                               n_kv come from the map) */
} cuda_attn_args;

/* Causal grouped-query attention over the F16 cache. q is rounded to F16 first and the
 * probabilities meet V in F32 (the CPU rounds them to F16 too: differences stay below the
 * tests' tolerance). Decode splits the cache across blocks
 * (flash-decoding: partial softmax per split, then a merge); prefill runs one block per
 * (token, head). OB_ERR_ARG for head_dim > 256 or heads that do not divide. */
ob_status cuda_attention(cuda_ctx *c, const cuda_attn_args *a, ob_err *err);

/* out_dev[r] = index of the largest entry of row r of x (n_rows, n) (the first on ties; NaN
 * never wins). Greedy sampling without copying logits to the host. */
ob_status cuda_argmax(cuda_ctx *c, const float *x_dev, int64_t n_rows, int64_t n,
                      int32_t *out_dev, ob_err *err);

#ifdef __cplusplus
}
#endif
#endif
