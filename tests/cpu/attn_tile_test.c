/*
 * cpu_attention meets several consecutive tokens of a sequence in one pass over the cache
 * (tiles). A token's result must not depend on that: every token of a batch equals, bit for
 * bit, the same token attended alone (a decode step), for group widths that make tiles of 16,
 * 4 and 1 tokens, with and without a sliding window (one shorter than a tile, one longer, over
 * a ring that has wrapped), and in a batch of two sequences reading their own block tables.
 * The batch is also held against the one-head-at-a-time reference.
 */
#include "core/alloc.h"
#include "cpu/ops.h"
#include "cpu/pool.h"
#include "test.h"

#include <math.h>
#include <string.h>

static uint32_t rng = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / (float)(1u << 23) - 1.0f;
}

enum { HD = 32, POS0 = 150, NT = 37, RING = 120, NPOS = POS0 + NT };

typedef struct shape {
    int64_t n_head, n_head_kv, n_swa;
    bool ring;
} shape;

/* Runs the batch, then each token alone at its position; 0 when every output is identical. */
static int64_t batch_vs_alone(cpu_pool *p, const shape *s, double *worst_ref) {
    const int64_t stride = s->n_head_kv * HD, width = s->n_head * HD;
    const int64_t rows = s->ring ? RING : NPOS;
    float *q = ob_alloc((size_t)(NT * width), sizeof(float));
    float *batch = ob_alloc((size_t)(NT * width), sizeof(float));
    float *ref = ob_alloc((size_t)(NT * width), sizeof(float));
    float *alone = ob_alloc((size_t)width, sizeof(float));
    uint16_t *k = ob_alloc((size_t)(rows * stride), 2), *v = ob_alloc((size_t)(rows * stride), 2);
    float *scratch = ob_alloc(cpu_attn_scratch_floats(NPOS, HD, 3), sizeof(float));
    for (int64_t i = 0; i < NT * width; i++) q[i] = frand() * 2;
    for (int64_t pos = 0; pos < NPOS; pos++) /* a ring keeps the newest row of each slot */
        for (int64_t c = 0; c < stride; c++) {
            k[(pos % rows) * stride + c] = cpu_f32_to_f16(frand() * 2);
            v[(pos % rows) * stride + c] = cpu_f32_to_f16(frand());
        }
    cpu_attn_args a = {.q = q, .k = k, .v = v, .out = batch, .n_tok = NT, .pos0 = POS0,
                       .n_head = s->n_head, .n_head_kv = s->n_head_kv, .head_dim = HD,
                       .kv_stride = stride, .scale = 0.2f, .scratch = scratch,
                       .n_swa = s->n_swa, .n_rows = s->ring ? RING : 0};
    cpu_attention(p, &a);
    a.out = ref;
    cpu_attention_ref(&a);
    *worst_ref = 0;
    for (int64_t i = 0; i < NT * width; i++)
        *worst_ref = fmax(*worst_ref, fabs(batch[i] - ref[i]));
    int64_t differ = 0;
    for (int64_t t = 0; t < NT; t++) {
        cpu_attn_args one = a;
        one.q = q + t * width, one.out = alone, one.n_tok = 1, one.pos0 = POS0 + t;
        cpu_attention(p, &one);
        differ += memcmp(alone, batch + t * width, (size_t)width * sizeof(float)) != 0;
    }
    ob_free(q), ob_free(batch), ob_free(ref), ob_free(alone), ob_free(k), ob_free(v);
    ob_free(scratch);
    return differ;
}

TEST(tiles_equal_tokens_alone) {
    static const shape shapes[] = {
        {4, 4, 0, false},   /* groups of 1: tiles of 16 tokens */
        {8, 2, 0, false},   /* groups of 4: tiles of 4 */
        {32, 1, 0, false},  /* a group of 32: 16 heads at a time, one token */
        {4, 1, 3, true},    /* a window shorter than a tile: nothing in common */
        {4, 1, 40, true},   /* a window longer than a tile, a ring that wrapped */
        {2, 2, 20, false},  /* a window over a plain cache */
    };
    cpu_pool *p;
    CHECK(cpu_pool_new(3, &p, NULL) == OB_OK);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        double worst_ref;
        const int64_t differ = batch_vs_alone(p, &shapes[i], &worst_ref);
        CHECK_MSG(differ == 0, "shape %zu: %lld tokens differ from themselves alone", i,
                  (long long)differ);
        /* 8-lane FMA sums against in-order ones, then F16 rounding of the probabilities */
        CHECK_MSG(worst_ref < 1e-3, "shape %zu: batch vs reference %g", i, worst_ref);
    }
    cpu_pool_free(p);
}

