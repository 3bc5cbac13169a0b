/*
 * The libmicrohttpd transport over a real loopback socket (serve_http.c, serve_stream.c):
 * bodies and the --max-body limit, streamed responses with chunked encoding, a client that
 * disconnects mid-stream cancelling its producer, a half-sent request timing out, and a stop
 * while a stream is still open.
 */
#include "core/alloc.h"
#include "serve/serve_http.h"

#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_int producer_saw_cancel;
static atomic_int producer_done; /* an endless producer ended (a finite one, from an earlier
                                    test, may still be finishing and must not count) */

typedef struct producer {
    serve_stream *s;
    int chunks;  /* -1: write until cancelled */
    int delay_ms;
} producer;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *produce(void *arg) {
    producer *p = arg;
    for (int i = 0; p->chunks < 0 || i < p->chunks; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "data: %d\n\n", i);
        if (serve_stream_write(p->s, line, (size_t)n)) {
            atomic_store(&producer_saw_cancel, 1);
            break;
        }
        sleep_ms(p->delay_ms);
    }
    const bool endless = p->chunks < 0;
    serve_stream_close(p->s);
    serve_stream_unref(p->s);
    ob_free(p);
    if (endless) atomic_store(&producer_done, 1);
    return NULL;
}

static atomic_int saw_gone;

static void handler(void *user, const serve_http_req *req, serve_http_resp *resp) {
    if (!strcmp(req->path, "/wait")) {
        /* a long whole-body answer: poll gone() as the scheduler's waiting thread does */
        for (int i = 0; i < 300 && !req->gone(req); i++) sleep_ms(10);
        atomic_store(&saw_gone, req->gone(req));
        resp->status = 200;
        return;
    }
    if (req->body_too_large) {
        resp->status = 413;
        return;
    }
    if (!strncmp(req->path, "/stream", 7)) {
        producer *p = ob_calloc(1, sizeof *p);
        p->s = serve_stream_new();
        p->chunks = !strcmp(req->path, "/stream/endless") ? -1 : 20;
        p->delay_ms = 5;
        serve_stream_ref(p->s);
        resp->status = 200;
        resp->content_type = "text/event-stream";
        resp->stream = p->s; /* the response takes this reference */
        pthread_t th;
        pthread_create(&th, NULL, produce, p);
        pthread_detach(th);
        return;
    }
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s %s %zu", req->method, req->path, req->body_len);
    resp->status = 200;
    resp->content_type = "text/plain";
    resp->body = ob_strndup(buf, (size_t)n);
    resp->body_len = (size_t)n;
}

static serve_http *start(void) {
    serve_http_opts o = {"127.0.0.1", 0, 4096, 1, 64, 300, handler, NULL};
    serve_http *h = NULL;
    ob_err err;
    if (serve_http_start(&o, &h, &err)) fprintf(stderr, "start: %s\n", err.msg);
    return h;
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the peer closes or timeout_ms passes without data; returns bytes read. */
static size_t read_all(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t got = 0;
    while (got + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) break;
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static void send_str(int fd, const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0) return;
        s += k;
        n -= (size_t)k;
    }
}

