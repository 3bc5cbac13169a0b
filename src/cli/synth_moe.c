/*
 * The mixture-of-experts tensors of `outboard synth` (see synth_moe.h). Weights are uniform
 * with variance 1/n_in per matrix like the rest of a synthetic model, so every expert's output
 * has the scale of a dense FFN's; the router too, so its softmax is neither flat nor one-hot
 * and the top-k choice changes from token to token.
 */
#include "cli/synth_moe.h"

#include "core/alloc.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct synth_moe {
    synth_moe_dims d;
    uint64_t rng;
    void **bufs; /* tensor data the writer borrows until it writes */
    size_t n_bufs;
};

bool synth_moe_dims_for(const char *arch, const char *shape, synth_moe_dims *out) {
    if (!strcmp(arch, "qwen35moe") || !strcmp(arch, "qwen3next")) {
        /* with a shared expert and its sigmoid gate; "27b" is the hybrid benchmark shape,
         * with Qwen3.5-35B-A3B's experts */
        *out = (synth_moe_dims){.n_expert = 8, .n_used = 2, .n_ff_exp = 256, .n_ff_shexp = 256};
        if (!strcmp(shape, "27b"))
            *out = (synth_moe_dims){.n_expert = 256, .n_used = 8, .n_ff_exp = 512,
                                    .n_ff_shexp = 512};
        return true;
    }
    if (strcmp(arch, "qwen3moe")) return false;
    /* tiny: rows of 256 so every K-quant fits the experts' down matrices too */
    *out = (synth_moe_dims){.n_expert = 8, .n_used = 2, .n_ff_exp = 512};
    if (!strcmp(shape, "30b-a3b")) /* Qwen3-30B-A3B */
        *out = (synth_moe_dims){.n_expert = 128, .n_used = 8, .n_ff_exp = 768};
    return true;
}

int synth_moe_dims_pick(const char *arch, const char *shape, int64_t n_used, bool merged,
                        synth_moe_dims *out) {
    const bool moe = synth_moe_dims_for(arch, shape, out);
    if (n_used > 0 && (!moe || n_used > out->n_expert)) {
        fprintf(stderr, "outboard synth: --experts-used %lld: %s\n", (long long)n_used,
                moe ? "more than the shape's experts" : "not a mixture-of-experts architecture");
        return -1;
    }
    if (n_used > 0) out->n_used = n_used;
    out->merged = merged;
    return moe;
}

synth_moe *synth_moe_new(const synth_moe_dims *d, uint64_t seed) {
    synth_moe *s = ob_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->d = *d;
    s->rng = seed * 0xd1b54a32d192ed03ull | 1;
    return s;
}

void synth_moe_free(synth_moe *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_bufs; i++) ob_free(s->bufs[i]);
    ob_free(s->bufs);
    ob_free(s);
}

static float rnd(uint64_t *s) { /* uniform [-1, 1) */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)(*s >> 40) / (float)(1 << 23) - 1.0f;
}

static void *keep(synth_moe *s, size_t n, size_t size) {
    void *p = ob_alloc(n ? n : 1, size);
    void **grown = p ? ob_realloc(s->bufs, s->n_bufs + 1, sizeof *grown) : NULL;
    if (!grown) {
        ob_free(p);
        return NULL;
    }
    s->bufs = grown;
    s->bufs[s->n_bufs++] = p;
    return p;
}

static void set_u32(gguf_writer *w, const char *arch, const char *key, int64_t v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    gguf_writer_set_u32(w, k, (uint32_t)v);
}

void synth_moe_hparams(const synth_moe *s, gguf_writer *w, const char *arch) {
    set_u32(w, arch, "expert_count", s->d.n_expert);
    set_u32(w, arch, "expert_used_count", s->d.n_used);
    set_u32(w, arch, "expert_feed_forward_length", s->d.n_ff_exp);
    if (s->d.n_ff_shexp > 0)
        set_u32(w, arch, "expert_shared_feed_forward_length", s->d.n_ff_shexp);
}

/* The data of a tensor of shape ne[0..n_dims) (ne[0] the row length) in `type`, uniform with
 * half-width amp; *nbytes its size. NULL with err filled on failure. */
static char *make_data(synth_moe *s, const char *name, uint32_t type, const int64_t *ne,
                       uint32_t n_dims, float amp, size_t *nbytes, ob_err *err) {
    const quant_traits *qt = quant_traits_ref(type);
    if (!qt || (type != OB_QTYPE_F32 && !qt->from_f32) || ne[0] % qt->block_size) {
        snprintf(err->msg, sizeof err->msg, "tensor '%s': cannot write type %s with rows of "
                 "%lld", name, gguf_qtype_name(type), (long long)ne[0]);
        return NULL;
    }
    int64_t rows = 1;
    for (uint32_t i = 1; i < n_dims; i++) rows *= ne[i];
    const size_t row = (size_t)(ne[0] / qt->block_size) * qt->type_size;
    char *data = keep(s, (size_t)rows, row);
    float *tmp = ob_alloc((size_t)ne[0], sizeof(float));
    if (!data || !tmp) {
        ob_free(tmp);
        snprintf(err->msg, sizeof err->msg, "tensor '%s': out of memory", name);
        return NULL;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < ne[0]; i++) tmp[i] = amp * rnd(&s->rng);
        if (type == OB_QTYPE_F32) memcpy(data + (size_t)r * row, tmp, row);
        else qt->from_f32(tmp, data + (size_t)r * row, ne[0]);
    }
    ob_free(tmp);
    *nbytes = (size_t)rows * row;
    return data;
}

