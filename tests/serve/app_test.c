/*
 * Routes without a socket (serve_app.c): a plain request struct in, the response struct out.
 * Covers authentication, 404/405/413, /health while loading, the model listings, the
 * generation routes' validation in each dialect's error shape, the generate hook and metrics.
 */
#include "core/alloc.h"
#include "serve/serve_app.h"

#include "test.h"

typedef struct fake_headers {
    const char *names[4], *values[4];
} fake_headers;

static const char *fake_header(const serve_http_req *req, const char *name) {
    const fake_headers *h = req->conn;
    for (int i = 0; h && i < 4 && h->names[i]; i++)
        if (!strcasecmp(h->names[i], name)) return h->values[i];
    return NULL;
}

static serve_model_desc DESC;
static serve_metrics *METRICS;
static serve_gen_req *handed; /* what the generate hook received */

static void fake_generate(void *user, const serve_http_req *req, serve_gen_req *r,
                          serve_http_resp *resp) {
    serve_gen_req_free(handed);
    handed = r;
    resp->status = 200;
    resp->body = ob_strndup("{}", 2);
    resp->body_len = 2;
}

static void app_setup(serve_app *app, const char *key, bool ready, bool engine) {
    memset(&DESC, 0, sizeof DESC);
    strcpy(DESC.id, "tiny");
    strcpy(DESC.arch, "llama");
    DESC.n_vocab = 512;
    DESC.n_ctx_train = 2048;
    DESC.n_ctx = 1536;
    if (!METRICS) serve_metrics_new(&METRICS, NULL);
    serve_app_config cfg = {&DESC, METRICS, key, 1024, engine ? fake_generate : NULL, NULL,
                            NULL, NULL};
    serve_app_init(app, &cfg);
    serve_app_set_ready(app, ready);
}

static json_t *call(serve_app *app, const char *method, const char *path, const char *body,
                    fake_headers *h, serve_http_resp *resp) {
    serve_http_req req = {method, path, body ? body : "", body ? strlen(body) : 0, false, 0,
                          fake_header, NULL, h};
    serve_app_handle(app, &req, resp);
    json_t *v = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    ob_free(resp->body);
    resp->body = NULL;
    return v;
}

static const char *oai_msg(json_t *v) {
    return json_string_value(json_object_get(json_object_get(v, "error"), "message"));
}
static const char *oai_code(json_t *v) {
    return json_string_value(json_object_get(json_object_get(v, "error"), "code"));
}

