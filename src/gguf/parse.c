/*
 * GGUF parser: validates a byte buffer and builds the key and tensor tables, with no I/O (so it
 * can be fuzzed; open.c maps a file and calls it).
 *
 * Layout (all little-endian): "GGUF", u32 version (2 or 3), u64 tensor count, u64 pair count;
 * then each metadata pair as (string key, u32 value type, value); then each tensor info as
 * (string name, u32 n_dims, n_dims x u64 sizes, u32 type, u64 offset); then padding to
 * general.alignment (default 32) and the tensor data region. A string is u64 length + bytes.
 *
 * The file is untrusted. Every count, length and offset is checked against the bytes that are
 * left before it is used or allocated for, with overflow-safe arithmetic, so a hostile header
 * cannot make us allocate more than a small multiple of the file size. Every failure names the
 * file, the key or tensor, and the byte offset of the field that was wrong.
 */
#include "gguf/gguf_impl.h"

#include "core/alloc.h"
#include "core/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest encodings, used to refuse counts that cannot fit in the bytes left before
 * allocating for them: a pair is key length (8) + type (4) + at least a u8 value (1); a tensor
 * info is name length (8) + n_dims (4) + one size (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_INFO_BYTES 32u
/* Names are clipped to this many bytes in messages. */
#define MSG_NAME_MAX 96

/* ---- byte reader --------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p; /* (size) bytes, borrowed */
    size_t size;
    size_t pos;
    const char *name; /* file name for messages */
    ob_err *err;
} reader;

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Fails unless n more bytes are available; `ctx` says what was being read. */
static ob_status need(reader *r, size_t n, const char *ctx) {
    size_t left = r->size - r->pos;
    if (n <= left) return OB_OK;
    return ob_fail(r->err, OB_ERR_FORMAT,
                   "%s: truncated at byte offset %zu: %s needs %zu bytes, %zu left", r->name,
                   r->pos, ctx, n, left);
}

static ob_status read_u32(reader *r, uint32_t *out, const char *ctx) {
    ob_status st = need(r, 4, ctx);
    if (st) return st;
    *out = (uint32_t)load_le(r->p + r->pos, 4);
    r->pos += 4;
    return OB_OK;
}

static ob_status read_u64(reader *r, uint64_t *out, const char *ctx) {
    ob_status st = need(r, 8, ctx);
    if (st) return st;
    *out = load_le(r->p + r->pos, 8);
    r->pos += 8;
    return OB_OK;
}

/* A string: u64 length, then that many bytes (not NUL-terminated; *out views the buffer). */
static ob_status read_str(reader *r, ob_str *out, const char *ctx) {
    size_t at = r->pos;
    uint64_t len;
    ob_status st = read_u64(r, &len, ctx);
    if (st) return st;
    if (len > GGUF_MAX_STRING)
        return ob_fail(r->err, OB_ERR_LIMIT,
                       "%s: %s at byte offset %zu: string length %" PRIu64 " exceeds the limit %u",
                       r->name, ctx, at, len, (unsigned)GGUF_MAX_STRING);
    if (len > r->size - r->pos)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: %s at byte offset %zu: string length %" PRIu64
                       " runs past the end of the file (%zu bytes left)",
                       r->name, ctx, at, len, r->size - r->pos);
    out->ptr = (const char *)r->p + r->pos;
    out->len = (size_t)len;
    r->pos += (size_t)len;
    return OB_OK;
}

/* "key 'general.name'" / "tensor 'tok_embd.weight'", clipped, for messages. */
static void describe(char *buf, size_t cap, const char *what, ob_str name) {
    size_t n = name.len > MSG_NAME_MAX ? MSG_NAME_MAX : name.len;
    snprintf(buf, cap, "%s '%.*s%s'", what, (int)n, name.ptr ? name.ptr : "",
             n < name.len ? "..." : "");
}

/* ---- name indexes ------------------------------------------------------------------------ */

typedef ob_str (*name_at_fn)(const gguf_file *f, size_t i);

