/*
 * Streaming stop strings (serve_stop.h). The matcher keeps one buffer, `buf`: the bytes not yet
 * released. Each push appends the new text, then either finds a complete stop string (release
 * everything before it, done) or releases all but the longest tail that is a proper prefix of
 * some stop string. That tail is shorter than the longest stop string, so the buffer stays
 * small however long the answer is, and the search per push costs O(tail * stops * length).
 */
#include "serve/serve_stop.h"

#include "core/alloc.h"
#include "core/err.h"

#include <string.h>

struct serve_stop {
    char **stops; /* owned, n_stops non-empty strings */
    size_t *lens;
    int *index; /* the caller's index of each kept stop string (empty ones are dropped) */
    size_t n_stops;
    char *buf; /* owned: bytes not yet released, (cap) */
    size_t len, cap;
    size_t released; /* bytes at buf's start handed out by the last call, dropped on the next */
    int hit;         /* index of the stop string seen, -1 = none */
    int failed;
};

ob_status serve_stop_new(const char *const *stops, size_t n, serve_stop **out, ob_err *err) {
    serve_stop *s = ob_calloc(1, sizeof *s);
    if (!s) return ob_fail(err, OB_ERR_NOMEM, "out of memory for stop strings");
    s->hit = -1;
    s->stops = ob_calloc(n ? n : 1, sizeof *s->stops);
    s->lens = ob_calloc(n ? n : 1, sizeof *s->lens);
    s->index = ob_calloc(n ? n : 1, sizeof *s->index);
    if (!s->stops || !s->lens || !s->index) goto nomem;
    for (size_t i = 0; i < n; i++) {
        size_t len = stops[i] ? strlen(stops[i]) : 0;
        if (len == 0) continue;
        s->stops[s->n_stops] = ob_strndup(stops[i], len);
        if (!s->stops[s->n_stops]) goto nomem;
        s->index[s->n_stops] = (int)i;
        s->lens[s->n_stops++] = len;
    }
    *out = s;
    return OB_OK;
nomem:
    serve_stop_free(s);
    return ob_fail(err, OB_ERR_NOMEM, "out of memory for %zu stop strings", n);
}

void serve_stop_free(serve_stop *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_stops; i++)
        ob_free(s->stops[i]);
    ob_free(s->stops);
    ob_free(s->lens);
    ob_free(s->index);
    ob_free(s->buf);
    ob_free(s);
}

int serve_stop_hit(const serve_stop *s) {
    return s->hit;
}
int serve_stop_failed(const serve_stop *s) {
    return s->failed;
}
size_t serve_stop_held(const serve_stop *s) {
    return s->len - s->released;
}

/* Drops what the previous call released. */
static void drop_released(serve_stop *s) {
    if (!s->released) return;
    memmove(s->buf, s->buf + s->released, s->len - s->released);
    s->len -= s->released;
    s->released = 0;
}

/* The earliest complete stop string in buf: its offset, and its index in *which; -1 if none. */
static ptrdiff_t find_stop(const serve_stop *s, int *which) {
    ptrdiff_t best = -1;
    if (s->len == 0) return -1;
    for (size_t i = 0; i < s->n_stops; i++) {
        const char *at = memmem(s->buf, s->len, s->stops[i], s->lens[i]);
        if (at && (best < 0 || at - s->buf < best)) {
            best = at - s->buf;
            *which = s->index[i];
        }
    }
    return best;
}

/* Length of the longest tail of buf that is a proper prefix of a stop string: it may still
 * grow into one, so it is held back. */
static size_t partial_tail(const serve_stop *s) {
    size_t best = 0;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t max = s->lens[i] - 1 < s->len ? s->lens[i] - 1 : s->len;
        for (size_t k = max; k > best; k--)
            if (!memcmp(s->buf + s->len - k, s->stops[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Moves `end` back so buf[0..end) does not stop inside a UTF-8 character: a lead byte among
 * the last three whose sequence runs past end is held back with its continuation bytes. */
static size_t utf8_boundary(const char *buf, size_t end) {
    for (size_t back = 1; back <= 3 && back <= end; back++) {
        unsigned char c = (unsigned char)buf[end - back];
        if ((c & 0xc0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > back ? end - back : end;
    }
    return end; /* four continuation bytes in a row: not UTF-8 anyway, release as is */
}

size_t serve_stop_push(serve_stop *s, const char *text, size_t len, const char **out) {
    *out = "";
    if (s->hit >= 0 || s->failed) return 0;
    drop_released(s);
    size_t need;
    if (ob_add_size(s->len, len, &need)) {
        s->failed = 1;
        return 0;
    }
    if (need > s->cap) {
        size_t cap = need < 64 ? 64 : need * 2;
        char *grown = ob_realloc(s->buf, cap, 1);
        if (!grown) {
            s->failed = 1;
            return 0;
        }
        s->buf = grown;
        s->cap = cap;
    }
    if (len) memcpy(s->buf + s->len, text, len);
    s->len += len;
    int which = -1;
    ptrdiff_t at = find_stop(s, &which);
    if (at >= 0) {
        s->hit = which;
        s->len = (size_t)at; /* the stop string and anything after it are never sent */
        s->released = s->len;
        *out = s->buf ? s->buf : "";
        return s->released;
    }
    s->released = utf8_boundary(s->buf, s->len - partial_tail(s));
    *out = s->buf ? s->buf : "";
    return s->released;
}

size_t serve_stop_flush(serve_stop *s, const char **out) {
    *out = "";
    if (s->hit >= 0 || s->failed || !s->buf) return 0;
    drop_released(s);
    s->released = s->len;
    *out = s->buf;
    return s->released;
}
