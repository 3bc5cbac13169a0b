/*
 * Shared by the Vulkan backend's files (vulkan_backend.c: weights, element-wise ops and the
 * table; vulkan_kv.c: the KV cache and attention): the backend's state and its operand
 * functions.
 */
#ifndef OB_VULKAN_BE_H
#define OB_VULKAN_BE_H

#include "model/backend.h"
#include "vulkan/vulkan_impl.h"

#define VB_MAX_REGIONS 32

typedef struct vb_weight {
    uint32_t type;
    int64_t n_in, n_out, rows_per_piece;
    size_t row_bytes;
    int n_pieces;
    vulkan_buf *pieces; /* (n_pieces) rows [i * rows_per_piece, ...) */
} vb_weight;

/* One matrix (gate, up or down) of a layer's routed experts: pieces of whole experts, each
 * piece one binding (wtype.glsl mode 2). */
typedef struct vb_experts {
    uint32_t type;
    int64_t n_in, n_out, per_piece; /* per_piece: experts in each piece but maybe the last */
    size_t row_bytes, e_bytes;      /* e_bytes: one expert's matrix */
    int n_pieces;
    vulkan_buf *pieces;
} vb_experts;

typedef struct vb_region {
    vulkan_buf buf; /* host-visible; map is what host_buf returned */
} vb_region;

typedef struct vulkan_backend {
    model_backend base;
    model_backend_shape shape;
    vulkan_ctx *c; /* owned */
    vb_weight *w;  /* (n_w) by weight id; n_pieces 0 for weights outside its layers */
    int64_t n_w;
    vulkan_buf *k, *v; /* (n_layer) per layer (model_layer_rows, n_head_kv * head_dim) f16 */
    vb_region regions[VB_MAX_REGIONS];
    int n_regions;
    bool pending_readback; /* an op staged a result: flush before returning */
    vulkan_buf *stream; /* (n_stream) pieces of the buffer streamed host weights go into */
    int n_stream;
    vb_experts *experts; /* (3 n_layer) gate, up, down of each MoE layer, or NULL */
    float *moe_rows;     /* model_moe_device_bytes of a region: one pass's routing and rows */
} vulkan_backend;

static inline vulkan_backend *as_vb(model_backend *be) {
    return (vulkan_backend *)be;
}

/* An input of `bytes` at host p: bound in place inside a host_buf region, else staged. False
 * after a failure (kept in the context). */
bool vulkan_be_ref_in(vulkan_backend *b, const void *p, size_t bytes, vulkan_ref *ref);

/* An output (copy_in: also read by the op) of `bytes` at host p; staged ones come back at
 * vulkan_be_op_done. */
bool vulkan_be_ref_out(vulkan_backend *b, void *p, size_t bytes, bool copy_in, vulkan_ref *ref);

/* Ends an op: flushes when it staged a result for the host. */
void vulkan_be_op_done(vulkan_backend *b);

/* Records shader over `groups` workgroups (spread over x and y) times gz. */
void vulkan_be_dispatch(vulkan_backend *b, const char *shader, const vulkan_ref *refs, int n_refs,
                        const uint32_t *pc, int n_pc, uint64_t groups, uint32_t gz);

uint32_t vulkan_be_fbits(float f);

/* The matrix-product shader of weight type `type`, NULL for a type without one. */
const char *vulkan_be_type_shader(uint32_t type);

/* vulkan_moe.c */
/* Uploads the routed experts of the backend's MoE layers and takes the region of their rows;
 * OB_ERR_UNSUPPORTED for a block the kernels do not run (a shared expert, more than
 * VULKAN_MOE_MAX_USED experts per token, more than VULKAN_MOE_MAX_EXPERTS experts). */
#define VULKAN_MOE_MAX_USED 64
#define VULKAN_MOE_MAX_EXPERTS 1024
ob_status vulkan_moe_new(vulkan_backend *b, ob_err *err);
void vulkan_moe_free(vulkan_backend *b);
void vulkan_moe_ffn(model_backend *be, int64_t il, float *out, const float *x, int64_t n_tok);


/* vulkan_kv.c */
void vulkan_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                     const model_kv_batch *kv);
void vulkan_attention(model_backend *be, int64_t il, float *out, const float *q,
                      const model_kv_batch *kv, float scale);
void vulkan_kv_copy(model_backend *be, const kv_copy *copies, int64_t n);
void vulkan_seq_copy(model_backend *be, int32_t src, int32_t dst);
/* Allocates the per-layer K and V buffers (zeroed); OB_ERR_LIMIT when one layer's cache
 * exceeds a binding. */
ob_status vulkan_kv_new(model_backend *be, ob_err *err);
/* Bytes of one layer's K (or V) cache. */
size_t vulkan_kv_layer_bytes(const model_backend_shape *s, int64_t il);

#endif
