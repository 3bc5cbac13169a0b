/*
 * Q3_K weights repacked 16 rows at a time, AVX-512 VNNI, for decode and prefill: the layout
 * idea of repack_k_avx512.c (read that first) for 3-bit quants in sub-blocks of 16.
 *
 * Repacked layout of one super-block column (256 elements) of a group of 16 rows, 1760 bytes
 * (16 x 110, as in the file):
 *     uint16 d[16]               the rows' f16 super-scales
 *     uint32 sc[3][16]           word k of row r's 12 packed scale bytes at sc[k][r]
 *     8 chunks of 32 elements, 192 bytes each, u = the quant + 4 (0..7):
 *       H[64]                    row r, byte k: bit g = u[32c + 4g + k] >> 2
 *       L[2][64]                 row r, byte k: bits 2(g % 4)..+1 of L[g / 4] = u[32c + 4g + k] & 3
 *     (the high bits first, as the kernel reads them: every load follows the last in memory)
 * Piece g (4 elements of each row) is two shifts, a mask and a ternary-logic merge away from
 * the unsigned u that VPDPBUSD takes against the signed activation quants; each sub-block of 16
 * starts its sum at -4 times the activation's sum over it, which leaves the exact dot product
 * of the signed quants, then meets the rows' signed 6-bit scales in int32. Results equal the
 * Q3_K reference vec_dot up to float rounding order.
 *
 * Activation rows: Q6_K's (quant_rk_act_b16): Q8_K's quants with their sums of 16.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"

#include "quant/repack_x86.h"

#define RQ_INLINE static inline __attribute__((always_inline))
#define RQ_ROWS 16
#define RQ_ABLOCK 292 /* bytes of one activation super-block (quant_rk_act_b16) */

/* The layout above (repack_layout.c writes it for any group height). */
static void rq_pack_q3_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q3_k(src, stride, dst, n, RQ_ROWS);
}

/* The 16 rows' scale of sub-block j (constant after inlining) as int32 in -32..31, from the
 * three scale words: low 4 bits in byte j % 8 (its high nibble for j >= 8), high 2 bits at bits
 * 2 (j / 4) of byte 8 + j % 4. */
RQ_INLINE __m512i rq_scale(__m512i u0, __m512i u1, __m512i u2, int j) {
    const __m512i w = (j % 8) / 4 ? u1 : u0;
    const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(w, 8 * (j % 4) + 4 * (j / 8)),
                                        _mm512_set1_epi32(0xF));
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(u2, 8 * (j % 4) + 2 * (j / 4)),
                                        _mm512_set1_epi32(3));
    return _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi32(32));
}

/* Piece g's u (0..7) for 16 rows x 4 elements from the chunk's planes (shifts within 16-bit
 * lanes: what crosses from the neighbour byte lands outside the bits kept). */
RQ_INLINE __m512i rq_piece(__m512i h, __m512i l0, __m512i l1, int g) {
    const __m512i l = g < 4 ? l0 : l1;
    const int s = 2 * (g % 4);
    const __m512i low = s ? _mm512_srli_epi16(l, s) : l;
    const __m512i hb = g < 2 ? _mm512_slli_epi16(h, 2 - g) : g == 2 ? h : _mm512_srli_epi16(h, g - 2);
    return _mm512_ternarylogic_epi32(low, _mm512_and_si512(hb, _mm512_set1_epi8(4)),
                                     _mm512_set1_epi8(3), 0xEC); /* (low & 3) | high */
}

RQ_INLINE int32_t rq_bsum(const uint8_t *yb, int j) {
    int16_t s;
    memcpy(&s, yb + 260 + 2 * j, 2);
    return s;
}

/* One super-block column of 16 rows against RY activation rows: acc[c] += products. */
RQ_INLINE void rq_block(int RY, __m512 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
    const __m512i u0 = _mm512_loadu_si512(xb + 32), u1 = _mm512_loadu_si512(xb + 96),
                  u2 = _mm512_loadu_si512(xb + 160);
    __m512i isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 224 + 192 * ch;
        const __m512i h = _mm512_loadu_si512(cb), l0 = _mm512_loadu_si512(cb + 64),
                      l1 = _mm512_loadu_si512(cb + 128);
        __m512i sa[4], sb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) { /* the +4 of every quant, taken back */
            sa[c] = _mm512_set1_epi32(-4 * rq_bsum(y + c * ys, 2 * ch));
            sb[c] = _mm512_set1_epi32(-4 * rq_bsum(y + c * ys, 2 * ch + 1));
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m512i q = rq_piece(h, l0, l1, g);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m512i a = rp_bcast4(y + c * ys + 32 * ch + 4 * g);
                if (g < 4) sa[c] = _mm512_dpbusd_epi32(sa[c], q, a);
                else sb[c] = _mm512_dpbusd_epi32(sb[c], q, a);
            }
        }
        const __m512i sca = rq_scale(u0, u1, u2, 2 * ch), scb = rq_scale(u0, u1, u2, 2 * ch + 1);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            isum[c] = _mm512_add_epi32(isum[c], _mm512_add_epi32(_mm512_mullo_epi32(sa[c], sca),
                                                                 _mm512_mullo_epi32(sb[c], scb)));
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
RQ_INLINE void rq_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) { /* kind: unused, one type */
    const int64_t nb = n / QK_K;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        rq_block(RY, acc, x + b * RQ_ROWS * sizeof(block_q3_k), y + b * RQ_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm512_storeu_ps(out + c * os, acc[c]);
}

RP_DEFINE_DOT(rq_dot_q3_k, rq_group, 0)

const quant_repack_impl quant_q3_k_repack_avx512 = {RQ_ROWS, rq_pack_q3_k, quant_rk_act_size,
                                                   quant_rk_act_b16, rq_dot_q3_k};
