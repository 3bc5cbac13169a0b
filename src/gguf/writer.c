/*
 * GGUF v3 writer: builds a file from metadata pairs and tensors, for tests, fuzz seeds,
 * synthetic models and the quantizer.
 *
 * Each pair is kept already serialised (value type + payload), so writing is a straight copy
 * and replacing a key swaps one buffer. Tensor data is borrowed until the file is written, so
 * a quantizer can stream large tensors without a second copy. The same serialiser either
 * counts bytes, fills a buffer, or writes to a FILE (a `sink`), so the layout is computed in
 * exactly one place.
 */
#include "gguf/gguf.h"

#include "core/alloc.h"
#include "core/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct wkv {
    char *key; /* owned, NUL-terminated */
    size_t key_len;
    uint8_t *val; /* (val_len) owned: u32 type, then the payload as the file stores it */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name; /* owned */
    size_t name_len;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data; /* (nbytes) borrowed until gguf_writer_write returns */
    size_t nbytes;
} wtensor;

struct gguf_writer {
    wkv *kv; /* (n_kv, cap_kv) */
    size_t n_kv, cap_kv;
    wtensor *tensors; /* (n_tensors, cap_tensors) */
    size_t n_tensors, cap_tensors;
    size_t alignment;
};

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = ob_calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        ob_free(w->kv[i].key);
        ob_free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_tensors; i++) ob_free(w->tensors[i].name);
    ob_free(w->kv);
    ob_free(w->tensors);
    ob_free(w);
}

/* ---- value buffers ----------------------------------------------------------------------- */

/* A growable byte buffer; `oom` sticks once an allocation fails. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bytes;

static void b_put(bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    size_t need;
    if (ob_add_size(b->len, n, &need)) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *p = ob_realloc(b->p, cap, 1);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len = need;
}

static void b_le(bytes *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    b_put(b, tmp, n);
}

static void b_str(bytes *b, const char *p, size_t len) {
    b_le(b, len, 8);
    b_put(b, p, len);
}

/* Takes ownership of b->p: stores it as the value of `key` (replacing any earlier value). */
static ob_status set_value(gguf_writer *w, const char *key, bytes *b) {
    if (!w || !key) {
        ob_free(b->p);
        return OB_ERR_ARG;
    }
    if (b->oom) {
        ob_free(b->p);
        return OB_ERR_NOMEM;
    }
    size_t klen = strlen(key);
    /* general.alignment set as a plain u32 (or copied from another file) also sets the layout,
     * so the pair and the padding can never disagree. */
    if (!strcmp(key, "general.alignment")) {
        uint32_t a = b->len == 8 && b->p[0] == GGUF_VTYPE_UINT32
                         ? (uint32_t)(b->p[4] | b->p[5] << 8 | b->p[6] << 16 | (uint32_t)b->p[7] << 24)
                         : 0;
        if (a == 0 || (a & (a - 1)) != 0) {
            ob_free(b->p);
            return OB_ERR_ARG;
        }
        w->alignment = a;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (w->kv[i].key_len == klen && memcmp(w->kv[i].key, key, klen) == 0) {
            ob_free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].val_len = b->len;
            return OB_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *kv = ob_realloc(w->kv, cap, sizeof *kv);
        if (!kv) {
            ob_free(b->p);
            return OB_ERR_NOMEM;
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = ob_strndup(key, klen);
    if (!k) {
        ob_free(b->p);
        return OB_ERR_NOMEM;
    }
    w->kv[w->n_kv++] = (wkv){k, klen, b->p, b->len};
    return OB_OK;
}

static ob_status set_scalar(gguf_writer *w, const char *key, gguf_vtype t, uint64_t bits,
                            size_t n) {
    bytes b = {0};
    b_le(&b, t, 4);
    b_le(&b, bits, n);
    return set_value(w, key, &b);
}

ob_status gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v) {
    return set_scalar(w, key, GGUF_VTYPE_UINT8, v, 1);
}
ob_status gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v) {
    return set_scalar(w, key, GGUF_VTYPE_INT8, (uint8_t)v, 1);
}
ob_status gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v) {
    return set_scalar(w, key, GGUF_VTYPE_UINT16, v, 2);
}
ob_status gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v) {
    return set_scalar(w, key, GGUF_VTYPE_INT16, (uint16_t)v, 2);
}
ob_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return set_scalar(w, key, GGUF_VTYPE_UINT32, v, 4);
}
ob_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_VTYPE_INT32, (uint32_t)v, 4);
}
ob_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    return set_scalar(w, key, GGUF_VTYPE_UINT64, v, 8);
}
ob_status gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v) {
    return set_scalar(w, key, GGUF_VTYPE_INT64, (uint64_t)v, 8);
}
ob_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, GGUF_VTYPE_FLOAT32, bits, 4);
}
ob_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return set_scalar(w, key, GGUF_VTYPE_FLOAT64, bits, 8);
}
ob_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    return set_scalar(w, key, GGUF_VTYPE_BOOL, v ? 1 : 0, 1);
}

