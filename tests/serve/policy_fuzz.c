/*
 * libFuzzer target for what the routing policy reads from outside: policy files and the
 * streamed answers of upstreams.
 *  - First byte below 0x80: the rest is a policy file. Parsing must accept it or fail with a
 *    message; an accepted policy then decides for facts drawn from the input (every decision
 *    names an upstream and a rule exactly when it sends the request upstream).
 *  - From 0x80: the rest is an upstream's response body, OpenAI's stream (0x80..0xBF) or
 *    Anthropic's (0xC0..), fed in pieces of a stride the first byte picks. Every text and call
 *    the reader reports must be well-formed (a call's arguments are a JSON object).
 */
#include "serve/serve_policy.h"
#include "serve/serve_upstream.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_policy(const uint8_t *data, size_t size) {
    serve_policy *p = NULL;
    serve_error e;
    if (serve_policy_parse((const char *)data, size, &p, &e)) {
        if (!e.message[0] || e.status < 400) abort();
        return;
    }
    static const char *const models[] = {"", "big", "stub-x", "local"};
    for (unsigned k = 0; k < 16; k++) {
        serve_route_facts f = {
            .model = models[k & 3],
            .model_local = (k >> 2) & 1,
            .api_key = (k >> 3) & 1 ? "local-key" : NULL,
            .pref = (serve_route_pref)(k % 3),
            .marked_header = k == 5,
            .body = (const char *)data,
            .body_len = size,
            .queue_waiting = (int64_t)k * 3,
            .prompt_tokens = k & 1 ? (int64_t)k * 1000 : -1,
            .local_ctx = 4096,
            .local_tok_s = k,
        };
        serve_route_decision d;
        serve_policy_decide(p, &f, &d);
        bool up = d.action == SERVE_ROUTE_TO_UPSTREAM;
        if (up != (d.rule != NULL) || up != (d.upstream != NULL) || !d.why[0]) abort();
        if (up && (f.pref == SERVE_ROUTE_LOCAL || f.marked_header)) abort();
        if (up) (void)serve_policy_map_model(d.upstream, f.model);
    }
    serve_policy_free(p);
}

static void on_text(void *u, const char *c, size_t cl, const char *r, size_t rl) {
    if ((cl && !c) || (rl && !r)) abort();
}
static void on_call(void *u, const ob_tool_call *c) {
    json_t *v = json_loads(c->arguments, 0, NULL);
    if (!json_is_object(v) || !c->name || !c->name[0]) abort();
    json_decref(v);
}
static void on_finish(void *u, const char *reason) {
    if (strcmp(reason, "stop") && strcmp(reason, "length") && strcmp(reason, "tool_calls"))
        abort();
}
static void on_usage(void *u, int64_t p, int64_t c, int64_t k) {}
static void on_error(void *u, const char *m) {
    if (!m) abort();
}

static void fuzz_stream(serve_upstream_dialect d, size_t stride, const uint8_t *data,
                        size_t size) {
    serve_upstream_sink sink = {NULL, on_text, on_call, on_finish, on_usage, on_error};
    serve_upstream_reader *r = serve_upstream_reader_new(d, &sink);
    if (!r) return;
    for (size_t i = 0; i < size; i += stride)
        if (serve_upstream_reader_feed(r, (const char *)data + i,
                                       size - i < stride ? size - i : stride))
            break;
    serve_upstream_reader_finish(r);
    serve_upstream_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    if (mode < 0x80) fuzz_policy(data + 1, size - 1);
    else
        fuzz_stream(mode < 0xC0 ? SERVE_UPSTREAM_OPENAI : SERVE_UPSTREAM_ANTHROPIC,
                    (size_t)(mode & 0x3F) + 1, data + 1, size - 1);
    return 0;
}
