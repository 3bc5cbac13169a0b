/*
 * Routes (serve_app.h). One table lists every path with its method, dialect and handler; a
 * path in the table with another method is a 405 naming the allowed one, a path not in it a
 * 404. The dialect of a path decides the error shape: /api/... is Ollama's, /v1/messages...
 * Anthropic's, the rest OpenAI's.
 */
#include "serve/serve_app.h"

#include "core/alloc.h"
#include "serve/serve_json.h"
#include "serve/serve_page.h"
#include "serve/serve_registry.h"
#include "serve/serve_response.h"
#include "serve/serve_store.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef void (*route_fn)(serve_app *app, const serve_http_req *req, serve_http_resp *resp);

typedef struct route {
    const char *method;
    const char *path; /* exact, or a prefix ending in '/' with prefix = true */
    bool prefix;
    serve_dialect dialect;
    route_fn fn;
} route;

void serve_app_error(serve_dialect d, const serve_error *e, serve_http_resp *resp) {
    memset(resp, 0, sizeof *resp);
    resp->status = e->status ? e->status : 500;
    resp->retry_after = e->retry_after;
    resp->body = serve_error_body(e, d, &resp->body_len);
    if (!resp->body) resp->status = 500; /* an empty body: the status still says it */
}

static void reply_json(json_t *v, serve_dialect d, serve_http_resp *resp) {
    size_t len = 0;
    char *body = v ? serve_json_body(v, &len) : NULL;
    json_decref(v);
    if (!body) {
        serve_error e;
        serve_error_set(&e, 500, "server_error", "out_of_memory", NULL,
                        "out of memory while writing the response");
        serve_app_error(d, &e, resp);
        return;
    }
    resp->status = 200;
    resp->body = body;
    resp->body_len = len;
}

static void reply_text(const char *text, const char *type, int status, serve_http_resp *resp) {
    resp->status = status;
    resp->content_type = type;
    resp->body = ob_strndup(text, strlen(text));
    resp->body_len = resp->body ? strlen(text) : 0;
}

/* ---- routes that need no engine ---- */

/* A browser (its Accept names text/html) gets the chat page; curl and API clients keep the
 * one-line answer that says the server is up. */
