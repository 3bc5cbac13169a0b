/*
 * `outboard synth --arch llama|qwen2|qwen3|gemma3|qwen3moe --shape tiny|1b|8b|30b-a3b --type TYPE -o FILE.gguf
 * (qwen35, qwen35moe, qwen3next: synth_qwen35.c)
 * [--vocab V.gguf] [--swa N]`: writes a model of a real model's shape with random weights,
 * through the GGUF writer. qwen2 adds q/k/v biases; qwen3 per-head q/k norms and a head size
 * that is not n_embd / n_head; gemma3 those norms, post-norms, a tied output, and (tiny) six
 * layers so that one is global, with a sliding window of 64 (--swa sets it; for llama it writes
 * llama.attention.sliding_window). Used to
 * test every tensor type against llama.cpp and to benchmark at real sizes without downloading
 * a model. The tokenizer is copied from a vocabulary GGUF (--vocab), or is a built-in byte
 * vocabulary (259 tokens: <unk> <s> </s> and the 256 byte tokens) that llama.cpp also loads.
 *
 * Weights are uniform with variance 1/n_in per matrix (so activations keep unit scale through
 * the layers and logits are well separated), norms near 1, embeddings in [-1, 1).
 */
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/synth_moe.h"
#include "cli/synth.h"
#include "core/alloc.h"
#include "cpu/pool.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/mix.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct synth_shape {
    const char *name;
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float rope_base, rope_factor; /* rope_factor > 0: Llama 3 rope_freqs tensor */
} synth_shape;

static const synth_shape SHAPES[] = {
    {"tiny", 256, 2, 4, 2, 768, 4096, 10000.0f, 0.0f},
    {"1b", 2048, 16, 32, 8, 8192, 131072, 500000.0f, 32.0f},   /* Llama 3.2 1B */
    {"8b", 4096, 32, 32, 8, 14336, 131072, 500000.0f, 8.0f},   /* Llama 3.1 8B */
    /* Qwen3-30B-A3B's layer shape, 12 of its 48 layers (experts: synth_moe.c) */
    {"30b-a3b", 2048, 12, 32, 4, 6144, 40960, 1000000.0f, 0.0f},
};

/* What an architecture adds to the llama tensors and keys. */
typedef struct synth_arch {
    const char *name;
    bool qkv_bias, qk_norm, post_norms, tied;
    int64_t head_mult;   /* head size = head_mult * n_embd / n_head */
    int64_t tiny_layers; /* layers of the tiny shape */
    int64_t swa;         /* default sliding window, 0 = none */
} synth_arch;

static const synth_arch ARCHS[] = {
    {"llama", false, false, false, false, 1, 2, 0},
    {"qwen2", true, false, false, false, 1, 2, 0},
    {"qwen3", false, true, false, false, 2, 2, 0},
    {"gemma3", false, true, true, true, 2, 6, 64},
    {"qwen3moe", false, true, false, false, 2, 2, 0}, /* + experts (synth_moe.c) */
};

/* The shape as this architecture writes it. */
typedef struct synth_dims {
    int64_t n_layer, head_dim, swa;
} synth_dims;

static float synth_rand(uint64_t *s) { /* uniform [-1, 1) */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)(*s >> 40) / (float)(1 << 23) - 1.0f;
}

static int keep_buf(synth_state *st, void *p) {
    void **grown = ob_realloc(st->bufs, st->n_bufs + 1, sizeof *grown);
    if (!grown) {
        ob_free(p);
        return -1;
    }
    st->bufs = grown;
    st->bufs[st->n_bufs++] = p;
    return 0;
}

/* Adds an F32 vector (1 + noise * u). */
static int add_vector(synth_state *st, const char *name, int64_t n, float base, float noise) {
    float *v = ob_alloc((size_t)n, sizeof(float));
    if (!v || keep_buf(st, v)) return -1;
    for (int64_t i = 0; i < n; i++) v[i] = base + noise * synth_rand(&st->rng);
    return gguf_writer_add_tensor(st->w, name, OB_QTYPE_F32, 1, &n, v, (size_t)n * 4, &st->err)
               ? -1 : 0;
}

