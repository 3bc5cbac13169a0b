/*
 * The CUDA backend's entry points in a build without nvcc: device queries say "no CUDA
 * device: using the CPU (built without CUDA)" and everything else reports OB_ERR_UNSUPPORTED,
 * so code that calls cuda_* links and runs the same with and without CUDA. A build with nvcc
 * defines OB_HAVE_CUDA and this file compiles to nothing; the .cu files provide the symbols.
 */
#ifndef OB_HAVE_CUDA

#include "core/err.h"
#include "cuda/cuda_backend.h"
#include "gguf/qtype.h"

#include <string.h>

/* Every entry point below that needs a context fails with this; none can be reached with a
 * context, since cuda_ctx_new never returns one here. */
static ob_status no_cuda(ob_err *err) {
    return ob_fail(err, OB_ERR_UNSUPPORTED, "no CUDA device: using the CPU (built without CUDA)");
}

bool cuda_compiled(void) { return false; }

ob_status cuda_device_count(int *n, ob_err *err) {
    *n = 0;
    return no_cuda(err);
}

ob_status cuda_device_get_info(int dev, cuda_device_info *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    return no_cuda(err);
}

ob_status cuda_ctx_new(int dev, cuda_ctx **out, ob_err *err) {
    *out = NULL;
    return no_cuda(err);
}

void cuda_ctx_free(cuda_ctx *c) {}
void cuda_fault_set(int kind) {}
ob_status cuda_ctx_sync(cuda_ctx *c, ob_err *err) { return no_cuda(err); }
bool cuda_ctx_has_cublas(const cuda_ctx *c) { return false; }

ob_status cuda_buf_alloc(cuda_ctx *c, size_t bytes, const char *what, void **out, ob_err *err) {
    *out = NULL;
    return no_cuda(err);
}

void cuda_buf_free(cuda_ctx *c, void *p) {}

ob_status cuda_managed_alloc(cuda_ctx *c, size_t bytes, const char *what, void **out,
                             ob_err *err) {
    *out = NULL;
    return no_cuda(err);
}

ob_status cuda_copy_d2d(cuda_ctx *c, void *dst, const void *src, size_t bytes, ob_err *err) {
    return no_cuda(err);
}
bool cuda_ptr_is_device(const void *p) { return false; }
ob_status cuda_buf_zero(cuda_ctx *c, void *p, size_t bytes, ob_err *err) { return no_cuda(err); }

ob_status cuda_copy_h2d(cuda_ctx *c, void *dst, const void *src, size_t bytes, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_host_alloc(cuda_ctx *c, size_t bytes, void **out, ob_err *err) {
    *out = NULL;
    return no_cuda(err);
}

void cuda_host_free(void *p) {}

ob_status cuda_copy_h2d_async(cuda_ctx *c, void *dst, const void *src, size_t bytes,
                              ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_copy_d2h(cuda_ctx *c, void *dst, const void *src, size_t bytes, ob_err *err) {
    return no_cuda(err);
}

void cuda_copy_stats_get(cuda_copy_stats *out) { memset(out, 0, sizeof *out); }
void cuda_copy_stats_reset(void) {}

bool cuda_type_supported(uint32_t type) { return false; }

bool cuda_q8_type(uint32_t type) { return false; }

ob_status cuda_weight_upload(cuda_ctx *c, const char *name, const void *host, uint32_t type,
                             int64_t n_in, int64_t n_out, cuda_weight *out, ob_err *err) {
    memset(out, 0, sizeof *out);
    return no_cuda(err);
}

void cuda_weight_free(cuda_ctx *c, cuda_weight *w) {}

ob_status cuda_get_rows(cuda_ctx *c, const cuda_weight *w, const int32_t *ids, int64_t n,
                        float *out, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_matmul(cuda_ctx *c, float *y, const cuda_weight *w, const float *x, int64_t n_tok,
                      ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_rmsnorm(cuda_ctx *c, float *out, const float *x, const float *w, int64_t n_rows,
                       int64_t n, float eps, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_rope(cuda_ctx *c, float *x, int64_t n_tok, int64_t n_head, int64_t head_dim,
                    const int32_t *pos, const cuda_rope_params *rp, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_swiglu(cuda_ctx *c, float *out, const float *gate, const float *up, int64_t n,
                      ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_geglu(cuda_ctx *c, float *out, const float *gate, const float *up, int64_t n,
                     ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_add(cuda_ctx *c, float *x, const float *y, int64_t n, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_scale(cuda_ctx *c, float *x, float s, int64_t n, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_add_bias(cuda_ctx *c, float *x, const float *b, int64_t n_rows, int64_t n,
                        ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_kv_store_map(cuda_ctx *c, uint16_t *k_cache, uint16_t *v_cache,
                            int64_t kv_stride, const float *k, const float *v, int64_t n_tok,
                            const cuda_kv_map *map, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_softmax(cuda_ctx *c, float *x, int64_t n_rows, int64_t n, float scale,
                       ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_kv_store(cuda_ctx *c, uint16_t *k_cache, uint16_t *v_cache, int64_t kv_stride,
                        const float *k, const float *v, int64_t pos0, int64_t n_tok,
                        ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_attention(cuda_ctx *c, const cuda_attn_args *a, ob_err *err) {
    return no_cuda(err);
}

ob_status cuda_argmax(cuda_ctx *c, const float *x, int64_t n_rows, int64_t n, int32_t *out,
                      ob_err *err) {
    return no_cuda(err);
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int cuda_stub_unused;
#endif