static void r_root(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    const char *accept = req->header(req, "Accept");
    if (!accept || !strstr(accept, "text/html")) {
        reply_text("outboard is running\n", "text/plain; charset=utf-8", 200, resp);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    resp->body = ob_strndup((const char *)serve_page_chat_html, serve_page_chat_html_len);
    resp->body_len = resp->body ? serve_page_chat_html_len : 0;
    if (!resp->body) resp->status = 500;
}

static void r_health(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    bool ok = atomic_load(&app->ready);
    json_t *body = json_pack("{s:s}", "status", ok ? "ok" : "loading");
    if (body && ok && app->cfg.registry) /* the plan in force, predicted next to measured */
        json_object_set_new(body, "models", serve_registry_health(app->cfg.registry));
    reply_json(body, SERVE_DIALECT_OPENAI, resp);
    if (ok) return;
    resp->status = 503;
    resp->retry_after = 1;
}

/* The registry's lines after the engine's: models loaded, loads, unloads by reason. */
static char *registry_metrics(serve_registry *reg, char *text, size_t *len) {
    int64_t loaded, loads, idle, evicted;
    serve_registry_counts(reg, &loaded, &loads, &idle, &evicted);
    char more[768];
    int n = snprintf(more, sizeof more,
                     "# HELP outboard_models_loaded Models loaded now.\n"
                     "# TYPE outboard_models_loaded gauge\noutboard_models_loaded %lld\n"
                     "# HELP outboard_model_loads_total Models loaded since start.\n"
                     "# TYPE outboard_model_loads_total counter\noutboard_model_loads_total %lld\n"
                     "# HELP outboard_model_unloads_total Models unloaded: idle, or to make "
                     "room.\n# TYPE outboard_model_unloads_total counter\n"
                     "outboard_model_unloads_total{reason=\"idle\"} %lld\n"
                     "outboard_model_unloads_total{reason=\"evicted\"} %lld\n",
                     (long long)loaded, (long long)loads, (long long)idle, (long long)evicted);
    char *out = ob_alloc(*len + (size_t)n + 1, 1);
    if (out) {
        memcpy(out, text, *len);
        memcpy(out + *len, more, (size_t)n + 1);
        *len += (size_t)n;
    }
    ob_free(text);
    return out;
}

static void r_metrics(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    size_t len = 0;
    char *text = serve_metrics_render(app->cfg.metrics, &len);
    if (text && app->cfg.registry) text = registry_metrics(app->cfg.registry, text, &len);
    if (!text) {
        reply_text("out of memory\n", "text/plain; charset=utf-8", 500, resp);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = text;
    resp->body_len = len;
}

static void r_models(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    if (app->cfg.registry)
        reply_json(serve_registry_openai_list(app->cfg.registry), SERVE_DIALECT_OPENAI, resp);
    else
        reply_json(serve_models_openai_list(app->cfg.model), SERVE_DIALECT_OPENAI, resp);
}

/* GET /v1/models/{id} with a registry: the listing's entry, without loading the model. */
static void registry_model_one(serve_app *app, const char *name, serve_http_resp *resp) {
    char path[4096], canon[256];
    serve_error e;
    if (!name[0] || serve_registry_resolve(app->cfg.registry, name, path, sizeof path, canon,
                                           sizeof canon)) {
        serve_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                        "model '%.200s' not found; GET /v1/models lists those served", name);
        serve_app_error(SERVE_DIALECT_OPENAI, &e, resp);
        return;
    }
    json_t *all = serve_registry_openai_list(app->cfg.registry), *hit = NULL, *m;
    size_t i;
    json_array_foreach(json_object_get(all, "data"), i, m) {
        if (!strcmp(json_string_value(json_object_get(m, "id")), canon)) hit = json_incref(m);
    }
    json_decref(all);
    reply_json(hit, SERVE_DIALECT_OPENAI, resp);
}

static void r_model_one(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    const char *name = req->path + strlen("/v1/models/");
    if (app->cfg.registry) {
        registry_model_one(app, name, resp);
        return;
    }
    if (!serve_model_match(app->cfg.model, name) || !name[0]) {
        serve_error e;
        serve_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                        "model '%.200s' not found; this server has '%s'", name, app->cfg.model->id);
        serve_app_error(SERVE_DIALECT_OPENAI, &e, resp);
        return;
    }
    reply_json(serve_models_openai_model(app->cfg.model), SERVE_DIALECT_OPENAI, resp);
}

static void r_tags(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    json_t *tags = app->cfg.registry ? serve_registry_ollama_tags(app->cfg.registry)
                                     : serve_models_ollama_tags(app->cfg.model);
    /* The registry lists the store's models itself. */
    if (!app->cfg.registry) serve_store_tags_append(app, json_object_get(tags, "models"));
    reply_json(tags, SERVE_DIALECT_OLLAMA, resp);
}

static void r_ps(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    if (app->cfg.registry) {
        reply_json(serve_registry_ollama_ps(app->cfg.registry), SERVE_DIALECT_OLLAMA, resp);
        return;
    }
    /* The model stays loaded while the server runs: "expires" a day from now. */
    reply_json(serve_models_ollama_ps(app->cfg.model, (int64_t)time(NULL) + 86400),
               SERVE_DIALECT_OLLAMA, resp);
}

static void r_version(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    reply_json(serve_models_ollama_version(), SERVE_DIALECT_OLLAMA, resp);
}

/* 404 naming the model asked for and the one served. */
static int unknown_model(serve_app *app, const char *name, serve_error *e) {
    return serve_error_set(e, 404, "invalid_request_error", "model_not_found", "model",
                           "model '%.200s' not found; this server has '%s'", name,
                           app->cfg.model->id);
}

