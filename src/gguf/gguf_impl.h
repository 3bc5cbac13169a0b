/*
 * Private layout of gguf_file, shared by the reader's files (parse.c builds it, open.c attaches
 * a mapping to it, get.c answers queries from it). Nothing outside src/gguf/ includes this.
 *
 * Lookups by key or tensor name go through small open-addressing hash tables of indices, so a
 * model loader asking for each of a few thousand tensors by name stays linear overall, and the
 * parser finds duplicates in one pass.
 */
#ifndef OB_GGUF_IMPL_H
#define OB_GGUF_IMPL_H

#include "gguf/gguf.h"

/* An index table: slots hold (index + 1), 0 marks an empty slot; cap is a power of two. */
typedef struct gguf_index {
    uint32_t *slots; /* (cap) u32, owned */
    size_t cap;
} gguf_index;

struct gguf_file {
    const uint8_t *buf; /* (size) bytes: the whole image, borrowed or mapped */
    size_t size;
    char *name; /* owned copy of the name given to parse/open */
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    gguf_kv *kv; /* (n_kv) owned; each string array's strs is owned too */
    int64_t n_tensors;
    gguf_tensor *tensors; /* (n_tensors) owned */
    gguf_index kv_index;
    gguf_index tensor_index;
    void *map; /* the mapping gguf_open made (NULL for gguf_parse), owned */
    size_t map_size;
    /* A split set's other parts (gguf_open_set), whose tensors were appended to this one's
     * table and point into their mappings: owned, closed with it. */
    gguf_file **parts;
    size_t n_parts;
};

/* Appends part's tensors to f's table (names must not repeat) and takes ownership of part
 * (closed by gguf_close(f)); on failure part is closed too. (parse.c) */
ob_status gguf_adopt_part(gguf_file *f, gguf_file *part, ob_err *err);

/* FNV-1a over a byte view: cheap and good enough for key and tensor names. */
static inline uint64_t gguf_hash(const char *p, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

/* Slot of `name` in an index over kv keys or tensor names; -1 when absent. */
int64_t gguf_index_find_kv(const gguf_file *f, const char *p, size_t len);
int64_t gguf_index_find_tensor(const gguf_file *f, const char *p, size_t len);

/* Releases the mapping made by gguf_open (open.c); called by gguf_close. */
void gguf_unmap(void *map, size_t size);

#endif
