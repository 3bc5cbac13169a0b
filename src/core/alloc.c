/*
 * The allocator behind ob_alloc. A countdown makes allocations fail on demand for the
 * allocation-failure sweeps in tests; in normal use it is disabled (-1) and costs one atomic load.
 */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic int64_t fail_countdown = -1;
static _Atomic int64_t alloc_count = 0;

/* Returns 1 when this allocation should be refused by the test hook. */
static int injected_failure(void) {
    atomic_fetch_add(&alloc_count, 1);
    int64_t left = atomic_load(&fail_countdown);
    if (left < 0) return 0;
    /* Take one from the countdown; once it reaches zero every call fails. */
    while (left > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1)) return 0;
    }
    return left == 0;
}

void ob_alloc_fail_after(int64_t n) { atomic_store(&fail_countdown, n < 0 ? -1 : n); }

int64_t ob_alloc_count(void) { return atomic_load(&alloc_count); }

void *ob_alloc(size_t n, size_t size) {
    size_t total;
    if (ob_mul_size(n, size, &total)) return NULL;
    if (injected_failure()) return NULL;
    return malloc(total ? total : 1);
}

void *ob_calloc(size_t n, size_t size) {
    size_t total;
    if (ob_mul_size(n, size, &total)) return NULL;
    if (injected_failure()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *ob_realloc(void *p, size_t n, size_t size) {
    size_t total;
    if (ob_mul_size(n, size, &total)) return NULL;
    if (injected_failure()) return NULL;
    return realloc(p, total ? total : 1);
}

void *ob_alloc_aligned(size_t align, size_t size) {
    if (injected_failure()) return NULL;
    void *p = NULL;
    /* Round up so the size is a multiple of the alignment, as aligned_alloc requires. */
    size_t rounded;
    if (ob_add_size(size ? size : 1, align - 1, &rounded)) return NULL;
    rounded &= ~(align - 1);
    if (posix_memalign(&p, align, rounded) != 0) return NULL;
    return p;
}

void *ob_alloc_streamed(size_t size) {
    enum { HUGE_PAGE = 2u << 20 };
    if (size < HUGE_PAGE) return ob_alloc_aligned(64, size);
    void *p = ob_alloc_aligned(HUGE_PAGE, size);
#ifdef MADV_HUGEPAGE
    /* Only a hint: where transparent huge pages are off, or none are free, the kernel gives
     * small pages and nothing else changes. */
    if (p) (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

void ob_free_aligned(void *p) { free(p); }

void ob_free(void *p) { free(p); }

char *ob_strndup(const char *s, size_t len) {
    size_t total;
    if (ob_add_size(len, 1, &total)) return NULL;
    char *out = ob_alloc(total, 1);
    if (!out) return NULL;
    if (len) memcpy(out, s, len);
    out[len] = '\0';
    return out;
}
