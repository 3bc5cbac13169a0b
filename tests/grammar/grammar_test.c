/*
 * The grammar engine without a model: GBNF parsing (accepted and rejected strings, error
 * messages with line:column), JSON schema translation (valid and invalid documents, exact
 * integer and number ranges checked against brute force, refused keywords), and token masks
 * over a synthetic vocabulary compared with token-by-token checks.
 */
#include "grammar/grammar_int.h"

#include "core/alloc.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static ob_grammar *compile(const char *src) {
    ob_grammar *g = NULL;
    ob_err err = {{0}};
    if (ob_grammar_new(src, strlen(src), NULL, &g, &err)) fprintf(stderr, "  %s\n", err.msg);
    return g;
}

/* Whether g matches all of s (and may end there). */
static bool matches(const ob_grammar *g, const char *s) {
    gram_match m;
    if (gram_match_init(&m, g, NULL)) return false;
    bool ok = gram_match_feed(&m, s, strlen(s)) && gram_state_can_end(&m.st);
    gram_match_free(&m);
    return ok;
}

static bool prefix_ok(const ob_grammar *g, const char *s) {
    gram_match m;
    if (gram_match_init(&m, g, NULL)) return false;
    bool ok = gram_match_feed(&m, s, strlen(s));
    gram_match_free(&m);
    return ok;
}

TEST(gbnf_basics) {
    ob_grammar *g = compile("root ::= \"a\" [b-d]* \"e\"\n");
    CHECK(g);
    CHECK(matches(g, "ae") && matches(g, "abcde") && matches(g, "adddbe"));
    CHECK(!matches(g, "af") && !matches(g, "a") && !matches(g, "aee") && !matches(g, ""));
    CHECK(prefix_ok(g, "abc") && !prefix_ok(g, "ax"));
    ob_grammar_free(g);
    g = compile("root ::= (\"ab\" | \"c\"){2,3}");
    CHECK(g);
    CHECK(matches(g, "abc") && matches(g, "cab") && matches(g, "ccc") && matches(g, "ababab"));
    CHECK(!matches(g, "c") && !matches(g, "cccc") && !matches(g, "abca"));
    ob_grammar_free(g);
    /* rules named like the parser's helpers do not meet them */
    g = compile("root ::= (\"a\" root_1)* (\"c\"){1,2}\nroot_1 ::= \"b\"\nroot_2 ::= \"x\"");
    CHECK(g && matches(g, "ababc") && matches(g, "cc") && !matches(g, "abx"));
    ob_grammar_free(g);
    g = compile("root ::= [^a-z]+ x? y+ .\nx ::= \"-\"\ny ::= \"!\"");
    CHECK(g);
    CHECK(matches(g, "AB1-!!z") && matches(g, "Q!\xc3\xa9"));
    CHECK(!matches(g, "Ab!z") && !matches(g, "A-z"));
    ob_grammar_free(g);
}

TEST(gbnf_escapes_utf8_comments) {
    ob_grammar *g = compile("root ::= \"\\x41\\u00e9\\n\\\"\" [\\]\\\\] [α-ω]+");
    CHECK(g);
    CHECK(matches(g, "A\xc3\xa9\n\"]\xce\xb1\xce\xb2") && matches(g, "A\xc3\xa9\n\"\\\xcf\x89"));
    CHECK(!matches(g, "A\xc3\xa9\n\"]a"));
    /* a token may end inside a character: the partial bytes are viable */
    CHECK(prefix_ok(g, "A\xc3") && !prefix_ok(g, "A\xc4"));
    ob_grammar_free(g);
    /* A negated class takes any character, but a partial character that only a surrogate or a
     * value past U+10FFFF could complete is not viable: no token could continue it. */
    g = compile("root ::= [^\"]*");
    CHECK(g);
    CHECK(prefix_ok(g, "a\xed") && prefix_ok(g, "a\xed\x9f") && matches(g, "a\xed\x9f\xbf"));
    CHECK(!prefix_ok(g, "a\xed\xa0") && !prefix_ok(g, "a\xed\xbd") && !prefix_ok(g, "\xf4\x90"));
    CHECK(prefix_ok(g, "\xf4\x8f") && matches(g, "\xf4\x8f\xbf\xbf"));
    ob_grammar_free(g);
    g = compile("# a comment\nroot ::= a | b  # trailing\na ::= \"x\" (\n   \"y\" |\n \"z\"\n)\n\n"
                "b ::= \"w\"{0,2}\n");
    CHECK(g);
    CHECK(matches(g, "xy") && matches(g, "xz") && matches(g, "") && matches(g, "ww"));
    CHECK(!matches(g, "www") && !matches(g, "x"));
    ob_grammar_free(g);
    g = compile("root ::= \"(\" root \")\" | \"\"");
    CHECK(g && matches(g, "((()))") && matches(g, "") && !matches(g, "(()"));
    ob_grammar_free(g);
}

