/*
 * A model family as data: its name as general.architecture spells it, a function that reads
 * its hyperparameters, a table of the tensors each layer holds, and its forward functions.
 * One binder (family.c) walks the table for every layer, checking each tensor's shape against
 * the hyperparameters; freeing walks the same table. A new family is one file that defines a
 * model_family (reusing the rows its kin share), named in model.c's list and model_arch.
 *
 * A row names a tensor by its suffix ("attn_q.weight" is blk.N.attn_q.weight), the field it
 * fills, its form, its shape as expressions of the hyperparameters, and the layer kinds it
 * belongs to: a layer has a token mixer (model_layer_kind: full attention, sliding window,
 * DeltaNet) and a feed-forward half (model_ffn_kind: dense or mixture of experts), set from
 * the hyperparameters before binding, and takes the rows of both of its kinds.
 */
#ifndef OB_MODEL_FAMILY_H
#define OB_MODEL_FAMILY_H

#include "model/model.h"

#include <stdbool.h>
#include <stddef.h>

/* The sizes a tensor dimension can have (model_dim_value gives each from model_hparams). */
typedef enum model_dim {
    MODEL_DIM_ONE = 0,
    MODEL_DIM_EMBD,       /* n_embd */
    MODEL_DIM_FF,         /* n_ff */
    MODEL_DIM_HEAD,       /* head_dim */
    MODEL_DIM_Q,          /* n_head * head_dim */
    MODEL_DIM_Q_GATED,    /* 2 n_head * head_dim: per head, q then its output gate */
    MODEL_DIM_KV,         /* n_head_kv * head_dim */
    MODEL_DIM_SSM_CONV,   /* (2 ssm_n_k_head + ssm_n_v_head) ssm_d_state: DeltaNet q, k, v */
    MODEL_DIM_SSM_KERNEL, /* ssm_conv: taps of the causal convolution */
    MODEL_DIM_SSM_VALUE,  /* ssm_n_v_head * ssm_d_state */
    MODEL_DIM_SSM_HEADS,  /* ssm_n_v_head */
    MODEL_DIM_SSM_HEADS2, /* 2 ssm_n_v_head: beta and alpha from one projection */
    MODEL_DIM_SSM_STATE,  /* ssm_d_state */
    MODEL_DIM_EXPERTS,    /* moe.n_expert */
    MODEL_DIM_FF_EXP,     /* moe.n_ff_exp: one expert's hidden width */
    MODEL_DIM_FF_SHEXP,   /* moe.n_ff_shexp: the shared expert's */
} model_dim;

int64_t model_dim_value(const model_hparams *hp, model_dim d);

/* Which layers take a row: a bit per token mixer and per feed-forward kind; a layer takes the
 * row when the bits of both its kinds are set. */
#define MODEL_MIXER_BIT(kind) (1u << (kind))
#define MODEL_FFN_BIT(kind) (1u << (8 + (kind)))
#define MODEL_ANY_MIXER                                                                         \
    (MODEL_MIXER_BIT(MODEL_LAYER_ATTENTION) | MODEL_MIXER_BIT(MODEL_LAYER_SLIDING) |            \
     MODEL_MIXER_BIT(MODEL_LAYER_DELTANET))
#define MODEL_ANY_FFN (MODEL_FFN_BIT(MODEL_FFN_DENSE) | MODEL_FFN_BIT(MODEL_FFN_MOE))
#define MODEL_ON_ALL (MODEL_ANY_MIXER | MODEL_ANY_FFN)
#define MODEL_ON_ATTENTION                                                                      \
    (MODEL_MIXER_BIT(MODEL_LAYER_ATTENTION) | MODEL_MIXER_BIT(MODEL_LAYER_SLIDING) |            \
     MODEL_ANY_FFN)
#define MODEL_ON_DELTANET (MODEL_MIXER_BIT(MODEL_LAYER_DELTANET) | MODEL_ANY_FFN)
#define MODEL_ON_DENSE (MODEL_ANY_MIXER | MODEL_FFN_BIT(MODEL_FFN_DENSE))
#define MODEL_ON_MOE (MODEL_ANY_MIXER | MODEL_FFN_BIT(MODEL_FFN_MOE))

typedef enum model_tensor_form {
    MODEL_FORM_MATRIX,  /* model_weight: a view of the file, [d0 -> d1] (ne [d0, d1]) */
    MODEL_FORM_VECTOR,  /* float * owned by the model: an F32 copy of ne [d0, d1] */
    MODEL_FORM_EXPERTS, /* const model_weight * to n_expert views of [d0, d1, n_expert] */
    MODEL_FORM_EXPERTS_GATE_UP, /* the gate and up views from one [d0, 2 d1, n_expert], gate
                                   in the first d1 rows of each expert (field: the gate's) */
} model_tensor_form;