static ob_str kv_name_at(const gguf_file *f, size_t i) { return f->kv[i].key; }
static ob_str tensor_name_at(const gguf_file *f, size_t i) { return f->tensors[i].name; }

static ob_status index_init(gguf_index *ix, size_t n) {
    size_t cap = 8;
    while (cap < n * 2) cap *= 2; /* n <= GGUF_MAX_TENSORS, so this cannot overflow */
    ix->slots = ob_calloc(cap, sizeof *ix->slots);
    if (!ix->slots) return OB_ERR_NOMEM;
    ix->cap = cap;
    return OB_OK;
}

/* Finds `name`; returns its index, or -1 with *slot set to the empty slot where it belongs. */
static int64_t index_probe(const gguf_file *f, const gguf_index *ix, name_at_fn name_at,
                           const char *p, size_t len, size_t *slot) {
    if (!ix->slots) return -1;
    ob_str want = {p, len};
    size_t mask = ix->cap - 1;
    for (size_t s = (size_t)gguf_hash(p, len) & mask;; s = (s + 1) & mask) {
        uint32_t v = ix->slots[s];
        if (v == 0) {
            if (slot) *slot = s;
            return -1;
        }
        if (ob_str_eq(name_at(f, v - 1), want)) return (int64_t)(v - 1);
    }
}

int64_t gguf_index_find_kv(const gguf_file *f, const char *p, size_t len) {
    return index_probe(f, &f->kv_index, kv_name_at, p, len, NULL);
}

int64_t gguf_index_find_tensor(const gguf_file *f, const char *p, size_t len) {
    return index_probe(f, &f->tensor_index, tensor_name_at, p, len, NULL);
}

/* ---- metadata ---------------------------------------------------------------------------- */

/* Bytes of one scalar of type t, or 0 for strings, arrays and unknown types. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_VTYPE_UINT8: case GGUF_VTYPE_INT8: case GGUF_VTYPE_BOOL: return 1;
    case GGUF_VTYPE_UINT16: case GGUF_VTYPE_INT16: return 2;
    case GGUF_VTYPE_UINT32: case GGUF_VTYPE_INT32: case GGUF_VTYPE_FLOAT32: return 4;
    case GGUF_VTYPE_UINT64: case GGUF_VTYPE_INT64: case GGUF_VTYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static ob_status parse_array(reader *r, gguf_kv *kv, const char *ctx) {
    size_t at = r->pos;
    uint32_t elem;
    uint64_t n;
    ob_status st = read_u32(r, &elem, ctx);
    if (!st) st = read_u64(r, &n, ctx);
    if (st) return st;
    if (elem == GGUF_VTYPE_ARRAY)
        return ob_fail(r->err, OB_ERR_UNSUPPORTED,
                       "%s: %s at byte offset %zu: nested arrays are not supported", r->name, ctx,
                       at);
    if (elem >= GGUF_VTYPE_COUNT)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: %s at byte offset %zu: unknown array element type %u", r->name, ctx,
                       at, elem);
    kv->arr_type = (gguf_vtype)elem;
    kv->arr_len = n;
    kv->data = r->p + r->pos;
    size_t left = r->size - r->pos;
    /* Every element takes at least esize bytes (a string at least its 8-byte length), so this
     * bounds both the reading and the strs allocation by the file size. */
    size_t esize = elem == GGUF_VTYPE_STRING ? 8 : scalar_size(elem);
    if (n > left / esize)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: %s at byte offset %zu: array of %" PRIu64 " %s elements cannot fit in "
                       "the %zu bytes left",
                       r->name, ctx, at, n, gguf_vtype_name((gguf_vtype)elem), left);
    if (elem != GGUF_VTYPE_STRING) {
        r->pos += (size_t)n * esize;
        return OB_OK;
    }
    kv->strs = ob_alloc((size_t)n, sizeof *kv->strs);
    if (!kv->strs)
        return ob_fail(r->err, OB_ERR_NOMEM, "%s: %s: out of memory for %" PRIu64 " strings",
                       r->name, ctx, n);
    for (uint64_t i = 0; i < n; i++) {
        st = read_str(r, &kv->strs[i], ctx);
        if (st) return st;
    }
    return OB_OK;
}

