/*
 * Request parsing for both dialects (serve_openai_req.c, serve_ollama_req.c, serve_messages.c,
 * serve_tools.c, serve_request.c): every field read into the one generation request, and every
 * refusal with its status, code, JSON path and a message naming expected and actual values.
 */
#include "core/alloc.h"
#include "serve/serve_json.h"
#include "serve/serve_request.h"

#include "test.h"

static const serve_limits LIM = {1000};
static serve_error E;

typedef int (*parse_fn)(const char *, size_t, const serve_limits *, serve_gen_req **,
                        serve_error *);

static serve_gen_req *parse(parse_fn fn, const char *body) {
    serve_gen_req *r = NULL;
    memset(&E, 0, sizeof E);
    if (fn(body, strlen(body), &LIM, &r, &E)) return NULL;
    return r;
}

/* The body is refused with this status, code and param, and the message holds `needle`. */
#define CHECK_REFUSED(fn, body, st, cd, prm, needle)                                            \
    do {                                                                                        \
        serve_gen_req *r_ = parse(fn, body);                                                    \
        serve_gen_req_free(r_);                                                                 \
        CHECK_MSG(!r_, "accepted: %s", body);                                                   \
        CHECK_MSG(E.status == (st), "status %d, expected %d (%s)", E.status, st, E.message);    \
        CHECK_MSG(E.code && !strcmp(E.code, cd), "code %s, expected %s (%s)",                   \
                  E.code ? E.code : "(null)", cd, E.message);                                   \
        CHECK_MSG(!strcmp(E.param, prm), "param \"%s\", expected \"%s\"", E.param, prm);        \
        CHECK_MSG(strstr(E.message, needle), "message \"%s\" lacks \"%s\"", E.message, needle); \
    } while (0)

#define OAI_CHAT serve_openai_chat_parse
#define OAI_COMPL serve_openai_completion_parse
#define OLL_CHAT serve_ollama_chat_parse
#define OLL_GEN serve_ollama_generate_parse

TEST(openai_chat_reads_every_field) {
    serve_gen_req *r = parse(OAI_CHAT,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]}],"
        "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":20,\"min_p\":0.1,\"seed\":-7,"
        "\"stop\":[\"x\",\"yy\"],\"max_tokens\":10,\"max_completion_tokens\":12,"
        "\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"repetition_penalty\":1.2,"
        "\"logit_bias\":{\"5\":-100,\"7\":2.5},\"logprobs\":true,\"top_logprobs\":3,\"n\":2,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_w\","
        "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"required\","
        "\"response_format\":{\"type\":\"json_object\"},\"reasoning_effort\":\"low\","
        "\"user\":\"ignored\"}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_STR(r->model, "m");
    CHECK_EQ_INT(json_array_size(r->messages), 2);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(r->messages, 0), "role")),
                 "system");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(r->messages, 1), "content")),
                 "ab");
    CHECK(r->sampling.temperature == 0.5f && r->sampling.top_p == 0.9f);
    CHECK_EQ_INT(r->sampling.top_k, 20);
    CHECK(r->sampling.min_p == 0.1f && r->sampling.repeat_penalty == 1.2f);
    CHECK(r->sampling.presence_penalty == 0.5f && r->sampling.frequency_penalty == -0.5f);
    CHECK(r->sampling.has_seed && r->sampling.seed == (uint64_t)-7);
    CHECK_EQ_INT(r->n_stop, 2);
    CHECK_EQ_STR(r->stop[1], "yy");
    CHECK_EQ_INT(r->max_tokens, 12);
    CHECK_EQ_INT(r->sampling.n_logit_bias, 2);
    CHECK_EQ_INT(r->sampling.logit_bias[0].token, 5);
    CHECK(r->sampling.logit_bias[0].bias == -100.0f);
    CHECK(r->logprobs);
    CHECK_EQ_INT(r->top_logprobs, 3);
    CHECK_EQ_INT(r->n, 2);
    CHECK(r->stream && r->include_usage);
    CHECK(r->tools && r->tool_choice == SERVE_TOOL_CHOICE_REQUIRED);
    CHECK_EQ_STR(json_string_value(json_object_get(r->response_format, "type")), "json_object");
    CHECK_EQ_STR(r->reasoning_effort, "low");
    CHECK_EQ_INT(r->think, 1);
    serve_gen_req_free(r);
}

