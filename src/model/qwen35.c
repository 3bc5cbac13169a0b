/*
 * Architectures `qwen35` (Qwen3.5 dense models), `qwen35moe` (Qwen3.5-35B-A3B and kin) and
 * `qwen3next` (Qwen3-Next-80B-A3B): a hybrid of Gated DeltaNet (linear attention with a
 * recurrent state) and gated full attention. Of every full_attention_interval layers the last
 * is full attention (or attention.recurrent_layers marks the DeltaNet layers one by one):
 *
 *   x = embed(tokens)
 *   for each layer:
 *     h = rmsnorm(x)
 *     DeltaNet:  qkv = conv1d_causal(W_qkv h) then SiLU (conv state: the last kernel-1 inputs)
 *                q, k = l2norm per head (q / sqrt(d_state)); v
 *                g = ssm_a * softplus(W_alpha h + dt_bias), beta = sigmoid(W_beta h)
 *                o = delta rule per value head over the sequence's state
 *                x += W_out (rmsnorm(o) * ssm_norm * silu(W_gate h))
 *     attention: q | gate = W_q h (per head: q then its gate), k = W_k h, v = W_v h
 *                q, k = per-head rmsnorm, then NeoX RoPE over rope.dimension_count dims
 *                x += W_o (attention(q, k, v) * sigmoid(gate))
 *     x += Wdown (silu(Wgate rmsnorm_post(x)) * Wup rmsnorm_post(x))  (post_attention_norm)
 *          or, qwen35moe and qwen3next: x += moe(rmsnorm_post(x)), routed experts plus the
 *          shared expert scaled by its sigmoid gate (moe.h)
 *   logits = Wout rmsnorm(x)
 *
 * Where qwen3next files differ from qwen35moe ones (llama.cpp's qwen3next graph and loader):
 *   - beta and alpha come from one projection, blk.N.ssm_ba [n_embd, 2 n_v_head], laid out
 *     per key head: that key head's value heads' beta rows, then their alpha rows;
 *   - the value heads of a key head are adjacent (value head h reads key head h / (n_v /
 *     n_k)), where qwen35's converter reorders them to tile the key heads (h % n_k);
 *   - RoPE is plain NeoX over rope.dimension_count dims, no dimension_sections;
 *   - the converter adds 1 to every RMSNorm weight but ssm_norm's (the checkpoints store
 *     w - 1), so the file's norms are used as they are, the same as qwen35's.
 *
 * RoPE: llama.cpp rotates these heads with interleaved multi-axis RoPE (the vision-language
 * form), whose sections rope.dimension_sections name; for text the three position axes all
 * hold the token's position and the fourth holds 0, so a pair in the fourth section is not
 * rotated. That is NeoX RoPE with the fourth section's pairs left alone, which the frequency
 * divisors express (an infinite divisor: angle 0). Hyperparameters only from "qwen35.*".
 */
#include "model/family.h"
#include "model/model.h"
#include "model/qwen35_mtp.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define Q35_MAX_HEADS 1024
#define Q35_MAX_STATE 1024
#define Q35_MAX_CONV 16

/* ---- hyperparameters ------------------------------------------------------------------- */

static ob_status read_ssm(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    int64_t inner;
    ob_status st;
    if ((st = model_key_i64(m, "ssm.conv_kernel", &hp->ssm_conv, err)) ||
        (st = model_key_i64(m, "ssm.state_size", &hp->ssm_d_state, err)) ||
        (st = model_key_i64(m, "ssm.group_count", &hp->ssm_n_k_head, err)) ||
        (st = model_key_i64(m, "ssm.time_step_rank", &hp->ssm_n_v_head, err)) ||
        (st = model_key_i64(m, "ssm.inner_size", &inner, err)))
        return st;
    if (hp->ssm_conv < 1 || hp->ssm_conv > Q35_MAX_CONV || hp->ssm_d_state < 1 ||
        hp->ssm_d_state > Q35_MAX_STATE || hp->ssm_n_k_head < 1 ||
        hp->ssm_n_v_head > Q35_MAX_HEADS || hp->ssm_n_k_head > hp->ssm_n_v_head ||
        hp->ssm_n_v_head % hp->ssm_n_k_head || inner != hp->ssm_n_v_head * hp->ssm_d_state)
        return ob_fail(err, OB_ERR_FORMAT,
                       "%s: ssm keys out of range: conv_kernel %lld (1..%d), state_size %lld "
                       "(1..%d), group_count %lld, time_step_rank %lld (a multiple of "
                       "group_count, <= %d), inner_size %lld (expected time_step_rank * "
                       "state_size)", gguf_name(m->file), (long long)hp->ssm_conv, Q35_MAX_CONV,
                       (long long)hp->ssm_d_state, Q35_MAX_STATE, (long long)hp->ssm_n_k_head,
                       (long long)hp->ssm_n_v_head, Q35_MAX_HEADS, (long long)inner);
    return OB_OK;
}

