/*
 * libFuzzer entry point for the manifest reader (src/store/store_manifest.c): manifest.json
 * is read back from disk, where anyone may have edited it. Any bytes must parse or fail with
 * one line; a manifest that parses must hold only file names the store accepts and must
 * survive being written out as JSON and read back unchanged. Seeds:
 * tests/fuzz_corpus/manifest_fuzz/.
 */
#include "store/store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(c)                                                                          \
    do {                                                                                        \
        if (!(c)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    store_manifest m;
    ob_err err = {{0}};
    if (store_manifest_parse((const char *)data, size, &m, &err)) {
        FUZZ_ASSERT(err.msg[0] && memchr(err.msg, 0, sizeof err.msg) && !strchr(err.msg, '\n'));
        return 0;
    }
    FUZZ_ASSERT(m.n_files >= 1 && m.n_files <= STORE_MAX_FILES);
    for (size_t i = 0; i < m.n_files; i++)
        FUZZ_ASSERT(store_part_ok(m.files[i].name, strlen(m.files[i].name)));
    json_t *j = store_manifest_json(&m);
    char *text = j ? json_dumps(j, 0) : NULL;
    json_decref(j);
    if (text) {
        store_manifest back;
        FUZZ_ASSERT(store_manifest_parse(text, strlen(text), &back, &err) == OB_OK);
        FUZZ_ASSERT(back.n_files == m.n_files && back.size == m.size &&
                    !strcmp(back.name, m.name));
        store_manifest_clear(&back);
        free(text);
    }
    store_manifest_clear(&m);
    return 0;
}