TEST(openai_chat_defaults) {
    serve_gen_req *r = parse(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_STR(r->model, "");
    CHECK(r->sampling.temperature == 1.0f && r->sampling.top_p == 1.0f);
    CHECK_EQ_INT(r->max_tokens, -1);
    CHECK_EQ_INT(r->n, 1);
    CHECK(!r->stream && !r->sampling.has_seed);
    CHECK_EQ_INT(r->dialect, SERVE_DIALECT_OPENAI);
    serve_gen_req_free(r);
}

TEST(openai_tool_calls_in_history) {
    serve_gen_req *r = parse(OAI_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\","
        "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_w\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"cold\"}]}");
    CHECK_MSG(r, "%s", E.message);
    json_t *call = json_array_get(json_object_get(json_array_get(r->messages, 1), "tool_calls"), 0);
    json_t *args = json_object_get(json_object_get(call, "function"), "arguments");
    CHECK(json_is_object(args));
    CHECK_EQ_STR(json_string_value(json_object_get(args, "city")), "Oslo");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(r->messages, 2),
                                                   "tool_call_id")), "c1");
    serve_gen_req_free(r);
}

TEST(openai_chat_refusals) {
    CHECK_REFUSED(OAI_CHAT, "{\"messages\": [", 400, "invalid_json", "", "malformed JSON at line 1");
    CHECK_REFUSED(OAI_CHAT, "", 400, "invalid_json", "", "empty body");
    CHECK_REFUSED(OAI_CHAT, "[1,2]", 400, "invalid_type", "", "expected a JSON object, got array");
    CHECK_REFUSED(OAI_CHAT, "{}", 400, "missing_field", "messages", "messages: required");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[]}", 400, "invalid_value", "messages", "at least one");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":\"hi\"}", 400, "invalid_type", "messages",
                  "messages: expected an array, got string");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                  "{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"user\",\"content\":3}]}",
                  400, "invalid_type", "messages[2].content",
                  "messages[2].content: expected a string or an array of content parts, got number");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"a\"}]}", 400,
                  "invalid_value", "messages[0].role", "got \"wizard\"");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"content\":\"a\"}]}", 400, "missing_field",
                  "messages[0].role", "required");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", 400, "missing_field",
                  "messages[0].content", "required for role user");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[7]}", 400, "invalid_type", "messages[0]",
                  "expected a message object, got number");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                  "\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 400, "unsupported_content",
                  "messages[0].content[0].type", "text only");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
                  400, "missing_field", "messages[0].content[0].text", "required");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"temperature\":\"hot\"}", 400, "invalid_type", "temperature",
                  "temperature: expected a number, got string");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"temperature\":3.5}", 400, "invalid_value", "temperature",
                  "expected a number from 0 to 2, got 3.5");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"max_tokens\":1.5}", 400, "invalid_type", "max_tokens", "expected an integer");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"max_tokens\":0}", 400, "invalid_value", "max_tokens", "from 1 to");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":17}",
                  400, "invalid_value", "n", "expected an integer from 1 to 16, got 17");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"logprobs\":true,\"top_logprobs\":21}", 400, "invalid_value", "top_logprobs",
                  "from 0 to 20, got 21");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"top_logprobs\":2}", 400, "invalid_value", "top_logprobs",
                  "only allowed when logprobs is true");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"stream\":\"yes\"}", 400, "invalid_type", "stream", "expected a boolean");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"stream_options\":{\"include_usage\":true}}", 400, "invalid_value",
                  "stream_options", "only allowed when stream is true");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"stop\":5}", 400, "invalid_type", "stop", "a string or an array of strings");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"stop\":[\"a\",3]}", 400, "invalid_type", "stop[1]", "expected a string");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":"
                  "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\","
                  "\"13\",\"14\",\"15\",\"16\",\"17\"]}", 400, "limit_exceeded", "stop",
                  "17 stop strings, the limit is 16");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"logit_bias\":{\"abc\":1}}", 400, "invalid_value", "logit_bias.abc",
                  "expected a token id");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"logit_bias\":{\"5000\":1}}", 400, "invalid_value", "logit_bias.5000",
                  "outside the vocabulary of 1000 tokens");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"logit_bias\":{\"5\":101}}", 400, "invalid_value", "logit_bias.5",
                  "from -100 to 100, got 101");
    CHECK_REFUSED(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                  "\"model\":42}", 400, "invalid_type", "model", "expected a string, got number");
}

