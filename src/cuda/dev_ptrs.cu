/*
 * Which addresses are device (or managed) memory: every allocation the device layer makes is
 * recorded here (cuda_buf_alloc, cuda_managed_alloc) and dropped when freed, so
 * cuda_ptr_is_device is a binary search instead of a driver call. A decode step asks for every
 * operand of every op (a few hundred times per token), and the driver's pointer query cost more
 * than the kernels it guarded. Interior pointers count, as cudaPointerGetAttributes counts them.
 */
#include "cuda/cuda_impl.cuh"

#include <mutex>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

namespace {

struct span {
    uintptr_t lo, hi; /* [lo, hi) */
};

std::mutex g_lock;
span *g_spans;    /* sorted by lo; allocations never overlap */
size_t g_n, g_cap;

/* Index of the first span whose lo is greater than p. */
size_t upper(uintptr_t p) {
    size_t a = 0, b = g_n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (g_spans[m].lo <= p) a = m + 1;
        else b = m;
    }
    return a;
}

} // namespace

bool cuda_dev_ptrs_add(const void *p, size_t bytes) {
    const uintptr_t lo = (uintptr_t)p;
    std::lock_guard<std::mutex> hold(g_lock);
    if (g_n == g_cap) {
        size_t cap = g_cap ? 2 * g_cap : 256;
        span *s = (span *)realloc(g_spans, cap * sizeof *s);
        if (!s) return false;
        g_spans = s;
        g_cap = cap;
    }
    size_t i = upper(lo);
    memmove(g_spans + i + 1, g_spans + i, (g_n - i) * sizeof *g_spans);
    g_spans[i] = span{lo, lo + (bytes ? bytes : 1)};
    g_n++;
    return true;
}

void cuda_dev_ptrs_remove(const void *p) {
    const uintptr_t lo = (uintptr_t)p;
    std::lock_guard<std::mutex> hold(g_lock);
    size_t i = upper(lo);
    if (i == 0 || g_spans[i - 1].lo != lo) return;
    memmove(g_spans + i - 1, g_spans + i, (g_n - i) * sizeof *g_spans);
    g_n--;
}

extern "C" bool cuda_ptr_is_device(const void *p) {
    if (!p) return false;
    const uintptr_t a = (uintptr_t)p;
    std::lock_guard<std::mutex> hold(g_lock);
    size_t i = upper(a);
    return i > 0 && a < g_spans[i - 1].hi;
}
