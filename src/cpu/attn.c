/*
 * Causal grouped-query attention over the F16 KV cache, for a batch of query tokens.
 *
 * The work is cut into tasks of (kv head, chunk of query tokens). For each token of its chunk a
 * task takes the query heads of the kv head's group up to ATTN_QB at a time: their scores
 * against every visible key come from one pass over the F16 K rows, and their outputs from one
 * pass over the F16 V rows (vec.h), each row converted once for all of them where it lies in
 * the cache. Nothing is copied first, so a decode step reads the visible cache once, which is
 * what long contexts pay for. Tasks are dealt round-robin because later chunks see more of the
 * cache (causal) and cost more.
 *
 * A sliding-window layer (n_swa) sees only the last n_swa positions, and its cache may be a ring
 * of n_rows rows holding position p in row p % n_rows: the visible positions are then at most
 * two runs of rows, taken in position order, so the scores and sums see keys in the same order
 * as without a ring. In a batch of several sequences each token has its own position, and its
 * sequence's rows are found through a block table (blocks of the KV pool) or in that
 * sequence's ring; the visible positions are walked in runs of physically adjacent rows.
 *
 * Rounding follows llama.cpp's CPU path: Q is rounded to F16 before the dot with K (it converts
 * activations to the weight type of a matmul, here the F16 cache), scores and softmax are F32
 * (softmax sum in double), and the probabilities are rounded to F16 before meeting V.
 */
#include "cpu/ops.h"
#include "cpu/vec.h"

#include <math.h>
#include <string.h>

#define ATTN_CHUNK 32 /* query tokens per task */
#define ATTN_QB 4     /* query heads sharing one pass over the cache rows */

size_t cpu_attn_scratch_floats(int64_t n_kv, int64_t head_dim, int nth) {
    /* per thread: scores (ATTN_QB, n_kv) and rounded queries (ATTN_QB, head_dim) */
    return (size_t)nth * ATTN_QB * (size_t)(n_kv + head_dim);
}

static inline float round_f16(float x) { return cpu_f16_to_f32(cpu_f32_to_f16(x)); }

/* Position of query token t. */
static inline int64_t pos_of(const cpu_attn_args *a, int64_t t) {
    return a->pos ? a->pos[t] : a->pos0 + t;
}

/* First position a query at position p sees. */
static inline int64_t first_seen(const cpu_attn_args *a, int64_t p) {
    return a->n_swa > 0 && p - a->n_swa + 1 > 0 ? p - a->n_swa + 1 : 0;
}

/* The cache rows holding positions [q, end) of token t's sequence start with a run of
 * physically consecutive rows: returns its length and its first row in *row. A block table's
 * adjacent blocks (one sequence in a fresh pool: all of them) merge into one run, so a single
 * sequence is read in one pass as before; a ring wraps once. */
static int64_t next_run(const cpu_attn_args *a, int64_t t, int64_t q, int64_t end,
                        int64_t *row) {
    if (a->blocks) {
        const int32_t *bt = a->blocks[t];
        const int64_t bs = a->block_size;
        int64_t blk = q / bs, n = bs - q % bs;
        *row = (int64_t)bt[blk] * bs + q % bs;
        while (q + n < end && bt[blk + 1] == bt[blk] + 1) {
            blk++;
            n += bs;
        }
        return q + n < end ? n : end - q;
    }
    const int64_t base = a->seq ? a->seq[t] * a->n_rows : 0;
    if (a->n_rows <= 0) {
        *row = q;
        return end - q;
    }
    const int64_t r = q % a->n_rows, n = a->n_rows - r;
    *row = base + r;
    return n < end - q ? n : end - q;
}

