/*
 * State of a CUDA backend's contiguous range of layers (range.c): the F16 KV cache, device
 * copies of weights found by their host address, and staging of host activations, so the
 * engine's op table can be filled with a few lines of glue per op whether the model's
 * activation buffers are device memory (no copies) or host memory (copies through the counted
 * path, per op).
 */
#ifndef OB_CUDA_RANGE_H
#define OB_CUDA_RANGE_H

#include "cuda/cuda_backend.h"

#define CUDA_RANGE_SLOTS 4 /* staging buffers: the most operands one op has */

typedef struct cuda_range_shape {
    int64_t n_layer;          /* layers in the range */
    int64_t n_ctx;            /* cache positions */
    int64_t n_head_kv, head_dim;
} cuda_range_shape;

/* Bytes of device memory the KV cache of a range takes (K and V, f16): the same figure
 * cuda_range_new allocates, for planners. OB_ERR_LIMIT on overflow. */
ob_status cuda_range_kv_bytes(const cuda_range_shape *s, size_t *out, ob_err *err);

typedef struct cuda_range cuda_range;

/* Allocates the KV cache, (n_layer, n_ctx, n_head_kv * head_dim) f16 for K and for V (not
 * zeroed: rows are written before they are read); none when s->n_layer is 0 (a backend
 * that keeps its own cache uses the range for vectors and staging only). c is borrowed and
 * must outlive the range. *out owned by the caller (cuda_range_free). Out of device memory:
 * OB_ERR_NOMEM naming the KV cache with the bytes needed and free. */
ob_status cuda_range_new(cuda_ctx *c, const cuda_range_shape *s, cuda_range **out,
                         ob_err *err);
void cuda_range_free(cuda_range *r); /* frees the cache, weights and staging; NULL is a no-op */

/* Layer il's (0-based within the range) caches, (n_ctx, n_head_kv * head_dim) f16, device. */
uint16_t *cuda_range_k(cuda_range *r, int64_t il);
uint16_t *cuda_range_v(cuda_range *r, int64_t il);

/* The device copy of a host weight (n_out rows of n_in elements of `type`), uploaded on the
 * first call for this host address and found again afterwards. *out valid until
 * cuda_range_free. Errors as cuda_weight_upload. */
ob_status cuda_range_weight(cuda_range *r, const char *name, const void *host, uint32_t type,
                            int64_t n_in, int64_t n_out, const cuda_weight **out, ob_err *err);

/* The same for an f32 vector of n elements (norm weights, RoPE factors). */
ob_status cuda_range_vector(cuda_range *r, const char *name, const float *host, int64_t n,
                            const float **out, ob_err *err);

/* Device bytes of the weights uploaded so far. */
size_t cuda_range_weight_bytes(const cuda_range *r);

/* An op's input: *dev = p when p is device memory; otherwise p's bytes are copied into
 * staging slot `slot` (0 <= slot < CUDA_RANGE_SLOTS) and *dev points there. */
ob_status cuda_range_stage_in(cuda_range *r, int slot, const void *p, size_t bytes,
                              const void **dev, ob_err *err);
/* An op's output: *dev = p when p is device memory, else staging slot `slot` (contents
 * undefined; pass the slot of an input staged for an in-place op). */
ob_status cuda_range_stage_out(cuda_range *r, int slot, void *p, size_t bytes, void **dev,
                               ob_err *err);
/* After the op: copies staging slot `slot` back to p when p is host memory; nothing when p is
 * device memory. */
ob_status cuda_range_stage_back(cuda_range *r, int slot, void *p, size_t bytes, ob_err *err);

#endif
