/*
 * Tests for src/gguf/parse.c: crafted malformed images (each asserting its status and the
 * words of its message: what was wrong and where), every truncation of a valid image, a valid
 * image's tables, and an allocation-failure sweep over parsing real model files.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "gguf_bytes.h"
#include "test.h"

#include <stdio.h>

#define NAME "crafted.gguf"

/* Parses b, frees it, closes any result; returns the status with err filled. */
static ob_status parse_and_free(bb *b, ob_err *err) {
    gguf_file *f = NULL;
    err->msg[0] = '\0';
    ob_status st = gguf_parse(b->p, b->len, NAME, &f, err);
    if (st == OB_OK && f == NULL) st = OB_ERR_ARG; /* would be a bug */
    if (st != OB_OK && f != NULL) st = OB_ERR_ARG; /* *out must be NULL on failure */
    gguf_close(f);
    bb_free(b);
    return st;
}

#define EXPECT(b, status, needle)                                                               \
    do {                                                                                        \
        ob_err e_ = {{0}};                                                                      \
        CHECK_STATUS(parse_and_free(&(b), &e_), status, &e_, needle);                           \
        CHECK_MSG(strncmp(e_.msg, NAME ": ", strlen(NAME) + 2) == 0, "no file name in \"%s\"",  \
                  e_.msg);                                                                      \
    } while (0)

/* A valid image: two pairs, two F32 tensors of 8 elements, 32-byte alignment. */
static void valid_image(bb *b) {
    bb_header(b, 3, 2, 2);
    bb_kv_str(b, "general.architecture", "llama");
    bb_kv_u32(b, "llama.block_count", 1);
    bb_tensor(b, "a", 1, (uint64_t[]){8}, OB_QTYPE_F32, 0);
    bb_tensor(b, "b", 2, (uint64_t[]){4, 2}, OB_QTYPE_F32, 32);
    bb_pad(b, 32);
    for (int i = 0; i < 16; i++) bb_u32(b, 0x3f800000u + (uint32_t)i);
    bb_zeros(b, 32);
}

/* ---- header -------------------------------------------------------------------------------- */

TEST(empty_buffer) {
    bb b = {0};
    EXPECT(b, OB_ERR_FORMAT, "truncated at byte offset 0: magic");
}

TEST(wrong_magic) {
    bb b = {0};
    bb_put(&b, "GGML", 4);
    bb_u32(&b, 3);
    EXPECT(b, OB_ERR_FORMAT, "bad magic at byte offset 0");
}

TEST(version_1_unsupported) {
    bb b = {0};
    bb_header(&b, 1, 0, 0);
    EXPECT(b, OB_ERR_UNSUPPORTED, "GGUF version 1 at byte offset 4");
}

TEST(unknown_version) {
    bb b = {0};
    bb_header(&b, 7, 0, 0);
    EXPECT(b, OB_ERR_FORMAT, "unknown GGUF version 7 at byte offset 4");
}

TEST(big_endian_file) {
    bb b = {0};
    bb_header(&b, 0x03000000u, 0, 0);
    EXPECT(b, OB_ERR_UNSUPPORTED, "big-endian");
}

TEST(truncated_header) {
    bb b = {0};
    bb_put(&b, "GGUF", 4);
    bb_u32(&b, 3);
    bb_u32(&b, 0);
    EXPECT(b, OB_ERR_FORMAT, "truncated at byte offset 8: tensor count");
}

TEST(absurd_kv_count) {
    bb b = {0};
    bb_header(&b, 3, 0, 1ull << 40);
    EXPECT(b, OB_ERR_LIMIT, "metadata count 1099511627776 at byte offset 16 exceeds");
}

TEST(kv_count_larger_than_file) {
    bb b = {0};
    bb_header(&b, 3, 0, 1000);
    bb_kv_u32(&b, "a", 1);
    EXPECT(b, OB_ERR_FORMAT, "metadata count 1000 at byte offset 16 cannot fit");
}

TEST(absurd_tensor_count) {
    bb b = {0};
    bb_header(&b, 3, UINT64_MAX, 0);
    EXPECT(b, OB_ERR_LIMIT, "tensor count 18446744073709551615 at byte offset 8 exceeds");
}

TEST(tensor_count_larger_than_file) {
    bb b = {0};
    bb_header(&b, 2, 1000, 0);
    bb_zeros(&b, 64);
    EXPECT(b, OB_ERR_FORMAT, "tensor count 1000 at byte offset 8 cannot fit");
}

/* ---- metadata ---------------------------------------------------------------------------- */

TEST(key_length_past_end) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 100); /* key length */
    bb_put(&b, "abcdef", 6);
    EXPECT(b, OB_ERR_FORMAT, "key of metadata pair 0 at byte offset 24: string length 100 runs past");
}

