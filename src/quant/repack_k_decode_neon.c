/*
 * Q4_K, Q5_K, Q6_K and IQ4_XS repacked 8 rows at a time (repack_k_neon.c: layouts and
 * arithmetic), NEON with SDOT: decode, one activation row, the 8 rows in one pass.
 *
 * With one activation row the accumulators of both halves fit the registers, so these kernels
 * take all 8 rows at once: one LD1 of four registers brings 64 bytes of weights
 * (two pieces, both halves), every activation register is loaded once per super-block and
 * serves both halves, and a nibble register's low and high nibbles are both used from one load
 * (two sub-blocks of Q4_K / Q5_K, two halves of one sub-block of IQ4_XS). Their integer sums and
 * float steps are those of repack_k_neon.c's opening comment. The column is read in order by
 * post-increment loads.
 */
#include "quant/repack_k_neon.h"

RN_INLINE uint8x16x4_t rkn1_u8x4(int8x16x4_t v) {
    return (uint8x16x4_t){{vreinterpretq_u8_s8(v.val[0]), vreinterpretq_u8_s8(v.val[1]),
                           vreinterpretq_u8_s8(v.val[2]), vreinterpretq_u8_s8(v.val[3])}};
}

/* TBL indices: register b puts byte b of each int32 lane in the lane's low byte and zeros
 * above it (index 255 reads 0), one instruction per sub-block's scales. */
#define RKN1_BYTE(b)                                                                               \
    b, 255, 255, 255, b + 4, 255, 255, 255, b + 8, 255, 255, 255, b + 12, 255, 255, 255
static const uint8_t RKN1_BYTES[64]
    __attribute__((aligned(16))) = {RKN1_BYTE(0), RKN1_BYTE(1), RKN1_BYTE(2), RKN1_BYTE(3)};
#undef RKN1_BYTE

/* The float step of a super-block for both halves: acc += float(isum) * (d * dy) with the
 * rows' f16 d at xd. */
RN_INLINE void rkn1_fold(float32x4_t acc[2], const int32x4_t isum[2], uint8x16_t xd, float dy) {
    const float16x8_t d = vreinterpretq_f16_u8(xd);
    const float32x4_t d0 = vcvt_f32_f16(vget_low_f16(d)), d1 = vcvt_high_f32_f16(d);
    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(isum[0]), vmulq_n_f32(d0, dy));
    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(isum[1]), vmulq_n_f32(d1, dy));
}

/* Chunk c (sub-blocks 2c, 2c + 1) of the 8 rows against the activation quants a (sub-block
 * 2c in val[0..1], 2c + 1 in val[2..3]): isum[h] += scale * sum for both sub-blocks, the
 * rows' scales picked from sc[h] by TBL. */
RN_INLINE void rkn1_k4_chunk(int five, int c, int32x4_t isum[2], const uint8_t **xp, int8x16x4_t a,
                             const uint8x16_t sc[2][2], uint8x16x4_t bidx) {
    /* fifth bits: planes of sub-block 2c (val[0..1]) and 2c + 1 (val[2..3]), halves 0 and 1 */
    const uint8x16x4_t f = five ? rkn1_u8x4(rn_ld1x4(xp)) : (uint8x16x4_t){0};
    int32x4_t s[2][2]; /* [sub-block 2c + hi][half] */
    s[0][0] = s[0][1] = s[1][0] = s[1][1] = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) { /* pieces 2p and 2p + 1, both halves */
        const uint8x16x4_t w = rkn1_u8x4(rn_ld1x4(xp));
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const int g = 2 * p + i / 2, h = i % 2;
            s[0][h] =
                rkn1_dot(s[0][h], rkn1_k4_w(five, w.val[i], 0, g, f.val[h]), a.val[g / 4], g % 4);
            s[1][h] = rkn1_dot(s[1][h], rkn1_k4_w(five, w.val[i], 1, g, f.val[2 + h]),
                               a.val[2 + g / 4], g % 4);
        }
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 2
        for (int hi = 0; hi < 2; hi++) {
            const int j = 2 * c + hi;
            const uint8x16_t scj = vqtbl1q_u8(sc[h][j / 4], bidx.val[j % 4]);
            isum[h] = vmlaq_s32(isum[h], s[hi][h], vreinterpretq_s32_u8(scj));
        }
}

