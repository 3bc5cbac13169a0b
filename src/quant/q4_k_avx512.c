/*
 * Q4_K x Q8_K dot product, AVX-512 (BW + VNNI). One 64-weight chunk per 512-bit register: the
 * chunk's low nibbles (sub-block 2c) fill the lower half and its high nibbles (2c+1) the upper
 * half, matching the 64 contiguous activation bytes. maddubs forms i16 pair products and
 * VNNI's dpwssd multiplies them by the per-half scale and accumulates in int32 in one step.
 * Exact integer sums: equals quant_q4_k_vec_dot bit for bit.
 */
#include "quant/quant_impl.h"
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

void quant_q4_k_vec_dot_avx512(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q4_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    /* vpermw indices selecting scale 2c for lanes 0-15 and 2c+1 for lanes 16-31. */
    const __m512i sel0 = _mm512_set_epi64(0x0001000100010001, 0x0001000100010001,
                                          0x0001000100010001, 0x0001000100010001, 0, 0, 0, 0);
    const __m512i two = _mm512_set1_epi16(2);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sm[16];
        kq_unpack_k4(x[b].scales, sm);
        /* 8 scales and 8 mins as int16: lanes 0-7 scales, 8-15 mins (repeated upward). */
        const __m128i sm16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sm));
        const __m512i scales = _mm512_broadcast_i32x4(sm16);
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
        const __m256i mins_x2 =
            _mm256_set_m128i(_mm_unpackhi_epi16(mins16, mins16), _mm_unpacklo_epi16(mins16, mins16));
        const __m256i mprod =
            _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), mins_x2);
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m512i sum = _mm512_setzero_si512();
        __m512i sel = sel0;
        for (int c = 0; c < 4; c++, q4 += 32, q8 += 64, sel = _mm512_add_epi16(sel, two)) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)q4);
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
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

const quant_impl quant_q4_k_avx512 = {NULL, NULL, quant_q4_k_vec_dot_avx512, NULL, 0};
