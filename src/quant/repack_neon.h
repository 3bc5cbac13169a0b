/*
 * What the repacked NEON kernels (repack_neon.c with SDOT, repack_i8mm_neon.c with SMMLA)
 * share for Q4_0, Q5_0, Q8_0 and IQ4_NL: the activation rows, the unpacking of the repacked
 * weights into signed bytes, and post-increment loads. The I8MM file hands a single activation
 * row to the SDOT kernels, where a 2 x 2 SMMLA tile would waste half its work. Included only
 * by files compiled with the NEON flags.
 *
 * Weights: repack_layout.c's layouts at 8 rows, as the AVX2 kernels use them (repack_avx2.c
 * describes them): per block column the 8 rows' f16 scales, then 32-byte pieces, piece g holding
 * 4 quants of each row (row r at bytes 4r..4r+3). On NEON a piece is two 128-bit registers,
 * rows 0-3 and rows 4-7, each int32 lane one row's 4 quants: SDOT's by-element form
 * (vdotq_laneq_s32) multiplies them by 4 activation quants picked from a register by lane, so
 * no broadcast is needed and nothing is summed across lanes. SMMLA wants 8 consecutive quants
 * of 2 rows per register, which one 32-bit zip of two neighbouring pieces gives, so both
 * kernels read one layout and one repacked copy serves either.
 *
 * SDOT multiplies signed bytes: Q4_0's nibbles (w + 8, 0..15) and Q5_0's quants (w + 16, 0..31)
 * are taken as they are stored and the activation row's start value -off * sum(a) removes the
 * offset; Q8_0's quants and IQ4_NL's levels (table lookup) are signed already.
 *
 * Activation rows (rp_act): Q8_0's quantization (same d, same quants) in 40-byte blocks
 * { int8 qs[32]; float d; int32 start; }, start = -off * sum(qs) (off 8 for Q4_0, 16 for Q5_0,
 * 0 otherwise), the same rows as the AVX2 kernels take.
 *
 * Sums are exact in int32 and every result is fma(acc, float(isum), dx * dy) per block in block
 * order whatever the kernel and the number of activation rows, so a row's result does not
 * depend on how many rows share the call; it equals the Q8_0 reference vec_dot up to float
 * order.
 */
#ifndef OB_QUANT_REPACK_NEON_H
#define OB_QUANT_REPACK_NEON_H

#include "quant/iq4_nl.h"
#include "quant/pack.h"
#include "quant/repack_tile.h"
#include "quant/simd_neon.h"

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#define RN_ROWS 8    /* weight rows per repacked group: two registers of 4 */
#define RN_ABLOCK 40 /* bytes of one activation block */
#define RN_INLINE static inline __attribute__((always_inline))

enum { RN_Q4_0, RN_Q5_0, RN_Q8_0, RN_IQ4_NL };

RN_INLINE size_t rn_xsize(int kind) { return kind == RN_Q8_0 ? 34 : kind == RN_Q5_0 ? 22 : 18; }

/* ---- load-time repacking and activations ---- */

static inline void rn_pack_q4_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_0(src, stride, dst, n, RN_ROWS);
}

static inline void rn_pack_q5_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_0(src, stride, dst, n, RN_ROWS);
}

static inline void rn_pack_q8_0(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q8_0(src, stride, dst, n, RN_ROWS, 0);
}

static inline size_t rn_act_size(int64_t n) { return (size_t)(n / 32) * RN_ABLOCK; }

static inline void rn_act(const float *src, uint8_t *dst, int64_t n, int off) {
    for (int64_t b = 0; b < n / 32; b++, dst += RN_ABLOCK) {
        int sum;
        float d = neon_quantize_q8_block(src + 32 * b, (int8_t *)dst, &sum, true);
        d = quant_f16(quant_to_f16(d)); /* the value a Q8_0 block stores */
        /* unsigned arithmetic: a NaN activation makes `sum` garbage, which must wrap */
        int32_t start = (int32_t)(0u - (uint32_t)off * (uint32_t)sum);
        memcpy(dst + 32, &d, 4);
        memcpy(dst + 36, &start, 4);
    }
}

