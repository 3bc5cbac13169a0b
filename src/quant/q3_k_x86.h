/*
 * Q3_K x Q8_K dot product for 256-bit x86 registers, compiled into q3_k_avx2.c and (with VNNI)
 * q3_k_avx512.c. Quants are used as unsigned 0..7 (2 low bits plus 4 * the hmask bit), which
 * maddubs can take; the -4 offset returns as 4 * sum(sc * bsum). Each 32-weight step covers two
 * 16-weight sub-blocks, one per 128-bit lane. Equals quant_q3_k_vec_dot bit for bit.
 */
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

void KQ_ISA(quant_q3_k_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q3_k *x = vx;
    const block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int8_t sc[16];
        kq_q3_scales(x[b].scales, sc);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i offs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), sc16);
        __m256i hm = _mm256_loadu_si256((const __m256i *)x[b].hmask);
        __m256i sum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i sch = kq_bcast_lane(sc16, h);
            __m256i qs = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * h));
            const int8_t *q8 = y[b].qs + 128 * h;
            for (int k = 0; k < 4; k++) {
                /* hmask bit 4h+k of byte l belongs to weight 128h + 32k + l. */
                const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(hm, one), 2);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(qs, m3), hb);
                qs = _mm256_srli_epi16(qs, 2);
                hm = _mm256_srli_epi16(hm, 1);
                const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                sum = KQ_MADD_ACC(sum, p, kq_pair_scales(sch, k));
            }
        }
        int32_t isum, osum;
        kq_hsum2_i32_256(sum, offs, &isum, &osum);
        acc = kq_fold(acc, kq_f16(x[b].d) * y[b].d, isum - 4 * osum, 0.f, 0);
    }
    *out = acc;
}
