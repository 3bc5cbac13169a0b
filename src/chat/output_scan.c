/*
 * The scanner behind chat_output_parse and chat_output_stream_*: a state machine over segments
 * (content, reasoning, tool body, Harmony header) driven by the family's marker table.
 *
 * Bytes arrive in chunks. At each position the scanner asks every marker of the current
 * segment whether it matches; a marker that could still match once more bytes arrive makes it
 * stop there and keep the rest ("held back"), so a tag split across chunks is never shown as
 * text. Decisions therefore depend only on the bytes, not on where the chunks were cut, and
 * the batch form is simply one feed followed by finish: both forms give the same result.
 *
 * Visible text is trimmed: leading whitespace is skipped and trailing whitespace is held back
 * until something follows it, so the deltas concatenate to exactly the final content.
 */
#include "chat/output_internal.h"

#include "core/alloc.h"
#include "core/err.h"

#include <string.h>

struct chat_output_stream {
    const chat_family_spec *spec;
    unsigned flags;
    chat_seg seg;
    chat_buf pend;   /* input not yet decided (a possible marker prefix at the end) */
    size_t pend_abs; /* offset of pend.p[0] in the whole generated text */
    chat_buf content, reasoning; /* raw, untrimmed */
    chat_buf body;               /* the current tool body or header, opening marker included */
    size_t body_abs;             /* offset of body.p[0] in the whole text */
    size_t content_sent, reasoning_sent; /* raw offsets up to which deltas were handed out */
    size_t calls_sent;
    chat_call_sink sink;
    json_t *tools; /* the request's tools (owned), or NULL */
    bool tool_seen, reclassified, failed, finished;
};

chat_output_stream *chat_output_stream_new(chat_family family, unsigned flags) {
    const chat_family_spec *spec = chat_family_spec_get(family);
    if (!spec) return NULL;
    chat_output_stream *s = ob_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->spec = spec;
    s->flags = flags;
    /* The prompt already opened reasoning: the first bytes are reasoning, if the family has it. */
    s->seg = (flags & CHAT_OUTPUT_THINK_OPEN) && spec->think_open ? CHAT_SEG_REASONING
                                                                   : CHAT_SEG_CONTENT;
    return s;
}

bool chat_output_stream_in_reasoning(const chat_output_stream *s) {
    return s && s->seg == CHAT_SEG_REASONING;
}

void chat_output_stream_free(chat_output_stream *s) {
    if (!s) return;
    chat_buf_free(&s->pend);
    chat_buf_free(&s->content);
    chat_buf_free(&s->reasoning);
    chat_buf_free(&s->body);
    chat_sink_free(&s->sink);
    json_decref(s->tools);
    ob_free(s);
}

ob_status chat_output_stream_set_tools(chat_output_stream *s, const char *tools, size_t len,
                                       ob_err *err) {
    if (!s) return ob_fail(err, OB_ERR_ARG, "chat output stream: NULL argument");
    json_decref(s->tools);
    s->tools = NULL;
    s->sink.tools = NULL;
    if (!tools || len == 0) return OB_OK;
    json_error_t je;
    json_t *t = json_loadb(tools, len, 0, &je);
    if (!json_is_array(t)) {
        json_decref(t);
        return ob_fail(err, OB_ERR_FORMAT, "%s: tools: %s at byte %d", s->spec->name,
                       t ? "not a JSON array" : je.text, je.position);
    }
    s->tools = t;
    s->sink.tools = t;
    return OB_OK;
}

/* ---- the state machine ---- */

static bool blank(const chat_buf *b) {
    return chat_skip_space(b->p, b->len, 0) == b->len;
}

/* Appends segment text to where the current segment collects it. */
static ob_status take_text(chat_output_stream *s, const char *p, size_t n) {
    if (n == 0) return OB_OK;
    switch (s->seg) {
    case CHAT_SEG_CONTENT: return chat_buf_add(&s->content, p, n);
    case CHAT_SEG_REASONING: return chat_buf_add(&s->reasoning, p, n);
    default: return chat_buf_add(&s->body, p, n);
    }
}