TEST(string_length_over_limit) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "general.name", 8);
    bb_u64(&b, 1ull << 40);
    bb_zeros(&b, 8);
    EXPECT(b, OB_ERR_LIMIT, "key 'general.name' at byte offset 48: string length 1099511627776 exceeds");
}

TEST(string_value_past_end) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "general.name", 8);
    bb_u64(&b, 50);
    bb_put(&b, "short", 5);
    EXPECT(b, OB_ERR_FORMAT, "key 'general.name' at byte offset 48: string length 50 runs past");
}

TEST(unknown_value_type) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "x.y", 13);
    bb_u32(&b, 0);
    EXPECT(b, OB_ERR_FORMAT, "key 'x.y' at byte offset 35: unknown value type 13");
}

TEST(truncated_scalar_value) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "x.y", 10); /* u64 */
    bb_u32(&b, 0);
    EXPECT(b, OB_ERR_FORMAT, "truncated at byte offset 39: key 'x.y' needs 8 bytes, 4 left");
}

TEST(nested_array) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "x.arr", 9);
    bb_u32(&b, 9);
    bb_u64(&b, 1);
    bb_zeros(&b, 16);
    EXPECT(b, OB_ERR_UNSUPPORTED, "key 'x.arr' at byte offset 41: nested arrays");
}

TEST(unknown_array_element_type) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "x.arr", 9);
    bb_u32(&b, 77);
    bb_u64(&b, 1);
    bb_zeros(&b, 16);
    EXPECT(b, OB_ERR_FORMAT, "key 'x.arr' at byte offset 41: unknown array element type 77");
}

TEST(array_count_larger_than_file) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "x.arr", 9);
    bb_u32(&b, 4); /* u32 elements */
    bb_u64(&b, 1ull << 61);
    bb_zeros(&b, 16);
    EXPECT(b, OB_ERR_FORMAT, "key 'x.arr' at byte offset 41: array of 2305843009213693952 u32");
}

TEST(string_array_element_past_end) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "tokenizer.ggml.tokens", 9);
    bb_u32(&b, 8);
    bb_u64(&b, 2);
    bb_str(&b, "ok");
    bb_u64(&b, 1000);
    bb_zeros(&b, 4);
    EXPECT(b, OB_ERR_FORMAT, "key 'tokenizer.ggml.tokens' at byte offset 79: string length 1000");
}

TEST(duplicate_key) {
    bb b = {0};
    bb_header(&b, 3, 0, 2);
    bb_kv_u32(&b, "a.b", 1);
    bb_kv_u32(&b, "a.b", 2);
    EXPECT(b, OB_ERR_FORMAT, "key 'a.b' at byte offset 43: duplicate key (first defined by pair 0)");
}

TEST(alignment_wrong_type) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, "general.alignment", 10);
    bb_u64(&b, 32);
    EXPECT(b, OB_ERR_FORMAT, "key 'general.alignment' at byte offset 24: expected u32, found u64");
}

TEST(alignment_zero) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 0);
    EXPECT(b, OB_ERR_FORMAT, "key 'general.alignment' at byte offset 24: 0 is not a power of two");
}

TEST(alignment_not_power_of_two) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 48);
    EXPECT(b, OB_ERR_FORMAT, "48 is not a power of two");
}

/* ---- tensor infos ------------------------------------------------------------------------ */

/* Header with no pairs and one tensor info, then `data` zero bytes after 32-byte padding. */
static void one_tensor(bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off,
                       size_t data) {
    bb_header(b, 3, 1, 0);
    bb_tensor(b, "blk.0.attn_q.weight", n_dims, ne, type, off);
    bb_pad(b, 32);
    bb_zeros(b, data);
}

