/*
 * K-quant and IQ4 kernels: every SIMD vec_dot and Q8_K quantizer built for this machine equals
 * the scalar reference exactly (all of them form exact int32 sums and fold them into the float
 * result in the same order), on quantized random data and on random raw blocks that reach
 * every level and scale, for 1, 2, 3 and 7 super-blocks and for several rows. The scalar
 * vec_dot itself is checked against a double-precision dot of the dequantized rows, and the
 * quantizers against error bounds. Dequantization and quantizer accuracy are also compared
 * with the gguf package and llama.cpp's quantizer in test_kquant_ref.py.
 */
#include "quant/iq4_nl.h"
#include "quant/q8_k.h"
#include "quant/quant.h"
#include "test.h"

#include <math.h>

typedef struct kq_type {
    uint32_t type;
    size_t d_off[2]; /* byte offsets of fp16 scale fields to keep finite in raw blocks */
    int nd;
    int q8_0; /* activations are Q8_0 (IQ4_NL) rather than Q8_K */
} kq_type;

static const kq_type TYPES[] = {
    {OB_QTYPE_Q2_K, {80, 82}, 2, 0}, {OB_QTYPE_Q3_K, {108, 0}, 1, 0},
    {OB_QTYPE_Q4_K, {0, 2}, 2, 0},   {OB_QTYPE_Q5_K, {0, 2}, 2, 0},
    {OB_QTYPE_Q6_K, {208, 0}, 1, 0}, {OB_QTYPE_IQ4_NL, {0, 0}, 1, 1},
    {OB_QTYPE_IQ4_XS, {0, 0}, 1, 0},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])
static const char *const ISA_NAMES[3] = {"avx2", "avx512", "neon"};

