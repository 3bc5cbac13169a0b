/*
 * Q4_K, Q5_K and Q6_K weights repacked 8 rows at a time, NEON with SDOT: the K-quant
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
 * fit in int32 (Q6_K's largest: 16 sub-blocks x 127 x 4 x 4 x 63 x 127 < 2^29).
 *
 * Activation rows (rp_act) are plain Q8_K blocks (float d; int8 qs[256]; int16 bsums[16]).
 * Each super-block is folded as acc += float(isum) * (d * dy), then for Q4_K and Q5_K
 * acc -= float(msum) * (dmin * dy), the same operations whatever the number of activation
 * rows; results equal the reference vec_dot up to float order.
 */
#include "quant/q8_k.h"
#include "quant/repack_neon.h"

#define RKN_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

enum { RKN_Q4_K, RKN_Q5_K, RKN_Q6_K };

/* ---- load-time repacking ---- */

static void rkn_pack_q4_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_k(src, stride, dst, n, RN_ROWS);
}

static void rkn_pack_q5_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_k(src, stride, dst, n, RN_ROWS);
}

static void rkn_pack_q6_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q6_k(src, stride, dst, n, RN_ROWS);
}

static size_t rkn_act_size(int64_t n) { return (size_t)(n / QK_K) * RKN_ABLOCK; }

/* Byte j (0..3, any value) of each int32 lane, zero-extended. */
RN_INLINE int32x4_t rkn_byte(uint8x16_t v, int j) {
    const uint32x4_t w = vshlq_u32(vreinterpretq_u32_u8(v), vdupq_n_s32(-8 * j));
    return vreinterpretq_s32_u32(vandq_u32(w, vdupq_n_u32(0xff)));
}

/* ---- Q4_K and Q5_K ---- */

/* The 4 rows' (one half's) 6-bit scales: sc[0] holds scales 0-3 as the bytes of each row's
 * lane, sc[1] scales 4-7, mn[0..1] the mins alike; unpacked from the three scale words as the
 * reference does per row. */
RN_INLINE void rkn_scales(const uint8_t *p, uint8x16_t sc[2], uint8x16_t mn[2]) {
    const uint8x16_t u0 = vld1q_u8(p), u1 = vld1q_u8(p + 32), u2 = vld1q_u8(p + 64);
    const uint8x16_t m6 = vdupq_n_u8(0x3f), m4 = vdupq_n_u8(0x0f);
    sc[0] = vandq_u8(u0, m6);
    sc[1] = vorrq_u8(vandq_u8(u2, m4), vshlq_n_u8(vshrq_n_u8(u0, 6), 4));
    mn[0] = vandq_u8(u1, m6);
    mn[1] = vorrq_u8(vshrq_n_u8(u2, 4), vshlq_n_u8(vshrq_n_u8(u1, 6), 4));
}

/* One sub-block (32 elements) of half h's pieces: low nibbles (hi 0) or high nibbles (hi 1) of
 * the 8 pieces at qc, with the fifth bits of plane fh when five, against RY activation rows'
 * quants at byte `at` of their blocks: s[c] += sum. A macro so that g is a literal where the
 * lane must be one. */
#define RKN_SDOT_PIECE(g)                                                                      \
    do {                                                                                       \
        const uint8x16_t v = vld1q_u8(qc + 32 * (g) + 16 * h);                                \
        uint8x16_t u = hi ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0f));                  \
        if (five) u = vorrq_u8(u, vandq_u8(vshlq_u8(fh, vdupq_n_s8(4 - (g))), vdupq_n_u8(0x10))); \
        const int8x16_t w = vreinterpretq_s8_u8(u);                                            \
        for (int c = 0; c < RY; c++) s[c] = vdotq_laneq_s32(s[c], w, a[c][(g) / 4], (g) % 4);  \
    } while (0)

RN_INLINE void rkn_k4_sub(int five, int RY, int32x4_t s[4], const uint8_t *qc, int h, int hi,
                          uint8x16_t fh, const uint8_t *y, size_t ys, int at) {
    int8x16_t a[4][2];
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
    for (int c = 0; c < RY; c++) isum[c] = vdupq_n_s32(0);
    for (int cc = 0; cc < 4; cc++) {
        const uint8_t *qc = xb + (five ? 192 + 320 * cc : 128 + 256 * cc);
        for (int hi = 0; hi < 2; hi++) { /* sub-block 2cc + hi */
            const int j = 2 * cc + hi;
            const uint8x16_t fh = five ? vld1q_u8(qc - 64 + 32 * hi + 16 * h) : vdupq_n_u8(0);
            rkn_k4_sub(five, RY, s, qc, h, hi, fh, y, ys, 4 + 32 * j);
            const int32x4_t scj = rkn_byte(sc[j / 4], j % 4);
            for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], s[c], scj);
        }
    }
    const float16x4_t hd = vreinterpret_f16_u16(vld1_u16((const uint16_t *)xb + 4 * h));
    const float16x4_t hm = vreinterpret_f16_u16(vld1_u16((const uint16_t *)xb + 8 + 4 * h));
    const float32x4_t dx = vcvt_f32_f16(hd), mx = vcvt_f32_f16(hm);
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ys;
        int16_t bs[16];
        memcpy(bs, yb + 260, sizeof bs);
        int32x4_t msum = vdupq_n_s32(0);
        for (int j = 0; j < 8; j++)
            msum = vmlaq_n_s32(msum, rkn_byte(mn[j / 4], j % 4), bs[2 * j] + bs[2 * j + 1]);
        const float dy = rn_load_f32(yb);
        acc[c][h] = vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]), vmulq_n_f32(dx, dy));
        acc[c][h] = vfmsq_f32(acc[c][h], vcvtq_f32_s32(msum), vmulq_n_f32(mx, dy));
    }
}

