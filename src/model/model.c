/*
 * Loading a model: map the GGUF, pick the family from general.architecture (refusing ones
 * outboard does not run, by name), touch every weight page, then let the family read its
 * hyperparameters and bind its tensors by its table (family.h), reporting progress. Also the
 * helpers the family files share for binding tensors and reading "<arch>.*" keys, and the
 * public model accessors.
 */
#include "model/model.h"
#include "model/qwen35_mtp.h"

#include "core/alloc.h"
#include "core/err.h"
#include "cpu/matmul.h"
#include "model/family.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const model_family *const FAMILIES[] = {
    &MODEL_FAMILY_LLAMA, &MODEL_FAMILY_QWEN2, &MODEL_FAMILY_QWEN3, &MODEL_FAMILY_GEMMA3,
    &MODEL_FAMILY_QWEN3MOE, &MODEL_FAMILY_QWEN35, &MODEL_FAMILY_QWEN35MOE, &MODEL_FAMILY_QWEN3NEXT,
};
#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])

static const model_family *arch_of(const ob_model *m) {
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (FAMILIES[i]->arch == m->hp.arch) return FAMILIES[i];
    return FAMILIES[0];
}

model_embed_fn model_embed_of(const ob_model *m) { return arch_of(m)->embed; }
model_layers_fn model_layers_of(const ob_model *m) { return arch_of(m)->layers; }

/* ---- keys ------------------------------------------------------------------------------ */

static void arch_key(const ob_model *m, const char *suffix, char *buf, size_t cap) {
    snprintf(buf, cap, "%s.%s", m->hp.arch_name, suffix);
}

ob_status model_key_i64(const ob_model *m, const char *suffix, int64_t *out, ob_err *err) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    return gguf_get_i64(m->file, key, out, err);
}

ob_status model_key_i64_or(const ob_model *m, const char *suffix, int64_t def, int64_t *out,
                           ob_err *err) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    if (!gguf_kv_find(m->file, key)) {
        *out = def;
        return OB_OK;
    }
    return gguf_get_i64(m->file, key, out, err);
}

ob_status model_key_f32_or(const ob_model *m, const char *suffix, float def, float *out,
                           ob_err *err) {
    char key[160];
    arch_key(m, suffix, key, sizeof key);
    ob_status st = gguf_get_f32_or(m->file, key, def, out, err);
    if (st) return st;
    /* no hyperparameter is meaningful as NaN or an infinity, and either poisons every
     * activation it touches */
    if (!isfinite(*out))
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s' is %g, expected a finite number",
                       gguf_name(m->file), key, *out);
    return OB_OK;
}

ob_status model_key_f32_in(const ob_model *m, const char *suffix, float def, float lo, float hi,
                           float *out, ob_err *err) {
    ob_status st = model_key_f32_or(m, suffix, def, out, err);
    if (st) return st;
    if (!(*out > lo && *out <= hi))
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s.%s' is %g, expected a value in (%g, %g]",
                       gguf_name(m->file), m->hp.arch_name, suffix, *out, lo, hi);
    return OB_OK;
}

/* ---- tensors --------------------------------------------------------------------------- */

/* The layer of a "blk.N.*" tensor, -1 for any other name. */
static int32_t layer_of_name(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    const long il = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && il >= 0 && il < INT32_MAX ? (int32_t)il : -1;
}

ob_status model_weight_register(ob_model *m, model_weight *w, ob_err *err) {
    const quant_traits *qt = quant_traits_get(w->type);
    if (!qt)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: tensor '%s': type %s is not supported",
                       gguf_name(m->file), w->name, gguf_qtype_name(w->type));
    if (w->n_in % qt->block_size)
        return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s': rows of %lld elements do not fill "
                       "whole %s blocks of %d", gguf_name(m->file), w->name, (long long)w->n_in,
                       gguf_qtype_name(w->type), (int)qt->block_size);
    model_weights *mw = &m->w;
    if (mw->n_table == mw->cap_table) {
        const int64_t cap = mw->cap_table ? 2 * mw->cap_table : 64;
        model_weight **grown = ob_realloc(mw->table, (size_t)cap, sizeof *grown);
        if (!grown) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
        mw->table = grown;
        mw->cap_table = cap;
    }
    if (mw->n_table >= INT32_MAX)
        return ob_fail(err, OB_ERR_LIMIT, "%s: too many tensors", gguf_name(m->file));
    w->id = (int32_t)mw->n_table;
    w->layer = layer_of_name(w->name);
    mw->table[mw->n_table++] = w;
    return OB_OK;
}

