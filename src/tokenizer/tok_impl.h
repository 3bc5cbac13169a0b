/*
 * Private layout of the tokenizer, shared by its files: the vocabulary struct, the string hash
 * map used for token and merge lookups, the bigram priority queue, the growable id list and
 * the UTF-8 helpers. Nothing outside src/tokenizer includes this.
 */
#ifndef OB_TOKENIZER_IMPL_H
#define OB_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Token attributes, from tokenizer.ggml.token_type plus what loading infers. */
enum {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 7,
    TOK_ATTR_RSTRIP = 1 << 8,
    TOK_ATTR_EOG = 1 << 16, /* ours: end of generation */
};

typedef enum tok_type { TOK_TYPE_SPM, TOK_TYPE_BPE, TOK_TYPE_WPM } tok_type;

#define TOK_MAX_REGEX 8
#define TOK_MAX_TEXT (1u << 30) /* bytes one tok_encode call accepts */

/* ---- string -> int32 hash map (open addressing, keys are views into one pool) ------------ */
typedef struct tok_map_slot {
    uint32_t hash;
    uint32_t len;
    uint32_t off; /* key = base + off; a slot is empty when val == TOK_MAP_EMPTY */
    int32_t val;
} tok_map_slot; /* 16 bytes: a 262k-entry table stays small enough to cache well */

#define TOK_MAP_EMPTY INT32_MIN

typedef struct tok_map {
    tok_map_slot *slots; /* (cap) */
    size_t cap;          /* power of two */
    size_t n;
    const char *base; /* the pool every key lies in (borrowed) */
} tok_map;

/* keys put later must lie in base[0, 4 GiB) */
ob_status tok_map_init(tok_map *m, size_t expected, const char *base);
void tok_map_free(tok_map *m);
/* Inserts key -> val; returns false if the key is already there (the old value is kept). */
bool tok_map_put(tok_map *m, const char *key, size_t len, int32_t val);
int32_t tok_map_get(const tok_map *m, const char *key, size_t len); /* -1 if absent */
/* Looks up the concatenation a + sep + b (sep may be 0 for none) without building it. */
int32_t tok_map_get_pair(const tok_map *m, const char *a, size_t alen, char sep, const char *b,
                         size_t blen);

/* ---- bigram priority queue ---------------------------------------------------------------- */
/* The best bigram comes first: larger key, then smaller left index (SentencePiece uses the
 * token score as key, BPE the negated merge rank). */
typedef struct tok_bigram {
    double key;
    int32_t left, right;
    uint32_t size; /* bytes of left + right when queued; a mismatch later means stale */
} tok_bigram;

typedef struct tok_heap {
    tok_bigram *v; /* (cap) */
    size_t n, cap;
} tok_heap;

bool tok_heap_push(tok_heap *h, tok_bigram b); /* false on no memory */
tok_bigram tok_heap_pop(tok_heap *h);          /* h->n > 0 */
void tok_heap_free(tok_heap *h);

/* ---- growable id list --------------------------------------------------------------------- */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
    bool oom; /* an append failed; the list is incomplete */
} tok_ids;

void tok_ids_push(tok_ids *ids, int32_t id);

/* Symbols of one merge run (a doubly linked list over an array). */
typedef struct tok_sym {
    const char *text;
    uint32_t n;
    int32_t prev, next;
} tok_sym;

/* ---- the vocabulary ----------------------------------------------------------------------- */
typedef struct tok_token {
    uint32_t off, len; /* text in pool */
    float score;
    uint32_t attr;
    uint32_t dec_off, dec_len; /* decoded text in dec_pool (what the token stands for) */
} tok_token;

struct tok_vocab {
    tok_type type;
    char pre_name[48];
    int64_t n;
    tok_token *tok; /* (n) */
    char *pool;     /* token texts, each NUL-terminated */
    char *dec_pool; /* decoded texts */
    tok_map map;    /* text -> id */
    size_t max_token_len;

    char *merge_pool; /* merges "a b", NUL-separated */
    tok_map merges;   /* "a b" -> rank */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_sep, add_space_prefix, escape_whitespace, ignore_merges;
    bool byte_encode;            /* BPE: GPT-2 byte-to-unicode encoding of pieces */
    bool wpm_lower, wpm_strip;   /* WordPiece normaliser */
    int32_t byte_tok[256];       /* token for each byte (fallback), -1 if none */
    char benc[256][2];           /* GPT-2 alphabet: UTF-8 of the code point for each byte */
    uint8_t benc_len[256];       /* 1 or 2 */

    int32_t *special;  /* (n_special) ids of control/user-defined/unknown tokens, longest first */
    size_t n_special;
    tok_map special_map; /* text of those -> id; prefixes of them -> -2 (for the scan) */

    pcre2_code *re[TOK_MAX_REGEX];
    size_t n_re;

    char warnings[1024]; /* lines about metadata that was ignored or repaired at load, or "" */
    struct tok_frag_cache *frag_cache; /* long fragments' ids (frag_cache.h), or NULL: none */
};

/* vocab.c: appends one line to v->warnings (the first ones are kept when it is full). */
void tok_vocab_warn(tok_vocab *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* special.c */
ob_status tok_special_setup(tok_vocab *v, const gguf_file *f, ob_err *err);
/* A piece of the input: raw text [off, off + len), or a special token (id >= 0). */
typedef struct tok_frag {
    size_t off, len;
    int32_t id;
} tok_frag;
/* Cuts the special tokens out of text the way the reference does (longest token first, over
 * the whole text; control/unknown tokens only when parse_special). *frags: new array of *n
 * fragments in text order, freed by the caller with ob_free. */
ob_status tok_partition(const tok_vocab *v, const char *text, size_t len, bool parse_special,
                        tok_frag **frags, size_t *n, ob_err *err);

/* pretok.c */
ob_status tok_pretok_setup(tok_vocab *v, const char *pre, ob_err *err);
void tok_pretok_free(tok_vocab *v);
/* Calls fn for every piece the pre-tokenizer makes of text (pieces already byte-encoded when
 * v->byte_encode). */
typedef ob_status (*tok_piece_fn)(const tok_vocab *v, const char *piece, size_t len, void *ctx);
ob_status tok_pretok_split(const tok_vocab *v, const char *text, size_t len, tok_piece_fn fn,
                           void *ctx, ob_err *err);

/* spm.c, bpe.c, wpm.c: append the ids of one raw fragment. */
ob_status tok_spm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out);
ob_status tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out,
                         ob_err *err);
ob_status tok_wpm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out);

/* utf8.c */
size_t tok_utf8_len(unsigned char c); /* length from the lead byte; 1 for a stray byte */
/* Decodes one code point at s[*i] the lenient way the reference does (overlong and surrogate
 * forms accepted); returns 0xFFFD and advances one byte on an invalid sequence. */
uint32_t tok_utf8_next(const char *s, size_t len, size_t *i);
size_t tok_utf8_put(uint32_t cp, char *out); /* 1..4 bytes; cp > 0x10FFFF is written as FFFD */
/* GPT-2 byte-level alphabet: the code point standing for byte b, and back (-1 if none). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);

#endif
