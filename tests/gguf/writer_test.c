/*
 * Tests for src/gguf/writer.c: a file written with every value type, arrays of every element
 * type (strings included), and tensors of several types and ranks reads back with every key,
 * value and tensor byte intact; files written to disk equal the in-memory image; copying every
 * pair into a new writer reproduces the file byte for byte; bad tensors are refused.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "gguf/gguf.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

static const uint8_t U8S[] = {0, 1, 255};
static const int8_t I8S[] = {-128, 0, 127};
static const uint16_t U16S[] = {0, 65535, 1234};
static const int16_t I16S[] = {-32768, 32767, -5};
static const uint32_t U32S[] = {0, 4294967295u, 7};
static const int32_t I32S[] = {INT32_MIN, INT32_MAX, -1};
static const uint64_t U64S[] = {0, UINT64_MAX, 1ull << 40};
static const int64_t I64S[] = {INT64_MIN, INT64_MAX, -2};
static const float F32S[] = {-1.5f, 3.25f, 1e-30f};
static const double F64S[] = {-1.5e300, 2.0, 1.0 / 3.0};
static const uint8_t BOOLS[] = {1, 0, 1};

/* Tensor payloads: patterned bytes so any shuffle or offset error shows. */
static uint8_t DATA[4][4096];
static int quiet; /* set during the allocation sweep, where build() fails on purpose */

static void fill_data(void) {
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 4096; i++) DATA[t][i] = (uint8_t)(i * 7 + t * 31 + (i >> 8));
}

