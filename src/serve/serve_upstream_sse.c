/*
 * An upstream's streamed answer read back into the server's terms (serve_upstream.h).
 *
 * Server-Sent Events framing: lines split anywhere across reads, CRLF or LF, `event:` names,
 * `data:` lines joined by '\n', comments, an empty line ending the event. Then per dialect:
 *  - OpenAI chunks: choices[0].delta.{content, reasoning_content, tool_calls[] (pieces by
 *    index: id, function.name, function.arguments)}, finish_reason, usage; `[DONE]`;
 *  - Anthropic events: message_start (input tokens), content_block_start (text, thinking,
 *    tool_use with id and name), content_block_delta (text_delta, thinking_delta,
 *    input_json_delta), content_block_stop (a tool call is complete), message_delta
 *    (stop_reason, output tokens), message_stop, error.
 * Everything read is untrusted: missing fields and wrong types are skipped, never fatal.
 */
#include "serve/serve_upstream.h"

#include "core/alloc.h"
#include "serve/serve_buf.h"

#include <string.h>

/* A tool call being assembled from pieces. */
typedef struct pending_call {
    serve_buf id, name, args;
    bool open;
} pending_call;

#define MAX_PENDING_CALLS 64

struct serve_upstream_reader {
    serve_upstream_dialect dialect;
    serve_upstream_sink sink;
    serve_buf line;  /* the current line, without its end */
    serve_buf event; /* `event:` of the current event */
    serve_buf data;  /* `data:` lines of the current event */
    bool has_data;
    bool failed, finished;
    pending_call calls[MAX_PENDING_CALLS];
    int anthropic_block_call; /* Anthropic: the pending call of the open tool_use block, or -1 */
    int64_t prompt_tokens;    /* Anthropic: from message_start, reported with the output count */
    int64_t cached_tokens;
};

serve_upstream_reader *serve_upstream_reader_new(serve_upstream_dialect d,
                                                 const serve_upstream_sink *sink) {
    serve_upstream_reader *r = ob_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->dialect = d;
    r->sink = *sink;
    r->anthropic_block_call = -1;
    return r;
}

static void call_clear(pending_call *c) {
    serve_buf_clear(&c->id);
    serve_buf_clear(&c->name);
    serve_buf_clear(&c->args);
    c->open = false;
}

void serve_upstream_reader_free(serve_upstream_reader *r) {
    if (!r) return;
    serve_buf_clear(&r->line);
    serve_buf_clear(&r->event);
    serve_buf_clear(&r->data);
    for (int i = 0; i < MAX_PENDING_CALLS; i++) call_clear(&r->calls[i]);
    ob_free(r);
}

/* Empties b, keeping its memory. */
static void reset(serve_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

/* Appends; -1 once memory ran out (serve_buf remembers it). */
static int put(serve_buf *b, const char *s, size_t n) {
    serve_buf_append(b, s, n);
    return b->failed ? -1 : 0;
}

static const char *buf_str(const serve_buf *b) {
    return b->len ? b->data : "";
}

/* Hands a complete call to the sink and forgets it. */
static void call_emit(serve_upstream_reader *r, pending_call *c) {
    if (!c->open) return;
    if (c->name.len) {
        const char *args = c->args.len ? c->args.data : "{}";
        /* Arguments that are not a JSON object are passed on as an empty object: a client
         * expects to parse them. */
        json_t *v = json_loadb(args, c->args.len ? c->args.len : 2, 0, NULL);
        char *compact = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        ob_tool_call call = {.id = c->id.len ? c->id.data : NULL,
                             .name = c->name.data,
                             .arguments = compact ? compact : "{}"};
        if (r->sink.call) r->sink.call(r->sink.user, &call);
        free(compact);
    }
    call_clear(c);
}

static void calls_flush(serve_upstream_reader *r) {
    for (int i = 0; i < MAX_PENDING_CALLS; i++) call_emit(r, &r->calls[i]);
}

static void text(serve_upstream_reader *r, const char *c, size_t cl, const char *rs, size_t rl) {
    if ((cl || rl) && r->sink.text) r->sink.text(r->sink.user, c, cl, rs, rl);
}

static void finish(serve_upstream_reader *r, const char *reason) {
    calls_flush(r);
    if (!r->finished && r->sink.finish) r->sink.finish(r->sink.user, reason);
    r->finished = true;
}

static int append_str(serve_buf *b, const json_t *v) {
    const char *s = json_string_value(v);
    return s ? put(b, s, json_string_length(v)) : 0;
}

/* ---- OpenAI ---- */

static const char *openai_reason(const char *s) {
    if (!strcmp(s, "length")) return "length";
    if (!strcmp(s, "tool_calls") || !strcmp(s, "function_call")) return "tool_calls";
    return "stop";
}

static void openai_tool_pieces(serve_upstream_reader *r, const json_t *calls) {
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        json_int_t idx = json_integer_value(json_object_get(c, "index"));
        if (!json_is_integer(json_object_get(c, "index"))) idx = (json_int_t)i;
        if (idx < 0 || idx >= MAX_PENDING_CALLS) continue;
        pending_call *p = &r->calls[idx];
        json_t *fn = json_object_get(c, "function");
        /* A new id at an index that holds a finished call starts the next call. */
        json_t *id = json_object_get(c, "id");
        if (p->open && json_is_string(id) && p->id.len &&
            strcmp(p->id.data, json_string_value(id)))
            call_emit(r, p);
        p->open = true;
        if (json_is_string(id) && !p->id.len) append_str(&p->id, id);
        append_str(&p->name, json_object_get(fn, "name"));
        append_str(&p->args, json_object_get(fn, "arguments"));
    }
}