static void expect_error(const char *src, ob_status want, const char *part) {
    ob_grammar *g = NULL;
    ob_err err = {{0}};
    ob_status st = ob_grammar_new(src, strlen(src), NULL, &g, &err);
    CHECK_MSG(st == want && !g && strstr(err.msg, part), "%s -> %s (%s), want %s", src,
              err.msg, ob_status_name(st), part);
}

TEST(gbnf_errors) {
    expect_error("root ::= \"a", OB_ERR_FORMAT, "grammar:1:10: unterminated string literal");
    expect_error("root ::= foo", OB_ERR_FORMAT, "grammar:1:10: undefined rule 'foo'");
    expect_error("root ::= \"a\"\nb ::= [a-", OB_ERR_FORMAT, "grammar:2:7: unterminated");
    expect_error("root ::= root \"a\" | \"b\"", OB_ERR_FORMAT, "left-recursive");
    expect_error("root ::= (\"a\"?)*", OB_ERR_FORMAT, "left-recursive");
    expect_error("a ::= \"x\"", OB_ERR_FORMAT, "no rule named 'root'");
    expect_error("root ::= \"\\q\"", OB_ERR_FORMAT, "grammar:1:11: unknown escape");
    expect_error("root ::= \"a\"{3,2}", OB_ERR_FORMAT, "n below m");
    expect_error("root ::= \"a\"{5000}", OB_ERR_LIMIT, "limit");
    expect_error("root ::= \"a\" )", OB_ERR_FORMAT, "grammar:1:14");
    expect_error("root = \"a\"", OB_ERR_FORMAT, "grammar:1:6: expected '::='");
    expect_error("root ::= \"a\"\nroot ::= \"b\"", OB_ERR_FORMAT, "defined twice");
    expect_error("root ::= [z-a]", OB_ERR_FORMAT, "range end below");
}

/* ---- JSON schema ------------------------------------------------------------------------- */

static ob_grammar *schema(const char *s) {
    ob_grammar *g = NULL;
    ob_err err = {{0}};
    if (ob_grammar_from_json_schema(s, s ? strlen(s) : 0, &g, &err)) fprintf(stderr, "  %s\n", err.msg);
    return g;
}

TEST(schema_objects) {
    ob_grammar *g = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                           "\"b\":{\"type\":\"string\"},\"c\":{\"type\":\"boolean\"}},"
                           "\"required\":[\"a\",\"c\"]}");
    CHECK(g);
    CHECK(matches(g, "{\"a\":1,\"c\":true}") && matches(g, "{\"a\":-12,\"b\":\"x\\\"y\",\"c\":false}"));
    CHECK(matches(g, "{ \"a\" : 1 ,\n  \"c\" : true }"));
    CHECK(!matches(g, "{\"c\":true}") && !matches(g, "{\"a\":1}") && !matches(g, "{\"a\":1.5,\"c\":true}"));
    CHECK(!matches(g, "{\"a\":1,\"c\":true,\"d\":1}") && !matches(g, "{\"a\":01,\"c\":true}"));
    ob_grammar_free(g);
    g = schema("{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"null\"}},"
               "\"additionalProperties\":{\"type\":\"number\"}}");
    CHECK(g && matches(g, "{}") && matches(g, "{\"x\":null,\"k\":2.5e3,\"j\":-1}") &&
          matches(g, "{\"k\":1}") && !matches(g, "{\"k\":\"s\"}"));
    ob_grammar_free(g);
    g = schema(NULL);
    CHECK(g && matches(g, "{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\"}") && !matches(g, "[1]"));
    ob_grammar_free(g);
    /* no properties declared: any object; a required name not declared is still required */
    g = schema("{\"type\":\"object\"}");
    CHECK(g && matches(g, "{}") && matches(g, "{\"k\":[true]}") && !matches(g, "[]"));
    ob_grammar_free(g);
    g = schema("{\"type\":\"object\",\"required\":[\"id\"],"
               "\"additionalProperties\":{\"type\":\"integer\"}}");
    CHECK(g && matches(g, "{\"id\":3}") && matches(g, "{\"id\":3,\"z\":4}") &&
          !matches(g, "{}") && !matches(g, "{\"id\":\"x\"}"));
    ob_grammar_free(g);
    char *text = NULL;
    size_t len = 0;
    CHECK(ob_json_schema_to_gbnf("{\"const\":1}", 11, "call", &text, &len, NULL) == OB_OK);
    CHECK(strstr(text, "call ::= call-1\n") && strstr(text, "call-1 ::= \"1\"\n"));
    ob_string_free(text);
}

