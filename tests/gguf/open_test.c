/*
 * Tests for src/gguf/open.c: I/O errors name the path, an empty or truncated file reads as
 * truncated, a named pipe, directory or device is refused by kind without blocking (a FIFO
 * used to hang the open), real model files under $OB_SHARED open with their tensors inside the
 * mapping, and failing each allocation of an open in turn leaks nothing (the mapping included).
 */
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(missing_file_names_the_path) {
    gguf_file *f = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_open("/nonexistent/model.gguf", &f, &e), OB_ERR_IO, &e,
                 "/nonexistent/model.gguf: open: No such file");
    CHECK(f == NULL);
}

TEST(directory_is_refused) {
    gguf_file *f = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_open("/tmp", &f, &e), OB_ERR_IO, &e,
                 "/tmp: not a regular file (a directory)");
}

/* The open must not wait for a writer: the alarm turns a hang into a failed run. */
TEST(named_pipe_is_refused_without_blocking) {
    char path[] = "/tmp/ob_open_fifo_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0);
    gguf_file *f = NULL;
    ob_err e = {{0}};
    alarm(10);
    ob_status st = gguf_open(path, &f, &e);
    alarm(0);
    unlink(path);
    CHECK_STATUS(st, OB_ERR_IO, &e, ": not a regular file (a named pipe)");
    CHECK(strncmp(e.msg, path, strlen(path)) == 0 && f == NULL);
}

TEST(devices_are_refused) {
    gguf_file *f = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_open("/dev/zero", &f, &e), OB_ERR_IO, &e,
                 "/dev/zero: not a regular file (a character device)");
    CHECK_STATUS(gguf_open("/dev/null", &f, &e), OB_ERR_IO, &e,
                 "/dev/null: not a regular file (a character device)");
    CHECK(f == NULL);
}

TEST(truncated_file_is_named) {
    static const unsigned char HEAD[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0};
    for (size_t len = 1; len <= sizeof HEAD; len++) {
        char path[] = "/tmp/ob_open_test_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        CHECK(write(fd, HEAD, len) == (ssize_t)len);
        close(fd);
        gguf_file *f = NULL;
        ob_err e = {{0}};
        ob_status st = gguf_open(path, &f, &e);
        unlink(path);
        CHECK_MSG(st == OB_ERR_FORMAT && f == NULL, "%zu bytes: %s", len, e.msg);
        CHECK_MSG(strncmp(e.msg, path, strlen(path)) == 0 && strstr(e.msg, "truncated"),
                  "%zu bytes: %s", len, e.msg);
    }
}

TEST(empty_file_is_truncated) {
    char path[] = "/tmp/ob_open_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    gguf_file *f = NULL;
    ob_err e = {{0}};
    ob_status st = gguf_open(path, &f, &e);
    unlink(path);
    CHECK_STATUS(st, OB_ERR_FORMAT, &e, "truncated at byte offset 0");
    CHECK(strncmp(e.msg, path, strlen(path)) == 0);
}

static const char *const MODELS[] = {
    "models/stories260K.gguf",
    "models/llama-2-tiny-random.gguf",
    "models/generated/stories260K-q4_0.gguf",
    "models/vocab/ggml-vocab-gpt-2.gguf",
};

TEST(real_models_open) {
    int found = 0;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        const char *path = t_shared_path(MODELS[i]);
        if (!path) continue;
        found++;
        gguf_file *f = NULL;
        ob_err e = {{0}};
        CHECK_STATUS(gguf_open(path, &f, &e), OB_OK, &e, "");
        CHECK(gguf_kv_find(f, "general.architecture") != NULL);
        for (int64_t t = 0; t < gguf_tensor_count(f); t++) {
            const gguf_tensor *ti = gguf_tensor_at(f, t);
            CHECK(ti->offset + ti->nbytes + gguf_data_offset(f) <= gguf_file_size(f));
        }
        gguf_close(f);
    }
    if (!found) SKIP("no shared models under $OB_SHARED");
}

TEST(open_alloc_failure_sweep) {
    const char *path = t_shared_path("models/stories260K.gguf");
    if (!path) SKIP("models/stories260K.gguf not under $OB_SHARED");
    int ok = 0;
    for (int64_t n = 0; n < 1000 && !ok; n++) {
        gguf_file *f = NULL;
        ob_err e = {{0}};
        ob_alloc_fail_after(n);
        ob_status st = gguf_open(path, &f, &e);
        ob_alloc_fail_after(-1);
        CHECK_MSG(st == OB_OK || (st == OB_ERR_NOMEM && f == NULL), "after %lld: %s", (long long)n,
                  e.msg);
        ok = st == OB_OK;
        gguf_close(f);
    }
    CHECK(ok);
}

int main(void) {
    RUN(missing_file_names_the_path);
    RUN(directory_is_refused);
    RUN(named_pipe_is_refused_without_blocking);
    RUN(devices_are_refused);
    RUN(truncated_file_is_named);
    RUN(empty_file_is_truncated);
    RUN(real_models_open);
    RUN(open_alloc_failure_sweep);
    return t_summary();
}
