/*
 * A minimal test harness: each tests/<module>/<file>_test.c is one program whose main() RUNs
 * its TEST functions and returns t_summary(). The last line it prints is
 * "N passed, N failed, N skipped", which tests/run_tests.py adds up across all programs.
 *
 *     TEST(parses_header) { CHECK(x == 1); CHECK_EQ_INT(n, 4); }
 *     int main(void) { RUN(parses_header); return t_summary(); }
 *
 * A failed CHECK prints file:line and the expression, then returns from the test function.
 */
#ifndef OB_TEST_H
#define OB_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed, t_skipped;
static int t_cur_failed, t_cur_skipped;
static const char *t_current = "";

#define TEST(name) static void name(void)
#define RUN(name) t_run(#name, name)

static inline void t_run(const char *name, void (*fn)(void)) {
    t_current = name;
    t_cur_failed = 0;
    t_cur_skipped = 0;
    fn();
    if (t_cur_failed) t_failed++;
    else if (t_cur_skipped) t_skipped++;
    else t_passed++;
}

static inline void t_report(const char *file, int line, const char *what) {
    fprintf(stderr, "FAIL %s (%s:%d): %s\n", t_current, file, line, what);
    t_cur_failed = 1;
}

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            t_report(__FILE__, __LINE__, #cond);                                                \
            return;                                                                             \
        }                                                                                       \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                    \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            t_report(__FILE__, __LINE__, #cond);                                                \
            fprintf(stderr, "     ");                                                           \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fprintf(stderr, "\n");                                                              \
            return;                                                                             \
        }                                                                                       \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                        \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                 \
        CHECK_MSG(t_a_ == t_b_, "%s = %lld, %s = %lld", #a, t_a_, #b, t_b_);                    \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                      \
    do {                                                                                        \
        const char *t_a_ = (a), *t_b_ = (b);                                                    \
        CHECK_MSG(t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0, "%s = \"%s\", %s = \"%s\"", #a,      \
                  t_a_ ? t_a_ : "(null)", #b, t_b_ ? t_b_ : "(null)");                          \
    } while (0)

/* The status matches and, for failures, the error line contains `needle`. */
#define CHECK_STATUS(st, expected, err, needle)                                                 \
    do {                                                                                        \
        ob_status t_st_ = (st);                                                                 \
        CHECK_MSG(t_st_ == (expected), "status %s, expected %s (msg: %s)",                      \
                  ob_status_name(t_st_), ob_status_name(expected), (err)->msg);                 \
        CHECK_MSG(strstr((err)->msg, (needle)) != NULL, "message \"%s\" lacks \"%s\"",          \
                  (err)->msg, (needle));                                                        \
    } while (0)

#define SKIP(...)                                                                               \
    do {                                                                                        \
        fprintf(stderr, "skip %s: ", t_current);                                                \
        fprintf(stderr, __VA_ARGS__);                                                           \
        fprintf(stderr, "\n");                                                                  \
        t_cur_skipped = 1;                                                                      \
        return;                                                                                 \
    } while (0)

/* Path of a file under ../shared (the OB_SHARED environment variable), or NULL when the
 * shared folder is not there. The buffer is static: copy the result before calling again. */
static inline const char *t_shared_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("OB_SHARED");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    FILE *f = fopen(buf, "rb");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

static inline int t_summary(void) {
    printf("%d passed, %d failed, %d skipped\n", t_passed, t_failed, t_skipped);
    return t_failed ? 1 : 0;
}

#endif
