/*
 * Every CUDA kernel against a host reference on random data. Weight kernels (row lookup,
 * matrix-vector, matrix-matrix) are checked for every supported type against rows dequantized
 * by src/quant's scalar reference (quant_traits_ref), the products summed in double; the other
 * ops against their definitions computed here in double. Tolerances are stated per check and
 * every output is also required to be free of NaN.
 *
 * Without a GPU each test prints "skipped: no GPU (<reason>)" and counts as skipped.
 */
#include "cuda/cuda_backend.h"

#include "core/alloc.h"
#include "quant/quant.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; } /* see device_test.c */

static cuda_ctx *g_ctx;
static ob_err g_why;

static cuda_ctx *gpu(void) {
    static int tried;
    if (!tried) {
        tried = 1;
        if (cuda_ctx_new(0, &g_ctx, &g_why)) g_ctx = NULL;
    }
    return g_ctx;
}

#define NEED_GPU(c)                                                                            \
    cuda_ctx *c = gpu();                                                                        \
    if (!c) SKIP("skipped: no GPU (%s)", g_why.msg)

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rngf(void) { return (float)rng32() / 4294967296.0f * 2.0f - 1.0f; }
static void fill(float *x, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++) x[i] = rngf() * amp;
}

/* Device copy of n floats (host -> device through the counted path); NULL on failure. */
static void *up(cuda_ctx *c, const void *host, size_t bytes) {
    void *d = NULL;
    ob_err err;
    if (cuda_buf_alloc(c, bytes, "test", &d, &err)) return NULL;
    if (cuda_copy_h2d(c, d, host, bytes, &err)) {
        cuda_buf_free(c, d);
        return NULL;
    }
    return d;
}

