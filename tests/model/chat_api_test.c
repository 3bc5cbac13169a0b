/*
 * The public chat API (outboard.h, "chat") on tiny synthetic models: which template is chosen
 * (the caller's, a built-in one for gemma3, generic ChatML for a file without any), rendering
 * with the model's BOS, one BOS in the tokens whether or not the template wrote it, the errors
 * a program gets for a bad template or conversation, and the output parser: streamed byte by
 * byte it gives exactly what parsing the whole answer gives.
 */
#include "outboard.h"

#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[256];

static ob_model *load_synth(const char *arch) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ob_chat_api_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) return NULL;
    }
    const char *build = getenv("OB_BUILD");
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, arch);
    if (access(path, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, "%s/outboard synth --arch %s --shape tiny --type f32 -o %s "
                 ">/dev/null 2>&1", build ? build : "build", arch, path);
        if (system(cmd) != 0) return NULL;
    }
    ob_model *m = NULL;
    ob_err err = {{0}};
    if (ob_model_load(path, NULL, &m, &err)) fprintf(stderr, "load %s: %s\n", path, err.msg);
    return m;
}

static const char CONV[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";

static size_t count_id(const int32_t *ids, size_t n, int32_t id) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ids[i] == id;
    return k;
}

TEST(generic_chatml_without_a_template) {
    ob_model *m = load_synth("llama");
    CHECK(m != NULL);
    if (!m) return;
    ob_chat *c = NULL;
    ob_err err = {{0}};
    CHECK_MSG(ob_chat_new(m, NULL, 0, NULL, &c, &err) == OB_OK, "%s", err.msg);
    CHECK(ob_chat_get_source(c) == OB_CHAT_SOURCE_GENERIC);
    CHECK(!strcmp(ob_chat_format(c), "hermes") || !strcmp(ob_chat_format(c), "plain"));
    char *text = NULL;
    size_t len = 0;
    CHECK(ob_chat_render(c, CONV, strlen(CONV), NULL, &text, &len, &err) == OB_OK);
    CHECK_MSG(text && !strcmp(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"),
              "rendered: '%s'", text ? text : "(null)");
    CHECK(len == strlen(text));
    /* The byte vocabulary wants BOS: the prompt starts with exactly one. */
    ob_model_info info;
    ob_model_get_info(m, &info);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(ob_chat_tokenize(c, text, len, true, &ids, &n, &err) == OB_OK);
    CHECK(n > 1 && ids[0] == info.bos_id && count_id(ids, n, info.bos_id) == 1);
    ob_tokens_free(ids);
    /* Without a generation prompt the assistant header is left out. */
    ob_chat_render_params p;
    ob_chat_render_params_init(&p);
    CHECK(p.add_generation_prompt);
    p.add_generation_prompt = false;
    ob_string_free(text);
    CHECK(ob_chat_render(c, CONV, strlen(CONV), &p, &text, &len, &err) == OB_OK);
    CHECK(text && !strstr(text, "assistant"));
    ob_string_free(text);
    ob_chat_free(c);
    ob_model_free(m);
}

TEST(builtin_template_for_gemma3) {
    ob_model *m = load_synth("gemma3");
    CHECK(m != NULL);
    if (!m) return;
    ob_chat *c = NULL;
    ob_err err = {{0}};
    CHECK_MSG(ob_chat_new(m, NULL, 0, NULL, &c, &err) == OB_OK, "%s", err.msg);
    CHECK(ob_chat_get_source(c) == OB_CHAT_SOURCE_BUILTIN);
    CHECK(!strcmp(ob_chat_format(c), "gemma") && !ob_chat_markup_is_special(c));
    size_t tlen = 0;
    CHECK(strstr(ob_chat_template(c, &tlen), "start_of_turn") && tlen > 0);
    char *text = NULL;
    size_t len = 0;
    CHECK(ob_chat_render(c, CONV, strlen(CONV), NULL, &text, &len, &err) == OB_OK);
    CHECK_MSG(text && strstr(text, "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"),
              "rendered: '%s'", text ? text : "(null)");
    ob_string_free(text);
    ob_chat_free(c);
    ob_model_free(m);
}

TEST(caller_template_writes_bos_once) {
    ob_model *m = load_synth("llama");
    CHECK(m != NULL);
    if (!m) return;
    static const char T[] = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}"
                            "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
    ob_chat *c = NULL;
    ob_err err = {{0}};
    CHECK_MSG(ob_chat_new(m, T, strlen(T), "mine.jinja", &c, &err) == OB_OK, "%s", err.msg);
    CHECK(ob_chat_get_source(c) == OB_CHAT_SOURCE_CALLER);
    char *text = NULL;
    size_t len = 0;
    CHECK(ob_chat_render(c, CONV, strlen(CONV), NULL, &text, &len, &err) == OB_OK);
    CHECK_MSG(text && !strcmp(text, "<s>[user] hi[assistant]"), "rendered: '%s'",
              text ? text : "(null)");
    ob_model_info info;
    ob_model_get_info(m, &info);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(ob_chat_tokenize(c, text, len, true, &ids, &n, &err) == OB_OK);
    CHECK_MSG(n > 1 && ids[0] == info.bos_id && count_id(ids, n, info.bos_id) == 1,
              "%zu ids, first %d", n, n ? ids[0] : -1);
    ob_tokens_free(ids);
    /* Raw text: "<s>" stays text, and the vocabulary's BOS comes first. */
    CHECK(ob_chat_tokenize(c, text, len, false, &ids, &n, &err) == OB_OK);
    CHECK(n > 1 && ids[0] == info.bos_id && count_id(ids, n, info.bos_id) == 1);
    ob_tokens_free(ids);
    ob_string_free(text);
    ob_chat_free(c);
    ob_model_free(m);
}

