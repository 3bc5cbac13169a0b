/*
 * A command-line window onto src/quant for the Python reference tests
 * (tests/quant/test_quant_reference.py), which compare it with the gguf package:
 *
 *   quant_tool list                               supported types, one "NAME ISA..." per line
 *   quant_tool dequant TYPE ISA IN OUT            raw blocks -> f32
 *   quant_tool quant   TYPE ISA IN OUT            f32 -> raw blocks (from_f32)
 *   quant_tool dot     TYPE ISA N X Y OUT         X: rows of N elements of TYPE; Y: N f32,
 *                                                 converted to TYPE's vec_dot_type with that
 *                                                 type's from_f32; OUT: one f32 per X row
 *
 * Exit status: 0 on success, 2 when the ISA is not available here (the caller skips), 1 on any
 * other error (message on stderr).
 */
#include "quant/quant.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ISAS[] = {"scalar", "avx2", "avx512", "neon"};

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = ob_alloc(size > 0 ? (size_t)size : 1, 1);
    if (buf && size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        ob_free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = size > 0 ? (size_t)size : 0;
    return buf;
}

static int write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(buf, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static uint32_t type_by_name(const char *name) {
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++) {
        const quant_traits *r = quant_traits_ref(t);
        if (r && strcmp(r->name, name) == 0) return t;
    }
    return OB_QTYPE_COUNT;
}

static int cmd_list(void) {
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++) {
        if (!quant_traits_ref(t)) continue;
        printf("%s", quant_traits_ref(t)->name);
        for (size_t i = 0; i < sizeof ISAS / sizeof ISAS[0]; i++)
            if (quant_traits_isa(t, ISAS[i])) printf(" %s", ISAS[i]);
        printf("\n");
    }
    return 0;
}

/* dequant / quant: one whole file through to_f32 / from_f32. */
static int cmd_convert(const quant_traits *t, int quantize, const char *in, const char *out) {
    size_t len;
    uint8_t *src = read_file(in, &len);
    if (!src) return fprintf(stderr, "%s: cannot read\n", in), 1;
    size_t unit = quantize ? sizeof(float) * (size_t)t->block_size : t->type_size;
    if (len % unit != 0) {
        fprintf(stderr, "%s: %zu bytes is not a whole number of %zu-byte units\n", in, len, unit);
        ob_free(src);
        return 1;
    }
    int64_t n = (int64_t)(len / unit) * t->block_size;
    size_t out_len = quantize ? (size_t)(n / t->block_size) * t->type_size : (size_t)n * 4;
    void *dst = ob_alloc(out_len ? out_len : 1, 1);
    if (quantize) t->from_f32((const float *)src, dst, n);
    else t->to_f32(src, dst, n);
    int rc = write_file(out, dst, out_len) == 0 ? 0 : 1;
    ob_free(src);
    ob_free(dst);
    return rc;
}

static int cmd_dot(const quant_traits *t, int64_t n, const char *xp, const char *yp,
                   const char *out) {
    const quant_traits *ty = quant_traits_isa(t->vec_dot_type, t->isa);
    if (!ty) ty = quant_traits_get(t->vec_dot_type);
    size_t xl, yl, row = (size_t)(n / t->block_size) * t->type_size;
    uint8_t *x = read_file(xp, &xl);
    float *y = read_file(yp, &yl);
    int rc = 1;
    if (!x || !y || n % t->block_size != 0 || yl != (size_t)n * 4 || row == 0 || xl % row != 0) {
        fprintf(stderr, "dot: bad inputs (n=%lld, x %zu bytes, y %zu bytes)\n", (long long)n, xl,
                yl);
    } else {
        size_t rows = xl / row;
        void *qy = ob_alloc((size_t)(n / ty->block_size), ty->type_size);
        float *res = ob_alloc(rows, sizeof(float));
        ty->from_f32(y, qy, n);
        for (size_t r = 0; r < rows; r++) t->vec_dot(n, &res[r], x + r * row, qy);
        rc = write_file(out, res, rows * sizeof(float)) == 0 ? 0 : 1;
        ob_free(qy);
        ob_free(res);
    }
    ob_free(x);
    ob_free(y);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "list") == 0) return cmd_list();
    if (argc < 4) {
        fprintf(stderr, "usage: quant_tool list | dequant|quant TYPE ISA IN OUT | "
                        "dot TYPE ISA N X Y OUT\n");
        return 1;
    }
    uint32_t type = type_by_name(argv[2]);
    if (type == OB_QTYPE_COUNT) return fprintf(stderr, "unsupported type %s\n", argv[2]), 1;
    const quant_traits *t = quant_traits_isa(type, argv[3]);
    if (!t) return fprintf(stderr, "%s: no %s variant on this CPU\n", argv[2], argv[3]), 2;
    if (strcmp(argv[1], "dequant") == 0 && argc == 6) return cmd_convert(t, 0, argv[4], argv[5]);
    if (strcmp(argv[1], "quant") == 0 && argc == 6) {
        if (!t->from_f32) return fprintf(stderr, "%s has no quantizer\n", argv[2]), 2;
        return cmd_convert(t, 1, argv[4], argv[5]);
    }
    if (strcmp(argv[1], "dot") == 0 && argc == 8)
        return cmd_dot(t, strtoll(argv[4], NULL, 10), argv[5], argv[6], argv[7]);
    fprintf(stderr, "unknown command or wrong arguments: %s\n", argv[1]);
    return 1;
}
