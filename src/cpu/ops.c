/*
 * Element-wise and per-row CPU ops: RMSNorm, RoPE, softmax, SwiGLU, add, and the F16 conversion
 * used by the KV cache. They are memory-bound and cheap next to the matmuls, so they are plain
 * C that the compiler vectorises; each splits its rows over the pool. Where llama.cpp fixes an
 * order of rounding that shows in the logits (double sums, RoPE angles by repeated
 * multiplication), the same order is used here and said so.
 */
#include "cpu/ops.h"
#include "cpu/vec.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define CPU_ROPE_MAX_DIMS 1024

/* ---- F16 ------------------------------------------------------------------------------- */

float cpu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / NaN */
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24, exactly representable in f32 */
            float f = (float)man * 0x1p-24f;
            memcpy(&bits, &f, 4);
            bits |= sign;
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

uint16_t cpu_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0); /* inf/NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: overflow to inf */
    if (ax < 0x38800000u) {                       /* below 2^-14: subnormal half or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* Adding 0.5 shifts the value so the FPU's own round-to-nearest-even does the work. */
        float r = a + 0.5f;
        uint32_t rb;
        memcpy(&rb, &r, 4);
        return sign | (uint16_t)(rb - 0x3f000000u);
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + mant_odd; /* rebias exponent (-112 << 23) and round to nearest even */
    return sign | (uint16_t)(ax >> 13);
}

/* ---- RMSNorm --------------------------------------------------------------------------- */

void cpu_rmsnorm_row(float *out, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0.0; /* llama.cpp sums squares in double */
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

/* Element-wise work this small runs on the calling thread: a pass of the pool (wake-up,
 * barrier) costs more than the work (8192 SwiGLUs are a few microseconds). */
#define CPU_OPS_SERIAL_FLOATS 8192

/* fn over task t of n floats: on the calling thread when small, else in a pass of the pool. */
static void run_sized(cpu_pool *pool, cpu_task_fn fn, void *t, int64_t n) {
    if (n <= CPU_OPS_SERIAL_FLOATS) fn(t, 0, 1);
    else cpu_pool_run(pool, fn, t);
}

typedef struct rmsnorm_task {
    float *out;
    const float *x, *w;
    int64_t n_rows, n;
    float eps;
} rmsnorm_task;

static void rmsnorm_run(void *arg, int ith, int nth) {
    const rmsnorm_task *t = arg;
    int64_t lo, hi;
    cpu_split(t->n_rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        cpu_rmsnorm_row(t->out + r * t->n, t->x + r * t->n, t->w, t->n, t->eps);
}

void cpu_rmsnorm(cpu_pool *pool, float *out, const float *x, const float *w, int64_t n_rows,
                 int64_t n, float eps) {
    rmsnorm_task t = {out, x, w, n_rows, n, eps};
    /* one row, or a few short ones (decode's per-head q/k norms), is not worth a pass */
    if (n_rows == 1) rmsnorm_run(&t, 0, 1);
    else run_sized(pool, rmsnorm_run, &t, n_rows * n);
}

/* ---- RoPE ------------------------------------------------------------------------------ */

/* cos/sin of each rotated pair at position pos (n_dims/2 pairs). The angle is advanced by
 * multiplying by base^(-2/n_dims) per pair, as llama.cpp does, rather than by powf per pair:
 * the two differ in the last bits, which show after a few thousand positions. */
static void rope_cache(float *cs, float *sn, int32_t pos, const cpu_rope_params *rp) {
    const float theta_scale = powf(rp->freq_base, -2.0f / (float)rp->n_dims);
    float theta = (float)pos;
    for (int64_t i = 0; i < rp->n_dims / 2; i++) {
        float ff = rp->freq_factors ? rp->freq_factors[i] : 1.0f;
        float th = rp->freq_scale * (theta / ff);
        cs[i] = cosf(th);
        sn[i] = sinf(th);
        theta *= theta_scale;
    }
}

static void rope_apply(float *x, int64_t n_dims, const float *cs, const float *sn, bool neox) {
    const int64_t half = n_dims / 2;
    for (int64_t i = 0; i < half; i++) {
        int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * cs[i] - x1 * sn[i];
        x[b] = x0 * sn[i] + x1 * cs[i];
    }
}

void cpu_rope_head(float *x, int64_t head_dim, int32_t pos, const cpu_rope_params *rp) {
    float cs[CPU_ROPE_MAX_DIMS / 2], sn[CPU_ROPE_MAX_DIMS / 2];
    (void)head_dim;
    rope_cache(cs, sn, pos, rp);
    rope_apply(x, rp->n_dims, cs, sn, rp->neox);
}

typedef struct rope_task {
    float *x;
    int64_t n_tok, n_head, head_dim;
    const int32_t *pos;
    const cpu_rope_params *rp;
} rope_task;

static void rope_run(void *arg, int ith, int nth) {
    const rope_task *t = arg;
    float cs[CPU_ROPE_MAX_DIMS / 2], sn[CPU_ROPE_MAX_DIMS / 2];
    int64_t lo, hi;
    cpu_split(t->n_tok, ith, nth, &lo, &hi);
    for (int64_t tok = lo; tok < hi; tok++) {
        rope_cache(cs, sn, t->pos[tok], t->rp); /* once per token, shared by its heads */
        float *row = t->x + tok * t->n_head * t->head_dim;
        for (int64_t h = 0; h < t->n_head; h++)
            rope_apply(row + h * t->head_dim, t->rp->n_dims, cs, sn, t->rp->neox);
    }
}

void cpu_rope(cpu_pool *pool, float *x, int64_t n_tok, int64_t n_head, int64_t head_dim,
              const int32_t *pos, const cpu_rope_params *rp) {
    rope_task t = {x, n_tok, n_head, head_dim, pos, rp};
    /* The model loader refuses n_dims outside (0, CPU_ROPE_MAX_DIMS]; this guards our bugs. */
    if (rp->n_dims <= 0 || rp->n_dims > CPU_ROPE_MAX_DIMS || rp->n_dims > head_dim) return;
    if (n_tok == 1) rope_run(&t, 0, 1);
    else cpu_pool_run(pool, rope_run, &t);
}

/* ---- softmax, SwiGLU, add ------------------------------------------------------------------ */

void cpu_softmax_row(float *x, int64_t n, float scale) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > mx) mx = x[i];
    }
    const double sum = cpu_vec_get()->exp_sum(x, n, mx);
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

