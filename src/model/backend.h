/*
 * The op table a backend implements so model code can run on it. A backend owns a contiguous
 * range of layers: their KV cache and whatever copy of their weights it needs. Model code
 * (llama.c and its kin) calls only these ops, so a CUDA backend, or any other, runs the same
 * forward step by filling the same table; only the hidden state (n_tok, n_embd) f32 crosses
 * between backends, once per range per step.
 *
 * Activations are host-addressable F32 buffers that the backend may hand out
 * (model_backend_ops.host_buf), so a device backend can return memory its device reads and
 * writes directly and keep the whole range on the device; such a backend records ops and runs
 * them later, so the host reads activations only after ops.sync.
 */
#ifndef OB_MODEL_BACKEND_H
#define OB_MODEL_BACKEND_H

#include "model/kv_pool.h"
#include "model/weight.h"
#include "outboard.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct model_backend model_backend;

/* Where the rows of one forward pass live in the KV cache and what each one sees. Rows may
 * belong to different sequences in any order; a sequence's rows continue it in order, so after
 * kv_store every position a row attends to is in the cache. Everything is borrowed for the
 * pass. */
typedef struct model_kv_batch {
    int64_t n_tok;
    const int32_t *pos;           /* (n_tok) position of row t within its sequence */
    const int32_t *seq;           /* (n_tok) its sequence (selects a sliding-window ring) */
    const int32_t *slot;          /* (n_tok) its pool row: block * KV_BLOCK + pos % KV_BLOCK */
    const int32_t *const *blocks; /* (n_tok) its sequence's block table (kv_pool) */
    int64_t n_kv;                 /* largest pos + 1 over the rows */
    const bool *stepwise;         /* (n_seq) or NULL: the sequence's rows are a speculative
                                     verification (every row's logits wanted) or its replay,
                                     whose recurrences run token by token as one-row decode
                                     steps do, so the state after them is plain decoding's */
} model_kv_batch;

/* The weights of one Gated DeltaNet layer that the deltanet op reads: host F32 vectors owned
 * by the model. */
typedef struct model_dnet_weights {
    const float *conv;    /* (conv_dim, conv_kernel) depthwise causal convolution */
    const float *dt_bias; /* (n_v_head) added to alpha before the softplus */
    const float *a;       /* (n_v_head) -exp(A_log): g = a * softplus(alpha + dt_bias) */
    const float *norm;    /* (d_state) gated RMSNorm weight, shared by the heads */
    float eps;            /* of the L2 norms of q and k and of the gated RMSNorm */
    bool grouped_heads;   /* value head h reads key head h / (n_v_head / n_k_head), the value
                             heads of a key head adjacent (qwen3next); else h % n_k_head, the
                             value heads tiling the key heads (qwen35, qwen35moe) */
} model_dnet_weights;

/* Rotary position embedding of one layer. */
typedef struct model_rope {
    int64_t n_dims;            /* rotated dims per head (<= head_dim; the rest pass through) */
    float freq_base;           /* theta_i = pos * base^(-2i/n_dims) */
    float freq_scale;          /* linear position scaling (1 = none) */
    const float *freq_factors; /* (n_dims/2) divisors of theta (Llama 3 rope_freqs), or NULL */
    bool neox;                 /* pairs (i, i + n_dims/2) instead of (2i, 2i+1) */
} model_rope;

/* What a backend can do, filled when it is created; the context asks these rather than the
 * backend's name. Optional ops (moe_ffn, deltanet, ...) are capabilities by being non-NULL. */
typedef struct model_backend_caps {
    bool paged_kv;       /* cache rows at any pool slot through block tables: several sequences
                            in one batch, copy-on-write, a prefix cache */
    bool device_memory;  /* activations and weights live in a device's memory (host_buf hands
                            out memory the device reads in place) */
    int n_threads;       /* host threads it runs ops on, 0 for a device */
} model_backend_caps;

/* One product of model_backend_ops.matmul_many: y (n_tok, w->n_out) = x (n_tok, w->n_in) W^T. */
typedef struct model_matmul {
    float *y;
    const model_weight *w;
    const float *x;
} model_matmul;

