/*
 * libFuzzer target for the embedding requests: the first byte picks the route's parser
 * (/v1/embeddings, /api/embed, /api/embeddings) and the answer's encoding, the rest is the
 * body. A parser must either fill a request whose inputs are all present (a text or token ids
 * within the vocabulary) or report an error with an HTTP status that serialises as valid JSON;
 * an accepted request's answer, built from made-up vectors, must be a JSON object whose
 * vectors (float arrays or base64 of little-endian f32) carry the values put in.
 */
#include "serve/serve_embed.h"

#include "core/alloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define N_VOCAB 512
#define N_EMBD 3

static void check_error(const serve_error *e) {
    if (e->status < 400 || e->status > 599) abort();
    for (int d = 0; d <= SERVE_DIALECT_OLLAMA; d++) {
        size_t len;
        char *body = serve_error_body(e, (serve_dialect)d, &len);
        if (!body) abort();
        json_t *v = json_loadb(body, len, 0, NULL);
        if (!json_is_object(v)) abort();
        json_decref(v);
        ob_free(body);
    }
}

static void check_inputs(const serve_embed_req *r) {
    if (r->n_inputs < 1 || r->n_inputs > SERVE_EMBED_MAX_INPUTS) abort();
    for (size_t i = 0; i < r->n_inputs; i++) {
        if (r->texts[i]) {
            if (r->text_lens[i] == 0 || r->ids[i]) abort();
            continue;
        }
        if (!r->ids[i] || r->n_ids[i] < 1) abort();
        for (int64_t t = 0; t < r->n_ids[i]; t++)
            if (r->ids[i][t] < 0 || r->ids[i][t] >= N_VOCAB) abort();
    }
}

/* The first vector of the answer as floats, checked against what went in. */
static void check_reply(const serve_embed_req *r, const float *vecs) {
    json_t *v = serve_embed_reply(r, vecs, N_EMBD, 7, "m", 1);
    if (!json_is_object(v)) abort();
    const json_t *first = r->api == SERVE_EMBED_OLLAMA_LEGACY
                              ? json_object_get(v, "embedding")
                          : r->api == SERVE_EMBED_OLLAMA
                              ? json_array_get(json_object_get(v, "embeddings"), 0)
                              : json_object_get(json_array_get(json_object_get(v, "data"), 0),
                                                "embedding");
    if (json_is_array(first)) {
        if (json_array_size(first) != N_EMBD) abort();
        for (size_t j = 0; j < N_EMBD; j++)
            if ((float)json_real_value(json_array_get(first, j)) != vecs[j]) abort();
    } else if (!json_is_string(first) || json_string_length(first) != 16) {
        abort(); /* 12 bytes of f32 are 16 characters of base64 */
    }
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const serve_embed_api api = (serve_embed_api)(data[0] % 3);
    serve_embed_req *r = NULL;
    serve_error e;
    memset(&e, 0, sizeof e);
    if (serve_embed_parse(api, (const char *)data + 1, size - 1, N_VOCAB, &r, &e)) {
        check_error(&e);
        return 0;
    }
    check_inputs(r);
    float *vecs = ob_alloc(r->n_inputs, N_EMBD * sizeof(float));
    if (vecs) {
        for (size_t k = 0; k < r->n_inputs * N_EMBD; k++) vecs[k] = (float)k * 0.25f - 1.0f;
        check_reply(r, vecs);
    }
    ob_free(vecs);
    serve_embed_req_free(r);
    return 0;
}