TEST(schema_combinators) {
    ob_grammar *g = schema("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
                           "\"v\":{\"enum\":[\"x\",1,null]},\"kids\":{\"type\":\"array\","
                           "\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},"
                           "\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}");
    CHECK(g);
    CHECK(matches(g, "{\"v\":\"x\",\"kids\":[{\"v\":1},{\"v\":null,\"kids\":[]}]}"));
    CHECK(!matches(g, "{\"v\":2}") && !matches(g, "{\"v\":1,\"kids\":[{\"v\":1},{\"v\":1},{\"v\":1}]}"));
    ob_grammar_free(g);
    g = schema("{\"anyOf\":[{\"type\":\"string\",\"minLength\":2,\"maxLength\":3},"
               "{\"const\":{\"k\":[1,2]}}, {\"type\":\"array\",\"items\":{\"type\":\"boolean\"},"
               "\"minItems\":2}]}");
    CHECK(g && matches(g, "\"ab\"") && matches(g, "\"abc\"") && !matches(g, "\"a\"") &&
          !matches(g, "\"abcd\"") && matches(g, "{\"k\":[1,2]}") && matches(g, "[true,false]") &&
          !matches(g, "[true]"));
    ob_grammar_free(g);
    g = schema("{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
               "{\"properties\":{\"b\":{\"type\":\"integer\"}},\"required\":[\"b\"]}]}");
    CHECK(g && matches(g, "{\"a\":1,\"b\":2}") && !matches(g, "{\"a\":1}"));
    ob_grammar_free(g);
    g = schema("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3}(x|yz)?$\"}");
    CHECK(g && matches(g, "\"AB-123\"") && matches(g, "\"QQ-000yz\"") && !matches(g, "\"A-123\"") &&
          !matches(g, "\"AB-12\""));
    ob_grammar_free(g);
    g = schema("{\"type\":[\"string\",\"null\"],\"format\":\"date\"}");
    CHECK(g && matches(g, "\"2024-02-29\"") && matches(g, "null") && !matches(g, "\"2024-13-01\""));
    ob_grammar_free(g);
    g = schema("{\"type\":\"string\",\"format\":\"uuid\"}");
    CHECK(g && matches(g, "\"123e4567-e89b-12d3-a456-426614174000\"") && !matches(g, "\"x\""));
    ob_grammar_free(g);
}

/* Integers from -1100 to 1100 against a range, both bounds optional. */
static void check_int_range(const char *bounds, double lo, double hi, bool integer) {
    char s[256];
    snprintf(s, sizeof s, "{\"type\":\"%s\"%s}", integer ? "integer" : "number", bounds);
    ob_grammar *g = schema(s);
    CHECK_MSG(g, "%s", s);
    for (int v = -1100; v <= 1100; v++) {
        char num[32];
        snprintf(num, sizeof num, "%d", v);
        bool want = v >= lo && v <= hi;
        CHECK_MSG(matches(g, num) == want, "%s: %s should be %s", s, num, want ? "in" : "out");
        if (!integer && v % 7 == 0) { /* and a fraction */
            snprintf(num, sizeof num, "%s%d.25", v < 0 || (v == 0 && lo < 0 && (v & 1)) ? "-" : "",
                     abs(v));
            double x = v < 0 ? v - 0.25 : v + 0.25;
            if (matches(g, num)) CHECK_MSG(x >= lo && x <= hi, "%s: %s is out of range", s, num);
        }
    }
    ob_grammar_free(g);
}

