/*
 * What a CUDA backend holds for its contiguous range of layers, apart from the kernels: the F16
 * KV cache, device copies of the weights (uploaded once, found again by their host address),
 * and staging for activations that live in host memory.
 *
 * The engine's op table (src/model/backend.h) passes activation pointers that may be host or
 * device memory: a backend that hands out device buffers keeps the whole range on the GPU, and
 * one given host buffers still works, each op copying its inputs up and its outputs back
 * through the counted path (correct, slower, and visible in the copy statistics). The staging
 * functions below make that choice per pointer, so op glue is the same in both cases.
 *
 * The KV cache's size comes from cuda_range_kv_bytes, the same function the allocation uses,
 * so a planner that calls it cannot disagree with what is allocated.
 */
#include "cuda/cuda_range.h"

#include "core/alloc.h"
#include "core/err.h"
#include "gguf/qtype.h"

#include <string.h>

typedef struct range_entry {
    const void *host; /* key: the host address of the weight's data; NULL = empty slot */
    cuda_weight w;    /* for a vector: type F32, n_out 1 */
} range_entry;

struct cuda_range {
    cuda_ctx *c;         /* borrowed */
    cuda_range_shape s;
    uint16_t *k, *v;     /* (n_layer, n_ctx, n_head_kv * head_dim) f16 each, device */
    range_entry *tab;    /* open addressing, cap a power of two, at most half full */
    size_t cap, n;
    size_t weight_bytes; /* device bytes of uploaded weights */
    void *stage[CUDA_RANGE_SLOTS];  /* device staging buffers for host activations */
    size_t stage_bytes[CUDA_RANGE_SLOTS];
};

ob_status cuda_range_kv_bytes(const cuda_range_shape *s, size_t *out, ob_err *err) {
    size_t b = 2 * sizeof(uint16_t); /* K and V, f16 */
    if (s->n_layer < 0 || s->n_ctx < 0 || s->n_head_kv < 0 || s->head_dim < 0 ||
        ob_mul_size(b, (size_t)s->n_layer, &b) || ob_mul_size(b, (size_t)s->n_ctx, &b) ||
        ob_mul_size(b, (size_t)s->n_head_kv, &b) || ob_mul_size(b, (size_t)s->head_dim, &b))
        return ob_fail(err, OB_ERR_LIMIT,
                       "cuda: KV cache of %lld layers x %lld positions x %lld x %lld overflows",
                       (long long)s->n_layer, (long long)s->n_ctx, (long long)s->n_head_kv,
                       (long long)s->head_dim);
    *out = b;
    return OB_OK;
}

ob_status cuda_range_new(cuda_ctx *c, const cuda_range_shape *s, cuda_range **out,
                         ob_err *err) {
    *out = NULL;
    size_t kv;
    ob_status st = cuda_range_kv_bytes(s, &kv, err);
    if (st) return st;
    cuda_range *r = ob_calloc(1, sizeof *r);
    if (!r) return ob_fail(err, OB_ERR_NOMEM, "cuda: out of memory for a layer range");
    r->c = c;
    r->s = *s;
    void *k = NULL, *v = NULL;
    if (kv && ((st = cuda_buf_alloc(c, kv / 2, "KV cache (K)", &k, err)) ||
               (st = cuda_buf_alloc(c, kv / 2, "KV cache (V)", &v, err)))) {
        cuda_buf_free(c, k);
        ob_free(r);
        return st;
    }
    r->k = k;
    r->v = v;
    *out = r;
    return OB_OK;
}

void cuda_range_free(cuda_range *r) {
    if (!r) return;
    for (size_t i = 0; i < r->cap; i++)
        if (r->tab[i].host) cuda_weight_free(r->c, &r->tab[i].w);
    for (int i = 0; i < CUDA_RANGE_SLOTS; i++) cuda_buf_free(r->c, r->stage[i]);
    cuda_buf_free(r->c, r->k);
    cuda_buf_free(r->c, r->v);
    ob_free(r->tab);
    ob_free(r);
}

uint16_t *cuda_range_k(cuda_range *r, int64_t il) {
    return r->k + il * r->s.n_ctx * r->s.n_head_kv * r->s.head_dim;
}

uint16_t *cuda_range_v(cuda_range *r, int64_t il) {
    return r->v + il * r->s.n_ctx * r->s.n_head_kv * r->s.head_dim;
}

size_t cuda_range_weight_bytes(const cuda_range *r) { return r->weight_bytes; }

/* ---- weights, keyed by host address ----------------------------------------------------- */

static size_t slot_of(const void *host, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)host * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
    return (size_t)(h >> 20) & (cap - 1);
}

