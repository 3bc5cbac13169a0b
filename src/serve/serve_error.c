/*
 * The dialects' error objects (serve_error.h). The message is the same line for both; OpenAI
 * clients also get the type, the JSON path as "param" and a machine-readable "code".
 */
#include "serve/serve_error.h"

#include "core/alloc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void error_fill(serve_error *e, int status, const char *type, const char *code,
                       const char *param, const char *fmt, va_list ap) {
    memset(e, 0, sizeof *e);
    e->status = status;
    e->type = type;
    e->code = code;
    if (param) snprintf(e->param, sizeof e->param, "%s", param);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

int serve_error_set(serve_error *e, int status, const char *type, const char *code,
                    const char *param, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    error_fill(e, status, type, code, param, fmt, ap);
    va_end(ap);
    return -1;
}

int serve_error_bad(serve_error *e, const char *code, const char *param, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    error_fill(e, 400, "invalid_request_error", code, param, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copies jansson's string (malloc) into one from ob_alloc, so callers free it one way. */
static char *dump_owned(json_t *root, size_t *len) {
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *out = ob_strndup(s, n);
    free(s);
    if (out && len) *len = n;
    return out;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when it is not one (overlong forms,
 * surrogates and code points past U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 3 && s[0] == 0xe0 && s[1] < 0xa0) return 0;
    if (len == 3 && s[0] == 0xed && s[1] >= 0xa0) return 0;
    if (len == 4 && s[0] == 0xf0 && s[1] < 0x90) return 0;
    if (len == 4 && s[0] == 0xf4 && s[1] >= 0x90) return 0;
    return len;
}

/* Messages quote client input (a URL, a model name) and may have been cut mid-character by
 * snprintf; jansson refuses invalid UTF-8, so every bad byte becomes '?'. */
static void utf8_sanitize(const char *in, char *out, size_t cap) {
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strnlen(in, cap - 1), o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(s + i, n - i);
        if (len == 0 || (len == 1 && s[i] < 0x20)) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, s + i, len);
        o += len;
        i += len;
    }
    out[o] = '\0';
}

/* Anthropic's error types by status (its API reference, "Errors"). */
static const char *anthropic_type(int status) {
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

char *serve_error_body(const serve_error *e, serve_dialect dialect, size_t *len) {
    char msg[sizeof e->message], param[sizeof e->param];
    utf8_sanitize(e->message, msg, sizeof msg);
    utf8_sanitize(e->param, param, sizeof param);
    if (dialect == SERVE_DIALECT_OLLAMA) return dump_owned(json_pack("{s:s}", "error", msg), len);
    if (dialect == SERVE_DIALECT_ANTHROPIC)
        return dump_owned(json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                                    anthropic_type(e->status), "message", msg),
                          len);
    json_t *inner = json_pack("{s:s, s:s}", "message", msg, "type",
                              e->type ? e->type : "invalid_request_error");
    if (!inner) return NULL;
    json_object_set_new(inner, "param", param[0] ? json_string(param) : json_null());
    json_object_set_new(inner, "code", e->code ? json_string(e->code) : json_null());
    return dump_owned(json_pack("{s:o}", "error", inner), len);
}
