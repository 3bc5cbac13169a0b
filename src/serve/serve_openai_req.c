/*
 * OpenAI request bodies: POST /v1/chat/completions and POST /v1/completions into a
 * serve_gen_req (serve_request.h). Unknown fields are ignored, as every OpenAI-compatible
 * server does, since clients send extras (user, metadata, store) this server has no use for;
 * every known field is type- and range-checked with its JSON path in the error.
 */
#include "serve/serve_constraint.h"
#include "serve/serve_request.h"

#include "core/alloc.h"
#include "serve/serve_json.h"
#include "serve/serve_messages.h"
#include "serve/serve_tools.h"

#include <string.h>

/* temperature .. repetition_penalty: the sampler's numbers, with OpenAI's documented ranges
 * (top_k and min_p are llama.cpp's extensions, which clients use against local servers). */
static int sampling_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    serve_sampling *s = &r->sampling;
    double x;
    int64_t k;
    int got;
    if ((got = serve_json_get_number(b, "", "temperature", 0, 2, &x, e)) < 0) return -1;
    if (got) s->temperature = (float)x;
    if ((got = serve_json_get_number(b, "", "top_p", 0, 1, &x, e)) < 0) return -1;
    if (got) s->top_p = (float)x;
    if ((got = serve_json_get_number(b, "", "min_p", 0, 1, &x, e)) < 0) return -1;
    if (got) s->min_p = (float)x;
    if ((got = serve_json_get_int(b, "", "top_k", 0, INT32_MAX, &k, e)) < 0) return -1;
    if (got) s->top_k = (int32_t)k;
    if ((got = serve_json_get_number(b, "", "presence_penalty", -2, 2, &x, e)) < 0) return -1;
    if (got) s->presence_penalty = (float)x;
    if ((got = serve_json_get_number(b, "", "frequency_penalty", -2, 2, &x, e)) < 0) return -1;
    if (got) s->frequency_penalty = (float)x;
    if ((got = serve_json_get_number(b, "", "repetition_penalty", 0.01, 10, &x, e)) < 0) return -1;
    if (got) s->repeat_penalty = (float)x;
    if (serve_json_get_bool(b, "", "ignore_eos", &s->ignore_eos, e) < 0) return -1;
    if ((got = serve_json_get_int(b, "", "seed", INT64_MIN, INT64_MAX, &k, e)) < 0) return -1;
    if (got) {
        s->has_seed = true;
        s->seed = (uint64_t)k; /* negative seeds are valid in OpenAI's API; the bits are kept */
    }
    return 0;
}

static int stream_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    json_t *so = NULL;
    if (serve_json_get_bool(b, "", "stream", &r->stream, e) < 0 ||
        serve_json_get_object(b, "", "stream_options", &so, e) < 0)
        return -1;
    if (!so) return 0;
    if (!r->stream)
        return serve_error_bad(e, "invalid_value", "stream_options",
                               "stream_options: only allowed when stream is true");
    return serve_json_get_bool(so, "stream_options", "include_usage", &r->include_usage, e) < 0 ? -1
                                                                                                : 0;
}

int serve_req_parse_openai_common(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                                  serve_error *e) {
    int64_t k;
    int got;
    if (serve_req_parse_model(r, b, false, e) || sampling_parse(r, b, e) ||
        serve_req_parse_stop(r, json_object_get(b, "stop"), "stop", e) ||
        serve_req_parse_logit_bias(r, b, lim, e) || stream_parse(r, b, e))
        return -1;
    if ((got = serve_json_get_int(b, "", "n", 1, SERVE_MAX_N, &k, e)) < 0) return -1;
    if (got) r->n = (int)k;
    /* max_completion_tokens replaced max_tokens; when both come, the newer one counts. */
    if ((got = serve_json_get_int(b, "", "max_tokens", 1, INT32_MAX, &k, e)) < 0) return -1;
    if (got) r->max_tokens = k;
    if ((got = serve_json_get_int(b, "", "max_completion_tokens", 1, INT32_MAX, &k, e)) < 0)
        return -1;
    if (got) r->max_tokens = k;
    return 0;
}

