/*
 * Mixture-of-experts feed-forward on the CPU: a router picks n_used of n_expert SwiGLU experts
 * per token and the block's output is their weighted sum, plus an optional shared expert
 * scaled by a sigmoid gate (qwen35moe, qwen3next).
 *
 *   p = softmax(Wr x)                       (n_expert) per token
 *   sel = the n_used largest p, in descending order; w = p[sel] (/ sum when norm, * scale)
 *   out = sum_j w_j * down_sel_j(silu(gate_sel_j x) * up_sel_j x)
 *       + sigmoid(g . x) * down_sh(silu(gate_sh x) * up_sh x)     (shared expert, if any)
 *
 * Each expert is a set of cpu_weight views into the file's 3-D tensors (no copies unless the
 * kernels repack). A batch is grouped by expert: the rows routed to one expert are gathered,
 * multiplied by its three matrices once, and scattered back, so an expert's bytes are read
 * once per batch whatever the number of tokens that chose it, and experts nobody chose are
 * not read at all.
 */
#ifndef OB_CPU_MOE_H
#define OB_CPU_MOE_H

#include "cpu/matmul.h"
#include "cpu/pool.h"

#include <stdbool.h>
#include <stdint.h>

/* Experts per layer the engine accepts (llama.cpp's limit too). */
#define CPU_MOE_MAX_EXPERTS 512

typedef struct cpu_moe cpu_moe;

/* The three matrices of a routed expert. */
typedef enum cpu_moe_part { CPU_MOE_GATE, CPU_MOE_UP, CPU_MOE_DOWN } cpu_moe_part;

/* Offers the product y (n, n_out) = x (n, n_in) by part `part` of expert `expert` to run
 * elsewhere (weight streaming, model/stream.h): true when it ran there, false, having done
 * nothing, for the CPU to run it. An expert whose gate product it took has its up and down
 * products offered one by one (the CPU runs any it declines); one it declined joins the CPU's
 * batched products. */
typedef bool (*cpu_moe_offload_fn)(void *user, const cpu_moe *moe, cpu_moe_part part,
                                   int64_t expert, float *y, const float *x, int64_t n);

/* One MoE feed-forward block's weights (all borrowed from the model). */
struct cpu_moe {
    int64_t n_expert, n_used; /* experts, and experts per token (1..n_expert) */
    int64_t n_embd, n_ff;     /* model width; each expert's hidden width */
    bool norm;                /* renormalise the chosen weights to sum 1 */
    float scale;              /* multiplies the chosen weights (1 = none) */
    cpu_weight router;        /* [n_embd -> n_expert] */
    const cpu_weight *gate;   /* (n_expert) [n_embd -> n_ff] */
    const cpu_weight *up;     /* (n_expert) [n_embd -> n_ff] */
    const cpu_weight *down;   /* (n_expert) [n_ff -> n_embd] */
    /* shared expert, or n_ff_sh = 0 */
    int64_t n_ff_sh;
    cpu_weight sh_gate, sh_up;    /* [n_embd -> n_ff_sh] */
    cpu_weight sh_down;           /* [n_ff_sh -> n_embd] */
    cpu_weight sh_gate_w;         /* [n_embd -> 1] its gate: sigmoid(sh_gate_w x) */
    /* NULL, or asked first for every routed expert's products (the router and the shared
     * expert stay on the CPU: a few rows' worth of work whose result the CPU needs next) */
    cpu_moe_offload_fn offload;
    void *offload_user;
};

/* Scratch of cpu_moe_ffn for batches of up to n_batch tokens (owned by its creator). */
typedef struct cpu_moe_scratch cpu_moe_scratch;

/* Scratch for n_batch tokens of a model whose MoE blocks have at most these sizes; NULL when
 * memory is short or the sizes overflow. */
cpu_moe_scratch *cpu_moe_scratch_new(int64_t n_batch, int64_t n_embd, int64_t n_expert,
                                     int64_t n_used, int64_t n_ff, int64_t n_ff_sh);

/* Bytes cpu_moe_scratch_new allocates for the same sizes (its buffers, not alignment padding);
 * 0 when they are out of range or overflow. */
size_t cpu_moe_scratch_bytes(int64_t n_batch, int64_t n_embd, int64_t n_expert, int64_t n_used,
                             int64_t n_ff, int64_t n_ff_sh);
void cpu_moe_scratch_free(cpu_moe_scratch *s);

/* Bytes of matmul scratch (cpu_matmul's wsp) the block needs for n_tok tokens. */
size_t cpu_moe_wsize(const cpu_moe *moe, int64_t n_tok);

/* out (n_tok, n_embd) f32 = the block applied to x (n_tok, n_embd) f32 (out must not alias
 * x). wsp: cpu_moe_wsize bytes, aligned to 64. n_tok <= the scratch's n_batch. */
void cpu_moe_ffn(cpu_pool *pool, cpu_moe_scratch *s, float *out, const float *x,
                 const cpu_moe *moe, int64_t n_tok, void *wsp);

/* Process-wide counters of the expert weights cpu_moe_ffn read, for tests and reports:
 * bytes of routed-expert matrices multiplied, and per expert id how many times its matrices
 * were read (once per batch that routed a token to it). Relaxed atomics. */
typedef struct cpu_moe_counts {
    uint64_t bytes;
    uint64_t reads[CPU_MOE_MAX_EXPERTS];
} cpu_moe_counts;

void cpu_moe_counts_get(cpu_moe_counts *out);
void cpu_moe_counts_reset(void);

#endif
