/*
 * AVX2/FMA/F16C versions of the vector kernels of attention and the FFN activation (vec.h).
 */
#include "cpu/vec.h"

#include "cpu/ops.h"

#include <immintrin.h>
#include <stdbool.h>
#include <math.h>

#define VEC_INLINE static inline __attribute__((always_inline))
#define VEC_QB 4 /* query heads per pass over the cache rows */
/* Cache rows fetched ahead. During decode the cache has been pushed out of every cache level by
 * the weights streamed since the last token, and its rows are a stride apart (one kv head's
 * slice of each row), which the hardware prefetchers follow late: prefetching 8 rows ahead
 * halved the time spent in scores at 512 positions. */
#define VEC_PREFETCH 8

/* The eight sums of eight vectors: lane l of the result is the sum of a[l]'s lanes, added in
 * the same tree whatever the other vectors hold. */
VEC_INLINE __m256 sum8x8(const __m256 a[8]) {
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* Scores of NQ (<= 4) queries against keys k0 and k1 (the same row when only one is wanted,
 * `two` false): eight lanes per (key, query) summed over d, then reduced by sum8x8. */
VEC_INLINE void scores_pair(float *out, int64_t ldo, const float *q, int NQ, const uint16_t *k0,
                            const uint16_t *k1, bool two, int64_t hd) {
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; d += 8) {
        const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k0 + d)));
        const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k1 + d)));
#pragma GCC unroll 4
        for (int i = 0; i < NQ; i++) {
            const __m256 qv = _mm256_loadu_ps(q + i * hd + d);
            a[i] = _mm256_fmadd_ps(qv, x0, a[i]);
            a[4 + i] = _mm256_fmadd_ps(qv, x1, a[4 + i]);
        }
    }
    float t[8];
    _mm256_storeu_ps(t, sum8x8(a));
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++) {
        out[i * ldo] = t[i];
        if (two) out[i * ldo + 1] = t[4 + i];
    }
}

VEC_INLINE void scores_nq(float *out, int64_t ldo, const float *q, int NQ, const uint16_t *k,
                          int64_t ks, int64_t n, int64_t hd) {
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
        for (int64_t b = 0; j + VEC_PREFETCH + 1 < n && b < hd * 2; b += 64) {
            _mm_prefetch((const char *)(k + (j + VEC_PREFETCH) * ks) + b, _MM_HINT_T0);
            _mm_prefetch((const char *)(k + (j + VEC_PREFETCH + 1) * ks) + b, _MM_HINT_T0);
        }
        scores_pair(out + j, ldo, q, NQ, k + j * ks, k + (j + 1) * ks, true, hd);
    }
    if (j < n) scores_pair(out + j, ldo, q, NQ, k + j * ks, k + j * ks, false, hd);
}

static void scores_avx2(float *out, int64_t ldo, const float *q, int64_t n_q, const uint16_t *k,
                        int64_t ks, int64_t n, int64_t hd) {
    if (hd % 8) {
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

/* Elements [d, d + 8 * W) of NQ (<= 4) outputs, accumulated over the n value rows in order;
 * each row's W vectors are converted once for every query. */
VEC_INLINE void mix_cols(float *out, const float *p, int64_t ldp, int NQ, const uint16_t *v,
                         int64_t vs, int64_t n, int64_t hd, int64_t d, int W) {
    __m256 a[VEC_QB][2];
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++)
#pragma GCC unroll 2
        for (int w = 0; w < W; w++) a[i][w] = _mm256_loadu_ps(out + i * hd + d + 8 * w);
    for (int64_t j = 0; j < n; j++) {
        if (d == 0 && j + VEC_PREFETCH < n)
            for (int64_t b = 0; b < hd * 2; b += 64)
                _mm_prefetch((const char *)(v + (j + VEC_PREFETCH) * vs) + b, _MM_HINT_T0);
        __m256 x[2];
#pragma GCC unroll 2
        for (int w = 0; w < W; w++)
            x[w] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + j * vs + d + 8 * w)));
#pragma GCC unroll 4
        for (int i = 0; i < NQ; i++) {
            const __m256 pj = _mm256_broadcast_ss(p + i * ldp + j);
#pragma GCC unroll 2
            for (int w = 0; w < W; w++) a[i][w] = _mm256_fmadd_ps(pj, x[w], a[i][w]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++)
#pragma GCC unroll 2
        for (int w = 0; w < W; w++) _mm256_storeu_ps(out + i * hd + d + 8 * w, a[i][w]);
}

VEC_INLINE void mix_nq(float *out, const float *p, int64_t ldp, int NQ, const uint16_t *v,
                       int64_t vs, int64_t n, int64_t hd) {
    int64_t d = 0;
    for (; d + 16 <= hd; d += 16) mix_cols(out, p, ldp, NQ, v, vs, n, hd, d, 2);
    if (d < hd) mix_cols(out, p, ldp, NQ, v, vs, n, hd, d, 1);
}

static void mix_avx2(float *out, const float *p, int64_t ldp, int64_t n_q, const uint16_t *v,
                     int64_t vs, int64_t n, int64_t hd) {
    if (hd % 8) {
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

static void round_f16_avx2(const float *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = cpu_f16_to_f32(cpu_f32_to_f16(src[i]));
}

const cpu_vec_ops cpu_vec_avx2 = {scores_avx2, mix_avx2, exp_sum_avx2, swiglu_avx2, round_f16_avx2, "avx2"};
