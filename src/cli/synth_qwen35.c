/*
 * `outboard synth --arch qwen35|qwen35moe|qwen3next`: a Qwen3.5-, Qwen3.5-MoE- or
 * Qwen3-Next-shaped model with random weights, with the keys and tensor layouts llama.cpp's
 * converter writes. Of every full_attention_interval layers the last is gated full attention
 * (attn_q holds q and its gate per head, q/k norms, partial RoPE, with
 * rope.dimension_sections except on qwen3next), the others Gated DeltaNet:
 *
 *   attn_qkv      [n_embd, 2 * key_dim + value_dim]   q, k (group_count heads of state_size)
 *                                                     and v (time_step_rank heads)
 *   attn_gate     [n_embd, value_dim]                 z, the output gate
 *   ssm_conv1d    [conv_kernel, conv_dim] f32         depthwise causal convolution
 *   ssm_dt.bias   [time_step_rank] f32
 *   ssm_a         [time_step_rank] f32                -exp(A_log), as the converter stores it
 *   ssm_alpha, ssm_beta [n_embd, time_step_rank]
 *                 (qwen3next: one ssm_ba [n_embd, 2 * time_step_rank], per key head its
 *                 value heads' beta rows then their alpha rows)
 *   ssm_norm      [state_size] f32                    gated RMSNorm, shared by the heads
 *   ssm_out       [value_dim, n_embd]
 *
 * Every layer has attn_norm, post_attention_norm (the FFN's input norm) and a SwiGLU FFN
 * (qwen35), or experts and a gated shared expert (qwen35moe, qwen3next: synth_moe.c). The
 * qwen35moe converter writes no feed_forward_length (the checkpoints have no dense width).
 *
 * --nextn 1 adds the multi-token-prediction block as llama.cpp's converter writes a
 * checkpoint's mtp.* tensors: block_count counts it, nextn_predict_layers says 1, and block
 * N = the main stack's length is a full-attention block (the layer tensors above, its FFN
 * dense or experts as the others') with
 *
 *   nextn.eh_proj           [2 n_embd, n_embd]  mtp.fc: the concatenation (enorm(embedding),
 *                                               hnorm(hidden state)) back to n_embd
 *   nextn.enorm, nextn.hnorm [n_embd] f32        mtp.pre_fc_norm_embedding / _hidden
 *   nextn.shared_head_norm  [n_embd] f32        mtp.norm, before the shared output head
 *
 * and no nextn.embed_tokens or nextn.shared_head_head: the block uses token_embd and output.
 */
#include "cli/synth.h"
#include "cli/synth_moe.h"

#include "core/alloc.h"
#include "cpu/pool.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct q35_shape {
    const char *name;
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_rot, n_ff, n_ctx;
    int64_t conv, d_state, n_group, n_v_head, interval;
    int32_t sections[4];
    float rope_base;
} q35_shape;

/* "27b" is Qwen3.5 27B's layer shape with 16 of its 64 layers (benchmarks). */
static const q35_shape Q35_SHAPES[] = {
    {"tiny", 256, 4, 4, 2, 64, 16, 512, 4096, 4, 64, 2, 4, 4, {3, 3, 2, 0}, 10000000.0f},
    {"27b", 5120, 16, 24, 4, 256, 64, 17408, 262144, 4, 128, 16, 48, 4, {11, 11, 10, 0},
     10000000.0f},
};

static bool is_next(const char *arch) { return !strcmp(arch, "qwen3next"); }

