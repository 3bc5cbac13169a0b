/*
 * What the KV-cache and attention tests of the device backends (tests/vulkan, tests/cuda)
 * share: a one-layer shape of 4 query heads over 2 KV heads of 40, a device backend beside
 * the CPU backend on it, batches of rows stored and attended on both (outputs within 2e-3 of
 * their largest value: the CPU rounds the softmax weights to F16 before mixing V, a device
 * does not), and the cases both run: shuffled pool blocks of two sequences with
 * copy-on-write, and sliding-window rings that wrap after a fork.
 */
#ifndef OB_TESTS_DEVICE_ATTENTION_H
#define OB_TESTS_DEVICE_ATTENTION_H

#include "model/backend.h"

#include "test.h"

#include <math.h>
#include <stdint.h>

static uint64_t da_rng = 0x2545f4914f6cdd1dull;

/* n uniform values in [-amp, amp). */
static inline void da_fill(float *x, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++) {
        da_rng ^= da_rng << 13, da_rng ^= da_rng >> 7, da_rng ^= da_rng << 17;
        x[i] = ((float)(uint32_t)(da_rng >> 16) / 4294967296.0f * 2.0f - 1.0f) * amp;
    }
}

#define N_HEAD    4
#define N_HEAD_KV 2
#define HEAD_DIM  40
#define QD        (N_HEAD * HEAD_DIM)
#define KVD       (N_HEAD_KV * HEAD_DIM)
#define MAX_TOK   48

static inline model_backend_shape da_shape(int64_t n_swa, const bool *swa, int64_t n_ctx) {
    return (model_backend_shape){.arch = "llama",
                                 .n_layer = 1,
                                 .n_ctx = n_ctx,
                                 .n_kv_rows = 2 * ((n_ctx + KV_BLOCK - 1) / KV_BLOCK) * KV_BLOCK,
                                 .n_seq = 2,
                                 .n_swa = n_swa,
                                 .swa = swa,
                                 .n_batch = MAX_TOK,
                                 .n_head = N_HEAD,
                                 .n_head_kv = N_HEAD_KV,
                                 .head_dim = HEAD_DIM};
}

/* A device backend's constructor (model_backend_vulkan_new, model_backend_cuda_new). */
typedef ob_status (*da_backend_new)(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                    model_backend **out, ob_err *err);

typedef struct pair {
    model_backend *gpu, *cpu;
} pair;

