/*
 * Every Vulkan kernel against the CPU on random data, through the backend's op table with
 * plain host buffers (each op stages its operands and returns its results). Weight kernels
 * (matrix products, row lookups) are checked for every tensor type against rows dequantized
 * by src/quant's scalar reference, sums in double; the other ops against the CPU backend's
 * (src/cpu) on the same inputs. Odd sizes and tails throughout; tolerances stated per check.
 * The validation layer is on and must report nothing. Both builds of each shader run: with
 * subgroup arithmetic where the device has it, and the shared-memory fallback
 * (OB_VK_NO_SUBGROUP=1).
 */
#include "model/backend.h"

#include "core/alloc.h"
#include "quant/quant.h"
#include "test.h"
#include "vk_test.h"

#include <math.h>

static const uint32_t TYPES[] = {OB_QTYPE_F32,  OB_QTYPE_F16,    OB_QTYPE_BF16,  OB_QTYPE_Q4_0,
                                 OB_QTYPE_Q4_1, OB_QTYPE_Q5_0,   OB_QTYPE_Q5_1,  OB_QTYPE_Q8_0,
                                 OB_QTYPE_Q2_K, OB_QTYPE_Q3_K,   OB_QTYPE_Q4_K,  OB_QTYPE_Q5_K,
                                 OB_QTYPE_Q6_K, OB_QTYPE_IQ4_NL, OB_QTYPE_IQ4_XS};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* A small shape: 4 query heads over 2 KV heads of 40 (less than a workgroup), 4 pool blocks,
 * 2 sequences; n_swa > 0 makes every layer a sliding-window layer (rings of n_swa + n_batch). */
static model_backend_shape shape_of(int64_t n_swa, const bool *swa) {
    return (model_backend_shape){.arch = "llama",
                                 .n_layer = 1,
                                 .n_ctx = 128,
                                 .n_kv_rows = 4 * KV_BLOCK,
                                 .n_seq = 2,
                                 .n_swa = n_swa,
                                 .swa = swa,
                                 .n_batch = 16,
                                 .n_head = 4,
                                 .n_head_kv = 2,
                                 .head_dim = 40};
}

static model_backend *vk_new(int dev, const model_backend_shape *s) {
    model_backend *be = NULL;
    ob_err err = {{0}};
    if (model_backend_vulkan_new(s, 0, dev, &be, &err)) {
        fprintf(stderr, "  vulkan backend: %s\n", err.msg);
        return NULL;
    }
    return be;
}

static model_backend *cpu_new(const model_backend_shape *s) {
    model_backend *be = NULL;
    ob_err err;
    return model_backend_cpu_new(s, 0, 1, &be, &err) ? NULL : be;
}

/* The op's first failure, or OB_OK. */
static ob_status synced(model_backend *be) {
    ob_err err = {{0}};
    ob_status st = be->ops->sync(be, &err);
    if (st) fprintf(stderr, "  %s\n", err.msg);
    return st;
}

/* Largest |a - b| over n, and the largest |b|. */
static double max_diff(const float *a, const float *b, int64_t n, double *scale) {
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    *scale = s;
    return d;
}

/* ---- weights ------------------------------------------------------------------------------ */

typedef struct {
    model_weight w;
    uint8_t *q;
    float *deq; /* (n_out, n_in) from the scalar reference */
} test_weight;

static void weight_make(uint32_t type, int64_t n_in, int64_t n_out, test_weight *tw) {
    const quant_traits *ref = quant_traits_ref(type);
    const size_t row = (size_t)(n_in / ref->block_size) * ref->type_size;
    float *src = ob_alloc((size_t)(n_in * n_out), sizeof(float));
    tw->q = ob_alloc((size_t)n_out, row);
    tw->deq = ob_alloc((size_t)(n_in * n_out), sizeof(float));
    vk_fill(src, n_in * n_out, 1.0f);
    for (int64_t o = 0; o < n_out; o++) {
        ref->from_f32(src + o * n_in, tw->q + o * row, n_in);
        ref->to_f32(tw->q + o * row, tw->deq + o * n_in, n_in);
    }
    ob_free(src);
    tw->w = (model_weight){.name = "test.weight",
                           .id = -1, /* in no model's table: uploaded for each op */
                         .data = tw->q,
                         .type = type,
                         .n_in = n_in,
                         .n_out = n_out,
                         .row_size = row};
}

