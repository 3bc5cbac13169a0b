/*
 * Q4_K x Q8_K dot product, AVX2. Per super-block: 4 chunks of 64 weights; each chunk's 32
 * bytes split into low/high nibbles (sub-blocks 2c and 2c+1), multiplied with the int8
 * activations by maddubs (u8 x s8 pairs -> i16, at most 2*15*127, no saturation), then
 * weighted by the sub-block scale with madd into int32. The min term uses the activation's
 * 16-value sums. Integer sums are exact, so the result equals quant_q4_k_vec_dot bit for bit.
 */
#include "quant/quant_impl.h"
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

/* The 8 mins as 16 int16, each twice, to pair with the 16 bsums (two per sub-block). */
static inline __m256i mins_x2(const uint8_t *mins8) {
    __m128i m = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mins8));
    return _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m));
}

void quant_q4_k_vec_dot_avx2(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q4_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sm[16]; /* 8 scales, 8 mins */
        kq_unpack_k4(x[b].scales, sm);
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        const __m256i mprod = _mm256_madd_epi16(bsums, mins_x2(sm + 8));
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i sum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++, q4 += 32, q8 += 64) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)q4);
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
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

const quant_impl quant_q4_k_avx2 = {NULL, NULL, quant_q4_k_vec_dot_avx2, NULL, 0};
