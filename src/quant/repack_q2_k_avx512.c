/*
 * Q2_K weights repacked 16 rows at a time, AVX-512 VNNI, for decode and prefill: the layout
 * idea of repack_k_avx512.c (read that first) for 2-bit quants in sub-blocks of 16.
 *
 * Repacked layout of one super-block column (256 elements) of a group of 16 rows, 1344 bytes
 * (16 x 84, as in the file):
 *     uint16 d[16], dmin[16]     the rows' f16 super-scales
 *     uint32 sc[4][16]           word k of row r's 16 scale bytes (scale | min << 4) at sc[k][r]
 *     8 chunks of 32 elements, 128 bytes each:
 *       L[2][64]                 row r, byte k: bits 2(g % 4)..+1 of L[g / 4] = quant 32c + 4g + k
 * Piece g (4 elements of each row) is one shift and one mask away from the quants (0..3) that
 * VPDPBUSD takes against the signed activation quants; each sub-block's 16 row sums meet the
 * rows' 4-bit scales in int32, and the min term comes from VPDPWSSD on (min, min) pairs against
 * the activation's sums of 16. Folded as d * dy * isum - dmin * dy * msum per super-block, so
 * results equal the Q2_K reference vec_dot up to float rounding order.
 *
 * Activation rows: Q6_K's (quant_rk_act_b16): Q8_K's quants with their sums of 16.
 */
#include "quant/pack.h"
#include "quant/q8_k.h"

#include "quant/repack_x86.h"

#define R2_INLINE static inline __attribute__((always_inline))
#define R2_ROWS 16
#define R2_ABLOCK 292 /* bytes of one activation super-block (quant_rk_act_b16) */

/* The layout above (repack_layout.c writes it for any group height). */
static void r2_pack_q2_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q2_k(src, stride, dst, n, R2_ROWS);
}

/* bytes (b, b+1) of each dword as two zero-extended int16 (b = 0 or 2): a (min, min) pair */
#define R2_P(b) b, 0x80, b + 1, 0x80
#define R2_ROW(b) R2_P(b), R2_P(b + 4), R2_P(b + 8), R2_P(b + 12)
static const uint8_t R2_PAIR[2][64] __attribute__((aligned(64))) = {
    {R2_ROW(0), R2_ROW(0), R2_ROW(0), R2_ROW(0)},
    {R2_ROW(2), R2_ROW(2), R2_ROW(2), R2_ROW(2)},
};
#undef R2_ROW
#undef R2_P

/* One super-block column of 16 rows against RY activation rows: acc[c] += products. */
R2_INLINE void r2_block(int RY, __m512 *acc, const uint8_t *xb, const uint8_t *y, size_t ys) {
    const __m512i m3 = _mm512_set1_epi8(3), m15 = _mm512_set1_epi32(0xF);
    __m512i words[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) words[k] = _mm512_loadu_si512(xb + 64 + 64 * k);
    __m512i isum[4], msum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = msum[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int ch = 0; ch < 8; ch++) {
        const uint8_t *cb = xb + 320 + 128 * ch;
        const __m512i l0 = _mm512_loadu_si512(cb), l1 = _mm512_loadu_si512(cb + 64);
        __m512i sa[4], sb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) sa[c] = sb[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m512i l = g < 4 ? l0 : l1;
            const int s = 2 * (g % 4);
            const __m512i q = _mm512_and_si512(s ? _mm512_srli_epi16(l, s) : l, m3);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const __m512i a = rp_bcast4(y + c * ys + 32 * ch + 4 * g);
                if (g < 4) sa[c] = _mm512_dpbusd_epi32(sa[c], q, a);
                else sb[c] = _mm512_dpbusd_epi32(sb[c], q, a);
            }
        }
        /* sub-blocks 2ch and 2ch + 1: bytes 2(ch % 2), +1 of word ch / 2 */
        const __m512i w = words[ch / 2];
        const int sh = 16 * (ch % 2);
        const __m512i sca = _mm512_and_si512(_mm512_srli_epi32(w, sh), m15);
        const __m512i scb = _mm512_and_si512(_mm512_srli_epi32(w, sh + 8), m15);
        const __m512i mins = _mm512_and_si512(_mm512_srli_epi32(w, 4), _mm512_set1_epi8(0x0F));
        const __m512i mp = _mm512_shuffle_epi8(mins, _mm512_load_si512(R2_PAIR[ch % 2]));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            isum[c] = _mm512_add_epi32(isum[c], _mm512_add_epi32(_mm512_mullo_epi32(sa[c], sca),
                                                                 _mm512_mullo_epi32(sb[c], scb)));
            msum[c] = _mm512_dpwssd_epi32(msum[c], mp, rp_bcast4(y + c * ys + 260 + 4 * ch));
        }
    }
    const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)xb));
    const __m512 mx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(xb + 32)));
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        float dy;
        memcpy(&dy, y + c * ys + 256, 4);
        const __m512 vdy = _mm512_set1_ps(dy);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(dx, vdy), acc[c]);
        acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[c]), _mm512_mul_ps(mx, vdy), acc[c]);
    }
}

/* One group of 16 rows against RY (1..4, constant after inlining) activation rows. */
R2_INLINE void r2_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) { /* kind: unused, one type */
    const int64_t nb = n / QK_K;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
        r2_block(RY, acc, x + b * R2_ROWS * sizeof(block_q2_k), y + b * R2_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm512_storeu_ps(out + c * os, acc[c]);
}

RP_DEFINE_DOT(r2_dot_q2_k, r2_group, 0)

const quant_repack_impl quant_q2_k_repack_avx512 = {R2_ROWS, r2_pack_q2_k, quant_rk_act_size,
                                                   quant_rk_act_b16, r2_dot_q2_k};
