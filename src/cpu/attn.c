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
#include <stdbool.h>
#include <string.h>

#define ATTN_CHUNK 32 /* query tokens per task, at most */
#define ATTN_QMAX 16  /* query rows (tokens x heads of a group) sharing one pass over the rows */
#define ATTN_KB 64    /* cache rows per pass: a block of K or V rows stays in L1/L2 while
                         every query row of a tile meets it */

size_t cpu_attn_scratch_floats(int64_t n_kv, int64_t head_dim, int nth) {
    /* per thread: scores (ATTN_QMAX, n_kv), rounded queries and outputs (ATTN_QMAX, head_dim) */
    return (size_t)nth * ATTN_QMAX * (size_t)(n_kv + 2 * head_dim);
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

/* Whether token u continues token t's sequence at the next position: the two share the cache
 * rows of every position both see, so they can meet them in one pass. */
static bool continues(const cpu_attn_args *a, int64_t t, int64_t u) {
    if (pos_of(a, u) != pos_of(a, t) + (u - t)) return false;
    if (a->blocks && a->blocks[u] != a->blocks[t]) return false;
    return !a->seq || a->seq[u] == a->seq[t];
}

/* A tile: n_tok consecutive tokens of one sequence from t0, each with the nq query heads from
 * h0 that read kv head g: query row r is token t0 + r / nq, head h0 + r % nq. Scores, queries
 * and outputs are rows of ld, hd and hd floats; a score row's column c is position base + c. */
typedef struct attn_tile {
    const cpu_attn_args *a;
    const cpu_vec_ops *vo;
    int64_t g, t0, n_tok, h0, nq, base, ld;
    float *scores, *qr, *acc;
} attn_tile;

/* Positions [lo, hi) of the tile's sequence met by query rows [r0, r0 + n), in position
 * order and in runs of at most ATTN_KB cache rows: their scores against the K rows, or
 * (values) the probability-weighted V rows added to their outputs. */
static void tile_pass(const attn_tile *w, int64_t r0, int64_t n, int64_t lo, int64_t hi,
                      bool values) {
    const cpu_attn_args *a = w->a;
    const int64_t hd = a->head_dim;
    int64_t row, len;
    for (int64_t q = lo; q < hi; q += len) {
        len = next_run(a, w->t0, q, hi, &row);
        if (len > ATTN_KB) len = ATTN_KB;
        float *s = w->scores + r0 * w->ld + (q - w->base);
        const int64_t at = row * a->kv_stride + w->g * hd;
        if (values) w->vo->mix(w->acc + r0 * hd, s, w->ld, n, a->v + at, a->kv_stride, len, hd);
        else w->vo->scores(s, w->ld, w->qr + r0 * hd, n, a->k + at, a->kv_stride, len, hd);
    }
}

static void tile_scores(const attn_tile *w, int64_t r0, int64_t n, int64_t lo, int64_t hi) {
    tile_pass(w, r0, n, lo, hi, false);
}

static void tile_mix(const attn_tile *w, int64_t r0, int64_t n, int64_t lo, int64_t hi) {
    tile_pass(w, r0, n, lo, hi, true);
}

/* The tile's outputs. Token i sees positions [f_i, p_i], both rising with i: every token sees
 * the common run [f_last, p_first], met by all query rows in one pass; what only some tokens
 * see (older positions of a sliding window, the tile's own newer positions) is met per token.
 * Each output still sums its positions in order, and each score and sum is the same
 * arithmetic whatever else shares the pass, so a token's result does not depend on the tile
 * it sits in (decode equals prefill, bit for bit). */
static void attend_tile(attn_tile *w) {
    const cpu_attn_args *a = w->a;
    const int64_t hd = a->head_dim, q_stride = a->n_head * hd, nq = w->nq, last = w->n_tok - 1;
    const int64_t p_first = pos_of(a, w->t0), f_last = first_seen(a, p_first + last);
    w->base = first_seen(a, p_first);
    for (int64_t i = 0; i < w->n_tok; i++)
        w->vo->round_f16(a->q + (w->t0 + i) * q_stride + w->h0 * hd, w->qr + i * nq * hd,
                         nq * hd);
    const int64_t rows = w->n_tok * nq;
    if (f_last <= p_first) tile_scores(w, 0, rows, f_last, p_first + 1);
    for (int64_t i = 0; i < w->n_tok; i++) {
        const int64_t f = first_seen(a, p_first + i), p = p_first + i;
        if (f_last > p_first) { /* a window shorter than the tile: nothing in common */
            tile_scores(w, i * nq, nq, f, p + 1);
            continue;
        }
        tile_scores(w, i * nq, nq, f, f_last);
        tile_scores(w, i * nq, nq, p_first + 1, p + 1);
    }
    for (int64_t i = 0; i < w->n_tok; i++) {
        const int64_t f = first_seen(a, p_first + i), n_see = p_first + i - f + 1;
        for (int64_t r = i * nq; r < (i + 1) * nq; r++) {
            float *s = w->scores + r * w->ld + (f - w->base);
            cpu_softmax_row(s, n_see, a->scale);
            w->vo->round_f16(s, s, n_see);
        }
    }
    memset(w->acc, 0, (size_t)(rows * hd) * sizeof *w->acc);
    for (int64_t i = 0; i < w->n_tok; i++) /* positions before the common run */
        tile_mix(w, i * nq, nq, first_seen(a, p_first + i),
                 f_last <= p_first ? f_last : p_first + i + 1);
    if (f_last <= p_first) {
        tile_mix(w, 0, rows, f_last, p_first + 1);
        for (int64_t i = 1; i < w->n_tok; i++) /* the tile's own newer positions */
            tile_mix(w, i * nq, nq, p_first + 1, p_first + i + 1);
    }
    for (int64_t i = 0; i < w->n_tok; i++)
        memcpy(a->out + (w->t0 + i) * q_stride + w->h0 * hd, w->acc + i * nq * hd,
               (size_t)(nq * hd) * sizeof *w->acc);
}

static int64_t n_kv_of(const cpu_attn_args *a) {
    return a->n_kv > 0 ? a->n_kv : a->pos0 + a->n_tok;
}

/* Tokens [t_lo, t_hi) for kv head g: tiles of consecutive tokens of one sequence, as many as
 * ATTN_QMAX query rows allow (a group wider than that goes ATTN_QMAX heads at a time). */
static void attn_task(const cpu_attn_args *a, int64_t g, int64_t t_lo, int64_t t_hi,
                      float *scratch) {
    const int64_t n_group = a->n_head / a->n_head_kv, ld = n_kv_of(a);
    attn_tile w = {.a = a, .vo = cpu_vec_get(), .g = g, .ld = ld, .scores = scratch};
    w.qr = scratch + ATTN_QMAX * ld;
    w.acc = w.qr + ATTN_QMAX * a->head_dim;
    const int64_t h_end = (g + 1) * n_group; /* query heads [g * n_group, h_end) read head g */
    const int64_t max_tok = n_group < ATTN_QMAX ? ATTN_QMAX / n_group : 1;
    for (int64_t t = t_lo; t < t_hi; t += w.n_tok) {
        w.n_tok = 1;
        while (w.n_tok < max_tok && t + w.n_tok < t_hi && continues(a, t, t + w.n_tok))
            w.n_tok++;
        w.t0 = t;
        for (w.h0 = g * n_group; w.h0 < h_end; w.h0 += w.nq) {
            w.nq = h_end - w.h0 < ATTN_QMAX ? h_end - w.h0 : ATTN_QMAX;
            attend_tile(&w);
        }
    }
}

typedef struct attn_ctx {
    const cpu_attn_args *a;
    size_t per_thread; /* scratch floats per thread */
} attn_ctx;

static void attn_run(void *arg, int ith, int nth) {
    const attn_ctx *c = arg;
    const cpu_attn_args *a = c->a;
    float *scratch = a->scratch + (size_t)ith * c->per_thread;
    /* Chunks small enough that every thread gets several tasks: a short prompt over a long
     * cache (the next turn of a conversation) is all attention, and two chunks of 32 and 16
     * tokens would leave one thread idle a third of the time. */
    int64_t chunk = (a->n_tok * a->n_head_kv + 4 * nth - 1) / (4 * nth);
    chunk = chunk < 4 ? 4 : chunk > ATTN_CHUNK ? ATTN_CHUNK : chunk;
    const int64_t n_chunks = (a->n_tok + chunk - 1) / chunk, n_tasks = a->n_head_kv * n_chunks;
    for (int64_t task = ith; task < n_tasks; task += nth) {
        int64_t g = task % a->n_head_kv, t_lo = task / a->n_head_kv * chunk;
        attn_task(a, g, t_lo, t_lo + chunk < a->n_tok ? t_lo + chunk : a->n_tok, scratch);
    }
}

void cpu_attention(cpu_pool *pool, const cpu_attn_args *a) {
    attn_ctx c = {a, cpu_attn_scratch_floats(n_kv_of(a), a->head_dim, 1)};
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