static inline void rn_act_q4_0(const float *src, void *dst, int64_t n) { rn_act(src, dst, n, 8); }
static inline void rn_act_q5_0(const float *src, void *dst, int64_t n) {
    rn_act(src, dst, n, 16);
}
static inline void rn_act_signed(const float *src, void *dst, int64_t n) {
    rn_act(src, dst, n, 0);
}

/* ---- weights ---- */

/* Elements 4g..4g+3 of the 8 rows of block q (quants after the scales) as signed bytes: w[0]
 * rows 0-3, w[1] rows 4-7. g (0..7) is a constant after inlining. For the 4-bit kinds pieces
 * 0-3 hold elements 4g.. in their low nibbles and 16 + 4g.. in their high ones. */
RN_INLINE void rn_piece(int kind, const uint8_t *q, int g, int8x16_t levels, int8x16_t w[2]) {
    if (kind == RN_Q8_0) {
        w[0] = vld1q_s8((const int8_t *)q + 32 * g);
        w[1] = vld1q_s8((const int8_t *)q + 32 * g + 16);
        return;
    }
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const uint8x16_t v = vld1q_u8(q + 32 * (g & 3) + 16 * h);
        uint8x16_t u = g < 4 ? vandq_u8(v, m4) : vshrq_n_u8(v, 4);
        if (kind == RN_Q5_0) {
            /* fifth bits: bit g' of the fifth piece's byte for element 4g' + k, bit 4 + g' for
             * 16 + 4g' + k; a shift by a vector count (negative: right) brings it to bit 4 */
            const uint8x16_t hb = vld1q_u8(q + 128 + 16 * h);
            const int8x16_t sh = vdupq_n_s8((int8_t)(4 - g));
            u = vorrq_u8(u, vandq_u8(vshlq_u8(hb, sh), vdupq_n_u8(0x10)));
        }
        w[h] = kind == RN_IQ4_NL ? vqtbl1q_s8(levels, u) : vreinterpretq_s8_u8(u);
    }
}

RN_INLINE int8x16_t rn_levels(int kind) {
    return kind == RN_IQ4_NL ? vld1q_s8(quant_iq4_levels) : vdupq_n_s8(0);
}

/* The 8 rows' scales of a block column: rows 0-3 and 4-7. */
RN_INLINE void rn_dx(const uint8_t *xb, float32x4_t dx[2]) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)xb));
    dx[0] = vcvt_f32_f16(vget_low_f16(h));
    dx[1] = vcvt_high_f32_f16(h);
}

RN_INLINE float rn_load_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}

/* LD1 of 4 registers from *p, advancing *p past them: one instruction in its post-increment
 * form. gcc 12 does not form that from vld1q_s8_x4: it computes an address register per load,
 * which in a streaming loop costs as many instructions as the loads. */
RN_INLINE int8x16x4_t rn_ld1x4(const uint8_t **p) {
    int8x16x4_t v;
    __asm__("ld1 {%S0.16b - %V0.16b}, [%1], #64"
            : "=w"(v), "+r"(*p)
            : "m"(*(const uint8_t(*)[64]) * p));
    return v;
}

/* 32 bytes from *p into two registers of any numbers (LDP, post-increment): where the two are
 * used apart, an LD1 pair's consecutive registers cost a move each. */
RN_INLINE int8x16x2_t rn_ld1x2(const uint8_t **p) {
    int8x16_t a, b;
    __asm__("ldp %q0, %q1, [%2], #32"
            : "=w"(a), "=w"(b), "+r"(*p)
            : "m"(*(const uint8_t(*)[32]) * p));
    return (int8x16x2_t){{a, b}};
}

RN_INLINE float32x2_t rn_ld1_f32x2(const uint8_t **p) {
    float32x2_t v;
    __asm__("ldr %d0, [%1], #8" : "=w"(v), "+r"(*p) : "m"(*(const uint8_t(*)[8]) * p));
    return v;
}

/* [v(t0), v(t1), v(t0), v(t1)] for the 32-bit values at t0 and t1 (4-byte aligned): the order
 * of an SMMLA tile's activation rows, built in three instructions. */
RN_INLINE int32x4_t rn_pair_s32(const uint8_t *t0, const uint8_t *t1) {
    int32x2_t v = vld1_dup_s32((const int32_t *)t0);
    v = vld1_lane_s32((const int32_t *)t1, v, 1);
    return vcombine_s32(v, v);
}

#endif
