/*
 * One fixed quantized matrix product, for instruction counters (bench/neon-insn.sh runs it
 * under qemu-user, where wall-clock time means nothing): `rows` weight rows of `n` elements of
 * one type times `ny` activation rows, once, through the file layout (quant_dot_tile, what runs
 * with OB_REPACK=0) or through the repacked kernels (rp_pack once, then rp_dot), or neither
 * ("setup": everything but the product, the baseline to subtract). Prints a checksum of the
 * results so the product cannot be optimised away.
 *
 *   build/bench/matmul_once TYPE ROWS N NY setup|file|repack     e.g. Q4_K 64 2048 32 repack
 *
 * Weights are one row quantized by the reference and copied to every row (quantizing each row
 * would cost far more instructions than the product under test); activations are random.
 */
#include "quant/quant.h"

#include "core/alloc.h"
#include "gguf/qtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rng_value(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / 16777216.0f - 0.5f;
}

static int find_type(const char *name, uint32_t *out) {
    for (uint32_t t = 0; t < OB_QTYPE_COUNT; t++) {
        const quant_traits *q = quant_traits_ref(t);
        if (q && strcmp(q->name, name) == 0) {
            *out = t;
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TYPE ROWS N NY setup|file|repack\n", argv[0]);
        return 2;
    }
    uint32_t type;
    const long long rows = atoll(argv[2]), n = atoll(argv[3]), ny = atoll(argv[4]);
    const char *mode = argv[5];
    if (find_type(argv[1], &type) != 0) {
        fprintf(stderr, "unknown type '%s'\n", argv[1]);
        return 2;
    }
    const quant_traits *t = quant_traits_get(type), *r = quant_traits_ref(type);
    const quant_traits *ta = quant_traits_get(t->vec_dot_type);
    if (rows < 1 || ny < 1 || n < 1 || n % t->block_size || n % ta->block_size ||
        (t->rp_rows && rows % t->rp_rows)) {
        fprintf(stderr, "bad sizes: rows %lld, n %lld (block %lld), ny %lld\n", rows, n,
                (long long)t->block_size, ny);
        return 2;
    }
    if (strcmp(mode, "repack") == 0 && !t->rp_rows) {
        fprintf(stderr, "%s on %s has no repacked kernels\n", t->name, t->isa);
        return 2;
    }
    const size_t row = (size_t)(n / t->block_size) * t->type_size;
    const size_t arow = (size_t)(n / ta->block_size) * ta->type_size;
    const size_t prow = t->rp_rows ? t->rp_act_size(n) : 0;
    float *x = ob_alloc((size_t)n, sizeof(float)), *out = ob_alloc((size_t)(rows * ny), 4);
    uint8_t *w = ob_alloc((size_t)rows, row), *rp = ob_alloc((size_t)rows, row);
    uint8_t *act = ob_alloc((size_t)ny, arow), *pact = ob_alloc((size_t)ny, prow ? prow : 1);
    if (!x || !out || !w || !rp || !act || !pact) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (long long i = 0; i < n; i++) x[i] = rng_value();
    r->from_f32(x, w, n);
    for (long long i = 1; i < rows; i++) memcpy(w + i * row, w, row);
    for (long long j = 0; j < ny; j++) {
        for (long long i = 0; i < n; i++) x[i] = rng_value();
        ta->from_f32(x, act + j * arow, n);
        if (t->rp_rows) t->rp_act(x, pact + j * prow, n);
    }
    if (t->rp_rows)
        for (long long g = 0; g < rows / t->rp_rows; g++)
            t->rp_pack(w + g * t->rp_rows * row, row, rp + g * t->rp_rows * row, n);
    memset(out, 0, (size_t)(rows * ny) * sizeof(float));
    if (strcmp(mode, "file") == 0)
        quant_dot_tile(t, n, rows, ny, out, (size_t)rows, w, row, act, arow);
    else if (strcmp(mode, "repack") == 0)
        t->rp_dot(n, rows, ny, out, (size_t)rows, rp, row * (size_t)t->rp_rows, pact, prow);
    else if (strcmp(mode, "setup") != 0) {
        fprintf(stderr, "unknown mode '%s'\n", mode);
        return 2;
    }
    double sum = 0;
    for (long long i = 0; i < rows * ny; i++) sum += out[i];
    printf("%s %s %s rows=%lld n=%lld ny=%lld checksum %.6g\n", t->name, t->isa, mode, rows, n,
           ny, sum);
    ob_free(x), ob_free(out), ob_free(w), ob_free(rp), ob_free(act), ob_free(pact);
    return 0;
}