static void weight_free(test_weight *tw) {
    ob_free(tw->q);
    ob_free(tw->deq);
}

/* y = x W^T for n_tok rows against double sums of the reference dequantization. Tolerance:
 * 1e-5 of sum |w x| (f32 sums in another order). Then rows of W by id: within 1e-6 of the
 * reference's largest value (the same f32 arithmetic, up to contraction into FMA). */
static bool check_weight(model_backend *be, uint32_t type, int64_t n_in, int64_t n_out,
                         int64_t n_tok) {
    test_weight tw;
    weight_make(type, n_in, n_out, &tw);
    float *x = ob_alloc((size_t)(n_tok * n_in), sizeof(float));
    float *y = ob_alloc((size_t)(n_tok * n_out), sizeof(float));
    float *rows = ob_alloc((size_t)(n_tok * n_in), sizeof(float));
    int32_t *ids = ob_alloc((size_t)n_tok, sizeof(int32_t));
    vk_fill(x, n_tok * n_in, 2.0f);
    for (int64_t t = 0; t < n_tok; t++)
        ids[t] = (int32_t)(vk_rng32() % (uint32_t)n_out);
    be->ops->matmul(be, y, &tw.w, x, n_tok);
    be->ops->get_rows(be, &tw.w, ids, n_tok, rows);
    bool ok = synced(be) == OB_OK;
    for (int64_t t = 0; ok && t < n_tok; t++)
        for (int64_t o = 0; ok && o < n_out; o++) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < n_in; i++) {
                ref += (double)tw.deq[o * n_in + i] * x[t * n_in + i];
                mag += fabs((double)tw.deq[o * n_in + i] * x[t * n_in + i]);
            }
            const double got = y[t * n_out + o];
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-6)) {
                fprintf(stderr,
                        "  %s matmul [%lld x %lld] n_tok %lld: y[%lld][%lld] = %g, "
                        "expected %g\n",
                        gguf_qtype_name(type), (long long)n_out, (long long)n_in, (long long)n_tok,
                        (long long)t, (long long)o, got, ref);
                ok = false;
            }
        }
    for (int64_t t = 0; ok && t < n_tok; t++) {
        double scale, d = max_diff(rows + t * n_in, tw.deq + ids[t] * n_in, n_in, &scale);
        if (!(d <= 1e-6 * scale)) {
            fprintf(stderr, "  %s get_rows: row %d differs by %g (scale %g)\n",
                    gguf_qtype_name(type), ids[t], d, scale);
            ok = false;
        }
    }
    ob_free(x);
    ob_free(y);
    ob_free(rows);
    ob_free(ids);
    weight_free(&tw);
    return ok;
}

/* Every type: 3 blocks a row (2 for the 256-element K-quants; 67 and 68 elements for the float
 * types, so both the element-at-a-time and the 4-at-a-time loops run), 37 output rows (not a
 * multiple of anything, so Q8_0's, Q4_0's and Q5_0's odd rows start mid-word), 1, 3 and 11
 * tokens (one token, a partial and a full-plus-partial tile of 8). */
static void weights_all(void) {
    NEED_VULKAN(dev);
    model_backend_shape s = shape_of(0, NULL);
    model_backend *be = vk_new(dev, &s);
    CHECK(be);
    for (size_t i = 0; i < N_TYPES; i++) {
        const int64_t bs = quant_traits_ref(TYPES[i])->block_size;
        const int64_t n_in = bs == 1 ? 67 : bs == 32 ? 96 : 512;
        const int64_t toks[] = {1, 3, 11};
        for (int64_t n = n_in; n <= (bs == 1 ? n_in + 1 : n_in); n++)
            for (int k = 0; k < 3; k++)
                CHECK_MSG(check_weight(be, TYPES[i], n, 37, toks[k]), "%s n_in %lld",
                          gguf_qtype_name(TYPES[i]), (long long)n);
    }
    be->ops->free(be);
}

