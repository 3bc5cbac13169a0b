/*
 * The model as the engine sees it: hyperparameters read from GGUF metadata, per-architecture
 * flags, the weights bound by name (views into the mapped file), and the forward step.
 *
 * An architecture is a model_family (family.h): a name as general.architecture spells it, a
 * function that reads its hyperparameters, a table of its per-layer tensors, and its forward
 * functions. The llama family (Llama 2/3.x, Mistral, TinyStories) is llama.c. Families that
 * differ in a few places (qwen2: q/k/v biases; qwen3: per-head q/k RMSNorm; gemma3: scaled
 * embeddings, extra norms, GELU) add flags to model_flags, fields to model_layer and rows to
 * their table, and reuse the rest.
 */
#ifndef OB_MODEL_MODEL_H
#define OB_MODEL_MODEL_H

#include "gguf/gguf.h"
#include "model/backend.h"
#include "model/moe.h"
#include "outboard.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum model_arch {
    MODEL_ARCH_LLAMA = 0,
    MODEL_ARCH_QWEN2,
    MODEL_ARCH_QWEN3,
    MODEL_ARCH_GEMMA3,
    MODEL_ARCH_QWEN3MOE,
    MODEL_ARCH_QWEN35,
    MODEL_ARCH_QWEN35MOE,
    MODEL_ARCH_QWEN3NEXT,
} model_arch;

/* Switches that distinguish architectures sharing the llama-style block. */
typedef struct model_flags {
    bool rope_neox;     /* rotate pairs (i, i + n_rot/2) instead of (2i, 2i+1) */
    bool tied_output;   /* no output.weight: logits use token_embd.weight */
    bool qkv_bias;      /* q, k, v projections add a bias (qwen2) */
    bool qk_norm;       /* per-head RMSNorm of q and k before RoPE (qwen3, gemma3) */
} model_flags;

typedef struct model_hparams {
    model_arch arch;
    char arch_name[32];   /* general.architecture */
    int64_t n_vocab;      /* rows of token_embd.weight */
    int64_t n_ctx_train;  /* <arch>.context_length */
    int64_t n_embd;       /* <arch>.embedding_length */
    int64_t n_layer;      /* <arch>.block_count */
    int64_t n_head;       /* <arch>.attention.head_count */
    int64_t n_head_kv;    /* <arch>.attention.head_count_kv (default n_head) */
    int64_t head_dim;     /* <arch>.attention.key_length (default n_embd / n_head) */
    int64_t n_ff;         /* <arch>.feed_forward_length */
    int64_t n_rot;        /* <arch>.rope.dimension_count (default head_dim) */
    float norm_eps;       /* <arch>.attention.layer_norm_rms_epsilon */
    float rope_base;      /* <arch>.rope.freq_base (default 10000) */
    float rope_freq_scale; /* 1 / <arch>.rope.scaling.factor for linear scaling, else 1 */
    int64_t n_swa;        /* <arch>.attention.sliding_window, 0 = every layer sees all */
    bool *swa;            /* (n_layer) owned: layer il uses the sliding window */
    float rope_base_swa;  /* RoPE base of sliding-window layers (gemma3: 10000) */
    float rope_scale_swa; /* their linear scaling (gemma3: 1) */
    float attn_scale;     /* multiplies q before attention (gemma3), or 0: 1/sqrt(head_dim)
                             applied in the softmax */
    model_flags flags;
    model_moe_hparams moe; /* mixture-of-experts blocks (n_expert 0 = dense) */
    /* Gated DeltaNet (qwen35): recurrent layers and their sizes, all 0 / NULL elsewhere */
    bool *recurrent;      /* (n_layer) owned: layer il is a DeltaNet layer, or NULL */
    int64_t ssm_conv;     /* <arch>.ssm.conv_kernel */
    int64_t ssm_d_state;  /* <arch>.ssm.state_size: key and value head size */
    int64_t ssm_n_k_head; /* <arch>.ssm.group_count */
    int64_t ssm_n_v_head; /* <arch>.ssm.time_step_rank */
    bool ssm_grouped_heads; /* value heads of a key head adjacent (qwen3next), else tiled */
    int64_t n_extra;      /* floats per row of model_buffers.extra (0: none) */
    int64_t n_nextn;      /* multi-token-prediction blocks after the n_layer of the stack
                             (<arch>.nextn_predict_layers; qwen35), not run in the main pass */
    ob_pooling pooling;   /* <arch>.pooling_type, OB_POOLING_NONE when absent */
} model_hparams;

