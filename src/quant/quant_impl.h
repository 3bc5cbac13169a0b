/*
 * Inside src/quant: block structs as GGUF stores them, the per-ISA kernel sets that the
 * dispatch table in quant.c points to, and small helpers shared by the kernel files.
 *
 * A kernel set (quant_impl) holds what one ISA accelerates for one type; fields left NULL are
 * taken from the next ISA down, and the scalar set is complete. Each set is a const object
 * defined in its kernel file (legacy.c, legacy_avx2.c, ...) and listed in quant.c's table.
 * Sets that are declared here but not yet listed are simply unsupported: nothing refers to a
 * declared set until its row in quant.c names it, so a missing file never breaks the link.
 */
#ifndef OB_QUANT_IMPL_H
#define OB_QUANT_IMPL_H

#include "quant/quant.h"

#include <stdint.h>
#include <string.h>

/* ---- block layouts (all little-endian, no padding; sizes checked in quant.c) ---- */

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32

typedef struct { uint16_t d; uint8_t qs[16]; } quant_block_q4_0; /* x = (q - 8) * d;
    qs[j] low nibble = element j, high nibble = element j + 16 */
typedef struct { uint16_t d, m; uint8_t qs[16]; } quant_block_q4_1; /* x = q * d + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } quant_block_q5_0; /* x = (q - 16)
    * d; bit j of the little-endian u32 qh is bit 4 of element j */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } quant_block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } quant_block_q8_0; /* x = q * d */
typedef struct { uint16_t d, s; int8_t qs[32]; } quant_block_q8_1; /* s = d * sum(qs) */

/* ---- kernel sets ---- */

enum {
    QUANT_ISA_SCALAR = 0,
    QUANT_ISA_AVX2,
    QUANT_ISA_AVX512,
    QUANT_ISA_NEON,
    QUANT_ISA_AVXVNNI, /* the AVX2 variant with VPDPBUSD rp_dot kernels (quant.c) */
    QUANT_ISA_COUNT,
};

/* CPU features a set needs beyond its ISA's baseline (ob_cpu_features names). */
#define QUANT_NEEDS_AVX512BF16 (1u << 0)

typedef struct quant_impl {
    quant_to_f32_fn to_f32;
    quant_from_f32_fn from_f32;
    quant_vec_dot_fn vec_dot;
    quant_dot_tile_fn dot_tile;
    uint32_t needs; /* QUANT_NEEDS_* bits */
} quant_impl;

/* Plain float types (float.c, float_<isa>.c). */
extern const quant_impl quant_f32_scalar, quant_f32_avx2, quant_f32_avx512, quant_f32_neon;
extern const quant_impl quant_f16_scalar, quant_f16_avx2, quant_f16_avx512, quant_f16_neon;
extern const quant_impl quant_bf16_scalar, quant_bf16_avx2, quant_bf16_avx512, quant_bf16_neon;

/* The 32-element block types (legacy.c, legacy_<isa>.c). */
extern const quant_impl quant_q4_0_scalar, quant_q4_0_avx2, quant_q4_0_avx512, quant_q4_0_neon;
extern const quant_impl quant_q4_1_scalar, quant_q4_1_avx2, quant_q4_1_avx512, quant_q4_1_neon;
extern const quant_impl quant_q5_0_scalar, quant_q5_0_avx2, quant_q5_0_avx512, quant_q5_0_neon;
extern const quant_impl quant_q5_1_scalar, quant_q5_1_avx2, quant_q5_1_avx512, quant_q5_1_neon;
extern const quant_impl quant_q8_0_scalar, quant_q8_0_avx2, quant_q8_0_avx512, quant_q8_0_neon;
extern const quant_impl quant_q8_1_scalar, quant_q8_1_avx2, quant_q8_1_avx512, quant_q8_1_neon;
/* Their activation quantizers (quant_traits.act_from_f32), which round unlike from_f32. */
void quant_q8_0_act_scalar(const float *src, void *dst, int64_t n);
void quant_q8_1_act_scalar(const float *src, void *dst, int64_t n);
void quant_q8_0_act_avx2(const float *src, void *dst, int64_t n);
void quant_q8_1_act_avx2(const float *src, void *dst, int64_t n);
void quant_q8_0_act_avx512(const float *src, void *dst, int64_t n);
void quant_q8_1_act_avx512(const float *src, void *dst, int64_t n);
void quant_q8_0_act_neon(const float *src, void *dst, int64_t n);
void quant_q8_1_act_neon(const float *src, void *dst, int64_t n);

/* K-quants and IQ4 (q2_k*.c ... q8_k*.c, iq4_*.c). Declared for their files to define; each
 * becomes live when its row in quant.c's table names it. */
extern const quant_impl quant_q2_k_scalar, quant_q2_k_avx2, quant_q2_k_avx512, quant_q2_k_neon;
extern const quant_impl quant_q3_k_scalar, quant_q3_k_avx2, quant_q3_k_avx512, quant_q3_k_neon;
extern const quant_impl quant_q4_k_scalar, quant_q4_k_avx2, quant_q4_k_avx512, quant_q4_k_neon;
extern const quant_impl quant_q5_k_scalar, quant_q5_k_avx2, quant_q5_k_avx512, quant_q5_k_neon;
extern const quant_impl quant_q6_k_scalar, quant_q6_k_avx2, quant_q6_k_avx512, quant_q6_k_neon;
extern const quant_impl quant_q8_k_scalar, quant_q8_k_avx2, quant_q8_k_avx512, quant_q8_k_neon;
extern const quant_impl quant_iq4_nl_scalar, quant_iq4_nl_avx2, quant_iq4_nl_avx512,
    quant_iq4_nl_neon;
extern const quant_impl quant_iq4_xs_scalar, quant_iq4_xs_avx2, quant_iq4_xs_avx512,
    quant_iq4_xs_neon;

/* ---- helpers ---- */

/* f16 <-> f32 for kernels (inline forms of quant_f16_to_f32 / quant_f32_to_f16). */
static inline float quant_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, ex = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    float f;
    if (ex == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float */
        f = (float)mant * 0x1p-24f;
        memcpy(&u, &f, 4);
        u |= sign;
    } else if (ex == 31) {
        u = sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0); /* NaN made quiet */
    } else {
        u = sign | ((ex + 112) << 23) | (mant << 13);
    }
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t quant_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a & 0x7fffff) >> 13)); /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to infinity */
    if (a < 0x38800000u) {
        /* Below the smallest normal half: adding 0.5 puts the value where float's ulp is
         * 2^-24, the half subnormal step, so the FPU's round-to-nearest-even does the work. */
        float t, fa;
        memcpy(&fa, &a, 4);
        t = fa + 0.5f;
        uint32_t tu;
        memcpy(&tu, &t, 4);
        return (uint16_t)(sign | (tu - 0x3f000000u));
    }
    /* Normal: rebias the exponent (-112 << 23) and round the 13 dropped bits to even. */
    a += 0xc8000fffu + ((a >> 13) & 1);
    return (uint16_t)(sign | (a >> 13));
}

static inline float quant_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t quant_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* Unaligned little-endian loads (blocks sit at odd offsets inside mapped files). */
static inline uint32_t quant_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#endif
