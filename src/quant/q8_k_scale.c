/*
 * Scale searches shared by the K-quant quantizers. A sub-block of 16 or 32 weights gets one
 * scale (and for the asymmetric types a min); rounding x/scale to the nearest level is not the
 * least-squares optimum, so each search tries a small family of candidate scales, re-solves
 * the best scale for the levels each candidate picks, and keeps the one with the smallest
 * weighted error. These follow the published reference quantizers' algorithms (the iterative
 * "make_qx / make_q3 / make_qkx2" searches) so files quantized here are as accurate as theirs.
 */
#include "quant/q8_k.h"

#include <math.h>

/* Below this the group is treated as all zero (no meaningful scale). */
#define KQ_GROUP_EPS 1e-15f

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* The element of largest magnitude, with its sign; 0 when all are (near) zero. */
static float signed_absmax(int n, const float *x) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    return amax < KQ_GROUP_EPS ? 0.f : max;
}

float quant_kq_make_qx(int n, int nmax, const float *x, int8_t *L) {
    float max = signed_absmax(n, x);
    if (max == 0.f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    /* The first candidate maps the extreme element to -nmax, which uses the one extra level
     * on the negative side of a two's-complement range. */
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        /* sumlx^2/suml2 is the error reduction of the least-squares scale: larger is better. */
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(kq_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

float quant_kq_make_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = signed_absmax(n, x);
    if (max == 0.f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(kq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    /* Coordinate descent: re-pick one quant at a time against the scale the others imply,
     * keeping a change only when the total error drops. A few passes settle it. */
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx <= 0) continue;
            float sl2 = suml2 - w * L[i] * L[i];
            int nl = clampi(kq_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            slx += w * x[i] * nl;
            sl2 += w * nl * nl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Weighted error of levels L under (scale, min): sum w * |diff| or w * diff^2. */
static float qkx_error(int n, const float *x, const float *w, const uint8_t *L, float scale,
                       float min, int use_mad) {
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = scale * L[i] + min - x[i];
        err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    return err;
}

float quant_kq_make_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                         float *the_min, uint8_t *laux, float rmin, float rdelta, int nstep,
                         int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    /* The min is stored as a non-negative offset subtracted from every value, so the
     * represented range always includes zero. */
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)clampi(kq_nearest_int(iscale * (x[i] - min)), 0, nmax);
    float best_error = qkx_error(n, x, weights, L, scale, min, use_mad);
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(kq_nearest_int(iscale * (x[i] - min)), 0, nmax);
            laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        /* Weighted least squares for x ~ scale * l + min over these levels. */
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = qkx_error(n, x, weights, laux, this_scale, this_min, use_mad);
        if (err < best_error) {
            memcpy(L, laux, (size_t)n);
            best_error = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}