/* ---- Q6_K ---- */

/* Piece g (elements 4g.. of a 16-element sub-block) of half h: low nibbles (hi 0) or high
 * (hi 1) of the nibble piece with their two high bits from plane hb (bits 2g..2g+1) at bits
 * 4..5, as u = q + 32. */
#define RKN_Q6_PIECE(g)                                                                        \
    do {                                                                                       \
        const uint8x16_t v = vld1q_u8(ch + 64 + 32 * (g) + 16 * h);                           \
        const uint8x16_t lo = hi ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0f));           \
        const uint8x16_t top = vandq_u8(vshlq_u8(hb, vdupq_n_s8(4 - 2 * (g))), vdupq_n_u8(0x30)); \
        const int8x16_t w = vreinterpretq_s8_u8(vorrq_u8(lo, top));                            \
        for (int c = 0; c < RY; c++) s[c] = vdotq_laneq_s32(s[c], w, a[c], (g));               \
    } while (0)

RN_INLINE void rkn_q6_block(int RY, float32x4_t acc[4][2], int h, const uint8_t *xb,
                            const uint8_t *y, size_t ys) {
    int32x4_t isum[4];
    for (int c = 0; c < RY; c++) isum[c] = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) { /* 32 elements: sub-blocks 2k (hi 0) and 2k + 1 (hi 1) */
        const uint8_t *ch = xb + 144 + 192 * k;
        /* the rows' int8 scale pairs (2k, 2k + 1), row r at int16 lane r */
        const int16x8_t pr = vld1q_s16((const int16_t *)(xb + 16 + 16 * k));
        const int16x4_t ph = h ? vget_high_s16(pr) : vget_low_s16(pr);
        const int32x4_t sca = vmovl_s16(vshr_n_s16(vshl_n_s16(ph, 8), 8)), scb =
                                  vmovl_s16(vshr_n_s16(ph, 8));
        for (int hi = 0; hi < 2; hi++) {
            const int j = 2 * k + hi;
            const uint8x16_t hb = vld1q_u8(ch + 32 * hi + 16 * h);
            int8x16_t a[4];
            int32x4_t s[4];
            for (int c = 0; c < RY; c++) {
                const uint8_t *yb = y + c * ys;
                int16_t bsum;
                memcpy(&bsum, yb + 260 + 2 * j, 2);
                a[c] = vld1q_s8((const int8_t *)yb + 4 + 16 * j);
                s[c] = vdupq_n_s32(-32 * (int32_t)bsum);
            }
            RKN_Q6_PIECE(0);
            RKN_Q6_PIECE(1);
            RKN_Q6_PIECE(2);
            RKN_Q6_PIECE(3);
            for (int c = 0; c < RY; c++) isum[c] = vmlaq_s32(isum[c], s[c], hi ? scb : sca);
        }
    }
    const float32x4_t dx =
        vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)xb + 4 * h)));
    for (int c = 0; c < RY; c++)
        acc[c][h] = vfmaq_f32(acc[c][h], vcvtq_f32_s32(isum[c]),
                              vmulq_n_f32(dx, rn_load_f32(y + c * ys)));
}

/* ---- all three ---- */

/* One group of 8 rows against RY (1..4, constant after inlining) activation rows, one half of
 * 4 rows at a time (a whole group's accumulators and unpacked weights would not fit the 32
 * registers). */
RN_INLINE void rkn_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                         const uint8_t *y, size_t ys) {
    const size_t xb = RN_ROWS * (kind == RKN_Q4_K   ? sizeof(block_q4_k)
                                 : kind == RKN_Q5_K ? sizeof(block_q5_k)
                                                    : sizeof(block_q6_k));
    float32x4_t acc[4][2];
    for (int c = 0; c < RY; c++) acc[c][0] = acc[c][1] = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK_K; b++) {
        for (int h = 0; h < 2; h++) {
            if (kind == RKN_Q6_K) rkn_q6_block(RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys);
            else
                rkn_k4_block(kind == RKN_Q5_K, RY, acc, h, x + b * xb, y + b * RKN_ABLOCK, ys);
        }
    }
    for (int c = 0; c < RY; c++) {
        vst1q_f32(out + c * os, acc[c][0]);
        vst1q_f32(out + c * os + 4, acc[c][1]);
    }
}

#define RKN_DEFINE_DOT(NAME, KIND) REPACK_DEFINE_DOT(NAME, rkn_group, KIND, RN_ROWS)

RKN_DEFINE_DOT(rkn_dot_q4_k, RKN_Q4_K)
RKN_DEFINE_DOT(rkn_dot_q5_k, RKN_Q5_K)
RKN_DEFINE_DOT(rkn_dot_q6_k, RKN_Q6_K)

const quant_repack_impl quant_q4_k_repack_neon = {RN_ROWS, rkn_pack_q4_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rkn_dot_q4_k};
const quant_repack_impl quant_q5_k_repack_neon = {RN_ROWS, rkn_pack_q5_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rkn_dot_q5_k};
const quant_repack_impl quant_q6_k_repack_neon = {RN_ROWS, rkn_pack_q6_k, rkn_act_size,
                                                 quant_q8_k_from_f32_neon, rkn_dot_q6_k};
