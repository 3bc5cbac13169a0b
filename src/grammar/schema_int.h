/*
 * GBNF text building for the JSON-schema translator (schema_text.c, json_schema.c), private to
 * src/grammar.
 */
#ifndef OB_GRAMMAR_SCHEMA_INT_H
#define OB_GRAMMAR_SCHEMA_INT_H

#include "grammar/grammar.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable NUL-terminated string; oom is set (and later writes ignored) when memory runs
 * out. Owned: ob_free(b.p). */
typedef struct sb {
    char *p;
    size_t n, cap;
    bool oom;
} sb;

void sb_put(sb *b, const char *s, size_t n);
void sb_puts(sb *b, const char *s);
void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a GBNF string literal. */
void sb_literal(sb *b, const char *s, size_t n);
/* The rules PREFIX-ws, -char, -string, -int, -number, -boolean, -null, -value, -object,
 * -array. */
void sb_primitives(sb *b, const char *prefix);
/* Of those, the ones Gemma 4's literals spell as JSON does (int, number, boolean, null, value). */
void sb_shared_primitives(sb *b, const char *prefix);
/* Non-negative integers lo..hi (hi < 0: unbounded) in decimal without leading zeros, as one
 * parenthesised expression; lo, hi below 10^15. */
void sb_uint_range(sb *b, int64_t lo, int64_t hi);

/* ---- Gemma 4 literals (schema_gemma.c); quote is the GBNF expression of the <|"|> string
 * delimiter ---- */

/* Whether s[0..n) may stand between two delimiters: no "<|" or "<t" in it, no '<' at its end,
 * no NUL. */
bool gemma_text_ok(const char *s, size_t n);
/* Object key `key`, bare when it is a plain word, else between delimiters; -1 (nothing
 * written) when it holds '<' and so cannot be written either way. */
int sb_gemma_key(sb *b, const char *key, const char *quote);
/* The literal of JSON value v as one GBNF sequence; -1 when a string or key in it cannot be
 * written (gemma_text_ok). */
int sb_gemma_literal(sb *b, const json_t *v, const char *quote);
/* The primitive rules of the Gemma mode: PREFIX-ws (empty), -char (bounded text), -text,
 * -string, -key (an additional property's name), -int, -number, -boolean, -null, -value,
 * -object, -array. */
void sb_gemma_primitives(sb *b, const char *prefix, const char *quote);

/* A JSON schema "pattern" as a GBNF expression over the JSON-encoded string content (prefix p
 * for rule names), appended to b; -1 with why[cap] saying what is unsupported. */
int gram_regex_to_gbnf(const char *re, size_t len, const char *p, sb *b, char *why, size_t cap);

#endif
