/*
 * AVX2/FMA/F16C versions of the vector kernels of attention and the FFN activation (vec.h).
 */
#include "cpu/vec.h"

#include "cpu/ops.h"

#include <immintrin.h>
#include <stdbool.h>
#include <math.h>

/* Eight keys per register, two registers of keys per pass and two chains over d each, so four
 * independent multiply-add chains hide the FMA latency. */
static void scores_avx2(float *out, const float *q, const float *kt, int64_t ld, int64_t n,
                        int64_t hd) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        int64_t d = 0;
        for (; d + 2 <= hd; d += 2) {
            const float *k0 = kt + d * ld + j, *k1 = k0 + ld;
            const __m256 q0 = _mm256_broadcast_ss(q + d), q1 = _mm256_broadcast_ss(q + d + 1);
            a0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(k0), a0);
            b0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(k0 + 8), b0);
            a1 = _mm256_fmadd_ps(q1, _mm256_loadu_ps(k1), a1);
            b1 = _mm256_fmadd_ps(q1, _mm256_loadu_ps(k1 + 8), b1);
        }
        for (; d < hd; d++) {
            const __m256 q0 = _mm256_broadcast_ss(q + d);
            a0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(kt + d * ld + j), a0);
            b0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(kt + d * ld + j + 8), b0);
        }
        _mm256_storeu_ps(out + j, _mm256_add_ps(a0, a1));
        _mm256_storeu_ps(out + j + 8, _mm256_add_ps(b0, b1));
    }
    for (; j + 8 <= n; j += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (int64_t d = 0; d < hd; d++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d), _mm256_loadu_ps(kt + d * ld + j), a0);
        _mm256_storeu_ps(out + j, a0);
    }
    for (; j < n; j++) {
        float s = 0.0f;
        for (int64_t d = 0; d < hd; d++) s += q[d] * kt[d * ld + j];
        out[j] = s;
    }
}

/* 32 output elements (four registers) at a time, accumulated over every value row. */
static void mix_avx2(float *out, const float *p, const float *v, int64_t n, int64_t hd) {
    int64_t d = 0;
    for (; d + 32 <= hd; d += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            const float *vj = v + j * hd + d;
            const __m256 pj = _mm256_broadcast_ss(p + j);
            a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 16), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 24), a3);
        }
        _mm256_storeu_ps(out + d, a0);
        _mm256_storeu_ps(out + d + 8, a1);
        _mm256_storeu_ps(out + d + 16, a2);
        _mm256_storeu_ps(out + d + 24, a3);
    }
    for (; d + 8 <= hd; d += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(v + j * hd + d), a0);
        _mm256_storeu_ps(out + d, a0);
    }
    for (; d < hd; d++) {
        float s = 0.0f;
        for (int64_t j = 0; j < n; j++) s += p[j] * v[j * hd + d];
        out[d] = s;
    }
}

/* exp(x): x = n ln2 + r with |r| <= ln2 / 2 (ln 2 split in two for an exact product), e^r by
 * its Taylor polynomial to r^7 (error < 2e-8 relative), 2^n added to the exponent. x is
 * clamped to [-86, 88] first so 2^n stays normal; below -86 (and -inf) gives 0, above 88.7
 * +inf, NaN stays NaN. */
static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-86.0f), hi = _mm256_set1_ps(88.0f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    const __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(88.72283f), _CMP_GT_OQ);
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
    y = _mm256_andnot_ps(under, y);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    return _mm256_blendv_ps(y, x, nan);
}

/* Lanes [0, r) set: the partial last vector of a row is loaded and stored masked, so its
 * elements go through the same arithmetic as the others (a value never depends on where in
 * the row it sits, which keeps decode equal to prefill). */
static inline __m256i lanes_below(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static double exp_sum_avx2(float *x, int64_t n, float mx) {
    const __m256 vm = _mm256_set1_ps(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
        const bool full = n - i >= 8;
        const __m256i m = full ? _mm256_set1_epi32(-1) : lanes_below(n - i);
        const __m256 v = full ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, m);
        /* masked-off lanes hold exp(-mx), perhaps inf: cleared before the sum */
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, vm)), _mm256_castsi256_ps(m));
        if (full) _mm256_storeu_ps(x + i, e);
        else _mm256_maskstore_ps(x + i, m, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    return (t[0] + t[1]) + (t[2] + t[3]);
}

static void swiglu_avx2(float *out, const float *g, const float *u, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const bool full = n - i >= 8;
        const __m256i m = full ? _mm256_set1_epi32(-1) : lanes_below(n - i);
        const __m256 vg = full ? _mm256_loadu_ps(g + i) : _mm256_maskload_ps(g + i, m);
        const __m256 vu = full ? _mm256_loadu_ps(u + i) : _mm256_maskload_ps(u + i, m);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), vg));
        const __m256 y = _mm256_mul_ps(_mm256_div_ps(vg, _mm256_add_ps(one, e)), vu);
        if (full) _mm256_storeu_ps(out + i, y);
        else _mm256_maskstore_ps(out + i, m, y);
    }
}

static void f16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = cpu_f16_to_f32(src[i]);
}

static void round_f16_avx2(const float *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = cpu_f16_to_f32(cpu_f32_to_f16(src[i]));
}

const cpu_vec_ops cpu_vec_avx2 = {scores_avx2, mix_avx2, exp_sum_avx2, swiglu_avx2, f16_to_f32_avx2, round_f16_avx2, "avx2"};
