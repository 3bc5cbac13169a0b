/*
 * The CUDA backend's KV cache: per layer one K and one V buffer of F16 rows laid out as the
 * CPU backend's (backend_cpu.c), a full-attention layer with a row per pool position read
 * through each sequence's block table, a sliding-window layer with a ring of model_swa_rows
 * rows per sequence. Stores, attention and the copy-on-write and fork copies.
 *
 * Each batch's map (position, sequence, pool slot and block table per row, cuda_kv_map) is
 * built on the host and sent once: every layer of a step sees the same batch, so the upload
 * cache finds it unchanged after the first layer.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "cuda/cuda_be.h"

#include <string.h>

static int64_t kv_row(const cuda_be *b) { return b->shape.n_head_kv * b->shape.head_dim; }

static size_t layer_bytes(const cuda_be *b, int64_t il) {
    return (size_t)model_layer_rows(&b->shape, il) * (size_t)kv_row(b) * sizeof(uint16_t);
}

ob_status cb_kv_new(cuda_be *b, ob_err *err) {
    const int64_t n = b->shape.n_layer;
    b->k = ob_calloc((size_t)(n ? n : 1), sizeof *b->k);
    b->v = ob_calloc((size_t)(n ? n : 1), sizeof *b->v);
    if (!b->k || !b->v) return ob_fail(err, OB_ERR_NOMEM, "cuda backend: out of memory");
    for (int64_t l = 0; l < n; l++) {
        const size_t bytes = layer_bytes(b, b->base.layer_lo + l);
        if (!bytes) continue; /* a recurrent layer keeps no cache */
        ob_status st = cuda_buf_alloc(b->ctx, bytes, "KV cache (K)", (void **)&b->k[l], err);
        if (!st) st = cuda_buf_alloc(b->ctx, bytes, "KV cache (V)", (void **)&b->v[l], err);
        /* zeroed, so attention never meets NaN bit patterns in rows not yet written */
        if (!st) st = cuda_buf_zero(b->ctx, b->k[l], bytes, err);
        if (!st) st = cuda_buf_zero(b->ctx, b->v[l], bytes, err);
        if (st) return st;
    }
    return OB_OK;
}

void cb_kv_free(cuda_be *b) {
    for (int64_t l = 0; l < b->shape.n_layer; l++) {
        if (b->k) cuda_buf_free(b->ctx, b->k[l]);
        if (b->v) cuda_buf_free(b->ctx, b->v[l]);
    }
    ob_free(b->k);
    ob_free(b->v);
    ob_free(b->meta);
}

/* The batch's map on the device (map->meta_dev), for layer il; false after a failure. Rows
 * past a row's last block have no table entry: 0 there, never read. */
static bool kv_map(cuda_be *b, int64_t il, const model_kv_batch *kv, cuda_kv_map *map) {
    const int64_t n = kv->n_tok;
    const int64_t n_blocks = kv->blocks ? (kv->n_kv + KV_BLOCK - 1) / KV_BLOCK : 0;
    const int64_t stride = CUDA_KV_META_TABLE + n_blocks;
    size_t ints;
    if (b->st) return false;
    if (ob_mul_size((size_t)n, (size_t)stride, &ints)) {
        cb_failed(b, ob_fail(&b->err, OB_ERR_LIMIT, "cuda backend: a batch map of %lld rows "
                             "x %lld overflows", (long long)n, (long long)stride));
        return false;
    }
    if (ints > b->meta_cap) {
        int32_t *m = ob_realloc(b->meta, ints, sizeof *m);
        if (!m) {
            cb_failed(b, ob_fail(&b->err, OB_ERR_NOMEM, "cuda backend: out of memory"));
            return false;
        }
        b->meta = m;
        b->meta_cap = ints;
    }
    for (int64_t t = 0; t < n; t++) {
        int32_t *m = b->meta + t * stride;
        m[CUDA_KV_META_POS] = kv->pos[t];
        m[CUDA_KV_META_SEQ] = kv->seq[t];
        m[CUDA_KV_META_SLOT] = kv->slot[t];
        for (int64_t j = 0; j < n_blocks; j++)
            m[CUDA_KV_META_TABLE + j] = j <= kv->pos[t] / KV_BLOCK ? kv->blocks[t][j] : 0;
    }
    const bool swa = model_layer_is_swa(&b->shape, il);
    *map = (cuda_kv_map){.meta_dev = cb_upload_get(b, CB_UP_META, b->meta, ints * 4),
                         .stride = stride,
                         .block = KV_BLOCK,
                         .ring_rows = swa ? model_swa_rows(&b->shape) : 0,
                         .n_swa = swa ? b->shape.n_swa : 0,
                         .n_kv = kv->n_kv};
    return map->meta_dev != NULL;
}

