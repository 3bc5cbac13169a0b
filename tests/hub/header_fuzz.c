/*
 * libFuzzer entry point for the response headers the hub client reads from the network
 * (src/hub/hub_http.c, included to reach its statics): each input line goes through the
 * header callback as a server would send it. Whatever the bytes, the status, ETag and next
 * link stay NUL-terminated within their buffers. Seeds: tests/fuzz_corpus/header_fuzz/.
 */
#include "../../src/hub/hub_http.c"

#include <stdint.h>

#define FUZZ_ASSERT(c)                                                                          \
    do {                                                                                        \
        if (!(c)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    transfer t;
    memset(&t, 0, sizeof t);
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    /* libcurl hands the callback one header line at a time, '\n' included. */
    for (size_t off = 0; off < size;) {
        const char *nl = memchr(buf + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (buf + off)) + 1 : size - off;
        FUZZ_ASSERT(on_header(buf + off, 1, len, &t) == len);
        FUZZ_ASSERT(memchr(t.etag, 0, sizeof t.etag) && memchr(t.next, 0, sizeof t.next));
        off += len;
    }
    free(buf);
    return 0;
}
