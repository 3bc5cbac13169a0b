/*
 * IQ4_NL, scalar reference, and the non-linear quantizer IQ4_XS shares. For each sub-block of
 * 32 the quantizer tries 15 scales around max/|level[0]|, maps every weight to its nearest
 * level, and keeps the scale with the best weighted least-squares fit (weights x^2), as the
 * published reference quantizer does. Layout: iq4_nl.h.
 */
#include "quant/iq4_nl.h"
#include "quant/quant_impl.h"

#include <math.h>

const int8_t quant_iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

/* Index of the level nearest to v (the upper one on a tie). */
static int nearest_level(float v) {
    int lo = 0, hi = 15;
    if (v <= quant_iq4_levels[0]) return 0;
    if (v >= quant_iq4_levels[15]) return 15;
    while (hi - lo > 1) { /* invariant: levels[lo] < v < levels[hi] or equal at an end */
        int mid = (lo + hi) / 2;
        if (v < quant_iq4_levels[mid])
            hi = mid;
        else
            lo = mid;
    }
    return 2 * v >= (float)(quant_iq4_levels[lo] + quant_iq4_levels[hi]) ? hi : lo;
}

/* Best scale for one sub-block of 32 (0 when all zero); L receives the indices. */
static float iq4_sub_scale(const float *xb, uint8_t *L) {
    enum { NTRY = 7 };
    float amax = 0, max = 0, w[32];
    for (int j = 0; j < 32; j++) {
        w[j] = xb[j] * xb[j];
        if (fabsf(xb[j]) > amax) {
            amax = fabsf(xb[j]);
            max = xb[j];
        }
    }
    if (amax < 1e-15f) {
        memset(L, 0, 32);
        return 0.f;
    }
    float d = -max / quant_iq4_levels[0], id = 1 / d, sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        L[j] = (uint8_t)nearest_level(id * xb[j]);
        float q = quant_iq4_levels[L[j]];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -NTRY; itry <= NTRY; itry++) {
        id = (itry + quant_iq4_levels[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = quant_iq4_levels[nearest_level(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

void quant_iq4_quantize_block(const float *x, int nsub, uint16_t *dh, uint8_t *qs,
                              uint16_t *scales_h, uint8_t *scales_l) {
    uint8_t L[QK_K];
    float scales[QK_K / 32], max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < nsub; ib++) {
        scales[ib] = iq4_sub_scale(x + 32 * ib, L + 32 * ib);
        if (fabsf(scales[ib]) > amax_scale) {
            amax_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    if (nsub > 1) {
        /* 6-bit signed sub-block scales against a super-scale; re-pick the levels for the
         * scale each sub-block actually gets. */
        *scales_h = 0;
        memset(scales_l, 0, (size_t)nsub / 2);
        float d = -max_scale / 32, id = d ? 1 / d : 0.f;
        *dh = quant_to_f16(d);
        for (int ib = 0; ib < nsub; ib++) {
            int l = kq_nearest_int(id * scales[ib]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            float dl = d * l, idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++)
                L[32 * ib + j] = (uint8_t)nearest_level(idl * x[32 * ib + j]);
            l += 32;
            scales_l[ib / 2] |= (uint8_t)((l & 0xF) << (4 * (ib % 2)));
            *scales_h |= (uint16_t)((l >> 4) << (2 * ib));
        }
    } else {
        *dh = quant_to_f16(scales[0]);
        float id = scales[0] ? 1 / scales[0] : 0;
        for (int j = 0; j < 32; j++)
            L[j] = (uint8_t)nearest_level(id * x[j]);
    }
    for (int ib = 0; ib < nsub; ib++)
        for (int j = 0; j < 16; j++)
            qs[16 * ib + j] = (uint8_t)(L[32 * ib + j] | (L[32 * ib + 16 + j] << 4));
}

void quant_iq4_nl_to_f32(const void *src, float *dst, int64_t n) {
    const block_iq4_nl *x = src;
    for (int64_t b = 0; b < n / QK4_NL; b++, dst += QK4_NL) {
        const float d = quant_f16(x[b].d);
        for (int j = 0; j < 16; j++) {
            dst[j] = d * quant_iq4_levels[x[b].qs[j] & 0xF];
            dst[j + 16] = d * quant_iq4_levels[x[b].qs[j] >> 4];
        }
    }
}

void quant_iq4_nl_from_f32(const float *src, void *dst, int64_t n) {
    block_iq4_nl *y = dst;
    for (int64_t b = 0; b < n / QK4_NL; b++)
        quant_iq4_quantize_block(src + QK4_NL * b, 1, &y[b].d, y[b].qs, NULL, NULL);
}

void quant_iq4_nl_vec_dot(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    float acc = 0;
    for (int64_t b = 0; b < n / QK4_NL; b++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++)
            s += quant_iq4_levels[x[b].qs[j] & 0xF] * y[b].qs[j] +
                 quant_iq4_levels[x[b].qs[j] >> 4] * y[b].qs[j + 16];
        acc = iq4_fold(acc, quant_f16(x[b].d) * quant_f16(y[b].d), s);
    }
    *out = acc;
}

const quant_impl quant_iq4_nl_scalar = {quant_iq4_nl_to_f32, quant_iq4_nl_from_f32,
                                        quant_iq4_nl_vec_dot, NULL, 0};
