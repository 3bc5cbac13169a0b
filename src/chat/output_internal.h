/*
 * Internals of chat output parsing, shared by its files:
 *   output_family.c  the per-family tables (markers, body parsers), detection, prompt flags
 *   output_scan.c    the marker-driven state machine behind both the batch and stream forms
 *   output_calls.c   tool-call bodies written as JSON (Hermes, Llama, Mistral, Granite, ...)
 *   output_xml.c     tool-call bodies in other notations (Qwen3-Coder XML, Gemma 4, DeepSeek,
 *                    Harmony, Python-style calls)
 *   output_util.c    growable buffers, the call sink, JSON helpers
 *
 * The model's text is a sequence of segments (content, reasoning, tool-call body, Harmony
 * header) separated by markers. Each family lists, per segment kind, the markers that end or
 * switch it; the scanner only needs that table, so the batch and streaming forms are one code path.
 */
#ifndef OB_CHAT_OUTPUT_INTERNAL_H
#define OB_CHAT_OUTPUT_INTERNAL_H

#include "chat/output.h"

#include <jansson.h>
#include <stdint.h>

/* ---- growable byte buffer ---- */

typedef struct chat_buf {
    char *p; /* (cap) bytes, p[len] == 0 when cap > 0 */
    size_t len, cap;
} chat_buf;

/* Appends n bytes (keeps a NUL after them); OB_ERR_NOMEM on failure. */
ob_status chat_buf_add(chat_buf *b, const char *s, size_t n);
void chat_buf_free(chat_buf *b);

/* ---- where parsed calls go ---- */

typedef struct chat_call_sink {
    chat_tool_call *calls; /* (cap_calls) */
    size_t n_calls, cap_calls;
    chat_output_invalid *bad; /* (cap_bad) */
    size_t n_bad, cap_bad;
    const char *body; /* the body being parsed (borrowed during one parse_body call) */
    size_t body_len;
    size_t base; /* absolute offset of body[0] in the generated text */
    json_t *tools; /* the request's tools array (borrowed from the stream), or NULL */
} chat_call_sink;

/* Adds a call. name is copied (name_len bytes); id may be NULL; args is borrowed and must be an
 * object or a string holding a JSON object, else the call is recorded as bad with
 * `rel_off` (offset in body). Returns OB_ERR_NOMEM only; a bad call is not an error here. */
ob_status chat_sink_call(chat_call_sink *s, const char *name, size_t name_len, const char *id,
                         json_t *args, size_t rel_off);

/* Records an unreadable call: body[rel_off .. rel_off+len) with a reason. OB_ERR_NOMEM only. */
ob_status chat_sink_bad(chat_call_sink *s, size_t rel_off, size_t len, const char *why);

/* Takes a decoded JSON value that should describe one call ({"name":..,"arguments":..} and the
 * variants models write: "parameters", "tool_name", "function": {...}, string arguments) or an
 * array of them. Returns OB_ERR_NOMEM only. */
ob_status chat_sink_json(chat_call_sink *s, json_t *v, size_t rel_off, size_t len);

void chat_sink_free(chat_call_sink *s);

/* ---- small text helpers ---- */

static inline int chat_is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* True when s[0..n) is well-formed UTF-8. */
bool chat_utf8_valid(const char *s, size_t n);

/* The length of s[0..n) without a UTF-8 sequence cut off at its end (so a delta never ends
 * in the middle of a character); n when the end is complete or not UTF-8 at all. */
size_t chat_utf8_complete(const char *s, size_t n);

/* Offset of the first occurrence of needle in p[0..n), or n when absent. */
size_t chat_find(const char *p, size_t n, const char *needle);

/* Skips whitespace from i; returns the first non-space index (or n). */
size_t chat_skip_space(const char *p, size_t n, size_t i);

/* Decodes one JSON value at p[0..n) (after leading whitespace). On success *used is the bytes
 * taken (whitespace included) and the value is returned (caller decrefs); NULL when the text is
 * not valid JSON there. */
json_t *chat_json_prefix(const char *p, size_t n, size_t *used);

/* The JSON-schema "properties" object of the named tool's parameters in tools (an OpenAI
 * tools array), or NULL when tools is NULL or has no such tool. Borrowed from tools. */
json_t *chat_tool_properties(json_t *tools, const char *name, size_t name_len);

/* Parses a run of JSON values separated by whitespace, ';' or ',' into calls. Text that is not
 * JSON is recorded as a bad call. Returns OB_ERR_NOMEM only. */
ob_status chat_sink_json_run(chat_call_sink *s, size_t from, size_t to);

/* ---- markers and families ---- */

