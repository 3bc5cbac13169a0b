/*
 * Chat templates: turning a conversation (OpenAI-style messages, tools) into the prompt text a
 * model was trained on, with the model's own Jinja template (GGUF key tokenizer.chat_template).
 * The variables are the ones transformers' apply_chat_template passes: messages, tools (None
 * when absent), documents (None), add_generation_prompt, bos_token, eos_token, and any extra
 * keys (enable_thinking, reasoning_effort, ...). Messages pass through as they are (content as a
 * string or a list of parts, tool_calls, reasoning_content): templates read them directly.
 *
 *     chat_template *t;
 *     if (chat_template_new(src, len, "model.gguf", &t, &err)) ...
 *     chat_template_opts o = {.bos_token = "<s>", .eos_token = "</s>"};
 *     char *text; size_t n;
 *     if (chat_template_render(t, conv_json, &o, &text, &n, &err)) ...
 *     ob_free(text); chat_template_free(t);
 */
#ifndef OB_CHAT_TEMPLATE_H
#define OB_CHAT_TEMPLATE_H

#include "gguf/gguf.h"
#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t; /* jansson */

typedef struct chat_template chat_template;

/* ChatML (<|im_start|>role ... <|im_end|>): the most common format among instruction-tuned
 * models, so the likeliest to mean something to a model that carries no template. Content
 * that is not a string (a tool call's null) renders as nothing instead of failing. */
extern const char CHAT_TEMPLATE_CHATML[];

/* Parses a template held in src[0..len). `name` (copied) prefixes error messages. Errors:
 * OB_ERR_FORMAT "NAME:LINE:COL: what" for a malformed template, OB_ERR_LIMIT, OB_ERR_NOMEM. */
ob_status chat_template_new(const char *src, size_t len, const char *name, chat_template **out,
                            ob_err *err);

/* The template of a GGUF model (tokenizer.chat_template) with the model's BOS and EOS token
 * texts, which become the template's defaults. A file without a template gets the built-in one
 * for its architecture (template_builtin.c: gemma3); OB_ERR_FORMAT naming the key when there
 * is neither. The template does not borrow from f. */
ob_status chat_template_from_gguf(const gguf_file *f, chat_template **out, ob_err *err);

void chat_template_free(chat_template *t);

/* BOS/EOS token texts known to the template (from the GGUF), or NULL. Borrowed from t. */
const char *chat_template_bos(const chat_template *t);
const char *chat_template_eos(const chat_template *t);

/* Per-render settings; each is overridden by the same key in the conversation object. */
typedef struct chat_template_opts {
    const char *bos_token; /* NULL: the template's own (from the GGUF), else not passed */
    const char *eos_token; /* likewise */
    bool add_generation_prompt;
    int64_t now;        /* seconds since the epoch for strftime_now; 0 = the clock */
    int64_t max_steps;  /* 0 = CHAT_JINJA_MAX_STEPS */
    double max_seconds; /* wall-clock budget; 0 = CHAT_JINJA_MAX_SECONDS */
} chat_template_opts;

/* Renders `conv`, a JSON object {"messages": [...], "tools": [...], "add_generation_prompt":
 * bool, "bos_token": "...", "eos_token": "...", other keys passed as variables}. `opts` may be
 * NULL. On success *out is a new NUL-terminated string (free with ob_free) of *out_len bytes.
 * Errors: OB_ERR_ARG for a bad conversation or a template's raise_exception (the message is
 * the template's), OB_ERR_FORMAT for a template that fails while rendering (undefined value
 * used, bad operand, unknown method), OB_ERR_LIMIT for runaway templates (steps, time, memory,
 * depth); every message names the template line and column. */
ob_status chat_template_render(const chat_template *t, const struct json_t *conv,
                               const chat_template_opts *opts, char **out, size_t *out_len,
                               ob_err *err);

#endif
