/*
 * NEON kernel sets (with the Armv8.2 dot-product extension) for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
 * and Q8_1: dot products where each 32-element block pair is two SDOT instructions into four
 * exact int32 partial sums, scaled and accumulated in float (two accumulators), and the Q8
 * activation quantizers, bit-exact with the reference (FCVTAS rounds half away from zero,
 * as roundf does).
 */
#include "quant/quant_impl.h"

#include <arm_neon.h>

/* 16 bytes of nibbles -> the block's elements 0..15 (low nibbles) and 16..31 (high). */
static inline void neon_nibbles(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t v = vld1q_u8(qs);
    *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/* The 32 high bits of a Q5 block -> 0x10 in each byte whose bit is set, else 0. */
static inline void neon_bit4(const uint8_t *qh, int8x16_t *lo, int8x16_t *hi) {
    static const uint8_t IDX_LO[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint8_t IDX_HI[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t BIT[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t w = vreinterpretq_u8_u32(vdupq_n_u32(quant_load_u32(qh)));
    uint8x16_t bit = vld1q_u8(BIT), ten = vdupq_n_u8(0x10);
    *lo = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(w, vld1q_u8(IDX_LO)), bit), ten));
    *hi = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(w, vld1q_u8(IDX_HI)), bit), ten));
}

/* Sum of 32 products of x (lo, hi halves) with the activation quants -> 4 int32 partials. */
static inline int32x4_t neon_dot32(int8x16_t lo, int8x16_t hi, const int8_t *y) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(y)), hi, vld1q_s8(y + 16));
}

static inline float neon_f16(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* ---- block products ---- */

static inline int32x4_t q4_0_block(const quant_block_q4_0 *x, const quant_block_q8_0 *y) {
    int8x16_t lo, hi;
    neon_nibbles(x->qs, &lo, &hi);
    const int8x16_t eight = vdupq_n_s8(8);
    return neon_dot32(vsubq_s8(lo, eight), vsubq_s8(hi, eight), y->qs);
}

static inline int32x4_t q4_1_block(const quant_block_q4_1 *x, const quant_block_q8_1 *y) {
    int8x16_t lo, hi;
    neon_nibbles(x->qs, &lo, &hi);
    return neon_dot32(lo, hi, y->qs);
}

static inline int32x4_t q5_0_block(const quant_block_q5_0 *x, const quant_block_q8_0 *y) {
    int8x16_t lo, hi, blo, bhi;
    neon_nibbles(x->qs, &lo, &hi);
    neon_bit4(x->qh, &blo, &bhi);
    const int8x16_t sixteen = vdupq_n_s8(16);
    return neon_dot32(vsubq_s8(vorrq_s8(lo, blo), sixteen), vsubq_s8(vorrq_s8(hi, bhi), sixteen),
                      y->qs);
}

static inline int32x4_t q5_1_block(const quant_block_q5_1 *x, const quant_block_q8_1 *y) {
    int8x16_t lo, hi, blo, bhi;
    neon_nibbles(x->qs, &lo, &hi);
    neon_bit4(x->qh, &blo, &bhi);
    return neon_dot32(vorrq_s8(lo, blo), vorrq_s8(hi, bhi), y->qs);
}

static inline int32x4_t q8_0_block(const quant_block_q8_0 *x, const quant_block_q8_0 *y) {
    return neon_dot32(vld1q_s8(x->qs), vld1q_s8(x->qs + 16), y->qs);
}

static inline int32x4_t q8_1_block(const quant_block_q8_1 *x, const quant_block_q8_1 *y) {
    return neon_dot32(vld1q_s8(x->qs), vld1q_s8(x->qs + 16), y->qs);
}

/* ---- row dot products: acc += d_x * d_y * (int sums), two blocks per step ---- */

#define NEON_DOT_LOOP(BLOCK, bx, by, nb, out)                                                   \
    do {                                                                                        \
        float32x4_t acc0_ = vdupq_n_f32(0), acc1_ = vdupq_n_f32(0);                            \
        int64_t i_ = 0;                                                                         \
        for (; i_ + 1 < (nb); i_ += 2) {                                                        \
            float d0 = neon_f16(bx[i_].d) * neon_f16(by[i_].d);                                 \
            float d1 = neon_f16(bx[i_ + 1].d) * neon_f16(by[i_ + 1].d);                         \
            acc0_ = vfmaq_n_f32(acc0_, vcvtq_f32_s32(BLOCK(&bx[i_], &by[i_])), d0);             \
            acc1_ = vfmaq_n_f32(acc1_, vcvtq_f32_s32(BLOCK(&bx[i_ + 1], &by[i_ + 1])), d1);     \
        }                                                                                       \
        if (i_ < (nb)) {                                                                        \
            float d0 = neon_f16(bx[i_].d) * neon_f16(by[i_].d);                                 \
            acc0_ = vfmaq_n_f32(acc0_, vcvtq_f32_s32(BLOCK(&bx[i_], &by[i_])), d0);             \
        }                                                                                       \
        out = vaddvq_f32(vaddq_f32(acc0_, acc1_));                                              \
    } while (0)

/* Sum over blocks of m_x * s_y, the offset term of the _1 types. */
static inline float neon_min_sum(const uint16_t *m, size_t m_stride, const uint16_t *s,
                                 size_t s_stride, int64_t nb) {
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++)
        sum += neon_f16(m[i * m_stride]) * neon_f16(s[i * s_stride]);
    return sum;
}