static inline bool pair_new(da_backend_new make, int dev, const model_backend_shape *s,
                            pair *p) {
    ob_err err = {{0}};
    p->gpu = p->cpu = NULL;
    if (make(s, 0, dev, &p->gpu, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return false;
    }
    return model_backend_cpu_new(s, 0, 1, &p->cpu, &err) == OB_OK;
}

static inline void pair_free(pair *p) {
    if (p->gpu) p->gpu->ops->free(p->gpu);
    if (p->cpu) p->cpu->ops->free(p->cpu);
}

/* One batch of rows (seq[t], pos[t]) on both backends: random k, v stored, random q attended;
 * true when the outputs agree. tables[s] is sequence s's block table. */
static inline bool step(pair *p, const int32_t *seq, const int32_t *pos, int64_t n,
                 const int32_t *const tables[2], const char *what) {
    int32_t slot[MAX_TOK];
    const int32_t *blocks[MAX_TOK];
    int64_t n_kv = 0;
    for (int64_t t = 0; t < n; t++) {
        blocks[t] = tables[seq[t]];
        slot[t] = blocks[t][pos[t] / KV_BLOCK] * KV_BLOCK + pos[t] % KV_BLOCK;
        if (pos[t] + 1 > n_kv) n_kv = pos[t] + 1;
    }
    const model_kv_batch kv = {
        .n_tok = n, .pos = pos, .seq = seq, .slot = slot, .blocks = blocks, .n_kv = n_kv};
    float k[MAX_TOK * KVD], v[MAX_TOK * KVD], q[MAX_TOK * QD], a[MAX_TOK * QD], b[MAX_TOK * QD];
    da_fill(k, n * KVD, 1.0f);
    da_fill(v, n * KVD, 1.0f);
    da_fill(q, n * QD, 1.0f);
    const float scale = 1.0f / sqrtf((float)HEAD_DIM);
    p->gpu->ops->kv_store(p->gpu, 0, k, v, &kv);
    p->gpu->ops->attention(p->gpu, 0, a, q, &kv, scale);
    p->cpu->ops->kv_store(p->cpu, 0, k, v, &kv);
    p->cpu->ops->attention(p->cpu, 0, b, q, &kv, scale);
    ob_err err = {{0}};
    if (p->gpu->ops->sync(p->gpu, &err)) {
        fprintf(stderr, "  %s: %s\n", what, err.msg);
        return false;
    }
    double d = 0, s = 0;
    for (int64_t i = 0; i < n * QD; i++) {
        if (!isfinite(a[i])) d = INFINITY;
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    if (d <= 2e-3 * s) return true;
    fprintf(stderr, "  %s: outputs differ by %g (scale %g)\n", what, d, s);
    return false;
}

/* Two sequences through shuffled blocks: a mixed prefill (seq 0: 0..39 crossing a block, seq
 * 1: 0..6, interleaved), then decode steps of both in one batch, then seq 1 forked from seq
 * 0's first block by a copy-on-write copy and continued. */
static inline void da_pool_blocks_and_decode(da_backend_new make, int dev) {
    model_backend_shape s = da_shape(0, NULL, 128);
    pair p;
    CHECK(pair_new(make, dev, &s, &p));
    int32_t t0[] = {3, 1}, t1[] = {0, 2};
    const int32_t *tables[2] = {t0, t1};
    int32_t seq[MAX_TOK], pos[MAX_TOK];
    int64_t n = 0;
    for (int32_t i = 0; i < 40; i++) {
        seq[n] = 0, pos[n++] = i;
        if (i < 7) seq[n] = 1, pos[n++] = i;
    }
    CHECK(step(&p, seq, pos, n, tables, "prefill"));
    for (int32_t i = 0; i < 3; i++) {
        int32_t ds[2] = {0, 1}, dp[2] = {40 + i, 7 + i};
        CHECK(step(&p, ds, dp, 2, tables, "decode"));
    }
    /* seq 1 now shares seq 0's first 20 positions: block 3 copied to block 0 */
    const kv_copy cp = {.src = 3, .dst = 0, .n_rows = 20};
    p.gpu->ops->kv_copy(p.gpu, &cp, 1);
    p.cpu->ops->kv_copy(p.cpu, &cp, 1);
    int32_t fs[1] = {1}, fp[1] = {20};
    CHECK(step(&p, fs, fp, 1, tables, "after copy-on-write"));
    pair_free(&p);
}

/* A sliding window of 8 (rings of 8 + 48 rows per sequence): 30 prefill positions of seq 0,
 * a fork into seq 1, then 40 decode steps of both, so both rings wrap. */
static inline void da_sliding_window_rings(da_backend_new make, int dev) {
    const bool swa[1] = {true};
    model_backend_shape s = da_shape(8, swa, 128);
    pair p;
    CHECK(pair_new(make, dev, &s, &p));
    int32_t t0[] = {0, 1, 2, 3}, t1[] = {0, 1, 2, 3};
    const int32_t *tables[2] = {t0, t1};
    int32_t seq[MAX_TOK] = {0}, pos[MAX_TOK];
    for (int32_t i = 0; i < 30; i++)
        pos[i] = i;
    CHECK(step(&p, seq, pos, 30, tables, "window prefill"));
    p.gpu->ops->seq_copy(p.gpu, 0, 1);
    p.cpu->ops->seq_copy(p.cpu, 0, 1);
    for (int32_t i = 0; i < 40; i++) {
        int32_t ds[2] = {0, 1}, dp[2] = {30 + i, 30 + i};
        CHECK_MSG(step(&p, ds, dp, 2, tables, "window decode"), "step %d", i);
    }
    pair_free(&p);
}

#endif
