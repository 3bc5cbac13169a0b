/*
 * Small vector kernels the attention loop runs millions of times: a dot product, y += a * x,
 * F16 -> F32 row conversion and rounding through F16. A portable C version and, on x86-64 with AVX2/FMA/F16C, an
 * intrinsics version (vec_avx2.c) chosen once at run time (cpu_vec_get). The C dot product
 * keeps 8 partial sums, so both versions add in the same lane order up to the final fold.
 */
#ifndef OB_CPU_VEC_H
#define OB_CPU_VEC_H

#include <stdint.h>

typedef struct cpu_vec_ops {
    float (*dot)(const float *a, const float *b, int64_t n);   /* sum a[i] * b[i] */
    void (*axpy)(float *y, float a, const float *x, int64_t n); /* y[i] += a * x[i] */
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
