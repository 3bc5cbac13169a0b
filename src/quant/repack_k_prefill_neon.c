/*
 * Q4_K, Q5_K and IQ4_XS repacked 8 rows at a time (repack_k_neon.c: layouts and arithmetic),
 * NEON with SDOT: prefill, 2..4 activation rows (on CPUs with I8MM the SMMLA kernels of
 * repack_k_prefill_i8mm_neon.c take the place of Q4_K's and Q5_K's; IQ4_XS keeps these).
 * Q6_K's are in repack_q6_k_prefill_neon.c.
 *
 * A half (4 rows) is taken at a time and the halves are the outer loop, so only that half's
 * float accumulators are live. A chunk's 8 nibble registers (IQ4_XS: a sub-block's 4) are
 * loaded once and feed both of its sub-blocks (halves of the sub-block). Q4_K, Q5_K and IQ4_XS
 * sums use summation by parts: with S_j
 * the running sum of sub-blocks 0..j, sum_j sc_j s_j = sum_j S_j (sc_j - sc_{j+1}) (sc_8 = 0),
 * so no per-sub-block sum is reset and the rows' scale differences (-63..63, formed once per
 * half as bytes) serve all activation rows. The integers are the same, and so are the float
 * steps, as repack_k_neon.c's opening comment gives them.
 */
#include "quant/repack_k_neon.h"

/* acc[c] += isum[c] * d (one row per lane) * dy[c] for RY activation rows: one super-block's
 * sums folded in, the same way by every kernel of this file. */
RN_INLINE void rkp_fold(int RY, float32x4_t acc[4], const int32x4_t isum[4], float32x4_t d,
                        const uint8_t *const yb[4]) {
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(isum[c]), vmulq_n_f32(d, rn_load_f32(yb[c])));
}

/* The next 32 activation quants of each of RY rows (a[c][0]: 0..15, a[c][1]: 16..31), ya[c]
 * advanced past them. */
RN_INLINE void rkp_acts32(int RY, const uint8_t *ya[4], int8x16_t a[4][2]) {
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const int8x16x2_t t = rn_ld1x2(&ya[c]);
        a[c][0] = t.val[0];
        a[c][1] = t.val[1];
    }
}

/* Stores half h's results: out[c * os + i] for rows i = 4h..4h + 3. */
RN_INLINE void rkp_store(int RY, const float32x4_t acc[4], float *out, size_t os, int h) {
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        vst1q_f32(out + c * os + 4 * h, acc[c]);
}

/* Chunk k (sub-blocks 2k, 2k + 1) of half h of the Q4_K / Q5_K column at xb against RY
 * activation rows' quants at ya[] (advanced past them): S[c] runs on, isum[c] += S[c] *
 * (sc_j - sc_{j+1}) per sub-block. */
RN_INLINE void rkp_k4_chunk(int five, int RY, int k, int h, const uint8_t *xb, const uint8_t *ya[4],
                            const int8x16_t dd[2], int32x4_t S[4], int32x4_t isum[4]) {
    const uint8_t *qc = xb + (five ? 192 + 320 * k : 128 + 256 * k) + 16 * h;
    uint8x16_t v[8];
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++)
        v[g] = vld1q_u8(qc + 32 * g);
#pragma GCC unroll 2
    for (int hi = 0; hi < 2; hi++) {
        const int j = 2 * k + hi;
        const uint8x16_t f = five ? vld1q_u8(qc - 64 + 32 * hi) : vdupq_n_u8(0);
        int8x16_t a[4][2];
        rkp_acts32(RY, ya, a);
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const int8x16_t w = rkn1_k4_w(five, v[g], hi, g, f);
#pragma GCC unroll 4
            for (int c = 0; c < RY; c++)
                S[c] = rkn1_dot(S[c], w, a[c][g / 4], g % 4);
        }
        const int32x4_t dj = rkn_sbyte(dd[j / 4], j % 4);
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            isum[c] = vmlaq_s32(isum[c], S[c], dj);
    }
}