static void openai_event(serve_upstream_reader *r, const char *data, size_t len) {
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        finish(r, "stop");
        return;
    }
    json_t *v = json_loadb(data, len, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return;
    }
    json_t *err = json_object_get(v, "error");
    if (err) {
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (!msg) msg = json_string_value(err);
        if (r->sink.error) r->sink.error(r->sink.user, msg ? msg : "the upstream sent an error");
        json_decref(v);
        return;
    }
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    json_t *delta = json_object_get(ch, "delta");
    if (!delta) delta = ch; /* text_completion chunks carry "text" on the choice */
    json_t *content = json_object_get(delta, "content");
    if (!json_is_string(content)) content = json_object_get(delta, "text");
    json_t *reasoning = json_object_get(delta, "reasoning_content");
    if (!json_is_string(reasoning)) reasoning = json_object_get(delta, "reasoning");
    text(r, json_string_value(content), json_is_string(content) ? json_string_length(content) : 0,
         json_string_value(reasoning), json_is_string(reasoning) ? json_string_length(reasoning) : 0);
    openai_tool_pieces(r, json_object_get(delta, "tool_calls"));
    const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
    if (fr) finish(r, openai_reason(fr));
    json_t *u = json_object_get(v, "usage");
    if (json_is_object(u) && r->sink.usage) {
        json_int_t cached = json_integer_value(
            json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
        r->sink.usage(r->sink.user, json_integer_value(json_object_get(u, "prompt_tokens")),
                      json_integer_value(json_object_get(u, "completion_tokens")), cached);
    }
    json_decref(v);
}

/* ---- Anthropic ---- */

static const char *anthropic_reason(const char *s) {
    if (!strcmp(s, "max_tokens")) return "length";
    if (!strcmp(s, "tool_use")) return "tool_calls";
    return "stop";
}

static void anthropic_block_start(serve_upstream_reader *r, const json_t *v) {
    json_t *b = json_object_get(v, "content_block");
    const char *type = json_string_value(json_object_get(b, "type"));
    if (!type || strcmp(type, "tool_use")) {
        r->anthropic_block_call = -1;
        /* A block may start with text already in it. */
        json_t *t = json_object_get(b, "text"), *th = json_object_get(b, "thinking");
        text(r, json_string_value(t), json_is_string(t) ? json_string_length(t) : 0,
             json_string_value(th), json_is_string(th) ? json_string_length(th) : 0);
        return;
    }
    int slot = 0;
    while (slot < MAX_PENDING_CALLS && r->calls[slot].open) slot++;
    if (slot == MAX_PENDING_CALLS) {
        r->anthropic_block_call = -1;
        return;
    }
    pending_call *p = &r->calls[slot];
    p->open = true;
    append_str(&p->id, json_object_get(b, "id"));
    append_str(&p->name, json_object_get(b, "name"));
    json_t *input = json_object_get(b, "input");
    if (json_is_object(input) && json_object_size(input)) {
        char *s = json_dumps(input, JSON_COMPACT);
        if (s) put(&p->args, s, strlen(s));
        free(s);
    }
    r->anthropic_block_call = slot;
}

