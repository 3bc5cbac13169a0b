/*
 * Scalar reference kernels for the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
 * Q8_1: the definition every SIMD variant is tested against.
 *
 * The quantizers choose scales exactly as ggml's reference quantizers do (same formulas, same
 * float operations in the same order), so they write the same bytes llama.cpp's tools write:
 *   Q4_0/Q5_0: d = (the element of largest magnitude, with its sign) / -8 (/ -16);
 *   Q4_1/Q5_1: d = (max - min) / 15 (/ 31), m = min;
 *   Q8_0/Q8_1: d = max|x| / 127, q = roundf(x / d) (half away from zero).
 * Q8_0 and Q8_1 also quantize activations (act_from_f32), as llama.cpp's x86 CPU backend does:
 * the same d, but q = x * (127 / max|x|) rounded to nearest with ties to even.
 * Dot products sum exact integer block products and scale them in float, block by block.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <math.h>
#include <stdbool.h>

/* No fused multiply-add: dequantization must round q * d and then + m separately, as the
 * file format's definition (and the gguf package) does. GCC in -std=c11 mode never contracts;
 * clang does unless told. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Largest |x| in a block, and the signed element that has it (first one on ties). */
static float legacy_absmax(const float *x, int n, float *signed_max) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    *signed_max = max;
    return amax;
}

static void legacy_minmax(const float *x, int n, float *min, float *max) {
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

/* ---- Q4_0 ---- */

static void q4_0_to_f32(const void *src, float *dst, int64_t n) {
    const quant_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        float d = quant_f16(b[i].d);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            dst[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void q4_0_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, src += QK4_0) {
        float max;
        legacy_absmax(src, QK4_0, &max);
        float d = max / -8, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_to_f16(d);
        for (int j = 0; j < 16; j++) {
            /* x * id lies in [-8, 8]; + 8.5 and truncation round it to 0..16, clamped to 15 */
            int q0 = (int8_t)(src[j] * id + 8.5f), q1 = (int8_t)(src[j + 16] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q4_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q4_0 *bx = x;
    const quant_block_q8_0 *by = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((bx[i].qs[j] & 0x0f) - 8) * by[i].qs[j];
            s += ((bx[i].qs[j] >> 4) - 8) * by[i].qs[j + 16];
        }
        sum += (float)s * (quant_f16(bx[i].d) * quant_f16(by[i].d));
    }
    *out = sum;
}

const quant_impl quant_q4_0_scalar = {q4_0_to_f32, q4_0_from_f32, q4_0_vec_dot, NULL, 0};

/* ---- Q4_1 ---- */

static void q4_1_to_f32(const void *src, float *dst, int64_t n) {
    const quant_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++, dst += QK4_1) {
        float d = quant_f16(b[i].d), m = quant_f16(b[i].m);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(b[i].qs[j] & 0x0f) * d + m;
            dst[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

static void q4_1_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, src += QK4_1) {
        float min, max;
        legacy_minmax(src, QK4_1, &min, &max);
        float d = (max - min) / 15, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_to_f16(d);
        b[i].m = quant_to_f16(min);
        for (int j = 0; j < 16; j++) {
            int q0 = (int8_t)((src[j] - min) * id + 0.5f);
            int q1 = (int8_t)((src[j + 16] - min) * id + 0.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void q4_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q4_1 *bx = x;
    const quant_block_q8_1 *by = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        int s = 0;
        for (int j = 0; j < 16; j++) {
            s += (bx[i].qs[j] & 0x0f) * by[i].qs[j];
            s += (bx[i].qs[j] >> 4) * by[i].qs[j + 16];
        }
        /* sum_j (q_j d_x + m)(y_j) = d_x d_y sum q_j p_j + m * (d_y sum p_j), and the
         * activation block carries s = d_y sum p_j */
        sum += (float)s * (quant_f16(bx[i].d) * quant_f16(by[i].d)) +
               quant_f16(bx[i].m) * quant_f16(by[i].s);
    }
    *out = sum;
}

const quant_impl quant_q4_1_scalar = {q4_1_to_f32, q4_1_from_f32, q4_1_vec_dot, NULL, 0};

/* ---- Q5_0 ---- */

/* Element j's 5-bit quant from the nibbles and the 32 high bits. */
static inline int legacy_q5(const uint8_t *qs, uint32_t qh, int j) {
    int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return lo | (int)(((qh >> j) & 1) << 4);
}

static void q5_0_to_f32(const void *src, float *dst, int64_t n) {
    const quant_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK5_0; i++, dst += QK5_0) {
        float d = quant_f16(b[i].d);
        uint32_t qh = quant_load_u32(b[i].qh);
        for (int j = 0; j < 32; j++) dst[j] = (float)(legacy_q5(b[i].qs, qh, j) - 16) * d;
    }
}

/* Packs 32 quants of 0..31 into nibbles and high bits. */
static void legacy_pack5(const int *q, uint8_t *qs, uint8_t *qh_out) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_out, &qh, 4);
}

static void q5_0_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, src += QK5_0) {
        float max;
        legacy_absmax(src, QK5_0, &max);
        float d = max / -16, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_to_f16(d);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (int8_t)(src[j] * id + 16.5f);
            q[j] = q[j] < 31 ? q[j] : 31;
        }
        legacy_pack5(q, b[i].qs, b[i].qh);
    }
}

