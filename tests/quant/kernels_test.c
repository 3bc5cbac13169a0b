/*
 * Tests of the block kernels behind quant_traits (src/quant/): the scalar reference against
 * first principles (dequantized dot products, quantization error bounds), and every SIMD
 * variant this CPU runs against the scalar reference on random data, tails and odd sizes
 * included:
 *   to_f32 and from_f32   bit for bit (both are exact integer/float-rounding work);
 *   dot_tile              bit for bit with the same variant's vec_dot, for any number of
 *                         activation rows (a token's logits must not depend on how many
 *                         sequences share the batch: served greedy answers are exact);
 *   vec_dot, dot_tile,    |got - ref| <= 1e-4 * sum |x_i * y_i| (float summation order and,
 *   dot_packed, rp_dot    for F16/BF16, float vs double accumulation are the only differences;
 *                         dot_packed's and rp_dot's activations come from their own quantizers,
 *                         rp_dot's weights through rp_pack).
 */
#include "quant/quant.h"

#include "core/alloc.h"
#include "core/cpu_features.h"
#include "test.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static const uint32_t TYPES[] = {OB_QTYPE_F32,  OB_QTYPE_F16,  OB_QTYPE_BF16,
                                 OB_QTYPE_Q4_0, OB_QTYPE_Q4_1, OB_QTYPE_Q5_0,
                                 OB_QTYPE_Q5_1, OB_QTYPE_Q8_0, OB_QTYPE_Q8_1};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])
static const char *const SIMD_ISAS[] = {"avx2", "avx512", "neon", "avxvnni"};

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
/* Roughly normal values with a few outliers, like weights and activations. */
static float rng_value(void) {
    float s = 0;
    for (int k = 0; k < 4; k++) s += (float)rng32() / 4294967296.0f - 0.5f;
    if (rng32() % 97 == 0) s *= 12.0f;
    return s;
}
static void fill(float *x, int64_t n) {
    float scale = 0.01f + (float)(rng32() % 1000) / 100.0f;
    for (int64_t i = 0; i < n; i++) x[i] = rng_value() * scale;
}

static size_t row_bytes(const quant_traits *t, int64_t n) {
    return (size_t)(n / t->block_size) * t->type_size;
}

/* Element counts to test: odd sizes for plain types, 1..many blocks for block types. */
static int64_t test_size(const quant_traits *t, int k) {
    static const int64_t plain[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 200, 1031};
    static const int64_t blocks[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 2, 1, 64};
    return t->block_size == 1 ? plain[k] : blocks[k] * t->block_size;
}
#define N_SIZES 15

/* Dot of dequantized rows in double, and the sum of |products| that scales the tolerance. */
static double ref_dot(const quant_traits *tx, const quant_traits *ty, int64_t n, const void *x,
                      const void *y, double *abs_sum) {
    float *a = ob_alloc((size_t)n, sizeof(float)), *b = ob_alloc((size_t)n, sizeof(float));
    tx->to_f32(x, a, n);
    ty->to_f32(y, b, n);
    double s = 0, as = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)a[i] * b[i];
        as += fabs((double)a[i] * b[i]);
    }
    ob_free(a);
    ob_free(b);
    *abs_sum = as;
    return s;
}

TEST(table_is_consistent) {
    for (size_t k = 0; k < N_TYPES; k++) {
        const quant_traits *r = quant_traits_ref(TYPES[k]), *g = quant_traits_get(TYPES[k]);
        CHECK(r && g);
        CHECK_EQ_INT(r->type, TYPES[k]);
        CHECK_EQ_STR(r->isa, "scalar");
        CHECK_EQ_STR(g->name, r->name);
        CHECK(r->to_f32 && r->from_f32 && r->vec_dot && g->to_f32 && g->vec_dot);
        CHECK(quant_traits_ref(r->vec_dot_type) != NULL);
        CHECK_EQ_INT(quant_traits_ref(r->vec_dot_type)->block_size, r->block_size);
    }
    CHECK_EQ_INT(quant_traits_ref(OB_QTYPE_Q4_0)->vec_dot_type, OB_QTYPE_Q8_0);
    CHECK_EQ_INT(quant_traits_ref(OB_QTYPE_Q5_1)->vec_dot_type, OB_QTYPE_Q8_1);
    CHECK_EQ_INT(quant_traits_ref(OB_QTYPE_Q4_0)->type_size, 18);
    CHECK(quant_traits_get(OB_QTYPE_COUNT) == NULL);
    CHECK(quant_traits_get(4) == NULL); /* a retired id */
    CHECK(quant_traits_isa(OB_QTYPE_Q4_0, "sse9") == NULL);
}

