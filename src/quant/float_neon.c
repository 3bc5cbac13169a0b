/*
 * NEON kernel sets for F32, F16 and BF16: dot products with four 4-wide FMA accumulators and
 * F16/BF16 row conversions. FCVT rounds to nearest even and keeps NaN payloads as
 * quant_f32_to_f16 does; BF16 rounding uses the same integer steps as quant_f32_to_bf16.
 */
#include "quant/quant_impl.h"

#include <arm_neon.h>

static void f32_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const float *a = x, *b = y;
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++)
            acc[k] = vfmaq_f32(acc[k], vld1q_f32(a + i + 4 * k), vld1q_f32(b + i + 4 * k));
    for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++) s += a[i] * b[i];
    *out = s;
}

const quant_impl quant_f32_neon = {.vec_dot = f32_vec_dot};

static inline float32x4_t load_f16x4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static void f16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++)
            acc[k] = vfmaq_f32(acc[k], load_f16x4(a + i + 4 * k), load_f16x4(b + i + 4 * k));
    for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], load_f16x4(a + i), load_f16x4(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++) s += quant_f16(a[i]) * quant_f16(b[i]);
    *out = s;
}

static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, load_f16x4(s + i));
    for (; i < n; i++) dst[i] = quant_f16(s[i]);
}

static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(d + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) d[i] = quant_to_f16(src[i]);
}

const quant_impl quant_f16_neon = {f16_to_f32, f16_from_f32, f16_vec_dot, NULL, 0};

static inline float32x4_t load_bf16x4(const uint16_t *p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

static void bf16_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const uint16_t *a = x, *b = y;
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++)
            acc[k] = vfmaq_f32(acc[k], load_bf16x4(a + i + 4 * k), load_bf16x4(b + i + 4 * k));
    for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], load_bf16x4(a + i), load_bf16x4(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++) s += quant_bf16(a[i]) * quant_bf16(b[i]);
    *out = s;
}

static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, load_bf16x4(s + i));
    for (; i < n; i++) dst[i] = quant_bf16(s[i]);
}

static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(src + i));
        uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
        uint32x4_t r = vshrq_n_u32(vaddq_u32(u, vaddq_u32(odd, vdupq_n_u32(0x7fff))), 16);
        uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
        uint32x4_t quiet = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(64));
        vst1_u16(d + i, vmovn_u32(vbslq_u32(nan, quiet, r)));
    }
    for (; i < n; i++) d[i] = quant_to_bf16(src[i]);
}

const quant_impl quant_bf16_neon = {bf16_to_f32, bf16_from_f32, bf16_vec_dot, NULL, 0};