static void r_show(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    json_t *body = NULL;
    serve_error e;
    const char *name = NULL;
    if (serve_body_parse(req->body, req->body_len, &body, &e) ||
        serve_json_get_string(body, "", "model", SERVE_MAX_NAME, &name, NULL, &e) < 0 ||
        (!name && serve_json_get_string(body, "", "name", SERVE_MAX_NAME, &name, NULL, &e) < 0)) {
        json_decref(body);
        serve_app_error(SERVE_DIALECT_OLLAMA, &e, resp);
        return;
    }
    serve_model_desc loaded;
    if (!name || !name[0])
        serve_error_bad(&e, "missing_field", "model", "model: required, got nothing");
    else if (app->cfg.registry) {
        if (!serve_registry_describe(app->cfg.registry, name, &loaded, &e)) {
            json_decref(body);
            reply_json(serve_models_ollama_show(&loaded), SERVE_DIALECT_OLLAMA, resp);
            serve_model_desc_clear(&loaded);
            return;
        }
    } else if (!serve_model_match(app->cfg.model, name))
        unknown_model(app, name, &e);
    else
        e.status = 0;
    json_decref(body);
    if (e.status) {
        serve_app_error(SERVE_DIALECT_OLLAMA, &e, resp);
        return;
    }
    reply_json(serve_models_ollama_show(app->cfg.model), SERVE_DIALECT_OLLAMA, resp);
}

/* ---- generation routes: parse, check the model, hand over ---- */

typedef int (*parse_fn)(const char *, size_t, const serve_limits *, serve_gen_req **,
                        serve_error *);

/* With a registry: the request's model, loaded if it was not, then the request parsed again
 * against that model's vocabulary (token ids) and handed to its engine. */
static void registry_generation(serve_app *app, const serve_http_req *req,
                                serve_http_resp *resp, serve_dialect d, parse_fn parse,
                                serve_gen_req *r) {
    serve_error e;
    serve_registry_entry *h = serve_registry_acquire(app->cfg.registry, r->model, &e);
    if (!h) {
        serve_gen_req_free(r);
        serve_app_error(d, &e, resp);
        return;
    }
    serve_engine *eng = serve_registry_engine(h);
    serve_limits lim = {eng->desc.n_vocab};
    serve_gen_req_free(r);
    r = NULL;
    bool keep_set = false;
    double keep = 0;
    if (parse(req->body, req->body_len, &lim, &r, &e)) {
        serve_app_error(d, &e, resp);
    } else {
        keep_set = r->keep_alive_set;
        keep = r->keep_alive;
        serve_sched_generate(eng->sched, req, r, resp);
    }
    serve_registry_release(app->cfg.registry, h, keep_set, keep);
}

static void generation(serve_app *app, const serve_http_req *req, serve_http_resp *resp,
                       serve_dialect d, parse_fn parse) {
    serve_limits lim = {app->cfg.model ? app->cfg.model->n_vocab : 0};
    serve_gen_req *r = NULL;
    serve_error e;
    if (parse(req->body, req->body_len, &lim, &r, &e)) {
        serve_app_error(d, &e, resp);
        return;
    }
    if (app->cfg.policy && serve_app_route(app, req, r, resp)) return;
    if (app->cfg.registry) {
        registry_generation(app, req, resp, d, parse, r);
    } else if (!serve_model_match(app->cfg.model, r->model)) {
        unknown_model(app, r->model, &e);
        serve_gen_req_free(r);
        serve_app_error(d, &e, resp);
    } else if (!app->cfg.generate) {
        serve_gen_req_free(r);
        serve_error_set(&e, 503, "server_error", "engine_unavailable", NULL,
                        "generation engine not available in this build of the server");
        serve_app_error(d, &e, resp);
    } else {
        app->cfg.generate(app->cfg.generate_user, req, r, resp);
    }
    if (app->cfg.policy) snprintf(resp->route, sizeof resp->route, "local");
}

