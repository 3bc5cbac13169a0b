/*
 * Forced tool-call grammars (serve_tool_grammar.c): for a request's tools, the grammar of each
 * format takes exactly the calls the output parser reads back to a declared tool with valid
 * arguments, one or several as parallel_tool_calls says, and refuses the rest; what it cannot
 * enforce is a 400 naming why.
 */
#include "chat/output.h"
#include "core/alloc.h"
#include "grammar/grammar_int.h"
#include "serve/serve_request.h"
#include "serve/serve_tool_grammar.h"

#include "test.h"

#include <jansson.h>

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

/* The grammar for a chat request with `tools` and `extra` fields, in `format`; NULL with *e. */
static char *grammar_with(const char *tools, const char *extra, const char *format,
                          serve_error *e) {
    char body[4096];
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"}],\"tools\":%s%s}", tools, extra);
    serve_limits lim = {100000};
    serve_gen_req *r = NULL;
    memset(e, 0, sizeof *e);
    if (serve_openai_chat_parse(body, strlen(body), &lim, &r, e)) return NULL;
    char *g = serve_tool_grammar(r, format, NULL, e);
    serve_gen_req_free(r);
    return g;
}

/* The grammar for a chat request with TOOLS and `extra` fields, in `format`; NULL with *e. */
static char *grammar_for(const char *extra, const char *format, serve_error *e) {
    return grammar_with(TOOLS, extra, format, e);
}

/* A matcher for gbnf over trie (*g and *m to free); false, with the grammar printed, when
 * either cannot be made. */
static bool matcher_for(const ob_vocab_trie *trie, const char *gbnf, ob_grammar **g,
                        ob_matcher **m) {
    ob_err err;
    *g = NULL;
    *m = NULL;
    if (ob_grammar_new(gbnf, strlen(gbnf), NULL, g, &err) || ob_matcher_new(*g, trie, m, &err)) {
        fprintf(stderr, "grammar: %s\n%s\n", err.msg, gbnf);
        return false;
    }
    return true;
}

/* Whether the grammar takes the whole of text (as bytes) and may end after it, over trie. */
static bool takes_over(const ob_vocab_trie *trie, const char *gbnf, const char *text) {
    ob_grammar *g;
    ob_matcher *m;
    ob_err err;
    bool ok = matcher_for(trie, gbnf, &g, &m) &&
              !ob_matcher_accept_text(m, text, strlen(text), &err) && ob_matcher_can_end(m);
    ob_matcher_free(m);
    ob_grammar_free(g);
    return ok;
}

static bool takes(const char *gbnf, const char *text) { return takes_over(TRIE, gbnf, text); }

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
    char *g = grammar_for(",\"tool_choice\":\"required\"", "gemma", &e);
    CHECK(!g && e.status == 400 && strstr(e.message, "\"gemma\"") && strstr(e.message, "gemma4"));
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
    g = serve_tool_grammar(r, "qwen3-coder", NULL, &e);
    CHECK(!g && e.status == 400 && strstr(e.message, "pattern") && strstr(e.message, "f.c"));
    ob_free(g);
    memset(&e, 0, sizeof e);
    g = serve_tool_grammar(r, "hermes", NULL, &e); /* a JSON string enforces its pattern */
    CHECK_MSG(g, "%s", e.message);
    ob_free(g);
    memset(&e, 0, sizeof e);
    g = serve_tool_grammar(r, "gemma4", NULL, &e); /* Gemma 4's raw text does not */
    CHECK(!g && e.status == 400 && strstr(e.message, "'pattern'") && strstr(e.message, "f:"));
    ob_free(g);
    serve_gen_req_free(r);
}

/* ---- Gemma 4 literals ------------------------------------------------------------------- */

#define Q "<|\"|>" /* Gemma 4's string delimiter */
#define GEMMA_CALL(body) "<|tool_call>call:" body "<tool_call|>"
#define GEMMA_WEATHER GEMMA_CALL("get_weather{city:" Q "Paris" Q ",unit:" Q "c" Q "}")

/* Gemma 4 text calls for TOOLS: the arguments as its literals, keys in the order its template
 * writes them (dictsort), typed and bounded as the schema says. */
