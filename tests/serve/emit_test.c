/*
 * serve_emit.c: a task's text, reasoning and tool calls on the wire, over a serve_stream read
 * back in memory. OpenAI: role in the first chunk only, tool calls as indexed deltas with
 * string arguments, finish chunk, usage chunk, [DONE]. Ollama: NDJSON lines with thinking and
 * tool calls whose arguments are objects, then the final line with statistics. Whole bodies
 * carry the accumulated text, reasoning, calls and usage. Anthropic: the named-event grammar
 * (message_start, ping, a block per kind in order written, deltas, block stops, message_delta
 * with the stop reason, message_stop), checked event by event against a golden transcript.
 */
#include "core/alloc.h"
#include "serve/serve_task.h"

#include "test.h"

static serve_gen_req *REQ;

static serve_task *task(serve_dialect d, serve_kind k, bool stream, bool usage) {
    serve_task *t = ob_calloc(1, sizeof *t);
    REQ = serve_gen_req_new(d, k);
    REQ->include_usage = usage;
    t->req = REQ;
    t->n_seqs = 1;
    t->seqs = ob_calloc(1, sizeof *t->seqs);
    t->seqs[0].task = t;
    t->model = "tiny";
    strcpy(t->id, "chatcmpl-1");
    t->prompt_tokens = 7;
    t->t_start_ns = serve_now_ns();
    if (stream) t->stream = serve_stream_new();
    return t;
}

static void task_drop(serve_task *t) {
    serve_buf_clear(&t->seqs[0].text);
    serve_buf_clear(&t->seqs[0].reasoning);
    json_decref(t->seqs[0].calls);
    json_decref(t->seqs[0].lp);
    json_decref(t->seqs[0].items);
    ob_free(t->seqs);
    serve_stream_unref(t->stream);
    serve_gen_req_free(t->req);
    ob_free(t);
}

/* Everything written to the stream so far. */
static char *drain(serve_task *t) {
    static char buf[16384];
    size_t got = 0;
    for (;;) {
        ssize_t n = serve_stream_read(t->stream, buf + got, sizeof buf - 1 - got, 10);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return buf;
}

static ob_tool_call CALL = {NULL, "get_weather", "{\"city\":\"Oslo\"}"};

TEST(openai_chat_stream) {
    serve_task *t = task(SERVE_DIALECT_OPENAI, SERVE_KIND_CHAT, true, true);
    serve_seq *q = &t->seqs[0];
    serve_emit_delta(t, q, "Hel", 3, NULL, 0, NULL, 0);
    serve_emit_delta(t, q, "lo", 2, "hmm", 3, NULL, 0);
    serve_emit_delta(t, q, NULL, 0, NULL, 0, &CALL, 1);
    serve_emit_delta(t, q, "", 0, NULL, 0, NULL, 0); /* nothing: no chunk */
    q->n_gen = 5;
    q->finish = "tool_calls";
    serve_emit_finish(t, q);
    serve_emit_end(t);
    char *out = drain(t);
    char *lines[8];
    int n = 0;
    for (char *p = strtok(out, "\n"); p && n < 8; p = strtok(NULL, "\n")) lines[n++] = p;
    CHECK_EQ_INT(n, 6);
    json_t *c0 = json_loads(lines[0] + 6, 0, NULL), *c1 = json_loads(lines[1] + 6, 0, NULL);
    json_t *c2 = json_loads(lines[2] + 6, 0, NULL), *c3 = json_loads(lines[3] + 6, 0, NULL);
    json_t *c4 = json_loads(lines[4] + 6, 0, NULL);
    json_t *d0 = json_object_get(json_array_get(json_object_get(c0, "choices"), 0), "delta");
    json_t *d1 = json_object_get(json_array_get(json_object_get(c1, "choices"), 0), "delta");
    json_t *d2 = json_object_get(json_array_get(json_object_get(c2, "choices"), 0), "delta");
    CHECK_EQ_STR(json_string_value(json_object_get(d0, "role")), "assistant");
    CHECK(!json_object_get(d1, "role"));
    CHECK_EQ_STR(json_string_value(json_object_get(d1, "reasoning_content")), "hmm");
    json_t *call = json_array_get(json_object_get(d2, "tool_calls"), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(call, "index")), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(call, "id")), "call_0");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(call, "function"),
                                                   "arguments")), "{\"city\":\"Oslo\"}");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(c3, "choices"),
                                                                  0), "finish_reason")),
                 "tool_calls");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(c4, "usage"),
                                                    "completion_tokens")), 5);
    CHECK_EQ_STR(lines[5], "data: [DONE]");
    json_decref(c0), json_decref(c1), json_decref(c2), json_decref(c3), json_decref(c4);
    task_drop(t);
}

