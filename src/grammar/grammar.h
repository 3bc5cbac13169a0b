/*
 * Constrained decoding, private layout shared by src/grammar: a compiled grammar (gram_*), the
 * matcher that runs it over UTF-8 bytes (gram_match_*), the byte trie of a vocabulary that
 * masks tokens (gram_trie_*) and the JSON-schema translator (gram_schema_*).
 *
 * A compiled grammar is a flat array of elements. Rule r's alternatives start at
 * alts[rules[r].alt_first .. + alt_n]; each alternative is a run of REF / CLASS / TOKEN /
 * TOKEN_NOT elements ended by an END element. A literal string is a run of one-code-point
 * classes; repetition operators are rewritten into helper rules at parse time
 * (x* -> R ::= x R | ""), so the matcher knows only sequences, alternatives and rule
 * references. A token element (<[id]>, <text>, !<...>) matches one whole token, not bytes: the
 * grammar keeps it by id or text, and a matcher resolves it against its vocabulary.
 */
#ifndef OB_GRAMMAR_H
#define OB_GRAMMAR_H

#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits of one grammar. */
#define GRAM_MAX_SOURCE  (4u << 20) /* bytes of GBNF text */
#define GRAM_MAX_ELEMS   (1u << 22) /* elements after rewriting repetitions */
#define GRAM_MAX_REPEAT  1000       /* m and n of x{m,n} */
#define GRAM_MAX_DEPTH   256        /* nesting of groups while parsing */
#define GRAM_MAX_NODES   (1u << 22) /* distinct stack nodes one matcher may create */

typedef enum gram_op {
    GRAM_END = 0, /* end of an alternative */
    GRAM_REF,     /* arg: rule id */
    GRAM_CLASS,   /* arg: class id */
    GRAM_TOKEN,   /* arg: token element id (ob_grammar.tokens): exactly that token */
    GRAM_TOKEN_NOT, /* arg: token element id: any one token but that one */
} gram_op;

/* A terminal that matches one whole token; resolved to an id when a matcher is made. */
typedef struct gram_token {
    int64_t id;        /* <[id]>; -1 for <text> */
    char *text;        /* owned, NUL-terminated: "<|im_end|>" with its brackets; NULL for an id */
    uint32_t len;      /* bytes of text */
    uint32_t line, col; /* where it is in the source, for errors naming it */
} gram_token;

typedef struct gram_elem {
    uint32_t op;
    uint32_t arg;
} gram_elem;

typedef struct gram_range {
    uint32_t lo, hi; /* code points, inclusive */
} gram_range;

typedef struct gram_class {
    uint32_t first, n; /* ranges[first .. first + n) */
    bool negated;      /* matches every code point outside the ranges */
} gram_class;

typedef struct gram_rule {
    char *name;     /* owned, NUL-terminated */
    uint32_t alt_first, alt_n;
} gram_rule;

struct ob_grammar {
    gram_elem *elems; /* (n_elems) */
    size_t n_elems;
    uint32_t *alts; /* (n_alts) element index where each alternative starts */
    size_t n_alts;
    gram_rule *rules; /* (n_rules) */
    size_t n_rules;
    gram_class *classes; /* (n_classes) */
    size_t n_classes;
    gram_range *ranges; /* (n_ranges) */
    size_t n_ranges;
    gram_token *tokens; /* (n_tokens) */
    size_t n_tokens;
    uint32_t root;
};

/* gbnf_parse.c: compiles GBNF text (see ob_grammar_new). */
ob_status gram_parse(const char *src, size_t len, const char *root, ob_grammar **out,
                     ob_err *err);
void gram_free(ob_grammar *g);

/* Whether class c of g matches code point cp. */
static inline bool gram_class_match(const ob_grammar *g, uint32_t c, uint32_t cp) {
    const gram_class *k = &g->classes[c];
    bool in = false;
    for (uint32_t i = 0; i < k->n && !in; i++)
        in = cp >= g->ranges[k->first + i].lo && cp <= g->ranges[k->first + i].hi;
    return in != k->negated;
}

/* ---- the matcher (matcher.c) ------------------------------------------------------------ */

/* A stack is a node: the element to match next (pos) and the node to return to (parent). Nodes
 * are hash-consed, so equal stacks have equal ids and a set of stacks is a sorted id list.
 * Node 0 is the empty stack: the grammar has ended. */
typedef struct gram_nodes {
    uint32_t *pos, *parent; /* (cap) */
    uint32_t *visit;        /* (cap) generation a closure last visited the node in */
    size_t n, cap;
    uint32_t *slots; /* (n_slots) hash table of node ids, 0 = empty */
    size_t n_slots;
    uint32_t gen;
} gram_nodes;

/* The matcher state: a set of stacks and the bytes of a code point not yet complete. */
typedef struct gram_state {
    uint32_t *set; /* borrowed from the owner's storage */
    uint32_t n;
    uint32_t cp;  /* bits of the partial code point */
    uint8_t rem;  /* continuation bytes still expected, 0 when none */
    uint32_t min; /* smallest code point the lead byte allows (overlong forms are invalid) */
} gram_state;

/* A lazily built DFA over the matcher's stack sets (dfa.c): every set a walk meets is interned
 * once (an id), and each (set, code point) transition is computed once, so walking a 262k-token
 * trie costs a table lookup per viable prefix after the first time. */
