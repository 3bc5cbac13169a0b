/*
 * The server's side of the local model store (src/store, src/hub), in Ollama's shapes:
 *
 *   POST   /api/pull    {"model": "org/repo:QUANT", "stream": true}: progress as NDJSON lines
 *                       ({"status", "digest", "total", "completed"}), ending in
 *                       {"status": "success"} or {"error": "..."}; with "stream": false one
 *                       object when done, or the error with its HTTP status
 *   DELETE /api/delete  {"model": "org/repo:TAG"}: 200 with an empty body; 404 when not in the
 *                       store; 409 for the model being served
 *   GET    /api/tags    the served model, then every other model in the store
 */
#ifndef OB_SERVE_STORE_H
#define OB_SERVE_STORE_H

#include "serve/serve_app.h"

#include <jansson.h>

void serve_store_pull(serve_app *app, const serve_http_req *req, serve_http_resp *resp);
void serve_store_delete(serve_app *app, const serve_http_req *req, serve_http_resp *resp);
/* Appends a /api/tags entry to `models` for each stored model that is not the one served. */
void serve_store_tags_append(const serve_app *app, json_t *models);

#endif
