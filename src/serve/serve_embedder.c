/*
 * The embedder: tokenizes a request's texts, checks them against the context and runs
 * ob_embed on a context of its own (see serve_embed.h for why not the scheduler's).
 */
#include "core/alloc.h"
#include "serve/serve_embed.h"

#include "outboard.h"

#include <string.h>

/* Sequences of the embedder's context: the inputs one ob_decode batch may hold. */
#define EMBED_SEQS 16

void serve_embedder_init(serve_embedder *em, ob_model *m, int64_t n_ctx, int n_threads,
                         int pooling) {
    memset(em, 0, sizeof *em);
    em->model = m;
    em->n_ctx = n_ctx;
    em->n_threads = n_threads;
    em->pooling = pooling;
    pthread_mutex_init(&em->mu, NULL);
}

void serve_embedder_clear(serve_embedder *em) {
    if (!em->model) return;
    ob_context_free(em->ctx);
    pthread_mutex_destroy(&em->mu);
    memset(em, 0, sizeof *em);
}

/* Tokens of every text input (BOS/EOS as the vocabulary asks, special-token text left as
 * text, as llama.cpp's embedding examples tokenize); inputs longer than the context are cut
 * when r->truncate, else refused. */
static int tokenize_all(serve_embedder *em, serve_embed_req *r, int64_t *n_tokens,
                        serve_error *e) {
    *n_tokens = 0;
    const char *key = r->api == SERVE_EMBED_OLLAMA_LEGACY ? "prompt" : "input";
    for (size_t i = 0; i < r->n_inputs; i++) {
        char path[64];
        if (r->n_inputs == 1) snprintf(path, sizeof path, "%s", key);
        else snprintf(path, sizeof path, "%s[%zu]", key, i);
        if (r->texts[i]) {
            ob_err err = {{0}};
            size_t n = 0;
            if (ob_tokenize(em->model, r->texts[i], r->text_lens[i], true, false, &r->ids[i], &n,
                            &err))
                return serve_error_bad(e, "invalid_value", path, "%s: %s", path, err.msg);
            r->n_ids[i] = (int64_t)n;
            if (n == 0)
                return serve_error_bad(e, "invalid_value", path, "%s: no tokens", path);
        }
        if (r->n_ids[i] > em->n_ctx) {
            if (!r->truncate)
                return serve_error_bad(e, "context_length_exceeded", path,
                                       "%s: %lld tokens, longer than the context of %lld",
                                       path, (long long)r->n_ids[i], (long long)em->n_ctx);
            r->n_ids[i] = em->n_ctx;
        }
        *n_tokens += r->n_ids[i];
    }
    return 0;
}

static int make_context(serve_embedder *em, serve_error *e) {
    if (em->ctx) return 0;
    ob_context_params cp;
    ob_context_params_init(&cp);
    cp.n_ctx = em->n_ctx;
    cp.n_threads = em->n_threads;
    cp.n_seq_max = EMBED_SEQS;
    cp.kv_size = em->n_ctx; /* one context's worth, shared by a batch's inputs */
    ob_err err = {{0}};
    if (ob_context_new(em->model, &cp, &em->ctx, &err))
        return serve_error_set(e, 500, "server_error", "embedding_unavailable", NULL,
                               "cannot make the embedding context: %s", err.msg);
    return 0;
}

int serve_embedder_run(void *user, serve_embed_req *r, float **vecs, int64_t *n_tokens,
                       serve_error *e) {
    serve_embedder *em = user;
    *vecs = NULL;
    ob_model_info in;
    ob_model_get_info(em->model, &in);
    if (em->pooling == OB_POOLING_NONE)
        return serve_error_bad(e, "pooling_unsupported", NULL,
                               "this model's file names no pooling (%s.pooling_type absent or "
                               "none), so it gives no embedding per input; start the server "
                               "with --pooling mean, cls or last", in.arch);
    if (r->dimensions && r->dimensions != in.n_embd)
        return serve_error_bad(e, "invalid_value", "dimensions",
                               "dimensions: %lld, this model's embeddings have %lld and are not "
                               "shortened", (long long)r->dimensions, (long long)in.n_embd);
    if (tokenize_all(em, r, n_tokens, e)) return -1;
    float *out = ob_alloc(r->n_inputs, (size_t)in.n_embd * sizeof(float));
    if (!out)
        return serve_error_set(e, 500, "server_error", "out_of_memory", NULL,
                               "out of memory for %zu embeddings", r->n_inputs);
    pthread_mutex_lock(&em->mu);
    int rc = make_context(em, e);
    ob_err err = {{0}};
    ob_status st = rc ? OB_OK
                      : ob_embed(em->ctx, (const int32_t *const *)r->ids, r->n_ids,
                                 (int64_t)r->n_inputs, (ob_pooling)em->pooling, r->normalize,
                                 out, &err);
    if (st)
        rc = st == OB_ERR_ARG || st == OB_ERR_LIMIT
                 ? serve_error_bad(e, "invalid_value", "input", "input: %s", err.msg)
                 : serve_error_set(e, 500, "server_error", "embedding_failed", NULL, "%s",
                                   err.msg);
    pthread_mutex_unlock(&em->mu);
    if (rc) {
        ob_free(out);
        return -1;
    }
    *vecs = out;
    return 0;
}
