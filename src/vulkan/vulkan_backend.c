/*
 * The Vulkan backend: the op table of backend.h over the shaders in src/vulkan/shaders/.
 * Weights are uploaded once when the backend is made, each in pieces of whole rows that fit
 * one storage-buffer binding (maxStorageBufferRange); the KV cache has one K and one V buffer
 * per layer, laid out as the CPU backend's (pool rows, or a ring per sequence on
 * sliding-window layers).
 *
 * Operands: a pointer inside a buffer from ops.host_buf is bound where it is, so the forward
 * step's activations never leave the device. Any other host pointer is staged: inputs are
 * copied into the staging arena, outputs come back after a flush, which the op then does at
 * once (so a caller holding plain host buffers, like the kernel tests, sees results on
 * return). Ops record and return; ops.sync waits and reports the first failure.
 */
#include "model/backend.h"

#include "core/alloc.h"
#include "gguf/qtype.h"
#include "vulkan/vulkan_be.h"

#include <math.h>
#include <string.h>

/* ---- operands ---------------------------------------------------------------------------- */

static bool in_region(vulkan_backend *b, const void *p, size_t bytes, vulkan_ref *ref) {
    for (int i = 0; i < b->n_regions; i++) {
        const char *base = b->regions[i].buf.map;
        if ((const char *)p >= base && (const char *)p + bytes <= base + b->regions[i].buf.size) {
            *ref = (vulkan_ref){b->regions[i].buf.buf, (VkDeviceSize)((const char *)p - base),
                                (VkDeviceSize)((bytes + 3) & ~(size_t)3)};
            return true;
        }
    }
    return false;
}

/* An input of `bytes` at host p. */
bool vulkan_be_ref_in(vulkan_backend *b, const void *p, size_t bytes, vulkan_ref *ref) {
    if (b->c->st) return false;
    if (in_region(b, p, bytes, ref)) return true;
    return vulkan_stage_in(b->c, p, bytes, ref) == OB_OK;
}

/* An output (copy_in: also read by the op) of `bytes` at host p. */
bool vulkan_be_ref_out(vulkan_backend *b, void *p, size_t bytes, bool copy_in, vulkan_ref *ref) {
    if (b->c->st) return false;
    if (in_region(b, p, bytes, ref)) return true;
    void *host;
    if (vulkan_stage(b->c, bytes, ref, &host)) return false;
    if (copy_in) memcpy(host, p, bytes);
    b->pending_readback = true;
    return vulkan_readback_add(b->c, p, (size_t)ref->off, bytes) == OB_OK;
}

/* After an op: results staged for the host are fetched now. */
void vulkan_be_op_done(vulkan_backend *b) {
    if (b->pending_readback) {
        b->pending_readback = false;
        vulkan_flush(b->c);
    }
}

/* Spreads n groups over x and y (each at most the device's limit, 65535 at least). */
static void grid(const vulkan_backend *b, uint64_t n, uint32_t *gx, uint32_t *gy) {
    const uint64_t lim = b->c->max_groups < 65535 ? b->c->max_groups : 65535;
    *gx = (uint32_t)(n < lim ? n : lim);
    *gy = (uint32_t)((n + *gx - 1) / (*gx ? *gx : 1));
}

void vulkan_be_dispatch(vulkan_backend *b, const char *shader, const vulkan_ref *refs, int n_refs,
                        const uint32_t *pc, int n_pc, uint64_t groups, uint32_t gz) {
    const int pipe = vulkan_pipe_find(b->c, shader);
    uint32_t gx, gy;
    grid(b, groups, &gx, &gy);
    if (pipe >= 0 && groups > 0) vulkan_dispatch(b->c, pipe, refs, n_refs, pc, n_pc, gx, gy, gz);
}

uint32_t vulkan_be_fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- weights ----------------------------------------------------------------------------- */

