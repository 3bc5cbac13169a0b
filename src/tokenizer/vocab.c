/*
 * Loading a vocabulary from GGUF metadata (tokenizer.ggml.*): token texts, scores and types,
 * BPE merges, special token ids and the add-BOS/EOS/space-prefix switches. Defaults follow the
 * model type the way llama.cpp sets them, so a file without a key behaves as it does there.
 * Everything is copied out of the gguf_file into pools owned by the vocabulary.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "tokenizer/frag_cache.h"
#include "tokenizer/tok_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KEY(k) "tokenizer.ggml." k

/* ---- token list ------------------------------------------------------------------------- */

static uint32_t attr_from_type(int64_t t) {
    switch (t) {
    case 1: return TOK_ATTR_NORMAL;
    case 2: return TOK_ATTR_UNKNOWN;
    case 3: return TOK_ATTR_CONTROL;
    case 4: return TOK_ATTR_USER_DEFINED;
    case 5: return TOK_ATTR_UNUSED;
    case 6: return TOK_ATTR_BYTE;
    default: return TOK_ATTR_UNDEFINED;
    }
}

/* Optional per-token arrays: scores (f32 or i32) and token types (i32), at least n long. */
static ob_status get_token_arrays(const gguf_file *f, uint64_t n, const gguf_kv **scores,
                                  const gguf_kv **types, ob_err *err) {
    *scores = gguf_kv_find(f, KEY("scores"));
    *types = gguf_kv_find(f, KEY("token_type"));
    const gguf_kv *s = *scores, *t = *types;
    if (s && (s->type != GGUF_VTYPE_ARRAY ||
              (s->arr_type != GGUF_VTYPE_FLOAT32 && s->arr_type != GGUF_VTYPE_INT32)))
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': expected arr[f32] or arr[i32]",
                       gguf_name(f), KEY("scores"));
    if (s && s->arr_len < n)
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': %" PRIu64 " scores for %" PRIu64
                       " tokens", gguf_name(f), KEY("scores"), s->arr_len, n);
    if (t && (t->type != GGUF_VTYPE_ARRAY || t->arr_type != GGUF_VTYPE_INT32))
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': expected arr[i32]", gguf_name(f),
                       KEY("token_type"));
    if (t && t->arr_len < n)
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': %" PRIu64 " types for %" PRIu64
                       " tokens", gguf_name(f), KEY("token_type"), t->arr_len, n);
    return OB_OK;
}

/* Copies the texts into one pool (an empty text becomes "[EMPTY_<id>]" as in the reference)
 * and indexes them. A duplicate text is a format error: lookups would be ambiguous. */
static ob_status load_tokens(tok_vocab *v, const gguf_file *f, ob_err *err) {
    const gguf_kv *list, *scores, *types;
    ob_status st = gguf_get_arr(f, KEY("tokens"), GGUF_VTYPE_STRING, &list, err);
    if (st) return st;
    if (list->arr_len == 0 || list->arr_len > INT32_MAX)
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': %" PRIu64 " tokens", gguf_name(f),
                       KEY("tokens"), list->arr_len);
    v->n = (int64_t)list->arr_len;
    if ((st = get_token_arrays(f, list->arr_len, &scores, &types, err))) return st;
    size_t total = 0;
    for (int64_t i = 0; i < v->n; i++) total += gguf_arr_str(list, (uint64_t)i).len + 24;
    v->tok = ob_calloc((size_t)v->n, sizeof *v->tok);
    v->pool = ob_alloc(total, 1);
    if (!v->tok || !v->pool || tok_map_init(&v->map, (size_t)v->n, v->pool))
        return ob_fail(err, OB_ERR_NOMEM, "%s: no memory for %" PRId64 " tokens", gguf_name(f),
                       v->n);
    size_t off = 0;
    int64_t bad_scores = 0, bad_types = 0;
    for (int64_t i = 0; i < v->n; i++) {
        ob_str s = gguf_arr_str(list, (uint64_t)i);
        char *dst = v->pool + off;
        size_t len = s.len;
        if (len == 0) len = (size_t)snprintf(dst, 24, "[EMPTY_%" PRId64 "]", i);
        else memcpy(dst, s.ptr, len);
        dst[len] = 0;
        if (len > UINT32_MAX - 1 || off > UINT32_MAX)
            return ob_fail(err, OB_ERR_LIMIT, "%s: key '%s': token texts over 4 GiB",
                           gguf_name(f), KEY("tokens"));
        tok_token *t = &v->tok[i];
        t->off = (uint32_t)off;
        t->len = (uint32_t)len;
        t->score = scores ? (float)gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
        if (isnan(t->score)) { /* merge order compares scores: keep it a total order */
            if (!bad_scores++)
                tok_vocab_warn(v, "%s: token %" PRId64 " has score NaN; NaN scores count as "
                               "-inf", KEY("scores"), i);
            t->score = -INFINITY;
        }
        int64_t type = types ? gguf_arr_i64(types, (uint64_t)i) : 1;
        t->attr = attr_from_type(type);
        if (t->attr == TOK_ATTR_UNDEFINED && type != 0 && !bad_types++)
            tok_vocab_warn(v, "%s: token %" PRId64 " has type %" PRId64 ", expected 0..6; such "
                           "tokens are treated as undefined", KEY("token_type"), i, type);
        if (!tok_map_put(&v->map, dst, len, (int32_t)i))
            return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': duplicate token '%.*s' at id %"
                           PRId64 " (first at %d)", gguf_name(f), KEY("tokens"), (int)len, dst,
                           i, tok_map_get(&v->map, dst, len));
        if (len > v->max_token_len) v->max_token_len = len;
        off += len + 1;
    }
    return OB_OK;
}

