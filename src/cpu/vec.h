/*
 * Small vector kernels the attention loop runs millions of times: the scores of one query
 * against many keys, the probability-weighted sum of value rows, F16 -> F32 row conversion and
 * rounding through F16. A portable C version and, on x86-64 with AVX2/FMA/F16C, an intrinsics
 * version (vec_avx2.c) chosen once at run time (cpu_vec_get).
 *
 * The keys come transposed (kt[d * ld + j] is element d of key j), so a vector register holds
 * one element of 8 consecutive keys and a score needs no horizontal sum: the scores of 8 keys
 * cost head_dim multiply-adds.
 *
 * exp in the AVX2 set is a polynomial (range reduction by ln 2, degree-7 Taylor): within 2 ulp
 * of expf, as llama.cpp's own vectorised exp is; results below exp(-86) are flushed to 0.
 */
#ifndef OB_CPU_VEC_H
#define OB_CPU_VEC_H

#include <stdint.h>

typedef struct cpu_vec_ops {
    /* out[j] = sum over d < hd of q[d] * kt[d * ld + j], for j < n */
    void (*scores)(float *out, const float *q, const float *kt, int64_t ld, int64_t n,
                   int64_t hd);
    /* out[d] = sum over j < n of p[j] * v[j * hd + d], for d < hd */
    void (*mix)(float *out, const float *p, const float *v, int64_t n, int64_t hd);
    /* x[i] = exp(x[i] - mx) (0 for -inf), returning the sum in double: softmax's middle step */
    double (*exp_sum)(float *x, int64_t n, float mx);
    /* out[i] = silu(g[i]) * u[i], silu(g) = g / (1 + exp(-g)); out may be g */
    void (*swiglu)(float *out, const float *g, const float *u, int64_t n);
    void (*f16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    /* dst[i] = src[i] rounded to the nearest F16 value (ties to even) and back; dst may be
     * src. Exact for finite inputs, so every version gives the same bits. */
    void (*round_f16)(const float *src, float *dst, int64_t n);
    const char *isa; /* "c" or "avx2" */
} cpu_vec_ops;

/* The best set for this CPU (after OB_ISA); static, thread-safe. */
const cpu_vec_ops *cpu_vec_get(void);

/* The portable set (the reference for tests). */
const cpu_vec_ops *cpu_vec_ref(void);

#if defined(__x86_64__) || defined(_M_X64)
extern const cpu_vec_ops cpu_vec_avx2;
#endif

#endif
