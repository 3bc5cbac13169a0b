/*
 * outboard: a local LLM inference library. This is its only public header.
 *
 * Conventions (see DESIGN.md and STYLE.md):
 *  - every public name starts with ob_; handles are opaque;
 *  - a function that can fail on its input returns ob_status and, when the caller passes a
 *    non-NULL ob_err, writes one line into it that names what was wrong (file, key, tensor,
 *    byte offset) with the expected and the actual value;
 *  - whoever calls a _new/_open/_load function calls the matching _free/_close; _free(NULL) is
 *    a no-op.
 */
#ifndef OUTBOARD_H
#define OUTBOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OB_VERSION_STRING "0.1.0"

/* Result codes. OB_OK is zero so `if (st) return st;` propagates failures. */
typedef enum ob_status {
    OB_OK = 0,
    OB_ERR_IO,          /* a file or socket operation failed */
    OB_ERR_FORMAT,      /* input is malformed (GGUF, JSON, template, HTTP) */
    OB_ERR_NOMEM,       /* an allocation failed */
    OB_ERR_UNSUPPORTED, /* well-formed but not something outboard runs (arch, tensor type) */
    OB_ERR_LIMIT,       /* a named limit was exceeded (context length, request size) */
    OB_ERR_CUDA,        /* the CUDA runtime reported an error */
    OB_ERR_ARG,         /* the caller passed an invalid argument */
} ob_status;

/* Room for one error line. Callers own it, usually on the stack. */
typedef struct ob_err {
    char msg[512];
} ob_err;

/* A short stable name for a status ("OB_ERR_FORMAT"). Never NULL. */
const char *ob_status_name(ob_status status);

#ifdef __cplusplus
}
#endif
#endif /* OUTBOARD_H */