/* A layer's token mixer, set by model_bind_all from the hyperparameters before the layer is
 * bound: the field forward passes branch on, and with model_ffn_kind what selects the rows of
 * the family's tensor table (family.h) the layer holds. */
typedef enum model_layer_kind {
    MODEL_LAYER_ATTENTION = 0, /* causal attention over every earlier position */
    MODEL_LAYER_SLIDING,       /* causal attention over the last n_swa positions (hp.swa) */
    MODEL_LAYER_DELTANET,      /* Gated DeltaNet: recurrent state, no KV cache (hp.recurrent) */
} model_layer_kind;

/* A layer's feed-forward half, set with its kind. */
typedef enum model_ffn_kind {
    MODEL_FFN_DENSE = 0, /* w_gate, w_up, w_down */
    MODEL_FFN_MOE,       /* a mixture of experts (moe, hp.moe.n_expert > 0) */
} model_ffn_kind;

/* One transformer block's weights. Matrices are views into the file; norm vectors are F32
 * copies (files store them F32, F16 or BF16; the ops want F32). A layer binds the fields its
 * family's tensor table gives its kinds; the others stay zero. The feed-forward half is the
 * dense SwiGLU (w_gate, w_up, w_down) or, when moe is set, a mixture of experts. */
typedef struct model_layer {
    model_layer_kind kind;
    model_ffn_kind ffn;
    float *attn_norm;   /* (n_embd) */
    model_weight wq;      /* blk.N.attn_q.weight      [n_embd -> n_head * head_dim] */
    model_weight wk;      /* blk.N.attn_k.weight      [n_embd -> n_head_kv * head_dim] */
    model_weight wv;      /* blk.N.attn_v.weight      [n_embd -> n_head_kv * head_dim] */
    model_weight wo;      /* blk.N.attn_output.weight [n_head * head_dim -> n_embd] */
    float *ffn_norm;    /* (n_embd) */
    model_weight w_gate;  /* blk.N.ffn_gate.weight    [n_embd -> n_ff] */
    model_weight w_up;    /* blk.N.ffn_up.weight      [n_embd -> n_ff] */
    model_weight w_down;  /* blk.N.ffn_down.weight    [n_ff -> n_embd] */
    float *bq, *bk, *bv; /* blk.N.attn_{q,k,v}.bias (n_head * head_dim), (n_head_kv * head_dim)
                            x2, or NULL (qwen2) */
    float *q_norm;      /* blk.N.attn_q_norm.weight (head_dim), or NULL (qwen3, gemma3) */
    float *k_norm;      /* blk.N.attn_k_norm.weight (head_dim), or NULL */
    float *post_attn_norm; /* blk.N.post_attention_norm.weight (n_embd), or NULL (gemma3) */
    float *post_ffn_norm;  /* blk.N.post_ffw_norm.weight (n_embd), or NULL (gemma3) */
    model_moe_layer *moe;  /* owned: the layer's mixture-of-experts FFN (moe.h) in place of
                              w_gate/w_up/w_down, or NULL */
    /* Gated DeltaNet layers of the qwen35 family (conv_dim = (2 n_k_head + n_v_head) d_state,
     * value_dim = n_v_head d_state); the vectors NULL elsewhere */
    model_weight ssm_qkv;   /* blk.N.attn_qkv.weight   [n_embd -> conv_dim] */
    model_weight ssm_z;     /* blk.N.attn_gate.weight  [n_embd -> value_dim] */
    model_weight ssm_alpha; /* blk.N.ssm_alpha.weight  [n_embd -> n_v_head] */
    model_weight ssm_beta;  /* blk.N.ssm_beta.weight   [n_embd -> n_v_head] */
    model_weight ssm_ba;    /* blk.N.ssm_ba.weight     [n_embd -> 2 n_v_head] (qwen3next, in
                             place of alpha and beta): per key head, its value heads' beta
                             rows then their alpha rows */
    model_weight ssm_out;   /* blk.N.ssm_out.weight    [value_dim -> n_embd] */
    float *ssm_conv;      /* blk.N.ssm_conv1d.weight (conv_dim, conv_kernel) */
    float *ssm_dt;        /* blk.N.ssm_dt.bias (n_v_head) */
    float *ssm_a;         /* blk.N.ssm_a (n_v_head) */
    float *ssm_norm;      /* blk.N.ssm_norm.weight (d_state) */
} model_layer;

