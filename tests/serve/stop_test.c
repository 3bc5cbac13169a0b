/*
 * serve_stop: the streaming stop-string matcher. Every text is fed whole, split at every byte
 * and split at random points; what comes out must always be a prefix of the text before the
 * first stop string, never hold a stop string or part of one that then completes, and never
 * end inside a UTF-8 character.
 */
#include "serve/serve_stop.c"

#include "test.h"

#include <stdint.h>

/* Feeds text in pieces cut at cuts[0..n_cuts) (ascending); returns what was released, with
 * the flush when no stop was hit. Checks that the released text is a prefix of `expect` after
 * every push. */
static int feed(const char *const *stops, size_t n_stops, const char *text, const size_t *cuts,
                size_t n_cuts, const char *expect, int *hit, char *out, size_t cap) {
    serve_stop *s;
    if (serve_stop_new(stops, n_stops, &s, NULL)) return -1;
    size_t at = 0, got = 0, len = strlen(text);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        const char *o;
        size_t n = serve_stop_push(s, text + at, end - at, &o);
        if (got + n >= cap) return -1;
        memcpy(out + got, o, n);
        got += n;
        at = end;
        if (strncmp(out, expect, got)) { /* released something that is not in the answer */
            serve_stop_free(s);
            return -2;
        }
    }
    const char *o;
    size_t n = serve_stop_flush(s, &o);
    memcpy(out + got, o, n);
    got += n;
    out[got] = '\0';
    *hit = serve_stop_hit(s);
    serve_stop_free(s);
    return 0;
}

static int whole(const char *const *stops, size_t n, const char *text, const char *expect,
                 int *hit) {
    char out[512];
    int rc = feed(stops, n, text, NULL, 0, expect, hit, out, sizeof out);
    return rc ? rc : strcmp(out, expect) ? -3 : 0;
}

/* Splits text at every single byte and at every pair of cut points. */
static int every_split(const char *const *stops, size_t n, const char *text, const char *expect,
                       int expect_hit) {
    size_t len = strlen(text), cuts[512];
    char out[512];
    int hit;
    for (size_t i = 0; i < len; i++) cuts[i] = i + 1;
    if (feed(stops, n, text, cuts, len ? len - 1 : 0, expect, &hit, out, sizeof out) ||
        strcmp(out, expect) || hit != expect_hit)
        return -1;
    for (size_t a = 1; a < len; a++)
        for (size_t b = a; b < len; b++) {
            size_t two[2] = {a, b};
            if (feed(stops, n, text, two, 2, expect, &hit, out, sizeof out) ||
                strcmp(out, expect) || hit != expect_hit)
                return -(int)(a * 1000 + b);
        }
    return 0;
}

TEST(no_stops_passes_text_through) {
    int hit;
    CHECK_EQ_INT(whole(NULL, 0, "hello world", "hello world", &hit), 0);
    CHECK_EQ_INT(hit, -1);
    CHECK_EQ_INT(every_split(NULL, 0, "hello world", "hello world", -1), 0);
}

TEST(stop_in_one_piece) {
    const char *stops[] = {"STOP"};
    int hit;
    CHECK_EQ_INT(whole(stops, 1, "Hello STOP world", "Hello ", &hit), 0);
    CHECK_EQ_INT(hit, 0);
}

TEST(stop_split_at_every_byte) {
    const char *stops[] = {"</answer>", "\n\nUser:"};
    CHECK_EQ_INT(every_split(stops, 2, "The sum is 4.</answer> trailing", "The sum is 4.", 0), 0);
    CHECK_EQ_INT(every_split(stops, 2, "Hi there\n\nUser: more", "Hi there", 1), 0);
    CHECK_EQ_INT(every_split(stops, 2, "</answer>", "", 0), 0);
}

TEST(partial_stop_that_does_not_complete_is_released) {
    const char *stops[] = {"abc"};
    CHECK_EQ_INT(every_split(stops, 1, "xxabdab", "xxabdab", -1), 0);
    serve_stop *s;
    CHECK(serve_stop_new(stops, 1, &s, NULL) == OB_OK);
    const char *o;
    CHECK_EQ_INT(serve_stop_push(s, "xxab", 4, &o), 2); /* "ab" could become "abc" */
    CHECK_EQ_INT(serve_stop_held(s), 2);
    CHECK_EQ_INT(serve_stop_push(s, "d", 1, &o), 3);
    CHECK(!memcmp(o, "abd", 3));
    serve_stop_free(s);
}