void cb_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                 const model_kv_batch *kv) {
    cuda_be *b = as_cb(be);
    const int64_t row = kv_row(b), l = il - be->layer_lo;
    const size_t bytes = (size_t)(kv->n_tok * row) * sizeof(float);
    const void *dk, *dv;
    cuda_kv_map map;
    if (!kv_map(b, il, kv, &map) ||
        cb_failed(b, cuda_range_stage_in(b->r, 0, k, bytes, &dk, &b->err)) ||
        cb_failed(b, cuda_range_stage_in(b->r, 1, v, bytes, &dv, &b->err)))
        return;
    cb_failed(b, cuda_kv_store_map(b->ctx, b->k[l], b->v[l], row, dk, dv, kv->n_tok, &map,
                                   &b->err));
}

void cb_attention(model_backend *be, int64_t il, float *out, const float *q,
                  const model_kv_batch *kv, float scale) {
    cuda_be *b = as_cb(be);
    const model_backend_shape *s = &b->shape;
    const int64_t l = il - be->layer_lo, n = kv->n_tok;
    const size_t bytes = (size_t)(n * s->n_head * s->head_dim) * sizeof(float);
    const void *dq;
    void *dout;
    cuda_kv_map map;
    if (!kv_map(b, il, kv, &map) ||
        cb_failed(b, cuda_range_stage_in(b->r, 0, q, bytes, &dq, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, 1, out, bytes, &dout, &b->err)))
        return;
    const cuda_attn_args a = {.q = dq,
                              .k = b->k[l],
                              .v = b->v[l],
                              .out = dout,
                              .n_tok = n,
                              .pos0 = 0,
                              .n_head = s->n_head,
                              .n_head_kv = s->n_head_kv,
                              .head_dim = s->head_dim,
                              .kv_stride = kv_row(b),
                              .scale = scale,
                              .map = &map};
    if (cb_failed(b, cuda_attention(b->ctx, &a, &b->err))) return;
    cb_failed(b, cuda_range_stage_back(b->r, 1, out, bytes, &b->err));
}

void cb_kv_copy(model_backend *be, const kv_copy *copies, int64_t n) {
    cuda_be *b = as_cb(be);
    const size_t row = (size_t)kv_row(b) * sizeof(uint16_t);
    for (int64_t il = be->layer_lo; il < be->layer_hi && !b->st; il++) {
        if (model_layer_is_swa(&b->shape, il) || model_layer_is_recurrent(&b->shape, il))
            continue;
        const int64_t l = il - be->layer_lo;
        for (int64_t i = 0; i < n; i++) {
            const size_t src = (size_t)copies[i].src * KV_BLOCK * row;
            const size_t dst = (size_t)copies[i].dst * KV_BLOCK * row;
            const size_t bytes = (size_t)copies[i].n_rows * row;
            if (cb_failed(b, cuda_copy_d2d(b->ctx, (char *)b->k[l] + dst,
                                           (const char *)b->k[l] + src, bytes, &b->err)) ||
                cb_failed(b, cuda_copy_d2d(b->ctx, (char *)b->v[l] + dst,
                                           (const char *)b->v[l] + src, bytes, &b->err)))
                return;
        }
    }
}

void cb_seq_copy(model_backend *be, int32_t src, int32_t dst) {
    cuda_be *b = as_cb(be);
    const size_t ring = (size_t)model_swa_rows(&b->shape) * (size_t)kv_row(b) * sizeof(uint16_t);
    for (int64_t il = be->layer_lo; il < be->layer_hi && src != dst && !b->st; il++) {
        if (!model_layer_is_swa(&b->shape, il)) continue;
        const int64_t l = il - be->layer_lo;
        if (cb_failed(b, cuda_copy_d2d(b->ctx, (char *)b->k[l] + (size_t)dst * ring,
                                       (const char *)b->k[l] + (size_t)src * ring, ring,
                                       &b->err)) ||
            cb_failed(b, cuda_copy_d2d(b->ctx, (char *)b->v[l] + (size_t)dst * ring,
                                       (const char *)b->v[l] + (size_t)src * ring, ring,
                                       &b->err)))
            return;
    }
}
