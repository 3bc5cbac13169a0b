/*
 * Q2_K and Q3_K weights repacked 8 rows at a time, AVX-VNNI: repack_q2_k_avx2.c's and
 * repack_q3_k_avx2.c's kernels (same layouts, same Q8_K activation rows; read their comments
 * first) with the quants' multiply-adds done by VPDPBUSD (repack_avxvnni.h).
 *
 * Q2_K: a quant (0..3) times its sub-block's 4-bit scale is at most 45, still a byte, so the
 * scale is applied to the weights once per piece for all activation rows (one 16-bit multiply:
 * the low byte's product cannot carry into the high one), and every piece of a super-block adds
 * straight into one int32 sum per row by VPDPBUSD: no per-row scale step at all. The mins meet
 * the activation's sums of 16 by VPDPWSSD (VPMADDWD and the add in one).
 *
 * Q3_K: u = quant + 4 (0..7) times a signed 6-bit scale does not fit a byte, so a sub-block's
 * four pieces go by VPDPBUSD into an int32 sum that VPMULLD multiplies by the scale (the int16
 * stage AVX2 feeds to VPMADDWD is gone; repack_k_avxvnni.c weighs the choices), and the +4
 * comes back by one VPDPWSSD of (-4 scale_a, -4 scale_b) pairs against the sums of 16.
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

R2_INLINE void vq2_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
    const __m256i m3 = _mm256_set1_epi8(3), m15 = _mm256_set1_epi8(0x0F);
    __m256i isum[4], msum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = msum[c] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 160 + 64 * ch;
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)cb),
                      l1 = _mm256_loadu_si256((const __m256i *)(cb + 32));
        /* sub-blocks 2ch and 2ch + 1: bytes 2(ch % 2) and 2(ch % 2) + 1 of word ch / 2 */
        const __m256i w = _mm256_loadu_si256((const __m256i *)(xb + 32 + 32 * (ch / 2)));
        const __m256i scales = _mm256_and_si256(w, m15);
        const __m256i mins = _mm256_and_si256(_mm256_srli_epi16(w, 4), m15);
        const int b = 2 * (ch % 2);
        /* the scales as int16 lanes, each row's in both of its lane's halves */
        const __m256i sca =
            _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)RQ2_DUP[b]));
        const __m256i scb =
            _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)RQ2_DUP[b + 1]));
        const __m256i mp =
            _mm256_shuffle_epi8(mins, _mm256_load_si256((const __m256i *)RQ2_PAIR[ch % 2]));
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i l = g < 4 ? l0 : l1;
            const int s = 2 * (g % 4);
            const __m256i q = _mm256_and_si256(s ? _mm256_srli_epi16(l, s) : l, m3);
            const __m256i u = _mm256_mullo_epi16(q, g < 4 ? sca : scb); /* q * scale <= 45 */
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++)
                isum[c] = vn_dpbusd(isum[c], u, r2_bcast4(y + c * ys + 4 + 32 * ch + 4 * g));
        }
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            msum[c] = vn_dpwssd(msum[c], mp, r2_bcast4(y + c * ys + 260 + 4 * ch));
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
        const __m256i zero = _mm256_setzero_si256();
        /* (-4 scale_a, -4 scale_b): |.| <= 128, an int16 pair */
        const __m256i off = rq3_pair(_mm256_sub_epi32(zero, _mm256_slli_epi32(sca, 2)),
                                     _mm256_sub_epi32(zero, _mm256_slli_epi32(scb, 2)));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_mullo_epi32(sa[c], sca),
                                                                 _mm256_mullo_epi32(sb[c], scb)));
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