/* Files with multi-token-prediction blocks count them in block_count and name how many in
 * nextn_predict_layers; they follow the main stack and are not run in the main pass (as in
 * llama.cpp), so the model is the layers before them. */
static ob_status skip_nextn(ob_model *m, int64_t *n_nextn, ob_err *err) {
    int64_t nextn;
    ob_status st = model_key_i64_or(m, "nextn_predict_layers", 0, &nextn, err);
    if (st) return st;
    if (nextn < 0 || nextn >= m->hp.n_layer)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s.nextn_predict_layers %lld, expected "
                       "0..%lld", gguf_name(m->file), m->hp.arch_name, (long long)nextn,
                       (long long)(m->hp.n_layer - 1));
    m->hp.n_layer -= nextn;
    *n_nextn = nextn;
    return OB_OK;
}

/* Which layers are DeltaNet: attention.recurrent_layers (one flag per layer), else every layer
 * but the last of each full_attention_interval (default 4, as llama.cpp). */
static ob_status read_kinds(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    hp->recurrent = ob_calloc((size_t)hp->n_layer, sizeof *hp->recurrent);
    if (!hp->recurrent) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    char key[96];
    snprintf(key, sizeof key, "%s.attention.recurrent_layers", hp->arch_name);
    const gguf_kv *kv = gguf_kv_find(m->file, key);
    if (kv) {
        if (kv->type != GGUF_VTYPE_ARRAY || kv->arr_type == GGUF_VTYPE_STRING ||
            kv->arr_len < (uint64_t)hp->n_layer)
            return ob_fail(err, OB_ERR_FORMAT, "%s: %s: expected an array of at least %lld "
                           "flags", gguf_name(m->file), key, (long long)hp->n_layer);
        for (int64_t il = 0; il < hp->n_layer; il++)
            hp->recurrent[il] = gguf_arr_i64(kv, (uint64_t)il) != 0;
        return OB_OK;
    }
    int64_t every;
    ob_status st = model_key_i64_or(m, "full_attention_interval", 4, &every, err);
    if (st) return st;
    if (every < 1 || every > hp->n_layer)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s.full_attention_interval %lld, expected "
                       "1..%lld", gguf_name(m->file), hp->arch_name, (long long)every,
                       (long long)hp->n_layer);
    for (int64_t il = 0; il < hp->n_layer; il++) hp->recurrent[il] = (il + 1) % every != 0;
    return OB_OK;
}

/* rope.dimension_sections as frequency divisors (1: rotated, infinity: the fourth section, at
 * position 0); none when every pair rotates. */
static ob_status read_sections(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    char key[96];
    snprintf(key, sizeof key, "%s.rope.dimension_sections", hp->arch_name);
    const gguf_kv *kv = gguf_kv_find(m->file, key);
    if (!kv || kv->type != GGUF_VTYPE_ARRAY || kv->arr_type == GGUF_VTYPE_STRING ||
        kv->arr_len < 1 || kv->arr_len > 4)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s: expected an array of up to 4 integers",
                       gguf_name(m->file), key);
    int64_t sec[4] = {0, 0, 0, 0}, sum = 0;
    for (uint64_t i = 0; i < kv->arr_len; i++) {
        sec[i] = gguf_arr_i64(kv, i);
        if (sec[i] < 0 || sec[i] > hp->n_rot)
            return ob_fail(err, OB_ERR_FORMAT, "%s: %s[%llu] = %lld, expected 0..%lld",
                           gguf_name(m->file), key, (unsigned long long)i, (long long)sec[i],
                           (long long)hp->n_rot);
        sum += sec[i];
    }
    if (sum <= 0)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s sum to 0", gguf_name(m->file), key);
    const int64_t n_pairs = hp->n_rot / 2;
    bool all = true;
    float *f = ob_alloc((size_t)n_pairs, sizeof(float));
    if (!f) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
    for (int64_t i = 0; i < n_pairs; i++) { /* interleaved sections: t h w t h w ... */
        const int64_t sector = i % sum, axis = sector % 3;
        const bool rotated = sector < 3 * sec[axis];
        f[i] = rotated ? 1.0f : INFINITY;
        all = all && rotated;
    }
    if (all) ob_free(f);
    else m->w.rope_freqs = f;
    return OB_OK;
}

