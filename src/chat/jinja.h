/*
 * A Jinja interpreter for chat templates: the subset of Jinja2 that model makers' templates use,
 * with the settings the transformers library renders them under (trim_blocks, lstrip_blocks,
 * the loopcontrols extension, {% generation %} blocks, a tojson that keeps non-ASCII text,
 * raise_exception and strftime_now). The aim is byte-identical output to jinja2 for the same
 * template and variables.
 *
 * A template is parsed once (chat_jinja_parse) and rendered any number of times. Rendering is
 * bounded: a step limit stops templates that loop forever, a depth limit stops runaway macro
 * recursion, and a memory cap stops templates that build huge strings. Every error names the
 * template line and column: "template.jinja:12:5: unknown filter 'foo'".
 */
#ifndef OB_CHAT_JINJA_H
#define OB_CHAT_JINJA_H

#include "chat/value.h"
#include "outboard.h"

#include <stdint.h>

typedef struct chat_jinja chat_jinja;

/* Named limits (OB_ERR_LIMIT beyond them). */
#define CHAT_JINJA_MAX_SOURCE     (16u << 20)  /* template bytes */
#define CHAT_JINJA_MAX_NESTING    200          /* nested expressions and blocks while parsing */
#define CHAT_JINJA_MAX_STEPS      20000000     /* statements + expressions evaluated per render */
#define CHAT_JINJA_MAX_CALL_DEPTH 100          /* nested macro calls */
#define CHAT_JINJA_MAX_MEMORY     (512u << 20) /* bytes of values made by one render */

/* Parses src[0..len). `name` (copied) prefixes error messages. On success *out owns a copy of
 * the source; free it with chat_jinja_free. On failure *out is NULL and err says
 * "NAME:LINE:COL: what". */
ob_status chat_jinja_parse(const char *src, size_t len, const char *name, chat_jinja **out,
                           ob_err *err);
void chat_jinja_free(chat_jinja *t);

/* Options for one render. */
typedef struct chat_jinja_opts {
    int64_t now;       /* seconds since the epoch for strftime_now (local time); 0 = the clock */
    int64_t max_steps; /* 0 = CHAT_JINJA_MAX_STEPS */
} chat_jinja_opts;

/* Renders with the variables of `vars` (a CHAT_DICT made in `arena`, which also receives the
 * render's values). *out points at the text inside the arena (not NUL-terminated), *out_len its
 * length; both live until the arena is freed. Errors from raise_exception carry the template's
 * own message after the location. */
ob_status chat_jinja_render(const chat_jinja *t, chat_arena *arena, chat_val vars,
                            const chat_jinja_opts *opts, const char **out, size_t *out_len,
                            ob_err *err);

#endif
