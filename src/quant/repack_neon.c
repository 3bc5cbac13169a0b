/*
 * Q4_0, Q5_0, Q8_0 and IQ4_NL weights repacked 8 rows at a time, NEON with SDOT: the matmul
 * kernels for decode (one activation row, streaming the group) and prefill (up to 4 activation
 * rows share each unpacked weight register) on Arm CPUs without I8MM. Layout, activation rows
 * and the kernel itself: repack_neon.h.
 */
#include "quant/repack_neon.h"

/* ---- decode: one activation row ----
 *
 * A matrix-vector product streams every weight once, so what the kernel spends per block
 * column besides its 16 SDOTs is what decides its instruction count: the column is read by a
 * walking pointer in LD1s of four registers (64 bytes, one instruction), the activation block
 * in one LD1 of two and one load of its (dy, start) pair, and both halves of the group's
 * accumulators start from that pair's start value (zero for the signed kinds) without a
 * separate load. The arithmetic per block is rn_sdot_block's: the same int32 sums and
 * acc = fma(acc, float(isum), dx * dy). */

/* Register h (0..3) of a 64-byte run of 4-bit pieces as signed bytes: low nibbles (hi 0) or
 * high (hi 1), Q5_0's fifth bit of logical piece g from fifth-bit register f at bit 4. */
RN_INLINE int8x16_t rn_nibbles(int kind, uint8x16_t v, int hi, int g, uint8x16_t f,
                               int8x16_t levels) {
    uint8x16_t u = hi ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0F));
    if (kind == RN_Q5_0) {
        const int8x16_t sh = vdupq_n_s8((int8_t)(4 - g));
        u = vorrq_u8(u, vandq_u8(vshlq_u8(f, sh), vdupq_n_u8(0x10)));
    }
    return kind == RN_IQ4_NL ? vqtbl1q_s8(levels, u) : vreinterpretq_s8_u8(u);
}

RN_INLINE uint8x16x4_t rn_u8x4(int8x16x4_t v) {
    uint8x16x4_t u;
    for (int i = 0; i < 4; i++) u.val[i] = vreinterpretq_u8_s8(v.val[i]);
    return u;
}

/* Pieces g (rows 0-3 in w0, 4-7 in w1) against lane L of activation register A. */
#define RN_DEC_SDOT(w0, w1, A, L)                                                              \
    do {                                                                                       \
        s0 = vdotq_laneq_s32(s0, (w0), a.val[A], (L));                                         \
        s1 = vdotq_laneq_s32(s1, (w1), a.val[A], (L));                                         \
    } while (0)

/* 4-bit pieces g and g + 1 (one 64-byte run v, g even) of the low and high nibbles. */
#define RN_DEC_NIBBLES(v, g)                                                                   \
    do {                                                                                       \
        RN_DEC_SDOT(rn_nibbles(kind, v.val[0], 0, g, f.val[0], levels),                        \
                    rn_nibbles(kind, v.val[1], 0, g, f.val[1], levels), 0, g);                 \
        RN_DEC_SDOT(rn_nibbles(kind, v.val[2], 0, g + 1, f.val[0], levels),                    \
                    rn_nibbles(kind, v.val[3], 0, g + 1, f.val[1], levels), 0, g + 1);         \
        RN_DEC_SDOT(rn_nibbles(kind, v.val[0], 1, g + 4, f.val[0], levels),                    \
                    rn_nibbles(kind, v.val[1], 1, g + 4, f.val[1], levels), 1, g);             \
        RN_DEC_SDOT(rn_nibbles(kind, v.val[2], 1, g + 5, f.val[0], levels),                    \
                    rn_nibbles(kind, v.val[3], 1, g + 5, f.val[1], levels), 1, g + 1);         \
    } while (0)

/* One block column of 8 rows at *xp against the activation block at *yp, both pointers
 * advanced past it (each load moves its pointer, so the loads take post-increment forms). */
RN_INLINE void rn_decode_block(int kind, float32x4_t acc[2], const uint8_t **xp,
                               const uint8_t **yp, int8x16_t levels) {
    const uint8_t *x = *xp, *y = *yp;
    const float16x8_t hx = vreinterpretq_f16_u8(vld1q_u8(x));
    x += 2 * RN_ROWS;
    const int8x16x2_t a = rn_ld1x2(&y);
    const float32x2_t ds = rn_ld1_f32x2(&y); /* dy, start (its bits) */
    *yp = y;
    int32x4_t s0 = kind == RN_Q8_0 || kind == RN_IQ4_NL
                       ? vdupq_n_s32(0)
                       : vdupq_lane_s32(vreinterpret_s32_f32(ds), 1);
    int32x4_t s1 = s0;
    if (kind == RN_Q8_0) {
#pragma GCC unroll 2
        for (int A = 0; A < 2; A++) {
            int8x16x4_t v = rn_ld1x4(&x);
            RN_DEC_SDOT(v.val[0], v.val[1], A, 0);
            RN_DEC_SDOT(v.val[2], v.val[3], A, 1);
            v = rn_ld1x4(&x);
            RN_DEC_SDOT(v.val[0], v.val[1], A, 2);
            RN_DEC_SDOT(v.val[2], v.val[3], A, 3);
        }
    } else {
        const uint8x16x4_t v = rn_u8x4(rn_ld1x4(&x)), u = rn_u8x4(rn_ld1x4(&x));
        uint8x16x2_t f = {{vdupq_n_u8(0), vdupq_n_u8(0)}};
        if (kind == RN_Q5_0) {
            const int8x16x2_t t = rn_ld1x2(&x);
            f.val[0] = vreinterpretq_u8_s8(t.val[0]);
            f.val[1] = vreinterpretq_u8_s8(t.val[1]);
        }
        RN_DEC_NIBBLES(v, 0);
        RN_DEC_NIBBLES(u, 2);
    }
    *xp = x;
    const float32x4_t dx0 = vcvt_f32_f16(vget_low_f16(hx)), dx1 = vcvt_high_f32_f16(hx);
    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(s0), vmulq_lane_f32(dx0, ds, 0));
    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(s1), vmulq_lane_f32(dx1, ds, 0));
}