typedef struct model_backend_ops {
    const char *name; /* "cpu", "vulkan", "cuda": for messages and reports only */

    /* out (n, w->n_in) f32 = rows ids of w (token embedding lookup). */
    void (*get_rows)(model_backend *be, const model_weight *w, const int32_t *ids, int64_t n,
                     float *out);
    /* out (n_rows, n) = rmsnorm(x) * w; out may alias x. */
    void (*rmsnorm)(model_backend *be, float *out, const float *x, const float *w,
                    int64_t n_rows, int64_t n, float eps);
    /* y (n_tok, w->n_out) = x (n_tok, w->n_in) W^T. */
    void (*matmul)(model_backend *be, float *y, const model_weight *w, const float *x,
                   int64_t n_tok);
    /* Optional (NULL: one matmul each, see model_matmuls): each y = x W^T of the same n_tok,
     * as matmul computes it, in one pass of the backend's threads where that is cheaper
     * (decode's q, k and v, or gate and up: products of a few microseconds each). */
    void (*matmul_many)(model_backend *be, const model_matmul *mm, int n, int64_t n_tok);
    /* In-place rotation of x (n_tok, n_head * head_dim); token t at position pos[t]. */
    void (*rope)(model_backend *be, float *x, int64_t n_tok, int64_t n_head, int64_t head_dim,
                 const int32_t *pos, const model_rope *rp);
    /* Writes k, v (kv->n_tok, n_head_kv * head_dim) f32 into layer il's cache as F16: row t
     * at its pool slot, or on a sliding-window layer in its sequence's ring. */
    void (*kv_store)(model_backend *be, int64_t il, const float *k, const float *v,
                     const model_kv_batch *kv);
    /* out (n_tok, n_head * head_dim) = causal attention of q (n_tok, n_head * head_dim): row t
     * over its sequence's positions 0..pos[t] of layer il (the last n_swa of them on a
     * sliding-window layer). */
    void (*attention)(model_backend *be, int64_t il, float *out, const float *q,
                      const model_kv_batch *kv, float scale);
    /* Copy-on-write: for each of the n copies, pool rows [0, n_rows) of block src into block
     * dst on every full-attention layer of the range. */
    void (*kv_copy)(model_backend *be, const kv_copy *copies, int64_t n);
    /* Fork: sequence dst's sliding-window rings become copies of src's. */
    void (*seq_copy)(model_backend *be, int32_t src, int32_t dst);
    /* out (n) = silu(gate) * up. */
    void (*swiglu)(model_backend *be, float *out, const float *gate, const float *up,
                   int64_t n);
    /* x (n) += y (n). */
    void (*add)(model_backend *be, float *x, const float *y, int64_t n);
    /* out (n) = gelu_tanh(gate) * up (Gemma's GeGLU). */
    void (*geglu)(model_backend *be, float *out, const float *gate, const float *up,
                  int64_t n);
    /* x (n) *= s. */
    void (*scale)(model_backend *be, float *x, int64_t n, float s);
    /* x (n_rows, n) += b (n) on every row; b is a host vector the model owns. */
    void (*add_bias)(model_backend *be, float *x, const float *b, int64_t n_rows, int64_t n);
    /* Optional (NULL on the CPU): waits until every op so far has run and returns the first
     * failure since the backend was made (copying its message into err), OB_OK if none. Ops
     * return nothing, so a device backend keeps its first failure for this. */
    ob_status (*sync)(model_backend *be, ob_err *err);
    /* Optional (NULL: the caller allocates): `bytes` of host-addressable memory the device
     * reads and writes in place, for the activation buffers; NULL when there is no room.
     * Valid until ops->free. */
    float *(*host_buf)(model_backend *be, size_t bytes);
    void (*free)(model_backend *be);
    /* out (n_tok, n_embd) = layer il's mixture-of-experts block (model_moe_block, bound
     * when the backend was made) of x (n_tok, n_embd). out must not alias x. NULL in a
     * backend without MoE kernels: contexts of MoE models then refuse that backend. */
    void (*moe_ffn)(model_backend *be, int64_t il, float *out, const float *x, int64_t n_tok);

    /* Optional (NULL: the backend cannot stream): y (n_tok, w->n_out) = x W^T for a weight
     * it does not hold (a layer of the host's), x and y in plain host memory: w's bytes are
     * copied into one device buffer kept for such weights (model_backend_shape.stream_bytes,
     * grown when a larger one comes), x goes over with them, and the op returns once y holds
     * the result (a failure is kept for ops.sync, y then left as it was). Weight streaming
     * (model/stream.h) counts what crossed. */
    void (*matmul_streamed)(model_backend *be, float *y, const model_weight *w, const float *x,
                            int64_t n_tok);

    /* ---- recurrent layers (Gated DeltaNet, the qwen35 family); a backend without them leaves
     * these NULL and ob_context_new refuses such an architecture on it ---- */

    /* The core of DeltaNet layer il for rows of any mix of sequences: qkv (n_tok, conv_dim)
     * raw projections, convolved in place over each sequence's conv state, then SiLU; q and k
     * heads L2-normalised (q scaled by 1/sqrt(d_state)); alpha (n_tok, n_v_head) becomes the
     * log decay g, beta (n_tok, n_v_head) its sigmoid; the delta rule per value head (reading
     * the key head w->grouped_heads names) over the sequence's state, chunked when a
     * sequence has several rows; out (n_tok, n_v_head * d_state) = rmsnorm(o) * norm *
     * silu(z) per head. A row at position 0 starts its sequence from a zero state. */
    void (*deltanet)(model_backend *be, int64_t il, float *out, float *qkv, const float *z,
                     float *alpha, float *beta, const model_kv_batch *kv,
                     const model_dnet_weights *w);
    /* Copies sequence src's recurrent state slot (0 = live, 1 = checkpoint) over dst's slot,
     * on every recurrent layer of the range (fork, checkpoint, restore). Sequence numbers
     * n_seq + i address snapshot i (model_backend_shape.n_rs_snap), slot 0 only. */
    void (*rs_copy)(model_backend *be, int32_t src, int src_slot, int32_t dst, int dst_slot);
    /* q (n_rows, hd), gate (n_rows, hd) from qg (n_rows, 2, hd): each head's q then its gate. */
    void (*split_gate)(model_backend *be, float *q, float *gate, const float *qg,
                       int64_t n_rows, int64_t hd);
    /* x (n) *= sigmoid(gate (n)). */
    void (*sigmoid_mul)(model_backend *be, float *x, const float *gate, int64_t n);
} model_backend_ops;