/* BPE merges "left right" -> rank (the index). Split at the first space after the first byte,
 * as the reference does; a merge without a space can never match and is kept harmlessly. */
static ob_status load_merges(tok_vocab *v, const gguf_file *f, ob_err *err) {
    const gguf_kv *m;
    ob_status st = gguf_get_arr(f, KEY("merges"), GGUF_VTYPE_STRING, &m, err);
    if (st) return st;
    if (m->arr_len > INT32_MAX)
        return ob_fail(err, OB_ERR_LIMIT, "%s: key '%s': %" PRIu64 " merges", gguf_name(f),
                       KEY("merges"), m->arr_len);
    size_t total = 0;
    for (uint64_t i = 0; i < m->arr_len; i++) total += gguf_arr_str(m, i).len + 1;
    if (total > UINT32_MAX) /* merge keys are 32-bit offsets into one pool */
        return ob_fail(err, OB_ERR_LIMIT, "%s: key '%s': merge texts over 4 GiB", gguf_name(f),
                       KEY("merges"));
    v->merge_pool = ob_alloc(total ? total : 1, 1);
    if (!v->merge_pool || tok_map_init(&v->merges, (size_t)m->arr_len, v->merge_pool))
        return ob_fail(err, OB_ERR_NOMEM, "%s: no memory for %" PRIu64 " merges", gguf_name(f),
                       m->arr_len);
    size_t off = 0;
    for (uint64_t i = 0; i < m->arr_len; i++) {
        ob_str s = gguf_arr_str(m, i);
        char *dst = v->merge_pool + off;
        memcpy(dst, s.ptr, s.len);
        dst[s.len] = 0;
        /* a later duplicate keeps the first (lower) rank, like the reference's emplace */
        tok_map_put(&v->merges, dst, s.len, (int32_t)i);
        off += s.len + 1;
    }
    return OB_OK;
}

void tok_vocab_warn(tok_vocab *v, const char *fmt, ...) {
    size_t used = strlen(v->warnings), cap = sizeof v->warnings;
    if (used + 2 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v->warnings + used, cap - used - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        v->warnings[used] = 0;
        return;
    }
    used = strlen(v->warnings);
    v->warnings[used] = '\n';
    v->warnings[used + 1] = 0;
}

const char *tok_vocab_warnings(const tok_vocab *v) { return v->warnings; }

/* ---- type defaults and switches --------------------------------------------------------- */

