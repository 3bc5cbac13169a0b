/*
 * Q2_K weights repacked 8 rows at a time, AVX2: the layout of repack_q2_k_avx512.c (read that
 * first) at 8 rows, from repack_layout.c. One super-block column is 672 bytes (8 x 84): f16
 * d[8], dmin[8], the rows' four scale words (4 pieces: word k of row r at bytes 4r..4r+3 of
 * piece k, each byte scale | min << 4), then 8 chunks of 32 elements, each two pieces L0, L1
 * where bits 2(g % 4)..+1 of row r's byte k in L[g / 4] are quant 32c + 4g + k.
 *
 * Quants are 0..3, so a VPMADDUBSW pair is at most 2 * 3 * 127 = 762 and a sub-block's four
 * products share one int16 sum, which meets the rows' 4-bit scale in one VPMADDWD against
 * (scale, scale) pairs; the min term is one VPMADDWD of (min, min') pairs against the
 * activation's sums of 16. Folded as d * dy * isum - dmin * dy * msum per super-block, so results
 * equal the Q2_K reference vec_dot up to float rounding order. Activation rows are plain Q8_K.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_k_avx2.h"

#define RQ2_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

static void rq2_pack(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q2_k(src, stride, dst, n, R2_ROWS);
}

static size_t rq2_act_size(int64_t n) { return (size_t)(n / QK_K) * RQ2_ABLOCK; }

R2_INLINE void rq2_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
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
        const __m256i sca = _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)RQ2_DUP[b]));
        const __m256i scb =
            _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)RQ2_DUP[b + 1]));
        const __m256i mp =
            _mm256_shuffle_epi8(mins, _mm256_load_si256((const __m256i *)RQ2_PAIR[ch % 2]));
        __m256i sa[4], sb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) sa[c] = sb[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i l = g < 4 ? l0 : l1;
            const int s = 2 * (g % 4);
            const __m256i q = _mm256_and_si256(s ? _mm256_srli_epi16(l, s) : l, m3);
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
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(sa[c], sca),
                                                                 _mm256_madd_epi16(sb[c], scb)));
            msum[c] = _mm256_add_epi32(msum[c],
                                       _mm256_madd_epi16(mp, r2_bcast4(y + c * ys + 260 + 4 * ch)));
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

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void rq2_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) { /* kind: unused, one type */
    const int64_t nb = n / QK_K;
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        rq2_block(RY, acc, x + b * R2_ROWS * sizeof(block_q2_k), y + b * RQ2_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(rq2_dot, rq2_group, 0)

const quant_repack_impl quant_q2_k_repack_avx2 = {R2_ROWS, rq2_pack, rq2_act_size,
                                                 quant_q8_k_from_f32_avx2, rq2_dot};
