/*
 * The JSON-schema translation in Gemma 4's literals (schema_gemma.c with json_schema.c), the
 * delimiter as text: each schema takes the literals Gemma 4's template writes for valid values
 * and refuses invalid ones, JSON included; what the literals cannot hold is refused by name.
 */
#include "grammar/grammar_int.h"

#include "core/alloc.h"
#include "test.h"

#include <string.h>

#define Q "<|\"|>"

/* The grammar of schema s in Gemma 4 literals, or NULL with *err. */
static ob_grammar *gemma_schema(const char *s, ob_err *err) {
    char *gbnf = NULL;
    size_t len = 0;
    ob_grammar *g = NULL;
    if (gram_schema_to_gemma_gbnf(s, strlen(s), "root", "\"<|\\\"|>\"", &gbnf, &len, err))
        return NULL;
    if (ob_grammar_new(gbnf, len, NULL, &g, err)) fprintf(stderr, "%s\n%s\n", err->msg, gbnf);
    ob_free(gbnf);
    return g;
}

/* Whether g takes all of s and may end there. */
static bool takes(const ob_grammar *g, const char *s) {
    gram_match m;
    if (gram_match_init(&m, g, NULL)) return false;
    bool ok = gram_match_feed(&m, s, strlen(s)) && gram_state_can_end(&m.st);
    gram_match_free(&m);
    return ok;
}

TEST(strings_and_formats) {
    ob_err err = {{0}};
    ob_grammar *g = gemma_schema("{\"type\":\"object\",\"properties\":{\"d\":{\"type\":\"string\","
                                 "\"format\":\"date\"},\"u\":{\"type\":\"string\",\"format\":"
                                 "\"uuid\"},\"s\":{\"type\":\"string\",\"minLength\":2,"
                                 "\"maxLength\":3},\"t\":{\"type\":\"string\"}}}", &err);
    CHECK_MSG(g, "%s", err.msg);
    if (!g) return;
    CHECK(takes(g, "{}"));
    CHECK(takes(g, "{d:" Q "2026-12-04" Q "}"));
    CHECK(!takes(g, "{d:" Q "2026-13-04" Q "}"));
    CHECK(takes(g, "{u:" Q "0f8e6a5c-1b2d-4e3f-8a9b-0c1d2e3f4a5b" Q "}"));
    CHECK(takes(g, "{s:" Q "ab" Q "}") && takes(g, "{s:" Q "a\"b" Q "}"));
    CHECK(!takes(g, "{s:" Q "a" Q "}") && !takes(g, "{s:" Q "abcd" Q "}"));
    CHECK(!takes(g, "{s:" Q "a<b" Q "}")); /* bounded text holds no '<' */
    /* free text: raw, no escapes; '<' but never "<|" or "<t"; no NUL */
    CHECK(takes(g, "{t:" Q "a \\n \"q\" x<y <<z\n" Q "}"));
    CHECK(!takes(g, "{t:" Q "a<|b" Q "}") && !takes(g, "{t:" Q "<turn|>" Q "}"));
    CHECK(!takes(g, "{t:\"json\"}") && !takes(g, "{\"t\":" Q "x" Q "}"));
    CHECK(takes(g, "{d:" Q "2026-12-04" Q ",t:" Q Q "}"));
    CHECK(!takes(g, "{t:" Q "x" Q ",d:" Q "2026-12-04" Q "}")); /* the schema's order */
    ob_grammar_free(g);
}

TEST(constants_keys_and_extras) {
    ob_err err = {{0}};
    ob_grammar *g = gemma_schema("{\"type\":\"object\",\"properties\":{\"c\":{\"const\":{\"k\":"
                                 "[1,\"v\",null,true]}},\"e\":{\"enum\":[\"x y\",2.5,false]},"
                                 "\"two words\":{\"type\":\"integer\"}},\"additionalProperties\":"
                                 "{\"type\":\"boolean\"}}", &err);
    CHECK_MSG(g, "%s", err.msg);
    if (!g) return;
    CHECK(takes(g, "{c:{k:[1," Q "v" Q ",null,true]}}"));
    CHECK(!takes(g, "{c:{k:[1," Q "w" Q ",null,true]}}"));
    CHECK(takes(g, "{e:" Q "x y" Q "}") && takes(g, "{e:2.5}") && takes(g, "{e:false}"));
    CHECK(!takes(g, "{e:" Q "x" Q "}"));
    CHECK(takes(g, "{" Q "two words" Q ":-4}") && !takes(g, "{two words:-4}"));
    CHECK(takes(g, "{e:2.5,extra_1:true,more:false}") && !takes(g, "{extra:1}"));
    ob_grammar_free(g);
}

TEST(refusals) {
    const char *bad[][2] = {
        {"{\"type\":\"string\",\"pattern\":\"^a$\"}", "keyword 'pattern'"},
        {"{\"enum\":[\"ok\",\"<|tool_call>\"]}", "enum / const"},
        {"{\"const\":\"ends in <\"}", "enum / const"},
        {"{\"properties\":{\"a<b\":{}}}", "schema.properties.a<b: a property name holding '<'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ob_err err = {{0}};
        ob_grammar *g = gemma_schema(bad[i][0], &err);
        CHECK_MSG(!g && strstr(err.msg, bad[i][1]), "%s -> %s", bad[i][0], err.msg);
        ob_grammar_free(g);
    }
}

int main(void) {
    RUN(strings_and_formats);
    RUN(constants_keys_and_extras);
    RUN(refusals);
    return t_summary();
}
