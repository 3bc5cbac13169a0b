/*
 * NEON versions of the vector kernels of attention and the FFN activation (vec.h), for every
 * AArch64 CPU (Advanced SIMD and the F16 conversions are part of the base architecture).
 *
 * Without them Arm ran the portable loops, which convert each F16 cache element in software:
 * counted under qemu, a 64-token prompt of a 1B model spent 18% of its instructions there, and
 * at a few thousand positions of context attention would outweigh the weights. Here a cache
 * row is converted four elements per instruction (FCVTL) and multiplied with FMLA.
 *
 * The same rules as the AVX2 set: each score and each output element is summed in an order
 * that depends only on its own query and row (never on the row's place in the run, its
 * pairing, or the batch), so decoding a token gives the bits of the same token in a prefill;
 * exp is the same range-reduced degree-7 polynomial, within 2 ulp of expf.
 */
#include "cpu/vec.h"

#include "cpu/ops.h"

#include <arm_neon.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#define VEC_INLINE static inline __attribute__((always_inline))
#define VEC_QB 4 /* query heads per pass over the cache rows */
/* Cache rows fetched ahead: as on x86, decode finds the cache evicted by the weights streamed
 * since the last token, and its rows lie a stride apart. */
#define VEC_PREFETCH 8

VEC_INLINE float32x4_t load_f16x4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* Scores of NQ (<= 4) queries against keys k0 and k1 (the same row when only one is wanted,
 * `two` false): four lanes per (key, query) summed over d, then across the lanes. */
VEC_INLINE void scores_pair(float *out, int64_t ldo, const float *q, int NQ, const uint16_t *k0,
                            const uint16_t *k1, bool two, int64_t hd) {
    float32x4_t a[2 * VEC_QB];
#pragma GCC unroll 8
    for (int i = 0; i < 2 * VEC_QB; i++) a[i] = vdupq_n_f32(0.0f);
    for (int64_t d = 0; d < hd; d += 4) {
        const float32x4_t x0 = load_f16x4(k0 + d), x1 = load_f16x4(k1 + d);
#pragma GCC unroll 4
        for (int i = 0; i < NQ; i++) {
            const float32x4_t qv = vld1q_f32(q + i * hd + d);
            a[i] = vfmaq_f32(a[i], qv, x0);
            a[VEC_QB + i] = vfmaq_f32(a[VEC_QB + i], qv, x1);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++) {
        out[i * ldo] = vaddvq_f32(a[i]);
        if (two) out[i * ldo + 1] = vaddvq_f32(a[VEC_QB + i]);
    }
}

VEC_INLINE void scores_nq(float *out, int64_t ldo, const float *q, int NQ, const uint16_t *k,
                          int64_t ks, int64_t n, int64_t hd) {
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
        for (int64_t b = 0; j + VEC_PREFETCH + 1 < n && b < hd * 2; b += 64) {
            __builtin_prefetch((const char *)(k + (j + VEC_PREFETCH) * ks) + b);
            __builtin_prefetch((const char *)(k + (j + VEC_PREFETCH + 1) * ks) + b);
        }
        scores_pair(out + j, ldo, q, NQ, k + j * ks, k + (j + 1) * ks, true, hd);
    }
    if (j < n) scores_pair(out + j, ldo, q, NQ, k + j * ks, k + j * ks, false, hd);
}

static void scores_neon(float *out, int64_t ldo, const float *q, int64_t n_q, const uint16_t *k,
                        int64_t ks, int64_t n, int64_t hd) {
    if (hd % 4) {
        cpu_vec_ref()->scores(out, ldo, q, n_q, k, ks, n, hd);
        return;
    }
    for (int64_t i = 0; i < n_q; i += VEC_QB, out += VEC_QB * ldo, q += VEC_QB * hd) {
        switch (n_q - i) {
        case 1: scores_nq(out, ldo, q, 1, k, ks, n, hd); break;
        case 2: scores_nq(out, ldo, q, 2, k, ks, n, hd); break;
        case 3: scores_nq(out, ldo, q, 3, k, ks, n, hd); break;
        default: scores_nq(out, ldo, q, 4, k, ks, n, hd);
        }
    }
}

/* Elements [d, d + 4 * W) of NQ (<= 4) outputs, accumulated over the n value rows in order;
 * each row's W vectors are converted once for every query. */
