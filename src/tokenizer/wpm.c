/*
 * WordPiece (tokenizer.ggml.model "bert"): normalise (lower-case, strip accents by taking the
 * first code point of each character's canonical decomposition and dropping combining marks),
 * split at whitespace and around punctuation, ASCII symbols and CJK ideographs, then cover each
 * word greedily with the longest vocabulary entries. Word-initial entries carry a U+2581 prefix
 * in GGUF vocabularies (continuations carry none), so matching starts from "\u2581" + word; a
 * word that cannot be covered becomes the unknown token. Character classes come from utf8proc.
 */
#include "core/alloc.h"
#include "tokenizer/tok_impl.h"

#include <string.h>
#include <utf8proc.h>

/* CJK ideograph blocks, as BERT's tokenizer defines "Chinese character". */
static bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static bool is_space(uint32_t c, utf8proc_category_t cat) {
    return (c >= 9 && c <= 13) || c == 0x85 || cat == UTF8PROC_CATEGORY_ZS ||
           cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

static bool is_control(utf8proc_category_t cat) {
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
           cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS;
}

static bool is_punct(utf8proc_category_t cat) {
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

static bool is_symbol(utf8proc_category_t cat) {
    return cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO;
}

static bool is_mark(utf8proc_category_t cat) {
    return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC ||
           cat == UTF8PROC_CATEGORY_ME;
}

static uint32_t first_of_nfd(uint32_t c) {
    utf8proc_int32_t buf[8];
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)c, buf, 8, UTF8PROC_DECOMPOSE,
                                                 &last);
    return n > 0 ? (uint32_t)buf[0] : c;
}

/* Greedy longest-match cover of word (which starts with U+2581). */
static void cover_word(const tok_vocab *v, const char *w, size_t n, tok_ids *out) {
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = n - i > v->max_token_len ? i + v->max_token_len : n;
        int32_t id = -1;
        for (; j > i; j--)
            if ((id = tok_map_get(&v->map, w + i, j - i)) >= 0) break;
        if (id < 0) {
            out->n = start; /* one uncovered piece discards the whole word */
            break;
        }
        tok_ids_push(out, id);
        i = j;
    }
    if (out->n == start && v->unk >= 0) tok_ids_push(out, v->unk);
}

typedef struct wbuf {
    char *p;
    size_t n;
} wbuf;

static void flush_word(const tok_vocab *v, wbuf *w, tok_ids *out) {
    if (w->n > 3) cover_word(v, w->p, w->n, out);
    w->n = 3; /* keep the U+2581 prefix */
}

ob_status tok_wpm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out) {
    size_t cap;
    if (ob_mul_size(len, 4, &cap) || ob_add_size(cap, 16, &cap)) return OB_ERR_NOMEM;
    wbuf w = {ob_alloc(cap, 1), 3};
    if (!w.p) return OB_ERR_NOMEM;
    memcpy(w.p, "\xe2\x96\x81", 3);
    for (size_t i = 0; i < len;) {
        uint32_t c = tok_utf8_next(text, len, &i);
        if (c > 0x10FFFF) c = 0xFFFD;
        if (v->wpm_strip) c = first_of_nfd(c);
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
        if (is_space(c, cat)) {
            flush_word(v, &w, out);
            continue;
        }
        if (c == 0 || c == 0xFFFD || is_control(cat)) continue;
        if (v->wpm_strip && is_mark(cat)) continue;
        if (v->wpm_lower) c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        bool alone = is_punct(cat) || (c < 0x7F && is_symbol(cat)) || is_cjk(c);
        if (alone) flush_word(v, &w, out);
        w.n += tok_utf8_put(c, w.p + w.n);
        if (alone) flush_word(v, &w, out);
    }
    flush_word(v, &w, out);
    ob_free(w.p);
    return out->oom ? OB_ERR_NOMEM : OB_OK;
}
