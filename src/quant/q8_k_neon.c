/*
 * Q8_K activation quantizer, NEON: the same bytes as quant_q8_k_from_f32. The scale comes from
 * the first element of largest magnitude (its sign matters: it maps to -127); fcvtns rounds to
 * nearest-even like the scalar rounding trick. Four registers of floats make one 16-sum.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <arm_neon.h>
#include <math.h>

static float first_absmax(const float *x) {
    float32x4_t vmax = vdupq_n_f32(0);
    for (int i = 0; i < QK_K; i += 4)
        vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
    const float amax = vmaxvq_f32(vmax);
    if (!(amax > 0)) return 0.f;
    for (int i = 0; i < QK_K; i++)
        if (fabsf(x[i]) == amax) return x[i];
    return 0.f; /* not reached */
}

void quant_q8_k_from_f32_neon(const float *src, void *dst, int64_t n) {
    block_q8_k *y = dst;
    const int32x4_t lim = vdupq_n_s32(127);
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        const float max = first_absmax(src);
        if (max == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int i = 0; i < QK_K; i += 16) {
            int32x4_t v[4];
            for (int k = 0; k < 4; k++)
                v[k] =
                    vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(src + i + 4 * k), iscale)), lim);
            const int16x8_t a = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
            const int16x8_t c = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
            vst1q_s8(y[b].qs + i, vcombine_s8(vqmovn_s16(a), vqmovn_s16(c)));
            y[b].bsums[i / 16] =
                (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(v[0], v[1]), vaddq_s32(v[2], v[3])));
        }
        y[b].d = 1 / iscale;
    }
}

const quant_impl quant_q8_k_neon = {NULL, quant_q8_k_from_f32_neon, NULL, NULL, 0};
