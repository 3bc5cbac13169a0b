/*
 * The CPU ops a transformer step is made of: RMSNorm, RoPE, softmax, SwiGLU, residual add,
 * embedding lookup, matmul of quantized weights by activations (matmul.c) and grouped-query
 * attention over an F16 KV cache (attn.c). Every op runs on a cpu_pool and splits its work by
 * rows; each reproduces the arithmetic of llama.cpp's CPU backend where the order of rounding
 * matters (sums in double for norms and softmax, RoPE angles by repeated multiplication, Q and
 * probabilities rounded to F16 before meeting the F16 cache) so outputs agree with it closely.
 *
 * Buffers are row-major: "(n_tok, n) f32" means n_tok rows of n contiguous floats.
 */
#ifndef OB_CPU_OPS_H
#define OB_CPU_OPS_H

#include "cpu/pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* out (n_rows, n) = x (n_rows, n) / sqrt(mean(x^2) + eps) * w (n). out may alias x. */
void cpu_rmsnorm(cpu_pool *pool, float *out, const float *x, const float *w, int64_t n_rows,
                 int64_t n, float eps);

/* One row of cpu_rmsnorm (for tests and single-threaded callers). */
void cpu_rmsnorm_row(float *out, const float *x, const float *w, int64_t n, float eps);

typedef struct cpu_rope_params {
    int64_t n_dims;             /* rotated dims per head (<= head_dim; the rest pass through) */
    float freq_base;            /* theta_i = pos * base^(-2i/n_dims) */
    float freq_scale;           /* linear position scaling (1 = none) */
    const float *freq_factors;  /* (n_dims/2) f32 divisors of theta (Llama 3 rope_freqs), or NULL */
    bool neox;                  /* pairs (i, i + n_dims/2) instead of (2i, 2i+1) */
} cpu_rope_params;

/* Rotates x (n_tok, n_head * head_dim) f32 in place; token t sits at position pos[t]. */
void cpu_rope(cpu_pool *pool, float *x, int64_t n_tok, int64_t n_head, int64_t head_dim,
              const int32_t *pos, const cpu_rope_params *rp);

/* One head of one token (for tests). */
void cpu_rope_head(float *x, int64_t head_dim, int32_t pos, const cpu_rope_params *rp);

/* x (n) <- softmax(x * scale) in place; entries at -INFINITY become 0. Sum in double. */
void cpu_softmax_row(float *x, int64_t n, float scale);

/* out (n) = silu(gate) * up, silu(g) = g / (1 + e^-g). out may alias gate or up. */
void cpu_swiglu(cpu_pool *pool, float *out, const float *gate, const float *up, int64_t n);

/* x (n) += y (n). */
void cpu_add(cpu_pool *pool, float *x, const float *y, int64_t n);

/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
float cpu_gelu_tanh(float x);

/* out (n) = gelu_tanh(gate) * up (Gemma's GeGLU), the GELU of gate rounded through F16 on
 * input and output and saturated outside [-10, 10] as llama.cpp's CPU backend does. out may
 * alias gate or up. */
void cpu_geglu(cpu_pool *pool, float *out, const float *gate, const float *up, int64_t n);

/* x (n) *= s. */
void cpu_scale(cpu_pool *pool, float *x, int64_t n, float s);

/* x (n_rows, n) += b (n) on every row (projection biases). */
void cpu_add_bias(cpu_pool *pool, float *x, const float *b, int64_t n_rows, int64_t n);

/* f16 <-> f32 for the KV cache (IEEE half, round to nearest even). */
float cpu_f16_to_f32(uint16_t h);
uint16_t cpu_f32_to_f16(float f);

/* ---- attention (attn.c) ---------------------------------------------------------------- */

typedef struct cpu_attn_args {
    const float *q;      /* (n_tok, n_head * head_dim) f32, already rotated */
    const uint16_t *k;   /* (n_rows, kv_stride) f16: this layer's key cache, position p in
                            row p % n_rows */
    const uint16_t *v;   /* (n_rows, kv_stride) f16: value cache, same layout */
    float *out;          /* (n_tok, n_head * head_dim) f32 */
    int64_t n_tok;       /* query tokens in this batch */
    int64_t pos0;        /* position of the first query token; token t sees kv 0..pos0+t, or
                            only the last n_swa of those */
    int64_t n_head, n_head_kv, head_dim;
    int64_t kv_stride;   /* elements per cache row (n_head_kv * head_dim) */
    float scale;         /* usually 1/sqrt(head_dim) */
    float *scratch;      /* cpu_attn_scratch_floats(...) floats, one slice per thread */
    int64_t n_swa;       /* sliding window: a query at p sees keys p - n_swa + 1 .. p; 0 = all */
    int64_t n_rows;      /* cache rows: a ring (position p in row p % n_rows) when the window
                            keeps fewer rows than positions; 0 = row p holds position p */
    /* Batches of several sequences (all NULL / 0 for one sequence at pos0..): */
    const int32_t *pos;  /* (n_tok) position of token t, or NULL: pos0 + t */
    const int32_t *seq;  /* (n_tok) token t's ring is rows [seq[t] * n_rows, + n_rows), or NULL:
                            the ring starts at row 0 */
    const int32_t *const *blocks; /* (n_tok) token t's block table, or NULL: position p lives
                            in row p (or its ring row); else in row blocks[t][p / block_size] *
                            block_size + p % block_size */
    int64_t block_size;  /* positions per block when blocks is set */
    int64_t n_kv;        /* largest position + 1 over the tokens, or 0: pos0 + n_tok */
} cpu_attn_args;

/* Scratch floats cpu_attention needs for n_kv cache rows with nth threads. */
size_t cpu_attn_scratch_floats(int64_t n_kv, int64_t head_dim, int nth);

/* Causal grouped-query attention: query head h reads kv head h / (n_head / n_head_kv); with
 * n_swa, each query sees only the last n_swa positions (itself included). */
void cpu_attention(cpu_pool *pool, const cpu_attn_args *a);

/* The same computed naively, one query head at a time (the reference for tests). */
void cpu_attention_ref(const cpu_attn_args *a);

#endif