static const char *type_shader(uint32_t type) {
    switch (type) {
    case OB_QTYPE_F32: return "mm_f32";
    case OB_QTYPE_F16: return "mm_f16";
    case OB_QTYPE_BF16: return "mm_bf16";
    case OB_QTYPE_Q4_0: return "mm_q4_0";
    case OB_QTYPE_Q4_1: return "mm_q4_1";
    case OB_QTYPE_Q5_0: return "mm_q5_0";
    case OB_QTYPE_Q5_1: return "mm_q5_1";
    case OB_QTYPE_Q8_0: return "mm_q8_0";
    case OB_QTYPE_Q2_K: return "mm_q2_k";
    case OB_QTYPE_Q3_K: return "mm_q3_k";
    case OB_QTYPE_Q4_K: return "mm_q4_k";
    case OB_QTYPE_Q5_K: return "mm_q5_k";
    case OB_QTYPE_Q6_K: return "mm_q6_k";
    case OB_QTYPE_IQ4_NL: return "mm_iq4_nl";
    case OB_QTYPE_IQ4_XS: return "mm_iq4_xs";
    default: return NULL;
    }
}

bool vulkan_type_supported(uint32_t type) { return type_shader(type) != NULL; }

const char *vulkan_be_type_shader(uint32_t type) { return type_shader(type); }

static void weight_free(vulkan_backend *b, vb_weight *w) {
    for (int i = 0; i < w->n_pieces; i++)
        vulkan_buf_free(b->c, &w->pieces[i]);
    ob_free(w->pieces);
}

/* Rows of piece i of w (from row i * rows_per_piece). */
static int64_t piece_rows(const vb_weight *w, int i) {
    const int64_t lo = i * w->rows_per_piece;
    return w->n_out - lo < w->rows_per_piece ? w->n_out - lo : w->rows_per_piece;
}

/* Describes cw cut into pieces of whole rows no larger than one binding may be (no pieces
 * allocated yet). */
static ob_status weight_layout(const vulkan_backend *b, const model_weight *cw, vb_weight *w,
                               ob_err *err) {
    memset(w, 0, sizeof *w);
    if (!type_shader(cw->type))
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "vulkan backend: tensor '%s': type %s has no "
                       "Vulkan kernel",
                       cw->name, gguf_qtype_name(cw->type));
    *w = (vb_weight){.type = cw->type,
                     .n_in = cw->n_in,
                     .n_out = cw->n_out,
                     .row_bytes = cw->row_size};
    w->rows_per_piece = (int64_t)(b->c->max_range / cw->row_size);
    if (w->rows_per_piece < 1)
        return ob_fail(err, OB_ERR_LIMIT,
                       "vulkan backend: tensor '%s': a row of %zu bytes "
                       "exceeds the device's binding limit of %llu bytes",
                       cw->name, cw->row_size, (unsigned long long)b->c->max_range);
    if (w->rows_per_piece > cw->n_out) w->rows_per_piece = cw->n_out;
    w->n_pieces = (int)((cw->n_out + w->rows_per_piece - 1) / w->rows_per_piece);
    return OB_OK;
}

/* Uploads w in pieces of whole rows no larger than one binding may be. */
static ob_status weight_upload(vulkan_backend *b, const model_weight *cw, vb_weight *w, ob_err *err) {
    ob_status st = weight_layout(b, cw, w, err);
    if (st) return st;
    w->pieces = ob_calloc((size_t)w->n_pieces, sizeof *w->pieces);
    if (!w->pieces) return ob_fail(err, OB_ERR_NOMEM, "vulkan backend: out of memory");
    for (int i = 0; i < w->n_pieces; i++) {
        const int64_t lo = i * w->rows_per_piece;
        const size_t bytes = (size_t)piece_rows(w, i) * cw->row_size;
        if (vulkan_buf_new(b->c, bytes, false, cw->name, &w->pieces[i]) ||
            vulkan_buf_upload(b->c, &w->pieces[i], 0,
                              (const char *)cw->data + (size_t)lo * cw->row_size, bytes)) {
            if (err) *err = b->c->err;
            return b->c->st;
        }
    }
    return OB_OK;
}

static vb_weight *weight_find(vulkan_backend *b, const model_weight *cw) {
    if (cw->id >= 0 && cw->id < b->n_w && b->w[cw->id].n_pieces > 0) return &b->w[cw->id];
    return NULL;
}

/* The device copy of cw: uploaded at creation, or else uploaded now for this op alone into
 * *tmp (callers outside the model, such as tests; weight_put frees it once the op ran). NULL
 * after a failure (kept in the context). */
