/*
 * ob_str: a borrowed view of bytes {ptr, len}, not NUL-terminated. Views point into memory
 * owned by someone else (a mapped GGUF, a request arena); copy with ob_strndup to keep one.
 */
#ifndef OB_CORE_STR_H
#define OB_CORE_STR_H

#include <stddef.h>
#include <string.h>

typedef struct ob_str {
    const char *ptr;
    size_t len;
} ob_str;

static inline ob_str ob_str_from_cstr(const char *s) {
    ob_str v = {s, s ? strlen(s) : 0};
    return v;
}

static inline int ob_str_eq(ob_str a, ob_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int ob_str_eq_cstr(ob_str a, const char *b) {
    return ob_str_eq(a, ob_str_from_cstr(b));
}

/* printf helper: printf("%.*s", OB_STR_FMT(s)). Lengths above INT_MAX are clipped. */
#define OB_STR_FMT(s) (int)((s).len > 0x7fffffff ? 0x7fffffff : (s).len), (s).ptr

#endif
