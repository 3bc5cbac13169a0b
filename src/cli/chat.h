/*
 * The parts of `outboard chat` (cmd_chat.c) that live in their own files:
 *  - chat_prompt.c: which chat template renders the conversation (the GGUF's own, a built-in
 *    one for the architecture, a generic ChatML one, or --template FILE: ob_chat) and
 *    rendering it;
 *  - chat_engine.c: the KV cache as a token list, so a turn evaluates only the tokens past the
 *    longest prefix the cache already holds;
 *  - chat_reply.c: one answer: sampling, streaming through the family's output parser, showing
 *    reasoning and tool calls apart from the content;
 *  - chat_input.c: reading user lines (continuations, Ctrl-C, Ctrl-D) and the SIGINT flag;
 *  - chat_edit.c: line editing and history on a terminal;
 *  - chat_history.c: the conversation as JSON messages: save, load, dropping old turns.
 */
#ifndef OB_CLI_CHAT_H
#define OB_CLI_CHAT_H

#include "outboard.h"
#include "spec/spec.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- chat_prompt.c ---- */

typedef struct cli_chat_tmpl {
    ob_chat *chat;      /* owned: the model's chat format (ob_chat_new) */
    char *file_src;     /* --template FILE's text (owned), or NULL */
    size_t file_len;
    const char *file;   /* borrowed: --template FILE, or NULL */
    char note[384];     /* which fallback is used and why; "" for the model's own template */
} cli_chat_tmpl;

/* Reads --template FILE (cli_read_file, at most CLI_MAX_TEMPLATE_FILE) and checks that it
 * parses, before the model loads; file NULL does nothing. Errors: those of cli_read_file
 * (named with --template), OB_ERR_FORMAT (malformed template, named with line and column).
 * On error *t is left empty. */
ob_status cli_chat_tmpl_read(const char *file, cli_chat_tmpl *t, ob_err *err);

/* The chat format of the loaded model: the file read before, else the model's own template,
 * a built-in one for the architecture or ChatML (the last two explain themselves in
 * t->note). Errors: those of ob_chat_new. */
ob_status cli_chat_tmpl_bind(cli_chat_tmpl *t, const ob_model *m, const char *model_path,
                             ob_err *err);
void cli_chat_tmpl_clear(cli_chat_tmpl *t);

/* Renders `messages` (a JSON array, borrowed) with the generation prompt when add_gen. *out is
 * new (ob_string_free). Errors: those of ob_chat_render (the template's own message). */
ob_status cli_chat_tmpl_render(const cli_chat_tmpl *t, json_t *messages, bool add_gen,
                               char **out, size_t *len, ob_err *err);

/* ---- chat_engine.c ---- */

typedef struct cli_chat_engine {
    ob_model *model; /* borrowed */
    ob_context *ctx; /* owned */
    int32_t *cache;  /* (n_cache) ids held in KV positions 0..n_cache-1, owned */
    size_t n_cache, cap;
    int64_t n_ctx;
} cli_chat_engine;

/* Creates the context. Errors: those of ob_context_new. */
ob_status cli_chat_engine_init(cli_chat_engine *e, ob_model *m, const ob_context_params *cp,
                               ob_err *err);
void cli_chat_engine_clear(cli_chat_engine *e);

/* Brings the cache to hold exactly ids[0..n): keeps the longest common prefix (at least one
 * token is evaluated, for its logits), forgets the rest and evaluates the remainder.
 * *n_evaluated says how many were. Errors: those of ob_eval (the cache then holds the common
 * prefix). */
ob_status cli_chat_engine_prefill(cli_chat_engine *e, const int32_t *ids, size_t n,
                                  size_t *n_evaluated, ob_err *err);

/* Evaluates one generated token after the cache. OB_ERR_LIMIT when the context is full. */
ob_status cli_chat_engine_push(cli_chat_engine *e, int32_t id, ob_err *err);

/* Evaluates the pending token id after the cache, with a draft when ss has one, and draws the
 * next tokens with s into emit (spec_step); *next gets the new pending token, *stopped whether
 * emit stopped. Errors: those of spec_step (the cache then holds what the context holds). */
ob_status cli_chat_engine_spec_step(cli_chat_engine *e, spec_seq *ss, ob_sampler *s,
                                    int32_t id, spec_emit_fn emit, void *user, int32_t *next,
                                    bool *stopped, ob_err *err);

/* ---- chat_reply.c ---- */

typedef struct cli_chat_reply_opts {
    int64_t n_predict;     /* reply tokens at most; < 0: until EOG or a full context */
    bool tty;              /* stdout is a terminal: colours; else plain text */
    bool ignore_eos;       /* keep going past end-of-generation tokens */
    const char *prompt;    /* the rendered prompt the answer follows (for the output parser) */
    spec_seq *spec;        /* speculative decoding state of this answer, borrowed */
} cli_chat_reply_opts;