static void q5_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q5_0 *bx = x;
    const quant_block_q8_0 *by = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        uint32_t qh = quant_load_u32(bx[i].qh);
        int s = 0;
        for (int j = 0; j < 32; j++) s += (legacy_q5(bx[i].qs, qh, j) - 16) * by[i].qs[j];
        sum += (float)s * (quant_f16(bx[i].d) * quant_f16(by[i].d));
    }
    *out = sum;
}

const quant_impl quant_q5_0_scalar = {q5_0_to_f32, q5_0_from_f32, q5_0_vec_dot, NULL, 0};

/* ---- Q5_1 ---- */

static void q5_1_to_f32(const void *src, float *dst, int64_t n) {
    const quant_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK5_1; i++, dst += QK5_1) {
        float d = quant_f16(b[i].d), m = quant_f16(b[i].m);
        uint32_t qh = quant_load_u32(b[i].qh);
        for (int j = 0; j < 32; j++) dst[j] = (float)legacy_q5(b[i].qs, qh, j) * d + m;
    }
}

static void q5_1_from_f32(const float *src, void *dst, int64_t n) {
    quant_block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, src += QK5_1) {
        float min, max;
        legacy_minmax(src, QK5_1, &min, &max);
        float d = (max - min) / 31, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = quant_to_f16(d);
        b[i].m = quant_to_f16(min);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (uint8_t)((src[j] - min) * id + 0.5f);
            q[j] = q[j] < 31 ? q[j] : 31;
        }
        legacy_pack5(q, b[i].qs, b[i].qh);
    }
}

static void q5_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q5_1 *bx = x;
    const quant_block_q8_1 *by = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        uint32_t qh = quant_load_u32(bx[i].qh);
        int s = 0;
        for (int j = 0; j < 32; j++) s += legacy_q5(bx[i].qs, qh, j) * by[i].qs[j];
        sum += (float)s * (quant_f16(bx[i].d) * quant_f16(by[i].d)) +
               quant_f16(bx[i].m) * quant_f16(by[i].s);
    }
    *out = sum;
}

const quant_impl quant_q5_1_scalar = {q5_1_to_f32, q5_1_from_f32, q5_1_vec_dot, NULL, 0};

/* ---- Q8_0 ---- */

static void q8_0_to_f32(const void *src, float *dst, int64_t n) {
    const quant_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        float d = quant_f16(b[i].d);
        for (int j = 0; j < 32; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

/* One block's quants and d: the reference's rounding (act false) or the activations'
 * (act true, see the file comment); returns d. */
static float q8_block(const float *src, int8_t *qs, bool act) {
    float max, amax = legacy_absmax(src, 32, &max);
    float d = amax / 127;
    if (act) {
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        /* the magic-number rounding (q8_k.h) rounds ties to even whatever the FPU mode */
        for (int j = 0; j < 32; j++) qs[j] = (int8_t)kq_nearest_int(src[j] * id);
    } else {
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; j++) qs[j] = (int8_t)roundf(src[j] * id);
    }
    return d;
}

static void q8_0_quantize(const float *src, void *dst, int64_t n, bool act) {
    quant_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0)
        b[i].d = quant_to_f16(q8_block(src, b[i].qs, act));
}

static void q8_0_from_f32(const float *src, void *dst, int64_t n) {
    q8_0_quantize(src, dst, n, false);
}

void quant_q8_0_act_scalar(const float *src, void *dst, int64_t n) {
    q8_0_quantize(src, dst, n, true);
}

/* Sum of products of 32 int8 pairs (exact). */
static inline int legacy_dot32(const int8_t *a, const int8_t *b) {
    int s = 0;
    for (int j = 0; j < 32; j++) s += a[j] * b[j];
    return s;
}

static void q8_0_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q8_0 *bx = x, *by = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++)
        sum += (float)legacy_dot32(bx[i].qs, by[i].qs) *
               (quant_f16(bx[i].d) * quant_f16(by[i].d));
    *out = sum;
}

const quant_impl quant_q8_0_scalar = {q8_0_to_f32, q8_0_from_f32, q8_0_vec_dot, NULL, 0};

/* ---- Q8_1 (the activation side of Q4_1 and Q5_1) ---- */

static void q8_1_to_f32(const void *src, float *dst, int64_t n) {
    const quant_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++, dst += QK8_1) {
        float d = quant_f16(b[i].d);
        for (int j = 0; j < 32; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

static void q8_1_quantize(const float *src, void *dst, int64_t n, bool act) {
    quant_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, src += QK8_1) {
        const float d = q8_block(src, b[i].qs, act);
        b[i].d = quant_to_f16(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += b[i].qs[j];
        b[i].s = quant_to_f16((float)sum * d);
    }
}

static void q8_1_from_f32(const float *src, void *dst, int64_t n) {
    q8_1_quantize(src, dst, n, false);
}

void quant_q8_1_act_scalar(const float *src, void *dst, int64_t n) {
    q8_1_quantize(src, dst, n, true);
}

static void q8_1_vec_dot(int64_t n, float *out, const void *x, const void *y) {
    const quant_block_q8_1 *bx = x, *by = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++)
        sum += (float)legacy_dot32(bx[i].qs, by[i].qs) *
               (quant_f16(bx[i].d) * quant_f16(by[i].d));
    *out = sum;
}

const quant_impl quant_q8_1_scalar = {q8_1_to_f32, q8_1_from_f32, q8_1_vec_dot, NULL, 0};
