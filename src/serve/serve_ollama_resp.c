/*
 * Ollama response objects (serve_response.h): the lines of /api/chat and /api/generate. A
 * streamed answer is lines with "done": false, then one with "done": true carrying the reason
 * and the statistics; a non-streamed one is that final object with the whole text.
 */
#include "serve/serve_response.h"

#include <stdio.h>
#include <time.h>

void serve_rfc3339(int64_t unix_ns, char out[40]) {
    time_t secs = (time_t)(unix_ns / 1000000000);
    long ns = (long)(unix_ns % 1000000000);
    if (ns < 0) {
        ns += 1000000000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* strftime writes 19 bytes for years 0..9999; gmtime_r of an int64 in ns stays there. */
    size_t n = strftime(out, 28, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%09ldZ", ns);
}

static json_t *head(const char *model, int64_t now_ns) {
    char at[40];
    serve_rfc3339(now_ns, at);
    return json_pack("{s:s, s:s}", "model", model, "created_at", at);
}

/* done, done_reason and the statistics, or "done": false. */
static json_t *tail(json_t *obj, const serve_choice *c, const serve_ollama_stats *st) {
    if (!obj) return NULL;
    int bad = json_object_set_new(obj, "done", json_boolean(st != NULL));
    if (st) {
        json_t *s = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "done_reason",
                              c->finish_reason ? c->finish_reason : "stop", "total_duration",
                              (json_int_t)st->total_ns, "load_duration", (json_int_t)st->load_ns,
                              "prompt_eval_count", (json_int_t)st->prompt_eval_count,
                              "prompt_eval_duration", (json_int_t)st->prompt_eval_ns, "eval_count",
                              (json_int_t)st->eval_count, "eval_duration", (json_int_t)st->eval_ns);
        bad |= !s || json_object_update(obj, s);
        json_decref(s);
    }
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *serve_ollama_chat(const char *model, int64_t now_ns, const serve_choice *c,
                          const serve_ollama_stats *final) {
    json_t *obj = head(model, now_ns);
    json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                            json_stringn(c->text ? c->text : "", c->text ? c->text_len : 0));
    int bad = !obj || !msg;
    if (!bad && c->reasoning)
        bad |= json_object_set_new(msg, "thinking", json_stringn(c->reasoning, c->reasoning_len));
    if (!bad && c->tool_calls && json_array_size(c->tool_calls))
        bad |= json_object_set(msg, "tool_calls", c->tool_calls);
    if (bad || json_object_set_new(obj, "message", msg)) {
        json_decref(obj);
        return NULL;
    }
    return tail(obj, c, final);
}

json_t *serve_ollama_generate(const char *model, int64_t now_ns, const serve_choice *c,
                              const serve_ollama_stats *final) {
    json_t *obj = head(model, now_ns);
    int bad = !obj ||
              json_object_set_new(obj, "response",
                                  json_stringn(c->text ? c->text : "", c->text ? c->text_len : 0));
    if (!bad && c->reasoning)
        bad |= json_object_set_new(obj, "thinking", json_stringn(c->reasoning, c->reasoning_len));
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return tail(obj, c, final);
}