static void write_keys(synth_state *st, const q35_shape *sh, const cli_synth_args *o,
                       int64_t n_vocab) {
    gguf_writer *w = st->w;
    const char *a = o->arch;
    char name[128];
    snprintf(name, sizeof name, "outboard-synth-%s-%s-%s", a, sh->name, o->type);
    gguf_writer_set_str(w, "general.architecture", a);
    gguf_writer_set_str(w, "general.name", name);
    cli_synth_u32(w, a, "context_length", (uint32_t)sh->n_ctx);
    cli_synth_u32(w, a, "embedding_length", (uint32_t)sh->n_embd);
    cli_synth_u32(w, a, "block_count", (uint32_t)(sh->n_layer + o->nextn));
    if (o->nextn) cli_synth_u32(w, a, "nextn_predict_layers", (uint32_t)o->nextn);
    if (strcmp(a, "qwen35moe")) cli_synth_u32(w, a, "feed_forward_length", (uint32_t)sh->n_ff);
    cli_synth_u32(w, a, "attention.head_count", (uint32_t)sh->n_head);
    cli_synth_u32(w, a, "attention.head_count_kv", (uint32_t)sh->n_head_kv);
    cli_synth_u32(w, a, "attention.key_length", (uint32_t)sh->head_dim);
    cli_synth_u32(w, a, "attention.value_length", (uint32_t)sh->head_dim);
    cli_synth_f32_key(w, a, "attention.layer_norm_rms_epsilon", 1e-6f);
    cli_synth_f32_key(w, a, "rope.freq_base", sh->rope_base);
    cli_synth_u32(w, a, "rope.dimension_count", (uint32_t)sh->n_rot);
    if (!is_next(a)) {
        char key[96];
        snprintf(key, sizeof key, "%s.rope.dimension_sections", a);
        gguf_writer_set_arr(w, key, GGUF_VTYPE_INT32, sh->sections, 4);
    }
    cli_synth_u32(w, a, "ssm.conv_kernel", (uint32_t)sh->conv);
    cli_synth_u32(w, a, "ssm.state_size", (uint32_t)sh->d_state);
    cli_synth_u32(w, a, "ssm.group_count", (uint32_t)sh->n_group);
    cli_synth_u32(w, a, "ssm.time_step_rank", (uint32_t)sh->n_v_head);
    cli_synth_u32(w, a, "ssm.inner_size", (uint32_t)(sh->n_v_head * sh->d_state));
    cli_synth_u32(w, a, "full_attention_interval", (uint32_t)sh->interval);
    cli_synth_u32(w, a, "vocab_size", (uint32_t)n_vocab);
    if (st->moe) synth_moe_hparams(st->moe, w, a);
}

/* An F32 vector of n values from f(u), u uniform in [-1, 1). */
static int add_f32_vec(synth_state *st, const char *name, int64_t n, float lo, float hi) {
    float *v = ob_alloc((size_t)n, sizeof(float));
    if (!v) return -1;
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * 0.5f * (cli_synth_rand(st) + 1.0f);
    return cli_synth_f32(st, name, 1, &n, v);
}

static int write_deltanet(synth_state *st, const q35_shape *sh, uint32_t type, int64_t il,
                          bool next) {
    const int64_t e = sh->n_embd, key_dim = sh->n_group * sh->d_state,
                  value_dim = sh->n_v_head * sh->d_state, conv_dim = 2 * key_dim + value_dim;
    const float a_e = sqrtf(3.0f / (float)e), a_v = sqrtf(3.0f / (float)value_dim);
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
    float *conv = ob_alloc((size_t)(sh->conv * conv_dim), sizeof(float));
    if (!conv) return -1;
    for (int64_t i = 0; i < sh->conv * conv_dim; i++) conv[i] = 0.6f * cli_synth_rand(st);
    const int64_t conv_ne[2] = {sh->conv, conv_dim};
    if (cli_synth_matrix(st, NAME("attn_qkv.weight"), type, e, conv_dim, a_e) ||
        cli_synth_matrix(st, NAME("attn_gate.weight"), type, e, value_dim, a_e) ||
        cli_synth_f32(st, NAME("ssm_conv1d.weight"), 2, conv_ne, conv) ||
        add_f32_vec(st, NAME("ssm_dt.bias"), sh->n_v_head, -2.5f, -0.5f) ||
        add_f32_vec(st, NAME("ssm_a"), sh->n_v_head, -1.5f, -0.2f) ||
        (next ? cli_synth_matrix(st, NAME("ssm_ba.weight"), type, e, 2 * sh->n_v_head, a_e)
              : cli_synth_matrix(st, NAME("ssm_beta.weight"), type, e, sh->n_v_head, a_e) ||
                    cli_synth_matrix(st, NAME("ssm_alpha.weight"), type, e, sh->n_v_head, a_e)) ||
        cli_synth_vector(st, NAME("ssm_norm.weight"), sh->d_state, 1.0f, 0.1f) ||
        cli_synth_matrix(st, NAME("ssm_out.weight"), type, value_dim, e, a_v))
        return -1;
#undef NAME
    return 0;
}