TEST(schema_ranges) {
    check_int_range(",\"minimum\":-5,\"maximum\":137", -5, 137, true);
    check_int_range(",\"minimum\":10", 10, INFINITY, true);
    check_int_range(",\"maximum\":-17", -INFINITY, -17, true);
    check_int_range(",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1000", 1, 999, true);
    check_int_range(",\"minimum\":-1000,\"maximum\":-100", -1000, -100, true);
    check_int_range(",\"minimum\":0,\"maximum\":10", 0, 10, false);
    check_int_range(",\"minimum\":-2.5,\"maximum\":99.5", -2.5, 99.5, false);
    check_int_range(",\"maximum\":3", -INFINITY, 3, false);
    ob_grammar *g = schema("{\"type\":\"number\",\"minimum\":0,\"maximum\":10}");
    CHECK(g && matches(g, "9.999") && matches(g, "10") && !matches(g, "10.5") &&
          !matches(g, "-0.5") && !matches(g, "1e3"));
    ob_grammar_free(g);
}

static void expect_schema_error(const char *s, ob_status want, const char *part) {
    ob_grammar *g = NULL;
    ob_err err = {{0}};
    ob_status st = ob_grammar_from_json_schema(s, strlen(s), &g, &err);
    CHECK_MSG(st == want && !g && strstr(err.msg, part), "%s -> %s, want %s", s, err.msg, part);
}

TEST(schema_refusals) {
    expect_schema_error("{\"type\":\"integer\",\"multipleOf\":3}", OB_ERR_UNSUPPORTED,
                        "schema: keyword 'multipleOf' is not supported");
    expect_schema_error("{\"properties\":{\"a\":{\"type\":\"object\",\"minProperties\":1}}}",
                        OB_ERR_UNSUPPORTED, "schema.properties.a: keyword 'minProperties'");
    expect_schema_error("{\"type\":\"string\",\"pattern\":\"(?=a)b\"}", OB_ERR_UNSUPPORTED,
                        "pattern: lookaround");
    expect_schema_error("{\"$ref\":\"http://x/y\"}", OB_ERR_UNSUPPORTED, "same document");
    expect_schema_error("{\"$ref\":\"#/$defs/none\"}", OB_ERR_FORMAT, "points at nothing");
    expect_schema_error("{\"type\":\"array\",\"uniqueItems\":true}", OB_ERR_UNSUPPORTED,
                        "uniqueItems");
    expect_schema_error("{\"type\":", OB_ERR_FORMAT, "JSON schema: line 1");
    expect_schema_error("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", OB_ERR_UNSUPPORTED,
                        "no integer");
}

/* ---- masks over a synthetic vocabulary ---------------------------------------------- */

static const char *const vocab_text[] = {
    "{", "}", "\"", "\"a", "a", "ab", "\":", ":", ",", " ", "\n", "1", "12", "-", ".", "5",
    "true", "tr", "ue", "null", "[", "]", "[{", "}]", "\",", "\"}", "\xc3", "\xa9", "\xc3\xa9",
    "x\"", "\\", "\\n", "e", "E+", "\"a\":", "{\"", "\"b", "b\"", "f", "false", "{}", "",
};

static ob_vocab_trie *synthetic_vocab(int32_t *eog) {
    int64_t n = sizeof vocab_text / sizeof *vocab_text + 1;
    ob_vocab_trie *t = ob_calloc(1, sizeof *t);
    t->n_vocab = n;
    t->kind = ob_alloc((size_t)n, 1);
    t->text = ob_alloc((size_t)n, sizeof *t->text);
    t->text_len = ob_alloc((size_t)n, sizeof *t->text_len);
    for (int64_t i = 0; i < n - 1; i++) {
        t->text[i] = vocab_text[i];
        t->text_len[i] = (uint32_t)strlen(vocab_text[i]);
        t->kind[i] = t->text_len[i] ? VT_TEXT : VT_NEVER;
    }
    t->text[n - 1] = "";
    t->text_len[n - 1] = 0;
    t->kind[n - 1] = VT_EOG;
    *eog = (int32_t)(n - 1);
    if (gram_trie_build(t, NULL)) return NULL;
    return t;
}