/* One Q4_K / Q5_K super-block column of the 8 rows at *xp against the activation block at yb;
 * *xp advanced past it. The column is read in order by post-increment loads: d, dmin and the
 * scale words, then per chunk (Q5_K's fifth-bit planes and) the nibble pieces. */
RN_INLINE void rkn1_k4_block(int five, float32x4_t acc[2], const uint8_t **xp, const uint8_t *yb,
                             uint8x16x4_t bidx) {
    /* d, dmin, then the rows' three scale words (rows 0-3, 4-7 each) */
    const uint8x16x4_t hd = rkn1_u8x4(rn_ld1x4(xp)), hs = rkn1_u8x4(rn_ld1x4(xp));
    uint8x16_t sc[2][2], mn[2][2];
    rkn_scales_of(hd.val[2], hs.val[0], hs.val[2], sc[0], mn[0]);
    rkn_scales_of(hd.val[3], hs.val[1], hs.val[3], sc[1], mn[1]);
    int32x4_t msum[2], isum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    const int8x16_t hl = rkn_msum_bytes(yb);
    msum[0] = rkn_msum_half(mn[0], hl);
    msum[1] = rkn_msum_half(mn[1], hl);
    const uint8_t *ya = yb + 4; /* the activation quants */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        rkn1_k4_chunk(five, c, isum, xp, rn_ld1x4(&ya), sc, bidx);
    const float dy = rn_load_f32(yb);
    rkn1_fold(acc, isum, hd.val[0], dy);
    const float16x8_t m = vreinterpretq_f16_u8(hd.val[1]);
    const float32x4_t m0 = vcvt_f32_f16(vget_low_f16(m)), m1 = vcvt_high_f32_f16(m);
    acc[0] = vfmsq_f32(acc[0], vcvtq_f32_s32(msum[0]), vmulq_n_f32(m0, dy));
    acc[1] = vfmsq_f32(acc[1], vcvtq_f32_s32(msum[1]), vmulq_n_f32(m1, dy));
}

/* Q6_K chunk k (sub-blocks 2k, 2k + 1) of the 8 rows against the activation quants a (2k in
 * val[0], 2k + 1 in val[1]). Each sum starts at -32 * bsum, from lanes 2l, 2l + 1 of nb. */
RN_INLINE void rkn1_q6_chunk(int k, int32x4_t isum[2], const uint8_t *xb, const uint8_t **cp,
                             int8x16x2_t a, int32x4_t nb, int l) {
    /* high-bit planes of sub-block 2k (val[0..1]) and 2k + 1 (val[2..3]), halves 0 and 1 */
    const uint8x16x4_t hb = rkn1_u8x4(rn_ld1x4(cp));
    /* nibble pieces as single registers (LDPs), which SLI may overwrite */
    uint8x16_t q[8];
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        const int8x16x2_t v = rn_ld1x2(cp);
        q[i] = vreinterpretq_u8_s8(v.val[0]);
        q[i + 1] = vreinterpretq_u8_s8(v.val[1]);
    }
    uint8x16_t t[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        rkn1_q6_planes(hb.val[i], t[i]);
    int32x4_t s[2][2]; /* [sub-block 2k + hi][half] */
    s[0][0] = s[0][1] = l ? vdupq_laneq_s32(nb, 2) : vdupq_laneq_s32(nb, 0);
    s[1][0] = s[1][1] = l ? vdupq_laneq_s32(nb, 3) : vdupq_laneq_s32(nb, 1);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const uint8x16_t v = q[2 * g + h];
            const uint8x16_t up = rkn1_q6_hi(v, t[2 + h], g);
            s[1][h] = rkn1_dot(s[1][h], vreinterpretq_s8_u8(up), a.val[1], g);
            const uint8x16_t lo = rkn1_q6_lo(v, t[h], g);
            s[0][h] = rkn1_dot(s[0][h], vreinterpretq_s8_u8(lo), a.val[0], g);
        }
    /* the rows' int8 scale pairs (2k, 2k + 1), row r at int16 lane r */
    const int16x8_t pr = vld1q_s16((const int16_t *)(xb + 16 + 16 * k));
    const int16x8_t sa = vshrq_n_s16(vshlq_n_s16(pr, 8), 8), sb = vshrq_n_s16(pr, 8);
    isum[0] = vmlaq_s32(isum[0], s[0][0], vmovl_s16(vget_low_s16(sa)));
    isum[1] = vmlaq_s32(isum[1], s[0][1], vmovl_high_s16(sa));
    isum[0] = vmlaq_s32(isum[0], s[1][0], vmovl_s16(vget_low_s16(sb)));
    isum[1] = vmlaq_s32(isum[1], s[1][1], vmovl_high_s16(sb));
}