/* Parses the finished tool body; in strict mode an unreadable call fails the stream. */
static ob_status end_body(chat_output_stream *s, ob_err *err) {
    ob_status st = OB_OK;
    bool as_content = false;
    size_t before = s->sink.n_bad;
    if (s->spec->parse_body && s->body.len) {
        s->sink.body = s->body.p;
        s->sink.body_len = s->body.len;
        s->sink.base = s->body_abs;
        st = s->spec->parse_body(&s->sink, &as_content);
        s->sink.body = NULL;
        s->sink.body_len = 0;
    }
    if (st) return ob_fail(err, st, "%s: out of memory parsing a tool call", s->spec->name);
    if (as_content) {
        if (chat_buf_add(&s->content, s->body.p, s->body.len))
            return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", s->spec->name);
    } else {
        s->tool_seen = true;
    }
    s->body.len = 0;
    s->seg = CHAT_SEG_CONTENT;
    if ((s->flags & CHAT_OUTPUT_STRICT) && s->sink.n_bad > before) {
        const chat_output_invalid *b = &s->sink.bad[before];
        return ob_fail(err, OB_ERR_FORMAT, "%s: tool call at byte %zu: %s: '%.60s'",
                       s->spec->name, b->offset, b->reason, b->text);
    }
    return OB_OK;
}

/* A reasoning close tag with no opening one: the template opened reasoning in the prompt, so
 * everything shown so far was reasoning. */
static ob_status reclassify(chat_output_stream *s) {
    if (!blank(&s->content)) s->reclassified = true;
    if (chat_buf_add(&s->reasoning, s->content.p ? s->content.p : "", s->content.len))
        return OB_ERR_NOMEM;
    s->content.len = 0;
    s->content_sent = 0;
    return OB_OK;
}

static ob_status apply(chat_output_stream *s, const chat_marker *m, const char *p, size_t n,
                       size_t abs, ob_err *err) {
    ob_status st = OB_OK;
    switch ((chat_mk_action)m->action) {
    case CHAT_MK_DROP: break;
    case CHAT_MK_CONTENT: s->seg = CHAT_SEG_CONTENT; break;
    case CHAT_MK_REASONING: s->seg = CHAT_SEG_REASONING; break;
    case CHAT_MK_TOOL_NEXT:
    case CHAT_MK_TOOL:
    case CHAT_MK_HEADER:
        /* A body's own opening marker inside it: the previous body ends here. */
        if (m->action == CHAT_MK_TOOL_NEXT && (st = end_body(s, err))) return st;
        s->seg = m->action == CHAT_MK_HEADER ? CHAT_SEG_HEADER : CHAT_SEG_TOOL;
        s->body.len = 0;
        s->body_abs = abs;
        st = chat_buf_add(&s->body, p, n);
        break;
    case CHAT_MK_TOOL_END: return end_body(s, err);
    case CHAT_MK_HEADER_END: {
        chat_seg next = s->spec->header_done ? s->spec->header_done(s->body.p, s->body.len)
                                             : CHAT_SEG_CONTENT;
        if (next == CHAT_SEG_TOOL) {
            st = chat_buf_add(&s->body, p, n);
        } else {
            s->body.len = 0;
        }
        s->seg = next;
        break;
    }
    case CHAT_MK_UNOPENED_CLOSE: st = reclassify(s); break;
    }
    return st ? ob_fail(err, st, "%s: out of memory", s->spec->name) : OB_OK;
}

/* Matches one marker at p[0..n): 1 (with *mlen), 0, or -1 when more bytes are needed. */
static int match_one(const chat_marker *m, const char *p, size_t n, bool eof, size_t *mlen) {
    if (m->match) return m->match(p, n, eof, mlen);
    if (p[0] != m->text[0]) return 0;
    size_t k = strlen(m->text);
    if (n < k) return memcmp(p, m->text, n) == 0 ? -1 : 0;
    if (memcmp(p, m->text, k) != 0) return 0;
    *mlen = k;
    return 1;
}

/* Where a tool body opened at p[0] would end: at the first of the tool segment's markers found
 * whole in p[0..n), or n when none has arrived yet. */
static size_t body_end(const chat_output_stream *s, const char *p, size_t n) {
    size_t end = n;
    for (const chat_marker *m = s->spec->markers[CHAT_SEG_TOOL]; m->text || m->match; m++) {
        if (!m->text) continue; /* the tool tables hold fixed text only */
        size_t at = chat_find(p, end, m->text);
        if (at < end) end = at;
    }
    return end;
}