VEC_INLINE void mix_cols(float *out, const float *p, int64_t ldp, int NQ, const uint16_t *v,
                         int64_t vs, int64_t n, int64_t hd, int64_t d, int W) {
    float32x4_t a[VEC_QB][4];
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
        for (int w = 0; w < W; w++) a[i][w] = vld1q_f32(out + i * hd + d + 4 * w);
    for (int64_t j = 0; j < n; j++) {
        if (d == 0 && j + VEC_PREFETCH < n)
            for (int64_t b = 0; b < hd * 2; b += 64)
                __builtin_prefetch((const char *)(v + (j + VEC_PREFETCH) * vs) + b);
        float32x4_t x[4];
#pragma GCC unroll 4
        for (int w = 0; w < W; w++) x[w] = load_f16x4(v + j * vs + d + 4 * w);
#pragma GCC unroll 4
        for (int i = 0; i < NQ; i++) {
            const float32x4_t pj = vdupq_n_f32(p[i * ldp + j]);
#pragma GCC unroll 4
            for (int w = 0; w < W; w++) a[i][w] = vfmaq_f32(a[i][w], pj, x[w]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
        for (int w = 0; w < W; w++) vst1q_f32(out + i * hd + d + 4 * w, a[i][w]);
}

VEC_INLINE void mix_nq(float *out, const float *p, int64_t ldp, int NQ, const uint16_t *v,
                       int64_t vs, int64_t n, int64_t hd) {
    int64_t d = 0;
    for (; d + 16 <= hd; d += 16) mix_cols(out, p, ldp, NQ, v, vs, n, hd, d, 4);
    for (; d < hd; d += 4) mix_cols(out, p, ldp, NQ, v, vs, n, hd, d, 1);
}

static void mix_neon(float *out, const float *p, int64_t ldp, int64_t n_q, const uint16_t *v,
                     int64_t vs, int64_t n, int64_t hd) {
    if (hd % 4) {
        cpu_vec_ref()->mix(out, p, ldp, n_q, v, vs, n, hd);
        return;
    }
    for (int64_t i = 0; i < n_q; i += VEC_QB, out += VEC_QB * hd, p += VEC_QB * ldp) {
        switch (n_q - i) {
        case 1: mix_nq(out, p, ldp, 1, v, vs, n, hd); break;
        case 2: mix_nq(out, p, ldp, 2, v, vs, n, hd); break;
        case 3: mix_nq(out, p, ldp, 3, v, vs, n, hd); break;
        default: mix_nq(out, p, ldp, 4, v, vs, n, hd);
        }
    }
}

/* exp(x) as vec_avx2.c's exp8: x = n ln2 + r with |r| <= ln2 / 2 (ln 2 split in two for an
 * exact product), e^r by its Taylor polynomial to r^7, 2^n added to the exponent. x is clamped
 * to [-86, 88] first so 2^n stays normal; below -86 (and -inf) gives 0, above 88.7 +inf, NaN
 * stays NaN. */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(-86.0f), hi = vdupq_n_f32(88.0f);
    const uint32x4_t under = vcltq_f32(x, lo);
    const uint32x4_t over = vcgtq_f32(x, vdupq_n_f32(88.72283f));
    const uint32x4_t nan = vmvnq_u32(vceqq_f32(x, x));
    const float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), hi);
    const float32x4_t n = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-6f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t e = vshlq_n_s32(vcvtnq_s32_f32(n), 23);
    float32x4_t y = vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), e));
    y = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
    y = vbslq_f32(over, vdupq_n_f32(INFINITY), y);
    return vbslq_f32(nan, x, y);
}

/* The partial last vector of a row goes through a 4-float copy, so its elements meet the
 * same arithmetic as the others (a value never depends on where in the row it sits). */
static double exp_sum_neon(float *x, int64_t n, float mx) {
    const float32x4_t vm = vdupq_n_f32(mx);
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
    for (int64_t i = 0; i < n; i += 4) {
        float32x4_t e;
        if (n - i >= 4) {
            e = exp4(vsubq_f32(vld1q_f32(x + i), vm));
            vst1q_f32(x + i, e);
        } else {
            const int64_t r = n - i;
            float t[4] = {mx, mx, mx, mx}; /* padding lanes give exp(0) = 1, cleared below */
            memcpy(t, x + i, (size_t)r * sizeof *t);
            vst1q_f32(t, exp4(vsubq_f32(vld1q_f32(t), vm)));
            for (int64_t l = r; l < 4; l++) t[l] = 0.0f;
            memcpy(x + i, t, (size_t)r * sizeof *t);
            e = vld1q_f32(t);
        }
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
    }
    const float64x2_t s = vaddq_f64(s0, s1);
    return vgetq_lane_f64(s, 0) + vgetq_lane_f64(s, 1);
}

static void swiglu_neon(float *out, const float *g, const float *u, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t vg = vld1q_f32(g + i), e = exp4(vnegq_f32(vg));
        vst1q_f32(out + i, vmulq_f32(vdivq_f32(vg, vaddq_f32(one, e)), vld1q_f32(u + i)));
    }
    if (i < n) { /* the tail through a copy, with the same arithmetic */
        const int64_t r = n - i;
        float tg[4] = {0}, tu[4] = {0}, ty[4];
        memcpy(tg, g + i, (size_t)r * sizeof *tg);
        memcpy(tu, u + i, (size_t)r * sizeof *tu);
        const float32x4_t vg = vld1q_f32(tg), e = exp4(vnegq_f32(vg));
        vst1q_f32(ty, vmulq_f32(vdivq_f32(vg, vaddq_f32(one, e)), vld1q_f32(tu)));
        memcpy(out + i, ty, (size_t)r * sizeof *ty);
    }
}

/* FCVTN rounds to nearest, ties to even, with F16 subnormals and overflow to infinity: the
 * portable conversion's results exactly. */
static void round_f16_neon(const float *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = cpu_f16_to_f32(cpu_f32_to_f16(src[i]));
}

const cpu_vec_ops cpu_vec_neon = {scores_neon, mix_neon, exp_sum_neon, swiglu_neon, round_f16_neon, "neon"};