TEST(errors_name_what_was_wrong) {
    ob_model *m = load_synth("llama");
    CHECK(m != NULL);
    if (!m) return;
    ob_chat *c = NULL;
    ob_err err = {{0}};
    static const char BAD[] = "hello\n{% for %}";
    CHECK(ob_chat_new(m, BAD, strlen(BAD), "bad.jinja", &c, &err) == OB_ERR_FORMAT && !c);
    CHECK_MSG(strstr(err.msg, "bad.jinja:2:"), "%s", err.msg);
    static const char RAISE[] = "{{ raise_exception('no system role here') }}";
    CHECK(ob_chat_new(m, RAISE, strlen(RAISE), "raise.jinja", &c, &err) == OB_OK);
    char *text = NULL;
    size_t len = 0;
    CHECK(ob_chat_render(c, CONV, strlen(CONV), NULL, &text, &len, &err) == OB_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "no system role here"), "%s", err.msg);
    CHECK(ob_chat_render(c, "{\"messages\": [", 14, NULL, &text, &len, &err) == OB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "conversation") && strstr(err.msg, "byte"), "%s", err.msg);
    CHECK(ob_chat_render(c, "{\"messages\": 5}", 15, NULL, &text, &len, &err) == OB_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "messages"), "%s", err.msg);
    CHECK(text == NULL);
    ob_chat_free(c);
    ob_model_free(m);
}

/* The reply fields of a and b are equal. */
static bool same_reply(const ob_chat_reply *a, const ob_chat_reply *b) {
    if (strcmp(a->content, b->content) || strcmp(a->reasoning, b->reasoning) ||
        a->n_calls != b->n_calls || a->n_invalid != b->n_invalid)
        return false;
    for (size_t i = 0; i < a->n_calls; i++)
        if (strcmp(a->calls[i].name, b->calls[i].name) ||
            strcmp(a->calls[i].arguments, b->calls[i].arguments))
            return false;
    return true;
}