TEST(gemma4_calls) {
    serve_error e;
    char *single = grammar_for(",\"tool_choice\":\"required\",\"parallel_tool_calls\":false",
                               "gemma4", &e);
    char *many = grammar_for(",\"tool_choice\":\"required\"", "gemma4", &e);
    CHECK_MSG(single && many, "%s", e.message);
    if (!single || !many) return;
    CHECK(takes(single, GEMMA_WEATHER));
    CHECK(takes(single, GEMMA_CALL("get_weather{city:" Q "Rome" Q ",days:7,unit:" Q "f" Q "}")));
    /* the schema's order (days last) is not the template's */
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Rome" Q ",unit:" Q "f" Q ",days:7}")));
    /* raw text: quotes, newlines, a '<' before anything but '|' or 't'; an empty string */
    CHECK(takes(single, GEMMA_CALL("write{code:" Q "if (a < b) x(\"s\");\n</div>" Q ",tags:["
                                   Q "a" Q "," Q "b" Q "]}")));
    CHECK(takes(single, GEMMA_CALL("write{code:" Q Q "}")));
    /* what would end the string or the call early */
    CHECK(!takes(single, GEMMA_CALL("write{code:" Q "x" Q "y" Q "}")));
    CHECK(!takes(single, GEMMA_CALL("write{code:" Q "x<tool_call|>" Q "}")));
    CHECK(!takes(single, GEMMA_CALL("write{code:" Q "x<|turn>" Q "}")));
    /* the schema: required keys, enums, lengths, ranges, integers, $ref, nothing undeclared */
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Paris" Q "}")));
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Paris" Q ",unit:" Q "k" Q "}")));
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Llanfairpwllgwyngyll" Q ",unit:" Q
                                    "c" Q "}")));
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Paris" Q ",days:9,unit:" Q "c" Q "}")));
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Paris" Q ",days:2.5,unit:" Q "c" Q
                                    "}")));
    CHECK(!takes(single, GEMMA_CALL("write{code:" Q "x" Q ",tags:[" Q "c" Q "]}")));
    CHECK(!takes(single, GEMMA_CALL("get_weather{city:" Q "Paris" Q ",unit:" Q "c" Q ",zip:1}")));
    CHECK(!takes(single, GEMMA_CALL("delete_all{}")));
    /* JSON is not Gemma 4's syntax, nor are quoted strings or spacing it never writes */
    CHECK(!takes(single, GEMMA_CALL("get_weather{\"city\":\"Paris\",\"unit\":\"c\"}")));
    CHECK(!takes(single, GEMMA_CALL("get_weather{city: " Q "Paris" Q ",unit:" Q "c" Q "}")));
    /* several calls, back to back, only when parallel calls are allowed, at most four */
    CHECK(!takes(single, GEMMA_WEATHER GEMMA_WEATHER));
    CHECK(takes(many, GEMMA_WEATHER GEMMA_WEATHER GEMMA_WEATHER GEMMA_WEATHER));
    CHECK(!takes(many, GEMMA_WEATHER GEMMA_WEATHER GEMMA_WEATHER GEMMA_WEATHER GEMMA_WEATHER));
    ob_free(single);
    ob_free(many);
}

/* A tool with nested objects, nullable numbers, anyOf, const and a key that is not a word. */
#define NESTED_TOOLS                                                                            \
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":"          \
    "\"object\",\"properties\":{\"opts\":{\"type\":\"object\",\"properties\":{\"deep\":{"     \
    "\"type\":\"boolean\"},\"n\":{\"type\":[\"number\",\"null\"],\"minimum\":-10}},"          \
    "\"required\":[\"deep\"]},\"pick\":{\"anyOf\":[{\"type\":\"integer\"},{\"const\":"      \
    "{\"mode\":\"auto\"}}]},\"my key\":{\"type\":\"string\"}},\"required\":[\"opts\","   \
    "\"pick\"]}}}]"

/* The arguments (JSON text) Gemma 4's own parser reads from text's one call, or NULL. */
static char *gemma_arguments(const char *text) {
    chat_output out;
    ob_err err = {{0}};
    char *args = NULL;
    if (!chat_output_parse_tools(CHAT_FAMILY_GEMMA4, text, strlen(text), CHAT_OUTPUT_STRICT,
                                 NESTED_TOOLS, strlen(NESTED_TOOLS), &out, &err) &&
        out.n_calls == 1 && out.n_invalid == 0)
        args = ob_strndup(out.calls[0].arguments, strlen(out.calls[0].arguments));
    chat_output_clear(&out);
    return args;
}