static void q4_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q4_0 *bx = x;
    const quant_block_q8_0 *by = y;
    NEON_DOT_LOOP(q4_0_block, bx, by, n / 32, *out);
}

static void q4_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q4_1 *bx = x;
    const quant_block_q8_1 *by = y;
    float s;
    NEON_DOT_LOOP(q4_1_block, bx, by, n / 32, s);
    *out = s + neon_min_sum(&bx[0].m, sizeof *bx / 2, &by[0].s, sizeof *by / 2, n / 32);
}

static void q5_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q5_0 *bx = x;
    const quant_block_q8_0 *by = y;
    NEON_DOT_LOOP(q5_0_block, bx, by, n / 32, *out);
}

static void q5_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q5_1 *bx = x;
    const quant_block_q8_1 *by = y;
    float s;
    NEON_DOT_LOOP(q5_1_block, bx, by, n / 32, s);
    *out = s + neon_min_sum(&bx[0].m, sizeof *bx / 2, &by[0].s, sizeof *by / 2, n / 32);
}

static void q8_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q8_0 *bx = x, *by = y;
    NEON_DOT_LOOP(q8_0_block, bx, by, n / 32, *out);
}

static void q8_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q8_1 *bx = x, *by = y;
    NEON_DOT_LOOP(q8_1_block, bx, by, n / 32, *out);
}

/* ---- activation quantizers ---- */

/* One block of 32 floats -> quants as the reference; returns d, sets *sum of the quants. */
static inline float neon_quantize_q8_block(const float *x, int8_t *qs, int *sum) {
    float32x4_t v[8], m = vdupq_n_f32(0);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxq_f32(m, vabsq_f32(v[k]));
    }
    float amax = vmaxvq_f32(m);
    float d = amax / 127, id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t q[8], s = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) {
        q[k] = vcvtaq_s32_f32(vmulq_n_f32(v[k], id));
        s = vaddq_s32(s, q[k]);
    }
    *sum = vaddvq_s32(s);
    for (int k = 0; k < 8; k += 4) {
        int16x8_t a = vcombine_s16(vqmovn_s32(q[k]), vqmovn_s32(q[k + 1]));
        int16x8_t b = vcombine_s16(vqmovn_s32(q[k + 2]), vqmovn_s32(q[k + 3]));
        vst1q_s8(qs + 4 * k, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
    }
    return d;
}

static void q8_0_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        b[i].d = quant_to_f16(neon_quantize_q8_block(src + 32 * i, b[i].qs, &sum));
    }
}

static void q8_1_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        float d = neon_quantize_q8_block(src + 32 * i, b[i].qs, &sum);
        b[i].d = quant_to_f16(d);
        b[i].s = quant_to_f16((float)sum * d);
    }
}

const quant_impl quant_q4_0_neon = {.vec_dot = q4_0_vec_dot};
const quant_impl quant_q4_1_neon = {.vec_dot = q4_1_vec_dot};
const quant_impl quant_q5_0_neon = {.vec_dot = q5_0_vec_dot};
const quant_impl quant_q5_1_neon = {.vec_dot = q5_1_vec_dot};
const quant_impl quant_q8_0_neon = {.from_f32 = q8_0_from_f32, .vec_dot = q8_0_vec_dot};
const quant_impl quant_q8_1_neon = {.from_f32 = q8_1_from_f32, .vec_dot = q8_1_vec_dot};
