/*
 * A byte builder for crafting GGUF images in tests, field by field, so a test can write exactly
 * the malformed header, pair or tensor info it is about. Everything is little-endian, as the
 * format is. Memory comes from plain malloc (tests may run with ob_alloc failing on purpose).
 *
 *     bb b = {0};
 *     bb_header(&b, 3, 1, 1);           // version, tensor count, pair count
 *     bb_kv_u32(&b, "a.b", 7);
 *     bb_tensor(&b, "t", 1, (uint64_t[]){8}, OB_QTYPE_F32, 0);
 *     bb_pad(&b, 32); bb_zeros(&b, 32);
 *     ... gguf_parse(b.p, b.len, ...); bb_free(&b);
 */
#ifndef OB_TESTS_GGUF_BYTES_H
#define OB_TESTS_GGUF_BYTES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct bb {
    uint8_t *p; /* (len) bytes, malloc'd */
    size_t len, cap;
} bb;

static inline void bb_put(bb *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) abort(); /* a test-harness failure, not an input error */
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static inline void bb_le(bb *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, tmp, n);
}

static inline void bb_u32(bb *b, uint32_t v) { bb_le(b, v, 4); }
static inline void bb_u64(bb *b, uint64_t v) { bb_le(b, v, 8); }
static inline void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static inline void bb_zeros(bb *b, size_t n) {
    for (size_t i = 0; i < n; i++) bb_le(b, 0, 1);
}
static inline void bb_pad(bb *b, size_t align) {
    while (b->len % align) bb_le(b, 0, 1);
}
static inline void bb_free(bb *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static inline void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

/* A pair's key and value type; the caller writes the value. */
static inline void bb_key(bb *b, const char *key, uint32_t vtype) {
    bb_str(b, key);
    bb_u32(b, vtype);
}
static inline void bb_kv_u32(bb *b, const char *key, uint32_t v) {
    bb_key(b, key, 4);
    bb_u32(b, v);
}
static inline void bb_kv_str(bb *b, const char *key, const char *v) {
    bb_key(b, key, 8);
    bb_str(b, v);
}

/* A tensor info: name, n_dims, the n_dims sizes, type, offset. */
static inline void bb_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                             uint32_t type, uint64_t offset) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) bb_u64(b, ne[i]);
    bb_u32(b, type);
    bb_u64(b, offset);
}

#endif
