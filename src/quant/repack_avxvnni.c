/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, AVX-VNNI: repack_avx2.c's
 * kernels (read its layout comment first; same layout, same activation rows of 40-byte blocks
 * { int8 qs[32]; float d; int32 start; }) with every int8 multiply-add a VPDPBUSD into the
 * block's int32 sums (repack_avxvnni.h).
 *
 * Q4_0 and Q5_0 feed their raw unsigned quants (w + 8, w + 16) as VPDPBUSD's unsigned operand
 * and the activation quants as its signed one; the activation's start value -off * sum(a)
 * removes the offset, as in AVX2. Q8_0 and IQ4_NL weights are signed, so they take the sign
 * form: |w| (at most 128, still a valid unsigned byte) against a with w's sign. Per piece and
 * activation row that is one VPDPBUSD where AVX2 needs VPMADDUBSW, VPMADDWD and an add (Q4_0
 * shares its VPMADDWD over a block, so it saves the int16 adds instead).
 *
 * The int32 block sums are exact, as in AVX2, and meet the scales in the same float
 * operations in the same order: results equal the AVX2 kernels' bit for bit.
 */
#include "quant/iq4_nl.h"
#include "quant/pack.h"
#include "quant/repack_avxvnni.h"

#define VN_ABLOCK 40 /* bytes of one activation block (repack_avx2.c) */

enum { VN_Q4_0, VN_Q5_0, VN_Q8_0, VN_IQ4_NL };

R2_INLINE size_t vn_xsize(int kind) { return kind == VN_Q8_0 ? 34 : kind == VN_Q5_0 ? 22 : 18; }

/* Signed quants of piece g (elements 4g..4g+3 of the 8 rows) of a Q8_0 or IQ4_NL block. */
R2_INLINE __m256i vn_signed_piece(int kind, const uint8_t *q, int g, __m256i levels) {
    if (kind == VN_Q8_0) return _mm256_loadu_si256((const __m256i *)(q + 32 * g));
    __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * (g & 3)));
    if (g >= 4) v = _mm256_srli_epi16(v, 4);
    return _mm256_shuffle_epi8(levels, _mm256_and_si256(v, _mm256_set1_epi8(0x0F)));
}

/* One block column of 8 rows against RY activation rows: acc[c] += products. */
R2_INLINE void vn_block(int kind, int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y,
                        size_t ys, __m256i levels) {
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    const uint8_t *q = xb + 2 * R2_ROWS;
    /* Two sums per activation row, one for each half of the pieces, so that a block's
     * VPDPBUSD form two dependency chains of 4 rather than one of 8 (each waits 4-5 cycles for
     * the one before it on its accumulator). s starts at the start value, which folds the
     * unsigned weights' offset (0 for the signed kinds). */
    __m256i s[4], t[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        s[c] = r2_bcast4(y + c * ys + 36);
        t[c] = _mm256_setzero_si256();
    }
    if (kind == VN_Q4_0 || kind == VN_Q5_0) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
        __m256i h = _mm256_setzero_si256();
        if (kind == VN_Q5_0) h = _mm256_loadu_si256((const __m256i *)(q + 128));
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * g));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (kind == VN_Q5_0) { /* the fifth bits of piece g under its nibbles */
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4 - g), m10));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(h, g), m10));
            }
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *yb = y + c * ys;
                s[c] = vn_dpbusd(s[c], lo, r2_bcast4(yb + 4 * g));
                t[c] = vn_dpbusd(t[c], hi, r2_bcast4(yb + 16 + 4 * g));
            }
        }
    } else {
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i w = vn_signed_piece(kind, q, g, levels);
            const __m256i aw = _mm256_sign_epi8(w, w);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m256i a = _mm256_sign_epi8(r2_bcast4(y + c * ys + 4 * g), w);
                if (g % 2) t[c] = vn_dpbusd(t[c], aw, a);
                else s[c] = vn_dpbusd(s[c], aw, a);
            }
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        s[c] = _mm256_add_epi32(s[c], t[c]);
        const __m256 dy = _mm256_set1_ps(r2_load_f32(y + c * ys + 32));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), _mm256_mul_ps(dx, dy), acc[c]);
    }
}

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void vn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const int64_t nb = n / 32;
    __m256i levels = _mm256_setzero_si256();
    if (kind == VN_IQ4_NL)
        levels = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)quant_iq4_levels));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    const size_t xb = R2_ROWS * vn_xsize(kind);
    for (int64_t b = 0; b < nb; b++)
        vn_block(kind, RY, acc, x + b * xb, y + b * VN_ABLOCK, ys, levels);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(vn_dot_q4_0, vn_group, VN_Q4_0)
R2_DEFINE_DOT(vn_dot_q5_0, vn_group, VN_Q5_0)
R2_DEFINE_DOT(vn_dot_q8_0, vn_group, VN_Q8_0)
R2_DEFINE_DOT(vn_dot_iq4_nl, vn_group, VN_IQ4_NL)

const quant_dot_tile_fn VN_SYM(quant_q4_0_rp_dot_avxvnni) = vn_dot_q4_0;
const quant_dot_tile_fn VN_SYM(quant_q5_0_rp_dot_avxvnni) = vn_dot_q5_0;
const quant_dot_tile_fn VN_SYM(quant_q8_0_rp_dot_avxvnni) = vn_dot_q8_0;
const quant_dot_tile_fn VN_SYM(quant_iq4_nl_rp_dot_avxvnni) = vn_dot_iq4_nl;
