/*
 * Ollama request bodies: POST /api/chat and POST /api/generate into a serve_gen_req
 * (serve_request.h). Ollama puts the sampler's settings in "options" with its own names
 * (num_predict, repeat_penalty, ...); they map onto the same fields the OpenAI parser fills.
 * Options Ollama has that mean nothing here (num_gpu, use_mmap, mirostat, ...) are accepted and
 * ignored, as Ollama itself ignores unknown ones.
 */
#include "serve/serve_constraint.h"
#include "serve/serve_request.h"

#include "core/alloc.h"
#include "serve/serve_json.h"
#include "serve/serve_messages.h"
#include "serve/serve_tools.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static int options_numbers(serve_sampling *s, const json_t *o, serve_error *e) {
    static const struct {
        const char *key;
        double lo, hi;
        size_t off;
    } NUMS[] = {
        {"temperature", 0, 10, offsetof(serve_sampling, temperature)},
        {"top_p", 0, 1, offsetof(serve_sampling, top_p)},
        {"min_p", 0, 1, offsetof(serve_sampling, min_p)},
        {"repeat_penalty", 0.01, 10, offsetof(serve_sampling, repeat_penalty)},
        {"presence_penalty", -2, 2, offsetof(serve_sampling, presence_penalty)},
        {"frequency_penalty", -2, 2, offsetof(serve_sampling, frequency_penalty)},
    };
    for (size_t i = 0; i < sizeof NUMS / sizeof NUMS[0]; i++) {
        double x;
        int got = serve_json_get_number(o, "options", NUMS[i].key, NUMS[i].lo, NUMS[i].hi, &x, e);
        if (got < 0) return -1;
        if (got) *(float *)((char *)s + NUMS[i].off) = (float)x;
    }
    double ignored;
    if (serve_json_get_number(o, "options", "typical_p", 0, 1, &ignored, e) < 0) return -1;
    return 0;
}

static int options_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *o = NULL;
    int got = serve_json_get_object(b, "", "options", &o, e);
    if (got <= 0) return got;
    serve_sampling *s = &r->sampling;
    int64_t k;
    if (options_numbers(s, o, e)) return -1;
    if ((got = serve_json_get_int(o, "options", "top_k", 0, INT32_MAX, &k, e)) < 0) return -1;
    if (got) s->top_k = (int32_t)k;
    if ((got = serve_json_get_int(o, "options", "repeat_last_n", -1, 1 << 24, &k, e)) < 0)
        return -1;
    if (got) s->repeat_last_n = (int32_t)k;
    if ((got = serve_json_get_int(o, "options", "seed", INT64_MIN, INT64_MAX, &k, e)) < 0)
        return -1;
    if (got) {
        s->has_seed = true;
        s->seed = (uint64_t)k;
    }
    /* num_predict: -1 = no limit, -2 = until the context is full; both end at the context. */
    if ((got = serve_json_get_int(o, "options", "num_predict", -2, INT32_MAX, &k, e)) < 0)
        return -1;
    if (got) r->max_tokens = k < 0 ? -1 : k;
    if ((got = serve_json_get_int(o, "options", "num_ctx", 1, 1 << 24, &k, e)) < 0) return -1;
    if (got) r->num_ctx = k;
    return serve_req_parse_stop(r, json_object_get(o, "stop"), "options.stop", e);
}

/* Go's duration syntax as Ollama reads keep_alive: "5m", "1h30m", "300ms", "-1", "0". A bare
 * number is seconds; a negative one keeps the model loaded for ever. */
static int duration_parse(const char *s, double *out) {
    char *end;
    double x = strtod(s, &end);
    if (end != s && !*end && isfinite(x)) {
        *out = x;
        return 0;
    }
    double total = 0, sign = 1;
    if (*s == '-') {
        sign = -1;
        s++;
    }
    if (!*s) return -1;
    while (*s) {
        x = strtod(s, &end);
        if (end == s || !isfinite(x) || x < 0) return -1;
        s = end;
        static const struct {
            const char *unit;
            double sec;
        } UNITS[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};
        size_t u = 0;
        for (; u < sizeof UNITS / sizeof UNITS[0]; u++)
            if (!strncmp(s, UNITS[u].unit, strlen(UNITS[u].unit))) break;
        if (u == sizeof UNITS / sizeof UNITS[0]) return -1;
        s += strlen(UNITS[u].unit);
        total += x * UNITS[u].sec;
    }
    *out = sign * total;
    return 0;
}