static int write_attention(synth_state *st, const q35_shape *sh, uint32_t type, int64_t il) {
    const int64_t e = sh->n_embd, hd = sh->head_dim, qd = sh->n_head * hd,
                  kvd = sh->n_head_kv * hd;
    const float a_e = sqrtf(3.0f / (float)e), a_q = sqrtf(3.0f / (float)qd);
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
    if (cli_synth_matrix(st, NAME("attn_q.weight"), type, e, 2 * qd, a_e) ||
        cli_synth_matrix(st, NAME("attn_k.weight"), type, e, kvd, a_e) ||
        cli_synth_matrix(st, NAME("attn_v.weight"), type, e, kvd, a_e) ||
        cli_synth_matrix(st, NAME("attn_output.weight"), type, qd, e, a_q) ||
        cli_synth_vector(st, NAME("attn_q_norm.weight"), hd, 1.0f, 0.2f) ||
        cli_synth_vector(st, NAME("attn_k_norm.weight"), hd, 1.0f, 0.2f))
        return -1;
#undef NAME
    return 0;
}

/* The FFN half of layer il: dense SwiGLU, or the experts. */
static int write_ffn(synth_state *st, const q35_shape *sh, uint32_t type, int64_t il) {
    const int64_t e = sh->n_embd;
    const float a_e = sqrtf(3.0f / (float)e), a_ff = sqrtf(3.0f / (float)sh->n_ff);
    if (st->moe)
        return synth_moe_layer(st->moe, st->w, il, e, type, st->preset, &st->mix, &st->err);
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
    if (cli_synth_matrix(st, NAME("ffn_gate.weight"), type, e, sh->n_ff, a_e) ||
        cli_synth_matrix(st, NAME("ffn_up.weight"), type, e, sh->n_ff, a_e) ||
        cli_synth_matrix(st, NAME("ffn_down.weight"), type, sh->n_ff, e, a_ff))
        return -1;
#undef NAME
    return 0;
}

/* The multi-token-prediction block il (after the main stack). */
static int write_nextn(synth_state *st, const q35_shape *sh, uint32_t type, int64_t il) {
    const int64_t e = sh->n_embd;
    const float a_2e = sqrtf(3.0f / (float)(2 * e));
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
    if (cli_synth_vector(st, NAME("attn_norm.weight"), e, 1.0f, 0.1f) ||
        write_attention(st, sh, type, il) ||
        cli_synth_vector(st, NAME("post_attention_norm.weight"), e, 1.0f, 0.1f) ||
        write_ffn(st, sh, type, il) ||
        cli_synth_matrix(st, NAME("nextn.eh_proj.weight"), type, 2 * e, e, a_2e) ||
        cli_synth_vector(st, NAME("nextn.enorm.weight"), e, 1.0f, 0.1f) ||
        cli_synth_vector(st, NAME("nextn.hnorm.weight"), e, 1.0f, 0.1f) ||
        cli_synth_vector(st, NAME("nextn.shared_head_norm.weight"), e, 1.0f, 0.1f))
        return -1;
#undef NAME
    return 0;
}

