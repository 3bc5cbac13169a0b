/*
 * Q6_K x Q8_K dot product, AVX-512 (BW + VNNI). A 64-byte load of ql gives, in its low
 * nibbles, weights 0..63 of a 128-weight half and, in its high nibbles, weights 64..127; the
 * matching high bits come from qh and qh >> 2 placed side by side. Each 128-bit lane is one
 * 16-weight sub-block, so vpermw spreads the 16 scales lane by lane and dpwssd applies them.
 * The -32 offset returns as 32 * sum(sc * bsum). Equals quant_q6_k_vec_dot bit for bit.
 */
#include "quant/quant_impl.h"
#include "quant/q8_k.h"
#include "quant/q8_k_x86.h"

void quant_q6_k_vec_dot_avx512(int64_t n, float *out, const void *vx, const void *vy) {
    const block_q6_k *x = vx;
    const block_q8_k *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    const __m512i m30 = _mm512_set1_epi8(0x30);
    /* int16 lane i of a 512-bit register belongs to sub-block i/8 of its 64 weights. */
    const __m512i sel = _mm512_set_epi64(0x0003000300030003, 0x0003000300030003,
                                         0x0002000200020002, 0x0002000200020002,
                                         0x0001000100010001, 0x0001000100010001, 0, 0);
    const __m512i four = _mm512_set1_epi16(4);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        const __m512i scz = _mm512_castsi256_si512(sc16);
        const __m256i offs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), sc16);
        __m512i sum = _mm512_setzero_si512(), s = sel;
        for (int h = 0; h < 2; h++) {
            const __m512i ql = _mm512_loadu_si512(x[b].ql + 64 * h);
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            const __m512i qhz = _mm512_inserti64x4(_mm512_castsi256_si512(qh),
                                                   _mm256_srli_epi16(qh, 2), 1);
            const __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                               _mm512_slli_epi16(_mm512_and_si512(qhz, m3), 4));
            const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                               _mm512_and_si512(qhz, m30));
            const int8_t *q8 = y[b].qs + 128 * h;
            const __m512i pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(q8));
            const __m512i pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(q8 + 64));
            sum = _mm512_dpwssd_epi32(sum, pa, _mm512_permutexvar_epi16(s, scz));
            s = _mm512_add_epi16(s, four);
            sum = _mm512_dpwssd_epi32(sum, pb, _mm512_permutexvar_epi16(s, scz));
            s = _mm512_add_epi16(s, four);
        }
        const __m256i sum8 = _mm256_add_epi32(_mm512_castsi512_si256(sum),
                                              _mm512_extracti64x4_epi64(sum, 1));
        int32_t isum, osum;
        kq_hsum2_i32_256(sum8, offs, &isum, &osum);
        acc = kq_fold(acc, kq_f16(x[b].d) * y[b].d, isum - 32 * osum, 0.f, 0);
    }
    *out = acc;
}

const quant_impl quant_q6_k_avx512 = {NULL, NULL, quant_q6_k_vec_dot_avx512, NULL, 0};
