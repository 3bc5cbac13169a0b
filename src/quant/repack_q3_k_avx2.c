/*
 * Q3_K weights repacked 8 rows at a time, AVX2: the layout of repack_q3_k_avx512.c (read that
 * first) at 8 rows, from repack_layout.c. One super-block column is 880 bytes (8 x 110): f16
 * d[8], the rows' three scale words (3 pieces), then 8 chunks of 32 elements, each a piece of
 * high bits H and two of low bits L0, L1 for u = quant + 4 (0..7): bit g of row r's byte k in
 * H is u[32c + 4g + k] >> 2, bits 2(g % 4)..+1 of the byte in L[g / 4] are its low two bits.
 *
 * u pairs to at most 2 * 7 * 127 = 1778 per VPMADDUBSW, so a sub-block's four products share
 * one int16 sum, which meets the rows' signed 6-bit scale in one VPMADDWD against (scale,
 * scale) pairs; the +4 comes back as 4 * (scale_a * bsum_a + scale_b * bsum_b), one VPMADDWD
 * of the (scale_a, scale_b) pairs against the activation's sums of 16. Every sum is exact in
 * int32; results equal the Q3_K reference vec_dot up to float rounding order. Activation rows
 * are plain Q8_K.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_k_avx2.h"

#define RQ3_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

static void rq3_pack(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q3_k(src, stride, dst, n, R2_ROWS);
}

static size_t rq3_act_size(int64_t n) { return (size_t)(n / QK_K) * RQ3_ABLOCK; }

R2_INLINE void rq3_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
    const __m256i u0 = _mm256_loadu_si256((const __m256i *)(xb + 16)),
                  u1 = _mm256_loadu_si256((const __m256i *)(xb + 48)),
                  u2 = _mm256_loadu_si256((const __m256i *)(xb + 80));
    __m256i isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 112 + 96 * ch;
        const __m256i h = _mm256_loadu_si256((const __m256i *)cb),
                      l0 = _mm256_loadu_si256((const __m256i *)(cb + 32)),
                      l1 = _mm256_loadu_si256((const __m256i *)(cb + 64));
        __m256i sa[4], sb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) sa[c] = sb[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i q = rq3_piece(h, l0, l1, g);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m256i p = _mm256_maddubs_epi16(q, r2_bcast4(y + c * ys + 4 + 32 * ch + 4 * g));
                if (g < 4) {
                    sa[c] = _mm256_add_epi16(sa[c], p);
                    R2_KEEP(sa[c]);
                } else {
                    sb[c] = _mm256_add_epi16(sb[c], p);
                    R2_KEEP(sb[c]);
                }
            }
        }
        const __m256i sca = rq3_scale(u0, u1, u2, 2 * ch), scb = rq3_scale(u0, u1, u2, 2 * ch + 1);
        const __m256i pa = rq3_pair(sca, sca), pb = rq3_pair(scb, scb), pab = rq3_pair(sca, scb);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            const __m256i off = _mm256_madd_epi16(pab, r2_bcast4(y + c * ys + 260 + 4 * ch));
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(sa[c], pa),
                                                                 _mm256_madd_epi16(sb[c], pb)));
            isum[c] = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(off, 2));
        }
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(y + c * ys));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
    }
}

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void rq3_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) { /* kind: unused, one type */
    const int64_t nb = n / QK_K;
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        rq3_block(RY, acc, x + b * R2_ROWS * sizeof(block_q3_k), y + b * RQ3_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(rq3_dot, rq3_group, 0)

const quant_repack_impl quant_q3_k_repack_avx2 = {R2_ROWS, rq3_pack, rq3_act_size,
                                                 quant_q8_k_from_f32_avx2, rq3_dot};
