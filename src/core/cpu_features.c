/*
 * CPU feature detection. x86-64: CPUID for what the silicon has, XGETBV for what the operating
 * system has enabled (a CPU can report AVX-512 while the OS does not save ZMM registers; using it
 * then faults). aarch64: NEON is part of the base architecture; the dot-product and int8
 * matrix-multiply extensions come from the kernel's hardware capability bits on Linux and from
 * sysctl on macOS.
 */
#include "core/cpu_features.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

/* XCR0 via XGETBV, written as inline assembly so this file needs no -mxsave. */
static uint64_t cpu_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void cpu_detect_arch(ob_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned max_leaf = a;
    __cpuid(1, a, b, c, d);
    bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = cpu_xgetbv0();
    bool ymm_ok = (xcr0 & 0x6) == 0x6;          /* SSE + AVX state */
    bool zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0; /* opmask + ZMM_Hi256 + Hi16_ZMM */
    if (!ymm_ok || max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned b7 = b, c7 = c;
    /* AVX2 is only useful to us together with FMA and F16C (all Haswell and later). */
    f->avx2 = ((b7 >> 5) & 1) && fma && f16c;
    f->fma = fma;
    f->f16c = f16c;
    unsigned a7_1 = 0;
    if (a >= 1) { /* leaf 7's sub-leaf count, in its first EAX */
        unsigned b1, c1, d1;
        __cpuid_count(7, 1, a7_1, b1, c1, d1);
    }
    /* ymm state is all AVX-VNNI needs from the OS (checked above) */
    f->avxvnni = f->avx2 && ((a7_1 >> 4) & 1);
    if (!zmm_ok || !f->avx2) return;
    f->avx512f = (b7 >> 16) & 1;
    f->avx512dq = f->avx512f && ((b7 >> 17) & 1);
    f->avx512bw = f->avx512f && ((b7 >> 30) & 1);
    f->avx512vl = f->avx512f && ((b7 >> 31) & 1);
    f->avx512vnni = f->avx512f && ((c7 >> 11) & 1);
    f->avx512bf16 = f->avx512f && ((a7_1 >> 5) & 1);
    f->avx512vnni_ymm = f->avx512vnni && f->avx512vl;
}

#elif defined(__aarch64__) || defined(_M_ARM64)
#if defined(__APPLE__)
#include <sys/sysctl.h>
static bool cpu_sysctl_flag(const char *name) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v != 0;
}
#elif defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#endif

static void cpu_detect_arch(ob_cpu_features *f) {
    f->neon = true; /* Advanced SIMD is mandatory on AArch64 */
#if defined(__APPLE__)
    f->dotprod = cpu_sysctl_flag("hw.optional.arm.FEAT_DotProd") ||
                 cpu_sysctl_flag("hw.optional.armv8_2_dotprod");
    f->i8mm = f->dotprod && cpu_sysctl_flag("hw.optional.arm.FEAT_I8MM");
#elif defined(__linux__)
    f->dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    /* the I8MM kernels also use SDOT (one activation row), so they need both */
    f->i8mm = f->dotprod && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#endif
}

#else
static void cpu_detect_arch(ob_cpu_features *f) { (void)f; }
#endif

/* Clears every flag above the named cap. */
static void cpu_apply_cap(const char *cap, ob_cpu_features *f) {
    if (!cap || !*cap || strcmp(cap, "avx512") == 0) return;
    if (strcmp(cap, "avx2") == 0 || strcmp(cap, "avxvnni") == 0) {
        f->avx512f = f->avx512bw = f->avx512vl = f->avx512dq = false;
        f->avx512vnni = f->avx512bf16 = false;
        /* avx2 is plain AVX2; avxvnni keeps the 256-bit int8 dot product in either form */
        if (strcmp(cap, "avx2") == 0) f->avxvnni = f->avx512vnni_ymm = false;
    } else if (strcmp(cap, "scalar") == 0) {
        memset(f, 0, sizeof *f);
    } else if (strcmp(cap, "neon-sdot") == 0) {
        /* Arm without I8MM: the SDOT kernels where the SMMLA ones would run */
        f->i8mm = false;
    } else if (strcmp(cap, "neon") == 0) {
        /* On x86 "neon" names nothing we have: that caps at scalar. */
        bool neon = f->neon, dotprod = f->dotprod, i8mm = f->i8mm;
        memset(f, 0, sizeof *f);
        f->neon = neon;
        f->dotprod = dotprod;
        f->i8mm = i8mm;
    }
}

void cpu_features_detect(const char *cap, ob_cpu_features *out) {
    memset(out, 0, sizeof *out);
    cpu_detect_arch(out);
    cpu_apply_cap(cap, out);
}

static ob_cpu_features g_features;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void cpu_features_init(void) { cpu_features_detect(getenv("OB_ISA"), &g_features); }

const ob_cpu_features *ob_cpu_features_get(void) {
    pthread_once(&g_once, cpu_features_init);
    return &g_features;
}
