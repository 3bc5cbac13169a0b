/*
 * Q8_K activation quantizer, AVX2: the same bytes as quant_q8_k_from_f32. The scale comes from
 * the first element of largest magnitude (its sign matters: it maps to -127), found with a
 * vector max then a compare; cvtps rounds to nearest-even like the scalar rounding trick.
 * The 16-value sums use sad_epu8 on the bytes biased to unsigned.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

/* The first element of x[0..256) whose magnitude is the largest, or 0 when all are zero. */
static float first_absmax(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 8)
        vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (!(amax > 0)) return 0.f;
    const __m256 va = _mm256_set1_ps(amax);
    for (int i = 0; i < QK_K; i += 8) {
        int mask = _mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), va, _CMP_EQ_OQ));
        if (mask) return x[i + __builtin_ctz((unsigned)mask)];
    }
    return 0.f; /* not reached: amax came from one of the elements */
}

void quant_q8_k_from_f32_avx2(const float *src, void *dst, int64_t n) {
    block_q8_k *y = dst;
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i lim = _mm256_set1_epi32(127);
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        const float max = first_absmax(src);
        if (max == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int i = 0; i < QK_K; i += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++)
                v[k] = _mm256_min_epi32(
                    _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 8 * k))), lim);
            __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            p = _mm256_permutevar8x32_epi32(p, perm);
            _mm256_storeu_si256((__m256i *)(y[b].qs + i), p);
            /* sad against zero sums each 8 biased bytes; two of them make one 16-sum. */
            int64_t s[4];
            _mm256_storeu_si256((__m256i *)s,
                                _mm256_sad_epu8(_mm256_xor_si256(p, bias), _mm256_setzero_si256()));
            y[b].bsums[i / 16] = (int16_t)(s[0] + s[1] - 2048);
            y[b].bsums[i / 16 + 1] = (int16_t)(s[2] + s[3] - 2048);
        }
        y[b].d = 1 / iscale;
    }
}

const quant_impl quant_q8_k_avx2 = {NULL, quant_q8_k_from_f32_avx2, NULL, NULL, 0};
