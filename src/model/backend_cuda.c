/*
 * The CUDA backend: the op table of backend.h over src/cuda/. The weights its layer range
 * reads are uploaded once when it is made and found again by their id; its KV cache
 * (src/cuda/backend_kv.c) is paged as the CPU backend's. Activations come from ops.host_buf:
 * managed memory that lives on the device, which every op reads and writes in place, so a
 * step's only traffic over the link is its token ids, positions and cache map (each queued
 * once per step, without waiting) and the rows the host reads after ops.sync. An operand in
 * plain host memory (the logits output, or a caller with its own buffers) is staged through
 * the counted copy path instead, per op.
 *
 * Ops return void in the table, so the first failure is kept (model_backend_cuda_status,
 * ops.sync) and every later op does nothing until the context reads it.
 */
#include "model/backend.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cuda/cuda_be.h"

#include <string.h>

const void *cb_upload_get(cuda_be *b, int which, const void *host, size_t bytes) {
    cb_upload *u = &b->up[which];
    if (b->st || !bytes) return NULL;
    if (u->dev && u->bytes == bytes && !memcmp(u->pinned, host, bytes)) return u->dev;
    /* the queued copy may still read pinned, and queued kernels the old device buffer */
    if (u->in_flight || u->cap < bytes) {
        if (cb_failed(b, cuda_ctx_sync(b->ctx, &b->err))) return NULL;
        cb_uploads_settled(b);
    }
    if (u->cap < bytes) {
        cuda_buf_free(b->ctx, u->dev);
        cuda_host_free(u->pinned);
        memset(u, 0, sizeof *u);
        if (cb_failed(b, cuda_buf_alloc(b->ctx, bytes, "batch indices", &u->dev, &b->err)) ||
            cb_failed(b, cuda_host_alloc(b->ctx, bytes, &u->pinned, &b->err)))
            return NULL;
        u->cap = bytes;
    }
    memcpy(u->pinned, host, bytes);
    u->bytes = bytes;
    if (cb_failed(b, cuda_copy_h2d_async(b->ctx, u->dev, u->pinned, bytes, &b->err)))
        return NULL;
    u->in_flight = true;
    return u->dev;
}

void cb_uploads_settled(cuda_be *b) {
    for (int i = 0; i < CB_UP_N; i++) b->up[i].in_flight = false;
}

/* A small host array (ids, positions) as the device reads it: in place when it is device or
 * managed memory, else through the upload cache. */
static const void *index_array(cuda_be *b, int which, const int32_t *p, int64_t n) {
    if (cuda_ptr_is_device(p)) return p;
    return cb_upload_get(b, which, p, (size_t)n * sizeof *p);
}

/* The device copy of w: uploaded at creation, or else (a weight outside the model's table,
 * from a caller such as a test) uploaded on first use and kept by its host address. */
static const cuda_weight *weight(cuda_be *b, const model_weight *w) {
    if (b->st) return NULL;
    if (w->id >= 0 && w->id < b->n_w && b->w[w->id].data_dev) return &b->w[w->id];
    const cuda_weight *dw = NULL;
    if (cb_failed(b, cuda_range_weight(b->r, w->name, w->data, w->type, w->n_in, w->n_out, &dw,
                                       &b->err)))
        return NULL;
    return dw;
}

/* ---- ops --------------------------------------------------------------------------------- */

static void be_get_rows(model_backend *be, const model_weight *w, const int32_t *ids, int64_t n,
                        float *out) {
    cuda_be *b = as_cb(be);
    const cuda_weight *dw = weight(b, w);
    const void *di = dw ? index_array(b, CB_UP_IDS, ids, n) : NULL;
    void *dout;
    const size_t ob = (size_t)(n * w->n_in) * sizeof(float);
    if (!di || cb_failed(b, cuda_range_stage_out(b->r, 1, out, ob, &dout, &b->err)) ||
        cb_failed(b, cuda_get_rows(b->ctx, dw, di, n, dout, &b->err)))
        return;
    cb_failed(b, cuda_range_stage_back(b->r, 1, out, ob, &b->err));
}

