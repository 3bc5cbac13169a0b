/*
 * tok_encode: text -> ids. Special tokens are cut out first (tok_partition), then each raw
 * fragment goes through the vocabulary's algorithm, with BOS/EOS (CLS/SEP for WordPiece) around
 * the whole when the caller asks for special tokens. For SentencePiece the dummy-prefix space
 * goes before a fragment that starts the text or follows a special token, as in the reference.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "tokenizer/frag_cache.h"
#include "tokenizer/tok_impl.h"

#include <string.h>

/* SentencePiece input: optional leading space, then every ' ' written as U+2581. */
static ob_status spm_fragment(const tok_vocab *v, const char *text, size_t len, bool prefix,
                              tok_ids *out) {
    size_t cap;
    if (ob_mul_size(len + 1, 3, &cap)) return OB_ERR_NOMEM;
    char *buf = ob_alloc(cap, 1);
    if (!buf) return OB_ERR_NOMEM;
    size_t n = 0;
    if (prefix) memcpy(buf, "\xe2\x96\x81", 3), n = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(buf + n, "\xe2\x96\x81", 3), n += 3;
        else buf[n++] = text[i];
    }
    ob_status st = tok_spm_encode(v, buf, n, out);
    ob_free(buf);
    return st;
}

/* BPE families that write spaces as U+2581 before merging (SentencePiece-style BPE). */
static ob_status bpe_fragment(const tok_vocab *v, const char *text, size_t len, tok_ids *out,
                              ob_err *err) {
    if (!v->escape_whitespace) return tok_bpe_encode(v, text, len, out, err);
    size_t cap;
    if (ob_mul_size(len + 1, 3, &cap)) return ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory");
    char *buf = ob_alloc(cap, 1);
    if (!buf) return ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(buf + n, "\xe2\x96\x81", 3), n += 3;
        else buf[n++] = text[i];
    }
    ob_status st = tok_bpe_encode(v, buf, n, out, err);
    ob_free(buf);
    return st;
}

static ob_status encode_fragments(const tok_vocab *v, const char *text, const tok_frag *fr,
                                  size_t nf, tok_ids *out, ob_err *err) {
    bool prev_special = true; /* the text's start counts as "after a special token" */
    for (size_t i = 0; i < nf; i++) {
        if (fr[i].id >= 0) {
            tok_ids_push(out, fr[i].id);
            prev_special = true;
            continue;
        }
        const char *p = text + fr[i].off;
        const bool prefix = v->type == TOK_TYPE_SPM && v->add_space_prefix && prev_special;
        prev_special = false;
        const bool long_one = v->frag_cache && fr[i].len >= TOK_FRAG_CACHE_MIN;
        if (long_one && tok_frag_cache_get(v->frag_cache, p, fr[i].len, prefix, out)) continue;
        const size_t before = out->n;
        ob_status st;
        switch (v->type) {
        case TOK_TYPE_SPM: st = spm_fragment(v, p, fr[i].len, prefix, out); break;
        case TOK_TYPE_BPE: st = bpe_fragment(v, p, fr[i].len, out, err); break;
        default: st = tok_wpm_encode(v, p, fr[i].len, out); break;
        }
        if (st == OB_ERR_NOMEM) return ob_fail(err, st, "tokenize: no memory");
        if (st) return st;
        if (long_one && !out->oom)
            tok_frag_cache_put(v->frag_cache, p, fr[i].len, prefix, out->v + before,
                               out->n - before);
    }
    return OB_OK;
}

ob_status tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **ids, size_t *n_ids, ob_err *err) {
    if (!v || !ids || !n_ids || (!text && len))
        return ob_fail(err, OB_ERR_ARG, "tok_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (len > TOK_MAX_TEXT)
        return ob_fail(err, OB_ERR_LIMIT, "tokenize: %zu bytes of text, limit %u", len,
                       TOK_MAX_TEXT);
    tok_frag *fr = NULL;
    size_t nf = 0;
    ob_status st = tok_partition(v, text, len, parse_special, &fr, &nf, err);
    if (st) return st;
    tok_ids out = {0};
    bool wpm = v->type == TOK_TYPE_WPM;
    if (add_special && (wpm || v->add_bos) && v->bos >= 0) tok_ids_push(&out, v->bos);
    st = encode_fragments(v, text, fr, nf, &out, err);
    if (!st && add_special && wpm && v->sep >= 0) tok_ids_push(&out, v->sep);
    if (!st && add_special && !wpm && v->add_eos && v->eos >= 0) tok_ids_push(&out, v->eos);
    ob_free(fr);
    if (!st && out.oom) st = ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory for ids");
    if (st) {
        ob_free(out.v);
        return st;
    }
    *ids = out.v;
    *n_ids = out.n;
    return OB_OK;
}