static void r_chat(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_OPENAI, serve_openai_chat_parse);
}
static void r_completions(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_OPENAI, serve_openai_completion_parse);
}
static void r_ollama_chat(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_OLLAMA, serve_ollama_chat_parse);
}
static void r_generate(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_OLLAMA, serve_ollama_generate_parse);
}

static void r_infill(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_LLAMACPP, serve_infill_parse);
}
static void r_responses(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_RESPONSES, serve_responses_parse);
}
static void r_messages(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    generation(app, req, resp, SERVE_DIALECT_ANTHROPIC, serve_anthropic_messages_parse);
}

/* {"input_tokens": N}: the prompt the same body would be answered from, rendered and
 * tokenized. */
static void r_count_tokens(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    serve_limits lim = {app->cfg.model ? app->cfg.model->n_vocab : 0};
    serve_gen_req *r = NULL;
    serve_error e;
    int64_t n = 0;
    if (serve_anthropic_count_parse(req->body, req->body_len, &lim, &r, &e)) {
        serve_app_error(SERVE_DIALECT_ANTHROPIC, &e, resp);
        return;
    }
    serve_registry_entry *h = NULL;
    if (app->cfg.registry) {
        if ((h = serve_registry_acquire(app->cfg.registry, r->model, &e)) &&
            serve_sched_count_tokens(serve_registry_engine(h)->sched, r, &n, &e) == 0)
            e.status = 0;
        if (h) serve_registry_release(app->cfg.registry, h, false, 0);
    } else if (!serve_model_match(app->cfg.model, r->model)) unknown_model(app, r->model, &e);
    else if (!app->cfg.count_tokens)
        serve_error_set(&e, 503, "server_error", "engine_unavailable", NULL,
                        "token counting not available in this build of the server");
    else if (app->cfg.count_tokens(app->cfg.generate_user, r, &n, &e) == 0)
        e.status = 0;
    serve_gen_req_free(r);
    if (e.status) serve_app_error(SERVE_DIALECT_ANTHROPIC, &e, resp);
    else reply_json(json_pack("{s:I}", "input_tokens", (json_int_t)n), SERVE_DIALECT_ANTHROPIC,
                    resp);
}

/* POST /v1/embeddings, /api/embed and /api/embeddings. */
static void embeddings(serve_app *app, const serve_http_req *req, serve_http_resp *resp,
                       serve_embed_api api) {
    const serve_dialect d = api == SERVE_EMBED_OPENAI ? SERVE_DIALECT_OPENAI
                                                      : SERVE_DIALECT_OLLAMA;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    serve_embed_req *r = NULL;
    serve_error e;
    float *vecs = NULL;
    int64_t n_tokens = 0;
    /* The vocabulary bound of token inputs is checked again by the engine of the model named;
     * a server of several models checks it there only. */
    if (serve_embed_parse(api, req->body, req->body_len,
                          app->cfg.model ? app->cfg.model->n_vocab : 0, &r, &e)) {
        serve_app_error(d, &e, resp);
        return;
    }
    serve_registry_entry *h = NULL;
    const serve_model_desc *desc = app->cfg.model;
    if (app->cfg.registry) {
        if ((h = serve_registry_acquire(app->cfg.registry, r->model, &e))) {
            serve_engine *eng = serve_registry_engine(h);
            desc = &eng->desc;
            /* again, now that the model's vocabulary bounds the token inputs */
            serve_embed_req_free(r);
            r = NULL;
            if (!serve_embed_parse(api, req->body, req->body_len, desc->n_vocab, &r, &e) &&
                serve_embedder_run(&eng->embedder, r, &vecs, &n_tokens, &e) == 0)
                e.status = 0;
        }
    } else if (!serve_model_match(app->cfg.model, r->model))
        unknown_model(app, r->model, &e);
    else if (!app->cfg.embed)
        serve_error_set(&e, 503, "server_error", "engine_unavailable", NULL,
                        "embeddings not available in this build of the server");
    else if (app->cfg.embed(app->cfg.embed_user, r, &vecs, &n_tokens, &e) == 0)
        e.status = 0;
    if (e.status) {
        serve_app_error(d, &e, resp);
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000LL +
                           (t1.tv_nsec - t0.tv_nsec);
        const char *model = r->model[0] ? r->model : desc->id;
        reply_json(serve_embed_reply(r, vecs, desc->n_embd, n_tokens, model, ns), d, resp);
    }
    if (h) serve_registry_release(app->cfg.registry, h, false, 0);
    ob_free(vecs);
    serve_embed_req_free(r);
}

