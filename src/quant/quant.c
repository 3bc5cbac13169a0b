/*
 * The dispatch table: for every type, its geometry, the type its dot products take on the
 * activation side, and one kernel set per ISA. On first use each (type, ISA) pair is resolved
 * into a complete quant_traits (fields the ISA does not accelerate come from the ISA below), and
 * the best one this CPU can run becomes quant_traits_get's answer.
 */
#include "quant/quant_impl.h"
#include "quant/pack.h"

#include "core/cpu_features.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

_Static_assert(sizeof(quant_block_q4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(quant_block_q4_1) == 20, "Q4_1 block is 20 bytes");
_Static_assert(sizeof(quant_block_q5_0) == 22, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(quant_block_q5_1) == 24, "Q5_1 block is 24 bytes");
_Static_assert(sizeof(quant_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(quant_block_q8_1) == 36, "Q8_1 block is 36 bytes");

/* Kernel files exist only for their architecture; these keep the table one piece. */
#if defined(__x86_64__) || defined(_M_X64)
#define X86(p) (p)
#else
#define X86(p) NULL
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define ARM(p) (p)
#else
#define ARM(p) NULL
#endif

typedef struct quant_row {
    const char *name;
    int64_t block_size;
    size_t type_size;
    uint32_t vec_dot_type;
    const quant_impl *impl[QUANT_ISA_COUNT]; /* scalar, avx2, avx512, neon; NULL = none (avxvnni:
                                              * AVX2 with RP_DOT_AVXVNNI below, never a set) */
} quant_row;

/* Rows with a NULL scalar set are unsupported types. */
static const quant_row ROWS[OB_QTYPE_COUNT] = {
    [OB_QTYPE_F32] = {"F32", 1, 4, OB_QTYPE_F32,
        {&quant_f32_scalar, X86(&quant_f32_avx2), X86(&quant_f32_avx512),
         ARM(&quant_f32_neon)}},
    [OB_QTYPE_F16] = {"F16", 1, 2, OB_QTYPE_F16,
        {&quant_f16_scalar, X86(&quant_f16_avx2), X86(&quant_f16_avx512),
         ARM(&quant_f16_neon)}},
    [OB_QTYPE_BF16] = {"BF16", 1, 2, OB_QTYPE_BF16,
        {&quant_bf16_scalar, X86(&quant_bf16_avx2), X86(&quant_bf16_avx512),
         ARM(&quant_bf16_neon)}},
    [OB_QTYPE_Q4_0] = {"Q4_0", 32, 18, OB_QTYPE_Q8_0,
        {&quant_q4_0_scalar, X86(&quant_q4_0_avx2), X86(&quant_q4_0_avx512),
         ARM(&quant_q4_0_neon)}},
    [OB_QTYPE_Q4_1] = {"Q4_1", 32, 20, OB_QTYPE_Q8_1,
        {&quant_q4_1_scalar, X86(&quant_q4_1_avx2), X86(&quant_q4_1_avx512),
         ARM(&quant_q4_1_neon)}},
    [OB_QTYPE_Q5_0] = {"Q5_0", 32, 22, OB_QTYPE_Q8_0,
        {&quant_q5_0_scalar, X86(&quant_q5_0_avx2), X86(&quant_q5_0_avx512),
         ARM(&quant_q5_0_neon)}},
    [OB_QTYPE_Q5_1] = {"Q5_1", 32, 24, OB_QTYPE_Q8_1,
        {&quant_q5_1_scalar, X86(&quant_q5_1_avx2), X86(&quant_q5_1_avx512),
         ARM(&quant_q5_1_neon)}},
    [OB_QTYPE_Q8_0] = {"Q8_0", 32, 34, OB_QTYPE_Q8_0,
        {&quant_q8_0_scalar, X86(&quant_q8_0_avx2), X86(&quant_q8_0_avx512),
         ARM(&quant_q8_0_neon)}},
    [OB_QTYPE_Q8_1] = {"Q8_1", 32, 36, OB_QTYPE_Q8_1,
        {&quant_q8_1_scalar, X86(&quant_q8_1_avx2), X86(&quant_q8_1_avx512),
         ARM(&quant_q8_1_neon)}},

    /* ---- K-quants and IQ4 (q2_k*.c ... q8_k*.c, iq4_*.c) ---- */
    [OB_QTYPE_Q2_K] = {"Q2_K", 256, 84, OB_QTYPE_Q8_K,
        {&quant_q2_k_scalar, X86(&quant_q2_k_avx2), X86(&quant_q2_k_avx512),
         ARM(&quant_q2_k_neon)}},
    [OB_QTYPE_Q3_K] = {"Q3_K", 256, 110, OB_QTYPE_Q8_K,
        {&quant_q3_k_scalar, X86(&quant_q3_k_avx2), X86(&quant_q3_k_avx512),
         ARM(&quant_q3_k_neon)}},
    [OB_QTYPE_Q4_K] = {"Q4_K", 256, 144, OB_QTYPE_Q8_K,
        {&quant_q4_k_scalar, X86(&quant_q4_k_avx2), X86(&quant_q4_k_avx512),
         ARM(&quant_q4_k_neon)}},
    [OB_QTYPE_Q5_K] = {"Q5_K", 256, 176, OB_QTYPE_Q8_K,
        {&quant_q5_k_scalar, X86(&quant_q5_k_avx2), X86(&quant_q5_k_avx512),
         ARM(&quant_q5_k_neon)}},
    [OB_QTYPE_Q6_K] = {"Q6_K", 256, 210, OB_QTYPE_Q8_K,
        {&quant_q6_k_scalar, X86(&quant_q6_k_avx2), X86(&quant_q6_k_avx512),
         ARM(&quant_q6_k_neon)}},
    [OB_QTYPE_Q8_K] = {"Q8_K", 256, 292, OB_QTYPE_Q8_K,
        {&quant_q8_k_scalar, X86(&quant_q8_k_avx2), X86(&quant_q8_k_avx512),
         ARM(&quant_q8_k_neon)}},
    [OB_QTYPE_IQ4_NL] = {"IQ4_NL", 32, 18, OB_QTYPE_Q8_0,
        {&quant_iq4_nl_scalar, X86(&quant_iq4_nl_avx2), X86(&quant_iq4_nl_avx512),
         ARM(&quant_iq4_nl_neon)}},
    [OB_QTYPE_IQ4_XS] = {"IQ4_XS", 256, 136, OB_QTYPE_Q8_K,
        {&quant_iq4_xs_scalar, X86(&quant_iq4_xs_avx2), X86(&quant_iq4_xs_avx512),
         ARM(&quant_iq4_xs_neon)}},
};

/* Activation quantizers of the types whose activations round unlike their file format
 * (quant.h, act_from_f32); every other type's act_from_f32 is its from_f32. */
static const quant_from_f32_fn ACT_FROM_F32[OB_QTYPE_COUNT][QUANT_ISA_COUNT] = {
    [OB_QTYPE_Q8_0] = {quant_q8_0_act_scalar, X86(quant_q8_0_act_avx2),
                       X86(quant_q8_0_act_avx512), ARM(quant_q8_0_act_neon)},
    [OB_QTYPE_Q8_1] = {quant_q8_1_act_scalar, X86(quant_q8_1_act_avx2),
                       X86(quant_q8_1_act_avx512), ARM(quant_q8_1_act_neon)},
};

/* Packed-activation kernels (pack.h), added to the AVX-512 variant of their type. */
static const quant_pack_impl *const PACKED_AVX512[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = X86(&quant_q4_0_pack_avx512),
    [OB_QTYPE_Q8_0] = X86(&quant_q8_0_pack_avx512),
};
static const quant_repack_impl *const REPACKED_AVX512[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = X86(&quant_q4_0_repack_avx512),
    [OB_QTYPE_Q5_0] = X86(&quant_q5_0_repack_avx512),
    [OB_QTYPE_Q8_0] = X86(&quant_q8_0_repack_avx512),
    [OB_QTYPE_IQ4_NL] = X86(&quant_iq4_nl_repack_avx512),
    [OB_QTYPE_Q2_K] = X86(&quant_q2_k_repack_avx512),
    [OB_QTYPE_Q3_K] = X86(&quant_q3_k_repack_avx512),
    [OB_QTYPE_Q4_K] = X86(&quant_q4_k_repack_avx512),
    [OB_QTYPE_Q5_K] = X86(&quant_q5_k_repack_avx512),
    [OB_QTYPE_Q6_K] = X86(&quant_q6_k_repack_avx512),
    [OB_QTYPE_IQ4_XS] = X86(&quant_iq4_xs_repack_avx512),
};

static const quant_repack_impl *const REPACKED_AVX2[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = X86(&quant_q4_0_repack_avx2),
    [OB_QTYPE_Q5_0] = X86(&quant_q5_0_repack_avx2),
    [OB_QTYPE_Q8_0] = X86(&quant_q8_0_repack_avx2),
    [OB_QTYPE_IQ4_NL] = X86(&quant_iq4_nl_repack_avx2),
    [OB_QTYPE_Q2_K] = X86(&quant_q2_k_repack_avx2),
    [OB_QTYPE_Q3_K] = X86(&quant_q3_k_repack_avx2),
    [OB_QTYPE_Q4_K] = X86(&quant_q4_k_repack_avx2),
    [OB_QTYPE_Q5_K] = X86(&quant_q5_k_repack_avx2),
    [OB_QTYPE_Q6_K] = X86(&quant_q6_k_repack_avx2),
    [OB_QTYPE_IQ4_XS] = X86(&quant_iq4_xs_repack_avx2),
};

/* AVX-VNNI rp_dot kernels on the AVX2 layouts (repack_avxvnni.h): the VEX ones, and their EVEX
 * twins for CPUs with AVX512-VNNI (repack_avxvnni.c, repack_k_avxvnni.c,
 * repack_q23_k_avxvnni.c, repack_iq4_avxvnni.c). */
static const quant_dot_tile_fn *const RP_DOT_AVXVNNI[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = X86(&quant_q4_0_rp_dot_avxvnni),
    [OB_QTYPE_Q5_0] = X86(&quant_q5_0_rp_dot_avxvnni),
    [OB_QTYPE_Q8_0] = X86(&quant_q8_0_rp_dot_avxvnni),
    [OB_QTYPE_IQ4_NL] = X86(&quant_iq4_nl_rp_dot_avxvnni),
    [OB_QTYPE_Q4_K] = X86(&quant_q4_k_rp_dot_avxvnni),
    [OB_QTYPE_Q5_K] = X86(&quant_q5_k_rp_dot_avxvnni),
    [OB_QTYPE_Q6_K] = X86(&quant_q6_k_rp_dot_avxvnni),
    [OB_QTYPE_Q2_K] = X86(&quant_q2_k_rp_dot_avxvnni),
    [OB_QTYPE_Q3_K] = X86(&quant_q3_k_rp_dot_avxvnni),
    [OB_QTYPE_IQ4_XS] = X86(&quant_iq4_xs_rp_dot_avxvnni),
};
static const quant_dot_tile_fn *const RP_DOT_AVXVNNI_EVEX[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = X86(&quant_q4_0_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q5_0] = X86(&quant_q5_0_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q8_0] = X86(&quant_q8_0_rp_dot_avxvnni_evex),
    [OB_QTYPE_IQ4_NL] = X86(&quant_iq4_nl_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q4_K] = X86(&quant_q4_k_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q5_K] = X86(&quant_q5_k_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q6_K] = X86(&quant_q6_k_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q2_K] = X86(&quant_q2_k_rp_dot_avxvnni_evex),
    [OB_QTYPE_Q3_K] = X86(&quant_q3_k_rp_dot_avxvnni_evex),
    [OB_QTYPE_IQ4_XS] = X86(&quant_iq4_xs_rp_dot_avxvnni_evex),
};

/* NEON repacked kernels: SDOT ones, replaced by the SMMLA ones where the CPU has I8MM (both
 * read the same repacked layout and activation rows, so a type may have either or both). */
static const quant_repack_impl *const REPACKED_NEON[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = ARM(&quant_q4_0_repack_neon),
    [OB_QTYPE_Q5_0] = ARM(&quant_q5_0_repack_neon),
    [OB_QTYPE_Q8_0] = ARM(&quant_q8_0_repack_neon),
    [OB_QTYPE_IQ4_NL] = ARM(&quant_iq4_nl_repack_neon),
    [OB_QTYPE_Q4_K] = ARM(&quant_q4_k_repack_neon),
    [OB_QTYPE_Q5_K] = ARM(&quant_q5_k_repack_neon),
    [OB_QTYPE_Q6_K] = ARM(&quant_q6_k_repack_neon),
    [OB_QTYPE_IQ4_XS] = ARM(&quant_iq4_xs_repack_neon),
    [OB_QTYPE_Q2_K] = ARM(&quant_q2_k_repack_neon),
    [OB_QTYPE_Q3_K] = ARM(&quant_q3_k_repack_neon),
};

static const quant_repack_impl *const REPACKED_NEON_I8MM[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_0] = ARM(&quant_q4_0_repack_i8mm),
    [OB_QTYPE_Q5_0] = ARM(&quant_q5_0_repack_i8mm),
    [OB_QTYPE_Q8_0] = ARM(&quant_q8_0_repack_i8mm),
    [OB_QTYPE_IQ4_NL] = ARM(&quant_iq4_nl_repack_i8mm),
    [OB_QTYPE_Q4_K] = ARM(&quant_q4_k_repack_i8mm),
    [OB_QTYPE_Q5_K] = ARM(&quant_q5_k_repack_i8mm),
    [OB_QTYPE_Q6_K] = ARM(&quant_q6_k_repack_i8mm),
    /* no SMMLA kernel: its SDOT one retires fewer instructions (repack_k_i8mm_neon.c) */
    [OB_QTYPE_IQ4_XS] = ARM(&quant_iq4_xs_repack_neon),
    [OB_QTYPE_Q2_K] = ARM(&quant_q2_k_repack_i8mm),
    [OB_QTYPE_Q3_K] = ARM(&quant_q3_k_repack_i8mm),
};
/* quant_traits.rp_prefill_rows of those: the K-quant SMMLA kernels zip each run of activation
 * rows into SMMLA order once per call and share it across the call's groups of 8 rows, so 64
 * rows a call retire 11-12% fewer instructions per row than the default 16. */
static const int64_t REPACKED_NEON_I8MM_PREFILL_ROWS[OB_QTYPE_COUNT] = {
    [OB_QTYPE_Q4_K] = 64,
    [OB_QTYPE_Q5_K] = 64,
    [OB_QTYPE_Q6_K] = 64,
};

/* Copies a repacked kernel set into a variant. */
static void quant_set_repack(quant_traits *t, const quant_repack_impl *rp) {
    t->rp_rows = rp->rows;
    t->rp_pack = rp->pack;
    t->rp_act_size = rp->act_size;
    t->rp_act = rp->act;
    t->rp_dot = rp->dot;
}

static const char *const ISA_NAMES[QUANT_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon",
                                                        "avxvnni"};

static quant_traits g_traits[OB_QTYPE_COUNT][QUANT_ISA_COUNT];
static bool g_have[OB_QTYPE_COUNT][QUANT_ISA_COUNT];
static int g_best[OB_QTYPE_COUNT]; /* -1: unsupported */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Whether this CPU (after OB_ISA) runs the ISA's baseline plus the set's extra needs. */
static bool quant_isa_ok(int isa, const quant_impl *impl, const ob_cpu_features *cpu) {
    bool ok;
    switch (isa) {
    case QUANT_ISA_SCALAR: ok = true; break;
    case QUANT_ISA_AVX2: ok = cpu->avx2 && cpu->fma && cpu->f16c; break;
    case QUANT_ISA_AVX512:
        ok = cpu->avx2 && cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512dq &&
             cpu->avx512vnni;
        break;
    case QUANT_ISA_NEON: ok = cpu->neon && cpu->dotprod; break;
    default: ok = false;
    }
    if ((impl->needs & QUANT_NEEDS_AVX512BF16) && !cpu->avx512bf16) ok = false;
    return ok;
}

/* Overlays the non-NULL fields of one kernel set (of ISA isa). */
static void quant_overlay(quant_traits *t, const quant_impl *impl, int isa) {
    if (impl->to_f32) t->to_f32 = impl->to_f32;
    if (impl->from_f32) t->from_f32 = t->act_from_f32 = impl->from_f32;
    if (impl->vec_dot) t->vec_dot = impl->vec_dot;
    if (impl->dot_tile) t->dot_tile = impl->dot_tile;
    if (ACT_FROM_F32[t->type][isa]) t->act_from_f32 = ACT_FROM_F32[t->type][isa];
}

/* The avxvnni variant of a type with VNNI kernels: its AVX2 variant (same layouts, same
 * activation rows) with the VNNI rp_dot, VEX where the CPU has AVX-VNNI, else the EVEX twin
 * where it has AVX512-VNNI with VL. It replaces AVX2 as the best variant, never AVX-512 (whose
 * 16-row kernels do twice the work per instruction). */
static void quant_add_avxvnni(uint32_t type, const ob_cpu_features *cpu) {
    const quant_dot_tile_fn *dot = cpu->avxvnni          ? RP_DOT_AVXVNNI[type]
                                   : cpu->avx512vnni_ymm ? RP_DOT_AVXVNNI_EVEX[type]
                                                         : NULL;
    if (!dot || !g_have[type][QUANT_ISA_AVX2] || !g_traits[type][QUANT_ISA_AVX2].rp_rows) return;
    quant_traits v = g_traits[type][QUANT_ISA_AVX2];
    v.isa = ISA_NAMES[QUANT_ISA_AVXVNNI];
    v.rp_dot = *dot;
    g_traits[type][QUANT_ISA_AVXVNNI] = v;
    g_have[type][QUANT_ISA_AVXVNNI] = true;
    if (g_best[type] == QUANT_ISA_AVX2) g_best[type] = QUANT_ISA_AVXVNNI;
}

/* Resolves every usable (type, ISA) pair. The chains are scalar -> avx2 -> avx512 on x86 and
 * scalar -> neon on Arm; a set the CPU cannot run is skipped, and so is every set above it. */
static void quant_init(void) {
    const ob_cpu_features *cpu = ob_cpu_features_get();
    static const int chain_x86[] = {QUANT_ISA_AVX2, QUANT_ISA_AVX512};
    for (uint32_t type = 0; type < OB_QTYPE_COUNT; type++) {
        const quant_row *row = &ROWS[type];
        g_best[type] = -1;
        if (!row->impl[QUANT_ISA_SCALAR]) continue;
        quant_traits t = {
            .type = type, .name = row->name, .block_size = row->block_size,
            .type_size = row->type_size, .vec_dot_type = row->vec_dot_type, .isa = "scalar",
        };
        quant_overlay(&t, row->impl[QUANT_ISA_SCALAR], QUANT_ISA_SCALAR);
        g_traits[type][QUANT_ISA_SCALAR] = t;
        g_have[type][QUANT_ISA_SCALAR] = true;
        g_best[type] = QUANT_ISA_SCALAR;
        quant_traits cur = t;
        for (size_t k = 0; k < sizeof chain_x86 / sizeof chain_x86[0]; k++) {
            int isa = chain_x86[k];
            const quant_impl *impl = row->impl[isa];
            if (!impl) continue; /* nothing of its own: the next ISA builds on the one below */
            if (!quant_isa_ok(isa, impl, cpu)) break;
            quant_overlay(&cur, impl, isa);
            cur.isa = ISA_NAMES[isa];
            const quant_pack_impl *pk = isa == QUANT_ISA_AVX512 ? PACKED_AVX512[type] : NULL;
            if (pk) {
                cur.act_pack_size = pk->size;
                cur.act_pack = pk->pack;
                cur.dot_packed = pk->dot;
            }
            const quant_repack_impl *rp = isa == QUANT_ISA_AVX512 ? REPACKED_AVX512[type]
                                          : isa == QUANT_ISA_AVX2 ? REPACKED_AVX2[type]
                                                                  : NULL;
            if (rp) quant_set_repack(&cur, rp);
            g_traits[type][isa] = cur;
            g_have[type][isa] = true;
            g_best[type] = isa;
        }
        quant_add_avxvnni(type, cpu);
        const quant_impl *neon = row->impl[QUANT_ISA_NEON];
        if (neon && quant_isa_ok(QUANT_ISA_NEON, neon, cpu)) {
            quant_traits n = t;
            quant_overlay(&n, neon, QUANT_ISA_NEON);
            n.isa = ISA_NAMES[QUANT_ISA_NEON];
            const bool i8mm = cpu->i8mm && REPACKED_NEON_I8MM[type];
            const quant_repack_impl *rp = i8mm ? REPACKED_NEON_I8MM[type] : REPACKED_NEON[type];
            if (rp) quant_set_repack(&n, rp);
            if (i8mm) n.rp_prefill_rows = REPACKED_NEON_I8MM_PREFILL_ROWS[type];
            g_traits[type][QUANT_ISA_NEON] = n;
            g_have[type][QUANT_ISA_NEON] = true;
            g_best[type] = QUANT_ISA_NEON;
        }
    }
}

const quant_traits *quant_traits_get(uint32_t type) {
    if (type >= OB_QTYPE_COUNT) return NULL;
    pthread_once(&g_once, quant_init);
    return g_best[type] < 0 ? NULL : &g_traits[type][g_best[type]];
}

const quant_traits *quant_traits_ref(uint32_t type) {
    return quant_traits_isa(type, "scalar");
}

const quant_traits *quant_traits_isa(uint32_t type, const char *isa) {
    if (type >= OB_QTYPE_COUNT || !isa) return NULL;
    pthread_once(&g_once, quant_init);
    for (int i = 0; i < QUANT_ISA_COUNT; i++)
        if (strcmp(isa, ISA_NAMES[i]) == 0) return g_have[type][i] ? &g_traits[type][i] : NULL;
    return NULL;
}

void quant_dot_tile(const quant_traits *t, int64_t n, int64_t nx, int64_t ny, float *out,
                    size_t out_stride, const void *x, size_t x_stride, const void *y,
                    size_t y_stride) {
    /* One activation row is a plain matrix-vector product: the variant's own vec_dot over
     * the rows (a tile inherited from a lower ISA would be slower than it). */
    if (t->dot_tile && ny > 1) {
        t->dot_tile(n, nx, ny, out, out_stride, x, x_stride, y, y_stride);
        return;
    }
    for (int64_t j = 0; j < ny; j++)
        for (int64_t i = 0; i < nx; i++)
            t->vec_dot(n, &out[j * out_stride + i], (const uint8_t *)x + i * x_stride,
                       (const uint8_t *)y + j * y_stride);
}

float quant_f16_to_f32(uint16_t h) { return quant_f16(h); }
uint16_t quant_f32_to_f16(float f) { return quant_to_f16(f); }
float quant_bf16_to_f32(uint16_t h) { return quant_bf16(h); }
uint16_t quant_f32_to_bf16(float f) { return quant_to_bf16(f); }