static vb_weight *weight_get(vulkan_backend *b, const model_weight *cw, vb_weight *tmp) {
    vb_weight *w = weight_find(b, cw);
    memset(tmp, 0, sizeof *tmp);
    if (w || b->c->st) return w;
    ob_err err;
    if (weight_upload(b, cw, tmp, &err)) {
        weight_free(b, tmp);
        if (!b->c->st) {
            b->c->st = OB_ERR_UNSUPPORTED;
            b->c->err = err;
        }
        return NULL;
    }
    return tmp;
}

/* Ends an op that may have used a temporary weight. */
static void weight_put(vulkan_backend *b, vb_weight *tmp) {
    if (!tmp->pieces) return;
    vulkan_flush(b->c);
    weight_free(b, tmp);
}

/* Uploads one of the model's weights for good (binding callback); a routed expert's goes with
 * its layer's other experts (vulkan_moe_new). */
static ob_status weight_add(void *user, const model_weight *cw, ob_err *err) {
    vulkan_backend *b = user;
    if (cw->expert) return OB_OK;
    ob_status st = weight_upload(b, cw, &b->w[cw->id], err);
    if (st) weight_free(b, &b->w[cw->id]);
    return st;
}

/* ---- ops --------------------------------------------------------------------------------- */

static void be_get_rows(model_backend *be, const model_weight *cw, const int32_t *ids, int64_t n,
                        float *out) {
    vulkan_backend *b = as_vb(be);
    vb_weight tmp, *w = weight_get(b, cw, &tmp);
    vulkan_ref r[4];
    if (!w || vulkan_op_begin(b->c, (size_t)(n * cw->n_in + n) * 4) ||
        !vulkan_be_ref_out(b, out, (size_t)(n * cw->n_in) * 4, false, &r[0]) ||
        !vulkan_be_ref_in(b, ids, (size_t)n * 4, &r[3])) {
        weight_put(b, &tmp);
        return;
    }
    for (int i = 0; i < w->n_pieces; i++) {
        const int64_t lo = i * w->rows_per_piece, rows = piece_rows(w, i);
        r[1] = (vulkan_ref){w->pieces[i].buf, 0, w->pieces[i].size};
        r[2] = r[0];
        const uint32_t pc[] = {(uint32_t)cw->n_in,
                               (uint32_t)rows,
                               (uint32_t)n,
                               (uint32_t)cw->row_size,
                               1,
                               (uint32_t)lo,
                               0};
        vulkan_be_dispatch(b, type_shader(cw->type), r, 4, pc, 7, (uint64_t)n, 1);
    }
    vulkan_be_op_done(b);
    weight_put(b, &tmp);
}

/* y = x W^T over the pieces of w, the device's copy of cw. */
static void matmul_pieces(vulkan_backend *b, float *y, const model_weight *cw, const vb_weight *w,
                          const float *x, int64_t n_tok) {
    vulkan_ref r[4];
    if (vulkan_op_begin(b->c, (size_t)(n_tok * (cw->n_in + cw->n_out)) * 4) ||
        !vulkan_be_ref_in(b, x, (size_t)(n_tok * cw->n_in) * 4, &r[2]) ||
        !vulkan_be_ref_out(b, y, (size_t)(n_tok * cw->n_out) * 4, false, &r[0]))
        return;
    r[3] = r[2];
    for (int i = 0; i < w->n_pieces; i++) {
        const int64_t lo = i * w->rows_per_piece, n = piece_rows(w, i);
        r[1] = (vulkan_ref){w->pieces[i].buf, 0, w->pieces[i].size};
        const uint32_t pc[] = {(uint32_t)cw->n_in,     (uint32_t)n, (uint32_t)n_tok,
                               (uint32_t)cw->row_size, 0,           (uint32_t)lo,
                               (uint32_t)cw->n_out};
        vulkan_be_dispatch(b, type_shader(cw->type), r, 4, pc, 7, (uint64_t)n,
                           (uint32_t)((n_tok + 7) / 8));
    }
    vulkan_be_op_done(b);
}

static void be_matmul(model_backend *be, float *y, const model_weight *cw, const float *x,
                      int64_t n_tok) {
    vulkan_backend *b = as_vb(be);
    vb_weight tmp, *w = weight_get(b, cw, &tmp);
    if (w) matmul_pieces(b, y, cw, w, x, n_tok);
    weight_put(b, &tmp);
}

/* ---- streamed weights -------------------------------------------------------------------- */

