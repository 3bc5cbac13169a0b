/*
 * Helper for tests/store/test_split.py: writes a GGUF as a split set in llama.cpp's gguf-split
 * layout, so the tests can check that a set loads as the one file it came from.
 *
 *   split_tool IN.gguf OUT_PREFIX N   ->  OUT_PREFIX-00001-of-0000N.gguf ... (N parts)
 *
 * Part 1 carries every metadata key; each part carries split.no (0-based, u16), split.count
 * (u16) and split.tensors.count (i32), and a contiguous share of the tensors. Exits 0, or 1
 * with the error on stderr (2 on bad usage).
 */
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_part(const gguf_file *in, const char *prefix, int no, int count) {
    int64_t nt = gguf_tensor_count(in), from = nt * no / count, to = nt * (no + 1) / count;
    gguf_writer *w = gguf_writer_new();
    ob_err err = {{0}};
    ob_status st = w ? OB_OK : OB_ERR_NOMEM;
    for (int64_t i = 0; !st && no == 0 && i < gguf_kv_count(in); i++) {
        const gguf_kv *kv = gguf_kv_at(in, i);
        if (kv->key.len < 6 || memcmp(kv->key.ptr, "split.", 6)) st = gguf_writer_copy_kv(w, kv);
    }
    if (!st) st = gguf_writer_set_u16(w, "split.no", (uint16_t)no);
    if (!st) st = gguf_writer_set_u16(w, "split.count", (uint16_t)count);
    if (!st) st = gguf_writer_set_i32(w, "split.tensors.count", (int32_t)nt);
    for (int64_t i = from; !st && i < to; i++) {
        const gguf_tensor *t = gguf_tensor_at(in, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", OB_STR_FMT(t->name));
        st = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes, &err);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", prefix, no + 1, count);
    if (!st) st = gguf_writer_write(w, path, &err);
    gguf_writer_free(w);
    if (st) fprintf(stderr, "split_tool: %s: %s\n", path, err.msg[0] ? err.msg : "failed");
    return st ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc != 4 || atoi(argv[3]) < 1 || atoi(argv[3]) > 99) {
        fprintf(stderr, "usage: split_tool IN.gguf OUT_PREFIX N\n");
        return 2;
    }
    gguf_file *in = NULL;
    ob_err err = {{0}};
    if (gguf_open(argv[1], &in, &err)) {
        fprintf(stderr, "split_tool: %s\n", err.msg);
        return 1;
    }
    int count = atoi(argv[3]), rc = 0;
    for (int no = 0; no < count && !rc; no++) rc = write_part(in, argv[2], no, count);
    gguf_close(in);
    return rc;
}