static ob_status parse_value(reader *r, gguf_kv *kv, const char *ctx) {
    size_t at = r->pos;
    uint32_t type;
    ob_status st = read_u32(r, &type, ctx);
    if (st) return st;
    if (type >= GGUF_VTYPE_COUNT)
        return ob_fail(r->err, OB_ERR_FORMAT, "%s: %s at byte offset %zu: unknown value type %u",
                       r->name, ctx, at, type);
    kv->type = (gguf_vtype)type;
    if (type == GGUF_VTYPE_STRING) return read_str(r, &kv->str, ctx);
    if (type == GGUF_VTYPE_ARRAY) return parse_array(r, kv, ctx);
    size_t n = scalar_size(type);
    st = need(r, n, ctx);
    if (st) return st;
    kv->data = r->p + r->pos;
    r->pos += n;
    return OB_OK;
}

static ob_status parse_kvs(reader *r, gguf_file *f) {
    char ctx[160];
    for (int64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        size_t at = r->pos;
        snprintf(ctx, sizeof ctx, "key of metadata pair %" PRId64, i);
        ob_status st = read_str(r, &kv->key, ctx);
        if (st) return st;
        describe(ctx, sizeof ctx, "key", kv->key);
        size_t slot = 0;
        int64_t prev = index_probe(f, &f->kv_index, kv_name_at, kv->key.ptr, kv->key.len, &slot);
        if (prev >= 0)
            return ob_fail(r->err, OB_ERR_FORMAT,
                           "%s: %s at byte offset %zu: duplicate key (first defined by pair %" PRId64
                           ")",
                           r->name, ctx, at, prev);
        f->kv_index.slots[slot] = (uint32_t)i + 1;
        st = parse_value(r, kv, ctx);
        if (st) return st;
    }
    return OB_OK;
}

/* general.alignment, when present, must be a u32 power of two. */
static ob_status read_alignment(reader *r, gguf_file *f) {
    int64_t i = gguf_index_find_kv(f, "general.alignment", strlen("general.alignment"));
    if (i < 0) return OB_OK;
    const gguf_kv *kv = &f->kv[i];
    size_t at = (size_t)((const uint8_t *)kv->key.ptr - r->p) - 8;
    if (kv->type != GGUF_VTYPE_UINT32)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: key 'general.alignment' at byte offset %zu: expected u32, found %s",
                       r->name, at, gguf_vtype_name(kv->type));
    uint32_t a = (uint32_t)load_le(kv->data, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: key 'general.alignment' at byte offset %zu: %u is not a power of two",
                       r->name, at, a);
    f->alignment = a;
    return OB_OK;
}

/* ---- tensor infos ------------------------------------------------------------------------ */

/* Reads n_dims and the sizes into t, checking each and their product. */
static ob_status parse_dims(reader *r, gguf_tensor *t, const char *ctx, size_t at) {
    ob_status st = read_u32(r, &t->n_dims, ctx);
    if (st) return st;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: %s at byte offset %zu: n_dims %u, expected 1..%d", r->name, ctx, at,
                       t->n_dims, GGUF_MAX_DIMS);
    int64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (st = read_u64(r, &ne, ctx))) return st;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return ob_fail(r->err, OB_ERR_FORMAT,
                           "%s: %s at byte offset %zu: dimension %u is %" PRIu64
                           ", expected 1..%" PRId64,
                           r->name, ctx, at, d, ne, INT64_MAX);
        if ((int64_t)ne > INT64_MAX / nel)
            return ob_fail(r->err, OB_ERR_FORMAT,
                           "%s: %s at byte offset %zu: element count overflows at dimension %u",
                           r->name, ctx, at, d);
        nel *= (int64_t)ne;
        t->ne[d] = (int64_t)ne;
    }
    return OB_OK;
}