static void r_embeddings(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    embeddings(app, req, resp, SERVE_EMBED_OPENAI);
}
static void r_ollama_embed(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    embeddings(app, req, resp, SERVE_EMBED_OLLAMA);
}
static void r_ollama_embeddings(serve_app *app, const serve_http_req *req,
                                serve_http_resp *resp) {
    embeddings(app, req, resp, SERVE_EMBED_OLLAMA_LEGACY);
}

static const route ROUTES[] = {
    {"GET", "/", false, SERVE_DIALECT_OPENAI, r_root},
    {"GET", "/health", false, SERVE_DIALECT_OPENAI, r_health},
    {"GET", "/metrics", false, SERVE_DIALECT_OPENAI, r_metrics},
    {"GET", "/v1/models", false, SERVE_DIALECT_OPENAI, r_models},
    {"GET", "/v1/models/", true, SERVE_DIALECT_OPENAI, r_model_one},
    {"POST", "/v1/chat/completions", false, SERVE_DIALECT_OPENAI, r_chat},
    {"POST", "/v1/completions", false, SERVE_DIALECT_OPENAI, r_completions},
    {"POST", "/v1/responses", false, SERVE_DIALECT_RESPONSES, r_responses},
    {"POST", "/infill", false, SERVE_DIALECT_LLAMACPP, r_infill},
    {"POST", "/v1/messages", false, SERVE_DIALECT_ANTHROPIC, r_messages},
    {"POST", "/v1/messages/count_tokens", false, SERVE_DIALECT_ANTHROPIC, r_count_tokens},
    {"POST", "/v1/embeddings", false, SERVE_DIALECT_OPENAI, r_embeddings},
    {"POST", "/api/embed", false, SERVE_DIALECT_OLLAMA, r_ollama_embed},
    {"POST", "/api/embeddings", false, SERVE_DIALECT_OLLAMA, r_ollama_embeddings},
    {"POST", "/api/chat", false, SERVE_DIALECT_OLLAMA, r_ollama_chat},
    {"POST", "/api/generate", false, SERVE_DIALECT_OLLAMA, r_generate},
    {"GET", "/api/tags", false, SERVE_DIALECT_OLLAMA, r_tags},
    {"POST", "/api/show", false, SERVE_DIALECT_OLLAMA, r_show},
    {"GET", "/api/version", false, SERVE_DIALECT_OLLAMA, r_version},
    {"GET", "/api/ps", false, SERVE_DIALECT_OLLAMA, r_ps},
    {"POST", "/api/pull", false, SERVE_DIALECT_OLLAMA, serve_store_pull},
    {"DELETE", "/api/delete", false, SERVE_DIALECT_OLLAMA, serve_store_delete},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

static bool path_is(const route *r, const char *path) {
    if (!r->prefix) return !strcmp(path, r->path);
    return !strncmp(path, r->path, strlen(r->path));
}

/* ---- dispatch ---- */

void serve_app_init(serve_app *app, const serve_app_config *cfg) {
    memset(app, 0, sizeof *app);
    app->cfg = *cfg;
    atomic_init(&app->ready, false);
    app->started = (int64_t)time(NULL);
}

void serve_app_set_ready(serve_app *app, bool ready) {
    atomic_store(&app->ready, ready);
}

/* Compares in time independent of where the strings differ, so response timing does not
 * reveal how much of a guessed key was right. */
static bool key_eq(const char *given, const char *key) {
    size_t gl = strlen(given), kl = strlen(key);
    unsigned char diff = gl != kl;
    for (size_t i = 0; i < kl; i++)
        diff |= (unsigned char)(key[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static int check_auth(const serve_app *app, const serve_http_req *req, serve_error *e) {
    const char *key = app->cfg.api_key;
    if (!key || !key[0]) return 0;
    const char *auth = req->header(req, "Authorization");
    const char *xkey = req->header(req, "x-api-key");
    const char *given = NULL, *where = "x-api-key";
    if (auth) {
        where = "Authorization";
        if (strncasecmp(auth, "Bearer ", 7))
            return serve_error_set(e, 401, "authentication_error", "invalid_api_key", NULL,
                                   "Authorization: expected 'Bearer KEY'");
        given = auth + 7;
    } else if (xkey) {
        given = xkey;
    }
    if (!given)
        return serve_error_set(e, 401, "authentication_error", "invalid_api_key", NULL,
                               "missing API key: send 'Authorization: Bearer KEY' or "
                               "'x-api-key: KEY'");
    if (!key_eq(given, key) && !serve_policy_knows_key(app->cfg.policy, given))
        return serve_error_set(e, 401, "authentication_error", "invalid_api_key", NULL,
                               "%s: the API key is not valid", where);
    return 0;
}

static serve_dialect dialect_of(const char *path) {
    if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api")) return SERVE_DIALECT_OLLAMA;
    if (!strncmp(path, "/v1/messages", 12) && (!path[12] || path[12] == '/'))
        return SERVE_DIALECT_ANTHROPIC;
    return SERVE_DIALECT_OPENAI;
}

/* The route for (method, path); *other = a route with this path but another method. */
static const route *route_find(const char *method, const char *path, const route **other) {
    *other = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!path_is(&ROUTES[i], path)) continue;
        /* HEAD is GET without the body (MHD drops it). */
        if (!strcmp(method, ROUTES[i].method) ||
            (!strcmp(method, "HEAD") && !strcmp(ROUTES[i].method, "GET")))
            return &ROUTES[i];
        *other = &ROUTES[i];
    }
    return NULL;
}

static void dispatch(serve_app *app, const serve_http_req *req, serve_http_resp *resp,
                     const route *r, const route *other) {
    serve_dialect d = dialect_of(req->path);
    serve_error e;
    /* /health and the chat page answer without a key: the page asks for it and sends it. */
    if (strcmp(req->path, "/health") && strcmp(req->path, "/") && check_auth(app, req, &e)) {
        serve_app_error(d, &e, resp);
        resp->www_auth = "Bearer";
    } else if (req->body_too_large) {
        serve_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                        "request body: %llu bytes, the limit (--max-body) is %zu",
                        (unsigned long long)req->body_seen, app->cfg.max_body);
        serve_app_error(d, &e, resp);
    } else if (!r && other) {
        serve_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                        "%.16s %.200s: method not allowed; use %s", req->method, req->path,
                        other->method);
        serve_app_error(d, &e, resp);
        resp->allow = other->method;
    } else if (r && !atomic_load(&app->ready) && r->fn != r_health && r->fn != r_root) {
        serve_error_set(&e, 503, "server_error", "loading", NULL,
                        "the model is still loading; retry shortly");
        serve_app_error(d, &e, resp);
        resp->retry_after = 1;
    } else if (!r) {
        serve_error_set(&e, 404, "invalid_request_error", "not_found", NULL,
                        "%.16s %.200s: no such route", req->method, req->path);
        serve_app_error(d, &e, resp);
    } else {
        r->fn(app, req, resp);
    }
}

void serve_app_handle(void *user, const serve_http_req *req, serve_http_resp *resp) {
    serve_app *app = user;
    memset(resp, 0, sizeof *resp);
    const route *other, *r = route_find(req->method, req->path, &other);
    dispatch(app, req, resp, r, other);
    const route *named = r ? r : other;
    const char *label = !named ? "other" : named->prefix ? "/v1/models/{id}" : named->path;
    if (app->cfg.metrics) serve_metrics_request(app->cfg.metrics, label, resp->status);
}