/* Whether text's call parses back to the JSON arguments `want`. */
static bool parses_to(const char *text, const char *want) {
    char *got = gemma_arguments(text);
    json_t *a = got ? json_loads(got, 0, NULL) : NULL, *b = json_loads(want, 0, NULL);
    bool same = a && b && json_equal(a, b);
    if (!same) fprintf(stderr, "%s\n  read %s, expected %s\n", text, got ? got : "nothing", want);
    json_decref(a);
    json_decref(b);
    ob_free(got);
    return same;
}

TEST(gemma4_nested_literals) {
    serve_error e;
    char *g = grammar_with(NESTED_TOOLS, ",\"tool_choice\":{\"type\":\"function\","
                           "\"function\":{\"name\":\"f\"}}", "gemma4", &e);
    CHECK_MSG(g, "%s", e.message);
    if (!g) return;
    const char *a = GEMMA_CALL("f{opts:{deep:true},pick:5}");
    const char *b = GEMMA_CALL("f{" Q "my key" Q ":" Q "v" Q ",opts:{deep:false,n:null},"
                               "pick:{mode:" Q "auto" Q "}}");
    const char *c = GEMMA_CALL("f{opts:{deep:true,n:-2.5},pick:-3}");
    CHECK(takes(g, a) && parses_to(a, "{\"opts\":{\"deep\":true},\"pick\":5}"));
    CHECK(takes(g, b) && parses_to(b, "{\"opts\":{\"deep\":false,\"n\":null},\"pick\":{\"mode\":"
                                      "\"auto\"},\"my key\":\"v\"}"));
    CHECK(takes(g, c) && parses_to(c, "{\"opts\":{\"deep\":true,\"n\":-2.5},\"pick\":-3}"));
    CHECK(!takes(g, GEMMA_CALL("f{opts:{deep:true},pick:" Q "auto" Q "}")));
    CHECK(!takes(g, GEMMA_CALL("f{opts:{deep:true},pick:{mode:" Q "manual" Q "}}")));
    CHECK(!takes(g, GEMMA_CALL("f{opts:{n:1},pick:1}")));
    CHECK(!takes(g, GEMMA_CALL("f{opts:{deep:1},pick:1}")));
    CHECK(!takes(g, GEMMA_CALL("f{opts:{deep:true,n:-11},pick:1}")));
    CHECK(!takes(g, GEMMA_CALL("f{my key:" Q "v" Q ",opts:{deep:true},pick:1}")));
    ob_free(g);
}

/* ---- formats whose markers are control tokens ------------------------------------------ */

/* The tools of tests/chat/output_cases: get_weather(location, unit?) and get_time(). */
#define CASE_TOOLS                                                                              \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{"          \
    "\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"},\"unit\":{"         \
    "\"type\":\"string\",\"enum\":[\"c\",\"f\"]}},\"required\":[\"location\"]}}},"              \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":"     \
    "\"object\",\"properties\":{}}}}]"

/* A vocabulary of the 256 bytes as text tokens, the formats' markers as control tokens, and
 * end-of-generation tokens (gpt-oss's <|call|> among them, as in its real vocabulary). */
static const char *const CONTROL[] = {
    "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<|tool_call|>", "<|START_ACTION|>", "<|END_ACTION|>",
    "<|START_THINKING|>", "<|END_THINKING|>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>", "<|channel|>",
    "<|constrain|>", "<|message|>", "<|start|>", "<|end|>"};
static const char *const EOG[] = {"</s>", "<｜end▁of▁sentence｜>", "<|end_of_text|>",
                                  "<|call|>", "<|return|>", "<|END_OF_TURN_TOKEN|>"};
#define N_CONTROL (sizeof CONTROL / sizeof *CONTROL)
#define N_EOG (sizeof EOG / sizeof *EOG)
#define N_SYNTH (256 + N_CONTROL + N_EOG)
/* Gemma 4's markers, after those in the vocabulary its walks use (the other formats' walks keep
 * the vocabulary, and so the token picks, they were written with) */
static const char *const GEMMA_CONTROL[] = {"<|tool_call>", "<tool_call|>", Q};
#define N_GEMMA (sizeof GEMMA_CONTROL / sizeof *GEMMA_CONTROL)
#define N_ALL (N_SYNTH + N_GEMMA)

static char BYTE_TEXT[256][2];

