/*
 * IQ4_XS, scalar reference: IQ4_NL's levels in super-blocks of 256 (8 sub-blocks of 32 with
 * 6-bit signed scales under one fp16 super-scale), dotted with Q8_K. Layout: iq4_nl.h; the
 * quantizer is shared with IQ4_NL (iq4_nl.c).
 */
#include "quant/iq4_nl.h"
#include "quant/quant_impl.h"

void quant_iq4_xs_to_f32(const void *src, float *dst, int64_t n) {
    const block_iq4_xs *x = src;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16(x[b].d);
        for (int ib = 0; ib < QK_K / 32; ib++, dst += 32) {
            const float dl = d * iq4_xs_scale(&x[b], ib);
            const uint8_t *qs = x[b].qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                dst[j] = dl * quant_iq4_levels[qs[j] & 0xF];
                dst[j + 16] = dl * quant_iq4_levels[qs[j] >> 4];
            }
        }
    }
}

void quant_iq4_xs_from_f32(const float *src, void *dst, int64_t n) {
    block_iq4_xs *y = dst;
    for (int64_t b = 0; b < n / QK_K; b++)
        quant_iq4_quantize_block(src + QK_K * b, QK_K / 32, &y[b].d, y[b].qs, &y[b].scales_h,
                                 y[b].scales_l);
}

void quant_iq4_xs_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_xs *x = vx;
    const block_q8_k *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t isum = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint8_t *qs = x[b].qs + 16 * ib;
            const int8_t *q8 = y[b].qs + 32 * ib;
            int32_t s = 0;
            for (int j = 0; j < 16; j++)
                s += quant_iq4_levels[qs[j] & 0xF] * q8[j] +
                     quant_iq4_levels[qs[j] >> 4] * q8[j + 16];
            isum += iq4_xs_scale(&x[b], ib) * s;
        }
        acc = iq4_fold(acc, quant_f16(x[b].d) * y[b].d, isum);
    }
    *out = acc;
}

const quant_impl quant_iq4_xs_scalar = {quant_iq4_xs_to_f32, quant_iq4_xs_from_f32,
                                        quant_iq4_xs_vec_dot, NULL, 0};
