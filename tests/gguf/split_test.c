/*
 * src/gguf/split.c: a split set read as one file, and the ways a set can be wrong (a tensor in
 * two parts, a count that does not add up). The sets are written with our writer in a
 * temporary folder; tests/store/test_split.py checks the layout against llama.cpp.
 */
#include "gguf/gguf.h"
#include "test.h"

#include <stdlib.h>
#include <unistd.h>

static char DIR_[] = "/tmp/ob-split-test-XXXXXX";

/* Part no (0-based) of count: split keys, then one f32 tensor of 4 values per name given. */
static void write_part(int no, int count, int32_t total, const char *const *names, size_t n) {
    gguf_writer *w = gguf_writer_new();
    if (no == 0) gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u16(w, "split.no", (uint16_t)no);
    gguf_writer_set_u16(w, "split.count", (uint16_t)count);
    gguf_writer_set_i32(w, "split.tensors.count", total);
    static float vals[4] = {1, 2, 3, 4};
    int64_t ne[1] = {4};
    for (size_t i = 0; i < n; i++) {
        vals[0] = (float)(10 * no + (int)i);
        gguf_writer_add_tensor(w, names[i], OB_QTYPE_F32, 1, ne, vals, sizeof vals, NULL);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/m-%05d-of-%05d.gguf", DIR_, no + 1, count);
    gguf_writer_write(w, path, NULL);
    gguf_writer_free(w);
}

static const char *first(int count) {
    static char path[256];
    snprintf(path, sizeof path, "%s/m-00001-of-%05d.gguf", DIR_, count);
    return path;
}

TEST(a_set_reads_as_one_file) {
    const char *const a[] = {"a.weight", "b.weight"}, *const b[] = {"c.weight"};
    write_part(0, 2, 3, a, 2);
    write_part(1, 2, 3, b, 1);
    gguf_file *f = NULL;
    ob_err err = {{0}};
    CHECK_EQ_INT(gguf_open_set(first(2), &f, &err), OB_OK);
    CHECK_EQ_INT(gguf_tensor_count(f), 3);
    const gguf_tensor *c = gguf_tensor_find(f, "c.weight"), *x = gguf_tensor_find(f, "b.weight");
    CHECK(c && x);
    CHECK_EQ_INT((int)((const float *)c->data)[0], 10); /* from the second file's mapping */
    CHECK_EQ_INT((int)((const float *)x->data)[0], 1);
    gguf_close(f);
}

TEST(sets_that_do_not_add_up) {
    const char *const a[] = {"a.weight"}, *const dup[] = {"a.weight"}, *const b[] = {"b.weight"};
    gguf_file *f = NULL;
    ob_err err = {{0}};
    write_part(0, 2, 2, a, 1);
    write_part(1, 2, 2, dup, 1);
    CHECK_STATUS(gguf_open_set(first(2), &f, &err), OB_ERR_FORMAT, &err, "in two parts");
    write_part(1, 2, 2, b, 1);
    write_part(0, 2, 5, a, 1);
    CHECK_STATUS(gguf_open_set(first(2), &f, &err), OB_ERR_FORMAT, &err,
                 "split.tensors.count says 5");
    write_part(0, 3, 3, a, 1);
    CHECK_STATUS(gguf_open_set(first(3), &f, &err), OB_ERR_IO, &err, "m-00002-of-00003.gguf");
    char second[256];
    snprintf(second, sizeof second, "%s/m-00002-of-00002.gguf", DIR_);
    CHECK_STATUS(gguf_open_set(second, &f, &err), OB_ERR_ARG, &err, "load the first part");
    CHECK(f == NULL);
}

int main(void) {
    if (!mkdtemp(DIR_)) return 1;
    RUN(a_set_reads_as_one_file);
    RUN(sets_that_do_not_add_up);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", DIR_);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", DIR_);
    return t_summary();
}