ob_status model_tensor_shaped(const ob_model *m, const char *name, int n_dims,
                              const int64_t *ne, const gguf_tensor **out, ob_err *err) {
    char want[128] = "[";
    bool fits = true;
    const gguf_tensor *t = *out = gguf_tensor_find(m->file, name);
    for (int i = 0; i < 4; i++) {
        const int64_t n = i < n_dims ? ne[i] : 1;
        fits = fits && t && t->ne[i] == n;
        if (i < n_dims) {
            const size_t used = strlen(want);
            snprintf(want + used, sizeof want - used, "%s%lld", i ? ", " : "", (long long)n);
        }
    }
    strcat(want, "]");
    if (!t)
        return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s' not found (expected %s)",
                       gguf_name(m->file), name, want);
    if (!fits)
        return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s': shape [%lld, %lld, %lld, %lld], "
                       "expected %s", gguf_name(m->file), name, (long long)t->ne[0],
                       (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], want);
    return OB_OK;
}

ob_status model_bind_matrix(ob_model *m, const char *name, int64_t n_in, int64_t n_out,
                            model_weight *out, ob_err *err) {
    const gguf_tensor *t;
    ob_status st = model_tensor_shaped(m, name, 2, (const int64_t[]){n_in, n_out}, &t, err);
    if (st) return st;
    *out = (model_weight){.name = t->name.ptr, .data = t->data, .type = t->type, .n_in = n_in,
                          .n_out = n_out, .row_size = t->nbytes / (size_t)n_out};
    return model_weight_register(m, out, err);
}

ob_status model_bind_vector(const ob_model *m, const char *name, int64_t n, float **out,
                            ob_err *err) {
    return model_bind_vector_2d(m, name, n, 1, out, err);
}

ob_status model_bind_vector_2d(const ob_model *m, const char *name, int64_t n0, int64_t n1,
                               float **out, ob_err *err) {
    *out = NULL;
    const gguf_tensor *t;
    ob_status st = model_tensor_shaped(m, name, n1 == 1 ? 1 : 2, (const int64_t[]){n0, n1}, &t,
                                       err);
    if (st) return st;
    const int64_t n = n0 * n1;
    const quant_traits *qt = quant_traits_get(t->type);
    if (!qt || !qt->to_f32 || n % qt->block_size)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: tensor '%s': type %s cannot be read as f32",
                       gguf_name(m->file), name, gguf_qtype_name(t->type));
    *out = ob_alloc((size_t)n, sizeof(float));
    if (!*out) return ob_fail(err, OB_ERR_NOMEM, "tensor '%s': out of memory", name);
    qt->to_f32(t->data, *out, n);
    return OB_OK;
}

/* ---- load ------------------------------------------------------------------------------ */

/* After binding: marks the embedding and output weights (one weight when tied) and lists the
 * MoE blocks, so backends can tell which weights their layer range reads. */
static ob_status finish_weights(ob_model *m, ob_err *err) {
    model_weights *w = &m->w;
    w->table[w->tok_embd.id]->embed = true;
    w->table[w->output.id]->head = true;
    w->output.head = true; /* the copy a tied output holds */
    bool any_moe = false;
    for (int64_t il = 0; il < m->hp.n_layer; il++) any_moe |= w->layers[il].moe != NULL;
    if (any_moe) {
        w->moe = ob_calloc((size_t)m->hp.n_layer, sizeof *w->moe);
        if (!w->moe) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", gguf_name(m->file));
        for (int64_t il = 0; il < m->hp.n_layer; il++)
            if (w->layers[il].moe) w->moe[il] = &w->layers[il].moe->ffn;
    }
    w->for_backends = (model_backend_weights){
        .table = (const model_weight *const *)w->table, .n = w->n_table, .moe = w->moe};
    return OB_OK;
}

