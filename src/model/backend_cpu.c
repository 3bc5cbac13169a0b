/*
 * The CPU backend: the op table of backend.h over src/cpu/, with the F16 KV cache and the
 * matmul scratch it owns. Layer il of the model is row il - layer_lo of the cache.
 */
#include "model/backend.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <string.h>

typedef struct cpu_backend {
    model_backend base;
    model_backend_shape shape;
    cpu_pool *pool;
    uint16_t *k_cache; /* (n_layer, n_ctx, n_head_kv * head_dim) f16 */
    uint16_t *v_cache; /* (n_layer, n_ctx, n_head_kv * head_dim) f16 */
    void *wsp;         /* shape.matmul_wsize bytes: activations in vec_dot_type */
    float *attn_scratch; /* cpu_attn_scratch_floats(n_ctx, head_dim, n_threads) */
} cpu_backend;

static cpu_backend *as_cpu(model_backend *be) { return (cpu_backend *)be; }

static int64_t kv_row(const cpu_backend *b) { return b->shape.n_head_kv * b->shape.head_dim; }

static uint16_t *layer_k(cpu_backend *b, int64_t il) {
    return b->k_cache + (size_t)(il - b->base.layer_lo) * b->shape.n_ctx * kv_row(b);
}

static uint16_t *layer_v(cpu_backend *b, int64_t il) {
    return b->v_cache + (size_t)(il - b->base.layer_lo) * b->shape.n_ctx * kv_row(b);
}

static void be_get_rows(model_backend *be, const cpu_weight *w, const int32_t *ids, int64_t n,
                        float *out) {
    (void)be;
    cpu_get_rows(w, ids, n, out);
}

static void be_rmsnorm(model_backend *be, float *out, const float *x, const float *w,
                       int64_t n_rows, int64_t n, float eps) {
    cpu_rmsnorm(as_cpu(be)->pool, out, x, w, n_rows, n, eps);
}

static void be_matmul(model_backend *be, float *y, const cpu_weight *w, const float *x,
                      int64_t n_tok) {
    cpu_matmul(as_cpu(be)->pool, y, w, x, n_tok, as_cpu(be)->wsp);
}

static void be_rope(model_backend *be, float *x, int64_t n_tok, int64_t n_head,
                    int64_t head_dim, const int32_t *pos, const cpu_rope_params *rp) {
    cpu_rope(as_cpu(be)->pool, x, n_tok, n_head, head_dim, pos, rp);
}

static void be_kv_store(model_backend *be, int64_t il, const float *k, const float *v,
                        int64_t pos0, int64_t n_tok) {
    cpu_backend *b = as_cpu(be);
    const int64_t row = kv_row(b);
    uint16_t *kc = layer_k(b, il) + pos0 * row, *vc = layer_v(b, il) + pos0 * row;
    for (int64_t i = 0; i < n_tok * row; i++) {
        kc[i] = cpu_f32_to_f16(k[i]);
        vc[i] = cpu_f32_to_f16(v[i]);
    }
}

static void be_attention(model_backend *be, int64_t il, float *out, const float *q,
                         int64_t pos0, int64_t n_tok, float scale) {
    cpu_backend *b = as_cpu(be);
    cpu_attn_args a = {
        .q = q, .k = layer_k(b, il), .v = layer_v(b, il), .out = out, .n_tok = n_tok,
        .pos0 = pos0, .n_head = b->shape.n_head, .n_head_kv = b->shape.n_head_kv,
        .head_dim = b->shape.head_dim, .kv_stride = kv_row(b), .scale = scale,
        .scratch = b->attn_scratch,
    };
    cpu_attention(b->pool, &a);
}

static void be_swiglu(model_backend *be, float *out, const float *gate, const float *up,
                      int64_t n) {
    cpu_swiglu(as_cpu(be)->pool, out, gate, up, n);
}

static void be_add(model_backend *be, float *x, const float *y, int64_t n) {
    cpu_add(as_cpu(be)->pool, x, y, n);
}

static void be_kv_truncate(model_backend *be, int64_t n_past) {
    (void)be;
    (void)n_past;
}

static void be_free(model_backend *be) {
    cpu_backend *b = as_cpu(be);
    if (!b) return;
    cpu_pool_free(b->pool);
    ob_free_aligned(b->k_cache);
    ob_free_aligned(b->v_cache);
    ob_free_aligned(b->wsp);
    ob_free_aligned(b->attn_scratch);
    ob_free(b);
}

static const model_backend_ops CPU_OPS = {
    .name = "cpu", .get_rows = be_get_rows, .rmsnorm = be_rmsnorm, .matmul = be_matmul,
    .rope = be_rope, .kv_store = be_kv_store, .attention = be_attention, .swiglu = be_swiglu,
    .add = be_add, .kv_truncate = be_kv_truncate, .free = be_free,
};

/* Aligned buffer of n * size bytes (at least one byte), or NULL on overflow/failure. */
static void *alloc_buf(size_t n, size_t size) {
    size_t bytes;
    if (ob_mul_size(n, size, &bytes)) return NULL;
    return ob_alloc_aligned(64, bytes ? bytes : 64);
}

ob_status model_backend_cpu_new(const model_backend_shape *shape, int64_t layer_lo,
                                int n_threads, model_backend **out, ob_err *err) {
    *out = NULL;
    cpu_backend *b = ob_calloc(1, sizeof *b);
    if (!b) return ob_fail(err, OB_ERR_NOMEM, "cpu backend: out of memory");
    b->base.ops = &CPU_OPS;
    b->base.layer_lo = layer_lo;
    b->base.layer_hi = layer_lo + shape->n_layer;
    b->shape = *shape;
    ob_status st = cpu_pool_new(n_threads, &b->pool, err);
    if (st) {
        be_free(&b->base);
        return st;
    }
    size_t cache_elems;
    if (ob_mul_size((size_t)shape->n_layer * (size_t)shape->n_ctx,
                    (size_t)(shape->n_head_kv * shape->head_dim), &cache_elems)) {
        be_free(&b->base);
        return ob_fail(err, OB_ERR_LIMIT, "KV cache: size overflows (n_ctx %lld)",
                       (long long)shape->n_ctx);
    }
    b->k_cache = alloc_buf(cache_elems, sizeof(uint16_t));
    b->v_cache = alloc_buf(cache_elems, sizeof(uint16_t));
    b->wsp = alloc_buf(shape->matmul_wsize, 1);
    b->attn_scratch = alloc_buf(cpu_attn_scratch_floats(shape->n_ctx, shape->head_dim, n_threads),
                                sizeof(float));
    if (!b->k_cache || !b->v_cache || !b->wsp || !b->attn_scratch) {
        be_free(&b->base);
        return ob_fail(err, OB_ERR_NOMEM, "KV cache: out of memory for %lld positions x %lld "
                       "layers (%.1f MiB)", (long long)shape->n_ctx, (long long)shape->n_layer,
                       (double)cache_elems * 4.0 / 1048576.0);
    }
    *out = &b->base;
    return OB_OK;
}

int model_backend_cpu_threads(const model_backend *be) {
    return cpu_pool_n_threads(((const cpu_backend *)be)->pool);
}
