/*
 * What the repacked NEON K-quant kernels (repack_k_neon.c with SDOT, repack_k_i8mm_neon.c and
 * repack_k_prefill_i8mm_neon.c with SMMLA) share: the layouts' offsets, the unpacking of scales
 * and of one piece of quants into signed bytes. Layouts and arithmetic: repack_k_neon.c's opening
 * comment.
 */
#ifndef OB_QUANT_REPACK_K_NEON_H
#define OB_QUANT_REPACK_K_NEON_H

#include "quant/q8_k.h"
#include "quant/repack_neon.h"

#define RKN_ABLOCK ((size_t)sizeof(block_q8_k)) /* d at 0, qs at 4, bsums at 260 */

enum { RKN_Q4_K, RKN_Q5_K, RKN_Q6_K, RKN_IQ4_XS, RKN_Q2_K, RKN_Q3_K };

/* ---- load-time repacking ---- */

static inline void rkn_pack_q4_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q4_k(src, stride, dst, n, RN_ROWS);
}

static inline void rkn_pack_q5_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q5_k(src, stride, dst, n, RN_ROWS);
}

static inline void rkn_pack_q6_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q6_k(src, stride, dst, n, RN_ROWS);
}

static inline void rkn_pack_iq4_xs(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_iq4_xs(src, stride, dst, n, RN_ROWS);
}

static inline void rkn_pack_q2_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q2_k(src, stride, dst, n, RN_ROWS);
}

static inline void rkn_pack_q3_k(const void *src, size_t stride, void *dst, int64_t n) {
    quant_rp_pack_q3_k(src, stride, dst, n, RN_ROWS);
}

static inline size_t rkn_act_size(int64_t n) {
    return (size_t)(n / QK_K) * RKN_ABLOCK;
}

/* Byte j (0..3, any value) of each int32 lane, zero-extended. */
RN_INLINE int32x4_t rkn_byte(uint8x16_t v, int j) {
    const uint32x4_t w = vshlq_u32(vreinterpretq_u32_u8(v), vdupq_n_s32(-8 * j));
    return vreinterpretq_s32_u32(vandq_u32(w, vdupq_n_u32(0xff)));
}

/* ---- Q4_K and Q5_K ---- */

/* The 4 rows' (one half's) 6-bit scales: sc[0] holds scales 0-3 as the bytes of each row's
 * lane, sc[1] scales 4-7, mn[0..1] the mins alike; unpacked from the three scale words (u0..u2,
 * or loaded from p, 32 bytes apart) as the reference does per row. */
RN_INLINE void rkn_scales_of(uint8x16_t u0, uint8x16_t u1, uint8x16_t u2, uint8x16_t sc[2],
                             uint8x16_t mn[2]) {
    const uint8x16_t m6 = vdupq_n_u8(0x3f), m4 = vdupq_n_u8(0x0f);
    sc[0] = vandq_u8(u0, m6);
    sc[1] = vorrq_u8(vandq_u8(u2, m4), vshlq_n_u8(vshrq_n_u8(u0, 6), 4));
    mn[0] = vandq_u8(u1, m6);
    mn[1] = vorrq_u8(vshrq_n_u8(u2, 4), vshlq_n_u8(vshrq_n_u8(u1, 6), 4));
}

RN_INLINE void rkn_scales(const uint8_t *p, uint8x16_t sc[2], uint8x16_t mn[2]) {
    rkn_scales_of(vld1q_u8(p), vld1q_u8(p + 32), vld1q_u8(p + 64), sc, mn);
}