static int common_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    if (serve_req_parse_model(r, b, true, e) || options_parse(r, b, e) ||
        serve_json_get_bool(b, "", "stream", &r->stream, e) < 0 ||
        serve_req_parse_ollama_format(r, b, e) || serve_req_parse_grammar(r, b, e))
        return -1;
    json_t *ka = json_object_get(b, "keep_alive"), *think = json_object_get(b, "think");
    if (ka && json_is_number(ka))
        r->keep_alive = json_number_value(ka);
    else if (ka && json_is_string(ka) && duration_parse(json_string_value(ka), &r->keep_alive))
        return serve_error_bad(e, "invalid_value", "keep_alive",
                               "keep_alive: expected a duration such as \"5m\" or a number of "
                               "seconds, got \"%.64s\"",
                               json_string_value(ka));
    else if (ka && !json_is_null(ka) && !json_is_string(ka))
        return serve_json_type_error(e, "keep_alive", "a duration string or a number", ka);
    r->keep_alive_set = ka && !json_is_null(ka);
    if (!think || json_is_null(think)) return 0;
    if (json_is_boolean(think)) {
        r->think = json_is_true(think);
        return 0;
    }
    const char *lvl = json_string_value(think);
    if (!lvl || (strcmp(lvl, "low") && strcmp(lvl, "medium") && strcmp(lvl, "high")))
        return lvl ? serve_error_bad(e, "invalid_value", "think",
                                     "think: expected true, false, \"low\", \"medium\" or "
                                     "\"high\", got \"%.64s\"",
                                     lvl)
                   : serve_json_type_error(e, "think", "a boolean or a level string", think);
    r->think = 1;
    return serve_req_strdup(&r->reasoning_effort, lvl, strlen(lvl), e);
}

static int chat_fill(serve_gen_req *r, const json_t *b, const serve_limits *lim, serve_error *e) {
    (void)lim;
    /* Ollama's chat with no messages loads the model and answers done: an empty list is fine
     * there, so it is checked here rather than by serve_messages_parse. */
    json_t *m = json_object_get(b, "messages");
    if (common_parse(r, b, e) || serve_req_parse_tools(r, b, e)) return -1;
    if (json_is_array(m) && json_array_size(m) == 0) {
        r->messages = json_array();
        return r->messages ? 0 : serve_req_nomem(e, "messages");
    }
    if (!m || json_is_null(m)) {
        r->messages = json_array();
        return r->messages ? 0 : serve_req_nomem(e, "messages");
    }
    return serve_messages_parse(r, b, e);
}

int serve_ollama_chat_parse(const char *body, size_t len, const serve_limits *lim,
                            serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_OLLAMA, SERVE_KIND_CHAT, body, len,
                                chat_fill, lim, out, e);
}

static int generate_strings(serve_gen_req *r, const json_t *b, serve_error *e) {
    const char *s = NULL;
    size_t n = 0;
    json_t *images = NULL;
    int got;
    if ((got = serve_json_get_string(b, "", "system", SERVE_MAX_TEXT, &s, &n, e)) < 0) return -1;
    if (got && serve_req_strdup(&r->system, s, n, e)) return -1;
    if ((got = serve_json_get_string(b, "", "suffix", SERVE_MAX_TEXT, &s, &n, e)) < 0) return -1;
    if (got && serve_req_strdup(&r->suffix, s, n, e)) return -1;
    r->fim = got > 0;
    if (serve_json_get_string(b, "", "template", SERVE_MAX_TEXT, &s, &n, e) < 0 ||
        serve_json_get_bool(b, "", "raw", &r->raw, e) < 0 ||
        serve_json_get_array(b, "", "images", &images, e) < 0)
        return -1;
    if (images && json_array_size(images))
        return serve_error_bad(e, "unsupported_content", "images",
                               "images: this server's model reads text only, got %zu images",
                               json_array_size(images));
    return 0;
}

static int generate_fill(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                         serve_error *e) {
    (void)lim;
    const char *s = "";
    size_t n = 0;
    if (common_parse(r, b, e) || generate_strings(r, b, e) ||
        serve_json_get_string(b, "", "prompt", SERVE_MAX_TEXT, &s, &n, e) < 0)
        return -1;
    /* An absent or empty prompt is Ollama's "load the model" request: zero prompts. */
    if (n == 0) return 0;
    r->prompts = ob_calloc(1, sizeof *r->prompts);
    if (!r->prompts) return serve_req_nomem(e, "prompt");
    r->n_prompts = 1;
    r->prompts[0].text_len = n;
    return serve_req_strdup(&r->prompts[0].text, s, n, e);
}

int serve_ollama_generate_parse(const char *body, size_t len, const serve_limits *lim,
                                serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_OLLAMA, SERVE_KIND_COMPLETION, body, len,
                                generate_fill, lim, out, e);
}