/* Waits for the kernels and copies the result back; false on any CUDA error. */
static bool down(cuda_ctx *c, void *host, const void *dev, size_t bytes) {
    ob_err err;
    if (cuda_ctx_sync(c, &err) || cuda_copy_d2h(c, host, dev, bytes, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return false;
    }
    return true;
}

static const uint32_t TYPES[] = {OB_QTYPE_F32,  OB_QTYPE_F16,   OB_QTYPE_BF16, OB_QTYPE_Q4_0,
                                 OB_QTYPE_Q4_1, OB_QTYPE_Q5_0,  OB_QTYPE_Q5_1, OB_QTYPE_Q8_0,
                                 OB_QTYPE_Q2_K, OB_QTYPE_Q3_K,  OB_QTYPE_Q4_K, OB_QTYPE_Q5_K,
                                 OB_QTYPE_Q6_K, OB_QTYPE_IQ4_NL, OB_QTYPE_IQ4_XS};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* A random weight (n_out, n_in) of `type` on host and device, with its reference dequant. */
typedef struct {
    uint8_t *q;   /* (n_out, row_size) bytes */
    float *deq;   /* (n_out, n_in) f32, from quant_traits_ref */
    cuda_weight w;
} test_weight;

static bool weight_make(cuda_ctx *c, uint32_t type, int64_t n_in, int64_t n_out, test_weight *tw) {
    const quant_traits *ref = quant_traits_ref(type);
    if (!ref || !ref->from_f32) return false;
    size_t row = (size_t)(n_in / ref->block_size) * ref->type_size;
    float *src = ob_alloc((size_t)(n_in * n_out), sizeof(float));
    tw->q = ob_alloc((size_t)n_out, row);
    tw->deq = ob_alloc((size_t)(n_in * n_out), sizeof(float));
    fill(src, n_in * n_out, 1.0f);
    for (int64_t o = 0; o < n_out; o++) {
        ref->from_f32(src + o * n_in, tw->q + o * row, n_in);
        ref->to_f32(tw->q + o * row, tw->deq + o * n_in, n_in);
    }
    ob_free(src);
    ob_err err;
    if (cuda_weight_upload(c, "test.weight", tw->q, type, n_in, n_out, &tw->w, &err)) {
        fprintf(stderr, "  %s\n", err.msg);
        return false;
    }
    return true;
}

static void weight_free(cuda_ctx *c, test_weight *tw) {
    cuda_weight_free(c, &tw->w);
    ob_free(tw->q);
    ob_free(tw->deq);
}

/* y = x W^T for one type and n_tok, against double sums over the reference dequantization.
 * Tolerance: 2e-5 of sum |w x| on the f32 path (n_tok <= 8, or no cuBLAS); 4e-3 of it on the
 * GemmEx path, where weights and activations are rounded to F16 (2^-11 relative each); on the
 * int8 decode path (cuda_q8_type, n_tok <= 8) the rounding bound of the activations, the sum
 * over 32-element chunks of (amax / 254) * sum |w|, on top of the f32 path's 2e-5. */
static void check_matmul(cuda_ctx *c, uint32_t type, int64_t n_in, int64_t n_out, int64_t n_tok) {
    test_weight tw;
    CHECK_MSG(weight_make(c, type, n_in, n_out, &tw), "%s: weight", gguf_qtype_name(type));
    float *x = ob_alloc((size_t)(n_tok * n_in), sizeof(float));
    float *y = ob_alloc((size_t)(n_tok * n_out), sizeof(float));
    fill(x, n_tok * n_in, 2.0f);
    float *xd = up(c, x, (size_t)(n_tok * n_in) * 4), *yd = NULL;
    ob_err err = {{0}};
    CHECK(cuda_buf_alloc(c, (size_t)(n_tok * n_out) * 4, "y", (void **)&yd, &err) == OB_OK);
    CHECK_MSG(cuda_matmul(c, yd, &tw.w, xd, n_tok, &err) == OB_OK, "%s", err.msg);
    CHECK(down(c, y, yd, (size_t)(n_tok * n_out) * 4));
    const double rel = (n_tok > 8 && cuda_ctx_has_cublas(c)) ? 4e-3 : 2e-5;
    const bool int8 = n_tok <= 8 && cuda_q8_type(type) && n_in % 32 == 0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = 0, mag = 0, rounding = 0, wsum = 0, amax = 0;
            for (int64_t i = 0; i < n_in; i++) {
                double p = (double)tw.deq[o * n_in + i] * x[t * n_in + i];
                s += p;
                mag += fabs(p);
                wsum += fabs((double)tw.deq[o * n_in + i]);
                amax = fmax(amax, fabs((double)x[t * n_in + i]));
                if (i % 32 == 31) {
                    rounding += amax / 254.0 * wsum;
                    wsum = amax = 0;
                }
            }
            const double tol = rel * mag + 1e-6 + (int8 ? 1.001 * rounding : 0.0);
            float g = y[t * n_out + o];
            CHECK_MSG(!isnan(g) && fabs(g - s) <= tol,
                      "%s n_in=%lld n_tok=%lld: y[%lld][%lld] = %g, reference %g (tol %g)",
                      gguf_qtype_name(type), (long long)n_in, (long long)n_tok, (long long)t,
                      (long long)o, g, s, tol);
        }
    cuda_buf_free(c, xd);
    cuda_buf_free(c, yd);
    ob_free(x);
    ob_free(y);
    weight_free(c, &tw);
}

/* Every type, decode sizes (1, 3, 8 tokens) and prefill sizes (9, 40: GemmEx or the fallback);
 * 37 output rows (not a multiple of the 4 rows per block); row lengths of 3 super-blocks, and
 * for float types also 100 (a short last chunk). */
TEST(matmul_all_types) {
    NEED_GPU(c);
    const int64_t toks[] = {1, 3, 8, 9, 40};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        if (!quant_traits_ref(TYPES[ti]) || !quant_traits_ref(TYPES[ti])->from_f32) {
            fprintf(stderr, "  %s: no reference quantizer, not checked\n", gguf_qtype_name(TYPES[ti]));
            continue;
        }
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
            check_matmul(c, TYPES[ti], 768, 37, toks[k]);
            if (t_cur_failed) return;
            if (quant_traits_ref(TYPES[ti])->block_size == 1) check_matmul(c, TYPES[ti], 100, 37, toks[k]);
            if (t_cur_failed) return;
        }
    }
}

