/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 16 rows at a time, AVX-512 VNNI: the matmul
 * kernels for both decode and prefill on CPUs with VPDPBUSD.
 *
 * Repacked layout (made once at load, quant_traits.rp_pack): for each block column b of a group
 * of 16 rows,
 *     uint16 d[16]        the 16 rows' f16 scales of block b
 *     quants              Q4_0: 4 x 64 bytes; 64-byte piece g holds, for row r at bytes
 *                         4r..4r+3, the block's qs[4g..4g+3] (low nibbles: elements 4g..4g+3,
 *                         high nibbles: elements 16+4g..16+4g+3).
 *                         Q5_0: Q4_0's 4 x 64 bytes of low nibbles, then 64 bytes of fifth
 *                         bits: row r's byte 4r + k holds, at bit g, the fifth bit of element
 *                         4g + k and, at bit 4 + g, that of element 16 + 4g + k (a permutation
 *                         of the block's qh, so that one shift and mask puts the bits of piece
 *                         g under its nibbles).
 *                         Q8_0: 8 x 64 bytes; piece g holds row r's elements 4g..4g+3 at
 *                         bytes 4r..4r+3, stored as w + 128 (unsigned).
 *                         IQ4_NL: Q4_0's layout (its block is Q4_0's with a level index in
 *                         each nibble); one VPSHUFB turns a nibble into its level + 128.
 * so one 512-bit register holds 4 consecutive quants of 16 rows, and VPDPBUSD against one
 * broadcast 4-byte group of activation quants adds to 16 row sums at once: the 16 int32 lanes
 * are the 16 rows, and nothing is summed across lanes. Each block's 16 row sums become floats
 * once and are scaled by d_row * d_activation with one FMA. Q4_0 costs 18 bytes per row-block,
 * Q5_0 22 and Q8_0 34, as in the file.
 *
 * Activation rows (rp_act) are Q8_0's quantization of the f32 row (same d, same quants) in
 * 40-byte blocks { int8 qs[32]; float d; int32 start; } where start = -off * sum(qs) removes
 * the weights' unsigned offset (8 for Q4_0 nibbles, 16 for Q5_0, 128 for Q8_0 and IQ4_NL): the integer
 * sums are exact, and the results equal the Q8_0 reference vec_dot up to float summation order.
 */
#include "quant/pack.h"
#include "quant/repack_x86.h"
#include "quant/simd_x86.h"

#define RP_INLINE static inline __attribute__((always_inline))
#define RP_ROWS 16
#define RP_ABLOCK 40 /* bytes of one activation block */

enum { RP_Q4_0, RP_Q5_0, RP_Q8_0, RP_IQ4_NL };

RP_INLINE size_t rp_xsize(int kind) {
    return kind == RP_Q4_0 || kind == RP_IQ4_NL ? 18 : kind == RP_Q5_0 ? 22 : 34;
}

/* ---- load-time repacking ---- */

/* The layouts above at 16 rows (repack_layout.c writes them for any group height). */
static void rp_pack_q4_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_0(src, stride, dst, n, RP_ROWS);
}

static void rp_pack_q5_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_0(src, stride, dst, n, RP_ROWS);
}

static void rp_pack_q8_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q8_0(src, stride, dst, n, RP_ROWS, 0x80);
}

/* ---- activations ---- */

static size_t rp_act_size(int64_t n) { return (size_t)(n / 32) * RP_ABLOCK; }

static void rp_act(const float *src, uint8_t *dst, int64_t n, int off) {
    x86_repack_act(src, dst, n, off, RP_ABLOCK);
}

static void rp_act_q4_0(const float *src, void *dst, int64_t n) { rp_act(src, dst, n, 8); }
static void rp_act_q5_0(const float *src, void *dst, int64_t n) { rp_act(src, dst, n, 16); }
static void rp_act_q8_0(const float *src, void *dst, int64_t n) { rp_act(src, dst, n, 128); }

/* ---- kernel ---- */

