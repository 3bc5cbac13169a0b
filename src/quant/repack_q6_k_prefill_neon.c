/*
 * Q6_K repacked 8 rows at a time (repack_k_neon.c: layout), NEON with SDOT: prefill, 2..8
 * activation rows (on CPUs with I8MM the SMMLA kernels of repack_k_prefill_i8mm_neon.c take
 * its place).
 *
 * A half (4 rows) is taken at a time, the halves the outer loop. Per sub-block the kernel
 * unpacks the half's four weight registers once (4 rows x 4 quants each) and every activation
 * row then takes one load, four SDOTs and one multiply-add against them: with 8 activation
 * rows the unpacking and the weight loads are shared twice as widely as with 4, which is where
 * most of this kernel's instructions went.
 *
 * The quants are unpacked signed, q = u - 32 (-32..31, one SUB per register), so no sum
 * carries the -32 * bsum offset, and the sub-block scales are applied by parts: S[c] runs over
 * the sub-blocks in the order they are taken, and isum[c] += S[c] * (sc_j - sc_next), with
 * sc_next the scale of the sub-block taken next (0 after the last). The sum is the same,
 * sum_j sc_j * s_j; its partial terms may wrap int32, the total (at most 16 x 16 x 32 x 127 x
 * 128 in magnitude) does not, and integer adds and multiplies are exact modulo 2^32.
 * A chunk's high-nibble sub-block (2k + 1) is taken before its low one (2k): SRI leaves the
 * nibble register intact for the SLI that follows. Each super-block is folded into the output
 * as the other kernels fold it: out += float(isum) * (d * dy).
 */
#include "quant/repack_k_neon.h"

#define RQ6_MAX_ROWS 8 /* activation rows a pass takes */

/* The 4 quants of piece g of the half (4 rows) as signed bytes q = u - 32, from its nibble
 * register v and the high-bit planes t of its sub-block (hi: the high nibbles). */
RN_INLINE int8x16_t rq6_piece(uint8x16_t v, const uint8x16_t t[2], int g, int hi) {
    const uint8x16_t u = hi ? rkn1_q6_hi(v, t, g) : rkn1_q6_lo(v, t, g);
    return vreinterpretq_s8_u8(vsubq_u8(u, vdupq_n_u8(32)));
}

/* One sub-block of the half against RY activation rows whose 16 quants are at ya[c] + off:
 * S[c] += the sub-block's sums, then isum[c] += S[c] * dj. */
RN_INLINE void rq6_sub(int RY, const int8x16_t w[4], const uint8_t *const ya[RQ6_MAX_ROWS],
                       int off, int32x4_t dj, int32x4_t S[RQ6_MAX_ROWS],
                       int32x4_t isum[RQ6_MAX_ROWS]) {
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) {
        const int8x16_t a = vld1q_s8((const int8_t *)ya[c] + off);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
            S[c] = rkn1_dot(S[c], w[g], a, g);
        isum[c] = vmlaq_s32(isum[c], S[c], dj);
    }
}

/* The even (scale 2k) and odd (2k + 1) scales of half h's rows from chunk k's scale pairs,
 * as int16 lanes. */
RN_INLINE void rq6_scales(const uint8_t *xb, int h, int k, int16x4_t *even, int16x4_t *odd) {
    const int16x4_t pr = vld1_s16((const int16_t *)(xb + 16 + 16 * k) + 4 * h);
    *even = vshr_n_s16(vshl_n_s16(pr, 8), 8);
    *odd = vshr_n_s16(pr, 8);
}