/* Makes the stream buffer's piece i hold at least `bytes` (the device is idle); a failure is
 * kept in the context. */
static ob_status stream_piece(vulkan_backend *b, int i, size_t bytes) {
    if (i >= b->n_stream) {
        vulkan_buf *grown = ob_realloc(b->stream, (size_t)(i + 1), sizeof *grown);
        if (!grown) {
            if (!b->c->st)
                b->c->st = ob_fail(&b->c->err, OB_ERR_NOMEM, "vulkan backend: out of memory");
            return b->c->st;
        }
        memset(grown + b->n_stream, 0, (size_t)(i + 1 - b->n_stream) * sizeof *grown);
        b->stream = grown;
        b->n_stream = i + 1;
    }
    vulkan_buf *p = &b->stream[i];
    if (p->buf && p->size >= bytes) return OB_OK;
    vulkan_buf_free(b->c, p);
    memset(p, 0, sizeof *p);
    return vulkan_buf_new(b->c, bytes, false, "streamed weight", p);
}

/* Copies cw into the stream buffer, cut into pieces as weight_upload cuts a weight, and
 * describes it in *w; false after a failure (kept in the context). */
static bool stream_fill(vulkan_backend *b, const model_weight *cw, vb_weight *w) {
    if (vulkan_flush(b->c)) return false; /* the last product may still read the buffer */
    ob_err err;
    ob_status st = weight_layout(b, cw, w, &err);
    if (st) {
        b->c->st = st;
        b->c->err = err;
        return false;
    }
    for (int i = 0; i < w->n_pieces; i++) {
        const int64_t lo = i * w->rows_per_piece;
        const size_t bytes = (size_t)piece_rows(w, i) * cw->row_size;
        if (stream_piece(b, i, bytes) ||
            vulkan_buf_upload(b->c, &b->stream[i], 0,
                              (const char *)cw->data + (size_t)lo * cw->row_size, bytes))
            return false;
    }
    w->pieces = b->stream;
    return true;
}

static void be_matmul_streamed(model_backend *be, float *y, const model_weight *cw,
                               const float *x, int64_t n_tok) {
    vulkan_backend *b = as_vb(be);
    vb_weight w;
    if (stream_fill(b, cw, &w)) matmul_pieces(b, y, cw, &w, x, n_tok);
    vulkan_flush(b->c); /* y is the host's now, and the buffer free for the next weight */
}

static void be_rmsnorm(model_backend *be, float *out, const float *x, const float *w,
                       int64_t n_rows, int64_t n, float eps) {
    vulkan_backend *b = as_vb(be);
    const size_t bytes = (size_t)(n_rows * n) * 4;
    vulkan_ref r[3];
    if (vulkan_op_begin(b->c, 2 * bytes + (size_t)n * 4)) return;
    if (out == x) {
        if (!vulkan_be_ref_out(b, out, bytes, true, &r[0])) return;
        r[1] = r[0];
    } else if (!vulkan_be_ref_in(b, x, bytes, &r[1]) ||
               !vulkan_be_ref_out(b, out, bytes, false, &r[0])) {
        return;
    }
    if (!vulkan_be_ref_in(b, w, (size_t)n * 4, &r[2])) return;
    const uint32_t pc[] = {(uint32_t)n_rows, (uint32_t)n, vulkan_be_fbits(eps)};
    vulkan_be_dispatch(b, "rmsnorm", r, 3, pc, 3, (uint64_t)n_rows, 1);
    vulkan_be_op_done(b);
}

static void be_rope(model_backend *be, float *x, int64_t n_tok, int64_t n_head, int64_t head_dim,
                    const int32_t *pos, const model_rope *rp) {
    vulkan_backend *b = as_vb(be);
    vulkan_ref r[3];
    if (vulkan_op_begin(b->c, (size_t)(n_tok * n_head * head_dim + n_tok + rp->n_dims) * 4) ||
        !vulkan_be_ref_out(b, x, (size_t)(n_tok * n_head * head_dim) * 4, true, &r[0]) ||
        !vulkan_be_ref_in(b, pos, (size_t)n_tok * 4, &r[1]))
        return;
    r[2] = r[1];
    if (rp->freq_factors &&
        !vulkan_be_ref_in(b, rp->freq_factors, (size_t)rp->n_dims / 2 * 4, &r[2]))
        return;
    const uint32_t pc[] = {(uint32_t)n_tok,
                           (uint32_t)n_head,
                           (uint32_t)head_dim,
                           (uint32_t)rp->n_dims,
                           vulkan_be_fbits(powf(rp->freq_base, -2.0f / (float)rp->n_dims)),
                           vulkan_be_fbits(rp->freq_scale),
                           rp->neox ? 1u : 0u,
                           rp->freq_factors ? 1u : 0u};
    vulkan_be_dispatch(b, "rope", r, 3, pc, 8,
                       ((uint64_t)(n_tok * n_head * (rp->n_dims / 2)) + 63) / 64, 1);
    vulkan_be_op_done(b);
}

