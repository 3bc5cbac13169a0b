/*
 * The one allocator. All heap use in src/ goes through these functions so that tests can make
 * the Nth allocation fail (ob_alloc_fail_after) and check that every error path cleans up.
 * Sizes are checked for overflow here, so callers pass (count, size) instead of multiplying.
 */
#ifndef OB_CORE_ALLOC_H
#define OB_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* malloc(n * size); NULL on failure or when n * size overflows. */
void *ob_alloc(size_t n, size_t size);

/* calloc(n, size); NULL on failure or overflow. */
void *ob_calloc(size_t n, size_t size);

/* realloc(p, n * size); NULL (and p untouched) on failure or overflow. */
void *ob_realloc(void *p, size_t n, size_t size);

/* Memory aligned to `align` (a power of two, >= sizeof(void*)); free with ob_free_aligned. */
void *ob_alloc_aligned(size_t align, size_t size);
void ob_free_aligned(void *p);

/* Memory for a large buffer that is read from end to end over and over (weights, the KV cache):
 * 64-byte aligned, and from 2 MiB up aligned to 2 MiB and marked for transparent huge pages, so
 * that streaming it costs one TLB entry per 2 MiB instead of per 4 KiB. Free with
 * ob_free_aligned. */
void *ob_alloc_streamed(size_t size);

/* free(p); ob_free(NULL) is a no-op. */
void ob_free(void *p);

/* Copies s[0..len) into a new NUL-terminated string; NULL on failure. */
char *ob_strndup(const char *s, size_t len);

/* Test hook: after `n` more successful allocations, every allocation fails until reset with
 * n < 0 (the default). Thread-safe. */
void ob_alloc_fail_after(int64_t n);

/* Number of allocations made so far (for sweeps that fail each one in turn). */
int64_t ob_alloc_count(void);

/* Overflow-checked a * b and a + b: return 0 and set *out, or return -1 on overflow. */
static inline int ob_mul_size(size_t a, size_t b, size_t *out) {
    if (b != 0 && a > SIZE_MAX / b) return -1;
    *out = a * b;
    return 0;
}
static inline int ob_add_size(size_t a, size_t b, size_t *out) {
    if (a > SIZE_MAX - b) return -1;
    *out = a + b;
    return 0;
}

#endif
