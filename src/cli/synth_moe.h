/*
 * The mixture-of-experts part of `outboard synth` (synth_moe.c): the expert keys and, per
 * layer, the router and the experts' 3-D tensors as llama.cpp's converter writes them
 * (blk.N.ffn_gate_inp.weight [n_embd, n_expert] in F32; blk.N.ffn_{gate,up}_exps.weight
 * [n_embd, n_ff_exp, n_expert] and blk.N.ffn_down_exps.weight [n_ff_exp, n_embd, n_expert] in
 * the model's type; or, merged, blk.N.ffn_gate_up_exps.weight [n_embd, 2 * n_ff_exp,
 * n_expert]), plus a shared expert with its gate when asked for.
 */
#ifndef OB_CLI_SYNTH_MOE_H
#define OB_CLI_SYNTH_MOE_H

#include "core/err.h"
#include "gguf/gguf.h"
#include "quant/mix.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct synth_moe_dims {
    int64_t n_expert, n_used; /* experts, experts per token */
    int64_t n_ff_exp;         /* each expert's hidden width */
    int64_t n_ff_shexp;       /* shared expert's width, 0 = none */
    bool merged;              /* write ffn_gate_up_exps instead of gate and up */
} synth_moe_dims;

/* The expert sizes `outboard synth` writes for this architecture and shape; false when the
 * architecture is not a mixture of experts. */
bool synth_moe_dims_for(const char *arch, const char *shape, synth_moe_dims *out);

/* synth_moe_dims_for, then the options: n_used > 0 experts per token instead of the shape's
 * (every expert used by every token makes each expert's rows those of the whole batch), the
 * merged form. 1: a mixture of experts, 0: not one, -1: the options do not fit (said on
 * stderr). */
int synth_moe_dims_pick(const char *arch, const char *shape, int64_t n_used, bool merged,
                        synth_moe_dims *out);

/* Tensor data written by one synth run (freed by synth_moe_free). */
typedef struct synth_moe synth_moe;

synth_moe *synth_moe_new(const synth_moe_dims *d, uint64_t seed);
void synth_moe_free(synth_moe *s);

/* Sets "<arch>.expert_count", expert_used_count, expert_feed_forward_length (and
 * expert_shared_feed_forward_length when there is a shared expert). */
void synth_moe_hparams(const synth_moe *s, gguf_writer *w, const char *arch);

/* Adds layer il's router, experts and shared expert. `type` is the experts' type, or, with a
 * preset, the preset picks per tensor. -1 with err filled on failure. */
int synth_moe_layer(synth_moe *s, gguf_writer *w, int64_t il, int64_t n_embd, uint32_t type,
                    const quant_preset *preset, const quant_mix_model *mix, ob_err *err);

#endif