/* Totals and the type holding most weight bytes, for ob_model_info. */
static void model_tally(ob_model *m) {
    uint64_t by_type[OB_QTYPE_COUNT] = {0};
    for (int64_t i = 0; i < gguf_tensor_count(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        m->n_params += (uint64_t)gguf_tensor_nelements(t);
        m->n_bytes += t->nbytes;
        if (t->type < OB_QTYPE_COUNT && t->ne[1] > 1) by_type[t->type] += t->nbytes;
    }
    uint32_t best = 0;
    for (uint32_t i = 0; i < OB_QTYPE_COUNT; i++)
        if (by_type[i] > by_type[best]) best = i;
    m->type_name = gguf_qtype_name(best);
}

bool model_load_advance(const ob_model *m, uint64_t bytes) {
    model_load_progress *lp = m->loading;
    if (!lp || lp->cancelled) return !lp;
    lp->done += bytes;
    if (lp->params->progress && lp->done >= lp->next_report) {
        float f = lp->total ? (float)lp->done / (float)lp->total : 1.0f;
        if (!lp->params->progress(f < 1.0f ? f : 1.0f, lp->params->progress_user))
            lp->cancelled = true;
        lp->next_report = lp->done + lp->total / 100;
    }
    return !lp->cancelled;
}

/* Reads every page of the tensor data so the first forward pass does not fault them in one by
 * one (the file's pages, or with a cold cache the disk, is the slow part of loading). */
static ob_status prefault(const ob_model *m, const ob_model_params *p, ob_err *err) {
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < gguf_tensor_count(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        const volatile uint8_t *d = t->data;
        for (size_t off = 0; off < t->nbytes; off += 4096) {
            if (p->prefault) sink ^= d[off];
            size_t step = t->nbytes - off < 4096 ? t->nbytes - off : 4096;
            if (!model_load_advance(m, step))
                return ob_fail(err, OB_ERR_ARG, "%s: loading cancelled", gguf_name(m->file));
        }
    }
    (void)sink;
    return OB_OK;
}

/* A special token id from the metadata, -1 when absent, "none" (0xffffffff) or outside the
 * vocabulary (the tokenizer's warnings say so). */
static int32_t special_id(const ob_model *m, const char *key) {
    uint32_t v;
    if (!gguf_kv_find(m->file, key) || gguf_get_u32(m->file, key, &v, NULL) ||
        (int64_t)v >= m->hp.n_vocab)
        return -1;
    return (int32_t)v;
}

static ob_status pick_arch(ob_model *m, const model_family **out, ob_err *err) {
    ob_str arch;
    ob_status st = gguf_get_str(m->file, "general.architecture", &arch, err);
    if (st) return st;
    char names[256] = "";
    for (size_t i = 0; i < N_FAMILIES; i++) {
        if (ob_str_eq_cstr(arch, FAMILIES[i]->name)) {
            *out = FAMILIES[i];
            snprintf(m->hp.arch_name, sizeof m->hp.arch_name, "%s", FAMILIES[i]->name);
            m->hp.arch = FAMILIES[i]->arch;
            return OB_OK;
        }
        const size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", FAMILIES[i]->name);
    }
    return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported "
                   "(supported: %s)", gguf_name(m->file), OB_STR_FMT(arch), names);
}

void ob_model_params_init(ob_model_params *p) {
    *p = (ob_model_params){.progress = NULL, .progress_user = NULL, .prefault = true};
}

/* <arch>.pooling_type: how embeddings pool (llama.cpp's numbering; 4, a reranker's score
 * head, is not run). Absent: none, as llama.cpp reads it. */