typedef struct cli_chat_reply {
    ob_chat_reply out; /* content, reasoning and tool calls (owned; ob_chat_reply_clear) */
    int32_t *ids;      /* (n_ids) the generated ids, EOG excluded (owned, ob_free) */
    size_t n_ids;
    bool interrupted;  /* Ctrl-C stopped it */
    bool ctx_full;     /* the context filled up */
    double seconds;    /* generation time */
} cli_chat_reply;

/* Samples an answer after a prefilled prompt, streaming it to stdout (reasoning dimmed on a
 * terminal, on stderr otherwise; tool calls as "[tool call] name {args}"). `r` is filled
 * (free with cli_chat_reply_clear) even on error, with what was generated before it. */
ob_status cli_chat_reply_run(cli_chat_engine *e, ob_sampler *s, const ob_chat *chat,
                             const cli_chat_reply_opts *o, cli_chat_reply *r, ob_err *err);
void cli_chat_reply_clear(cli_chat_reply *r);

/* ---- chat_input.c ---- */

/* Set by SIGINT; the reply loop and the line reader look at it. */
extern volatile sig_atomic_t cli_chat_interrupted;

/* Installs the SIGINT handler (no SA_RESTART, so a blocked read returns). */
void cli_chat_signals_install(void);

typedef struct cli_chat_input {
    char *buf; /* (cap) bytes read from stdin not yet returned as lines, owned */
    size_t len, cap;
    bool eof;
    bool skip; /* dropping the rest of a line that was too long */
    bool edit; /* a terminal on both sides: lines are edited (chat_edit.c) */
    char **hist; /* (n_hist) lines entered, oldest first, owned */
    size_t n_hist, cap_hist;
} cli_chat_input;

enum {
    CLI_CHAT_LINE = 1,
    CLI_CHAT_EOF = 0,
    CLI_CHAT_INTR = -1,    /* Ctrl-C with nothing typed */
    CLI_CHAT_TOOLONG = -2, /* the message was over the limit (or memory ran out) */
    CLI_CHAT_CANCEL = -3,  /* Ctrl-C after continuation lines: they are dropped */
};

/* Reads one message: a line, joined with the next ones while it ends in a backslash (the
 * backslash becomes a newline). On a terminal, prompts on stdout ("> ", then "... "). *line is
 * new (ob_free) when CLI_CHAT_LINE is returned; otherwise one of the codes above. */
int cli_chat_input_read(cli_chat_input *in, bool tty, char **line);
void cli_chat_input_clear(cli_chat_input *in);

/* ---- chat_edit.c ---- */

/* Reads one line from the terminal with editing and history (in->hist); prompt (may hold
 * colour codes, prompt_w columns wide) is drawn first. *line is new (ob_free) when
 * CLI_CHAT_LINE is returned; CLI_CHAT_INTR for Ctrl-C on an empty line, CLI_CHAT_EOF for
 * Ctrl-D on an empty line or the end of input. */
int cli_chat_edit_line(cli_chat_input *in, const char *prompt, size_t prompt_w, char **line);
/* Frees the history. */
void cli_chat_edit_clear(cli_chat_input *in);

/* ---- chat_history.c ---- */

/* Appends {"role": role, "content": text} to the messages. OB_ERR_NOMEM on failure. */
ob_status cli_chat_history_add(json_t *messages, const char *role, const char *text,
                               ob_err *err);
/* Appends the assistant's message for a reply: content, reasoning_content when there was
 * reasoning, tool_calls when there were calls. */
ob_status cli_chat_history_add_reply(json_t *messages, const ob_chat_reply *out, ob_err *err);
/* Sets the system prompt (text NULL or "": removes it). */
ob_status cli_chat_history_set_system(json_t *messages, const char *text, ob_err *err);
/* Drops every message but the system prompt. */
void cli_chat_history_reset(json_t *messages);
/* Drops the oldest exchange after the system prompt (a user message and what followed it up to
 * the next user message), never the last user message. Returns how many messages went (0 when
 * nothing can go). */
size_t cli_chat_history_drop_oldest(json_t *messages);
/* Writes {"messages": [...]}, the input `outboard template --input` reads. */
ob_status cli_chat_history_save(const json_t *messages, const char *path, ob_err *err);
/* Reads a file written by save (or a bare messages array), at most CLI_MAX_CONVERSATION_FILE
 * bytes; *out is new (json_decref). Errors: those of cli_read_file (named with /load),
 * OB_ERR_FORMAT naming the file, line and what was wrong. */
ob_status cli_chat_history_load(const char *path, json_t **out, ob_err *err);

#endif
