/*
 * One internal generation request, whatever dialect it came in (OpenAI chat or completions,
 * Ollama chat or generate), and the parsers that fill it from a request body.
 *
 * The parsers check every field's type and range and the named limits below before anything
 * is allocated for generation; a refusal is a serve_error naming the field's JSON path. Fields
 * a phase of the server does not use yet (response_format, tool_choice, ...) are still checked
 * and kept, so clients get the same answers when those land.
 *
 *     serve_gen_req *r;
 *     serve_error e;
 *     if (serve_openai_chat_parse(body, len, &limits, &r, &e)) reply with e;
 *     ...
 *     serve_gen_req_free(r);
 */
#ifndef OB_SERVE_REQUEST_H
#define OB_SERVE_REQUEST_H

#include "serve/serve_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits on one request; over any of them the request is refused with the limit named. */
#define SERVE_MAX_MESSAGES      4096        /* entries of messages[] */
#define SERVE_MAX_CONTENT_PARTS 256         /* entries of one message's content array */
#define SERVE_MAX_TEXT          (16u << 20) /* bytes of one string (content, prompt, arguments) */
#define SERVE_MAX_NAME          256         /* bytes of a role, name, id or model name */
#define SERVE_MAX_STOP          16          /* stop strings */
#define SERVE_MAX_STOP_LEN      256         /* bytes of one stop string */
#define SERVE_MAX_N             16          /* choices per request (n) */
#define SERVE_MAX_TOP_LOGPROBS  20          /* alternatives per position (top_logprobs) */
#define SERVE_MAX_TOOLS         128         /* entries of tools[] */
#define SERVE_MAX_TOOL_NAME     64          /* bytes of a function name ([A-Za-z0-9_-]) */
#define SERVE_MAX_LOGIT_BIAS    1024        /* entries of logit_bias */
#define SERVE_MAX_PROMPTS       64          /* prompts of one /v1/completions request */
#define SERVE_MAX_PROMPT_TOKENS (1 << 24)   /* token ids of one prompt given as ids */

typedef enum serve_kind {
    SERVE_KIND_CHAT = 0,   /* messages through the chat template */
    SERVE_KIND_COMPLETION, /* raw prompt text or token ids */
} serve_kind;

/* What the parsers check against the loaded model. */
typedef struct serve_limits {
    int64_t n_vocab; /* token ids (prompt ids, logit_bias keys) must be below it; 0 = unknown */
} serve_limits;

typedef struct serve_logit_bias {
    int32_t token;
    float bias; /* added to the token's logit; -100 bans it, 100 forces it in practice */
} serve_logit_bias;

/* One prompt of a completion request: text or token ids, never both. */
typedef struct serve_prompt {
    char *text; /* owned, NUL-terminated; NULL when given as ids */
    size_t text_len;
    int32_t *tokens; /* owned (n_tokens); NULL when given as text */
    size_t n_tokens;
} serve_prompt;

typedef struct serve_sampling {
    float temperature;       /* 0 = greedy */
    float top_p;             /* 1 = off */
    int32_t top_k;           /* 0 = off */
    float min_p;             /* 0 = off */
    float presence_penalty;  /* OpenAI, -2..2; 0 = off */
    float frequency_penalty; /* OpenAI, -2..2; 0 = off */
    float repeat_penalty;    /* llama.cpp / Ollama style; 1 = off */
    int32_t repeat_last_n;   /* tokens the penalties look back over; -1 = the whole context */
    bool has_seed;
    uint64_t seed;
    serve_logit_bias *logit_bias; /* owned, n_logit_bias entries */
    size_t n_logit_bias;
    bool ignore_eos; /* end-of-generation tokens are never drawn (llama.cpp's and vLLM's field) */
} serve_sampling;

typedef enum serve_tool_choice {
    SERVE_TOOL_CHOICE_AUTO = 0,
    SERVE_TOOL_CHOICE_NONE,
    SERVE_TOOL_CHOICE_REQUIRED,
    SERVE_TOOL_CHOICE_FUNCTION, /* tool_choice_name */
} serve_tool_choice;

