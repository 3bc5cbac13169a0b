/*
 * Forced tool-call grammars (serve_tool_grammar.c): for a request's tools, the grammar of each
 * format takes exactly the calls the output parser reads back to a declared tool with valid
 * arguments, one or several as parallel_tool_calls says, and refuses the rest; what it cannot
 * enforce is a 400 naming why.
 */
#include "core/alloc.h"
#include "serve/serve_request.h"
#include "serve/serve_tool_grammar.h"

#include "test.h"

int serve_openai_chat_parse(const char *body, size_t len, const serve_limits *lim,
                            serve_gen_req **out, serve_error *e);

static ob_model *MODEL;
static ob_vocab_trie *TRIE;

#define TOOLS                                                                                   \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"          \
    "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},"     \
    "\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},\"days\":{\"type\":\"integer\","   \
    "\"minimum\":1,\"maximum\":7}},\"required\":[\"city\",\"unit\"]}}},"                         \
    "{\"type\":\"function\",\"function\":{\"name\":\"write\",\"parameters\":{\"type\":"        \
    "\"object\",\"properties\":{\"code\":{\"type\":\"string\"},\"tags\":{\"type\":\"array\","  \
    "\"items\":{\"$ref\":\"#/$defs/tag\"}}},\"required\":[\"code\"],\"$defs\":{\"tag\":"        \
    "{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}}}}]"

/* The grammar for a chat request with TOOLS and `extra` fields, in `format`; NULL with *e. */
static char *grammar_for(const char *extra, const char *format, serve_error *e) {
    char body[4096];
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"}],\"tools\":" TOOLS "%s}", extra);
    serve_limits lim = {100000};
    serve_gen_req *r = NULL;
    memset(e, 0, sizeof *e);
    if (serve_openai_chat_parse(body, strlen(body), &lim, &r, e)) return NULL;
    char *g = serve_tool_grammar(r, format, e);
    serve_gen_req_free(r);
    return g;
}

/* Whether the grammar takes the whole of text and may end after it. */
static bool takes(const char *gbnf, const char *text) {
    ob_grammar *g = NULL;
    ob_matcher *m = NULL;
    ob_err err;
    if (ob_grammar_new(gbnf, strlen(gbnf), NULL, &g, &err)) {
        fprintf(stderr, "grammar: %s\n%s\n", err.msg, gbnf);
        return false;
    }
    bool ok = !ob_matcher_new(g, TRIE, &m, &err) &&
              !ob_matcher_accept_text(m, text, strlen(text), &err) && ob_matcher_can_end(m);
    ob_matcher_free(m);
    ob_grammar_free(g);
    return ok;
}

#define XML_WEATHER                                                                             \
    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"            \
    "<parameter=unit>\nc\n</parameter>\n</function>\n</tool_call>"

TEST(xml_calls) {
    serve_error e;
    char *single = grammar_for(",\"tool_choice\":\"required\",\"parallel_tool_calls\":false",
                               "qwen3-coder", &e);
    char *many = grammar_for(",\"tool_choice\":\"required\"", "qwen3-coder", &e);
    CHECK_MSG(single && many, "%s", e.message);
    if (!single || !many) return;
    CHECK(takes(single, XML_WEATHER));
    /* an optional parameter in its place; a JSON value for a non-string one */
    CHECK(takes(single, "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n"
                        "</parameter>\n<parameter=unit>\nf\n</parameter>\n<parameter=days>\n3\n"
                        "</parameter>\n</function>\n</tool_call>"));
    /* raw text may hold '<' and other closing tags, but not the parameter's own */
    CHECK(takes(single, "<tool_call>\n<function=write>\n<parameter=code>\nif (a < b) x();\n"
                        "</div>\n</parameter>\n<parameter=tags>\n[\"a\", \"b\"]\n</parameter>\n"
                        "</function>\n</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=write>\n<parameter=code>\nx</parameter>y\n"
                         "</parameter>\n</function>\n</tool_call>"));
    /* the schema: required parameters, enums, lengths, ranges, $ref, nothing undeclared */
    CHECK(!takes(single, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
                         "</parameter>\n</function>\n</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
                         "</parameter>\n<parameter=unit>\nk\n</parameter>\n</function>\n"
                         "</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=get_weather>\n<parameter=city>\n"
                         "Llanfairpwllgwyngyll\n</parameter>\n<parameter=unit>\nc\n</parameter>\n"
                         "</function>\n</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
                         "</parameter>\n<parameter=unit>\nc\n</parameter>\n<parameter=days>\n9\n"
                         "</parameter>\n</function>\n</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=write>\n<parameter=code>\nx\n</parameter>\n"
                         "<parameter=tags>\n[\"c\"]\n</parameter>\n</function>\n</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
                         "</parameter>\n<parameter=unit>\nc\n</parameter>\n<parameter=zip>\n1\n"
                         "</parameter>\n</function>\n</tool_call>"));
    CHECK(!takes(single, "<tool_call>\n<function=delete_all>\n</function>\n</tool_call>"));
    /* several calls only when parallel calls are allowed, and at most four */
    CHECK(!takes(single, XML_WEATHER "\n" XML_WEATHER));
    CHECK(takes(many, XML_WEATHER) && takes(many, XML_WEATHER "\n" XML_WEATHER));
    CHECK(takes(many, XML_WEATHER "\n" XML_WEATHER "\n" XML_WEATHER "\n" XML_WEATHER));
    CHECK(!takes(many, XML_WEATHER "\n" XML_WEATHER "\n" XML_WEATHER "\n" XML_WEATHER "\n"
                       XML_WEATHER));
    ob_free(single);
    ob_free(many);
}

