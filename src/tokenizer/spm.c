/*
 * SentencePiece-style merging (tokenizer.ggml.model "llama", also Gemma's files): start from
 * UTF-8 characters and repeatedly join the adjacent pair whose joined text is the token with the
 * highest score, ties going to the leftmost pair. What never becomes a token falls back to its
 * bytes through the <0xXX> tokens. The caller has already escaped spaces as U+2581 and added the
 * dummy prefix where the vocabulary wants one.
 *
 * A priority queue of candidate pairs keeps this O(n log n); a queued pair goes stale when one
 * side has since merged, which shows as a changed byte length and is skipped on pop.
 */
#include "core/alloc.h"
#include "tokenizer/tok_impl.h"

static bool try_pair(const tok_vocab *v, tok_sym *sym, tok_heap *h, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    uint32_t size = sym[l].n + sym[r].n;
    int32_t id = tok_map_get(&v->map, sym[l].text, size);
    if (id < 0) return true;
    tok_bigram b = {v->tok[id].score, l, r, size};
    return tok_heap_push(h, b);
}

/* Emits one final symbol: its token, else its bytes one by one. */
static void emit_symbol(const tok_vocab *v, const tok_sym *s, tok_ids *out) {
    int32_t id = tok_map_get(&v->map, s->text, s->n);
    if (id >= 0) {
        tok_ids_push(out, id);
        return;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t b = v->byte_tok[(uint8_t)s->text[i]];
        if (b < 0) b = v->unk; /* a vocabulary without byte tokens: unknown, not a crash */
        if (b >= 0) tok_ids_push(out, b);
    }
}

ob_status tok_spm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out) {
    if (len == 0) return OB_OK;
    tok_sym *sym = ob_alloc(len, sizeof *sym); /* (n_chars <= len) symbols */
    tok_heap h = {0};
    if (!sym) return OB_ERR_NOMEM;
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = tok_utf8_len((unsigned char)text[off]);
        if (cl > len - off) cl = len - off;
        sym[n] = (tok_sym){text + off, (uint32_t)cl, n - 1, off + cl == len ? -1 : n + 1};
        off += cl;
    }
    bool ok = true;
    for (int32_t i = 1; i < n && ok; i++) ok = try_pair(v, sym, &h, i - 1, i);
    while (ok && h.n) {
        tok_bigram b = tok_heap_pop(&h);
        tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        ok = try_pair(v, sym, &h, l->prev, b.left) && try_pair(v, sym, &h, b.left, l->next);
    }
    if (ok)
        for (int32_t i = 0; i != -1; i = sym[i].next) emit_symbol(v, &sym[i], out);
    tok_heap_free(&h);
    ob_free(sym);
    return ok && !out->oom ? OB_OK : OB_ERR_NOMEM;
}