TEST(routing_404_405) {
    serve_app app;
    app_setup(&app, NULL, true, false);
    serve_http_resp r;
    json_t *v = call(&app, "GET", "/v2/nothing", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 404);
    CHECK(strstr(oai_msg(v), "GET /v2/nothing: no such route"));
    json_decref(v);
    v = call(&app, "GET", "/v1/chat/completions", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(r.allow, "POST");
    CHECK_EQ_STR(oai_code(v), "method_not_allowed");
    json_decref(v);
    v = call(&app, "POST", "/api/tags", "{}", NULL, &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK(json_is_string(json_object_get(v, "error"))); /* Ollama's shape under /api/ */
    json_decref(v);
    v = call(&app, "HEAD", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    json_decref(v);
}

TEST(auth_with_api_key) {
    serve_app app;
    app_setup(&app, "s3cret", true, false);
    serve_http_resp r;
    json_t *v = call(&app, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200); /* /health needs no key */
    json_decref(v);
    v = call(&app, "GET", "/v1/models", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 401);
    CHECK_EQ_STR(oai_code(v), "invalid_api_key");
    CHECK(strstr(oai_msg(v), "missing API key"));
    CHECK_EQ_STR(r.www_auth, "Bearer");
    json_decref(v);
    fake_headers wrong = {{"Authorization"}, {"Bearer nope"}};
    v = call(&app, "GET", "/v1/models", NULL, &wrong, &r);
    CHECK_EQ_INT(r.status, 401);
    CHECK(strstr(oai_msg(v), "Authorization: the API key is not valid"));
    json_decref(v);
    fake_headers basic = {{"Authorization"}, {"Basic czNjcmV0"}};
    v = call(&app, "GET", "/v1/models", NULL, &basic, &r);
    CHECK_EQ_INT(r.status, 401);
    json_decref(v);
    fake_headers prefix = {{"x-api-key"}, {"s3cre"}};
    v = call(&app, "GET", "/api/tags", NULL, &prefix, &r);
    CHECK_EQ_INT(r.status, 401);
    CHECK(json_is_string(json_object_get(v, "error")));
    json_decref(v);
    fake_headers good = {{"authorization"}, {"bearer s3cret"}};
    v = call(&app, "GET", "/v1/models", NULL, &good, &r);
    CHECK_EQ_INT(r.status, 200);
    json_decref(v);
    fake_headers xk = {{"X-Api-Key"}, {"s3cret"}};
    v = call(&app, "GET", "/api/tags", NULL, &xk, &r);
    CHECK_EQ_INT(r.status, 200);
    json_decref(v);
}

/* GET /: the chat page for a browser, even before the model is in and without the API key
 * (the page asks for it); a one-line text for everything else. */
TEST(root_page_for_browsers_text_for_others) {
    serve_app app;
    app_setup(&app, "s3cret", false, false);
    serve_http_req req = {"GET", "/", "", 0, false, 0, fake_header, NULL, NULL};
    serve_http_resp r;
    serve_app_handle(&app, &req, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.content_type, "text/plain; charset=utf-8");
    CHECK(r.body_len == 20 && !memcmp(r.body, "outboard is running\n", 20));
    ob_free(r.body);
    fake_headers browser = {{"Accept"}, {"text/html,application/xhtml+xml,*/*;q=0.8"}};
    req.conn = &browser;
    serve_app_handle(&app, &req, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.content_type, "text/html; charset=utf-8");
    CHECK(r.body_len > 1000 && !memcmp(r.body, "<!doctype html>", 15));
    CHECK(strstr(r.body, "/v1/chat/completions") != NULL);
    ob_free(r.body);
}

TEST(body_too_large_is_413) {
    serve_app app;
    app_setup(&app, NULL, true, false);
    serve_http_req req = {"POST", "/api/chat", "", 0, true, 5000, fake_header, NULL, NULL};
    serve_http_resp r;
    serve_app_handle(&app, &req, &r);
    CHECK_EQ_INT(r.status, 413);
    CHECK(r.body && strstr(r.body, "5000 bytes, the limit (--max-body) is 1024"));
    ob_free(r.body);
}

TEST(health_while_loading) {
    serve_app app;
    app_setup(&app, NULL, false, false);
    serve_http_resp r;
    json_t *v = call(&app, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "status")), "loading");
    json_decref(v);
    v = call(&app, "GET", "/v1/models", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK_EQ_INT(r.retry_after, 1);
    json_decref(v);
    serve_app_set_ready(&app, true);
    v = call(&app, "GET", "/health", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "status")), "ok");
    json_decref(v);
}

TEST(model_routes) {
    serve_app app;
    app_setup(&app, NULL, true, false);
    serve_http_resp r;
    json_t *v = call(&app, "GET", "/v1/models/tiny", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "id")), "tiny");
    CHECK_EQ_INT(json_integer_value(json_object_get(v, "context_length")), 1536);
    json_decref(v);
    v = call(&app, "GET", "/v1/models/gpt-4", NULL, NULL, &r);
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_STR(oai_code(v), "model_not_found");
    json_decref(v);
    v = call(&app, "POST", "/api/show", "{\"model\":\"tiny:latest\"}", NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_object_get(v, "model_info"));
    json_decref(v);
    v = call(&app, "POST", "/api/show", "{\"name\":\"other\"}", NULL, &r);
    CHECK_EQ_INT(r.status, 404);
    CHECK(strstr(json_string_value(json_object_get(v, "error")), "model 'other' not found"));
    json_decref(v);
    v = call(&app, "POST", "/api/show", "{\"model\":3}", NULL, &r);
    CHECK_EQ_INT(r.status, 400);
    json_decref(v);
    v = call(&app, "POST", "/api/show", "{}", NULL, &r);
    CHECK_EQ_INT(r.status, 400);
    json_decref(v);
    v = call(&app, "GET", "/api/version", NULL, NULL, &r);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "version")), OB_VERSION_STRING);
    json_decref(v);
    v = call(&app, "GET", "/api/ps", NULL, NULL, &r);
    CHECK_EQ_INT(json_array_size(json_object_get(v, "models")), 1);
    json_decref(v);
}