TEST(two_sequences_through_block_tables) {
    /* Sequences A and B, 12 new tokens each at positions 40..51 and 20..31, their blocks of 8
     * rows interleaved in one cache; the batch holds A's tokens then B's. Each token must equal
     * itself alone, and B's tokens must not read A's rows. */
    enum { NH = 4, NKV = 1, BS = 8, NB = 16, N_NEW = 12 };
    const int64_t stride = NKV * HD, width = NH * HD;
    static int32_t ta[NB / 2], tb[NB / 2];
    for (int i = 0; i < NB / 2; i++) ta[i] = 2 * i, tb[i] = 2 * i + 1;
    const int32_t *tables[2 * N_NEW];
    int32_t pos[2 * N_NEW];
    for (int i = 0; i < N_NEW; i++) {
        tables[i] = ta, pos[i] = 40 + i;
        tables[N_NEW + i] = tb, pos[N_NEW + i] = 20 + i;
    }
    float *q = ob_alloc(2 * N_NEW * width, sizeof(float));
    float *batch = ob_alloc(2 * N_NEW * width, sizeof(float)), *alone = ob_alloc(width, 4);
    uint16_t *k = ob_alloc(NB * BS * stride, 2), *v = ob_alloc(NB * BS * stride, 2);
    float *scratch = ob_alloc(cpu_attn_scratch_floats(NB * BS, HD, 2), sizeof(float));
    for (int64_t i = 0; i < 2 * N_NEW * width; i++) q[i] = frand() * 2;
    for (int64_t i = 0; i < NB * BS * stride; i++) {
        k[i] = cpu_f32_to_f16(frand() * 2);
        v[i] = cpu_f32_to_f16(frand());
    }
    cpu_pool *p;
    CHECK(cpu_pool_new(2, &p, NULL) == OB_OK);
    cpu_attn_args a = {.q = q, .k = k, .v = v, .out = batch, .n_tok = 2 * N_NEW,
                       .n_head = NH, .n_head_kv = NKV, .head_dim = HD, .kv_stride = stride,
                       .scale = 0.2f, .scratch = scratch, .pos = pos, .blocks = tables,
                       .block_size = BS, .n_kv = 52};
    cpu_attention(p, &a);
    int64_t differ = 0;
    for (int t = 0; t < 2 * N_NEW; t++) {
        cpu_attn_args one = a;
        one.q = q + t * width, one.out = alone, one.n_tok = 1;
        one.pos = pos + t, one.blocks = tables + t, one.n_kv = pos[t] + 1;
        cpu_attention(p, &one);
        differ += memcmp(alone, batch + t * width, (size_t)width * sizeof(float)) != 0;
    }
    CHECK_MSG(differ == 0, "%lld tokens differ from themselves alone", (long long)differ);
    /* B's first token alone, with A's rows scrambled, is unchanged: it never read them */
    for (int b = 0; b < NB; b += 2)
        for (int64_t i = 0; i < BS * stride; i++) k[b * BS * stride + i] = cpu_f32_to_f16(9.0f);
    cpu_attn_args one = a;
    one.q = q + N_NEW * width, one.out = alone, one.n_tok = 1;
    one.pos = pos + N_NEW, one.blocks = tables + N_NEW, one.n_kv = pos[N_NEW] + 1;
    cpu_attention(p, &one);
    CHECK(memcmp(alone, batch + N_NEW * width, (size_t)width * sizeof(float)) == 0);
    cpu_pool_free(p);
    ob_free(q), ob_free(batch), ob_free(alone), ob_free(k), ob_free(v), ob_free(scratch);
}

int main(void) {
    RUN(tiles_equal_tokens_alone);
    RUN(two_sequences_through_block_tables);
    return t_summary();
}