struct model_moe_host;
struct model_stream;

struct model_backend {
    const model_backend_ops *ops;
    model_backend_caps caps;
    int64_t layer_lo, layer_hi; /* layers [lo, hi) run here */
    struct model_moe_host *moe_host; /* borrowed, or NULL: the MoE blocks of these layers run
                                        on the host CPU through it (moe_host.h), not moe_ffn */
    struct model_stream *stream; /* borrowed, or NULL: on the CPU, products of enough rows run
                                    on a device through it (stream.h) */
};

/* The n products of mm over the same n_tok rows: in one pass where the backend offers it. */
static inline void model_matmuls(model_backend *be, const model_matmul *mm, int n,
                                 int64_t n_tok) {
    if (be->ops->matmul_many) {
        be->ops->matmul_many(be, mm, n, n_tok);
        return;
    }
    for (int i = 0; i < n; i++) be->ops->matmul(be, mm[i].y, mm[i].w, mm[i].x, n_tok);
}

/* Sizes a backend needs to allocate its cache and scratch. */
typedef struct model_backend_shape {
    const char *arch;    /* general.architecture, for messages */
    int64_t n_layer;     /* layers in this backend's range */
    int64_t n_layer_model; /* layers of the whole model */
    const model_backend_weights *weights; /* the model's weights, of which the backend binds
                                             those its range reads (borrowed) */
    model_weight_part part; /* which of them: all, all but the MoE blocks' (a device whose
                               layers run those on the host), or only those (the host's CPU
                               backend for them) */
    int64_t n_ctx;       /* positions one sequence may use */
    int64_t n_kv_rows;   /* rows of the KV pool (its blocks * KV_BLOCK): full-attention layers */
    int64_t n_seq;       /* sequences (each has its own ring on sliding-window layers) */
    int64_t n_swa;       /* sliding window (positions a query sees), 0 = none */
    const bool *swa;     /* borrowed (n_layer of the model, indexed by model layer): layer uses
                            the window; its cache is a ring of model_swa_rows(..) rows per
                            sequence */
    int64_t n_batch;     /* most tokens per forward pass */
    int64_t n_head, n_head_kv, head_dim;
    /* mixture-of-experts blocks (model_hparams.moe), all 0 for a dense model */
    int64_t n_embd, n_expert, n_expert_used, n_ff_exp, n_ff_shexp;
    const bool *recurrent; /* borrowed (n_layer of the model) or NULL: layer il is a Gated
                              DeltaNet layer, with recurrent state per sequence and no KV */
    int64_t ssm_conv, ssm_d_state, ssm_n_k_head, ssm_n_v_head; /* DeltaNet sizes */
    uint64_t stream_bytes; /* a device's buffer for streamed host weights (matmul_streamed),
                              made with the backend so its memory is checked then; 0 = none */
    int64_t n_rs_snap;   /* recurrent-state snapshots beside the sequences' slots, kept for
                            prefix reuse (rs_park.h) */
} model_backend_shape;

/* Whether model layer il is recurrent (no KV cache rows). */
static inline bool model_layer_is_recurrent(const model_backend_shape *s, int64_t il) {
    return s->recurrent && s->recurrent[il];
}

/* Channels of a DeltaNet layer's convolution: q, k (n_k_head each) and v (n_v_head). */
static inline int64_t model_dnet_conv_dim(const model_backend_shape *s) {
    return (2 * s->ssm_n_k_head + s->ssm_n_v_head) * s->ssm_d_state;
}

/* Floats of one sequence's state slot on one DeltaNet layer: the conv state (conv - 1,
 * conv_dim) and the delta-rule state (n_v_head, d_state, d_state). */
