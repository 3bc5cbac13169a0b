/*
 * The one binder of every family's tensors (family.h): the global tensors, then for each
 * layer its kinds from the hyperparameters and the rows of the family's table those kinds
 * hold, each checked against the shape its row gives. Freeing walks the same table.
 */
#include "model/family.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>

int64_t model_dim_value(const model_hparams *hp, model_dim d) {
    const int64_t ds = hp->ssm_d_state, nv = hp->ssm_n_v_head;
    switch (d) {
    case MODEL_DIM_ONE: return 1;
    case MODEL_DIM_EMBD: return hp->n_embd;
    case MODEL_DIM_FF: return hp->n_ff;
    case MODEL_DIM_HEAD: return hp->head_dim;
    case MODEL_DIM_Q: return hp->n_head * hp->head_dim;
    case MODEL_DIM_Q_GATED: return 2 * hp->n_head * hp->head_dim;
    case MODEL_DIM_KV: return hp->n_head_kv * hp->head_dim;
    case MODEL_DIM_SSM_CONV: return (2 * hp->ssm_n_k_head + nv) * ds;
    case MODEL_DIM_SSM_KERNEL: return hp->ssm_conv;
    case MODEL_DIM_SSM_VALUE: return nv * ds;
    case MODEL_DIM_SSM_HEADS: return nv;
    case MODEL_DIM_SSM_HEADS2: return 2 * nv;
    case MODEL_DIM_SSM_STATE: return ds;
    case MODEL_DIM_EXPERTS: return hp->moe.n_expert;
    case MODEL_DIM_FF_EXP: return hp->moe.n_ff_exp;
    case MODEL_DIM_FF_SHEXP: return hp->moe.n_ff_shexp;
    }
    return 0;
}

static bool row_applies(const model_tensor_row *r, const model_layer *l) {
    return (r->on & MODEL_MIXER_BIT(l->kind)) && (r->on & MODEL_FFN_BIT(l->ffn));
}

/* The field a row fills in layer l. */
static void *row_field(const model_tensor_row *r, model_layer *l) {
    return r->in_moe ? (char *)&l->moe->ffn + r->field : (char *)l + r->field;
}

/* Whether an earlier row (an optional alternative form) filled the field already. */
static bool row_bound(const model_tensor_row *r, void *field) {
    switch (r->form) {
    case MODEL_FORM_MATRIX: return ((const model_weight *)field)->data != NULL;
    case MODEL_FORM_VECTOR: return *(float **)field != NULL;
    case MODEL_FORM_EXPERTS:
    case MODEL_FORM_EXPERTS_GATE_UP: return (*(const model_weight **)field)[0].data != NULL;
    }
    return false;
}

static ob_status bind_row(ob_model *m, const model_tensor_row *r, const char *name,
                          model_layer *l, void *field, ob_err *err) {
    const int64_t d0 = model_dim_value(&m->hp, r->d0), d1 = model_dim_value(&m->hp, r->d1);
    switch (r->form) {
    case MODEL_FORM_MATRIX: {
        ob_status st = model_bind_matrix(m, name, d0, d1, field, err);
        /* a MoE block's router and shared expert: placed with the experts (moe_host.h) */
        if (!st && r->in_moe) ((model_weight *)field)->moe = true;
        return st;
    }
    case MODEL_FORM_VECTOR: return model_bind_vector_2d(m, name, d0, d1, field, err);
    case MODEL_FORM_EXPERTS: {
        /* the views are the layer's (model_moe_layer), only the block's pointer is const */
        model_weight *views[1] = {(model_weight *)*(const model_weight **)field};
        return model_moe_bind_experts(m, name, d0, d1, 1, views, err);
    }
    case MODEL_FORM_EXPERTS_GATE_UP: {
        model_weight *views[2] = {(model_weight *)l->moe->ffn.gate,
                                  (model_weight *)l->moe->ffn.up};
        return model_moe_bind_experts(m, name, d0, d1, 2, views, err);
    }
    }
    return ob_fail(err, OB_ERR_ARG, "%s: tensor '%s': no such form", gguf_name(m->file), name);
}

ob_status model_bind_layer_rows(ob_model *m, const model_tensor_row *const *groups, int64_t il,
                                model_layer *l, ob_err *err) {
    ob_status st;
    char name[128];
    for (const model_tensor_row *const *g = groups; *g; g++) {
        for (const model_tensor_row *r = *g; r->suffix; r++) {
            if (!row_applies(r, l)) continue;
            void *field = row_field(r, l);
            if (row_bound(r, field)) continue;
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, r->suffix);
            if (r->optional && !gguf_tensor_find(m->file, name)) continue;
            if ((st = bind_row(m, r, name, l, field, err))) return st;
        }
    }
    return OB_OK;
}

static ob_status bind_layer(ob_model *m, const model_family *f, int64_t il, model_layer *l,
                            ob_err *err) {
    ob_status st;
    if (l->ffn == MODEL_FFN_MOE && (st = model_moe_layer_new(m, &l->moe, err))) return st;
    return model_bind_layer_rows(m, f->table, il, l, err);
}

ob_status model_bind_all(ob_model *m, const model_family *f, ob_err *err) {
    model_hparams *hp = &m->hp;
    const gguf_tensor *te = gguf_tensor_find(m->file, "token_embd.weight");
    if (!te)
        return ob_fail(err, OB_ERR_FORMAT, "%s: tensor 'token_embd.weight' not found",
                       gguf_name(m->file));
    hp->n_vocab = te->ne[1];
    ob_status st = model_bind_matrix(m, "token_embd.weight", hp->n_embd, hp->n_vocab,
                                     &m->w.tok_embd, err);
    if (!st) st = model_bind_vector(m, "output_norm.weight", hp->n_embd, &m->w.output_norm, err);
    if (st) return st;
    hp->flags.tied_output = gguf_tensor_find(m->file, "output.weight") == NULL;
    if (hp->flags.tied_output) m->w.output = m->w.tok_embd;
    else if ((st = model_bind_matrix(m, "output.weight", hp->n_embd, hp->n_vocab, &m->w.output,
                                     err)))
        return st;
    m->w.layers = ob_calloc((size_t)hp->n_layer, sizeof *m->w.layers);
    if (!m->w.layers) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    for (int64_t il = 0; il < hp->n_layer; il++) {
        model_layer *l = &m->w.layers[il];
        l->kind = hp->recurrent && hp->recurrent[il] ? MODEL_LAYER_DELTANET
                  : hp->swa && hp->swa[il]           ? MODEL_LAYER_SLIDING
                                                     : MODEL_LAYER_ATTENTION;
        l->ffn = hp->moe.n_expert > 0 ? MODEL_FFN_MOE : MODEL_FFN_DENSE;
        if ((st = bind_layer(m, f, il, l, err))) return st;
    }
    return OB_OK;
}

void model_layers_free(ob_model *m, const model_family *f) {
    for (int64_t il = 0; m->w.layers && il < m->hp.n_layer; il++) {
        model_layer *l = &m->w.layers[il];
        for (const model_tensor_row *const *g = f->table; *g; g++) {
            for (const model_tensor_row *r = *g; r->suffix; r++) {
                if (r->form != MODEL_FORM_VECTOR || r->in_moe) continue;
                /* two rows may fill one field (alternative forms): free it once */
                float **v = row_field(r, l);
                ob_free(*v);
                *v = NULL;
            }
        }
        model_moe_layer_free(l->moe);
        l->moe = NULL;
    }
}
