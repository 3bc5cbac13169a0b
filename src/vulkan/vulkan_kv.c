/*
 * The Vulkan backend's KV cache: per layer one K and one V buffer of F16 rows laid out as the
 * CPU backend's (backend_cpu.c): a full-attention layer has a row per pool position, read
 * through each sequence's block table; a sliding-window layer a ring of model_swa_rows rows
 * per sequence. Stores, attention (attention.comp), and the copy-on-write and fork copies.
 */
#include "core/alloc.h"
#include "vulkan/vulkan_be.h"

#include <string.h>

static int64_t kv_row(const vulkan_backend *b) {
    return b->shape.n_head_kv * b->shape.head_dim;
}

size_t vulkan_kv_layer_bytes(const model_backend_shape *s, int64_t il) {
    return (size_t)model_layer_rows(s, il) * (size_t)(s->n_head_kv * s->head_dim) * 2;
}

ob_status vulkan_kv_new(model_backend *be, ob_err *err) {
    vulkan_backend *b = as_vb(be);
    const int64_t n = b->shape.n_layer;
    b->k = ob_calloc((size_t)n, sizeof *b->k);
    b->v = ob_calloc((size_t)n, sizeof *b->v);
    if (!b->k || !b->v) return ob_fail(err, OB_ERR_NOMEM, "vulkan backend: out of memory");
    for (int64_t l = 0; l < n; l++) {
        const size_t bytes = vulkan_kv_layer_bytes(&b->shape, be->layer_lo + l);
        if (bytes > b->c->max_range)
            return ob_fail(err, OB_ERR_LIMIT,
                           "vulkan backend: layer %lld's K cache of %zu "
                           "bytes exceeds the device's binding limit of %llu bytes (use a "
                           "smaller --ctx)",
                           (long long)(be->layer_lo + l), bytes,
                           (unsigned long long)b->c->max_range);
        if (vulkan_buf_new(b->c, bytes, false, "KV cache", &b->k[l]) ||
            vulkan_buf_new(b->c, bytes, false, "KV cache", &b->v[l])) {
            if (err) *err = b->c->err;
            return b->c->st;
        }
        /* zeroed, so attention never meets NaN bit patterns in rows not yet written */
        if (vulkan_op_begin(b->c, 0)) break;
        vkCmdFillBuffer(b->c->cmd, b->k[l].buf, 0, VK_WHOLE_SIZE, 0);
        vkCmdFillBuffer(b->c->cmd, b->v[l].buf, 0, VK_WHOLE_SIZE, 0);
        b->c->n_recorded += 2;
    }
    if (vulkan_flush(b->c) && err) *err = b->c->err;
    return b->c->st;
}

/* Cache row of batch row t on layer il: its pool slot, or its sequence's ring row. */
static int32_t store_row(const vulkan_backend *b, int64_t il, const model_kv_batch *kv, int64_t t) {
    if (!model_layer_is_swa(&b->shape, il)) return kv->slot[t];
    const int64_t rows = model_swa_rows(&b->shape);
    return (int32_t)(kv->seq[t] * rows + kv->pos[t] % rows);
}

void vulkan_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                     const model_kv_batch *kv) {
    vulkan_backend *b = as_vb(be);
    const int64_t row = kv_row(b), l = il - be->layer_lo, n = kv->n_tok;
    const size_t bytes = (size_t)(n * row) * 4;
    vulkan_ref r[5];
    int32_t *rows;
    if (vulkan_op_begin(b->c, 2 * bytes + (size_t)n * 4) ||
        vulkan_stage(b->c, (size_t)n * 4, &r[4], (void **)&rows))
        return;
    for (int64_t t = 0; t < n; t++)
        rows[t] = store_row(b, il, kv, t);
    if (!vulkan_be_ref_in(b, k, bytes, &r[2]) || !vulkan_be_ref_in(b, v, bytes, &r[3])) return;
    r[0] = (vulkan_ref){b->k[l].buf, 0, b->k[l].size};
    r[1] = (vulkan_ref){b->v[l].buf, 0, b->v[l].size};
    const uint32_t pc[] = {(uint32_t)n, (uint32_t)(row / 2)};
    vulkan_be_dispatch(b, "kv_store", r, 5, pc, 2, ((uint64_t)(n * row / 2) + 63) / 64, 1);
    vulkan_be_op_done(b);
}

