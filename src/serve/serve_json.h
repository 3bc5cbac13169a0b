/*
 * Typed access to the fields of a request's JSON with errors that name the field's path.
 *
 * Every getter looks up obj[key] and returns 0 when the key is absent or null (the output is
 * left as it was, so callers preset defaults), 1 when it holds a valid value, and -1 after
 * filling e with a 400 that names the path, the expected and the actual type or value:
 *
 *     messages[2].content: expected a string or an array of content parts, got number
 *     temperature: expected a number from 0 to 2, got 3.5
 *
 * Strings stay borrowed from the JSON document (valid while it is alive).
 */
#ifndef OB_SERVE_JSON_H
#define OB_SERVE_JSON_H

#include "serve/serve_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Routes jansson's allocations through ob_alloc (process-wide; call once before any JSON is
 * made), so that memory running out inside jansson takes the same error paths as our own
 * allocations, and tests that fail the Nth allocation reach jansson's too. */
void serve_json_alloc_init(void);
/* Whether an allocation for jansson failed on this thread since the last call (and clears
 * it): jansson reports some of those as syntax errors. */
bool serve_json_take_oom(void);

/* Room for a JSON path such as "messages[4095].tool_calls[12].function.arguments". */
#define SERVE_PATH_MAX 160

/* parent + "." + key ("key" alone when parent is ""), cut to cap. */
void serve_path_key(char *buf, size_t cap, const char *parent, const char *key);
/* parent + "[i]". */
void serve_path_index(char *buf, size_t cap, const char *parent, size_t i);

/* "string", "number", "boolean", "null", "object" or "array". */
const char *serve_json_type(const json_t *v);

/* Fills e: "PATH: expected WHAT, got TYPE" (400 invalid_type). Returns -1. */
int serve_json_type_error(serve_error *e, const char *path, const char *what, const json_t *v);

/* A string of at most max_len bytes (limit_exceeded beyond, naming both sizes). */
int serve_json_get_string(const json_t *obj, const char *parent, const char *key, size_t max_len,
                          const char **out, size_t *out_len, serve_error *e);
int serve_json_get_bool(const json_t *obj, const char *parent, const char *key, bool *out,
                        serve_error *e);
/* A finite number in [lo, hi]; integers and reals both count. */
int serve_json_get_number(const json_t *obj, const char *parent, const char *key, double lo,
                          double hi, double *out, serve_error *e);
/* A whole number in [lo, hi]; a real with an integral value (5.0) counts as one. */
int serve_json_get_int(const json_t *obj, const char *parent, const char *key, int64_t lo,
                       int64_t hi, int64_t *out, serve_error *e);
/* An object or an array (borrowed). */
int serve_json_get_object(const json_t *obj, const char *parent, const char *key, json_t **out,
                          serve_error *e);
int serve_json_get_array(const json_t *obj, const char *parent, const char *key, json_t **out,
                         serve_error *e);

/* Whether v is a whole number that fits in int64 (integers, and reals with integral values). */
bool serve_json_whole(const json_t *v, int64_t *out);

#endif