/* Type, offset and exact byte size of one tensor. */
static ob_status parse_type_and_size(reader *r, gguf_file *f, gguf_tensor *t, const char *ctx,
                                     size_t at) {
    ob_status st = read_u32(r, &t->type, ctx);
    if (!st) st = read_u64(r, &t->offset, ctx);
    if (st) return st;
    if (!gguf_qtype_info(t->type))
        return ob_fail(r->err, OB_ERR_UNSUPPORTED,
                       "%s: %s at byte offset %zu: unknown tensor type %u", r->name, ctx, at,
                       t->type);
    ob_err inner = {{0}};
    size_t row;
    st = gguf_qtype_row_size(t->type, t->ne[0], &row, &inner);
    if (st)
        return ob_fail(r->err, OB_ERR_FORMAT, "%s: %s at byte offset %zu: %s", r->name, ctx, at,
                       inner.msg);
    size_t nbytes = row;
    for (int d = 1; d < GGUF_MAX_DIMS; d++)
        if (ob_mul_size(nbytes, (size_t)t->ne[d], &nbytes))
            return ob_fail(r->err, OB_ERR_FORMAT,
                           "%s: %s at byte offset %zu: byte size overflows size_t", r->name, ctx,
                           at);
    t->nbytes = nbytes;
    if (t->offset % f->alignment != 0)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: %s at byte offset %zu: data offset %" PRIu64
                       " is not a multiple of the alignment %zu",
                       r->name, ctx, at, t->offset, f->alignment);
    return OB_OK;
}

static ob_status parse_tensor_infos(reader *r, gguf_file *f) {
    char ctx[160];
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        size_t at = r->pos;
        snprintf(ctx, sizeof ctx, "name of tensor info %" PRId64, i);
        ob_status st = read_str(r, &t->name, ctx);
        if (st) return st;
        describe(ctx, sizeof ctx, "tensor", t->name);
        size_t slot = 0;
        int64_t prev =
            index_probe(f, &f->tensor_index, tensor_name_at, t->name.ptr, t->name.len, &slot);
        if (prev >= 0)
            return ob_fail(r->err, OB_ERR_FORMAT,
                           "%s: %s at byte offset %zu: duplicate tensor name (first is tensor "
                           "%" PRId64 ")",
                           r->name, ctx, at, prev);
        f->tensor_index.slots[slot] = (uint32_t)i + 1;
        st = parse_dims(r, t, ctx, at);
        if (!st) st = parse_type_and_size(r, f, t, ctx, at);
        if (st) return st;
    }
    return OB_OK;
}

/* ---- data region ------------------------------------------------------------------------- */

