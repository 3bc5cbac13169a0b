/*
 * Q4_K, Q5_K, Q6_K and IQ4_XS weights repacked 8 rows at a time, NEON with SDOT: the K-quant
 * counterpart of repack_neon.c (read repack_neon.h first), for decode and prefill. This file
 * holds the layouts' and the arithmetic's description and the dispatch; the kernels are in
 * repack_k_decode_neon.c (one activation row), repack_k_prefill_neon.c (2..4 rows) and
 * repack_q6_k_prefill_neon.c (Q6_K, 2..8 rows).
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
 * starts at -32 * bsum, so the offset is gone before the int8 scale multiplies it (the
 * prefill kernel, repack_q6_k_prefill_neon.c, takes them signed instead). All sums
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

/* ---- all four ---- */

/* One group of 8 rows against RY (1..4, Q6_K 1..8; constant after inlining) activation rows,
 * through the decode (one row) and prefill kernels. */
RN_INLINE void rkn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                 : kind == RKN_Q6_K ? sizeof(block_q6_k)
                                                    : sizeof(block_iq4_xs));
    if (RY == 1)
        quant_rkn_decode_group(kind, n, out, x, y, xb);
    else if (kind == RKN_Q6_K)
        quant_rkn_q6_prefill_group(RY, n, out, os, x, xb, y, ys);
    else
        quant_rkn_prefill_group(kind, RY, n, out, os, x, xb, y, ys);
}

#define RKN_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rkn_group, KIND, RN_ROWS)

RKN_DEFINE_DOT(rkn_dot_q4_k, RKN_Q4_K)
RKN_DEFINE_DOT(rkn_dot_q5_k, RKN_Q5_K)
/* Q6_K's prefill kernel takes 8 activation rows a pass (repack_q6_k_prefill_neon.c) */
REPACK_DEFINE_DOT8(rkn_dot_q6_k, rkn_group, RKN_Q6_K, RN_ROWS, 8)
RKN_DEFINE_DOT(rkn_dot_iq4_xs, RKN_IQ4_XS)

const quant_repack_impl quant_q4_k_repack_neon = {RN_ROWS, rkn_pack_q4_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkn_dot_q4_k};
const quant_repack_impl quant_q5_k_repack_neon = {RN_ROWS, rkn_pack_q5_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkn_dot_q5_k};
const quant_repack_impl quant_q6_k_repack_neon = {RN_ROWS, rkn_pack_q6_k, rkn_act_size,
                                                  quant_q8_k_from_f32_neon, rkn_dot_q6_k};
const quant_repack_impl quant_iq4_xs_repack_neon = {RN_ROWS, rkn_pack_iq4_xs, rkn_act_size,
                                                    quant_q8_k_from_f32_neon, rkn_dot_iq4_xs};