TEST(weights_every_type) {
    weights_all();
}

TEST(weights_every_type_without_subgroups) {
    setenv("OB_VK_NO_SUBGROUP", "1", 1);
    weights_all();
    unsetenv("OB_VK_NO_SUBGROUP");
}

/* Weight workgroups of several subgroups (64 invocations where lavapipe's subgroups are 8 or
 * 16 wide): a row's sum crosses subgroups through shared memory. */
TEST(weights_every_type_in_wide_workgroups) {
    setenv("OB_VK_WEIGHT_WG", "64", 1);
    weights_all();
    unsetenv("OB_VK_WEIGHT_WG");
}

/* A binding limit of 8 KiB splits a Q8_0 weight of 100 rows of 272 bytes into 4 pieces of
 * 30 rows (the last 10), a Q4_K one of 61 rows of 288 bytes into 3: products and lookups
 * cross the pieces. */
TEST(weights_split_over_bindings) {
    NEED_VULKAN(dev);
    setenv("OB_VK_MAX_RANGE", "8192", 1);
    model_backend_shape s = shape_of(0, NULL);
    s.n_kv_rows = KV_BLOCK; /* a layer's K cache of 5 KiB fits the limit */
    model_backend *be = vk_new(dev, &s);
    unsetenv("OB_VK_MAX_RANGE");
    CHECK(be);
    CHECK(check_weight(be, OB_QTYPE_Q8_0, 256, 100, 5));
    CHECK(check_weight(be, OB_QTYPE_Q4_K, 512, 61, 2));
    be->ops->free(be);
}

/* ---- the other ops against the CPU backend -------------------------------------------------- */

/* Runs one op on both backends over copies of the same buffers, then compares buffer `out`
 * (n floats) within tol of its largest value. */
typedef void (*op_fn)(model_backend *be, float **bufs, void *arg);

static bool same_op(model_backend *vk, model_backend *cpu, op_fn fn, void *arg,
                    const int64_t *sizes, int n_bufs, int out, double tol, const char *what) {
    float *a[4], *b[4];
    for (int i = 0; i < n_bufs; i++) {
        a[i] = ob_alloc((size_t)sizes[i], sizeof(float));
        b[i] = ob_alloc((size_t)sizes[i], sizeof(float));
        vk_fill(a[i], sizes[i], 3.0f);
        memcpy(b[i], a[i], (size_t)sizes[i] * sizeof(float));
    }
    fn(vk, a, arg);
    fn(cpu, b, arg);
    bool ok = synced(vk) == OB_OK;
    double scale, d = max_diff(a[out], b[out], sizes[out], &scale);
    if (ok && !(d <= tol * scale)) {
        fprintf(stderr, "  %s: differs by %g (scale %g, tolerance %g)\n", what, d, scale, tol);
        ok = false;
    }
    for (int i = 0; i < n_bufs; i++) {
        ob_free(a[i]);
        ob_free(b[i]);
    }
    return ok;
}

static void op_rmsnorm(model_backend *be, float **x, void *arg) {
    (void)arg;
    be->ops->rmsnorm(be, x[0], x[1], x[2], 5, 67, 1e-5f);
    be->ops->rmsnorm(be, x[1], x[1], x[2], 5, 67, 1e-6f); /* in place */
}

static void op_add(model_backend *be, float **x, void *arg) {
    (void)arg;
    be->ops->add(be, x[0], x[1], 1001);
}
static void op_scale(model_backend *be, float **x, void *arg) {
    (void)arg;
    be->ops->scale(be, x[0], 1001, 0.37f);
}
static void op_swiglu(model_backend *be, float **x, void *arg) {
    (void)arg;
    be->ops->swiglu(be, x[0], x[1], x[2], 1001);
}
static void op_geglu(model_backend *be, float **x, void *arg) {
    (void)arg;
    be->ops->geglu(be, x[0], x[1], x[2], 1001);
}
static void op_bias(model_backend *be, float **x, void *arg) {
    (void)arg;
    be->ops->add_bias(be, x[0], x[1], 7, 143);
}

