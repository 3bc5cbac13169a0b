/*
 * libFuzzer target for the request side of the server: the first byte picks a parser (OpenAI
 * chat, OpenAI completions, Ollama chat, Ollama generate) and the rest is the body. Whatever
 * the body, a parser must either fill a request or report an error with an HTTP status, and
 * that error must serialise in both dialects as valid JSON; an accepted request's stop strings
 * then drive the stop matcher over its own text split at a fuzz-chosen stride.
 */
#include "serve/serve_request.h"
#include "serve/serve_stop.h"

#include "core/alloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_error_bodies(const serve_error *e) {
    if (e->status < 400 || e->status > 599) abort();
    for (int d = 0; d < 2; d++) {
        size_t len;
        char *body = serve_error_body(e, (serve_dialect)d, &len);
        if (!body) abort(); /* the sanitiser makes any message valid UTF-8 */
        json_t *v = json_loadb(body, len, 0, NULL);
        if (!json_is_object(v)) abort();
        json_decref(v);
        ob_free(body);
    }
}

/* The request's stop strings over the body itself: released text must be a prefix of it. */
static void drive_stops(const serve_gen_req *r, const char *text, size_t len, size_t stride) {
    serve_stop *s;
    if (serve_stop_new((const char *const *)r->stop, r->n_stop, &s, NULL)) return;
    size_t got = 0;
    for (size_t at = 0; at < len; at += stride) {
        const char *out;
        size_t n = serve_stop_push(s, text + at, at + stride <= len ? stride : len - at, &out);
        if (got + n > len || memcmp(out, text + got, n)) abort();
        got += n;
    }
    const char *out;
    size_t n = serve_stop_flush(s, &out);
    if (got + n > len || memcmp(out, text + got, n)) abort();
    serve_stop_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static int (*const PARSERS[])(const char *, size_t, const serve_limits *, serve_gen_req **,
                                  serve_error *) = {
        serve_openai_chat_parse, serve_openai_completion_parse, serve_ollama_chat_parse,
        serve_ollama_generate_parse};
    const serve_limits lim = {32000};
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    serve_gen_req *r = NULL;
    serve_error e;
    memset(&e, 0, sizeof e);
    if (PARSERS[data[0] % 4](body, len, &lim, &r, &e)) {
        check_error_bodies(&e);
        return 0;
    }
    if (!r || r->n < 1 || r->n_stop > SERVE_MAX_STOP) abort();
    drive_stops(r, body, len, 1 + data[0] / 4);
    serve_gen_req_free(r);
    return 0;
}