static void be_rmsnorm(model_backend *be, float *out, const float *x, const float *w,
                       int64_t n_rows, int64_t n, float eps) {
    cuda_be *b = as_cb(be);
    const size_t bytes = (size_t)(n_rows * n) * sizeof(float);
    const int oslot = out == x ? 0 : 1;
    const float *dw;
    const void *dx;
    void *dout;
    if (b->st || cb_failed(b, cuda_range_vector(b->r, "norm", w, n, &dw, &b->err)) ||
        cb_failed(b, cuda_range_stage_in(b->r, 0, x, bytes, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, oslot, out, bytes, &dout, &b->err)) ||
        cb_failed(b, cuda_rmsnorm(b->ctx, dout, dx, dw, n_rows, n, eps, &b->err)))
        return;
    cb_failed(b, cuda_range_stage_back(b->r, oslot, out, bytes, &b->err));
}

static void be_matmul(model_backend *be, float *y, const model_weight *w, const float *x,
                      int64_t n_tok) {
    cuda_be *b = as_cb(be);
    const cuda_weight *dw = weight(b, w);
    const size_t xb = (size_t)(n_tok * w->n_in) * 4, yb = (size_t)(n_tok * w->n_out) * 4;
    const void *dx;
    void *dy;
    if (!dw || cb_failed(b, cuda_range_stage_in(b->r, 0, x, xb, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, 1, y, yb, &dy, &b->err)) ||
        cb_failed(b, cuda_matmul(b->ctx, dy, dw, dx, n_tok, &b->err)))
        return;
    cb_failed(b, cuda_range_stage_back(b->r, 1, y, yb, &b->err));
}

/* A host layer's product (weight streaming): w's rows go into the streaming buffer, and the
 * product runs as be_matmul's; the buffer is free again once the op returns. */
static void be_matmul_streamed(model_backend *be, float *y, const model_weight *w,
                               const float *x, int64_t n_tok) {
    cuda_be *b = as_cb(be);
    const size_t bytes = (size_t)w->n_out * w->row_size;
    if (b->st) return;
    if (!cuda_type_supported(w->type)) {
        cb_failed(b, ob_fail(&b->err, OB_ERR_UNSUPPORTED, "cuda backend: tensor '%s': type %u "
                             "has no CUDA kernel to stream it to", w->name, w->type));
        return;
    }
    /* the last streamed product may still read the buffer */
    if (cb_failed(b, cuda_ctx_sync(b->ctx, &b->err))) return;
    cb_uploads_settled(b);
    if (b->stream_cap < bytes) {
        cuda_buf_free(b->ctx, b->stream);
        b->stream = NULL;
        b->stream_cap = 0;
        if (cb_failed(b, cuda_buf_alloc(b->ctx, bytes, "streamed weight", &b->stream, &b->err)))
            return;
        b->stream_cap = bytes;
    }
    if (cb_failed(b, cuda_copy_h2d(b->ctx, b->stream, w->data, bytes, &b->err))) return;
    const cuda_weight dw = {w->name, b->stream, w->type, w->n_in, w->n_out, w->row_size};
    const size_t xb = (size_t)(n_tok * w->n_in) * 4, yb = (size_t)(n_tok * w->n_out) * 4;
    const void *dx;
    void *dy;
    if (cb_failed(b, cuda_range_stage_in(b->r, 0, x, xb, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, 1, y, yb, &dy, &b->err)) ||
        cb_failed(b, cuda_matmul(b->ctx, dy, &dw, dx, n_tok, &b->err)) ||
        cb_failed(b, cuda_range_stage_back(b->r, 1, y, yb, &b->err)))
        return;
    cb_failed(b, cuda_ctx_sync(b->ctx, &b->err));
}

