/*
 * NEON kernel sets (with the Armv8.2 dot-product extension) for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
 * and Q8_1: dot products where each 32-element block pair is two SDOT instructions into four
 * exact int32 partial sums, scaled and accumulated in float (two accumulators), and the Q8
 * activation quantizers, bit-exact with the reference (FCVTAS rounds half away from zero,
 * as roundf does).
 */
#include "quant/quant_impl.h"
#include "quant/simd_neon.h"

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

/* ---- block products ----
 * Each kernel is one always-inlined body specialised by a constant `kind` (the switches fold
 * away); blocks are addressed as bytes so one body serves every layout. */

#define NEON_INLINE static inline __attribute__((always_inline))

enum { LK_Q4_0, LK_Q4_1, LK_Q5_0, LK_Q5_1, LK_Q8_0, LK_Q8_1 };

NEON_INLINE size_t lk_xsize(int kind) {
    static const size_t S[] = {18, 20, 22, 24, 34, 36};
    return S[kind];
}
NEON_INLINE size_t lk_ysize(int kind) {
    return kind == LK_Q4_1 || kind == LK_Q5_1 || kind == LK_Q8_1 ? 36 : 34;
}
NEON_INLINE int lk_has_min(int kind) { return kind == LK_Q4_1 || kind == LK_Q5_1; }

NEON_INLINE float lk_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return neon_f16(h);
}

/* 4 int32 partial sums of one weight block (x) times one activation block (y). */
NEON_INLINE int32x4_t lk_block(int kind, const uint8_t *x, const uint8_t *y) {
    const int8_t *qy = (const int8_t *)(y + lk_ysize(kind) - 32);
    int8x16_t lo, hi, blo, bhi;
    switch (kind) {
    case LK_Q4_0:
        neon_nibbles(x + 2, &lo, &hi);
        return neon_dot32(vsubq_s8(lo, vdupq_n_s8(8)), vsubq_s8(hi, vdupq_n_s8(8)), qy);
    case LK_Q4_1:
        neon_nibbles(x + 4, &lo, &hi);
        return neon_dot32(lo, hi, qy);
    case LK_Q5_0:
        neon_nibbles(x + 6, &lo, &hi);
        neon_bit4(x + 2, &blo, &bhi);
        return neon_dot32(vsubq_s8(vorrq_s8(lo, blo), vdupq_n_s8(16)),
                          vsubq_s8(vorrq_s8(hi, bhi), vdupq_n_s8(16)), qy);
    case LK_Q5_1:
        neon_nibbles(x + 8, &lo, &hi);
        neon_bit4(x + 4, &blo, &bhi);
        return neon_dot32(vorrq_s8(lo, blo), vorrq_s8(hi, bhi), qy);
    case LK_Q8_0:
        return neon_dot32(vld1q_s8((const int8_t *)x + 2), vld1q_s8((const int8_t *)x + 18), qy);
    default:
        return neon_dot32(vld1q_s8((const int8_t *)x + 4), vld1q_s8((const int8_t *)x + 20), qy);
    }
}

/* Sum over blocks of m_x * s_y, the offset term of the _1 types (zero for the others). */
NEON_INLINE float lk_min_sum(int kind, int64_t nb, const uint8_t *x, const uint8_t *y) {
    float s = 0.0f;
    if (!lk_has_min(kind)) return s;
    for (int64_t i = 0; i < nb; i++)
        s += lk_half(x + i * lk_xsize(kind) + 2) * lk_half(y + i * lk_ysize(kind) + 2);
    return s;
}

/* One row pair: acc += d_x * d_y * (int sums), two blocks per step, two accumulators. */
NEON_INLINE float lk_vec_dot(int kind, int64_t n, const uint8_t *x, const uint8_t *y) {
    const size_t xs = lk_xsize(kind), ys = lk_ysize(kind);
    const int64_t nb = n / 32;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const uint8_t *x0 = x + i * xs, *y0 = y + i * ys;
        float d0 = lk_half(x0) * lk_half(y0), d1 = lk_half(x0 + xs) * lk_half(y0 + ys);
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(lk_block(kind, x0, y0)), d0);
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(lk_block(kind, x0 + xs, y0 + ys)), d1);
    }
    if (i < nb) {
        float d0 = lk_half(x + i * xs) * lk_half(y + i * ys);
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(lk_block(kind, x + i * xs, y + i * ys)), d0);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1)) + lk_min_sum(kind, nb, x, y);
}

/* One weight block times RY activation blocks (y row c at y + c * ystride) into acc[c]. */
NEON_INLINE void lk_micro_block(int kind, int RY, const uint8_t *xb, const uint8_t *y,
                                size_t ystride, float32x4_t *acc) {
    const float dx = lk_half(xb);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) {
        const uint8_t *yb = y + c * ystride;
        acc[c] = vfmaq_n_f32(acc[c], vcvtq_f32_s32(lk_block(kind, xb, yb)), dx * lk_half(yb));
    }
}

/* One weight row x RY activation rows (RY <= 4, constant after inlining); each weight block
 * is unpacked once for all of them. out[c * os] = dot(x, y row c). Each row accumulates
 * exactly as lk_vec_dot does (even blocks, odd blocks, then their sum), so a token's result
 * does not depend on how many tokens share the matmul. */