/* Matches marker m at p[0..n). A pattern that opens a tool body (a bare JSON call) decides on
 * the bytes that body would hold, up to the first marker that ends it, and, when that marker is
 * there, decides now as if the answer ended with it: so the batch and streamed forms agree on
 * where the call ends, and an end marker inside the JSON cuts the call short (a bad call is
 * reported) rather than being read past by the decision and then ending the body. */
static int match_at(const chat_output_stream *s, const chat_marker *m, const char *p, size_t n,
                    bool eof, size_t *mlen) {
    if (m->match && m->action == CHAT_MK_TOOL) {
        size_t end = body_end(s, p, n);
        if (end < n) {
            n = end;
            eof = true;
        }
    }
    int r = n ? match_one(m, p, n, eof, mlen) : 0;
    return r < 0 && eof ? 0 : r;
}

/* Runs the machine over the held-back input. Without eof it stops at the first position a
 * marker might start but cannot yet be decided; with eof everything is decided. */
static ob_status scan(chat_output_stream *s, bool eof, ob_err *err) {
    if (!s->pend.p) return OB_OK; /* nothing was ever fed */
    const char *p = s->pend.p;
    size_t n = s->pend.len, i = 0, done = 0;
    bool run_blank = true; /* p[done..i) is whitespace */
    ob_status st;
    while (i < n) {
        const chat_marker *ms = s->spec->markers[s->seg];
        bool start_ok = run_blank && s->seg == CHAT_SEG_CONTENT && !s->tool_seen &&
                        blank(&s->content);
        int best = -1, wait = 0;
        size_t blen = 0, ml = 0;
        for (int k = 0; ms[k].text || ms[k].match; k++) {
            if (ms[k].at_start && !start_ok) continue;
            int r = match_at(s, &ms[k], p + i, n - i, eof, &ml);
            if (r < 0 && !eof) wait = 1;
            if (r > 0 && ml > blen) {
                best = k;
                blen = ml;
            }
        }
        if (wait) break;
        if (best < 0) {
            run_blank = run_blank && chat_is_space(p[i]);
            i++;
            continue;
        }
        if ((st = take_text(s, p + done, i - done)))
            return ob_fail(err, st, "%s: out of memory", s->spec->name);
        if ((st = apply(s, &ms[best], p + i, blen, s->pend_abs + i, err))) return st;
        i += blen;
        done = i;
        run_blank = true;
    }
    size_t upto = eof ? n : i;
    if ((st = take_text(s, p + done, upto - done)))
        return ob_fail(err, st, "%s: out of memory", s->spec->name);
    /* Keep only the undecided tail. */
    memmove(s->pend.p, s->pend.p + upto, n - upto);
    s->pend.len = n - upto;
    s->pend_abs += upto;
    return OB_OK;
}

/* ---- deltas and results ---- */

/* The part of b's trimmed text not handed out yet; advances *sent. Before the end, a UTF-8
 * character cut by the chunking waits for its remaining bytes. */
static void delta_of(const chat_buf *b, bool final, size_t *sent, const char **out, size_t *len) {
    const char *p = b->p ? b->p : "";
    size_t a = chat_skip_space(p, b->len, 0), e = b->len;
    while (e > a && chat_is_space(p[e - 1])) e--;
    if (!final && e == b->len) e = chat_utf8_complete(p, e);
    size_t from = *sent > a ? *sent : a;
    *out = p + from;
    *len = e > from ? e - from : 0;
    if (e > from) *sent = e;
}

static void fill_delta(chat_output_stream *s, bool final, chat_output_delta *d) {
    if (!d) return;
    delta_of(&s->content, final, &s->content_sent, &d->content, &d->content_len);
    delta_of(&s->reasoning, final, &s->reasoning_sent, &d->reasoning, &d->reasoning_len);
    d->calls = s->sink.calls ? s->sink.calls + s->calls_sent : NULL;
    d->n_calls = s->sink.n_calls - s->calls_sent;
    s->calls_sent = s->sink.n_calls;
}