TEST(ollama_chat_stream) {
    serve_task *t = task(SERVE_DIALECT_OLLAMA, SERVE_KIND_CHAT, true, false);
    serve_seq *q = &t->seqs[0];
    serve_emit_delta(t, q, "Hi", 2, "think", 5, NULL, 0);
    serve_emit_delta(t, q, NULL, 0, NULL, 0, &CALL, 1);
    q->n_gen = 3;
    q->finish = "stop";
    serve_emit_finish(t, q);
    serve_emit_end(t);
    char *out = drain(t);
    char *lines[4];
    int n = 0;
    for (char *p = strtok(out, "\n"); p && n < 4; p = strtok(NULL, "\n")) lines[n++] = p;
    CHECK_EQ_INT(n, 3);
    json_t *l0 = json_loads(lines[0], 0, NULL), *l1 = json_loads(lines[1], 0, NULL);
    json_t *l2 = json_loads(lines[2], 0, NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(l0, "message"), "thinking")),
                 "think");
    json_t *args = json_object_get(json_object_get(json_array_get(json_object_get(
        json_object_get(l1, "message"), "tool_calls"), 0), "function"), "arguments");
    CHECK(json_is_object(args));
    CHECK_EQ_STR(json_string_value(json_object_get(args, "city")), "Oslo");
    CHECK(json_is_true(json_object_get(l2, "done")));
    CHECK_EQ_INT(json_integer_value(json_object_get(l2, "eval_count")), 3);
    CHECK_EQ_INT(json_integer_value(json_object_get(l2, "prompt_eval_count")), 7);
    CHECK(!strstr(out, "[DONE]"));
    json_decref(l0), json_decref(l1), json_decref(l2);
    task_drop(t);
}

TEST(whole_bodies) {
    serve_task *t = task(SERVE_DIALECT_OPENAI, SERVE_KIND_CHAT, false, false);
    serve_seq *q = &t->seqs[0];
    serve_emit_delta(t, q, "Hel", 3, "r1", 2, NULL, 0);
    serve_emit_delta(t, q, "lo", 2, NULL, 0, &CALL, 1);
    q->n_gen = 2;
    q->finish = "tool_calls";
    size_t len;
    char *body = serve_emit_body(t, &len);
    json_t *v = json_loadb(body, len, 0, NULL);
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    CHECK_EQ_STR(json_string_value(json_object_get(msg, "content")), "Hello");
    CHECK_EQ_STR(json_string_value(json_object_get(msg, "reasoning_content")), "r1");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(json_array_get(
                     json_object_get(msg, "tool_calls"), 0), "function"), "name")),
                 "get_weather");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(v, "usage"), "total_tokens")),
                 9);
    json_decref(v);
    ob_free(body);
    task_drop(t);
    t = task(SERVE_DIALECT_OPENAI, SERVE_KIND_CHAT, false, false);
    serve_emit_delta(t, &t->seqs[0], NULL, 0, NULL, 0, &CALL, 1);
    t->seqs[0].finish = "tool_calls";
    body = serve_emit_body(t, &len);
    v = json_loadb(body, len, 0, NULL);
    msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    CHECK(json_is_null(json_object_get(msg, "content"))); /* calls only: content null */
    json_decref(v);
    ob_free(body);
    task_drop(t);
    t = task(SERVE_DIALECT_OLLAMA, SERVE_KIND_COMPLETION, false, false);
    serve_emit_delta(t, &t->seqs[0], "once", 4, NULL, 0, NULL, 0);
    t->seqs[0].finish = "length";
    body = serve_emit_body(t, &len);
    v = json_loadb(body, len, 0, NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "response")), "once");
    CHECK_EQ_STR(json_string_value(json_object_get(v, "done_reason")), "length");
    json_decref(v);
    ob_free(body);
    task_drop(t);
}

