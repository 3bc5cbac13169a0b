/*
 * Quantization presets ("Q4_K_M", "Q5_K_S", ...): which tensor type each tensor of a model gets.
 * A preset is a base type plus per-tensor exceptions, chosen as llama.cpp's quantizer chooses
 * them, so a file quantized here has the same type layout as one from llama-quantize:
 *   - output.weight (and token_embd.weight when the output is tied to it) gets Q6_K (Q8_0 when
 *     its rows are not a multiple of 256, and for the Q8_0 preset);
 *   - attn_v and ffn_down get more bits in some layers (the first and last eighth of the layers
 *     and every third one between, for the _M presets; the first eighth for Q4_K_S / IQ4_*;
 *     all of them for Q2_K / Q3_K_L), attn_output more bits for Q2_K / Q3_K_M / Q3_K_L;
 *   - a tensor whose rows do not split into the type's blocks falls back to a compatible type
 *     (Q2_K/Q3_K -> Q4_0, IQ4_XS -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16);
 *   - 1-D tensors, norms, MoE routers and positional embeddings are never quantized.
 * Differences from llama.cpp: no importance matrix, no size-class (70B) rule; where it has no
 * fallback (Q4_0/Q8_0/IQ4_NL rows not a multiple of 32) this falls back to F16 instead of failing.
 */
#ifndef OB_QUANT_MIX_H
#define OB_QUANT_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct quant_preset {
    const char *name;   /* "Q4_K_M", as llama-quantize spells it */
    uint32_t file_type; /* value for general.file_type (llama.cpp's llama_ftype numbering) */
    uint32_t base_type; /* ob_qtype most weight tensors get */
} quant_preset;

/* The preset named `name` (case-insensitive), or NULL when there is none. */
const quant_preset *quant_preset_find(const char *name);

/* Presets in a fixed order, for listing them (i < quant_preset_count()). */
size_t quant_preset_count(void);
const quant_preset *quant_preset_at(size_t i);

/* Model-level facts some rules depend on. */
typedef struct quant_mix_model {
    int64_t n_layer;      /* block_count */
    int64_t n_gqa;        /* n_head / n_head_kv (1 when unknown) */
    int64_t n_expert;     /* experts per MoE layer (0 or 1 when dense) */
    bool tied_embeddings; /* no output.weight: token_embd.weight doubles as the output */
} quant_mix_model;

/* Whether a tensor is one that presets quantize at all: at least 2-D, named "*weight", and not
 * a norm, MoE router or positional / token-type embedding. */
bool quant_mix_quantizable(const char *name, uint32_t n_dims);

/* The type for tensor `name` (shape ne[0..n_dims), ne[0] the row length) of a model described
 * by `m`, currently of type src_type. `layer` is its block index, or -1 to read it from a
 * "blk.N." name. Tensors the preset does not quantize keep src_type. Never fails: the result
 * always divides ne[0] into whole blocks (F16 as the last resort). */
uint32_t quant_mix_tensor_type_ex(const quant_preset *p, const quant_mix_model *m, const char *name,
                                  int64_t layer, const int64_t *ne, uint32_t n_dims,
                                  uint32_t src_type);

/* `type` itself when its blocks divide a row of ne0 elements, else the fallback chain above
 * (for `outboard quantize --pure`, which skips the per-tensor exceptions). */
uint32_t quant_mix_fit_row(uint32_t type, int64_t ne0);

/* The common case: a dense model with untied output, n_gqa 1, source tensors in F32. */
uint32_t quant_mix_tensor_type(const quant_preset *p, const char *name, int64_t layer,
                               int64_t n_layer, const int64_t *ne, uint32_t n_dims);

#endif