static ob_vocab_trie *marker_vocab(bool gemma) {
    ob_vocab_trie *t = ob_calloc(1, sizeof *t);
    size_t n = gemma ? N_ALL : N_SYNTH;
    t->n_vocab = (int64_t)n;
    t->kind = ob_alloc(n, 1);
    t->text = ob_alloc(n, sizeof *t->text);
    t->text_len = ob_alloc(n, sizeof *t->text_len);
    for (size_t i = 0; i < n; i++) {
        if (i >= N_SYNTH) {
            t->text[i] = GEMMA_CONTROL[i - N_SYNTH];
            t->text_len[i] = (uint32_t)strlen(t->text[i]);
            t->kind[i] = VT_NEVER;
        } else if (i < 256) {
            BYTE_TEXT[i][0] = (char)i;
            t->text[i] = BYTE_TEXT[i];
            t->text_len[i] = 1;
            t->kind[i] = VT_TEXT;
        } else {
            bool eog = i >= 256 + N_CONTROL;
            t->text[i] = eog ? EOG[i - 256 - N_CONTROL] : CONTROL[i - 256];
            t->text_len[i] = (uint32_t)strlen(t->text[i]);
            t->kind[i] = eog ? VT_EOG : VT_NEVER;
        }
    }
    return gram_trie_build(t, NULL) ? NULL : t;
}

/* text as this vocabulary's tokens: a marker where one starts, else one byte. */
static size_t tokens_of(const ob_vocab_trie *t, const char *text, int32_t *ids, size_t cap) {
    size_t n = 0, len = strlen(text);
    for (size_t i = 0; i < len && n < cap;) {
        int32_t id = (int32_t)(unsigned char)text[i];
        for (size_t k = 256; k < (size_t)t->n_vocab; k++)
            if (len - i >= t->text_len[k] && !memcmp(text + i, t->text[k], t->text_len[k]))
                id = (int32_t)k;
        ids[n++] = id;
        i += t->text_len[id];
    }
    return n;
}

/* Whether the grammar takes text token by token (markers as their tokens), ending after it. */
static bool takes_as_tokens(const char *gbnf, const ob_vocab_trie *t, const char *text) {
    ob_grammar *g;
    ob_matcher *m;
    ob_err err;
    bool ok = matcher_for(t, gbnf, &g, &m);
    int32_t ids[4096];
    size_t n = tokens_of(t, text, ids, 4096);
    for (size_t i = 0; i < n && ok; i++) ok = !ob_matcher_accept(m, ids[i], &err);
    ok = ok && ob_matcher_can_end(m);
    ob_matcher_free(m);
    ob_grammar_free(g);
    return ok;
}

/* A chat request with CASE_TOOLS (tool_choice "required") as format writes it, markers as the
 * control tokens of t (NULL: as text). */
static char *case_grammar(const char *format, const ob_vocab_trie *t, serve_error *e) {
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"tool_choice\":\"required\",\"tools\":" CASE_TOOLS "}";
    serve_limits lim = {100000};
    serve_gen_req *r = NULL;
    memset(e, 0, sizeof *e);
    if (serve_openai_chat_parse(body, strlen(body), &lim, &r, e)) return NULL;
    char *g = serve_tool_grammar(r, format, t, e);
    serve_gen_req_free(r);
    return g;
}

/* s with the first `from` replaced by `to` (static storage). */
static const char *replaced(const char *s, const char *from, const char *to) {
    static char out[4096];
    const char *at = strstr(s, from);
    if (!at) return s;
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return out;
}

/* The case's text without the end-of-generation marker it may end in (the grammar ends
 * before it; the end token is then allowed). */
static const char *without_eog(const char *text) {
    static char out[4096];
    snprintf(out, sizeof out, "%s", text);
    for (size_t k = 0; k < N_EOG; k++) {
        size_t n = strlen(out), m = strlen(EOG[k]);
        if (n >= m && !strcmp(out + n - m, EOG[k]) && strcmp(EOG[k], "<|call|>")) out[n - m] = 0;
    }
    return out;
}