/* Builds the test writer; returns NULL (after reporting) on any failure. */
static gguf_writer *build(void) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    ob_err e = {{0}};
    ob_str strs[4] = {{"alpha", 5}, {"", 0}, {"with\0nul", 8}, {"\xe2\x96\x81tok", 6}};
    int bad = 0;
    bad |= gguf_writer_set_str(w, "general.architecture", "llama");
    bad |= gguf_writer_set_u8(w, "t.u8", 200);
    bad |= gguf_writer_set_i8(w, "t.i8", -100);
    bad |= gguf_writer_set_u16(w, "t.u16", 60000);
    bad |= gguf_writer_set_i16(w, "t.i16", -30000);
    bad |= gguf_writer_set_u32(w, "t.u32", 4000000000u);
    bad |= gguf_writer_set_i32(w, "t.i32", -2000000000);
    bad |= gguf_writer_set_u64(w, "t.u64", UINT64_MAX);
    bad |= gguf_writer_set_i64(w, "t.i64", INT64_MIN);
    bad |= gguf_writer_set_f32(w, "t.f32", 0.1f);
    bad |= gguf_writer_set_f64(w, "t.f64", -0.1);
    bad |= gguf_writer_set_bool(w, "t.bool", true);
    bad |= gguf_writer_set_strn(w, "t.strn", (ob_str){"a\0b", 3});
    bad |= gguf_writer_set_str(w, "t.replaced", "first value, replaced below");
    bad |= gguf_writer_set_arr(w, "a.u8", GGUF_VTYPE_UINT8, U8S, 3);
    bad |= gguf_writer_set_arr(w, "a.i8", GGUF_VTYPE_INT8, I8S, 3);
    bad |= gguf_writer_set_arr(w, "a.u16", GGUF_VTYPE_UINT16, U16S, 3);
    bad |= gguf_writer_set_arr(w, "a.i16", GGUF_VTYPE_INT16, I16S, 3);
    bad |= gguf_writer_set_arr(w, "a.u32", GGUF_VTYPE_UINT32, U32S, 3);
    bad |= gguf_writer_set_arr(w, "a.i32", GGUF_VTYPE_INT32, I32S, 3);
    bad |= gguf_writer_set_arr(w, "a.u64", GGUF_VTYPE_UINT64, U64S, 3);
    bad |= gguf_writer_set_arr(w, "a.i64", GGUF_VTYPE_INT64, I64S, 3);
    bad |= gguf_writer_set_arr(w, "a.f32", GGUF_VTYPE_FLOAT32, F32S, 3);
    bad |= gguf_writer_set_arr(w, "a.f64", GGUF_VTYPE_FLOAT64, F64S, 3);
    bad |= gguf_writer_set_arr(w, "a.bool", GGUF_VTYPE_BOOL, BOOLS, 3);
    bad |= gguf_writer_set_arr(w, "a.empty", GGUF_VTYPE_INT32, NULL, 0);
    bad |= gguf_writer_set_arr_str(w, "a.str", strs, 4);
    bad |= gguf_writer_set_arr_str(w, "a.str_empty", NULL, 0);
    bad |= gguf_writer_set_str(w, "t.replaced", "second");
    bad |= gguf_writer_set_alignment(w, 64);
    bad |= gguf_writer_add_tensor(w, "f32.1d", OB_QTYPE_F32, 1, (int64_t[]){5}, DATA[0], 20, &e);
    bad |= gguf_writer_add_tensor(w, "f16.2d", OB_QTYPE_F16, 2, (int64_t[]){3, 7}, DATA[1], 42, &e);
    bad |= gguf_writer_add_tensor(w, "q4_0.3d", OB_QTYPE_Q4_0, 3, (int64_t[]){64, 2, 3}, DATA[2],
                                  2 * 18 * 6, &e);
    bad |= gguf_writer_add_tensor(w, "q4_k.4d", OB_QTYPE_Q4_K, 4, (int64_t[]){256, 2, 1, 3},
                                  DATA[3], 144 * 6, &e);
    if (bad) {
        if (!quiet) fprintf(stderr, "building the writer failed: %s\n", e.msg);
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

#define CHECK_SCALAR(f, key, vt, size, expect)                                                  \
    do {                                                                                        \
        const gguf_kv *kv_ = gguf_kv_find(f, key);                                              \
        CHECK_MSG(kv_ && kv_->type == (vt), "key %s", key);                                     \
        __typeof__(expect) want_ = (expect), got_;                                              \
        memcpy(&got_, kv_->data, size);                                                         \
        CHECK_MSG(memcmp(&got_, &want_, size) == 0, "key %s value differs", key);               \
    } while (0)

#define CHECK_ARRAY(f, key, vt, arr)                                                            \
    do {                                                                                        \
        const gguf_kv *kv_ = NULL;                                                              \
        ob_err e_ = {{0}};                                                                      \
        CHECK_STATUS(gguf_get_arr(f, key, vt, &kv_, &e_), OB_OK, &e_, "");                      \
        CHECK_EQ_INT(kv_->arr_len, sizeof(arr) / sizeof((arr)[0]));                             \
        CHECK_MSG(memcmp(kv_->data, arr, sizeof(arr)) == 0, "array %s differs", key);           \
    } while (0)

/* Checks every key, value and tensor of the file built by build(). */
static void check_contents(const gguf_file *f) {
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_kv_count(f), 29);
    CHECK_EQ_INT(gguf_alignment(f), 64);
    CHECK_EQ_INT(gguf_data_offset(f) % 64, 0);
    /* Keys keep the order they were first set in; the replaced one keeps its place. */
    CHECK(ob_str_eq_cstr(gguf_kv_at(f, 0)->key, "general.architecture"));
    CHECK(ob_str_eq_cstr(gguf_kv_at(f, 13)->key, "t.replaced"));
    CHECK(ob_str_eq_cstr(gguf_kv_at(f, 13)->str, "second"));
    CHECK(ob_str_eq_cstr(gguf_kv_at(f, 28)->key, "general.alignment"));
    CHECK_SCALAR(f, "t.u8", GGUF_VTYPE_UINT8, 1, (uint8_t)200);
    CHECK_SCALAR(f, "t.i8", GGUF_VTYPE_INT8, 1, (int8_t)-100);
    CHECK_SCALAR(f, "t.u16", GGUF_VTYPE_UINT16, 2, (uint16_t)60000);
    CHECK_SCALAR(f, "t.i16", GGUF_VTYPE_INT16, 2, (int16_t)-30000);
    CHECK_SCALAR(f, "t.u32", GGUF_VTYPE_UINT32, 4, (uint32_t)4000000000u);
    CHECK_SCALAR(f, "t.i32", GGUF_VTYPE_INT32, 4, (int32_t)-2000000000);
    CHECK_SCALAR(f, "t.u64", GGUF_VTYPE_UINT64, 8, (uint64_t)UINT64_MAX);
    CHECK_SCALAR(f, "t.i64", GGUF_VTYPE_INT64, 8, (int64_t)INT64_MIN);
    CHECK_SCALAR(f, "t.f32", GGUF_VTYPE_FLOAT32, 4, 0.1f);
    CHECK_SCALAR(f, "t.f64", GGUF_VTYPE_FLOAT64, 8, -0.1);
    CHECK_SCALAR(f, "t.bool", GGUF_VTYPE_BOOL, 1, (uint8_t)1);
    CHECK_SCALAR(f, "general.alignment", GGUF_VTYPE_UINT32, 4, (uint32_t)64);
    const gguf_kv *kv = gguf_kv_find(f, "t.strn");
    CHECK(kv && kv->type == GGUF_VTYPE_STRING && ob_str_eq(kv->str, (ob_str){"a\0b", 3}));
    CHECK_ARRAY(f, "a.u8", GGUF_VTYPE_UINT8, U8S);
    CHECK_ARRAY(f, "a.i8", GGUF_VTYPE_INT8, I8S);
    CHECK_ARRAY(f, "a.u16", GGUF_VTYPE_UINT16, U16S);
    CHECK_ARRAY(f, "a.i16", GGUF_VTYPE_INT16, I16S);
    CHECK_ARRAY(f, "a.u32", GGUF_VTYPE_UINT32, U32S);
    CHECK_ARRAY(f, "a.i32", GGUF_VTYPE_INT32, I32S);
    CHECK_ARRAY(f, "a.u64", GGUF_VTYPE_UINT64, U64S);
    CHECK_ARRAY(f, "a.i64", GGUF_VTYPE_INT64, I64S);
    CHECK_ARRAY(f, "a.f32", GGUF_VTYPE_FLOAT32, F32S);
    CHECK_ARRAY(f, "a.f64", GGUF_VTYPE_FLOAT64, F64S);
    CHECK_ARRAY(f, "a.bool", GGUF_VTYPE_BOOL, BOOLS);
    kv = gguf_kv_find(f, "a.empty");
    CHECK(kv && kv->type == GGUF_VTYPE_ARRAY && kv->arr_type == GGUF_VTYPE_INT32 && kv->arr_len == 0);
    kv = gguf_kv_find(f, "a.str");
    CHECK(kv && kv->arr_type == GGUF_VTYPE_STRING && kv->arr_len == 4);
    CHECK(ob_str_eq_cstr(gguf_arr_str(kv, 0), "alpha"));
    CHECK(gguf_arr_str(kv, 1).len == 0);
    CHECK(ob_str_eq(gguf_arr_str(kv, 2), (ob_str){"with\0nul", 8}));
    CHECK(ob_str_eq_cstr(gguf_arr_str(kv, 3), "\xe2\x96\x81tok"));
    kv = gguf_kv_find(f, "a.str_empty");
    CHECK(kv && kv->arr_type == GGUF_VTYPE_STRING && kv->arr_len == 0);

    static const struct { const char *name; uint32_t type, n_dims; int64_t ne[4]; size_t nbytes; }
        WANT[4] = {{"f32.1d", OB_QTYPE_F32, 1, {5, 1, 1, 1}, 20},
                   {"f16.2d", OB_QTYPE_F16, 2, {3, 7, 1, 1}, 42},
                   {"q4_0.3d", OB_QTYPE_Q4_0, 3, {64, 2, 3, 1}, 216},
                   {"q4_k.4d", OB_QTYPE_Q4_K, 4, {256, 2, 1, 3}, 864}};
    CHECK_EQ_INT(gguf_tensor_count(f), 4);
    for (int i = 0; i < 4; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        CHECK(ob_str_eq_cstr(t->name, WANT[i].name));
        CHECK(gguf_tensor_find(f, WANT[i].name) == t);
        CHECK_EQ_INT(t->type, WANT[i].type);
        CHECK_EQ_INT(t->n_dims, WANT[i].n_dims);
        for (int d = 0; d < 4; d++) CHECK_EQ_INT(t->ne[d], WANT[i].ne[d]);
        CHECK_EQ_INT(t->nbytes, WANT[i].nbytes);
        CHECK_EQ_INT(t->offset % 64, 0);
        CHECK_MSG(memcmp(t->data, DATA[i], t->nbytes) == 0, "tensor %s bytes differ", WANT[i].name);
    }
}