static void be_rope(model_backend *be, float *x, int64_t n_tok, int64_t n_head,
                    int64_t head_dim, const int32_t *pos, const model_rope *rp) {
    cuda_be *b = as_cb(be);
    const size_t xb = (size_t)(n_tok * n_head * head_dim) * 4;
    cuda_rope_params drp = {rp->n_dims, rp->freq_base, rp->freq_scale, NULL, rp->neox};
    const void *dx, *dpos;
    void *dout;
    if (b->st) return;
    if (rp->freq_factors &&
        cb_failed(b, cuda_range_vector(b->r, "rope_freqs", rp->freq_factors, rp->n_dims / 2,
                                       &drp.freq_factors_dev, &b->err)))
        return;
    if (!(dpos = index_array(b, CB_UP_POS, pos, n_tok)) ||
        cb_failed(b, cuda_range_stage_in(b->r, 0, x, xb, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, 0, x, xb, &dout, &b->err)) ||
        cb_failed(b, cuda_rope(b->ctx, dout, n_tok, n_head, head_dim, dpos, &drp, &b->err)))
        return;
    cb_failed(b, cuda_range_stage_back(b->r, 0, x, xb, &b->err));
}

enum { EW_SWIGLU, EW_GEGLU, EW_ADD };

/* out (n) = f(x, y) for the gated units and the residual add (out aliases x for add). */
static void binary(cuda_be *b, int op, float *out, const float *x, const float *y, int64_t n) {
    const size_t bytes = (size_t)n * 4;
    const void *dx, *dy;
    void *dout;
    const int oslot = out == x ? 0 : out == y ? 1 : 2;
    if (b->st || cb_failed(b, cuda_range_stage_in(b->r, 0, x, bytes, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_in(b->r, 1, y, bytes, &dy, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, oslot, out, bytes, &dout, &b->err)))
        return;
    ob_status st;
    if (op == EW_SWIGLU) st = cuda_swiglu(b->ctx, dout, dx, dy, n, &b->err);
    else if (op == EW_GEGLU) st = cuda_geglu(b->ctx, dout, dx, dy, n, &b->err);
    else if (dout == dx) st = cuda_add(b->ctx, dout, dy, n, &b->err);
    else st = ob_fail(&b->err, OB_ERR_ARG, "cuda backend: add out of place");
    if (cb_failed(b, st)) return;
    cb_failed(b, cuda_range_stage_back(b->r, oslot, out, bytes, &b->err));
}

static void be_swiglu(model_backend *be, float *out, const float *gate, const float *up,
                      int64_t n) {
    binary(as_cb(be), EW_SWIGLU, out, gate, up, n);
}

static void be_geglu(model_backend *be, float *out, const float *gate, const float *up,
                     int64_t n) {
    binary(as_cb(be), EW_GEGLU, out, gate, up, n);
}

static void be_add(model_backend *be, float *x, const float *y, int64_t n) {
    binary(as_cb(be), EW_ADD, x, x, y, n);
}

static void be_scale(model_backend *be, float *x, int64_t n, float s) {
    cuda_be *b = as_cb(be);
    const size_t bytes = (size_t)n * 4;
    const void *dx;
    void *dout;
    if (b->st || cb_failed(b, cuda_range_stage_in(b->r, 0, x, bytes, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, 0, x, bytes, &dout, &b->err)) ||
        cb_failed(b, cuda_scale(b->ctx, dout, s, n, &b->err)))
        return;
    cb_failed(b, cuda_range_stage_back(b->r, 0, x, bytes, &b->err));
}

static void be_add_bias(model_backend *be, float *x, const float *bias, int64_t n_rows,
                        int64_t n) {
    cuda_be *b = as_cb(be);
    const size_t bytes = (size_t)(n_rows * n) * 4;
    const float *db;
    const void *dx;
    void *dout;
    if (b->st || cb_failed(b, cuda_range_vector(b->r, "bias", bias, n, &db, &b->err)) ||
        cb_failed(b, cuda_range_stage_in(b->r, 0, x, bytes, &dx, &b->err)) ||
        cb_failed(b, cuda_range_stage_out(b->r, 0, x, bytes, &dout, &b->err)) ||
        cb_failed(b, cuda_add_bias(b->ctx, dout, db, n_rows, n, &b->err)))
        return;
    cb_failed(b, cuda_range_stage_back(b->r, 0, x, bytes, &b->err));
}

/* ---- activations, sync, the table --------------------------------------------------------- */

/* Managed memory on the device for one activation buffer; NULL when there is no room (or
 * after a failure). */
static float *be_host_buf(model_backend *be, size_t bytes) {
    cuda_be *b = as_cb(be);
    void *p = NULL;
    if (b->st || b->n_regions == CB_MAX_REGIONS ||
        cuda_managed_alloc(b->ctx, bytes, "activations", &p, NULL))
        return NULL;
    b->regions[b->n_regions++] = p;
    return p;
}

static void be_free(model_backend *be) {
    cuda_be *b = as_cb(be);
    if (!b) return;
    if (b->ctx) {
        ob_err ignored;
        cuda_ctx_sync(b->ctx, &ignored); /* nothing may still run on what is freed below */
        for (int64_t i = 0; b->w && i < b->n_w; i++) cuda_weight_free(b->ctx, &b->w[i]);
        for (int i = 0; i < b->n_regions; i++) cuda_buf_free(b->ctx, b->regions[i]);
        for (int i = 0; i < CB_UP_N; i++) {
            cuda_buf_free(b->ctx, b->up[i].dev);
            cuda_host_free(b->up[i].pinned);
        }
        cb_kv_free(b);
        cuda_buf_free(b->ctx, b->stream);
    }
    ob_free(b->w);
    cuda_range_free(b->r);
    cuda_ctx_free(b->ctx);
    ob_free(b);
}

static ob_status be_sync(model_backend *be, ob_err *err) {
    return model_backend_cuda_status(be, err);
}

#define CUDA_OPS_COMMON                                                                          \
    .name = "cuda", .get_rows = be_get_rows, .rmsnorm = be_rmsnorm, .matmul = be_matmul,        \
    .rope = be_rope, .kv_store = cb_kv_store, .attention = cb_attention, .swiglu = be_swiglu,   \
    .add = be_add, .geglu = be_geglu, .scale = be_scale, .add_bias = be_add_bias,               \
    .kv_copy = cb_kv_copy, .seq_copy = cb_seq_copy, .sync = be_sync, .free = be_free,        \
    .matmul_streamed = be_matmul_streamed

/* A device whose managed memory the host may touch while kernels run (Linux, Pascal and
 * newer) holds the activations; on one that cannot (Windows, some virtual GPUs) the host
 * would fault on any managed page during a step, so the context's own host buffers are used
 * and each op stages them. */
static const model_backend_ops CUDA_OPS = {CUDA_OPS_COMMON, .host_buf = be_host_buf};
static const model_backend_ops CUDA_OPS_STAGED = {CUDA_OPS_COMMON};

/* ---- creation ------------------------------------------------------------------------------ */

/* Uploads one of the range's weights (binding callback). */
static ob_status bind_weight(void *user, const model_weight *w, ob_err *err) {
    cuda_be *b = user;
    if (w->id < 0 || w->id >= b->n_w)
        return ob_fail(err, OB_ERR_ARG, "cuda backend: tensor '%s' has id %d of %lld", w->name,
                       w->id, (long long)b->n_w);
    return cuda_weight_upload(b->ctx, w->name, w->data, w->type, w->n_in, w->n_out,
                              &b->w[w->id], err);
}

/* Refuses, before anything is allocated, a device the kernels were not built for, a shape
 * they do not cover (head sizes, mixture-of-experts or recurrent layers), or a model whose
 * weights and cache exceed the device's free memory. */
/* What the kernels cannot run, refused before a device is even looked for (so also on a
 * machine without one). */
static ob_status check_shape(const model_backend_shape *s, int64_t layer_lo, ob_err *err) {
    if (s->head_dim <= 0 || s->head_dim > 256 || s->n_head_kv <= 0 ||
        s->n_head % s->n_head_kv)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "cuda backend: head_dim %lld with %lld heads "
                       "over %lld KV heads: the attention kernel needs head_dim <= 256 and "
                       "whole groups (use --device cpu)", (long long)s->head_dim,
                       (long long)s->n_head, (long long)s->n_head_kv);
    /* the op table has no moe_ffn or deltanet: say so before gigabytes of experts upload */
    bool recurrent = false;
    for (int64_t il = layer_lo; il < layer_lo + s->n_layer; il++)
        recurrent = recurrent || model_layer_is_recurrent(s, il);
    if (s->n_expert > 0 || recurrent)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "cuda backend: architecture '%s' has %s layers, "
                       "which this backend does not run (use --device cpu)",
                       s->arch ? s->arch : "?",
                       s->n_expert > 0 ? "mixture-of-experts" : "recurrent (DeltaNet)");
    return OB_OK;
}

