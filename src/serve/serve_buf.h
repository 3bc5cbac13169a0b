/*
 * A growable byte buffer for building response bodies (metrics text, SSE frames). Appends
 * never fail loudly: the first allocation failure sets `failed`, later appends are no-ops, and
 * the owner checks once at the end.
 */
#ifndef OB_SERVE_BUF_H
#define OB_SERVE_BUF_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct serve_buf {
    char *data; /* owned, NUL-terminated when len > 0 */
    size_t len, cap;
    bool failed;
} serve_buf;

void serve_buf_append(serve_buf *b, const char *s, size_t n);
void serve_buf_puts(serve_buf *b, const char *s);
void serve_buf_printf(serve_buf *b, const char *fmt, ...) OB_PRINTF(2, 3);
/* Hands the bytes over (*len; ob_free) and empties b; NULL when an append had failed. */
char *serve_buf_take(serve_buf *b, size_t *len);
void serve_buf_clear(serve_buf *b);

#endif
