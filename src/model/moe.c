/*
 * Loading mixture-of-experts blocks (moe.h): hyperparameters from metadata only, range-checked
 * before anything is sized by them; the experts' 3-D tensors checked against them and cut into
 * one model_weight per expert and matrix, each a view of the mapped file (the CPU kernels may
 * give a view a repacked copy, as for any weight).
 */
#include "model/moe.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cpu/matmul.h"
#include "cpu/moe.h"
#include "model/family.h"
#include "model/model.h"
#include "model/moe_host.h"
#include "quant/quant.h"

#include <stdio.h>

ob_status model_moe_read_hparams(ob_model *m, bool shared, ob_err *err) {
    model_hparams *hp = &m->hp;
    model_moe_hparams *mo = &hp->moe;
    ob_status st;
    if ((st = model_key_i64(m, "expert_count", &mo->n_expert, err)) ||
        (st = model_key_i64(m, "expert_used_count", &mo->n_expert_used, err)))
        return st;
    if (mo->n_expert < 1 || mo->n_expert > CPU_MOE_MAX_EXPERTS || mo->n_expert_used < 1 ||
        mo->n_expert_used > mo->n_expert)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s.expert_count %lld, expert_used_count %lld: "
                       "expected 1 <= expert_used_count <= expert_count <= %d",
                       gguf_name(m->file), hp->arch_name, (long long)mo->n_expert,
                       (long long)mo->n_expert_used, CPU_MOE_MAX_EXPERTS);
    if ((st = model_key_i64_or(m, "expert_feed_forward_length", hp->n_ff / mo->n_expert_used,
                               &mo->n_ff_exp, err)) ||
        (st = model_key_i64_or(m, "expert_shared_feed_forward_length", shared ? hp->n_ff : 0,
                               &mo->n_ff_shexp, err)))
        return st;
    if (mo->n_ff_exp < 1 || mo->n_ff_exp > MODEL_MAX_EXPERT_FF || mo->n_ff_shexp < 0 ||
        mo->n_ff_shexp > MODEL_MAX_EXPERT_FF || (shared && mo->n_ff_shexp == 0))
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s.expert_feed_forward_length %lld, "
                       "expert_shared_feed_forward_length %lld: expected 1..%d",
                       gguf_name(m->file), hp->arch_name, (long long)mo->n_ff_exp,
                       (long long)mo->n_ff_shexp, MODEL_MAX_EXPERT_FF);
    if (!shared) mo->n_ff_shexp = 0;
    char key[96];
    snprintf(key, sizeof key, "%s.expert_weights_scale", hp->arch_name);
    mo->w_scale = 0.0f;
    if (gguf_kv_find(m->file, key) &&
        (st = model_key_f32_in(m, "expert_weights_scale", 0.0f, 0.0f, 1e6f, &mo->w_scale, err)))
        return st;
    return OB_OK;
}

/* ---- tensors --------------------------------------------------------------------------- */

ob_status model_moe_bind_experts(ob_model *m, const char *name, int64_t n_in, int64_t n_out,
                                 int parts, model_weight *const *out, ob_err *err) {
    const int64_t ne = m->hp.moe.n_expert;
    const gguf_tensor *t;
    ob_status st = model_tensor_shaped(m, name, 3, (const int64_t[]){n_in, parts * n_out, ne}, &t,
                                       err);
    if (st) return st;
    if (!quant_traits_get(t->type))
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: tensor '%s': type %s is not supported",
                       gguf_name(m->file), name, gguf_qtype_name(t->type));
    /* the parser sized the data as rows of ne[0] elements: nbytes = rows * row_size */
    const size_t row_size = t->nbytes / (size_t)(parts * n_out * ne);
    const size_t slab = row_size * (size_t)(parts * n_out);
    /* part by part, so each part's experts have consecutive ids (model_moe_block) */
    for (int p = 0; p < parts; p++) {
        for (int64_t e = 0; e < ne; e++) {
            model_weight *w = &out[p][e];
            *w = (model_weight){.name = t->name.ptr, .type = t->type, .n_in = n_in,
                                .n_out = n_out, .row_size = row_size, .moe = true,
                                .expert = true,
                                .data = (const char *)t->data + (size_t)e * slab +
                                        (size_t)p * (size_t)n_out * row_size};
            if ((st = model_weight_register(m, w, err))) return st;
        }
    }
    return OB_OK;
}