typedef struct model_weights {
    model_weight tok_embd;  /* token_embd.weight [n_embd -> n_vocab rows] */
    float *output_norm;   /* (n_embd) */
    model_weight output;    /* output.weight, or token_embd.weight when tied */
    float *rope_freqs;    /* (n_rot / 2) divisors of the RoPE angle (Llama 3), or NULL */
    model_layer *layers;  /* (n_layer) */
    /* every matrix bound, numbered by its id (model_weight.id); views into layers and the
     * fields above, so model_weights must not move once binding starts */
    model_weight **table;
    int64_t n_table, cap_table;
    const model_moe_block **moe; /* (n_layer) each layer's MoE block or NULL; NULL if dense */
    model_backend_weights for_backends; /* table and moe as backends take them */
} model_weights;

/* Progress of ob_model_load in proportion to bytes: reading every weight page. (Backends
 * prepare their own form of the weights when a context is made, with progress of their own.) */
typedef struct model_load_progress {
    const ob_model_params *params;
    uint64_t done, total, next_report;
    bool cancelled;
} model_load_progress;

struct ob_model {
    gguf_file *file;      /* owned: the mapping the weights point into */
    model_load_progress *loading; /* during ob_model_load only, else NULL */
    model_hparams hp;
    model_weights w;
    char *name;           /* general.name, owned */
    const char *type_name; /* dominant weight type */
    uint64_t n_params, n_bytes;
    int32_t bos_id, eos_id; /* from tokenizer.ggml.*_token_id, -1 when absent */
    struct tok_vocab *vocab; /* owned; NULL when the vocabulary could not be loaded */
    ob_err vocab_err;     /* why vocab is NULL */
    struct model_mtp *mtp; /* owned: the multi-token-prediction block (qwen35_mtp.h), or NULL */
    ob_err mtp_err;       /* why a file's multi-token-prediction block cannot be used */
};

/* Activation buffers of one forward pass, sized for n_batch tokens (owned by the context). */
typedef struct model_buffers {
    float *x;      /* (n_batch, n_embd)              residual stream */
    float *xn;     /* (n_batch, n_embd)              normed input of a sub-block */
    float *q;      /* (n_batch, n_head * head_dim) */
    float *k;      /* (n_batch, n_head_kv * head_dim) */
    float *v;      /* (n_batch, n_head_kv * head_dim) */
    float *attn;   /* (n_batch, n_head * head_dim)   attention output */
    float *proj;   /* (n_batch, n_embd)              projection back to the stream */
    float *gate;   /* (n_batch, n_ff) */
    float *up;     /* (n_batch, n_ff) */
    int32_t *pos;  /* (n_batch) positions */
    float *extra;  /* (n_batch, hp.n_extra) an architecture's own activations (qwen35) */
} model_buffers;

