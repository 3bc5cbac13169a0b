/*
 * The public face of constrained decoding (outboard.h): compiling grammars, and the matcher
 * handle a sampler drives token by token.
 */
#include "grammar/grammar_int.h"

#include "core/alloc.h"
#include "core/err.h"

#include <math.h>
#include <string.h>

ob_status ob_grammar_new(const char *gbnf, size_t len, const char *root, ob_grammar **out,
                         ob_err *err) {
    *out = NULL;
    if (!gbnf && len) return ob_fail(err, OB_ERR_ARG, "grammar: NULL text");
    return gram_parse(gbnf ? gbnf : "", len, root, out, err);
}

ob_status ob_json_schema_to_gbnf(const char *schema, size_t len, const char *prefix,
                                 char **gbnf, size_t *gbnf_len, ob_err *err) {
    return gram_schema_to_gbnf(schema, len, prefix, gbnf, gbnf_len, err);
}

ob_status ob_grammar_from_json_schema(const char *schema, size_t len, ob_grammar **out,
                                      ob_err *err) {
    *out = NULL;
    char *text = NULL;
    size_t n = 0;
    ob_status st = gram_schema_to_gbnf(schema, len, NULL, &text, &n, err);
    if (st) return st;
    st = gram_parse(text, n, "root", out, err);
    if (st) ob_err_prefix(err, "JSON schema: the generated grammar: ");
    ob_free(text);
    return st;
}

void ob_grammar_free(ob_grammar *g) { gram_free(g); }

/* ---- matcher ----------------------------------------------------------------------------- */

static ob_status matcher_alloc(const ob_grammar *g, const ob_vocab_trie *t, ob_matcher **out,
                               ob_err *err) {
    ob_matcher *mt = ob_calloc(1, sizeof *mt);
    if (mt) mt->bits = ob_calloc(((size_t)t->n_vocab + 63) / 64, sizeof *mt->bits);
    if (!mt || !mt->bits) {
        if (mt) ob_free(mt->bits);
        ob_free(mt);
        return ob_fail(err, OB_ERR_NOMEM, "grammar matcher: out of memory");
    }
    mt->g = g;
    mt->t = t;
    *out = mt;
    return OB_OK;
}

/* Each token element of g as a token id of t, into ids (g->n_tokens). OB_ERR_ARG naming the
 * element and its place when t has no such token. */
static ob_status resolve_tokens(const ob_grammar *g, const ob_vocab_trie *t, int32_t *ids,
                                ob_err *err) {
    for (size_t k = 0; k < g->n_tokens; k++) {
        const gram_token *tk = &g->tokens[k];
        if (tk->text) {
            ids[k] = gram_trie_find(t, tk->text, tk->len);
            if (ids[k] < 0)
                return ob_fail(err, OB_ERR_ARG, "grammar:%u:%u: no single token of this "
                               "vocabulary is '%.200s'", tk->line, tk->col, tk->text);
        } else {
            if (tk->id >= t->n_vocab)
                return ob_fail(err, OB_ERR_ARG, "grammar:%u:%u: token <[%lld]> is outside the "
                               "vocabulary of %lld tokens", tk->line, tk->col,
                               (long long)tk->id, (long long)t->n_vocab);
            ids[k] = (int32_t)tk->id;
        }
    }
    return OB_OK;
}

/* mt's token ids: resolved from the grammar, or copied from `from`. */
static ob_status matcher_tokens(ob_matcher *mt, const ob_matcher *from, ob_err *err) {
    size_t n = mt->g->n_tokens;
    mt->tok_ids = ob_alloc(n ? n : 1, sizeof *mt->tok_ids);
    if (!mt->tok_ids) return ob_fail(err, OB_ERR_NOMEM, "grammar matcher: out of memory");
    if (!from) return resolve_tokens(mt->g, mt->t, mt->tok_ids, err);
    memcpy(mt->tok_ids, from->tok_ids, n * sizeof *mt->tok_ids);
    return OB_OK;
}

