/*
 * Response writers (serve_openai_resp.c, serve_ollama_resp.c, serve_models.c, serve_error.c):
 * the objects the official clients parse, field by field, and their framing (SSE, NDJSON).
 */
#include "core/alloc.h"
#include "serve/serve_error.h"
#include "serve/serve_model.h"
#include "serve/serve_response.h"

#include "test.h"

static const serve_resp_meta META = {"chatcmpl-1", 1700000000, "tiny"};

static const char *sget(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static long long iget(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

TEST(chat_completion_object) {
    serve_choice c[2] = {{.index = 0, .text = "Hi", .text_len = 2, .finish_reason = "stop"},
                         {.index = 1, .text = "Yo!", .text_len = 2, .reasoning = "r",
                          .reasoning_len = 1, .finish_reason = "length"}};
    serve_usage u = {10, 4, 6, NULL};
    json_t *v = serve_oai_chat_completion(&META, c, 2, &u);
    CHECK(v);
    CHECK_EQ_STR(sget(v, "object"), "chat.completion");
    CHECK_EQ_STR(sget(v, "id"), "chatcmpl-1");
    CHECK_EQ_INT(iget(v, "created"), 1700000000);
    json_t *ch = json_object_get(v, "choices");
    CHECK_EQ_INT(json_array_size(ch), 2);
    json_t *m1 = json_object_get(json_array_get(ch, 1), "message");
    CHECK_EQ_STR(sget(m1, "role"), "assistant");
    CHECK_EQ_STR(sget(m1, "content"), "Yo");
    CHECK_EQ_STR(sget(m1, "reasoning_content"), "r");
    CHECK_EQ_STR(sget(json_array_get(ch, 1), "finish_reason"), "length");
    CHECK(json_is_null(json_object_get(json_array_get(ch, 0), "logprobs")));
    json_t *us = json_object_get(v, "usage");
    CHECK_EQ_INT(iget(us, "total_tokens"), 14);
    CHECK_EQ_INT(iget(json_object_get(us, "prompt_tokens_details"), "cached_tokens"), 6);
    json_decref(v);
}

TEST(chat_chunks_and_sse) {
    serve_choice first = {.index = 0, .text = "", .text_len = 0, .role = true};
    json_t *v = serve_oai_chat_chunk(&META, &first);
    CHECK(v);
    CHECK_EQ_STR(sget(v, "object"), "chat.completion.chunk");
    json_t *d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
    CHECK_EQ_STR(sget(d, "role"), "assistant");
    size_t len;
    char *frame = serve_sse_frame(v, &len);
    CHECK(frame && !strncmp(frame, "data: {", 7) && !strcmp(frame + len - 2, "\n\n"));
    CHECK(!strchr(frame, '\n') || strchr(frame, '\n') == frame + len - 2);
    ob_free(frame);
    json_decref(v);
    /* a later delta carries no role; the last one only the finish reason */
    serve_choice last = {.index = 0, .finish_reason = "stop"};
    v = serve_oai_chat_chunk(&META, &last);
    d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
    CHECK(!json_object_get(d, "role") && !json_object_get(d, "content"));
    json_decref(v);
    serve_usage u = {3, 2, 0, NULL};
    v = serve_oai_usage_chunk(&META, "chat.completion.chunk", &u);
    CHECK_EQ_INT(json_array_size(json_object_get(v, "choices")), 0);
    CHECK_EQ_INT(iget(json_object_get(v, "usage"), "completion_tokens"), 2);
    json_decref(v);
    CHECK_EQ_STR(SERVE_SSE_DONE, "data: [DONE]\n\n");
}

TEST(tool_call_deltas) {
    json_t *calls = json_loads("[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                               "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]",
                               0, NULL);
    serve_choice c = {.index = 0, .tool_calls = calls};
    json_t *v = serve_oai_chat_chunk(&META, &c);
    json_t *d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
    CHECK_EQ_STR(sget(json_object_get(json_array_get(json_object_get(d, "tool_calls"), 0),
                                      "function"), "name"), "f");
    json_decref(v);
    json_decref(calls);
}

TEST(text_completion_and_logprobs) {
    json_t *top = json_pack("[{s:s, s:f}]", "token", "b", "logprob", -1.5);
    json_t *lp = serve_oai_logprob("\xe2\x82", 2, -0.25, top); /* half a character */
    CHECK(lp);
    CHECK_EQ_STR(sget(lp, "token"), "\xef\xbf\xbd");
    CHECK_EQ_INT(json_array_size(json_object_get(lp, "bytes")), 2);
    CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(lp, "bytes"), 0)), 0xe2);
    json_decref(top);
    json_t *lps = json_pack("{s:[o]}", "content", lp);
    serve_choice c = {.index = 0, .text = "upon", .text_len = 4, .finish_reason = "length",
                      .logprobs = lps};
    serve_usage u = {1, 1, 0, NULL};
    json_t *v = serve_oai_text_completion(&META, &c, 1, &u);
    CHECK_EQ_STR(sget(v, "object"), "text_completion");
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    CHECK_EQ_STR(sget(ch, "text"), "upon");
    CHECK(json_is_object(json_object_get(ch, "logprobs")));
    json_decref(v);
    json_decref(lps);
}

