/*
 * Q3_K, scalar reference: 16 sub-blocks of 16 weights with signed 6-bit scales (stored +32),
 * quants in -4..3 as 2 low bits (qs, packed as in Q2_K) and a high bit (hmask: bit j/32 of
 * hmask[j%32] for element j; a set bit means "no -4 offset"). Layout: q8_k.h.
 */
#include "quant/q8_k.h"
#include "quant/quant_impl.h"

#include <math.h>

/* Element j (0..255) of a Q3_K block as a signed level in -4..3. */
static inline int q3_value(const block_q3_k *x, int j) {
    const int half = j / 128, r = j % 128, pair = r / 32, l = r % 32;
    const int lo = (x->qs[32 * half + l] >> (2 * pair)) & 3;
    return lo - ((x->hmask[j % 32] >> (j / 32)) & 1 ? 0 : 4);
}

void quant_q3_k_to_f32(const void *src, float *dst, int64_t n) {
    const block_q3_k *x = src;
    int8_t sc[16];
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = quant_f16(x[b].d);
        kq_q3_scales(x[b].scales, sc);
        for (int j = 0; j < QK_K; j++) {
            const float dl = d * sc[j / 16];
            *dst++ = dl * q3_value(&x[b], j);
        }
    }
}

/* Packs 16 6-bit values (already offset by 32) into Q3_K's 12 scale bytes. */
static void q3_pack_scales(const int ls[16], uint8_t out[12]) {
    memset(out, 0, 12);
    for (int j = 0; j < 16; j++) {
        int l = ls[j];
        if (j < 8)
            out[j] = (uint8_t)(l & 0xF);
        else
            out[j - 8] |= (uint8_t)((l & 0xF) << 4);
        out[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
}

void quant_q3_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q3_k *y = dst;
    int8_t L[QK_K], sc[16];
    float scales[QK_K / 16];
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = quant_kq_make_q3(16, 4, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        int ls[16] = {0};
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = kq_nearest_int(iscale * scales[j]);
                ls[j] = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
            }
            q3_pack_scales(ls, y[b].scales);
            y[b].d = quant_to_f16(1 / iscale);
        } else {
            memset(y[b].scales, 0, 12);
            y[b].d = quant_to_f16(0.f);
        }
        kq_q3_scales(y[b].scales, sc);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = quant_f16(y[b].d) * sc[j];
            if (!d) continue;
            for (int i = 0; i < 16; i++) {
                int l = kq_nearest_int(src[16 * j + i] / d);
                L[16 * j + i] = (int8_t)((l < -4 ? -4 : l > 3 ? 3 : l) + 4);
            }
        }
        memset(y[b].hmask, 0, sizeof y[b].hmask);
        for (int j = 0; j < QK_K; j++) {
            if (L[j] > 3) {
                y[b].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] -= 4;
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                y[b].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
                                               (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

void quant_q3_k_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q3_k *x = vx;
    const block_q8_k *y = vy;
    int8_t sc[16];
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        kq_q3_scales(x[b].scales, sc);
        int32_t isum = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int32_t s = 0;
            for (int l = 16 * j; l < 16 * j + 16; l++)
                s += q3_value(&x[b], l) * y[b].qs[l];
            isum += sc[j] * s;
        }
        acc = kq_fold(acc, quant_f16(x[b].d) * y[b].d, isum, 0.f, 0);
    }
    *out = acc;
}

const quant_impl quant_q3_k_scalar = {quant_q3_k_to_f32, quant_q3_k_from_f32, quant_q3_k_vec_dot,
                                      NULL, 0};