TEST(flush_releases_the_held_tail) {
    const char *stops[] = {"abc"};
    serve_stop *s;
    CHECK(serve_stop_new(stops, 1, &s, NULL) == OB_OK);
    const char *o;
    CHECK_EQ_INT(serve_stop_push(s, "the end ab", 10, &o), 8);
    CHECK_EQ_INT(serve_stop_flush(s, &o), 2);
    CHECK(!memcmp(o, "ab", 2));
    CHECK_EQ_INT(serve_stop_hit(s), -1);
    serve_stop_free(s);
}

TEST(overlapping_stops) {
    const char *a[] = {"abcd", "bcx"};
    CHECK_EQ_INT(every_split(a, 2, "zabcx", "za", 1), 0);
    CHECK_EQ_INT(every_split(a, 2, "zabcd", "z", 0), 0);
    /* A stop that overlaps itself: the held tail must restart inside the old one. */
    const char *b[] = {"aab"};
    CHECK_EQ_INT(every_split(b, 1, "xaaab", "xa", 0), 0);
    CHECK_EQ_INT(every_split(b, 1, "aaaaaab!", "aaaa", 0), 0);
    /* One stop inside another: fed byte by byte the inner one completes first and generation
     * ends there; arriving in one piece, the one that starts first wins. */
    const char *c[] = {"hello world", "lo w"};
    int hit;
    CHECK_EQ_INT(whole(c, 2, "say hello world", "say ", &hit), 0);
    CHECK_EQ_INT(hit, 0);
    size_t cuts[16];
    char out[64];
    for (size_t i = 0; i < 14; i++) cuts[i] = i + 1;
    CHECK_EQ_INT(feed(c, 2, "say hello world", cuts, 14, "say hel", &hit, out, sizeof out), 0);
    CHECK_EQ_STR(out, "say hel");
    CHECK_EQ_INT(hit, 1);
}

TEST(nothing_after_the_stop) {
    const char *stops[] = {"##"};
    serve_stop *s;
    CHECK(serve_stop_new(stops, 1, &s, NULL) == OB_OK);
    const char *o;
    CHECK_EQ_INT(serve_stop_push(s, "a#", 2, &o), 1);
    CHECK_EQ_INT(serve_stop_push(s, "#b", 2, &o), 0);
    CHECK_EQ_INT(serve_stop_hit(s), 0);
    CHECK_EQ_INT(serve_stop_push(s, "more", 4, &o), 0);
    CHECK_EQ_INT(serve_stop_flush(s, &o), 0);
    serve_stop_free(s);
}

TEST(empty_stop_strings_are_ignored) {
    const char *stops[] = {"", "x"};
    CHECK_EQ_INT(every_split(stops, 2, "abxc", "ab", 1), 0);
}

TEST(utf8_is_released_whole) {
    /* "ß" is C3 9F, "€" E2 82 AC, "😀" F0 9F 98 80: fed byte by byte, no chunk may end inside
     * one of them. */
    const char *text = "a\xc3\x9f\xe2\x82\xac\xf0\x9f\x98\x80z";
    serve_stop *s;
    CHECK(serve_stop_new(NULL, 0, &s, NULL) == OB_OK);
    size_t len = strlen(text), got = 0;
    size_t expect_after[] = {1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11};
    for (size_t i = 0; i < len; i++) {
        const char *o;
        got += serve_stop_push(s, text + i, 1, &o);
        CHECK_MSG(got == expect_after[i], "after byte %zu: released %zu, expected %zu", i, got,
                  expect_after[i]);
    }
    serve_stop_free(s);
}

TEST(utf8_stop_strings) {
    const char *stops[] = {"\xc3\x9f!", "\xe2\x82\xac\xe2\x82\xac"};
    CHECK_EQ_INT(every_split(stops, 2, "stra\xc3\x9f" "e stra\xc3\x9f!", "stra\xc3\x9f" "e stra",
                             0),
                 0);
    CHECK_EQ_INT(every_split(stops, 2, "1\xe2\x82\xac 2\xe2\x82\xac\xe2\x82\xac", "1\xe2\x82\xac 2",
                             1),
                 0);
}