typedef struct span {
    uint64_t start, end;
    int64_t idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Places the data region after the infos and checks that every tensor lies inside the file and
 * that no two tensors share bytes. */
static ob_status layout_data(reader *r, gguf_file *f) {
    size_t pad = (f->alignment - r->pos % f->alignment) % f->alignment;
    if (ob_add_size(r->pos, pad, &f->data_offset))
        return ob_fail(r->err, OB_ERR_FORMAT, "%s: data offset overflows", r->name);
    if (f->n_tensors == 0) return OB_OK;
    if (f->data_offset > f->size)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: tensor data region starts at byte offset %zu, past the end of the "
                       "file (%zu bytes)",
                       r->name, f->data_offset, f->size);
    size_t region = f->size - f->data_offset;
    span *spans = ob_alloc((size_t)f->n_tensors, sizeof *spans);
    if (!spans)
        return ob_fail(r->err, OB_ERR_NOMEM, "%s: out of memory checking %" PRId64 " tensors",
                       r->name, f->n_tensors);
    ob_status st = OB_OK;
    char ctx[160];
    for (int64_t i = 0; i < f->n_tensors && !st; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > region || t->nbytes > region - t->offset) {
            describe(ctx, sizeof ctx, "tensor", t->name);
            st = ob_fail(r->err, OB_ERR_FORMAT,
                         "%s: %s: data [%" PRIu64 ", +%zu) runs past the end of the file "
                         "(data region of %zu bytes at byte offset %zu)",
                         r->name, ctx, t->offset, t->nbytes, region, f->data_offset);
            break;
        }
        t->data = f->buf + f->data_offset + t->offset;
        spans[i] = (span){t->offset, t->offset + t->nbytes, i};
    }
    if (!st) {
        qsort(spans, (size_t)f->n_tensors, sizeof *spans, span_cmp);
        for (int64_t i = 1; i < f->n_tensors && !st; i++) {
            if (spans[i].start >= spans[i - 1].end) continue;
            char other[160];
            describe(ctx, sizeof ctx, "tensor", f->tensors[spans[i].idx].name);
            describe(other, sizeof other, "tensor", f->tensors[spans[i - 1].idx].name);
            st = ob_fail(r->err, OB_ERR_FORMAT,
                         "%s: %s: data [%" PRIu64 ", %" PRIu64 ") overlaps %s [%" PRIu64
                         ", %" PRIu64 ")",
                         r->name, ctx, spans[i].start, spans[i].end, other, spans[i - 1].start,
                         spans[i - 1].end);
        }
    }
    ob_free(spans);
    return st;
}

/* ---- entry points ------------------------------------------------------------------------ */

static ob_status parse_header(reader *r, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
    ob_status st = need(r, 4, "magic");
    if (st) return st;
    if (memcmp(r->p, GGUF_MAGIC, 4) != 0)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: bad magic at byte offset 0: expected 'GGUF', found %02x %02x %02x %02x",
                       r->name, r->p[0], r->p[1], r->p[2], r->p[3]);
    r->pos = 4;
    if ((st = read_u32(r, &f->version, "version"))) return st;
    if (f->version == 1 || f->version == 0x02000000u || f->version == 0x03000000u)
        return ob_fail(r->err, OB_ERR_UNSUPPORTED,
                       "%s: GGUF version %u at byte offset 4 is not supported (%s)", r->name,
                       f->version, f->version == 1 ? "v1 predates 64-bit counts" : "big-endian");
    if (f->version != 2 && f->version != 3)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: unknown GGUF version %u at byte offset 4, expected 2 or 3", r->name,
                       f->version);
    if ((st = read_u64(r, n_tensors, "tensor count"))) return st;
    if ((st = read_u64(r, n_kv, "metadata count"))) return st;
    if (*n_tensors > GGUF_MAX_TENSORS)
        return ob_fail(r->err, OB_ERR_LIMIT,
                       "%s: tensor count %" PRIu64 " at byte offset 8 exceeds the limit %d",
                       r->name, *n_tensors, GGUF_MAX_TENSORS);
    if (*n_kv > GGUF_MAX_KV)
        return ob_fail(r->err, OB_ERR_LIMIT,
                       "%s: metadata count %" PRIu64 " at byte offset 16 exceeds the limit %d",
                       r->name, *n_kv, GGUF_MAX_KV);
    if (*n_kv > (r->size - r->pos) / MIN_KV_BYTES)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: metadata count %" PRIu64 " at byte offset 16 cannot fit in the %zu "
                       "bytes left",
                       r->name, *n_kv, r->size - r->pos);
    return OB_OK;
}