/* Half h of one Q4_K / Q5_K super-block column at xb against RY activation blocks yb[]. */
RN_INLINE void rkp_k4_half(int five, int RY, float32x4_t acc[4], int h, const uint8_t *xb,
                           const uint8_t *const yb[4]) {
    uint8x16_t sc[2], mn[2];
    int8x16_t dd[2];
    rkn_scales(xb + 32 + 16 * h, sc, mn);
    rkn_scale_diffs(sc, dd);
    int32x4_t S[4], isum[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        S[c] = isum[c] = vdupq_n_s32(0);
    const uint8_t *ya[4]; /* the activation quants, read in order by post-increment LDPs */
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        ya[c] = yb[c] + 4;
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        rkp_k4_chunk(five, RY, k, h, xb, ya, dd, S, isum);
    const float32x4_t dx = rkn_half_scales(xb, h), mx = rkn_half_scales(xb + 16, h);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const float dy = rn_load_f32(yb[c]);
        acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(isum[c]), vmulq_n_f32(dx, dy));
        acc[c] = vfmsq_f32(acc[c], vcvtq_f32_s32(rkn_msum_half(mn, rkn_msum_bytes(yb[c]))),
                           vmulq_n_f32(mx, dy));
    }
}

/* Half h of a group of 8 Q4_K / Q5_K rows against RY activation rows: out[c * os + i] for
 * rows i = 4h..4h + 3. */
RN_INLINE void rkp_k4_rows(int five, int RY, int h, int64_t n, float *out, size_t os,
                           const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    float32x4_t acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *yb[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            yb[c] = y + c * ys + b * RKN_ABLOCK;
        rkp_k4_half(five, RY, acc, h, x + b * xs, yb);
    }
    rkp_store(RY, acc, out, os, h);
}

/* ---- IQ4_XS ---- */

/* Half h's IQ4_XS scale differences c_s - c_{s+1} (c_s = ls_s - 32, c_8 = 0: -63..63) as
 * signed bytes, from the column at xb: byte k of dd[0] for s = 2k, of dd[1] for s = 2k + 1. */
RN_INLINE void rkp_xs_scale_diffs(const uint8_t *xb, int h, int8x16_t dd[2]) {
    const uint8x16_t sa = vld1q_u8(xb + 48); /* the 8 rows' scales_h */
    uint8x16_t e, o;
    rkn_xs_ls(vld1q_u8(xb + 16 + 16 * h), h ? vzip2q_u8(sa, sa) : vzip1q_u8(sa, sa), &e, &o);
    /* ls_{2k + 2} at byte k, 32 at byte 3: the 32s of c cancel but for c_7 - c_8 */
    const uint32x4_t en =
        vorrq_u32(vshrq_n_u32(vreinterpretq_u32_u8(e), 8), vdupq_n_u32(32u << 24));
    dd[0] = vreinterpretq_s8_u8(vsubq_u8(e, o));
    dd[1] = vreinterpretq_s8_u8(vsubq_u8(o, vreinterpretq_u8_u32(en)));
}

/* Sub-block s of half h of the column at xb against RY activation rows' quants at ya[]
 * (advanced past them): S[c] runs on, isum[c] += S[c] * (c_s - c_{s+1}). Each nibble register
 * is loaded once and feeds both halves of the sub-block, its codes mapped to levels by TBL. */
