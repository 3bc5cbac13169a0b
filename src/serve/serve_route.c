/*
 * The routing policy at work on one generation request (serve_app.h): what is known about
 * the request is gathered (headers, key, body, queue, measured speed, the prompt's length
 * when a rule needs it), the policy decides, and the request is relayed upstream, refused,
 * or handed back to be served here. Every request that leaves is logged with its rule.
 */
#include "serve/serve_app.h"

#include "serve/serve_registry.h"
#include "serve/serve_upstream.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The key the client presented (Authorization: Bearer KEY, else x-api-key), or NULL. */
const char *serve_app_client_key(const serve_http_req *req) {
    const char *auth = req->header ? req->header(req, "Authorization") : NULL;
    if (auth && !strncasecmp(auth, "Bearer ", 7)) return auth + 7;
    return req->header ? req->header(req, "x-api-key") : NULL;
}

static void log_route(const serve_http_req *req, const serve_gen_req *r,
                      const serve_route_decision *d) {
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s route: %.16s %.200s model \"%.100s\" -> %s\n", when, req->method,
            req->path, r->model, d->why);
}

/* With several models: whether this server has the model, and, when a rule needs the
 * prompt's length, its context and the count (loading the model if it is not loaded). */
static void gather_registry(serve_app *app, const serve_gen_req *r, bool count,
                            serve_route_facts *f) {
    char path[4096], canon[256];
    f->model_local = !serve_registry_resolve(app->cfg.registry, r->model, path, sizeof path,
                                             canon, sizeof canon);
    if (!f->model_local || !count) return;
    serve_error e;
    serve_registry_entry *h = serve_registry_acquire(app->cfg.registry, r->model, &e);
    if (!h) return;
    serve_engine *eng = serve_registry_engine(h);
    int64_t n = 0;
    f->local_ctx = eng->desc.n_ctx;
    if (serve_sched_count_tokens(eng->sched, r, &n, &e) == 0) f->prompt_tokens = n;
    serve_registry_release(app->cfg.registry, h, false, 0);
}

static void gather(serve_app *app, const serve_http_req *req, const serve_gen_req *r,
                   serve_route_facts *f) {
    const serve_policy *p = app->cfg.policy;
    f->model = r->model;
    f->api_key = serve_app_client_key(req);
    f->body = req->body;
    f->body_len = req->body_len;
    for (size_t i = 0; i < serve_policy_n_private_headers(p) && !f->marked_header; i++)
        f->marked_header = req->header && req->header(req, serve_policy_private_header(p, i));
    f->queue_waiting = app->cfg.metrics ? serve_metrics_queue_waiting(app->cfg.metrics) : 0;
    f->local_tok_s = app->cfg.metrics ? serve_metrics_decode_tok_s(app->cfg.metrics) : 0;
    f->prompt_tokens = -1;
    if (app->cfg.registry) {
        gather_registry(app, r, serve_policy_needs_prompt_tokens(p), f);
        return;
    }
    f->model_local = serve_model_match(app->cfg.model, r->model);
    f->local_ctx = app->cfg.model->n_ctx;
    if (f->model_local && serve_policy_needs_prompt_tokens(p) && app->cfg.count_tokens) {
        serve_error e;
        int64_t n = 0;
        if (app->cfg.count_tokens(app->cfg.generate_user, r, &n, &e) == 0) f->prompt_tokens = n;
    }
}

bool serve_app_route(serve_app *app, const serve_http_req *req, serve_gen_req *r,
                     serve_http_resp *resp) {
    serve_route_facts f = {0};
    serve_error e;
    serve_dialect d = r->dialect;
    const char *pref = req->header ? req->header(req, "X-Outboard-Route") : NULL;
    if (serve_route_pref_parse(pref, &f.pref)) {
        serve_gen_req_free(r);
        serve_error_bad(&e, "invalid_value", "X-Outboard-Route",
                        "X-Outboard-Route: expected local, upstream or auto, got \"%.64s\"", pref);
        serve_app_error(d, &e, resp);
        return true;
    }
    gather(app, req, r, &f);
    serve_route_decision dec;
    serve_policy_decide(app->cfg.policy, &f, &dec);
    if (dec.action == SERVE_ROUTE_TO_LOCAL) return false;
    log_route(req, r, &dec);
    if (dec.action == SERVE_ROUTE_REFUSE) {
        serve_gen_req_free(r);
        if (app->cfg.metrics) serve_metrics_policy_refused(app->cfg.metrics);
        serve_error_set(&e, 503, "server_error", "policy_refused", NULL,
                        "this server cannot serve the request: %s", dec.why);
        serve_app_error(d, &e, resp);
        snprintf(resp->route, sizeof resp->route, "local");
        return true;
    }
    serve_upstream_ctx ctx = {app->cfg.metrics, app->cfg.model ? app->cfg.model->id : ""};
    serve_upstream_generate(&ctx, &dec, req, r, resp);
    snprintf(resp->route, sizeof resp->route, "upstream=%.80s; rule=%.80s", dec.upstream->name,
             dec.rule->name);
    return true;
}
