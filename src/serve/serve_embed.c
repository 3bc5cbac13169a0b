/*
 * The embedding requests of the three routes into serve_embed_req, and their answers:
 *
 *   OpenAI  {"input": "text" | ["text", ...] | [id, ...] | [[id, ...], ...],
 *            "encoding_format": "float" | "base64", "dimensions": N}
 *        -> {"object": "list", "data": [{"object": "embedding", "index": i,
 *            "embedding": [...] | "base64 of little-endian f32"}], "model", "usage"}
 *   Ollama  {"input": "text" | ["text", ...], "truncate": true, "dimensions": N}
 *        -> {"model", "embeddings": [[...]], "total_duration", "load_duration",
 *            "prompt_eval_count"}
 *   legacy  {"prompt": "text"} -> {"embedding": [...]}
 */
#include "serve/serve_embed.h"

#include "core/alloc.h"
#include "serve/serve_json.h"

#include <string.h>

#define MAX_TEXT_BYTES ((size_t)1 << 24)

void serve_embed_req_free(serve_embed_req *r) {
    if (!r) return;
    for (size_t i = 0; r->ids && i < r->n_inputs; i++) ob_free(r->ids[i]);
    ob_free(r->ids);
    ob_free(r->n_ids);
    ob_free(r->texts);
    ob_free(r->text_lens);
    json_decref(r->doc);
    ob_free(r);
}

static int nomem(serve_error *e) {
    return serve_error_set(e, 500, "server_error", "out_of_memory", NULL,
                           "out of memory while reading the request");
}

static int alloc_inputs(serve_embed_req *r, size_t n, serve_error *e) {
    r->n_inputs = n;
    r->texts = ob_calloc(n, sizeof *r->texts);
    r->text_lens = ob_calloc(n, sizeof *r->text_lens);
    r->ids = ob_calloc(n, sizeof *r->ids);
    r->n_ids = ob_calloc(n, sizeof *r->n_ids);
    return r->texts && r->text_lens && r->ids && r->n_ids ? 0 : nomem(e);
}

/* A token array (input[i] or input itself) of ids in the vocabulary, copied to r->ids[i]. */
static int token_input(serve_embed_req *r, size_t i, const json_t *arr, const char *path,
                       int64_t n_vocab, serve_error *e) {
    const size_t n = json_array_size(arr);
    if (n == 0) return serve_error_bad(e, "invalid_value", path, "%s: an empty input", path);
    if (!(r->ids[i] = ob_alloc(n, sizeof(int32_t)))) return nomem(e);
    for (size_t t = 0; t < n; t++) {
        const json_t *v = json_array_get(arr, t);
        char at[SERVE_PATH_MAX];
        serve_path_index(at, sizeof at, path, t);
        if (!json_is_integer(v))
            return serve_json_type_error(e, at, "a token id (integer)", v);
        const json_int_t id = json_integer_value(v);
        if (id < 0 || (n_vocab > 0 && id >= n_vocab)) /* 0: not known yet */
            return serve_error_bad(e, "invalid_value", at, "%s: token id %lld, expected 0..%lld",
                                   at, (long long)id, (long long)(n_vocab - 1));
        r->ids[i][t] = (int32_t)id;
    }
    r->n_ids[i] = (int64_t)n;
    return 0;
}

static int text_input(serve_embed_req *r, size_t i, const json_t *v, const char *path,
                      serve_error *e) {
    const size_t len = json_string_length(v);
    if (len == 0) return serve_error_bad(e, "invalid_value", path, "%s: an empty string", path);
    if (len > MAX_TEXT_BYTES)
        return serve_error_bad(e, "limit_exceeded", path, "%s: %zu bytes, the limit is %zu",
                               path, len, MAX_TEXT_BYTES);
    r->texts[i] = json_string_value(v);
    r->text_lens[i] = len;
    return 0;
}

/* "input": a string, an array of strings, one token array or an array of token arrays
 * (token arrays only where tokens_ok: OpenAI). */
static int parse_input(serve_embed_req *r, const json_t *in, const char *key, bool tokens_ok,
                       int64_t n_vocab, serve_error *e) {
    const char *what = tokens_ok ? "a string, an array of strings or an array of token arrays"
                                 : "a string or an array of strings";
    if (!in) return serve_error_bad(e, "missing_field", key, "%s: required", key);
    if (json_is_string(in)) return alloc_inputs(r, 1, e) || text_input(r, 0, in, key, e);
    if (!json_is_array(in)) return serve_json_type_error(e, key, what, in);
    const size_t n = json_array_size(in);
    if (n == 0) return serve_error_bad(e, "invalid_value", key, "%s: an empty array", key);
    if (tokens_ok && json_is_integer(json_array_get(in, 0)))
        return alloc_inputs(r, 1, e) || token_input(r, 0, in, key, n_vocab, e);
    if (n > SERVE_EMBED_MAX_INPUTS)
        return serve_error_bad(e, "limit_exceeded", key, "%s: %zu inputs, the limit is %d",
                               key, n, SERVE_EMBED_MAX_INPUTS);
    if (alloc_inputs(r, n, e)) return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(in, i);
        char path[SERVE_PATH_MAX];
        serve_path_index(path, sizeof path, key, i);
        if (json_is_string(v)) {
            if (text_input(r, i, v, path, e)) return -1;
        } else if (tokens_ok && json_is_array(v)) {
            if (token_input(r, i, v, path, n_vocab, e)) return -1;
        } else {
            return serve_json_type_error(e, path, tokens_ok ? "a string or a token array"
                                                            : "a string", v);
        }
    }
    return 0;
}

