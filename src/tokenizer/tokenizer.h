/*
 * Tokenizer: text <-> token ids for the vocabularies GGUF files carry (tokenizer.ggml.*).
 *
 * Three algorithms, chosen by tokenizer.ggml.model:
 *   "llama" (and Gemma's SentencePiece files): SentencePiece-style merges by token score, spaces
 *       escaped as U+2581, an optional dummy-prefix space, byte fallback through <0xXX> tokens;
 *   "gpt2": byte-level BPE over the pieces of a per-model pre-tokenizer (tokenizer.ggml.pre
 *       names the regexes, run by PCRE2 with Unicode properties), merges by rank;
 *   "bert": WordPiece (lower-casing, accent stripping, greedy longest match).
 * Special tokens (control, user-defined) are cut out of the text before the algorithm runs; the
 * results match llama.cpp's tokenizer on the same file, which is what the tests check.
 *
 * A tok_vocab is immutable after loading and may be shared by threads; a tok_decoder belongs to
 * one stream.
 */
#ifndef OB_TOKENIZER_H
#define OB_TOKENIZER_H

#include "core/str.h"
#include "gguf/gguf.h"
#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab tok_vocab;

/* Builds the vocabulary from f's tokenizer.ggml.* metadata. Everything needed is copied, so f
 * may be closed afterwards. Fails with OB_ERR_FORMAT (missing/mistyped key, duplicate token),
 * OB_ERR_UNSUPPORTED (unknown tokenizer model or pre-tokenizer name) or OB_ERR_NOMEM, with a
 * message naming the file and the key. *out is NULL on failure. */
ob_status tok_vocab_load(const gguf_file *f, tok_vocab **out, ob_err *err);

/* Frees v; tok_vocab_free(NULL) is a no-op. */
void tok_vocab_free(tok_vocab *v);

/* From now on tok_encode remembers the ids of long raw fragments (up to max_bytes of text and
 * ids, least recently used first out) and reuses them for the same bytes: a server's prompts
 * repeat their long parts turn after turn. Results are those of encoding; off when out of
 * memory. Thread-safe as tok_encode is. */
void tok_vocab_cache_fragments(tok_vocab *v, size_t max_bytes);

int64_t tok_n_vocab(const tok_vocab *v);
/* Lines (each ending in '\n') about metadata the loader ignored or repaired: a special token
 * id outside the vocabulary, a token type or score that means nothing. "" when none. */
const char *tok_vocab_warnings(const tok_vocab *v);
int32_t tok_bos(const tok_vocab *v); /* -1 if none */
int32_t tok_eos(const tok_vocab *v); /* -1 if none */
int32_t tok_eot(const tok_vocab *v); /* end of turn; -1 if none */
int32_t tok_unk(const tok_vocab *v); /* -1 if none */
int32_t tok_sep(const tok_vocab *v); /* -1 if none */
int32_t tok_pad(const tok_vocab *v); /* -1 if none */
/* Fill-in-the-middle tokens (prefix, suffix, middle, pad, repo, file separator), each -1 if
 * none: the tokenizer.ggml.fim_*_token_id keys, else the texts llama.cpp recognises. */
void tok_fim_ids(const tok_vocab *v, int32_t out[6]);

/* Whether tok_encode(add_special = true) puts BOS in front / EOS at the end: what the metadata
 * says (tokenizer.ggml.add_bos_token / add_eos_token), else the model type's default. */
bool tok_add_bos(const tok_vocab *v);
bool tok_add_eos(const tok_vocab *v);

/* True for every end-of-generation token: eos, eot, eom and the known turn-end tokens
 * (<|im_end|>, <end_of_turn>, <|eot_id|>, <|endoftext|>, ...) the vocabulary contains. */
bool tok_is_eog(const tok_vocab *v, int32_t id);

/* Control / user-defined / unknown / byte tokens (attribute tests for samplers and renderers). */
bool tok_is_control(const tok_vocab *v, int32_t id);
bool tok_is_byte(const tok_vocab *v, int32_t id);

/* "spm", "bpe" or "wpm"; and the pre-tokenizer name in effect ("default" when none). */
const char *tok_type_name(const tok_vocab *v);
const char *tok_pre_name(const tok_vocab *v);

/* text -> ids. add_special: add BOS/EOS (SEP/CLS for WordPiece) as the vocabulary says.
 * parse_special: special-token text such as "<|im_start|>" in the input becomes that token
 * (longest first); without it only user-defined tokens are matched, as in the reference.
 * Invalid UTF-8 never fails: it is tokenized through byte fallback or U+FFFD.
 * *ids: new array of *n_ids ids (NULL when zero), the caller frees it with ob_free.
 * Fails only with OB_ERR_NOMEM, OB_ERR_LIMIT (len over 1 GiB, or a regex resource limit), or
 * OB_ERR_ARG (NULL arguments). */
ob_status tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **ids, size_t *n_ids, ob_err *err);

/* The raw vocabulary string of a token (e.g. "\xe2\x96\x81Hello", "\xc4\xa0world", "<0x0A>");
 * an empty view for an id out of range. Borrowed from v. */
ob_str tok_piece(const tok_vocab *v, int32_t id);

/* The text a token stands for (spaces unescaped, bytes decoded); control tokens give their
 * text only when render_special. Borrowed from v; may hold a partial UTF-8 sequence. */
ob_str tok_token_text(const tok_vocab *v, int32_t id, bool render_special);

/* Streaming detokenizer: push ids, get UTF-8 that is complete. A character split across tokens
 * is held back until whole; a sequence that can never complete is written as U+FFFD. For
 * vocabularies with a dummy-prefix space (SentencePiece), the first space of the first text is
 * dropped so that decode(encode(s)) == s; tok_decoder_keep_leading_space() turns that off for
 * a stream that continues a prompt. Control tokens are written only when render_special. */
typedef struct tok_decoder tok_decoder;
tok_decoder *tok_decoder_new(const tok_vocab *v, bool render_special); /* NULL on no memory */
void tok_decoder_keep_leading_space(tok_decoder *d);
/* Writes at most cap bytes to out and returns how many; bytes that did not fit stay queued
 * and come out on the next push or flush. */
size_t tok_decoder_push(tok_decoder *d, int32_t id, char *out, size_t cap);
size_t tok_decoder_flush(tok_decoder *d, char *out, size_t cap); /* whatever is left */
void tok_decoder_free(tok_decoder *d);

/* Convenience: ids -> text through a decoder, as one new NUL-terminated string (*text, *len;
 * free with ob_free). */
ob_status tok_decode_all(const tok_vocab *v, const int32_t *ids, size_t n, bool render_special,
                         char **text, size_t *len, ob_err *err);

#endif
