/*
 * Tests for src/cli/chat_input.c: user messages read from stdin (here a pipe put on fd 0).
 * Lines split at newlines, a trailing backslash joins the next line, CRLF loses its CR, the
 * last line needs no newline, a message over the limit is refused and the next one still
 * reads, and a SIGINT during the wait returns CLI_CHAT_INTR.
 */
#include "../../src/cli/chat_edit.c"
#include "../../src/cli/chat_input.c"

#include "test.h"

#include <pthread.h>
#include <time.h>

/* Puts a pipe on fd 0 and writes `text` (len bytes) into it from a thread, then closes it. */
typedef struct feeder {
    int fd;
    const char *text;
    size_t len;
} feeder;

static void *feed_thread(void *arg) {
    feeder *f = arg;
    size_t off = 0;
    while (off < f->len) {
        ssize_t n = write(f->fd, f->text + off, f->len - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(f->fd);
    return NULL;
}

static pthread_t start_feed(feeder *f, const char *text, size_t len) {
    int p[2];
    pthread_t th;
    if (pipe(p)) abort();
    dup2(p[0], 0);
    close(p[0]);
    *f = (feeder){p[1], text, len};
    pthread_create(&th, NULL, feed_thread, f);
    return th;
}

TEST(lines_continuations_and_crlf) {
    const char text[] = "hello\nfirst \\\nsecond\r\n\nlast without newline";
    feeder f;
    pthread_t th = start_feed(&f, text, strlen(text));
    cli_chat_input in = {0};
    char *line = NULL;
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_LINE && !strcmp(line, "hello"));
    ob_free(line);
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_LINE);
    CHECK_MSG(!strcmp(line, "first \nsecond"), "'%s'", line);
    ob_free(line);
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_LINE && !strcmp(line, ""));
    ob_free(line);
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_LINE);
    CHECK(!strcmp(line, "last without newline"));
    ob_free(line);
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_EOF && !line);
    cli_chat_input_clear(&in);
    pthread_join(th, NULL);
}

TEST(too_long_message_is_skipped) {
    size_t big = MAX_MESSAGE + 100000;
    char *text = malloc(big + 16);
    CHECK(text);
    memset(text, 'x', big);
    memcpy(text + big, "\nnext\n", 7);
    feeder f;
    pthread_t th = start_feed(&f, text, big + 6);
    cli_chat_input in = {0};
    char *line = NULL;
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_TOOLONG && !line);
    int got = cli_chat_input_read(&in, false, &line);
    CHECK_MSG(got == CLI_CHAT_LINE && !strcmp(line, "next"), "got %d", got);
    ob_free(line);
    cli_chat_input_clear(&in);
    pthread_join(th, NULL);
    free(text);
}

static void *interrupt_later(void *arg) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_kill(*(pthread_t *)arg, SIGINT);
    return NULL;
}

TEST(sigint_while_waiting) {
    int p[2];
    CHECK(pipe(p) == 0);
    dup2(p[0], 0);
    close(p[0]);
    cli_chat_signals_install();
    cli_chat_interrupted = 0;
    pthread_t self = pthread_self(), th;
    pthread_create(&th, NULL, interrupt_later, &self);
    cli_chat_input in = {0};
    char *line = NULL;
    CHECK(cli_chat_input_read(&in, false, &line) == CLI_CHAT_INTR && !line);
    CHECK(cli_chat_interrupted);
    pthread_join(th, NULL);
    close(p[1]);
    cli_chat_input_clear(&in);
}

int main(void) {
    RUN(lines_continuations_and_crlf);
    RUN(too_long_message_is_skipped);
    RUN(sigint_while_waiting);
    return t_summary();
}