static int parse_fields(serve_embed_req *r, int64_t n_vocab, serve_error *e) {
    const json_t *doc = r->doc;
    size_t len;
    if (serve_json_get_string(doc, "", "model", 256, &r->model, &len, e) < 0) return -1;
    if (serve_json_get_int(doc, "", "dimensions", 1, INT32_MAX, &r->dimensions, e) < 0)
        return -1;
    if (r->api == SERVE_EMBED_OLLAMA_LEGACY)
        return parse_input(r, json_object_get(doc, "prompt"), "prompt", false, n_vocab, e);
    if (r->api == SERVE_EMBED_OLLAMA) {
        if (serve_json_get_bool(doc, "", "truncate", &r->truncate, e) < 0) return -1;
        return parse_input(r, json_object_get(doc, "input"), "input", false, n_vocab, e);
    }
    const char *fmt = NULL;
    if (serve_json_get_string(doc, "", "encoding_format", 16, &fmt, &len, e) < 0) return -1;
    if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64"))
        return serve_error_bad(e, "invalid_value", "encoding_format",
                               "encoding_format: expected \"float\" or \"base64\", got \"%s\"",
                               fmt);
    r->base64 = fmt && !strcmp(fmt, "base64");
    return parse_input(r, json_object_get(doc, "input"), "input", true, n_vocab, e);
}

int serve_embed_parse(serve_embed_api api, const char *body, size_t len, int64_t n_vocab,
                      serve_embed_req **out, serve_error *e) {
    *out = NULL;
    serve_embed_req *r = ob_calloc(1, sizeof *r);
    if (!r) return nomem(e);
    r->api = api;
    r->model = "";
    r->truncate = api != SERVE_EMBED_OPENAI; /* Ollama truncates unless told not to */
    r->normalize = api != SERVE_EMBED_OLLAMA_LEGACY;
    json_error_t je;
    r->doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    int rc = 0;
    if (serve_json_take_oom()) rc = nomem(e);
    else if (!r->doc)
        rc = serve_error_bad(e, "invalid_json", NULL, "request body: invalid JSON at line %d "
                             "column %d: %s", je.line, je.column, je.text);
    else if (!json_is_object(r->doc))
        rc = serve_json_type_error(e, "request body", "an object", r->doc);
    else
        rc = parse_fields(r, n_vocab, e);
    if (rc) {
        serve_embed_req_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* ---- answers ---- */

char *serve_base64(const unsigned char *bytes, size_t n) {
    static const char ALPHABET[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = ob_alloc((n + 2) / 3 * 4 + 1, 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t b0 = bytes[i], b1 = i + 1 < n ? bytes[i + 1] : 0,
                       b2 = i + 2 < n ? bytes[i + 2] : 0;
        const uint32_t w = b0 << 16 | b1 << 8 | b2;
        out[o++] = ALPHABET[w >> 18 & 63];
        out[o++] = ALPHABET[w >> 12 & 63];
        out[o++] = i + 1 < n ? ALPHABET[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? ALPHABET[w & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static json_t *float_array(const float *v, int64_t n) {
    json_t *a = json_array();
    for (int64_t j = 0; a && j < n; j++)
        if (json_array_append_new(a, json_real(v[j]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* OpenAI's base64 form: the vector's f32 values, little-endian, as base64. */
static json_t *base64_vector(const float *v, int64_t n) {
    unsigned char *bytes = ob_alloc((size_t)n, 4);
    if (!bytes) return NULL;
    for (int64_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &v[j], 4);
        for (int b = 0; b < 4; b++) bytes[j * 4 + b] = (unsigned char)(u >> (8 * b));
    }
    char *s = serve_base64(bytes, (size_t)n * 4);
    ob_free(bytes);
    json_t *str = s ? json_string(s) : NULL;
    ob_free(s);
    return str;
}

static json_t *openai_reply(const serve_embed_req *r, const float *vecs, int64_t n_embd,
                            int64_t n_tokens, const char *model) {
    json_t *data = json_array();
    for (size_t i = 0; data && i < r->n_inputs; i++) {
        const float *v = vecs + i * (size_t)n_embd;
        json_t *vec = r->base64 ? base64_vector(v, n_embd) : float_array(v, n_embd);
        json_t *item = vec ? json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                       (json_int_t)i, "embedding", vec)
                           : NULL;
        if (!item || json_array_append_new(data, item)) {
            json_decref(data);
            return NULL;
        }
    }
    if (!data) return NULL;
    return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", model,
                     "usage", "prompt_tokens", (json_int_t)n_tokens, "total_tokens",
                     (json_int_t)n_tokens);
}

json_t *serve_embed_reply(const serve_embed_req *r, const float *vecs, int64_t n_embd,
                          int64_t n_tokens, const char *model, int64_t total_ns) {
    if (r->api == SERVE_EMBED_OPENAI) return openai_reply(r, vecs, n_embd, n_tokens, model);
    if (r->api == SERVE_EMBED_OLLAMA_LEGACY) {
        json_t *vec = float_array(vecs, n_embd);
        return vec ? json_pack("{s:o}", "embedding", vec) : NULL;
    }
    json_t *all = json_array();
    for (size_t i = 0; all && i < r->n_inputs; i++)
        if (json_array_append_new(all, float_array(vecs + i * (size_t)n_embd, n_embd))) {
            json_decref(all);
            return NULL;
        }
    if (!all) return NULL;
    return json_pack("{s:s,s:o,s:I,s:I,s:I}", "model", model, "embeddings", all,
                     "total_duration", (json_int_t)total_ns, "load_duration", (json_int_t)0,
                     "prompt_eval_count", (json_int_t)n_tokens);
}
