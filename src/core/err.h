/*
 * Error reporting helpers shared by every module. A failing function writes one line into the
 * caller's ob_err (which may be NULL) and returns its status, usually in one statement:
 *
 *     return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s': offset %" PRIu64 " past end", ...);
 */
#ifndef OB_CORE_ERR_H
#define OB_CORE_ERR_H

#include "outboard.h"

#include <stdarg.h>

#if defined(__GNUC__)
#define OB_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define OB_PRINTF(fmt_idx, arg_idx)
#endif

/* Writes the formatted message into err (if non-NULL) and returns status unchanged. */
ob_status ob_fail(ob_err *err, ob_status status, const char *fmt, ...) OB_PRINTF(3, 4);

/* va_list form of ob_fail. */
ob_status ob_failv(ob_err *err, ob_status status, const char *fmt, va_list ap);

/* Prefixes err->msg with "prefix: " (for adding the file name at an outer layer). */
void ob_err_prefix(ob_err *err, const char *prefix);

/* Clears the message; ob_err_clear(NULL) is a no-op. */
void ob_err_clear(ob_err *err);

#endif
