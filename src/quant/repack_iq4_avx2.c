/*
 * IQ4_XS weights repacked 8 rows at a time, AVX2: the layout of repack_iq4_avx512.c (read that
 * first) at 8 rows, from repack_layout.c. One super-block column is 1088 bytes (8 x 136):
 * f16 d[8], the rows' four scales_l bytes (32 bytes), their scales_h (16 bytes), then 8
 * sub-blocks of 4 pieces, piece g of sub-block s holding row r's qs[16s + 4g .. 16s + 4g + 3]
 * at bytes 4r..4r+3 (low nibbles: elements 32s + 4g.., high nibbles: 32s + 16 + 4g..).
 *
 * A nibble becomes its signed level (-127..113) with one VPSHUFB. Levels plus 128 would
 * overflow VPMADDUBSW's int16 pair sums, so the kernel takes the VPSIGNB form (|level| times
 * the activation quant with the level's sign; |a| <= 127 for Q8_K, so no sum exceeds 32258)
 * and lets VPMADDWD multiply each pair sum by the rows' sub-block scale on the way to int32.
 * Sums are exact; each super-block folds as d * dy * isum, so results equal the IQ4_XS
 * reference vec_dot up to float rounding order. Activation rows are plain Q8_K blocks.
 */
#include "quant/iq4_nl.h"
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_k_avx2.h"

#define RI2_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4 */

static void ri2_pack_iq4_xs(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_iq4_xs(src, stride, dst, n, R2_ROWS);
}

static size_t ri2_act_size(int64_t n) { return (size_t)(n / QK_K) * RI2_ABLOCK; }

R2_INLINE void ri2_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys,
                         __m256i levels) {
    const __m256i sl = _mm256_loadu_si256((const __m256i *)(xb + 16));
    const __m256i sh = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(xb + 48)));
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int s = 0; s < 8; s++) {
        const __m256i sc = ri2_scale(sl, sh, s);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(xb + 64 + 128 * s + 32 * g));
            const __m256i lo = _mm256_shuffle_epi8(levels, _mm256_and_si256(v, m4));
            const __m256i hi =
                _mm256_shuffle_epi8(levels, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            const __m256i alo = _mm256_sign_epi8(lo, lo), ahi = _mm256_sign_epi8(hi, hi);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *q = y + c * ys + 4 + 32 * s + 4 * g;
                const __m256i plo = _mm256_maddubs_epi16(alo, _mm256_sign_epi8(r2_bcast4(q), lo));
                const __m256i phi =
                    _mm256_maddubs_epi16(ahi, _mm256_sign_epi8(r2_bcast4(q + 16), hi));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(plo, sc),
                                                                     _mm256_madd_epi16(phi, sc)));
                R2_KEEP(isum[c]);
            }
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
R2_INLINE void ri2_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) { /* kind: unused, one type */
    const int64_t nb = n / QK_K;
    const __m256i levels =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)quant_iq4_levels));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        ri2_block(RY, acc, x + b * R2_ROWS * sizeof(block_iq4_xs), y + b * RI2_ABLOCK, ys, levels);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(ri2_dot_iq4_xs, ri2_group, 0)

const quant_repack_impl quant_iq4_xs_repack_avx2 = {R2_ROWS, ri2_pack_iq4_xs, ri2_act_size,
                                                   quant_q8_k_from_f32_avx2, ri2_dot_iq4_xs};
