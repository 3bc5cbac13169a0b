/*
 * cpu_matmul against a naive product of the dequantized weights and the activations as the
 * kernel sees them (converted to vec_dot_type and back), for every legacy type, with token
 * counts that cover decode (1), a partial tile (5) and several tiles (70), and a row count that
 * is not a multiple of the chunk size. Also cpu_get_rows against to_f32.
 */
#include "core/alloc.h"
#include "cpu/matmul.h"
#include "test.h"

#include <math.h>

static uint64_t rng_state = 99;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

/* M weight rows: 37 (not a multiple of a chunk) or 48 (three groups of 16, so kernels with
 * repacked rows take them). */
static void check_type(uint32_t type, int64_t n_tok, int64_t M, cpu_pool *pool, int *ok) {
    enum { K = 512 }; /* K: two 256-element K-quant super-blocks */
    const quant_traits *qt = quant_traits_get(type);
    *ok = 0;
    if (!qt || !qt->from_f32) {
        *ok = 1;
        return;
    }
    size_t row = (size_t)(K / qt->block_size) * qt->type_size;
    float *wf = ob_alloc(M * K, sizeof(float)), *x = ob_alloc(n_tok * K, sizeof(float));
    char *wq = ob_alloc(M, row);
    for (int i = 0; i < M * K; i++) wf[i] = frand();
    for (int i = 0; i < n_tok * K; i++) x[i] = frand() * 2;
    for (int r = 0; r < M; r++) qt->from_f32(wf + r * K, wq + r * row, K);
    for (int r = 0; r < M; r++) qt->to_f32(wq + r * row, wf + r * K, K); /* what W really is */
    cpu_weight w = {.name = "w", .data = wq, .type = type, .n_in = K, .n_out = M,
                    .row_size = row};
    ob_err err;
    if (cpu_weight_init(&w, &err) != OB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    /* x as the kernel sees it: through vec_dot_type and back */
    float *xs = ob_alloc(n_tok * K, sizeof(float));
    char *xq = ob_alloc(1, w.act_row_size ? w.act_row_size : 1);
    for (int64_t t = 0; t < n_tok; t++) {
        if (w.act->type == OB_QTYPE_F32) memcpy(xs + t * K, x + t * K, K * sizeof(float));
        else {
            w.act->from_f32(x + t * K, xq, K);
            w.act->to_f32(xq, xs + t * K, K);
        }
    }
    float *y = ob_alloc(n_tok * M, sizeof(float));
    void *wsp = ob_alloc_aligned(64, cpu_matmul_wsize(&w, n_tok) + 64);
    cpu_matmul(pool, y, &w, x, n_tok, wsp);
    double worst = 0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int r = 0; r < M; r++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                ref += (double)wf[r * K + k] * xs[t * K + k];
                mag += fabs((double)wf[r * K + k] * xs[t * K + k]);
            }
            worst = fmax(worst, fabs(ref - y[t * M + r]) / mag);
        }
    /* Relative to sum |w x|: Q8_1 activations keep their block sums as F16 (2^-11 relative)
     * and sums run in float; a wrong element or block would be off by ~1e-2 or more. */
    *ok = worst < 1e-3;
    if (!*ok) fprintf(stderr, "%s n_tok %lld: max |diff| / sum|wx| %g\n", qt->name, (long long)n_tok, worst);
    float row0[K];
    int32_t id = 5;
    cpu_get_rows(&w, &id, 1, row0);
    for (int k = 0; k < K; k++) *ok &= row0[k] == wf[5 * K + k];
    cpu_weight_release(w.data);
    ob_free(wf), ob_free(x), ob_free(wq), ob_free(xs), ob_free(xq), ob_free(y);
    ob_free_aligned(wsp);
}

