/*
 * Tests for src/gguf/get.c: typed accessors (integer widening and range checks, float from f32
 * or f64, the _or defaults, arrays), their error messages for missing keys and wrong types,
 * and tensor lookup.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "test.h"

#include <math.h>

static gguf_file *file;
static uint8_t *image;

static int setup(void) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return -1;
    static const int32_t toks[] = {-3, 0, 70000};
    static const float scores[] = {-1.25f, 0.5f};
    static const double bigs[] = {-1e300, 1e300, NAN};
    ob_str strs[2] = {{"<s>", 3}, {"</s>", 4}};
    float data[4] = {1, 2, 3, 4};
    ob_err e = {{0}};
    int bad = gguf_writer_set_u8(w, "k.u8", 7) | gguf_writer_set_i32(w, "k.i32.neg", -5) |
              gguf_writer_set_i32(w, "k.i32", 4096) | gguf_writer_set_u64(w, "k.u64.big", 1ull << 40) |
              gguf_writer_set_u64(w, "k.u64.huge", UINT64_MAX) |
              gguf_writer_set_i64(w, "k.i64.min", INT64_MIN) | gguf_writer_set_f32(w, "k.f32", 1e-5f) |
              gguf_writer_set_f64(w, "k.f64", 10000.0) | gguf_writer_set_bool(w, "k.bool", true) |
              gguf_writer_set_str(w, "k.str", "llama") |
              gguf_writer_set_arr(w, "k.arr.i32", GGUF_VTYPE_INT32, toks, 3) |
              gguf_writer_set_arr(w, "k.arr.f32", GGUF_VTYPE_FLOAT32, scores, 2) |
              gguf_writer_set_arr(w, "k.arr.f64", GGUF_VTYPE_FLOAT64, bigs, 3) |
              gguf_writer_set_arr_str(w, "k.arr.str", strs, 2) |
              gguf_writer_add_tensor(w, "w", OB_QTYPE_F32, 2, (int64_t[]){2, 2}, data, 16, &e);
    size_t size = 0;
    if (!bad) bad = gguf_writer_to_buffer(w, &image, &size, &e);
    gguf_writer_free(w);
    if (!bad) bad = gguf_parse(image, size, "acc.gguf", &file, &e);
    if (bad) fprintf(stderr, "setup: %s\n", e.msg);
    return bad ? -1 : 0;
}

TEST(integers_widen_when_they_fit) {
    uint32_t u = 0;
    uint64_t u64 = 0;
    int64_t i = 0;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_get_u32(file, "k.u8", &u, &e), OB_OK, &e, "");
    CHECK_EQ_INT(u, 7);
    CHECK_STATUS(gguf_get_u32(file, "k.i32", &u, &e), OB_OK, &e, "");
    CHECK_EQ_INT(u, 4096);
    CHECK_STATUS(gguf_get_u64(file, "k.u64.huge", &u64, &e), OB_OK, &e, "");
    CHECK(u64 == UINT64_MAX);
    CHECK_STATUS(gguf_get_i64(file, "k.i32.neg", &i, &e), OB_OK, &e, "");
    CHECK_EQ_INT(i, -5);
    CHECK_STATUS(gguf_get_i64(file, "k.i64.min", &i, &e), OB_OK, &e, "");
    CHECK(i == INT64_MIN);
    CHECK_STATUS(gguf_get_i64(file, "k.u64.big", &i, &e), OB_OK, &e, "");
    CHECK(i == (int64_t)1 << 40);
}

TEST(integers_out_of_range_fail) {
    uint32_t u = 0;
    uint64_t u64 = 0;
    int64_t i = 0;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_get_u32(file, "k.i32.neg", &u, &e), OB_ERR_FORMAT, &e,
                 "acc.gguf: key 'k.i32.neg': value -5 does not fit u32");
    CHECK_STATUS(gguf_get_u32(file, "k.u64.big", &u, &e), OB_ERR_FORMAT, &e,
                 "key 'k.u64.big': value 1099511627776 does not fit u32");
    CHECK_STATUS(gguf_get_u64(file, "k.i64.min", &u64, &e), OB_ERR_FORMAT, &e,
                 "value -9223372036854775808 does not fit u64");
    CHECK_STATUS(gguf_get_i64(file, "k.u64.huge", &i, &e), OB_ERR_FORMAT, &e,
                 "value 18446744073709551615 does not fit i64");
}

TEST(missing_key) {
    uint32_t u = 0;
    ob_str s = {0};
    ob_err e = {{0}};
    CHECK_STATUS(gguf_get_u32(file, "llama.block_count", &u, &e), OB_ERR_FORMAT, &e,
                 "acc.gguf: key 'llama.block_count' not found");
    CHECK_STATUS(gguf_get_str(file, "general.name", &s, &e), OB_ERR_FORMAT, &e,
                 "key 'general.name' not found");
    CHECK(gguf_kv_find(file, "nope") == NULL);
    CHECK(gguf_kv_find(file, NULL) == NULL);
}

TEST(wrong_types) {
    uint32_t u = 0;
    float x = 0;
    bool b = false;
    ob_str s = {0};
    const gguf_kv *kv = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_get_u32(file, "k.str", &u, &e), OB_ERR_FORMAT, &e,
                 "acc.gguf: key 'k.str': expected u32, found str");
    CHECK_STATUS(gguf_get_u32(file, "k.f32", &u, &e), OB_ERR_FORMAT, &e, "expected u32, found f32");
    CHECK_STATUS(gguf_get_u32(file, "k.bool", &u, &e), OB_ERR_FORMAT, &e, "expected u32, found bool");
    CHECK_STATUS(gguf_get_f32(file, "k.i32", &x, &e), OB_ERR_FORMAT, &e, "expected f32, found i32");
    CHECK_STATUS(gguf_get_bool(file, "k.u8", &b, &e), OB_ERR_FORMAT, &e, "expected bool, found u8");
    CHECK_STATUS(gguf_get_str(file, "k.arr.str", &s, &e), OB_ERR_FORMAT, &e,
                 "key 'k.arr.str': expected str, found arr[str]");
    CHECK_STATUS(gguf_get_arr(file, "k.arr.i32", GGUF_VTYPE_STRING, &kv, &e), OB_ERR_FORMAT, &e,
                 "key 'k.arr.i32': expected arr[str], found arr[i32]");
    CHECK_STATUS(gguf_get_arr(file, "k.str", GGUF_VTYPE_STRING, &kv, &e), OB_ERR_FORMAT, &e,
                 "expected arr[str], found str");
    CHECK_STATUS(gguf_get_u32_or(file, "k.str", 3, &u, &e), OB_ERR_FORMAT, &e, "expected u32");
    CHECK_STATUS(gguf_get_f32_or(file, "k.str", 3, &x, &e), OB_ERR_FORMAT, &e, "expected f32");
    CHECK_STATUS(gguf_get_bool_or(file, "k.str", 0, &b, &e), OB_ERR_FORMAT, &e, "expected bool");
}

TEST(floats_bools_strings_and_defaults) {
    float x = 0;
    bool b = false;
    uint32_t u = 0;
    ob_str s = {0};
    ob_err e = {{0}};
    CHECK_STATUS(gguf_get_f32(file, "k.f32", &x, &e), OB_OK, &e, "");
    CHECK(x == 1e-5f);
    CHECK_STATUS(gguf_get_f32(file, "k.f64", &x, &e), OB_OK, &e, "");
    CHECK(x == 10000.0f);
    CHECK_STATUS(gguf_get_bool(file, "k.bool", &b, &e), OB_OK, &e, "");
    CHECK(b);
    CHECK_STATUS(gguf_get_str(file, "k.str", &s, &e), OB_OK, &e, "");
    CHECK(ob_str_eq_cstr(s, "llama"));
    CHECK_STATUS(gguf_get_u32_or(file, "absent", 42, &u, &e), OB_OK, &e, "");
    CHECK_EQ_INT(u, 42);
    CHECK_STATUS(gguf_get_u32_or(file, "k.u8", 42, &u, &e), OB_OK, &e, "");
    CHECK_EQ_INT(u, 7);
    CHECK_STATUS(gguf_get_f32_or(file, "absent", 0.5f, &x, &e), OB_OK, &e, "");
    CHECK(x == 0.5f);
    CHECK_STATUS(gguf_get_bool_or(file, "absent", true, &b, &e), OB_OK, &e, "");
    CHECK(b);
}

TEST(arrays) {
    const gguf_kv *kv = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_get_arr(file, "k.arr.i32", GGUF_VTYPE_INT32, &kv, &e), OB_OK, &e, "");
    CHECK_EQ_INT(kv->arr_len, 3);
    CHECK_EQ_INT(gguf_arr_i64(kv, 0), -3);
    CHECK_EQ_INT(gguf_arr_i64(kv, 2), 70000);
    CHECK(gguf_arr_f64(kv, 0) == -3.0);
    CHECK_STATUS(gguf_get_arr(file, "k.arr.f32", GGUF_VTYPE_FLOAT32, &kv, &e), OB_OK, &e, "");
    CHECK(gguf_arr_f64(kv, 0) == -1.25);
    CHECK(gguf_arr_f64(kv, 1) == 0.5);
    CHECK_EQ_INT(gguf_arr_i64(kv, 0), -1); /* truncated toward zero */
    CHECK_STATUS(gguf_get_arr(file, "k.arr.f64", GGUF_VTYPE_FLOAT64, &kv, &e), OB_OK, &e, "");
    CHECK(gguf_arr_i64(kv, 0) == INT64_MIN); /* saturates instead of overflowing */
    CHECK(gguf_arr_i64(kv, 1) == INT64_MAX);
    CHECK_EQ_INT(gguf_arr_i64(kv, 2), 0); /* NaN */
    CHECK(gguf_arr_f64(kv, 1) == 1e300);
    CHECK_STATUS(gguf_get_arr(file, "k.arr.str", GGUF_VTYPE_STRING, &kv, &e), OB_OK, &e, "");
    CHECK(ob_str_eq_cstr(gguf_arr_str(kv, 1), "</s>"));
    CHECK(gguf_arr_str(kv, 2).ptr == NULL); /* out of range gives an empty view */
}