typedef struct gram_dfa {
    uint32_t *arena; /* (cap_arena) contents of every interned set */
    size_t n_arena, cap_arena;
    uint32_t *set_off, *set_n; /* (cap_sets) where set i lies in the arena */
    size_t n_sets, cap_sets;
    uint32_t *set_slots; /* (n_set_slots) hash table of set id + 1 */
    size_t n_set_slots;
    uint64_t *tr_key; /* (n_tr_slots) set id << 32 | code point, UINT64_MAX = empty */
    uint32_t *tr_val; /* (n_tr_slots) next set id, or GRAM_DEAD */
    size_t n_tr, n_tr_slots;
} gram_dfa;

#define GRAM_DEAD UINT32_MAX
#define GRAM_MAX_DFA (1u << 22) /* interned sets, arena entries / 4 and transitions */

/* A state of a walk: an interned set and a partial code point (as in gram_state). */
typedef struct gram_dstate {
    uint32_t set, cp, min;
    uint8_t rem;
} gram_dstate;

typedef struct gram_match {
    const ob_grammar *g; /* borrowed */
    const int32_t *tok_ids; /* (g->n_tokens) the token elements' ids, borrowed from the owner;
                             * NULL (no vocabulary): token elements match nothing */
    gram_nodes nodes;
    uint32_t *cur; /* (cap_cur) the current set */
    size_t cap_cur;
    gram_state st;
    uint32_t *tmp; /* scratch for closures (cap_tmp) */
    size_t n_tmp, cap_tmp;
    bool oom; /* a node or set allocation failed: the matcher refuses everything */
    gram_dfa dfa;
} gram_match;

/* Starts g at its root. OB_ERR_NOMEM. */
ob_status gram_match_init(gram_match *m, const ob_grammar *g, ob_err *err);
void gram_match_free(gram_match *m);
/* A copy of src's state in dst (initialised here). */
ob_status gram_match_copy(gram_match *dst, const gram_match *src, ob_err *err);

/* Advances `from` by byte b into `to`, whose set is appended to the buffer (*buf, *n_buf,
 * *cap_buf, grown as needed). Returns false when b is not a viable continuation (or memory ran
 * out: m->oom). */
bool gram_match_step(gram_match *m, const gram_state *from, uint8_t b, gram_state *to,
                     uint32_t **buf, size_t *n_buf, size_t *cap_buf);
/* The closure of the stacks of `from` whose class takes cp, into m->tmp (sorted). */
void gram_match_advance(gram_match *m, const gram_state *from, uint32_t cp);
/* Whether some stack of st may match a code point in [lo, hi]. */
bool gram_match_may_match(const gram_match *m, const gram_state *st, uint32_t lo, uint32_t hi);

/* dfa.c: the id of set[0..n) (interned when new); GRAM_DEAD with m->oom when out of room. */
uint32_t gram_dfa_intern(gram_match *m, const uint32_t *set, uint32_t n);
/* One byte from `from` (see gram_match_step); false when it is not viable. */
bool gram_dfa_step(gram_match *m, const gram_dstate *from, uint8_t b, gram_dstate *to);
void gram_dfa_free(gram_dfa *d);

/* The closure of the stacks of `from` whose token element takes token tok, into m->tmp
 * (sorted; empty when none does). A TOKEN_NOT element takes every token but its own, except an
 * end-of-generation one (eog), which only a TOKEN element naming it or the grammar's end
 * allows. Nothing while a code point is partial. */
void gram_match_advance_token(gram_match *m, const gram_state *from, int32_t tok, bool eog);
/* Advances the current state past token tok: the stacks its token elements take, together
 * with (text_ok) those its text's bytes lead to, and (keep_end) the empty stack when the state
 * may end. False, state unchanged, when neither path takes it. */
bool gram_match_accept_token(gram_match *m, int32_t tok, bool eog, const char *text, size_t len,
                             bool text_ok, bool keep_end);

/* Advances the current state by len bytes; false (state unchanged) when they do not fit. */
bool gram_match_feed(gram_match *m, const char *s, size_t len);
/* Whether the grammar may end in state st (the empty stack is in it, no partial code point). */
bool gram_state_can_end(const gram_state *st);
/* Whether nothing but the end is possible. */
bool gram_state_must_end(const gram_state *st);

/* token_trie.c: the special (control or end-of-generation) token of t whose text is s[0..n),
 * or -1: whether a marker such as "[TOOL_CALLS]" is one token of the vocabulary or text. */
int32_t gram_vocab_special(const ob_vocab_trie *t, const char *s, size_t n);

/* ---- JSON schema -> GBNF (json_schema.c) ----------------------------------------------- */

/* GBNF text for schema (JSON text of len bytes), root rule "root"; *gbnf new (ob_free).
 * OB_ERR_FORMAT for JSON that does not parse, OB_ERR_UNSUPPORTED naming an unsupported keyword
 * with its JSON path. */
ob_status gram_schema_to_gbnf(const char *schema, size_t len, const char *prefix, char **gbnf,
                              size_t *gbnf_len, ob_err *err);
/* The same schema as Gemma 4 writes a tool call's arguments, {key:<|"|>text<|"|>,n:5}
 * (schema_gemma.c): quote is the GBNF expression of its <|"|> string delimiter (a token element
 * or the quoted text; borrowed for the call). Also OB_ERR_UNSUPPORTED for "pattern" and for a
 * string or property name those literals cannot hold. */
ob_status gram_schema_to_gemma_gbnf(const char *schema, size_t len, const char *prefix,
                                    const char *quote, char **gbnf, size_t *gbnf_len,
                                    ob_err *err);
/* GBNF for any JSON value whose top level is an object (json_object mode). */
const char *gram_schema_any_object(void);

#endif
