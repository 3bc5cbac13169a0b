/*
 * Q4_K, Q5_K, Q6_K and IQ4_XS weights repacked 8 rows at a time, NEON with SDOT: the K-quant
 * counterpart of repack_neon.c (read repack_neon.h first), for decode and prefill.
 *
 * Layouts: repack_layout.c's at 8 rows, as the AVX2 kernels take them (repack_k_avx2.c lists
 * the offsets): per super-block column the rows' f16 d (and dmin), their scales, then pieces of
 * 32 bytes holding 4 quants of each of the 8 rows, rows 0-3 in the first 16 bytes, 4-7 in the
 * second. SDOT's by-element form meets each half with 4 activation quants picked by lane.
 *
 * Integer work: Q4_K and Q5_K quants are unsigned (0..15, 0..31) and exact as signed bytes; a
 * sub-block's 8 SDOTs sum in int32 and are multiplied by the rows' 6-bit scales (one
 * multiply-add per lane), and the min term is the sum over sub-blocks of min * (activation
 * sub-block sum). Q6_K quants are taken as u = q + 32 (0..63): each 16-element sub-block sum
 * starts at -32 * bsum, so the offset is gone before the int8 scale multiplies it. All sums
 * fit in int32 (Q6_K's largest: 16 sub-blocks x 127 x 4 x 4 x 63 x 127 < 2^29). IQ4_XS nibbles
 * become their signed levels by table lookup (TBL) and meet the sub-block scale (ls - 32) like
 * Q4_K's; it has no min term.
 *
 * Activation rows (rp_act) are plain Q8_K blocks (float d; int8 qs[256]; int16 bsums[16]).
 * Each super-block is folded as acc += float(isum) * (d * dy), then for Q4_K and Q5_K
 * acc -= float(msum) * (dmin * dy), the same operations whatever the number of activation
 * rows; results equal the reference vec_dot up to float order.
 */
#include "quant/repack_k_neon.h"

/* One sub-block (32 elements) of half h's pieces (rkn_k4_piece) against RY activation rows'
 * quants at byte `at` of their blocks: s[c] = sum. A macro so that g is a literal where the
 * lane must be one. */
#define RKN_SDOT_PIECE(g)                                                                      \
    do {                                                                                       \
        const int8x16_t w = rkn_k4_piece(five, qc, (g), h, hi, fh);                            \
        _Pragma("GCC unroll 4")                                                                \
        for (int c = 0; c < RY; c++) s[c] = vdotq_laneq_s32(s[c], w, a[c][(g) / 4], (g) % 4);  \
    } while (0)

RN_INLINE void rkn_k4_sub(int five, int RY, int32x4_t s[4], const uint8_t *qc, int h, int hi,
                          uint8x16_t fh, const uint8_t *y, size_t ys, int at) {
    int8x16_t a[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        a[c][0] = vld1q_s8((const int8_t *)y + c * ys + at);
        a[c][1] = vld1q_s8((const int8_t *)y + c * ys + at + 16);
        s[c] = vdupq_n_s32(0);
    }
    RKN_SDOT_PIECE(0);
    RKN_SDOT_PIECE(1);
    RKN_SDOT_PIECE(2);
    RKN_SDOT_PIECE(3);
    RKN_SDOT_PIECE(4);
    RKN_SDOT_PIECE(5);
    RKN_SDOT_PIECE(6);
    RKN_SDOT_PIECE(7);
}