TEST(tensors) {
    const gguf_tensor *t = NULL;
    ob_err e = {{0}};
    CHECK_STATUS(gguf_tensor_get(file, "w", &t, &e), OB_OK, &e, "");
    CHECK_EQ_INT(gguf_tensor_nelements(t), 4);
    float v[4];
    memcpy(v, t->data, sizeof v);
    CHECK(v[0] == 1 && v[3] == 4);
    CHECK_STATUS(gguf_tensor_get(file, "output.weight", &t, &e), OB_ERR_FORMAT, &e,
                 "acc.gguf: tensor 'output.weight' not found");
    CHECK(gguf_tensor_find(file, "x") == NULL);
    CHECK(gguf_tensor_at(file, 1) == NULL);
    CHECK(gguf_kv_at(file, -1) == NULL);
    CHECK_EQ_STR(gguf_vtype_name(GGUF_VTYPE_FLOAT64), "f64");
}

int main(void) {
    if (setup()) {
        printf("0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    RUN(integers_widen_when_they_fit);
    RUN(integers_out_of_range_fail);
    RUN(missing_key);
    RUN(wrong_types);
    RUN(floats_bools_strings_and_defaults);
    RUN(arrays);
    RUN(tensors);
    gguf_close(file);
    ob_free(image);
    return t_summary();
}
