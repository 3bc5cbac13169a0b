/*
 * Q5_K x Q8_K dot product, AVX2: the Q4_K kernel (q4_k_avx2.c) with the fifth bit of each
 * quant taken from qh (bit 2c for chunk c's low nibbles, 2c+1 for its high nibbles) before
 * maddubs; quants stay within 0..31. Equals quant_q5_k_vec_dot bit for bit.
 */
#include "quant/quant_impl.h"
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

void quant_q5_k_vec_dot_avx2(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q5_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sm[16];
        kq_unpack_k4(x[b].scales, sm);
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
        const __m256i mprod = _mm256_madd_epi16(
            _mm256_loadu_si256((const __m256i *)y[b].bsums),
            _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16)));
        __m256i qh = _mm256_loadu_si256((const __m256i *)x[b].qh);
        const uint8_t *ql = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i sum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++, ql += 32, q8 += 64) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4);
            qh = _mm256_srli_epi16(qh, 2); /* next chunk's bits to positions 0 and 1 */
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            p0 = _mm256_madd_epi16(p0, _mm256_set1_epi16(sm[2 * c]));
            p1 = _mm256_madd_epi16(p1, _mm256_set1_epi16(sm[2 * c + 1]));
            sum = _mm256_add_epi32(sum, _mm256_add_epi32(p0, p1));
        }
        int32_t isum, msum;
        kq_hsum2_i32_256(sum, mprod, &isum, &msum);
        acc = kq_fold(acc, kq_f16(x[b].d) * y[b].d, isum, kq_f16(x[b].dmin) * y[b].d, msum);
    }
    *out = acc;
}

const quant_impl quant_q5_k_avx2 = {NULL, NULL, quant_q5_k_vec_dot_avx2, NULL, 0};
