/*
 * Mixture-of-experts feed-forward blocks as the model binds them: the hyperparameters from
 * "<arch>.expert_*" keys, and per layer the router (blk.N.ffn_gate_inp), the experts' 3-D
 * tensors (blk.N.ffn_{gate,up,down}_exps, or the merged blk.N.ffn_gate_up_exps with gate in
 * the first half of each expert's rows) viewed one expert at a time straight from the mapped
 * file, and the optional shared expert (blk.N.ffn_{gate,up,down}_shexp with its gate
 * blk.N.ffn_gate_inp_shexp). Any architecture's layer loop runs the block with model_moe_ffn.
 */
#ifndef OB_MODEL_MOE_H
#define OB_MODEL_MOE_H

#include "model/backend.h"
#include "outboard.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct model_moe_hparams {
    int64_t n_expert;      /* <arch>.expert_count, 0 = a dense model */
    int64_t n_expert_used; /* <arch>.expert_used_count, 1..n_expert */
    int64_t n_ff_exp;      /* <arch>.expert_feed_forward_length (default n_ff / n_expert_used) */
    int64_t n_ff_shexp;    /* <arch>.expert_shared_feed_forward_length, 0 = no shared expert */
    bool norm_w;           /* chosen weights renormalised to sum 1 (per architecture) */
    float w_scale;         /* <arch>.expert_weights_scale, 0 or 1 = none */
} model_moe_hparams;

/* One layer's block, and the expert views it points into. */
typedef struct model_moe_layer {
    model_moe_block ffn;  /* router, shared expert; gate/up/down point into views */
    model_weight *views;  /* (3 * n_expert) owned: gate views, then up, then down */
} model_moe_layer;

/* Most experts per token, and most expert width, the loader accepts. */
#define MODEL_MAX_EXPERT_FF (1 << 20)

/* Reads the expert hyperparameters into m->hp.moe (after the llama-style sizes): OB_ERR_FORMAT
 * naming the key when one is missing or out of range. `shared`: the architecture has a shared
 * expert whose width defaults to n_ff. norm_w is the architecture's to set (llama.cpp
 * renormalises for qwen3moe, qwen35moe and qwen3next alike, whatever the file says).
 *
 * A family with MoE layers calls, in its hyperparameter reader, this after the llama-style
 * sizes, and puts MODEL_ROWS_MOE (and MODEL_ROWS_SHARED_EXPERT) in its tensor table (family.h);
 * its layer loop calls model_moe_ffn on the normed input in place of the dense FFN. Contexts
 * size the backend's expert scratch from m->hp.moe (model_moe_shape) and refuse a backend
 * whose ops lack moe_ffn. */
ob_status model_moe_read_hparams(ob_model *m, bool shared, ob_err *err);

/* Allocates a layer's block into *out, sized by m->hp.moe, its expert views empty for the
 * table's rows to fill (model_bind_all does both for the stack's layers, the MTP block for its
 * own). *out is the caller's to free with model_moe_layer_free, even when this fails after
 * allocating it (OB_ERR_NOMEM). */
ob_status model_moe_layer_new(ob_model *m, model_moe_layer **out, ob_err *err);

/* Cuts the 3-D tensor `name`, [n_in, parts * n_out, n_expert], into views: part p of expert e
 * is out[p][e], rows p * n_out.. of that expert's slab. Errors name the tensor, its shape and
 * the one expected. */
ob_status model_moe_bind_experts(ob_model *m, const char *name, int64_t n_in, int64_t n_out,
                                 int parts, model_weight *const *out, ob_err *err);

/* Frees a layer's block and the repacked copies of its expert views; NULL is a no-op. */
void model_moe_layer_free(model_moe_layer *l);

/* out (n_tok, n_embd) = layer il's MoE block of xn (n_tok, n_embd), the normed input; out must
 * not alias xn. The FFN half of any family's layer loop with MoE layers: on be, or on the host
 * when be's layers keep their experts there (be->moe_host). */
void model_moe_ffn(const ob_model *m, model_backend *be, float *out, const float *xn,
                   int64_t il, int64_t n_tok);

/* Fills the MoE fields of a backend shape from the model (zeros when dense). */
void model_moe_shape(const ob_model *m, model_backend_shape *shape);

#endif
