/*
 * Tests for src/cli/chat_reply.c's display: an answer streamed in small pieces through the
 * Hermes parser (<think>, <tool_call>) must show reasoning apart from content (stderr when
 * stdout is not a terminal; dimmed on one), tool calls as "[tool call] name {args}", and
 * content on stdout with no markup. stdout and stderr are captured in temporary files.
 */
#include "../../src/cli/chat_engine.c"
#include "../../src/cli/chat_reply.c"
#include "../../src/model/api_chat.c"

#include "test.h"

#include <unistd.h>

volatile sig_atomic_t cli_chat_interrupted = 0;
double cli_now(void) { return 0.0; }

static const char ANSWER[] = "<think>plan it</think>Sure, calling it."
                             "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                             "{\"city\": \"Paris\"}}\n</tool_call>";

typedef struct capture {
    int saved_out, saved_err;
    FILE *out, *err;
} capture;

static void capture_begin(capture *c) {
    fflush(stdout);
    fflush(stderr);
    c->out = tmpfile();
    c->err = tmpfile();
    c->saved_out = dup(1);
    c->saved_err = dup(2);
    dup2(fileno(c->out), 1);
    dup2(fileno(c->err), 2);
}

/* Restores the streams and reads what was written into out/err (cap bytes each). */
static void capture_end(capture *c, char *out, char *err, size_t cap) {
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved_out, 1);
    dup2(c->saved_err, 2);
    close(c->saved_out);
    close(c->saved_err);
    FILE *f[2] = {c->out, c->err};
    char *dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        rewind(f[i]);
        size_t n = fread(dst[i], 1, cap - 1, f[i]);
        dst[i][n] = 0;
        fclose(f[i]);
    }
}

/* Streams ANSWER in 3-byte pieces as the reply loop does, then finishes; *res gets the
 * parsed result. */
static int stream_answer(bool tty, ob_chat_reply *res) {
    ob_chat hermes = {.family = CHAT_FAMILY_HERMES}; /* a chat format without a model */
    ob_chat_parser *ps = NULL;
    if (ob_chat_parser_new(&hermes, NULL, &ps, NULL)) return -1;
    view v = {.tty = tty};
    size_t len = strlen(ANSWER);
    for (size_t i = 0; i < len; i += 3)
        if (feed(ps, &v, ANSWER + i, len - i < 3 ? len - i : 3, NULL)) return -1;
    ob_chat_delta d;
    if (ob_chat_parser_finish(ps, &d, res, NULL)) return -1;
    show(&v, &d);
    if (v.dimmed) fputs(RESET, stdout);
    ob_chat_parser_free(ps);
    return 0;
}

TEST(pipe_keeps_stdout_for_content) {
    static char out[4096], err[4096];
    capture c;
    ob_chat_reply res = {0};
    capture_begin(&c);
    int rc = stream_answer(false, &res);
    capture_end(&c, out, err, sizeof out);
    CHECK(rc == 0);
    CHECK_MSG(strstr(out, "Sure, calling it.") == out, "stdout: '%s'", out);
    CHECK_MSG(strstr(out, "[tool call] get_weather {\"city\":\"Paris\"}\n"), "stdout: '%s'", out);
    CHECK(!strstr(out, "<") && !strstr(out, "plan it") && !strchr(out, '\x1b'));
    CHECK_MSG(strstr(err, "plan it") && !strstr(err, "Sure"), "stderr: '%s'", err);
    CHECK(!strcmp(res.content, "Sure, calling it.") && !strcmp(res.reasoning, "plan it"));
    CHECK(res.n_calls == 1 && !strcmp(res.calls[0].name, "get_weather"));
    ob_chat_reply_clear(&res);
}

TEST(terminal_dims_reasoning) {
    static char out[4096], err[4096];
    capture c;
    ob_chat_reply res = {0};
    capture_begin(&c);
    int rc = stream_answer(true, &res);
    capture_end(&c, out, err, sizeof out);
    CHECK(rc == 0);
    char *dim = strstr(out, DIM), *plan = strstr(out, "plan it"), *reset = strstr(out, RESET);
    char *content = strstr(out, "Sure, calling it."), *call = strstr(out, CYAN "[tool call]");
    CHECK_MSG(dim && plan && reset && content && call, "stdout: '%s'", out);
    CHECK(dim < plan && plan < reset && reset < content && content < call);
    CHECK(err[0] == 0);
    ob_chat_reply_clear(&res);
}

int main(void) {
    RUN(pipe_keeps_stdout_for_content);
    RUN(terminal_dims_reasoning);
    return t_summary();
}