/* One super-block column of half h (at xb) against RY activation blocks yb[]: out[c] +=. */
RN_INLINE void rq6_block(int RY, int h, const uint8_t *xb, const uint8_t *const yb[RQ6_MAX_ROWS],
                         float *out, size_t os) {
    int32x4_t S[RQ6_MAX_ROWS], isum[RQ6_MAX_ROWS];
    const uint8_t *ya[RQ6_MAX_ROWS];
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) {
        S[c] = isum[c] = vdupq_n_s32(0);
        ya[c] = yb[c] + 4;
    }
    int16x4_t even, odd;
    rq6_scales(xb, h, 0, &even, &odd);
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        int16x4_t even_next = vdup_n_s16(0), odd_next = vdup_n_s16(0);
        if (k < 7) rq6_scales(xb, h, k + 1, &even_next, &odd_next);
        const uint8_t *ch = xb + 144 + 192 * k + 16 * h;
        uint8x16_t v[4], t[2];
        int8x16_t w[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
            v[g] = vld1q_u8(ch + 64 + 32 * g);
        /* sub-block 2k + 1 (high nibbles, plane H[1]), then 2k (low nibbles, H[0]), then
         * chunk k + 1's 2k + 3 */
        rkn1_q6_planes(vld1q_u8(ch + 32), t);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
            w[g] = rq6_piece(v[g], t, g, 1);
        rq6_sub(RY, w, ya, 32 * k + 16, vmovl_s16(vsub_s16(odd, even)), S, isum);
        rkn1_q6_planes(vld1q_u8(ch), t);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++)
            w[g] = rq6_piece(v[g], t, g, 0);
        rq6_sub(RY, w, ya, 32 * k, vmovl_s16(vsub_s16(even, odd_next)), S, isum);
        even = even_next;
        odd = odd_next;
    }
    const float32x4_t d = rkn_half_scales(xb, h);
#pragma GCC unroll 8
    for (int c = 0; c < RY; c++) {
        float *o = out + c * os;
        vst1q_f32(o, vfmaq_f32(vld1q_f32(o), vcvtq_f32_s32(isum[c]),
                               vmulq_n_f32(d, rn_load_f32(yb[c]))));
    }
}

/* A group of 8 rows (xs bytes per super-block column) against RY activation rows, one half
 * after the other; the results accumulate in out, which starts at zero. */
RN_INLINE void rq6_group(int RY, int64_t n, float *out, size_t os, const uint8_t *x, size_t xs,
                         const uint8_t *y, size_t ys) {
    for (int h = 0; h < 2; h++) {
        float *oh = out + 4 * h;
#pragma GCC unroll 8
        for (int c = 0; c < RY; c++)
            vst1q_f32(oh + c * os, vdupq_n_f32(0));
        for (int64_t b = 0; b < n / QK_K; b++) {
            const uint8_t *yb[RQ6_MAX_ROWS];
#pragma GCC unroll 8
            for (int c = 0; c < RY; c++)
                yb[c] = y + c * ys + b * RKN_ABLOCK;
            rq6_block(RY, h, x + b * xs, yb, oh, os);
        }
    }
}

/* Not inlined and without the scheduling pass before register allocation, as
 * quant_rkn_decode_group: that pass hoists loads and unpacking and spills the sums. */
#define RQ6_GROUP(RY)                                                                              \
    static __attribute__((noinline, optimize("no-schedule-insns"))) void rq6_group_##RY(          \
        int64_t n, float *out, size_t os, const uint8_t *x, size_t xs, const uint8_t *y,           \
        size_t ys) {                                                                               \
        rq6_group(RY, n, out, os, x, xs, y, ys);                                                   \
    }
RQ6_GROUP(2)
RQ6_GROUP(3)
RQ6_GROUP(4)
RQ6_GROUP(5)
RQ6_GROUP(6)
RQ6_GROUP(7)
RQ6_GROUP(8)
#undef RQ6_GROUP

void quant_rkn_q6_prefill_group(int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                                size_t xb, const uint8_t *y, size_t ys) {
    typedef void group_fn(int64_t, float *, size_t, const uint8_t *, size_t, const uint8_t *,
                          size_t);
    static group_fn *const groups[RQ6_MAX_ROWS - 1] = {
        rq6_group_2, rq6_group_3, rq6_group_4, rq6_group_5, rq6_group_6, rq6_group_7, rq6_group_8,
    };
    groups[RY - 2](n, out, os, x, xb, y, ys);
}
