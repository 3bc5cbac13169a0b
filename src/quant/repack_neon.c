/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, NEON with SDOT: the matmul
 * kernels for decode (one activation row, streaming the group) and prefill (up to 4 activation
 * rows share each unpacked weight register) on Arm CPUs without I8MM, and decode on those with
 * it. Layout and activation rows: repack_neon.h.
 *
 * Both kernels read the weights and activations through walking pointers with post-increment
 * loads (repack_neon.h's rn_ld1x4, rn_ld1x2, rn_ld1_f32x2), so no address is computed per load,
 * and the arithmetic per block is the same whatever the number of rows: exact int32 sums
 * starting from the block's start value, then acc = fma(acc, float(isum), dx * dy).
 *
 * gcc's scheduling before register allocation hoists every load of a block to its top, which
 * at 4 activation rows runs out of the 32 vector registers and spills; without it the
 * prefill kernel retires 4-10% fewer instructions and none spills.
 */
#pragma GCC optimize("no-schedule-insns")
#include "quant/repack_neon.h"

/* A 16-byte register of 4-bit pieces (4 rows x 4 bytes) as signed bytes: the low nibbles
 * (hi 0) or the high ones (hi 1); Q5_0's fifth bit of logical piece g (0..7) from fifth-bit
 * register f brought to bit 4; IQ4_NL's nibbles looked up as their levels. */
RN_INLINE int8x16_t rn_nibbles(int kind, uint8x16_t v, int hi, int g, uint8x16_t f,
                               int8x16_t levels) {
    uint8x16_t u = hi ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0F));
    if (kind == RN_Q5_0) {
        const int8x16_t sh = vdupq_n_s8((int8_t)(4 - g));
        u = vorrq_u8(u, vandq_u8(vshlq_u8(f, sh), vdupq_n_u8(0x10)));
    }
    return kind == RN_IQ4_NL ? vqtbl1q_s8(levels, u) : vreinterpretq_s8_u8(u);
}

RN_INLINE uint8x16_t rn_u8(int8x16_t v) { return vreinterpretq_u8_s8(v); }

/* The block's start value in both halves' sums: -off * sum(a), or 0 for the signed kinds. */
RN_INLINE int32x4_t rn_start(int kind, float32x2_t ds) {
    return kind == RN_Q8_0 || kind == RN_IQ4_NL ? vdupq_n_s32(0)
                                                : vdupq_lane_s32(vreinterpret_s32_f32(ds), 1);
}

/* ---- decode: one activation row ----
 *
 * A matrix-vector product streams every weight once, so besides its 16 SDOTs a block column
 * should cost little more than its loads: the quants in LD1s of four registers (64 bytes, one
 * instruction), the activation block in one LDP and one load of its (dy, start) pair. */

/* Pieces of rows 0-3 (w0) and 4-7 (w1) against lane L of activation register A. */
#define RN_DEC_SDOT(w0, w1, A, L)                                                              \
    do {                                                                                       \
        s0 = vdotq_laneq_s32(s0, (w0), a.val[A], (L));                                         \
        s1 = vdotq_laneq_s32(s1, (w1), a.val[A], (L));                                         \
    } while (0)

/* Physical 4-bit pieces p and p + 1 (a 64-byte run v, p even): low nibbles are elements
 * 4p.. (register 0, lane p), high nibbles 16 + 4p.. (register 1, lane p). */
#define RN_DEC_NIBBLES(v, p)                                                                   \
    do {                                                                                       \
        RN_DEC_SDOT(rn_nibbles(kind, rn_u8(v.val[0]), 0, p, f0, levels),                       \
                    rn_nibbles(kind, rn_u8(v.val[1]), 0, p, f1, levels), 0, p);                \
        RN_DEC_SDOT(rn_nibbles(kind, rn_u8(v.val[2]), 0, p + 1, f0, levels),                   \
                    rn_nibbles(kind, rn_u8(v.val[3]), 0, p + 1, f1, levels), 0, p + 1);        \
        RN_DEC_SDOT(rn_nibbles(kind, rn_u8(v.val[0]), 1, p + 4, f0, levels),                   \
                    rn_nibbles(kind, rn_u8(v.val[1]), 1, p + 4, f1, levels), 1, p);            \
        RN_DEC_SDOT(rn_nibbles(kind, rn_u8(v.val[2]), 1, p + 5, f0, levels),                   \
                    rn_nibbles(kind, rn_u8(v.val[3]), 1, p + 5, f1, levels), 1, p + 1);        \
    } while (0)