/* One super-block column of half h (rows 4h..4h+3) against RY activation rows. */
RN_INLINE void rkn_k4_block(int five, int RY, float32x4_t acc[4][2], int h, const uint8_t *xb,
                            const uint8_t *y, size_t ys) {
    uint8x16_t sc[2], mn[2];
    rkn_scales(xb + 32 + 16 * h, sc, mn);
    int32x4_t isum[4], s[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = vdupq_n_s32(0);
    for (int cc = 0; cc < 4; cc++) {
        const uint8_t *qc = xb + (five ? 192 + 320 * cc : 128 + 256 * cc);
#pragma GCC unroll 2
        for (int hi = 0; hi < 2; hi++) { /* sub-block 2cc + hi */
            const int j = 2 * cc + hi;
            const uint8x16_t fh = five ? vld1q_u8(qc - 64 + 32 * hi + 16 * h) : vdupq_n_u8(0);
            rkn_k4_sub(five, RY, s, qc, h, hi, fh, y, ys, 4 + 32 * j);
            const int32x4_t scj = rkn_byte(sc[j / 4], j % 4);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], s[c], scj);
        }
    }
    const float32x4_t dx = rkn_half_scales(xb, h), mx = rkn_half_scales(xb + 16, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ys;
        const int32x4_t msum = rkn_k4_msum(mn, yb);
        const float dy = rn_load_f32(yb);
        acc[c][h] = vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]), vmulq_n_f32(dx, dy));
        acc[c][h] = vfmsq_f32(acc[c][h], vcvtq_f32_s32(msum), vmulq_n_f32(mx, dy));
    }
}

/* ---- Q6_K ---- */

#define RKN_Q6_PIECE(g)                                                                        \
    do {                                                                                       \
        const int8x16_t w = rkn_q6_piece(ch, (g), h, hi, hb);                                  \
        _Pragma("GCC unroll 4")                                                                \
        for (int c = 0; c < RY; c++) s[c] = vdotq_laneq_s32(s[c], w, a[c], (g));               \
    } while (0)

RN_INLINE void rkn_q6_block(int RY, float32x4_t acc[4][2], int h, const uint8_t *xb,
                            const uint8_t *y, size_t ys) {
    int32x4_t isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) { /* 32 elements: sub-blocks 2k (hi 0) and 2k + 1 (hi 1) */
        const uint8_t *ch = xb + 144 + 192 * k;
        int32x4_t sca, scb;
        rkn_q6_scales(xb, k, h, &sca, &scb);
#pragma GCC unroll 2
        for (int hi = 0; hi < 2; hi++) {
            const int j = 2 * k + hi;
            const uint8x16_t hb = vld1q_u8(ch + 32 * hi + 16 * h);
            int8x16_t a[4];
            int32x4_t s[4];
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) {
                const uint8_t *yb = y + c * ys;
                a[c] = vld1q_s8((const int8_t *)yb + 4 + 16 * j);
                s[c] = vdupq_n_s32(-32 * rkn_ysum16(yb, j));
            }
            RKN_Q6_PIECE(0);
            RKN_Q6_PIECE(1);
            RKN_Q6_PIECE(2);
            RKN_Q6_PIECE(3);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], s[c], hi ? scb : sca);
        }
    }
    const float32x4_t dx = rkn_half_scales(xb, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c][h] = vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]),
                              vmulq_n_f32(dx, rn_load_f32(y + c * ys)));
}

/* ---- IQ4_XS ---- */

#define RKN_XS_PIECE(g)                                                                        \
    do {                                                                                       \
        const int8x16_t w = rkn_xs_piece(xb, sb, (g), h, levels);                              \
        _Pragma("GCC unroll 4")                                                                \
        for (int c = 0; c < RY; c++) s[c] = vdotq_laneq_s32(s[c], w, a[c][(g) / 4], (g) % 4);  \
    } while (0)

RN_INLINE void rkn_xs_block(int RY, float32x4_t acc[4][2], int h, const uint8_t *xb,
                            const uint8_t *y, size_t ys, int8x16_t levels) {
    int32x4_t isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) isum[c] = vdupq_n_s32(0);
    for (int sb = 0; sb < 8; sb++) { /* sub-block of 32 */
        int8x16_t a[4][2];
        int32x4_t s[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            a[c][0] = vld1q_s8((const int8_t *)y + c * ys + 4 + 32 * sb);
            a[c][1] = vld1q_s8((const int8_t *)y + c * ys + 4 + 32 * sb + 16);
            s[c] = vdupq_n_s32(0);
        }
        RKN_XS_PIECE(0);
        RKN_XS_PIECE(1);
        RKN_XS_PIECE(2);
        RKN_XS_PIECE(3);
        RKN_XS_PIECE(4);
        RKN_XS_PIECE(5);
        RKN_XS_PIECE(6);
        RKN_XS_PIECE(7);
        const int32x4_t sc = rkn_xs_scale(xb, sb, h);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], s[c], sc);
    }
    const float32x4_t dx = rkn_half_scales(xb, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c][h] = vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]),
                              vmulq_n_f32(dx, rn_load_f32(y + c * ys)));
}