static range_entry *find(cuda_range *r, const void *host) {
    if (!r->cap) return NULL;
    for (size_t i = slot_of(host, r->cap);; i = (i + 1) & (r->cap - 1)) {
        if (r->tab[i].host == host) return &r->tab[i];
        if (!r->tab[i].host) return NULL;
    }
}

/* Keeps the table at most half full; entries move, so callers re-find after a grow. */
static ob_status grow(cuda_range *r, ob_err *err) {
    if (2 * (r->n + 1) <= r->cap) return OB_OK;
    size_t cap = r->cap ? 2 * r->cap : 64;
    range_entry *t = ob_calloc(cap, sizeof *t);
    if (!t) return ob_fail(err, OB_ERR_NOMEM, "cuda: out of memory for the weight table");
    for (size_t i = 0; i < r->cap; i++) {
        if (!r->tab[i].host) continue;
        size_t j = slot_of(r->tab[i].host, cap);
        while (t[j].host) j = (j + 1) & (cap - 1);
        t[j] = r->tab[i];
    }
    ob_free(r->tab);
    r->tab = t;
    r->cap = cap;
    return OB_OK;
}

ob_status cuda_range_weight(cuda_range *r, const char *name, const void *host, uint32_t type,
                            int64_t n_in, int64_t n_out, const cuda_weight **out, ob_err *err) {
    range_entry *e = find(r, host);
    if (!e) {
        ob_status st = grow(r, err);
        if (st) return st;
        cuda_weight w;
        if ((st = cuda_weight_upload(r->c, name, host, type, n_in, n_out, &w, err))) return st;
        size_t i = slot_of(host, r->cap);
        while (r->tab[i].host) i = (i + 1) & (r->cap - 1);
        e = &r->tab[i];
        e->host = host;
        e->w = w;
        r->n++;
        r->weight_bytes += w.row_size * (size_t)n_out;
    }
    *out = &e->w;
    return OB_OK;
}

ob_status cuda_range_vector(cuda_range *r, const char *name, const float *host, int64_t n,
                            const float **out, ob_err *err) {
    const cuda_weight *w;
    ob_status st = cuda_range_weight(r, name, host, OB_QTYPE_F32, n, 1, &w, err);
    *out = st ? NULL : (const float *)w->data_dev;
    return st;
}

/* ---- staging of host activations -------------------------------------------------------- */

static ob_status stage_room(cuda_range *r, int slot, size_t bytes, ob_err *err) {
    if (slot < 0 || slot >= CUDA_RANGE_SLOTS)
        return ob_fail(err, OB_ERR_ARG, "cuda: staging slot %d of %d", slot, CUDA_RANGE_SLOTS);
    if (r->stage_bytes[slot] >= bytes) return OB_OK;
    /* the previous contents are dead: a slot holds one op's operand at a time */
    cuda_buf_free(r->c, r->stage[slot]);
    r->stage[slot] = NULL;
    r->stage_bytes[slot] = 0;
    ob_status st = cuda_buf_alloc(r->c, bytes, "activation staging", &r->stage[slot], err);
    if (!st) r->stage_bytes[slot] = bytes;
    return st;
}

ob_status cuda_range_stage_in(cuda_range *r, int slot, const void *p, size_t bytes,
                              const void **dev, ob_err *err) {
    if (cuda_ptr_is_device(p)) {
        *dev = p;
        return OB_OK;
    }
    ob_status st = stage_room(r, slot, bytes, err);
    if (!st) st = cuda_copy_h2d(r->c, r->stage[slot], p, bytes, err);
    *dev = st ? NULL : r->stage[slot];
    return st;
}

ob_status cuda_range_stage_out(cuda_range *r, int slot, void *p, size_t bytes, void **dev,
                               ob_err *err) {
    if (cuda_ptr_is_device(p)) {
        *dev = p;
        return OB_OK;
    }
    ob_status st = stage_room(r, slot, bytes, err);
    *dev = st ? NULL : r->stage[slot];
    return st;
}

ob_status cuda_range_stage_back(cuda_range *r, int slot, void *p, size_t bytes, ob_err *err) {
    if (cuda_ptr_is_device(p)) return OB_OK;
    if (slot < 0 || slot >= CUDA_RANGE_SLOTS || r->stage_bytes[slot] < bytes)
        return ob_fail(err, OB_ERR_ARG, "cuda: staging slot %d holds %zu bytes, %zu asked back",
                       slot, slot >= 0 && slot < CUDA_RANGE_SLOTS ? r->stage_bytes[slot] : 0,
                       bytes);
    /* cuda_copy_d2h runs on the context's stream, after the kernel that wrote the slot */
    return cuda_copy_d2h(r->c, p, r->stage[slot], bytes, err);
}