/* Early converters wrote DeltaNet's q, k, v and z as one fused blk.N.ssm_in: refused by name
 * rather than reported as a missing attn_qkv. */
static ob_status refuse_fused_qkvz(ob_model *m, ob_err *err) {
    char name[96];
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        if (!m->hp.recurrent[il]) continue;
        snprintf(name, sizeof name, "blk.%lld.attn_qkv.weight", (long long)il);
        if (gguf_tensor_find(m->file, name)) continue;
        snprintf(name, sizeof name, "blk.%lld.ssm_in.weight", (long long)il);
        if (gguf_tensor_find(m->file, name))
            return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: tensor '%s': the fused qkvz "
                           "projection of early conversions is not supported (convert the "
                           "model again: attn_qkv and attn_gate)", gguf_name(m->file), name);
    }
    return OB_OK;
}

static ob_status qwen35_hparams(ob_model *m, ob_err *err) {
    model_hparams *hp = &m->hp;
    const bool moe = hp->arch != MODEL_ARCH_QWEN35, next = hp->arch == MODEL_ARCH_QWEN3NEXT;
    int64_t nextn = 0;
    ob_status st = model_llama_read_hparams(m, err);
    if (!st && m->w.rope_freqs)
        st = ob_fail(err, OB_ERR_UNSUPPORTED, "%s: %s with rope_freqs / llama3 rope scaling "
                     "is not supported", gguf_name(m->file), hp->arch_name);
    if (!st && moe) st = model_moe_read_hparams(m, true, err);
    if (!st) st = read_ssm(m, err);
    if (!st) st = skip_nextn(m, &nextn, err);
    if (!st) st = read_kinds(m, err);
    if (!st && !next) st = read_sections(m, err);
    if (!st) st = refuse_fused_qkvz(m, err);
    if (st) return st;
    hp->moe.norm_w = true; /* llama.cpp renormalises the chosen weights for both */
    hp->ssm_grouped_heads = next;
    hp->n_nextn = nextn;
    hp->flags.rope_neox = true;
    hp->flags.qk_norm = true;
    /* per row: attention's q | gate and gate; DeltaNet's qkv, z, alpha, beta, o and (qwen3next)
     * the fused beta/alpha projection before it is split */
    const int64_t ds = hp->ssm_d_state, nv = hp->ssm_n_v_head, vd = nv * ds,
                  conv_dim = (2 * hp->ssm_n_k_head + nv) * ds,
                  attn = 3 * hp->n_head * hp->head_dim, dnet = conv_dim + 2 * vd + 4 * nv;
    hp->n_extra = attn > dnet ? attn : dnet;
    return OB_OK;
}

/* ---- tensors --------------------------------------------------------------------------- */

/* every layer: its input norm, and the FFN's (post_attention_norm) */
static const model_tensor_row Q35_NORMS[] = {
    MODEL_VECTOR("attn_norm.weight", attn_norm, MODEL_DIM_EMBD, MODEL_ON_ALL),
    MODEL_VECTOR("post_attention_norm.weight", ffn_norm, MODEL_DIM_EMBD, MODEL_ON_ALL),
    MODEL_ROWS_END,
};

static const model_tensor_row Q35_ATTENTION[] = {
    MODEL_MATRIX("attn_q.weight", wq, MODEL_DIM_EMBD, MODEL_DIM_Q_GATED, MODEL_ON_ATTENTION),
    MODEL_MATRIX("attn_k.weight", wk, MODEL_DIM_EMBD, MODEL_DIM_KV, MODEL_ON_ATTENTION),
    MODEL_MATRIX("attn_v.weight", wv, MODEL_DIM_EMBD, MODEL_DIM_KV, MODEL_ON_ATTENTION),
    MODEL_MATRIX("attn_output.weight", wo, MODEL_DIM_Q, MODEL_DIM_EMBD, MODEL_ON_ATTENTION),
    MODEL_ROWS_END,
};

#define DNET_MATRIX(suffix, field, d0, d1) MODEL_MATRIX(suffix, field, d0, d1, MODEL_ON_DELTANET)
#define DNET_VECTOR(suffix, field, d0, d1)                                                      \
    MODEL_ROW(suffix, MODEL_FORM_VECTOR, field, d0, d1, MODEL_ON_DELTANET)