TEST(round_trip_in_memory) {
    gguf_writer *w = build();
    CHECK(w != NULL);
    uint8_t *buf = NULL;
    size_t size = 0;
    ob_err e = {{0}};
    ob_status st = gguf_writer_to_buffer(w, &buf, &size, &e);
    gguf_writer_free(w);
    CHECK_STATUS(st, OB_OK, &e, "");
    gguf_file *f = NULL;
    st = gguf_parse(buf, size, "mem.gguf", &f, &e);
    if (st == OB_OK) {
        CHECK_EQ_INT(size, gguf_file_size(f));
        check_contents(f);
    }
    gguf_close(f);
    ob_free(buf);
    CHECK_STATUS(st, OB_OK, &e, "");
}

TEST(round_trip_through_a_file) {
    gguf_writer *w = build();
    CHECK(w != NULL);
    char path[] = "/tmp/ob_writer_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    ob_err e = {{0}};
    uint8_t *buf = NULL;
    size_t size = 0;
    ob_status st = gguf_writer_write(w, path, &e);
    if (!st) st = gguf_writer_to_buffer(w, &buf, &size, &e);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    if (!st) st = gguf_open(path, &f, &e);
    unlink(path);
    CHECK_STATUS(st, OB_OK, &e, "");
    int same = gguf_file_size(f) == size;
    check_contents(f);
    gguf_close(f);
    ob_free(buf);
    CHECK_MSG(same, "file and buffer sizes differ");
}

