/*
 * Small vector kernels the attention loop runs millions of times: the scores of a few query
 * heads against many keys, the probability-weighted sums of value rows, softmax's exp, SwiGLU,
 * and rounding through F16. A portable C version and intrinsics versions chosen once at run
 * time (cpu_vec_get): on x86-64 with AVX2/FMA/F16C vec_avx2.c, on AArch64 vec_neon.c.
 *
 * The attention kernels read the F16 cache rows where they lie (row j at k + j * ks), for up to
 * n_q query heads at once: the query heads of a grouped-query group share their kv head, so
 * each cache row is loaded and converted once for all of them, and nothing is copied first (a
 * copy of the visible cache per token made long-context decode pay for the whole cache twice).
 * Each result is summed in an order that depends only on its own row, never on where in the
 * batch the row sits, so decoding a token gives the same bits as the same token in a prefill.
 *
 * exp in the AVX2 set is a polynomial (range reduction by ln 2, degree-7 Taylor): within 2 ulp
 * of expf, as llama.cpp's own vectorised exp is; results below exp(-86) are flushed to 0.
 */
#ifndef OB_CPU_VEC_H
#define OB_CPU_VEC_H

#include <stdint.h>

typedef struct cpu_vec_ops {
    /* out[i * ldo + j] = sum over d < hd of q[i * hd + d] * k[j * ks + d] (k in F16), for
     * query i < n_q and key j < n */
    void (*scores)(float *out, int64_t ldo, const float *q, int64_t n_q, const uint16_t *k,
                   int64_t ks, int64_t n, int64_t hd);
    /* out[i * hd + d] += sum over j < n of p[i * ldp + j] * v[j * vs + d] (v in F16), for
     * query i < n_q and d < hd: accumulates, so a ring cache's two pieces add up */
    void (*mix)(float *out, const float *p, int64_t ldp, int64_t n_q, const uint16_t *v,
                int64_t vs, int64_t n, int64_t hd);
    /* x[i] = exp(x[i] - mx) (0 for -inf), returning the sum in double: softmax's middle step */
    double (*exp_sum)(float *x, int64_t n, float mx);
    /* out[i] = silu(g[i]) * u[i], silu(g) = g / (1 + exp(-g)); out may be g */
    void (*swiglu)(float *out, const float *g, const float *u, int64_t n);
    /* dst[i] = src[i] rounded to the nearest F16 value (ties to even) and back; dst may be
     * src. Exact for finite inputs, so every version gives the same bits. */
    void (*round_f16)(const float *src, float *dst, int64_t n);
    const char *isa; /* "c", "avx2" or "neon" */
} cpu_vec_ops;

/* The best set for this CPU (after OB_ISA); static, thread-safe. */
const cpu_vec_ops *cpu_vec_get(void);

/* The portable set (the reference for tests). */
const cpu_vec_ops *cpu_vec_ref(void);

#if defined(__x86_64__) || defined(_M_X64)
extern const cpu_vec_ops cpu_vec_avx2;
#elif defined(__aarch64__) || defined(_M_ARM64)
extern const cpu_vec_ops cpu_vec_neon;
#endif

#endif