/* Rows of every type, ids out of range give zeros. Tolerance 1e-6 relative. */
TEST(get_rows_all_types) {
    NEED_GPU(c);
    const int32_t ids[] = {3, 0, 36, 3, -1, 37, 20};
    const int64_t n = sizeof ids / sizeof ids[0], n_in = 512, n_out = 37;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const quant_traits *ref = quant_traits_ref(TYPES[ti]);
        if (!ref || !ref->from_f32) continue; /* reported by matmul_all_types */
        test_weight tw;
        CHECK_MSG(weight_make(c, TYPES[ti], n_in, n_out, &tw), "%s: weight", ref->name);
        float out[7 * 512];
        int32_t *idd = up(c, ids, sizeof ids);
        float *od = NULL;
        ob_err err;
        CHECK(cuda_buf_alloc(c, sizeof out, "rows", (void **)&od, &err) == OB_OK);
        CHECK_MSG(cuda_get_rows(c, &tw.w, idd, n, od, &err) == OB_OK, "%s", err.msg);
        CHECK(down(c, out, od, sizeof out));
        for (int64_t r = 0; r < n; r++)
            for (int64_t i = 0; i < n_in; i++) {
                float want = ids[r] >= 0 && ids[r] < n_out ? tw.deq[ids[r] * n_in + i] : 0.0f;
                float g = out[r * n_in + i];
                CHECK_MSG(fabsf(g - want) <= 1e-6f * fmaxf(1, fabsf(want)), "%s row %lld [%lld]: %g vs %g",
                          gguf_qtype_name(TYPES[ti]), (long long)r, (long long)i, g, want);
            }
        cuda_buf_free(c, idd);
        cuda_buf_free(c, od);
        weight_free(c, &tw);
    }
}

/* RMSNorm of 3 rows of 4103, in place: tolerance 1e-5 relative to the double reference. */
TEST(rmsnorm) {
    NEED_GPU(c);
    enum { R = 3, N = 4103 };
    static float x[R * N], w[N], y[R * N];
    fill(x, R * N, 3.0f);
    fill(w, N, 1.5f);
    float *xd = up(c, x, sizeof x), *wd = up(c, w, sizeof w);
    ob_err err;
    CHECK(cuda_rmsnorm(c, xd, xd, wd, R, N, 1e-5f, &err) == OB_OK);
    CHECK(down(c, y, xd, sizeof y));
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int i = 0; i < N; i++) ss += (double)x[r * N + i] * x[r * N + i];
        double s = 1.0 / sqrt(ss / N + 1e-5);
        for (int i = 0; i < N; i++) {
            double want = x[r * N + i] * s * w[i];
            CHECK_MSG(fabs(y[r * N + i] - want) <= 1e-5 * fabs(want) + 1e-6, "[%d][%d] %g vs %g", r,
                      i, y[r * N + i], want);
        }
    }
    cuda_buf_free(c, xd);
    cuda_buf_free(c, wd);
}

/* RoPE reference in double: theta = pos * freq_scale * base^(-2i/n_dims) / ff[i]. */
static void rope_ref(float *x, int64_t n_tok, int64_t n_head, int64_t hd, const int32_t *pos,
                     int64_t n_dims, double base, double fs, const float *ff, bool neox) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * hd;
            for (int64_t i = 0; i < n_dims / 2; i++) {
                double th = pos[t] * fs * pow(base, -2.0 * i / n_dims) / (ff ? ff[i] : 1.0);
                int64_t a = neox ? i : 2 * i, b = neox ? i + n_dims / 2 : 2 * i + 1;
                double x0 = v[a], x1 = v[b];
                v[a] = (float)(x0 * cos(th) - x1 * sin(th));
                v[b] = (float)(x0 * sin(th) + x1 * cos(th));
            }
        }
}

/* Normal and NeoX, with and without frequency factors, a partial rotation (n_dims < head_dim)
 * and a linear scale. Tolerance 2e-4 absolute on values of magnitude ~1 (positions to 1000
 * rad: the f32 angle carries ~1e-4 rad of error there). */