static ob_status parse_all(reader *r, gguf_file *f) {
    uint64_t n_tensors, n_kv;
    ob_status st = parse_header(r, f, &n_tensors, &n_kv);
    if (st) return st;
    f->kv = ob_calloc((size_t)n_kv, sizeof *f->kv);
    if (!f->kv || index_init(&f->kv_index, (size_t)n_kv))
        return ob_fail(r->err, OB_ERR_NOMEM, "%s: out of memory for %" PRIu64 " metadata pairs",
                       r->name, n_kv);
    f->n_kv = (int64_t)n_kv;
    if ((st = parse_kvs(r, f)) || (st = read_alignment(r, f))) return st;
    if (n_tensors > (r->size - r->pos) / MIN_TENSOR_INFO_BYTES)
        return ob_fail(r->err, OB_ERR_FORMAT,
                       "%s: tensor count %" PRIu64 " at byte offset 8 cannot fit in the %zu bytes "
                       "left at byte offset %zu",
                       r->name, n_tensors, r->size - r->pos, r->pos);
    f->tensors = ob_calloc((size_t)n_tensors, sizeof *f->tensors);
    if (!f->tensors || index_init(&f->tensor_index, (size_t)n_tensors))
        return ob_fail(r->err, OB_ERR_NOMEM, "%s: out of memory for %" PRIu64 " tensor infos",
                       r->name, n_tensors);
    f->n_tensors = (int64_t)n_tensors;
    if ((st = parse_tensor_infos(r, f))) return st;
    return layout_data(r, f);
}

ob_status gguf_parse(const void *buf, size_t size, const char *name, gguf_file **out,
                     ob_err *err) {
    if (!out) return ob_fail(err, OB_ERR_ARG, "gguf_parse: out is NULL");
    *out = NULL;
    if (!name) name = "<buffer>";
    if (!buf && size) return ob_fail(err, OB_ERR_ARG, "%s: buffer is NULL", name);
    gguf_file *f = ob_calloc(1, sizeof *f);
    if (!f || !(f->name = ob_strndup(name, strlen(name)))) {
        ob_free(f);
        return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", name);
    }
    static const uint8_t empty[1];
    f->buf = buf ? buf : empty;
    f->size = size;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    reader r = {f->buf, size, 0, f->name, err};
    ob_status st = parse_all(&r, f);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return OB_OK;
}

ob_status gguf_adopt_part(gguf_file *f, gguf_file *part, ob_err *err) {
    gguf_file **parts = ob_realloc(f->parts, f->n_parts + 1, sizeof *parts);
    if (!parts) {
        gguf_close(part);
        return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", part->name);
    }
    f->parts = parts;
    f->parts[f->n_parts++] = part; /* owned from here on, whatever follows */
    int64_t n = f->n_tensors + part->n_tensors;
    if (n > GGUF_MAX_TENSORS)
        return ob_fail(err, OB_ERR_LIMIT, "%s: more than %d tensors in the set", part->name,
                       GGUF_MAX_TENSORS);
    gguf_tensor *t = ob_realloc(f->tensors, (size_t)n, sizeof *t);
    if (!t) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", part->name);
    f->tensors = t;
    memcpy(f->tensors + f->n_tensors, part->tensors, (size_t)part->n_tensors * sizeof *t);
    /* The index is rebuilt for the new count; a name seen twice is an error, as in one file. */
    gguf_index ix = {0};
    if (index_init(&ix, (size_t)n)) return ob_fail(err, OB_ERR_NOMEM, "%s: out of memory", part->name);
    ob_free(f->tensor_index.slots);
    f->tensor_index = ix;
    f->n_tensors = n;
    for (int64_t i = 0; i < n; i++) {
        size_t slot = 0;
        ob_str name = f->tensors[i].name;
        if (index_probe(f, &f->tensor_index, tensor_name_at, name.ptr, name.len, &slot) >= 0)
            return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%.*s' is in two parts of the set",
                           part->name, (int)(name.len > 64 ? 64 : name.len), name.ptr);
        f->tensor_index.slots[slot] = (uint32_t)i + 1;
    }
    return OB_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_parts; i++) gguf_close(f->parts[i]);
    ob_free(f->parts);
    for (int64_t i = 0; i < f->n_kv; i++) ob_free(f->kv[i].strs);
    ob_free(f->kv);
    ob_free(f->tensors);
    ob_free(f->kv_index.slots);
    ob_free(f->tensor_index.slots);
    if (f->map) gguf_unmap(f->map, f->map_size);
    ob_free(f->name);
    ob_free(f);
}
