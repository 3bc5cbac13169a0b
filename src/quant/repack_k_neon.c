/*
 * Q4_K, Q5_K, Q6_K and IQ4_XS weights repacked 8 rows at a time, NEON with SDOT: the K-quant
 * counterpart of repack_neon.c (read repack_neon.h first), for decode and prefill. This file
 * holds the layouts' and the arithmetic's description, IQ4_XS's kernel and the dispatch; Q4_K,
 * Q5_K and Q6_K have kernels of their own for decode (repack_k_decode_neon.c) and prefill
 * (repack_k_prefill_neon.c).
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

/* ---- IQ4_XS ---- */

#define RKN_XS_PIECE(g)                                                                            \
    do {                                                                                           \
        const int8x16_t w = rkn_xs_piece(xb, sb, (g), h, levels);                                  \
        _Pragma("GCC unroll 4") for (int c = 0; c < RY; c++) s[c] =                                \
            vdotq_laneq_s32(s[c], w, a[c][(g) / 4], (g) % 4);                                      \
    } while (0)

RN_INLINE void rkn_xs_block(int RY, float32x4_t acc[4][2], int h, const uint8_t *xb,
                            const uint8_t *y, size_t ys, int8x16_t levels) {
    int32x4_t isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        isum[c] = vdupq_n_s32(0);
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
        for (int c = 0; c < RY; c++)
            isum[c] = vmlaq_s32(isum[c], s[c], sc);
    }
    const float32x4_t dx = rkn_half_scales(xb, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c][h] =
            vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]), vmulq_n_f32(dx, rn_load_f32(y + c * ys)));
}

/* ---- all four ---- */

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows: Q4_K, Q5_K
 * and Q6_K through their decode and prefill kernels; IQ4_XS one half of 4 rows at a time (a
 * whole group's accumulators and unpacked weights would not fit the 32 registers). */
RN_INLINE void rkn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    if (kind == RKN_IQ4_XS && RY == 1) {
        quant_rkn_decode_group(kind, n, out, x, y, RN_ROWS * sizeof(block_iq4_xs));
        return;
    }
    if (kind != RKN_IQ4_XS) {
        const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                     : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                                        : sizeof(block_q6_k));
        if (RY == 1)
            quant_rkn_decode_group(kind, n, out, x, y, xb);
        else
            quant_rkn_prefill_group(kind, RY, n, out, os, x, xb, y, ys);
        return;
    }
    const size_t xb = RN_ROWS * sizeof(block_iq4_xs);
    const int8x16_t levels = vld1q_s8(quant_iq4_levels);
    float32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c][0] = acc[c][1] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
            rkn_xs_block(RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys, levels);
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