/* xorshift: reproducible pseudo-random cases. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random texts over a small alphabet (so stops occur and overlap), random stops and random
 * cuts: the answer must be text up to an occurrence of the reported stop, containing no stop,
 * and every released chunk must be whole UTF-8. */
TEST(random_texts_and_splits) {
    static const char *const ALPHA[] = {"a", "b", "\xc3\xa9", "\xe2\x82\xac"};
    for (int round = 0; round < 3000; round++) {
        char text[128] = "", stop_buf[3][32];
        const char *stops[3];
        size_t n_stops = 1 + rnd() % 3;
        for (size_t k = 0; k < n_stops; k++) {
            stop_buf[k][0] = '\0';
            for (size_t j = 0, n = 1 + rnd() % 3; j < n; j++) strcat(stop_buf[k], ALPHA[rnd() % 4]);
            stops[k] = stop_buf[k];
        }
        for (size_t j = 0, n = rnd() % 20; j < n; j++) strcat(text, ALPHA[rnd() % 4]);
        size_t len = strlen(text), cuts[8], n_cuts = 0;
        for (size_t j = 0, n = rnd() % 6; j < n && len > 1; j++) {
            size_t c = 1 + rnd() % (len - 1);
            if (!n_cuts || c > cuts[n_cuts - 1]) cuts[n_cuts++] = c;
        }
        serve_stop *s;
        CHECK(serve_stop_new(stops, n_stops, &s, NULL) == OB_OK);
        char out[256];
        size_t got = 0, at = 0;
        for (size_t i = 0; i <= n_cuts; i++) {
            size_t end = i < n_cuts ? cuts[i] : len;
            const char *o;
            size_t n = serve_stop_push(s, text + at, end - at, &o);
            at = end;
            /* whole UTF-8: the chunk does not end with a lead byte or mid-sequence */
            if (n) {
                unsigned char last = (unsigned char)o[n - 1];
                CHECK_MSG(last < 0x80 || (last & 0xc0) == 0x80, "round %d: chunk ends in a lead "
                          "byte", round);
            }
            memcpy(out + got, o, n);
            got += n;
        }
        const char *o;
        size_t n = serve_stop_flush(s, &o);
        memcpy(out + got, o, n);
        got += n;
        out[got] = '\0';
        int hit = serve_stop_hit(s);
        serve_stop_free(s);
        CHECK_MSG(!strncmp(out, text, got), "round %d: output is not a prefix", round);
        for (size_t k = 0; k < n_stops; k++)
            CHECK_MSG(!strstr(out, stops[k]), "round %d: output holds stop %zu", round, k);
        if (hit < 0) {
            CHECK_MSG(got == len, "round %d: no stop but text cut", round);
        } else {
            CHECK_MSG(!strncmp(text + got, stops[hit], strlen(stops[hit])),
                      "round %d: stop %d does not follow the output", round, hit);
        }
    }
}

TEST(allocation_failures_are_reported) {
    const char *stops[] = {"abc", "de"};
    for (int64_t n = 0; n < 8; n++) {
        ob_alloc_fail_after(n);
        serve_stop *s = NULL;
        ob_err err;
        ob_status st = serve_stop_new(stops, 2, &s, &err);
        if (st == OB_OK) {
            const char *o;
            serve_stop_push(s, "xyz", 3, &o);
            CHECK(serve_stop_failed(s) || serve_stop_held(s) == 0);
        }
        ob_alloc_fail_after(-1);
        serve_stop_free(s);
    }
}

int main(void) {
    RUN(no_stops_passes_text_through);
    RUN(stop_in_one_piece);
    RUN(stop_split_at_every_byte);
    RUN(partial_stop_that_does_not_complete_is_released);
    RUN(flush_releases_the_held_tail);
    RUN(overlapping_stops);
    RUN(nothing_after_the_stop);
    RUN(empty_stop_strings_are_ignored);
    RUN(utf8_is_released_whole);
    RUN(utf8_stop_strings);
    RUN(random_texts_and_splits);
    RUN(allocation_failures_are_reported);
    return t_summary();
}