/* Q8_0/Q8_1 activations round as llama.cpp's x86 CPU backend (ggml's AVX2 quantize_row_q8_0
 * and _q8_1: q = x * (127 / max|x|) to nearest, ties to even), while from_f32 keeps the file
 * format's reference (q = roundf(x / d), ties away from zero). A block whose largest magnitude
 * is 127 makes x * (127 / max) = x exactly, so its halves are ties; every ISA must agree. */
TEST(q8_activations_round_ties_to_even) {
    static const float halves[] = {0.5f, 1.5f, 2.5f, -2.5f, 3.5f, -0.5f, 126.5f, -125.5f};
    static const int8_t even[] = {0, 2, 2, -2, 4, 0, 126, -126};
    static const int8_t away[] = {1, 2, 3, -3, 4, -1, 127, -126};
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) - 3.0f;
    x[31] = 127.0f; /* the block's max: scale 1 */
    x[63] = -127.0f;
    for (int i = 0; i < 8; i++) x[i] = x[40 + i] = halves[i];
    static const char *const ISAS[] = {"scalar", "avx2", "avx512", "neon", "avxvnni"};
    static const uint32_t Q8_TYPES[] = {OB_QTYPE_Q8_0, OB_QTYPE_Q8_1};
    for (size_t isa = 0; isa < sizeof ISAS / sizeof ISAS[0]; isa++) {
        for (int k = 0; k < 2; k++) {
            const uint32_t type = Q8_TYPES[k];
            const quant_traits *t = quant_traits_isa(type, ISAS[isa]);
            if (!t) continue;
            const size_t off = type == OB_QTYPE_Q8_1 ? 4 : 2, bs = t->type_size;
            uint8_t act[2 * 36], ref[2 * 36];
            t->act_from_f32(x, act, 64);
            t->from_f32(x, ref, 64);
            for (int i = 0; i < 8; i++) {
                CHECK_MSG((int8_t)act[off + i] == even[i] && (int8_t)act[bs + off + 8 + i] ==
                          even[i], "%s/%s act %g -> %d, expected %d", t->name, t->isa,
                          halves[i], (int8_t)act[off + i], even[i]);
                CHECK_MSG((int8_t)ref[off + i] == away[i], "%s/%s from_f32 %g -> %d, expected %d",
                          t->name, t->isa, halves[i], (int8_t)ref[off + i], away[i]);
            }
        }
    }
}

/* Reference quantizers: error per element within half a step of the block's scale, and the
 * dequantized value reproduces exactly on a second round trip. */
TEST(reference_quantize_error_is_bounded) {
    static const struct { uint32_t type; double steps; } T[] = {
        {OB_QTYPE_Q4_0, 16}, {OB_QTYPE_Q4_1, 15}, {OB_QTYPE_Q5_0, 32},
        {OB_QTYPE_Q5_1, 31}, {OB_QTYPE_Q8_0, 254}, {OB_QTYPE_Q8_1, 254}};
    enum { N = 32 * 64 };
    float *x = ob_alloc(N, sizeof(float)), *y = ob_alloc(N, sizeof(float));
    uint8_t *q = ob_alloc(N, 4);
    for (size_t k = 0; k < sizeof T / sizeof T[0]; k++) {
        const quant_traits *t = quant_traits_ref(T[k].type);
        fill(x, N);
        t->from_f32(x, q, N);
        t->to_f32(q, y, N);
        for (int b = 0; b < N / 32; b++) {
            float lo = x[b * 32], hi = x[b * 32];
            for (int j = 0; j < 32; j++) {
                lo = fminf(lo, x[b * 32 + j]);
                hi = fmaxf(hi, x[b * 32 + j]);
            }
            bool sym = T[k].type == OB_QTYPE_Q4_0 || T[k].type == OB_QTYPE_Q5_0 ||
                       T[k].type >= OB_QTYPE_Q8_0;
            double amax = fmax(fabs(lo), fabs(hi)), range = sym ? 2 * amax : hi - lo;
            /* Half a step; a whole one for Q4_0/Q5_0, whose top level (+8, +16) is clamped
             * away so values near -d*8 lose up to a step; plus the f16 rounding of d and m. */
            bool clamped = T[k].type == OB_QTYPE_Q4_0 || T[k].type == OB_QTYPE_Q5_0;
            double bound = range / T[k].steps * (clamped ? 1.0 : 0.5) + 1e-3 * amax + 1e-6;
            for (int j = 0; j < 32; j++)
                CHECK_MSG(fabs((double)x[b * 32 + j] - y[b * 32 + j]) <= bound,
                          "%s block %d elem %d: %g -> %g (bound %g)", t->name, b, j,
                          x[b * 32 + j], y[b * 32 + j], bound);
        }
    }
    ob_free(x);
    ob_free(y);
    ob_free(q);
}

