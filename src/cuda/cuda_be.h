/*
 * Shared by the CUDA backend's files (src/model/backend_cuda.c: weights, element-wise ops,
 * activations and the table; src/cuda/backend_kv.c: the paged KV cache and attention): the
 * backend's state, its first-failure record, and small host arrays kept on the device.
 */
#ifndef OB_CUDA_BE_H
#define OB_CUDA_BE_H

#include "cuda/cuda_range.h"
#include "model/backend.h"

/* Host arrays an op needs on the device (token ids, positions, the batch's cache map): each
 * kind has a device buffer holding the last array sent, which is reused while the host's
 * array is unchanged, so a step sends its positions and map once, not once per layer. The
 * copy is queued from page-locked memory without waiting, so the host goes on recording ops;
 * that memory is rewritten only after a sync. */
enum { CB_UP_IDS, CB_UP_POS, CB_UP_META, CB_UP_N };

typedef struct cb_upload {
    void *dev;       /* device copy (cap bytes) */
    void *pinned;    /* page-locked host copy (cap bytes): what dev holds or will hold */
    size_t cap;
    size_t bytes;    /* of the last array sent */
    bool in_flight;  /* a copy from pinned may not have run yet (until the next sync) */
} cb_upload;

#define CB_MAX_REGIONS 16 /* managed activation buffers (ops.host_buf) */

typedef struct cuda_be {
    model_backend base;
    model_backend_shape shape;
    cuda_ctx *ctx;       /* owned */
    cuda_range *r;       /* owned: norm and bias vectors, staging of host operands */
    cuda_weight *w;      /* (n_w) the range's weights by model_weight.id; data_dev NULL when
                            the range does not read it */
    int64_t n_w;
    uint16_t **k, **v;   /* (shape.n_layer) each layer's F16 cache, model_layer_rows rows */
    void *regions[CB_MAX_REGIONS]; /* managed activation buffers handed out */
    int n_regions;
    cb_upload up[CB_UP_N];
    void *stream;        /* weight streaming: the buffer a host weight is copied into for one
                            product (ops.matmul_streamed), stream_cap bytes */
    size_t stream_cap;
    int32_t *meta;       /* host scratch for the batch's cache map */
    size_t meta_cap;     /* ints */
    ob_status st;        /* first failure, OB_OK while all is well */
    ob_err err;
} cuda_be;

static inline cuda_be *as_cb(model_backend *be) { return (cuda_be *)be; }

/* Records the first failure; true when the op should stop (now or earlier). */
static inline bool cb_failed(cuda_be *b, ob_status st) {
    if (st && !b->st) b->st = st;
    return b->st != OB_OK;
}

/* The device copy of host array `host` of `bytes` for kind `which` (cb_upload); NULL after a
 * failure (recorded) or for 0 bytes. */
const void *cb_upload_get(cuda_be *b, int which, const void *host, size_t bytes);
/* After a sync: no upload's copy is pending. */
void cb_uploads_settled(cuda_be *b);

/* ---- backend_kv.c ---- */
ob_status cb_kv_new(cuda_be *b, ob_err *err);
void cb_kv_free(cuda_be *b);
void cb_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                 const model_kv_batch *kv);
void cb_attention(model_backend *be, int64_t il, float *out, const float *q,
                  const model_kv_batch *kv, float scale);
void cb_kv_copy(model_backend *be, const kv_copy *copies, int64_t n);
void cb_seq_copy(model_backend *be, int32_t src, int32_t dst);

#endif
