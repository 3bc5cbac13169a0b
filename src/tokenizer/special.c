/*
 * Special tokens: which ids end generation, which token texts are cut out of the input before
 * the tokenizer proper runs, and the cutting itself.
 *
 * Files do not say everything: an end-of-turn token such as <|im_end|> often has no id key, so
 * known texts are recognised and marked control + end-of-generation, as llama.cpp does (the
 * behaviour the tests compare against). Cutting follows the reference exactly: special tokens
 * are taken longest first, each over the whole remaining raw text, so "<|im_start|>" wins over
 * a shorter token inside it. To stay fast with large special sets (Gemma has thousands) only the
 * tokens that actually occur are tried; a prefix table finds them in one pass over the text.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- recognising tokens by text ---------------------------------------------------------- */

static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", /* DeepSeek */
    "<end_of_utterance>", NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", "\xe2\x96\x81<PRE>",
    "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const FIM_SUF_TEXTS[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>", "\xe2\x96\x81<SUF>",
    "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const FIM_MID_TEXTS[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", "\xe2\x96\x81<MID>",
    "<|code_middle|>", "<|middle|>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>", "<reponame>", NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
/* Texts that end generation whatever the id keys say. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "</s>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL};

static int32_t find_text(const tok_vocab *v, const char *s) {
    return tok_map_get(&v->map, s, strlen(s));
}

/* If *id is unset, takes the first listed text the vocabulary has (in list order, so the result
 * does not depend on hash order) and marks it control. */
static void detect(tok_vocab *v, int32_t *id, const char *const *texts) {
    if (*id >= 0) return;
    for (size_t i = 0; texts[i]; i++) {
        int32_t t = find_text(v, texts[i]);
        if (t >= 0) {
            *id = t;
            v->tok[t].attr |= TOK_ATTR_CONTROL;
            return;
        }
    }
}

static void mark_eog(tok_vocab *v, int32_t id) {
    if (id >= 0 && id < v->n) v->tok[id].attr |= TOK_ATTR_EOG;
}

static void setup_eog(tok_vocab *v) {
    detect(v, &v->eot, EOT_TEXTS);
    detect(v, &v->eom, EOM_TEXTS);
    detect(v, &v->fim_pre, FIM_PRE_TEXTS);
    detect(v, &v->fim_suf, FIM_SUF_TEXTS);
    detect(v, &v->fim_mid, FIM_MID_TEXTS);
    detect(v, &v->fim_pad, FIM_PAD_TEXTS);
    detect(v, &v->fim_rep, FIM_REP_TEXTS);
    detect(v, &v->fim_sep, FIM_SEP_TEXTS);
    /* control tokens named "unused..." are placeholders, never rendered */
    for (int64_t i = 0; i < v->n; i++)
        if ((v->tok[i].attr & TOK_ATTR_CONTROL) && strstr(v->pool + v->tok[i].off, "unused"))
            v->tok[i].attr |= TOK_ATTR_UNUSED;
    mark_eog(v, v->fim_pad);
    mark_eog(v, v->fim_rep);
    mark_eog(v, v->fim_sep);
    for (size_t i = 0; EOG_TEXTS[i]; i++) {
        int32_t t = find_text(v, EOG_TEXTS[i]);
        if (t >= 0) {
            v->tok[t].attr |= TOK_ATTR_CONTROL;
            mark_eog(v, t);
        }
    }
    /* harmony-style chat formats: these structure a turn and are always rendered */
    static const char *const shown[] = {"<|channel|>", "<|message|>", "<|start|>",
                                        "<|constrain|>", NULL};
    for (size_t i = 0; shown[i]; i++) {
        int32_t t = find_text(v, shown[i]);
        if (t >= 0) v->tok[t].attr = TOK_ATTR_USER_DEFINED | (v->tok[t].attr & TOK_ATTR_EOG);
    }
    mark_eog(v, v->eos);
    mark_eog(v, v->eot);
    mark_eog(v, v->eom);
    /* with <|return|> and <|call|> present, <|end|> only ends a message, not generation */
    int32_t ret = find_text(v, "<|return|>"), call = find_text(v, "<|call|>");
    int32_t calls = find_text(v, "<|calls|>"), flush = find_text(v, "<|flush|>");
    int32_t end = find_text(v, "<|end|>");
    if (end >= 0 && ((ret >= 0 && (call >= 0 || calls >= 0)) || (flush >= 0 && (call >= 0 ||
                                                                                 calls >= 0))))
        v->tok[end].attr = TOK_ATTR_USER_DEFINED;
    /* where <|tool_response> exists, </s> is ordinary text, not an end of generation */
    int32_t s_end = find_text(v, "</s>");
    if (s_end >= 0 && find_text(v, "<|tool_response>") >= 0) v->tok[s_end].attr = TOK_ATTR_NORMAL;
}

