/* Tests for src/core/alloc.c and src/core/err.c: overflow checks and the failure hook. */
#include "core/alloc.h"
#include "core/err.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

TEST(alloc_rejects_overflowing_sizes) {
    CHECK(ob_alloc(SIZE_MAX / 2, 3) == NULL);
    CHECK(ob_calloc(SIZE_MAX / 2, 3) == NULL);
    void *p = ob_alloc(4, 4);
    CHECK(p != NULL);
    CHECK(ob_realloc(p, SIZE_MAX, 2) == NULL); /* p is untouched and still ours */
    ob_free(p);
}

TEST(fail_after_counts_allocations) {
    ob_alloc_fail_after(2);
    void *a = ob_alloc(1, 8), *b = ob_alloc(1, 8), *c = ob_alloc(1, 8);
    ob_alloc_fail_after(-1);
    void *d = ob_alloc(1, 8);
    CHECK(a && b && !c && d);
    ob_free(a);
    ob_free(b);
    ob_free(d);
}

TEST(aligned_alloc_is_aligned) {
    void *p = ob_alloc_aligned(64, 100);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    ob_free_aligned(p);
}

TEST(streamed_alloc_is_aligned_and_fails_on_demand) {
    uint8_t *small = ob_alloc_streamed(100), *big = ob_alloc_streamed((3u << 20) + 5);
    CHECK(small != NULL && big != NULL);
    CHECK(((uintptr_t)small & 63) == 0);
    CHECK(((uintptr_t)big & ((2u << 20) - 1)) == 0); /* huge-page boundary */
    memset(big, 0x5a, (3u << 20) + 5);                /* every byte is usable */
    CHECK(big[(3u << 20) + 4] == 0x5a);
    ob_free_aligned(small);
    ob_free_aligned(big);
    ob_alloc_fail_after(0);
    CHECK(ob_alloc_streamed(4u << 20) == NULL);
    ob_alloc_fail_after(-1);
}

TEST(strndup_copies_and_terminates) {
    char *s = ob_strndup("abcdef", 3);
    CHECK_EQ_STR(s, "abc");
    ob_free(s);
}

TEST(fail_writes_message_and_returns_status) {
    ob_err err = {{0}};
    ob_status st = ob_fail(&err, OB_ERR_FORMAT, "key '%s': expected %s", "a.b", "u32");
    CHECK_EQ_INT(st, OB_ERR_FORMAT);
    CHECK_EQ_STR(err.msg, "key 'a.b': expected u32");
    ob_err_prefix(&err, "m.gguf");
    CHECK_EQ_STR(err.msg, "m.gguf: key 'a.b': expected u32");
    CHECK(ob_fail(NULL, OB_ERR_IO, "ignored") == OB_ERR_IO);
    CHECK_EQ_STR(ob_status_name(OB_ERR_LIMIT), "OB_ERR_LIMIT");
}

int main(void) {
    RUN(alloc_rejects_overflowing_sizes);
    RUN(fail_after_counts_allocations);
    RUN(aligned_alloc_is_aligned);
    RUN(streamed_alloc_is_aligned_and_fails_on_demand);
    RUN(strndup_copies_and_terminates);
    RUN(fail_writes_message_and_returns_status);
    return t_summary();
}
