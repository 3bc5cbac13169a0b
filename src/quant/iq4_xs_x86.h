/*
 * IQ4 dot products for 256-bit x86 registers, compiled into iq4_xs_avx2.c and (with VNNI)
 * iq4_xs_avx512.c. The 4-bit indices become int8 levels with one pshufb; a 16-byte group of
 * indices expands to the 32 weights of a sub-block (low nibbles, then high nibbles), matching
 * 32 contiguous activation bytes. Levels are signed, so kq_mul_s8 moves their sign onto the
 * activations for maddubs. Both equal their scalar references bit for bit.
 */
#include "quant/iq4_nl.h"
#include "quant/q8_k_x86.h"

#include <stddef.h>

/* The 32 levels of one 32-weight sub-block from its 16 index bytes. */
static inline __m256i iq4_expand(const uint8_t *qs, __m128i lut) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(q, 4), m4)),
                            _mm_shuffle_epi8(lut, _mm_and_si128(q, m4)));
}

/* The 8 signed 6-bit sub-block scales as int16, built in registers. */
static inline __m256i iq4_xs_scales16(const block_iq4_xs *x) {
    /* Low 4 bits: nibble ib % 2 of byte ib / 2; top 2 bits: bits 2ib, 2ib+1 of scales_h
     * (shifted per lane with srlv, then packed to int16). */
    uint32_t l;
    memcpy(&l, x->scales_l, 4);
    const __m128i lv = _mm_cvtsi32_si128((int)l);
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m128i lo =
        _mm_unpacklo_epi8(_mm_and_si128(lv, m4), _mm_and_si128(_mm_srli_epi16(lv, 4), m4));
    const __m128i lo16 = _mm_cvtepu8_epi16(lo); /* 8 x int16, sub-block order */
    const __m128i sh = _mm_srlv_epi32(_mm_set1_epi32(x->scales_h), _mm_setr_epi32(0, 2, 4, 6));
    const __m128i sh2 = _mm_srlv_epi32(_mm_set1_epi32(x->scales_h), _mm_setr_epi32(8, 10, 12, 14));
    const __m128i h16 = _mm_and_si128(_mm_packus_epi32(sh, sh2), _mm_set1_epi16(3));
    const __m128i s = _mm_sub_epi16(_mm_or_si128(lo16, _mm_slli_epi16(h16, 4)), _mm_set1_epi16(32));
    return _mm256_broadcastsi128_si256(s);
}

static inline void iq4xs_block(const void *vx, const void *vy, __m256i *isum, __m256i *msum) {
    const block_iq4_xs *x = vx;
    const block_q8_k *y = vy;
    const __m128i lut = _mm_loadu_si128((const __m128i *)quant_iq4_levels);
    const __m256i sc = iq4_xs_scales16(x);
    __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
#pragma GCC unroll 8
    for (int ib = 0; ib < QK_K / 32; ib++) {
        const __m256i p = kq_mul_s8(iq4_expand(x->qs + 16 * ib, lut),
                                    _mm256_loadu_si256((const __m256i *)(y->qs + 32 * ib)));
        sum[ib & 1] = KQ_MADD_ACC(sum[ib & 1], p, kq_bcast16(sc, ib));
    }
    *isum = _mm256_add_epi32(sum[0], sum[1]);
    *msum = _mm256_setzero_si256();
}

/* kq_loop_x86's fold with no min term is acc + (d * isum - 0), which is iq4_fold exactly. */
void KQ_ISA(quant_iq4_xs_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    *out = kq_loop_x86(n / QK_K, vx, sizeof(block_iq4_xs), vy, iq4xs_block,
                       offsetof(block_iq4_xs, d), offsetof(block_iq4_xs, d), 0);
}

void KQ_ISA(quant_iq4_nl_vec_dot)(int64_t n, float *out, const void *vx, const void *vy) {
    const block_iq4_nl *x = vx;
    const quant_block_q8_0 *y = vy;
    const __m128i lut = _mm_loadu_si128((const __m128i *)quant_iq4_levels);
    const __m256i ones = _mm256_set1_epi16(1);
    float acc = 0;
    for (int64_t b = 0; b < n / QK4_NL; b++) {
        const __m256i p =
            kq_mul_s8(iq4_expand(x[b].qs, lut), _mm256_loadu_si256((const __m256i *)y[b].qs));
        const int32_t s = kq_hsum_i32_256(KQ_MADD_ACC(_mm256_setzero_si256(), p, ones));
        acc = iq4_fold(acc, kq_f16(x[b].d) * kq_f16(y[b].d), s);
    }
    *out = acc;
}
