/*
 * K-quant super-blocks: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K, laid out byte for byte as the
 * GGUF format stores them (ggml's block_q*_K, QK_K = 256 elements per super-block). Each
 * super-block holds one or two fp16 super-scales and 8 or 16 small per-sub-block scales
 * (and mins), so a weight costs 2.6 to 6.6 bits.
 *
 * Q8_K is not a weight format: it is what activations are converted to before a dot product
 * with a K-quant weight row (float scale, 256 int8 values, and the sums of each 16 values so
 * that the "min" terms of Q2_K/Q4_K/Q5_K cost one multiply per sub-block).
 *
 * Every kernel here (scalar and SIMD) computes a super-block's dot product as exact int32
 * sums and folds them into the float result with kq_fold(), in the same order, so a SIMD
 * kernel equals the scalar reference bit for bit. The integer sums are the ones llama.cpp's
 * CPU backend forms, so logits agree with it up to float summation order.
 */
#ifndef OB_QUANT_Q8_K_H
#define OB_QUANT_Q8_K_H

#include <stdint.h>
#include <string.h>

#define QK_K         256 /* elements per super-block */
#define K_SCALE_SIZE 12  /* bytes of packed 6-bit scales and mins in Q4_K / Q5_K */

/* 2.625 bits/weight: 16 sub-blocks of 16, 4-bit scale and 4-bit min each. 84 bytes. */
typedef struct block_q2_k {
    uint8_t scales[QK_K / 16]; /* (16) low nibble: scale, high nibble: min */
    uint8_t qs[QK_K / 4];      /* (64) 2-bit quants, 4 per byte */
    uint16_t d;                /* fp16 super-scale of the scales */
    uint16_t dmin;             /* fp16 super-scale of the mins */
} block_q2_k;

/* 3.4375 bits/weight: 16 sub-blocks of 16 with signed 6-bit scales. 110 bytes. */
typedef struct block_q3_k {
    uint8_t hmask[QK_K / 8]; /* (32) high (third) bit of each quant */
    uint8_t qs[QK_K / 4];    /* (64) low 2 bits, 4 per byte */
    uint8_t scales[12];      /* 16 6-bit scales, packed */
    uint16_t d;              /* fp16 super-scale */
} block_q3_k;

/* 4.5 bits/weight: 8 sub-blocks of 32 with 6-bit scales and mins. 144 bytes. */
typedef struct block_q4_k {
    uint16_t d;                   /* fp16 super-scale of the scales */
    uint16_t dmin;                /* fp16 super-scale of the mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each */
    uint8_t qs[QK_K / 2];         /* (128) 4-bit quants: 64-element chunks, low nibbles first */
} block_q4_k;

/* 5.5 bits/weight: Q4_K plus one high bit per quant. 176 bytes. */
typedef struct block_q5_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8]; /* (32) fifth bit: bit 2c / 2c+1 for chunk c's low / high nibbles */
    uint8_t qs[QK_K / 2]; /* (128) low 4 bits */
} block_q5_k;

/* 6.5625 bits/weight: 16 sub-blocks of 16 with int8 scales. 210 bytes. */
typedef struct block_q6_k {
    uint8_t ql[QK_K / 2];     /* (128) low 4 bits */
    uint8_t qh[QK_K / 4];     /* (64) high 2 bits */
    int8_t scales[QK_K / 16]; /* (16) */
    uint16_t d;               /* fp16 super-scale */
} block_q6_k;

/* Activations for K-quant dot products. 292 bytes. */
typedef struct block_q8_k {
    float d;                  /* scale: value = d * qs[i] */
    int8_t qs[QK_K];          /* (256) in [-127, 127] */
    int16_t bsums[QK_K / 16]; /* (16) sum of each 16 consecutive qs */
} block_q8_k;

_Static_assert(sizeof(block_q2_k) == 84, "Q2_K block layout");
_Static_assert(sizeof(block_q3_k) == 110, "Q3_K block layout");
_Static_assert(sizeof(block_q4_k) == 144, "Q4_K block layout");
_Static_assert(sizeof(block_q5_k) == 176, "Q5_K block layout");
_Static_assert(sizeof(block_q6_k) == 210, "Q6_K block layout");
_Static_assert(sizeof(block_q8_k) == 292, "Q8_K block layout");

/* Rounds to the nearest integer, ties to even, for |f| < 2^22: adding 1.5 * 2^23 leaves the
 * rounded integer in the low mantissa bits. The quantizers use it so that their choices match
 * the published reference quantizers exactly (lrintf would too, but depends on the FP mode). */
static inline int kq_nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Unpacks sub-block j's 6-bit scale and min of a Q4_K / Q5_K super-block: entries 0-3 sit in
 * the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); entries 4-7 keep their low 4 bits in
 * bytes 8-11 and their top 2 bits in the spare high bits of bytes 0-7. */
static inline void kq_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* All 8 scales (out[0..8)) and 8 mins (out[8..16)) of a Q4_K / Q5_K super-block at once,
 * with 32-bit masks instead of per-entry branches (what the SIMD kernels use). */
