/*
 * Error messages: one line per failure, written into the caller's buffer (Redis anet.c style),
 * so there is no global error state and threads never race on it.
 */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

const char *ob_status_name(ob_status status) {
    switch (status) {
    case OB_OK: return "OB_OK";
    case OB_ERR_IO: return "OB_ERR_IO";
    case OB_ERR_FORMAT: return "OB_ERR_FORMAT";
    case OB_ERR_NOMEM: return "OB_ERR_NOMEM";
    case OB_ERR_UNSUPPORTED: return "OB_ERR_UNSUPPORTED";
    case OB_ERR_LIMIT: return "OB_ERR_LIMIT";
    case OB_ERR_CUDA: return "OB_ERR_CUDA";
    case OB_ERR_ARG: return "OB_ERR_ARG";
    case OB_ERR_NUMERIC: return "OB_ERR_NUMERIC";
    case OB_ERR_CANCELLED: return "OB_ERR_CANCELLED";
    case OB_ERR_DEVICE: return "OB_ERR_DEVICE";
    }
    return "OB_ERR_UNKNOWN";
}

ob_status ob_failv(ob_err *err, ob_status status, const char *fmt, va_list ap) {
    if (err) vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return status;
}

ob_status ob_fail(ob_err *err, ob_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ob_failv(err, status, fmt, ap);
    va_end(ap);
    return status;
}

void ob_err_prefix(ob_err *err, const char *prefix) {
    if (!err) return;
    /* Build "prefix: msg" by hand; truncation is fine (the message is for people). */
    char tmp[sizeof err->msg];
    size_t cap = sizeof tmp - 1, n = 0;
    size_t plen = strlen(prefix), mlen = strnlen(err->msg, sizeof err->msg);
    for (size_t i = 0; i < plen && n < cap; i++) tmp[n++] = prefix[i];
    if (n < cap) tmp[n++] = ':';
    if (n < cap) tmp[n++] = ' ';
    for (size_t i = 0; i < mlen && n < cap; i++) tmp[n++] = err->msg[i];
    tmp[n] = '\0';
    memcpy(err->msg, tmp, n + 1);
}

void ob_err_clear(ob_err *err) {
    if (err) err->msg[0] = '\0';
}
