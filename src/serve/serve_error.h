/*
 * Request errors of the HTTP server and the two dialects' ways of writing them.
 *
 * A handler that refuses a request fills one serve_error: the HTTP status, the OpenAI error
 * type and code, the JSON path of the offending field ("messages[2].content") and one line that
 * names that field with the expected and the actual value. The dialect then decides the shape:
 *
 *     OpenAI: {"error": {"message": "...", "type": "...", "param": "...", "code": "..."}}
 *     Ollama: {"error": "..."}
 */
#ifndef OB_SERVE_ERROR_H
#define OB_SERVE_ERROR_H

#include "core/err.h"

#include <stddef.h>

/* Which API a route belongs to; it decides the error object and the response shapes. */
typedef enum serve_dialect {
    SERVE_DIALECT_OPENAI = 0, /* /v1/..., /health, /metrics */
    SERVE_DIALECT_OLLAMA,     /* /api/... */
    SERVE_DIALECT_ANTHROPIC,  /* /v1/messages... */
    SERVE_DIALECT_RESPONSES,  /* /v1/responses: OpenAI's error shape */
    SERVE_DIALECT_LLAMACPP,   /* /infill: llama.cpp's server's answers, OpenAI's errors */
} serve_dialect;

typedef struct serve_error {
    int status;       /* HTTP status: 400, 401, 404, 405, 413, 500, 503 */
    const char *type; /* OpenAI "type" (a static string): "invalid_request_error", ... */
    const char *code; /* OpenAI "code" (static) or NULL: "invalid_type", "missing_field", ... */
    char param[160];  /* JSON path of the offending field, "" when none */
    char message[512];
    int retry_after; /* seconds for a Retry-After header (503 queue full); 0 = none */
} serve_error;

/* Fills e (when non-NULL) and returns -1, so parsers can `return serve_error_set(...)`. param
 * may be NULL or "" for none; type and code must be static strings (code may be NULL). */
int serve_error_set(serve_error *e, int status, const char *type, const char *code,
                    const char *param, const char *fmt, ...) OB_PRINTF(6, 7);

/* Shorthand for the most common case: 400 invalid_request_error with a code and a JSON path. */
int serve_error_bad(serve_error *e, const char *code, const char *param, const char *fmt, ...)
    OB_PRINTF(4, 5);

/* The error as the dialect's JSON object: a new NUL-terminated string (ob_free) of *len bytes,
 * or NULL when out of memory. */
char *serve_error_body(const serve_error *e, serve_dialect dialect, size_t *len);

#endif