/* Byte j of each int32 lane of d, sign-extended; j a constant after inlining. */
RN_INLINE int32x4_t rkn_sbyte(int8x16_t d, int j) {
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
RN_INLINE void rkn_scale_diffs(const uint8x16_t sc[2], int8x16_t dd[2]) {
    const uint32x4_t s0 = vreinterpretq_u32_u8(sc[0]), s1 = vreinterpretq_u32_u8(sc[1]);
    const uint32x4_t n0 = vsliq_n_u32(vshrq_n_u32(s0, 8), s1, 24), n1 = vshrq_n_u32(s1, 8);
    dd[0] = vreinterpretq_s8_u8(vsubq_u8(sc[0], vreinterpretq_u8_u32(n0)));
    dd[1] = vreinterpretq_s8_u8(vsubq_u8(sc[1], vreinterpretq_u8_u32(n1)));
}

/* The IQ4_XS 6-bit scales ls (0..63) of 4 rows, one row per lane, from their scales_l words sl
 * and their scales_h words spread over the lanes as [b0, b0, b1, b1] (ZIP of the register of
 * the 8 rows' scales_h with itself: ZIP1 rows 0-3, ZIP2 rows 4-7), sh: byte k of *e holds
 * ls_{2k} (low nibble of scales_l byte k), of *o ls_{2k + 1} (high nibble). Byte k of sh has
 * the high bits of 2k and 2k + 1 at bits 4(k % 2)..4(k % 2) + 3. */
RN_INLINE void rkn_xs_ls(uint8x16_t sl, uint8x16_t sh, uint8x16_t *e, uint8x16_t *o) {
    /* bits 4..7 of the odd bytes down to 0..3: the high bits of 2k at bits 0..1, of 2k + 1 at
     * 2..3 (the even bytes keep other bits above, which SLI shifts out) */
    const uint8x16_t t = vshlq_u8(sh, vreinterpretq_s8_u32(vdupq_n_u32(0xfc00fc00)));
    /* the odd sub-blocks' from the high nibbles first: SRI leaves sl intact, SLI does not */
    *o = vsriq_n_u8(vandq_u8(vshlq_n_u8(t, 2), vdupq_n_u8(0x30)), sl, 4);
    *e = vsliq_n_u8(sl, vandq_u8(t, vdupq_n_u8(0x03)), 4);
}

/* Q2_K (layout of repack_q2_k_avx2.c at 8 rows: f16 d[8], dmin[8], four scale words at 32,
 * then 8 chunks of 32 elements from 160, each two pieces of 2-bit quants): elements 4g..4g+3
 * (g < 8) of the chunk at cb, half h, as 0..3. */
RN_INLINE int8x16_t rkn_q2_piece(const uint8_t *cb, int g, int h) {
    const uint8x16_t l = vld1q_u8(cb + 32 * (g / 4) + 16 * h);
    return vreinterpretq_s8_u8(
        vandq_u8(vshlq_u8(l, vdupq_n_s8((int8_t)(-2 * (g % 4)))), vdupq_n_u8(3)));
}

/* Q2_K sub-block j's scale (sc) and min (mn) of half h's rows, 0..15 each. */
RN_INLINE void rkn_q2_scale(const uint8_t *xb, int j, int h, int32x4_t *sc, int32x4_t *mn) {
    const int32x4_t b = rkn_byte(vld1q_u8(xb + 32 + 32 * (j / 4) + 16 * h), j % 4);
    *sc = vandq_s32(b, vdupq_n_s32(0xf));
    *mn = vshrq_n_s32(b, 4);
}

/* Q3_K (layout of repack_q3_k_avx2.c at 8 rows: f16 d[8], three scale words at 16, then 8
 * chunks of 32 elements from 112, each a piece of high bits and two of low bits): elements
 * 4g..4g+3 (g < 8) of the chunk at ch, half h, as u = q + 4 (0..7). */
RN_INLINE int8x16_t rkn_q3_piece(const uint8_t *ch, int g, int h) {
    const uint8x16_t hb = vld1q_u8(ch + 16 * h), l = vld1q_u8(ch + 32 + 32 * (g / 4) + 16 * h);
    const uint8x16_t lo = vandq_u8(vshlq_u8(l, vdupq_n_s8((int8_t)(-2 * (g % 4)))), vdupq_n_u8(3));
    const uint8x16_t top = vandq_u8(vshlq_u8(hb, vdupq_n_s8((int8_t)(2 - g))), vdupq_n_u8(4));
    return vreinterpretq_s8_u8(vorrq_u8(lo, top));
}

/* Q3_K sub-block j's scale (-32..31) of half h's rows: low 4 bits in byte j % 8 of words 0-1
 * (its high nibble for j >= 8), high 2 bits at bits 2 (j / 4) of byte j % 4 of word 2. */
RN_INLINE int32x4_t rkn_q3_scale(const uint8_t *xb, int j, int h) {
    const uint32x4_t w = vld1q_u32((const uint32_t *)(xb + 16 + 32 * ((j % 8) / 4) + 16 * h));
    const uint32x4_t w2 = vld1q_u32((const uint32_t *)(xb + 80 + 16 * h));
    const uint32x4_t lo =
        vandq_u32(vshlq_u32(w, vdupq_n_s32(-(8 * (j % 4) + 4 * (j / 8)))), vdupq_n_u32(0xf));
    const uint32x4_t hi =
        vandq_u32(vshlq_u32(w2, vdupq_n_s32(-(8 * (j % 4) + 2 * (j / 4)))), vdupq_n_u32(3));
    return vsubq_s32(vreinterpretq_s32_u32(vorrq_u32(lo, vshlq_n_u32(hi, 4))), vdupq_n_s32(32));
}

/* The f16 scales of half h at xb (d, or dmin at xb + 16). */
RN_INLINE float32x4_t rkn_half_scales(const uint8_t *xb, int h) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)xb + 4 * h)));
}

/* Sub-block j's 16-sum. */
RN_INLINE int32_t rkn_ysum16(const uint8_t *yb, int j) {
    int16_t b;
    memcpy(&b, yb + 260 + 2 * j, sizeof b);
    return b;
}