typedef struct serve_gen_req {
    serve_dialect dialect;
    serve_kind kind;
    char *model; /* owned; "" when the request named none (OpenAI allows the default) */

    /* chat: the conversation as the chat template reads it (owned reference): roles mapped
     * ("developer" -> "system"), Ollama "thinking" -> "reasoning_content", tool-call arguments
     * as objects */
    json_t *messages;
    json_t *tools; /* owned reference or NULL: the tools[] array as given */
    serve_tool_choice tool_choice;
    char *tool_choice_name; /* owned, for SERVE_TOOL_CHOICE_FUNCTION */
    bool parallel_tool_calls;
    json_t *response_format; /* owned reference or NULL: {"type": "json_object"|"json_schema",
                                "schema": {...}} normalised from either dialect */
    json_t *template_kwargs; /* owned reference or NULL: extra template variables */
    int think;               /* -1 = as the template likes, 0 = off, 1 = on */
    char *reasoning_effort;  /* owned or NULL: "low", "medium", "high", ... */
    int64_t reasoning_budget; /* thinking tokens before the server closes reasoning (Anthropic
                                 thinking.budget_tokens); -1 = the server's --reasoning-budget */

    /* completion: prompts (OpenAI may send several; Ollama one) */
    serve_prompt *prompts; /* owned, n_prompts */
    size_t n_prompts;
    char *suffix; /* owned or NULL */
    char *system; /* owned or NULL: Ollama /api/generate system prompt */
    bool raw;     /* Ollama generate: no template */
    bool echo;    /* OpenAI completions: the prompt comes back before the answer */

    serve_sampling sampling;
    char **stop; /* owned, n_stop strings (each owned, NUL-terminated, non-empty) */
    size_t n_stop;
    int64_t max_tokens; /* -1 = until end of generation or of the context */
    int64_t num_ctx;    /* Ollama options.num_ctx, 0 = the server's */
    int n;              /* choices (1..SERVE_MAX_N) */
    bool stream;
    bool include_usage; /* OpenAI stream_options.include_usage */
    bool logprobs;
    int top_logprobs;  /* 0..SERVE_MAX_TOP_LOGPROBS */
    double keep_alive;   /* Ollama keep_alive in seconds: how long the model stays loaded */
    bool keep_alive_set; /* the request sent keep_alive (else the server's --idle-unload) */

    /* fill-in-the-middle (serve_fim.c): each prompt is the code before the cursor, suffix
     * the code after it */
    bool fim;
    json_t *fim_extra;  /* owned reference or NULL: /infill input_extra [{filename, text}] */
    char *fim_prompt;   /* owned or NULL: /infill prompt, written after the prefix */

    char *grammar;     /* owned or NULL: the "grammar" field (GBNF), serve_constraint.h */
    int speculative;   /* "speculative": a spec_mode (spec.h), -1 = the server's --spec */
} serve_gen_req;

/* Frees r and everything it owns; NULL is a no-op. */
void serve_gen_req_free(serve_gen_req *r);

/* POST /v1/chat/completions and POST /v1/completions. On success *out is new (caller frees);
 * on failure e names the field (400 for malformed JSON, wrong types, values out of range and
 * limits; other fields of e as serve_error.h says). */
int serve_openai_chat_parse(const char *body, size_t len, const serve_limits *lim,
                            serve_gen_req **out, serve_error *e);
int serve_openai_completion_parse(const char *body, size_t len, const serve_limits *lim,
                                  serve_gen_req **out, serve_error *e);

/* POST /api/chat and POST /api/generate: `options` maps onto the same sampling settings
 * (num_predict, num_ctx, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
 * presence/frequency_penalty, seed, stop). Streaming is on unless "stream": false. */
int serve_ollama_chat_parse(const char *body, size_t len, const serve_limits *lim,
                            serve_gen_req **out, serve_error *e);
int serve_ollama_generate_parse(const char *body, size_t len, const serve_limits *lim,
                                serve_gen_req **out, serve_error *e);

/* POST /v1/messages (Anthropic Messages: model and max_tokens required, system, messages of
 * text / thinking / tool_use / tool_result blocks, tools with input_schema, tool_choice,
 * thinking, stop_sequences, temperature 0..1, top_p, top_k, stream) and POST
 * /v1/messages/count_tokens (the same body without max_tokens). */
