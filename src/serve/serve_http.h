/*
 * The HTTP transport, on libmicrohttpd: one thread per connection (a connection that streams
 * a long answer then blocks nobody else), the request body gathered up to a limit, and a
 * handler called once per complete request with a plain struct, so routing and the APIs are
 * tested without sockets. Responses are a whole body or a serve_stream, sent with chunked
 * encoding as the producer writes it; a client that disconnects cancels its stream.
 */
#ifndef OB_SERVE_HTTP_H
#define OB_SERVE_HTTP_H

#include "outboard.h"
#include "serve/serve_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct serve_http_req serve_http_req;

/* Looks up a request header by name (case-insensitive); NULL when absent. */
typedef const char *(*serve_header_fn)(const serve_http_req *req, const char *name);

struct serve_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* "/v1/models", without the query string */
    const char *body;   /* borrowed for the handler's call; NUL-terminated; "" when none */
    size_t body_len;
    bool body_too_large; /* the body passed max_body: it was not kept, answer 413 */
    uint64_t body_seen;  /* bytes received or declared when body_too_large */
    serve_header_fn header;
    /* Whether the client closed its end (a handler that waits long checks it now and then);
     * may be NULL (never gone). */
    bool (*gone)(const serve_http_req *req);
    void *conn; /* the transport's connection, for header and gone */
};

typedef struct serve_http_resp {
    int status;
    const char *content_type; /* static string; "application/json" when NULL */
    char *body;               /* owned by the response (ob_free), or NULL */
    size_t body_len;
    serve_stream *stream; /* instead of body: a reference the response takes over */
    int retry_after;      /* Retry-After seconds when > 0 */
    const char *allow;    /* Allow header (405), static */
    const char *www_auth; /* WWW-Authenticate header (401), static */
    char route[192];      /* X-Outboard-Route header when non-empty: where the routing policy
                             sent the request ("local", "upstream=NAME; rule=NAME") */
} serve_http_resp;

/* Fills resp for req. Called on the connection's thread; may block (a non-streamed
 * generation waits for its answer there). */
typedef void (*serve_handler_fn)(void *user, const serve_http_req *req, serve_http_resp *resp);

typedef struct serve_http_opts {
    const char *host;       /* numeric address or name to bind, "127.0.0.1" by default */
    int port;               /* 0 = any free port (serve_http_port says which) */
    size_t max_body;        /* request body limit in bytes */
    unsigned timeout_s;     /* idle time-out for a connection that sends nothing */
    unsigned max_conns;     /* simultaneous connections */
    unsigned stop_grace_ms; /* serve_http_stop waits this long for answers in flight (0: 5 s) */
    serve_handler_fn handler;
    void *user; /* passed to handler, borrowed */
} serve_http_opts;

typedef struct serve_http serve_http;

/* Binds and starts serving. Errors: OB_ERR_IO naming the address (in use, cannot resolve),
 * OB_ERR_ARG for bad options. *out is owned: serve_http_stop. */
ob_status serve_http_start(const serve_http_opts *o, serve_http **out, ob_err *err);
/* The port actually bound. */
int serve_http_port(const serve_http *h);
/* Stops accepting, cancels open streams, waits for the connection threads, frees. NULL is a
 * no-op. */
void serve_http_stop(serve_http *h);

#endif