/* ---- decode: one activation row, the 8 rows in one pass ---- */

/* With one activation row the accumulators of both halves fit the registers, so the decode
 * kernels below take all 8 rows at once: one LD1 of four registers brings 64 bytes of weights
 * (two pieces, both halves), every activation register is loaded once per super-block and
 * serves both halves, and a nibble register feeds its two sub-blocks (low nibbles, high
 * nibbles) from one load. Their integer sums and float steps are the ones above. */

/* acc + the by-element SDOT of w and elements 4l..4l+3 of a; l a constant after inlining. */
RN_INLINE int32x4_t rkn1_dot(int32x4_t acc, int8x16_t w, int8x16_t a, int l) {
    switch (l) {
    case 0: return vdotq_laneq_s32(acc, w, a, 0);
    case 1: return vdotq_laneq_s32(acc, w, a, 1);
    case 2: return vdotq_laneq_s32(acc, w, a, 2);
    default: return vdotq_laneq_s32(acc, w, a, 3);
    }
}

RN_INLINE uint8x16x4_t rkn1_u8x4(int8x16x4_t v) {
    return (uint8x16x4_t){{vreinterpretq_u8_s8(v.val[0]), vreinterpretq_u8_s8(v.val[1]),
                           vreinterpretq_u8_s8(v.val[2]), vreinterpretq_u8_s8(v.val[3])}};
}

/* TBL indices: register b puts byte b of each int32 lane in the lane's low byte and zeros
 * above it (index 255 reads 0), one instruction per sub-block's scales. */
#define RKN1_BYTE(b)                                                                           \
    b, 255, 255, 255, b + 4, 255, 255, 255, b + 8, 255, 255, 255, b + 12, 255, 255, 255
static const uint8_t RKN1_BYTES[64] __attribute__((aligned(16))) = {
    RKN1_BYTE(0), RKN1_BYTE(1), RKN1_BYTE(2), RKN1_BYTE(3)};
#undef RKN1_BYTE

/* The float step of a super-block for both halves: acc += float(isum) * (d * dy) with the
 * rows' f16 d at xd. */
RN_INLINE void rkn1_fold(float32x4_t acc[2], const int32x4_t isum[2], uint8x16_t xd, float dy) {
    const float16x8_t d = vreinterpretq_f16_u8(xd);
    const float32x4_t d0 = vcvt_f32_f16(vget_low_f16(d)), d1 = vcvt_high_f32_f16(d);
    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(isum[0]), vmulq_n_f32(d0, dy));
    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(isum[1]), vmulq_n_f32(d1, dy));
}

/* Q4_K / Q5_K min term of both halves (msum[h], one row per lane): the sum over sub-blocks j
 * of min_j * ys_j, ys_j the activation's sum over sub-block j (|.| <= 4064). ys_j = 64 hi + lo
 * with hi (-64..63) and lo (0..63) bytes, so SDOT meets the mins as rkn_scales_of leaves them
 * (four bytes per row lane) in four instructions per half, exactly. */
RN_INLINE void rkn1_k4_msum(const uint8x16_t mn[2][2], const uint8_t *yb, int32x4_t msum[2]) {
    const int16x8x2_t bs = vld1q_s16_x2((const int16_t *)(yb + 260));
    const int16x8_t ys = vpaddq_s16(bs.val[0], bs.val[1]);
    /* int32 lanes: 0 the hi of sub-blocks 0-3, 1 of 4-7, 2 the lo of 0-3, 3 of 4-7 */
    const int8x16_t hl = vuzp1q_s8(vreinterpretq_s8_s16(vshrq_n_s16(ys, 6)),
                                   vreinterpretq_s8_s16(vandq_s16(ys, vdupq_n_s16(63))));
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const int8x16_t m0 = vreinterpretq_s8_u8(mn[h][0]), m1 = vreinterpretq_s8_u8(mn[h][1]);
        int32x4_t t = vdotq_laneq_s32(vdupq_n_s32(0), m0, hl, 0);
        t = vshlq_n_s32(vdotq_laneq_s32(t, m1, hl, 1), 6);
        msum[h] = vdotq_laneq_s32(vdotq_laneq_s32(t, m0, hl, 2), m1, hl, 3);
    }
}