NEON_INLINE void lk_micro(int kind, int RY, int64_t nb, float *out, size_t os, const uint8_t *x,
                          const uint8_t *y, size_t ystride) {
    const size_t xs = lk_xsize(kind), ys = lk_ysize(kind);
    float32x4_t acc0[4], acc1[4];
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++) acc0[c] = acc1[c] = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        lk_micro_block(kind, RY, x + i * xs, y + i * ys, ystride, acc0);
        lk_micro_block(kind, RY, x + (i + 1) * xs, y + (i + 1) * ys, ystride, acc1);
    }
    if (i < nb) lk_micro_block(kind, RY, x + i * xs, y + i * ys, ystride, acc0);
#pragma GCC unroll 4
    for (int c = 0; c < RY; c++)
        out[c * os] = vaddvq_f32(vaddq_f32(acc0[c], acc1[c])) +
                      lk_min_sum(kind, nb, x, y + c * ystride);
}

/* Activation rows in groups of four, weight rows one at a time (one sequential weight stream,
 * activations in L1). Arguments as quant_dot_tile_fn. */
NEON_INLINE void lk_tile(int kind, int64_t n, int64_t nx, int64_t ny, float *out, size_t os,
                         const void *xv, size_t xstride, const void *yv, size_t ystride) {
    const uint8_t *x = xv, *y = yv;
    const int64_t nb = n / 32;
    for (int64_t c = 0; c < ny; c += 4) {
        const uint8_t *yc = y + c * ystride;
        float *oc = out + c * os;
        for (int64_t r = 0; r < nx; r++) {
            const uint8_t *xr = x + r * xstride;
            switch (ny - c) {
            case 1: oc[r] = lk_vec_dot(kind, n, xr, yc); break;
            case 2: lk_micro(kind, 2, nb, oc + r, os, xr, yc, ystride); break;
            case 3: lk_micro(kind, 3, nb, oc + r, os, xr, yc, ystride); break;
            default: lk_micro(kind, 4, nb, oc + r, os, xr, yc, ystride);
            }
        }
    }
}

/* ---- entry points ---- */

#define NEON_ENTRY(type, kind)                                                                  \
    static void type##_vec_dot(int64_t n, float *out, const void *x, const void *y) {          \
        *out = lk_vec_dot(kind, n, x, y);                                                       \
    }                                                                                           \
    static void type##_dot_tile(int64_t n, int64_t nx, int64_t ny, float *out, size_t os,       \
                                const void *x, size_t xs, const void *y, size_t ys) {           \
        lk_tile(kind, n, nx, ny, out, os, x, xs, y, ys);                                        \
    }
NEON_ENTRY(q4_0, LK_Q4_0)
NEON_ENTRY(q4_1, LK_Q4_1)
NEON_ENTRY(q5_0, LK_Q5_0)
NEON_ENTRY(q5_1, LK_Q5_1)
NEON_ENTRY(q8_0, LK_Q8_0)
NEON_ENTRY(q8_1, LK_Q8_1)

/* ---- Q8_0 / Q8_1 quantizers (act false: from_f32, act true: act_from_f32) ---- */

static inline void q8_0_quantize(const float *src, void *dst, int64_t n, bool act) {
    quant_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        b[i].d = quant_to_f16(neon_quantize_q8_block(src + 32 * i, b[i].qs, &sum, act));
    }
}

static inline void q8_1_quantize(const float *src, void *dst, int64_t n, bool act) {
    quant_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum;
        float d = neon_quantize_q8_block(src + 32 * i, b[i].qs, &sum, act);
        b[i].d = quant_to_f16(d);
        b[i].s = quant_to_f16((float)sum * d);
    }
}

static void q8_0_from_f32(const float *src, void *dst, int64_t n) {
    q8_0_quantize(src, dst, n, false);
}
static void q8_1_from_f32(const float *src, void *dst, int64_t n) {
    q8_1_quantize(src, dst, n, false);
}
void quant_q8_0_act_neon(const float *src, void *dst, int64_t n) {
    q8_0_quantize(src, dst, n, true);
}
void quant_q8_1_act_neon(const float *src, void *dst, int64_t n) {
    q8_1_quantize(src, dst, n, true);
}

const quant_impl quant_q4_0_neon = {.vec_dot = q4_0_vec_dot,
    .dot_tile = q4_0_dot_tile};
const quant_impl quant_q4_1_neon = {.vec_dot = q4_1_vec_dot,
    .dot_tile = q4_1_dot_tile};
const quant_impl quant_q5_0_neon = {.vec_dot = q5_0_vec_dot,
    .dot_tile = q5_0_dot_tile};
const quant_impl quant_q5_1_neon = {.vec_dot = q5_1_vec_dot,
    .dot_tile = q5_1_dot_tile};
const quant_impl quant_q8_0_neon = {.from_f32 = q8_0_from_f32, .vec_dot = q8_0_vec_dot,
    .dot_tile = q8_0_dot_tile};
const quant_impl quant_q8_1_neon = {.from_f32 = q8_1_from_f32, .vec_dot = q8_1_vec_dot,
    .dot_tile = q8_1_dot_tile};
