/*
 * Streamed bodies (serve_stream.h): one byte queue under a mutex, a condition variable the
 * reader waits on, and two flags. The queue is a flat buffer with a read offset; it is
 * compacted when the reader has consumed more than half, so memory stays proportional to what
 * is unsent.
 */
#include "serve/serve_stream.h"

#include "core/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct serve_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    char *buf; /* owned: bytes [head, len) are unsent */
    size_t head, len, cap;
    bool closed, cancelled;
};

serve_stream *serve_stream_new(void) {
    serve_stream *s = ob_calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&s->mu, NULL) || pthread_cond_init(&s->cv, &ca)) {
        pthread_condattr_destroy(&ca);
        ob_free(s);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    s->refs = 1;
    return s;
}

void serve_stream_ref(serve_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->refs++;
    pthread_mutex_unlock(&s->mu);
}

void serve_stream_unref(serve_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left > 0) return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ob_free(s->buf);
    ob_free(s);
}

/* Room for `extra` more bytes; called with the mutex held. */
static bool reserve(serve_stream *s, size_t extra) {
    if (s->head > 0 && s->head * 2 >= s->len) {
        memmove(s->buf, s->buf + s->head, s->len - s->head);
        s->len -= s->head;
        s->head = 0;
    }
    if (s->len + extra <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + extra)
        cap *= 2;
    char *grown = ob_realloc(s->buf, cap, 1);
    if (!grown) return false;
    s->buf = grown;
    s->cap = cap;
    return true;
}

int serve_stream_write(serve_stream *s, const char *data, size_t len) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->cancelled || s->closed) {
        rc = -1;
    } else if (s->len - s->head + len > SERVE_STREAM_MAX_BUFFERED) {
        s->cancelled = true; /* the client stopped reading; holding more would only grow */
        rc = -1;
    } else if (!reserve(s, len)) {
        rc = -1;
    } else {
        memcpy(s->buf + s->len, data, len);
        s->len += len;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void serve_stream_close(serve_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void serve_stream_cancel(serve_stream *s) {
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

bool serve_stream_cancelled(serve_stream *s) {
    pthread_mutex_lock(&s->mu);
    bool c = s->cancelled;
    pthread_mutex_unlock(&s->mu);
    return c;
}

ssize_t serve_stream_read(serve_stream *s, char *buf, size_t max, int timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->cancelled && s->head == s->len && !s->closed)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) break;
    ssize_t n;
    if (s->cancelled || (s->head == s->len && s->closed)) {
        n = -1;
    } else {
        /* a wait that timed out before anything was written finds nothing (and s->buf may
         * still be NULL, which memcpy must not get even for 0 bytes) */
        size_t avail = s->len - s->head;
        size_t take = avail < max ? avail : max;
        if (take > 0) memcpy(buf, s->buf + s->head, take);
        s->head += take;
        n = (ssize_t)take;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