/* Reference vec_dot against the dot of the dequantized rows. Q4_1/Q5_1 use the activation's
 * stored f16 sum (s = d * sum q), as ggml does, which costs up to 2^-11 of that term. */
TEST(reference_vec_dot_matches_dequantized_dot) {
    enum { NMAX = 32 * 64 };
    float *x = ob_alloc(NMAX, sizeof(float)), *y = ob_alloc(NMAX, sizeof(float));
    uint8_t *qx = ob_alloc(NMAX, 4), *qy = ob_alloc(NMAX, 4);
    for (size_t k = 0; k < N_TYPES; k++) {
        const quant_traits *t = quant_traits_ref(TYPES[k]);
        const quant_traits *ty = quant_traits_ref(t->vec_dot_type);
        for (int s = 0; s < N_SIZES; s++) {
            int64_t n = test_size(t, s);
            fill(x, n);
            fill(y, n);
            t->from_f32(x, qx, n);
            ty->from_f32(y, qy, n);
            float got;
            t->vec_dot(n, &got, qx, qy);
            double abs_sum, want = ref_dot(t, ty, n, qx, qy, &abs_sum);
            double tol = (ty->type == OB_QTYPE_Q8_1 ? 2e-3 : 1e-5) * abs_sum + 1e-30;
            CHECK_MSG(fabs(got - want) <= tol, "%s n=%lld: %.9g, dequantized %.9g", t->name,
                      (long long)n, got, want);
        }
    }
    ob_free(x);
    ob_free(y);
    ob_free(qx);
    ob_free(qy);
}

/* Random blocks straight from bytes, with finite f16 scales, so dequantization sees every bit
 * pattern of the quants. */
static void random_blocks(const quant_traits *t, uint8_t *dst, int64_t n) {
    size_t bytes = row_bytes(t, n);
    for (size_t i = 0; i < bytes; i++) dst[i] = (uint8_t)rng32();
    if (t->type == OB_QTYPE_F32) {
        float *f = (float *)dst;
        for (int64_t i = 0; i < n; i++) f[i] = rng_value();
        return;
    }
    if (t->block_size == 1) { /* F16 / BF16: every element is a finite half */
        for (int64_t i = 0; i < n; i++) {
            uint16_t v = t->type == OB_QTYPE_BF16 ? quant_f32_to_bf16(rng_value())
                                                  : quant_f32_to_f16(rng_value());
            memcpy(dst + 2 * i, &v, 2);
        }
        return;
    }
    /* d (and m or s) are the leading f16 fields of every 32-element block */
    size_t n_halves = (t->type == OB_QTYPE_Q4_1 || t->type == OB_QTYPE_Q5_1 ||
                       t->type == OB_QTYPE_Q8_1) ? 2 : 1;
    for (int64_t b = 0; b < n / t->block_size; b++) {
        for (size_t h = 0; h < n_halves; h++) {
            uint16_t v = quant_f32_to_f16(rng_value());
            memcpy(dst + (size_t)b * t->type_size + 2 * h, &v, 2);
        }
    }
}