/* Element-wise op `op` (eltwise.comp) on x (n_total) with a (n_a) and c. */
static void eltwise(vulkan_backend *b, uint32_t op, float *out, const float *a, size_t n_a,
                    const float *c, int64_t n_total, int64_t n, float s) {
    vulkan_ref r[3];
    const size_t bytes = (size_t)n_total * 4;
    const bool reads_out = op == 0 || op == 1 || op == 4 || out == a || out == c;
    if (vulkan_op_begin(b->c, 3 * bytes)) return;
    if (!vulkan_be_ref_out(b, out, bytes, reads_out, &r[0])) return;
    r[1] = r[2] = r[0];
    if (a && !(a == out ? (r[1] = r[0], true) : vulkan_be_ref_in(b, a, n_a * 4, &r[1]))) return;
    if (c && !(c == out ? (r[2] = r[0], true) : vulkan_be_ref_in(b, c, bytes, &r[2]))) return;
    const uint32_t pc[] = {op, (uint32_t)n_total, (uint32_t)n, vulkan_be_fbits(s)};
    vulkan_be_dispatch(b, "eltwise", r, 3, pc, 4, ((uint64_t)n_total + 63) / 64, 1);
    vulkan_be_op_done(b);
}

static void be_add(model_backend *be, float *x, const float *y, int64_t n) {
    eltwise(as_vb(be), 0, x, y, (size_t)n, NULL, n, n, 0);
}

static void be_scale(model_backend *be, float *x, int64_t n, float s) {
    eltwise(as_vb(be), 1, x, NULL, 0, NULL, n, n, s);
}

static void be_swiglu(model_backend *be, float *out, const float *gate, const float *up,
                      int64_t n) {
    eltwise(as_vb(be), 2, out, gate, (size_t)n, up, n, n, 0);
}

static void be_geglu(model_backend *be, float *out, const float *gate, const float *up, int64_t n) {
    eltwise(as_vb(be), 3, out, gate, (size_t)n, up, n, n, 0);
}

static void be_add_bias(model_backend *be, float *x, const float *bias, int64_t n_rows, int64_t n) {
    eltwise(as_vb(be), 4, x, bias, (size_t)n, NULL, n_rows * n, n, 0);
}

/* ---- the table ----------------------------------------------------------------------------- */

static ob_status be_sync(model_backend *be, ob_err *err) {
    vulkan_backend *b = as_vb(be);
    ob_status st = vulkan_flush(b->c);
    if (st && err) *err = b->c->err;
    return st;
}

static float *be_host_buf(model_backend *be, size_t bytes) {
    vulkan_backend *b = as_vb(be);
    if (b->n_regions == VB_MAX_REGIONS || b->c->st) return NULL;
    vb_region *r = &b->regions[b->n_regions];
    if (vulkan_buf_new(b->c, bytes, true, "activations", &r->buf) || !r->buf.map) {
        vulkan_buf_free(b->c, &r->buf);
        return NULL;
    }
    b->n_regions++;
    return r->buf.map;
}

static void be_free(model_backend *be) {
    vulkan_backend *b = as_vb(be);
    if (!b) return;
    if (b->c) {
        if (b->c->dev) vkDeviceWaitIdle(b->c->dev);
        for (int64_t i = 0; i < b->n_w; i++)
            weight_free(b, &b->w[i]);
        vulkan_moe_free(b);
        for (int i = 0; i < b->n_regions; i++)
            vulkan_buf_free(b->c, &b->regions[i].buf);
        for (int i = 0; i < b->n_stream; i++)
            vulkan_buf_free(b->c, &b->stream[i]);
        for (int64_t l = 0; b->k && l < b->shape.n_layer; l++) {
            vulkan_buf_free(b->c, &b->k[l]);
            vulkan_buf_free(b->c, &b->v[l]);
        }
    }
    ob_free(b->w);
    ob_free(b->stream);
    ob_free(b->k);
    ob_free(b->v);
    vulkan_ctx_close(b->c);
    ob_free(b);
}