/* One block column of 16 rows against RY activation rows: acc[c] += products. Two int32
 * chains per activation row halve the VPDPBUSD dependency length. */
RP_INLINE void rp_block(int kind, int RY, __m512 *acc, const uint8_t *xb, const uint8_t *y,
                        size_t ys) {
    const __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)xb));
    __m512i q[8];
    if (kind == RP_IQ4_NL) {
        const __m512i levels = rp_iq4_levels();
        const __m512i m4 = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m512i v = _mm512_loadu_si512(xb + 32 + 64 * g);
            q[g] = _mm512_shuffle_epi8(levels, _mm512_and_si512(v, m4));
            q[g + 4] = _mm512_shuffle_epi8(levels, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
        }
    } else if (kind == RP_Q4_0 || kind == RP_Q5_0) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m512i v = _mm512_loadu_si512(xb + 32 + 64 * g);
            q[g] = _mm512_and_si512(v, m4);                         /* elements 4g.. */
            q[g + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4); /* elements 16+4g.. */
        }
        if (kind == RP_Q5_0) { /* fifth bits: bit g (bit 4 + g) of each byte to bit 4 */
            const __m512i h = _mm512_loadu_si512(xb + 288), m10 = _mm512_set1_epi8(0x10);
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                /* shifts within 16-bit lanes: what crosses from the neighbour byte lands
                 * outside bit 4 and is masked off */
                q[g] = _mm512_or_si512(q[g], _mm512_and_si512(_mm512_slli_epi16(h, 4 - g), m10));
                q[g + 4] = _mm512_or_si512(q[g + 4], _mm512_and_si512(_mm512_srli_epi16(h, g), m10));
            }
        }
    } else {
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) q[g] = _mm512_loadu_si512(xb + 32 + 64 * g);
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ys;
        __m512i s0 = rp_bcast4(yb + 36), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            s0 = _mm512_dpbusd_epi32(s0, q[g], rp_bcast4(yb + 4 * g));
            s1 = _mm512_dpbusd_epi32(s1, q[g + 4], rp_bcast4(yb + 16 + 4 * g));
        }
        float dy;
        memcpy(&dy, yb + 32, 4);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
                                 _mm512_mul_ps(dx, _mm512_set1_ps(dy)), acc[c]);
    }
}

/* One group of 16 rows against RY (1..4, constant after inlining) activation rows. */
RP_INLINE void rp_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    const int64_t nb = n / 32;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = _mm512_setzero_ps();
    const size_t xb = RP_ROWS * rp_xsize(kind);
    for (int64_t b = 0; b < nb; b++) rp_block(kind, RY, acc, x + b * xb, y + b * RP_ABLOCK, ys);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) _mm512_storeu_ps(out + c * os, acc[c]);
}

RP_DEFINE_DOT(rp_dot_q4_0, rp_group, RP_Q4_0)
RP_DEFINE_DOT(rp_dot_q5_0, rp_group, RP_Q5_0)
RP_DEFINE_DOT(rp_dot_q8_0, rp_group, RP_Q8_0)
RP_DEFINE_DOT(rp_dot_iq4_nl, rp_group, RP_IQ4_NL)

const quant_repack_impl quant_q4_0_repack_avx512 = {RP_ROWS, rp_pack_q4_0, rp_act_size,
                                                   rp_act_q4_0, rp_dot_q4_0};
const quant_repack_impl quant_q5_0_repack_avx512 = {RP_ROWS, rp_pack_q5_0, rp_act_size,
                                                   rp_act_q5_0, rp_dot_q5_0};
const quant_repack_impl quant_q8_0_repack_avx512 = {RP_ROWS, rp_pack_q8_0, rp_act_size,
                                                   rp_act_q8_0, rp_dot_q8_0};
const quant_repack_impl quant_iq4_nl_repack_avx512 = {RP_ROWS, rp_pack_q4_0, rp_act_size,
                                                     rp_act_q8_0, rp_dot_iq4_nl};