TEST(openai_tool_refusals) {
    const char *base = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],";
    char body[1024];
    snprintf(body, sizeof body, "%s\"tools\":{}}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_type", "tools", "expected an array, got object");
    snprintf(body, sizeof body, "%s\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
             "\"bad name!\"}}]}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_value", "tools[0].function.name", "bad name!");
    snprintf(body, sizeof body, "%s\"tools\":[{\"type\":\"retrieval\"}]}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_value", "tools[0].type", "got \"retrieval\"");
    snprintf(body, sizeof body, "%s\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_value", "tools[1].function.name", "tools[0]");
    snprintf(body, sizeof body, "%s\"tool_choice\":\"required\"}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_value", "tool_choice", "needs tools");
    snprintf(body, sizeof body, "%s\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
             "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_value", "tool_choice.function.name",
                  "\"g\" is not one of tools[]");
    snprintf(body, sizeof body, "%s\"response_format\":{\"type\":\"xml\"}}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "invalid_value", "response_format.type", "got \"xml\"");
    snprintf(body, sizeof body, "%s\"response_format\":{\"type\":\"json_schema\"}}", base);
    CHECK_REFUSED(OAI_CHAT, body, 400, "missing_field", "response_format.json_schema", "required");
}

TEST(openai_tool_choice_function) {
    serve_gen_req *r = parse(OAI_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":"
        "{\"name\":\"f\"}},\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
        "{\"name\":\"s\",\"schema\":{\"type\":\"object\"}}}}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->tool_choice, SERVE_TOOL_CHOICE_FUNCTION);
    CHECK_EQ_STR(r->tool_choice_name, "f");
    CHECK_EQ_STR(json_string_value(json_object_get(r->response_format, "type")), "json_schema");
    CHECK(json_is_object(json_object_get(r->response_format, "schema")));
    serve_gen_req_free(r);
}

TEST(openai_completion_prompts) {
    serve_gen_req *r = parse(OAI_COMPL, "{\"prompt\":\"Once\",\"echo\":true,\"logprobs\":2}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->n_prompts, 1);
    CHECK_EQ_STR(r->prompts[0].text, "Once");
    CHECK(r->echo && r->logprobs);
    CHECK_EQ_INT(r->top_logprobs, 2);
    CHECK_EQ_INT(r->max_tokens, 16);
    serve_gen_req_free(r);
    r = parse(OAI_COMPL, "{\"prompt\":[1,2,3]}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->n_prompts, 1);
    CHECK_EQ_INT(r->prompts[0].n_tokens, 3);
    CHECK_EQ_INT(r->prompts[0].tokens[2], 3);
    serve_gen_req_free(r);
    r = parse(OAI_COMPL, "{\"prompt\":[\"a\",\"b\"]}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->n_prompts, 2);
    CHECK_EQ_STR(r->prompts[1].text, "b");
    serve_gen_req_free(r);
    r = parse(OAI_COMPL, "{\"prompt\":[[1],[2,3]],\"max_tokens\":4}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->n_prompts, 2);
    CHECK_EQ_INT(r->prompts[1].n_tokens, 2);
    CHECK_EQ_INT(r->max_tokens, 4);
    serve_gen_req_free(r);
}

TEST(openai_completion_refusals) {
    CHECK_REFUSED(OAI_COMPL, "{}", 400, "missing_field", "prompt", "required");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":5}", 400, "invalid_type", "prompt",
                  "a string or an array of token ids, got number");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":[]}", 400, "invalid_value", "prompt", "empty array");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":[1,\"a\"]}", 400, "invalid_type", "prompt[1]",
                  "a token id");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":[1,1000]}", 400, "invalid_value", "prompt[1]",
                  "from 0 to 999, got 1000");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":[\"a\",{}]}", 400, "invalid_type", "prompt[1]",
                  "got object");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":[[1],[-1]]}", 400, "invalid_value", "prompt[1][0]",
                  "got -1");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":\"a\",\"logprobs\":6}", 400, "invalid_value", "logprobs",
                  "from 0 to 5");
    CHECK_REFUSED(OAI_COMPL, "{\"prompt\":\"a\",\"best_of\":3}", 400, "unsupported_value",
                  "best_of", "best_of = n");
}