/* Bit g of each byte of f at bit 4 (the other bits any); g a constant after inlining. */
RN_INLINE uint8x16_t rkn1_bit4(uint8x16_t f, int g) {
    switch (g) {
    case 0: return vshlq_n_u8(f, 4);
    case 1: return vshlq_n_u8(f, 3);
    case 2: return vshlq_n_u8(f, 2);
    case 3: return vshlq_n_u8(f, 1);
    case 4: return f;
    case 5: return vshrq_n_u8(f, 1);
    case 6: return vshrq_n_u8(f, 2);
    default: return vshrq_n_u8(f, 3);
    }
}

/* Sub-block 2c's (hi 0: low nibbles) or 2c + 1's (hi 1: high nibbles) quants in the nibble
 * register v of piece g, with fifth bit g of plane f inserted at bit 4 when five. */
RN_INLINE int8x16_t rkn1_k4_w(int five, uint8x16_t v, int hi, int g, uint8x16_t f) {
    uint8x16_t u = hi ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0f));
    if (five) u = vbslq_u8(vdupq_n_u8(0x10), rkn1_bit4(f, g), u);
    return vreinterpretq_s8_u8(u);
}

/* Chunk c (sub-blocks 2c, 2c + 1) of the 8 rows against the activation quants a (sub-block
 * 2c in val[0..1], 2c + 1 in val[2..3]): isum[h] += scale * sum for both sub-blocks, the
 * rows' scales picked from sc[h] by TBL. */
RN_INLINE void rkn1_k4_chunk(int five, int c, int32x4_t isum[2], const uint8_t **xp,
                             int8x16x4_t a, const uint8x16_t sc[2][2], uint8x16x4_t bidx) {
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
            s[0][h] = rkn1_dot(s[0][h], rkn1_k4_w(five, w.val[i], 0, g, f.val[h]),
                               a.val[g / 4], g % 4);
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
RN_INLINE void rkn1_k4_block(int five, float32x4_t acc[2], const uint8_t **xp,
                             const uint8_t *yb, uint8x16x4_t bidx) {
    /* d, dmin, then the rows' three scale words (rows 0-3, 4-7 each) */
    const uint8x16x4_t hd = rkn1_u8x4(rn_ld1x4(xp)), hs = rkn1_u8x4(rn_ld1x4(xp));
    uint8x16_t sc[2][2], mn[2][2];
    rkn_scales_of(hd.val[2], hs.val[0], hs.val[2], sc[0], mn[0]);
    rkn_scales_of(hd.val[3], hs.val[1], hs.val[3], sc[1], mn[1]);
    int32x4_t msum[2], isum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
    rkn1_k4_msum(mn, yb, msum);
    const uint8_t *ya = yb + 4; /* the activation quants */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) rkn1_k4_chunk(five, c, isum, xp, rn_ld1x4(&ya), sc, bidx);
    const float dy = rn_load_f32(yb);
    rkn1_fold(acc, isum, hd.val[0], dy);
    const float16x8_t m = vreinterpretq_f16_u8(hd.val[1]);
    const float32x4_t m0 = vcvt_f32_f16(vget_low_f16(m)), m1 = vcvt_high_f32_f16(m);
    acc[0] = vfmsq_f32(acc[0], vcvtq_f32_s32(msum[0]), vmulq_n_f32(m0, dy));
    acc[1] = vfmsq_f32(acc[1], vcvtq_f32_s32(msum[1]), vmulq_n_f32(m1, dy));
}

/* A Q6_K high-bit plane hb (bits 2g..2g + 1: the top bits of element 4g + k) as two registers
 * with zeros at bits 2..3 and 6..7: hb & 0x33 (g = 0 at bits 0..1, g = 2 at 4..5) and
 * (hb >> 2) & 0x33 (g = 1, g = 3). */
RN_INLINE void rkn1_q6_planes(uint8x16_t hb, uint8x16_t t[2]) {
    const uint8x16_t m = vdupq_n_u8(0x33);
    t[0] = vandq_u8(hb, m);
    t[1] = vandq_u8(vshrq_n_u8(hb, 2), m);
}