ob_status ob_matcher_new(const ob_grammar *g, const ob_vocab_trie *t, ob_matcher **out,
                         ob_err *err) {
    *out = NULL;
    if (!g || !t) return ob_fail(err, OB_ERR_ARG, "grammar matcher: NULL grammar or trie");
    ob_matcher *mt;
    ob_status st = matcher_alloc(g, t, &mt, err);
    if (st) return st;
    if ((st = matcher_tokens(mt, NULL, err)) || (st = gram_match_init(&mt->m, g, err))) {
        ob_matcher_free(mt);
        return st;
    }
    mt->m.tok_ids = mt->tok_ids;
    *out = mt;
    return OB_OK;
}

ob_status ob_matcher_clone(const ob_matcher *src, ob_matcher **out, ob_err *err) {
    *out = NULL;
    ob_matcher *mt;
    ob_status st = matcher_alloc(src->g, src->t, &mt, err);
    if (st) return st;
    if ((st = matcher_tokens(mt, src, err)) || (st = gram_match_copy(&mt->m, &src->m, err))) {
        ob_matcher_free(mt);
        return st;
    }
    mt->m.tok_ids = mt->tok_ids;
    *out = mt;
    return OB_OK;
}

static void cache_clear(ob_matcher *mt) {
    for (int i = 0; i < GRAM_MASK_CACHE; i++) {
        ob_free(mt->cache[i].set);
        ob_free(mt->cache[i].bits);
        mt->cache[i] = (gram_mask_entry){0};
    }
}

void ob_matcher_free(ob_matcher *mt) {
    if (!mt) return;
    cache_clear(mt);
    gram_match_free(&mt->m);
    ob_free(mt->bits);
    ob_free(mt->buf);
    ob_free(mt->tok_ids);
    ob_free(mt);
}

void ob_matcher_reset(ob_matcher *mt) {
    gram_match fresh;
    if (gram_match_init(&fresh, mt->g, NULL)) {
        mt->m.oom = true; /* refuses everything rather than continue from the wrong place */
        return;
    }
    gram_match_free(&mt->m);
    mt->m = fresh;
    mt->m.tok_ids = mt->tok_ids;
    cache_clear(mt); /* the cached sets name nodes of the old table */
}

/* Whether the bytes of text fit from the current state, leaving it unchanged. */
static bool fits(ob_matcher *mt, const char *s, size_t n) {
    gram_state st = mt->m.st, next;
    size_t n_buf = 0;
    for (size_t i = 0; i < n; i++) {
        if (!gram_match_step(&mt->m, &st, (uint8_t)s[i], &next, &mt->buf, &n_buf, &mt->cap_buf))
            return false;
        st = next;
    }
    return true;
}

/* Whether a token element on top of the current stacks takes token. */
static bool token_fits(ob_matcher *mt, int32_t token) {
    if (!mt->g->n_tokens) return false;
    gram_match_advance_token(&mt->m, &mt->m.st, token, mt->t->kind[token] == VT_EOG);
    return !mt->m.oom && mt->m.n_tmp > 0;
}

bool ob_matcher_allows(ob_matcher *mt, int32_t token) {
    const ob_vocab_trie *t = mt->t;
    if (token < 0 || token >= t->n_vocab || mt->m.oom) return false;
    if (t->kind[token] == VT_EOG) return gram_state_can_end(&mt->m.st) || token_fits(mt, token);
    if (t->kind[token] == VT_NEVER) return token_fits(mt, token);
    /* A check can use many bytes of buf through the steps; pointers into it do not survive a
     * realloc, but each step reads its `from` before appending, which is all that is needed. */
    return fits(mt, t->text[token], t->text_len[token]) || token_fits(mt, token);
}

static bool same_state(const gram_mask_entry *e, const gram_state *st) {
    return e->used && e->n == st->n && e->rem == st->rem && e->cp == st->cp &&
           e->min == st->min && !memcmp(e->set, st->set, st->n * sizeof *st->set);
}

