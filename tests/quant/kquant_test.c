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

typedef void (*dot_fn)(int64_t, float *, const void *, const void *);
typedef void (*to_fn)(const void *, float *, int64_t);
typedef void (*from_fn)(const float *, void *, int64_t);

typedef struct kq_type {
    const char *name;
    int64_t block;   /* elements per block */
    size_t size;     /* bytes per block */
    size_t d_off[2]; /* byte offsets of fp16 scale fields to keep finite in raw blocks */
    int nd;
    to_fn to;
    from_fn from;
    dot_fn dot;
    int q8_0;        /* activations are Q8_0 (IQ4_NL) rather than Q8_K */
    dot_fn isa_dot[3]; /* avx2, avx512, neon (NULL where not built) */
} kq_type;

#if defined(__x86_64__)
#define ISA_X86(t) quant_##t##_vec_dot_avx2, quant_##t##_vec_dot_avx512, NULL
#elif defined(__aarch64__)
#define ISA_X86(t) NULL, NULL, quant_##t##_vec_dot_neon
#else
#define ISA_X86(t) NULL, NULL, NULL
#endif

static const kq_type TYPES[] = {
    {"Q2_K", 256, 84, {80, 82}, 2, quant_q2_k_to_f32, quant_q2_k_from_f32, quant_q2_k_vec_dot, 0, {ISA_X86(q2_k)}},
    {"Q3_K", 256, 110, {108, 0}, 1, quant_q3_k_to_f32, quant_q3_k_from_f32, quant_q3_k_vec_dot, 0, {ISA_X86(q3_k)}},
    {"Q4_K", 256, 144, {0, 2}, 2, quant_q4_k_to_f32, quant_q4_k_from_f32, quant_q4_k_vec_dot, 0, {ISA_X86(q4_k)}},
    {"Q5_K", 256, 176, {0, 2}, 2, quant_q5_k_to_f32, quant_q5_k_from_f32, quant_q5_k_vec_dot, 0, {ISA_X86(q5_k)}},
    {"Q6_K", 256, 210, {208, 0}, 1, quant_q6_k_to_f32, quant_q6_k_from_f32, quant_q6_k_vec_dot, 0, {ISA_X86(q6_k)}},
    {"IQ4_NL", 32, 18, {0, 0}, 1, quant_iq4_nl_to_f32, quant_iq4_nl_from_f32, quant_iq4_nl_vec_dot, 1, {ISA_X86(iq4_nl)}},
    {"IQ4_XS", 256, 136, {0, 0}, 1, quant_iq4_xs_to_f32, quant_iq4_xs_from_f32, quant_iq4_xs_vec_dot, 0, {ISA_X86(iq4_xs)}},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])
static const char *const ISA_NAMES[3] = {"avx2", "avx512", "neon"};