/* The ISA's own variant of a type, or NULL when it is not built or this CPU lacks it. */
static const quant_traits *isa_traits(uint32_t type, int i) {
    const quant_traits *t = quant_traits_isa(type, ISA_NAMES[i]);
    return t && strcmp(t->isa, ISA_NAMES[i]) == 0 ? t : NULL;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rnd_unit(void) {
    return (float)((rnd() >> 40) * (1.0 / 16777216.0)) * 2.f - 1.f;
}
/* Roughly normal with occasional outliers, like trained weights. */
static float rnd_weight(void) {
    float s = rnd_unit() + rnd_unit() + rnd_unit();
    return (rnd() % 61 == 0) ? 4.f * s : s;
}

/* Raw blocks with random bytes everywhere except finite, moderate fp16 scales. */
static void fill_raw(const kq_type *t, uint8_t *q, int64_t nblocks) {
    const size_t size = quant_traits_ref(t->type)->type_size;
    for (int64_t b = 0; b < nblocks; b++) {
        uint8_t *blk = q + b * (int64_t)size;
        for (size_t i = 0; i < size; i++)
            blk[i] = (uint8_t)rnd();
        for (int k = 0; k < t->nd; k++) {
            uint16_t h = quant_f32_to_f16(rnd_unit() * 0.01f);
            memcpy(blk + t->d_off[k], &h, 2);
        }
    }
}

/* Activations for type t: Q8_K from the scalar quantizer, or raw Q8_0 blocks. */
static void make_act(const kq_type *t, const float *a, void *out, int64_t n) {
    if (!t->q8_0) {
        quant_q8_k_from_f32(a, out, n);
        return;
    }
    quant_block_q8_0 *y = out;
    for (int64_t b = 0; b < n / 32; b++) {
        y[b].d = quant_f32_to_f16(rnd_unit() * 0.02f);
        for (int j = 0; j < 32; j++)
            y[b].qs[j] = (int8_t)(rnd() % 255 - 127);
    }
}

static void act_to_f32(const kq_type *t, const void *q, float *out, int64_t n) {
    if (!t->q8_0) {
        quant_q8_k_to_f32(q, out, n);
        return;
    }
    const quant_block_q8_0 *y = q;
    for (int64_t i = 0; i < n; i++)
        out[i] = quant_f16_to_f32(y[i / 32].d) * y[i / 32].qs[i % 32];
}

static long n_isa_checks;
static const int64_t NBLOCKS[] = {1, 2, 3, 7};
#define MAX_N    (7 * 256)
#define MAX_ROWS 3

/* Compares every built ISA's vec_dot with the scalar one on `rows` rows of x against y. */
static int compare_isas(const kq_type *t, const uint8_t *qx, const void *qy, int64_t n, int rows,
                        const char *what) {
    const quant_traits *ref = quant_traits_ref(t->type);
    size_t row_bytes = (size_t)(n / ref->block_size) * ref->type_size;
    for (int r = 0; r < rows; r++) {
        float want, got;
        ref->vec_dot(n, &want, qx + r * row_bytes, qy);
        for (int i = 0; i < 3; i++) {
            const quant_traits *isa = isa_traits(t->type, i);
            if (!isa) continue;
            n_isa_checks++;
            got = -12345.f;
            isa->vec_dot(n, &got, qx + r * row_bytes, qy);
            if (memcmp(&got, &want, sizeof got) != 0) {
                fprintf(stderr, "  %s %s n=%lld row %d (%s): %.9g != scalar %.9g\n", ref->name,
                        ISA_NAMES[i], (long long)n, r, what, got, want);
                return 0;
            }
        }
    }
    return 1;
}

TEST(simd_vec_dot_equals_scalar) {
    static float xf[MAX_ROWS * MAX_N], af[MAX_N];
    static uint8_t qx[MAX_ROWS * MAX_N * 2], qy[MAX_N * 2];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &TYPES[ti];
        const quant_traits *ref = quant_traits_ref(t->type);
        CHECK(ref && ref->vec_dot_type == (t->q8_0 ? OB_QTYPE_Q8_0 : OB_QTYPE_Q8_K));
        for (size_t k = 0; k < sizeof NBLOCKS / sizeof NBLOCKS[0]; k++) {
            const int64_t n = NBLOCKS[k] * 256;
            for (int64_t i = 0; i < MAX_ROWS * n; i++)
                xf[i] = rnd_weight();
            for (int64_t i = 0; i < n; i++)
                af[i] = rnd_weight();
            ref->from_f32(xf, qx, MAX_ROWS * n);
            make_act(t, af, qy, n);
            CHECK(compare_isas(t, qx, qy, n, MAX_ROWS, "quantized"));
            fill_raw(t, qx, MAX_ROWS * n / ref->block_size);
            CHECK(compare_isas(t, qx, qy, n, MAX_ROWS, "raw blocks"));
        }
    }
    fprintf(stderr, "simd_vec_dot_equals_scalar: %ld comparisons with SIMD variants\n",
            n_isa_checks);
}

/* The scalar vec_dot equals the dot of the dequantized rows (up to float rounding). */
TEST(scalar_vec_dot_matches_dequantized_dot) {
    static float xf[MAX_N], af[MAX_N], xd[MAX_N], ad[MAX_N];
    static uint8_t qx[MAX_N * 2], qy[MAX_N * 2];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &TYPES[ti];
        const quant_traits *ref = quant_traits_ref(t->type);
        const int64_t n = 3 * 256;
        for (int rep = 0; rep < 2; rep++) {
            for (int64_t i = 0; i < n; i++) {
                xf[i] = rnd_weight();
                af[i] = rnd_weight();
            }
            if (rep == 0)
                ref->from_f32(xf, qx, n);
            else
                fill_raw(t, qx, n / ref->block_size);
            make_act(t, af, qy, n);
            ref->to_f32(qx, xd, n);
            act_to_f32(t, qy, ad, n);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                want += (double)xd[i] * ad[i];
                mag += fabs((double)xd[i] * ad[i]);
            }
            float got;
            ref->vec_dot(n, &got, qx, qy);
            CHECK_MSG(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s: dot %.9g, dequantized %.9g",
                      ref->name, got, want);
        }
    }
}

