/*
 * GGUF v2/v3 reader and writer.
 *
 * Reading is split in two (zeux/calm style): gguf_parse() validates a byte buffer and builds
 * the tables, with no I/O, so it can be fuzzed; gguf_open() maps a file and calls it. Every
 * count, length and offset is checked against the buffer with overflow-safe arithmetic before
 * use. All strings and tensor data are views into the buffer: they live as long as the
 * gguf_file (for gguf_open) or the caller's buffer (for gguf_parse).
 *
 * Errors name the file, the key or tensor, and the byte offset where the problem was found.
 */
#ifndef OB_GGUF_H
#define OB_GGUF_H

#include "core/str.h"
#include "gguf/qtype.h"
#include "outboard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* Named limits on untrusted counts (OB_ERR_LIMIT beyond them). */
#define GGUF_MAX_KV 65536          /* metadata pairs */
#define GGUF_MAX_TENSORS 1048576   /* tensor infos */
#define GGUF_MAX_STRING (1u << 30) /* bytes in one string */

/* Metadata value types, numbered as the format numbers them. */
typedef enum gguf_vtype {
    GGUF_VTYPE_UINT8 = 0,
    GGUF_VTYPE_INT8 = 1,
    GGUF_VTYPE_UINT16 = 2,
    GGUF_VTYPE_INT16 = 3,
    GGUF_VTYPE_UINT32 = 4,
    GGUF_VTYPE_INT32 = 5,
    GGUF_VTYPE_FLOAT32 = 6,
    GGUF_VTYPE_BOOL = 7,
    GGUF_VTYPE_STRING = 8,
    GGUF_VTYPE_ARRAY = 9,
    GGUF_VTYPE_UINT64 = 10,
    GGUF_VTYPE_INT64 = 11,
    GGUF_VTYPE_FLOAT64 = 12,
    GGUF_VTYPE_COUNT
} gguf_vtype;

/* One metadata pair. For scalars, `data` points at the little-endian value in the buffer.
 * For strings, `str` is the value. For arrays, `arr_type`/`arr_len` describe the elements and
 * `data` points at the first one; string arrays also have `strs` (arr_len views, owned by the
 * gguf_file). Nested arrays are refused at parse time. */
typedef struct gguf_kv {
    ob_str key;
    gguf_vtype type;
    gguf_vtype arr_type;
    uint64_t arr_len;
    const uint8_t *data;
    ob_str str;
    ob_str *strs;
} gguf_kv;

/* One tensor info. ne[] holds n_dims sizes, innermost first (ne[0] is the row length); the
 * unused ones are 1. `data` points into the tensor data region; nbytes is its exact size. */
typedef struct gguf_tensor {
    ob_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type; /* an ob_qtype id */
    uint64_t offset; /* relative to the start of the data region */
    size_t nbytes;
    const void *data;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* gguf_open, and for the first part of a split set (`NAME-00001-of-0000N.gguf` holding
 * split.count = N) the other N - 1 parts beside it, whose tensors join the first part's table:
 * the result reads as one file (metadata from the first part). Errors name the part at fault:
 * missing, another set's (split.no / split.count), a tensor in two parts, or a tensor count
 * that differs from split.tensors.count. */
ob_status gguf_open_set(const char *path, gguf_file **out, ob_err *err);

/* Parses a GGUF image held in buf[0..size). `name` (borrowed, for messages) is usually the
 * file path. On success *out is a new gguf_file that borrows buf (free it with gguf_close
 * before freeing buf). On failure *out is NULL and err names what was wrong. */
ob_status gguf_parse(const void *buf, size_t size, const char *name, gguf_file **out,
                     ob_err *err);

/* Maps `path` read-only and parses it. The mapping belongs to the returned gguf_file. Errors:
 * OB_ERR_IO naming the path (cannot open; "not a regular file (a named pipe)" for a FIFO,
 * directory or device, refused without waiting on it), OB_ERR_FORMAT from gguf_parse (an
 * empty or truncated file reads as "truncated at byte offset N"). */
ob_status gguf_open(const char *path, gguf_file **out, ob_err *err);

/* Unmaps (when opened from a file) and frees. gguf_close(NULL) is a no-op. */
void gguf_close(gguf_file *f);

/* File-level facts. */
uint32_t gguf_version(const gguf_file *f);
size_t gguf_alignment(const gguf_file *f);
size_t gguf_data_offset(const gguf_file *f); /* byte offset of the tensor data region */
size_t gguf_file_size(const gguf_file *f);
const char *gguf_name(const gguf_file *f); /* the name given to parse/open */

/* Metadata. gguf_kv_find returns NULL when the key is absent. */
int64_t gguf_kv_count(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i);
const gguf_kv *gguf_kv_find(const gguf_file *f, const char *key);
const char *gguf_vtype_name(gguf_vtype t); /* "u32", "str", "arr[str]" base names */

/* Typed accessors. Integers are accepted from any integer type whose value fits the requested
 * one (files differ in u32 vs u64 for the same key); floats from f32 or f64. A missing key is
 * OB_ERR_FORMAT "key 'x' not found"; a wrong type is OB_ERR_FORMAT naming expected and actual.
 * The _or variants return `def` when the key is absent but still fail on a wrong type. */
ob_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, ob_err *err);
ob_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, ob_err *err);
ob_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, ob_err *err);
ob_status gguf_get_f32(const gguf_file *f, const char *key, float *out, ob_err *err);
ob_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, ob_err *err);
ob_status gguf_get_str(const gguf_file *f, const char *key, ob_str *out, ob_err *err);
ob_status gguf_get_u32_or(const gguf_file *f, const char *key, uint32_t def, uint32_t *out,
                          ob_err *err);
