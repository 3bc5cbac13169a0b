/*
 * The exchange with an upstream (serve_upstream.h), over libcurl.
 *
 * A relay owns one task shaped like a local one (one choice), so the upstream's events go
 * through the same emitters and come out in the client's dialect. The transfer runs on a
 * thread of its own; the HTTP handler waits until the upstream has answered with a success
 * status (then the client gets a stream that the relay keeps writing) or the exchange has
 * ended (then the client gets the error with a fitting status, or the whole body). So a
 * refused or unreachable upstream is an HTTP error, never a 200 stream that fails at once.
 */
#include "serve/serve_upstream.h"

#include "core/alloc.h"
#include "serve/serve_app.h"
#include "serve/serve_buf.h"
#include "serve/serve_sched_int.h"
#include "serve/serve_task.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of an upstream's error body kept for its message. */
#define ERROR_BODY_MAX (64u << 10)

typedef enum relay_phase {
    RELAY_WAITING = 0, /* no answer from the upstream yet */
    RELAY_STREAMING,   /* a success status came: the client's stream is open */
    RELAY_DONE,        /* the exchange ended */
} relay_phase;

typedef struct relay {
    serve_task *task;
    const serve_policy_upstream *up;
    char rule[64];
    serve_metrics *metrics;
    char *url;
    char *body;
    size_t body_len;
    struct curl_slist *headers;
    serve_upstream_reader *reader;
    long status;          /* the upstream's HTTP status once known */
    serve_buf err_body;   /* the body of a non-success answer */
    serve_error err;      /* set when failed */
    bool failed, got_finish;
    bool streamed; /* the client's stream got the answer (or its error event) */
    /* the handler and the transfer thread meet here */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    relay_phase phase;
    bool handler_left; /* the handler answered the client; the thread frees the relay */
    const serve_http_req *req; /* the client's request while the handler waits; NULL after */
    atomic_bool client_gone;
} relay;

/* Relays running, so shutdown can wait for them. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_running;
static atomic_bool g_stopping;

void serve_upstream_global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void serve_upstream_stop_all(void) {
    atomic_store(&g_stopping, true);
}

void serve_upstream_wait_idle(void) {
    pthread_mutex_lock(&g_mu);
    while (g_running > 0) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

static void running_add(int d) {
    pthread_mutex_lock(&g_mu);
    g_running += d;
    if (!g_running) pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void relay_free(relay *x) {
    if (!x) return;
    if (x->task) sched_task_free(x->task);
    ob_free(x->url);
    ob_free(x->body);
    curl_slist_free_all(x->headers);
    serve_upstream_reader_free(x->reader);
    serve_buf_clear(&x->err_body);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    ob_free(x);
}

static void set_phase(relay *x, relay_phase p) {
    pthread_mutex_lock(&x->mu);
    if (x->phase < p) x->phase = p;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

/* ---- what the upstream's stream says ---- */

static void on_text(void *user, const char *c, size_t cl, const char *rs, size_t rl) {
    relay *x = user;
    serve_seq *q = &x->task->seqs[0];
    int64_t now = serve_now_ns();
    if (!q->t_first_ns) q->t_first_ns = now;
    q->t_last_ns = now;
    serve_emit_delta(x->task, q, c, cl, rs, rl, NULL, 0);
}

static void on_call(void *user, const ob_tool_call *c) {
    relay *x = user;
    serve_emit_delta(x->task, &x->task->seqs[0], NULL, 0, NULL, 0, c, 1);
}

static void on_finish(void *user, const char *reason) {
    relay *x = user;
    serve_seq *q = &x->task->seqs[0];
    x->got_finish = true;
    /* A stream that ends with tool calls says so whatever the upstream's reason. */
    q->finish = q->n_calls_sent ? "tool_calls" : !strcmp(reason, "length") ? "length" : "stop";
}

static void on_usage(void *user, int64_t prompt, int64_t completion, int64_t cached) {
    relay *x = user;
    x->task->prompt_tokens = prompt;
    x->task->cached_tokens = cached;
    x->task->seqs[0].n_gen = completion;
}

static void on_error(void *user, const char *message) {
    relay *x = user;
    if (x->failed) return;
    x->failed = true;
    serve_error_set(&x->err, 502, "server_error", "upstream_error", NULL,
                    "upstream %s: %.400s", x->up->name, message);
}

/* ---- libcurl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    relay *x = user;
    size_t len = size * n;
    if (x->status < 200 || x->status >= 300) {
        if (x->err_body.len + len <= ERROR_BODY_MAX) serve_buf_append(&x->err_body, data, len);
        return len;
    }
    set_phase(x, RELAY_STREAMING);
    if (serve_upstream_reader_feed(x->reader, data, len)) {
        on_error(x, "its stream could not be read (an event over 16 MiB, or out of memory)");
        return 0; /* aborts the transfer */
    }
    return len;
}

/* Headers arrive before the body: the status line tells which way the body goes. */
static size_t on_header(char *data, size_t size, size_t n, void *user) {
    relay *x = user;
    size_t len = size * n;
    int code;
    if (len > 9 && !memcmp(data, "HTTP/", 5) && sscanf(data, "HTTP/%*s %d", &code) == 1)
        x->status = code;
    return len;
}