TEST(ollama_chat_maps_options) {
    serve_gen_req *r = parse(OLL_CHAT,
        "{\"model\":\"m:latest\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"hmm\",\"tool_calls\":[{"
        "\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},{\"role\":\"tool\","
        "\"content\":\"1\",\"tool_name\":\"f\"}],"
        "\"options\":{\"num_predict\":50,\"num_ctx\":2048,\"temperature\":0.2,\"top_k\":5,"
        "\"top_p\":0.8,\"min_p\":0.05,\"repeat_penalty\":1.3,\"repeat_last_n\":32,\"seed\":9,"
        "\"stop\":[\"END\"],\"num_gpu\":99,\"mirostat\":0},\"stream\":false,"
        "\"keep_alive\":\"1h30m\",\"think\":true,\"format\":\"json\"}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->dialect, SERVE_DIALECT_OLLAMA);
    CHECK_EQ_STR(r->model, "m:latest");
    CHECK_EQ_INT(r->max_tokens, 50);
    CHECK_EQ_INT(r->num_ctx, 2048);
    CHECK(r->sampling.temperature == 0.2f && r->sampling.top_p == 0.8f);
    CHECK_EQ_INT(r->sampling.top_k, 5);
    CHECK(r->sampling.repeat_penalty == 1.3f);
    CHECK_EQ_INT(r->sampling.repeat_last_n, 32);
    CHECK(r->sampling.has_seed && r->sampling.seed == 9);
    CHECK_EQ_INT(r->n_stop, 1);
    CHECK(!r->stream);
    CHECK(r->keep_alive == 5400.0);
    CHECK_EQ_INT(r->think, 1);
    CHECK_EQ_STR(json_string_value(json_object_get(r->response_format, "type")), "json_object");
    json_t *a = json_array_get(r->messages, 1);
    CHECK_EQ_STR(json_string_value(json_object_get(a, "reasoning_content")), "hmm");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(r->messages, 2), "name")), "f");
    serve_gen_req_free(r);
}

TEST(ollama_defaults_and_generate) {
    serve_gen_req *r = parse(OLL_GEN, "{\"model\":\"m\",\"prompt\":\"Once upon\",\"system\":\"s\","
                                      "\"options\":{\"num_predict\":-2},\"keep_alive\":-1}");
    CHECK_MSG(r, "%s", E.message);
    CHECK(r->stream); /* Ollama streams unless told not to */
    CHECK(r->sampling.temperature == 0.8f);
    CHECK_EQ_INT(r->sampling.top_k, 40);
    CHECK_EQ_INT(r->max_tokens, -1);
    CHECK_EQ_INT(r->n_prompts, 1);
    CHECK_EQ_STR(r->prompts[0].text, "Once upon");
    CHECK_EQ_STR(r->system, "s");
    CHECK(r->keep_alive == -1.0);
    serve_gen_req_free(r);
    r = parse(OLL_GEN, "{\"model\":\"m\"}"); /* load-the-model request */
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(r->n_prompts, 0);
    serve_gen_req_free(r);
    r = parse(OLL_CHAT, "{\"model\":\"m\",\"messages\":[],\"format\":{\"type\":\"object\"}}");
    CHECK_MSG(r, "%s", E.message);
    CHECK_EQ_INT(json_array_size(r->messages), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(r->response_format, "type")), "json_schema");
    serve_gen_req_free(r);
}

TEST(ollama_refusals) {
    CHECK_REFUSED(OLL_CHAT, "{\"messages\":[]}", 400, "missing_field", "model", "model: required");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"options\":[]}", 400, "invalid_type", "options",
                  "expected an object, got array");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"options\":{\"temperature\":\"x\"}}", 400,
                  "invalid_type", "options.temperature", "expected a number, got string");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"options\":{\"num_predict\":-3}}", 400,
                  "invalid_value", "options.num_predict", "from -2 to");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"options\":{\"num_ctx\":0}}", 400,
                  "invalid_value", "options.num_ctx", "got 0");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"options\":{\"stop\":\"x\",\"top_k\":-1}}", 400,
                  "invalid_value", "options.top_k", "got -1");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"options\":{\"stop\":[1]}}", 400, "invalid_type",
                  "options.stop[0]", "expected a string");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"keep_alive\":\"soon\"}", 400, "invalid_value",
                  "keep_alive", "got \"soon\"");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"think\":\"max\"}", 400, "invalid_value", "think",
                  "got \"max\"");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"format\":\"yaml\"}", 400, "invalid_value",
                  "format", "got \"yaml\"");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
                  "\"images\":[\"aGk=\"]}]}", 400, "unsupported_content", "messages[0].images",
                  "1 images");
    CHECK_REFUSED(OLL_CHAT, "{\"model\":\"m\",\"stream\":1}", 400, "invalid_type", "stream",
                  "expected a boolean, got number");
    CHECK_REFUSED(OLL_GEN, "{\"model\":\"m\",\"prompt\":[1]}", 400, "invalid_type", "prompt",
                  "expected a string, got array");
    CHECK_REFUSED(OLL_GEN, "{\"model\":\"m\",\"raw\":\"yes\"}", 400, "invalid_type", "raw",
                  "expected a boolean");
}