TEST(generation_routes_validate_then_hand_over) {
    serve_app app;
    app_setup(&app, NULL, true, false);
    serve_http_resp r;
    json_t *v = call(&app, "POST", "/v1/chat/completions", "{\"messages\":3}", NULL, &r);
    CHECK_EQ_INT(r.status, 400);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(v, "error"), "param")),
                 "messages");
    json_decref(v);
    v = call(&app, "POST", "/v1/chat/completions",
             "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL,
             &r);
    CHECK_EQ_INT(r.status, 404);
    json_decref(v);
    v = call(&app, "POST", "/api/generate", "{\"model\":\"tiny\",\"prompt\":\"x\"}", NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK(strstr(json_string_value(json_object_get(v, "error")), "generation engine not available"));
    json_decref(v);
    v = call(&app, "POST", "/v1/completions", "{\"prompt\":[600]}", NULL, &r);
    CHECK_EQ_INT(r.status, 400); /* token id past the model's 512 */
    json_decref(v);
    app_setup(&app, NULL, true, true);
    v = call(&app, "POST", "/api/chat",
             "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL,
             &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(handed && handed->dialect == SERVE_DIALECT_OLLAMA && handed->stream);
    json_decref(v);
    serve_gen_req_free(handed);
    handed = NULL;
}

/* Anthropic's routes answer in Anthropic's error shape: 405, 401, a bad body, an unknown
 * model, and no engine (503 overloaded_error); a valid body reaches the engine. */
TEST(anthropic_routes_use_anthropic_errors) {
    serve_app app;
    app_setup(&app, "k", true, false);
    serve_http_resp r;
    fake_headers h = {{"x-api-key"}, {"k"}};
    json_t *v = call(&app, "GET", "/v1/messages", NULL, &h, &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "type")), "error");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                 "invalid_request_error");
    json_decref(v);
    v = call(&app, "POST", "/v1/messages", "{}", NULL, &r);
    CHECK_EQ_INT(r.status, 401);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                 "authentication_error");
    json_decref(v);
    const char *ok = "{\"model\":\"tiny\",\"max_tokens\":4,\"messages\":[{\"role\":"
                     "\"user\",\"content\":\"hi\"}]}";
    v = call(&app, "POST", "/v1/messages", ok, &h, &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                 "overloaded_error");
    json_decref(v);
    v = call(&app, "POST", "/v1/messages/count_tokens",
             "{\"model\":\"other\",\"messages\":[]}", &h, &r);
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(v, "error"), "type")),
                 "not_found_error");
    json_decref(v);
    v = call(&app, "POST", "/v1/messages",
             "{\"model\":\"tiny\",\"max_tokens\":0,\"messages\":[]}", &h, &r);
    CHECK_EQ_INT(r.status, 400);
    CHECK(strstr(json_string_value(json_object_get(json_object_get(v, "error"), "message")),
                 "max_tokens"));
    json_decref(v);
    app_setup(&app, NULL, true, true);
    v = call(&app, "POST", "/v1/messages", ok, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    json_decref(v);
}

TEST(requests_are_counted) {
    char *t = serve_metrics_render(METRICS, NULL);
    CHECK(t);
    CHECK(strstr(t, "route=\"/v1/chat/completions\",status=\"405\""));
    CHECK(strstr(t, "route=\"other\",status=\"404\""));
    CHECK(strstr(t, "route=\"/v1/models/{id}\",status=\"404\""));
    CHECK(strstr(t, "route=\"/api/generate\",status=\"503\""));
    ob_free(t);
    serve_metrics_free(METRICS);
    METRICS = NULL;
}

int main(void) {
    RUN(routing_404_405);
    RUN(auth_with_api_key);
    RUN(root_page_for_browsers_text_for_others);
    RUN(body_too_large_is_413);
    RUN(health_while_loading);
    RUN(model_routes);
    RUN(generation_routes_validate_then_hand_over);
    RUN(anthropic_routes_use_anthropic_errors);
    RUN(requests_are_counted);
    return t_summary();
}
