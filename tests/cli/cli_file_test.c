/*
 * Tests for src/cli/cli_file.c, the one reader of files named on the command line. A file at
 * its limit reads whole and one byte more is refused with the flag, the path and the limit
 * named; /dev/zero and an endless pipe stop just past the limit; a directory is refused
 * before any read; pipes and standard input read where allowed; JSON errors give line and
 * column; failing each allocation in turn leaks nothing.
 */
#include "../../src/cli/cli_file.c"

#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writes len bytes of `fill` to a new temporary file; path receives its name. */
static bool temp_file(char *path, size_t len, char fill) {
    strcpy(path, "/tmp/ob_cli_file_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return false;
    char buf[4096];
    memset(buf, fill, sizeof buf);
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof buf ? len - done : sizeof buf;
        if (write(fd, buf, n) != (ssize_t)n) break;
        done += n;
    }
    close(fd);
    return true;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(reads_a_file_up_to_its_limit) {
    char path[64];
    CHECK(temp_file(path, 1000, 'a'));
    const cli_file_use at = {"-f", 1000, false}, below = {"-f", 999, false};
    char *text = NULL;
    size_t len = 0;
    ob_err e = {{0}};
    ob_status st = cli_read_file(path, &at, &text, &len, &e);
    CHECK_STATUS(st, OB_OK, &e, "");
    CHECK(len == 1000 && text[0] == 'a' && text[999] == 'a' && text[1000] == 0);
    ob_free(text);
    st = cli_read_file(path, &below, &text, &len, &e);
    unlink(path);
    CHECK_STATUS(st, OB_ERR_LIMIT, &e, "-f /tmp/ob_cli_file_");
    CHECK_MSG(strstr(e.msg, ": larger than 999 bytes, the limit for -f"), "%s", e.msg);
    CHECK(text == NULL && len == 0);
}

TEST(empty_file_reads_as_empty_text) {
    char path[64];
    CHECK(temp_file(path, 0, 0));
    const cli_file_use use = {"--system-file", 16, false};
    char *text = NULL;
    size_t len = 7;
    ob_err e = {{0}};
    ob_status st = cli_read_file(path, &use, &text, &len, &e);
    unlink(path);
    CHECK_STATUS(st, OB_OK, &e, "");
    CHECK(text && len == 0 && text[0] == 0);
    ob_free(text);
}

TEST(dev_zero_stops_at_the_limit) {
    const cli_file_use use = {"--template", CLI_MAX_TEMPLATE_FILE, false};
    char *text = NULL;
    size_t len = 0;
    ob_err e = {{0}};
    double t0 = now_s();
    ob_status st = cli_read_file("/dev/zero", &use, &text, &len, &e);
    CHECK_STATUS(st, OB_ERR_LIMIT, &e,
                 "--template /dev/zero: larger than 16 MiB (16777216 bytes), the limit for "
                 "--template");
    CHECK(text == NULL);
    CHECK_MSG(now_s() - t0 < 5.0, "took %.1f s", now_s() - t0);
}

TEST(directories_and_missing_files_are_named) {
    const cli_file_use use = {"--file", 1 << 20, true};
    char *text = NULL;
    size_t len = 0;
    ob_err e = {{0}};
    CHECK_STATUS(cli_read_file("/tmp", &use, &text, &len, &e), OB_ERR_ARG, &e,
                 "--file /tmp: not a regular file (a directory)");
    CHECK_STATUS(cli_read_file("/nonexistent/x.txt", &use, &text, &len, &e), OB_ERR_IO, &e,
                 "--file /nonexistent/x.txt: No such file or directory");
    CHECK(text == NULL);
}

/* A thread that opens the FIFO at `path` for writing (which waits for the reader's open, as
 * the reader's waits for it), writes `total` bytes of 'x' and closes it. */
typedef struct writer {
    const char *path;
    size_t total;
} writer;

static void *write_thread(void *arg) {
    writer *w = arg;
    int fd = open(w->path, O_WRONLY);
    if (fd < 0) return NULL;
    char buf[8192];
    memset(buf, 'x', sizeof buf);
    for (size_t done = 0; done < w->total;) {
        size_t n = w->total - done < sizeof buf ? w->total - done : sizeof buf;
        ssize_t got = write(fd, buf, n);
        if (got <= 0) break; /* the reader gave up: EPIPE */
        done += (size_t)got;
    }
    close(fd);
    return NULL;
}

TEST(pipes_read_and_stop_past_the_limit) {
    signal(SIGPIPE, SIG_IGN); /* the reader closes an endless pipe early */
    char path[64] = "/tmp/ob_cli_fifo_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0);
    const cli_file_use use = {"-f", 100000, true};
    for (int over = 0; over < 2; over++) {
        writer w = {path, over ? (size_t)1 << 30 : 70000};
        pthread_t th;
        pthread_create(&th, NULL, write_thread, &w);
        char *text = NULL;
        size_t len = 0;
        ob_err e = {{0}};
        ob_status st = cli_read_file(path, &use, &text, &len, &e);
        pthread_join(th, NULL);
        if (!over) {
            CHECK_STATUS(st, OB_OK, &e, "");
            CHECK(len == 70000 && text[69999] == 'x');
        } else {
            CHECK_STATUS(st, OB_ERR_LIMIT, &e, "larger than 100000 bytes, the limit for -f");
        }
        ob_free(text);
    }
    unlink(path);
}

TEST(stdin_only_where_allowed) {
    int p[2];
    CHECK(pipe(p) == 0);
    int saved = dup(0);
    dup2(p[0], 0);
    close(p[0]);
    CHECK(write(p[1], "hello", 5) == 5);
    close(p[1]);
    const cli_file_use yes = {"-f", 100, true}, no = {"--system-file", 100, false};
    char *text = NULL;
    size_t len = 0;
    ob_err e = {{0}};
    ob_status refused = cli_read_file("-", &no, &text, &len, &e);
    ob_err e2 = {{0}};
    ob_status st = cli_read_file("-", &yes, &text, &len, &e2);
    dup2(saved, 0);
    close(saved);
    CHECK_STATUS(refused, OB_ERR_ARG, &e,
                 "--system-file -: standard input is not accepted for --system-file");
    CHECK_STATUS(st, OB_OK, &e2, "");
    CHECK(len == 5 && !strcmp(text, "hello"));
    ob_free(text);
}

TEST(json_files_and_their_errors) {
    char path[64];
    CHECK(temp_file(path, 0, 0));
    FILE *f = fopen(path, "w");
    fputs("{\"messages\": [1, 2]}", f);
    fclose(f);
    const cli_file_use use = {"--input", 1 << 20, true}, tiny = {"--input", 4, true};
    json_t *doc = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(cli_read_json(path, &use, &doc, &e), OB_OK, &e, "");
    CHECK(json_array_size(json_object_get(doc, "messages")) == 2);
    json_decref(doc);
    CHECK_STATUS(cli_read_json(path, &tiny, &doc, &e), OB_ERR_LIMIT, &e, "the limit for --input");
    f = fopen(path, "w");
    fputs("{\"messages\":\n [1, }", f);
    fclose(f);
    ob_status st = cli_read_json(path, &use, &doc, &e);
    unlink(path);
    CHECK_STATUS(st, OB_ERR_FORMAT, &e, "--input /tmp/ob_cli_file_");
    CHECK_MSG(strstr(e.msg, ":2:"), "%s", e.msg);
    CHECK(doc == NULL);
}

TEST(alloc_failure_sweep) {
    char path[64];
    CHECK(temp_file(path, 300000, 'q')); /* big enough to grow the buffer when streamed */
    const cli_file_use use = {"-f", 1 << 20, false};
    int ok = 0;
    for (int64_t n = 0; n < 100 && !ok; n++) {
        char *text = NULL;
        size_t len = 0;
        ob_err e = {{0}};
        ob_alloc_fail_after(n);
        ob_status st = cli_read_file(path, &use, &text, &len, &e);
        ob_alloc_fail_after(-1);
        CHECK_MSG(st == OB_OK || (st == OB_ERR_NOMEM && text == NULL), "after %lld: %s",
                  (long long)n, e.msg);
        ok = st == OB_OK;
        ob_free(text);
    }
    for (int64_t n = 0; n < 100; n++) { /* the same through a stream, which grows */
        char *text = NULL;
        size_t len = 0;
        ob_err e = {{0}};
        ob_alloc_fail_after(n);
        ob_status st = cli_read_file("/dev/zero", &use, &text, &len, &e);
        ob_alloc_fail_after(-1);
        CHECK_MSG(st == OB_ERR_LIMIT || (st == OB_ERR_NOMEM && text == NULL), "after %lld: %s",
                  (long long)n, e.msg);
        if (st == OB_ERR_LIMIT) break;
    }
    unlink(path);
    CHECK(ok);
}

int main(void) {
    RUN(reads_a_file_up_to_its_limit);
    RUN(empty_file_reads_as_empty_text);
    RUN(dev_zero_stops_at_the_limit);
    RUN(directories_and_missing_files_are_named);
    RUN(pipes_read_and_stop_past_the_limit);
    RUN(stdin_only_where_allowed);
    RUN(json_files_and_their_errors);
    RUN(alloc_failure_sweep);
    return t_summary();
}