TEST(tensor_n_dims_zero) {
    bb b = {0};
    one_tensor(&b, 0, NULL, OB_QTYPE_F32, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' at byte offset 24: n_dims 0, expected 1..4");
}

TEST(tensor_n_dims_five) {
    bb b = {0};
    one_tensor(&b, 5, (uint64_t[]){1, 1, 1, 1, 1}, OB_QTYPE_F32, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "n_dims 5, expected 1..4");
}

TEST(tensor_zero_dimension) {
    bb b = {0};
    one_tensor(&b, 2, (uint64_t[]){4, 0}, OB_QTYPE_F32, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' at byte offset 24: dimension 1 is 0");
}

TEST(tensor_negative_dimension) {
    bb b = {0};
    one_tensor(&b, 1, (uint64_t[]){(uint64_t)-4}, OB_QTYPE_F32, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "dimension 0 is 18446744073709551612");
}

TEST(tensor_element_count_overflow) {
    bb b = {0};
    one_tensor(&b, 3, (uint64_t[]){1ull << 30, 1ull << 30, 1ull << 30}, OB_QTYPE_F32, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "element count overflows at dimension 2");
}

TEST(tensor_byte_size_overflow) {
    bb b = {0};
    one_tensor(&b, 1, (uint64_t[]){1ull << 62}, OB_QTYPE_F32, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' at byte offset 24: row of");
}

TEST(tensor_unknown_type) {
    bb b = {0};
    one_tensor(&b, 1, (uint64_t[]){32}, 4 /* retired Q4_2 */, 0, 64);
    EXPECT(b, OB_ERR_UNSUPPORTED, "tensor 'blk.0.attn_q.weight' at byte offset 24: unknown tensor type 4");
}

TEST(tensor_row_not_multiple_of_block) {
    bb b = {0};
    one_tensor(&b, 2, (uint64_t[]){31, 2}, OB_QTYPE_Q4_0, 0, 64);
    EXPECT(b, OB_ERR_FORMAT, "row of 31 elements is not a multiple of Q4_0's block of 32");
}

TEST(tensor_misaligned_offset) {
    bb b = {0};
    one_tensor(&b, 1, (uint64_t[]){4}, OB_QTYPE_F32, 8, 64);
    EXPECT(b, OB_ERR_FORMAT, "data offset 8 is not a multiple of the alignment 32");
}

TEST(tensor_data_past_end) {
    bb b = {0};
    one_tensor(&b, 1, (uint64_t[]){64}, OB_QTYPE_F32, 0, 200);
    EXPECT(b, OB_ERR_FORMAT, "tensor 'blk.0.attn_q.weight': data [0, +256) runs past the end");
}

TEST(tensor_offset_far_past_end) {
    bb b = {0};
    one_tensor(&b, 1, (uint64_t[]){4}, OB_QTYPE_F32, 1ull << 60, 32);
    EXPECT(b, OB_ERR_FORMAT, "data [1152921504606846976, +16) runs past the end");
}

TEST(data_region_past_end) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 1, (uint64_t[]){4}, OB_QTYPE_F32, 0);
    EXPECT(b, OB_ERR_FORMAT, "tensor data region starts at byte offset 64, past the end");
}

TEST(tensors_overlap) {
    bb b = {0};
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "first", 1, (uint64_t[]){16}, OB_QTYPE_F32, 0);
    bb_tensor(&b, "second", 1, (uint64_t[]){8}, OB_QTYPE_F32, 32);
    bb_pad(&b, 32);
    bb_zeros(&b, 128);
    EXPECT(b, OB_ERR_FORMAT, "tensor 'second': data [32, 64) overlaps tensor 'first' [0, 64)");
}

TEST(duplicate_tensor_name) {
    bb b = {0};
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "w", 1, (uint64_t[]){8}, OB_QTYPE_F32, 0);
    bb_tensor(&b, "w", 1, (uint64_t[]){8}, OB_QTYPE_F32, 32);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    EXPECT(b, OB_ERR_FORMAT, "tensor 'w' at byte offset 57: duplicate tensor name (first is tensor 0)");
}

TEST(truncated_tensor_info) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_str(&b, "t");
    bb_u32(&b, 3);
    bb_u64(&b, 4);
    bb_u64(&b, 4);
    bb_zeros(&b, 7); /* enough for the count check, not for the third size */
    EXPECT(b, OB_ERR_FORMAT, "truncated at byte offset 53: tensor 't' needs 8 bytes, 7 left");
}

TEST(long_names_are_clipped_in_messages) {
    char key[400];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_key(&b, key, 99);
    bb_u32(&b, 0);
    ob_err e = {{0}};
    CHECK_STATUS(parse_and_free(&b, &e), OB_ERR_FORMAT, &e, "kkk...' at byte offset 431");
    CHECK(strstr(e.msg, "unknown value type 99") != NULL);
}

/* ---- valid images ------------------------------------------------------------------------ */

TEST(valid_image_tables) {
    bb b = {0};
    valid_image(&b);
    gguf_file *f = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_parse(b.p, b.len, NAME, &f, &e), OB_OK, &e, "");
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_kv_count(f), 2);
    CHECK_EQ_INT(gguf_tensor_count(f), 2);
    CHECK_EQ_INT(gguf_alignment(f), 32);
    CHECK_EQ_INT(gguf_data_offset(f) % 32, 0);
    CHECK_EQ_INT(gguf_file_size(f), b.len);
    CHECK_EQ_STR(gguf_name(f), NAME);
    const gguf_tensor *t = gguf_tensor_find(f, "b");
    CHECK(t != NULL);
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->ne[0], 4);
    CHECK_EQ_INT(t->ne[1], 2);
    CHECK_EQ_INT(t->ne[2], 1);
    CHECK_EQ_INT(t->nbytes, 32);
    CHECK((const uint8_t *)t->data == b.p + gguf_data_offset(f) + 32);
    uint32_t first;
    memcpy(&first, t->data, 4);
    CHECK_EQ_INT(first, 0x3f800008u);
    gguf_close(f);
    bb_free(&b);
}