ob_status gguf_get_f32_or(const gguf_file *f, const char *key, float def, float *out,
                          ob_err *err);
ob_status gguf_get_bool_or(const gguf_file *f, const char *key, bool def, bool *out, ob_err *err);

/* An array of the given element type: *out points at the pair. Use gguf_arr_* to read it. */
ob_status gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem, const gguf_kv **out,
                       ob_err *err);
/* Element i of a numeric or bool array converted to the type asked for (i < arr_len, caller
 * checks; out of range gives 0). Floats convert to int64 truncating toward zero, saturating
 * beyond its range, NaN giving 0. */
int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i);
double gguf_arr_f64(const gguf_kv *kv, uint64_t i);
/* Element i of a string array. */
ob_str gguf_arr_str(const gguf_kv *kv, uint64_t i);

/* Tensors. _find returns NULL when absent; _get fails with OB_ERR_FORMAT naming the tensor. */
int64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name);
ob_status gguf_tensor_get(const gguf_file *f, const char *name, const gguf_tensor **out,
                          ob_err *err);
int64_t gguf_tensor_nelements(const gguf_tensor *t);

/* ---- writer ---------------------------------------------------------------------------- */

/* Builds a GGUF v3 file in memory. Keys keep the order they were set in; setting a key again
 * replaces its value in place. Values and names are copied; tensor data is borrowed until
 * gguf_writer_write returns (pass a buffer that lives that long). */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void); /* NULL on allocation failure */
void gguf_writer_free(gguf_writer *w);

ob_status gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v);
ob_status gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v);
ob_status gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v);
ob_status gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v);
ob_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
ob_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
ob_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
ob_status gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v);
ob_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
ob_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v);
ob_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
ob_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
ob_status gguf_writer_set_strn(gguf_writer *w, const char *key, ob_str v);
/* An array of n numeric/bool elements of type elem, read from `data` in that type's layout. */
ob_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem, const void *data,
                              uint64_t n);
ob_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const ob_str *strs,
                                  uint64_t n);
/* Copies one pair (any type, arrays included) from a parsed file, e.g. a tokenizer. */
ob_status gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);

/* Adds a tensor: n_dims sizes in ne[] (innermost first), `data` holds exactly the bytes that
 * type and shape need. Fails on a duplicate name or a shape the type cannot hold. */
ob_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                 uint32_t n_dims, const int64_t *ne, const void *data,
                                 size_t nbytes, ob_err *err);

/* Sets general.alignment for the data region (default 32; a power of two, else OB_ERR_ARG).
 * Setting or copying the key "general.alignment" directly has the same effect. */
ob_status gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment);

/* Writes the file (header, metadata, tensor infos, aligned data). */
ob_status gguf_writer_write(gguf_writer *w, const char *path, ob_err *err);

/* Serialises into a new buffer (*out, *size; free with ob_free): for tests and fuzz seeds. */
ob_status gguf_writer_to_buffer(gguf_writer *w, uint8_t **out, size_t *size, ob_err *err);

#endif