/* copy_kv of every pair plus the same tensors gives the identical image. */
TEST(copy_kv_reproduces_the_file) {
    gguf_writer *w = build();
    CHECK(w != NULL);
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    ob_err e = {{0}};
    ob_status st = gguf_writer_to_buffer(w, &a, &na, &e);
    gguf_writer_free(w);
    CHECK_STATUS(st, OB_OK, &e, "");
    gguf_file *f = NULL;
    gguf_writer *w2 = gguf_writer_new();
    st = gguf_parse(a, na, "a.gguf", &f, &e);
    for (int64_t i = 0; !st && i < gguf_kv_count(f); i++) st = gguf_writer_copy_kv(w2, gguf_kv_at(f, i));
    for (int64_t i = 0; !st && i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[64];
        snprintf(name, sizeof name, "%.*s", OB_STR_FMT(t->name));
        st = gguf_writer_add_tensor(w2, name, t->type, t->n_dims, t->ne, t->data, t->nbytes, &e);
    }
    if (!st) st = gguf_writer_to_buffer(w2, &b, &nb, &e);
    int same = !st && na == nb && memcmp(a, b, na) == 0;
    gguf_writer_free(w2);
    gguf_close(f);
    ob_free(a);
    ob_free(b);
    CHECK_STATUS(st, OB_OK, &e, "");
    CHECK_MSG(same, "copied image differs (%zu vs %zu bytes)", na, nb);
}

TEST(writer_refuses_bad_tensors_and_keys) {
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    ob_err e = {{0}};
    float x[8] = {0};
    ob_status st = gguf_writer_add_tensor(w, "x", OB_QTYPE_F32, 1, (int64_t[]){8}, x, 32, &e);
    if (!st) st = gguf_writer_add_tensor(w, "x", OB_QTYPE_F32, 1, (int64_t[]){8}, x, 32, &e);
    int dup = st == OB_ERR_ARG && strstr(e.msg, "tensor 'x': duplicate name") != NULL;
    st = gguf_writer_add_tensor(w, "y", OB_QTYPE_F32, 1, (int64_t[]){8}, x, 28, &e);
    int size = st == OB_ERR_ARG && strstr(e.msg, "28 bytes given, F32 shape needs 32") != NULL;
    st = gguf_writer_add_tensor(w, "z", OB_QTYPE_Q4_0, 1, (int64_t[]){8}, x, 32, &e);
    int block = st == OB_ERR_FORMAT && strstr(e.msg, "not a multiple of Q4_0's block") != NULL;
    st = gguf_writer_add_tensor(w, "u", 5, 1, (int64_t[]){8}, x, 32, &e);
    int unknown = st == OB_ERR_UNSUPPORTED && strstr(e.msg, "unknown tensor type 5") != NULL;
    st = gguf_writer_add_tensor(w, "d", OB_QTYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 8}, x, 32, &e);
    int dims = st == OB_ERR_ARG && strstr(e.msg, "n_dims 5") != NULL;
    int align = gguf_writer_set_alignment(w, 48) == OB_ERR_ARG &&
                gguf_writer_set_u32(w, "general.alignment", 0) == OB_ERR_ARG;
    gguf_writer_free(w);
    CHECK(dup);
    CHECK(size);
    CHECK(block);
    CHECK(unknown);
    CHECK(dims);
    CHECK(align);
}

/* Building and serialising under allocation failure: every failure is reported, no leaks. */
TEST(writer_alloc_failure_sweep) {
    int done = 0;
    quiet = 1;
    for (int64_t n = 0; n < 1000 && !done; n++) {
        ob_alloc_fail_after(n);
        gguf_writer *w = build();
        uint8_t *buf = NULL;
        size_t size = 0;
        ob_err e = {{0}};
        if (w && gguf_writer_to_buffer(w, &buf, &size, &e) == OB_OK) done = 1;
        ob_alloc_fail_after(-1);
        ob_free(buf);
        gguf_writer_free(w);
    }
    quiet = 0;
    CHECK(done);
}