/* Rows drawn at a time: the generator runs in order (so a file does not depend on the thread
 * count) and the chunk's rows are then quantized in parallel. A K-quant's search made one 1B
 * file take minutes on one core. */
#define SYNTH_CHUNK_ROWS 512

typedef struct quantize_job {
    const quant_traits *qt;
    const float *src; /* rows of n_in floats */
    char *dst;        /* rows of row bytes */
    int64_t n_rows, n_in;
    size_t row;
} quantize_job;

static void quantize_rows(void *arg, int ith, int nth) {
    const quantize_job *j = arg;
    int64_t lo, hi;
    cpu_split(j->n_rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        j->qt->from_f32(j->src + r * j->n_in, j->dst + (size_t)r * j->row, j->n_in);
}

cpu_pool *cli_synth_pool(void) {
    cpu_pool *p = NULL;
    ob_err ignored;
    return cpu_pool_new(cpu_physical_cores(), &p, &ignored) ? NULL : p;
}

/* Adds a [n_in, n_out] matrix of `type`, uniform with the given half-width, row by row. */
static int add_matrix(synth_state *st, const char *name, uint32_t type, int64_t n_in,
                      int64_t n_out, float amp) {
    if (st->preset) {
        int64_t shape[2] = {n_in, n_out};
        type = quant_mix_tensor_type_ex(st->preset, &st->mix, name, -1, shape, 2, OB_QTYPE_F32);
    }
    const quant_traits *qt = quant_traits_ref(type);
    if (!qt || (type != OB_QTYPE_F32 && !qt->from_f32) || n_in % qt->block_size) {
        snprintf(st->err.msg, sizeof st->err.msg, "tensor '%s': cannot write type %s with "
                 "rows of %lld", name, gguf_qtype_name(type), (long long)n_in);
        return -1;
    }
    size_t row = (size_t)(n_in / qt->block_size) * qt->type_size;
    const int64_t chunk = n_out < SYNTH_CHUNK_ROWS ? n_out : SYNTH_CHUNK_ROWS;
    char *data = ob_alloc((size_t)n_out, row);
    float *tmp = ob_alloc((size_t)(chunk > 0 ? chunk : 1) * (size_t)n_in, sizeof(float));
    if (!data || !tmp || keep_buf(st, data)) {
        ob_free(tmp);
        snprintf(st->err.msg, sizeof st->err.msg, "tensor '%s': out of memory", name);
        return -1;
    }
    for (int64_t r0 = 0; r0 < n_out; r0 += chunk) {
        const int64_t rows = n_out - r0 < chunk ? n_out - r0 : chunk;
        for (int64_t i = 0; i < rows * n_in; i++) tmp[i] = amp * synth_rand(&st->rng);
        quantize_job job = {qt, tmp, data + (size_t)r0 * row, rows, n_in, row};
        if (type == OB_QTYPE_F32) memcpy(job.dst, tmp, (size_t)rows * row);
        else if (st->pool) cpu_pool_run(st->pool, quantize_rows, &job);
        else quantize_rows(&job, 0, 1);
    }
    ob_free(tmp);
    int64_t ne[2] = {n_in, n_out};
    return gguf_writer_add_tensor(st->w, name, type, 2, ne, data, (size_t)n_out * row, &st->err)
               ? -1 : 0;
}

/* The built-in byte vocabulary, or every tokenizer.* pair of --vocab. Sets *n_vocab. */
static int write_vocab(synth_state *st, const char *vocab_path, int64_t *n_vocab) {
    if (vocab_path) {
        gguf_file *vf;
        if (gguf_open(vocab_path, &vf, &st->err)) return -1;
        const gguf_kv *toks = gguf_kv_find(vf, "tokenizer.ggml.tokens");
        *n_vocab = toks ? (int64_t)toks->arr_len : 0;
        for (int64_t i = 0; i < gguf_kv_count(vf); i++) {
            const gguf_kv *kv = gguf_kv_at(vf, i);
            if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10))
                gguf_writer_copy_kv(st->w, kv);
        }
        gguf_close(vf);
        if (*n_vocab == 0) {
            snprintf(st->err.msg, sizeof st->err.msg, "%s: no tokenizer.ggml.tokens", vocab_path);
            return -1;
        }
        return 0;
    }
    enum { NV = 259 };
    static char names[NV][8];
    ob_str strs[NV];
    float scores[NV];
    int32_t types[NV];
    for (int i = 0; i < NV; i++) {
        if (i < 3) snprintf(names[i], sizeof names[i], "%s", (const char *[]){"<unk>", "<s>", "</s>"}[i]);
        else snprintf(names[i], sizeof names[i], "<0x%02X>", i - 3);
        strs[i] = ob_str_from_cstr(names[i]);
        scores[i] = 0.0f;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : 6; /* unknown, control, byte */
    }
    *n_vocab = NV;
    gguf_writer_set_str(st->w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(st->w, "tokenizer.ggml.tokens", strs, NV);
    gguf_writer_set_arr(st->w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, scores, NV);
    gguf_writer_set_arr(st->w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, types, NV);
    gguf_writer_set_u32(st->w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(st->w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_u32(st->w, "tokenizer.ggml.unknown_token_id", 0);
    return 0;
}

/* Sets "<arch>.<key>" as u32. */
static void set_arch_u32(gguf_writer *w, const char *arch, const char *key, uint32_t v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    gguf_writer_set_u32(w, k, v);
}

static void set_arch_f32(gguf_writer *w, const char *arch, const char *key, float v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    gguf_writer_set_f32(w, k, v);
}

static void write_hparams(synth_state *st, const synth_shape *sh, const synth_arch *ar,
                          const synth_dims *d, const cli_synth_args *o, int64_t n_vocab) {
    gguf_writer *w = st->w;
    const char *a = ar->name;
    char name[128];
    snprintf(name, sizeof name, "outboard-synth-%s-%s-%s", a, sh->name, o->type);
    gguf_writer_set_str(w, "general.architecture", a);
    gguf_writer_set_str(w, "general.name", name);
    set_arch_u32(w, a, "context_length", (uint32_t)sh->n_ctx);
    set_arch_u32(w, a, "embedding_length", (uint32_t)sh->n_embd);
    set_arch_u32(w, a, "block_count", (uint32_t)d->n_layer);
    set_arch_u32(w, a, "feed_forward_length", (uint32_t)sh->n_ff);
    set_arch_u32(w, a, "attention.head_count", (uint32_t)sh->n_head);
    set_arch_u32(w, a, "attention.head_count_kv", (uint32_t)sh->n_head_kv);
    set_arch_f32(w, a, "attention.layer_norm_rms_epsilon", ar->post_norms ? 1e-6f : 1e-5f);
    set_arch_f32(w, a, "rope.freq_base", sh->rope_base);
    set_arch_u32(w, a, "rope.dimension_count", (uint32_t)d->head_dim);
    set_arch_u32(w, a, "vocab_size", (uint32_t)n_vocab);
    if (d->head_dim != sh->n_embd / sh->n_head) {
        set_arch_u32(w, a, "attention.key_length", (uint32_t)d->head_dim);
        set_arch_u32(w, a, "attention.value_length", (uint32_t)d->head_dim);
    }
    if (d->swa > 0) set_arch_u32(w, a, "attention.sliding_window", (uint32_t)d->swa);
    ob_pooling pooling;
    if (o->pooling && ob_pooling_parse(o->pooling, &pooling))
        set_arch_u32(w, a, "pooling_type", (uint32_t)pooling);
}

/* The extra tensors of one layer: biases, per-head norms, post-norms. */
static int write_layer_extras(synth_state *st, const synth_shape *sh, const synth_arch *ar,
                              const synth_dims *d, int64_t il) {
    const int64_t hd = d->head_dim, qd = sh->n_head * hd, kvd = sh->n_head_kv * hd;
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
    if (ar->qkv_bias && (add_vector(st, NAME("attn_q.bias"), qd, 0.0f, 0.5f) ||
                         add_vector(st, NAME("attn_k.bias"), kvd, 0.0f, 0.5f) ||
                         add_vector(st, NAME("attn_v.bias"), kvd, 0.0f, 0.5f)))
        return -1;
    if (ar->qk_norm && (add_vector(st, NAME("attn_q_norm.weight"), hd, 1.0f, 0.2f) ||
                        add_vector(st, NAME("attn_k_norm.weight"), hd, 1.0f, 0.2f)))
        return -1;
    if (ar->post_norms &&
        (add_vector(st, NAME("post_attention_norm.weight"), sh->n_embd, 1.0f, 0.1f) ||
         add_vector(st, NAME("post_ffw_norm.weight"), sh->n_embd, 1.0f, 0.1f)))
        return -1;
#undef NAME
    return 0;
}

static int write_tensors(synth_state *st, const synth_shape *sh, const synth_arch *ar,
                         const synth_dims *d, uint32_t type, int64_t n_vocab, int rope_freqs) {
    const int64_t e = sh->n_embd, hd = d->head_dim, qd = sh->n_head * hd,
                  kvd = sh->n_head_kv * hd;
    const float a_e = sqrtf(3.0f / (float)e), a_ff = sqrtf(3.0f / (float)sh->n_ff),
                a_q = sqrtf(3.0f / (float)qd);
    if (add_matrix(st, "token_embd.weight", type, e, n_vocab, 1.0f) ||
        add_vector(st, "output_norm.weight", e, 1.0f, 0.1f) ||
        (!ar->tied && add_matrix(st, "output.weight", type, e, n_vocab, a_e)))
        return -1;
    if (rope_freqs) {
        float *f = ob_alloc((size_t)hd / 2, sizeof(float));
        if (!f || keep_buf(st, f)) return -1;
        model_llama3_rope_factors(sh->rope_base, hd, sh->rope_factor > 0 ? sh->rope_factor : 8,
                                  1.0f, 4.0f, 8192.0f, f);
        int64_t n = hd / 2;
        if (gguf_writer_add_tensor(st->w, "rope_freqs.weight", OB_QTYPE_F32, 1, &n, f,
                                   (size_t)n * 4, &st->err))
            return -1;
    }
    for (int64_t il = 0; il < d->n_layer; il++) {
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld." s, (long long)il), n)
        if (add_vector(st, NAME("attn_norm.weight"), e, 1.0f, 0.1f) ||
            add_matrix(st, NAME("attn_q.weight"), type, e, qd, a_e) ||
            add_matrix(st, NAME("attn_k.weight"), type, e, kvd, a_e) ||
            add_matrix(st, NAME("attn_v.weight"), type, e, kvd, a_e) ||
            add_matrix(st, NAME("attn_output.weight"), type, qd, e, a_q) ||
            add_vector(st, NAME("ffn_norm.weight"), e, 1.0f, 0.1f) ||
            (st->moe ? synth_moe_layer(st->moe, st->w, il, e, type, st->preset, &st->mix,
                                       &st->err)
                     : add_matrix(st, NAME("ffn_gate.weight"), type, e, sh->n_ff, a_e) ||
                           add_matrix(st, NAME("ffn_up.weight"), type, e, sh->n_ff, a_e) ||
                           add_matrix(st, NAME("ffn_down.weight"), type, sh->n_ff, e, a_ff)) ||
            write_layer_extras(st, sh, ar, d, il))
            return -1;
#undef NAME
    }
    return 0;
}

static int parse_type(const char *s, uint32_t *out) {
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++) {
        const char *name = gguf_qtype_name(t);
        if (strcasecmp(name, s) == 0 && quant_traits_ref(t)) {
            *out = t;
            return 0;
        }
    }
    return -1;
}

static int usage(FILE *to) {
    fprintf(to, "usage: outboard synth --shape tiny|1b|8b|30b-a3b|27b --type TYPE -o FILE.gguf\n"
                    "  [--arch llama|qwen2|qwen3|gemma3|qwen3moe|qwen35|qwen35moe|qwen3next]\n"
                    "  [--vocab VOCAB.gguf] [--seed N]\n"
                    "  [--rope-freqs|--no-rope-freqs] [--swa N (sliding window, 0 = none)]\n"
                    "  [--merged-experts (qwen3moe, qwen35moe, qwen3next: ffn_gate_up_exps)]\n"
                    "  [--experts-used K (the MoE architectures: experts per token)]\n"
                    "  [--nextn 0|1 (qwen35, qwen35moe, qwen3next: a multi-token-prediction\n"
                    "   block after the stack, blk.N.nextn.*)]\n"
                    "  [--pooling none|mean|cls|last (writes <arch>.pooling_type, for embeddings)]\n"
                    "  [--quiet] [--layers N] [--embd N (a multiple of 256; the feed-forward\n"
                    "   width scales with it)]: the shape with another layer count or width\n"
                    "  TYPE: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k..q6_k iq4_nl iq4_xs, or a\n"
                "  preset as llama-quantize names it (q4_k_m, q5_k_s, ...): per-tensor types\n");
    return to == stdout ? 0 : 2;
}

int cli_cmd_synth(int argc, char **argv) {
    cli_synth_args o;
    ob_err err = {{0}};
    if (cli_synth_args_parse(argc, argv, &o, &err)) {
        fprintf(stderr, "outboard synth: %s\n", err.msg);
        return usage(stderr);
    }
    if (o.help) return usage(stdout);
    if (!strcmp(o.arch, "qwen35") || !strcmp(o.arch, "qwen35moe") || !strcmp(o.arch, "qwen3next")) {
        if (o.layers || o.embd) {
            fprintf(stderr, "outboard synth: --layers and --embd take llama-shaped "
                            "architectures, not '%s'\n", o.arch);
            return 2;
        }
        return cli_synth_qwen35(&o); /* synth_qwen35.c */
    }
    if (o.nextn) {
        fprintf(stderr, "outboard synth: --nextn: %s has no multi-token-prediction blocks "
                "(qwen35, qwen35moe, qwen3next)\n", o.arch);
        return 2;
    }
    const synth_arch *ar = NULL;
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i].name, o.arch)) ar = &ARCHS[i];
    if (!ar) {
        fprintf(stderr, "outboard synth: architecture '%s' is not supported (llama, qwen2, "
                        "qwen3, gemma3, qwen3moe, qwen35, qwen35moe, qwen3next)\n", o.arch);
        return 2;
    }
    const synth_shape *sh = NULL;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(SHAPES[i].name, o.shape)) sh = &SHAPES[i];
    uint32_t type = OB_QTYPE_F32;
    const quant_preset *preset = NULL;
    if (sh && parse_type(o.type, &type) && (preset = quant_preset_find(o.type)) != NULL)
        type = preset->base_type;
    if (!sh || (!preset && parse_type(o.type, &type))) {
        fprintf(stderr, "outboard synth: unknown %s '%s'\n", sh ? "type" : "shape",
                sh ? o.type : o.shape);
        return 2;
    }
    synth_shape resized;
    if (o.embd || o.layers) { /* the shape's head counts stay; the head size follows the width */
        resized = *sh;
        if (o.embd) {
            resized.n_ff = sh->n_ff * o.embd / sh->n_embd;
            resized.n_embd = o.embd;
        }
        if (o.layers) resized.n_layer = o.layers;
        sh = &resized;
    }
    synth_dims d = {.n_layer = o.layers || strcmp(sh->name, "tiny") ? sh->n_layer
                                                                     : ar->tiny_layers,
                    .head_dim = ar->head_mult * sh->n_embd / sh->n_head,
                    .swa = o.swa >= 0 ? o.swa : ar->swa};
    synth_moe_dims md;
    const int moe = synth_moe_dims_pick(ar->name, sh->name, o.experts_used, o.merged_experts,
                                        &md);
    if (moe < 0) return 2;
    synth_state st = {.w = gguf_writer_new(), .rng = o.seed * 0x9e3779b97f4a7c15ull | 1,
                      .preset = preset, .pool = cli_synth_pool(),
                      .mix = {.n_layer = d.n_layer, .n_gqa = sh->n_head / sh->n_head_kv}};
    if (moe) {
        st.mix.n_expert = md.n_expert;
        if (!(st.moe = synth_moe_new(&md, o.seed))) st.w = (gguf_writer_free(st.w), NULL);
    }
    int64_t n_vocab = 0;
    int rc = 1;
    int rope_freqs = o.rope_freqs >= 0 ? o.rope_freqs : sh->rope_factor > 0;
    if (st.w && !write_vocab(&st, o.vocab, &n_vocab)) {
        write_hparams(&st, sh, ar, &d, &o, n_vocab);
        if (st.moe) synth_moe_hparams(st.moe, st.w, ar->name);
        if (preset) gguf_writer_set_u32(st.w, "general.file_type", preset->file_type);
        if (!write_tensors(&st, sh, ar, &d, type, n_vocab, rope_freqs) &&
            !gguf_writer_write(st.w, o.out, &st.err))
            rc = 0;
    }
    if (rc) fprintf(stderr, "outboard synth: %s\n", st.w ? st.err.msg : "out of memory");
    else if (!o.quiet)
        fprintf(stderr, "wrote %s: %s %s, %s, %lld tokens\n", o.out, ar->name, sh->name,
                 preset ? preset->name : gguf_qtype_name(type), (long long)n_vocab);
    for (size_t i = 0; i < st.n_bufs; i++) ob_free(st.bufs[i]);
    ob_free(st.bufs);
    gguf_writer_free(st.w);
    synth_moe_free(st.moe);
    cpu_pool_free(st.pool);
    return rc;
}