static int chat_logprobs(serve_gen_req *r, const json_t *b, serve_error *e) {
    int64_t k;
    int got;
    if (serve_json_get_bool(b, "", "logprobs", &r->logprobs, e) < 0) return -1;
    if ((got = serve_json_get_int(b, "", "top_logprobs", 0, SERVE_MAX_TOP_LOGPROBS, &k, e)) < 0)
        return -1;
    if (got && !r->logprobs)
        return serve_error_bad(e, "invalid_value", "top_logprobs",
                               "top_logprobs: only allowed when logprobs is true");
    if (got) r->top_logprobs = (int)k;
    return 0;
}

static int chat_extras(serve_gen_req *r, const json_t *b, serve_error *e) {
    const char *effort = NULL;
    size_t n = 0;
    json_t *kw = NULL;
    if (serve_json_get_bool(b, "", "parallel_tool_calls", &r->parallel_tool_calls, e) < 0 ||
        serve_json_get_string(b, "", "reasoning_effort", SERVE_MAX_NAME, &effort, &n, e) < 0 ||
        serve_json_get_object(b, "", "chat_template_kwargs", &kw, e) < 0)
        return -1;
    if (effort) {
        static const char *const OK[] = {"none", "minimal", "low", "medium", "high"};
        bool known = false;
        for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++)
            known |= !strcmp(effort, OK[i]);
        if (!known)
            return serve_error_bad(e, "invalid_value", "reasoning_effort",
                                   "reasoning_effort: expected none, minimal, low, medium or "
                                   "high, got \"%.64s\"",
                                   effort);
        if (serve_req_strdup(&r->reasoning_effort, effort, n, e)) return -1;
        r->think = strcmp(effort, "none") != 0;
    }
    if (kw) r->template_kwargs = json_incref(kw);
    return 0;
}

static int chat_fill(serve_gen_req *r, const json_t *b, const serve_limits *lim, serve_error *e) {
    if (serve_messages_parse(r, b, e) || serve_req_parse_openai_common(r, b, lim, e) ||
        chat_logprobs(r, b, e) || serve_req_parse_tools(r, b, e) ||
        serve_req_parse_tool_choice(r, b, e) || serve_req_parse_response_format(r, b, e) ||
        chat_extras(r, b, e) || serve_req_parse_grammar(r, b, e))
        return -1;
    return 0;
}

int serve_openai_chat_parse(const char *body, size_t len, const serve_limits *lim,
                            serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_OPENAI, SERVE_KIND_CHAT, body, len,
                                chat_fill, lim, out, e);
}

/* ---- /v1/completions ---- */

static int prompt_ids(const json_t *arr, const char *path, const serve_limits *lim, serve_prompt *p,
                      serve_error *e) {
    size_t n = json_array_size(arr);
    if (n > SERVE_MAX_PROMPT_TOKENS)
        return serve_error_bad(e, "limit_exceeded", path, "%s: %zu token ids, the limit is %d",
                               path, n, SERVE_MAX_PROMPT_TOKENS);
    p->tokens = ob_alloc(n ? n : 1, sizeof *p->tokens);
    if (!p->tokens) return serve_req_nomem(e, path);
    char ip[SERVE_PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        int64_t id;
        serve_path_index(ip, sizeof ip, path, i);
        if (!serve_json_whole(v, &id))
            return serve_json_type_error(e, ip, "a token id (an integer)", v);
        int64_t hi = lim && lim->n_vocab > 0 ? lim->n_vocab - 1 : INT32_MAX;
        if (id < 0 || id > hi)
            return serve_error_bad(e, "invalid_value", ip,
                                   "%s: expected a token id from 0 to %lld, got %lld", ip,
                                   (long long)hi, (long long)id);
        p->tokens[i] = (int32_t)id;
    }
    p->n_tokens = n;
    return 0;
}

