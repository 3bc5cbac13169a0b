/*
 * libmicrohttpd glue (serve_http.h). MHD calls the access handler several times per request:
 * once when the headers are in, then with each piece of the body, then with none when the
 * request is complete. A per-request `conn_state` gathers the body; the handler runs on the
 * last call. MHD parses HTTP itself, answers malformed requests with 400 and enforces the
 * connection time-out on requests that stall half-sent.
 */
#include "serve/serve_http.h"

#include "core/alloc.h"
#include "core/err.h"

#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct serve_http {
    struct MHD_Daemon *d;
    serve_http_opts o;
    int port;
    atomic_int active; /* requests between their first byte and their response's end */
};

/* How long serve_http_stop lets requests in flight finish (their answers are usually already
 * decided: the scheduler has stopped) before closing every connection. */
#define STOP_GRACE_MS 5000

typedef struct conn_state {
    char *body; /* owned, NUL-terminated */
    size_t len, cap;
    uint64_t seen;        /* body bytes received, kept or not */
    bool too_large;       /* seen passed max_body: the rest is read and dropped */
    bool answered;        /* a response was queued already (an early 413) */
    serve_stream *stream; /* a reference while a streamed response is open */
} conn_state;

/* How long a streaming reader waits for the producer before handing control back to MHD,
 * which then notices a daemon shutdown; data arriving earlier is sent at once. */
#define STREAM_POLL_MS 200

static const char *header_of(const serve_http_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* The peer closed when its socket reads as end-of-file without blocking; bytes it sent ahead
 * (a pipelined request) only mean it is still there. */
static bool client_gone(const serve_http_req *req) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {ci->connect_fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    char c;
    return recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static bool body_append(conn_state *st, const char *data, size_t n, size_t max_body) {
    st->seen += n;
    if (st->too_large || st->seen > max_body) {
        st->too_large = true; /* kept reading (MHD needs the bytes consumed) but not stored */
        return true;
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + n + 1)
            cap *= 2;
        if (cap > max_body + 1) cap = max_body + 1;
        char *grown = ob_realloc(st->body, cap, 1);
        if (!grown) return false;
        st->body = grown;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, n);
    st->len += n;
    st->body[st->len] = '\0';
    return true;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    ssize_t n = serve_stream_read(cls, buf, max, STREAM_POLL_MS);
    if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
    return n; /* 0: nothing yet; MHD calls again (this thread is the connection's own) */
}

static void stream_release(void *cls) {
    /* MHD drops the response: sent in full, or the connection died. Either way the reader
     * side is gone, so a producer still writing must stop. */
    serve_stream_cancel(cls);
    serve_stream_unref(cls);
}

static struct MHD_Response *make_response(serve_http_resp *r) {
    struct MHD_Response *resp;
    if (r->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader,
                                                 r->stream, stream_release);
        if (!resp) return NULL;
        r->stream = NULL; /* the response owns that reference now */
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    } else {
        char *body = r->body ? r->body : ob_strndup("", 0);
        if (!body) return NULL;
        resp = MHD_create_response_from_buffer_with_free_callback(r->body_len, body, ob_free);
        if (!resp) {
            ob_free(body);
            r->body = NULL;
            return NULL;
        }
        r->body = NULL;
    }
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "application/json");
    if (r->retry_after > 0) {
        char v[24];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (r->allow) MHD_add_response_header(resp, "Allow", r->allow);
    if (r->www_auth) MHD_add_response_header(resp, "WWW-Authenticate", r->www_auth);
    if (r->route[0]) MHD_add_response_header(resp, "X-Outboard-Route", r->route);
    return resp;
}