/* ---- shared with the architecture files (synth.h) -------------------------------------- */

float cli_synth_rand(synth_state *st) { return synth_rand(&st->rng); }

int cli_synth_vector(synth_state *st, const char *name, int64_t n, float base, float noise) {
    return add_vector(st, name, n, base, noise);
}

int cli_synth_matrix(synth_state *st, const char *name, uint32_t type, int64_t n_in,
                     int64_t n_out, float amp) {
    return add_matrix(st, name, type, n_in, n_out, amp);
}

int cli_synth_f32(synth_state *st, const char *name, int n_dims, const int64_t *ne, float *data) {
    if (keep_buf(st, data)) return -1;
    size_t n = 1;
    for (int i = 0; i < n_dims; i++) n *= (size_t)ne[i];
    return gguf_writer_add_tensor(st->w, name, OB_QTYPE_F32, n_dims, ne, data, n * 4, &st->err)
               ? -1 : 0;
}

int cli_synth_vocab(synth_state *st, const char *vocab_path, int64_t *n_vocab) {
    return write_vocab(st, vocab_path, n_vocab);
}

void cli_synth_u32(gguf_writer *w, const char *arch, const char *key, uint32_t v) {
    set_arch_u32(w, arch, key, v);
}

void cli_synth_f32_key(gguf_writer *w, const char *arch, const char *key, float v) {
    set_arch_f32(w, arch, key, v);
}

int cli_synth_type(const char *name, uint32_t *type, const quant_preset **preset) {
    *preset = NULL;
    if (!parse_type(name, type)) return 0;
    if ((*preset = quant_preset_find(name)) == NULL) return -1;
    *type = (*preset)->base_type;
    return 0;
}