/* What the device must have: the compute capability the build targets, and free memory for
 * the range's weights and cache. */
static ob_status check_device(const model_backend_shape *s, int64_t layer_lo, int dev,
                              const cuda_device_info *info, ob_err *err) {
    if (info->cc_major < CUDA_MIN_CC_MAJOR)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "cuda backend: %s has compute capability "
                       "%d.%d; the kernels need %d.0 or newer (use --device vulkan or cpu)",
                       info->name, info->cc_major, info->cc_minor, CUDA_MIN_CC_MAJOR);
    const uint64_t need = model_backend_weight_bytes(s, layer_lo) +
                          model_kv_bytes(s, layer_lo) + s->stream_bytes;
    if (need > info->mem_free)
        return ob_fail(err, OB_ERR_LIMIT, "cuda backend: %s (device %d): weights, KV cache and "
                       "streaming buffer "
                       "need %.1f MiB, the device has %.1f MiB free (use --device cpu, fewer "
                       "--gpu-layers or a smaller --ctx)", info->name, dev,
                       (double)need / 1048576.0, (double)info->mem_free / 1048576.0);
    return OB_OK;
}

ob_status model_backend_cuda_new(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                 model_backend **out, ob_err *err) {
    *out = NULL;
    cuda_device_info info;
    ob_status st = check_shape(shape, layer_lo, err);
    if (!st) st = cuda_device_get_info(dev, &info, err);
    if (!st) st = check_device(shape, layer_lo, dev, &info, err);
    if (st) return st;
    cuda_be *b = ob_calloc(1, sizeof *b);
    if (!b) return ob_fail(err, OB_ERR_NOMEM, "cuda backend: out of memory");
    b->base.ops = info.managed && info.concurrent_managed ? &CUDA_OPS : &CUDA_OPS_STAGED;
    b->base.caps = (model_backend_caps){.paged_kv = true, .device_memory = true};
    b->base.layer_lo = layer_lo;
    b->base.layer_hi = layer_lo + shape->n_layer;
    b->shape = *shape;
    b->n_w = shape->weights ? shape->weights->n : 0;
    b->w = ob_calloc((size_t)(b->n_w ? b->n_w : 1), sizeof *b->w);
    /* the range holds no cache of its own (n_layer 0): only vectors and staging */
    const cuda_range_shape rs = {0, 0, shape->n_head_kv, shape->head_dim};
    st = b->w ? OB_OK : ob_fail(err, OB_ERR_NOMEM, "cuda backend: out of memory");
    if (!st) st = cuda_ctx_new(dev, &b->ctx, err);
    if (!st) st = cuda_range_new(b->ctx, &rs, &b->r, err);
    if (!st) st = cb_kv_new(b, err);
    if (!st) st = model_backend_bind_each(shape, layer_lo, "cuda backend", bind_weight, b, err);
    /* the streaming buffer now, so a device short of it fails here, not mid-prompt */
    if (!st && shape->stream_bytes &&
        !(st = cuda_buf_alloc(b->ctx, (size_t)shape->stream_bytes, "streamed weight",
                              &b->stream, err)))
        b->stream_cap = (size_t)shape->stream_bytes;
    if (!st) st = cuda_ctx_sync(b->ctx, err);
    if (st) {
        be_free(&b->base);
        return st;
    }
    *out = &b->base;
    return OB_OK;
}

ob_status model_backend_cuda_status(model_backend *be, ob_err *err) {
    cuda_be *b = as_cb(be);
    if (!b->st) b->st = cuda_ctx_sync(b->ctx, &b->err);
    if (!b->st) cb_uploads_settled(b); /* the stream has run every queued copy */
    if (b->st && err) *err = b->err;
    return b->st;
}