static ob_status set_type(tok_vocab *v, const gguf_file *f, ob_err *err) {
    ob_str model;
    ob_status st = gguf_get_str(f, KEY("model"), &model, err);
    if (st) return st;
    int32_t none = -1;
    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask = none;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = none;
    if (ob_str_eq_cstr(model, "llama")) {
        v->type = TOK_TYPE_SPM;
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_space_prefix = true, v->add_bos = true;
    } else if (ob_str_eq_cstr(model, "bert")) {
        v->type = TOK_TYPE_WPM;
        v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask = 103;
        v->add_bos = true, v->add_sep = true;
    } else if (ob_str_eq_cstr(model, "gpt2")) {
        v->type = TOK_TYPE_BPE;
        v->bos = 11, v->eos = 11; /* the reference's defaults (Falcon's <|endoftext|>) */
        v->byte_encode = true;
    } else {
        return ob_fail(err, OB_ERR_UNSUPPORTED, "%s: key '%s': tokenizer model '%.*s' is not "
                       "supported (expected llama, gpt2 or bert)", gguf_name(f), KEY("model"),
                       OB_STR_FMT(model));
    }
    return OB_OK;
}

/* An id key overrides the default only when it names a token (files write u32 0xFFFFFFFF for
 * "none", which the reference ignores in the same way). */
static void read_id(tok_vocab *v, const gguf_file *f, const char *key, int32_t *id) {
    int64_t x;
    if (!gguf_kv_find(f, key) || gguf_get_i64(f, key, &x, NULL)) return;
    if (x >= 0 && x < v->n) *id = (int32_t)x;
    else if (x != -1 && x != UINT32_MAX)
        tok_vocab_warn(v, "%s is %" PRId64 ", outside the vocabulary of %" PRId64 " tokens; "
                       "ignored", key, x, v->n);
}

static ob_status read_switches(tok_vocab *v, const gguf_file *f, ob_err *err) {
    static const struct { const char *key; size_t off; } ids[] = {
        {KEY("bos_token_id"), offsetof(tok_vocab, bos)},
        {KEY("eos_token_id"), offsetof(tok_vocab, eos)},
        {KEY("eot_token_id"), offsetof(tok_vocab, eot)},
        {KEY("eom_token_id"), offsetof(tok_vocab, eom)},
        {KEY("unknown_token_id"), offsetof(tok_vocab, unk)},
        {KEY("seperator_token_id"), offsetof(tok_vocab, sep)},
        {KEY("padding_token_id"), offsetof(tok_vocab, pad)},
        {KEY("mask_token_id"), offsetof(tok_vocab, mask)},
        {KEY("fim_pre_token_id"), offsetof(tok_vocab, fim_pre)},
        {KEY("fim_suf_token_id"), offsetof(tok_vocab, fim_suf)},
        {KEY("fim_mid_token_id"), offsetof(tok_vocab, fim_mid)},
        {KEY("fim_pad_token_id"), offsetof(tok_vocab, fim_pad)},
        {KEY("fim_rep_token_id"), offsetof(tok_vocab, fim_rep)},
        {KEY("fim_sep_token_id"), offsetof(tok_vocab, fim_sep)},
        {KEY("prefix_token_id"), offsetof(tok_vocab, fim_pre)},
        {KEY("suffix_token_id"), offsetof(tok_vocab, fim_suf)},
        {KEY("middle_token_id"), offsetof(tok_vocab, fim_mid)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int32_t *id = (int32_t *)((char *)v + ids[i].off);
        if (*id >= v->n) *id = -1; /* a default out of range is no token */
        read_id(v, f, ids[i].key, id);
    }
    ob_status st;
    if ((st = gguf_get_bool_or(f, KEY("add_space_prefix"), v->add_space_prefix,
                               &v->add_space_prefix, err)) ||
        (st = gguf_get_bool_or(f, KEY("add_bos_token"), v->add_bos, &v->add_bos, err)) ||
        (st = gguf_get_bool_or(f, KEY("add_eos_token"), v->add_eos, &v->add_eos, err)) ||
        (st = gguf_get_bool_or(f, KEY("add_sep_token"), v->add_sep, &v->add_sep, err)))
        return st;
    v->wpm_lower = true;
    if ((st = gguf_get_bool_or(f, "tokenizer.ggml.normalizer.lowercase", true, &v->wpm_lower,
                               err)))
        return st;
    if ((st = gguf_get_bool_or(f, "tokenizer.ggml.normalizer.strip_accents", v->wpm_lower,
                               &v->wpm_strip, err)))
        return st;
    /* a switch that asks for a token the vocabulary lacks would fail every encode later */
    if (v->add_bos && v->bos < 0)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s is true but no BOS token is set",
                       gguf_name(f), KEY("add_bos_token"));
    if (v->add_eos && v->eos < 0)
        return ob_fail(err, OB_ERR_FORMAT, "%s: %s is true but no EOS token is set",
                       gguf_name(f), KEY("add_eos_token"));
    if (v->type == TOK_TYPE_WPM && v->sep < 0) v->add_sep = false;
    return OB_OK;
}