/* Low nibbles of v with top bits g of planes t (rkn1_q6_planes) at bits 4..5: SLI of the
 * bits 0..1 for g < 2 (bits 2..3 of t are zero), a bit select of bits 4..5 for g >= 2 (bits
 * 6..7 of t are zero). */
RN_INLINE uint8x16_t rkn1_q6_lo(uint8x16_t v, const uint8x16_t t[2], int g) {
    if (g < 2) return vsliq_n_u8(v, t[g], 4);
    return vbslq_u8(vdupq_n_u8(0x0f), v, t[g - 2]);
}

/* High nibbles of v with top bits g of planes t at bits 4..5, by SRI into a register holding
 * them at bits 4..5 and zeros at 6..7. */
RN_INLINE uint8x16_t rkn1_q6_hi(uint8x16_t v, const uint8x16_t t[2], int g) {
    return vsriq_n_u8(g < 2 ? vshlq_n_u8(t[g], 4) : t[g - 2], v, 4);
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
    for (int i = 0; i < 4; i++) rkn1_q6_planes(hb.val[i], t[i]);
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
            rkn1_q6_chunk(k, isum, xb, &cp, vld1q_s8_x2((const int8_t *)yb + 4 + 32 * k), nb,
                          i);
        }
    }
    rkn1_fold(acc, isum, vld1q_u8(xb), rn_load_f32(yb));
}

/* One group of 8 rows against one activation row. Not inlined, and without the scheduling
 * pass before register allocation: that pass hoists the loads and unpacking of later pieces
 * above the SDOTs that use earlier ones, and with accumulators, activations and scales holding
 * most of the 32 registers the hoisted values spill to the stack. */
static __attribute__((noinline, optimize("no-schedule-insns"))) void
rkn_group_1(int kind, int64_t n, float *out, const uint8_t *x, const uint8_t *y, size_t xb) {
    const uint8x16x4_t bidx = vld1q_u8_x4(RKN1_BYTES);
    float32x4_t acc[2] = {vdupq_n_f32(0), vdupq_n_f32(0)};
    if (kind == RKN_Q6_K)
        for (int64_t b = 0; b < n / QK_K; b++)
            rkn1_q6_block(acc, x + b * xb, y + b * RKN_ABLOCK);
    else if (kind == RKN_Q5_K)
        for (int64_t b = 0; b < n / QK_K; b++) rkn1_k4_block(1, acc, &x, y + b * RKN_ABLOCK, bidx);
    else
        for (int64_t b = 0; b < n / QK_K; b++) rkn1_k4_block(0, acc, &x, y + b * RKN_ABLOCK, bidx);
    vst1q_f32(out, acc[0]);
    vst1q_f32(out + 4, acc[1]);
}

/* ---- prefill: 2..4 activation rows ---- */

/* With 2..4 activation rows a half (4 rows) is taken at a time and the halves are the outer
 * loop, so only that half's float accumulators are live. A chunk's 8 nibble registers are
 * loaded once and feed both of its sub-blocks. Integer sums use summation by parts: with S_j
 * the running sum of sub-blocks 0..j, sum_j sc_j s_j = sum_j S_j (sc_j - sc_{j+1}) (sc_8 = 0),
 * so no per-sub-block sum is reset and the rows' scale differences (-63..63, formed once per
 * half as bytes) serve all activation rows. The integers are the same, and so are the float
 * steps of the kernels above. */

/* Byte j of each int32 lane of d, sign-extended; j a constant after inlining. */
RN_INLINE int32x4_t rkp_sbyte(int8x16_t d, int j) {
    const int32x4_t w = vreinterpretq_s32_s8(d);
    switch (j) {
    case 0: return vshrq_n_s32(vshlq_n_s32(w, 24), 24);
    case 1: return vshrq_n_s32(vshlq_n_s32(w, 16), 24);
    case 2: return vshrq_n_s32(vshlq_n_s32(w, 8), 24);
    default: return vshrq_n_s32(w, 24);
    }
}

/* Scale differences sc_j - sc_{j+1} (sc_8 = 0) of rkn_scales_of's sc, as signed bytes laid
 * out alike: dd[0] sub-blocks 0-3, dd[1] 4-7. */