TEST(named_and_json_formats) {
    serve_error e;
    char *g = grammar_for(",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":"
                          "\"write\"}}", "hermes", &e);
    CHECK_MSG(g, "%s", e.message);
    if (!g) return;
    CHECK(takes(g, "<tool_call>\n{\"name\": \"write\", \"arguments\": {\"code\": \"x\"}}\n"
                   "</tool_call>"));
    CHECK(!takes(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\", "
                    "\"unit\": \"c\"}}\n</tool_call>"));
    ob_free(g);
    g = grammar_for(",\"tool_choice\":\"required\"", "llama3", &e);
    CHECK_MSG(g, "%s", e.message);
    if (!g) return;
    const char *one = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"P\", \"unit\": "
                      "\"f\"}}";
    CHECK(takes(g, one));
    char two[512];
    snprintf(two, sizeof two, "%s\n%s", one, one);
    CHECK(!takes(g, two)); /* Llama 3 writes one call per answer */
    ob_free(g);
}

TEST(refusals) {
    serve_error e;
    char *g = grammar_for(",\"tool_choice\":\"required\"", "mistral", &e);
    CHECK(!g && e.status == 400 && strstr(e.message, "mistral") && strstr(e.message, "qwen3-coder"));
    ob_free(g);
    const char *pattern = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                          "\"tool_choice\":\"required\",\"tools\":[{\"type\":\"function\","
                          "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                          "\"properties\":{\"c\":{\"type\":\"string\",\"pattern\":\"^[A-Z]+$\"}}}}}]}";
    serve_limits lim = {100000};
    serve_gen_req *r = NULL;
    memset(&e, 0, sizeof e);
    CHECK(!serve_openai_chat_parse(pattern, strlen(pattern), &lim, &r, &e));
    if (!r) return;
    g = serve_tool_grammar(r, "qwen3-coder", &e);
    CHECK(!g && e.status == 400 && strstr(e.message, "pattern") && strstr(e.message, "f.c"));
    ob_free(g);
    memset(&e, 0, sizeof e);
    g = serve_tool_grammar(r, "hermes", &e); /* a JSON string enforces its pattern */
    CHECK_MSG(g, "%s", e.message);
    ob_free(g);
    serve_gen_req_free(r);
}

int main(void) {
    const char *path = t_shared_path("models/stories260K.gguf");
    ob_err err;
    ob_model_params mp;
    ob_model_params_init(&mp);
    if (!path || ob_model_load(path, &mp, &MODEL, &err) || ob_vocab_trie_new(MODEL, &TRIE, &err)) {
        printf("skip: ../shared/models/stories260K.gguf not loadable\n");
        return 0;
    }
    RUN(xml_calls);
    RUN(named_and_json_formats);
    RUN(refusals);
    ob_vocab_trie_free(TRIE);
    ob_model_free(MODEL);
    return t_summary();
}
