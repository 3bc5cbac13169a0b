/*
 * IQ4 dot products for 256-bit x86 registers, compiled into iq4_xs_avx2.c and (with VNNI)
 * iq4_xs_avx512.c. The 4-bit indices become int8 levels with one pshufb; a 16-byte group of
 * indices expands to the 32 weights of a sub-block (low nibbles, then high nibbles), matching
 * 32 contiguous activation bytes. Levels are signed, so kq_mul_s8 moves their sign onto the
 * activations for maddubs. Both equal their scalar references bit for bit.
 */
#include "quant/iq4_nl.h"
#include "quant/q8_k_x86.h"

/* The 32 levels of one 32-weight sub-block from its 16 index bytes. */
static inline __m256i iq4_expand(const uint8_t *qs, __m128i lut) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(q, 4), m4)),
                            _mm_shuffle_epi8(lut, _mm_and_si128(q, m4)));
}

void KQ_ISA(quant_iq4_xs_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_xs *x = vx;
    const block_q8_k *y = vy;
    const __m128i lut = _mm_loadu_si128((const __m128i *)quant_iq4_levels);
    float acc = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const __m256i p = kq_mul_s8(iq4_expand(x[b].qs + 16 * ib, lut),
                                        _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib)));
            sum = KQ_MADD_ACC(sum, p, _mm256_set1_epi16((int16_t)iq4_xs_scale(&x[b], ib)));
        }
        acc = iq4_fold(acc, kq_f16(x[b].d) * y[b].d, kq_hsum_i32_256(sum));
    }
    *out = acc;
}

void KQ_ISA(quant_iq4_nl_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    const __m128i lut = _mm_loadu_si128((const __m128i *)quant_iq4_levels);
    const __m256i ones = _mm256_set1_epi16(1);
    float acc = 0;
    for (int64_t b = 0; b < n / QK4_NL; b++) {
        const __m256i p = kq_mul_s8(iq4_expand(x[b].qs, lut), _mm256_loadu_si256((const __m256i *)y[b].qs));
        const int32_t s = kq_hsum_i32_256(KQ_MADD_ACC(_mm256_setzero_si256(), p, ones));
        acc = iq4_fold(acc, kq_f16(x[b].d) * kq_f16(y[b].d), s);
    }
    *out = acc;
}