TEST(whole_bodies) {
    serve_http *h = start();
    CHECK(h && serve_http_port(h) > 0);
    int fd = dial(serve_http_port(h));
    send_str(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    char buf[4096];
    read_all(fd, buf, sizeof buf, 2000);
    close(fd);
    serve_http_stop(h);
    CHECK_MSG(strstr(buf, "HTTP/1.1 200") && strstr(buf, "POST /x 5"), "%s", buf);
}

TEST(declared_body_over_the_limit_is_refused_at_once) {
    serve_http *h = start();
    CHECK(h);
    int fd = dial(serve_http_port(h));
    /* Only the headers are sent: the answer must not wait for a body that never comes. */
    send_str(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n");
    char buf[4096];
    read_all(fd, buf, sizeof buf, 2000);
    close(fd);
    serve_http_stop(h);
    CHECK_MSG(strstr(buf, "HTTP/1.1 413"), "%s", buf);
}

TEST(chunked_body_over_the_limit_is_413) {
    serve_http *h = start();
    CHECK(h);
    int fd = dial(serve_http_port(h));
    send_str(fd, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n");
    char chunk[1100];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 5; i++) {
        send_str(fd, "400\r\n");
        send(fd, chunk, 1024, MSG_NOSIGNAL);
        send_str(fd, "\r\n");
    }
    send_str(fd, "0\r\n\r\n");
    char buf[4096];
    read_all(fd, buf, sizeof buf, 2000);
    close(fd);
    serve_http_stop(h);
    CHECK_MSG(strstr(buf, "HTTP/1.1 413"), "%s", buf);
}

TEST(streamed_response_arrives_whole) {
    serve_http *h = start();
    CHECK(h);
    int fd = dial(serve_http_port(h));
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    static char buf[16384];
    read_all(fd, buf, sizeof buf, 3000);
    close(fd);
    serve_http_stop(h);
    CHECK_MSG(strstr(buf, "Transfer-Encoding: chunked"), "%s", buf);
    CHECK(strstr(buf, "Content-Type: text/event-stream"));
    CHECK(strstr(buf, "data: 0\n\n") && strstr(buf, "data: 19\n\n"));
    CHECK(strstr(buf, "\r\n0\r\n\r\n")); /* the last chunk */
}

TEST(disconnect_cancels_the_producer) {
    serve_http *h = start();
    CHECK(h);
    atomic_store(&producer_saw_cancel, 0);
    atomic_store(&producer_done, 0);
    int fd = dial(serve_http_port(h));
    send_str(fd, "GET /stream/endless HTTP/1.1\r\nHost: a\r\n\r\n");
    char buf[512];
    CHECK(recv(fd, buf, sizeof buf, 0) > 0);
    close(fd);
    /* a loaded machine may take seconds to schedule the producer again */
    for (int i = 0; i < 1500 && !atomic_load(&producer_done); i++) sleep_ms(10);
    serve_http_stop(h);
    CHECK(atomic_load(&producer_saw_cancel));
}

TEST(half_sent_request_times_out) {
    serve_http *h = start(); /* 1 s idle time-out */
    CHECK(h);
    int fd = dial(serve_http_port(h));
    send_str(fd, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    time_t t0 = time(NULL);
    char buf[512];
    read_all(fd, buf, sizeof buf, 5000);
    time_t waited = time(NULL) - t0;
    close(fd);
    serve_http_stop(h);
    CHECK_MSG(waited <= 4, "the connection stayed open %lld s", (long long)waited);
}

TEST(stop_with_an_open_stream) {
    serve_http *h = start();
    CHECK(h);
    atomic_store(&producer_done, 0);
    int fd = dial(serve_http_port(h));
    send_str(fd, "GET /stream/endless HTTP/1.1\r\nHost: a\r\n\r\n");
    char buf[512];
    CHECK(recv(fd, buf, sizeof buf, 0) > 0);
    serve_http_stop(h); /* must return although the stream never ends */
    /* a loaded machine may take seconds to schedule the producer again */
    for (int i = 0; i < 1500 && !atomic_load(&producer_done); i++) sleep_ms(10);
    close(fd);
    CHECK(atomic_load(&producer_done));
}

TEST(gone_sees_a_client_that_left) {
    serve_http *h = start();
    CHECK(h);
    atomic_store(&saw_gone, 0);
    int fd = dial(serve_http_port(h));
    send_str(fd, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(100);
    close(fd);
    serve_http_stop(h); /* joins the handler's thread */
    CHECK(atomic_load(&saw_gone));
    /* and a client that stays is not gone */
    h = start();
    fd = dial(serve_http_port(h));
    atomic_store(&saw_gone, 1);
    send_str(fd, "GET /wait HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    char buf[512];
    read_all(fd, buf, sizeof buf, 6000);
    close(fd);
    serve_http_stop(h);
    CHECK(!atomic_load(&saw_gone));
}

TEST(port_in_use_is_named) {
    serve_http *h = start();
    CHECK(h);
    serve_http_opts o = {"127.0.0.1", serve_http_port(h), 4096, 1, 64, 300, handler, NULL};
    serve_http *h2 = NULL;
    ob_err err;
    ob_status st = serve_http_start(&o, &h2, &err);
    serve_http_stop(h);
    CHECK_STATUS(st, OB_ERR_IO, &err, "127.0.0.1:");
    o.host = "no.such.host.invalid";
    o.port = 0;
    CHECK_STATUS(serve_http_start(&o, &h2, &err), OB_ERR_IO, &err, "no.such.host.invalid");
}

int main(void) {
    RUN(whole_bodies);
    RUN(declared_body_over_the_limit_is_refused_at_once);
    RUN(chunked_body_over_the_limit_is_413);
    RUN(streamed_response_arrives_whole);
    RUN(disconnect_cancels_the_producer);
    RUN(half_sent_request_times_out);
    RUN(stop_with_an_open_stream);
    RUN(gone_sees_a_client_that_left);
    RUN(port_in_use_is_named);
    return t_summary();
}
