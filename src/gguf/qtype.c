/*
 * Block geometry of every GGUF tensor type. Sizes are bytes per block as the format stores
 * them (e.g. Q4_K: fp16 d + fp16 dmin + 12 bytes of 6-bit scales + 128 bytes of nibbles = 144).
 */
#include "gguf/qtype.h"

#include "core/err.h"

static const ob_qtype_info QTYPES[OB_QTYPE_COUNT] = {
    [OB_QTYPE_F32] = {"F32", 1, 4},
    [OB_QTYPE_F16] = {"F16", 1, 2},
    [OB_QTYPE_Q4_0] = {"Q4_0", 32, 2 + 16},
    [OB_QTYPE_Q4_1] = {"Q4_1", 32, 2 + 2 + 16},
    [OB_QTYPE_Q5_0] = {"Q5_0", 32, 2 + 4 + 16},
    [OB_QTYPE_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16},
    [OB_QTYPE_Q8_0] = {"Q8_0", 32, 2 + 32},
    [OB_QTYPE_Q8_1] = {"Q8_1", 32, 2 + 2 + 32},
    [OB_QTYPE_Q2_K] = {"Q2_K", 256, 16 + 64 + 2 + 2},
    [OB_QTYPE_Q3_K] = {"Q3_K", 256, 32 + 64 + 12 + 2},
    [OB_QTYPE_Q4_K] = {"Q4_K", 256, 2 + 2 + 12 + 128},
    [OB_QTYPE_Q5_K] = {"Q5_K", 256, 2 + 2 + 12 + 32 + 128},
    [OB_QTYPE_Q6_K] = {"Q6_K", 256, 128 + 64 + 16 + 2},
    [OB_QTYPE_Q8_K] = {"Q8_K", 256, 4 + 256 + 16 * 2},
    [OB_QTYPE_IQ2_XXS] = {"IQ2_XXS", 256, 2 + 64},
    [OB_QTYPE_IQ2_XS] = {"IQ2_XS", 256, 2 + 64 + 8},
    [OB_QTYPE_IQ3_XXS] = {"IQ3_XXS", 256, 2 + 96},
    [OB_QTYPE_IQ1_S] = {"IQ1_S", 256, 2 + 32 + 16},
    [OB_QTYPE_IQ4_NL] = {"IQ4_NL", 32, 2 + 16},
    [OB_QTYPE_IQ3_S] = {"IQ3_S", 256, 2 + 64 + 32 + 8 + 4},
    [OB_QTYPE_IQ2_S] = {"IQ2_S", 256, 2 + 64 + 8 + 8},
    [OB_QTYPE_IQ4_XS] = {"IQ4_XS", 256, 2 + 2 + 4 + 128},
    [OB_QTYPE_I8] = {"I8", 1, 1},
    [OB_QTYPE_I16] = {"I16", 1, 2},
    [OB_QTYPE_I32] = {"I32", 1, 4},
    [OB_QTYPE_I64] = {"I64", 1, 8},
    [OB_QTYPE_F64] = {"F64", 1, 8},
    [OB_QTYPE_IQ1_M] = {"IQ1_M", 256, 32 + 16 + 8},
    [OB_QTYPE_BF16] = {"BF16", 1, 2},
    [OB_QTYPE_TQ1_0] = {"TQ1_0", 256, 48 + 4 + 2},
    [OB_QTYPE_TQ2_0] = {"TQ2_0", 256, 64 + 2},
    [OB_QTYPE_MXFP4] = {"MXFP4", 32, 1 + 16},
};

const ob_qtype_info *gguf_qtype_info(uint32_t type) {
    if (type >= OB_QTYPE_COUNT || QTYPES[type].name == NULL) return NULL;
    return &QTYPES[type];
}

const char *gguf_qtype_name(uint32_t type) {
    const ob_qtype_info *info = gguf_qtype_info(type);
    return info ? info->name : "unknown";
}

ob_status gguf_qtype_row_size(uint32_t type, int64_t ne0, size_t *out, ob_err *err) {
    const ob_qtype_info *info = gguf_qtype_info(type);
    if (!info) return ob_fail(err, OB_ERR_UNSUPPORTED, "unknown tensor type %u", type);
    if (ne0 < 0 || ne0 % info->block_size != 0)
        return ob_fail(err, OB_ERR_FORMAT, "row of %lld elements is not a multiple of %s's block of %lld",
                       (long long)ne0, info->name, (long long)info->block_size);
    uint64_t blocks = (uint64_t)(ne0 / info->block_size);
    if (blocks > SIZE_MAX / info->type_size)
        return ob_fail(err, OB_ERR_LIMIT, "row of %lld %s elements overflows size_t", (long long)ne0,
                       info->name);
    *out = (size_t)blocks * info->type_size;
    return OB_OK;
}