/* Keeps mt->bits as the mask of the current state, evicting the least recently used entry.
 * Failing to allocate only means no caching. */
static void cache_put(ob_matcher *mt, size_t words) {
    gram_mask_entry *e = &mt->cache[0];
    for (int i = 1; i < GRAM_MASK_CACHE; i++)
        if (mt->cache[i].used < e->used) e = &mt->cache[i];
    const gram_state *st = &mt->m.st;
    uint32_t *set = ob_alloc(st->n ? st->n : 1, sizeof *set);
    uint64_t *bits = e->bits ? e->bits : ob_alloc(words, sizeof *bits);
    if (!set || !bits) {
        ob_free(set);
        if (bits != e->bits) ob_free(bits);
        return;
    }
    ob_free(e->set);
    memcpy(set, st->set, st->n * sizeof *set);
    memcpy(bits, mt->bits, words * sizeof *bits);
    *e = (gram_mask_entry){set, st->n, st->cp, st->min, st->rem, bits, ++mt->clock};
}

ob_status ob_matcher_mask(ob_matcher *mt, float *logits, ob_err *err) {
    size_t words = ((size_t)mt->t->n_vocab + 63) / 64;
    const uint64_t *bits = NULL;
    for (int i = 0; i < GRAM_MASK_CACHE && !bits; i++)
        if (same_state(&mt->cache[i], &mt->m.st)) {
            mt->cache[i].used = ++mt->clock;
            bits = mt->cache[i].bits;
        }
    if (!bits) {
        ob_status st = gram_trie_walk(mt, err);
        if (st) return st;
        cache_put(mt, words);
        bits = mt->bits;
    }
    for (size_t w = 0; w < words; w++) {
        if (bits[w] == ~0ull) continue;
        for (int64_t id = (int64_t)w * 64, e = id + 64; id < e && id < mt->t->n_vocab; id++)
            if (!(bits[w] >> (id & 63) & 1)) logits[id] = -INFINITY;
    }
    return OB_OK;
}

ob_status ob_matcher_accept(ob_matcher *mt, int32_t token, ob_err *err) {
    const ob_vocab_trie *t = mt->t;
    if (token < 0 || token >= t->n_vocab)
        return ob_fail(err, OB_ERR_ARG, "grammar: token %d outside the vocabulary of %lld", token,
                       (long long)t->n_vocab);
    bool eog = t->kind[token] == VT_EOG;
    if (eog) {
        /* a token element naming it moves on (the end stays possible where it was) */
        if (mt->g->n_tokens && gram_match_accept_token(&mt->m, token, true, NULL, 0, false, true))
            return OB_OK;
        if (gram_state_can_end(&mt->m.st)) return OB_OK;
        return ob_fail(err, OB_ERR_ARG, "grammar: token %d ends generation where the grammar "
                       "cannot end", token);
    }
    bool ok = mt->g->n_tokens
                  ? gram_match_accept_token(&mt->m, token, false, t->text[token],
                                            t->text_len[token], t->kind[token] == VT_TEXT, false)
                  : t->kind[token] == VT_TEXT &&
                        gram_match_feed(&mt->m, t->text[token], t->text_len[token]);
    if (!ok)
        return ob_fail(err, OB_ERR_ARG, "grammar: token %d (\"%.*s\") is not allowed here", token,
                       (int)(t->text_len[token] > 64 ? 64 : t->text_len[token]),
                       t->text[token] ? t->text[token] : "");
    return OB_OK;
}

ob_status ob_matcher_accept_text(ob_matcher *mt, const char *text, size_t len, ob_err *err) {
    if (!gram_match_feed(&mt->m, text, len))
        return ob_fail(err, OB_ERR_ARG, "grammar: text \"%.*s\" is not allowed here",
                       (int)(len > 64 ? 64 : len), text);
    return OB_OK;
}

bool ob_matcher_can_end(const ob_matcher *mt) { return gram_state_can_end(&mt->m.st); }
bool ob_matcher_is_done(const ob_matcher *mt) { return gram_state_must_end(&mt->m.st); }