static int prompt_one(serve_gen_req *r, const json_t *v, const char *path, const serve_limits *lim,
                      serve_error *e) {
    serve_prompt *p = &r->prompts[r->n_prompts];
    memset(p, 0, sizeof *p);
    r->n_prompts++; /* counted before filling, so serve_gen_req_free releases a partial one */
    if (json_is_array(v)) return prompt_ids(v, path, lim, p, e);
    if (!json_is_string(v))
        return serve_json_type_error(e, path, "a string or an array of token ids", v);
    if (json_string_length(v) > SERVE_MAX_TEXT)
        return serve_error_bad(e, "limit_exceeded", path,
                               "%s: string of %zu bytes, the limit is %u", path,
                               json_string_length(v), SERVE_MAX_TEXT);
    p->text_len = json_string_length(v);
    return serve_req_strdup(&p->text, json_string_value(v), p->text_len, e);
}

/* prompt: "text" | [ids] | ["text", ...] | [[ids], ...]. */
static int prompts_parse(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                         serve_error *e) {
    json_t *v = json_object_get(b, "prompt");
    if (!v || json_is_null(v))
        return serve_error_bad(e, "missing_field", "prompt", "prompt: required, got nothing");
    bool many = json_is_array(v) && json_array_size(v) > 0 &&
                (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0)));
    size_t n = many ? json_array_size(v) : 1;
    if (json_is_array(v) && json_array_size(v) == 0)
        return serve_error_bad(e, "invalid_value", "prompt",
                               "prompt: expected a string or token ids, got an empty array");
    if (n > SERVE_MAX_PROMPTS)
        return serve_error_bad(e, "limit_exceeded", "prompt",
                               "prompt: %zu prompts, the limit is %d", n, SERVE_MAX_PROMPTS);
    r->prompts = ob_calloc(n, sizeof *r->prompts);
    if (!r->prompts) return serve_req_nomem(e, "prompt");
    if (!many) return prompt_one(r, v, "prompt", lim, e);
    char ip[SERVE_PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        serve_path_index(ip, sizeof ip, "prompt", i);
        json_t *item = json_array_get(v, i);
        if (json_is_array(item) || json_is_string(item)) {
            if (prompt_one(r, item, ip, lim, e)) return -1;
        } else {
            return serve_json_type_error(e, ip, "a string or an array of token ids", item);
        }
    }
    return 0;
}

static int completion_fill(serve_gen_req *r, const json_t *b, const serve_limits *lim,
                           serve_error *e) {
    const char *suffix = NULL;
    size_t n = 0;
    int64_t k, best_of = 0;
    int got;
    if (prompts_parse(r, b, lim, e) || serve_req_parse_openai_common(r, b, lim, e) ||
        serve_json_get_bool(b, "", "echo", &r->echo, e) < 0 ||
        serve_json_get_string(b, "", "suffix", SERVE_MAX_TEXT, &suffix, &n, e) < 0 ||
        serve_json_get_int(b, "", "best_of", 1, SERVE_MAX_N, &best_of, e) < 0 ||
        serve_req_parse_grammar(r, b, e))
        return -1;
    if (best_of && best_of != r->n)
        return serve_error_bad(e, "unsupported_value", "best_of",
                               "best_of: only best_of = n (%d) is supported, got %lld", r->n,
                               (long long)best_of);
    if (suffix && serve_req_strdup(&r->suffix, suffix, n, e)) return -1;
    r->fim = suffix != NULL; /* the prompt is the code before the cursor */
    /* The legacy API's logprobs is a count of alternatives (0..5), not a boolean. */
    if ((got = serve_json_get_int(b, "", "logprobs", 0, 5, &k, e)) < 0) return -1;
    if (got) {
        r->logprobs = true;
        r->top_logprobs = (int)k;
    }
    if (r->max_tokens < 0) r->max_tokens = 16; /* OpenAI's documented default for completions */
    return 0;
}

int serve_openai_completion_parse(const char *body, size_t len, const serve_limits *lim,
                                  serve_gen_req **out, serve_error *e) {
    return serve_req_parse_body(SERVE_DIALECT_OPENAI, SERVE_KIND_COMPLETION, body, len,
                                completion_fill, lim, out, e);
}
