/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, AVX2: the matmul kernels for decode
 * (one activation row, streaming the group) and prefill (up to 4 activation rows share each
 * unpacked weight register) on CPUs without AVX-512.
 *
 * Layout (repack_layout.c at 8 rows): for each block column of a group, the 8 rows' f16 scales
 * (16 bytes), then 32-byte pieces, piece g holding 4 quants of each row (row r at bytes
 * 4r..4r+3): Q4_0 and IQ4_NL 4 pieces of nibbles (low: elements 4g.., high: 16 + 4g..); Q5_0
 * the same and a fifth piece of fifth bits (row r's byte 4r + k: bit g for element 4g + k, bit
 * 4 + g for element 16 + 4g + k, so that one shift and mask puts them under piece g's
 * nibbles); Q8_0 8 pieces of signed bytes (elements 4g..). One register thus meets one 4-byte broadcast of
 * activation quants in all 8 rows, and nothing is summed across lanes.
 *
 * Q4_0 multiplies the raw nibbles (w + 8, 0..15) by the activation quants (|a| <= 127): each
 * VPMADDUBSW int16 is at most 2 * 15 * 127 = 3810, so all 8 of a block add up in int16
 * (<= 30480) before one VPMADDWD, and the activation's start value -8 * sum(a) removes the
 * offset. Q5_0's quants (w + 16, 0..31) pair to at most 7874, so four products share an int16
 * sum (31496) and a block takes two VPMADDWD. Q8_0 and IQ4_NL have signed weights up to 128 in magnitude, so they take the
 * VPSIGNB form (|w| times a with w's sign), whose int16 sums already reach 32512: one
 * VPMADDWD per VPMADDUBSW.
 *
 * Activation rows (rp_act): Q8_0's quantization (same d, same quants) in 40-byte blocks
 * { int8 qs[32]; float d; int32 start; }, start = -off * sum(qs) (off 8 for Q4_0, 16 for Q5_0,
 * 0 otherwise).
 * Integer sums are exact; results equal the Q8_0 reference vec_dot up to float order.
 */
#include "quant/iq4_nl.h"
#include "quant/pack.h"
#include "quant/repack_avx2.h"
#include "quant/simd_x86.h"

#define R2_ABLOCK 40 /* bytes of one activation block */

enum { R2_Q4_0, R2_Q5_0, R2_Q8_0, R2_IQ4_NL };

R2_INLINE size_t r2_xsize(int kind) { return kind == R2_Q8_0 ? 34 : kind == R2_Q5_0 ? 22 : 18; }

/* ---- load-time repacking ---- */

static void r2_pack_q4_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_0(src, stride, dst, n, R2_ROWS);
}

static void r2_pack_q5_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_0(src, stride, dst, n, R2_ROWS);
}

static void r2_pack_q8_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q8_0(src, stride, dst, n, R2_ROWS, 0);
}

/* ---- activations ---- */

static size_t r2_act_size(int64_t n) { return (size_t)(n / 32) * R2_ABLOCK; }

static void r2_act(const float *src, uint8_t *dst, int64_t n, int off) {
    x86_repack_act(src, dst, n, off, R2_ABLOCK);
}

static void r2_act_q4_0(const float *src, void *dst, int64_t n) { r2_act(src, dst, n, 8); }
static void r2_act_q5_0(const float *src, void *dst, int64_t n) { r2_act(src, dst, n, 16); }
static void r2_act_signed(const float *src, void *dst, int64_t n) { r2_act(src, dst, n, 0); }

/* ---- kernel ---- */

/* Signed quants of piece g (elements 4g..4g+3 of the 8 rows) of a Q8_0 or IQ4_NL block. */
R2_INLINE __m256i r2_signed_piece(int kind, const uint8_t *q, int g, __m256i levels) {
    if (kind == R2_Q8_0) return _mm256_loadu_si256((const __m256i *)(q + 32 * g));
    __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * (g & 3)));
    if (g >= 4) v = _mm256_srli_epi16(v, 4);
    return _mm256_shuffle_epi8(levels, _mm256_and_si256(v, _mm256_set1_epi8(0x0F)));
}

