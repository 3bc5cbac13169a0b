#!/usr/bin/env bash
# Packs what the GPU checks need into .gpu/pack.tgz, on a machine WITHOUT a GPU, so that a
# borrowed GPU machine (no network, no Debian -dev packages, minutes of time) only unpacks and
# runs (scripts/gpu-check.sh; docs/GPU.md says how).
#
# The pack: outboard and the CUDA and Vulkan test programs, built for one GPU generation
# (CUDA_ARCH, default 90 = Hopper) and stripped; the shared libraries they load that a bare
# CUDA image lacks (everything ldd finds except the C and C++ runtimes); the small test models.
# .gpu/ is kept out of git through .git/info/exclude.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${CUDA_ARCH:-90}
SHARED=${SHARED:-../shared}
BUILD=build-gpu
JOBS=${JOBS:-$(nproc)}

EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx '/.gpu/' "$EXCLUDE" 2>/dev/null || echo '/.gpu/' >>"$EXCLUDE"
make -j"$JOBS" BUILD=$BUILD NVCC_ARCH="-gencode arch=compute_$ARCH,code=sm_$ARCH" \
    $BUILD/outboard $BUILD/bench/cuda_bench $(find tests/cuda tests/vulkan -name '*_test.c' | sed "s|^tests/|$BUILD/tests/|; s|\.c$||")

rm -rf .gpu/stage && mkdir -p .gpu/stage/bin .gpu/stage/lib .gpu/stage/shared/models
cp $BUILD/outboard $BUILD/bench/cuda_bench .gpu/stage/bin/
# VULKAN_TESTS=0 leaves the Vulkan tests out (an image without NVIDIA's Vulkan driver cannot
# run them, and llama-bench needs the room under the 64 MiB a call carries).
TEST_DIRS="$BUILD/tests/cuda"
[ "${VULKAN_TESTS:-1}" = 0 ] || TEST_DIRS="$TEST_DIRS $BUILD/tests/vulkan"
for t in $(find $TEST_DIRS -name '*_test' -type f); do
    d=.gpu/stage/bin/tests/$(basename "$(dirname "$t")")
    mkdir -p "$d" && cp "$t" "$d/"
done
find .gpu/stage/bin -type f -exec strip --strip-all {} +
# Libraries the image lacks: all that ldd resolves but the C/C++ runtimes, which the image's
# own (newer) copies serve.
ldd $BUILD/outboard .gpu/stage/bin/tests/*/* 2>/dev/null | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|libresolv)\.so' |
    while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
# llama.cpp's llama-bench built with CUDA (this ARCH) and Vulkan, as the speed reference, when
# one is at hand (LLAMA_BENCH; docs/GPU.md says how to build it), with the libraries it loads
# but the CUDA runtime and cuBLAS, which the image has (cuBLAS alone is over the 64 MiB).
LLAMA_BENCH=${LLAMA_BENCH:-}
if [ -n "$LLAMA_BENCH" ] && [ -x "$LLAMA_BENCH" ]; then
    mkdir -p .gpu/stage/llama
    cp "$LLAMA_BENCH" .gpu/stage/llama/ && strip --strip-all .gpu/stage/llama/llama-bench
    ldd "$LLAMA_BENCH" 2>/dev/null | awk '$3 ~ /^\// {print $3}' | sort -u |
        grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|libresolv|libcuda|libcudart|libcublas|libcublasLt|libnccl)\.so' |
        while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
    # NCCL (218 MB) serves only several GPUs; one GPU never calls it, and symbols bind lazily
    patchelf --remove-needed libnccl.so.2 .gpu/stage/llama/llama-bench
fi
cp "$SHARED"/models/stories260K.gguf "$SHARED"/models/llama-2-tiny-random.gguf .gpu/stage/shared/models/
cp scripts/gpu-check.sh .gpu/stage/
tar -C .gpu/stage -cf - . | gzip -9 >.gpu/pack.tgz
rm -rf .gpu/stage
echo "gpu-pack: .gpu/pack.tgz $(du -h .gpu/pack.tgz | cut -f1) (sm_$ARCH); run it with docs/GPU.md's call"