/* Query heads [h0, h0 + nq) of token t, all reading kv head g. */
static void attend_heads(const cpu_vec_ops *vo, const cpu_attn_args *a, int64_t g, int64_t t,
                         int64_t h0, int64_t nq, float *scores, int64_t ld, float *qr) {
    const int64_t hd = a->head_dim, q_stride = a->n_head * hd, p = pos_of(a, t);
    const int64_t first = first_seen(a, p), n_see = p - first + 1;
    int64_t row, len;
    vo->round_f16(a->q + t * q_stride + h0 * hd, qr, nq * hd);
    for (int64_t q = first; q <= p; q += len) {
        len = next_run(a, t, q, p + 1, &row);
        vo->scores(scores + (q - first), ld, qr, nq, a->k + row * a->kv_stride + g * hd,
                   a->kv_stride, len, hd);
    }
    for (int64_t i = 0; i < nq; i++) {
        cpu_softmax_row(scores + i * ld, n_see, a->scale);
        vo->round_f16(scores + i * ld, scores + i * ld, n_see);
    }
    float *out = a->out + t * q_stride + h0 * hd;
    memset(out, 0, (size_t)(nq * hd) * sizeof *out);
    for (int64_t q = first; q <= p; q += len) {
        len = next_run(a, t, q, p + 1, &row);
        vo->mix(out, scores + (q - first), ld, nq, a->v + row * a->kv_stride + g * hd,
                a->kv_stride, len, hd);
    }
}

static int64_t n_kv_of(const cpu_attn_args *a) {
    return a->n_kv > 0 ? a->n_kv : a->pos0 + a->n_tok;
}

static void attn_task(const cpu_attn_args *a, int64_t g, int64_t t_lo, int64_t t_hi,
                      float *scratch) {
    const cpu_vec_ops *vo = cpu_vec_get();
    const int64_t n_group = a->n_head / a->n_head_kv, ld = n_kv_of(a);
    float *scores = scratch, *qr = scores + ATTN_QB * ld;
    const int64_t h_end = (g + 1) * n_group; /* query heads [g * n_group, h_end) read head g */
    for (int64_t t = t_lo; t < t_hi; t++)
        for (int64_t h0 = g * n_group; h0 < h_end; h0 += ATTN_QB)
            attend_heads(vo, a, g, t, h0, h_end - h0 < ATTN_QB ? h_end - h0 : ATTN_QB, scores, ld,
                         qr);
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
    const int64_t n_kv = n_kv_of(a);
    attn_ctx c = {a, (a->n_tok + ATTN_CHUNK - 1) / ATTN_CHUNK,
                  cpu_attn_scratch_floats(n_kv, a->head_dim, 1)};
    cpu_pool_run(pool, attn_run, &c);
}

/* Cache row of position p of token t's sequence, one position at a time (the reference). */
static int64_t row_at(const cpu_attn_args *a, int64_t t, int64_t p) {
    int64_t row;
    next_run(a, t, p, p + 1, &row);
    return row;
}

void cpu_attention_ref(const cpu_attn_args *a) {
    const int64_t hd = a->head_dim, n_group = a->n_head / a->n_head_kv;
    float *scores = a->scratch, *qr = scores + n_kv_of(a);
    for (int64_t t = 0; t < a->n_tok; t++) {
        for (int64_t h = 0; h < a->n_head; h++) {
            const float *q = a->q + (t * a->n_head + h) * hd;
            float *out = a->out + (t * a->n_head + h) * hd;
            const int64_t g = h / n_group, p = pos_of(a, t), first = first_seen(a, p);
            const int64_t n_see = p - first + 1;
            for (int64_t d = 0; d < hd; d++) qr[d] = round_f16(q[d]);
            for (int64_t j = 0; j < n_see; j++) {
                const uint16_t *k = a->k + row_at(a, t, first + j) * a->kv_stride + g * hd;
                float s = 0.0f;
                for (int64_t d = 0; d < hd; d++) s += qr[d] * cpu_f16_to_f32(k[d]);
                scores[j] = s;
            }
            cpu_softmax_row(scores, n_see, a->scale);
            for (int64_t d = 0; d < hd; d++) {
                float acc = 0.0f;
                for (int64_t j = 0; j < n_see; j++)
                    acc += round_f16(scores[j]) *
                           cpu_f16_to_f32(a->v[row_at(a, t, first + j) * a->kv_stride + g * hd + d]);
                out[d] = acc;
            }
        }
    }
}
