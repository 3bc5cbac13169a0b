/*
 * The vocabulary trie and the matcher handle (token_trie.c, grammar_api.c), private to
 * src/grammar.
 */
#ifndef OB_GRAMMAR_INT_H
#define OB_GRAMMAR_INT_H

#include "grammar/grammar.h"

enum { VT_TEXT = 0, VT_EOG = 1, VT_NEVER = 2 }; /* ob_vocab_trie.kind */

struct ob_vocab_trie {
    int64_t n_vocab;
    /* trie nodes in depth-first order, node 0 the root; node i's subtree is [i, end[i]) */
    uint8_t *byte;      /* (n_nodes) the byte that leads to the node */
    uint32_t *end;      /* (n_nodes) */
    uint32_t *tok_first; /* (n_nodes) tokens whose text ends here: toks[tok_first ..] */
    uint32_t *tok_n;     /* (n_nodes) how many */
    size_t n_nodes;
    int32_t *toks;       /* (n_vocab) token ids in text order */
    uint8_t *kind;       /* (n_vocab) VT_* */
    const char **text;   /* (n_vocab) decoded text, borrowed from the model's vocabulary */
    uint32_t *text_len;  /* (n_vocab) */
    size_t max_len;      /* longest text in the trie */
    /* Tokens outside the trie that have a text (control and end-of-generation tokens), in id
     * order: what a grammar's <text> token element is looked up in first, as llama.cpp's
     * tokenizer reads special-token text as that token. */
    int32_t *special;    /* (n_special) */
    size_t n_special;
};

/* Masks of recent states: inside a JSON string every character leads back to the same set of
 * stacks, and array items repeat their states, so a few entries catch most repeats. */
#define GRAM_MASK_CACHE 8

typedef struct gram_mask_entry {
    uint32_t *set; /* (n) owned: the state's stack set */
    uint32_t n, cp, min;
    uint8_t rem;
    uint64_t *bits; /* owned: its mask */
    uint64_t used;  /* last use, for eviction; 0 = empty */
} gram_mask_entry;

struct ob_matcher {
    const ob_grammar *g;    /* borrowed */
    const ob_vocab_trie *t; /* borrowed */
    int32_t *tok_ids;       /* (g->n_tokens) owned: each token element's id in t */
    gram_match m;
    uint64_t *bits; /* ((n_vocab + 63) / 64) tokens allowed by the last walk */
    uint32_t *buf;  /* (cap_buf) stack sets of a walk or a check */
    size_t cap_buf;
    gram_mask_entry cache[GRAM_MASK_CACHE];
    uint64_t clock;
};

/* Builds t's trie from its n_vocab, kind, text and text_len (filled by the caller). */
ob_status gram_trie_build(ob_vocab_trie *t, ob_err *err);
/* The token whose text is s[0..n): a special token first, else the text token (the lowest id
 * when several share it); -1 when none. */
int32_t gram_trie_find(const ob_vocab_trie *t, const char *s, size_t n);
/* Fills mt->bits with the tokens allowed in mt's current state. */
ob_status gram_trie_walk(ob_matcher *mt, ob_err *err);

#endif
