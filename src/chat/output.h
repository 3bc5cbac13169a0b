/*
 * Chat output parsing: turns the text a chat model generated back into what an API returns,
 * namely the visible content, the reasoning ("thinking") and the tool calls. Each model family
 * marks these parts its own way (<think>, <tool_call>, [TOOL_CALLS], Harmony channels, ...);
 * the family is detected from the chat template's text or the model's name.
 *
 * Two forms share one engine, so they cannot disagree:
 *  - chat_output_parse: the whole generated text at once;
 *  - chat_output_stream_*: chunks as they are generated. Each feed returns the content and
 *    reasoning that became final (tool-call markup is held back, also a tag split across two
 *    chunks), and the tool calls that completed; finish returns the same result as the batch form.
 *
 * A tool call that cannot be read is never shown as content. In strict mode it fails the parse
 * with OB_ERR_FORMAT naming the family and the byte offset; in lenient mode it is listed in
 * chat_output.invalid and parsing goes on.
 */
#ifndef OB_CHAT_OUTPUT_H
#define OB_CHAT_OUTPUT_H

#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>

/* How a model family writes reasoning and tool calls (one value per distinct format). */
typedef enum chat_family {
    CHAT_FAMILY_PLAIN = 0,   /* no markup: Phi-3.5, unknown templates */
    CHAT_FAMILY_LLAMA3,      /* {"name":..,"parameters":..}, <|python_tag|> (Llama 3.1/3.2/3.3) */
    /* <tool_call>{json}</tool_call>, <think> (Qwen2.5, QwQ, Qwen3, SmolLM3) */
    CHAT_FAMILY_HERMES,
    /* <tool_call><function=f><parameter=p>v</parameter>.. (Qwen3-Coder, Qwen3.5) */
    CHAT_FAMILY_QWEN3_CODER,
    CHAT_FAMILY_DEEPSEEK_R1, /* <think>, <｜tool▁call▁begin｜>function<｜tool▁sep｜>name ```json``` */
    CHAT_FAMILY_DEEPSEEK_V31, /* <think>, <｜tool▁call▁begin｜>name<｜tool▁sep｜>{args} */
    CHAT_FAMILY_MISTRAL,     /* [TOOL_CALLS][{..}] or [TOOL_CALLS]name[ARGS]{..}, [THINK] */
    CHAT_FAMILY_GRANITE,     /* <|tool_call|>[{..}], <think>..</think><response>..</response> */
    /* <|START_THINKING|>, <|START_ACTION|>[..]<|END_ACTION|>, <|START_RESPONSE|> */
    CHAT_FAMILY_COMMAND_R7B,
    CHAT_FAMILY_GEMMA,       /* Gemma 2/3: plain text ending in <end_of_turn> */
    /* <|channel>thought..<channel|>, <|tool_call>call:f{k:<|"|>v<|"|>}<tool_call|> */
    CHAT_FAMILY_GEMMA4,
    CHAT_FAMILY_GPT_OSS,     /* Harmony: <|channel|>analysis/final/commentary to=functions.f */
    CHAT_FAMILY_COUNT
} chat_family;

/* Flags for chat_output_parse and chat_output_stream_new. */
enum {
    CHAT_OUTPUT_STRICT = 1u << 0,     /* an unreadable tool call fails with OB_ERR_FORMAT */
    CHAT_OUTPUT_THINK_OPEN = 1u << 1, /* the prompt already opened reasoning (ends in <think>) */
};

/* The parsed parts are the public types (outboard.h): a tool call, an unreadable one, and the
 * whole output. Every string a chat_output holds is owned by it (chat_output_clear). */
typedef ob_tool_call chat_tool_call;
typedef ob_invalid_call chat_output_invalid;
typedef ob_chat_reply chat_output;

/* A stable lower-case name for a family ("hermes"), or "unknown" when out of range. */
const char *chat_family_name(chat_family family);

/* The markup that closes reasoning in this family's answers ("</think>"), or NULL when it has
 * none that a server could write to end reasoning early (no reasoning; Harmony's channels). */