TEST(error_mid_stream) {
    serve_task *t = task(SERVE_DIALECT_OPENAI, SERVE_KIND_COMPLETION, true, false);
    serve_error e;
    serve_error_set(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
    serve_emit_error(t, &e);
    char *out = drain(t);
    CHECK(strstr(out, "data: {\"error\":{\"message\":\"the server is shutting down\""));
    CHECK(strstr(out, "data: [DONE]\n\n"));
    CHECK_EQ_INT(serve_stream_read(t->stream, out, 10, 10), -1); /* closed */
    task_drop(t);
}

/* A read that times out before the producer wrote anything returns 0 bytes (the stream's
 * buffer is still NULL then: under UBSan a memcpy from it, even of 0 bytes, aborted the
 * server when a slow first token outlasted the read timeout). */
TEST(read_times_out_on_an_empty_stream) {
    serve_stream *s = serve_stream_new();
    char buf[16];
    CHECK_EQ_INT(serve_stream_read(s, buf, sizeof buf, 1), 0);
    CHECK_EQ_INT(serve_stream_write(s, "ab", 2), 0);
    CHECK_EQ_INT(serve_stream_read(s, buf, sizeof buf, 1), 2);
    CHECK_EQ_INT(serve_stream_read(s, buf, sizeof buf, 1), 0);
    serve_stream_close(s);
    CHECK_EQ_INT(serve_stream_read(s, buf, sizeof buf, 1), -1);
    serve_stream_unref(s);
}

/* The stream as "event|data" lines, one per event. */
static int events(char *out, char **ev, char **data, int cap) {
    int n = 0;
    for (char *p = out; *p && n < cap;) {
        char *end = strstr(p, "\n\n");
        if (!end) break;
        *end = '\0';
        if (strncmp(p, "event: ", 7)) return -1;
        char *nl = strchr(p, '\n');
        if (!nl || strncmp(nl + 1, "data: ", 6)) return -1;
        *nl = '\0';
        ev[n] = p + 7;
        data[n++] = nl + 7;
        p = end + 2;
    }
    return n;
}

/* The answer both named-event grammars are checked on: reasoning, text in two pieces, a tool
 * call, finished by the call. */
static void emit_sample(serve_task *t, serve_seq *q) {
    serve_emit_delta(t, q, NULL, 0, "plan", 4, NULL, 0);
    serve_emit_delta(t, q, "Hel", 3, NULL, 0, NULL, 0);
    serve_emit_delta(t, q, "lo", 2, NULL, 0, NULL, 0);
    serve_emit_delta(t, q, NULL, 0, NULL, 0, &CALL, 1);
    q->n_gen = 9;
    q->finish = "tool_calls";
    serve_emit_finish(t, q);
    serve_emit_end(t);
}

TEST(anthropic_stream_golden) {
    serve_task *t = task(SERVE_DIALECT_ANTHROPIC, SERVE_KIND_CHAT, true, false);
    serve_seq *q = &t->seqs[0];
    q->block = -1;
    t->cached_tokens = 2;
    emit_sample(t, q);
    char *ev[32], *data[32];
    int n = events(drain(t), ev, data, 32);
    static const char *const GOLDEN[][2] = {
        {"message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
                          "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"tiny\","
                          "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                          "\"usage\":{\"input_tokens\":5,\"output_tokens\":0,"
                          "\"cache_read_input_tokens\":2,\"cache_creation_input_tokens\":0}}}"},
        {"ping", "{\"type\":\"ping\"}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
                                "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\","
                                "\"signature\":\"\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                "{\"type\":\"thinking_delta\",\"thinking\":\"plan\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":1,"
                                "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                                "{\"type\":\"text_delta\",\"text\":\"Hel\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                                "{\"type\":\"text_delta\",\"text\":\"lo\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":2,"
                                "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1_0\","
                                "\"name\":\"get_weather\",\"input\":{}}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
                                "{\"type\":\"input_json_delta\","
                                "\"partial_json\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}"},
        {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                          "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,"
                          "\"output_tokens\":9,\"cache_read_input_tokens\":2,"
                          "\"cache_creation_input_tokens\":0}}"},
        {"message_stop", "{\"type\":\"message_stop\"}"},
    };
    const int want = (int)(sizeof GOLDEN / sizeof GOLDEN[0]);
    CHECK_MSG(n == want, "%d events, expected %d", n, want);
    for (int i = 0; i < n && i < want; i++) {
        CHECK_MSG(!strcmp(ev[i], GOLDEN[i][0]), "event %d: %s, expected %s", i, ev[i],
                  GOLDEN[i][0]);
        json_t *got = json_loads(data[i], 0, NULL), *exp = json_loads(GOLDEN[i][1], 0, NULL);
        CHECK_MSG(got && exp && json_equal(got, exp), "event %d (%s): %s", i, ev[i], data[i]);
        json_decref(got);
        json_decref(exp);
    }
    task_drop(t);
}

TEST(anthropic_body_and_error) {
    serve_task *t = task(SERVE_DIALECT_ANTHROPIC, SERVE_KIND_CHAT, false, false);
    serve_seq *q = &t->seqs[0];
    serve_emit_delta(t, q, "It is ", 6, "look", 4, NULL, 0);
    serve_emit_delta(t, q, "cold.", 5, NULL, 0, &CALL, 1);
    q->n_gen = 4;
    q->finish = "length";
    size_t len = 0;
    char *body = serve_emit_body(t, &len);
    json_t *v = body ? json_loads(body, 0, NULL) : NULL;
    CHECK_MSG(v != NULL, "%s", body ? body : "(null)");
    json_t *content = json_object_get(v, "content");
    CHECK(json_array_size(content) == 3);
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(content, 0), "thinking")),
                  "look"));
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(content, 1), "text")),
                  "It is cold."));
    json_t *tool = json_array_get(content, 2);
    CHECK(!strcmp(json_string_value(json_object_get(tool, "type")), "tool_use"));
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(tool, "input"), "city")),
                  "Oslo"));
    CHECK(!strcmp(json_string_value(json_object_get(v, "stop_reason")), "max_tokens"));
    CHECK(json_integer_value(json_object_get(json_object_get(v, "usage"), "output_tokens")) == 4);
    json_decref(v);
    ob_free(body);
    task_drop(t);
    /* An error mid-stream: an "error" event in Anthropic's shape, then the stream ends. */
    t = task(SERVE_DIALECT_ANTHROPIC, SERVE_KIND_CHAT, true, false);
    t->seqs[0].block = -1;
    serve_error e;
    serve_error_set(&e, 503, "server_error", "overloaded", NULL, "too busy");
    serve_emit_error(t, &e);
    char *out = drain(t);
    CHECK_MSG(!strcmp(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                           "\"overloaded_error\",\"message\":\"too busy\"}}\n\n"),
              "%s", out);
    task_drop(t);
}