/* DeltaNet layers but for their beta and alpha projections */
static const model_tensor_row Q35_DELTANET[] = {
    DNET_MATRIX("attn_qkv.weight", ssm_qkv, MODEL_DIM_EMBD, MODEL_DIM_SSM_CONV),
    DNET_MATRIX("attn_gate.weight", ssm_z, MODEL_DIM_EMBD, MODEL_DIM_SSM_VALUE),
    DNET_MATRIX("ssm_out.weight", ssm_out, MODEL_DIM_SSM_VALUE, MODEL_DIM_EMBD),
    DNET_VECTOR("ssm_dt.bias", ssm_dt, MODEL_DIM_SSM_HEADS, MODEL_DIM_ONE),
    DNET_VECTOR("ssm_a", ssm_a, MODEL_DIM_SSM_HEADS, MODEL_DIM_ONE),
    DNET_VECTOR("ssm_norm.weight", ssm_norm, MODEL_DIM_SSM_STATE, MODEL_DIM_ONE),
    /* conv_dim rows of conv_kernel taps, read as one vector of their product */
    DNET_VECTOR("ssm_conv1d.weight", ssm_conv, MODEL_DIM_SSM_KERNEL, MODEL_DIM_SSM_CONV),
    MODEL_ROWS_END,
};

static const model_tensor_row Q35_ALPHA_BETA[] = {
    DNET_MATRIX("ssm_alpha.weight", ssm_alpha, MODEL_DIM_EMBD, MODEL_DIM_SSM_HEADS),
    DNET_MATRIX("ssm_beta.weight", ssm_beta, MODEL_DIM_EMBD, MODEL_DIM_SSM_HEADS),
    MODEL_ROWS_END,
};

/* qwen3next: beta and alpha from one projection */
static const model_tensor_row Q3NEXT_BA[] = {
    DNET_MATRIX("ssm_ba.weight", ssm_ba, MODEL_DIM_EMBD, MODEL_DIM_SSM_HEADS2),
    MODEL_ROWS_END,
};

static const model_tensor_row *const QWEN35_TABLE[] = {
    Q35_NORMS, Q35_ATTENTION, MODEL_ROWS_QK_NORM, Q35_DELTANET, Q35_ALPHA_BETA,
    MODEL_ROWS_SWIGLU, NULL};
static const model_tensor_row *const QWEN35MOE_TABLE[] = {
    Q35_NORMS, Q35_ATTENTION, MODEL_ROWS_QK_NORM, Q35_DELTANET, Q35_ALPHA_BETA,
    MODEL_ROWS_MOE, MODEL_ROWS_SHARED_EXPERT, NULL};
static const model_tensor_row *const QWEN3NEXT_TABLE[] = {
    Q35_NORMS, Q35_ATTENTION, MODEL_ROWS_QK_NORM, Q35_DELTANET, Q3NEXT_BA,
    MODEL_ROWS_MOE, MODEL_ROWS_SHARED_EXPERT, NULL};

/* The first block after the stack drafts (speculative decoding, spec_mtp.c). */
static ob_status bind_mtp(ob_model *m, ob_err *err) {
    return m->hp.n_nextn > 0 ? model_mtp_bind(m, m->hp.n_layer, err) : OB_OK;
}

#define QWEN35_FAMILY(name, arch, table)                                                        \
    {name, arch, qwen35_hparams, table, model_embed_tokens, model_qwen35_layers, bind_mtp}
const model_family MODEL_FAMILY_QWEN35 = QWEN35_FAMILY("qwen35", MODEL_ARCH_QWEN35, QWEN35_TABLE);
const model_family MODEL_FAMILY_QWEN35MOE =
    QWEN35_FAMILY("qwen35moe", MODEL_ARCH_QWEN35MOE, QWEN35MOE_TABLE);
const model_family MODEL_FAMILY_QWEN3NEXT =
    QWEN35_FAMILY("qwen3next", MODEL_ARCH_QWEN3NEXT, QWEN3NEXT_TABLE);

/* ---- forward --------------------------------------------------------------------------- */

