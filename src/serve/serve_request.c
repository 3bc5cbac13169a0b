/*
 * The generation request both dialects parse into (serve_request.h): its defaults, its
 * release, and the fields whose rules the dialects share (stop, tools, model, logit_bias and
 * OpenAI's sampling fields). The dialect files hold what differs.
 */
#include "serve/serve_request.h"
#include "spec/spec.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int serve_req_nomem(serve_error *e, const char *what) {
    return serve_error_set(e, 500, "server_error", "out_of_memory", NULL,
                           "out of memory while reading %s", what);
}

serve_gen_req *serve_gen_req_new(serve_dialect dialect, serve_kind kind) {
    serve_gen_req *r = ob_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->dialect = dialect;
    r->kind = kind;
    r->think = -1;
    r->reasoning_budget = -1;
    r->max_tokens = -1;
    r->n = 1;
    r->parallel_tool_calls = true;
    r->speculative = -1;
    serve_sampling *s = &r->sampling;
    s->top_p = 1.0f;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    if (dialect != SERVE_DIALECT_OLLAMA) {
        s->temperature = 1.0f; /* OpenAI's and Anthropic's documented default */
    } else {
        /* Ollama's defaults, so clients that send no options get what Ollama would do. */
        s->temperature = 0.8f;
        s->top_k = 40;
        s->top_p = 0.9f;
        s->repeat_penalty = 1.1f;
        r->stream = true;
        r->keep_alive = 300;
    }
    return r;
}

void serve_gen_req_free(serve_gen_req *r) {
    if (!r) return;
    ob_free(r->model);
    json_decref(r->messages);
    json_decref(r->tools);
    ob_free(r->tool_choice_name);
    json_decref(r->response_format);
    json_decref(r->template_kwargs);
    ob_free(r->reasoning_effort);
    for (size_t i = 0; i < r->n_prompts; i++) {
        ob_free(r->prompts[i].text);
        ob_free(r->prompts[i].tokens);
    }
    ob_free(r->prompts);
    ob_free(r->suffix);
    ob_free(r->system);
    ob_free(r->sampling.logit_bias);
    for (size_t i = 0; i < r->n_stop; i++)
        ob_free(r->stop[i]);
    ob_free(r->stop);
    json_decref(r->fim_extra);
    ob_free(r->fim_prompt);
    ob_free(r->grammar);
    ob_free(r);
}

int serve_req_strdup(char **dst, const char *src, size_t len, serve_error *e) {
    char *s = ob_strndup(src, len);
    if (!s) return serve_req_nomem(e, "a string field");
    ob_free(*dst);
    *dst = s;
    return 0;
}

int serve_body_parse(const char *body, size_t len, json_t **out, serve_error *e) {
    if (len == 0)
        return serve_error_bad(e, "invalid_json", NULL,
                               "request body: expected a JSON object, got an empty body");
    json_error_t je;
    /* JSON_DISABLE_EOF_CHECK off: trailing garbage after the object is an error too. */
    serve_json_take_oom();
    json_t *root = json_loadb(body, len, 0, &je);
    /* Out of memory is ours, not a malformed body, whatever jansson's message says. */
    if (serve_json_take_oom()) {
        json_decref(root);
        return serve_req_nomem(e, "the request body");
    }
    if (!root)
        return serve_error_bad(e, "invalid_json", NULL,
                               "request body: malformed JSON at line %d, column %d: %s", je.line,
                               je.column, je.text);
    if (!json_is_object(root)) {
        serve_error_bad(e, "invalid_type", NULL, "request body: expected a JSON object, got %s",
                        serve_json_type(root));
        json_decref(root);
        return -1;
    }
    *out = root;
    return 0;
}

/* "speculative": "auto" | "off" | "ngram" | "draft" | "mtp" (or true / false for auto / off):
 * whether this request's sequences draft (spec.h), from object b where the field is named
 * `name` in messages. */
static int speculative_field(serve_gen_req *r, const json_t *b, const char *name,
                             serve_error *e) {
    const json_t *v = json_object_get(b, "speculative");
    if (!v || json_is_null(v)) return 0;
    if (json_is_boolean(v)) {
        r->speculative = json_is_true(v) ? SPEC_MODE_AUTO : SPEC_MODE_OFF;
        return 0;
    }
    if (!json_is_string(v))
        return serve_json_type_error(e, name, "\"auto\", \"off\", \"ngram\", \"draft\", "
                                     "\"mtp\" or a boolean", v);
    spec_mode m;
    ob_err err;
    if (spec_mode_parse(json_string_value(v), &m, &err))
        return serve_error_bad(e, "invalid_value", name, "%s: %s", name, err.msg);
    r->speculative = (int)m;
    return 0;
}

/* The field at the top of every dialect's body; Ollama's clients pass what the API does not
 * name in "options" (the ollama package's chat() has no other way), so there it is read too,
 * and wins. */
static int speculative_parse(serve_gen_req *r, const json_t *b, serve_error *e) {
    if (speculative_field(r, b, "speculative", e)) return -1;
    const json_t *o = json_object_get(b, "options");
    if (r->dialect == SERVE_DIALECT_OLLAMA && json_is_object(o))
        return speculative_field(r, o, "options.speculative", e);
    return 0;
}

