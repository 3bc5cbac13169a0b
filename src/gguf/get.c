/*
 * Queries on a parsed GGUF: file facts, metadata pairs by index or key, typed accessors, and
 * tensors by index or name.
 *
 * The typed accessors are lenient where files legitimately differ and strict elsewhere:
 * converters write the same key as u32 in one file and u64 or i32 in another, so an integer is
 * accepted from any integer type whose value fits the type asked for; a float from f32 or f64.
 * Anything else (a string where a number was expected, a value that does not fit) is an error
 * naming the key, the expected and the found type. Values are assembled byte by byte
 * (little-endian) because they sit unaligned in the buffer.
 */
#include "gguf/gguf_impl.h"

#include "core/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static float load_f32(const uint8_t *p) {
    uint32_t bits = (uint32_t)load_le(p, 4);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static double load_f64(const uint8_t *p) {
    uint64_t bits = load_le(p, 8);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* ---- file facts -------------------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
size_t gguf_alignment(const gguf_file *f) { return f->alignment; }
size_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
const char *gguf_name(const gguf_file *f) { return f->name; }

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *const NAMES[GGUF_VTYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
    };
    return (unsigned)t < GGUF_VTYPE_COUNT ? NAMES[t] : "unknown";
}

/* ---- metadata ---------------------------------------------------------------------------- */

int64_t gguf_kv_count(const gguf_file *f) { return f->n_kv; }

const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_kv *gguf_kv_find(const gguf_file *f, const char *key) {
    if (!key) return NULL;
    int64_t i = gguf_index_find_kv(f, key, strlen(key));
    return i >= 0 ? &f->kv[i] : NULL;
}

/* The pair for `key`, or an error: missing keys are OB_ERR_FORMAT unless *absent_ok, in which
 * case *out is NULL and OB_OK is returned. */
static ob_status lookup(const gguf_file *f, const char *key, bool absent_ok, const gguf_kv **out,
                        ob_err *err) {
    *out = gguf_kv_find(f, key);
    if (*out || absent_ok) return OB_OK;
    return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s' not found", f->name, key ? key : "(null)");
}

static ob_status wrong_type(const gguf_file *f, const gguf_kv *kv, const char *key,
                            const char *expected, ob_err *err) {
    if (kv->type == GGUF_VTYPE_ARRAY)
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': expected %s, found arr[%s]", f->name,
                       key, expected, gguf_vtype_name(kv->arr_type));
    return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': expected %s, found %s", f->name, key,
                   expected, gguf_vtype_name(kv->type));
}

/* Reads an integer value at p of type t as sign + magnitude: returns false when t is not an
 * integer type. */
static bool int_value(gguf_vtype t, const uint8_t *p, bool *neg, uint64_t *mag) {
    int64_t s;
    switch (t) {
    case GGUF_VTYPE_UINT8: *neg = false; *mag = p[0]; return true;
    case GGUF_VTYPE_UINT16: *neg = false; *mag = load_le(p, 2); return true;
    case GGUF_VTYPE_UINT32: *neg = false; *mag = load_le(p, 4); return true;
    case GGUF_VTYPE_UINT64: *neg = false; *mag = load_le(p, 8); return true;
    case GGUF_VTYPE_INT8: s = (int8_t)p[0]; break;
    case GGUF_VTYPE_INT16: s = (int16_t)(uint16_t)load_le(p, 2); break;
    case GGUF_VTYPE_INT32: s = (int32_t)(uint32_t)load_le(p, 4); break;
    case GGUF_VTYPE_INT64: s = (int64_t)load_le(p, 8); break;
    default: return false;
    }
    *neg = s < 0;
    /* Magnitude without overflowing on INT64_MIN. */
    *mag = s < 0 ? (uint64_t)(-(s + 1)) + 1 : (uint64_t)s;
    return true;
}

/* An integer key whose value lies in [-min_mag, max]: shared by the integer accessors. */
static ob_status get_int(const gguf_file *f, const char *key, const char *tname, uint64_t min_mag,
                         uint64_t max, bool *neg, uint64_t *mag, ob_err *err) {
    const gguf_kv *kv;
    ob_status st = lookup(f, key, false, &kv, err);
    if (st) return st;
    if (!int_value(kv->type, kv->data, neg, mag)) return wrong_type(f, kv, key, tname, err);
    if ((*neg && *mag > min_mag) || (!*neg && *mag > max))
        return ob_fail(err, OB_ERR_FORMAT, "%s: key '%s': value %s%" PRIu64 " does not fit %s",
                       f->name, key, *neg ? "-" : "", *mag, tname);
    return OB_OK;
}

ob_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, ob_err *err) {
    bool neg;
    uint64_t mag;
    ob_status st = get_int(f, key, "u32", 0, UINT32_MAX, &neg, &mag, err);
    if (!st) *out = (uint32_t)mag;
    return st;
}

ob_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, ob_err *err) {
    bool neg;
    uint64_t mag;
    ob_status st = get_int(f, key, "u64", 0, UINT64_MAX, &neg, &mag, err);
    if (!st) *out = mag;
    return st;
}

ob_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, ob_err *err) {
    bool neg;
    uint64_t mag;
    ob_status st = get_int(f, key, "i64", (uint64_t)INT64_MAX + 1, INT64_MAX, &neg, &mag, err);
    if (!st) *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return st;
}