static int write_tensors(synth_state *st, const q35_shape *sh, uint32_t type, int64_t n_vocab,
                         bool next, int64_t nextn) {
    const int64_t e = sh->n_embd;
    const float a_e = sqrtf(3.0f / (float)e);
    if (cli_synth_matrix(st, "token_embd.weight", type, e, n_vocab, 1.0f) ||
        cli_synth_vector(st, "output_norm.weight", e, 1.0f, 0.1f) ||
        cli_synth_matrix(st, "output.weight", type, e, n_vocab, a_e))
        return -1;
    for (int64_t il = 0; il < sh->n_layer; il++) {
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
        const bool full = (il + 1) % sh->interval == 0;
        if (cli_synth_vector(st, NAME("attn_norm.weight"), e, 1.0f, 0.1f) ||
            (full ? write_attention(st, sh, type, il)
                  : write_deltanet(st, sh, type, il, next)) ||
            cli_synth_vector(st, NAME("post_attention_norm.weight"), e, 1.0f, 0.1f) ||
            write_ffn(st, sh, type, il))
            return -1;
#undef NAME
    }
    for (int64_t il = sh->n_layer; il < sh->n_layer + nextn; il++)
        if (write_nextn(st, sh, type, il)) return -1;
    return 0;
}

int cli_synth_qwen35(const cli_synth_args *o) {
    const q35_shape *sh = NULL;
    for (size_t i = 0; i < sizeof Q35_SHAPES / sizeof Q35_SHAPES[0]; i++)
        if (!strcmp(Q35_SHAPES[i].name, o->shape)) sh = &Q35_SHAPES[i];
    if (!sh) {
        fprintf(stderr, "outboard synth: shape '%s' is not one of %s's (tiny, 27b)\n",
                o->shape, o->arch);
        return 2;
    }
    uint32_t type;
    const quant_preset *preset;
    if (cli_synth_type(o->type, &type, &preset)) {
        fprintf(stderr, "outboard synth: unknown type '%s'\n", o->type);
        return 2;
    }
    synth_moe_dims md;
    const int moe = synth_moe_dims_pick(o->arch, sh->name, o->experts_used, o->merged_experts,
                                        &md);
    if (moe < 0) return 2;
    synth_state st = {.w = gguf_writer_new(), .rng = o->seed * 0x9e3779b97f4a7c15ull | 1,
                      .preset = preset, .pool = cli_synth_pool(),
                      .mix = {.n_layer = sh->n_layer + o->nextn,
                              .n_gqa = sh->n_head / sh->n_head_kv}};
    if (moe) {
        st.mix.n_expert = md.n_expert;
        if (!(st.moe = synth_moe_new(&md, o->seed))) st.w = (gguf_writer_free(st.w), NULL);
    }
    int64_t n_vocab = 0;
    int rc = 1;
    if (st.w && !cli_synth_vocab(&st, o->vocab, &n_vocab)) {
        write_keys(&st, sh, o, n_vocab);
        if (preset) gguf_writer_set_u32(st.w, "general.file_type", preset->file_type);
        if (!write_tensors(&st, sh, type, n_vocab, is_next(o->arch), o->nextn) &&
            !gguf_writer_write(st.w, o->out, &st.err))
            rc = 0;
    }
    if (rc) fprintf(stderr, "outboard synth: %s\n", st.w ? st.err.msg : "out of memory");
    else fprintf(stderr, "wrote %s: %s %s, %s, %lld tokens\n", o->out, o->arch, sh->name,
                 preset ? preset->name : gguf_qtype_name(type), (long long)n_vocab);
    synth_moe_free(st.moe);
    for (size_t i = 0; i < st.n_bufs; i++) ob_free(st.bufs[i]);
    ob_free(st.bufs);
    gguf_writer_free(st.w);
    cpu_pool_free(st.pool);
    return rc;
}