typedef struct model_tensor_row {
    const char *suffix;     /* blk.N.<suffix>; NULL ends a group of rows */
    size_t field;           /* offsetof in model_layer, or in model_moe_block when in_moe */
    model_tensor_form form;
    model_dim d0, d1;       /* ne[0], ne[1] */
    unsigned on;            /* MODEL_ON_*: the layer kinds that hold the tensor */
    bool in_moe;            /* the field is the layer's MoE block's */
    bool optional;          /* absent: skipped. A row whose field an earlier row bound is
                               skipped too, so an optional form followed by the usual one
                               reads "this one if present, else that one". */
} model_tensor_row;

#define MODEL_ROW(suffix, form, field, d0, d1, on)                                              \
    {suffix, offsetof(model_layer, field), form, d0, d1, on, false, false}
#define MODEL_MATRIX(suffix, field, d0, d1, on)                                                 \
    MODEL_ROW(suffix, MODEL_FORM_MATRIX, field, d0, d1, on)
#define MODEL_VECTOR(suffix, field, d0, on)                                                     \
    MODEL_ROW(suffix, MODEL_FORM_VECTOR, field, d0, MODEL_DIM_ONE, on)
#define MODEL_MOE_ROW(suffix, form, field, d0, d1, optional)                                    \
    {suffix, offsetof(model_moe_block, field), form, d0, d1, MODEL_ON_MOE, true, optional}
#define MODEL_MOE_MATRIX(suffix, field, d0, d1)                                                 \
    MODEL_MOE_ROW(suffix, MODEL_FORM_MATRIX, field, d0, d1, false)
#define MODEL_EXPERTS(suffix, field, d0, d1)                                                    \
    MODEL_MOE_ROW(suffix, MODEL_FORM_EXPERTS, field, d0, d1, false)
#define MODEL_ROWS_END {NULL, 0, MODEL_FORM_MATRIX, MODEL_DIM_ONE, MODEL_DIM_ONE, 0, false, false}

typedef struct model_family {
    const char *name;  /* general.architecture */
    model_arch arch;
    /* reads m->hp (and the global tensors that are hyperparameters, such as rope_freqs) */
    ob_status (*read_hparams)(ob_model *m, ob_err *err);
    const model_tensor_row *const *table; /* NULL-terminated groups of rows, bound in order */
    model_embed_fn embed;
    model_layers_fn layers;
    /* binds what the table does not, after it (qwen35's multi-token-prediction block), or NULL */
    ob_status (*bind_extra)(ob_model *m, ob_err *err);
} model_family;

/* Binds token_embd (n_vocab from its shape), output_norm, output (tied to token_embd when the
 * file has none), then every layer's rows of f->table: the layer's kinds set from m->hp, its
 * MoE block allocated when it has one. Errors name the tensor and the file, a missing one
 * with its expected shape, a misshapen one with the shape found and the one expected. */
ob_status model_bind_all(ob_model *m, const model_family *f, ob_err *err);

/* Binds the rows of groups (NULL-terminated) that layer l's kinds hold, under blk.<il>., into
 * l (its MoE block allocated already when l->ffn is MODEL_FFN_MOE), as model_bind_all does for
 * each layer of the stack; a block past the stack (qwen35's MTP block) binds its own this way.
 * Errors as model_bind_all's; vectors bound are l's to free. */
ob_status model_bind_layer_rows(ob_model *m, const model_tensor_row *const *groups, int64_t il,
                                model_layer *l, ob_err *err);

/* Frees what binding allocated in the layers (the vectors of f->table, the MoE blocks). */
void model_layers_free(ob_model *m, const model_family *f);

/* The rows the llama family's kin share (llama.c): attention norm, q, k, v, output and FFN
 * norm; the dense SwiGLU FFN; per-head q/k RMSNorm weights. The mixture-of-experts block
 * (moe.c): router and experts; the shared expert and its gate. */
extern const model_tensor_row MODEL_ROWS_LLAMA[];
extern const model_tensor_row MODEL_ROWS_SWIGLU[];
extern const model_tensor_row MODEL_ROWS_QK_NORM[];
extern const model_tensor_row MODEL_ROWS_MOE[];
extern const model_tensor_row MODEL_ROWS_SHARED_EXPERT[];

/* The families (their files), as model.c lists them. */
extern const model_family MODEL_FAMILY_LLAMA, MODEL_FAMILY_QWEN2, MODEL_FAMILY_QWEN3,
    MODEL_FAMILY_GEMMA3, MODEL_FAMILY_QWEN3MOE, MODEL_FAMILY_QWEN35, MODEL_FAMILY_QWEN35MOE,
    MODEL_FAMILY_QWEN3NEXT;

#endif
