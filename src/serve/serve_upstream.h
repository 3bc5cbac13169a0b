/*
 * Requests an upstream answers (serve_policy.h says which): the request rewritten for the
 * upstream's dialect (serve_upstream_req.c), its streamed answer read back into the server's
 * own events (serve_upstream_sse.c), and the exchange over libcurl (serve_upstream.c), whose
 * events go through the same emitters as a local answer, so a client speaking any dialect
 * can be served by an upstream speaking either.
 */
#ifndef OB_SERVE_UPSTREAM_H
#define OB_SERVE_UPSTREAM_H

#include "outboard.h"
#include "serve/serve_http.h"
#include "serve/serve_metrics.h"
#include "serve/serve_policy.h"
#include "serve/serve_request.h"

#include <jansson.h>

/* The upstream's request for r: *body (new reference) to POST at *path (static) under the
 * upstream's base URL, always streamed. Refuses (400) what cannot be relayed faithfully: several
 * choices or prompts, fill-in-the-middle, a GBNF grammar. */
int serve_upstream_body(const serve_gen_req *r, const serve_policy_upstream *u, json_t **body,
                        const char **path, serve_error *e);

/* ---- reading a streamed answer ---- */

/* What an upstream's stream says, in the server's terms. Text is passed on as it arrives;
 * a tool call once it is complete (its arguments are whole JSON text). */
typedef struct serve_upstream_sink {
    void *user;
    void (*text)(void *user, const char *content, size_t clen, const char *reasoning,
                 size_t rlen);
    void (*call)(void *user, const ob_tool_call *c);
    /* "stop", "length" or "tool_calls" */
    void (*finish)(void *user, const char *reason);
    void (*usage)(void *user, int64_t prompt_tokens, int64_t completion_tokens,
                  int64_t cached_tokens);
    /* An error event in the stream (the message, one line). */
    void (*error)(void *user, const char *message);
} serve_upstream_sink;

typedef struct serve_upstream_reader serve_upstream_reader;

/* Largest single event the reader keeps; a longer one is a protocol error. */
#define SERVE_UPSTREAM_MAX_EVENT (16u << 20)

serve_upstream_reader *serve_upstream_reader_new(serve_upstream_dialect d,
                                                 const serve_upstream_sink *sink);
/* Feeds bytes of the response body (any split). Returns 0, or -1 on a protocol error (an event
 * over the limit, out of memory), after which the reader ignores further input. */
int serve_upstream_reader_feed(serve_upstream_reader *r, const char *data, size_t len);
/* The body ended: completes what is pending (an unterminated last event, tool calls not yet
 * closed). Returns whether the stream said it finished (a finish reason or the end marker). */
bool serve_upstream_reader_finish(serve_upstream_reader *r);
void serve_upstream_reader_free(serve_upstream_reader *r);

/* ---- the exchange ---- */

typedef struct serve_upstream_ctx {
    serve_metrics *metrics; /* borrowed; may be NULL */
    const char *server_model; /* borrowed: the local model's id (answers name the model asked) */
} serve_upstream_ctx;

/* Sends r (taken) to d->upstream and answers the client in r's dialect: a stream the relay
 * keeps writing from its own thread, or a whole body when the client asked for one. Errors
 * the upstream gives map to the dialect's error object; a client that leaves cancels the
 * upstream request. */
void serve_upstream_generate(const serve_upstream_ctx *ctx, const serve_route_decision *d,
                             const serve_http_req *req, serve_gen_req *r, serve_http_resp *resp);

/* libcurl's process-wide set-up; call once before any thread starts. */
void serve_upstream_global_init(void);
/* Ends every exchange in flight (the server is stopping): clients get an error. */
void serve_upstream_stop_all(void);
/* Waits until no relay is running (they end soon after their clients' streams are
 * cancelled, which serve_http_stop does). */
void serve_upstream_wait_idle(void);

#endif
