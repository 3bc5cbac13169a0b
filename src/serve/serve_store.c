/*
 * /api/pull, /api/delete and the store's part of /api/tags (serve_store.h).
 *
 * A streamed pull runs on a thread of its own that writes NDJSON progress into a serve_stream,
 * so the connection thread only relays bytes; a client that leaves cancels the stream, the
 * next progress call sees it and the download stops (its partial file stays for the next
 * pull). Pulls run one at a time: two pulls of the same file would write the same partial.
 */
#include "serve/serve_store.h"

#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "hub/hub.h"
#include "serve/serve_json.h"
#include "serve/serve_request.h"
#include "serve/serve_response.h"
#include "store/store.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t pull_lock = PTHREAD_MUTEX_INITIALIZER;

/* The "model" (or older "name") field of an Ollama body; -1 with e filled. */
static int body_model(const serve_http_req *req, json_t **body, const char **name,
                      serve_error *e) {
    *name = NULL;
    if (serve_body_parse(req->body, req->body_len, body, e) ||
        serve_json_get_string(*body, "", "model", SERVE_MAX_NAME, name, NULL, e) < 0 ||
        (!*name && serve_json_get_string(*body, "", "name", SERVE_MAX_NAME, name, NULL, e) < 0))
        return -1;
    if (!*name || !(*name)[0])
        return serve_error_bad(e, "missing_field", "model", "model: required, got nothing");
    return 0;
}

static int no_store(serve_error *e) {
    return serve_error_set(e, 503, "server_error", "no_store", NULL,
                           "this server has no model store (set OUTBOARD_MODELS or HOME)");
}

/* An ob_status from the store or hub as an HTTP error. */
static void store_error(ob_status st, const ob_err *err, serve_error *e) {
    int status = st == OB_ERR_ARG ? (strstr(err->msg, "not in the store") ? 404 : 400) : 500;
    serve_error_set(e, status, status == 500 ? "server_error" : "invalid_request_error",
                    status == 404 ? "model_not_found" : NULL, status == 500 ? NULL : "model",
                    "%s", err->msg);
}

/* ---- /api/pull ----------------------------------------------------------------------------- */

typedef struct pull_job {
    serve_stream *stream;       /* one reference, NULL when not streaming */
    const serve_http_req *req;  /* not streaming: the request, to see the client leave */
    char root[PATH_MAX];
    char ref[SERVE_MAX_NAME + 1];
    double last_line;           /* when the last progress line went out */
    uint64_t last_done;         /* and the count it gave */
    bool gone;
} pull_job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One NDJSON line; false once the client has gone. */
static bool put_line(pull_job *j, json_t *v) {
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text) return true;
    size_t len = strlen(text);
    bool ok = serve_stream_write(j->stream, text, len) == 0 &&
              serve_stream_write(j->stream, "\n", 1) == 0;
    free(text); /* jansson's */
    if (!ok) j->gone = true;
    return ok;
}

static void on_status(const char *line, void *user) {
    pull_job *j = user;
    if (j->stream) put_line(j, json_pack("{s:s}", "status", line));
}

/* Ollama's progress object, at most five a second per file plus the last one. */
static bool on_progress(const char *file, const char *sha256, uint64_t done, uint64_t total,
                        void *user) {
    pull_job *j = user;
    if (!j->stream) return !(j->req->gone && j->req->gone(j->req));
    double t = now_s();
    if ((t - j->last_line < 0.2 && !(total && done >= total)) || done == j->last_done)
        return !j->gone;
    j->last_line = t;
    j->last_done = done;
    char digest[80], status[200];
    snprintf(digest, sizeof digest, "sha256:%s", sha256);
    snprintf(status, sizeof status, "pulling %s", sha256[0] ? sha256 : file);
    return put_line(j, json_pack("{s:s, s:s, s:I, s:I}", "status", status, "digest",
                                 sha256[0] ? digest : "", "total", (json_int_t)total,
                                 "completed", (json_int_t)done));
}

static ob_status run_pull(pull_job *j, ob_err *err) {
    char name[STORE_NAME_MAX + 1];
    hub_pull_opts o = {
        .http = {.token = getenv("HF_TOKEN"), .progress = on_progress, .progress_user = j},
        .status = on_status,
        .status_user = j,
    };
    pthread_mutex_lock(&pull_lock);
    ob_status st = hub_pull(j->root, j->ref, &o, name, err);
    pthread_mutex_unlock(&pull_lock);
    return st;
}

static void *pull_thread(void *arg) {
    pull_job *j = arg;
    ob_err err = {{0}};
    if (run_pull(j, &err)) put_line(j, json_pack("{s:s}", "error", err.msg));
    serve_stream_close(j->stream);
    serve_stream_unref(j->stream);
    ob_free(j);
    return NULL;
}