TEST(limits_are_named) {
    /* 4097 messages */
    size_t cap = 4200 * 40;
    char *body = ob_alloc(cap, 1);
    CHECK(body);
    size_t n = (size_t)snprintf(body, cap, "{\"messages\":[");
    for (int i = 0; i < SERVE_MAX_MESSAGES + 1; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s{\"role\":\"user\",\"content\":\"x\"}",
                              i ? "," : "");
    snprintf(body + n, cap - n, "]}");
    serve_gen_req *r = parse(OAI_CHAT, body);
    ob_free(body);
    serve_gen_req_free(r);
    CHECK(!r);
    CHECK_EQ_STR(E.code, "limit_exceeded");
    CHECK(strstr(E.message, "4097 messages, the limit is 4096"));
    char stop[400];
    memset(stop, 'a', 300);
    stop[300] = '\0';
    char b2[600];
    snprintf(b2, sizeof b2, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":\"%s\"}",
             stop);
    CHECK_REFUSED(OAI_CHAT, b2, 400, "limit_exceeded", "stop", "300 bytes, the limit is 256");
}

/* Every allocation the parsers make fails in turn, jansson's included (routed through ob_alloc
 * as the server routes them): each run either succeeds or reports a 500, and ASan (make
 * check) sees no leak. The sweep ends at the first run that succeeds, so it covers every
 * allocation a successful parse makes. */
TEST(allocation_failure_sweep) {
    serve_json_alloc_init();
    const char *body =
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}],"
        "\"stop\":[\"x\",\"y\"],\"logit_bias\":{\"1\":1},\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":"
        "{\"name\":\"f\"}},\"reasoning_effort\":\"high\"}";
    const char *gen = "{\"model\":\"m\",\"prompt\":\"p\",\"system\":\"s\",\"suffix\":\"x\","
                      "\"options\":{\"stop\":[\"a\"]},\"think\":\"low\"}";
    const char *compl = "{\"prompt\":[[1,2],[3]],\"suffix\":\"s\",\"stop\":\"z\"}";
    for (int which = 0; which < 3; which++) {
        parse_fn fn = which == 0 ? OAI_CHAT : which == 1 ? OLL_GEN : OAI_COMPL;
        const char *b = which == 0 ? body : which == 1 ? gen : compl;
        bool ok = false;
        int64_t n = 0;
        for (; n < 4096 && !ok; n++) {
            ob_alloc_fail_after(n);
            serve_gen_req *r = parse(fn, b);
            ob_alloc_fail_after(-1);
            ok = r != NULL;
            if (!ok) CHECK_MSG(E.status == 500, "fail after %lld: status %d (%s)", (long long)n,
                               E.status, E.message);
            serve_gen_req_free(r);
        }
        CHECK_MSG(ok && n > 20, "parser %d: %lld runs", which, (long long)n);
    }
}

int main(void) {
    RUN(openai_chat_reads_every_field);
    RUN(openai_chat_defaults);
    RUN(openai_tool_calls_in_history);
    RUN(openai_chat_refusals);
    RUN(openai_tool_refusals);
    RUN(openai_tool_choice_function);
    RUN(openai_completion_prompts);
    RUN(openai_completion_refusals);
    RUN(ollama_chat_maps_options);
    RUN(ollama_defaults_and_generate);
    RUN(ollama_refusals);
    RUN(limits_are_named);
    RUN(allocation_failure_sweep);
    return t_summary();
}