TEST(ollama_lines) {
    char at[40];
    serve_rfc3339(1700000000123456789LL, at);
    CHECK_EQ_STR(at, "2023-11-14T22:13:20.123456789Z");
    serve_choice c = {.text = "He", .text_len = 2};
    json_t *v = serve_ollama_chat("tiny", 1700000000000000000LL, &c, NULL);
    CHECK(v);
    CHECK(json_is_false(json_object_get(v, "done")));
    CHECK_EQ_STR(sget(json_object_get(v, "message"), "content"), "He");
    size_t len;
    char *line = serve_ndjson_line(v, &len);
    CHECK(line && line[len - 1] == '\n' && !memchr(line, '\n', len - 1));
    ob_free(line);
    json_decref(v);
    serve_choice fin = {.text = "", .finish_reason = "length"};
    serve_ollama_stats st = {100, 5, 7, 20, 3, 60};
    v = serve_ollama_generate("tiny", 1700000000000000000LL, &fin, &st);
    CHECK(json_is_true(json_object_get(v, "done")));
    CHECK_EQ_STR(sget(v, "done_reason"), "length");
    CHECK_EQ_INT(iget(v, "total_duration"), 100);
    CHECK_EQ_INT(iget(v, "prompt_eval_count"), 7);
    CHECK_EQ_INT(iget(v, "eval_count"), 3);
    CHECK_EQ_INT(iget(v, "eval_duration"), 60);
    CHECK_EQ_STR(sget(v, "response"), "");
    json_decref(v);
}

static serve_model_desc desc(void) {
    serve_model_desc d;
    memset(&d, 0, sizeof d);
    strcpy(d.id, "stories");
    strcpy(d.arch, "llama");
    strcpy(d.quant, "F32");
    strcpy(d.digest, "abc");
    d.n_ctx_train = 512;
    d.n_embd = 64;
    d.n_layer = 5;
    d.n_params = 260000;
    d.n_ctx = 256;
    return d;
}

TEST(model_listings) {
    serve_model_desc d = desc();
    json_t *v = serve_models_openai_list(&d);
    CHECK_EQ_STR(sget(v, "object"), "list");
    CHECK_EQ_STR(sget(json_array_get(json_object_get(v, "data"), 0), "id"), "stories");
    json_decref(v);
    v = serve_models_ollama_tags(&d);
    json_t *m = json_array_get(json_object_get(v, "models"), 0);
    CHECK_EQ_STR(sget(m, "name"), "stories:latest");
    CHECK_EQ_STR(sget(json_object_get(m, "details"), "parameter_size"), "260K");
    CHECK_EQ_STR(sget(json_object_get(m, "details"), "family"), "llama");
    json_decref(v);
    serve_model_caps(&d, "{% if tools %}...{% endif %}<think>");
    v = serve_models_ollama_show(&d);
    CHECK_EQ_INT(iget(json_object_get(v, "model_info"), "llama.context_length"), 512);
    json_t *caps = json_object_get(v, "capabilities");
    CHECK_EQ_INT(json_array_size(caps), 3);
    CHECK_EQ_STR(json_string_value(json_array_get(caps, 1)), "tools");
    json_decref(v);
    CHECK(serve_model_match(&d, "stories") && serve_model_match(&d, "stories:latest"));
    CHECK(serve_model_match(&d, ""));
    CHECK(!serve_model_match(&d, "stories:7b") && !serve_model_match(&d, "gpt-4"));
    char ps[16];
    serve_model_param_size(7241732096ull, ps);
    CHECK_EQ_STR(ps, "7.2B");
    serve_model_param_size(135000000ull, ps);
    CHECK_EQ_STR(ps, "135M");
}

TEST(error_objects) {
    serve_error e;
    CHECK_EQ_INT(serve_error_bad(&e, "invalid_type", "messages[2].content",
                                 "messages[2].content: expected a string, got number"), -1);
    size_t len;
    char *body = serve_error_body(&e, SERVE_DIALECT_OPENAI, &len);
    json_t *v = json_loads(body, 0, NULL);
    json_t *err = json_object_get(v, "error");
    CHECK_EQ_STR(sget(err, "type"), "invalid_request_error");
    CHECK_EQ_STR(sget(err, "param"), "messages[2].content");
    CHECK_EQ_STR(sget(err, "code"), "invalid_type");
    CHECK(strstr(sget(err, "message"), "got number"));
    json_decref(v);
    ob_free(body);
    body = serve_error_body(&e, SERVE_DIALECT_OLLAMA, &len);
    v = json_loads(body, 0, NULL);
    CHECK(json_is_string(json_object_get(v, "error")));
    json_decref(v);
    ob_free(body);
    /* client bytes that are not UTF-8 (a URL) still give a valid JSON body */
    serve_error_set(&e, 404, "invalid_request_error", NULL, NULL, "GET /\xff\xc3: no route");
    body = serve_error_body(&e, SERVE_DIALECT_OPENAI, &len);
    v = json_loads(body, 0, NULL);
    CHECK(v);
    CHECK(json_is_null(json_object_get(json_object_get(v, "error"), "param")));
    CHECK(json_is_null(json_object_get(json_object_get(v, "error"), "code")));
    CHECK_EQ_STR(sget(json_object_get(v, "error"), "message"), "GET /??: no route");
    json_decref(v);
    ob_free(body);
}

int main(void) {
    RUN(chat_completion_object);
    RUN(chat_chunks_and_sse);
    RUN(tool_call_deltas);
    RUN(text_completion_and_logprobs);
    RUN(ollama_lines);
    RUN(model_listings);
    RUN(error_objects);
    return t_summary();
}
