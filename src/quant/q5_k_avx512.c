/*
 * Q5_K x Q8_K dot product, AVX-512 (BW + VNNI): the Q4_K layout trick (q4_k_avx512.c), one
 * 64-weight chunk per register with low nibbles below and high nibbles above, plus the fifth
 * bits from qh. dpwssd applies the two sub-block scales. Equals quant_q5_k_vec_dot exactly.
 */
#include "quant/quant_impl.h"
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

void quant_q5_k_vec_dot_avx512(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    const __m512i sel0 = _mm512_set_epi64(0x0001000100010001, 0x0001000100010001,
                                          0x0001000100010001, 0x0001000100010001, 0, 0, 0, 0);
    const __m512i two = _mm512_set1_epi16(2);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sm[16];
        kq_unpack_k4(x[b].scales, sm);
        const __m512i scales =
            _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sm)));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
        const __m256i mprod = _mm256_madd_epi16(
            _mm256_loadu_si256((const __m256i *)y[b].bsums),
            _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16)));
        __m256i qh = _mm256_loadu_si256((const __m256i *)x[b].qh);
        const uint8_t *ql = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m512i sum = _mm512_setzero_si512(), sel = sel0;
        for (int c = 0; c < 4; c++, ql += 32, q8 += 64, sel = _mm512_add_epi16(sel, two)) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4);
            qh = _mm256_srli_epi16(qh, 2);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            const __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            const __m512i p = _mm512_maddubs_epi16(qq, _mm512_loadu_si512(q8));
            sum = _mm512_dpwssd_epi32(sum, p, _mm512_permutexvar_epi16(sel, scales));
        }
        const __m256i sum8 = _mm256_add_epi32(_mm512_castsi512_si256(sum),
                                              _mm512_extracti64x4_epi64(sum, 1));
        int32_t isum, msum;
        kq_hsum2_i32_256(sum8, mprod, &isum, &msum);
        acc = kq_fold(acc, kq_f16(x[b].d) * y[b].d, isum, kq_f16(x[b].dmin) * y[b].d, msum);
    }
    *out = acc;
}

const quant_impl quant_q5_k_avx512 = {NULL, NULL, quant_q5_k_vec_dot_avx512, NULL, 0};