/* Whether this CPU runs the kernels of ISA slot i. */
static int isa_ok(int i) {
#if defined(__x86_64__)
    if (i == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (i == 1)
        return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
    return 0;
#elif defined(__aarch64__)
    return i == 2;
#else
    (void)i;
    return 0;
#endif
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rnd_unit(void) { return (float)((rnd() >> 40) * (1.0 / 16777216.0)) * 2.f - 1.f; }
/* Roughly normal with occasional outliers, like trained weights. */
static float rnd_weight(void) {
    float s = rnd_unit() + rnd_unit() + rnd_unit();
    return (rnd() % 61 == 0) ? 4.f * s : s;
}

/* Raw blocks with random bytes everywhere except finite, moderate fp16 scales. */
static void fill_raw(const kq_type *t, uint8_t *q, int64_t nblocks) {
    for (int64_t b = 0; b < nblocks; b++) {
        uint8_t *blk = q + b * (int64_t)t->size;
        for (size_t i = 0; i < t->size; i++) blk[i] = (uint8_t)rnd();
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
    iq4_q8_0_block *y = out;
    for (int64_t b = 0; b < n / 32; b++) {
        y[b].d = quant_f32_to_f16(rnd_unit() * 0.02f);
        for (int j = 0; j < 32; j++) y[b].qs[j] = (int8_t)(rnd() % 255 - 127);
    }
}

static void act_to_f32(const kq_type *t, const void *q, float *out, int64_t n) {
    if (!t->q8_0) {
        quant_q8_k_to_f32(q, out, n);
        return;
    }
    const iq4_q8_0_block *y = q;
    for (int64_t i = 0; i < n; i++) out[i] = quant_f16_to_f32(y[i / 32].d) * y[i / 32].qs[i % 32];
}

static const int64_t NBLOCKS[] = {1, 2, 3, 7};
#define MAX_N (7 * 256)
#define MAX_ROWS 3

/* Compares every built ISA's vec_dot with the scalar one on `rows` rows of x against y. */
static int compare_isas(const kq_type *t, const uint8_t *qx, const void *qy, int64_t n,
                        int rows, const char *what) {
    size_t row_bytes = (size_t)(n / t->block) * t->size;
    for (int r = 0; r < rows; r++) {
        float ref, got;
        t->dot(n, &ref, qx + r * row_bytes, qy);
        for (int i = 0; i < 3; i++) {
            if (!t->isa_dot[i] || !isa_ok(i)) continue;
            got = -12345.f;
            t->isa_dot[i](n, &got, qx + r * row_bytes, qy);
            if (memcmp(&got, &ref, sizeof got) != 0) {
                fprintf(stderr, "  %s %s n=%lld row %d (%s): %.9g != scalar %.9g\n", t->name,
                        ISA_NAMES[i], (long long)n, r, what, got, ref);
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
        for (size_t k = 0; k < sizeof NBLOCKS / sizeof NBLOCKS[0]; k++) {
            const int64_t n = NBLOCKS[k] * 256;
            for (int64_t i = 0; i < MAX_ROWS * n; i++) xf[i] = rnd_weight();
            for (int64_t i = 0; i < n; i++) af[i] = rnd_weight();
            t->from(xf, qx, MAX_ROWS * n);
            make_act(t, af, qy, n);
            CHECK(compare_isas(t, qx, qy, n, MAX_ROWS, "quantized"));
            fill_raw(t, qx, MAX_ROWS * n / t->block);
            CHECK(compare_isas(t, qx, qy, n, MAX_ROWS, "raw blocks"));
        }
    }
}

/* The scalar vec_dot equals the dot of the dequantized rows (up to float rounding). */
TEST(scalar_vec_dot_matches_dequantized_dot) {
    static float xf[MAX_N], af[MAX_N], xd[MAX_N], ad[MAX_N];
    static uint8_t qx[MAX_N * 2], qy[MAX_N * 2];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const kq_type *t = &TYPES[ti];
        const int64_t n = 3 * 256;
        for (int rep = 0; rep < 2; rep++) {
            for (int64_t i = 0; i < n; i++) {
                xf[i] = rnd_weight();
                af[i] = rnd_weight();
            }
            if (rep == 0) t->from(xf, qx, n);
            else fill_raw(t, qx, n / t->block);
            make_act(t, af, qy, n);
            t->to(qx, xd, n);
            act_to_f32(t, qy, ad, n);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                want += (double)xd[i] * ad[i];
                mag += fabs((double)xd[i] * ad[i]);
            }
            float got;
            t->dot(n, &got, qx, qy);
            CHECK_MSG(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s: dot %.9g, dequantized %.9g",
                      t->name, got, want);
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
        const kq_type *t = &TYPES[ti];
        double err = 0, ss = 0;
        for (int64_t i = 0; i < 1024; i++) x[i] = rnd_weight();
        t->from(x, q, 1024);
        t->to(q, back, 1024);
        for (int64_t i = 0; i < 1024; i++) {
            err += (back[i] - x[i]) * (double)(back[i] - x[i]);
            ss += (double)x[i] * x[i];
        }
        CHECK_MSG(sqrt(err / ss) < bound[ti], "%s: relative rms error %.4f", t->name,
                  sqrt(err / ss));
        /* An all-zero input quantizes to exact zeros. */
        memset(x, 0, sizeof x);
        t->from(x, q, 256);
        t->to(q, back, 256);
        for (int i = 0; i < 256; i++) CHECK_MSG(back[i] == 0.f, "%s: zero input", t->name);
    }
}

static int q8k_same(const void *a, const void *b, int64_t nblocks) {
    return memcmp(a, b, (size_t)nblocks * sizeof(block_q8_k)) == 0;
}

TEST(q8_k_quantizers_equal_scalar) {
    typedef void (*q8_fn)(const float *, void *, int64_t);
#if defined(__x86_64__)
    q8_fn isa[3] = {quant_q8_k_from_f32_avx2, quant_q8_k_from_f32_avx512, NULL};
#elif defined(__aarch64__)
    q8_fn isa[3] = {NULL, NULL, quant_q8_k_from_f32_neon};
#else
    q8_fn isa[3] = {NULL, NULL, NULL};
#endif
    static float x[5 * 256];
    static block_q8_k ref[5], got[5];
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < 5 * 256; i++) x[i] = rnd_weight() * (rep + 1);
        memset(x + 256, 0, 256 * sizeof(float));       /* an all-zero block */
        x[2 * 256 + 7] = -1000.f;            /* the extreme is negative */
        x[3 * 256 + 3] = 1000.f;                         /* +m then -m: the first one wins */
        x[3 * 256 + 200] = -1000.f;
        for (int i = 0; i < 256; i++) x[4 * 256 + i] = (float)(i % 21 - 10) * 0.5f; /* ties */
        quant_q8_k_from_f32(x, ref, 5 * 256);
        CHECK(ref[1].d == 0.f && ref[3].qs[3] == -127 && ref[3].qs[200] == 127);
        for (int i = 0; i < 3; i++) {
            if (!isa[i] || !isa_ok(i)) continue;
            memset(got, 0x55, sizeof got);
            isa[i](x, got, 5 * 256);
            CHECK_MSG(q8k_same(ref, got, 5), "Q8_K %s differs from scalar (rep %d)",
                      ISA_NAMES[i], rep);
        }
    }
}

/* Q8_K's invariants: |q| <= 127, bsums are the 16-sums, d * q reproduces x within d/2. */
TEST(q8_k_reference_invariants) {
    static float x[2 * 256], back[2 * 256];
    static block_q8_k q[2];
    for (int i = 0; i < 512; i++) x[i] = rnd_weight();
    quant_q8_k_from_f32(x, q, 512);
    quant_q8_k_to_f32(q, back, 512);
    for (int b = 0; b < 2; b++) {
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[b].qs[16 * j + i];
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