/* ---- byte fallback and decoded texts ------------------------------------------------------ */

static void set_byte_tokens(tok_vocab *v) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        v->benc_len[b] = (uint8_t)tok_utf8_put(cp, v->benc[b]);
        char buf[8] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        int32_t id = -1;
        if (v->type == TOK_TYPE_BPE && v->byte_encode)
            id = tok_map_get(&v->map, v->benc[b], v->benc_len[b]);
        else if (v->type != TOK_TYPE_WPM) {
            id = tok_map_get(&v->map, buf, 6);
            if (id < 0) {
                char c = (char)b;
                id = tok_map_get(&v->map, &c, 1);
            }
        }
        v->byte_tok[b] = id;
    }
}

/* Appends n bytes to dst at *at when dst is non-NULL; always counts (a NULL dst measures). */
static void emit(char *dst, size_t *at, const char *s, size_t n) {
    if (dst) memcpy(dst + *at, s, n);
    *at += n;
}

/* What a token stands for as text, written into dst (or measured when dst is NULL). */
static size_t decode_token(const tok_vocab *v, const tok_token *t, char *dst) {
    const char *s = v->pool + t->off;
    size_t n = 0;
    if (t->attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        emit(dst, &n, s, t->len);
        return n;
    }
    if (t->attr & TOK_ATTR_BYTE) {
        unsigned x = 0;
        char c;
        if (t->len == 6 && sscanf(s, "<0x%2x>", &x) == 1) c = (char)x, emit(dst, &n, &c, 1);
        return n;
    }
    if (!(t->attr & TOK_ATTR_NORMAL)) return 0;
    if (v->type != TOK_TYPE_BPE || v->escape_whitespace) {
        for (size_t i = 0; i < t->len; i++) {
            if (i + 2 < t->len && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                emit(dst, &n, " ", 1);
                i += 2;
            } else {
                emit(dst, &n, s + i, 1);
            }
        }
        return n;
    }
    for (size_t i = 0; i < t->len;) {
        size_t at = i;
        uint32_t cp = tok_utf8_next(s, t->len, &i);
        int b = tok_cp_to_byte(cp);
        char buf[16];
        if (b >= 0) {
            buf[0] = (char)b;
            emit(dst, &n, buf, 1);
            continue;
        }
        /* outside the byte alphabet: shown, not dropped, in the reference's form */
        emit(dst, &n, "[UNK_BYTE_0x", 12);
        for (size_t k = at; k < i; k++) {
            snprintf(buf, sizeof buf, "%02x", (uint8_t)s[k]);
            emit(dst, &n, buf, 2);
        }
        emit(dst, &n, s, t->len);
        emit(dst, &n, "]", 1);
    }
    return n;
}

static ob_status build_decoded(tok_vocab *v, ob_err *err) {
    size_t total = 1;
    for (int64_t i = 0; i < v->n; i++) {
        size_t n = decode_token(v, &v->tok[i], NULL);
        if (ob_add_size(total, n, &total) || total > UINT32_MAX)
            return ob_fail(err, OB_ERR_LIMIT, "decoded token texts over 4 GiB");
    }
    char *pool = ob_alloc(total, 1);
    if (!pool) return ob_fail(err, OB_ERR_NOMEM, "no memory for decoded token texts");
    size_t off = 0;
    for (int64_t i = 0; i < v->n; i++) {
        size_t n = decode_token(v, &v->tok[i], pool + off);
        v->tok[i].dec_off = (uint32_t)off;
        v->tok[i].dec_len = (uint32_t)n;
        off += n;
    }
    v->dec_pool = pool;
    return OB_OK;
}

/* ---- public ------------------------------------------------------------------------------ */