/* A layer's block: the router and the experts (ffn_gate_up_exps when the file merges gate
 * and up, else ffn_gate_exps and ffn_up_exps); then, for families that have one, the shared
 * expert and its gate. */
const model_tensor_row MODEL_ROWS_MOE[] = {
    MODEL_MOE_MATRIX("ffn_gate_inp.weight", router, MODEL_DIM_EMBD, MODEL_DIM_EXPERTS),
    MODEL_MOE_ROW("ffn_gate_up_exps.weight", MODEL_FORM_EXPERTS_GATE_UP, gate, MODEL_DIM_EMBD,
                  MODEL_DIM_FF_EXP, true),
    MODEL_EXPERTS("ffn_gate_exps.weight", gate, MODEL_DIM_EMBD, MODEL_DIM_FF_EXP),
    MODEL_EXPERTS("ffn_up_exps.weight", up, MODEL_DIM_EMBD, MODEL_DIM_FF_EXP),
    MODEL_EXPERTS("ffn_down_exps.weight", down, MODEL_DIM_FF_EXP, MODEL_DIM_EMBD),
    MODEL_ROWS_END,
};

const model_tensor_row MODEL_ROWS_SHARED_EXPERT[] = {
    MODEL_MOE_MATRIX("ffn_gate_inp_shexp.weight", sh_gate_w, MODEL_DIM_EMBD, MODEL_DIM_ONE),
    MODEL_MOE_MATRIX("ffn_gate_shexp.weight", sh_gate, MODEL_DIM_EMBD, MODEL_DIM_FF_SHEXP),
    MODEL_MOE_MATRIX("ffn_up_shexp.weight", sh_up, MODEL_DIM_EMBD, MODEL_DIM_FF_SHEXP),
    MODEL_MOE_MATRIX("ffn_down_shexp.weight", sh_down, MODEL_DIM_FF_SHEXP, MODEL_DIM_EMBD),
    MODEL_ROWS_END,
};

ob_status model_moe_layer_new(ob_model *m, model_moe_layer **out, ob_err *err) {
    const model_moe_hparams *mo = &m->hp.moe;
    const int64_t ne = mo->n_expert;
    model_moe_layer *l = *out = ob_calloc(1, sizeof *l);
    if (!l) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    l->views = ob_calloc((size_t)(3 * ne), sizeof *l->views);
    if (!l->views) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    l->ffn = (model_moe_block){.n_expert = ne, .n_used = mo->n_expert_used,
                               .n_embd = m->hp.n_embd, .n_ff = mo->n_ff_exp, .norm = mo->norm_w,
                               .scale = mo->w_scale, .gate = l->views, .up = l->views + ne,
                               .down = l->views + 2 * ne, .n_ff_sh = mo->n_ff_shexp};
    return OB_OK;
}

void model_moe_layer_free(model_moe_layer *l) {
    if (!l) return;
    /* views past each tensor's start have repacked copies of their own */
    for (int64_t i = 0; l->views && i < 3 * l->ffn.n_expert; i++)
        if (l->views[i].data) cpu_weight_release(l->views[i].data);
    ob_free(l->views);
    ob_free(l);
}

void model_moe_ffn(const ob_model *m, model_backend *be, float *out, const float *xn,
                   int64_t il, int64_t n_tok) {
    (void)m;
    if (be->moe_host) model_moe_host_ffn(be->moe_host, be, il, out, xn, n_tok);
    else be->ops->moe_ffn(be, il, out, xn, n_tok);
}

void model_moe_shape(const ob_model *m, model_backend_shape *shape) {
    const model_moe_hparams *mo = &m->hp.moe;
    shape->n_embd = m->hp.n_embd;
    shape->n_expert = mo->n_expert;
    shape->n_expert_used = mo->n_expert_used;
    shape->n_ff_exp = mo->n_ff_exp;
    shape->n_ff_shexp = mo->n_ff_shexp;
}