/* One forward pass over a batch of rows (any mix of sequences), everything borrowed. */
typedef struct model_step {
    const int32_t *tokens;   /* (kv.n_tok) token ids, checked against the vocabulary */
    model_kv_batch kv;       /* positions, sequences and cache rows of the rows */
    const int32_t *out_rows; /* (n_out) rows whose logits are wanted, ascending */
    int64_t n_out;
    float *logits;           /* (n_out, n_vocab) f32, written in out_rows' order */
    bool hidden;             /* logits gets (n_out, n_embd): the hidden states after the
                                output norm, not projected (embeddings) */
    float *hidden_all;       /* (kv.n_tok, n_embd) f32 or NULL: every row's hidden state after
                                the output norm, whether its logits are wanted or not (a
                                multi-token-prediction drafter's input) */
    bool (*abort)(void *user); /* asked before each layer; true stops the pass, or NULL */
    void *abort_user;
} model_step;

/* A forward step in three parts, so a context can run layer ranges on several backends in
 * turn with only the hidden state buf->x (n_tok, n_embd) passing between them:
 *   embed   buf->x of the step's tokens, on the backend holding layer 0;
 *   layers  layers [be->layer_lo, be->layer_hi) on buf->x; false when s->abort stopped them
 *           between two layers (the cache rows of the step are then partly written; the
 *           caller rolls them back);
 *   head    model_forward_logits, on the backend holding the last layer.
 * buf->pos holds the rows' positions. The caller checked ids and reserved the cache rows. */
typedef void (*model_embed_fn)(const ob_model *m, model_backend *be, model_buffers *buf,
                               const model_step *s);
typedef bool (*model_layers_fn)(const ob_model *m, model_backend *be, model_buffers *buf,
                                const model_step *s);

/* The token embedding lookup of the llama family (others scale it: gemma3). */
void model_embed_tokens(const ob_model *m, model_backend *be, model_buffers *buf,
                        const model_step *s);

/* The logits of s->out_rows from the final hidden state in buf->x: the output norm and
 * projection of just those rows (gathered into buf->proj when they are not the last ones). */
void model_forward_logits(const ob_model *m, model_backend *be, model_buffers *buf,
                          const model_step *s);

/* ---- shared by the architecture files ------------------------------------------------- */

/* Counts `bytes` of loading work done and reports progress when a callback was given; false
 * once the callback has asked to cancel (the caller then fails with "loading cancelled").
 * Outside ob_model_load it does nothing and returns true. */
bool model_load_advance(const ob_model *m, uint64_t bytes);

/* The tensor `name` (*out) of shape ne (n_dims of them; the rest 1). Errors name the tensor
 * and the file with the shape expected, a misshapen one also with the shape found. */
ob_status model_tensor_shaped(const ob_model *m, const char *name, int n_dims,
                              const int64_t *ne, const gguf_tensor **out, ob_err *err);

/* Binds a 2-D weight of [n_in, n_out] (ne order) named `name`: checks it exists, its shape and
 * that its type has kernels, and numbers it in the weight table (its layer read from a
 * "blk.N." name). Errors name the tensor, expected and actual shape. */
ob_status model_bind_matrix(ob_model *m, const char *name, int64_t n_in, int64_t n_out,
                            model_weight *out, ob_err *err);

/* Numbers w in the weight table (sets w->id); w must stay where it is for the model's life.
 * Checks that its type has kernels and n_in fills whole blocks. */
ob_status model_weight_register(ob_model *m, model_weight *w, ob_err *err);

/* Binds a 1-D vector of n elements as a new F32 array (*out owned by the model). */
ob_status model_bind_vector(const ob_model *m, const char *name, int64_t n, float **out,
                            ob_err *err);
/* The same for a tensor of ne [n0, n1] (n1 = 1: a vector), read as n0 * n1 floats. */
ob_status model_bind_vector_2d(const ob_model *m, const char *name, int64_t n0, int64_t n1,
                               float **out, ob_err *err);

/* Reads "<arch>.<suffix>" as u32 (required or with a default). */
ob_status model_key_i64(const ob_model *m, const char *suffix, int64_t *out, ob_err *err);
ob_status model_key_i64_or(const ob_model *m, const char *suffix, int64_t def, int64_t *out,
                           ob_err *err);