typedef enum chat_seg {
    CHAT_SEG_CONTENT = 0,
    CHAT_SEG_REASONING,
    CHAT_SEG_TOOL,   /* a tool-call body, kept whole until it ends, then parsed */
    CHAT_SEG_HEADER, /* a Harmony message header, up to <|message|> */
    CHAT_SEG_COUNT
} chat_seg;

typedef enum chat_mk_action {
    CHAT_MK_DROP = 0,       /* the marker vanishes; the segment goes on */
    CHAT_MK_CONTENT,        /* switch to content */
    CHAT_MK_REASONING,      /* switch to reasoning */
    CHAT_MK_TOOL,           /* open a tool body; the marker's bytes start the body */
    CHAT_MK_TOOL_END,       /* close the tool body (marker dropped) and parse it */
    CHAT_MK_TOOL_NEXT,      /* inside a body: close and parse it, then open the next one */
    CHAT_MK_HEADER,         /* open a header; the marker's bytes start it */
    CHAT_MK_HEADER_END,     /* close the header; the family's header_done picks what follows */
    CHAT_MK_UNOPENED_CLOSE, /* a reasoning close tag in content: the content so far was reasoning */
} chat_mk_action;

/* A matcher for markers that are patterns rather than fixed text: 1 = match of *mlen bytes,
 * 0 = no match, -1 = p[0..n) is too short to tell (only when !eof: at the end of the answer
 * it must decide). */
typedef int (*chat_mk_match_fn)(const char *p, size_t n, bool eof, size_t *mlen);

typedef struct chat_marker {
    const char *text;       /* fixed marker text, or NULL when match is set */
    chat_mk_match_fn match; /* pattern matcher, or NULL */
    uint8_t action;         /* chat_mk_action */
    uint8_t at_start;       /* only while no visible content and no tool call came before */
} chat_marker;

/* Parses one tool body (opening marker included). Set *as_content when the body turned out not
 * to be a call (Llama's bare JSON that names no function), so it is shown as text. */
typedef ob_status (*chat_body_fn)(chat_call_sink *s, bool *as_content);

/* Decides what a finished Harmony header opens: reasoning, content or a tool body. */
typedef chat_seg (*chat_header_fn)(const char *hdr, size_t len);

typedef struct chat_family_spec {
    chat_family family;
    const char *name;
    const chat_marker *markers[CHAT_SEG_COUNT]; /* per segment kind, NULL-text-and-match ended */
    chat_body_fn parse_body;                    /* NULL for families without tool calls */
    chat_header_fn header_done;                 /* Harmony only */
    const char *think_open, *think_close;       /* for chat_output_prompt_flags; may be NULL */
} chat_family_spec;

/* The table entry for a family, or NULL when out of range. */
const chat_family_spec *chat_family_spec_get(chat_family family);

/* Body parsers (output_calls.c and output_xml.c). */
ob_status chat_body_hermes(chat_call_sink *s, bool *as_content);
ob_status chat_body_llama3(chat_call_sink *s, bool *as_content);
ob_status chat_body_mistral(chat_call_sink *s, bool *as_content);
ob_status chat_body_json_after_tag(chat_call_sink *s, bool *as_content);
ob_status chat_body_deepseek(chat_call_sink *s, bool *as_content);
ob_status chat_body_gemma4(chat_call_sink *s, bool *as_content);
ob_status chat_body_harmony(chat_call_sink *s, bool *as_content);

/* Harmony's header_done: to=functions.x opens a tool body, channel analysis reasoning. */
chat_seg chat_harmony_header(const char *hdr, size_t len);

/* Guesses whether JSON written with no tag (Llama, or a model that forgot its tag) is a call:
 * it names a function and has arguments. When it is not, *as_content is set. */
ob_status chat_body_json_guess(chat_call_sink *s, size_t from, size_t to, bool *as_content);

/* Matches a bare JSON call: '{' or '[{' followed by a key models use for calls ("name",
 * "function", ...), whose whole value, once it has arrived, names a function with arguments.
 * A JSON answer that is not a call stays content; JSON that breaks off or is malformed after
 * such a key counts as a (bad) call, so it is reported rather than shown. */
int chat_match_json_call(const char *p, size_t n, bool eof, size_t *mlen);

/* Qwen3-Coder XML: <function=name><parameter=p>v</parameter>...</function> at body[from..to). */
ob_status chat_xml_function(chat_call_sink *s, size_t from, size_t to);

/* Llama's builtin-tool form `name.call(key="v", n=1)` at body[from..to); returns 0 when the
 * text does not have that shape (nothing recorded), 1 when it recorded a call, -1 on NOMEM. */
int chat_python_call(chat_call_sink *s, size_t from, size_t to);

#endif
