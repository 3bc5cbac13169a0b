/*
 * Q4_K, Q5_K and Q6_K weights repacked 8 rows at a time, AVX-VNNI: repack_k_avx2.c's kernels
 * (same layouts, same activation rows: Q8_K blocks, Q6_K's with the offset words of
 * repack_k_avx2.h after each, which this file's Q6_K kernel steps over; read its comment first)
 * with the quants' multiply-adds done by VPDPBUSD (repack_avxvnni.h).
 *
 * The scale step. In AVX2 a sub-block's products stay in int16 so that one VPMADDWD against
 * (scale, scale) pairs both widens them and applies the scale. VPDPBUSD leaves a sub-block's
 * sum in int32 (up to 32 * 31 * 127 = 125984 for Q5_K, 16 * 63 * 127 = 128016 for Q6_K: past
 * int16, so VPMADDWD cannot take it), and the kernels multiply it by the row's scale with one
 * VPMULLD per sub-block and activation row. That beats the alternatives: keeping an int16
 * stage for VPMADDWD would bring back the VPMADDUBSW chain VPDPBUSD removes, and applying the
 * scale in float per sub-block costs a conversion, a multiply and an add where VPMULLD and an
 * add do, and would change the rounding. Per 32 quants and activation row that is 8 VPDPBUSD,
 * one VPMULLD and one add, against AVX2's 8 VPMADDUBSW, 8 int16 adds, a VPMADDWD and an add.
 * The mins (Q4_K, Q5_K) and Q6_K's offset 32 * sum(scale * bsum) meet the int16 block sums by
 * VPDPWSSD, which is VPMADDWD and the add in one.
 *
 * Every int32 sum is exact and meets the scales in the same float operations, in the same
 * order, as in AVX2: results equal the AVX2 kernels' bit for bit.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_avxvnni.h"
#include "quant/repack_k_avx2.h"


/* pshufb patterns per row dword: byte j as the int32 j (VK_WIDE) or as the int16 pair (j, j)
 * (VK_PAIR) */
#define WIDE(j) j, 0x80, 0x80, 0x80
#define PAIR(j) j, 0x80, j, 0x80
#define LANE(F, j) F(j), F(j + 4), F(j + 8), F(j + 12)
static const uint8_t VK_WIDE[4][32] __attribute__((aligned(32))) = {
    {LANE(WIDE, 0), LANE(WIDE, 0)}, {LANE(WIDE, 1), LANE(WIDE, 1)},
    {LANE(WIDE, 2), LANE(WIDE, 2)}, {LANE(WIDE, 3), LANE(WIDE, 3)},
};
static const uint8_t VK_PAIR[4][32] __attribute__((aligned(32))) = {
    {LANE(PAIR, 0), LANE(PAIR, 0)}, {LANE(PAIR, 1), LANE(PAIR, 1)},
    {LANE(PAIR, 2), LANE(PAIR, 2)}, {LANE(PAIR, 3), LANE(PAIR, 3)},
};
#undef LANE
#undef PAIR
#undef WIDE

/* Byte j (0..7) of the scale bytes lo (j < 4) / hi (j >= 4) of each row, by pattern table. */
R2_INLINE __m256i vk_pick(const uint8_t table[4][32], __m256i lo, __m256i hi, int j) {
    const __m256i sel = _mm256_load_si256((const __m256i *)table[j & 3]);
    return _mm256_shuffle_epi8(j < 4 ? lo : hi, sel);
}

/* ---- Q4_K and Q5_K ---- */

/* Q4_K, or Q5_K when five (constant after inlining): one super-block column of 8 rows against
 * RY activation rows, a chunk (sub-blocks 2cc and 2cc + 1) at a time. */
