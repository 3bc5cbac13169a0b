/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, NEON with I8MM: prefill as
 * 2 x 2 tiles of SMMLA (vmmlaq_s32: a 2 x 8 block of weight quants times a 2 x 8 block of
 * activation quants into 4 int32 sums), twice the multiply-adds of SDOT per instruction. Same
 * repacked layout and activation rows as the SDOT kernels (repack_neon.h); a single activation
 * row (decode, and the last of an odd count) goes to the SDOT kernel, where half of every
 * SMMLA tile would be wasted. Compiled with +i8mm (the Makefile's rule for *_i8mm_neon.c) and
 * chosen only on CPUs that report I8MM.
 *
 * Registers: an SMMLA operand holds 8 consecutive quants of 2 rows. Two neighbouring pieces g,
 * g + 1 of the layout (elements 4g.. and 4g + 4.. of 4 rows, one row per int32 lane) zipped by
 * 32-bit lanes give rows (0, 1) and, from the second zip, rows (2, 3), elements 4g..4g + 7; the
 * activation side is the 64-bit zip of two rows' quants. A tile's sums come out as
 * [r0 t0, r0 t1, r1 t0, r1 t1] and are scaled by [dx0 dy0, dx0 dy1, dx1 dy0, dx1 dy1], the same
 * products the SDOT kernel forms, and put back in row order when stored.
 */
#include "quant/repack_neon.h"

/* One block column of 8 rows against RY (2..4) activation rows, in pairs (the pair of an odd
 * last row repeats it; that result is not stored). acc[rp][p]: rows 2rp, 2rp + 1 x rows 2p,
 * 2p + 1 of the activations. */
RN_INLINE void rm_block(int kind, int RY, float32x4_t acc[4][2], const uint8_t *xb,
                        const uint8_t *y, size_t ys, int8x16_t levels) {
    const int np = (RY + 1) / 2;
    const uint8_t *q = xb + 2 * RN_ROWS;
    int8x16_t b[2][4];
    int32x4_t s[4][2];
    float32x4_t dyy[2];
#pragma GCC unroll 2
    for (int p = 0; p < np; p++) {
        const uint8_t *t0 = y + 2 * p * ys, *t1 = 2 * p + 1 < RY ? t0 + ys : t0;
        const int64x2_t a00 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t0)),
                        a01 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t0 + 16)),
                        a10 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t1)),
                        a11 = vreinterpretq_s64_s8(vld1q_s8((const int8_t *)t1 + 16));
        b[p][0] = vreinterpretq_s8_s64(vzip1q_s64(a00, a10)); /* elements 0..7 */
        b[p][1] = vreinterpretq_s8_s64(vzip2q_s64(a00, a10)); /* 8..15 */
        b[p][2] = vreinterpretq_s8_s64(vzip1q_s64(a01, a11)); /* 16..23 */
        b[p][3] = vreinterpretq_s8_s64(vzip2q_s64(a01, a11)); /* 24..31 */
        const int32x4_t st = rn_pair_s32(t0 + 36, t1 + 36);
        dyy[p] = vreinterpretq_f32_s32(rn_pair_s32(t0 + 32, t1 + 32));
#pragma GCC unroll 4
        for (int rp = 0; rp < 4; rp++) s[rp][p] = st;
    }
#pragma GCC unroll 4
    for (int kc = 0; kc < 4; kc++) { /* elements 8kc..8kc+7: pieces 2kc, 2kc + 1 */
        int8x16_t w0[2], w1[2];
        rn_piece(kind, q, 2 * kc, levels, w0);
        rn_piece(kind, q, 2 * kc + 1, levels, w1);
        int8x16_t m[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const int32x4_t u0 = vreinterpretq_s32_s8(w0[h]), u1 = vreinterpretq_s32_s8(w1[h]);
            m[2 * h] = vreinterpretq_s8_s32(vzip1q_s32(u0, u1));
            m[2 * h + 1] = vreinterpretq_s8_s32(vzip2q_s32(u0, u1));
        }
#pragma GCC unroll 4
        for (int rp = 0; rp < 4; rp++)
#pragma GCC unroll 2
            for (int p = 0; p < np; p++) s[rp][p] = vmmlaq_s32(s[rp][p], m[rp], b[p][kc]);
    }
    float32x4_t dx[2];
    rn_dx(xb, dx);
#pragma GCC unroll 4
    for (int rp = 0; rp < 4; rp++) {
        /* [dx 2rp, dx 2rp, dx 2rp+1, dx 2rp+1] */
        const float32x4_t dxx = rp % 2 ? vzip2q_f32(dx[rp / 2], dx[rp / 2])
                                       : vzip1q_f32(dx[rp / 2], dx[rp / 2]);
#pragma GCC unroll 2
        for (int p = 0; p < np; p++)
            acc[rp][p] = vfmaq_f32(acc[rp][p], vcvtq_f32_s32(s[rp][p]), vmulq_f32(dxx, dyy[p]));
    }
}

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows. */
RN_INLINE void rm_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    if (RY == 1) {
        rn_sdot_group(kind, 1, n, out, os, x, y, ys);
        return;
    }
    const int np = (RY + 1) / 2;
    const int8x16_t levels = rn_levels(kind);
    float32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int rp = 0; rp < 4; rp++)
#pragma GCC unroll 2
        for (int p = 0; p < np; p++) acc[rp][p] = vdupq_n_f32(0);
    const size_t xb = RN_ROWS * rn_xsize(kind);
    for (int64_t b = 0; b < n / 32; b++)
        rm_block(kind, RY, acc, x + b * xb, y + b * RN_ABLOCK, ys, levels);
#pragma GCC unroll 2
    for (int p = 0; p < np; p++) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) { /* rows 4h..4h+3 */
            const float32x4_t a = acc[2 * h][p], c = acc[2 * h + 1][p];
            vst1q_f32(out + 2 * p * os + 4 * h, vuzp1q_f32(a, c));
            if (2 * p + 1 < RY) vst1q_f32(out + (2 * p + 1) * os + 4 * h, vuzp2q_f32(a, c));
        }
    }
}

#define RM_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rm_group, KIND, RN_ROWS)

RM_DEFINE_DOT(rm_dot_q4_0, RN_Q4_0)
RM_DEFINE_DOT(rm_dot_q5_0, RN_Q5_0)
RM_DEFINE_DOT(rm_dot_q8_0, RN_Q8_0)
RM_DEFINE_DOT(rm_dot_iq4_nl, RN_IQ4_NL)

const quant_repack_impl quant_q4_0_repack_i8mm = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                 rn_act_q4_0, rm_dot_q4_0};
const quant_repack_impl quant_q5_0_repack_i8mm = {RN_ROWS, rn_pack_q5_0, rn_act_size,
                                                 rn_act_q5_0, rm_dot_q5_0};
const quant_repack_impl quant_q8_0_repack_i8mm = {RN_ROWS, rn_pack_q8_0, rn_act_size,
                                                 rn_act_signed, rm_dot_q8_0};
const quant_repack_impl quant_iq4_nl_repack_i8mm = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                   rn_act_signed, rm_dot_iq4_nl};
