/*
 * libFuzzer entry point for what the hub client reads from the network (src/hub/hub_ref.c): a
 * tree listing, then the choice of file(s) from it for a quantization taken from the input's
 * first line. Any bytes must parse or fail with one line naming the problem; a choice, when
 * made, must name distinct listed entries, a tag the store accepts, and a first file that is a
 * .gguf. Seeds: tests/fuzz_corpus/tree_fuzz/.
 */
#include "hub/hub.h"

#include <stdint.h>
#include <string.h>

#define FUZZ_ASSERT(c)                                                                          \
    do {                                                                                        \
        if (!(c)) __builtin_trap();                                                             \
    } while (0)

static void check_failure(const ob_err *e) {
    FUZZ_ASSERT(e->msg[0] && memchr(e->msg, 0, sizeof e->msg) && !strchr(e->msg, '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* "QUANT\nJSON": the quantization asked for, then the listing. */
    const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
    char quant[65] = "";
    if (nl) {
        memcpy(quant, data, (size_t)(nl - data));
        quant[nl - data] = 0;
        size -= (size_t)(nl - data) + 1;
        data = nl + 1;
    }
    hub_tree t;
    ob_err err = {{0}};
    if (hub_tree_parse((const char *)data, size, &t, &err)) {
        check_failure(&err);
        return 0;
    }
    size_t idx[STORE_MAX_FILES], n = 0;
    char tag[STORE_PART_MAX + 1];
    /* A reference's quantization has passed store_name_parse before it gets here. */
    if (!store_part_ok(quant, strlen(quant))) quant[0] = 0;
    if (hub_tree_choose(&t, quant, idx, &n, tag, &err)) {
        check_failure(&err);
    } else {
        FUZZ_ASSERT(n >= 1 && n <= STORE_MAX_FILES);
        FUZZ_ASSERT(store_part_ok(tag, strlen(tag)));
        size_t len = strlen(t.v[idx[0]].path);
        FUZZ_ASSERT(len >= 5 && !strcmp(t.v[idx[0]].path + len - 5, ".gguf"));
        for (size_t i = 0; i < n; i++) {
            FUZZ_ASSERT(idx[i] < t.n);
            for (size_t k = 0; k < i; k++) FUZZ_ASSERT(idx[k] != idx[i]);
        }
    }
    hub_tree_free(&t);
    return 0;
}