/* One group of 8 rows (x) against one activation row (y): out[0..8). Two blocks per pass
 * halve the loop's own instructions. */
RN_INLINE void rn_decode_group(int kind, int64_t n, float *out, const uint8_t *x,
                               const uint8_t *y) {
    const int8x16_t levels = rn_levels(kind);
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t nb = n / 32;
    if (kind == RN_Q8_0) /* its blocks have no unpacking to interleave: two per pass */
        for (; nb >= 2; nb -= 2) {
            rn_decode_block(kind, acc, &x, &y, levels);
            rn_decode_block(kind, acc, &x, &y, levels);
        }
    for (; nb > 0; nb--) rn_decode_block(kind, acc, &x, &y, levels);
    vst1q_f32(out, acc[0]);
    vst1q_f32(out + 4, acc[1]);
}

/* ---- Q8_0 prefill: 2..4 activation rows ----
 *
 * Q8_0's pieces need no unpacking, so what rn_sdot_group spends besides the SDOTs is loads and
 * the registers they take: here each 32-byte piece (rows 0-3 and 4-7) is one post-increment
 * LD1 serving 2 x RY SDOTs, beside RY x 2 float accumulators, RY x 2 sums and RY x 2 activation
 * registers (24 of the 32 at RY 4), so nothing spills. The 4-bit kinds keep rn_sdot_group: with
 * their unpacking in flight the same structure spills and retires more. */

/* One block column of 8 rows at *xp against RY activation rows' blocks at y[c], all advanced. */
RN_INLINE void rn_prefill_q8_block(int RY, float32x4_t acc[4][2], const uint8_t **xp,
                                   const uint8_t *y[4]) {
    const uint8_t *x = *xp;
    const float16x8_t hx = vreinterpretq_f16_u8(vld1q_u8(x));
    x += 2 * RN_ROWS;
    int8x16x2_t a[4];
    int32x4_t s[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        a[c] = rn_ld1x2(&y[c]);
        s[c][0] = s[c][1] = vdupq_n_s32(0);
    }
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        const int8x16x2_t w = rn_ld1x2(&x);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            s[c][0] = vdotq_laneq_s32(s[c][0], w.val[0], a[c].val[g / 4], g % 4);
            s[c][1] = vdotq_laneq_s32(s[c][1], w.val[1], a[c].val[g / 4], g % 4);
        }
    }
    *xp = x;
    const float32x4_t dx0 = vcvt_f32_f16(vget_low_f16(hx)), dx1 = vcvt_high_f32_f16(hx);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const float32x2_t ds = rn_ld1_f32x2(&y[c]); /* dy, and the start value, 0 for Q8_0 */
        acc[c][0] = vfmaq_f32(acc[c][0], vcvtq_f32_s32(s[c][0]), vmulq_lane_f32(dx0, ds, 0));
        acc[c][1] = vfmaq_f32(acc[c][1], vcvtq_f32_s32(s[c][1]), vmulq_lane_f32(dx1, ds, 0));
    }
}

/* One group of 8 Q8_0 rows (x) against RY (2..4) activation rows (y, ys apart). */
RN_INLINE void rn_prefill_q8_group(int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                                   const uint8_t *y, size_t ys) {
    float32x4_t acc[4][2];
    const uint8_t *yc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        acc[c][0] = acc[c][1] = vdupq_n_f32(0);
        yc[c] = y + c * ys;
    }
    for (int64_t nb = n / 32; nb > 0; nb--) rn_prefill_q8_block(RY, acc, &x, yc);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        vst1q_f32(out + c * os, acc[c][0]);
        vst1q_f32(out + c * os + 4, acc[c][1]);
    }
}

/* The group kernel REPACK_DEFINE_DOT instantiates: decode's own loop for one activation row;
 * for 2..4, Q8_0's own and rn_sdot_group (repack_neon.h) for the others. */
RN_INLINE void rn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                        const uint8_t *y, size_t ys) {
    if (RY == 1) rn_decode_group(kind, n, out, x, y);
    else if (kind == RN_Q8_0) rn_prefill_q8_group(RY, n, out, os, x, y, ys);
    else rn_sdot_group(kind, RY, n, out, os, x, y, ys);
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