ob_status gguf_get_f32(const gguf_file *f, const char *key, float *out, ob_err *err) {
    const gguf_kv *kv;
    ob_status st = lookup(f, key, false, &kv, err);
    if (st) return st;
    if (kv->type == GGUF_VTYPE_FLOAT32) *out = load_f32(kv->data);
    else if (kv->type == GGUF_VTYPE_FLOAT64) *out = (float)load_f64(kv->data);
    else return wrong_type(f, kv, key, "f32", err);
    return OB_OK;
}

ob_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, ob_err *err) {
    const gguf_kv *kv;
    ob_status st = lookup(f, key, false, &kv, err);
    if (st) return st;
    if (kv->type != GGUF_VTYPE_BOOL) return wrong_type(f, kv, key, "bool", err);
    *out = kv->data[0] != 0;
    return OB_OK;
}

ob_status gguf_get_str(const gguf_file *f, const char *key, ob_str *out, ob_err *err) {
    const gguf_kv *kv;
    ob_status st = lookup(f, key, false, &kv, err);
    if (st) return st;
    if (kv->type != GGUF_VTYPE_STRING) return wrong_type(f, kv, key, "str", err);
    *out = kv->str;
    return OB_OK;
}

ob_status gguf_get_u32_or(const gguf_file *f, const char *key, uint32_t def, uint32_t *out,
                          ob_err *err) {
    if (!gguf_kv_find(f, key)) {
        *out = def;
        return OB_OK;
    }
    return gguf_get_u32(f, key, out, err);
}

ob_status gguf_get_f32_or(const gguf_file *f, const char *key, float def, float *out,
                          ob_err *err) {
    if (!gguf_kv_find(f, key)) {
        *out = def;
        return OB_OK;
    }
    return gguf_get_f32(f, key, out, err);
}

ob_status gguf_get_bool_or(const gguf_file *f, const char *key, bool def, bool *out, ob_err *err) {
    if (!gguf_kv_find(f, key)) {
        *out = def;
        return OB_OK;
    }
    return gguf_get_bool(f, key, out, err);
}

ob_status gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem, const gguf_kv **out,
                       ob_err *err) {
    const gguf_kv *kv;
    ob_status st = lookup(f, key, false, &kv, err);
    if (st) return st;
    if (kv->type != GGUF_VTYPE_ARRAY || kv->arr_type != elem) {
        char expected[32];
        snprintf(expected, sizeof expected, "arr[%s]", gguf_vtype_name(elem));
        return wrong_type(f, kv, key, expected, err);
    }
    *out = kv;
    return OB_OK;
}

/* Bytes per element of a numeric array (0 for strings). */
static size_t elem_size(gguf_vtype t) {
    switch (t) {
    case GGUF_VTYPE_UINT8: case GGUF_VTYPE_INT8: case GGUF_VTYPE_BOOL: return 1;
    case GGUF_VTYPE_UINT16: case GGUF_VTYPE_INT16: return 2;
    case GGUF_VTYPE_UINT32: case GGUF_VTYPE_INT32: case GGUF_VTYPE_FLOAT32: return 4;
    case GGUF_VTYPE_UINT64: case GGUF_VTYPE_INT64: case GGUF_VTYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* A float converted to int64, truncating toward zero; NaN gives 0 and values beyond the range
 * saturate (a plain cast would be undefined behaviour for them). */
static int64_t f64_to_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i) {
    size_t es = elem_size(kv->arr_type);
    if (es == 0 || i >= kv->arr_len) return 0;
    const uint8_t *p = kv->data + i * es;
    bool neg;
    uint64_t mag;
    if (kv->arr_type == GGUF_VTYPE_BOOL) return p[0] != 0;
    if (kv->arr_type == GGUF_VTYPE_FLOAT32) return f64_to_i64(load_f32(p));
    if (kv->arr_type == GGUF_VTYPE_FLOAT64) return f64_to_i64(load_f64(p));
    int_value(kv->arr_type, p, &neg, &mag);
    return neg ? (int64_t)(0 - mag) : (int64_t)mag;
}

double gguf_arr_f64(const gguf_kv *kv, uint64_t i) {
    size_t es = elem_size(kv->arr_type);
    if (es == 0 || i >= kv->arr_len) return 0;
    const uint8_t *p = kv->data + i * es;
    if (kv->arr_type == GGUF_VTYPE_FLOAT32) return load_f32(p);
    if (kv->arr_type == GGUF_VTYPE_FLOAT64) return load_f64(p);
    if (kv->arr_type == GGUF_VTYPE_UINT64) return (double)load_le(p, 8);
    return (double)gguf_arr_i64(kv, i);
}

ob_str gguf_arr_str(const gguf_kv *kv, uint64_t i) {
    if (kv->arr_type != GGUF_VTYPE_STRING || !kv->strs || i >= kv->arr_len) return (ob_str){0};
    return kv->strs[i];
}

/* ---- tensors ----------------------------------------------------------------------------- */

int64_t gguf_tensor_count(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name) {
    if (!name) return NULL;
    int64_t i = gguf_index_find_tensor(f, name, strlen(name));
    return i >= 0 ? &f->tensors[i] : NULL;
}

ob_status gguf_tensor_get(const gguf_file *f, const char *name, const gguf_tensor **out,
                          ob_err *err) {
    *out = gguf_tensor_find(f, name);
    if (*out) return OB_OK;
    return ob_fail(err, OB_ERR_FORMAT, "%s: tensor '%s' not found", f->name,
                   name ? name : "(null)");
}

int64_t gguf_tensor_nelements(const gguf_tensor *t) {
    /* The parser checked that this product fits int64. */
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