RN_INLINE void rkp_xs_sub(int RY, int s, int h, const uint8_t *xb, const uint8_t *ya[4],
                          const int8x16_t dd[2], int8x16_t levels, int32x4_t S[4],
                          int32x4_t isum[4]) {
    int8x16_t a[4][2]; /* elements 0..15 (the low nibbles'), 16..31 (the high nibbles') */
    rkp_acts32(RY, ya, a);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const uint8x16_t v = vld1q_u8(xb + 64 + 32 * (4 * s + g) + 16 * h);
        const int8x16_t lo = vqtbl1q_s8(levels, vandq_u8(v, vdupq_n_u8(0x0f)));
        const int8x16_t hi = vqtbl1q_s8(levels, vshrq_n_u8(v, 4));
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++)
            S[c] = rkn1_dot(rkn1_dot(S[c], lo, a[c][0], g), hi, a[c][1], g);
    }
    const int32x4_t d = rkn_sbyte(dd[s % 2], s / 2);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        isum[c] = vmlaq_s32(isum[c], S[c], d);
}

/* Half h of a group of 8 IQ4_XS rows against RY activation rows, as rkp_k4_rows (kind: the
 * signature the group functions share). */
RN_INLINE void rkp_xs_rows(int kind, int RY, int h, int64_t n, float *out, size_t os,
                           const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    const int8x16_t levels = vld1q_s8(quant_iq4_levels);
    float32x4_t acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        acc[c] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *xb = x + b * xs, *yb[4], *ya[4];
        int32x4_t S[4], isum[4];
#pragma GCC unroll 4
        for (int c = 0; c < RY; c++) {
            yb[c] = y + c * ys + b * RKN_ABLOCK;
            ya[c] = yb[c] + 4;
            S[c] = isum[c] = vdupq_n_s32(0);
        }
        int8x16_t dd[2];
        rkp_xs_scale_diffs(xb, h, dd);
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++)
            rkp_xs_sub(RY, s, h, xb, ya, dd, levels, S, isum);
        rkp_fold(RY, acc, isum, rkn_half_scales(xb, h), yb);
    }
    rkp_store(RY, acc, out, os, h);
}

/* Q4_K or Q5_K (by kind) in the signature the group functions share. */
RN_INLINE void rkp_k45_rows(int kind, int RY, int h, int64_t n, float *out, size_t os,
                            const uint8_t *x, size_t xs, const uint8_t *y, size_t ys) {
    if (kind == RKN_Q5_K)
        rkp_k4_rows(1, RY, h, n, out, os, x, xs, y, ys);
    else
        rkp_k4_rows(0, RY, h, n, out, os, x, xs, y, ys);
}

/* A group of 8 rows against RY (2..4) activation rows, one half after the other; ROWS is
 * rkp_k45_rows or rkp_xs_rows. Not inlined and without the scheduling pass
 * before register allocation, as quant_rkn_decode_group. */
typedef void rkp_group_fn(int kind, int64_t n, float *out, size_t os, const uint8_t *x, size_t xs,
                          const uint8_t *y, size_t ys);
#define RKP_GROUP(ROWS, RY)                                                                        \
    static __attribute__((noinline, optimize("no-schedule-insns"))) void ROWS##_group_##RY(        \
        int kind, int64_t n, float *out, size_t os, const uint8_t *x, size_t xs, const uint8_t *y, \
        size_t ys) {                                                                               \
        for (int h = 0; h < 2; h++)                                                                \
            ROWS(kind, RY, h, n, out, os, x, xs, y, ys);                                           \
    }
#define RKP_GROUPS(ROWS) RKP_GROUP(ROWS, 2) RKP_GROUP(ROWS, 3) RKP_GROUP(ROWS, 4)
RKP_GROUPS(rkp_k45_rows)
RKP_GROUPS(rkp_xs_rows)
#undef RKP_GROUPS
#undef RKP_GROUP

void quant_rkn_prefill_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                             size_t xb, const uint8_t *y, size_t ys) {
    static rkp_group_fn *const groups[2][3] = {
        {rkp_k45_rows_group_2, rkp_k45_rows_group_3, rkp_k45_rows_group_4},
        {rkp_xs_rows_group_2, rkp_xs_rows_group_3, rkp_xs_rows_group_4},
    };
    const int t = kind == RKN_IQ4_XS;
    groups[t][RY - 2](kind, n, out, os, x, xb, y, ys);
}
