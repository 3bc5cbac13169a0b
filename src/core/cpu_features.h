/*
 * What the CPU we run on can execute, detected once. Kernels are compiled for several ISAs
 * (files named *_avx2.c, *_avx512.c, *_neon.c) and the dispatch tables pick among them with this
 * struct, so one binary runs on any CPU of its architecture.
 *
 * A flag is set only when both the CPU reports the feature and the operating system saves the
 * register state it needs (x86: XGETBV shows YMM, and for AVX-512 the opmask/ZMM state).
 * AMX is never reported or used: it has been seen advertised by CPUID yet faulting under
 * hypervisors.
 *
 * The environment variable OB_ISA=scalar|avx2|avxvnni|avx512|neon|neon-sdot caps what is
 * reported (flags above the cap read false; neon-sdot is Arm without I8MM), so tests and
 * benchmarks can force a slower path in every module at once. avx2 is plain AVX2 (no VNNI);
 * avxvnni is AVX2 with the int8 dot product: every AVX-512 flag reads false except
 * avx512vnni_ymm, so a CPU with AVX-512 VNNI runs the AVX2 path with the AVX-VNNI kernels' EVEX
 * twins (src/quant/repack_avxvnni.h). An unknown value is ignored.
 */
#ifndef OB_CORE_CPU_FEATURES_H
#define OB_CORE_CPU_FEATURES_H

#include <stdbool.h>

typedef struct ob_cpu_features {
    bool avx2, fma, f16c;                     /* x86-64: AVX2 set with its companions */
    bool avx512f, avx512bw, avx512vl, avx512dq; /* x86-64: AVX-512 foundation + integer ext. */
    bool avx512vnni, avx512bf16;              /* x86-64: int8 dot (VPDPBUSD), bf16 dot */
    bool avxvnni;                             /* x86-64: VEX VPDPBUSD on 256-bit registers
                                                 (AVX-VNNI, CPUs with AVX2 and no AVX-512) */
    bool avx512vnni_ymm;                      /* x86-64: AVX512-VNNI + VL: the EVEX form of
                                                 VPDPBUSD on 256-bit registers */
    bool neon, dotprod;                       /* aarch64: Advanced SIMD (always), SDOT/UDOT */
    bool i8mm;                                /* aarch64: int8 matrix multiply (SMMLA) */
} ob_cpu_features;

/* The features of this CPU after the OB_ISA cap. Detected on the first call; thread-safe;
 * the returned struct is static and never changes afterwards. */
const ob_cpu_features *ob_cpu_features_get(void);

/* Detects afresh, applying `cap` (an OB_ISA value, or NULL for none) instead of reading the
 * environment. For tests of the cap itself; ob_cpu_features_get is what kernels use. */
void cpu_features_detect(const char *cap, ob_cpu_features *out);

#endif
