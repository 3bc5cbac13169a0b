/*
 * Gated DeltaNet kernels (Qwen3.5's linear-attention layers), one sequence at a time. The
 * recurrence of one value head, with S (dv, dk) its state, k and q L2-normalised (q also scaled
 * by 1/sqrt(dk)), g <= 0 the log decay and beta in (0, 1):
 *
 *   S   = exp(g_t) S
 *   u_t = beta_t (v_t - S k_t)                 (dv)
 *   S  += u_t k_t^T
 *   o_t = S q_t                                (dv)
 *
 * cpu_dnet_step runs it token by token (decode). cpu_dnet_chunked computes the same over chunks
 * of C tokens with matrix products (prefill): with G_t the decay summed from the chunk's start
 * to t inclusive, Gamma_t = exp(G_t) and S0 the state before the chunk,
 *
 *   L[t][s] = beta_t exp(G_t - G_s) k_t.k_s     s < t (strictly lower triangular)
 *   (I + L) [W | Kc] = [beta v | beta Gamma k]  (forward substitution, C x (dv + dk))
 *   U       = W - Kc S0^T                       (C, dv): every u_t of the chunk
 *   o_t     = Gamma_t S0 q_t + sum_{s<=t} exp(G_t - G_s) (q_t.k_s) u_s
 *   S       = Gamma_C S0 + sum_s exp(G_C - G_s) u_s k_s^T
 *
 * Every exponent is <= 0, so nothing overflows. Rows of a head are addressed through `rows`
 * (the batch rows of the sequence, in order) and strides, so a batch of interleaved sequences
 * needs no gathering.
 */
#ifndef OB_CPU_DELTANET_H
#define OB_CPU_DELTANET_H

#include <stddef.h>
#include <stdint.h>

/* Chunk length of cpu_dnet_chunked (llama.cpp's is 64 too). */
#define CPU_DNET_CHUNK 64

typedef struct cpu_dnet_head {
    int64_t n;            /* tokens of the sequence in this batch */
    const int32_t *rows;  /* (n) their batch rows, in position order */
    int64_t dk, dv;       /* key and value head sizes */
    const float *q, *k;   /* row r's head at q + r * qk_stride (dk), normalised and scaled */
    int64_t qk_stride;
    const float *v;       /* row r's head at v + r * v_stride (dv) */
    int64_t v_stride;
    const float *g, *beta; /* row r's at g[r * gb_stride] (log decay, beta) */
    int64_t gb_stride;
    float *out;           /* row r's head at out + r * out_stride (dv) */
    int64_t out_stride;
    float *state;         /* (dv, dk): state[j * dk + i], updated in place */
} cpu_dnet_head;

/* Floats of scratch cpu_dnet_chunked needs for heads of dk, dv. */
size_t cpu_dnet_scratch_floats(int64_t dk, int64_t dv);

/* The recurrence token by token. */
void cpu_dnet_step(const cpu_dnet_head *h);

/* The same in chunks of CPU_DNET_CHUNK (the last one shorter); scratch of
 * cpu_dnet_scratch_floats floats. */
void cpu_dnet_chunked(const cpu_dnet_head *h, float *scratch);

/* Depthwise causal convolution of one channel range over one sequence, then SiLU, in place:
 * x (rows of the sequence, channels [c0, c1) at x + r * x_stride) becomes
 * silu(sum_j w[c * K + j] * in[t - (K - 1) + j]), where inputs before the first row come from
 * state ((K - 1), n_ch) f32, oldest first, which then holds the last K - 1 inputs. */
void cpu_dnet_conv(float *x, int64_t x_stride, const int32_t *rows, int64_t n, const float *w,
                   int64_t K, float *state, int64_t n_ch, int64_t c0, int64_t c1);

/* x (n) /= max(||x||, eps). */
void cpu_l2norm(float *x, int64_t n, float eps);

/* log(1 + e^x), x itself above 20 (as ggml). */
float cpu_softplus(float x);

#endif