TEST(rope_modes) {
    NEED_GPU(c);
    enum { T = 4, H = 3, HD = 128 };
    const int32_t pos[T] = {0, 1, 17, 1000};
    static float x[T * H * HD], got[T * H * HD], want[T * H * HD], ff[HD / 2];
    for (int i = 0; i < HD / 2; i++) ff[i] = 1.0f + (float)(i % 5);
    int32_t *pd = up(c, pos, sizeof pos);
    float *ffd = up(c, ff, sizeof ff);
    for (int mode = 0; mode < 4; mode++) {
        bool neox = mode & 1, use_ff = mode & 2;
        int64_t n_dims = mode == 3 ? 96 : HD;
        float fs = mode == 2 ? 0.25f : 1.0f;
        fill(x, T * H * HD, 1.0f);
        memcpy(want, x, sizeof x);
        rope_ref(want, T, H, HD, pos, n_dims, 10000.0, fs, use_ff ? ff : NULL, neox);
        float *xd = up(c, x, sizeof x);
        cuda_rope_params rp = {n_dims, 10000.0f, fs, use_ff ? ffd : NULL, neox};
        ob_err err;
        CHECK(cuda_rope(c, xd, T, H, HD, pd, &rp, &err) == OB_OK);
        CHECK(down(c, got, xd, sizeof got));
        for (int i = 0; i < T * H * HD; i++)
            CHECK_MSG(fabsf(got[i] - want[i]) <= 2e-4f, "mode %d [%d]: %g vs %g", mode, i, got[i],
                      want[i]);
        cuda_buf_free(c, xd);
    }
    cuda_buf_free(c, pd);
    cuda_buf_free(c, ffd);
}

/* SwiGLU, GeGLU (tanh form) and add against double; 1e-6 relative + 1e-6. */
TEST(elementwise) {
    NEED_GPU(c);
    enum { N = 70001 };
    static float g[N], u[N], out[N];
    fill(g, N, 8.0f);
    fill(u, N, 2.0f);
    float *gd = up(c, g, sizeof g), *ud = up(c, u, sizeof u), *od = up(c, g, sizeof g);
    ob_err err;
    for (int op = 0; op < 3; op++) {
        ob_status st = op == 0   ? cuda_swiglu(c, od, gd, ud, N, &err)
                       : op == 1 ? cuda_geglu(c, od, gd, ud, N, &err)
                                 : cuda_add(c, gd, ud, N, &err);
        CHECK(st == OB_OK);
        CHECK(down(c, out, op == 2 ? gd : od, sizeof out));
        for (int i = 0; i < N; i++) {
            double a = g[i], b = u[i], want;
            if (op == 0) want = a / (1 + exp(-a)) * b;
            else if (op == 1) want = 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * a * (1 + 0.044715 * a * a))) * b;
            else want = a + b;
            CHECK_MSG(fabs(out[i] - want) <= 1e-6 * fabs(want) + 1e-6, "op %d [%d]: %g vs %g", op,
                      i, out[i], want);
        }
    }
    cuda_buf_free(c, gd);
    cuda_buf_free(c, ud);
    cuda_buf_free(c, od);
}

/* Scale and the per-row bias add (a bias of 77 over rows of a length that is no power of
 * two); two f32 roundings, so within 1e-6 relative. */
TEST(scale_and_bias) {
    NEED_GPU(c);
    enum { R = 901, N = 77 };
    static float x[R * N], b[N], out[R * N];
    fill(x, R * N, 4.0f);
    fill(b, N, 1.0f);
    float *xd = up(c, x, sizeof x), *bd = up(c, b, sizeof b);
    ob_err err;
    CHECK(cuda_scale(c, xd, 0.375f, R * N, &err) == OB_OK);
    CHECK(cuda_add_bias(c, xd, bd, R, N, &err) == OB_OK);
    CHECK(down(c, out, xd, sizeof out));
    for (int i = 0; i < R * N; i++) {
        const double want = (double)x[i] * 0.375 + b[i % N];
        CHECK_MSG(fabs(out[i] - want) <= 1e-6 * fabs(want) + 1e-7, "[%d]: %g vs %g", i, out[i],
                  want);
    }
    cuda_buf_free(c, xd);
    cuda_buf_free(c, bd);
}

/* Softmax with a scale, -INFINITY entries (become 0) and a fully masked row (all 0). 1e-6. */
TEST(softmax) {
    NEED_GPU(c);
    enum { R = 3, N = 1000 };
    static float x[R * N], y[R * N];
    fill(x, R * N, 10.0f);
    for (int i = 0; i < N; i += 7) x[N + i] = -INFINITY;
    for (int i = 0; i < N; i++) x[2 * N + i] = -INFINITY;
    float *xd = up(c, x, sizeof x);
    ob_err err;
    CHECK(cuda_softmax(c, xd, R, N, 0.5f, &err) == OB_OK);
    CHECK(down(c, y, xd, sizeof y));
    for (int r = 0; r < 2; r++) {
        double m = -INFINITY, s = 0;
        for (int i = 0; i < N; i++) m = fmax(m, x[r * N + i] * 0.5);
        for (int i = 0; i < N; i++) s += exp(x[r * N + i] * 0.5 - m);
        for (int i = 0; i < N; i++) {
            double want = exp(x[r * N + i] * 0.5 - m) / s;
            CHECK_MSG(fabs(y[r * N + i] - want) <= 1e-6, "[%d][%d] %g vs %g", r, i, y[r * N + i], want);
        }
    }
    for (int i = 0; i < N; i++) CHECK(y[2 * N + i] == 0.0f);
    cuda_buf_free(c, xd);
}

