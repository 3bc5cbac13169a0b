/*
 * The CUDA backend: the op table of backend.h over src/cuda/. Its layer range's KV cache and
 * weights live in device memory (cuda_range); activations may be device buffers (no copies)
 * or host buffers (each op stages its operands through the counted copy path). Ops return
 * void in the table, so the first failure is kept here (model_backend_cuda_status) and every
 * later op does nothing until the context reads it.
 */
#include "model/backend.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cuda/cuda_range.h"

#include <string.h>

typedef struct cuda_backend {
    model_backend base;
    model_backend_shape shape;
    cuda_ctx *ctx;    /* owned */
    cuda_range *r;    /* owned: KV cache, weights, staging */
    ob_status st;     /* first failure, OB_OK while all is well */
    ob_err err;
} cuda_backend;

static cuda_backend *as_cuda(model_backend *be) { return (cuda_backend *)be; }

/* Records the first failure; true when the op should stop. */
static bool failed(cuda_backend *b, ob_status st) {
    if (st && !b->st) b->st = st;
    return b->st != OB_OK;
}

static const cuda_weight *weight(cuda_backend *b, const model_weight *w) {
    const cuda_weight *dw = NULL;
    if (b->st) return NULL;
    if (failed(b, cuda_range_weight(b->r, w->name, w->data, w->type, w->n_in, w->n_out, &dw,
                                    &b->err)))
        return NULL;
    return dw;
}

static void be_get_rows(model_backend *be, const model_weight *w, const int32_t *ids, int64_t n,
                        float *out) {
    cuda_backend *b = as_cuda(be);
    const cuda_weight *dw = weight(b, w);
    const void *di;
    void *dout;
    size_t ob = (size_t)(n * w->n_in) * sizeof(float);
    if (!dw || failed(b, cuda_range_stage_in(b->r, 0, ids, (size_t)n * 4, &di, &b->err)) ||
        failed(b, cuda_range_stage_out(b->r, 1, out, ob, &dout, &b->err)) ||
        failed(b, cuda_get_rows(b->ctx, dw, di, n, dout, &b->err)))
        return;
    failed(b, cuda_range_stage_back(b->r, 1, out, ob, &b->err));
}

static void be_rmsnorm(model_backend *be, float *out, const float *x, const float *w,
                       int64_t n_rows, int64_t n, float eps) {
    cuda_backend *b = as_cuda(be);
    const size_t bytes = (size_t)(n_rows * n) * sizeof(float);
    const float *dw;
    const void *dx;
    void *dout;
    if (b->st || failed(b, cuda_range_vector(b->r, "norm", w, n, &dw, &b->err)) ||
        failed(b, cuda_range_stage_in(b->r, 0, x, bytes, &dx, &b->err)) ||
        failed(b, cuda_range_stage_out(b->r, out == x ? 0 : 1, out, bytes, &dout, &b->err)) ||
        failed(b, cuda_rmsnorm(b->ctx, dout, dx, dw, n_rows, n, eps, &b->err)))
        return;
    failed(b, cuda_range_stage_back(b->r, out == x ? 0 : 1, out, bytes, &b->err));
}

static void be_matmul(model_backend *be, float *y, const model_weight *w, const float *x,
                      int64_t n_tok) {
    cuda_backend *b = as_cuda(be);
    const cuda_weight *dw = weight(b, w);
    const size_t xb = (size_t)(n_tok * w->n_in) * 4, yb = (size_t)(n_tok * w->n_out) * 4;
    const void *dx;
    void *dy;
    if (!dw || failed(b, cuda_range_stage_in(b->r, 0, x, xb, &dx, &b->err)) ||
        failed(b, cuda_range_stage_out(b->r, 1, y, yb, &dy, &b->err)) ||
        failed(b, cuda_matmul(b->ctx, dy, dw, dx, n_tok, &b->err)))
        return;
    failed(b, cuda_range_stage_back(b->r, 1, y, yb, &b->err));
}

static void be_rope(model_backend *be, float *x, int64_t n_tok, int64_t n_head,
                    int64_t head_dim, const int32_t *pos, const model_rope *rp) {
    cuda_backend *b = as_cuda(be);
    const size_t xb = (size_t)(n_tok * n_head * head_dim) * 4;
    cuda_rope_params drp = {rp->n_dims, rp->freq_base, rp->freq_scale, NULL, rp->neox};
    const void *dx, *dpos;
    void *dout;
    if (b->st) return;
    if (rp->freq_factors &&
        failed(b, cuda_range_vector(b->r, "rope_freqs", rp->freq_factors, rp->n_dims / 2,
                                    &drp.freq_factors_dev, &b->err)))
        return;
    if (failed(b, cuda_range_stage_in(b->r, 0, x, xb, &dx, &b->err)) ||
        failed(b, cuda_range_stage_out(b->r, 0, x, xb, &dout, &b->err)) ||
        failed(b, cuda_range_stage_in(b->r, 1, pos, (size_t)n_tok * 4, &dpos, &b->err)) ||
        failed(b, cuda_rope(b->ctx, dout, n_tok, n_head, head_dim, dpos, &drp, &b->err)))
        return;
    failed(b, cuda_range_stage_back(b->r, 0, x, xb, &b->err));
}