ob_status gguf_writer_set_strn(gguf_writer *w, const char *key, ob_str v) {
    if (!v.ptr && v.len) return OB_ERR_ARG;
    bytes b = {0};
    b_le(&b, GGUF_VTYPE_STRING, 4);
    b_str(&b, v.ptr, v.len);
    return set_value(w, key, &b);
}

ob_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v) return OB_ERR_ARG;
    return gguf_writer_set_strn(w, key, ob_str_from_cstr(v));
}

/* Bytes per element of a numeric or bool array element type; 0 for anything else. */
static size_t elem_size(gguf_vtype t) {
    switch (t) {
    case GGUF_VTYPE_UINT8: case GGUF_VTYPE_INT8: case GGUF_VTYPE_BOOL: return 1;
    case GGUF_VTYPE_UINT16: case GGUF_VTYPE_INT16: return 2;
    case GGUF_VTYPE_UINT32: case GGUF_VTYPE_INT32: case GGUF_VTYPE_FLOAT32: return 4;
    case GGUF_VTYPE_UINT64: case GGUF_VTYPE_INT64: case GGUF_VTYPE_FLOAT64: return 8;
    default: return 0;
    }
}

ob_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem, const void *data,
                              uint64_t n) {
    size_t es = elem_size(elem), total;
    if (es == 0 || (n && !data)) return OB_ERR_ARG;
    if (n > SIZE_MAX || ob_mul_size((size_t)n, es, &total)) return OB_ERR_LIMIT;
    bytes b = {0};
    b_le(&b, GGUF_VTYPE_ARRAY, 4);
    b_le(&b, elem, 4);
    b_le(&b, n, 8);
    /* The caller's array is in host order; the file is little-endian. */
    const uint8_t *src = data;
    for (size_t i = 0; i < (size_t)n && !b.oom; i++) {
        uint64_t v = 0;
        switch (es) {
        case 1: v = src[i]; break;
        case 2: { uint16_t x; memcpy(&x, src + i * 2, 2); v = x; break; }
        case 4: { uint32_t x; memcpy(&x, src + i * 4, 4); v = x; break; }
        default: memcpy(&v, src + i * 8, 8); break;
        }
        b_le(&b, v, es);
    }
    return set_value(w, key, &b);
}

ob_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const ob_str *strs,
                                  uint64_t n) {
    if (n && !strs) return OB_ERR_ARG;
    bytes b = {0};
    b_le(&b, GGUF_VTYPE_ARRAY, 4);
    b_le(&b, GGUF_VTYPE_STRING, 4);
    b_le(&b, n, 8);
    for (uint64_t i = 0; i < n && !b.oom; i++) b_str(&b, strs[i].ptr, strs[i].len);
    return set_value(w, key, &b);
}

ob_status gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    if (!w || !kv) return OB_ERR_ARG;
    char *key = ob_strndup(kv->key.ptr, kv->key.len);
    if (!key) return OB_ERR_NOMEM;
    bytes b = {0};
    b_le(&b, kv->type, 4);
    if (kv->type == GGUF_VTYPE_STRING) {
        b_str(&b, kv->str.ptr, kv->str.len);
    } else if (kv->type == GGUF_VTYPE_ARRAY) {
        b_le(&b, kv->arr_type, 4);
        b_le(&b, kv->arr_len, 8);
        if (kv->arr_type == GGUF_VTYPE_STRING) {
            for (uint64_t i = 0; i < kv->arr_len && !b.oom; i++)
                b_str(&b, kv->strs[i].ptr, kv->strs[i].len);
        } else {
            /* The parsed payload is already little-endian: copy it as it is. */
            b_put(&b, kv->data, (size_t)kv->arr_len * elem_size(kv->arr_type));
        }
    } else {
        b_put(&b, kv->data, elem_size(kv->type));
    }
    ob_status st = set_value(w, key, &b);
    ob_free(key);
    return st;
}

/* ---- tensors ----------------------------------------------------------------------------- */