R2_INLINE void vk_k4_block(int five, int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y,
                           size_t ys) {
    __m256i r[4], isum[4];
    rk2_scale_bytes(xb + 32, r);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 1
    for (int cc = 0; cc < 4; cc++) {
        const uint8_t *qc = xb + (five ? 128 + 64 + 320 * cc : 128 + 256 * cc);
        __m256i h0 = _mm256_setzero_si256(), h1 = _mm256_setzero_si256();
        if (five) {
            h0 = _mm256_loadu_si256((const __m256i *)(qc - 64));
            h1 = _mm256_loadu_si256((const __m256i *)(qc - 32));
        }
        __m256i slo[4], shi[4]; /* int32 sums of sub-blocks 2cc and 2cc + 1 */
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) slo[c] = shi[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qc + 32 * g));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, rk2_fifth(h0, g));
                hi = _mm256_or_si256(hi, rk2_fifth(h1, g));
            }
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *q = y + c * ys + 4 + 64 * cc + 4 * g;
                slo[c] = vn_dpbusd(slo[c], lo, r2_bcast4(q));
                shi[c] = vn_dpbusd(shi[c], hi, r2_bcast4(q + 32));
            }
        }
        const __m256i sc0 = vk_pick(VK_WIDE, r[0], r[1], 2 * cc);
        const __m256i sc1 = vk_pick(VK_WIDE, r[0], r[1], 2 * cc + 1);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_mullo_epi32(slo[c], sc0),
                                                                 _mm256_mullo_epi32(shi[c], sc1)));
    }
    __m256i mn[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) mn[j] = vk_pick(VK_PAIR, r[2], r[3], j);
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    const __m256 mx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb + 16)));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ys;
        /* sub-block j's activation sum is bsums[2j] + bsums[2j + 1]: one (m_j, m_j) pair */
        __m256i msum = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) msum = vn_dpwssd(msum, mn[j], r2_bcast4(yb + 260 + 4 * j));
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(yb));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(mx, vdy), acc[c]);
    }
}

enum { VK_Q4_K, VK_Q5_K };

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void vk_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const size_t xb = R2_ROWS * (kind == VK_Q4_K ? sizeof(block_q4_k) : sizeof(block_q5_k));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++)
        vk_k4_block(kind == VK_Q5_K, RY, acc, x + b * xb, y + b * RK2_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(vk_dot_q4_k, vk_group, VK_Q4_K)
R2_DEFINE_DOT(vk_dot_q5_k, vk_group, VK_Q5_K)

/* ---- Q6_K ---- */

/* Q6_K against RY (1..8) activation rows, a chunk a half (one sub-block of 16) at a time: its
 * four pieces of unsigned quants u = q + 32 (low or high nibbles with their two high bits) are
 * unpacked once for all the rows, as in AVX2. */
R2_INLINE void vk_q6_k_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y,
                             size_t ys) {
    __m256i isum[8];
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 144 + 192 * ch;
        /* each row's int8 scale pair (2ch, 2ch + 1) as two int16 in its lane */
        const __m256i pair =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xb + 16 + 16 * ch)));
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {
            const __m256i sc = half ? _mm256_srai_epi32(pair, 16)
                                    : _mm256_srai_epi32(_mm256_slli_epi32(pair, 16), 16);
            __m256i q[4];
            rk2_q6_half(cb, half, q);
#pragma GCC unroll 8
            for (int c = 0; c < RY; c++) {
                const uint8_t *a = y + c * ys + 4 + 32 * ch + 16 * half;
                __m256i t = vn_dpbusd(_mm256_setzero_si256(), q[0], r2_bcast4(a));
#pragma GCC unroll 3
                for (int g = 1; g < 4; g++) t = vn_dpbusd(t, q[g], r2_bcast4(a + 4 * g));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(t, sc));
            }
        }
        /* the offset: -32 * (scale pair . bsum pair), -32 * scale fits int16 (|.| <= 4096) */
        const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(pair, 5));
#pragma GCC unroll 8
        for (int c = 0; c < RY; c++)
            isum[c] = vn_dpwssd(isum[c], neg32, r2_bcast4(y + c * ys + 260 + 4 * ch));
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) {
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(y + c * ys));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
    }
}

/* One group of 8 Q6_K rows against RY (1..8, constant after inlining) activation rows. */
R2_INLINE void vk_group_q6(int kind, int RY, int64_t n, float *out, size_t os,
                           const uint8_t *x, const uint8_t *y, size_t ys) {
    (void)kind;
    const size_t xb = R2_ROWS * sizeof(block_q6_k);
    __m256 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++)
        vk_q6_k_block(RY, acc, x + b * xb, y + b * RK2_Q6_ABLOCK, ys);
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

/* The Q6_K quant_dot_tile_fn: activation rows eight at a time, as in AVX2 (the unpacking is
 * the costly part, and more rows share it). */
REPACK_DEFINE_DOT8(vk_dot_q6_k, vk_group_q6, 0, R2_ROWS, 8)

const quant_dot_tile_fn VN_SYM(quant_q4_k_rp_dot_avxvnni) = vk_dot_q4_k;
const quant_dot_tile_fn VN_SYM(quant_q5_k_rp_dot_avxvnni) = vk_dot_q5_k;
const quant_dot_tile_fn VN_SYM(quant_q6_k_rp_dot_avxvnni) = vk_dot_q6_k;
