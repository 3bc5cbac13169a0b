/*
 * Token masking: every token's text in one byte trie, walked together with the grammar matcher.
 *
 * The trie is laid out in depth-first order, each node followed by its subtree, so a node's
 * children are found by hopping from end to end and a rejected prefix skips its whole subtree
 * at once: a mask costs a step of the matcher per *viable* prefix, not per token. Inside a JSON
 * string nearly everything is viable and the walk visits most of the trie; in structural
 * positions (after a key, between values) only a handful of first bytes survive.
 *
 * Token texts are what the tokens decode to (spaces unescaped, byte tokens as their byte).
 * Control and unknown tokens are not in the trie; end-of-generation tokens are allowed where
 * the grammar may end. Control and end-of-generation tokens that have a text are kept in a
 * short side list, so a grammar's token elements (<|im_end|>, <[id]>, !<...>) can name them:
 * after the byte walk, the token elements on top of the current stacks add their tokens.
 */
#include "grammar/grammar_int.h"

#include "core/alloc.h"
#include "core/err.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef struct keyed {
    const char *p;
    uint32_t len;
    int32_t id;
} keyed;

static int keyed_cmp(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void ob_vocab_trie_free(ob_vocab_trie *t) {
    if (!t) return;
    ob_free(t->byte);
    ob_free(t->end);
    ob_free(t->tok_first);
    ob_free(t->tok_n);
    ob_free(t->toks);
    ob_free(t->kind);
    ob_free(t->text);
    ob_free(t->text_len);
    ob_free(t->special);
    ob_free(t);
}

static bool trie_alloc(ob_vocab_trie *t, size_t n_nodes) {
    t->byte = ob_alloc(n_nodes, sizeof *t->byte);
    t->end = ob_alloc(n_nodes, sizeof *t->end);
    t->tok_first = ob_alloc(n_nodes, sizeof *t->tok_first);
    t->tok_n = ob_calloc(n_nodes, sizeof *t->tok_n);
    return t->byte && t->end && t->tok_first && t->tok_n;
}

/* Builds the depth-first layout from the texts sorted bytewise: consecutive texts share their
 * common prefix's path, so each text adds nodes only past that prefix. */
static void trie_fill(ob_vocab_trie *t, const keyed *k, size_t n) {
    uint32_t *path = ob_alloc(t->max_len + 2, sizeof *path);
    if (!path) return;
    size_t depth = 0, nn = 1;
    t->byte[0] = 0;
    t->tok_n[0] = 0;
    path[0] = 0;
    const keyed *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t common = 0;
        if (prev)
            while (common < prev->len && common < k[i].len && prev->p[common] == k[i].p[common])
                common++;
        for (; depth > common; depth--) t->end[path[depth]] = (uint32_t)nn;
        for (; depth < k[i].len; depth++) {
            t->byte[nn] = (uint8_t)k[i].p[depth];
            t->tok_n[nn] = 0;
            path[depth + 1] = (uint32_t)nn++;
        }
        uint32_t node = path[depth];
        if (!t->tok_n[node]) t->tok_first[node] = (uint32_t)i;
        t->tok_n[node]++;
        t->toks[i] = k[i].id;
        prev = &k[i];
    }
    for (; depth > 0; depth--) t->end[path[depth]] = (uint32_t)nn;
    t->end[0] = (uint32_t)nn;
    t->n_nodes = nn;
    ob_free(path);
}

/* Nodes the layout needs: one per byte of each text past its shared prefix with the one
 * before it. */
static size_t count_nodes(const keyed *k, size_t n) {
    size_t nn = 1;
    for (size_t i = 0; i < n; i++) {
        size_t common = 0;
        if (i)
            while (common < k[i - 1].len && common < k[i].len &&
                   k[i - 1].p[common] == k[i].p[common])
                common++;
        nn += k[i].len - common;
    }
    return nn;
}

ob_status gram_trie_build(ob_vocab_trie *t, ob_err *err) {
    keyed *k = ob_alloc((size_t)t->n_vocab + 1, sizeof *k);
    t->toks = ob_alloc((size_t)t->n_vocab + 1, sizeof *t->toks);
    size_t n_special = 0;
    for (int64_t id = 0; id < t->n_vocab; id++)
        n_special += t->kind[id] != VT_TEXT && t->text[id] && t->text_len[id] > 0;
    t->special = ob_alloc(n_special + 1, sizeof *t->special);
    if (!k || !t->toks || !t->special) goto nomem;
    size_t n = 0;
    t->max_len = 0;
    t->n_special = 0;
    for (int64_t id = 0; id < t->n_vocab; id++) {
        if (t->kind[id] != VT_TEXT) {
            if (t->text[id] && t->text_len[id] > 0) t->special[t->n_special++] = (int32_t)id;
            continue;
        }
        k[n++] = (keyed){t->text[id], t->text_len[id], (int32_t)id};
        if (t->text_len[id] > t->max_len) t->max_len = t->text_len[id];
    }
    qsort(k, n, sizeof *k, keyed_cmp);
    if (!trie_alloc(t, count_nodes(k, n))) goto nomem;
    trie_fill(t, k, n);
    ob_free(k);
    if (!t->n_nodes) goto nomem; /* trie_fill's path allocation failed */
    return OB_OK;
nomem:
    ob_free(k);
    return ob_fail(err, OB_ERR_NOMEM, "vocabulary trie: out of memory for %lld tokens",
                   (long long)t->n_vocab);
}

