/*
 * AVX2/FMA/F16C versions of the attention vector kernels (vec.h). The dot product keeps one
 * 8-lane accumulator and folds it in the same pairwise order as the portable version.
 */
#include "cpu/vec.h"

#include "cpu/ops.h"

#include <immintrin.h>

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

const cpu_vec_ops cpu_vec_avx2 = {scores_avx2, mix_avx2, f16_to_f32_avx2, round_f16_avx2, "avx2"};