/* One block column of 8 rows at *xp against the activation block at *yp; both advanced. */
RN_INLINE void rn_decode_block(int kind, float32x4_t acc[2], const uint8_t **xp,
                               const uint8_t **yp, int8x16_t levels) {
    const uint8_t *x = *xp;
    const float16x8_t hx = vreinterpretq_f16_u8(vld1q_u8(x));
    x += 2 * RN_ROWS;
    const int8x16x2_t a = rn_ld1x2(yp);
    const float32x2_t ds = rn_ld1_f32x2(yp); /* dy, and the start value's bits */
    int32x4_t s0 = rn_start(kind, ds), s1 = s0;
    if (kind == RN_Q8_0) {
#pragma GCC unroll 2
        for (int A = 0; A < 2; A++) { /* pieces 4A..4A + 3 */
            int8x16x4_t v = rn_ld1x4(&x);
            RN_DEC_SDOT(v.val[0], v.val[1], A, 0);
            RN_DEC_SDOT(v.val[2], v.val[3], A, 1);
            v = rn_ld1x4(&x);
            RN_DEC_SDOT(v.val[0], v.val[1], A, 2);
            RN_DEC_SDOT(v.val[2], v.val[3], A, 3);
        }
    } else {
        const int8x16x4_t v = rn_ld1x4(&x), u = rn_ld1x4(&x);
        uint8x16_t f0 = vdupq_n_u8(0), f1 = vdupq_n_u8(0);
        if (kind == RN_Q5_0) {
            const int8x16x2_t f = rn_ld1x2(&x);
            f0 = rn_u8(f.val[0]);
            f1 = rn_u8(f.val[1]);
        }
        RN_DEC_NIBBLES(v, 0);
        RN_DEC_NIBBLES(u, 2);
    }
    *xp = x;
    const float32x4_t dx0 = vcvt_f32_f16(vget_low_f16(hx)), dx1 = vcvt_high_f32_f16(hx);
    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(s0), vmulq_lane_f32(dx0, ds, 0));
    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(s1), vmulq_lane_f32(dx1, ds, 0));
}

/* One group of 8 rows (x) against one activation row (y): out[0..8). */
RN_INLINE void rn_decode_group(int kind, int64_t n, float *out, const uint8_t *x,
                               const uint8_t *y) {
    const int8x16_t levels = rn_levels(kind);
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t nb = n / 32;
    if (kind == RN_Q8_0) /* no unpacking to interleave: two blocks per pass halve the loop's */
        for (; nb >= 2; nb -= 2) {
            rn_decode_block(kind, acc, &x, &y, levels);
            rn_decode_block(kind, acc, &x, &y, levels);
        }
    for (; nb > 0; nb--) rn_decode_block(kind, acc, &x, &y, levels);
    vst1q_f32(out, acc[0]);
    vst1q_f32(out + 4, acc[1]);
}

/* ---- prefill: 2..4 activation rows ----
 *
 * Live across a block: RY x 2 float accumulators, RY x 2 sums and RY x 2 activation registers
 * (24 of the 32 at RY 4). So the weights come one 32-byte piece (rows 0-3 and 4-7) at a time,
 * unpacked as they are used, and each unpacked register serves RY rows' SDOTs. */

/* Pieces of rows 0-3 (w0) and 4-7 (w1) against lane L of activation register A of every row. */
#define RN_PRE_SDOT(w0, w1, A, L)                                                              \
    do {                                                                                       \
        const int8x16_t w0_ = (w0), w1_ = (w1);                                                \
        _Pragma("GCC unroll 4")                                                                \
        for (int c = 0; c < RY; c++) {                                                         \
            s[c][0] = vdotq_laneq_s32(s[c][0], w0_, a[c].val[A], (L));                         \
            s[c][1] = vdotq_laneq_s32(s[c][1], w1_, a[c].val[A], (L));                         \
        }                                                                                      \
    } while (0)

/* Physical 4-bit piece p: its low nibbles (lane p of register 0), then its high ones. */
#define RN_PRE_NIBBLES(p)                                                                      \
    do {                                                                                       \
        const int8x16x2_t r_ = rn_ld1x2(&x);                                                   \
        const uint8x16_t v0_ = rn_u8(r_.val[0]), v1_ = rn_u8(r_.val[1]);                       \
        RN_PRE_SDOT(rn_nibbles(kind, v0_, 0, p, f0, levels),                                   \
                    rn_nibbles(kind, v1_, 0, p, f1, levels), 0, p);                            \
        RN_PRE_SDOT(rn_nibbles(kind, v0_, 1, p + 4, f0, levels),                               \
                    rn_nibbles(kind, v1_, 1, p + 4, f1, levels), 1, p);                        \
    } while (0)