TEST(parser_streamed_equals_whole) {
    ob_model *m = load_synth("llama");
    CHECK(m != NULL);
    if (!m) return;
    /* A template that writes Hermes tool calls: the format follows its text. */
    static const char T[] = "{% for m in messages %}{{ m.content }}{% endfor %}"
                            "{% if tools %}<tool_call>{% endif %}<think>\n";
    ob_chat *c = NULL;
    ob_err err = {{0}};
    CHECK(ob_chat_new(m, T, strlen(T), "hermes.jinja", &c, &err) == OB_OK);
    CHECK_MSG(!strcmp(ob_chat_format(c), "hermes"), "%s", ob_chat_format(c));
    CHECK(ob_chat_markup_is_special(c));
    static const char PROMPT[] = "hi<think>\n";
    static const char ANSWER[] = "plan it</think>Sure.<tool_call>\n{\"name\": \"get_weather\", "
                                 "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    static const char TOOLS[] = "[{\"type\": \"function\", \"function\": {\"name\": "
                                "\"get_weather\", \"parameters\": {\"type\": \"object\"}}}]";
    ob_chat_parse_params pp = {.prompt = PROMPT, .prompt_len = strlen(PROMPT), .tools = TOOLS,
                               .tools_len = strlen(TOOLS)};
    ob_chat_reply whole;
    CHECK(ob_chat_parse(c, &pp, ANSWER, strlen(ANSWER), &whole, &err) == OB_OK);
    CHECK_MSG(!strcmp(whole.reasoning, "plan it") && !strcmp(whole.content, "Sure."),
              "reasoning '%s' content '%s'", whole.reasoning, whole.content);
    CHECK(whole.n_calls == 1 && !strcmp(whole.calls[0].name, "get_weather") &&
          !strcmp(whole.calls[0].arguments, "{\"city\":\"Paris\"}"));
    ob_chat_parser *ps = NULL;
    CHECK(ob_chat_parser_new(c, &pp, &ps, &err) == OB_OK);
    size_t shown = 0, calls = 0;
    ob_chat_delta d;
    for (size_t i = 0; ps && i < strlen(ANSWER); i++) {
        CHECK(ob_chat_parser_feed(ps, ANSWER + i, 1, &d, &err) == OB_OK);
        shown += d.content_len;
        calls += d.n_calls;
        CHECK(!d.content_len || !memchr(d.content, '<', d.content_len));
    }
    ob_chat_reply streamed;
    CHECK(ob_chat_parser_finish(ps, &d, &streamed, &err) == OB_OK);
    shown += d.content_len;
    calls += d.n_calls;
    CHECK(shown == strlen("Sure.") && calls == 1);
    CHECK(same_reply(&whole, &streamed));
    ob_chat_reply_clear(&whole);
    ob_chat_reply_clear(&streamed);
    ob_chat_parser_free(ps);
    /* An unreadable call: strict fails naming the offset, lenient lists it apart. */
    static const char BROKEN[] = "ok<tool_call>\n{not json}\n</tool_call>";
    pp.strict = true;
    CHECK(ob_chat_parse(c, &pp, BROKEN, strlen(BROKEN), &whole, &err) == OB_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "hermes"), "%s", err.msg);
    pp.strict = false;
    pp.prompt = NULL;
    CHECK(ob_chat_parse(c, &pp, BROKEN, strlen(BROKEN), &whole, &err) == OB_OK);
    CHECK(whole.n_calls == 0 && whole.n_invalid == 1 && !strcmp(whole.content, "ok"));
    CHECK_MSG(whole.invalid[0].offset == strlen("ok<tool_call>\n"), "offset %zu",
              whole.invalid[0].offset);
    ob_chat_reply_clear(&whole);
    ob_chat_reply_clear(NULL);
    ob_chat_free(c);
    ob_chat_free(NULL);
    ob_model_free(m);
}

int main(void) {
    RUN(generic_chatml_without_a_template);
    RUN(builtin_template_for_gemma3);
    RUN(caller_template_writes_bos_once);
    RUN(errors_name_what_was_wrong);
    RUN(parser_streamed_equals_whole);
    if (tmp_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
    return t_summary();
}
