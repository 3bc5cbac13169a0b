/*
 * Tests of the half-precision conversions in src/quant/quant.c: every one of the 65536 f16 and
 * bf16 values, checked against an independent decoding, round trips, rounding of midpoints to
 * even, and (where the CPU has it) the hardware converter (x86 F16C, Arm FCVT) on random floats.
 */
#include "quant/quant.h"

#include "core/cpu_features.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The value of a half from its definition, in double. */
static double half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

TEST(f16_all_values_decode_and_round_trip) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = quant_f16_to_f32((uint16_t)h);
        bool nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (nan) {
            CHECK_MSG(isnan(f), "0x%04x decodes to %g", h, f);
            CHECK_EQ_INT(quant_f32_to_f16(f), h | 0x200); /* quiet, payload kept */
            continue;
        }
        double want = ((h >> 10) & 31) == 31 ? ((h >> 15) ? -INFINITY : INFINITY)
                                             : half_value((uint16_t)h);
        CHECK_MSG((double)f == want && !!signbit(f) == (int)(h >> 15), "0x%04x -> %a, want %a", h,
                  f, want);
        CHECK_MSG(quant_f32_to_f16(f) == h, "0x%04x -> %a -> 0x%04x", h, f,
                  quant_f32_to_f16(f));
    }
}

/* Midpoints between neighbouring finite halves round to the even one; a hair above or below
 * goes to the nearer one. */
TEST(f16_midpoints_round_to_even) {
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double lo = half_value((uint16_t)h), hi = half_value((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact: halves have 11 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        CHECK_MSG(quant_f32_to_f16(mid) == even, "midpoint of 0x%04x: got 0x%04x", h,
                  quant_f32_to_f16(mid));
        CHECK_EQ_INT(quant_f32_to_f16(-mid), even | 0x8000);
        CHECK_EQ_INT(quant_f32_to_f16(nextafterf(mid, 0.0f)), h);
        CHECK_EQ_INT(quant_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
    }
    /* past the largest half, 65504: below 65520 stays finite, from 65520 it is infinity */
    CHECK_EQ_INT(quant_f32_to_f16(65519.996f), 0x7bff);
    CHECK_EQ_INT(quant_f32_to_f16(65520.0f), 0x7c00);
    CHECK_EQ_INT(quant_f32_to_f16(-1e30f), 0xfc00);
    CHECK_EQ_INT(quant_f32_to_f16(0x1p-25f), 0x0000);                  /* tie to even: 0 */
    CHECK_EQ_INT(quant_f32_to_f16(nextafterf(0x1p-25f, 1.0f)), 0x0001); /* above the tie */
    CHECK_EQ_INT(quant_f32_to_f16(0x1p-26f), 0x0000);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f) {
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
#define HAVE_HW_F16 (ob_cpu_features_get()->f16c)
#elif defined(__aarch64__)
static uint16_t hw_f32_to_f16(float f) {
    __fp16 h = (__fp16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
static float hw_f16_to_f32(uint16_t u) {
    __fp16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}
#define HAVE_HW_F16 1
#endif

TEST(f16_matches_hardware) {
#ifdef HAVE_HW_F16
    if (!HAVE_HW_F16) SKIP("no hardware f16 conversion on this CPU");
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t a = f32_bits(quant_f16_to_f32((uint16_t)h));
        uint32_t b = f32_bits(hw_f16_to_f32((uint16_t)h));
        CHECK_MSG(a == b, "f16 0x%04x: 0x%08x, hardware 0x%08x", h, a, b);
    }
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rng32();
        if (i & 1) u = (u & 0x8fffffffu) | 0x30000000u; /* bias towards the half range */
        float f = bits_f32(u);
        CHECK_MSG(quant_f32_to_f16(f) == hw_f32_to_f16(f), "%a (0x%08x): 0x%04x, hardware 0x%04x",
                  f, u, quant_f32_to_f16(f), hw_f32_to_f16(f));
    }
#else
    SKIP("no hardware f16 conversion on this architecture");
#endif
}

TEST(bf16_all_values_and_rounding) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = quant_bf16_to_f32((uint16_t)h);
        CHECK_EQ_INT(f32_bits(f), h << 16);
        bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        CHECK_EQ_INT(quant_f32_to_bf16(f), nan ? (h | 0x40) : h);
    }
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = rng32();
        if (i & 1) u = (u & 0xffff0000u) | ((i & 2) ? 0x8000u : 0x7fffu); /* ties and near */
        float f = bits_f32(u);
        if (isnan(f) || isinf(f)) continue;
        uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
        double dl = fabs((double)f - (double)bits_f32(lo));
        double dh = (hi & 0x7f800000u) == 0x7f800000u ? INFINITY : 0; /* overflow side */
        if (dh == 0) dh = fabs((double)bits_f32(hi) - (double)f);
        uint16_t want = (uint16_t)((dl < dh || (dl == dh && !((lo >> 16) & 1))) ? lo >> 16
                                                                                  : hi >> 16);
        if ((hi & 0x7f800000u) == 0x7f800000u && (u & 0xffff) >= 0x8000 &&
            !((u & 0xffff) == 0x8000 && !((lo >> 16) & 1)))
            want = (uint16_t)(hi >> 16); /* rounds up into infinity, as ggml does */
        CHECK_MSG(quant_f32_to_bf16(f) == want, "%a: 0x%04x, want 0x%04x", f,
                  quant_f32_to_bf16(f), want);
    }
}

int main(void) {
    RUN(f16_all_values_decode_and_round_trip);
    RUN(f16_midpoints_round_to_even);
    RUN(f16_matches_hardware);
    RUN(bf16_all_values_and_rounding);
    return t_summary();
}
