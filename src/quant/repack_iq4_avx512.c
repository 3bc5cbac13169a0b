/*
 * IQ4_XS weights repacked 16 rows at a time, AVX-512 VNNI, for decode and prefill: the layout
 * idea of repack_k_avx512.c (read that first) for the non-linear 4-bit levels.
 *
 * Repacked layout of one super-block column (256 elements) of a group of 16 rows, 2176 bytes
 * (16 x 136, as in the file):
 *     uint16 d[16]               the rows' f16 super-scales
 *     uint32 sl[16]              row r's four scales_l bytes (the low 4 bits of 8 scales)
 *     uint16 sh[16]              row r's scales_h (the high 2 bits of 8 scales)
 *     quants                     8 sub-blocks of 32 elements, each 4 x 64 bytes: piece g of
 *                                sub-block s holds row r's qs[16s + 4g .. 16s + 4g + 3] at bytes
 *                                4r..4r+3 (low nibbles: elements 32s + 4g.., high nibbles:
 *                                32s + 16 + 4g..)
 * A nibble becomes its level plus 128 (1..241, unsigned) with one VPSHUFB, so VPDPBUSD can take
 * it against the signed activation quants; each sub-block's sums then lose 128 times the
 * activation's sub-block sum, which leaves the exact integer dot product. Sums are scaled by
 * the rows' signed 6-bit scales in int32 and folded as d * dy * isum per super-block, so results
 * equal the IQ4_XS reference vec_dot up to float rounding order.
 *
 * Activation rows: Q4_K's (quant_rk_act_k4): Q8_K's quants with their sub-block
 * sums of 32, which is what the +128 correction needs.
 */
#include "quant/pack.h"

#include "quant/repack_x86.h"

#define RI_INLINE static inline __attribute__((always_inline))
#define RI_ROWS 16
#define RI_ABLOCK 292 /* bytes of one activation super-block (Q4_K's rp_act layout) */

/* The layout above (repack_layout.c writes it for any group height). */
static void ri_pack_iq4_xs(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_iq4_xs(src, stride, dst, n, RI_ROWS);
}

/* One super-block column of 16 rows against RY activation rows: acc[c] += products. */
RI_INLINE void ri_block(int RY, __m512 *acc, const uint8_t *xb, const uint8_t *y, size_t ys,
                        __m512i levels) {
    const __m512i sl = _mm512_loadu_si512(xb + 32);
    const __m512i sh = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(xb + 96)));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm512_setzero_si512();
#pragma GCC unroll 1
    for (int s = 0; s < 8; s++) {
        /* the 16 rows' scale of sub-block s, as int32 in -32..31 */
        const __m512i lo4 = _mm512_and_si512(_mm512_srlv_epi32(sl, _mm512_set1_epi32(4 * s)),
                                             _mm512_set1_epi32(0xF));
        const __m512i hi2 = _mm512_and_si512(_mm512_srlv_epi32(sh, _mm512_set1_epi32(2 * s)),
                                             _mm512_set1_epi32(3));
        const __m512i sc = _mm512_sub_epi32(_mm512_or_si512(lo4, _mm512_slli_epi32(hi2, 4)),
                                            _mm512_set1_epi32(32));
        __m512i sum[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) { /* the +128 of every level, taken back: -128 * ysum */
            int16_t ysum;
            memcpy(&ysum, y + c * ys + 260 + 2 * s, 2);
            sum[c] = _mm512_set1_epi32(-128 * ysum);
        }
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m512i v = _mm512_loadu_si512(xb + 128 + 256 * s + 64 * g);
            const __m512i lo = _mm512_shuffle_epi8(levels, _mm512_and_si512(v, m4));
            const __m512i hi = _mm512_shuffle_epi8(levels, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *q = y + c * ys + 32 * s + 4 * g;
                sum[c] = _mm512_dpbusd_epi32(sum[c], lo, rp_bcast4(q));
                sum[c] = _mm512_dpbusd_epi32(sum[c], hi, rp_bcast4(q + 16));
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sum[c], sc));
    }
    const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)xb));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        float dy;
        memcpy(&dy, y + c * ys + 256, 4);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dx, _mm512_set1_ps(dy)),
                                 acc[c]);
    }
}

/* One group of 16 rows against RY (1..4, constant after inlining) activation rows. */
RI_INLINE void ri_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) { /* kind: unused, one type */
    const int64_t nb = n / QK_K;
    const __m512i levels = rp_iq4_levels();
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        ri_block(RY, acc, x + b * RI_ROWS * sizeof(block_iq4_xs), y + b * RI_ABLOCK, ys, levels);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm512_storeu_ps(out + c * os, acc[c]);
}

RP_DEFINE_DOT(ri_dot_iq4_xs, ri_group, 0)

const quant_repack_impl quant_iq4_xs_repack_avx512 = {RI_ROWS, ri_pack_iq4_xs, quant_rk_act_size,
                                                     quant_rk_act_k4, ri_dot_iq4_xs};
