/*
 * The parts of `outboard synth` (cmd_synth.c) that architecture-specific writers share: the
 * writer state, random tensors, the vocabulary and "<arch>.*" keys. An architecture whose
 * layers are not llama-shaped (qwen35: synth_qwen35.c) writes its own tensors with these.
 */
#ifndef OB_CLI_SYNTH_H
#define OB_CLI_SYNTH_H

#include "cli/cli_args.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "quant/mix.h"

#include <stdint.h>

typedef struct synth_state {
    gguf_writer *w;
    const quant_preset *preset; /* per-tensor types as llama-quantize picks them, or NULL */
    quant_mix_model mix;
    void **bufs; /* tensor data the writer borrows until it writes */
    size_t n_bufs;
    uint64_t rng;
    ob_err err;
    struct synth_moe *moe; /* the experts of a mixture-of-experts architecture, or NULL */
    struct cpu_pool *pool; /* quantizes a matrix's rows in parallel; NULL: on this thread */
} synth_state;

/* A pool over the machine's physical cores for st->pool, or NULL (then one thread works). */
struct cpu_pool *cli_synth_pool(void);

/* Uniform in [-1, 1) from the state's generator. */
float cli_synth_rand(synth_state *st);
/* Adds an F32 vector of n elements, base + noise * u. 0, or -1 with st->err set. */
int cli_synth_vector(synth_state *st, const char *name, int64_t n, float base, float noise);
/* Adds a [n_in, n_out] matrix of `type` (or the preset's pick), uniform in +-amp. */
int cli_synth_matrix(synth_state *st, const char *name, uint32_t type, int64_t n_in,
                     int64_t n_out, float amp);
/* Adds an F32 tensor of the given dims (ne order) from data, which st then owns. */
int cli_synth_f32(synth_state *st, const char *name, int n_dims, const int64_t *ne, float *data);
/* The built-in byte vocabulary, or --vocab's tokenizer.*; sets *n_vocab. */
int cli_synth_vocab(synth_state *st, const char *vocab_path, int64_t *n_vocab);
/* "<arch>.<key>" = v. */
void cli_synth_u32(gguf_writer *w, const char *arch, const char *key, uint32_t v);
void cli_synth_f32_key(gguf_writer *w, const char *arch, const char *key, float v);
/* A tensor type by name (f32, q4_k, ...) or a preset (q4_k_m): *type its base type. */
int cli_synth_type(const char *name, uint32_t *type, const quant_preset **preset);

/* synth_qwen35.c: `outboard synth --arch qwen35`. Returns the process exit code. */
int cli_synth_qwen35(const cli_synth_args *o);

#endif