ob_status chat_output_stream_feed(chat_output_stream *s, const char *text, size_t len,
                                  chat_output_delta *delta, ob_err *err) {
    if (delta) memset(delta, 0, sizeof *delta);
    if (!s || (!text && len)) return ob_fail(err, OB_ERR_ARG, "chat output stream: NULL argument");
    if (s->failed || s->finished)
        return ob_fail(err, OB_ERR_ARG, "%s: stream already %s", s->spec->name,
                       s->failed ? "failed" : "finished");
    ob_status st = chat_buf_add(&s->pend, text, len);
    if (st) st = ob_fail(err, st, "%s: out of memory", s->spec->name);
    if (!st) st = scan(s, false, err);
    if (st) {
        s->failed = true;
        return st;
    }
    fill_delta(s, false, delta);
    return OB_OK;
}

/* Copies b's trimmed text into a new string. */
static char *trimmed(const chat_buf *b, size_t *len) {
    const char *p = b->p ? b->p : "";
    size_t a = chat_skip_space(p, b->len, 0), e = b->len;
    while (e > a && chat_is_space(p[e - 1])) e--;
    *len = e - a;
    return ob_strndup(p + a, e - a);
}

ob_status chat_output_stream_finish(chat_output_stream *s, chat_output_delta *delta,
                                    chat_output *out, ob_err *err) {
    if (delta) memset(delta, 0, sizeof *delta);
    if (out) memset(out, 0, sizeof *out);
    if (!s || !out) return ob_fail(err, OB_ERR_ARG, "chat output stream: NULL argument");
    if (s->failed || s->finished)
        return ob_fail(err, OB_ERR_ARG, "%s: stream already %s", s->spec->name,
                       s->failed ? "failed" : "finished");
    s->finished = true;
    ob_status st = scan(s, true, err);
    /* An answer that stopped inside a tool body (no closing tag): parse what is there. A
     * Harmony header cut off before <|message|> is markup with no text: dropped. */
    if (!st && s->seg == CHAT_SEG_TOOL) st = end_body(s, err);
    if (st) {
        s->failed = true;
        return st;
    }
    fill_delta(s, true, delta);
    out->content = trimmed(&s->content, &out->content_len);
    out->reasoning = trimmed(&s->reasoning, &out->reasoning_len);
    if (!out->content || !out->reasoning) {
        chat_output_clear(out);
        return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", s->spec->name);
    }
    /* The calls move to `out`; the delta's pointers into them stay valid until out is cleared. */
    out->calls = s->sink.calls;
    out->n_calls = s->sink.n_calls;
    out->invalid = s->sink.bad;
    out->n_invalid = s->sink.n_bad;
    out->reasoning_reclassified = s->reclassified;
    memset(&s->sink, 0, sizeof s->sink);
    return OB_OK;
}

ob_status chat_output_parse(chat_family family, const char *text, size_t len, unsigned flags,
                            chat_output *out, ob_err *err) {
    return chat_output_parse_tools(family, text, len, flags, NULL, 0, out, err);
}

ob_status chat_output_parse_tools(chat_family family, const char *text, size_t len,
                                  unsigned flags, const char *tools, size_t tools_len,
                                  chat_output *out, ob_err *err) {
    if (!out) return ob_fail(err, OB_ERR_ARG, "chat_output_parse: NULL result");
    memset(out, 0, sizeof *out);
    if (!chat_family_spec_get(family))
        return ob_fail(err, OB_ERR_ARG, "chat output family %d: out of range", (int)family);
    if (!text && len) return ob_fail(err, OB_ERR_ARG, "chat_output_parse: NULL text");
    chat_output_stream *s = chat_output_stream_new(family, flags);
    if (!s) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", chat_family_name(family));
    ob_status st = chat_output_stream_set_tools(s, tools, tools_len, err);
    if (!st) st = chat_output_stream_feed(s, text ? text : "", len, NULL, err);
    if (!st) st = chat_output_stream_finish(s, NULL, out, err);
    chat_output_stream_free(s);
    return st;
}

void chat_output_clear(chat_output *out) {
    if (!out) return;
    chat_call_sink sink = {.calls = out->calls, .n_calls = out->n_calls, .bad = out->invalid,
                           .n_bad = out->n_invalid};
    chat_sink_free(&sink);
    ob_free(out->content);
    ob_free(out->reasoning);
    memset(out, 0, sizeof *out);
}