static const model_backend_ops VULKAN_OPS = {
    .name = "vulkan",
    .get_rows = be_get_rows,
    .rmsnorm = be_rmsnorm,
    .matmul = be_matmul,
    .matmul_streamed = be_matmul_streamed,
    .rope = be_rope,
    .kv_store = vulkan_kv_store,
    .attention = vulkan_attention,
    .swiglu = be_swiglu,
    .add = be_add,
    .geglu = be_geglu,
    .scale = be_scale,
    .add_bias = be_add_bias,
    .kv_copy = vulkan_kv_copy,
    .seq_copy = vulkan_seq_copy,
    .sync = be_sync,
    .host_buf = be_host_buf,
    .free = be_free,
    .moe_ffn = vulkan_moe_ffn,
};

/* Refuses, before anything is uploaded, a model whose weights and cache exceed the device's
 * free memory. */
static ob_status check_fits(vulkan_backend *b, ob_err *err) {
    uint64_t need = model_backend_weight_bytes(&b->shape, b->base.layer_lo) +
                    b->shape.stream_bytes;
    for (int64_t l = 0; l < b->shape.n_layer; l++)
        need += 2 * (uint64_t)vulkan_kv_layer_bytes(&b->shape, b->base.layer_lo + l);
    const uint64_t have = vulkan_free_bytes(b->c);
    if (need <= have) return OB_OK;
    return ob_fail(err, OB_ERR_LIMIT,
                   "vulkan backend: %s: weights, KV cache and streaming buffer need %.1f MiB, "
                   "the device has %.1f MiB free (use --device cpu, fewer --gpu-layers or a "
                   "smaller --ctx)",
                   b->c->info.name, (double)need / 1048576.0, (double)have / 1048576.0);
}

ob_status model_backend_vulkan_new(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                   model_backend **out, ob_err *err) {
    *out = NULL;
    if ((shape->n_head_kv * shape->head_dim) % 2 || shape->head_dim % 2 || shape->head_dim > 1024)
        return ob_fail(err, OB_ERR_UNSUPPORTED,
                       "vulkan backend: head_dim %lld x %lld KV heads: "
                       "the kernels need an even head_dim <= 1024",
                       (long long)shape->head_dim, (long long)shape->n_head_kv);
    vulkan_backend *b = ob_calloc(1, sizeof *b);
    if (!b) return ob_fail(err, OB_ERR_NOMEM, "vulkan backend: out of memory");
    b->base.ops = &VULKAN_OPS;
    b->base.caps = (model_backend_caps){.paged_kv = true, .device_memory = true};
    b->base.layer_lo = layer_lo;
    b->base.layer_hi = layer_lo + shape->n_layer;
    b->shape = *shape;
    b->n_w = shape->weights ? shape->weights->n : 0;
    b->w = ob_calloc((size_t)(b->n_w ? b->n_w : 1), sizeof *b->w);
    ob_status st = b->w ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "vulkan backend: out of memory");
    if (!st) st = vulkan_ctx_open(dev, &b->c, err);
    if (!st) st = check_fits(b, err);
    if (!st) st = vulkan_kv_new(&b->base, err);
    if (!st) st = model_backend_bind_each(shape, layer_lo, "vulkan backend", weight_add, b, err);
    if (!st) st = vulkan_moe_new(b, err);
    /* the streaming buffer now, so a device short of it fails here, not mid-prompt */
    if (!st && shape->stream_bytes) {
        const uint64_t first = shape->stream_bytes < b->c->max_range ? shape->stream_bytes
                                                                      : b->c->max_range;
        if ((st = stream_piece(b, 0, (size_t)first)) && err) *err = b->c->err;
    }
    if (!st && (st = vulkan_flush(b->c)) && err) *err = b->c->err;
    if (st) {
        be_free(&b->base);
        return st;
    }
    b->c->serving = true;
    *out = &b->base;
    return OB_OK;
}