static int add_tensor(synth_moe *s, gguf_writer *w, const char *name, uint32_t type,
                      const int64_t *ne, uint32_t n_dims, float amp, ob_err *err) {
    size_t nbytes;
    const char *data = make_data(s, name, type, ne, n_dims, amp, &nbytes, err);
    return !data || gguf_writer_add_tensor(w, name, type, n_dims, ne, data, nbytes, err) ? -1
                                                                                        : 0;
}

/* ffn_gate_up_exps [n_embd, 2 * n_ff, n_expert]: each expert's gate rows then its up rows,
 * the same values (same random draws) as separate gate and up tensors would hold, so a
 * merged file and a separate one describe the same model. */
static int add_merged(synth_moe *s, gguf_writer *w, const char *name, uint32_t type,
                      const int64_t *ne, float amp, ob_err *err) {
    size_t nb_gate, nb_up;
    const char *gate = make_data(s, name, type, ne, 3, amp, &nb_gate, err);
    const char *up = gate ? make_data(s, name, type, ne, 3, amp, &nb_up, err) : NULL;
    char *merged = up ? keep(s, 2, nb_gate) : NULL;
    if (!merged) return -1;
    const size_t slab = nb_gate / (size_t)ne[2];
    for (int64_t e = 0; e < ne[2]; e++) {
        memcpy(merged + (size_t)(2 * e) * slab, gate + (size_t)e * slab, slab);
        memcpy(merged + (size_t)(2 * e + 1) * slab, up + (size_t)e * slab, slab);
    }
    const int64_t mne[3] = {ne[0], 2 * ne[1], ne[2]};
    return gguf_writer_add_tensor(w, name, type, 3, mne, merged, 2 * nb_gate, err) ? -1 : 0;
}

typedef struct layer_ctx {
    synth_moe *s;
    gguf_writer *w;
    int64_t il;
    uint32_t type;
    const quant_preset *preset;
    const quant_mix_model *mix;
    ob_err *err;
} layer_ctx;

/* Adds "blk.<il>.<suffix>" of shape ne: in F32 when `f32`, else of the preset's choice for it,
 * else of `type`. */
static int add(const layer_ctx *c, const char *suffix, const int64_t *ne, uint32_t n_dims,
               float amp, bool f32, bool merged) {
    char name[96];
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)c->il, suffix);
    uint32_t type = c->type;
    if (f32) type = OB_QTYPE_F32;
    else if (c->preset)
        type = quant_mix_tensor_type_ex(c->preset, c->mix, name, -1, ne, n_dims, OB_QTYPE_F32);
    if (merged) return add_merged(c->s, c->w, name, type, ne, amp, c->err);
    return add_tensor(c->s, c->w, name, type, ne, n_dims, amp, c->err);
}

int synth_moe_layer(synth_moe *s, gguf_writer *w, int64_t il, int64_t n_embd, uint32_t type,
                    const quant_preset *preset, const quant_mix_model *mix, ob_err *err) {
    const synth_moe_dims *d = &s->d;
    const layer_ctx c = {s, w, il, type, preset, mix, err};
    const float a_e = sqrtf(3.0f / (float)n_embd), a_ff = sqrtf(3.0f / (float)d->n_ff_exp);
    const int64_t router[2] = {n_embd, d->n_expert}, up[3] = {n_embd, d->n_ff_exp, d->n_expert},
                  down[3] = {d->n_ff_exp, n_embd, d->n_expert};
    /* the converter keeps routers in F32 and llama-quantize leaves them so */
    if (add(&c, "ffn_gate_inp.weight", router, 2, a_e, true, false)) return -1;
    if (d->merged ? add(&c, "ffn_gate_up_exps.weight", up, 3, a_e, false, true)
                  : add(&c, "ffn_gate_exps.weight", up, 3, a_e, false, false) ||
                        add(&c, "ffn_up_exps.weight", up, 3, a_e, false, false))
        return -1;
    if (add(&c, "ffn_down_exps.weight", down, 3, a_ff, false, false)) return -1;
    if (d->n_ff_shexp == 0) return 0;
    const float a_sh = sqrtf(3.0f / (float)d->n_ff_shexp);
    const int64_t g[1] = {n_embd}, sh_up[2] = {n_embd, d->n_ff_shexp},
                  sh_down[2] = {d->n_ff_shexp, n_embd};
    return add(&c, "ffn_gate_inp_shexp.weight", g, 1, a_e, true, false) ||
                   add(&c, "ffn_gate_shexp.weight", sh_up, 2, a_e, false, false) ||
                   add(&c, "ffn_up_shexp.weight", sh_up, 2, a_e, false, false) ||
                   add(&c, "ffn_down_shexp.weight", sh_down, 2, a_sh, false, false)
               ? -1 : 0;
}