RN_INLINE void rkp_scale_diffs(const uint8x16_t sc[2], int8x16_t dd[2]) {
    const uint32x4_t s0 = vreinterpretq_u32_u8(sc[0]), s1 = vreinterpretq_u32_u8(sc[1]);
    const uint32x4_t n0 = vsliq_n_u32(vshrq_n_u32(s0, 8), s1, 24), n1 = vshrq_n_u32(s1, 8);
    dd[0] = vreinterpretq_s8_u8(vsubq_u8(sc[0], vreinterpretq_u8_u32(n0)));
    dd[1] = vreinterpretq_s8_u8(vsubq_u8(sc[1], vreinterpretq_u8_u32(n1)));
}

/* One half's Q4_K / Q5_K min term for the activation block at yb, as rkn1_k4_msum forms it. */
RN_INLINE int32x4_t rkp_k4_msum(const uint8x16_t mn[2], const uint8_t *yb) {
    const int16x8_t ys = vpaddq_s16(vld1q_s16((const int16_t *)(yb + 260)),
                                    vld1q_s16((const int16_t *)(yb + 276)));
    const int8x16_t hl = vuzp1q_s8(vreinterpretq_s8_s16(vshrq_n_s16(ys, 6)),
                                   vreinterpretq_s8_s16(vandq_s16(ys, vdupq_n_s16(63))));
    const int8x16_t m0 = vreinterpretq_s8_u8(mn[0]), m1 = vreinterpretq_s8_u8(mn[1]);
    int32x4_t t = vdotq_laneq_s32(vdupq_n_s32(0), m0, hl, 0);
    t = vshlq_n_s32(vdotq_laneq_s32(t, m1, hl, 1), 6);
    return vdotq_laneq_s32(vdotq_laneq_s32(t, m0, hl, 2), m1, hl, 3);
}

/* Chunk k (sub-blocks 2k, 2k + 1) of half h of the Q4_K / Q5_K column at xb against RY
 * activation blocks yb[]: S[c] runs on, isum[c] += S[c] * (sc_j - sc_{j+1}) per sub-block. */
RN_INLINE void rkp_k4_chunk(int five, int RY, int k, int h, const uint8_t *xb,
                            const uint8_t *const yb[4], const int8x16_t dd[2], int32x4_t S[4],
                            int32x4_t isum[4]) {
    const uint8_t *qc = xb + (five ? 192 + 320 * k : 128 + 256 * k) + 16 * h;
    uint8x16_t v[8];
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) v[g] = vld1q_u8(qc + 32 * g);
#pragma GCC unroll 2
    for (int hi = 0; hi < 2; hi++) {
        const int j = 2 * k + hi;
        const uint8x16_t f = five ? vld1q_u8(qc - 64 + 32 * hi) : vdupq_n_u8(0);
        int8x16_t a[4][2];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            a[c][0] = vld1q_s8((const int8_t *)yb[c] + 4 + 32 * j);
            a[c][1] = vld1q_s8((const int8_t *)yb[c] + 20 + 32 * j);
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const int8x16_t w = rkn1_k4_w(five, v[g], hi, g, f);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++) S[c] = rkn1_dot(S[c], w, a[c][g / 4], g % 4);
        }
        const int32x4_t dj = rkp_sbyte(dd[j / 4], j % 4);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], S[c], dj);
    }
}

/* Half h of one Q4_K / Q5_K super-block column at xb against RY activation blocks yb[]. */
RN_INLINE void rkp_k4_half(int five, int RY, float32x4_t acc[4], int h, const uint8_t *xb,
                           const uint8_t *const yb[4]) {
    uint8x16_t sc[2], mn[2];
    int8x16_t dd[2];
    rkn_scales(xb + 32 + 16 * h, sc, mn);
    rkp_scale_diffs(sc, dd);
    int32x4_t S[4], isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) S[c] = isum[c] = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) rkp_k4_chunk(five, RY, k, h, xb, yb, dd, S, isum);
    const float32x4_t dx = rkn_half_scales(xb, h), mx = rkn_half_scales(xb + 16, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const float dy = rn_load_f32(yb[c]);
        acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(isum[c]), vmulq_n_f32(dx, dy));
        acc[c] = vfmsq_f32(acc[c], vcvtq_f32_s32(rkp_k4_msum(mn, yb[c])), vmulq_n_f32(mx, dy));
    }
}

