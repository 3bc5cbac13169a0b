/*
 * Split GGUF sets (llama.cpp's gguf-split layout): NAME-00001-of-0000N.gguf ... -0000N-of-
 * 0000N.gguf, each a GGUF of its own carrying split.no (0-based), split.count and
 * split.tensors.count; the first holds all the metadata. gguf_open_set maps every part and
 * lets the first part's table hold every tensor, so a loader asks for tensors by name as if
 * the set were one file.
 */
#include "gguf/gguf_impl.h"

#include "core/err.h"

#include <stdio.h>
#include <string.h>

#define SPLIT_SUFFIX_LEN 20 /* "-00001-of-00003.gguf" */

/* The path of part `no` (1-based) of the set whose first part is `first`; false when first
 * does not end in "-00001-of-NNNNN.gguf" for this count. */
static bool part_path(const char *first, int64_t no, int64_t count, char *buf, size_t cap) {
    size_t len = strlen(first);
    char want[32];
    snprintf(want, sizeof want, "-%05d-of-%05d.gguf", 1, (int)count);
    if (len < SPLIT_SUFFIX_LEN || strcmp(first + len - SPLIT_SUFFIX_LEN, want)) return false;
    int n = snprintf(buf, cap, "%.*s-%05d-of-%05d.gguf", (int)(len - SPLIT_SUFFIX_LEN), first,
                     (int)no, (int)count);
    return n > 0 && (size_t)n < cap;
}

/* An integer key, or def when absent. */
static ob_status int_or(const gguf_file *f, const char *key, int64_t def, int64_t *out,
                        ob_err *err) {
    *out = def;
    return gguf_kv_find(f, key) ? gguf_get_i64(f, key, out, err) : OB_OK;
}

ob_status gguf_open_set(const char *path, gguf_file **out, ob_err *err) {
    gguf_file *f = NULL;
    int64_t count = 1, no = 0, total = -1;
    ob_status st = gguf_open(path, &f, err);
    if (!st) st = int_or(f, "split.count", 1, &count, err);
    if (!st) st = int_or(f, "split.no", 0, &no, err);
    if (!st) st = int_or(f, "split.tensors.count", -1, &total, err);
    if (!st && count > 1 && no != 0)
        st = ob_fail(err, OB_ERR_ARG, "%s: part %lld of a %lld-part split model: load the "
                     "first part (-00001-of-%05lld.gguf)", path, (long long)no + 1,
                     (long long)count, (long long)count);
    if (!st && (count < 1 || count > 99999))
        st = ob_fail(err, OB_ERR_FORMAT, "%s: split.count %lld is outside [1, 99999]", path,
                     (long long)count);
    char part[4096];
    if (!st && count > 1 && !part_path(path, 1, count, part, sizeof part))
        st = ob_fail(err, OB_ERR_FORMAT, "%s: split.count says %lld parts, but the name does not "
                     "end in -00001-of-%05lld.gguf", path, (long long)count, (long long)count);
    for (int64_t i = 2; !st && i <= count; i++) {
        gguf_file *p = NULL;
        int64_t pno = -1, pcount = -1;
        part_path(path, i, count, part, sizeof part);
        st = gguf_open(part, &p, err);
        if (!st) st = int_or(p, "split.no", -1, &pno, err);
        if (!st) st = int_or(p, "split.count", -1, &pcount, err);
        if (!st && (pno != i - 1 || pcount != count))
            st = ob_fail(err, OB_ERR_FORMAT, "%s: split.no %lld of %lld, expected %lld of %lld",
                         part, (long long)pno, (long long)pcount, (long long)i - 1,
                         (long long)count);
        if (st) {
            gguf_close(p);
            break;
        }
        st = gguf_adopt_part(f, p, err);
    }
    if (!st && count > 1 && total >= 0 && total != f->n_tensors)
        st = ob_fail(err, OB_ERR_FORMAT, "%s: the %lld parts hold %lld tensors, split.tensors."
                     "count says %lld", path, (long long)count, (long long)f->n_tensors,
                     (long long)total);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return OB_OK;
}