int serve_anthropic_messages_parse(const char *body, size_t len, const serve_limits *lim,
                                   serve_gen_req **out, serve_error *e);
int serve_anthropic_count_parse(const char *body, size_t len, const serve_limits *lim,
                                serve_gen_req **out, serve_error *e);

/* POST /v1/responses (OpenAI Responses, stateless: input as a string or items of messages,
 * function_call, function_call_output and reasoning; instructions; function tools;
 * tool_choice; max_output_tokens; temperature; top_p; reasoning.effort; text.format;
 * stream). */
int serve_responses_parse(const char *body, size_t len, const serve_limits *lim,
                          serve_gen_req **out, serve_error *e);

/* POST /infill (llama.cpp's server): input_prefix and input_suffix required, input_extra
 * [{filename, text}], prompt, n_predict, temperature, top_k, top_p, min_p, seed, stop,
 * stream. */
int serve_infill_parse(const char *body, size_t len, const serve_limits *lim,
                       serve_gen_req **out, serve_error *e);

/* A request body parsed as one JSON object: malformed JSON names the line, column and what
 * jansson says; a top-level value of another type is a 400 naming its type. *out is a new
 * reference. Shared by every POST route (/api/show reads it too). */
int serve_body_parse(const char *body, size_t len, json_t **out, serve_error *e);

/* Fills one field group of a request from its parsed body (a dialect's parser). */
typedef int (*serve_req_fill_fn)(serve_gen_req *r, const json_t *body, const serve_limits *lim,
                                 serve_error *e);

/* Parses body as JSON and runs fill on a new request of the dialect and kind; on failure the
 * half-filled request is freed and *out stays untouched. *out transfers to the caller
 * (serve_gen_req_free). */
int serve_req_parse_body(serve_dialect dialect, serve_kind kind, const char *body, size_t len,
                         serve_req_fill_fn fill, const serve_limits *lim, serve_gen_req **out,
                         serve_error *e);

/* ---- shared pieces of the dialect parsers (serve_request.c) ---- */

/* A new request with the defaults of `dialect` (OpenAI: temperature 1, top_p 1, n 1; Ollama:
 * Ollama's own defaults, streaming on). NULL when out of memory. */
serve_gen_req *serve_gen_req_new(serve_dialect dialect, serve_kind kind);
/* Copies src[0..len) into *dst (owned); -1 with e = 500 when out of memory. */
int serve_req_strdup(char **dst, const char *src, size_t len, serve_error *e);
/* "stop": a string or an array of strings at `path`; appended to r->stop. */
int serve_req_parse_stop(serve_gen_req *r, const json_t *v, const char *path, serve_error *e);
/* "tools": OpenAI function tools (also Ollama's, which share the shape). */
int serve_req_parse_tools(serve_gen_req *r, const json_t *body, serve_error *e);
/* Appends {"type": "function", "function": {name, description, parameters}} to r->tools
 * (made when absent): the form the other dialects' tools are turned into. params borrowed,
 * NULL for an empty object. */
int serve_req_add_function_tool(serve_gen_req *r, const char *name, const char *desc,
                                json_t *params, serve_error *e);
/* "model": a string of at most SERVE_MAX_NAME bytes; required says whether absence is a 400. */
int serve_req_parse_model(serve_gen_req *r, const json_t *body, bool required, serve_error *e);
/* "logit_bias": {"token id": bias in [-100, 100]}. */
int serve_req_parse_logit_bias(serve_gen_req *r, const json_t *body, const serve_limits *lim,
                               serve_error *e);
/* OpenAI sampling fields shared by chat and completions (temperature, top_p, top_k, min_p,
 * seed, presence/frequency_penalty, repetition_penalty, stop, n, stream, stream_options). */
int serve_req_parse_openai_common(serve_gen_req *r, const json_t *body, const serve_limits *lim,
                                  serve_error *e);
/* A 500 "out of memory" naming what was being built. */
int serve_req_nomem(serve_error *e, const char *what);

#endif