/* ---- shared by the SMMLA kernels (repack_k_i8mm_neon.c, repack_k_prefill_i8mm_neon.c) ---- */

/* Rows (0, 1) and (2, 3) of a half from pieces w0, w1 (elements 4g.., 4g + 4.. of 4 rows):
 * 8 consecutive quants of 2 rows per register, an SMMLA operand. */
RN_INLINE void rkn_mm_rows(int8x16_t w0, int8x16_t w1, int8x16_t m[2]) {
    const int32x4_t u0 = vreinterpretq_s32_s8(w0), u1 = vreinterpretq_s32_s8(w1);
    m[0] = vreinterpretq_s8_s32(vzip1q_s32(u0, u1));
    m[1] = vreinterpretq_s8_s32(vzip2q_s32(u0, u1));
}

/* A per-row vector [v0, v1, v2, v3] in the order of row pair i's tiles: [v2i, v2i, v2i+1,
 * v2i+1]. */
RN_INLINE int32x4_t rkn_mm_tile_s32(int32x4_t v, int i) {
    return i ? vzip2q_s32(v, v) : vzip1q_s32(v, v);
}
RN_INLINE float32x4_t rkn_mm_tile_f32(float32x4_t v, int i) {
    return i ? vzip2q_f32(v, v) : vzip1q_f32(v, v);
}

/* ---- shared by the SDOT decode and prefill kernels ---- */

/* acc + the by-element SDOT of w and elements 4l..4l+3 of a; l a constant after inlining. */
RN_INLINE int32x4_t rkn1_dot(int32x4_t acc, int8x16_t w, int8x16_t a, int l) {
    switch (l) {
    case 0: return vdotq_laneq_s32(acc, w, a, 0);
    case 1: return vdotq_laneq_s32(acc, w, a, 1);
    case 2: return vdotq_laneq_s32(acc, w, a, 2);
    default: return vdotq_laneq_s32(acc, w, a, 3);
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

/* The Q4_K / Q5_K min term by SDOT: each activation sub-block sum ys_j (|.| <= 4064) is split
 * as 64 hi + lo, hi (-64..63) and lo (0..63) bytes, which meet the mins (four bytes per row
 * lane, as rkn_scales_of leaves them) exactly. rkn_msum_bytes gives the split for the
 * activation block at yb: int32 lanes 0 the hi of sub-blocks 0-3, 1 of 4-7, 2 the lo of 0-3,
 * 3 of 4-7. */
RN_INLINE int8x16_t rkn_msum_bytes(const uint8_t *yb) {
    const int16x8x2_t bs = vld1q_s16_x2((const int16_t *)(yb + 260));
    const int16x8_t ys = vpaddq_s16(bs.val[0], bs.val[1]);
    return vuzp1q_s8(vreinterpretq_s8_s16(vshrq_n_s16(ys, 6)),
                     vreinterpretq_s8_s16(vandq_s16(ys, vdupq_n_s16(63))));
}

/* One half's min term (one row per lane) from its mins mn and rkn_msum_bytes's hl. */
RN_INLINE int32x4_t rkn_msum_half(const uint8x16_t mn[2], int8x16_t hl) {
    const int8x16_t m0 = vreinterpretq_s8_u8(mn[0]), m1 = vreinterpretq_s8_u8(mn[1]);
    int32x4_t t = vdotq_laneq_s32(vdupq_n_s32(0), m0, hl, 0);
    t = vshlq_n_s32(vdotq_laneq_s32(t, m1, hl, 1), 6);
    return vdotq_laneq_s32(vdotq_laneq_s32(t, m0, hl, 2), m1, hl, 3);
}

/* Q4_K, Q5_K, Q6_K and IQ4_XS (kind RKN_*) against one activation row
 * (repack_k_decode_neon.c) and against RY (2..4) rows (repack_k_prefill_neon.c): one group of 8
 * rows at x, xb bytes per super-block column, activation rows at y (ys apart), results at out (os
 * apart). */
void quant_rkn_decode_group(int kind, int64_t n, float *out, const uint8_t *x, const uint8_t *y,
                            size_t xb);
void quant_rkn_prefill_group(int kind, int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                             size_t xb, const uint8_t *y, size_t ys);
/* Q6_K against RY (2..8) activation rows (repack_q6_k_prefill_neon.c), as above. */
void quant_rkn_q6_prefill_group(int RY, int64_t n, float *out, size_t os, const uint8_t *x,
                                size_t xb, const uint8_t *y, size_t ys);

/* Q4_K, Q5_K and Q6_K with I8MM (repack_k_prefill_i8mm_neon.c): rp_dot's product of nx rows
 * (groups of 8 at x, xs apart) and ny activation rows (at y, ys apart) into out (os apart),
 * a single activation row through the SDOT kernels. */
void quant_rkq_dot(int kind, int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                   const uint8_t *x, size_t xs, const uint8_t *y, size_t ys);

#endif
