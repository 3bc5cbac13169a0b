/*
 * Causal grouped-query attention over the F16 KV cache, for a batch of query tokens.
 *
 * The work is cut into tasks of (kv head, chunk of query tokens). A task converts the cache
 * rows its chunk can see, for its one kv head, from F16 to F32 once into the thread's scratch,
 * and every query head of the group and every token of the chunk then reads that copy: during
 * prefill a K row is converted once per chunk rather than once per query token and head. The
 * K copy is transposed (element d of every key in one run) so that scores are computed for
 * many keys at once without horizontal sums (vec.h).
 * Tasks are dealt round-robin because later chunks see more of the cache (causal) and cost more.
 *
 * A sliding-window layer (n_swa) sees only the last n_swa positions, and its cache may be a ring
 * of n_rows rows holding position p in row p % n_rows: copies are made in position order, so
 * the inner loops are the same for both.
 *
 * Rounding follows llama.cpp's CPU path: Q is rounded to F16 before the dot with K (it converts
 * activations to the weight type of a matmul, here the F16 cache), scores and softmax are F32
 * (softmax sum in double), and the probabilities are rounded to F16 before meeting V.
 */
#include "cpu/ops.h"
#include "cpu/vec.h"

#include <math.h>

#define ATTN_CHUNK 32 /* query tokens per task */

size_t cpu_attn_scratch_floats(int64_t n_kv, int64_t head_dim, int nth) {
    /* per thread: K and V copies (n_kv, head_dim), scores (n_kv), rounded q (head_dim) */
    return (size_t)nth * (size_t)(2 * n_kv * head_dim + n_kv + head_dim);
}

static inline float round_f16(float x) { return cpu_f16_to_f32(cpu_f32_to_f16(x)); }

/* One query head of one token against keys [0, n_see) of the copies: kt transposed with
 * leading dimension ld (key j's element d at kt[d * ld + j]), vf row-major. */
static void attend_one(const cpu_vec_ops *vo, float *out, const float *q, const float *kt,
                       int64_t ld, const float *vf, int64_t n_see, int64_t hd, float scale,
                       float *scores, float *qr) {
    vo->round_f16(q, qr, hd);
    vo->scores(scores, qr, kt, ld, n_see, hd);
    cpu_softmax_row(scores, n_see, scale);
    vo->round_f16(scores, scores, n_see);
    vo->mix(out, scores, vf, n_see, hd);
}

/* First position a query at position p sees. */
static inline int64_t first_seen(const cpu_attn_args *a, int64_t p) {
    return a->n_swa > 0 && p - a->n_swa + 1 > 0 ? p - a->n_swa + 1 : 0;
}

/* Cache row of position p (the ring of a sliding-window layer wraps). */
static inline int64_t row_of(const cpu_attn_args *a, int64_t p) {
    return a->n_rows > 0 ? p % a->n_rows : p;
}

static void attn_task(const cpu_attn_args *a, int64_t g, int64_t t_lo, int64_t t_hi,
                      float *scratch) {
    const cpu_vec_ops *vo = cpu_vec_get();
    const int64_t hd = a->head_dim, n_group = a->n_head / a->n_head_kv;
    /* positions [lo, hi) are what some token of the chunk sees; copied in position order */
    const int64_t lo = first_seen(a, a->pos0 + t_lo), hi = a->pos0 + t_hi, n_kv = hi - lo;
    float *kf = scratch, *vf = kf + n_kv * hd, *scores = vf + n_kv * hd, *qr = scores + n_kv;
    for (int64_t j = 0; j < n_kv; j++) {
        const int64_t r = row_of(a, lo + j);
        /* K row j lands in column j of kf (transposed), through vf's next row as a buffer */
        float *row = vf + j * hd;
        vo->f16_to_f32(a->k + r * a->kv_stride + g * hd, row, hd);
        for (int64_t d = 0; d < hd; d++) kf[d * n_kv + j] = row[d];
        vo->f16_to_f32(a->v + r * a->kv_stride + g * hd, row, hd);
    }
    const int64_t q_stride = a->n_head * hd;
    for (int64_t t = t_lo; t < t_hi; t++) {
        const int64_t p = a->pos0 + t, first = first_seen(a, p) - lo;
        for (int64_t h = g * n_group; h < (g + 1) * n_group; h++) {
            attend_one(vo, a->out + t * q_stride + h * hd, a->q + t * q_stride + h * hd,
                       kf + first, n_kv, vf + first * hd, p - lo - first + 1, hd, a->scale,
                       scores, qr);
        }
    }
}

typedef struct attn_ctx {
    const cpu_attn_args *a;
    int64_t n_chunks;
    size_t per_thread; /* scratch floats per thread */
} attn_ctx;

static void attn_run(void *arg, int ith, int nth) {
    const attn_ctx *c = arg;
    const cpu_attn_args *a = c->a;
    float *scratch = a->scratch + (size_t)ith * c->per_thread;
    const int64_t n_tasks = a->n_head_kv * c->n_chunks;
    for (int64_t task = ith; task < n_tasks; task += nth) {
        int64_t g = task % a->n_head_kv, chunk = task / a->n_head_kv;
        int64_t t_lo = chunk * ATTN_CHUNK;
        int64_t t_hi = t_lo + ATTN_CHUNK < a->n_tok ? t_lo + ATTN_CHUNK : a->n_tok;
        attn_task(a, g, t_lo, t_hi, scratch);
    }
}

void cpu_attention(cpu_pool *pool, const cpu_attn_args *a) {
    const int64_t n_kv = a->pos0 + a->n_tok;
    attn_ctx c = {a, (a->n_tok + ATTN_CHUNK - 1) / ATTN_CHUNK,
                  cpu_attn_scratch_floats(n_kv, a->head_dim, 1)};
    cpu_pool_run(pool, attn_run, &c);
}

void cpu_attention_ref(const cpu_attn_args *a) {
    const int64_t hd = a->head_dim, n_group = a->n_head / a->n_head_kv;
    float *scores = a->scratch, *qr = scores + a->pos0 + a->n_tok;
    for (int64_t t = 0; t < a->n_tok; t++) {
        for (int64_t h = 0; h < a->n_head; h++) {
            const float *q = a->q + (t * a->n_head + h) * hd;
            float *out = a->out + (t * a->n_head + h) * hd;
            const int64_t g = h / n_group, p = a->pos0 + t, first = first_seen(a, p);
            const int64_t n_see = p - first + 1;
            for (int64_t d = 0; d < hd; d++) qr[d] = round_f16(q[d]);
            for (int64_t j = 0; j < n_see; j++) {
                const uint16_t *k = a->k + row_of(a, first + j) * a->kv_stride + g * hd;
                float s = 0.0f;
                for (int64_t d = 0; d < hd; d++) s += qr[d] * cpu_f16_to_f32(k[d]);
                scores[j] = s;
            }
            cpu_softmax_row(scores, n_see, a->scale);
            for (int64_t d = 0; d < hd; d++) {
                float acc = 0.0f;
                for (int64_t j = 0; j < n_see; j++)
                    acc += round_f16(scores[j]) *
                           cpu_f16_to_f32(a->v[row_of(a, first + j) * a->kv_stride + g * hd + d]);
                out[d] = acc;
            }
        }
    }
}