/* The cache store rounds exactly as quant_f32_to_f16 (bit for bit) and writes only its rows. */
TEST(kv_store) {
    NEED_GPU(c);
    enum { CTX = 16, S = 96, T = 5, P0 = 7 };
    static float k[T * S], v[T * S];
    static uint16_t kc[CTX * S], vc[CTX * S];
    fill(k, T * S, 100.0f);
    fill(v, T * S, 0.001f);
    uint16_t *kd = NULL, *vd = NULL;
    ob_err err;
    CHECK(cuda_buf_alloc(c, sizeof kc, "k cache", (void **)&kd, &err) == OB_OK);
    CHECK(cuda_buf_alloc(c, sizeof vc, "v cache", (void **)&vd, &err) == OB_OK);
    CHECK(cuda_buf_zero(c, kd, sizeof kc, &err) == OB_OK && cuda_buf_zero(c, vd, sizeof vc, &err) == OB_OK);
    float *kf = up(c, k, sizeof k), *vf = up(c, v, sizeof v);
    CHECK(cuda_kv_store(c, kd, vd, S, kf, vf, P0, T, &err) == OB_OK);
    CHECK(down(c, kc, kd, sizeof kc) && down(c, vc, vd, sizeof vc));
    for (int r = 0; r < CTX; r++)
        for (int i = 0; i < S; i++) {
            bool in = r >= P0 && r < P0 + T;
            uint16_t wk = in ? quant_f32_to_f16(k[(r - P0) * S + i]) : 0;
            uint16_t wv = in ? quant_f32_to_f16(v[(r - P0) * S + i]) : 0;
            CHECK_MSG(kc[r * S + i] == wk && vc[r * S + i] == wv, "row %d [%d]", r, i);
        }
    cuda_buf_free(c, kd);
    cuda_buf_free(c, vd);
    cuda_buf_free(c, kf);
    cuda_buf_free(c, vf);
}

/* The paged store: rows of two sequences to their pool slots (any order), then on a ring
 * layout to seq * ring + pos % ring (positions past the ring wrap), bit for bit, nothing else
 * written. */
TEST(kv_store_map) {
    NEED_GPU(c);
    enum { ROWS = 24, S = 40, T = 4, STRIDE = CUDA_KV_META_TABLE + 1, RING = 10 };
    static float k[T * S], v[T * S];
    static uint16_t kc[ROWS * S], vc[ROWS * S];
    /* (pos, seq, slot, one block-table entry) per row */
    const int32_t meta[T * STRIDE] = {3, 0, 17, 0, 12, 1, 2, 0, 4, 0, 5, 0, 23, 1, 9, 0};
    fill(k, T * S, 10.0f);
    fill(v, T * S, 1.0f);
    uint16_t *kd = NULL, *vd = NULL;
    ob_err err;
    CHECK(cuda_buf_alloc(c, sizeof kc, "k cache", (void **)&kd, &err) == OB_OK);
    CHECK(cuda_buf_alloc(c, sizeof vc, "v cache", (void **)&vd, &err) == OB_OK);
    float *kf = up(c, k, sizeof k), *vf = up(c, v, sizeof v);
    int32_t *md = up(c, meta, sizeof meta);
    for (int ring = 0; ring < 2; ring++) {
        CHECK(cuda_buf_zero(c, kd, sizeof kc, &err) == OB_OK &&
              cuda_buf_zero(c, vd, sizeof vc, &err) == OB_OK);
        const cuda_kv_map map = {.meta_dev = md, .stride = STRIDE, .block = 32,
                                 .ring_rows = ring ? RING : 0, .n_swa = ring ? 8 : 0,
                                 .n_kv = 24};
        CHECK(cuda_kv_store_map(c, kd, vd, S, kf, vf, T, &map, &err) == OB_OK);
        CHECK(down(c, kc, kd, sizeof kc) && down(c, vc, vd, sizeof vc));
        for (int r = 0; r < ROWS; r++) {
            int src = -1;
            for (int t = 0; t < T; t++) {
                const int32_t *m = meta + t * STRIDE;
                if ((ring ? m[1] * RING + m[0] % RING : m[2]) == r) src = t;
            }
            for (int i = 0; i < S; i++) {
                uint16_t wk = src >= 0 ? quant_f32_to_f16(k[src * S + i]) : 0;
                uint16_t wv = src >= 0 ? quant_f32_to_f16(v[src * S + i]) : 0;
                CHECK_MSG(kc[r * S + i] == wk && vc[r * S + i] == wv, "ring %d row %d [%d]",
                          ring, r, i);
            }
        }
    }
    cuda_buf_free(c, kd);
    cuda_buf_free(c, vd);
    cuda_buf_free(c, kf);
    cuda_buf_free(c, vf);
    cuda_buf_free(c, md);
}