/* One Q6_K super-block column of the 8 rows at xb against the activation block at yb; each
 * chunk (high-bit planes, then nibble pieces) read in order by post-increment loads. */
RN_INLINE void rkn1_q6_block(float32x4_t acc[2], const uint8_t *xb, const uint8_t *yb) {
    const uint8_t *cp = xb + 144; /* chunk 0 */
    const int16x8x2_t bs = vld1q_s16_x2((const int16_t *)(yb + 260));
    int32x4_t isum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
#pragma GCC unroll 4
    for (int kp = 0; kp < 4; kp++) { /* chunks 2kp, 2kp + 1: sub-blocks 4kp..4kp + 3 */
        const int16x8_t b8 = bs.val[kp / 2];
        const int32x4_t nb =
            kp % 2 ? vmull_high_n_s16(b8, -32) : vmull_n_s16(vget_low_s16(b8), -32);
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            const int k = 2 * kp + i;
            rkn1_q6_chunk(k, isum, xb, &cp, vld1q_s8_x2((const int8_t *)yb + 4 + 32 * k), nb, i);
        }
    }
    rkn1_fold(acc, isum, vld1q_u8(xb), rn_load_f32(yb));
}

/* ---- IQ4_XS ---- */

/* One half's IQ4_XS scales from its scales_l words sl and spread scales_h words sh
 * (rkn_xs_ls): byte k of sc[1] holds c_{2k + 1} = ls_{2k + 1} - 32 (-32..31), of sc[0]
 * c_{2k} - c_{2k + 1} (-63..63, the 32s cancel), as signed bytes; rkn1_xs_pair takes them so. */
RN_INLINE void rkn1_xs_scales(uint8x16_t sl, uint8x16_t sh, int8x16_t sc[2]) {
    uint8x16_t e, o;
    rkn_xs_ls(sl, sh, &e, &o);
    sc[0] = vreinterpretq_s8_u8(vsubq_u8(e, o));
    sc[1] = vreinterpretq_s8_u8(vsubq_u8(o, vdupq_n_u8(32)));
}

/* Half h's sum S[h] += one sub-block's quants (4 pieces, both halves, at *xp, advanced past
 * them) against its activation quants al (elements 0..15, the low nibbles') and ah (16..31,
 * the high nibbles'): each nibble register feeds both, its codes mapped to levels by TBL. */
RN_INLINE void rkn1_xs_sub(int32x4_t S[2], const uint8_t **xp, int8x16_t al, int8x16_t ah,
                           int8x16_t levels) {
#pragma GCC unroll 2
    for (int p = 0; p < 2; p++) { /* pieces 2p and 2p + 1, both halves */
        const uint8x16x4_t w = rkn1_u8x4(rn_ld1x4(xp));
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const int g = 2 * p + i / 2, h = i % 2;
            const int8x16_t lo = vqtbl1q_s8(levels, vandq_u8(w.val[i], vdupq_n_u8(0x0f)));
            const int8x16_t hi = vqtbl1q_s8(levels, vshrq_n_u8(w.val[i], 4));
            S[h] = rkn1_dot(rkn1_dot(S[h], lo, al, g), hi, ah, g);
        }
    }
}