ob_status model_key_f32_or(const ob_model *m, const char *suffix, float def, float *out,
                           ob_err *err);
/* Reads "<arch>.<suffix>" as a finite f32 in (lo, hi] (def when absent); the error names the
 * key, the value and the range. model_key_f32_or refuses NaN and infinities too. */
ob_status model_key_f32_in(const ob_model *m, const char *suffix, float def, float lo, float hi,
                           float *out, ob_err *err);

/* Ranges of hyperparameters outside of which a file is refused: a norm epsilon is a small
 * positive number, a RoPE base or scaling factor a positive one of sane size, and a context
 * length fits the engine's position counters and caches (16M positions). */
#define MODEL_MAX_NORM_EPS 1.0f
#define MODEL_MAX_ROPE_BASE 1e12f
#define MODEL_MAX_ROPE_FACTOR 1e6f
#define MODEL_MAX_CTX (1 << 24)

/* api_tok.c: loads the tokenizer (failure is kept in vocab_err, not fatal) / frees it. */
void model_vocab_load(ob_model *m);
void model_vocab_free(ob_model *m);

/* llama.c: the llama family, and the parts its kin share. model_llama_read_hparams reads the
 * sizes, RoPE and norm epsilon of "<arch>.*"; model_llama_read_swa reads
 * "<arch>.attention.sliding_window" and marks layers (pattern: every n-th layer global, 0 =
 * all layers use the window). */
ob_status model_llama_read_hparams(ob_model *m, ob_err *err);
ob_status model_llama_read_swa(ob_model *m, int64_t pattern, bool required, ob_err *err);
/* q, k, v (n_tok rows) of layer il from buf->xn: projections, biases and per-head norms as
 * the flags say, RoPE with the layer's base (sliding-window layers may have their own). */
void model_llama_qkv(const ob_model *m, model_backend *be, model_buffers *b, int64_t il,
                     int64_t n_tok);
/* x += Wdown (silu(Wgate rmsnorm(x)) * Wup rmsnorm(x)) with layer l's ffn_norm: the SwiGLU
 * feed-forward block of the llama family and of qwen35. */
void model_llama_ffn(const ob_model *m, model_backend *be, model_buffers *b,
                     const model_layer *l, int64_t n_tok);
bool model_llama_layers(const ob_model *m, model_backend *be, model_buffers *buf,
                        const model_step *s);

/* Llama 3.1 RoPE frequency divisors (n_rot / 2 of them into out) from rope.scaling.factor,
 * low_freq_factor, high_freq_factor and original_context_length, as the Llama 3.1 reference
 * computes them. */
void model_llama3_rope_factors(float base, int64_t n_rot, float factor, float lo_f, float hi_f,
                               float orig_ctx, float *out);

/* gemma3.c, qwen3moe.c */
void model_gemma3_embed(const ob_model *m, model_backend *be, model_buffers *buf,
                        const model_step *s);
bool model_gemma3_layers(const ob_model *m, model_backend *be, model_buffers *buf,
                         const model_step *s);
bool model_qwen3moe_layers(const ob_model *m, model_backend *be, model_buffers *buf,
                           const model_step *s);

/* qwen35.c: Qwen3.5, Gated DeltaNet layers and gated full attention, with a dense FFN
 * (qwen35) or a mixture of experts with a gated shared expert (qwen35moe, qwen3next; the
 * file's comment says where qwen3next differs). */
bool model_qwen35_layers(const ob_model *m, model_backend *be, model_buffers *buf,
                         const model_step *s);

/* The embedding and layer functions of the model's architecture. */
model_embed_fn model_embed_of(const ob_model *m);
model_layers_fn model_layers_of(const ob_model *m);

/* context.c: bytes of the context's K and V cache (the figure its backend allocated). */
size_t model_context_kv_bytes(const ob_context *c);

#endif
