/*
 * Inside src/cuda: the context struct, the one checked-call macro every CUDA runtime call goes
 * through, and small helpers shared by the kernel files (device.cu, matmul.cu, ops.cu,
 * attn.cu). Only .cu files include this.
 */
#ifndef OB_CUDA_IMPL_CUH
#define OB_CUDA_IMPL_CUH

#include <cuda_runtime.h>

extern "C" {
#include "core/err.h"
#include "cuda/cuda_backend.h"
#include "gguf/qtype.h"
}

struct cuda_ctx {
    int dev;
    int sm_count;
    cudaStream_t stream;
    void *cublas;        /* cublasHandle_t when cuBLAS was loaded, else NULL */
    /* Scratch grown on demand (cuda_scratch): F16 weight tiles and activations for GemmEx,
     * split-K partials for attention. Sizes are bytes. */
    void *gemm_ws;
    size_t gemm_ws_bytes;
    float *attn_ws;
    size_t attn_ws_bytes;
    void *q8_ws; /* int8 activation rows of a decode product (matvec_q8.cu) */
    size_t q8_ws_bytes;
    /* Work queued on the stream or waited for: bumped by every launch (CUDA_LAUNCHED), copy,
     * fill, cuBLAS call and synchronization. q8_ws still holds q8_x quantized (q8_n_tok rows
     * of q8_n_in) while gen equals q8_gen: products of one activation row in a row (Q, K and
     * V; gate and up) quantize it once. The host writes activations only after a sync. */
    uint64_t gen, q8_gen;
    const float *q8_x;
    int64_t q8_n_in, q8_n_tok;
};

/* Activation rows one decode product (k_matvec, k_matvec_q8) dots against each weight row. */
#define MATVEC_MAX_TOK 8

/* y (n_tok, n_out) = x W^T for 1 <= n_tok <= MATVEC_MAX_TOK on int8 activations; W's type
 * must pass cuda_q8_type (cuda_backend.h) and n_in be a multiple of 32 (else OB_ERR_ARG). */
ob_status cuda_matvec_q8(cuda_ctx *c, float *y, const cuda_weight *w, const float *x,
                         int64_t n_tok, ob_err *err);

/* Writes "cuda: <call>: <cudaGetErrorString> (<file>:<line>)" and returns OB_ERR_CUDA. */
ob_status cuda_fail_call(ob_err *err, const char *call, cudaError_t e, const char *file,
                         int line);

/* Every CUDA runtime call goes through this macro, inside functions returning ob_status with
 * an `ob_err *err` in scope: a failure returns OB_ERR_CUDA naming the call text. */
#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        cudaError_t cuda_e_ = (call);                                                           \
        if (cuda_e_ != cudaSuccess) return cuda_fail_call(err, #call, cuda_e_, __FILE__, __LINE__); \
    } while (0)

/* After a kernel launch, with the context `c` in scope: counts the launch (c->gen), and a bad
 * configuration or a missing kernel image shows up here, named "launch <kernel>" (a string
 * expression). */
#define CUDA_LAUNCHED(kernel)                                                                   \
    do {                                                                                        \
        (c)->gen++;                                                                             \
        cudaError_t cuda_e_ = cudaGetLastError();                                               \
        if (cuda_e_ != cudaSuccess) return cuda_fail_launch(err, (kernel), cuda_e_);            \
    } while (0)

/* "cuda: launch <kernel>: <cudaGetErrorString>", OB_ERR_CUDA. */
ob_status cuda_fail_launch(ob_err *err, const char *kernel, cudaError_t e);

/* Makes the context's device current on this thread: runtime calls and launches go to the
 * current device, and a process may hold contexts on several devices. */
#define CUDA_USE(c) CUDA_CHECK(cudaSetDevice((c)->dev))

/* Ensures *buf holds at least `bytes` (freeing the old one first); `what` names it. */
ob_status cuda_scratch(cuda_ctx *c, void **buf, size_t *have, size_t bytes, const char *what,
                       ob_err *err);

/* cuBLAS GemmEx on F16 inputs with F32 output and accumulation, column-major as cuBLAS sees
 * it: C (m, n) = A^T (m, k) B (k, n) with A (k, m) lda, B (k, n) ldb, C ldc. Only called when
 * c->cublas is set. */
ob_status cuda_cublas_gemm_f16(cuda_ctx *c, int m, int n, int k, const void *a, int lda,
                               const void *b, int ldb, float *cm, int ldc, ob_err *err);

/* The record of device and managed allocations behind cuda_ptr_is_device (dev_ptrs.cu).
 * cuda_dev_ptrs_add returns false when there is no host memory to record it (the caller
 * frees the allocation and reports out of memory); remove takes an allocation's base address
 * and ignores one it does not know. */
bool cuda_dev_ptrs_add(const void *p, size_t bytes);
void cuda_dev_ptrs_remove(const void *p);

/* Grid-size helper: ceil(a / b). */
static inline unsigned cuda_blocks(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

/* Warp-wide sum and max by butterfly shuffles: every lane ends with the result. */
__device__ __forceinline__ float cuda_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float cuda_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif
