/*
 * Quantization presets and the per-tensor type choice (see mix.h for the rules). The rules are
 * a small decision list per tensor category, written to be read against llama.cpp's quantizer
 * documentation: category first (output, token embedding, attn_v, ffn_down, attn_output,
 * attn_qkv, attn_k), then the preset, then the layer position.
 */
#include "quant/mix.h"

#include "quant/quant.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    FT_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q8_0 = 7,
    FT_Q2_K = 10,
    FT_Q3_K_S = 11,
    FT_Q3_K_M = 12,
    FT_Q3_K_L = 13,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_IQ4_NL = 25,
    FT_IQ4_XS = 30,
    FT_BF16 = 32,
};

static const quant_preset PRESETS[] = {
    {"Q2_K", FT_Q2_K, OB_QTYPE_Q2_K},       {"Q3_K_S", FT_Q3_K_S, OB_QTYPE_Q3_K},
    {"Q3_K_M", FT_Q3_K_M, OB_QTYPE_Q3_K},   {"Q3_K_L", FT_Q3_K_L, OB_QTYPE_Q3_K},
    {"Q4_K_S", FT_Q4_K_S, OB_QTYPE_Q4_K},   {"Q4_K_M", FT_Q4_K_M, OB_QTYPE_Q4_K},
    {"Q5_K_S", FT_Q5_K_S, OB_QTYPE_Q5_K},   {"Q5_K_M", FT_Q5_K_M, OB_QTYPE_Q5_K},
    {"Q6_K", FT_Q6_K, OB_QTYPE_Q6_K},       {"Q8_0", FT_Q8_0, OB_QTYPE_Q8_0},
    {"Q4_0", FT_Q4_0, OB_QTYPE_Q4_0},       {"IQ4_NL", FT_IQ4_NL, OB_QTYPE_IQ4_NL},
    {"IQ4_XS", FT_IQ4_XS, OB_QTYPE_IQ4_XS}, {"F16", FT_F16, OB_QTYPE_F16},
    {"BF16", FT_BF16, OB_QTYPE_BF16},       {"F32", FT_F32, OB_QTYPE_F32},
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

const quant_preset *quant_preset_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_PRESETS; i++)
        if (strcasecmp(name, PRESETS[i].name) == 0) return &PRESETS[i];
    return NULL;
}

size_t quant_preset_count(void) {
    return N_PRESETS;
}

const quant_preset *quant_preset_at(size_t i) {
    return i < N_PRESETS ? &PRESETS[i] : NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool quant_mix_quantizable(const char *name, uint32_t n_dims) {
    if (!name || n_dims < 2 || !ends_with(name, "weight")) return false;
    static const char *const KEEP[] = {"_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d",
                                       "attn_rel_b.weight", "time_mix_first.weight"};
    for (size_t i = 0; i < sizeof KEEP / sizeof KEEP[0]; i++)
        if (strstr(name, KEEP[i])) return false;
    /* Positional and token-type embeddings (BERT-style) stay as they are. */
    return strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

typedef enum category {
    CAT_OTHER,
    CAT_OUTPUT,
    CAT_TOKEN_EMBD,
    CAT_ATTN_V,
    CAT_ATTN_K,
    CAT_ATTN_OUTPUT,
    CAT_FFN_DOWN,
} category;

static category tensor_category(const char *name) {
    if (strcmp(name, "output.weight") == 0) return CAT_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0) return CAT_TOKEN_EMBD;
    /* attn_qkv and attn_kv_b hold the values too, so they follow attn_v's rules. */
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight") ||
        strstr(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (strstr(name, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

/* The layers that get more bits in the _M presets: the first and last eighth, and every third
 * layer in between. */
static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static uint32_t attn_v_type(uint32_t ft, uint32_t t, const quant_mix_model *m, int64_t i,
                            int64_t n) {
    if (ft == FT_Q2_K)
        t = m->n_gqa >= 4 ? OB_QTYPE_Q4_K : OB_QTYPE_Q3_K;
    else if (ft == FT_Q3_K_M)
        t = i < 2 ? OB_QTYPE_Q5_K : OB_QTYPE_Q4_K;
    else if (ft == FT_Q3_K_L)
        t = OB_QTYPE_Q5_K;
    else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && m->n_gqa >= 4)
        t = OB_QTYPE_Q5_K;
    else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(i, n))
        t = OB_QTYPE_Q6_K;
    else if (ft == FT_Q4_K_S && i < 4)
        t = OB_QTYPE_Q5_K;
    /* With 8 experts these tensors are a tiny share of the model: spend the bits. */
    if (m->n_expert == 8) t = OB_QTYPE_Q8_0;
    return t;
}

static uint32_t ffn_down_type(uint32_t ft, uint32_t t, int64_t i, int64_t n) {
    if (ft == FT_Q2_K) return OB_QTYPE_Q3_K;
    if (ft == FT_Q3_K_M) return i < n / 16 ? OB_QTYPE_Q5_K : OB_QTYPE_Q4_K;
    if (ft == FT_Q3_K_L) return OB_QTYPE_Q5_K;
    if (ft == FT_Q4_K_M) return use_more_bits(i, n) ? OB_QTYPE_Q6_K : t;
    if (i < n / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS)) return OB_QTYPE_Q5_K;
    if (ft == FT_Q5_K_M && use_more_bits(i, n)) return OB_QTYPE_Q6_K;
    if (ft == FT_Q4_K_S && i < n / 8) return OB_QTYPE_Q5_K;
    return t;
}

static uint32_t attn_output_type(uint32_t ft, uint32_t t, const quant_mix_model *m) {
    if (m->n_expert == 8) {
        bool low = ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_IQ4_NL ||
                   ft == FT_Q4_K_S || ft == FT_Q4_K_M || ft == FT_IQ4_XS;
        return low ? OB_QTYPE_Q5_K : t;
    }
    if (ft == FT_Q2_K) return OB_QTYPE_Q3_K;
    if (ft == FT_Q3_K_M) return OB_QTYPE_Q4_K;
    if (ft == FT_Q3_K_L) return OB_QTYPE_Q5_K;
    return t;
}

/* A type whose blocks divide a row of ne0, starting from t (see mix.h's fallback chain). */
uint32_t quant_mix_fit_row(uint32_t t, int64_t ne0) {
    const quant_traits *info = quant_traits_ref(t);
    if (info && ne0 % info->block_size == 0) return t;
    switch (t) {
    case OB_QTYPE_Q2_K:
    case OB_QTYPE_Q3_K: t = OB_QTYPE_Q4_0; break;
    case OB_QTYPE_IQ4_XS: t = OB_QTYPE_IQ4_NL; break;
    case OB_QTYPE_Q4_K: t = OB_QTYPE_Q5_0; break;
    case OB_QTYPE_Q5_K: t = OB_QTYPE_Q5_1; break;
    case OB_QTYPE_Q6_K: t = OB_QTYPE_Q8_0; break;
    default: return OB_QTYPE_F16;
    }
    return ne0 % 32 == 0 ? t : OB_QTYPE_F16;
}

uint32_t quant_mix_tensor_type_ex(const quant_preset *p, const quant_mix_model *m, const char *name,
                                  int64_t layer, const int64_t *ne, uint32_t n_dims,
                                  uint32_t src_type) {
    if (!p || !m || !ne || !quant_mix_quantizable(name, n_dims)) return src_type;
    uint32_t t = p->base_type;
    if (t == OB_QTYPE_F32 || t == OB_QTYPE_F16 || t == OB_QTYPE_BF16) return t;
    if (layer < 0) {
        int l;
        layer = sscanf(name, "blk.%d.", &l) == 1 ? l : 0;
    }
    const int64_t n = m->n_layer > 0 ? m->n_layer : 1;
    const uint32_t ft = p->file_type;
    category cat = tensor_category(name);
    /* A tied embedding is also the output projection, and is quantized as one. */
    if (cat == CAT_TOKEN_EMBD && m->tied_embeddings) cat = CAT_OUTPUT;
    switch (cat) {
    case CAT_TOKEN_EMBD: break;
    case CAT_OUTPUT:
        if (ne[0] % 256 != 0)
            t = OB_QTYPE_Q8_0;
        else if (t != OB_QTYPE_Q8_0)
            t = OB_QTYPE_Q6_K;
        break;
    case CAT_ATTN_V: t = attn_v_type(ft, t, m, layer, n); break;
    case CAT_ATTN_K:
        if (m->n_expert == 8) t = OB_QTYPE_Q8_0;
        break;
    case CAT_ATTN_OUTPUT: t = attn_output_type(ft, t, m); break;
    case CAT_FFN_DOWN: t = ffn_down_type(ft, t, layer, n); break;
    case CAT_OTHER: break;
    }
    return quant_mix_fit_row(t, ne[0]);
}

uint32_t quant_mix_tensor_type(const quant_preset *p, const char *name, int64_t layer,
                               int64_t n_layer, const int64_t *ne, uint32_t n_dims) {
    const quant_mix_model m = {
        .n_layer = n_layer, .n_gqa = 1, .n_expert = 0, .tied_embeddings = false};
    return quant_mix_tensor_type_ex(p, &m, name, layer, ne, n_dims, OB_QTYPE_F32);
}