/* Called about once a second and on progress: a client that left stops the transfer. */
static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    relay *x = user;
    if (atomic_load(&g_stopping)) return 1;
    if (x->task->stream && serve_stream_cancelled(x->task->stream)) return 1;
    if (atomic_load(&x->client_gone)) return 1;
    pthread_mutex_lock(&x->mu);
    const serve_http_req *req = x->req;
    bool gone = req && req->gone && req->gone(req);
    pthread_mutex_unlock(&x->mu);
    if (gone) atomic_store(&x->client_gone, true);
    return gone;
}

/* ---- the exchange ---- */

/* The upstream's error body as one line: its error.message when it has one. */
static void upstream_status_error(relay *x) {
    const char *msg = NULL;
    json_t *v = x->err_body.len ? json_loadb(x->err_body.data, x->err_body.len, 0, NULL) : NULL;
    json_t *err = json_object_get(v, "error");
    msg = json_string_value(json_object_get(err, "message"));
    if (!msg) msg = json_string_value(err);
    if (!msg) msg = json_string_value(json_object_get(v, "message"));
    /* Client errors keep their status (a 401 for a bad upstream key is the operator's to fix,
     * but a 400 or 404 is about the request); server errors become 502. */
    int status = x->status == 400 || x->status == 404 || x->status == 413 || x->status == 429
                     ? (int)x->status
                     : 502;
    serve_error_set(&x->err, status, status == 502 ? "server_error" : "invalid_request_error",
                    "upstream_error", NULL, "upstream %s answered %ld: %.400s", x->up->name,
                    x->status, msg ? msg : "(no message)");
    if (status == 429) x->err.retry_after = 1;
    json_decref(v);
}

