/*
 * Tests of src/cuda/cuda_q8.h, the int8 decode products of matvec_q8.cu, on the host (plain C
 * under a C compiler, so this runs on any machine): for every type it covers, each weight
 * chunk's unpacked bytes and scales, dotted with quantized activations, must give what the
 * float chunk decoder (cuda_blocks.h, itself checked against src/quant's reference by
 * blocks_test) gives with the same quantized activations. Rows come from the reference
 * quantizer and from random bytes (every bit pattern of quants, scales and high bits).
 * Tolerance: 1e-5 of the sum of |w x| (the two sides only sum in a different order). The
 * activation quantizer is checked on its own: every value within half a step of its input.
 */
#include "cuda/cuda_q8.h"

#include "quant/quant.h"
#include "random_blocks.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

typedef void (*chunk_fn)(const uint8_t *row, int64_t c, int64_t n, float *y);
typedef void (*q8_fn)(const uint8_t *row, int64_t c, cq_chunk *w);

typedef struct {
    uint32_t type;
    chunk_fn decode;
    q8_fn unpack;
    int f16_at[2]; /* byte offsets of the block's f16 scale fields (-1: none) */
} q8_case;

static const q8_case CASES[] = {
    {OB_QTYPE_Q4_0, cb_chunk_q4_0, cq_chunk_q4_0, {0, -1}},
    {OB_QTYPE_Q4_1, cb_chunk_q4_1, cq_chunk_q4_1, {0, 2}},
    {OB_QTYPE_Q5_0, cb_chunk_q5_0, cq_chunk_q5_0, {0, -1}},
    {OB_QTYPE_Q5_1, cb_chunk_q5_1, cq_chunk_q5_1, {0, 2}},
    {OB_QTYPE_Q8_0, cb_chunk_q8_0, cq_chunk_q8_0, {0, -1}},
    {OB_QTYPE_Q4_K, cb_chunk_q4_k, cq_chunk_q4_k, {0, 2}},
    {OB_QTYPE_Q5_K, cb_chunk_q5_k, cq_chunk_q5_k, {0, 2}},
    {OB_QTYPE_Q6_K, cb_chunk_q6_k, cq_chunk_q6_k, {208, -1}},
    {OB_QTYPE_IQ4_NL, cb_chunk_iq4_nl, cq_chunk_iq4_nl, {0, -1}},
    {OB_QTYPE_IQ4_XS, cb_chunk_iq4_xs, cq_chunk_iq4_xs, {0, -1}},
};

#define N 1024 /* 4 super-blocks of 256 */

/* One row against one activation row: the int8 product and the float one, chunk by chunk. */
static void check_row(const q8_case *qc, const uint8_t *row, const float *x, int rep) {
    double want = 0.0, mag = 0.0;
    float got = 0.0f;
    for (int64_t c = 0; c < N / 32; c++) {
        int32_t xq[8];
        float dx, sx, w[32];
        cq_quantize_chunk(x + 32 * c, xq, &dx, &sx);
        qc->decode(row, c, N, w);
        for (int i = 0; i < 32; i++) {
            const double xi = (double)dx * (double)(int8_t)((uint32_t)xq[i / 4] >> (8 * (i % 4)));
            want += (double)w[i] * xi;
            mag += fabs((double)w[i] * xi);
        }
        cq_chunk wc;
        qc->unpack(row, c, &wc);
        got += cq_dot(&wc, xq, dx, sx);
    }
    CHECK_MSG(fabs((double)got - want) <= 1e-5 * mag + 1e-30,
              "%s rep %d: int8 product %.9g, float product %.9g (sum |w x| %g)",
              gguf_qtype_name(qc->type), rep, got, want, mag);
}

static void check_type(const q8_case *qc) {
    const quant_traits *ref = quant_traits_ref(qc->type);
    if (!ref || !ref->from_f32) SKIP("%s: no reference quantizer", gguf_qtype_name(qc->type));
    static float src[N], x[N];
    static uint8_t row[N * 4];
    for (int rep = 0; rep < 10; rep++) {
        const float amp = rep % 2 ? 0.01f : 30.0f;
        for (int i = 0; i < N; i++) {
            src[i] = rngf() * amp + (rep == 6 ? 0.5f * amp : 0.0f);
            x[i] = rngf() * (rep % 3 ? 2.0f : 1e-3f) + (rep == 8 ? 1.0f : 0.0f);
        }
        if (rep < 6) {
            ref->from_f32(src, row, N);
        } else {
            random_block_row(ref, qc->f16_at, row, N, amp);
        }
        check_row(qc, row, x, rep);
    }
}

TEST(q4_0) { check_type(&CASES[0]); }
TEST(q4_1) { check_type(&CASES[1]); }
TEST(q5_0) { check_type(&CASES[2]); }
TEST(q5_1) { check_type(&CASES[3]); }
TEST(q8_0) { check_type(&CASES[4]); }
TEST(q4_k) { check_type(&CASES[5]); }
TEST(q5_k) { check_type(&CASES[6]); }
TEST(q6_k) { check_type(&CASES[7]); }
TEST(iq4_nl) { check_type(&CASES[8]); }
TEST(iq4_xs) { check_type(&CASES[9]); }

/* Each quantized activation is within half a step of its input, the scale is amax / 127, sx
 * is dx times the sum of the values, and an all-zero chunk gives zeros. */
TEST(activation_quantizer) {
    float x[32];
    for (int rep = 0; rep < 200; rep++) {
        const float amp = rep % 3 == 0 ? 1e-6f : rep % 3 == 1 ? 1.0f : 1e4f;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) {
            x[i] = rep == 0 ? 0.0f : rngf() * amp;
            amax = fmaxf(amax, fabsf(x[i]));
        }
        int32_t xq[8];
        float dx, sx;
        cq_quantize_chunk(x, xq, &dx, &sx);
        CHECK(fabsf(dx - amax / 127.0f) <= 1e-7f * amax);
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            const int q = (int8_t)((uint32_t)xq[i / 4] >> (8 * (i % 4)));
            sum += q;
            CHECK_MSG(q >= -127 && q <= 127 && fabsf(dx * (float)q - x[i]) <= 0.5001f * dx + 1e-30f,
                      "rep %d element %d: %g quantized to %d x %g", rep, i, x[i], q, dx);
        }
        CHECK(fabsf(sx - dx * (float)sum) <= 1e-6f * fabsf(dx * (float)sum) + 1e-30f);
    }
}

/* The host versions of the byte-wise instructions match their definitions. */
TEST(byte_operations) {
    CHECK_EQ_INT(cq_dp4a((int32_t)0x80ff017fu, (int32_t)0x7f0102ffu, 5),
                 5 + 127 * -1 + 1 * 2 + -1 * 1 + -128 * 127);
    CHECK(cq_vsub4(0x0f000801u, 0x08080808u) == 0x07f800f9u);
    CHECK(cq_spread4(0xfu) == 0x10101010u && cq_spread4(0x5u) == 0x00100010u);
    CHECK(cq_iq4_map4(0x0f000801u) == 0x71810198u); /* 113, -127, 1, -104 */
}

int main(void) {
    RUN(q4_0);
    RUN(q4_1);
    RUN(q5_0);
    RUN(q5_1);
    RUN(q8_0);
    RUN(q4_k);
    RUN(q5_k);
    RUN(q6_k);
    RUN(iq4_nl);
    RUN(iq4_xs);
    RUN(activation_quantizer);
    RUN(byte_operations);
    return t_summary();
}