static inline void kq_unpack_k4(const uint8_t *q, uint8_t out[16]) {
    uint32_t u[3], r[4];
    memcpy(u, q, 12);
    r[0] = u[0] & 0x3f3f3f3fu;
    r[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    r[2] = u[1] & 0x3f3f3f3fu;
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    memcpy(out, r, 16);
}

/* Unpacks all 16 signed Q3_K scales (in [-32, 31]). Packed: the low 4 bits of scale j sit in
 * byte j % 8 (low nibble for j < 8, high nibble after), its top 2 bits in byte 8 + j % 4 at
 * bit 2 * (j / 4); done four scales at a time in 32-bit words. */
static inline void kq_q3_scales(const uint8_t *packed, int8_t out[16]) {
    uint32_t a[3], r[4];
    memcpy(a, packed, 12);
    const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    r[0] = (a[0] & m4) | ((a[2] & m2) << 4);
    r[1] = (a[1] & m4) | (((a[2] >> 2) & m2) << 4);
    r[2] = ((a[0] >> 4) & m4) | (((a[2] >> 4) & m2) << 4);
    r[3] = ((a[1] >> 4) & m4) | (((a[2] >> 6) & m2) << 4);
    uint8_t u[16];
    memcpy(u, r, 16);
    for (int j = 0; j < 16; j++)
        out[j] = (int8_t)(u[j] - 32);
}

/* One super-block's contribution to a dot product: d * isum - dmin * msum, where d and dmin
 * already include the activation scale. Written as one expression every kernel shares so the
 * float rounding is the same everywhere (the build does not contract it into an FMA). */
static inline float kq_fold(float acc, float d, int32_t isum, float dmin, int32_t msum) {
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
    return acc + (d * (float)isum - dmin * (float)msum);
}

/* ---- scale searches shared by the quantizers (q8_k_scale.c) ---------------------------- */

/* Symmetric quantization of x[0..n) to L[i] in [0, 2*nmax) (stored offset by nmax), trying
 * scales around -nmax/max and keeping the one with the least weighted squared error
 * (weights x^2). Returns the scale (may be negative). */
float quant_kq_make_qx(int n, int nmax, const float *x, int8_t *L);

/* Symmetric 3-bit style search for Q3_K: start from -nmax/max, then move single quants while
 * that lowers the weighted error (weights x^2). L[i] in [0, 2*nmax). Returns the scale. */
float quant_kq_make_q3(int n, int nmax, const float *x, int8_t *L);

/* Asymmetric search (scale and min) for Q2_K / Q4_K / Q5_K: L[i] in [0, nmax], tries nstep+1
 * scales around nmax/(max-min) and solves the weighted least-squares scale and min for each.
 * *the_min receives -min (>= 0). `laux` is n bytes of scratch. Returns the scale. */
float quant_kq_make_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                         float *the_min, uint8_t *laux, float rmin, float rdelta, int nstep,
                         int use_mad);

/* Packs 8 6-bit scales and 8 6-bit mins into the 12-byte Q4_K / Q5_K layout (q4_k.c). */
void quant_kq_pack_scales_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t out[12]);

/* The Q4_K / Q5_K quantizer up to the levels (q4_k.c): per-sub-block scale/min search, 6-bit
 * scales and mins, then levels L[0..256) in 0..nmax re-derived from the stored scales. */
void quant_kq_quantize_k4(const float *x, int nmax, float rmin, int nstep, uint16_t *d_out,
                          uint16_t *dmin_out, uint8_t scales[12], uint8_t L[QK_K]);

/* ---- per-type entry points (the scalar reference) --------------------------------------- */
/* to_f32 / from_f32: n is a multiple of QK_K. vec_dot: x is a row of the type, y a row of
 * Q8_K, both n elements; *out = their dot product. */

#define KQ_DECLARE(t)                                                                              \
    void quant_##t##_to_f32(const void *src, float *dst, int64_t n);                               \
    void quant_##t##_from_f32(const float *src, void *dst, int64_t n);                             \
    void quant_##t##_vec_dot(int64_t n, float *out, const void *x, const void *y);

KQ_DECLARE(q2_k)
KQ_DECLARE(q3_k)
KQ_DECLARE(q4_k)
KQ_DECLARE(q5_k)
KQ_DECLARE(q6_k)

void quant_q8_k_to_f32(const void *src, float *dst, int64_t n);
void quant_q8_k_from_f32(const float *src, void *dst, int64_t n);

/* SIMD variants, each equal to the scalar function of the same name without the suffix. */
#define KQ_DECLARE_ISA(isa)                                                                        \
    void quant_q2_k_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);            \
    void quant_q3_k_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);            \
    void quant_q4_k_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);            \
    void quant_q5_k_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);            \
    void quant_q6_k_vec_dot_##isa(int64_t n, float *out, const void *x, const void *y);            \
    void quant_q8_k_from_f32_##isa(const float *src, void *dst, int64_t n);

KQ_DECLARE_ISA(avx2)
KQ_DECLARE_ISA(avx512)
KQ_DECLARE_ISA(neon)

#endif