static bool same_floats(const float *a, const float *b, int64_t n, int64_t *where) {
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], 4) != 0) {
            *where = i;
            return false;
        }
    }
    return true;
}

/* Scratch rows shared by the checks (sized for the largest case). */
/* TY activation rows for the repacked kernels: past matmul's tile of 32 into a second one;
 * the file-layout kernels take up to TY_FILE. */
enum { NMAX = 32 * 64 + 1031, TX = 7, TY = 40, TY_FILE = 17 };

/* The activation-row counts the repacked kernels are checked at: every one up to TY_FILE (the
 * tails of 4- and 8-row groups), then a prefill tile's 32, one past it, and TY. */
static int next_ny(int ny) {
    if (ny < TY_FILE) return ny + 1;
    return ny == TY_FILE ? 32 : ny == 32 ? 33 : ny == 33 ? TY : TY + 1;
}
typedef struct scratch {
    float *x, *y, *a, *b; /* (NMAX) f32 each */
    uint8_t *qx, *qy, *qz; /* TX rows, TY rows, 1 row of NMAX elements of any type */
} scratch;

/* to_f32 on random blocks and from_f32 on random floats: bit for bit. */
static int check_convert(const quant_traits *t, const quant_traits *r, int64_t n, scratch *s) {
    int64_t where = 0;
    random_blocks(t, s->qx, n);
    t->to_f32(s->qx, s->a, n);
    r->to_f32(s->qx, s->b, n);
    if (!same_floats(s->a, s->b, n, &where)) {
        fprintf(stderr, "  %s/%s to_f32 n=%lld: [%lld] %a, ref %a\n", t->name, t->isa,
                (long long)n, (long long)where, s->a[where], s->b[where]);
        return 1;
    }
    fill(s->x, n);
    t->from_f32(s->x, s->qx, n);
    r->from_f32(s->x, s->qz, n);
    if (memcmp(s->qx, s->qz, row_bytes(t, n)) != 0) {
        fprintf(stderr, "  %s/%s from_f32 n=%lld differs\n", t->name, t->isa, (long long)n);
        return 1;
    }
    t->act_from_f32(s->x, s->qx, n);
    r->act_from_f32(s->x, s->qz, n);
    if (memcmp(s->qx, s->qz, row_bytes(t, n)) != 0) {
        fprintf(stderr, "  %s/%s act_from_f32 n=%lld differs\n", t->name, t->isa,
                (long long)n);
        return 1;
    }
    return 0;
}

/* vec_dot and dot_tile on TX weight rows x 1..TY_FILE activation rows (so each grouping of a
 * blocked tile kernel runs) against the reference vec_dot. */