/* One block column of 8 rows against RY activation rows: acc[c] += products. */
R2_INLINE void r2_block(int kind, int RY, __m256 *acc, const uint8_t *xb, const uint8_t *y,
                        size_t ys, __m256i levels) {
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)xb));
    const uint8_t *q = xb + 2 * R2_ROWS;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s[4];
    if (kind == R2_Q4_0) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) s[c] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * g));
            const __m256i lo = _mm256_and_si256(v, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *yb = y + c * ys;
                s[c] = _mm256_add_epi16(s[c], _mm256_maddubs_epi16(lo, r2_bcast4(yb + 4 * g)));
                s[c] = _mm256_add_epi16(s[c], _mm256_maddubs_epi16(hi, r2_bcast4(yb + 16 + 4 * g)));
                R2_KEEP(s[c]);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            s[c] = _mm256_add_epi32(_mm256_madd_epi16(s[c], ones), r2_bcast4(y + c * ys + 36));
    } else if (kind == R2_Q5_0) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
        const __m256i h = _mm256_loadu_si256((const __m256i *)(q + 128));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) s[c] = r2_bcast4(y + c * ys + 36);
#pragma GCC unroll 2
        for (int g = 0; g < 4; g += 2) {
            __m256i lo[2], hi[2];
#pragma GCC unroll 2
            for (int k = 0; k < 2; k++) { /* nibbles plus the fifth bits of piece g + k */
                const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * (g + k)));
                lo[k] = _mm256_or_si256(_mm256_and_si256(v, m4),
                                        _mm256_and_si256(_mm256_slli_epi16(h, 4 - (g + k)), m10));
                hi[k] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                        _mm256_and_si256(_mm256_srli_epi16(h, g + k), m10));
            }
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *yb = y + c * ys + 4 * g;
                const __m256i t = _mm256_add_epi16(
                    _mm256_add_epi16(_mm256_maddubs_epi16(lo[0], r2_bcast4(yb)),
                                     _mm256_maddubs_epi16(hi[0], r2_bcast4(yb + 16))),
                    _mm256_add_epi16(_mm256_maddubs_epi16(lo[1], r2_bcast4(yb + 4)),
                                     _mm256_maddubs_epi16(hi[1], r2_bcast4(yb + 20))));
                s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(t, ones));
                R2_KEEP(s[c]);
            }
        }
    } else {
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) s[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i w = r2_signed_piece(kind, q, g, levels);
            const __m256i aw = _mm256_sign_epi8(w, w);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m256i a = _mm256_sign_epi8(r2_bcast4(y + c * ys + 4 * g), w);
                s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, a), ones));
                R2_KEEP(s[c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const __m256 dy = _mm256_set1_ps(r2_load_f32(y + c * ys + 32));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), _mm256_mul_ps(dx, dy), acc[c]);
    }
}

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void r2_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const int64_t nb = n / 32;
    __m256i levels = _mm256_setzero_si256();
    if (kind == R2_IQ4_NL)
        levels = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)quant_iq4_levels));
    __m256 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm256_setzero_ps();
    const size_t xb = R2_ROWS * r2_xsize(kind);
    for (int64_t b = 0; b < nb; b++)
        r2_block(kind, RY, acc, x + b * xb, y + b * R2_ABLOCK, ys, levels);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm256_storeu_ps(out + c * os, acc[c]);
}

R2_DEFINE_DOT(r2_dot_q4_0, r2_group, R2_Q4_0)
R2_DEFINE_DOT(r2_dot_q5_0, r2_group, R2_Q5_0)
R2_DEFINE_DOT(r2_dot_q8_0, r2_group, R2_Q8_0)
R2_DEFINE_DOT(r2_dot_iq4_nl, r2_group, R2_IQ4_NL)

const quant_repack_impl quant_q4_0_repack_avx2 = {R2_ROWS, r2_pack_q4_0, r2_act_size,
                                                 r2_act_q4_0, r2_dot_q4_0};
const quant_repack_impl quant_q5_0_repack_avx2 = {R2_ROWS, r2_pack_q5_0, r2_act_size,
                                                 r2_act_q5_0, r2_dot_q5_0};
const quant_repack_impl quant_q8_0_repack_avx2 = {R2_ROWS, r2_pack_q8_0, r2_act_size,
                                                 r2_act_signed, r2_dot_q8_0};
const quant_repack_impl quant_iq4_nl_repack_avx2 = {R2_ROWS, r2_pack_q4_0, r2_act_size,
                                                   r2_act_signed, r2_dot_iq4_nl};