ob_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                 uint32_t n_dims, const int64_t *ne, const void *data,
                                 size_t nbytes, ob_err *err) {
    if (!w || !name || !ne || (nbytes && !data))
        return ob_fail(err, OB_ERR_ARG, "gguf_writer_add_tensor: NULL argument");
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return ob_fail(err, OB_ERR_ARG, "tensor '%s': n_dims %u, expected 1..%d", name, n_dims,
                       GGUF_MAX_DIMS);
    size_t nlen = strlen(name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (w->tensors[i].name_len == nlen && memcmp(w->tensors[i].name, name, nlen) == 0)
            return ob_fail(err, OB_ERR_ARG, "tensor '%s': duplicate name", name);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .nbytes = nbytes};
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] <= 0)
            return ob_fail(err, OB_ERR_ARG, "tensor '%s': dimension %u is %" PRId64, name, d,
                           t.ne[d]);
    }
    ob_err inner = {{0}};
    size_t want;
    ob_status st = gguf_qtype_row_size(type, t.ne[0], &want, &inner);
    for (int d = 1; !st && d < GGUF_MAX_DIMS; d++)
        if (ob_mul_size(want, (size_t)t.ne[d], &want)) st = OB_ERR_LIMIT;
    if (st)
        return ob_fail(err, st, "tensor '%s': %s", name, inner.msg[0] ? inner.msg : "size overflows");
    if (want != nbytes)
        return ob_fail(err, OB_ERR_ARG, "tensor '%s': %zu bytes given, %s shape needs %zu", name,
                       nbytes, gguf_qtype_name(type), want);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        wtensor *ts = ob_realloc(w->tensors, cap, sizeof *ts);
        if (!ts) return ob_fail(err, OB_ERR_NOMEM, "tensor '%s': out of memory", name);
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    t.name = ob_strndup(name, nlen);
    if (!t.name) return ob_fail(err, OB_ERR_NOMEM, "tensor '%s': out of memory", name);
    t.name_len = nlen;
    w->tensors[w->n_tensors++] = t;
    return OB_OK;
}

ob_status gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment) {
    /* set_value checks it is a power of two and adopts it for the layout. */
    return gguf_writer_set_u32(w, "general.alignment", alignment);
}

/* ---- serialisation ----------------------------------------------------------------------- */

/* Where bytes go: counted only (buf and fp NULL), copied into buf, or written to fp. */
typedef struct sink {
    uint8_t *buf;
    FILE *fp;
    size_t pos;
    bool failed; /* a write to fp failed */
} sink;

static void s_put(sink *s, const void *p, size_t n) {
    if (s->buf && n) memcpy(s->buf + s->pos, p, n);
    else if (s->fp && n && !s->failed && fwrite(p, 1, n, s->fp) != n) s->failed = true;
    s->pos += n;
}

static void s_le(sink *s, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    s_put(s, tmp, n);
}

static void s_pad(sink *s, size_t alignment) {
    static const uint8_t zeros[64];
    size_t pad = (alignment - s->pos % alignment) % alignment;
    while (pad) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        s_put(s, zeros, n);
        pad -= n;
    }
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* Writes the whole file into the sink. Sizes were validated as tensors were added; the data
 * offsets are laid out here, each tensor aligned, as llama.cpp lays them out. */
static void serialise(const gguf_writer *w, sink *s) {
    s_put(s, GGUF_MAGIC, 4);
    s_le(s, 3, 4);
    s_le(s, w->n_tensors, 8);
    s_le(s, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        s_le(s, w->kv[i].key_len, 8);
        s_put(s, w->kv[i].key, w->kv[i].key_len);
        s_put(s, w->kv[i].val, w->kv[i].val_len);
    }
    size_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        s_le(s, t->name_len, 8);
        s_put(s, t->name, t->name_len);
        s_le(s, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) s_le(s, (uint64_t)t->ne[d], 8);
        s_le(s, t->type, 4);
        s_le(s, offset, 8);
        offset = align_up(offset + t->nbytes, w->alignment);
    }
    s_pad(s, w->alignment);
    for (size_t i = 0; i < w->n_tensors; i++) {
        s_put(s, w->tensors[i].data, w->tensors[i].nbytes);
        s_pad(s, w->alignment);
    }
}

ob_status gguf_writer_to_buffer(gguf_writer *w, uint8_t **out, size_t *size, ob_err *err) {
    if (!w || !out || !size) return ob_fail(err, OB_ERR_ARG, "gguf_writer_to_buffer: NULL argument");
    *out = NULL;
    *size = 0;
    sink count = {0};
    serialise(w, &count);
    uint8_t *buf = ob_alloc(count.pos, 1);
    if (!buf) return ob_fail(err, OB_ERR_NOMEM, "gguf writer: out of memory for %zu bytes", count.pos);
    sink fill = {.buf = buf};
    serialise(w, &fill);
    *out = buf;
    *size = fill.pos;
    return OB_OK;
}

ob_status gguf_writer_write(gguf_writer *w, const char *path, ob_err *err) {
    if (!w || !path) return ob_fail(err, OB_ERR_ARG, "gguf_writer_write: NULL argument");
    FILE *fp = fopen(path, "wb");
    if (!fp) return ob_fail(err, OB_ERR_IO, "%s: open for writing: %s", path, strerror(errno));
    sink s = {.fp = fp};
    serialise(w, &s);
    int e = s.failed ? errno : 0;
    if (fclose(fp) != 0 && !s.failed) {
        s.failed = true;
        e = errno;
    }
    if (s.failed) return ob_fail(err, OB_ERR_IO, "%s: write: %s", path, strerror(e));
    return OB_OK;
}
