/*
 * Tests of src/core/cpu_features.c: the OB_ISA cap, the implications between flags, and (on
 * Linux x86-64) agreement with the kernel's own list in /proc/cpuinfo, which also reflects
 * what the OS has enabled.
 */
#include "core/cpu_features.h"

#include "test.h"

#include <stdbool.h>

TEST(cap_clears_flags_above_it) {
    ob_cpu_features f;
    cpu_features_detect("scalar", &f);
    CHECK(!f.avx2 && !f.avx512f && !f.neon && !f.dotprod && !f.f16c);
    cpu_features_detect("avx2", &f);
    CHECK(!f.avx512f && !f.avx512vnni && !f.avx512bf16);
    CHECK(!f.avxvnni && !f.avx512vnni_ymm); /* avx2 is plain AVX2, without the int8 dot */
    ob_cpu_features full, bogus, vnni;
    cpu_features_detect(NULL, &full);
    /* avxvnni: AVX2 with VPDPBUSD on ymm in either encoding, and no other AVX-512 */
    cpu_features_detect("avxvnni", &vnni);
    CHECK(!vnni.avx512f && !vnni.avx512bw && !vnni.avx512vl && !vnni.avx512dq);
    CHECK(!vnni.avx512vnni && !vnni.avx512bf16);
    CHECK_EQ_INT(vnni.avxvnni, full.avxvnni);
    CHECK_EQ_INT(vnni.avx512vnni_ymm, full.avx512vnni_ymm);
    CHECK_EQ_INT(vnni.avx2, full.avx2);
    cpu_features_detect("no-such-isa", &bogus); /* ignored */
    CHECK(memcmp(&full, &bogus, sizeof full) == 0);
    CHECK_EQ_INT(f.avx2, full.avx2);
    cpu_features_detect("neon-sdot", &f); /* Arm without I8MM; x86 flags untouched */
    CHECK(!f.i8mm);
    CHECK_EQ_INT(f.dotprod, full.dotprod);
    CHECK_EQ_INT(f.avx2, full.avx2);
}

TEST(flags_are_consistent) {
    ob_cpu_features f;
    cpu_features_detect(NULL, &f);
    if (f.avx512vnni || f.avx512bw || f.avx512vl || f.avx512dq || f.avx512bf16) CHECK(f.avx512f);
    if (f.avx512f || f.avxvnni) CHECK(f.avx2);
    CHECK_EQ_INT(f.avx512vnni_ymm, f.avx512vnni && f.avx512vl);
    if (f.avx2) CHECK(f.fma && f.f16c);
    if (f.dotprod) CHECK(f.neon);
    if (f.i8mm) CHECK(f.dotprod);
#if defined(__aarch64__)
    CHECK(f.neon);
#endif
    const ob_cpu_features *g = ob_cpu_features_get();
    CHECK(g == ob_cpu_features_get());
    if (!getenv("OB_ISA")) CHECK(memcmp(g, &f, sizeof f) == 0);
}

#if defined(__linux__) && defined(__x86_64__)
/* Whether the "flags" line of /proc/cpuinfo lists `name`. */
static int cpuinfo_has(const char *name) {
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return -1;
    char line[8192];
    int found = 0;
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        for (char *tok = strtok(strchr(line, ':') + 1, " \n"); tok; tok = strtok(NULL, " \n"))
            if (strcmp(tok, name) == 0) found = 1;
        break;
    }
    fclose(fp);
    return found;
}
#endif

TEST(agrees_with_proc_cpuinfo) {
#if defined(__linux__) && defined(__x86_64__)
    if (cpuinfo_has("fpu") != 1) SKIP("no readable /proc/cpuinfo");
    ob_cpu_features f;
    cpu_features_detect(NULL, &f);
    CHECK_EQ_INT(f.avx2, cpuinfo_has("avx2") && cpuinfo_has("fma") && cpuinfo_has("f16c"));
    if (f.avx2) {
        CHECK_EQ_INT(f.avxvnni, cpuinfo_has("avx_vnni"));
        CHECK_EQ_INT(f.avx512f, cpuinfo_has("avx512f"));
        if (f.avx512f) {
            CHECK_EQ_INT(f.avx512bw, cpuinfo_has("avx512bw"));
            CHECK_EQ_INT(f.avx512vl, cpuinfo_has("avx512vl"));
            CHECK_EQ_INT(f.avx512dq, cpuinfo_has("avx512dq"));
            CHECK_EQ_INT(f.avx512vnni, cpuinfo_has("avx512_vnni"));
            CHECK_EQ_INT(f.avx512bf16, cpuinfo_has("avx512_bf16"));
        }
    }
#else
    SKIP("only on Linux x86-64");
#endif
}

int main(void) {
    RUN(cap_clears_flags_above_it);
    RUN(flags_are_consistent);
    RUN(agrees_with_proc_cpuinfo);
    return t_summary();
}
