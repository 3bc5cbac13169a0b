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

/* Cuts the 3-D tensor `name`, [n_in, parts * n_out, n_expert], into views: part p of expert e
 * is out[p][e], rows p * n_out.. of that expert's slab. */
static ob_status bind_experts(ob_model *m, const char *name, int64_t n_in, int64_t n_out,
                              int parts, model_weight *const *out, ob_err *err) {
    const int64_t ne = m->hp.moe.n_expert;
    const gguf_tensor *t = gguf_tensor_find(m->file, name);
    if (!t)
        return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s' not found (expected [%lld, %lld, "
                       "%lld])", gguf_name(m->file), name, (long long)n_in,
                       (long long)(parts * n_out), (long long)ne);
    if (t->ne[0] != n_in || t->ne[1] != parts * n_out || t->ne[2] != ne || t->ne[3] != 1)
        return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s': shape [%lld, %lld, %lld, %lld], "
                       "expected [%lld, %lld, %lld]", gguf_name(m->file), name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)n_in, (long long)(parts * n_out),
                       (long long)ne);
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
                                .data = (const char *)t->data + (size_t)e * slab +
                                        (size_t)p * (size_t)n_out * row_size};
            ob_status st = model_weight_register(m, w, err);
            if (st) return st;
        }
    }
    return OB_OK;
}

static ob_status bind_shared(ob_model *m, int64_t il, model_moe_block *f, ob_err *err) {
    const int64_t e = m->hp.n_embd, ff = f->n_ff_sh;
    char name[96];
    ob_status st;
#define MATRIX(field, suffix, n_in, n_out)                                                      \
    snprintf(name, sizeof name, "blk.%lld." suffix, (long long)il);                             \
    if ((st = model_bind_matrix(m, name, n_in, n_out, &f->field, err))) return st
    MATRIX(sh_gate_w, "ffn_gate_inp_shexp.weight", e, 1);
    MATRIX(sh_gate, "ffn_gate_shexp.weight", e, ff);
    MATRIX(sh_up, "ffn_up_shexp.weight", e, ff);
    MATRIX(sh_down, "ffn_down_shexp.weight", ff, e);
#undef MATRIX
    f->sh_gate_w.moe = f->sh_gate.moe = f->sh_up.moe = f->sh_down.moe = true;
    return OB_OK;
}

ob_status model_moe_bind_layer(ob_model *m, int64_t il, ob_err *err) {
    const model_moe_hparams *mo = &m->hp.moe;
    const int64_t e = m->hp.n_embd, ne = mo->n_expert, ff = mo->n_ff_exp;
    model_moe_layer *l = ob_calloc(1, sizeof *l);
    if (!l) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    m->w.layers[il].moe = l;
    l->views = ob_calloc((size_t)(3 * ne), sizeof *l->views);
    if (!l->views) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    model_moe_block *f = &l->ffn;
    *f = (model_moe_block){.n_expert = ne, .n_used = mo->n_expert_used, .n_embd = e, .n_ff = ff,
                   .norm = mo->norm_w, .scale = mo->w_scale, .gate = l->views,
                   .up = l->views + ne, .down = l->views + 2 * ne, .n_ff_sh = mo->n_ff_shexp};
    char name[96];
    ob_status st;
    snprintf(name, sizeof name, "blk.%lld.ffn_gate_inp.weight", (long long)il);
    if ((st = model_bind_matrix(m, name, e, ne, &f->router, err))) return st;
    f->router.moe = true;
    model_weight *gate_up[2] = {l->views, l->views + ne}, *down[1] = {l->views + 2 * ne};
    snprintf(name, sizeof name, "blk.%lld.ffn_gate_up_exps.weight", (long long)il);
    if (gguf_tensor_find(m->file, name)) {
        if ((st = bind_experts(m, name, e, ff, 2, gate_up, err))) return st;
    } else {
        snprintf(name, sizeof name, "blk.%lld.ffn_gate_exps.weight", (long long)il);
        if ((st = bind_experts(m, name, e, ff, 1, &gate_up[0], err))) return st;
        snprintf(name, sizeof name, "blk.%lld.ffn_up_exps.weight", (long long)il);
        if ((st = bind_experts(m, name, e, ff, 1, &gate_up[1], err))) return st;
    }
    snprintf(name, sizeof name, "blk.%lld.ffn_down_exps.weight", (long long)il);
    if ((st = bind_experts(m, name, ff, e, 1, down, err))) return st;
    return f->n_ff_sh > 0 ? bind_shared(m, il, f, err) : OB_OK;
}

void model_moe_free(ob_model *m) {
    if (!m->w.layers) return;
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        model_moe_layer *l = m->w.layers[il].moe;
        if (!l) continue;
        /* views past each tensor's start have repacked copies of their own */
        for (int64_t i = 0; l->views && i < 3 * m->hp.moe.n_expert; i++)
            if (l->views[i].data) cpu_weight_release(l->views[i].data);
        ob_free(l->views);
        ob_free(l);
        m->w.layers[il].moe = NULL;
    }
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