/* Half h of a group of 8 Q4_K / Q5_K rows against RY activation rows: out[c * os + i] for
 * rows i = 4h..4h + 3. */
RN_INLINE void rkp_k4_rows(int five, int RY, int h, int64_t n, float *out, size_t os,
                           const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    float32x4_t acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *yb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) yb[c] = y + c * ys + b * RKN_ABLOCK;
        rkp_k4_half(five, RY, acc, h, x + b * xs, yb);
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) vst1q_f32(out + c * os + 4 * h, acc[c]);
}

/* A group of 8 Q4_K / Q5_K rows against RY (2..4) activation rows. Not inlined and without
 * the scheduling pass before register allocation, as rkn_group_1. */
#define RKP_K4_GROUP(RY)                                                                       \
    static __attribute__((noinline, optimize("no-schedule-insns"))) void rkp_k4_group_##RY(   \
        int kind, int64_t n, float *out, size_t os, const uint8_t *x, size_t xs,              \
        const uint8_t *y, size_t ys) {                                                         \
        for (int h = 0; h < 2; h++) {                                                          \
            if (kind == RKN_Q5_K) rkp_k4_rows(1, RY, h, n, out, os, x, xs, y, ys);             \
            else rkp_k4_rows(0, RY, h, n, out, os, x, xs, y, ys);                              \
        }                                                                                      \
    }
RKP_K4_GROUP(2)
RKP_K4_GROUP(3)
RKP_K4_GROUP(4)
#undef RKP_K4_GROUP

/* ---- all four ---- */

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows, one half of
 * 4 rows at a time (a whole group's accumulators and unpacked weights would not fit the 32
 * registers); a single row of Q4_K, Q5_K or Q6_K goes to rkn_group_1 instead. */
RN_INLINE void rkn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                 : kind == RKN_Q6_K ? sizeof(block_q6_k)
                                                    : sizeof(block_iq4_xs));
    if (RY == 1 && kind != RKN_IQ4_XS) {
        rkn_group_1(kind, n, out, x, y, xb);
        return;
    }
    if (kind == RKN_Q4_K || kind == RKN_Q5_K) {
        if (RY == 2) rkp_k4_group_2(kind, n, out, os, x, xb, y, ys);
        else if (RY == 3) rkp_k4_group_3(kind, n, out, os, x, xb, y, ys);
        else rkp_k4_group_4(kind, n, out, os, x, xb, y, ys);
        return;
    }
    const int8x16_t levels = vld1q_s8(quant_iq4_levels);
    float32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc[c][0] = acc[c][1] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            if (kind == RKN_Q6_K) rkn_q6_block(RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys);
            else if (kind == RKN_IQ4_XS)
                rkn_xs_block(RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys, levels);
            else
                rkn_k4_block(kind == RKN_Q5_K, RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        vst1q_f32(out + c * os, acc[c][0]);
        vst1q_f32(out + c * os + 4, acc[c][1]);
    }
}

#define RKN_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rkn_group, KIND, RN_ROWS)

RKN_DEFINE_DOT(rkn_dot_q4_k, RKN_Q4_K)
RKN_DEFINE_DOT(rkn_dot_q5_k, RKN_Q5_K)
RKN_DEFINE_DOT(rkn_dot_q6_k, RKN_Q6_K)
RKN_DEFINE_DOT(rkn_dot_iq4_xs, RKN_IQ4_XS)

const quant_repack_impl quant_q4_k_repack_neon = {RN_ROWS, rkn_pack_q4_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rkn_dot_q4_k};
const quant_repack_impl quant_q5_k_repack_neon = {RN_ROWS, rkn_pack_q5_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rkn_dot_q5_k};
const quant_repack_impl quant_q6_k_repack_neon = {RN_ROWS, rkn_pack_q6_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rkn_dot_q6_k};
const quant_repack_impl quant_iq4_xs_repack_neon = {RN_ROWS, rkn_pack_iq4_xs, rkn_act_size,
                                                   quant_q8_k_from_f32_neon, rkn_dot_iq4_xs};