/* The formats and the cases of tests/chat/output_cases/<format>.json their grammar writes. */
static const struct {
    const char *format;
    const char *cases[3];
} FORMAT_CASES[] = {
    {"mistral", {"small_one_call", "small_two_calls", "nemo_two_calls"}},
    {"granite", {"one_call", "two_calls"}},
    {"command-r7b", {"two_calls"}},
    {"deepseek-r1", {"one_call", "two_calls"}},
    {"deepseek-v3.1", {"one_call", "two_calls"}},
    {"gpt-oss", {"one_call"}},
    {"gemma4", {"one_call", "two_calls"}},
};

/* Every case text passes its format's grammar, markers as tokens and (no vocabulary) as text;
 * the same text with a tool that is not declared or a bad argument does not. */
TEST(control_token_formats_take_their_cases) {
    ob_vocab_trie *base = marker_vocab(false), *gemma = marker_vocab(true);
    CHECK(base && gemma);
    if (!base || !gemma) return;
    int checked = 0;
    for (size_t f = 0; f < sizeof FORMAT_CASES / sizeof *FORMAT_CASES; f++) {
        const char *fmt = FORMAT_CASES[f].format;
        const ob_vocab_trie *t = strcmp(fmt, "gemma4") ? base : gemma;
        char path[256];
        snprintf(path, sizeof path, "tests/chat/output_cases/%s.json", fmt);
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je);
        CHECK_MSG(root, "%s: %s", path, je.text);
        serve_error e;
        char *tok = case_grammar(fmt, t, &e), *txt = case_grammar(fmt, NULL, &e);
        CHECK_MSG(tok && txt, "%s: %s", fmt, e.message);
        /* the token grammar names the markers by id, the text grammar spells them */
        CHECK_MSG(tok && strstr(tok, "<[") && txt && !strstr(txt, "<["), "%s", fmt);
        for (size_t c = 0; c < 3 && FORMAT_CASES[f].cases[c] && tok && txt && root; c++) {
            const char *want = FORMAT_CASES[f].cases[c], *text = NULL;
            size_t i;
            json_t *k;
            json_array_foreach(json_object_get(root, "cases"), i, k)
                if (!strcmp(json_string_value(json_object_get(k, "name")), want))
                    text = json_string_value(json_object_get(k, "text"));
            CHECK_MSG(text, "%s: no case %s", path, want);
            if (!text) continue;
            CHECK_MSG(takes_as_tokens(tok, t, text), "%s %s: tokens refused", fmt, want);
            CHECK_MSG(takes_over(t, txt, without_eog(text)), "%s %s: text refused", fmt, want);
            /* the markers' text in bytes is not the markers */
            CHECK_MSG(!takes_over(t, tok, without_eog(text)), "%s %s: bytes taken for tokens", fmt,
                      want);
            const char *paris = strstr(text, Q) ? Q "Paris" Q : "\"Paris\"";
            CHECK_MSG(!takes_as_tokens(tok, t, replaced(text, "get_weather", "get_wether")) &&
                          !takes_as_tokens(tok, t, replaced(text, paris, "3")),
                      "%s %s: a wrong tool or argument taken", fmt, want);
            checked++;
        }
        ob_free(tok);
        ob_free(txt);
        json_decref(root);
    }
    CHECK(checked == 13);
    ob_vocab_trie_free(base);
    ob_vocab_trie_free(gemma);
}

/* Random walks through each format's grammar over the marker vocabulary: what the grammar lets
 * a model write, the format's own output parser reads back to calls of declared tools with
 * valid arguments, nothing invalid and no text. Picks lean towards closing tokens so strings
 * stay short. */