/* The Responses stream: reasoning item, message item, function_call item, each with its events
 * in order, sequence numbers from 0, output indexes 0, 1, 2, and the final response holding
 * the three items. */
TEST(responses_stream_golden) {
    serve_task *t = task(SERVE_DIALECT_RESPONSES, SERVE_KIND_CHAT, true, false);
    serve_seq *q = &t->seqs[0];
    q->block = -1;
    emit_sample(t, q);
    char *ev[48], *data[48];
    int n = events(drain(t), ev, data, 48);
    static const struct {
        const char *type;
        int output_index; /* -1: none */
        const char *check; /* a member that must be in the data, or NULL */
    } GOLDEN[] = {
        {"response.created", -1, "\"status\":\"in_progress\""},
        {"response.in_progress", -1, NULL},
        {"response.output_item.added", 0, "\"type\":\"reasoning\",\"id\":\"rs_1_0\""},
        {"response.reasoning_text.delta", 0, "\"delta\":\"plan\""},
        {"response.reasoning_text.done", 0, "\"text\":\"plan\""},
        {"response.output_item.done", 0, "\"reasoning_text\""},
        {"response.output_item.added", 1, "\"id\":\"msg_1_1\""},
        {"response.content_part.added", 1, "\"item_id\":\"msg_1_1\""},
        {"response.output_text.delta", 1, "\"delta\":\"Hel\""},
        {"response.output_text.delta", 1, "\"delta\":\"lo\""},
        {"response.output_text.done", 1, "\"text\":\"Hello\""},
        {"response.content_part.done", 1, "\"text\":\"Hello\""},
        {"response.output_item.done", 1, "\"status\":\"completed\""},
        {"response.output_item.added", 2, "\"call_id\":\"call_1_0\""},
        {"response.function_call_arguments.delta", 2, "\"item_id\":\"fc_1_2\""},
        {"response.function_call_arguments.done", 2, "\"name\":\"get_weather\""},
        {"response.output_item.done", 2, "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\""},
        {"response.completed", -1, "\"output_tokens\":9"},
    };
    const int want = (int)(sizeof GOLDEN / sizeof GOLDEN[0]);
    CHECK_MSG(n == want, "%d events, expected %d", n, want);
    for (int i = 0; i < n && i < want; i++) {
        json_t *v = json_loads(data[i], 0, NULL);
        CHECK_MSG(v && !strcmp(ev[i], GOLDEN[i].type), "event %d: %s, expected %s", i, ev[i],
                  GOLDEN[i].type);
        CHECK(!strcmp(json_string_value(json_object_get(v, "type")), ev[i]));
        CHECK_MSG(json_integer_value(json_object_get(v, "sequence_number")) == i, "event %d", i);
        json_t *oi = json_object_get(v, "output_index");
        CHECK_MSG(GOLDEN[i].output_index < 0 ? !oi : json_integer_value(oi) == GOLDEN[i].output_index,
                  "event %d (%s): output_index", i, ev[i]);
        CHECK_MSG(!GOLDEN[i].check || strstr(data[i], GOLDEN[i].check), "event %d (%s): %s", i,
                  ev[i], data[i]);
        if (i == want - 1) {
            json_t *out = json_object_get(json_object_get(v, "response"), "output");
            CHECK(json_array_size(out) == 3);
            CHECK(!strcmp(json_string_value(json_object_get(json_array_get(out, 2), "type")),
                          "function_call"));
        }
        json_decref(v);
    }
    task_drop(t);
}

int main(void) {
    RUN(openai_chat_stream);
    RUN(ollama_chat_stream);
    RUN(whole_bodies);
    RUN(error_mid_stream);
    RUN(read_times_out_on_an_empty_stream);
    RUN(anthropic_stream_golden);
    RUN(anthropic_body_and_error);
    RUN(responses_stream_golden);
    return t_summary();
}