/* Runs the handler and queues its answer. */
static enum MHD_Result respond(serve_http *h, struct MHD_Connection *c, conn_state *st,
                               const char *url, const char *method) {
    serve_http_req req = {method,    url,           st->body ? st->body : "",
                          st->len,   st->too_large, st->seen,
                          header_of, client_gone,   c};
    serve_http_resp r = {0};
    h->o.handler(h->o.user, &req, &r);
    bool streamed = r.stream != NULL;
    if (streamed) {
        serve_stream_ref(r.stream);
        st->stream = r.stream;
        /* The idle time-out guards requests that stall half-sent; a stream may be quiet for a
         * long prefill, so its connection waits as long as the producer needs. */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
    }
    struct MHD_Response *resp = make_response(&r);
    if (!resp) {
        ob_free(r.body);
        serve_stream_unref(r.stream);
        return MHD_NO; /* out of memory: MHD closes the connection */
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    st->answered = true;
    return ok;
}

static uint64_t declared_length(struct MHD_Connection *c) {
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (!cl) return 0;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    return *end ? 0 : n; /* MHD itself refuses a malformed Content-Length */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    serve_http *h = cls;
    conn_state *st = *con_cls;
    if (!st) {
        st = ob_calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&h->active, 1);
        uint64_t declared = declared_length(c);
        if (declared > h->o.max_body) {
            /* Refused before a byte of the body is read: MHD then closes the connection
             * instead of reading the rest. */
            st->too_large = true;
            st->seen = declared;
            return respond(h, c, st, url, method);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!st->answered && !body_append(st, upload_data, *upload_size, h->o.max_body))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (st->answered) return MHD_YES;
    return respond(h, c, st, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    (void)c;
    serve_http *h = cls;
    conn_state *st = *con_cls;
    if (!st) return;
    atomic_fetch_sub(&h->active, 1);
    if (st->stream) {
        if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK) serve_stream_cancel(st->stream);
        serve_stream_unref(st->stream);
    }
    ob_free(st->body);
    ob_free(st);
    *con_cls = NULL;
}

static ob_status resolve(const serve_http_opts *o, struct sockaddr_storage *ss, ob_err *err) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc || !res)
        return ob_fail(err, OB_ERR_IO, "--host '%s': cannot resolve: %s", o->host,
                       gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return OB_OK;
}

ob_status serve_http_start(const serve_http_opts *o, serve_http **out, ob_err *err) {
    if (!o->handler) return ob_fail(err, OB_ERR_ARG, "serve_http_start: handler is NULL");
    if (o->port < 0 || o->port > 65535)
        return ob_fail(err, OB_ERR_ARG, "--port %d: expected 0 to 65535", o->port);
    serve_http *h = ob_calloc(1, sizeof *h);
    if (!h) return ob_fail(err, OB_ERR_NOMEM, "out of memory for the HTTP server");
    h->o = *o;
    atomic_init(&h->active, 0);
    if (!h->o.host) h->o.host = "127.0.0.1";
    struct sockaddr_storage ss;
    ob_status st = resolve(&h->o, &ss, err);
    if (st) {
        ob_free(h);
        return st;
    }
    /* ITC: lets serve_http_stop stop accepting (MHD_quiesce_daemon) while answers finish. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_conns,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->d) {
        ob_free(h);
        return ob_fail(err, OB_ERR_IO, "%s:%d: cannot listen (address in use or not local?)",
                       o->host ? o->host : "127.0.0.1", o->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : o->port;
    *out = h;
    return OB_OK;
}

int serve_http_port(const serve_http *h) {
    return h->port;
}

void serve_http_stop(serve_http *h) {
    if (!h) return;
    /* Stop accepting, let the requests in flight send their answers (a 503 "shutting down"
     * from a stopped scheduler, the end of a stream), then close whatever is left. */
    unsigned grace = h->o.stop_grace_ms ? h->o.stop_grace_ms : STOP_GRACE_MS;
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    for (int waited = 0; atomic_load(&h->active) > 0 && waited < (int)grace; waited += 10) {
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET) close(ls); /* quiesce hands the listening socket to us */
    ob_free(h);
}