TEST(mask_equals_token_checks) {
    int32_t eog;
    ob_vocab_trie *t = synthetic_vocab(&eog);
    CHECK(t);
    ob_grammar *g = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
                           "\"items\":{\"type\":\"number\"}},\"b\":{\"enum\":[\"é\",true]}},"
                           "\"required\":[\"a\"]}");
    CHECK(g);
    int64_t n = t->n_vocab;
    float *logits = ob_alloc((size_t)n, sizeof *logits);
    uint64_t rng = 7;
    for (int walk = 0; walk < 40; walk++) {
        ob_matcher *m = NULL;
        CHECK(ob_matcher_new(g, t, &m, NULL) == OB_OK);
        for (int step = 0; step < 40; step++) {
            for (int64_t i = 0; i < n; i++) logits[i] = 0;
            CHECK(ob_matcher_mask(m, logits, NULL) == OB_OK);
            int32_t allowed[64];
            int n_allowed = 0;
            for (int64_t i = 0; i < n; i++) {
                bool a = ob_matcher_allows(m, (int32_t)i);
                CHECK_MSG(a == (logits[i] == 0), "walk %d step %d token %lld ('%s'): mask %d, "
                          "check %d", walk, step, (long long)i, t->text[i], logits[i] == 0, a);
                if (a) allowed[n_allowed++] = (int32_t)i;
            }
            CHECK(n_allowed > 0);
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int32_t pick = allowed[(rng >> 33) % (uint64_t)n_allowed];
            if (pick == eog) break;
            CHECK(ob_matcher_accept(m, pick, NULL) == OB_OK);
        }
        ob_matcher *c = NULL;
        CHECK(ob_matcher_clone(m, &c, NULL) == OB_OK);
        CHECK(ob_matcher_can_end(c) == ob_matcher_can_end(m));
        ob_matcher_reset(c);
        CHECK(ob_matcher_allows(c, 0) && !ob_matcher_allows(c, 1)); /* "{" only at the start */
        ob_matcher_free(c);
        ob_matcher_free(m);
    }
    ob_free(logits);
    ob_grammar_free(g);
    ob_vocab_trie_free(t);
}

/* ---- token elements -------------------------------------------------------------------- */

/* Text tokens, then control tokens with a text (VT_NEVER), then two end-of-generation tokens:
 * one with a text ("<|call|>", as gpt-oss has) and one without. */
static const char *const tok_vocab_text[] = {"a", "b", "ab", "<", "b>", "<b>", "|", "x",
                                             "<|im_end|>", "[TOOL_CALLS]", "<|call|>", ""};
enum { TV_A, TV_B, TV_AB, TV_LT, TV_BGT, TV_TAG_B, TV_BAR, TV_X, TV_IM_END, TV_TOOL_CALLS,
       TV_CALL, TV_EOS, TV_N };

static ob_vocab_trie *token_vocab(void) {
    ob_vocab_trie *t = ob_calloc(1, sizeof *t);
    t->n_vocab = TV_N;
    t->kind = ob_alloc(TV_N, 1);
    t->text = ob_alloc(TV_N, sizeof *t->text);
    t->text_len = ob_alloc(TV_N, sizeof *t->text_len);
    for (int i = 0; i < TV_N; i++) {
        t->text[i] = tok_vocab_text[i];
        t->text_len[i] = (uint32_t)strlen(tok_vocab_text[i]);
        t->kind[i] = i >= TV_CALL ? VT_EOG : i >= TV_IM_END ? VT_NEVER : VT_TEXT;
    }
    if (gram_trie_build(t, NULL)) return NULL;
    return t;
}

/* Whether the token ids ids[0..n) are accepted one by one and the grammar may end after them. */
static bool takes_tokens(const ob_grammar *g, const ob_vocab_trie *t, const int32_t *ids,
                         size_t n) {
    ob_matcher *m = NULL;
    if (ob_matcher_new(g, t, &m, NULL)) return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) ok = ob_matcher_accept(m, ids[i], NULL) == OB_OK;
    ok = ok && ob_matcher_can_end(m);
    ob_matcher_free(m);
    return ok;
}