TEST(control_token_formats_parse_back) {
    ob_vocab_trie *base = marker_vocab(false), *gemma = marker_vocab(true);
    CHECK(base && gemma);
    if (!base || !gemma) return;
    uint64_t rng = 3;
    static float logits[N_ALL];
    int calls = 0, walks = 0;
    for (size_t f = 0; f < sizeof FORMAT_CASES / sizeof *FORMAT_CASES; f++) {
        const char *fmt = FORMAT_CASES[f].format;
        /* every format walks the vocabulary with all markers: another format's control
         * token must never get into a call (gpt-oss's reasoning once took <|start|>) */
        const ob_vocab_trie *t = gemma;
        serve_error e;
        char *gbnf = case_grammar(fmt, t, &e);
        ob_grammar *g = NULL;
        CHECK(gbnf && !ob_grammar_new(gbnf, strlen(gbnf), NULL, &g, NULL));
        chat_family fam;
        CHECK(!chat_family_from_name(fmt, &fam, NULL));
        for (int walk = 0; walk < 12 && g; walk++) {
            ob_matcher *m = NULL;
            CHECK(!ob_matcher_new(g, t, &m, NULL));
            char text[8192];
            size_t len = 0;
            bool ended = false;
            for (int step = 0; step < 1500 && m && !ended; step++) {
                for (size_t i = 0; i < (size_t)t->n_vocab; i++) logits[i] = 0;
                CHECK(!ob_matcher_mask(m, logits, NULL));
                int32_t allowed[N_ALL], closing[N_ALL];
                size_t n_allowed = 0, n_closing = 0;
                for (size_t i = 0; i < (size_t)t->n_vocab; i++) {
                    if (logits[i] != 0) continue;
                    allowed[n_allowed++] = (int32_t)i;
                    if (i >= 256 || strchr("\"}]0123456789", (int)i)) closing[n_closing++] = (int32_t)i;
                }
                CHECK(n_allowed > 0);
                if (!n_allowed) break;
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                bool close = n_closing && (rng >> 62) != 0;
                int32_t pick = close ? closing[(rng >> 20) % n_closing]
                                     : allowed[(rng >> 20) % n_allowed];
                if (t->kind[pick] == VT_EOG) { /* the answer ends (gpt-oss: at its <|call|>) */
                    ended = true;
                    break;
                }
                CHECK(!ob_matcher_accept(m, pick, NULL));
                if (len + t->text_len[pick] < sizeof text) {
                    memcpy(text + len, t->text[pick], t->text_len[pick]);
                    len += t->text_len[pick];
                }
                ended = ob_matcher_is_done(m);
            }
            ob_matcher_free(m);
            if (!ended) continue; /* a long walk: nothing to read back */
            walks++;
            chat_output out;
            ob_err err = {{0}};
            CHECK_MSG(!chat_output_parse_tools(fam, text, len, CHAT_OUTPUT_STRICT, CASE_TOOLS,
                                               strlen(CASE_TOOLS), &out, &err),
                      "%s: %s\n%.*s", fmt, err.msg, (int)len, text);
            CHECK_MSG(out.n_calls >= 1 && out.n_invalid == 0 && out.content_len == 0,
                      "%s: %zu calls, %zu invalid, content '%s' from\n%.*s", fmt, out.n_calls,
                      out.n_invalid, out.content ? out.content : "", (int)len, text);
            for (size_t c = 0; c < out.n_calls; c++) {
                json_t *args = json_loads(out.calls[c].arguments, 0, NULL);
                bool weather = !strcmp(out.calls[c].name, "get_weather");
                const char *unit = json_string_value(json_object_get(args, "unit"));
                bool valid = json_is_object(args) &&
                             (weather ? json_is_string(json_object_get(args, "location")) &&
                                            (!json_object_get(args, "unit") ||
                                             (unit && strchr("cf", unit[0]) && !unit[1]))
                                      : !strcmp(out.calls[c].name, "get_time") &&
                                            json_object_size(args) == 0);
                CHECK_MSG(valid, "%s: call %s(%s) from\n%.*s", fmt, out.calls[c].name,
                          out.calls[c].arguments, (int)len, text);
                json_decref(args);
                calls++;
            }
            chat_output_clear(&out);
        }
        ob_grammar_free(g);
        ob_free(gbnf);
    }
    CHECK_MSG(walks >= 40 && calls >= walks, "%d walks ended, %d calls", walks, calls);
    ob_vocab_trie_free(base);
    ob_vocab_trie_free(gemma);
}

int main(void) {
    /* these need no model: their vocabulary is synthetic */
    RUN(control_token_formats_take_their_cases);
    RUN(control_token_formats_parse_back);
    const char *path = t_shared_path("models/stories260K.gguf");
    ob_err err;
    ob_model_params mp;
    ob_model_params_init(&mp);
    if (!path || ob_model_load(path, &mp, &MODEL, &err) || ob_vocab_trie_new(MODEL, &TRIE, &err)) {
        printf("skip: ../shared/models/stories260K.gguf not loadable\n");
        return t_summary();
    }
    RUN(xml_calls);
    RUN(named_and_json_formats);
    RUN(refusals);
    RUN(gemma4_calls);
    RUN(gemma4_nested_literals);
    ob_vocab_trie_free(TRIE);
    ob_model_free(MODEL);
    return t_summary();
}
