/*
 * src/hub/hub_http.c's header reading (included to reach its statics): the final response's
 * status, ETag and Link rel="next" through a redirect chain, and what an HTTP status tells the
 * person pulling. The transfers themselves are tested end to end against a local hub
 * (tests/store/test_pull.py).
 */
#include "../../src/hub/hub_http.c"

#include "test.h"

static void header(transfer *t, const char *line) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", line);
    CHECK_EQ_INT(on_header(buf, 1, strlen(buf), t), strlen(buf));
}

TEST(headers_of_the_final_response_count) {
    transfer t;
    memset(&t, 0, sizeof t);
    header(&t, "HTTP/1.1 302 Found\r\n");
    header(&t, "ETag: \"redirect\"\r\n");
    header(&t, "Link: <http://h/next>; rel=\"next\"\r\n");
    header(&t, "HTTP/1.1 200 OK\r\n");
    CHECK_EQ_INT(t.status, 200);
    CHECK_EQ_STR(t.etag, "");
    CHECK_EQ_STR(t.next, "");
    header(&t, "etag:   \"abc\"  \r\n");
    CHECK_EQ_STR(t.etag, "\"abc\"");
    header(&t, "Link: <http://h/a>; rel=\"prev\", <http://h/b?cursor=2>; rel=\"next\"\r\n");
    CHECK_EQ_STR(t.next, "http://h/b?cursor=2");
}

TEST(link_headers_that_say_nothing) {
    char next[HUB_URL_MAX];
    static const char *const NONE[] = {"", "<http://h/a>", "<http://h/a; rel=\"next\"",
                                       "http://h/a; rel=\"next\"", "<http://h/a>; rel=\"last\""};
    for (size_t i = 0; i < sizeof NONE / sizeof NONE[0]; i++) {
        next[0] = 0;
        link_next(NONE[i], strlen(NONE[i]), next);
        CHECK_MSG(next[0] == 0, "'%s' gave '%s'", NONE[i], next);
    }
}

TEST(statuses_are_explained) {
    CHECK(strstr(status_meaning(401, false), "HF_TOKEN"));
    CHECK(strstr(status_meaning(403, true), "not allowed"));
    CHECK(strstr(status_meaning(404, false), "not found"));
    CHECK(strstr(status_meaning(503, false), "server failed"));
}

int main(void) {
    RUN(headers_of_the_final_response_count);
    RUN(link_headers_that_say_nothing);
    RUN(statuses_are_explained);
    return t_summary();
}
