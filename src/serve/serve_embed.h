/*
 * Embeddings over HTTP: the requests of POST /v1/embeddings (OpenAI), POST /api/embed
 * (Ollama) and the older POST /api/embeddings (Ollama), parsed into one struct; the answers
 * in each API's shape; and the embedder that runs them on the loaded model.
 *
 * The embedder keeps its own context (made on the first request: n_ctx of the server, a
 * sequence per input of a batch), so embeddings never wait behind, nor disturb, the
 * generation scheduler's sequences and prefix cache; requests take turns on it.
 */
#ifndef OB_SERVE_EMBED_H
#define OB_SERVE_EMBED_H

#include "serve/serve_error.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum serve_embed_api {
    SERVE_EMBED_OPENAI = 0,   /* /v1/embeddings */
    SERVE_EMBED_OLLAMA,       /* /api/embed */
    SERVE_EMBED_OLLAMA_LEGACY /* /api/embeddings: one "prompt", not normalised (as Ollama) */
} serve_embed_api;

/* Most inputs one request may carry (OpenAI's own limit). */
#define SERVE_EMBED_MAX_INPUTS 2048

typedef struct serve_embed_req {
    serve_embed_api api;
    json_t *doc;        /* owned: the body the strings below point into */
    const char *model;  /* borrowed from doc; "" when absent */
    size_t n_inputs;
    const char **texts; /* owned array (n_inputs) of borrowed strings; NULL for a token input */
    size_t *text_lens;  /* owned (n_inputs) */
    int32_t **ids;      /* owned (n_inputs): token inputs as given, then every input's tokens
                           once the embedder has tokenized the texts */
    int64_t *n_ids;     /* owned (n_inputs) */
    bool base64;        /* encoding_format "base64" (OpenAI) */
    bool truncate;      /* cut inputs longer than the context (Ollama's default) instead of
                           answering 400 */
    bool normalize;     /* L2-normalise (all but the legacy route) */
    int64_t dimensions; /* asked for, 0 = not given */
} serve_embed_req;

/* Parses a body of the api's shape. n_vocab bounds token ids (0: not known, unchecked). -1
 * with e filled (400 naming the field) on bad input; *out owned by the caller
 * (serve_embed_req_free). */
int serve_embed_parse(serve_embed_api api, const char *body, size_t len, int64_t n_vocab,
                      serve_embed_req **out, serve_error *e);
void serve_embed_req_free(serve_embed_req *r);

/* The answer in r's api shape: vecs (n_inputs, n_embd), n_tokens evaluated over all inputs,
 * the model name to report and the time the request took (Ollama's total_duration). */
json_t *serve_embed_reply(const serve_embed_req *r, const float *vecs, int64_t n_embd,
                          int64_t n_tokens, const char *model, int64_t total_ns);

/* base64 of n bytes (new NUL-terminated string, ob_free), NULL when out of memory. */
char *serve_base64(const unsigned char *bytes, size_t n);

/* ---- the engine side ---- */

typedef struct ob_model ob_model;
typedef struct ob_context ob_context;

typedef struct serve_embedder {
    ob_model *model;     /* borrowed */
    int64_t n_ctx;       /* per input */
    int n_threads;       /* 0 = physical cores */
    int pooling;         /* ob_pooling: the file's, or --pooling */
    pthread_mutex_t mu;  /* one request at a time on ctx */
    ob_context *ctx;     /* owned, made on first use */
} serve_embedder;

/* pooling: an ob_pooling value (the file's, or the server's --pooling). */
void serve_embedder_init(serve_embedder *em, ob_model *m, int64_t n_ctx, int n_threads,
                         int pooling);
void serve_embedder_clear(serve_embedder *em);

/* Tokenizes r's texts, checks lengths (400 beyond the context unless r->truncate) and the
 * pooling (400 when the model names none), and embeds every input: *vecs new (n_inputs,
 * n_embd) f32 (ob_free), *n_tokens the tokens evaluated. -1 with e filled. Thread-safe. */
int serve_embedder_run(void *embedder, serve_embed_req *r, float **vecs, int64_t *n_tokens,
                       serve_error *e);

#endif