typedef struct ew_task {
    float *out;
    const float *a, *b;
    int64_t n;
} ew_task;

/* Element ranges rounded to 64 floats so threads do not share cache lines. */
static void ew_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = ((n + nth - 1) / nth + 63) & ~(int64_t)63;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

static void swiglu_run(void *arg, int ith, int nth) {
    const ew_task *t = arg;
    int64_t lo, hi;
    ew_range(t->n, ith, nth, &lo, &hi);
    cpu_vec_get()->swiglu(t->out + lo, t->a + lo, t->b + lo, hi - lo);
}

void cpu_swiglu(cpu_pool *pool, float *out, const float *gate, const float *up, int64_t n) {
    ew_task t = {out, gate, up, n};
    run_sized(pool, swiglu_run, &t, n);
}

static void add_run(void *arg, int ith, int nth) {
    const ew_task *t = arg;
    int64_t lo, hi;
    ew_range(t->n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) t->out[i] += t->b[i];
}

void cpu_add(cpu_pool *pool, float *x, const float *y, int64_t n) {
    ew_task t = {x, NULL, y, n};
    if (n <= 4096) add_run(&t, 0, 1);
    else cpu_pool_run(pool, add_run, &t);
}

/* ---- GeGLU, scale, bias (Gemma 3, Qwen2) -------------------------------------------------- */

float cpu_gelu_tanh(float x) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + coef_a * x * x)));
}

/* llama.cpp's CPU backend reads GELU from a table indexed by the F16 of the input and holding
 * F16 results, saturating outside [-10, 10]; the same rounding here keeps the logits within its
 * tolerance of llama.cpp's. The table (every F16 input's rounded result, as f32) also replaces a
 * tanhf per element, which took 3.5% of the default model's decode. */
static float g_gelu_table[1 << 16];
static pthread_once_t g_gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void) {
    for (uint32_t h = 0; h < (1u << 16); h++)
        g_gelu_table[h] = cpu_f16_to_f32(cpu_f32_to_f16(cpu_gelu_tanh(cpu_f16_to_f32((uint16_t)h))));
}

static void geglu_run(void *arg, int ith, int nth) {
    const ew_task *t = arg;
    int64_t lo, hi;
    ew_range(t->n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        const float g = t->a[i];
        float act;
        if (g <= -10.0f) act = 0.0f;
        else if (g >= 10.0f) act = g;
        else act = g_gelu_table[cpu_f32_to_f16(g)];
        t->out[i] = act * t->b[i];
    }
}

void cpu_geglu(cpu_pool *pool, float *out, const float *gate, const float *up, int64_t n) {
    pthread_once(&g_gelu_once, gelu_table_init);
    ew_task t = {out, gate, up, n};
    run_sized(pool, geglu_run, &t, n);
}

typedef struct scale_task {
    float *x;
    int64_t n;
    float s;
} scale_task;

static void scale_run(void *arg, int ith, int nth) {
    const scale_task *t = arg;
    int64_t lo, hi;
    ew_range(t->n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) t->x[i] *= t->s;
}

void cpu_scale(cpu_pool *pool, float *x, int64_t n, float s) {
    scale_task t = {x, n, s};
    if (n <= 4096) scale_run(&t, 0, 1);
    else cpu_pool_run(pool, scale_run, &t);
}

typedef struct bias_task {
    float *x;
    const float *b;
    int64_t n_rows, n;
} bias_task;

static void bias_run(void *arg, int ith, int nth) {
    const bias_task *t = arg;
    int64_t lo, hi;
    cpu_split(t->n_rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        for (int64_t i = 0; i < t->n; i++) t->x[r * t->n + i] += t->b[i];
}

void cpu_add_bias(cpu_pool *pool, float *x, const float *b, int64_t n_rows, int64_t n) {
    bias_task t = {x, b, n_rows, n};
    if (n_rows * n <= 4096) bias_run(&t, 0, 1);
    else cpu_pool_run(pool, bias_run, &t);
}
