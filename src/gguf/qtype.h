/*
 * Tensor element types as GGUF numbers them (ggml's type ids). The file format fixes the ids
 * and each type's block geometry, so the table lives here with the reader; the arithmetic on
 * blocks (dequantize, dot products, quantize) lives in src/quant/.
 */
#ifndef OB_GGUF_QTYPE_H
#define OB_GGUF_QTYPE_H

#include "outboard.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ob_qtype {
    OB_QTYPE_F32 = 0,
    OB_QTYPE_F16 = 1,
    OB_QTYPE_Q4_0 = 2,
    OB_QTYPE_Q4_1 = 3,
    OB_QTYPE_Q5_0 = 6,
    OB_QTYPE_Q5_1 = 7,
    OB_QTYPE_Q8_0 = 8,
    OB_QTYPE_Q8_1 = 9,
    OB_QTYPE_Q2_K = 10,
    OB_QTYPE_Q3_K = 11,
    OB_QTYPE_Q4_K = 12,
    OB_QTYPE_Q5_K = 13,
    OB_QTYPE_Q6_K = 14,
    OB_QTYPE_Q8_K = 15,
    OB_QTYPE_IQ2_XXS = 16,
    OB_QTYPE_IQ2_XS = 17,
    OB_QTYPE_IQ3_XXS = 18,
    OB_QTYPE_IQ1_S = 19,
    OB_QTYPE_IQ4_NL = 20,
    OB_QTYPE_IQ3_S = 21,
    OB_QTYPE_IQ2_S = 22,
    OB_QTYPE_IQ4_XS = 23,
    OB_QTYPE_I8 = 24,
    OB_QTYPE_I16 = 25,
    OB_QTYPE_I32 = 26,
    OB_QTYPE_I64 = 27,
    OB_QTYPE_F64 = 28,
    OB_QTYPE_IQ1_M = 29,
    OB_QTYPE_BF16 = 30,
    OB_QTYPE_TQ1_0 = 34,
    OB_QTYPE_TQ2_0 = 35,
    OB_QTYPE_MXFP4 = 39,
    OB_QTYPE_COUNT = 40, /* one past the largest id; ids in between are retired */
} ob_qtype;

typedef struct ob_qtype_info {
    const char *name;  /* "Q4_K", as llama.cpp and the gguf package print it */
    int64_t block_size; /* elements per block (1 for plain types) */
    size_t type_size;   /* bytes per block */
} ob_qtype_info;

/* Geometry of a type id, or NULL when the id is not a known type (retired or out of range). */
const ob_qtype_info *gguf_qtype_info(uint32_t type);

/* Name of a type id, or "unknown" when it is not known. Never NULL. */
const char *gguf_qtype_name(uint32_t type);

/* Bytes of a row of `ne0` elements of `type`. Fails with OB_ERR_FORMAT when ne0 is not a
 * multiple of the block size, OB_ERR_UNSUPPORTED for an unknown type, OB_ERR_LIMIT on overflow. */
ob_status gguf_qtype_row_size(uint32_t type, int64_t ne0, size_t *out, ob_err *err);

#endif
