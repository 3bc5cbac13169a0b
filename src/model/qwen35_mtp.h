/*
 * Qwen3.5's multi-token-prediction (MTP) block, the file's blk.N.nextn.* tensors after the main
 * stack (qwen35_mtp.c): a full-attention block of its own that predicts the token after next.
 * At position p it takes the token x_p and the main model's final hidden state at p - 1 (after
 * the output norm, as llama.cpp feeds it: the row whose logits gave x_p) and computes
 *
 *   x      = eh_proj (rmsnorm(embed(x_p)) * enorm | rmsnorm(h_{p-1}) * hnorm)   (2 n_embd -> n_embd)
 *   x     += W_o (attention(q, k, v) * sigmoid(gate))     q | gate = W_q rmsnorm(x) * attn_norm,
 *                                                          per-head q/k norms, the model's RoPE,
 *                                                          its own KV cache per sequence
 *   x     += W_down (silu(W_gate xn) * W_up xn),           xn = rmsnorm(x) * post_attention_norm
 *            or, qwen35moe, x += moe(xn): the routed experts plus the shared expert scaled by
 *            its sigmoid gate, the stack's mixture-of-experts block (cpu/moe.h)
 *   h_out  = rmsnorm(x) * shared_head_norm (else output_norm)
 *   logits = output h_out                                  (the model's head, shared)
 *
 * h_out takes the main model's place when drafting further (the next position's input). The
 * block runs on the CPU with its own thread pool and an F16 cache, apart from the context's
 * backends; its weights are in the model's table under layer N, which no backend binds.
 */
#ifndef OB_MODEL_QWEN35_MTP_H
#define OB_MODEL_QWEN35_MTP_H

#include "model/model.h"

/* The block's weights: bound when the model loads, owned by the model (m->mtp). */
typedef struct model_mtp {
    bool usable;            /* every tensor bound; else the model's mtp_err says why */
    model_weight eh_proj;   /* blk.N.nextn.eh_proj.weight   [2 n_embd -> n_embd] */
    model_weight embed;     /* blk.N.nextn.embed_tokens.weight, or a copy of token_embd's view */
    model_weight head;      /* blk.N.nextn.shared_head_head.weight, or the model's output */
    model_weight wq;        /* blk.N.attn_q.weight          [n_embd -> 2 n_head head_dim] */
    model_weight wk, wv;    /* blk.N.attn_{k,v}.weight      [n_embd -> n_head_kv head_dim] */
    model_weight wo;        /* blk.N.attn_output.weight     [n_head head_dim -> n_embd] */
    model_weight w_gate, w_up; /* blk.N.ffn_{gate,up}.weight [n_embd -> n_ff] (dense only) */
    model_weight w_down;    /* blk.N.ffn_down.weight        [n_ff -> n_embd] (dense only) */
    model_moe_layer *moe;   /* owned, or NULL (dense): qwen35moe's blk.N.ffn_*_exps (or
                               ffn_gate_up_exps), ffn_gate_inp and the *_shexp shared expert,
                               bound from the stack's rows (moe.h) */
    float *enorm, *hnorm;   /* (n_embd) blk.N.nextn.{enorm,hnorm}.weight */
    float *head_norm;       /* (n_embd) blk.N.nextn.shared_head_norm.weight, or NULL: the
                               model's output_norm */
    float *attn_norm, *ffn_norm; /* (n_embd) blk.N.attn_norm / post_attention_norm */
    float *q_norm, *k_norm; /* (head_dim) */
} model_mtp;

/* Whether a multi-token-prediction block of general.architecture `arch` is run: qwen35's and
 * qwen35moe's are; qwen3next's is not checked against llama.cpp's graph (`outboard info`
 * says so from the file's header alone). */
bool model_mtp_arch_runs(const char *arch);

/* Binds block il of m (the first after the main stack) into m->mtp: qwen35's with a dense FFN,
 * qwen35moe's with a mixture of experts. A file whose block cannot be used (a tensor missing or
 * misshapen, a qwen3next block) still loads: m->mtp is then NULL or not usable and m->mtp_err
 * names the reason. Fails only when out of memory. */
ob_status model_mtp_bind(ob_model *m, int64_t il, ob_err *err);
void model_mtp_free(model_mtp *w);

/* Whether m has a usable MTP block; *why (may be NULL) gets the reason when not. */
bool model_mtp_available(const ob_model *m, const char **why);

/* The block's evaluation state: n_seq sequences of up to n_ctx positions in an F16 cache,
 * passes of up to max_rows entries of one sequence. One thread at a time. */
typedef struct model_mtp_ctx model_mtp_ctx;

/* m borrowed (it must have a usable block) for the state's life; *out: model_mtp_ctx_free. */
ob_status model_mtp_ctx_new(const ob_model *m, int32_t n_seq, int64_t n_ctx, int64_t max_rows,
                            int n_threads, model_mtp_ctx **out, ob_err *err);
void model_mtp_ctx_free(model_mtp_ctx *x);

/* Evaluates n entries of sequence seq at positions pos0..pos0 + n - 1: token tok[i] with the
 * main model's hidden state h + i * n_embd (the one at pos0 + i - 1), written to the cache at
 * their positions (whatever the cache held there before is replaced; a query sees positions up
 * to its own). Afterwards the last entry's h_out goes to h_last (n_embd, may be NULL) and its
 * logits to logits (n_vocab, may be NULL). OB_ERR_ARG when the positions or n are out of range. */
ob_status model_mtp_eval(model_mtp_ctx *x, int32_t seq, int64_t pos0, const int32_t *tok,
                         const float *h, int64_t n, float *h_last, float *logits, ob_err *err);

#endif