TEST(version_2_is_accepted) {
    bb b = {0};
    valid_image(&b);
    b.p[4] = 2;
    gguf_file *f = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_parse(b.p, b.len, NAME, &f, &e), OB_OK, &e, "");
    CHECK_EQ_INT(gguf_version(f), 2);
    gguf_close(f);
    bb_free(&b);
}

/* Every proper prefix of a valid image fails cleanly with a format error (the tensor data of
 * the last tensor is needed, so no prefix can succeed). */
TEST(every_truncation_fails) {
    bb b = {0};
    valid_image(&b);
    size_t full = b.len - 32; /* without the trailing zeros, the image ends with tensor b */
    for (size_t n = 0; n < full; n++) {
        gguf_file *f = NULL;
        ob_err e = {{0}};
        ob_status st = gguf_parse(b.p, n, NAME, &f, &e);
        CHECK_MSG(st == OB_ERR_FORMAT && f == NULL, "prefix %zu: %s (%s)", n, ob_status_name(st),
                  e.msg);
    }
    bb_free(&b);
}

/* ---- allocation failures ----------------------------------------------------------------- */

/* Fails each allocation of parsing `buf` in turn; every failure must be OB_ERR_NOMEM with a
 * message and leave nothing behind (LeakSanitizer checks that under `make check`). */
static int sweep(const uint8_t *buf, size_t size, const char *name) {
    for (int64_t n = 0; n < 10000; n++) {
        gguf_file *f = NULL;
        ob_err e = {{0}};
        ob_alloc_fail_after(n);
        ob_status st = gguf_parse(buf, size, name, &f, &e);
        ob_alloc_fail_after(-1);
        if (st == OB_OK) {
            gguf_close(f);
            return (int)n;
        }
        if (st != OB_ERR_NOMEM || f != NULL || strstr(e.msg, "out of memory") == NULL) {
            fprintf(stderr, "after %lld allocations: %s (%s)\n", (long long)n, ob_status_name(st),
                    e.msg);
            return -1;
        }
    }
    return -1;
}

static uint8_t *slurp(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

TEST(alloc_failure_sweep_crafted) {
    bb b = {0};
    valid_image(&b);
    CHECK(sweep(b.p, b.len, NAME) > 0);
    bb_free(&b);
}

TEST(alloc_failure_sweep_real_model) {
    const char *path = t_shared_path("models/llama-2-tiny-random.gguf");
    if (!path) SKIP("models/llama-2-tiny-random.gguf not under $OB_SHARED");
    size_t size;
    uint8_t *buf = slurp(path, &size);
    CHECK(buf != NULL);
    int n = sweep(buf, size, "llama-2-tiny-random.gguf");
    free(buf);
    CHECK_MSG(n > 3, "sweep ended after %d allocations", n);
}

int main(void) {
    RUN(empty_buffer);
    RUN(wrong_magic);
    RUN(version_1_unsupported);
    RUN(unknown_version);
    RUN(big_endian_file);
    RUN(truncated_header);
    RUN(absurd_kv_count);
    RUN(kv_count_larger_than_file);
    RUN(absurd_tensor_count);
    RUN(tensor_count_larger_than_file);
    RUN(key_length_past_end);
    RUN(string_length_over_limit);
    RUN(string_value_past_end);
    RUN(unknown_value_type);
    RUN(truncated_scalar_value);
    RUN(nested_array);
    RUN(unknown_array_element_type);
    RUN(array_count_larger_than_file);
    RUN(string_array_element_past_end);
    RUN(duplicate_key);
    RUN(alignment_wrong_type);
    RUN(alignment_zero);
    RUN(alignment_not_power_of_two);
    RUN(tensor_n_dims_zero);
    RUN(tensor_n_dims_five);
    RUN(tensor_zero_dimension);
    RUN(tensor_negative_dimension);
    RUN(tensor_element_count_overflow);
    RUN(tensor_byte_size_overflow);
    RUN(tensor_unknown_type);
    RUN(tensor_row_not_multiple_of_block);
    RUN(tensor_misaligned_offset);
    RUN(tensor_data_past_end);
    RUN(tensor_offset_far_past_end);
    RUN(data_region_past_end);
    RUN(tensors_overlap);
    RUN(duplicate_tensor_name);
    RUN(truncated_tensor_info);
    RUN(long_names_are_clipped_in_messages);
    RUN(valid_image_tables);
    RUN(version_2_is_accepted);
    RUN(every_truncation_fails);
    RUN(alloc_failure_sweep_crafted);
    RUN(alloc_failure_sweep_real_model);
    return t_summary();
}
