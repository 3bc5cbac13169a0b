/*
 * A Jinja interpreter for chat templates: the subset of Jinja2 that model makers' templates use,
 * with the settings the transformers library renders them under (trim_blocks, lstrip_blocks,
 * the loopcontrols extension, {% generation %} blocks, a tojson that keeps non-ASCII text,
 * raise_exception and strftime_now). The aim is byte-identical output to jinja2 for the same
 * template and variables.
 *
 * A template is parsed once (chat_jinja_parse) and rendered any number of times. Templates are
 * untrusted (they come inside GGUF files), so parsing and rendering are bounded: the source
 * size, its token count, the parser's memory and how deep an expression or block may nest; a
 * step limit and a wall-clock budget stop templates that loop forever or slowly, depth limits
 * stop runaway macro recursion and deep evaluation before the C stack runs out, and a memory
 * cap stops templates that build huge values. Every error names the template line and column:
 * "template.jinja:12:5: unknown filter 'foo'".
 */
#ifndef OB_CHAT_JINJA_H
#define OB_CHAT_JINJA_H

#include "chat/value.h"
#include "outboard.h"

#include <stdint.h>

typedef struct chat_jinja chat_jinja;

/* Named limits (OB_ERR_LIMIT beyond them, except CHAT_JINJA_MAX_NESTING: a parse error). */
#define CHAT_JINJA_MAX_SOURCE       (16u << 20)  /* template bytes */
#define CHAT_JINJA_MAX_TOKENS       (1u << 20)   /* tokens in one template (real ones: ~10k) */
#define CHAT_JINJA_MAX_PARSE_MEMORY (256u << 20) /* bytes of tree (1M dense tokens: ~120 MiB) */
/* Nested blocks, and the depth of one expression's tree: `a + b + c` is 3 deep, as are
 * `a.b.c`, `x|f|g` and `((a))` (jinja2 itself fails at a few hundred). */
#define CHAT_JINJA_MAX_NESTING 200
/* Statements, expressions and macro calls being evaluated inside one another: each level takes
 * at most about 0.6 KiB of C stack (1.2 KiB under AddressSanitizer), so a render stays within
 * about 1.2 MiB (2.4 MiB) whatever the template nests. */
#define CHAT_JINJA_MAX_EVAL_DEPTH 2000
#define CHAT_JINJA_MAX_STEPS      20000000     /* statements + expressions evaluated per render */
#define CHAT_JINJA_MAX_CALL_DEPTH 100          /* nested macro calls */
#define CHAT_JINJA_MAX_MEMORY     (512u << 20) /* bytes of values made by one render */
#define CHAT_JINJA_MAX_SECONDS    5.0          /* wall-clock seconds per render (real: < 0.1) */

/* Parses src[0..len). `name` (copied) prefixes error messages. On success *out owns a copy of
 * the source; free it with chat_jinja_free. On failure *out is NULL and err says
 * "NAME:LINE:COL: what". */
ob_status chat_jinja_parse(const char *src, size_t len, const char *name, chat_jinja **out,
                           ob_err *err);
void chat_jinja_free(chat_jinja *t);

/* Options for one render. */
typedef struct chat_jinja_opts {
    int64_t now;        /* seconds since the epoch for strftime_now (local time); 0 = the clock */
    int64_t max_steps;  /* 0 = CHAT_JINJA_MAX_STEPS */
    double max_seconds; /* wall-clock budget; 0 (or less) = CHAT_JINJA_MAX_SECONDS */
} chat_jinja_opts;

/* Renders with the variables of `vars` (a CHAT_DICT made in `arena`, which also receives the
 * render's values). *out points at the text inside the arena (not NUL-terminated), *out_len its
 * length; both live until the arena is freed. `opts` may be NULL (every default). Errors from
 * raise_exception carry the template's own message after the location; OB_ERR_LIMIT for a
 * render past a limit ("t.jinja:3:5: template rendering took longer than 5 s"). */
ob_status chat_jinja_render(const chat_jinja *t, chat_arena *arena, chat_val vars,
                            const chat_jinja_opts *opts, const char **out, size_t *out_len,
                            ob_err *err);

#endif
