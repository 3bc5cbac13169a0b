/*
 * libFuzzer target for the request side of the server: the first byte picks a parser (OpenAI
 * chat, OpenAI completions, Ollama chat, Ollama generate, Anthropic messages and
 * count_tokens, OpenAI responses, llama.cpp's infill) and the rest is the body. Whatever
 * the body, a parser must either fill a request or report an error with an HTTP status, and
 * that error must serialise in every dialect as valid JSON; an accepted request's stop strings
 * then drive the stop matcher over its own text split at a fuzz-chosen stride.
 * A first byte from 0xC0 up drives the whole route layer instead (serve_app_handle: method,
 * route, API key and body from the input, no engine): every answer must have a status from 200
 * to 599 and, when it is JSON, a body that parses.
 */
#include "serve/serve_app.h"
#include "serve/serve_request.h"
#include "serve/serve_stop.h"

#include "core/alloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void check_error_bodies(const serve_error *e) {
    if (e->status < 400 || e->status > 599) abort();
    for (int d = 0; d <= SERVE_DIALECT_LLAMACPP; d++) {
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

static const char *fake_header(const serve_http_req *req, const char *name) {
    const uint8_t *flags = req->conn;
    if (!strcasecmp(name, "Authorization")) return (*flags & 1) ? "Bearer k" : NULL;
    if (!strcasecmp(name, "x-api-key")) return (*flags & 2) ? "wrong" : NULL;
    if (!strcasecmp(name, "Accept")) return (*flags & 32) ? "text/html,*/*;q=0.8" : NULL;
    return NULL;
}

static void drive_app(const uint8_t *data, size_t size) {
    static const char *const METHODS[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};
    static const char *const PATHS[] = {
        "/",           "/health",        "/metrics",           "/v1/models",
        "/v1/models/m", "/v1/models/",   "/v1/chat/completions", "/v1/completions",
        "/api/chat",   "/api/generate",  "/api/tags",          "/api/show",
        "/api/version", "/api/ps",       "/api/pull",          "/nothing",
        "/v1/messages", "/v1/messages/count_tokens", "/v1/responses", "/infill"};
    if (size < 3) return;
    static serve_metrics *metrics;
    if (!metrics && serve_metrics_new(&metrics, NULL)) return;
    serve_model_desc d;
    memset(&d, 0, sizeof d);
    strcpy(d.id, "m");
    strcpy(d.arch, "llama");
    d.n_vocab = 512;
    serve_app_config cfg = {&d, metrics, (data[1] & 4) ? "k" : NULL, 1024, NULL, NULL, NULL,
                            NULL};
    serve_app app;
    serve_app_init(&app, &cfg);
    serve_app_set_ready(&app, !(data[1] & 8));
    uint8_t flags = data[1];
    char *body = ob_strndup((const char *)data + 3, size - 3);
    if (!body) return;
    serve_http_req req = {METHODS[data[2] % 5], PATHS[(data[2] / 5) % 20], body, size - 3,
                          (data[1] & 16) != 0, size, fake_header, NULL, &flags};
    serve_http_resp resp;
    serve_app_handle(&app, &req, &resp);
    if (resp.status < 200 || resp.status > 599 || resp.stream) abort();
    if (!resp.content_type && resp.body) {
        json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (!json_is_object(v)) abort();
        json_decref(v);
    }
    ob_free(resp.body);
    ob_free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] >= 0xc0) {
        drive_app(data, size);
        return 0;
    }
    static int (*const PARSERS[])(const char *, size_t, const serve_limits *, serve_gen_req **,
                                  serve_error *) = {
        serve_openai_chat_parse,     serve_openai_completion_parse, serve_ollama_chat_parse,
        serve_ollama_generate_parse, serve_anthropic_messages_parse, serve_anthropic_count_parse,
        serve_responses_parse,       serve_infill_parse};
    const serve_limits lim = {32000};
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    serve_gen_req *r = NULL;
    serve_error e;
    memset(&e, 0, sizeof e);
    if (PARSERS[data[0] % 8](body, len, &lim, &r, &e)) {
        check_error_bodies(&e);
        return 0;
    }
    if (!r || r->n < 1 || r->n_stop > SERVE_MAX_STOP) abort();
    drive_stops(r, body, len, 1 + data[0] / 8);
    serve_gen_req_free(r);
    return 0;
}
