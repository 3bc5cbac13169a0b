#!/bin/sh
# Instructions retired by the NEON matmul kernels, counted under qemu-user (no Arm machine
# needed): bench/matmul_once cross-built for aarch64 runs one product per case, with qemu
# executing one guest instruction per translation block and logging each (-singlestep
# -d exec,nochain), so the log's line count is the instruction count. A "setup" run (everything
# but the product) is subtracted. Each case runs as a CPU with I8MM (qemu's "max") and as a
# Cortex-A76 (SDOT only), through the file layout (what OB_REPACK=0 runs) and the repacked
# kernels. Prints one table row per case.
#
#   bench/neon-insn.sh [TYPES (default "Q4_0 Q8_0 Q4_K Q6_K")] [ROWS 64] [N 2048] [NYS "1 32"]
#
# Needs aarch64-linux-gnu-gcc and qemu-user-static (scripts/apt-packages.txt). Slow: qemu
# logs ~300k instructions per second this way, so keep the sizes small; counts scale with
# rows x n x ny.
set -eu
cd "$(dirname "$0")/.."
TYPES=${1:-"Q4_0 Q8_0 Q4_K Q6_K"}
ROWS=${2:-64}
N=${3:-2048}
NYS=${4:-"1 32"}
BUILD=build-aarch64-insn # its own folder: a rebuild elsewhere cannot swap the binary mid-run
make -s BUILD=$BUILD CC=aarch64-linux-gnu-gcc ARCH=aarch64 CUDA=0 VULKAN=0 PKGS= \
    LIB_DIRS="src/core src/quant src/cpu src/gguf/qtype.c" \
    LDFLAGS=-static $BUILD/bench/matmul_once >/dev/null
BIN=$BUILD/bench/matmul_once

count() { # cpu type ny mode -> instructions
    qemu-aarch64-static -cpu "$1" -singlestep \
        -d exec,nochain -D /dev/stdout "$BIN" "$2" "$ROWS" "$N" "$3" "$4" | grep -c '^Trace'
}

printf '%-7s %-10s %4s %14s %14s %7s %12s\n' type cpu ny file repacked ratio 'rp/(r*n*ny)'
for type in $TYPES; do
    for ny in $NYS; do
        for cpu in max cortex-a76; do
            base=$(count "$cpu" "$type" "$ny" setup)
            file=$(( $(count "$cpu" "$type" "$ny" file) - base ))
            rp=$(( $(count "$cpu" "$type" "$ny" repack) - base ))
            awk -v t="$type" -v c="$cpu" -v y="$ny" -v f="$file" -v r="$rp" -v m="$ROWS" \
                -v n="$N" 'BEGIN { printf "%-7s %-10s %4d %14d %14d %6.2fx %12.4f\n",
                                   t, c, y, f, r, f / r, r / (m * n * y) }'
        done
    done
done
