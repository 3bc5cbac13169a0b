/*
 * libFuzzer entry point for the GGUF parser (src/gguf/parse.c). Any byte string must either
 * parse or fail with a message, never crash, read out of bounds or leak. When it parses, every
 * accessor is exercised over what was found (each key through the typed getters, each array
 * element, each tensor by name and its data bytes) so a table the parser accepted but built
 * wrongly shows up under the sanitizers. Seeds: tests/fuzz_corpus/parse_fuzz/ (written by
 * writer_test with OB_FUZZ_SEED_DIR set).
 */
#include "core/err.h"
#include "gguf/gguf.h"

#include <stdint.h>
#include <stdio.h>

/* Touches every byte of a tensor so ASan sees any pointer past the buffer. */
static unsigned touch(const gguf_tensor *t) {
    const uint8_t *p = t->data;
    unsigned acc = 0;
    for (size_t i = 0; i < t->nbytes; i++) acc += p[i];
    return acc;
}

static void exercise_kv(const gguf_file *f, const gguf_kv *kv) {
    char key[256];
    snprintf(key, sizeof key, "%.*s", OB_STR_FMT(kv->key));
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f32;
    bool b;
    ob_str s;
    ob_err err;
    /* Only keys without NUL bytes that fit the buffer can be looked up by C string. */
    if (kv->key.len < sizeof key && gguf_kv_find(f, key) != NULL) {
        gguf_get_u32(f, key, &u32, &err);
        gguf_get_u64(f, key, &u64, &err);
        gguf_get_i64(f, key, &i64, &err);
        gguf_get_f32(f, key, &f32, &err);
        gguf_get_bool(f, key, &b, &err);
        gguf_get_str(f, key, &s, &err);
    }
    if (kv->type != GGUF_VTYPE_ARRAY) return;
    volatile double sink = 0;
    for (uint64_t i = 0; i < kv->arr_len; i++) {
        if (kv->arr_type == GGUF_VTYPE_STRING) sink += (double)gguf_arr_str(kv, i).len;
        else sink += gguf_arr_f64(kv, i) + (double)gguf_arr_i64(kv, i);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    ob_err err;
    if (gguf_parse(data, size, "fuzz.gguf", &f, &err) != OB_OK) return 0;
    for (int64_t i = 0; i < gguf_kv_count(f); i++) exercise_kv(f, gguf_kv_at(f, i));
    volatile unsigned acc = 0;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", OB_STR_FMT(t->name));
        const gguf_tensor *found = gguf_tensor_find(f, name);
        acc += found ? (unsigned)gguf_tensor_nelements(found) : 0;
        acc += touch(t);
    }
    (void)acc;
    gguf_close(f);
    return 0;
}