/* ---- fuzz seeds ------------------------------------------------------------------------ */

/* Small, valid images for tests/fuzz_corpus/parse_fuzz/, written when OB_FUZZ_SEED_DIR is set:
 *   OB_FUZZ_SEED_DIR=tests/fuzz_corpus/parse_fuzz build/tests/gguf/writer_test */
static int write_seed(const char *dir, const char *name, gguf_writer *w, int version) {
    uint8_t *buf = NULL;
    size_t size = 0;
    ob_err e = {{0}};
    int rc = -1;
    if (w && gguf_writer_to_buffer(w, &buf, &size, &e) == OB_OK) {
        buf[4] = (uint8_t)version; /* v2 has the same layout as v3 */
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *fp = fopen(path, "wb");
        if (fp && fwrite(buf, 1, size, fp) == size) rc = 0;
        if (fp) fclose(fp);
    }
    ob_free(buf);
    gguf_writer_free(w);
    return rc;
}

static int write_fuzz_seeds(const char *dir) {
    static const float scores[4] = {0, -1, -2.5f, -3};
    static const int32_t ttypes[4] = {2, 3, 1, 1};
    ob_str toks[4] = {{"<unk>", 5}, {"<s>", 3}, {"\xe2\x96\x81" "a", 4}, {"b", 1}};
    ob_err e = {{0}};
    int rc = 0;

    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 1);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VTYPE_FLOAT32, scores, 4);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VTYPE_INT32, ttypes, 4);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_writer_add_tensor(w, "token_embd.weight", OB_QTYPE_F32, 2, (int64_t[]){4, 4}, DATA[0], 64, &e);
    gguf_writer_add_tensor(w, "blk.0.attn_q.weight", OB_QTYPE_Q4_0, 2, (int64_t[]){32, 2}, DATA[1], 36, &e);
    rc |= write_seed(dir, "llama-tiny.gguf", w, 3);

    w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "gemma3");
    gguf_writer_add_tensor(w, "q4_k", OB_QTYPE_Q4_K, 1, (int64_t[]){256}, DATA[2], 144, &e);
    gguf_writer_add_tensor(w, "q6_k", OB_QTYPE_Q6_K, 1, (int64_t[]){256}, DATA[3], 210, &e);
    gguf_writer_add_tensor(w, "f16", OB_QTYPE_F16, 3, (int64_t[]){2, 1, 3}, DATA[0], 12, &e);
    gguf_writer_set_alignment(w, 64);
    rc |= write_seed(dir, "kquants-v2.gguf", w, 2);

    /* Every value type, no tensors (like a vocab-only file). */
    w = gguf_writer_new();
    gguf_writer_set_u8(w, "u8", 1);
    gguf_writer_set_i8(w, "i8", -1);
    gguf_writer_set_u16(w, "u16", 2);
    gguf_writer_set_i16(w, "i16", -2);
    gguf_writer_set_u32(w, "u32", 3);
    gguf_writer_set_i32(w, "i32", -3);
    gguf_writer_set_u64(w, "u64", 4);
    gguf_writer_set_i64(w, "i64", -4);
    gguf_writer_set_f32(w, "f32", 0.5f);
    gguf_writer_set_f64(w, "f64", 0.25);
    gguf_writer_set_bool(w, "bool", true);
    gguf_writer_set_str(w, "str", "s");
    gguf_writer_set_arr(w, "arr.u16", GGUF_VTYPE_UINT16, U16S, 3);
    gguf_writer_set_arr(w, "arr.i64", GGUF_VTYPE_INT64, I64S, 3);
    gguf_writer_set_arr(w, "arr.f64", GGUF_VTYPE_FLOAT64, F64S, 3);
    gguf_writer_set_arr(w, "arr.bool", GGUF_VTYPE_BOOL, BOOLS, 3);
    gguf_writer_set_arr_str(w, "arr.str", toks, 2);
    rc |= write_seed(dir, "all-types.gguf", w, 3);
    return rc;
}

int main(void) {
    fill_data();
    const char *seed_dir = getenv("OB_FUZZ_SEED_DIR");
    if (seed_dir) {
        int rc = write_fuzz_seeds(seed_dir);
        fprintf(stderr, "fuzz seeds %s in %s\n", rc ? "NOT written" : "written", seed_dir);
        return rc ? 1 : 0;
    }
    RUN(round_trip_in_memory);
    RUN(round_trip_through_a_file);
    RUN(copy_kv_reproduces_the_file);
    RUN(writer_refuses_bad_tensors_and_keys);
    RUN(writer_alloc_failure_sweep);
    return t_summary();
}