#define TAKES(g, t, ...)                                                                        \
    takes_tokens(g, t, (const int32_t[]){__VA_ARGS__},                                         \
                 sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

TEST(token_elements_parse) {
    ob_vocab_trie *t = token_vocab();
    CHECK(t);
    /* by text (a control token), by id, negated, repeated, in groups */
    ob_grammar *g = compile("root ::= \"a\" <|im_end|> (<[9]> | \"x\")? !<|im_end|>{1,2} <|im_end|>");
    CHECK(g && g->n_tokens == 4);
    if (!g || !t) return;
    CHECK(TAKES(g, t, TV_A, TV_IM_END, TV_TOOL_CALLS, TV_B, TV_IM_END));
    CHECK(TAKES(g, t, TV_A, TV_IM_END, TV_X, TV_AB, TV_IM_END));
    CHECK(TAKES(g, t, TV_A, TV_IM_END, TV_TOOL_CALLS, TV_TOOL_CALLS, TV_IM_END));
    CHECK(!TAKES(g, t, TV_A, TV_IM_END, TV_IM_END, TV_IM_END));     /* !<x> is not x */
    CHECK(!TAKES(g, t, TV_A, TV_IM_END, TV_B, TV_B, TV_B, TV_IM_END)); /* {1,2} */
    CHECK(!TAKES(g, t, TV_A, TV_IM_END, TV_B, TV_EOS));               /* nor an end token */
    ob_grammar_free(g);
    /* a token element matches the token, never the same text in bytes or other tokens */
    g = compile("root ::= <b> \"b\"");
    CHECK(g);
    if (g) {
        CHECK(TAKES(g, t, TV_TAG_B, TV_B));
        CHECK(!TAKES(g, t, TV_LT, TV_BGT, TV_B) && !TAKES(g, t, TV_LT, TV_B, TV_BGT, TV_B));
        ob_matcher *m = NULL;
        CHECK(ob_matcher_new(g, t, &m, NULL) == OB_OK);
        CHECK(m && ob_matcher_accept_text(m, "<b>", 3, NULL) != OB_OK);
        ob_matcher_free(m);
    }
    ob_grammar_free(g);
    /* "<" inside a literal or a class is text, as before */
    g = compile("root ::= \"<|im_end|>\" [<>]");
    CHECK(g && g->n_tokens == 0 && matches(g, "<|im_end|><"));
    CHECK(g && !TAKES(g, t, TV_IM_END, TV_LT) && !TAKES(g, t, TV_IM_END, TV_BGT));
    ob_grammar_free(g);
    /* an end-of-generation token named by an element moves the grammar on */
    g = compile("root ::= \"a\" <|call|> \"b\"");
    CHECK(g && TAKES(g, t, TV_A, TV_CALL, TV_B) && !TAKES(g, t, TV_A, TV_EOS));
    ob_grammar_free(g);
    ob_vocab_trie_free(t);
}

TEST(token_element_errors) {
    expect_error("root ::= <|im_end", OB_ERR_FORMAT, "grammar:1:10: unterminated token element");
    expect_error("root ::= (\"a\"\n  !\"b\")", OB_ERR_FORMAT, "grammar:2:4: expected '<' after '!'");
    expect_error("root ::= <[]>", OB_ERR_FORMAT, "grammar:1:12: expected a token id");
    expect_error("root ::= <[12x]>", OB_ERR_FORMAT, "expected ']>'");
    expect_error("root ::= <[99999999999]>", OB_ERR_LIMIT, "token id too large");
    expect_error("root ::= <>", OB_ERR_FORMAT, "empty token element");
    /* a token consumes input, so repeating one is not left recursion */
    ob_grammar *rep = compile("root ::= (!<[1]>)* x\nx ::= (<a> | \"c\")+ <b>");
    CHECK(rep);
    ob_grammar_free(rep);
    /* the vocabulary decides at matcher time: a text no single token has, an id beyond it */
    ob_vocab_trie *t = token_vocab();
    static const struct {
        const char *src, *msg;
    } bad[] = {{"root ::= (\"a\"\n  <|im_start|>)", "grammar:2:3: no single token of this "
                                                   "vocabulary is '<|im_start|>'"},
               {"root ::= !<ab>", "grammar:1:10: no single token of this vocabulary is '<ab>'"},
               {"root ::= <[12]>", "grammar:1:10: token <[12]> is outside the vocabulary of 12"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad && t; i++) {
        ob_grammar *g = compile(bad[i].src);
        ob_matcher *m = NULL;
        ob_err err = {{0}};
        CHECK(g);
        ob_status st = g ? ob_matcher_new(g, t, &m, &err) : OB_ERR_ARG;
        CHECK_MSG(st == OB_ERR_ARG && !m && strstr(err.msg, bad[i].msg), "%s -> %s", bad[i].src,
                  err.msg);
        ob_grammar_free(g);
    }
    ob_vocab_trie_free(t);
}

/* Masks equal token-by-token checks along random walks of a grammar that mixes bytes, named
 * control tokens, negated tokens and an end token with a text; every walk is also cloned,
 * reset and replayed token by token. */
TEST(token_mask_equals_checks) {
    ob_vocab_trie *t = token_vocab();
    ob_grammar *g = compile("root ::= (<[9]> call | \"x\" body)+ end?\n"
                "call ::= \"a\"+ \"b\" | <b> (!<|im_end|>){0,3} <|im_end|>\n"
                "body ::= [ab|]* <|call|>?\n"
                "end ::= \"<\" [|b] | <|im_end|>\n");
    CHECK(g && t);
    if (!g || !t) return;
    float logits[TV_N];
    uint64_t rng = 5;
    int saw_control = 0, saw_negated = 0;
    for (int walk = 0; walk < 60; walk++) {
        ob_matcher *m = NULL;
        CHECK(ob_matcher_new(g, t, &m, NULL) == OB_OK);
        if (!m) break;
        int32_t path[40];
        int n_path = 0;
        for (int step = 0; step < 40; step++) {
            for (int i = 0; i < TV_N; i++) logits[i] = 0;
            CHECK(ob_matcher_mask(m, logits, NULL) == OB_OK);
            int32_t allowed[TV_N];
            int n_allowed = 0;
            for (int i = 0; i < TV_N; i++) {
                bool a = ob_matcher_allows(m, i);
                CHECK_MSG(a == (logits[i] == 0), "walk %d step %d token %d ('%s'): mask %d, "
                          "check %d", walk, step, i, tok_vocab_text[i], logits[i] == 0, a);
                if (a) allowed[n_allowed++] = i;
            }
            if (!n_allowed) break;
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int32_t pick = allowed[(rng >> 33) % (uint64_t)n_allowed];
            if (pick == TV_EOS) break;
            saw_control += pick == TV_IM_END || pick == TV_TOOL_CALLS;
            saw_negated += n_allowed >= TV_N - 3; /* only !<...> opens nearly everything */
            CHECK(ob_matcher_accept(m, pick, NULL) == OB_OK);
            path[n_path++] = pick;
        }
        ob_matcher *c = NULL;
        CHECK(ob_matcher_clone(m, &c, NULL) == OB_OK);
        CHECK(c && ob_matcher_can_end(c) == ob_matcher_can_end(m));
        ob_matcher_reset(c);
        for (int i = 0; i < n_path; i++) CHECK(ob_matcher_accept(c, path[i], NULL) == OB_OK);
        CHECK(ob_matcher_can_end(c) == ob_matcher_can_end(m));
        ob_matcher_free(c);
        ob_matcher_free(m);
    }
    CHECK_MSG(saw_control > 20 && saw_negated > 5, "walks picked %d control tokens and met %d "
              "negated elements: the test does not reach them", saw_control, saw_negated);
    ob_grammar_free(g);
    ob_vocab_trie_free(t);
}

/* ---- the sampler under a grammar ------------------------------------------------------- */

/* The synthetic vocabulary and 200 more tokens ("w0".."w199") that only a free string takes,
 * so a refused draw often finds no allowed token among the sampler's first checks. */
static ob_vocab_trie *wide_vocab(int32_t *eog, char (*extra)[8], int n_extra) {
    int64_t base = sizeof vocab_text / sizeof *vocab_text, n = base + n_extra + 1;
    ob_vocab_trie *t = ob_calloc(1, sizeof *t);
    t->n_vocab = n;
    t->kind = ob_alloc((size_t)n, 1);
    t->text = ob_alloc((size_t)n, sizeof *t->text);
    t->text_len = ob_alloc((size_t)n, sizeof *t->text_len);
    for (int64_t i = 0; i < n - 1; i++) {
        if (i >= base) snprintf(extra[i - base], sizeof extra[0], "w%d", (int)(i - base));
        t->text[i] = i < base ? vocab_text[i] : extra[i - base];
        t->text_len[i] = (uint32_t)strlen(t->text[i]);
        t->kind[i] = t->text_len[i] ? VT_TEXT : VT_NEVER;
    }
    t->text[n - 1] = "";
    t->text_len[n - 1] = 0;
    t->kind[n - 1] = VT_EOG;
    *eog = (int32_t)(n - 1);
    if (gram_trie_build(t, NULL)) return NULL;
    return t;
}

/* The sampler draws first and, when the grammar refuses the draw, picks again among the
 * allowed tokens, from its best candidates when they settle the pick. The reference is the
 * rule written out: the same chain and seed without a grammar, and when its pick is refused,
 * its next pick from the logits masked by ob_matcher_mask. Every pick must be the same, for
 * greedy, top-k within and beyond the sampler's checks, top-k off, and ties. */
TEST(sampler_picks_as_masking_does) {
    static char extra[200][8];
    int32_t eog;
    ob_vocab_trie *t = wide_vocab(&eog, extra, 200);
    CHECK(t);
    ob_grammar *g = schema("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
                           "\"items\":{\"type\":\"number\"}},\"c\":{\"type\":\"string\"}},"
                           "\"required\":[\"a\",\"c\"]}");
    CHECK(g);
    static const struct {
        float temp, top_p, min_p;
        int32_t top_k;
    } chains[] = {{0, 1, 0, 0}, {0.8f, 0.95f, 0.05f, 40}, {1.0f, 1, 0, 5},
                  {0.7f, 0.9f, 0, 0}, {1.2f, 1, 0.02f, 100}, {1.0f, 1, 0, 64}};
    int64_t n = t->n_vocab;
    float *logits = ob_alloc((size_t)n, sizeof *logits);
    float *masked = ob_alloc((size_t)n, sizeof *masked);
    uint64_t rng = 11;
    int refused = 0;
    for (size_t c = 0; c < sizeof chains / sizeof *chains; c++) {
        ob_sampler_params p;
        ob_sampler_params_init(&p);
        p.temp = chains[c].temp;
        p.top_p = chains[c].top_p;
        p.min_p = chains[c].min_p;
        p.top_k = chains[c].top_k;
        for (int walk = 0; walk < 12; walk++) {
            p.seed = (uint64_t)(c * 100 + walk);
            ob_sampler *s = NULL, *ref = NULL;
            ob_matcher *m = NULL;
            CHECK(ob_sampler_new(&p, n, &s, NULL) == OB_OK);
            CHECK(ob_sampler_new(&p, n, &ref, NULL) == OB_OK);
            CHECK(ob_matcher_new(g, t, &m, NULL) == OB_OK);
            ob_sampler_set_matcher(s, m);
            for (int step = 0; step < 40; step++) {
                for (int64_t i = 0; i < n; i++) {
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    /* steps of 0.5 make ties; one token in 16 is -inf */
                    logits[i] = (rng >> 60) == 0 ? -INFINITY : (float)((rng >> 40) % 21) * 0.5f;
                }
                logits[rng % (uint64_t)n] = 9; /* at least one finite */
                int32_t want = ob_sampler_sample(ref, logits);
                if (want >= 0 && !ob_matcher_allows(m, want)) {
                    refused++;
                    memcpy(masked, logits, (size_t)n * sizeof *masked);
                    CHECK(ob_matcher_mask(m, masked, NULL) == OB_OK);
                    want = ob_sampler_sample(ref, masked);
                }
                int32_t got = ob_sampler_sample(s, logits);
                CHECK_MSG(got == want, "chain %zu walk %d step %d: picked %d, masking picks %d",
                          c, walk, step, got, want);
                if (got < 0 || got == eog) break;
            }
            ob_sampler_free(s);
            ob_sampler_free(ref);
            ob_matcher_free(m);
        }
    }
    CHECK_MSG(refused > 100, "only %d refused draws: the test does not reach the re-pick", refused);
    ob_free(logits);
    ob_free(masked);
    ob_grammar_free(g);
    ob_vocab_trie_free(t);
}

int main(void) {
    RUN(gbnf_basics);
    RUN(gbnf_escapes_utf8_comments);
    RUN(gbnf_errors);
    RUN(schema_objects);
    RUN(schema_combinators);
    RUN(schema_ranges);
    RUN(schema_refusals);
    RUN(mask_equals_token_checks);
    RUN(token_elements_parse);
    RUN(token_element_errors);
    RUN(token_mask_equals_checks);
    RUN(sampler_picks_as_masking_does);
    return t_summary();
}