/* x += the DeltaNet mixer of layer il on b->xn (n_tok rows). */
static void deltanet_layer(const ob_model *m, model_backend *be, model_buffers *b, int64_t il,
                           const model_step *s) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const model_layer *l = &m->w.layers[il];
    const int64_t n_tok = s->kv.n_tok, ds = hp->ssm_d_state, nv = hp->ssm_n_v_head,
                  vd = nv * ds, conv_dim = (2 * hp->ssm_n_k_head + nv) * ds;
    float *qkv = b->extra;                    /* (n_tok, conv_dim) */
    float *z = qkv + n_tok * conv_dim;        /* (n_tok, vd) */
    float *alpha = z + n_tok * vd;            /* (n_tok, nv) */
    float *beta = alpha + n_tok * nv;         /* (n_tok, nv) */
    float *o = beta + n_tok * nv;             /* (n_tok, vd) */
    const model_dnet_weights w = {.conv = l->ssm_conv, .dt_bias = l->ssm_dt, .a = l->ssm_a,
                                  .norm = l->ssm_norm, .eps = hp->norm_eps,
                                  .grouped_heads = hp->ssm_grouped_heads};
    if (l->ssm_ba.data) { /* qwen3next: per key head, (beta, alpha) of its value heads */
        float *ba = o + n_tok * vd;           /* (n_tok, 2 nv) */
        const int64_t nk = hp->ssm_n_k_head;
        const model_matmul in[3] = {{qkv, &l->ssm_qkv, b->xn}, {z, &l->ssm_z, b->xn},
                                    {ba, &l->ssm_ba, b->xn}};
        model_matmuls(be, in, 3, n_tok);
        op->split_gate(be, beta, alpha, ba, n_tok * nk, nv / nk);
    } else {
        const model_matmul in[4] = {{qkv, &l->ssm_qkv, b->xn}, {z, &l->ssm_z, b->xn},
                                    {alpha, &l->ssm_alpha, b->xn},
                                    {beta, &l->ssm_beta, b->xn}};
        model_matmuls(be, in, 4, n_tok);
    }
    op->deltanet(be, il, o, qkv, z, alpha, beta, &s->kv, &w);
    op->matmul(be, b->proj, &l->ssm_out, o, n_tok);          /* (n_tok, e) */
}

/* x += the gated full attention of layer il on b->xn. */
static void attention_layer(const ob_model *m, model_backend *be, model_buffers *b, int64_t il,
                            const model_step *s) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const model_layer *l = &m->w.layers[il];
    const int64_t n_tok = s->kv.n_tok, hd = hp->head_dim, qd = hp->n_head * hd;
    float *qg = b->extra, *gate = qg + n_tok * 2 * qd;  /* (n_tok, 2 qd), (n_tok, qd) */
    const model_rope rp = {.n_dims = hp->n_rot, .freq_base = hp->rope_base,
                                .freq_scale = hp->rope_freq_scale,
                                .freq_factors = m->w.rope_freqs, .neox = true};
    const model_matmul qkv[3] = {{qg, &l->wq, b->xn}, {b->k, &l->wk, b->xn},
                                 {b->v, &l->wv, b->xn}};
    model_matmuls(be, qkv, 3, n_tok);
    op->split_gate(be, b->q, gate, qg, n_tok * hp->n_head, hd);
    op->rmsnorm(be, b->q, b->q, l->q_norm, n_tok * hp->n_head, hd, hp->norm_eps);
    op->rmsnorm(be, b->k, b->k, l->k_norm, n_tok * hp->n_head_kv, hd, hp->norm_eps);
    op->rope(be, b->q, n_tok, hp->n_head, hd, b->pos, &rp);
    op->rope(be, b->k, n_tok, hp->n_head_kv, hd, b->pos, &rp);
    op->kv_store(be, il, b->k, b->v, &s->kv);
    op->attention(be, il, b->attn, b->q, &s->kv, 1.0f / sqrtf((float)hd));
    op->sigmoid_mul(be, b->attn, gate, n_tok * qd);
    op->matmul(be, b->proj, &l->wo, b->attn, n_tok);          /* (n_tok, e) */
}

bool model_qwen35_layers(const ob_model *m, model_backend *be, model_buffers *b,
                         const model_step *s) {
    const model_hparams *hp = &m->hp;
    const model_backend_ops *op = be->ops;
    const int64_t e = hp->n_embd, n_tok = s->kv.n_tok;
    for (int64_t il = be->layer_lo; il < be->layer_hi; il++) {
        const model_layer *l = &m->w.layers[il];
        if (s->abort && s->abort(s->abort_user)) return false;
        op->rmsnorm(be, b->xn, b->x, l->attn_norm, n_tok, e, hp->norm_eps);
        if (l->kind == MODEL_LAYER_DELTANET) deltanet_layer(m, be, b, il, s);
        else attention_layer(m, be, b, il, s);
        op->add(be, b->x, b->proj, n_tok * e);
        /* feed-forward block, normed by post_attention_norm */
        if (l->moe) {
            op->rmsnorm(be, b->xn, b->x, l->ffn_norm, n_tok, e, hp->norm_eps);
            model_moe_ffn(m, be, b->proj, b->xn, il, n_tok);
            op->add(be, b->x, b->proj, n_tok * e);
        } else {
            model_llama_ffn(m, be, b, l, n_tok);
        }
    }
    return true;
}