/* Hands the job to a thread; resp streams what it writes. */
static int start_stream(pull_job *j, serve_http_resp *resp, serve_error *e) {
    j->stream = serve_stream_new();
    if (!j->stream) return serve_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    serve_stream_ref(j->stream); /* the response's reference */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    serve_stream *s = j->stream;
    int rc = pthread_create(&t, &attr, pull_thread, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        serve_stream_unref(s);
        serve_stream_unref(s);
        return serve_error_set(e, 500, "server_error", NULL, NULL, "cannot start a thread");
    }
    resp->status = 200;
    resp->content_type = "application/x-ndjson";
    resp->stream = s;
    return 0;
}

void serve_store_pull(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    json_t *body = NULL;
    const char *name = NULL;
    serve_error e;
    memset(&e, 0, sizeof e);
    bool stream = true;
    pull_job *j = NULL;
    int rc = body_model(req, &body, &name, &e);
    if (!rc && serve_json_get_bool(body, "", "stream", &stream, &e) < 0) rc = -1;
    if (!rc && !app->cfg.store_root) rc = no_store(&e);
    if (!rc && !(j = ob_calloc(1, sizeof *j)))
        rc = serve_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
    if (!rc) {
        snprintf(j->root, sizeof j->root, "%s", app->cfg.store_root);
        snprintf(j->ref, sizeof j->ref, "%s", name);
        j->req = req;
    }
    json_decref(body);
    if (!rc && stream) {
        if (!(rc = start_stream(j, resp, &e))) return; /* the thread owns j now */
    } else if (!rc) {
        ob_err err = {{0}};
        ob_status st = run_pull(j, &err);
        if (st) store_error(st, &err, &e);
        rc = st ? -1 : 0;
        if (!st) {
            json_t *ok = json_pack("{s:s}", "status", "success");
            resp->body = ok ? serve_json_body(ok, &resp->body_len) : NULL;
            json_decref(ok);
            resp->status = resp->body ? 200 : 500;
        }
    }
    ob_free(j);
    if (rc) serve_app_error(SERVE_DIALECT_OLLAMA, &e, resp);
}

/* ---- /api/delete --------------------------------------------------------------------------- */

/* Whether the stored model's first file is the file being served. */
static bool is_served(const serve_app *app, const store_entry *se) {
    char path[PATH_MAX + 128], a[PATH_MAX], b[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", se->dir, se->m.files[0].name);
    return app->cfg.model_path && realpath(path, a) && realpath(app->cfg.model_path, b) &&
           !strcmp(a, b);
}

void serve_store_delete(serve_app *app, const serve_http_req *req, serve_http_resp *resp) {
    json_t *body = NULL;
    const char *name = NULL;
    serve_error e;
    memset(&e, 0, sizeof e);
    ob_err err = {{0}};
    store_entry se;
    int rc = body_model(req, &body, &name, &e);
    if (!rc && !app->cfg.store_root) rc = no_store(&e);
    ob_status st = rc ? OB_OK : store_find(app->cfg.store_root, name, &se, &err);
    if (st) {
        store_error(st, &err, &e);
        rc = -1;
    } else if (!rc) {
        if (is_served(app, &se))
            rc = serve_error_set(&e, 409, "invalid_request_error", "model_in_use", "model",
                                 "%s is the model this server is serving; stop the server "
                                 "before deleting it", se.m.name);
        else if ((st = store_remove(app->cfg.store_root, se.m.name, &err)))
            rc = (store_error(st, &err, &e), -1);
        store_manifest_clear(&se.m);
    }
    json_decref(body);
    if (rc) {
        serve_app_error(SERVE_DIALECT_OLLAMA, &e, resp);
        return;
    }
    resp->status = 200;
}

/* ---- /api/tags ----------------------------------------------------------------------------- */

/* One stored model as /api/tags lists it (what the manifest and GGUF header say). */
static json_t *tag_of(const store_entry *se) {
    char at[40], path[PATH_MAX + 128], arch[64] = "", digest[80];
    time_t t = (time_t)se->m.pulled_at;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(path, sizeof path, "%s/%s", se->dir, se->m.files[0].name);
    gguf_file *g = NULL;
    if (!gguf_open(path, &g, NULL)) {
        const gguf_kv *a = gguf_kv_find(g, "general.architecture");
        if (a && a->type == GGUF_VTYPE_STRING) snprintf(arch, sizeof arch, "%.*s", OB_STR_FMT(a->str));
        gguf_close(g);
    }
    snprintf(digest, sizeof digest, "%s", se->m.files[0].sha256);
    const char *tag = strrchr(se->m.name, ':');
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s, s:[s], s:s, s:s}}", "name",
                     se->m.name, "model", se->m.name, "modified_at", at, "size",
                     (json_int_t)se->m.size, "digest", digest, "details", "parent_model", "",
                     "format", "gguf", "family", arch, "families", arch, "parameter_size", "",
                     "quantization_level", tag ? tag + 1 : "");
}

void serve_store_tags_append(const serve_app *app, json_t *models) {
    if (!app->cfg.store_root || !json_is_array(models)) return;
    store_entry *v = NULL;
    size_t n = 0;
    if (store_list(app->cfg.store_root, &v, &n, NULL)) return;
    for (size_t i = 0; i < n; i++)
        if (!is_served(app, &v[i])) json_array_append_new(models, tag_of(&v[i]));
    store_list_free(v, n);
}