ob_status ob_vocab_trie_new(const ob_model *m, ob_vocab_trie **out, ob_err *err) {
    *out = NULL;
    const tok_vocab *v = m->vocab;
    if (!v) return ob_fail(err, OB_ERR_UNSUPPORTED, "vocabulary trie: %s", m->vocab_err.msg);
    int64_t nv = tok_n_vocab(v);
    ob_vocab_trie *t = ob_calloc(1, sizeof *t);
    if (t) {
        t->n_vocab = nv;
        t->kind = ob_alloc((size_t)nv + 1, 1);
        t->text = ob_alloc((size_t)nv + 1, sizeof *t->text);
        t->text_len = ob_alloc((size_t)nv + 1, sizeof *t->text_len);
    }
    if (!t || !t->kind || !t->text || !t->text_len) {
        ob_vocab_trie_free(t);
        return ob_fail(err, OB_ERR_NOMEM, "vocabulary trie: out of memory for %lld tokens",
                       (long long)nv);
    }
    for (int64_t id = 0; id < nv; id++) {
        /* control tokens with their text, which only token elements match (never bytes) */
        ob_str s = tok_token_text(v, (int32_t)id, true);
        if (s.len > UINT16_MAX) s.len = 0;
        t->text[id] = s.ptr;
        t->text_len[id] = (uint32_t)s.len;
        if (tok_is_eog(v, (int32_t)id)) t->kind[id] = VT_EOG;
        else if (tok_is_control(v, (int32_t)id) || s.len == 0) t->kind[id] = VT_NEVER;
        else t->kind[id] = VT_TEXT;
    }
    ob_status st = gram_trie_build(t, err);
    if (st) {
        ob_vocab_trie_free(t);
        return st;
    }
    *out = t;
    return OB_OK;
}

/* ---- lookup by text -------------------------------------------------------------------- */

int32_t gram_vocab_special(const ob_vocab_trie *t, const char *s, size_t n) {
    for (size_t i = 0; i < t->n_special; i++) {
        int32_t id = t->special[i];
        if (t->text_len[id] == n && !memcmp(t->text[id], s, n)) return id;
    }
    return -1;
}

int32_t gram_trie_find(const ob_vocab_trie *t, const char *s, size_t n) {
    int32_t id = gram_vocab_special(t, s, n);
    if (id >= 0 || !n || !t->n_nodes) return id;
    uint32_t node = 0;
    for (size_t d = 0; d < n; d++) { /* down the children, hopping over subtrees */
        uint32_t c = node + 1;
        while (c < t->end[node] && t->byte[c] != (uint8_t)s[d]) c = t->end[c];
        if (c >= t->end[node]) return -1;
        node = c;
    }
    return t->tok_n[node] ? t->toks[t->tok_first[node]] : -1;
}

/* ---- the walk ---------------------------------------------------------------------------- */

typedef struct frame {
    uint32_t node, child; /* the node and its next child to try */
    gram_dstate st;       /* the matcher's state after the node's bytes */
} frame;

/* The tokens the token elements on top of the current stacks take (none inside a character):
 * <x> its token, whatever its kind; !<x> every token but x and the end-of-generation ones. */
static void add_token_elements(ob_matcher *mt) {
    const ob_vocab_trie *t = mt->t;
    const gram_match *m = &mt->m;
    if (m->st.rem) return;
    for (uint32_t i = 0; i < m->st.n; i++) {
        if (!m->st.set[i]) continue;
        const gram_elem *e = &m->g->elems[m->nodes.pos[m->st.set[i]]];
        if (e->op == GRAM_TOKEN) {
            int32_t id = mt->tok_ids[e->arg];
            mt->bits[id >> 6] |= 1ull << (id & 63);
        } else if (e->op == GRAM_TOKEN_NOT) {
            int32_t but = mt->tok_ids[e->arg];
            for (int64_t id = 0; id < t->n_vocab; id++)
                if (id != but && t->kind[id] != VT_EOG) mt->bits[id >> 6] |= 1ull << (id & 63);
        }
    }
}

ob_status gram_trie_walk(ob_matcher *mt, ob_err *err) {
    const ob_vocab_trie *t = mt->t;
    gram_match *m = &mt->m;
    size_t words = ((size_t)t->n_vocab + 63) / 64;
    memset(mt->bits, 0, words * sizeof *mt->bits);
    frame *fr = ob_alloc(t->max_len + 2, sizeof *fr);
    if (!fr) return ob_fail(err, OB_ERR_NOMEM, "grammar mask: out of memory");
    uint32_t start = gram_dfa_intern(m, m->st.set, m->st.n);
    fr[0] = (frame){0, 1, {start, m->st.cp, m->st.min, m->st.rem}};
    size_t depth = m->oom ? 0 : 1;
    while (depth > 0 && !m->oom) {
        frame *f = &fr[depth - 1];
        if (f->child >= t->end[f->node]) {
            depth--;
            continue;
        }
        uint32_t c = f->child;
        f->child = t->end[c];
        gram_dstate to;
        if (!gram_dfa_step(m, &f->st, t->byte[c], &to)) continue;
        for (uint32_t k = 0; k < t->tok_n[c]; k++) {
            int32_t id = t->toks[t->tok_first[c] + k];
            mt->bits[id >> 6] |= 1ull << (id & 63);
        }
        if (t->end[c] > c + 1) fr[depth++] = (frame){c, c + 1, to};
    }
    ob_free(fr);
    if (m->oom)
        return ob_fail(err, OB_ERR_LIMIT, "grammar mask: the grammar's states outgrew the "
                       "matcher's tables (%u entries) or memory ran out", GRAM_MAX_DFA);
    if (gram_state_can_end(&m->st))
        for (int64_t id = 0; id < t->n_vocab; id++)
            if (t->kind[id] == VT_EOG) mt->bits[id >> 6] |= 1ull << (id & 63);
    add_token_elements(mt);
    return OB_OK;
}