/* Quantize -> dequantize error, relative to the data's RMS, stays within each type's bound
 * (about half of what a plain round-to-scale quantizer of that width would give). */
TEST(quantizer_error_bounds) {
    static float x[4 * 256], back[4 * 256];
    static uint8_t q[4 * 256 * 2];
    const double bound[N_TYPES] = {0.40, 0.22, 0.11, 0.055, 0.028, 0.11, 0.11};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const quant_traits *t = quant_traits_ref(TYPES[ti].type);
        double err = 0, ss = 0;
        for (int64_t i = 0; i < 1024; i++)
            x[i] = rnd_weight();
        t->from_f32(x, q, 1024);
        t->to_f32(q, back, 1024);
        for (int64_t i = 0; i < 1024; i++) {
            err += (back[i] - x[i]) * (double)(back[i] - x[i]);
            ss += (double)x[i] * x[i];
        }
        CHECK_MSG(sqrt(err / ss) < bound[ti], "%s: relative rms error %.4f", t->name,
                  sqrt(err / ss));
        /* An all-zero input quantizes to exact zeros. */
        memset(x, 0, sizeof x);
        t->from_f32(x, q, 256);
        t->to_f32(q, back, 256);
        for (int i = 0; i < 256; i++)
            CHECK_MSG(back[i] == 0.f, "%s: zero input", t->name);
    }
}

static int q8k_same(const void *a, const void *b, int64_t nblocks) {
    return memcmp(a, b, (size_t)nblocks * sizeof(block_q8_k)) == 0;
}

TEST(q8_k_quantizers_equal_scalar) {
    static float x[5 * 256];
    static block_q8_k ref[5], got[5];
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < 5 * 256; i++)
            x[i] = rnd_weight() * (rep + 1);
        memset(x + 256, 0, 256 * sizeof(float)); /* an all-zero block */
        x[2 * 256 + 7] = -1000.f;                /* the extreme is negative */
        x[3 * 256 + 3] = 1000.f;                 /* +m then -m: the first one wins */
        x[3 * 256 + 200] = -1000.f;
        for (int i = 0; i < 256; i++)
            x[4 * 256 + i] = (float)(i % 21 - 10) * 0.5f; /* ties */
        quant_traits_ref(OB_QTYPE_Q8_K)->from_f32(x, ref, 5 * 256);
        CHECK(ref[1].d == 0.f && ref[3].qs[3] == -127 && ref[3].qs[200] == 127);
        for (int i = 0; i < 3; i++) {
            const quant_traits *isa = isa_traits(OB_QTYPE_Q8_K, i);
            if (!isa) continue;
            memset(got, 0x55, sizeof got);
            isa->from_f32(x, got, 5 * 256);
            CHECK_MSG(q8k_same(ref, got, 5), "Q8_K %s differs from scalar (rep %d)", ISA_NAMES[i],
                      rep);
        }
    }
}

/* Q8_K's invariants: |q| <= 127, bsums are the 16-sums, d * q reproduces x within d/2. */
TEST(q8_k_reference_invariants) {
    static float x[2 * 256], back[2 * 256];
    static block_q8_k q[2];
    for (int i = 0; i < 512; i++)
        x[i] = rnd_weight();
    quant_q8_k_from_f32(x, q, 512);
    quant_q8_k_to_f32(q, back, 512);
    for (int b = 0; b < 2; b++) {
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += q[b].qs[16 * j + i];
            CHECK_EQ_INT(q[b].bsums[j], s);
        }
        for (int i = 0; i < 256; i++) {
            CHECK(q[b].qs[i] >= -127);
            CHECK(fabsf(back[256 * b + i] - x[256 * b + i]) <= fabsf(q[b].d) * 0.5001f);
        }
    }
}

int main(void) {
    RUN(simd_vec_dot_equals_scalar);
    RUN(scalar_vec_dot_matches_dequantized_dot);
    RUN(quantizer_error_bounds);
    RUN(q8_k_quantizers_equal_scalar);
    RUN(q8_k_reference_invariants);
    return t_summary();
}