static ob_status read_pooling(ob_model *m, ob_err *err) {
    int64_t v;
    ob_status st = model_key_i64_or(m, "pooling_type", OB_POOLING_NONE, &v, err);
    if (st) return st;
    if (v < OB_POOLING_NONE || v > OB_POOLING_LAST)
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: %s.pooling_type %lld is not supported "
                       "(0 none, 1 mean, 2 cls, 3 last)", gguf_name(m->file), m->hp.arch_name,
                       (long long)v);
    m->hp.pooling = (ob_pooling)v;
    return OB_OK;
}

ob_status ob_model_load(const char *path, const ob_model_params *params, ob_model **out,
                        ob_err *err) {
    ob_model_params defaults;
    ob_model_params_init(&defaults);
    const ob_model_params *p = params ? params : &defaults;
    *out = NULL;
    ob_model *m = ob_calloc(1, sizeof *m);
    if (!m) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path);
    const model_family *family = NULL;
    ob_status st = gguf_open_set(path, &m->file, err); /* a split set reads as one file */
    if (!st) st = pick_arch(m, &family, err);
    model_load_progress lp = {.params = p};
    if (!st) {
        model_tally(m);
        lp.total = m->n_bytes; /* the page pass */
        m->loading = &lp;
        st = prefault(m, p, err);
    }
    if (!st) st = family->read_hparams(m, err);
    if (!st) st = model_bind_all(m, family, err);
    if (!st && family->bind_extra) st = family->bind_extra(m, err);
    if (!st) st = finish_weights(m, err);
    if (!st) st = read_pooling(m, err);
    m->loading = NULL;
    if (!st) {
        ob_str name = {"", 0};
        if (gguf_kv_find(m->file, "general.name")) gguf_get_str(m->file, "general.name", &name, NULL);
        m->name = ob_strndup(name.ptr, name.len);
        if (!m->name) st = ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!st) {
        m->bos_id = special_id(m, "tokenizer.ggml.bos_token_id");
        m->eos_id = special_id(m, "tokenizer.ggml.eos_token_id");
        model_vocab_load(m);
        if (p->progress && !p->progress(1.0f, p->progress_user))
            st = ob_fail(err, OB_ERR_ARG, "%s: loading cancelled", gguf_name(m->file));
    }
    if (st) {
        ob_model_free(m);
        return st;
    }
    *out = m;
    return OB_OK;
}

void ob_model_free(ob_model *m) {
    if (!m) return;
    model_layers_free(m, arch_of(m));
    model_mtp_free(m->mtp);
    ob_free(m->hp.swa);
    ob_free(m->hp.recurrent);
    ob_free(m->w.layers);
    ob_free(m->w.table);
    ob_free(m->w.moe);
    ob_free(m->w.output_norm);
    ob_free(m->w.rope_freqs);
    ob_free(m->name);
    model_vocab_free(m);
    /* repacked copies of the weights (src/cpu/repack.c) go with the mapping */
    for (int64_t i = 0; m->file && i < gguf_tensor_count(m->file); i++)
        cpu_weight_release(gguf_tensor_at(m->file, i)->data);
    gguf_close(m->file);
    ob_free(m);
}

const char *ob_model_warnings(const ob_model *m) {
    return m->vocab ? tok_vocab_warnings(m->vocab) : "";
}

void ob_model_get_info(const ob_model *m, ob_model_info *out) {
    const model_hparams *hp = &m->hp;
    *out = (ob_model_info){
        .arch = hp->arch_name, .name = m->name ? m->name : "", .type_name = m->type_name,
        .n_vocab = hp->n_vocab, .n_ctx_train = hp->n_ctx_train, .n_embd = hp->n_embd,
        .n_layer = hp->n_layer, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
        .head_dim = hp->head_dim, .n_ff = hp->n_ff, .n_params = m->n_params,
        .n_bytes = m->n_bytes, .rope_freq_base = hp->rope_base, .bos_id = m->bos_id,
        .eos_id = m->eos_id,
    };
}