TEST(matmul_matches_naive_for_every_type) {
    const uint32_t types[] = {OB_QTYPE_F32, OB_QTYPE_F16, OB_QTYPE_BF16, OB_QTYPE_Q8_0,
                              OB_QTYPE_Q4_0, OB_QTYPE_Q4_1, OB_QTYPE_Q5_0, OB_QTYPE_Q5_1,
                              OB_QTYPE_Q4_K, OB_QTYPE_Q5_K, OB_QTYPE_Q6_K};
    const int64_t toks[] = {1, 5, 70};
    for (int nth = 1; nth <= 2; nth++) {
        cpu_pool *pool;
        CHECK(cpu_pool_new(nth, &pool, NULL) == OB_OK);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            for (size_t j = 0; j < 3; j++)
                for (int64_t m = 37; m <= 48; m += 11) {
                    int ok;
                    check_type(types[i], toks[j], m, pool, &ok);
                    CHECK_MSG(ok, "type %s, %lld tokens, %lld rows, %d threads",
                              gguf_qtype_name(types[i]), (long long)toks[j], (long long)m, nth);
                }
        cpu_pool_free(pool);
    }
}

TEST(weight_init_names_the_tensor) {
    cpu_weight w = {.name = "blk.0.attn_q.weight", .type = OB_QTYPE_Q4_0, .n_in = 48,
                    .n_out = 2, .row_size = 0};
    ob_err err;
    CHECK_STATUS(cpu_weight_init(&w, &err), OB_ERR_FORMAT, &err, "blk.0.attn_q.weight");
    w.type = 4; /* a retired id */
    CHECK_STATUS(cpu_weight_init(&w, &err), OB_ERR_UNSUPPORTED, &err, "blk.0.attn_q.weight");
}

/* Small repacked copies share slabs of huge pages (repack.c): two small weights' copies sit
 * next to each other, and releasing one leaves the other's rows intact (the slab lives while a
 * copy in it does). */
TEST(small_copies_share_a_slab_and_outlive_a_neighbour) {
    enum { K = 256, M = 32 };
    const quant_traits *qt = quant_traits_get(OB_QTYPE_Q4_K);
    const size_t row = (size_t)(K / qt->block_size) * qt->type_size;
    char *wq[2] = {ob_alloc(M, row), ob_alloc(M, row)};
    float *wf = ob_alloc(M * K, sizeof(float)), x[K], y[2][M];
    void *wsp = ob_alloc_aligned(64, 64 * 1024);
    for (int i = 0; i < M * K; i++) wf[i] = frand();
    for (int i = 0; i < K; i++) x[i] = frand();
    cpu_weight w[2];
    for (int i = 0; i < 2; i++) {
        for (int r = 0; r < M; r++) qt->from_f32(wf + r * K, wq[i] + r * row, K);
        w[i] = (cpu_weight){.name = "w", .data = wq[i], .type = OB_QTYPE_Q4_K, .n_in = K,
                            .n_out = M, .row_size = row};
        CHECK(cpu_weight_init(&w[i], NULL) == OB_OK);
    }
    cpu_pool *pool;
    CHECK(cpu_pool_new(1, &pool, NULL) == OB_OK);
    if (w[0].rp && w[1].rp) { /* the CPU has a repacked layout for Q4_K */
        const size_t bytes = (M * row + 63) & ~(size_t)63;
        CHECK((const char *)w[1].rp - (const char *)w[0].rp == (ptrdiff_t)bytes ||
              (const char *)w[0].rp - (const char *)w[1].rp == (ptrdiff_t)bytes);
        cpu_matmul(pool, y[0], &w[1], x, 1, wsp);
        cpu_weight_release(w[0].data); /* under ASan, a freed slab would be caught below */
        cpu_matmul(pool, y[1], &w[1], x, 1, wsp);
        CHECK(memcmp(y[0], y[1], sizeof y[0]) == 0);
    } else {
        cpu_weight_release(w[0].data);
    }
    cpu_weight_release(w[1].data);
    cpu_pool_free(pool);
    ob_free(wq[0]), ob_free(wq[1]), ob_free(wf);
    ob_free_aligned(wsp);
}

int main(void) {
    RUN(matmul_matches_naive_for_every_type);
    RUN(small_copies_share_a_slab_and_outlive_a_neighbour);
    RUN(weight_init_names_the_tensor);
    return t_summary();
}