/* Attention reference in double over the F16 cache (decoded with quant_f16_to_f32), q rounded
 * to F16 first as the CPU does. */
static void attn_ref(const cuda_attn_args *a, const float *q, const uint16_t *k,
                     const uint16_t *v, float *out) {
    const int64_t hd = a->head_dim, g = a->n_head / a->n_head_kv;
    double *w = ob_alloc((size_t)(a->pos0 + a->n_tok), sizeof(double));
    for (int64_t t = 0; t < a->n_tok; t++)
        for (int64_t h = 0; h < a->n_head; h++) {
            const float *qh = q + (t * a->n_head + h) * hd;
            int64_t n_kv = a->pos0 + t + 1, kvh = h / g;
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < n_kv; j++) {
                double d = 0;
                for (int64_t i = 0; i < hd; i++)
                    d += (double)quant_f16_to_f32(quant_f32_to_f16(qh[i])) *
                         quant_f16_to_f32(k[j * a->kv_stride + kvh * hd + i]);
                w[j] = d * a->scale;
                m = fmax(m, w[j]);
            }
            for (int64_t j = 0; j < n_kv; j++) s += (w[j] = exp(w[j] - m));
            for (int64_t i = 0; i < hd; i++) {
                double o = 0;
                for (int64_t j = 0; j < n_kv; j++)
                    o += w[j] * quant_f16_to_f32(v[j * a->kv_stride + kvh * hd + i]);
                out[(t * a->n_head + h) * hd + i] = (float)(o / s);
            }
        }
    ob_free(w);
}

/* One attention shape against the reference; tolerance 2e-5 absolute (|v| <= 1). */
static void check_attention(cuda_ctx *c, int64_t n_tok, int64_t pos0, int64_t n_head,
                            int64_t n_head_kv, int64_t hd) {
    const int64_t n_kv = pos0 + n_tok, stride = n_head_kv * hd, nq = n_tok * n_head * hd;
    float *q = ob_alloc((size_t)nq, 4), *got = ob_alloc((size_t)nq, 4), *want = ob_alloc((size_t)nq, 4);
    uint16_t *k = ob_alloc((size_t)(n_kv * stride), 2), *v = ob_alloc((size_t)(n_kv * stride), 2);
    fill(q, nq, 1.0f);
    for (int64_t i = 0; i < n_kv * stride; i++) {
        k[i] = quant_f32_to_f16(rngf() * 2.0f);
        v[i] = quant_f32_to_f16(rngf());
    }
    cuda_attn_args a = {NULL, NULL, NULL, NULL, n_tok, pos0, n_head, n_head_kv, hd, stride,
                        1.0f / sqrtf((float)hd), NULL};
    attn_ref(&a, q, k, v, want);
    a.q = up(c, q, (size_t)nq * 4);
    a.k = up(c, k, (size_t)(n_kv * stride) * 2);
    a.v = up(c, v, (size_t)(n_kv * stride) * 2);
    ob_err err;
    CHECK(cuda_buf_alloc(c, (size_t)nq * 4, "attn out", (void **)&a.out, &err) == OB_OK);
    CHECK_MSG(cuda_attention(c, &a, &err) == OB_OK, "%s", err.msg);
    CHECK(down(c, got, a.out, (size_t)nq * 4));
    for (int64_t i = 0; i < nq; i++)
        CHECK_MSG(!isnan(got[i]) && fabsf(got[i] - want[i]) <= 2e-5f,
                  "n_tok %lld pos0 %lld hd %lld: [%lld] %g vs %g", (long long)n_tok,
                  (long long)pos0, (long long)hd, (long long)i, got[i], want[i]);
    cuda_buf_free(c, (void *)a.q);
    cuda_buf_free(c, (void *)a.k);
    cuda_buf_free(c, (void *)a.v);
    cuda_buf_free(c, a.out);
    ob_free(q);
    ob_free(got);
    ob_free(want);
    ob_free(k);
    ob_free(v);
}