static void anthropic_event(serve_upstream_reader *r, const char *data, size_t len) {
    json_t *v = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!type) type = buf_str(&r->event);
    if (!strcmp(type, "message_start")) {
        json_t *u = json_object_get(json_object_get(v, "message"), "usage");
        r->prompt_tokens = json_integer_value(json_object_get(u, "input_tokens")) +
                           json_integer_value(json_object_get(u, "cache_read_input_tokens"));
        r->cached_tokens = json_integer_value(json_object_get(u, "cache_read_input_tokens"));
    } else if (!strcmp(type, "content_block_start")) {
        anthropic_block_start(r, v);
    } else if (!strcmp(type, "content_block_delta")) {
        json_t *d = json_object_get(v, "delta");
        const char *dt = json_string_value(json_object_get(d, "type"));
        json_t *t = json_object_get(d, "text"), *th = json_object_get(d, "thinking");
        if (dt && !strcmp(dt, "input_json_delta") && r->anthropic_block_call >= 0)
            append_str(&r->calls[r->anthropic_block_call].args, json_object_get(d, "partial_json"));
        else
            text(r, json_string_value(t), json_is_string(t) ? json_string_length(t) : 0,
                 json_string_value(th), json_is_string(th) ? json_string_length(th) : 0);
    } else if (!strcmp(type, "content_block_stop")) {
        if (r->anthropic_block_call >= 0) call_emit(r, &r->calls[r->anthropic_block_call]);
        r->anthropic_block_call = -1;
    } else if (!strcmp(type, "message_delta")) {
        const char *sr = json_string_value(json_object_get(json_object_get(v, "delta"), "stop_reason"));
        json_t *u = json_object_get(v, "usage");
        if (json_is_object(u) && r->sink.usage)
            r->sink.usage(r->sink.user, r->prompt_tokens,
                          json_integer_value(json_object_get(u, "output_tokens")), r->cached_tokens);
        if (sr) finish(r, anthropic_reason(sr));
    } else if (!strcmp(type, "message_stop")) {
        finish(r, "stop");
    } else if (!strcmp(type, "error")) {
        const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
        if (r->sink.error) r->sink.error(r->sink.user, msg ? msg : "the upstream sent an error");
    }
    json_decref(v);
}

/* ---- framing ---- */

static void dispatch(serve_upstream_reader *r) {
    if (r->has_data) {
        const char *d = r->data.len ? r->data.data : "";
        if (r->dialect == SERVE_UPSTREAM_ANTHROPIC) anthropic_event(r, d, r->data.len);
        else openai_event(r, d, r->data.len);
    }
    reset(&r->event);
    reset(&r->data);
    r->has_data = false;
}

/* One line of the stream (without its end). */
static int line(serve_upstream_reader *r, const char *s, size_t n) {
    if (n == 0) {
        dispatch(r);
        return 0;
    }
    if (s[0] == ':') return 0; /* a comment (keep-alive) */
    const char *colon = memchr(s, ':', n);
    size_t klen = colon ? (size_t)(colon - s) : n;
    const char *val = colon ? colon + 1 : s + n;
    size_t vlen = colon ? n - klen - 1 : 0;
    if (vlen && val[0] == ' ') val++, vlen--;
    if (klen == 5 && !memcmp(s, "event", 5)) {
        reset(&r->event);
        return put(&r->event, val, vlen);
    }
    if (klen == 4 && !memcmp(s, "data", 4)) {
        if (r->has_data && put(&r->data, "\n", 1)) return -1;
        r->has_data = true;
        if (r->data.len + vlen > SERVE_UPSTREAM_MAX_EVENT) return -1;
        return put(&r->data, val, vlen);
    }
    return 0; /* id:, retry: and unknown fields */
}

int serve_upstream_reader_feed(serve_upstream_reader *r, const char *data, size_t len) {
    if (r->failed) return -1;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
        if (r->line.len + take > SERVE_UPSTREAM_MAX_EVENT ||
            put(&r->line, data + i, take)) {
            r->failed = true;
            return -1;
        }
        i += take;
        if (!nl) break;
        i++; /* the '\n' */
        size_t n = r->line.len;
        if (n && r->line.data[n - 1] == '\r') n--;
        int rc = line(r, r->line.len ? r->line.data : "", n);
        reset(&r->line);
        if (rc) {
            r->failed = true;
            return -1;
        }
    }
    return 0;
}

bool serve_upstream_reader_finish(serve_upstream_reader *r) {
    if (!r->failed) {
        if (r->line.len) {
            size_t n = r->line.len;
            if (r->line.data[n - 1] == '\r') n--;
            line(r, r->line.data, n);
            reset(&r->line);
        }
        dispatch(r);
    }
    calls_flush(r);
    return r->finished;
}
