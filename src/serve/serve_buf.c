/* Growable response buffers (serve_buf.h). */
#include "serve/serve_buf.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool reserve(serve_buf *b, size_t extra) {
    size_t need;
    if (b->failed || ob_add_size(b->len, extra, &need) || ob_add_size(need, 1, &need)) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *grown = ob_realloc(b->data, cap, 1);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void serve_buf_append(serve_buf *b, const char *s, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void serve_buf_puts(serve_buf *b, const char *s) {
    serve_buf_append(b, s, strlen(s));
}

void serve_buf_printf(serve_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *serve_buf_take(serve_buf *b, size_t *len) {
    if (b->failed || !reserve(b, 0)) {
        serve_buf_clear(b);
        return NULL;
    }
    char *out = b->data;
    if (len) *len = b->len;
    memset(b, 0, sizeof *b);
    return out;
}

void serve_buf_clear(serve_buf *b) {
    ob_free(b->data);
    memset(b, 0, sizeof *b);
}
