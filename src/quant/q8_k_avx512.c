/*
 * Q8_K activation quantizer, AVX-512: the same bytes as quant_q8_k_from_f32. Sixteen floats
 * per register make one 16-value group, so each bsum is one horizontal add and the int8
 * narrowing (vpmovsdb) keeps element order.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"
#include "quant/quant_impl.h"

static float first_absmax(const float *x) {
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < QK_K; i += 16)
        vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    const float amax = _mm512_reduce_max_ps(vmax);
    if (!(amax > 0)) return 0.f;
    const __m512 va = _mm512_set1_ps(amax);
    for (int i = 0; i < QK_K; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + i)), va, _CMP_EQ_OQ);
        if (m) return x[i + __builtin_ctz((unsigned)m)];
    }
    return 0.f; /* not reached */
}

void quant_q8_k_from_f32_avx512(const float *src, void *dst, int64_t n) {
    block_q8_k *y = dst;
    const __m512i lim = _mm512_set1_epi32(127);
    for (int64_t b = 0; b < n / QK_K; b++, src += QK_K) {
        const float max = first_absmax(src);
        if (max == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int i = 0; i < QK_K; i += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(src + i)));
            v = _mm512_min_epi32(v, lim);
            _mm_storeu_si128((__m128i *)(y[b].qs + i), _mm512_cvtsepi32_epi8(v));
            y[b].bsums[i / 16] = (int16_t)_mm512_reduce_add_epi32(v);
        }
        y[b].d = 1 / iscale;
    }
}

const quant_impl quant_q8_k_avx512 = {NULL, quant_q8_k_from_f32_avx512, NULL, NULL, 0};