void vulkan_attention(model_backend *be, int64_t il, float *out, const float *q,
                      const model_kv_batch *kv, float scale) {
    vulkan_backend *b = as_vb(be);
    const model_backend_shape *s = &b->shape;
    const bool swa = model_layer_is_swa(s, il);
    const int64_t l = il - be->layer_lo, n = kv->n_tok, qd = s->n_head * s->head_dim;
    /* per row: position, sequence, then (full-attention layers) its block table */
    const int64_t n_blocks = swa ? 0 : (kv->n_kv + KV_BLOCK - 1) / KV_BLOCK;
    const int64_t stride = 2 + n_blocks;
    const size_t meta_bytes = (size_t)(n * stride) * 4, bytes = (size_t)(n * qd) * 4;
    vulkan_ref r[5];
    int32_t *meta;
    if (vulkan_op_begin(b->c, 2 * bytes + meta_bytes) ||
        vulkan_stage(b->c, meta_bytes, &r[4], (void **)&meta))
        return;
    for (int64_t t = 0; t < n; t++) {
        int32_t *m = meta + t * stride;
        m[0] = kv->pos[t];
        m[1] = kv->seq[t];
        for (int64_t j = 0; j < n_blocks; j++)
            m[2 + j] = j <= kv->pos[t] / KV_BLOCK ? kv->blocks[t][j] : 0;
    }
    if (!vulkan_be_ref_in(b, q, bytes, &r[1]) || !vulkan_be_ref_out(b, out, bytes, false, &r[0]))
        return;
    r[2] = (vulkan_ref){b->k[l].buf, 0, b->k[l].size};
    r[3] = (vulkan_ref){b->v[l].buf, 0, b->v[l].size};
    const uint32_t pc[] = {(uint32_t)n,
                           (uint32_t)s->n_head,
                           (uint32_t)s->n_head_kv,
                           (uint32_t)s->head_dim,
                           (uint32_t)kv_row(b),
                           vulkan_be_fbits(scale),
                           swa ? (uint32_t)s->n_swa : 0u,
                           swa ? (uint32_t)model_swa_rows(s) : 0u,
                           KV_BLOCK,
                           (uint32_t)stride};
    vulkan_be_dispatch(b, "attention", r, 5, pc, 10, (uint64_t)(n * s->n_head), 1);
    vulkan_be_op_done(b);
}

void vulkan_kv_copy(model_backend *be, const kv_copy *copies, int64_t n) {
    vulkan_backend *b = as_vb(be);
    const VkDeviceSize row = (VkDeviceSize)kv_row(b) * 2;
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        if (model_layer_is_swa(&b->shape, il)) continue;
        const int64_t l = il - be->layer_lo;
        for (int64_t i = 0; i < n; i++) {
            const VkDeviceSize src = (VkDeviceSize)copies[i].src * KV_BLOCK * row;
            const VkDeviceSize dst = (VkDeviceSize)copies[i].dst * KV_BLOCK * row;
            const VkDeviceSize bytes = (VkDeviceSize)copies[i].n_rows * row;
            if (vulkan_op_begin(b->c, 0) ||
                vulkan_copy(b->c, b->k[l].buf, dst, b->k[l].buf, src, bytes) ||
                vulkan_copy(b->c, b->v[l].buf, dst, b->v[l].buf, src, bytes))
                return;
        }
    }
}

void vulkan_seq_copy(model_backend *be, int32_t src, int32_t dst) {
    vulkan_backend *b = as_vb(be);
    const VkDeviceSize ring = (VkDeviceSize)model_swa_rows(&b->shape) * (VkDeviceSize)kv_row(b) * 2;
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        if (!model_layer_is_swa(&b->shape, il) || src == dst) continue;
        const int64_t l = il - be->layer_lo;
        if (vulkan_op_begin(b->c, 0) ||
            vulkan_copy(b->c, b->k[l].buf, dst * ring, b->k[l].buf, src * ring, ring) ||
            vulkan_copy(b->c, b->v[l].buf, dst * ring, b->v[l].buf, src * ring, ring))
            return;
    }
}
