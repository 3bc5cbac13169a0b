/*
 * Byte-level BPE (tokenizer.ggml.model "gpt2"): the pre-tokenizer cuts the text into pieces,
 * each already written in GPT-2's byte alphabet; within a piece, adjacent symbols are merged in
 * order of merge rank (tokenizer.ggml.merges, lowest first, ties to the leftmost pair) until no
 * listed merge applies. Families with ignore_merges take a piece that is itself a token whole.
 * A final symbol that is not a token is emitted byte by byte where such tokens exist.
 */
#include "core/alloc.h"
#include "tokenizer/tok_impl.h"

typedef struct bpe_state {
    tok_sym *sym; /* (cap) */
    size_t cap;
    tok_heap heap;
    tok_ids *out;
} bpe_state;

static bool try_pair(const tok_vocab *v, bpe_state *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const tok_sym *a = &s->sym[l], *b = &s->sym[r];
    int32_t rank = tok_map_get_pair(&v->merges, a->text, a->n, ' ', b->text, b->n);
    if (rank < 0) return true;
    tok_bigram g = {-(double)rank, l, r, a->n + b->n};
    return tok_heap_push(&s->heap, g);
}

static void emit_symbol(const tok_vocab *v, const tok_sym *s, tok_ids *out) {
    int32_t id = tok_map_get(&v->map, s->text, s->n);
    if (id >= 0) {
        tok_ids_push(out, id);
        return;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t b = v->byte_encode ? tok_map_get(&v->map, s->text + i, 1)
                                   : v->byte_tok[(uint8_t)s->text[i]];
        if (b >= 0) tok_ids_push(out, b);
    }
}

/* Merges one pre-tokenized piece. */
static ob_status bpe_piece(const tok_vocab *v, const char *text, size_t len, void *ctx) {
    bpe_state *s = ctx;
    if (len == 0) return OB_OK;
    if (v->ignore_merges) {
        int32_t id = tok_map_get(&v->map, text, len);
        if (id >= 0) {
            tok_ids_push(s->out, id);
            return s->out->oom ? OB_ERR_NOMEM : OB_OK;
        }
    }
    if (len > s->cap) {
        ob_free(s->sym);
        s->cap = len + 64;
        if (!(s->sym = ob_alloc(s->cap, sizeof *s->sym))) return OB_ERR_NOMEM;
    }
    tok_sym *sym = s->sym;
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = tok_utf8_len((unsigned char)text[off]);
        if (cl > len - off) cl = len - off;
        sym[n] = (tok_sym){text + off, (uint32_t)cl, n - 1, off + cl == len ? -1 : n + 1};
        off += cl;
    }
    s->heap.n = 0;
    bool ok = true;
    for (int32_t i = 1; i < n && ok; i++) ok = try_pair(v, s, i - 1, i);
    while (ok && s->heap.n) {
        tok_bigram b = tok_heap_pop(&s->heap);
        tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        ok = try_pair(v, s, l->prev, b.left) && try_pair(v, s, b.left, l->next);
    }
    if (!ok) return OB_ERR_NOMEM;
    for (int32_t i = 0; i != -1; i = sym[i].next) emit_symbol(v, &sym[i], s->out);
    return s->out->oom ? OB_ERR_NOMEM : OB_OK;
}

ob_status tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out,
                         ob_err *err) {
    bpe_state s = {0};
    s.out = out;
    ob_status st = tok_pretok_split(v, text, len, bpe_piece, &s, err);
    ob_free(s.sym);
    tok_heap_free(&s.heap);
    return st;
}