/* Sub-blocks 2c and 2c + 1 of the 8 rows at *xp against their activation quants a:
 * isum[h] += c_{2c} s_{2c} + c_{2c + 1} s_{2c + 1}, as (c_{2c} - c_{2c + 1}) s_{2c} +
 * c_{2c + 1} (s_{2c} + s_{2c + 1}), so that one sum runs on through both sub-blocks instead of
 * a second being cleared; the integers are the same. */
RN_INLINE void rkn1_xs_pair(int c, int32x4_t isum[2], const uint8_t **xp, int8x16x4_t a,
                            const int8x16_t sc[2][2], int8x16_t levels) {
    int32x4_t S[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    rkn1_xs_sub(S, xp, a.val[0], a.val[1], levels);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
        isum[h] = vmlaq_s32(isum[h], S[h], rkn_sbyte(sc[h][0], c));
    rkn1_xs_sub(S, xp, a.val[2], a.val[3], levels);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
        isum[h] = vmlaq_s32(isum[h], S[h], rkn_sbyte(sc[h][1], c));
}

/* One IQ4_XS super-block column of the 8 rows at *xp against the activation block at yb; *xp
 * advanced past it: d, the scale words, then each sub-block's pieces, in order. */
RN_INLINE void rkn1_xs_block(float32x4_t acc[2], const uint8_t **xp, const uint8_t *yb,
                             int8x16_t levels) {
    /* d, scales_l of rows 0-3 and 4-7, scales_h of all 8 (row r at bytes 2r, 2r + 1) */
    const uint8x16x4_t hd = rkn1_u8x4(rn_ld1x4(xp));
    int8x16_t sc[2][2];
    rkn1_xs_scales(hd.val[1], vzip1q_u8(hd.val[3], hd.val[3]), sc[0]);
    rkn1_xs_scales(hd.val[2], vzip2q_u8(hd.val[3], hd.val[3]), sc[1]);
    int32x4_t isum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    const uint8_t *ya = yb + 4; /* the activation quants */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) /* sub-blocks 2c, 2c + 1 */
        rkn1_xs_pair(c, isum, xp, rn_ld1x4(&ya), sc, levels);
    rkn1_fold(acc, isum, hd.val[0], rn_load_f32(yb));
}

/* A group of 8 IQ4_XS rows against one activation row, apart from the other types' kernels:
 * in one function all would save the callee-saved registers that this one uses. Without the
 * scheduling pass, as quant_rkn_decode_group. */
static __attribute__((noinline, optimize("no-schedule-insns"))) void
rkn1_xs_group(int64_t n, float *out, const uint8_t *x, const uint8_t *y) {
    const int8x16_t levels = vld1q_s8(quant_iq4_levels);
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    for (int64_t b = 0; b < n / QK_K; b++)
        rkn1_xs_block(acc, &x, y + b * RKN_ABLOCK, levels);
    vst1q_f32(out, acc[0]);
    vst1q_f32(out + 4, acc[1]);
}

/* One group of 8 rows against one activation row, without the scheduling pass before
 * register allocation: that pass hoists the loads and unpacking of later pieces
 * above the SDOTs that use earlier ones, and with accumulators, activations and scales holding
 * most of the 32 registers the hoisted values spill to the stack. */
__attribute__((optimize("no-schedule-insns"))) void
quant_rkn_decode_group(int kind, int64_t n, float *out, const uint8_t *x, const uint8_t *y,
                       size_t xb) {
    if (kind == RKN_IQ4_XS) {
        rkn1_xs_group(n, out, x, y);
        return;
    }
    const uint8x16x4_t bidx = vld1q_u8_x4(RKN1_BYTES);
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    if (kind == RKN_Q6_K)
        for (int64_t b = 0; b < n / QK_K; b++)
            rkn1_q6_block(acc, x + b * xb, y + b * RKN_ABLOCK);
    else if (kind == RKN_Q5_K)
        for (int64_t b = 0; b < n / QK_K; b++)
            rkn1_k4_block(1, acc, &x, y + b * RKN_ABLOCK, bidx);
    else
        for (int64_t b = 0; b < n / QK_K; b++)
            rkn1_k4_block(0, acc, &x, y + b * RKN_ABLOCK, bidx);
    vst1q_f32(out, acc[0]);
    vst1q_f32(out + 4, acc[1]);
}
