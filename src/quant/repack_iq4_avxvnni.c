/*
 * IQ4_XS weights repacked 8 rows at a time, AVX-VNNI: repack_iq4_avx2.c's kernel (same layout,
 * same Q8_K activation rows; read its comment first) with the multiply-adds done by VPDPBUSD
 * (repack_avxvnni.h).
 *
 * AVX2 takes the signed levels (-127..113) in the VPSIGNB form, because levels plus 128 would
 * overflow VPMADDUBSW's int16 pairs. VPDPBUSD has no int16 stage, so here a nibble becomes its
 * level plus 128 (1..241, an unsigned byte) with one VPSHUFB and meets the activation quants
 * as they are: no sign operations per activation row. The 128 * sum(a) that adds is taken back
 * from the Q8_K sums of 16 (a sub-block's is bsums[2s] + bsums[2s + 1]) by one VPDPWSSD of
 * (-128 scale, -128 scale) pairs (|.| <= 4096, an int16). A sub-block's int32 sum meets its
 * scale by VPMULLD (repack_k_avxvnni.c weighs the choices).
 *
 * Every int32 sum is exact and meets the scale in the same float operations as in AVX2: results
 * equal the AVX2 kernel's bit for bit.
 */
#include "quant/iq4_nl.h"
#include "quant/pack.h"
#include "quant/q8_k.h"
#include "quant/repack_avxvnni.h"
#include "quant/repack_k_avx2.h"

#define VI_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

R2_INLINE void vi_block(int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y, size_t ys,
                        __m256i levels) {
    const __m256i sl = _mm256_loadu_si256((const __m256i *)(xb + 16));
    const __m256i sh = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(xb + 48)));
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int s = 0; s < 8; s++) {
        __m256i t[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) t[c] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(xb + 64 + 128 * s + 32 * g));
            const __m256i lo = _mm256_shuffle_epi8(levels, _mm256_and_si256(v, m4));
            const __m256i hi =
                _mm256_shuffle_epi8(levels, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *q = y + c * ys + 4 + 32 * s + 4 * g;
                t[c] = vn_dpbusd(t[c], lo, r2_bcast4(q));
                t[c] = vn_dpbusd(t[c], hi, r2_bcast4(q + 16));
            }
        }
        const __m256i sc = ri2_scale32(sl, sh, s);
        const __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sc, 7));
        const __m256i off = _mm256_or_si256(_mm256_and_si256(neg, _mm256_set1_epi32(0xFFFF)),
                                            _mm256_slli_epi32(neg, 16));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(t[c], sc));
            isum[c] = vn_dpwssd(isum[c], off, r2_bcast4(y + c * ys + 260 + 4 * s));
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
R2_INLINE void vi_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) { /* kind: unused, one type */
    /* the 16 levels plus 128 in each 128-bit lane, for VPSHUFB */
    uint8_t lv[16];
    for (int i = 0; i < 16; i++) lv[i] = (uint8_t)(quant_iq4_levels[i] + 128);
    const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lv));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++)
        vi_block(RY, acc, x + b * R2_ROWS * sizeof(block_iq4_xs), y + b * VI_ABLOCK, ys, levels);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(vi_dot_iq4_xs, vi_group, 0)

const quant_dot_tile_fn VN_SYM(quant_iq4_xs_rp_dot_avxvnni) = vi_dot_iq4_xs;
