/*
 * Tests of src/cuda/cuda_blocks.h, the block decoders every CUDA weight kernel reads through.
 * They are plain C under a C compiler, so this runs on any machine, GPU or not: every type's
 * 32-element chunk decoder must reproduce the scalar reference (quant_traits_ref(type)->to_f32)
 * on the reference quantizer's output and on random bytes (all bit patterns of quants, scales
 * and high bits), for several super-blocks and, for float types, a row with a short tail.
 * Tolerance: 1 part in 10^6 (both sides compute the same products; only the order of float
 * multiplications may differ), and NaN never.
 */
#include "cuda/cuda_blocks.h"

#include "quant/quant.h"
#include "random_blocks.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

typedef void (*chunk_fn)(const uint8_t *row, int64_t c, int64_t n, float *y);

typedef struct {
    uint32_t type;
    chunk_fn fn;
    int f16_at[2]; /* byte offsets of the block's f16 scale fields (-1: none) */
} block_case;

static const block_case CASES[] = {
    {OB_QTYPE_F32, cb_chunk_f32, {-1, -1}},     {OB_QTYPE_F16, cb_chunk_f16, {-1, -1}},
    {OB_QTYPE_BF16, cb_chunk_bf16, {-1, -1}},   {OB_QTYPE_Q4_0, cb_chunk_q4_0, {0, -1}},
    {OB_QTYPE_Q4_1, cb_chunk_q4_1, {0, 2}},     {OB_QTYPE_Q5_0, cb_chunk_q5_0, {0, -1}},
    {OB_QTYPE_Q5_1, cb_chunk_q5_1, {0, 2}},     {OB_QTYPE_Q8_0, cb_chunk_q8_0, {0, -1}},
    {OB_QTYPE_Q2_K, cb_chunk_q2_k, {80, 82}},   {OB_QTYPE_Q3_K, cb_chunk_q3_k, {108, -1}},
    {OB_QTYPE_Q4_K, cb_chunk_q4_k, {0, 2}},     {OB_QTYPE_Q5_K, cb_chunk_q5_k, {0, 2}},
    {OB_QTYPE_Q6_K, cb_chunk_q6_k, {208, -1}},  {OB_QTYPE_IQ4_NL, cb_chunk_iq4_nl, {0, -1}},
    {OB_QTYPE_IQ4_XS, cb_chunk_iq4_xs, {0, -1}},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

#define N_MAX 1024 /* 4 super-blocks of 256 */

/* Decodes a row of n elements chunk by chunk and compares with the reference. Returns the
 * index of the first mismatch, or -1. */
static int64_t compare_row(const block_case *bc, const quant_traits *ref, const uint8_t *row,
                           int64_t n, float *got, float *want) {
    ref->to_f32(row, want, n);
    for (int64_t c = 0; c < (n + 31) / 32; c++) {
        float y[32];
        bc->fn(row, c, n, y);
        for (int i = 0; i < 32 && 32 * c + i < n; i++) got[32 * c + i] = y[i];
    }
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i])) {
            if (isnan(got[i]) != isnan(want[i])) return i;
            continue;
        }
        if (fabsf(got[i] - want[i]) > 1e-6f * fmaxf(1.0f, fabsf(want[i]))) return i;
    }
    return -1;
}

/* One type: quantizer output and random bytes, n = 1024 (and 100 for float types). */
static void check_type(const block_case *bc) {
    const quant_traits *ref = quant_traits_ref(bc->type);
    if (!ref) SKIP("%s: src/quant has no reference for it in this build", gguf_qtype_name(bc->type));
    static float src[N_MAX], got[N_MAX], want[N_MAX];
    static uint8_t row[N_MAX * 4];
    const int64_t sizes[2] = {N_MAX, 100};
    for (int si = 0; si < 2; si++) {
        const int64_t n = sizes[si];
        if (n % ref->block_size) continue; /* the short row is for float types only */
        for (int rep = 0; rep < 8; rep++) {
            float amp = rep % 2 ? 0.01f : 30.0f; /* small and large scales */
            for (int64_t i = 0; i < n; i++) src[i] = rngf() * amp + (rep == 6 ? 0.5f * amp : 0);
            if (ref->from_f32 && rep < 6) {
                ref->from_f32(src, row, n);
            } else if (bc->f16_at[0] >= 0) {
                random_block_row(ref, bc->f16_at, row, n, amp);
            } else {
                continue; /* float types without a quantizer: nothing random to build */
            }
            int64_t bad = compare_row(bc, ref, row, n, got, want);
            CHECK_MSG(bad < 0, "%s n=%lld rep %d: element %lld: chunk decoder %g, reference %g",
                      ref->name, (long long)n, rep, (long long)bad, got[bad < 0 ? 0 : bad],
                      want[bad < 0 ? 0 : bad]);
        }
    }
}

TEST(f32) { check_type(&CASES[0]); }
TEST(f16) { check_type(&CASES[1]); }
TEST(bf16) { check_type(&CASES[2]); }
TEST(q4_0) { check_type(&CASES[3]); }
TEST(q4_1) { check_type(&CASES[4]); }
TEST(q5_0) { check_type(&CASES[5]); }
TEST(q5_1) { check_type(&CASES[6]); }
TEST(q8_0) { check_type(&CASES[7]); }
TEST(q2_k) { check_type(&CASES[8]); }
TEST(q3_k) { check_type(&CASES[9]); }
TEST(q4_k) { check_type(&CASES[10]); }
TEST(q5_k) { check_type(&CASES[11]); }
TEST(q6_k) { check_type(&CASES[12]); }
TEST(iq4_nl) { check_type(&CASES[13]); }
TEST(iq4_xs) { check_type(&CASES[14]); }

/* Every half, including subnormals, infinities and NaN, decodes as src/quant decodes it. */
TEST(f16_all_values) {
    for (uint32_t h = 0; h < 65536; h++) {
        float a = cb_f16((uint16_t)h), b = quant_f16_to_f32((uint16_t)h);
        CHECK_MSG((isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0, "0x%04x: %a vs %a", h, a, b);
    }
}

/* The packed IQ4 code points are ggml's table. */
TEST(iq4_values) {
    static const int want[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                 1,    13,   25,  38,  53,  69,  89,  113};
    for (int q = 0; q < 16; q++) CHECK_EQ_INT(cb_iq4_value(q), want[q]);
}

int main(void) {
    RUN(f32);
    RUN(f16);
    RUN(bf16);
    RUN(q4_0);
    RUN(q4_1);
    RUN(q5_0);
    RUN(q5_1);
    RUN(q8_0);
    RUN(q2_k);
    RUN(q3_k);
    RUN(q4_k);
    RUN(q5_k);
    RUN(q6_k);
    RUN(iq4_nl);
    RUN(iq4_xs);
    RUN(f16_all_values);
    RUN(iq4_values);
    return t_summary();
}
