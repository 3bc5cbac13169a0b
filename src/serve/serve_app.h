/*
 * The server's routes: authentication, routing with 404/405, the dialect's error objects,
 * metrics per route and status, and the handlers of the routes that need no engine (health,
 * metrics, model listings). Generation requests are parsed and validated here, then handed
 * to the generate hook; without one (the engine not wired in) they answer 503.
 *
 * serve_app_handle is a serve_handler_fn (serve_http.h): tests call it with a plain request
 * struct, no socket.
 */
#ifndef OB_SERVE_APP_H
#define OB_SERVE_APP_H

#include "serve/serve_embed.h"
#include "serve/serve_http.h"
#include "serve/serve_metrics.h"
#include "serve/serve_model.h"
#include "serve/serve_policy.h"
#include "serve/serve_request.h"

#include <stdatomic.h>

/* Takes r (transfers) and fills resp: a whole answer, or a stream it keeps writing to. req is
 * the HTTP request (borrowed for the call: its gone() tells a waiting handler the client
 * left). */
typedef void (*serve_generate_fn)(void *user, const serve_http_req *req, serve_gen_req *r,
                                  serve_http_resp *resp);

typedef struct serve_registry serve_registry;

typedef struct serve_app_config {
    /* One model (model, generate, count_tokens), or with registry set models by name. */
    const serve_model_desc *model; /* borrowed for the app's life; NULL with a registry */
    serve_metrics *metrics;        /* borrowed */
    const char *api_key;           /* borrowed; NULL or "" = no authentication */
    size_t max_body;               /* for the 413 message */
    serve_generate_fn generate;    /* NULL: generation routes answer 503 */
    void *generate_user;
    /* The prompt tokens of a chat request (POST /v1/messages/count_tokens): *n, or -1 with e
     * filled; NULL: that route answers 503. Called with generate_user. */
    int (*count_tokens)(void *user, const serve_gen_req *r, int64_t *n, serve_error *e);
    /* The routing policy (borrowed) or NULL: every request is served here. */
    const serve_policy *policy;
    /* The embeddings of r (serve_embedder_run's contract); NULL: the embedding routes answer
     * 503. */
    int (*embed)(void *user, serve_embed_req *r, float **vecs, int64_t *n_tokens,
                 serve_error *e);
    void *embed_user;
    /* The local model store (/api/pull, /api/delete, /api/tags; serve_store.h): its folder,
     * NULL for none (those routes answer 503), and the served GGUF's path, which
     * /api/delete refuses to delete. Both borrowed for the app's life. */
    const char *store_root;
    const char *model_path;
    /* borrowed, or NULL: the models by name (serve_registry.h), which then answer the listings
     * and each request goes to its model's engine; model, generate and count_tokens unused */
    serve_registry *registry;
} serve_app_config;

typedef struct serve_app {
    serve_app_config cfg;
    atomic_bool ready; /* false while loading: /health says "loading" with 503 */
    int64_t started;   /* Unix seconds */
} serve_app;

void serve_app_init(serve_app *app, const serve_app_config *cfg);
void serve_app_set_ready(serve_app *app, bool ready);
void serve_app_handle(void *app, const serve_http_req *req, serve_http_resp *resp);

/* With a policy: decides where the parsed request r goes. Returns true when it answered the
 * client (relayed upstream, or refused; r is taken), false when r is to be served here (r
 * stays the caller's). serve_route.c. */
bool serve_app_route(serve_app *app, const serve_http_req *req, serve_gen_req *r,
                     serve_http_resp *resp);
/* The API key the client presented (Authorization: Bearer, else x-api-key), or NULL. */
const char *serve_app_client_key(const serve_http_req *req);

/* resp = the error in the dialect's shape (a helper the generation side uses too). */
void serve_app_error(serve_dialect d, const serve_error *e, serve_http_resp *resp);

#endif