static void transfer(relay *x) {
    CURL *h = curl_easy_init();
    if (!h) {
        serve_error_set(&x->err, 500, "server_error", "out_of_memory", NULL,
                        "out of memory starting the upstream request");
        x->failed = true;
        return;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, x->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(x->up->connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(x->up->timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (x->failed) return;
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        x->failed = true;
        serve_error_set(&x->err, 499, "server_error", "cancelled", NULL,
                        "the client left; the upstream request was cancelled");
    } else if (rc != CURLE_OK) {
        x->failed = true;
        bool timeout = rc == CURLE_OPERATION_TIMEDOUT;
        serve_error_set(&x->err, timeout ? 504 : 502, "server_error",
                        timeout ? "upstream_timeout" : "upstream_unreachable", NULL,
                        "upstream %s (%s): %s", x->up->name, x->up->base_url,
                        curl_err[0] ? curl_err : curl_easy_strerror(rc));
    } else if (x->status < 200 || x->status >= 300) {
        x->failed = true;
        upstream_status_error(x);
    } else if (!serve_upstream_reader_finish(x->reader) && !x->got_finish) {
        x->failed = true;
        serve_error_set(&x->err, 502, "server_error", "upstream_error", NULL,
                        "upstream %s: its stream ended before the answer did", x->up->name);
    }
}

static const char *result_of(const relay *x) {
    if (!x->failed) return "ok";
    return x->err.status == 499 ? "cancelled" : "error";
}

/* The transfer thread. A streaming client gets the end (or an error event); a waiting handler
 * is woken either way. */
static void *relay_thread(void *arg) {
    relay *x = arg;
    transfer(x);
    if (x->metrics) serve_metrics_upstream(x->metrics, x->up->name, x->rule, result_of(x));
    pthread_mutex_lock(&x->mu);
    bool streaming = x->phase == RELAY_STREAMING && x->task->stream;
    x->streamed = streaming;
    pthread_mutex_unlock(&x->mu);
    serve_task *t = x->task;
    if (streaming) {
        if (x->failed && x->err.status != 499) {
            serve_emit_error(t, &x->err);
        } else if (!x->failed) {
            if (!t->seqs[0].finish) t->seqs[0].finish = "stop";
            serve_emit_finish(t, &t->seqs[0]);
            serve_emit_end(t);
        }
        serve_stream_close(t->stream);
    }
    pthread_mutex_lock(&x->mu);
    x->phase = RELAY_DONE;
    pthread_cond_broadcast(&x->cv);
    bool free_here = x->handler_left;
    pthread_mutex_unlock(&x->mu);
    if (free_here) relay_free(x);
    running_add(-1);
    return NULL;
}

static int header_add(relay *x, const char *fmt, const char *v) {
    char line[1024];
    snprintf(line, sizeof line, fmt, v);
    struct curl_slist *n = curl_slist_append(x->headers, line);
    if (!n) return -1;
    x->headers = n;
    return 0;
}

static int relay_setup(relay *x, serve_error *e) {
    const serve_gen_req *r = x->task->req;
    json_t *body = NULL;
    const char *path = NULL;
    if (serve_upstream_body(r, x->up, &body, &path, e)) return -1;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t ul = strlen(x->up->base_url) + strlen(path) + 1;
    x->url = ob_alloc(ul, 1);
    x->body = text ? ob_strndup(text, strlen(text)) : NULL;
    x->body_len = text ? strlen(text) : 0;
    free(text);
    x->reader = serve_upstream_reader_new(
        x->up->dialect, &(serve_upstream_sink){x, on_text, on_call, on_finish, on_usage, on_error});
    if (!x->url || !x->body || !x->reader) return serve_req_nomem(e, "the upstream request");
    snprintf(x->url, ul, "%s%s", x->up->base_url, path);
    const char *key = x->up->api_key_env ? getenv(x->up->api_key_env) : NULL;
    bool anthropic = x->up->dialect == SERVE_UPSTREAM_ANTHROPIC;
    if (header_add(x, "%s", "Content-Type: application/json") ||
        header_add(x, "%s", "Accept: text/event-stream") ||
        (anthropic && header_add(x, "%s", "anthropic-version: 2023-06-01")) ||
        (key && *key && header_add(x, anthropic ? "x-api-key: %s" : "Authorization: Bearer %s", key)))
        return serve_req_nomem(e, "the upstream request");
    return 0;
}

static serve_task *task_new(const serve_upstream_ctx *ctx, serve_gen_req *r) {
    static atomic_ullong next_id;
    serve_task *t = ob_calloc(1, sizeof *t);
    serve_seq *q = ob_calloc(1, sizeof *q);
    if (!t || !q) {
        ob_free(t);
        ob_free(q);
        return NULL;
    }
    t->req = r;
    t->seqs = q;
    t->n_seqs = 1;
    q->task = t;
    q->slot = -1;
    q->block = -1;
    atomic_init(&t->cancelled, false);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->model = r->model[0] ? r->model : ctx->server_model;
    t->created = (int64_t)time(NULL);
    t->t_start_ns = serve_now_ns();
    snprintf(t->id, sizeof t->id, "%s-%llx%08llxu", r->kind == SERVE_KIND_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)t->created, (unsigned long long)atomic_fetch_add(&next_id, 1) + 1);
    return t;
}

void serve_upstream_generate(const serve_upstream_ctx *ctx, const serve_route_decision *d,
                             const serve_http_req *req, serve_gen_req *r, serve_http_resp *resp) {
    serve_dialect dialect = r->dialect;
    serve_error e = {0};
    relay *x = ob_calloc(1, sizeof *x);
    serve_task *t = x ? task_new(ctx, r) : NULL;
    if (!t) {
        ob_free(x);
        serve_gen_req_free(r);
        serve_req_nomem(&e, "the upstream request");
        serve_app_error(dialect, &e, resp);
        return;
    }
    x->task = t;
    x->up = d->upstream;
    snprintf(x->rule, sizeof x->rule, "%s", d->rule->name);
    snprintf(t->route, sizeof t->route, "upstream=%.64s; rule=%.64s", d->upstream->name,
             d->rule->name);
    x->metrics = ctx->metrics;
    x->req = req;
    atomic_init(&x->client_gone, false);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    if (relay_setup(x, &e) || (r->stream && !(t->stream = serve_stream_new()))) {
        if (!e.status) serve_req_nomem(&e, "the stream");
        relay_free(x);
        serve_app_error(dialect, &e, resp);
        return;
    }
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    running_add(1);
    int prc = pthread_create(&th, &attr, relay_thread, x);
    pthread_attr_destroy(&attr);
    if (prc) {
        running_add(-1);
        relay_free(x);
        serve_error_set(&e, 503, "server_error", "no_thread", NULL,
                        "could not start the upstream request (no thread)");
        serve_app_error(dialect, &e, resp);
        return;
    }
    pthread_mutex_lock(&x->mu);
    while (x->phase == RELAY_WAITING || (!t->stream && x->phase != RELAY_DONE))
        pthread_cond_wait(&x->cv, &x->mu);
    bool done = x->phase == RELAY_DONE;
    x->req = NULL; /* the handler returns: the request is gone after this */
    if (done) {
        pthread_mutex_unlock(&x->mu);
        if (t->stream && x->streamed) {
            /* Ended before the handler looked: the whole stream is queued already, an error
             * event at its end when the upstream failed after it began. */
            serve_stream_ref(t->stream);
            resp->status = 200;
            resp->content_type = dialect == SERVE_DIALECT_OLLAMA ? "application/x-ndjson"
                                                                 : "text/event-stream";
            resp->stream = t->stream;
        } else if (x->failed) {
            serve_app_error(dialect, &x->err, resp);
        } else {
            if (!t->seqs[0].finish) t->seqs[0].finish = "stop";
            resp->status = 200;
            resp->body = serve_emit_body(t, &resp->body_len);
            if (!resp->body) resp->status = 500;
        }
        relay_free(x);
        return;
    }
    /* Streaming: the thread keeps writing and frees the relay when it ends. */
    serve_stream_ref(t->stream);
    resp->status = 200;
    resp->content_type =
        dialect == SERVE_DIALECT_OLLAMA ? "application/x-ndjson" : "text/event-stream";
    resp->stream = t->stream;
    x->handler_left = true;
    pthread_mutex_unlock(&x->mu);
}
