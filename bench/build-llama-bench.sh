#!/usr/bin/env bash
# Builds llama.cpp's llama-bench from the llama-cpp-python sdist pinned in tests/requirements.txt
# (its vendor/llama.cpp), for the side-by-side numbers in BENCHMARKS.md. x86-64 ISA flags are
# set by hand rather than -march=native: AVX2/FMA/F16C and AVX-512 (with VNNI/BF16) when this CPU
# has them, never AMX (seen advertised by cpuid yet faulting under hypervisors).
# LLAMA_ISA=avx2 builds it without AVX-512 (AVX2/FMA/F16C only), the reference for outboard's
# AVX2 path (OB_ISA=avx2) on this machine.
# LLAMA_ISA=aarch64-i8mm or aarch64-dotprod cross-builds it for Arm with aarch64-linux-gnu-g++
# (-march=armv8.2-a+dotprod+fp16, plus +i8mm), to run under qemu-aarch64 for the NEON
# instruction counts (bench/neon-model-insn.sh).
# Output: bench/llama.cpp/build/bin/llama-bench, or build-$LLAMA_ISA/ for the others
# (bench/llama.cpp/ is ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
VERSION=0.3.36
OUT=llama.cpp
ISA=${LLAMA_ISA:-native}
case "$ISA" in
native) BUILD=build ;;
avx2 | aarch64-i8mm | aarch64-dotprod) BUILD=build-$ISA ;;
*) echo "LLAMA_ISA: native, avx2, aarch64-i8mm or aarch64-dotprod, not '$ISA'" >&2; exit 2 ;;
esac
if [ -x "$OUT/$BUILD/bin/llama-bench" ]; then echo "$OUT/$BUILD/bin/llama-bench"; exit 0; fi
mkdir -p "$OUT"
if [ ! -d "$OUT/src/vendor/llama.cpp" ]; then
    python3 -m pip download --no-binary :all: --no-deps -d "$OUT" "llama-cpp-python==$VERSION" >&2
    mkdir -p "$OUT/src"
    tar -xzf "$OUT/llama_cpp_python-$VERSION.tar.gz" -C "$OUT/src" --strip-components=1
fi
flags="-DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
case "$ISA" in
aarch64-*)
    march=armv8.2-a+dotprod+fp16
    [ "$ISA" = aarch64-i8mm ] && march=$march+i8mm
    flags="$flags -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64"
    flags="$flags -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++"
    flags="$flags -DGGML_CPU_ARM_ARCH=$march -DLLAMA_OPENSSL=OFF"
    ;;
esac
if [ "$(uname -m)" = x86_64 ] && [ "${ISA#aarch64}" = "$ISA" ]; then
    has() { grep -qw "$1" /proc/cpuinfo; }
    flags="$flags -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    [ "$ISA" = avx2 ] && flags="$flags -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF"
    if [ "$ISA" = native ] && has avx512f && has avx512bw && has avx512vl && has avx512dq; then
        flags="$flags -DGGML_AVX512=ON"
        has avx512_vnni && flags="$flags -DGGML_AVX512_VNNI=ON"
        has avx512_bf16 && flags="$flags -DGGML_AVX512_BF16=ON"
        has avx512vbmi && flags="$flags -DGGML_AVX512_VBMI=ON"
    fi
fi
# shellcheck disable=SC2086
cmake -S "$OUT/src/vendor/llama.cpp" -B "$OUT/$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF $flags >&2
cmake --build "$OUT/$BUILD" --target llama-bench -j "${JOBS:-2}" >&2
echo "$OUT/$BUILD/bin/llama-bench"
