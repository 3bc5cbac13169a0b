/*
 * Q2_K and Q3_K weights repacked 8 rows at a time, AVX-VNNI: repack_q2_k_avx2.c's and
 * repack_q3_k_avx2.c's kernels (same layouts, same Q8_K activation rows; read their comments
 * first) with the quants' multiply-adds done by VPDPBUSD (repack_avxvnni.h).
 *
 * A sub-block (16 quants) goes by VPDPBUSD into an int32 sum per activation row, which stays
 * within int16 (Q2_K: 16 * 3 * 127 = 6096; Q3_K, u = quant + 4 up to 7: 16 * 7 * 127 = 14224).
 * So the scale step needs no VPMULLD (repack_k_avxvnni.c, whose sums do not fit): VPMADDWD
 * against (scale, 0) int16 pairs multiplies the sum by the scale in one instruction, as AVX2's
 * VPMADDWD does against (scale, scale) after its int16 stage, which is what VPDPBUSD removes.
 * Sums restart per chunk, so that each VPDPBUSD dependency chain is 4 long (each waits 4-5
 * cycles for the one before it: one chain over a Q2_K super-block ran at half AVX2's speed with
 * one activation row, measured on the EVEX twin). Q2_K's mins, and Q3_K's +4 (taken back as
 * -4 * (scale_a * bsum_a + scale_b * bsum_b)), meet the activation's sums of 16 by VPDPWSSD
 * (VPMADDWD and the add in one).
 *
 * Every int32 sum is exact and meets the scales in the same float operations, in the same
 * order, as in AVX2: results equal the AVX2 kernels' bit for bit.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_avxvnni.h"
#include "quant/repack_k_avx2.h"

#define VQ_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

/* ---- Q2_K ---- */

/* int32 lanes of values within int16 as (v, 0) int16 pairs: VPMADDWD against them is a
 * multiply by v, one instruction where VPMULLD is two on some cores. */
R2_INLINE __m256i vq_low_pair(__m256i v) {
    return _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
}

R2_INLINE void vq2_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i isum[4], msum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = msum[c] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 160 + 64 * ch;
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)cb),
                      l1 = _mm256_loadu_si256((const __m256i *)(cb + 32));
        __m256i sa[4], sb[4]; /* int32 sums of sub-blocks 2ch and 2ch + 1 */
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) sa[c] = sb[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i l = g < 4 ? l0 : l1;
            const int s = 2 * (g % 4);
            const __m256i q = _mm256_and_si256(s ? _mm256_srli_epi16(l, s) : l, m3);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m256i a = r2_bcast4(y + c * ys + 4 + 32 * ch + 4 * g);
                if (g < 4) sa[c] = vn_dpbusd(sa[c], q, a);
                else sb[c] = vn_dpbusd(sb[c], q, a);
            }
        }
        /* sub-blocks 2ch and 2ch + 1: bytes 2(ch % 2) and 2(ch % 2) + 1 of word ch / 2 */
        const __m256i w = _mm256_loadu_si256((const __m256i *)(xb + 32 + 32 * (ch / 2)));
        const __m256i scales = _mm256_and_si256(w, _mm256_set1_epi8(0x0F));
        const int b = 2 * (ch % 2);
        const __m256i pa = vq_low_pair(
            _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)RQ2_DUP[b])));
        const __m256i pb = vq_low_pair(
            _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)RQ2_DUP[b + 1])));
        const __m256i mp =
            _mm256_shuffle_epi8(_mm256_and_si256(_mm256_srli_epi16(w, 4), _mm256_set1_epi8(0x0F)),
                                _mm256_load_si256((const __m256i *)RQ2_PAIR[ch % 2]));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(sa[c], pa),
                                                                 _mm256_madd_epi16(sb[c], pb)));
            msum[c] = vn_dpwssd(msum[c], mp, r2_bcast4(y + c * ys + 260 + 4 * ch));
        }
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    const __m256 mx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb + 16)));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(y + c * ys));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[c]), _mm256_mul_ps(mx, vdy), acc[c]);
    }
}

/* ---- Q3_K ---- */

R2_INLINE void vq3_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
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
        __m256i sa[4], sb[4]; /* int32 sums of sub-blocks 2ch and 2ch + 1 */
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) sa[c] = sb[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i q = rq3_piece(h, l0, l1, g);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m256i a = r2_bcast4(y + c * ys + 4 + 32 * ch + 4 * g);
                if (g < 4) sa[c] = vn_dpbusd(sa[c], q, a);
                else sb[c] = vn_dpbusd(sb[c], q, a);
            }
        }
        const __m256i sca = rq3_scale(u0, u1, u2, 2 * ch), scb = rq3_scale(u0, u1, u2, 2 * ch + 1);
        const __m256i pa = vq_low_pair(sca), pb = vq_low_pair(scb);
        const __m256i zero = _mm256_setzero_si256();
        /* (-4 scale_a, -4 scale_b): |.| <= 128, an int16 pair */
        const __m256i off = rq3_pair(_mm256_sub_epi32(zero, _mm256_slli_epi32(sca, 2)),
                                     _mm256_sub_epi32(zero, _mm256_slli_epi32(scb, 2)));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(sa[c], pa),
                                                                 _mm256_madd_epi16(sb[c], pb)));
            isum[c] = vn_dpwssd(isum[c], off, r2_bcast4(y + c * ys + 260 + 4 * ch));
        }
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const __m256 vdy = _mm256_set1_ps(r2_load_f32(y + c * ys));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dx, vdy), acc[c]);
    }
}

/* ---- groups ---- */

enum { VQ_Q2_K, VQ_Q3_K };

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void vq_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const size_t xb = R2_ROWS * (kind == VQ_Q2_K ? sizeof(block_q2_k) : sizeof(block_q3_k));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        if (kind == VQ_Q2_K) vq2_block(RY, acc, x + b * xb, y + b * VQ_ABLOCK, ys);
        else vq3_block(RY, acc, x + b * xb, y + b * VQ_ABLOCK, ys);
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(vq_dot_q2_k, vq_group, VQ_Q2_K)
R2_DEFINE_DOT(vq_dot_q3_k, vq_group, VQ_Q3_K)

const quant_dot_tile_fn VN_SYM(quant_q2_k_rp_dot_avxvnni) = vq_dot_q2_k;
const quant_dot_tile_fn VN_SYM(quant_q3_k_rp_dot_avxvnni) = vq_dot_q3_k;