/* Element-wise ops on 1001 elements (a tail past 15 full workgroups): add and scale within
 * 1e-6 (the same f32 operation), SwiGLU within 1e-5 (exp), GeGLU within 2e-3 (both round to
 * F16, so a tanh differing in its last bit may move a result by one F16 step). */
TEST(elementwise_ops) {
    NEED_VULKAN(dev);
    model_backend_shape s = shape_of(0, NULL);
    model_backend *vk = vk_new(dev, &s), *cpu = cpu_new(&s);
    CHECK(vk && cpu);
    const int64_t n3[] = {1001, 1001, 1001}, norm[] = {5 * 67, 5 * 67, 67}, bias[] = {7 * 143, 143};
    CHECK(same_op(vk, cpu, op_rmsnorm, NULL, norm, 3, 0, 2e-6, "rmsnorm"));
    CHECK(same_op(vk, cpu, op_rmsnorm, NULL, norm, 3, 1, 2e-6, "rmsnorm in place"));
    CHECK(same_op(vk, cpu, op_add, NULL, n3, 2, 0, 1e-6, "add"));
    CHECK(same_op(vk, cpu, op_scale, NULL, n3, 1, 0, 1e-6, "scale"));
    CHECK(same_op(vk, cpu, op_swiglu, NULL, n3, 3, 0, 1e-5, "swiglu"));
    CHECK(same_op(vk, cpu, op_geglu, NULL, n3, 3, 0, 2e-3, "geglu"));
    CHECK(same_op(vk, cpu, op_bias, NULL, bias, 2, 0, 1e-6, "add_bias"));
    vk->ops->free(vk);
    cpu->ops->free(cpu);
}

typedef struct {
    model_rope rp;
    int32_t pos[6];
} rope_arg;

static void op_rope(model_backend *be, float **x, void *arg) {
    rope_arg *r = arg;
    be->ops->rope(be, x[0], 6, 3, 40, r->pos, &r->rp);
}

/* RoPE over 6 tokens of 3 heads of 40 at positions up to 2000: normal and NeoX order, all or
 * part (24) of the head rotated, Llama 3 frequency factors. Within 1e-4 of the largest value:
 * the angles are the same f32 products, the device's cos/sin may differ in the last bits. */
TEST(rope_variants) {
    NEED_VULKAN(dev);
    model_backend_shape s = shape_of(0, NULL);
    model_backend *vk = vk_new(dev, &s), *cpu = cpu_new(&s);
    CHECK(vk && cpu);
    float ff[20];
    for (int i = 0; i < 20; i++)
        ff[i] = 1.0f + (float)i * 0.5f;
    const int64_t sz[] = {6 * 3 * 40};
    for (int v = 0; v < 6; v++) {
        rope_arg a = {.rp = {.n_dims = v % 3 == 2 ? 24 : 40,
                             .freq_base = 10000.0f,
                             .freq_scale = v == 1 ? 0.25f : 1.0f,
                             .freq_factors = v % 3 == 1 ? ff : NULL,
                             .neox = v >= 3},
                      .pos = {0, 1, 7, 63, 500, 2000}};
        if (a.rp.freq_factors && a.rp.n_dims != 40) a.rp.freq_factors = NULL;
        CHECK_MSG(same_op(vk, cpu, op_rope, &a, sz, 1, 0, 1e-4, "rope"), "variant %d", v);
    }
    vk->ops->free(vk);
    cpu->ops->free(cpu);
}

TEST(validation_layer_silent) {
    NEED_VULKAN(dev);
    (void)dev;
    CHECK_EQ_INT(vulkan_validation_messages(), 0);
}

int main(void) {
    RUN(weights_every_type);
    RUN(weights_every_type_without_subgroups);
    RUN(weights_every_type_in_wide_workgroups);
    RUN(weights_split_over_bindings);
    RUN(elementwise_ops);
    RUN(rope_variants);
    RUN(validation_layer_silent);
    return t_summary();
}
