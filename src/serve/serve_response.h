/*
 * Response objects of both dialects and their framing on the wire:
 *  - OpenAI: chat.completion, chat.completion.chunk, text_completion (whole and streamed),
 *    usage; streamed as Server-Sent Events, `data: {...}\n\n` ending with `data: [DONE]\n\n`;
 *  - Ollama: /api/chat and /api/generate lines (done: false) and final objects (done: true,
 *    done_reason, durations in nanoseconds, token counts), streamed as NDJSON.
 * Builders return a new jansson reference (NULL when out of memory); the inputs are borrowed.
 */
#ifndef OB_SERVE_RESPONSE_H
#define OB_SERVE_RESPONSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct serve_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens; /* prompt tokens served from the prefix cache */
    const char *route;     /* NULL, or where the routing policy sent the request
                              ("upstream=NAME; rule=NAME"): usage.outboard_route */
} serve_usage;

/* What every OpenAI object of one response shares. */
typedef struct serve_resp_meta {
    const char *id;    /* "chatcmpl-..." / "cmpl-..." */
    int64_t created;   /* Unix seconds */
    const char *model; /* the model's name as the client knows it */
} serve_resp_meta;

/* One choice, whole (a final object) or a delta (a chunk). Strings are UTF-8, whole
 * characters (serve_stop releases only those). */
typedef struct serve_choice {
    int index;
    const char *text; /* content; NULL = none (a chunk without content) */
    size_t text_len;
    const char *reasoning; /* reasoning_content / Ollama "thinking"; NULL = none */
    size_t reasoning_len;
    json_t *tool_calls;        /* borrowed array or NULL: [{"id", "type": "function",
                                  "function": {"name", "arguments"}}] (chunk: with "index") */
    const char *finish_reason; /* "stop", "length", "tool_calls"; NULL while not finished */
    json_t *logprobs;          /* borrowed or NULL: {"content": [serve_oai_logprob ...]} */
    bool role;                 /* chunk: include "role": "assistant" (the first chunk) */
} serve_choice;

/* ---- OpenAI ---- */
json_t *serve_oai_chat_completion(const serve_resp_meta *m, const serve_choice *c, size_t n,
                                  const serve_usage *u);
json_t *serve_oai_chat_chunk(const serve_resp_meta *m, const serve_choice *c);
json_t *serve_oai_text_completion(const serve_resp_meta *m, const serve_choice *c, size_t n,
                                  const serve_usage *u);
json_t *serve_oai_text_chunk(const serve_resp_meta *m, const serve_choice *c);
/* The last chunk of a stream with stream_options.include_usage: no choices, usage set.
 * object is "chat.completion.chunk" or "text_completion". */
json_t *serve_oai_usage_chunk(const serve_resp_meta *m, const char *object, const serve_usage *u);
json_t *serve_oai_usage(const serve_usage *u);
/* One position of logprobs.content: {"token", "logprob", "bytes", "top_logprobs": [...]};
 * top may be NULL (then []). token is raw bytes (a token may be part of a character). */
json_t *serve_oai_logprob(const char *token, size_t len, double logprob, json_t *top);

/* ---- Ollama ---- */
typedef struct serve_ollama_stats {
    int64_t total_ns, load_ns;
    int64_t prompt_eval_count, prompt_eval_ns;
    int64_t eval_count, eval_ns;
} serve_ollama_stats;

/* RFC 3339 UTC with nanoseconds ("2026-12-03T07:00:24.123456789Z") of a Unix time in ns. */
void serve_rfc3339(int64_t unix_ns, char out[40]);

/* /api/chat: {"model", "created_at", "message": {"role": "assistant", "content", "thinking",
 * "tool_calls"}, "done": false}; final (stats non-NULL): done true, done_reason and stats. */
json_t *serve_ollama_chat(const char *model, int64_t now_ns, const serve_choice *c,
                          const serve_ollama_stats *final);
/* /api/generate: {"model", "created_at", "response", "thinking", "done"} likewise. */
json_t *serve_ollama_generate(const char *model, int64_t now_ns, const serve_choice *c,
                              const serve_ollama_stats *final);

/* ---- framing ---- */

/* `data: JSON\n\n` (new string, ob_free; *len bytes); NULL when out of memory. */
char *serve_sse_frame(const json_t *v, size_t *len);
/* `event: NAME\ndata: JSON\n\n` (Anthropic's and the Responses API's named events). */
char *serve_sse_event_frame(const char *event, const json_t *v, size_t *len);
/* The stream's end marker. */
extern const char SERVE_SSE_DONE[]; /* "data: [DONE]\n\n" */
/* `JSON\n` (new string, ob_free). */
char *serve_ndjson_line(const json_t *v, size_t *len);
/* `JSON` (new string, ob_free): a whole body. */
char *serve_json_body(const json_t *v, size_t *len);

#endif