/* The CUDA kernels address the cache by position: they run one sequence (ob_context_new
 * refuses more) whose block table is 0, 1, 2, ... (the pool hands blocks out in order and
 * keeps no prefix cache then), so row t's slot is its position. Anything else fails the step
 * rather than reading the wrong rows. */
static bool positions_are_rows(cuda_backend *b, const model_kv_batch *kv) {
    for (int64_t t = 0; t < kv->n_tok; t++)
        if (kv->seq[t] != 0 || kv->slot[t] != kv->pos[t] || kv->pos[t] != kv->pos[0] + t) {
            failed(b, ob_fail(&b->err, OB_ERR_UNSUPPORTED, "cuda backend: batch row %lld "
                              "(sequence %d, position %d, pool row %d): the CUDA device runs "
                              "one sequence in pool order only", (long long)t, kv->seq[t],
                              kv->pos[t], kv->slot[t]));
            return false;
        }
    return true;
}

static void be_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                        const model_kv_batch *kv) {
    cuda_backend *b = as_cuda(be);
    const int64_t row = b->shape.n_head_kv * b->shape.head_dim, l = il - b->base.layer_lo;
    const size_t bytes = (size_t)(kv->n_tok * row) * 4;
    const void *dk, *dv;
    if (b->st || !positions_are_rows(b, kv) ||
        failed(b, cuda_range_stage_in(b->r, 0, k, bytes, &dk, &b->err)) ||
        failed(b, cuda_range_stage_in(b->r, 1, v, bytes, &dv, &b->err)))
        return;
    failed(b, cuda_kv_store(b->ctx, cuda_range_k(b->r, l), cuda_range_v(b->r, l), row, dk, dv,
                            kv->pos[0], kv->n_tok, &b->err));
}

static void be_attention(model_backend *be, int64_t il, float *out, const float *q,
                         const model_kv_batch *kv, float scale) {
    cuda_backend *b = as_cuda(be);
    const model_backend_shape *s = &b->shape;
    const int64_t l = il - b->base.layer_lo, n_tok = kv->n_tok;
    const size_t bytes = (size_t)(n_tok * s->n_head * s->head_dim) * 4;
    const void *dq;
    void *dout;
    if (b->st || !positions_are_rows(b, kv) ||
        failed(b, cuda_range_stage_in(b->r, 0, q, bytes, &dq, &b->err)) ||
        failed(b, cuda_range_stage_out(b->r, 1, out, bytes, &dout, &b->err)))
        return;
    cuda_attn_args a = {dq, cuda_range_k(b->r, l), cuda_range_v(b->r, l), dout, n_tok,
                        kv->pos[0], s->n_head, s->n_head_kv, s->head_dim,
                        s->n_head_kv * s->head_dim, scale};
    if (failed(b, cuda_attention(b->ctx, &a, &b->err))) return;
    failed(b, cuda_range_stage_back(b->r, 1, out, bytes, &b->err));
}

/* out = f(a, b) for swiglu and add; out aliases a for add (and usually for swiglu). */
static void binary(cuda_backend *b, float *out, const float *x, const float *y, int64_t n,
                   int swiglu) {
    const size_t bytes = (size_t)n * 4;
    const void *dx, *dy;
    void *dout;
    const int oslot = out == x ? 0 : out == y ? 1 : 2;
    if (b->st || failed(b, cuda_range_stage_in(b->r, 0, x, bytes, &dx, &b->err)) ||
        failed(b, cuda_range_stage_in(b->r, 1, y, bytes, &dy, &b->err)) ||
        failed(b, cuda_range_stage_out(b->r, oslot, out, bytes, &dout, &b->err)))
        return;
    ob_status st = swiglu        ? cuda_swiglu(b->ctx, dout, dx, dy, n, &b->err)
                   : dout == dx ? cuda_add(b->ctx, dout, dy, n, &b->err)
                                : ob_fail(&b->err, OB_ERR_ARG, "cuda backend: add out of place");
    if (failed(b, st)) return;
    failed(b, cuda_range_stage_back(b->r, oslot, out, bytes, &b->err));
}

static void be_swiglu(model_backend *be, float *out, const float *gate, const float *up,
                      int64_t n) {
    binary(as_cuda(be), out, gate, up, n, 1);
}

static void be_add(model_backend *be, float *x, const float *y, int64_t n) {
    binary(as_cuda(be), x, x, y, n, 0);
}