/* ---- the special set -------------------------------------------------------------------- */

/* Longest first, then by id; merge-sorted by hand so no global state is needed. */
static void sort_special(const tok_vocab *v, int32_t *ids, int32_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_special(v, ids, tmp, h);
    sort_special(v, ids + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        uint32_t li = v->tok[ids[i]].len, lj = v->tok[ids[j]].len;
        bool take_i = li > lj || (li == lj && ids[i] < ids[j]);
        tmp[k++] = take_i ? ids[i++] : ids[j++];
    }
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, n * sizeof *ids);
}

static bool is_special_attr(uint32_t a) {
    return a & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN);
}

static ob_status build_special(tok_vocab *v, ob_err *err) {
    size_t n = 0, prefixes = 0;
    for (int64_t i = 0; i < v->n; i++)
        if (is_special_attr(v->tok[i].attr)) n++, prefixes += v->tok[i].len;
    v->special = ob_alloc(n ? n : 1, sizeof *v->special);
    int32_t *tmp = ob_alloc(n ? n : 1, sizeof *tmp);
    if (!v->special || !tmp || tok_map_init(&v->special_map, prefixes + 1, v->pool)) {
        ob_free(tmp);
        return ob_fail(err, OB_ERR_NOMEM, "no memory for %zu special tokens", n);
    }
    n = 0;
    for (int64_t i = 0; i < v->n; i++)
        if (is_special_attr(v->tok[i].attr)) v->special[n++] = (int32_t)i;
    sort_special(v, v->special, tmp, n);
    ob_free(tmp);
    v->n_special = n;
    /* full texts first so a text that is also another token's prefix keeps its id */
    for (size_t i = 0; i < n; i++) {
        const tok_token *t = &v->tok[v->special[i]];
        tok_map_put(&v->special_map, v->pool + t->off, t->len, v->special[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const tok_token *t = &v->tok[v->special[i]];
        for (uint32_t k = 1; k < t->len; k++) tok_map_put(&v->special_map, v->pool + t->off, k, -2);
    }
    return OB_OK;
}

/* Per-model strip flags the reference sets by name (files do not carry them). */
static void set_strip_flags(tok_vocab *v, const gguf_file *f) {
    ob_str name = {0}, pre = {0};
    if (gguf_kv_find(f, "general.name")) gguf_get_str(f, "general.name", &name, NULL);
    if (gguf_kv_find(f, "tokenizer.ggml.pre")) gguf_get_str(f, "tokenizer.ggml.pre", &pre, NULL);
    char lname[256] = "";
    size_t n = name.len < sizeof lname - 1 ? name.len : sizeof lname - 1;
    for (size_t i = 0; i < n; i++) {
        char c = name.ptr[i];
        lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lname[n] = 0;
    char lpre[64] = "";
    snprintf(lpre, sizeof lpre, "%.*s", OB_STR_FMT(pre));
    if (strstr(lpre, "jina-v2-de") || strstr(lpre, "jina-v2-es") || strstr(lpre, "jina-v2-code")) {
        int32_t m = find_text(v, "<mask>");
        if (m >= 0) v->tok[m].attr |= TOK_ATTR_LSTRIP;
    } else if (strstr(lname, "phi-3") || strstr(lname, "phi3")) {
        for (size_t i = 0; i < v->n_special; i++) v->tok[v->special[i]].attr |= TOK_ATTR_RSTRIP;
        int32_t t = find_text(v, "</s>");
        if (t >= 0) v->tok[t].attr |= TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
        for (size_t i = 0; keep[i]; i++)
            if ((t = find_text(v, keep[i])) >= 0) v->tok[t].attr &= ~(uint32_t)TOK_ATTR_RSTRIP;
    }
}

ob_status tok_special_setup(tok_vocab *v, const gguf_file *f, ob_err *err) {
    setup_eog(v);
    ob_status st = build_special(v, err);
    if (st) return st;
    set_strip_flags(v, f);
    return OB_OK;
}

/* ---- cutting the input ------------------------------------------------------------------ */

typedef struct frag_list {
    tok_frag *v;
    size_t n, cap;
    bool oom;
} frag_list;

static void frag_push(frag_list *l, size_t off, size_t len, int32_t id) {
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        tok_frag *nv = ob_realloc(l->v, cap, sizeof *nv);
        if (!nv) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = (tok_frag){off, len, id};
}

static bool c_isspace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Splits every raw fragment of `in` at each occurrence of token id, into `out`. */
static void split_by(const tok_vocab *v, const char *text, const frag_list *in, int32_t id,
                     frag_list *out) {
    const tok_token *t = &v->tok[id];
    const char *tt = v->pool + t->off;
    for (size_t i = 0; i < in->n; i++) {
        tok_frag fr = in->v[i];
        if (fr.id >= 0) {
            frag_push(out, fr.off, fr.len, fr.id);
            continue;
        }
        size_t pos = fr.off, end = fr.off + fr.len;
        for (;;) {
            const char *m = end - pos >= t->len ? memmem(text + pos, end - pos, tt, t->len) : NULL;
            if (!m) {
                if (end > pos) frag_push(out, pos, end - pos, -1);
                break;
            }
            size_t at = (size_t)(m - text), left = at - pos;
            if (t->attr & TOK_ATTR_LSTRIP)
                while (left > 0 && c_isspace(text[pos + left - 1])) left--;
            if (left > 0) frag_push(out, pos, left, -1);
            frag_push(out, at, t->len, id);
            pos = at + t->len;
            if (t->attr & TOK_ATTR_RSTRIP)
                while (pos < end && c_isspace(text[pos])) pos++;
        }
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* Which special tokens occur in text (allowed ones only), in the special order. */
static ob_status find_candidates(const tok_vocab *v, const char *text, size_t len,
                                 bool parse_special, tok_ids *cand) {
    for (size_t i = 0; i < len; i++) {
        for (size_t j = i + 1; j <= len && j - i <= v->max_token_len; j++) {
            int32_t id = tok_map_get(&v->special_map, text + i, j - i);
            if (id == -1) break;
            if (id < 0) continue;
            if (!parse_special && (v->tok[id].attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
                continue;
            tok_ids_push(cand, id);
        }
    }
    if (cand->oom) return OB_ERR_NOMEM;
    if (cand->n < 2) return OB_OK;
    qsort(cand->v, cand->n, sizeof *cand->v, cmp_i32);
    size_t k = 0;
    for (size_t i = 0; i < cand->n; i++)
        if (k == 0 || cand->v[k - 1] != cand->v[i]) cand->v[k++] = cand->v[i];
    cand->n = k;
    int32_t *tmp = ob_alloc(k, sizeof *tmp);
    if (!tmp) return OB_ERR_NOMEM;
    sort_special(v, cand->v, tmp, k);
    ob_free(tmp);
    return OB_OK;
}

ob_status tok_partition(const tok_vocab *v, const char *text, size_t len, bool parse_special,
                        tok_frag **frags, size_t *n, ob_err *err) {
    *frags = NULL;
    *n = 0;
    if (len == 0) return OB_OK;
    tok_ids cand = {0};
    frag_list a = {0}, b = {0};
    ob_status st = find_candidates(v, text, len, parse_special, &cand);
    frag_push(&a, 0, len, -1);
    for (size_t c = 0; !st && c < cand.n && !a.oom; c++) {
        b.n = 0;
        split_by(v, text, &a, cand.v[c], &b);
        frag_list t = a;
        a = b;
        b = t;
    }
    if (!st && (a.oom || b.oom)) st = OB_ERR_NOMEM;
    ob_free(cand.v);
    ob_free(b.v);
    if (st) {
        ob_free(a.v);
        return ob_fail(err, OB_ERR_NOMEM, "tokenize: no memory splitting %zu bytes", len);
    }
    *frags = a.v;
    *n = a.n;
    return OB_OK;
}
