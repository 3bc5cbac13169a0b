/*
 * NEON helpers shared by kernel files (legacy_neon.c and the repacked kernels): the Q8 block
 * quantizer of the activation rows. Included only by files compiled with the NEON flags.
 */
#ifndef OB_QUANT_SIMD_NEON_H
#define OB_QUANT_SIMD_NEON_H

#include <arm_neon.h>
#include <stdbool.h>
#include <stdint.h>

/* One block of 32 floats -> quants: act false as the reference (roundf(x * (1 / d))), act true
 * as the activations (x * (127 / max|x|), ties to even; see simd_x86.h). Returns d, sets *sum
 * of the quants. */
static inline float neon_quantize_q8_block(const float *x, int8_t *qs, int *sum, bool act) {
    float32x4_t v[8], m = vdupq_n_f32(0);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxq_f32(m, vabsq_f32(v[k]));
    }
    float amax = vmaxvq_f32(m);
    float d = amax / 127, id;
    if (act) id = amax != 0.0f ? 127.0f / amax : 0.0f;
    else id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t q[8], s = vdupq_n_s32(0);
    for (int k = 0; k < 8; k++) {
        const float32x4_t p = vmulq_n_f32(v[k], id);
        q[k] = act ? vcvtnq_s32_f32(p) : vcvtaq_s32_f32(p);
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

#endif
