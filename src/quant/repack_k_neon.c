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

/* ---- all four ---- */

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows, one half of
 * 4 rows at a time (a whole group's accumulators and unpacked weights would not fit the 32
 * registers). */
RN_INLINE void rkn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                 : kind == RKN_Q6_K ? sizeof(block_q6_k)
                                                    : sizeof(block_iq4_xs));
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