int serve_req_parse_body(serve_dialect dialect, serve_kind kind, const char *body, size_t len,
                         serve_req_fill_fn fill, const serve_limits *lim, serve_gen_req **out,
                         serve_error *e) {
    json_t *root = NULL;
    if (serve_body_parse(body, len, &root, e)) return -1;
    serve_gen_req *r = serve_gen_req_new(dialect, kind);
    int rc = r ? fill(r, root, lim, e) : serve_req_nomem(e, "the request");
    if (!rc) rc = speculative_parse(r, root, e);
    json_decref(root);
    if (rc) {
        serve_gen_req_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

static int stop_add(serve_gen_req *r, const json_t *s, const char *path, serve_error *e) {
    if (!json_is_string(s)) return serve_json_type_error(e, path, "a string", s);
    size_t n = json_string_length(s);
    if (n == 0) return 0; /* an empty stop string would end every answer at once: ignored */
    if (n > SERVE_MAX_STOP_LEN)
        return serve_error_bad(e, "limit_exceeded", path,
                               "%s: stop string of %zu bytes, the limit is %d", path, n,
                               SERVE_MAX_STOP_LEN);
    if (r->n_stop >= SERVE_MAX_STOP)
        return serve_error_bad(e, "limit_exceeded", path, "%s: more than %d stop strings", path,
                               SERVE_MAX_STOP);
    char **grown = ob_realloc(r->stop, r->n_stop + 1, sizeof *grown);
    if (!grown) return serve_req_nomem(e, path);
    r->stop = grown;
    r->stop[r->n_stop] = ob_strndup(json_string_value(s), n);
    if (!r->stop[r->n_stop]) return serve_req_nomem(e, path);
    r->n_stop++;
    return 0;
}

int serve_req_parse_stop(serve_gen_req *r, const json_t *v, const char *path, serve_error *e) {
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) return stop_add(r, v, path, e);
    if (!json_is_array(v))
        return serve_json_type_error(e, path, "a string or an array of strings", v);
    if (json_array_size(v) > SERVE_MAX_STOP)
        return serve_error_bad(e, "limit_exceeded", path, "%s: %zu stop strings, the limit is %d",
                               path, json_array_size(v), SERVE_MAX_STOP);
    char p[SERVE_PATH_MAX];
    for (size_t i = 0; i < json_array_size(v); i++) {
        serve_path_index(p, sizeof p, path, i);
        if (stop_add(r, json_array_get(v, i), p, e)) return -1;
    }
    return 0;
}

int serve_req_parse_model(serve_gen_req *r, const json_t *body, bool required, serve_error *e) {
    const char *s = NULL;
    size_t n = 0;
    int got = serve_json_get_string(body, "", "model", SERVE_MAX_NAME, &s, &n, e);
    if (got < 0) return -1;
    if (got == 0 || n == 0) {
        if (required)
            return serve_error_bad(e, "missing_field", "model", "model: required, got %s",
                                   got ? "an empty string" : "nothing");
        s = "";
        n = 0;
    }
    return serve_req_strdup(&r->model, s, n, e);
}

/* "123" -> 123 when the whole key is a decimal token id below n_vocab. */
static int bias_key(const char *key, const serve_limits *lim, const char *path, int32_t *out,
                    serve_error *e) {
    char *end;
    long long id = strtoll(key, &end, 10);
    if (!key[0] || *end || id < 0 || id > INT32_MAX)
        return serve_error_bad(e, "invalid_value", path,
                               "%s: expected a token id (a whole number as the key), got \"%s\"",
                               path, key);
    if (lim && lim->n_vocab > 0 && id >= lim->n_vocab)
        return serve_error_bad(e, "invalid_value", path,
                               "%s: token id %lld is outside the vocabulary of %lld tokens", path,
                               id, (long long)lim->n_vocab);
    *out = (int32_t)id;
    return 0;
}

int serve_req_parse_logit_bias(serve_gen_req *r, const json_t *body, const serve_limits *lim,
                               serve_error *e) {
    json_t *obj = NULL;
    int got = serve_json_get_object(body, "", "logit_bias", &obj, e);
    if (got <= 0) return got;
    size_t n = json_object_size(obj);
    if (n > SERVE_MAX_LOGIT_BIAS)
        return serve_error_bad(e, "limit_exceeded", "logit_bias",
                               "logit_bias: %zu entries, the limit is %d", n, SERVE_MAX_LOGIT_BIAS);
    if (n == 0) return 0;
    r->sampling.logit_bias = ob_alloc(n, sizeof *r->sampling.logit_bias);
    if (!r->sampling.logit_bias) return serve_req_nomem(e, "logit_bias");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char path[SERVE_PATH_MAX];
        serve_path_key(path, sizeof path, "logit_bias", key);
        double b = 0;
        serve_logit_bias *lb = &r->sampling.logit_bias[r->sampling.n_logit_bias];
        if (bias_key(key, lim, path, &lb->token, e)) return -1;
        if (serve_json_get_number(obj, "logit_bias", key, -100, 100, &b, e) < 0) return -1;
        lb->bias = (float)b;
        r->sampling.n_logit_bias++;
    }
    return 0;
}
