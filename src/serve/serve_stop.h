/*
 * A streaming stop-string matcher. Generated text arrives in pieces (one token's text at a
 * time, and a stop string may be split across tokens); the matcher says which bytes are safe
 * to send to the client now, holding back a tail that could still become a stop string, so a
 * stop string is never streamed, not even its first half.
 *
 *     serve_stop *s;
 *     serve_stop_new(stops, n_stops, &s, &err);
 *     for each piece:
 *         const char *out; size_t n = serve_stop_push(s, piece, len, &out);
 *         send(out, n);                   // valid until the next call on s
 *         if (serve_stop_hit(s) >= 0) break;  // stop string serve_stop_hit(s) was seen
 *     at the end (no stop): n = serve_stop_flush(s, &out); send(out, n);
 *
 * The bytes it releases also never end inside a UTF-8 character: a character split across
 * pieces comes out whole, so every chunk it releases can go into a JSON string as it is.
 */
#ifndef OB_SERVE_STOP_H
#define OB_SERVE_STOP_H

#include "outboard.h"

#include <stddef.h>

typedef struct serve_stop serve_stop;

/* Copies the n stop strings (empty ones are ignored). Errors: OB_ERR_NOMEM. *out is owned by
 * the caller: serve_stop_free. */
ob_status serve_stop_new(const char *const *stops, size_t n, serve_stop **out, ob_err *err);
void serve_stop_free(serve_stop *s);

/* Feeds len bytes; *out points at the bytes now safe to emit (their count is returned), valid
 * until the next call on s. Once a stop string was seen, the text up to it is released and
 * everything after, and every later push, yields nothing. Returns 0 with *out = "" when out of
 * memory (serve_stop_failed then says so). */
size_t serve_stop_push(serve_stop *s, const char *text, size_t len, const char **out);

/* End of generation without a stop: the held-back tail (incomplete UTF-8 included). */
size_t serve_stop_flush(serve_stop *s, const char **out);

/* Index of the stop string that ended the text, or -1 while none has. */
int serve_stop_hit(const serve_stop *s);

/* Whether a push ran out of memory (the text is then incomplete). */
int serve_stop_failed(const serve_stop *s);

/* Bytes held back right now (for tests and metrics). */
size_t serve_stop_held(const serve_stop *s);

#endif