/* One block column of 8 rows at *xp against RY activation rows' blocks at y[c]; all advanced. */
RN_INLINE void rn_prefill_block(int kind, int RY, float32x4_t acc[4][2], const uint8_t **xp,
                                const uint8_t *y[4], int8x16_t levels) {
    const uint8_t *x = *xp;
    const float16x8_t hx = vreinterpretq_f16_u8(vld1q_u8(x));
    x += 2 * RN_ROWS;
    int8x16x2_t a[4];
    int32x4_t s[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        a[c] = rn_ld1x2(&y[c]);
        s[c][0] = rn_start(kind, vld1_f32((const float *)y[c])); /* (dy, start) follow qs */
        s[c][1] = s[c][0];
    }
    if (kind == RN_Q8_0) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const int8x16x2_t w = rn_ld1x2(&x);
            RN_PRE_SDOT(w.val[0], w.val[1], g / 4, g % 4);
        }
    } else {
        uint8x16_t f0 = vdupq_n_u8(0), f1 = vdupq_n_u8(0);
        if (kind == RN_Q5_0) { /* the fifth bits follow the 4 pieces */
            f0 = vld1q_u8(x + 128);
            f1 = vld1q_u8(x + 144);
        }
        RN_PRE_NIBBLES(0);
        RN_PRE_NIBBLES(1);
        RN_PRE_NIBBLES(2);
        RN_PRE_NIBBLES(3);
        if (kind == RN_Q5_0) x += 32;
    }
    *xp = x;
    const float32x4_t dx0 = vcvt_f32_f16(vget_low_f16(hx)), dx1 = vcvt_high_f32_f16(hx);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const float32x2_t ds = rn_ld1_f32x2(&y[c]);
        acc[c][0] = vfmaq_f32(acc[c][0], vcvtq_f32_s32(s[c][0]), vmulq_lane_f32(dx0, ds, 0));
        acc[c][1] = vfmaq_f32(acc[c][1], vcvtq_f32_s32(s[c][1]), vmulq_lane_f32(dx1, ds, 0));
    }
}

/* One group of 8 rows (x) against RY (2..4) activation rows (y, ys apart). */
RN_INLINE void rn_prefill_group(int kind, int RY, int64_t n, float *out, size_t os,
                                const uint8_t *x, const uint8_t *y, size_t ys) {
    const int8x16_t levels = rn_levels(kind);
    float32x4_t acc[4][2];
    const uint8_t *yc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        acc[c][0] = acc[c][1] = vdupq_n_f32(0);
        yc[c] = y + c * ys;
    }
    for (int64_t nb = n / 32; nb > 0; nb--) rn_prefill_block(kind, RY, acc, &x, yc, levels);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        vst1q_f32(out + c * os, acc[c][0]);
        vst1q_f32(out + c * os + 4, acc[c][1]);
    }
}

/* The group kernel REPACK_DEFINE_DOT instantiates for RY (1..4) activation rows. */
RN_INLINE void rn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    if (RY == 1) rn_decode_group(kind, n, out, x, y);
    else rn_prefill_group(kind, RY, n, out, os, x, y, ys);
}

#define RN_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rn_group, KIND, RN_ROWS)

RN_DEFINE_DOT(rn_dot_q4_0, RN_Q4_0)
RN_DEFINE_DOT(rn_dot_q5_0, RN_Q5_0)
RN_DEFINE_DOT(rn_dot_q8_0, RN_Q8_0)
RN_DEFINE_DOT(rn_dot_iq4_nl, RN_IQ4_NL)

const quant_repack_impl quant_q4_0_repack_neon = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                 rn_act_q4_0, rn_dot_q4_0};
const quant_repack_impl quant_q5_0_repack_neon = {RN_ROWS, rn_pack_q5_0, rn_act_size,
                                                 rn_act_q5_0, rn_dot_q5_0};
const quant_repack_impl quant_q8_0_repack_neon = {RN_ROWS, rn_pack_q8_0, rn_act_size,
                                                 rn_act_signed, rn_dot_q8_0};
const quant_repack_impl quant_iq4_nl_repack_neon = {RN_ROWS, rn_pack_q4_0, rn_act_size,
                                                   rn_act_signed, rn_dot_iq4_nl};