/* GeGLU, scale and bias add have no kernels yet: architectures that need them are refused
 * when the backend is made (model_backend_cuda_new); these keep that promise if one is
 * reached anyway, failing the step with the op's name rather than computing nothing. */
static void unsupported_op(model_backend *be, const char *op) {
    cuda_backend *b = as_cuda(be);
    failed(b, ob_fail(&b->err, OB_ERR_UNSUPPORTED, "cuda backend: op '%s' (architecture '%s') "
                      "is not implemented on the CUDA device", op,
                      b->shape.arch ? b->shape.arch : "?"));
}

static void be_geglu(model_backend *be, float *out, const float *gate, const float *up,
                     int64_t n) {
    (void)out, (void)gate, (void)up, (void)n;
    unsupported_op(be, "geglu");
}

static void be_scale(model_backend *be, float *x, int64_t n, float s) {
    (void)x, (void)n, (void)s;
    unsupported_op(be, "scale");
}

static void be_add_bias(model_backend *be, float *x, const float *bias, int64_t n_rows,
                        int64_t n) {
    (void)x, (void)bias, (void)n_rows, (void)n;
    unsupported_op(be, "add_bias");
}

/* Copy-on-write and forks need a second sequence, which the CUDA backend is never given. */
static void be_kv_copy(model_backend *be, const kv_copy *copies, int64_t n) {
    (void)copies, (void)n;
    unsupported_op(be, "kv_copy");
}

static void be_seq_copy(model_backend *be, int32_t src, int32_t dst) {
    (void)src, (void)dst;
    unsupported_op(be, "seq_copy");
}

static void be_free(model_backend *be) {
    cuda_backend *b = as_cuda(be);
    if (!b) return;
    cuda_range_free(b->r);
    cuda_ctx_free(b->ctx);
    ob_free(b);
}

static ob_status be_sync(model_backend *be, ob_err *err) {
    return model_backend_cuda_status(be, err);
}

static const model_backend_ops CUDA_OPS = {
    .name = "cuda", .get_rows = be_get_rows, .rmsnorm = be_rmsnorm, .matmul = be_matmul,
    .rope = be_rope, .kv_store = be_kv_store, .attention = be_attention, .swiglu = be_swiglu,
    .add = be_add, .geglu = be_geglu, .scale = be_scale, .add_bias = be_add_bias,
    .kv_copy = be_kv_copy, .seq_copy = be_seq_copy, .sync = be_sync, .free = be_free,
};

/* Uploads one of the range's weights (binding callback). */
static ob_status bind_weight(void *user, const model_weight *w, ob_err *err) {
    cuda_backend *b = user;
    const cuda_weight *dw;
    return cuda_range_weight(b->r, w->name, w->data, w->type, w->n_in, w->n_out, &dw, err);
}

ob_status model_backend_cuda_new(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                 model_backend **out, ob_err *err) {
    *out = NULL;
    /* The CUDA kernels cover the llama block with full attention; other architectures (GeGLU,
     * biases, per-head norms, sliding windows) run on the CPU until they have kernels. */
    const char *arch = shape->arch ? shape->arch : "llama";
    if (strcmp(arch, "llama") || shape->n_swa > 0)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "cuda backend: architecture '%s'%s is not "
                       "supported on the CUDA device (use --device cpu)", arch,
                       shape->n_swa > 0 ? " with sliding-window attention" : "");
    if (shape->n_seq != 1)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "cuda backend: %lld sequences: the CUDA device "
                       "runs one sequence per context for now (n_seq_max 1)",
                       (long long)shape->n_seq);
    cuda_backend *b = ob_calloc(1, sizeof *b);
    if (!b) return ob_fail(err, OB_ERR_NOMEM, "cuda backend: out of memory");
    b->base.ops = &CUDA_OPS;
    b->base.caps = (model_backend_caps){.device_memory = true};
    b->base.layer_lo = layer_lo;
    b->base.layer_hi = layer_lo + shape->n_layer;
    b->shape = *shape;
    cuda_range_shape rs = {shape->n_layer, shape->n_kv_rows, shape->n_head_kv, shape->head_dim};
    ob_status st = cuda_ctx_new(dev, &b->ctx, err);
    if (!st) st = cuda_range_new(b->ctx, &rs, &b->r, err);
    if (!st) st = model_backend_bind_each(shape, layer_lo, "cuda backend", bind_weight, b, err);
    if (st) {
        be_free(&b->base);
        return st;
    }
    *out = &b->base;
    return OB_OK;
}

ob_status model_backend_cuda_status(model_backend *be, ob_err *err) {
    cuda_backend *b = as_cuda(be);
    if (!b->st) b->st = cuda_ctx_sync(b->ctx, &b->err);
    if (b->st && err) *err = b->err;
    return b->st;
}
