/*
 * A cache of the ids of long raw fragments (the text between special tokens), shared by every
 * thread that tokenizes with one vocabulary. A server sees the same long fragments again and
 * again: an agent's system prompt, tool list and earlier messages come back in full with every
 * turn, and a 20 KB fragment costs a SentencePiece vocabulary several milliseconds, a
 * 100,000-token conversation a fifth of a second, each time.
 */
#ifndef OB_TOKENIZER_FRAG_CACHE_H
#define OB_TOKENIZER_FRAG_CACHE_H

#include "tokenizer/tok_impl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fragments of at least this many bytes are remembered (shorter ones cost less to tokenize
 * than to look up and store). */
#define TOK_FRAG_CACHE_MIN 1024

typedef struct tok_frag_cache tok_frag_cache;

/* A cache keeping at most max_bytes of text and ids; NULL when out of memory. */
tok_frag_cache *tok_frag_cache_new(size_t max_bytes);
void tok_frag_cache_free(tok_frag_cache *c);

/* Appends the remembered ids of the fragment (text, len; prefix: a dummy-prefix space goes
 * before it) to out: true when it was remembered. c may be NULL (never). Thread-safe. */
bool tok_frag_cache_get(tok_frag_cache *c, const char *text, size_t len, bool prefix,
                        tok_ids *out);
/* Remembers the fragment's ids (n_ids of them), evicting the least recently used. */
void tok_frag_cache_put(tok_frag_cache *c, const char *text, size_t len, bool prefix,
                        const int32_t *ids, size_t n_ids);
/* Lookups that found their fragment, and those that did not. */
void tok_frag_cache_stats(tok_frag_cache *c, uint64_t *hits, uint64_t *misses);

#endif