ob_status tok_vocab_load(const gguf_file *f, tok_vocab **out, ob_err *err) {
    if (!out) return ob_fail(err, OB_ERR_ARG, "tok_vocab_load: out is NULL");
    *out = NULL;
    if (!f) return ob_fail(err, OB_ERR_ARG, "tok_vocab_load: file is NULL");
    tok_vocab *v = ob_calloc(1, sizeof *v);
    if (!v) return ob_fail(err, OB_ERR_NOMEM, "%s: no memory for the vocabulary", gguf_name(f));
    ob_str pre = {0};
    ob_status st = set_type(v, f, err);
    if (!st) st = load_tokens(v, f, err);
    if (!st && v->type == TOK_TYPE_BPE) st = load_merges(v, f, err);
    if (!st && gguf_kv_find(f, KEY("pre"))) st = gguf_get_str(f, KEY("pre"), &pre, err);
    if (!st) {
        char name[sizeof v->pre_name];
        size_t n = pre.len < sizeof name - 1 ? pre.len : sizeof name - 1;
        memcpy(name, pre.ptr ? pre.ptr : "", n);
        name[n] = 0;
        if (pre.len >= sizeof name) name[0] = '?'; /* too long to be a known name */
        st = tok_pretok_setup(v, name, err);
        if (st) ob_err_prefix(err, gguf_name(f));
    }
    if (!st) st = read_switches(v, f, err);
    if (!st) st = tok_special_setup(v, f, err);
    if (!st) {
        set_byte_tokens(v);
        st = build_decoded(v, err);
    }
    if (st) {
        tok_vocab_free(v);
        return st;
    }
    *out = v;
    return OB_OK;
}

void tok_vocab_cache_fragments(tok_vocab *v, size_t max_bytes) {
    if (v && !v->frag_cache) v->frag_cache = tok_frag_cache_new(max_bytes);
}

void tok_vocab_free(tok_vocab *v) {
    if (!v) return;
    tok_frag_cache_free(v->frag_cache);
    tok_pretok_free(v);
    tok_map_free(&v->map);
    tok_map_free(&v->merges);
    tok_map_free(&v->special_map);
    ob_free(v->tok);
    ob_free(v->pool);
    ob_free(v->dec_pool);
    ob_free(v->merge_pool);
    ob_free(v->special);
    ob_free(v);
}

int64_t tok_n_vocab(const tok_vocab *v) { return v->n; }
int32_t tok_bos(const tok_vocab *v) { return v->bos; }
int32_t tok_eos(const tok_vocab *v) { return v->eos; }
int32_t tok_eot(const tok_vocab *v) { return v->eot; }
int32_t tok_unk(const tok_vocab *v) { return v->unk; }
int32_t tok_sep(const tok_vocab *v) { return v->sep; }
int32_t tok_pad(const tok_vocab *v) { return v->pad; }
void tok_fim_ids(const tok_vocab *v, int32_t out[6]) {
    const int32_t ids[6] = {v->fim_pre, v->fim_suf, v->fim_mid, v->fim_pad, v->fim_rep, v->fim_sep};
    for (int i = 0; i < 6; i++) out[i] = ids[i];
}
bool tok_add_bos(const tok_vocab *v) { return v->add_bos; }
bool tok_add_eos(const tok_vocab *v) { return v->add_eos; }

static bool has_attr(const tok_vocab *v, int32_t id, uint32_t a) {
    return id >= 0 && id < v->n && (v->tok[id].attr & a);
}
bool tok_is_eog(const tok_vocab *v, int32_t id) { return has_attr(v, id, TOK_ATTR_EOG); }
bool tok_is_control(const tok_vocab *v, int32_t id) { return has_attr(v, id, TOK_ATTR_CONTROL); }
bool tok_is_byte(const tok_vocab *v, int32_t id) { return has_attr(v, id, TOK_ATTR_BYTE); }

const char *tok_type_name(const tok_vocab *v) {
    return v->type == TOK_TYPE_SPM ? "spm" : v->type == TOK_TYPE_BPE ? "bpe" : "wpm";
}
const char *tok_pre_name(const tok_vocab *v) { return v->pre_name; }

ob_str tok_piece(const tok_vocab *v, int32_t id) {
    ob_str s = {"", 0};
    if (id < 0 || id >= v->n) return s;
    s.ptr = v->pool + v->tok[id].off;
    s.len = v->tok[id].len;
    return s;
}

ob_str tok_token_text(const tok_vocab *v, int32_t id, bool render_special) {
    ob_str s = {"", 0};
    if (id < 0 || id >= v->n) return s;
    if (!render_special && (v->tok[id].attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) return s;
    s.ptr = v->dec_pool + v->tok[id].dec_off;
    s.len = v->tok[id].dec_len;
    return s;
}