static int check_dots(const quant_traits *t, const quant_traits *r, int64_t n, scratch *s) {
    const quant_traits *ry = quant_traits_ref(t->vec_dot_type);
    size_t rb = row_bytes(t, n), yb = row_bytes(ry, n);
    for (int i = 0; i < TX; i++) {
        fill(s->x, n);
        r->from_f32(s->x, s->qx + i * rb, n);
    }
    for (int j = 0; j < TY_FILE; j++) {
        fill(s->y, n);
        ry->from_f32(s->y, s->qy + j * yb, n);
    }
    for (int ny = 1; ny <= TY_FILE; ny++) {
        float tile[TY_FILE][TX];
        quant_dot_tile(t, n, TX, ny, &tile[0][0], TX, s->qx, rb, s->qy, yb);
        for (int j = 0; j < ny; j++) {
            for (int i = 0; i < TX; i++) {
                float got, want;
                t->vec_dot(n, &got, s->qx + i * rb, s->qy + j * yb);
                r->vec_dot(n, &want, s->qx + i * rb, s->qy + j * yb);
                double abs_sum;
                ref_dot(r, ry, n, s->qx + i * rb, s->qy + j * yb, &abs_sum);
                double tol = 1e-4 * abs_sum + 1e-30;
                if (fabs(got - want) > tol || fabs(tile[j][i] - want) > tol ||
                    memcmp(&tile[j][i], &got, sizeof got) != 0) {
                    fprintf(stderr, "  %s/%s n=%lld ny=%d row %d x %d: vec_dot %.9g tile %.9g "
                            "ref %.9g\n", t->name, t->isa, (long long)n, ny, i, j, got,
                            tile[j][i], want);
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* dot_packed on TX weight rows x 1..TY_FILE activation rows packed by act_pack, against the
 * reference vec_dot on the same activations quantized by the reference act_from_f32. */
static int check_packed(const quant_traits *t, const quant_traits *r, int64_t n, scratch *s) {
    if (!t->dot_packed) return 0;
    const quant_traits *ry = quant_traits_ref(t->vec_dot_type);
    size_t rb = row_bytes(t, n), yb = row_bytes(ry, n), pb = t->act_pack_size(n);
    uint8_t *packed = ob_alloc(TY, pb);
    for (int i = 0; i < TX; i++) {
        fill(s->x, n);
        r->from_f32(s->x, s->qx + i * rb, n);
    }
    for (int j = 0; j < TY_FILE; j++) {
        fill(s->y, n);
        ry->act_from_f32(s->y, s->qy + j * yb, n);
        t->act_pack(s->y, packed + j * pb, n);
    }
    int failed = 0;
    for (int ny = 1; ny <= TY_FILE && !failed; ny++) {
        float tile[TY_FILE][TX];
        t->dot_packed(n, TX, ny, &tile[0][0], TX, s->qx, rb, packed, pb);
        for (int j = 0; j < ny && !failed; j++) {
            for (int i = 0; i < TX && !failed; i++) {
                float want;
                r->vec_dot(n, &want, s->qx + i * rb, s->qy + j * yb);
                double abs_sum;
                ref_dot(r, ry, n, s->qx + i * rb, s->qy + j * yb, &abs_sum);
                if (fabs(tile[j][i] - want) > 1e-4 * abs_sum + 1e-30) {
                    fprintf(stderr, "  %s/%s packed n=%lld ny=%d row %d x %d: %.9g ref %.9g\n",
                            t->name, t->isa, (long long)n, ny, i, j, tile[j][i], want);
                    failed = 1;
                }
            }
        }
    }
    ob_free(packed);
    return failed;
}

/* Rows that quantize to the largest quants a type has: in every run of 16 one +1 (which sets
 * the block scale's sign) and fifteen -1, which then round to the far end of the range. */
static void fill_extreme(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = i % 16 == 0 ? 1.0f : -1.0f;
}

/* rp_dot on `groups` repacked groups of rows x the next_ny counts of activation rows from
 * rp_act, against the reference vec_dot on the file layout and the reference act_from_f32. With
 * `extreme`, weights from fill_extreme and activations of one sign (all at the largest quant):
 * the products that kernels summing in 16 bits must keep below saturation. */
static int check_repacked_data(const quant_traits *t, const quant_traits *r, int64_t n,
                               int64_t groups, scratch *s, bool extreme) {
    if (!t->rp_rows) return 0;
    const quant_traits *ry = quant_traits_ref(t->vec_dot_type);
    const int64_t rows = groups * t->rp_rows;
    size_t rb = row_bytes(t, n), yb = row_bytes(ry, n), ab = t->rp_act_size(n);
    uint8_t *w = ob_alloc((size_t)rows, rb), *rp = ob_alloc((size_t)rows, rb);
    uint8_t *act = ob_alloc(TY, ab);
    float *tile = ob_alloc((size_t)(rows * TY), sizeof(float));
    for (int64_t i = 0; i < rows; i++) {
        if (extreme) fill_extreme(s->x, n);
        else fill(s->x, n);
        r->from_f32(s->x, w + i * rb, n);
    }
    for (int64_t g = 0; g < groups; g++)
        t->rp_pack(w + g * t->rp_rows * rb, rb, rp + g * t->rp_rows * rb, n);
    for (int j = 0; j < TY; j++) {
        if (extreme)
            for (int64_t i = 0; i < n; i++) s->y[i] = j % 2 ? 1.0f : -1.0f;
        else fill(s->y, n);
        ry->act_from_f32(s->y, s->qy + j * yb, n);
        t->rp_act(s->y, act + j * ab, n);
    }
    /* Each activation row alone (the decode call), for the batch-invariance check below. */
    float *alone = ob_alloc((size_t)(rows * TY), sizeof(float));
    for (int j = 0; j < TY; j++)
        t->rp_dot(n, rows, 1, alone + j * rows, (size_t)rows, rp, t->rp_rows * rb,
                  act + j * ab, ab);
    int failed = 0;
    for (int ny = 1; ny <= TY && !failed; ny = next_ny(ny)) {
        t->rp_dot(n, rows, ny, tile, (size_t)rows, rp, t->rp_rows * rb, act, ab);
        for (int j = 0; j < ny && !failed; j++) {
            for (int64_t i = 0; i < rows && !failed; i++) {
                /* a row's result must not depend on how many rows share the call (a served
                 * token's logits must not depend on the batch): bit for bit */
                if (memcmp(&tile[j * rows + i], &alone[j * rows + i], sizeof(float)) != 0) {
                    fprintf(stderr, "  %s/%s repacked n=%lld ny=%d row %lld x %d: %.9g, alone "
                            "%.9g\n", t->name, t->isa, (long long)n, ny, (long long)i, j,
                            tile[j * rows + i], alone[j * rows + i]);
                    failed = 1;
                }
                float want;
                r->vec_dot(n, &want, w + i * rb, s->qy + j * yb);
                double abs_sum;
                ref_dot(r, ry, n, w + i * rb, s->qy + j * yb, &abs_sum);
                if (fabs(tile[j * rows + i] - want) > 1e-4 * abs_sum + 1e-30) {
                    fprintf(stderr, "  %s/%s repacked n=%lld ny=%d row %lld x %d: %.9g ref "
                            "%.9g\n", t->name, t->isa, (long long)n, ny, (long long)i, j,
                            tile[j * rows + i], want);
                    failed = 1;
                }
            }
        }
    }
    ob_free(w);
    ob_free(rp);
    ob_free(act);
    ob_free(tile);
    ob_free(alone);
    return failed;
}

static int check_repacked(const quant_traits *t, const quant_traits *r, int64_t n, scratch *s) {
    return check_repacked_data(t, r, n, 2, s, false) || check_repacked_data(t, r, n, 2, s, true);
}

/* One type on one ISA against the reference, over every test size. */
static int check_isa(const quant_traits *t, const quant_traits *r) {
    scratch s = {
        ob_alloc(NMAX, sizeof(float)), ob_alloc(NMAX, sizeof(float)),
        ob_alloc(NMAX, sizeof(float)), ob_alloc(NMAX, sizeof(float)),
        ob_alloc(TX * NMAX, 4), ob_alloc(TY * NMAX, 4), ob_alloc(NMAX, 4),
    };
    int failed = 0;
    for (int k = 0; k < N_SIZES && !failed; k++) {
        int64_t n = test_size(t, k);
        failed = check_convert(t, r, n, &s) || check_dots(t, r, n, &s) ||
                 check_packed(t, r, n, &s) || check_repacked(t, r, n, &s);
    }
    /* 96 blocks of 32 and 5 groups of 8 rows: more blocks than the NEON I8MM kernels arrange
     * at a time (64) and more groups than share one arrangement (4), so both carry over. */
    if (!failed && t->block_size == 32 && t->rp_rows == 8)
        failed = check_repacked_data(t, r, 96 * 32, 5, &s, false);
    ob_free(s.x);
    ob_free(s.y);
    ob_free(s.a);
    ob_free(s.b);
    ob_free(s.qx);
    ob_free(s.qy);
    ob_free(s.qz);
    return failed;
}

TEST(simd_variants_match_reference) {
    int tested = 0;
    for (size_t k = 0; k < N_TYPES; k++) {
        const quant_traits *r = quant_traits_ref(TYPES[k]);
        for (size_t i = 0; i < sizeof SIMD_ISAS / sizeof SIMD_ISAS[0]; i++) {
            const quant_traits *t = quant_traits_isa(TYPES[k], SIMD_ISAS[i]);
            if (!t) continue;
            CHECK_MSG(check_isa(t, r) == 0, "%s on %s differs from the reference", t->name,
                      t->isa);
            tested++;
        }
    }
    fprintf(stderr, "  %d (type, ISA) variants compared with the reference\n", tested);
    if (tested == 0) SKIP("no SIMD variant runs on this CPU");
}

/* The K-quant and IQ4 variants with repacked rows, on 1..11 super-blocks (past the 8 that
 * some kernels unpack or arrange at a time). */
TEST(repacked_kquants_match_reference) {
    const uint32_t types[] = {OB_QTYPE_Q2_K, OB_QTYPE_Q3_K, OB_QTYPE_Q4_K,  OB_QTYPE_Q5_K,
                              OB_QTYPE_Q6_K, OB_QTYPE_IQ4_XS, OB_QTYPE_IQ4_NL};
    scratch s = {
        ob_alloc(NMAX, sizeof(float)), ob_alloc(NMAX, sizeof(float)),
        ob_alloc(NMAX, sizeof(float)), ob_alloc(NMAX, sizeof(float)),
        ob_alloc(TX * NMAX, 4), ob_alloc(TY * NMAX, 4), ob_alloc(NMAX, 4),
    };
    int tested = 0;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const quant_traits *r = quant_traits_ref(types[k]);
        for (size_t i = 0; r && i < sizeof SIMD_ISAS / sizeof SIMD_ISAS[0]; i++) {
            const quant_traits *t = quant_traits_isa(types[k], SIMD_ISAS[i]);
            if (!t || !t->rp_rows) continue;
            for (int64_t nb = 1; nb <= 11; nb = nb < 7 ? nb * 2 + 1 : nb + 4)
                CHECK_MSG(check_repacked(t, r, nb * 256, &s) == 0, "%s on %s, %lld elements",
                          t->name, t->isa, (long long)(nb * 256));
            /* 9 groups of 8 rows: more groups than share one arrangement of the activation
             * rows in the NEON I8MM Q4_K / Q5_K / Q6_K kernels (8), so it is made again */
            CHECK_MSG(check_repacked_data(t, r, 11 * 256, 9, &s, false) == 0,
                      "%s on %s, 9 groups", t->name, t->isa);
            tested++;
        }
    }
    ob_free(s.x), ob_free(s.y), ob_free(s.a), ob_free(s.b);
    ob_free(s.qx), ob_free(s.qy), ob_free(s.qz);
    if (tested == 0) SKIP("no K-quant variant with repacked rows runs on this CPU");
}

/* On Arm with SDOT, these types have repacked NEON kernels (the tests above then check
 * them); which kind runs, SMMLA or SDOT, follows I8MM (run the suite under both kinds of CPU:
 * `make neon-test` does). */
TEST(neon_repacked_kernels_are_chosen) {
    const ob_cpu_features *cpu = ob_cpu_features_get();
    if (!cpu->neon || !cpu->dotprod) SKIP("not an Arm CPU with the dot-product extension");
    const uint32_t types[] = {OB_QTYPE_Q4_0, OB_QTYPE_Q5_0, OB_QTYPE_Q8_0, OB_QTYPE_IQ4_NL,
                              OB_QTYPE_Q4_K, OB_QTYPE_Q5_K, OB_QTYPE_Q6_K, OB_QTYPE_IQ4_XS,
                              OB_QTYPE_Q2_K, OB_QTYPE_Q3_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const quant_traits *t = quant_traits_isa(types[k], "neon");
        CHECK(t != NULL);
        CHECK_MSG(t->rp_rows == 8, "%s on neon: rp_rows %lld", t->name, (long long)t->rp_rows);
        CHECK(quant_traits_get(types[k]) == t);
    }
    fprintf(stderr, "  repacked NEON kernels: %s\n", cpu->i8mm ? "SMMLA (I8MM)" : "SDOT");
}

/* The AVX-VNNI kernels (or their EVEX twins, repack_avxvnni.h) read the AVX2 layouts and
 * activation rows and sum the same exact integers into the same float operations: their rp_dot
 * equals AVX2's bit for bit, on random and on extreme data, at the next_ny row counts. */
TEST(avxvnni_kernels_equal_avx2) {
    const uint32_t types[] = {OB_QTYPE_Q4_0, OB_QTYPE_Q5_0, OB_QTYPE_Q8_0, OB_QTYPE_IQ4_NL,
                              OB_QTYPE_Q4_K, OB_QTYPE_Q5_K, OB_QTYPE_Q6_K, OB_QTYPE_Q2_K,
                              OB_QTYPE_Q3_K, OB_QTYPE_IQ4_XS};
    const ob_cpu_features *cpu = ob_cpu_features_get();
    if (!cpu->avxvnni && !cpu->avx512vnni_ymm) SKIP("no VPDPBUSD on 256-bit registers here");
    scratch s = {ob_alloc(NMAX, sizeof(float)), ob_alloc(NMAX, sizeof(float)), NULL, NULL,
                 NULL, NULL, NULL};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const quant_traits *v = quant_traits_isa(types[k], "avxvnni");
        const quant_traits *a = quant_traits_isa(types[k], "avx2");
        CHECK(v && a);
        if (!v || !a) continue;
        CHECK_MSG(v->rp_dot != a->rp_dot && v->rp_pack == a->rp_pack && v->rp_act == a->rp_act,
                  "%s: avxvnni must differ from avx2 in rp_dot alone", v->name);
        /* OB_ISA=avxvnni (or a CPU with AVX-VNNI and no AVX-512) makes it the best variant */
        if (!cpu->avx512f) CHECK(quant_traits_get(types[k]) == v);
        const int64_t n = 3 * 256, rows = 2 * v->rp_rows;
        const size_t rb = row_bytes(v, n), ab = v->rp_act_size(n);
        uint8_t *w = ob_alloc((size_t)rows, rb), *rp = ob_alloc((size_t)rows, rb);
        uint8_t *act = ob_alloc(TY, ab);
        float *got = ob_alloc((size_t)(rows * TY), sizeof(float));
        float *want = ob_alloc((size_t)(rows * TY), sizeof(float));
        for (int extreme = 0; extreme < 2; extreme++) {
            for (int64_t i = 0; i < rows; i++) {
                if (extreme) fill_extreme(s.x, n);
                else fill(s.x, n);
                quant_traits_ref(types[k])->from_f32(s.x, w + i * rb, n);
            }
            for (int64_t g = 0; g < 2; g++)
                a->rp_pack(w + g * a->rp_rows * rb, rb, rp + g * a->rp_rows * rb, n);
            for (int j = 0; j < TY; j++) {
                if (extreme)
                    for (int64_t i = 0; i < n; i++) s.y[i] = j % 2 ? 1.0f : -1.0f;
                else fill(s.y, n);
                a->rp_act(s.y, act + j * ab, n);
            }
            for (int ny = 1; ny <= TY; ny = next_ny(ny)) {
                a->rp_dot(n, rows, ny, want, (size_t)rows, rp, a->rp_rows * rb, act, ab);
                v->rp_dot(n, rows, ny, got, (size_t)rows, rp, v->rp_rows * rb, act, ab);
                CHECK_MSG(memcmp(got, want, (size_t)(rows * ny) * sizeof(float)) == 0,
                          "%s: avxvnni rp_dot differs from avx2, %d activation rows%s", v->name,
                          ny, extreme ? ", extreme data" : "");
            }
        }
        ob_free(w), ob_free(rp), ob_free(act), ob_free(got), ob_free(want);
    }
    ob_free(s.x), ob_free(s.y);
    fprintf(stderr, "  avxvnni kernels: %s\n", cpu->avxvnni ? "VEX (AVX-VNNI)" : "EVEX twins");
}

/* The reference itself through quant_dot_tile's fallback and through check_isa's harness. */
TEST(reference_passes_its_own_harness) {
    for (size_t k = 0; k < N_TYPES; k++) {
        const quant_traits *r = quant_traits_ref(TYPES[k]);
        CHECK_MSG(check_isa(r, r) == 0, "%s", r->name);
    }
}

int main(void) {
    RUN(table_is_consistent);
    RUN(reference_quantize_error_is_bounded);
    RUN(q8_activations_round_ties_to_even);
    RUN(reference_vec_dot_matches_dequantized_dot);
    RUN(reference_passes_its_own_harness);
    RUN(simd_variants_match_reference);
    RUN(repacked_kquants_match_reference);
    RUN(neon_repacked_kernels_are_chosen);
    RUN(avxvnni_kernels_equal_avx2);
    return t_summary();
}