static inline int64_t model_dnet_slot_floats(const model_backend_shape *s) {
    return (s->ssm_conv - 1) * model_dnet_conv_dim(s) +
           s->ssm_n_v_head * s->ssm_d_state * s->ssm_d_state;
}

/* Bytes of recurrent state for layers [layer_lo, layer_lo + n_layer): two slots (live and
 * checkpoint) per sequence and one per snapshot, per DeltaNet layer, f32; what the CPU
 * backend allocates (0 when the size overflows or there is none). */
size_t model_rs_bytes(const model_backend_shape *s, int64_t layer_lo);

/* Cache rows of a sliding-window layer: the window plus one batch, so a batch never
 * overwrites a position one of its own queries still sees; at most n_ctx. */
static inline int64_t model_swa_rows(const model_backend_shape *s) {
    int64_t r = s->n_swa + s->n_batch;
    return r < s->n_ctx ? r : s->n_ctx;
}

/* Whether model layer il uses the sliding window. */
static inline bool model_layer_is_swa(const model_backend_shape *s, int64_t il) {
    return s->n_swa > 0 && s->swa && s->swa[il];
}

/* Rows of layer il's cache (il a model layer index in the shape's range): the pool, or one
 * ring per sequence. */
static inline int64_t model_layer_rows(const model_backend_shape *s, int64_t il) {
    if (model_layer_is_recurrent(s, il)) return 0;
    return model_layer_is_swa(s, il) ? s->n_seq * model_swa_rows(s) : s->n_kv_rows;
}

/* Bytes of F16 K and V cache for layers [layer_lo, layer_lo + n_layer): what the CPU backend
 * allocates (0 when the size overflows). */
size_t model_kv_bytes(const model_backend_shape *s, int64_t layer_lo);

/* Bytes of device memory a GPU backend running the MoE blocks of shape s takes for one pass's
 * routing and expert rows (n_batch tokens): router logits (n_expert), the chosen experts'
 * weights and ids (n_expert_used each), their gate and up rows (n_ff_exp each) and their
 * outputs (n_embd), all 4 bytes an element; 0 for a shape without them. */
uint64_t model_moe_device_bytes(const model_backend_shape *s);

/* Bytes of the weights of s->part of layers [layer_lo, layer_lo + s->n_layer) (backend_bind.c). */
uint64_t model_backend_weight_bytes(const model_backend_shape *s, int64_t layer_lo);

/* Binds one weight in a backend's own form (user: the backend). */
typedef ob_status (*model_bind_one_fn)(void *user, const model_weight *w, ob_err *err);

/* Calls bind for each weight of s->weights that layers [layer_lo, layer_lo + s->n_layer) read,
 * in id order, reporting progress in bytes; stops at the first failure, or with
 * OB_ERR_CANCELLED when the progress callback asks ("<who>: ... cancelled"). */
ob_status model_backend_bind_each(const model_backend_shape *s, int64_t layer_lo,
                                  const char *who, model_bind_one_fn bind, void *user,
                                  ob_err *err);

/* The CPU backend (backend_cpu.c): KV cache per layer, (model_layer_rows, n_head_kv *
 * head_dim) f16 for K and for V (the pool's rows, or a ring per sequence on sliding-window
 * layers), a thread pool of n_threads, and its layers' weights prepared for this CPU's
 * kernels (repacked where a layout exists; copies are shared by every context of the model).
 * *out owned by the caller (ops->free). */
ob_status model_backend_cpu_new(const model_backend_shape *shape, int64_t layer_lo,
                                int n_threads, model_backend **out, ob_err *err);

/* The CUDA backend (backend_cuda.c) on device `dev`: KV cache and its layers' weights in
 * device memory. Without a device: OB_ERR_UNSUPPORTED, "no CUDA device: ...". *out owned by
 * the caller (ops->free). */
ob_status model_backend_cuda_new(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                 model_backend **out, ob_err *err);

/* The CUDA backend's ops return nothing, so it keeps the first failure: this waits for the
 * device and returns that status (copying its message into err), OB_OK when all went well. */
ob_status model_backend_cuda_status(model_backend *be, ob_err *err);

/* The Vulkan backend (src/vulkan/vulkan_backend.c) on device `dev` of vulkan_devices_list
 * (-1: the first GPU). The weights its range reads are uploaded to device memory here, after
 * checking that they, the KV cache and the activations fit in the device's free memory
 * (OB_ERR_LIMIT giving both figures). Without Vulkan: OB_ERR_UNSUPPORTED, "no Vulkan ...".
 * *out owned by the caller (ops->free). */
ob_status model_backend_vulkan_new(const model_backend_shape *shape, int64_t layer_lo, int dev,
                                   model_backend **out, ob_err *err);

#endif