/* Decode (one token deep in the cache: split across blocks and merged), short decode, and
 * prefill (many tokens, causal), grouped-query heads, head sizes 64, 80 and 128. */
TEST(attention) {
    NEED_GPU(c);
    check_attention(c, 1, 2000, 8, 2, 128);
    if (t_cur_failed) return;
    check_attention(c, 1, 0, 8, 8, 64);
    if (t_cur_failed) return;
    check_attention(c, 2, 300, 4, 1, 80);
    if (t_cur_failed) return;
    check_attention(c, 48, 5, 8, 2, 128);
    if (t_cur_failed) return;
    check_attention(c, 200, 0, 32, 8, 64);
}

/* Greedy argmax: largest value, first index on ties, NaN ignored, all -inf gives index 0. */
TEST(argmax) {
    NEED_GPU(c);
    enum { R = 4, N = 32001 };
    static float x[R * N];
    fill(x, R * N, 5.0f);
    x[0 * N + 31999] = 9.0f;
    x[1 * N + 100] = 9.0f;
    x[1 * N + 20000] = 9.0f;
    x[2 * N + 5] = NAN;
    x[2 * N + 6] = 50.0f;
    for (int i = 0; i < N; i++) x[3 * N + i] = -INFINITY;
    int32_t got[R];
    const int32_t want[R] = {31999, 100, 6, 0};
    float *xd = up(c, x, sizeof x);
    int32_t *od = NULL;
    ob_err err;
    CHECK(cuda_buf_alloc(c, sizeof got, "argmax", (void **)&od, &err) == OB_OK);
    CHECK(cuda_argmax(c, xd, R, N, od, &err) == OB_OK);
    CHECK(down(c, got, od, sizeof got));
    for (int r = 0; r < R; r++) CHECK_EQ_INT(got[r], want[r]);
    cuda_buf_free(c, xd);
    cuda_buf_free(c, od);
}

/* Argument checks that fail before any launch. */
TEST(bad_arguments) {
    NEED_GPU(c);
    ob_err err;
    cuda_attn_args a = {NULL, NULL, NULL, NULL, 1, 0, 6, 4, 64, 256, 0.125f, NULL};
    CHECK_STATUS(cuda_attention(c, &a, &err), OB_ERR_ARG, &err, "heads");
    a.n_head_kv = 2;
    a.head_dim = 512;
    CHECK_STATUS(cuda_attention(c, &a, &err), OB_ERR_ARG, &err, "head_dim 512");
    cuda_rope_params rp = {7, 10000.0f, 1.0f, NULL, false};
    CHECK_STATUS(cuda_rope(c, NULL, 1, 1, 64, NULL, &rp, &err), OB_ERR_ARG, &err, "n_dims 7");
    cuda_weight w;
    CHECK_STATUS(cuda_weight_upload(c, "blk.0.attn_q.weight", NULL, OB_QTYPE_IQ2_XXS, 256, 1, &w, &err),
                 OB_ERR_UNSUPPORTED, &err, "blk.0.attn_q.weight");
    CHECK_STATUS(cuda_weight_upload(c, "blk.0.ffn_up.weight", NULL, OB_QTYPE_Q4_K, 100, 1, &w, &err),
                 OB_ERR_FORMAT, &err, "blk.0.ffn_up.weight");
}

int main(void) {
    RUN(matmul_all_types);
    RUN(get_rows_all_types);
    RUN(rmsnorm);
    RUN(rope_modes);
    RUN(elementwise);
    RUN(scale_and_bias);
    RUN(softmax);
    RUN(kv_store);
    RUN(kv_store_map);
    RUN(attention);
    RUN(argmax);
    RUN(bad_arguments);
    cuda_ctx_free(g_ctx);
    return t_summary();
}