const char *chat_family_think_close(chat_family family);

/* The family with that name (as chat_family_name writes it); OB_ERR_ARG when none. */
ob_status chat_family_from_name(const char *name, chat_family *out, ob_err *err);

/* Detects the family from a chat template's text (may be NULL) and, when the template says
 * nothing, from the model's architecture or name (may be NULL: "qwen3", "gpt-oss", ...).
 * Never fails: CHAT_FAMILY_PLAIN when neither is recognised. */
chat_family chat_output_detect(const char *tmpl, size_t tmpl_len, const char *model_name);

/* Flags a caller should add for a rendered prompt: CHAT_OUTPUT_THINK_OPEN when the prompt ends
 * inside an open reasoning block (a template that writes "<think>\n" after the assistant
 * header), so the output's first bytes are reasoning even though they carry no tag. */
unsigned chat_output_prompt_flags(chat_family family, const char *prompt, size_t len);

/* Parses one whole generated text. `out` is overwritten (call chat_output_clear on it first if
 * it held a result). On success the caller owns out's contents. Errors: OB_ERR_FORMAT (strict
 * mode, unreadable call: names family and byte offset), OB_ERR_NOMEM, OB_ERR_ARG (bad family);
 * on error `out` is left empty. */
ob_status chat_output_parse(chat_family family, const char *text, size_t len, unsigned flags,
                            chat_output *out, ob_err *err);

/* chat_output_parse with the request's tools: `tools` is the OpenAI "tools" array as JSON text
 * (tools_len bytes; NULL or empty for none). Parameters the model writes as bare text
 * (Qwen3-Coder XML) then take the type their JSON schema declares, so a string parameter
 * whose value is "123" stays a string. Errors as chat_output_parse, plus OB_ERR_FORMAT when
 * tools is not a JSON array. */
ob_status chat_output_parse_tools(chat_family family, const char *text, size_t len,
                                  unsigned flags, const char *tools, size_t tools_len,
                                  chat_output *out, ob_err *err);

/* Frees everything chat_output owns and zeroes it; NULL is a no-op. */
void chat_output_clear(chat_output *out);

/* ---- streaming ---- */

typedef struct chat_output_stream chat_output_stream;

/* What one feed made final (ob_chat_delta): borrowed from the stream, valid until the next
 * call on it. */
typedef ob_chat_delta chat_output_delta;

/* A new stream for one generated answer; NULL when out of memory or family is out of range.
 * Free with chat_output_stream_free. */
chat_output_stream *chat_output_stream_new(chat_family family, unsigned flags);

/* Gives the stream the request's tools (see chat_output_parse_tools); call before the first
 * feed. The text is copied. Errors: OB_ERR_FORMAT when it is not a JSON array. */
ob_status chat_output_stream_set_tools(chat_output_stream *s, const char *tools, size_t len,
                                       ob_err *err);

/* Whether what was fed so far leaves the answer inside reasoning (a marker still being
 * decided keeps the state it had before it). */
bool chat_output_stream_in_reasoning(const chat_output_stream *s);

/* Feeds the next `len` bytes and fills `delta` (may be NULL). Errors: OB_ERR_FORMAT (strict
 * mode, unreadable call), OB_ERR_NOMEM, OB_ERR_ARG (feed after finish); the stream is then
 * unusable. */
ob_status chat_output_stream_feed(chat_output_stream *s, const char *text, size_t len,
                                  chat_output_delta *delta, ob_err *err);

/* Ends the stream: flushes held-back text into `delta` (may be NULL), parses any unterminated
 * call, and moves the whole result into `out` (same as chat_output_parse on the concatenated
 * text). `out` is overwritten; the caller owns it. */
ob_status chat_output_stream_finish(chat_output_stream *s, chat_output_delta *delta,
                                    chat_output *out, ob_err *err);

/* Frees the stream; NULL is a no-op. */
void chat_output_stream_free(chat_output_stream *s);

#endif
